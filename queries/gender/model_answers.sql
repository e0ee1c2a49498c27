-- Each model's answers: how many cids it answers male and female, from the newest result it
-- published for each cid (MODEL3's answer as of that result).
SELECT model, gndr, count(*) AS cids
FROM (
  SELECT model, gndr, row_number() OVER (PARTITION BY id ORDER BY rev DESC) AS newest
  FROM raw_gender_results
) AS results
WHERE newest = 1 AND gndr IS NOT NULL
GROUP BY model, gndr
ORDER BY model, gndr
