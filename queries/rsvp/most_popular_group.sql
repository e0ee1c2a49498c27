-- The group with the most RSVPs whose latest response is yes (ties by the smaller id).
SELECT g.group_id, g.group_name, count(*) AS yes_rsvps
FROM rsvps r
JOIN meetup_events e ON e.event_id = r.event_id
JOIN groups g ON g.group_id = e.group_id
WHERE r.response = 'yes'
GROUP BY g.group_id, g.group_name
ORDER BY yes_rsvps DESC, g.group_id
LIMIT 1
