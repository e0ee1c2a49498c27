-- The member with the most distinct RSVPs (each rsvp_id once; ties by the smaller id). Automated
-- members count like anyone here: suspected_bots.sql shows them apart.
SELECT m.member_id, m.member_name, count(*) AS rsvps
FROM rsvps r
JOIN members m ON m.member_id = r.member_id
GROUP BY m.member_id, m.member_name
ORDER BY rsvps DESC, m.member_id
LIMIT 1
