-- Sessions per device (distinct session_id of its events), with its platform: the 20 devices with
-- the most, ties by device_id.
SELECT f.device_id, d.platform, count(DISTINCT f.session_id) AS sessions, count(*) AS events
FROM fact_events f
LEFT JOIN dim_device d ON d.device_id = f.device_id
GROUP BY f.device_id, d.platform
ORDER BY sessions DESC, f.device_id
LIMIT 20
