-- The 10 most played clips, with how many plays were watched to the end (completion rate =
-- completions / plays); ties by clip_id.
WITH plays AS (
  SELECT clip_id, count(*) AS plays FROM event_clip_play GROUP BY clip_id
), completes AS (
  SELECT clip_id, count(*) AS completions FROM event_clip_complete GROUP BY clip_id
)
SELECT p.clip_id, p.plays, coalesce(c.completions, 0) AS completions,
       round(CAST(coalesce(c.completions, 0) AS DOUBLE) / p.plays, 3) AS completion_rate
FROM plays p
LEFT JOIN completes c ON c.clip_id = p.clip_id
ORDER BY p.plays DESC, p.clip_id
LIMIT 10
