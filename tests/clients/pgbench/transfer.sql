-- A money transfer between two accounts and a row in a keyless journal, in one transaction.
\set src random(1, 100)
\set dst random(1, 100)
\set amount random(1, 1000)
BEGIN;
UPDATE bench_accounts SET balance = balance - :amount WHERE id = :src;
UPDATE bench_accounts SET balance = balance + :amount WHERE id = :dst;
INSERT INTO bench_journal (src, dst, amount, at) VALUES (:src, :dst, :amount, now());
END;
