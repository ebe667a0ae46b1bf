-- A money transfer between two accounts and a row in a keyless journal, in one transaction.
-- The two accounts are updated in key order, so concurrent transfers never deadlock (as an
-- application does it on PostgreSQL too: opposite transfers in src/dst order would, rarely, end
-- one of them with 40P01).
\set src random(1, 100)
\set dst random(1, 100)
\set amount random(1, 1000)
\set lo least(:src, :dst)
\set hi greatest(:src, :dst)
\set dlo CASE WHEN :lo = :src THEN -:amount ELSE :amount END
\set dhi -:dlo
BEGIN;
UPDATE bench_accounts SET balance = balance + :dlo WHERE id = :lo;
UPDATE bench_accounts SET balance = balance + :dhi WHERE id = :hi;
INSERT INTO bench_journal (src, dst, amount, at) VALUES (:src, :dst, :amount, now());
END;
