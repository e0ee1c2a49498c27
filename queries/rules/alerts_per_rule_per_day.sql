-- Alerts per rule and UTC day they were first published (each alert once).
SELECT rule, CAST(published AS DATE) AS day, count(*) AS alerts
FROM alerts
GROUP BY rule, CAST(published AS DATE)
ORDER BY day, rule
