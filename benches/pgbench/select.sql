\set id random(1, 10000)
SELECT v FROM sel WHERE id = :id;
