-- Interactions per UTC day of the event and event type (the rules count only "Interaction").
SELECT CAST(event_time AS DATE) AS day, event, count(*) AS events, count(DISTINCT user_id) AS users
FROM interactions
GROUP BY CAST(event_time AS DATE), event
ORDER BY day, event
