-- Bad records per source (a function's dead letters, or lake:<stream> for raw lines the lake
-- could not convert) and reason.
SELECT source, reason_code, count(*) AS records, min(arrival) AS first_seen, max(arrival) AS last_seen
FROM bad_records
GROUP BY source, reason_code
ORDER BY records DESC, source, reason_code
