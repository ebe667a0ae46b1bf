\set id random(1, 100000)
SELECT v FROM soak WHERE id = :id;
