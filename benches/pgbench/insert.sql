\set id random(1, 9000000000000000000)
\set k random(1, 1000)
INSERT INTO bench (id, k, v) VALUES (:id, :k, 'some payload text of moderate size');
