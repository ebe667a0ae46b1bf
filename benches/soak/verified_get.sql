\set id random(1, 100000)
SELECT * FROM verified_get('soak', :id);
