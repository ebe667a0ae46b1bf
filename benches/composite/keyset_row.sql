\set d random(0, 999)
\set s random(0, 99)
SELECT day, seq, note FROM ev WHERE (day, seq) > (:d, :s) ORDER BY day, seq LIMIT 10;
