-- Each cluster of groups (tally clusters: Jaccard distance of topic sets) with its size and its
-- three most common topics, which name it.
WITH topic_counts AS (
  SELECT c.cluster, t.topic_name, count(*) AS group_count
  FROM group_clusters c
  JOIN group_topics gt ON gt.group_id = c.group_id
  JOIN topics t ON t.urlkey = gt.urlkey
  GROUP BY c.cluster, t.topic_name
), ranked AS (
  SELECT cluster, topic_name,
         row_number() OVER (PARTITION BY cluster ORDER BY group_count DESC, topic_name) AS place
  FROM topic_counts
), sizes AS (
  SELECT cluster, count(*) AS group_count FROM group_clusters GROUP BY cluster
)
SELECT s.cluster, s.group_count,
       max(CASE WHEN r.place = 1 THEN r.topic_name END) AS topic_1,
       max(CASE WHEN r.place = 2 THEN r.topic_name END) AS topic_2,
       max(CASE WHEN r.place = 3 THEN r.topic_name END) AS topic_3
FROM sizes s
LEFT JOIN ranked r ON r.cluster = s.cluster AND r.place <= 3
GROUP BY s.cluster, s.group_count
ORDER BY s.cluster
