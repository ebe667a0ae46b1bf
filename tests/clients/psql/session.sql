-- A psql session as a user types it: DDL, every type, \copy in both directions in text and CSV,
-- meta-commands that read the catalog, transactions, errors, \gset. Run in a scratch directory as
--   psql -X -a -f - < session.sql
-- and compared line for line with session.out, which is PostgreSQL 15's output for the same file.
\set VERBOSITY sqlstate
\pset null '(null)'
CREATE TABLE psql_types (
  id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
  f8 double precision, n numeric(12,3), t text, vc varchar(20), bin bytea, ts timestamp,
  tstz timestamptz, d date, u uuid, j jsonb, ai integer[], ta text[]);
INSERT INTO psql_types VALUES
  (1, true, -32768, 2147483647, -9223372036854775808, 1.5, -0.1, 12345.678, 'zoë ✓ "q"', 'varchar',
   '\x00ff275c', '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56.123456+05:30', '1999-12-31',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2, {"b": null}], "c": "x"}', '{1,NULL,3}',
   '{a,"b c",NULL}'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
\x on
SELECT * FROM psql_types ORDER BY id;
\x off
-- \copy out, in text and CSV, to files and to stdout.
\copy psql_types to 'types.txt'
\copy psql_types to 'types.csv' with (format csv, header)
\copy (SELECT id, t, ta FROM psql_types ORDER BY id) to stdout with csv header
\copy (SELECT id, bin, j FROM psql_types ORDER BY id) to stdout
-- \copy in: the files back into an empty copy of the table, which then holds the same rows.
CREATE TABLE psql_types2 (LIKE psql_types);
\copy psql_types2 from 'types.txt'
SELECT count(*) AS copied, (SELECT count(*) FROM (SELECT * FROM psql_types EXCEPT SELECT * FROM psql_types2) d) AS differ
  FROM psql_types2;
DELETE FROM psql_types2;
\copy psql_types2 from 'types.csv' with (format csv, header)
SELECT count(*) AS copied, (SELECT count(*) FROM (SELECT * FROM psql_types EXCEPT SELECT * FROM psql_types2) d) AS differ
  FROM psql_types2;
-- \copy in from inline data, CSV with quoting.
CREATE TABLE psql_notes (id int PRIMARY KEY, note text);
\copy psql_notes from stdin with (format csv)
1,"comma, inside"
2,"a ""quoted"" word"
3,
\.
SELECT * FROM psql_notes ORDER BY id;
-- Catalog meta-commands.
\d psql_notes
\dt psql_*
-- Transactions.
BEGIN;
INSERT INTO psql_notes VALUES (4, 'rolled back');
ROLLBACK;
BEGIN;
INSERT INTO psql_notes VALUES (5, 'committed');
COMMIT;
SELECT id FROM psql_notes ORDER BY id;
-- Errors: the SQLSTATE, and the session goes on.
INSERT INTO psql_notes VALUES (1, 'duplicate');
SELECT * FROM no_such_table;
SELEC 1;
SELECT 1 / 0;
UPDATE psql_types SET vc = repeat('x', 21) WHERE id = 1;
BEGIN;
INSERT INTO psql_notes VALUES (1, 'duplicate');
SELECT 1;
ROLLBACK;
-- \gset and variables.
SELECT max(id) AS max_id FROM psql_notes \gset
SELECT note FROM psql_notes WHERE id = :max_id;
