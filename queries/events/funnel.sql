-- The screen_view -> click -> purchase funnel, by session: sessions that viewed a screen, then
-- clicked after their first view, then bought after that click (by client_time).
WITH views AS (
  SELECT session_id, min(client_time) AS at FROM fact_events
  WHERE event_type = 'screen_view' AND session_id IS NOT NULL GROUP BY session_id
), clicks AS (
  SELECT f.session_id, min(f.client_time) AS at FROM fact_events f
  JOIN views v ON v.session_id = f.session_id AND f.client_time >= v.at
  WHERE f.event_type = 'click' GROUP BY f.session_id
), purchases AS (
  SELECT f.session_id, min(f.client_time) AS at FROM fact_events f
  JOIN clicks c ON c.session_id = f.session_id AND f.client_time >= c.at
  WHERE f.event_type = 'purchase' GROUP BY f.session_id
)
SELECT 1 AS step, 'screen_view' AS stage, (SELECT count(*) FROM views) AS sessions
UNION ALL SELECT 2, 'click', (SELECT count(*) FROM clicks)
UNION ALL SELECT 3, 'purchase', (SELECT count(*) FROM purchases)
ORDER BY step
