\set d random(0, 999)
\set s random(0, 99)
SELECT day, seq, note FROM ev WHERE day > :d OR (day = :d AND seq > :s) ORDER BY day, seq LIMIT 10;
