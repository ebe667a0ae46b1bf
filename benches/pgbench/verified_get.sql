\set id random(1, 10000)
SELECT * FROM verified_get('sel', :id);
