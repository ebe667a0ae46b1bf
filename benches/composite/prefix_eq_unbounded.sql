\set d random(0, 999)
SELECT day, seq, note FROM ev WHERE day + 0 = :d ORDER BY seq;
