-- The ten cities (of the groups) with the most yes RSVPs.
SELECT g.group_city, g.group_country, count(DISTINCT g.group_id) AS group_count, count(*) AS yes_rsvps
FROM rsvps r
JOIN meetup_events e ON e.event_id = r.event_id
JOIN groups g ON g.group_id = e.group_id
WHERE r.response = 'yes'
GROUP BY g.group_city, g.group_country
ORDER BY yes_rsvps DESC, g.group_city
LIMIT 10
