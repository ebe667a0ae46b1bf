\set k random(1, 99990)
SELECT id, v FROM soak WHERE k BETWEEN :k AND :k + 10 LIMIT 50;
