-- Vendors whose flyers lost readers week over week: distinct devices that opened any of the
-- vendor's flyers each ISO week (the vendor of the flyer when it was opened), and the change
-- from the week before; the weeks with fewer readers than the one before, largest drop first.
WITH opens AS (
  SELECT f.vendor_id, date_trunc('week', o.client_time) AS week, e.device_id
  FROM event_flyer_open o
  JOIN fact_events e ON e.app_id = o.app_id AND e.event_id = o.event_id
  JOIN dim_flyer f
    ON f.flyer_id = o.flyer_id
   AND f.row_valid_from <= o.client_time
   AND (f.row_valid_to IS NULL OR o.client_time < f.row_valid_to)
), weekly AS (
  SELECT vendor_id, week, count(DISTINCT device_id) AS readers
  FROM opens
  GROUP BY vendor_id, week
), compared AS (
  SELECT vendor_id, week, readers,
         lag(readers) OVER (PARTITION BY vendor_id ORDER BY week) AS readers_week_before
  FROM weekly
)
SELECT c.vendor_id, v.name AS vendor, CAST(c.week AS DATE) AS week, c.readers,
       c.readers_week_before, c.readers - c.readers_week_before AS change
FROM compared c
LEFT JOIN dim_vendor v ON v.vendor_id = c.vendor_id AND v.is_current
WHERE c.readers < c.readers_week_before
ORDER BY change, c.vendor_id, week
