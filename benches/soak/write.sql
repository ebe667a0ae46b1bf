\set id random(1000001, 9000000000000000000)
\set k random(1, 100000)
INSERT INTO soak (id, k, v) VALUES (:id, :k, 'soak payload of a moderate size');
