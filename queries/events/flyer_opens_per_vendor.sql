-- Flyer opens per app, day and vendor: each open counted for the vendor its flyer belonged to,
-- under the vendor's name, when it was opened (dim_flyer and dim_vendor as of the open's
-- client_time: the versions that began at or before it and had not ended). Opens of a flyer the
-- core database does not know are counted under vendor null.
SELECT CAST(o.client_time AS DATE) AS day,
       o.app_id,
       v.vendor_id,
       v.name AS vendor,
       count(*) AS opens,
       count(DISTINCT o.flyer_id) AS flyers
FROM event_flyer_open o
LEFT JOIN dim_flyer f
  ON f.flyer_id = o.flyer_id
 AND f.row_valid_from <= o.client_time
 AND (f.row_valid_to IS NULL OR o.client_time < f.row_valid_to)
LEFT JOIN dim_vendor v
  ON v.vendor_id = f.vendor_id
 AND v.row_valid_from <= o.client_time
 AND (v.row_valid_to IS NULL OR o.client_time < v.row_valid_to)
GROUP BY CAST(o.client_time AS DATE), o.app_id, v.vendor_id, v.name
ORDER BY day, o.app_id, opens DESC, v.vendor_id
