-- The ten topics with the most yes RSVPs to their groups' events, and how many groups list them.
SELECT t.urlkey, t.topic_name, count(DISTINCT gt.group_id) AS group_count, count(*) AS yes_rsvps
FROM rsvps r
JOIN meetup_events e ON e.event_id = r.event_id
JOIN group_topics gt ON gt.group_id = e.group_id
JOIN topics t ON t.urlkey = gt.urlkey
WHERE r.response = 'yes'
GROUP BY t.urlkey, t.topic_name
ORDER BY yes_rsvps DESC, t.urlkey
LIMIT 10
