-- Events per type and UTC day of the event, each event_id once, with the devices that sent them.
SELECT CAST(client_time AS DATE) AS day, event_type, count(*) AS events,
       count(DISTINCT device_id) AS devices
FROM fact_events
GROUP BY CAST(client_time AS DATE), event_type
ORDER BY day, event_type
