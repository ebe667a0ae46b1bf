\set id random(1000001, 9000000000000000000)
\set k random(100001, 2000000000)
INSERT INTO soak (id, k, v) VALUES (:id, :k, 'soak payload of a moderate size');
