-- Members who look automated: each made more than 1% of all RSVPs (no person answers one in a
-- hundred of a whole stream's events), at least ten, to events of five groups or more. The seed's
-- "most active members" were such accounts: most_active_member.sql counts them like anyone, this
-- lists them apart.
WITH per_member AS (
  SELECT r.member_id, count(*) AS rsvps, count(DISTINCT e.group_id) AS group_count
  FROM rsvps r
  JOIN meetup_events e ON e.event_id = r.event_id
  GROUP BY r.member_id
), total AS (
  SELECT count(*) AS rsvps FROM rsvps
)
SELECT p.member_id, m.member_name, p.rsvps, p.group_count,
       round(100.0 * p.rsvps / t.rsvps, 2) AS share_pct
FROM per_member p
JOIN members m ON m.member_id = p.member_id
CROSS JOIN total t
WHERE p.rsvps >= 10 AND p.group_count >= 5 AND 100 * p.rsvps > t.rsvps
ORDER BY p.rsvps DESC, p.member_id
