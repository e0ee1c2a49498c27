-- Devices that sent at least one event, per app and UTC day of the event (each event_id once).
SELECT f.app_id, a.name AS app_name, CAST(f.client_time AS DATE) AS day,
       count(DISTINCT f.device_id) AS active_devices
FROM fact_events f
LEFT JOIN dim_app a ON a.app_id = f.app_id
GROUP BY f.app_id, a.name, CAST(f.client_time AS DATE)
ORDER BY day, f.app_id
