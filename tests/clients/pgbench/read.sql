-- A point read, a range read and a verified read of one account, as three statements.
\set id random(1, 100)
SELECT balance FROM bench_accounts WHERE id = :id;
SELECT count(*), sum(amount) FROM bench_journal WHERE src = :id;
SELECT balance, _tx, _tree_size FROM verified_get('bench_accounts', :id);
