-- Visits per UTC day of the visit and gender.
SELECT CAST(ts AS DATE) AS day, gndr, count(*) AS visits
FROM visits
GROUP BY CAST(ts AS DATE), gndr
ORDER BY day, gndr
