#!/usr/bin/env python3
"""vouchdb driver compatibility: psycopg 3 (tests/clients/README.md is the contract).

Every statement is prepared on the server (`prepare_threshold=0`), and every read is checked with
text and with binary results (`conn.cursor(binary=True)`). Parameters are the driver's own Python
types (int, float, Decimal, str, bytes, datetime with tzinfo, date, UUID, Jsonb, lists), sent with
psycopg's automatic format (%s) and again forced to text (%t) and binary (%b).

Beyond the contract, psycopg particulars:
- result metadata: type OIDs and typmods (numeric(12,3), varchar(20)) in `cursor.description`;
- `TypeInfo.fetch` (psycopg's catalog query for a type);
- prepared-statement cache upkeep: `DEALLOCATE name` when the cache rotates, `DEALLOCATE ALL` after DROP;
- pipeline mode: parameterised inserts and selects in one pipeline; an error inside a pipeline
  surfaces with its SQLSTATE, undoes the implicit transaction up to the Sync, and leaves the
  connection usable;
- `executemany` (plain, with `returning=True`, and failing with 23505);
- COPY through `cursor.copy()`: `write_row` and raw text data FROM STDIN, `rows()` with `set_types`
  and raw CSV TO STDOUT, and a bad value failing with 22P02.

Environment: the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE; VOUCHDB_VERIFIER,
the path of tests/verifier/rfc9162.py. For a run against PostgreSQL: VOUCHDB_SKIP_VERIFY=1 skips the
vouchdb-only verification functions, VOUCHDB_SKIP_WRONG_PASSWORD=1 the wrong-password check (for a
server with trust authentication).
"""

import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rowproof  # noqa: E402  (tests/clients/rowproof.py)
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb

D = "psycopg"  # table-name prefix
TYPES = f"{D}_types"
SKIP_VERIFY = os.environ.get("VOUCHDB_SKIP_VERIFY") == "1"
SKIP_WRONG_PASSWORD = os.environ.get("VOUCHDB_SKIP_WRONG_PASSWORD") == "1"

COLUMNS = ["id", "b", "i2", "i4", "i8", "f4", "f8", "n", "t", "vc", "bin", "ts", "tstz", "d", "u", "j",
           "ai", "ta"]
# PostgreSQL 15's type OIDs for the columns above.
OIDS = {"id": 20, "b": 16, "i2": 21, "i4": 23, "i8": 20, "f4": 700, "f8": 701, "n": 1700, "t": 25,
        "vc": 1043, "bin": 17, "ts": 1114, "tstz": 1184, "d": 1082, "u": 2950, "j": 3802, "ai": 1007,
        "ta": 1009}

ROW1 = {
    "id": 1,
    "b": True,
    "i2": -32768,
    "i4": 2147483647,
    "i8": -9223372036854775808,
    "f4": 1.5,
    "f8": -0.1,
    "n": Decimal("12345.678"),
    "t": 'zoë ✓ "q"',
    "vc": "varchar",
    "bin": bytes([0x00, 0xFF, 0x27, 0x5C]),
    "ts": datetime(2024, 2, 29, 13, 45, 56, 123456),
    "tstz": datetime(2024, 2, 29, 13, 45, 56, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "d": date(1999, 12, 31),
    "u": uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    "j": {"a": [1, 2, {"b": None}], "c": "x"},
    "ai": [1, None, 3],
    "ta": ["a", "b c", None],
}
ROW2 = {c: None for c in COLUMNS} | {"id": 2}


class CheckFailed(Exception):
    pass


def fail(msg):
    raise CheckFailed(msg)


def expect_eq(got, want, what):
    if got != want or type(got) is not type(want) and not (want is None or got is None):
        fail(f"{what}: expected {want!r} ({type(want).__name__}), got {got!r} ({type(got).__name__})")


def expect_sqlstate(code, what, fn, *args, **kwargs):
    """Run fn, which must raise a psycopg error with SQLSTATE `code`; return the error."""
    try:
        fn(*args, **kwargs)
    except psycopg.Error as e:
        if e.sqlstate != code:
            fail(f"{what}: expected SQLSTATE {code}, got {e.sqlstate} ({type(e).__name__}: {e})")
        return e
    fail(f"{what}: expected an error with SQLSTATE {code}, the statement succeeded")


def connect(**kwargs):
    # require_auth (libpq 16+) makes libpq refuse anything but SCRAM-SHA-256.
    params = {"prepare_threshold": 0, "autocommit": True}
    if psycopg.pq.version() >= 160000 and not SKIP_WRONG_PASSWORD:
        params["require_auth"] = "scram-sha-256"
    params.update(kwargs)
    return psycopg.connect(**params)


def expect_usable(conn, what):
    try:
        got = conn.execute("SELECT 41 + %s", (1,)).fetchone()[0]
    except psycopg.Error as e:
        fail(f"{what}: the connection is not usable afterwards: {e.sqlstate} {e}")
    expect_eq(got, 42, f"{what}: SELECT 41 + 1 afterwards")


def compare_row(got: dict, want: dict, what: str):
    for col in COLUMNS:
        g, w = got[col], want[col]
        if col == "tstz" and w is not None:
            if not isinstance(g, datetime) or g.tzinfo is None:
                fail(f"{what}: column tstz: expected an aware datetime, got {g!r}")
            if g != w:
                fail(f"{what}: column tstz: expected the instant {w.astimezone(timezone.utc)}, "
                     f"got {g!r} = {g.astimezone(timezone.utc)}")
            continue
        if col == "ts" and g is not None and g.tzinfo is not None:
            fail(f"{what}: column ts: expected a naive datetime, got {g!r}")
        expect_eq(g, w, f"{what}: column {col}")
        if col == "n" and w is not None and str(g) != str(w):
            fail(f"{what}: column n: expected {w} with scale 3, got {g}")


# ---------------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------------

def check_connect(state):
    conn = connect()
    state["conn"] = conn
    if conn.info.server_version < 150000:
        fail(f"server_version {conn.info.parameter_status('server_version')} is below 15")
    expect_eq(conn.prepare_threshold, 0, "prepare_threshold")
    if psycopg.pq.version() >= 160000 and not SKIP_WRONG_PASSWORD and not conn.pgconn.used_password:
        fail("the connection did not use the password")
    expect_usable(conn, "connect")


def check_wrong_password(state):
    if SKIP_WRONG_PASSWORD:
        return "skipped (VOUCHDB_SKIP_WRONG_PASSWORD=1)"
    try:
        connect(password=os.environ.get("PGPASSWORD", "") + "-wrong").close()
    except psycopg.OperationalError as e:
        # libpq keeps no PGresult for a failed connection, so psycopg has no SQLSTATE to give
        # (e.sqlstate is None): the FATAL message must be PostgreSQL's 28P01 message.
        want = f'FATAL:  password authentication failed for user "{os.environ.get("PGUSER", "")}"'
        if e.sqlstate not in (None, "28P01") or want not in str(e):
            fail(f"wrong password: expected 28P01 '{want}', got {e.sqlstate}: {e}")
        return "(libpq gives no SQLSTATE for a failed connection: matched the 28P01 message)"
    fail("wrong password: the connection succeeded")


def check_create(state):
    conn = state["conn"]
    for t in (TYPES, f"{D}_tx", f"{D}_pipe", f"{D}_many", f"{D}_copy", f"{D}_prep"):
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(t)))
    conn.execute(f"""CREATE TABLE {TYPES} (
        id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
        f8 double precision, n numeric(12,3), t text, vc varchar(20), bin bytea, ts timestamp,
        tstz timestamptz, d date, u uuid, j jsonb, ai integer[], ta text[])""")
    got = conn.execute("SELECT count(*) FROM " + TYPES).fetchone()[0]
    expect_eq(got, 0, "rows in the new table")


def insert_row(conn, row, fmt):
    """INSERT one row; fmt is psycopg's placeholder: %s (automatic), %t (text), %b (binary)."""
    values = [Jsonb(row[c]) if c == "j" and row[c] is not None else row[c] for c in COLUMNS]
    q = f"INSERT INTO {TYPES} ({', '.join(COLUMNS)}) VALUES ({', '.join([fmt] * len(COLUMNS))})"
    cur = conn.execute(q, values)
    expect_eq(cur.rowcount, 1, f"rowcount of the INSERT ({fmt} parameters)")


def check_write(state):
    conn = state["conn"]
    insert_row(conn, ROW1, "%s")
    insert_row(conn, ROW2, "%s")
    # The same values again as all-text and all-binary parameters (rows 3 and 4).
    insert_row(conn, ROW1 | {"id": 3}, "%t")
    insert_row(conn, ROW1 | {"id": 4}, "%b")


def select_row(cur, key):
    cur.execute(f"SELECT {', '.join(COLUMNS)} FROM {TYPES} WHERE id = %s", (key,))
    rows = cur.fetchall()
    if len(rows) != 1:
        fail(f"SELECT … WHERE id = {key}: expected 1 row, got {len(rows)}")
    return rows[0]


def check_read(state):
    conn = state["conn"]
    for binary in (False, True):
        fmt = "binary" if binary else "text"
        cur = conn.cursor(binary=binary, row_factory=dict_row)
        compare_row(select_row(cur, 1), ROW1, f"row 1, {fmt} results")
        compare_row(select_row(cur, 2), ROW2, f"row 2, {fmt} results")
        compare_row(select_row(cur, 3), ROW1 | {"id": 3}, f"row 3 (text parameters), {fmt} results")
        compare_row(select_row(cur, 4), ROW1 | {"id": 4}, f"row 4 (binary parameters), {fmt} results")
        want_format = psycopg.pq.Format.BINARY if binary else psycopg.pq.Format.TEXT
        for i, col in enumerate(COLUMNS):
            expect_eq(psycopg.pq.Format(cur.pgresult.fformat(i)), want_format, f"{fmt} results: format of column {col}")
        # A parameter bound in a WHERE on every type.
        cur.execute(f"SELECT id FROM {TYPES} WHERE i2 = %s AND n = %s AND t = %s AND bin = %s AND ts = %s "
                    "AND tstz = %s AND d = %s AND u = %s AND j = %s AND ai = %s::integer[] AND ta = %s ORDER BY id",
                    (ROW1["i2"], ROW1["n"], ROW1["t"], ROW1["bin"], ROW1["ts"], ROW1["tstz"], ROW1["d"],
                     ROW1["u"], Jsonb(ROW1["j"]), ROW1["ai"], ROW1["ta"]))
        expect_eq([r["id"] for r in cur.fetchall()], [1, 3, 4], f"{fmt} results: ids matched by every value")


def check_metadata(state):
    cur = state["conn"].cursor()
    cur.execute(f"SELECT {', '.join(COLUMNS)} FROM {TYPES} WHERE id = %s", (1,))
    desc = cur.description
    expect_eq([d.name for d in desc], COLUMNS, "column names")
    for d in desc:
        expect_eq(d.type_code, OIDS[d.name], f"type OID of column {d.name}")
    by = {d.name: d for d in desc}
    expect_eq((by["n"].precision, by["n"].scale), (12, 3), "numeric(12,3) precision and scale (typmod)")
    expect_eq(by["vc"].display_size, 20, "varchar(20) length (typmod)")
    expect_eq(by["i4"].internal_size, 4, "integer's type size")
    info = TypeInfo.fetch(state["conn"], "uuid")
    if info is None:
        fail("TypeInfo.fetch('uuid') found nothing")
    expect_eq((info.oid, info.array_oid), (2950, 2951), "TypeInfo.fetch('uuid'): oid and array oid")


def check_transactions(state):
    conn = state["conn"]
    conn.execute(f"CREATE TABLE {D}_tx (id integer PRIMARY KEY, t text)")
    conn.autocommit = False
    try:
        conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (1, "rolled back"))
        conn.rollback()
        expect_eq(conn.execute(f"SELECT count(*) FROM {D}_tx WHERE id = %s", (1,)).fetchone()[0], 0,
                  "rows after a rolled-back insert")
        conn.rollback()
        conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (2, "committed"))
        conn.commit()
        expect_eq(conn.execute(f"SELECT t FROM {D}_tx WHERE id = %s", (2,)).fetchone()[0], "committed",
                  "a committed insert")
        conn.commit()
        # An error inside the transaction: the next statement is 25P02 until ROLLBACK.
        conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (3, "then an error"))
        expect_sqlstate("22012", "division by zero in a transaction", conn.execute, "SELECT 1 / %s", (0,))
        expect_sqlstate("25P02", "a statement after an error in a transaction", conn.execute,
                        "SELECT %s::int", (1,))
        conn.rollback()
        expect_eq(conn.info.transaction_status, psycopg.pq.TransactionStatus.IDLE, "status after ROLLBACK")
        expect_eq(conn.execute(f"SELECT count(*) FROM {D}_tx WHERE id = %s", (3,)).fetchone()[0], 0,
                  "the aborted transaction's insert")
        conn.commit()
    finally:
        conn.rollback()
        conn.autocommit = True
    # psycopg's transaction() blocks: a nested one is a savepoint.
    with conn.transaction():
        conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (4, "outer"))
        try:
            with conn.transaction():
                conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (5, "inner"))
                conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (4, "duplicate"))
        except errors.UniqueViolation:
            pass
        else:
            fail("nested transaction(): expected UniqueViolation")
        conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (6, "after the savepoint"))
    ids = [r[0] for r in conn.execute(f"SELECT id FROM {D}_tx ORDER BY id")]
    expect_eq(ids, [2, 4, 6], "rows after a savepoint rolled back inside a committed transaction")


def check_errors(state):
    conn = state["conn"]
    for code, what, q, params in [
        ("23505", "duplicate key", f"INSERT INTO {TYPES} (id) VALUES (%s)", (1,)),
        ("42P01", "unknown table", f"SELECT * FROM {D}_no_such_table WHERE id = %s", (1,)),
        ("42601", "syntax error", "SELEC %s", (1,)),
        ("22012", "division by zero through a parameter", "SELECT 1 / %s", (0,)),
        ("22001", "value too long for varchar(20)", f"INSERT INTO {TYPES} (id, vc) VALUES (%s, %s)",
         (10, "x" * 21)),
    ]:
        for binary in (False, True):
            expect_sqlstate(code, what, conn.cursor(binary=binary).execute, q, params)
            expect_usable(conn, what)
    e = expect_sqlstate("23505", "duplicate key", conn.execute, f"INSERT INTO {TYPES} (id) VALUES (%s)", (1,))
    if not isinstance(e, errors.UniqueViolation):
        fail(f"duplicate key: expected psycopg.errors.UniqueViolation, got {type(e).__name__}")
    expect_eq(conn.execute(f"SELECT count(*) FROM {TYPES} WHERE id = %s", (10,)).fetchone()[0], 0,
              "rows written by the failed statements")


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------

def load_verifier():
    return rowproof.load_verifier(fail)


def checkpoint(conn):
    row = conn.cursor(row_factory=dict_row).execute("SELECT * FROM vouch_checkpoint()").fetchone()
    for col in ("tree_size", "root_hash", "checkpoint", "signature", "public_key", "signed_note"):
        if col not in row:
            fail(f"vouch_checkpoint(): no column {col}")
    return row


def verify_get(conn, v, key, want, trusted, what):
    """verified_get(TYPES, key): compare the values, check the proofs with the verifier, and tie the
    tree to the `trusted` checkpoint (same size: same root; otherwise a consistency proof)."""
    for binary in (False, True):
        fmt = "binary" if binary else "text"
        cur = conn.cursor(binary=binary, row_factory=dict_row)
        cur.execute(f"SELECT * FROM verified_get('{TYPES}', %s)", (key,))
        rows = cur.fetchall()
        if len(rows) != 1:
            fail(f"{what} ({fmt}): expected 1 row, got {len(rows)}")
        r = rows[0]
        names = [d.name for d in cur.description]
        expect_eq(names[:len(COLUMNS)], COLUMNS, f"{what} ({fmt}): the row's columns come first")
        compare_row(r, want, f"{what} ({fmt})")
        if binary:
            continue  # the proof material is the same; check it once
        tx, size, root, leaf = rowproof.check_row_proof(v, r, what, fail)
        # inclusion_proof() gives the same proof.
        inc = conn.cursor(row_factory=dict_row).execute(
            "SELECT * FROM inclusion_proof(%s, %s)", (tx, size)).fetchone()
        expect_eq((inc["leaf_index"], inc["tree_size"], inc["root"], list(inc["proof"])),
                  (tx - 1, size, r["_root"], list(r["_tx_proof"])), f"{what}: inclusion_proof({tx}, {size})")
        expect_eq(bytes.fromhex(inc["leaf_hash"]), v.leaf_hash(leaf), f"{what}: inclusion_proof leaf_hash")
        # Tie the proven tree to the trusted checkpoint.
        old_size, old_root = trusted["tree_size"], bytes.fromhex(trusted["root_hash"])
        if size == old_size:
            expect_eq(root, old_root, f"{what}: root at the checkpoint's tree size {size}")
            tied = "same tree as the checkpoint"
        elif size > old_size:
            c = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM consistency_proof(%s, %s)", (old_size, size)).fetchone()
            expect_eq((c["old_root"], c["new_root"]), (trusted["root_hash"], r["_root"]),
                      f"{what}: consistency_proof({old_size}, {size}) roots")
            proof = v.parse_hash_list(",".join(c["proof"]), "consistency proof")
            if not v.verify_consistency(old_size, size, old_root, root, proof):
                fail(f"{what}: the tree of size {old_size} is not proven to be a prefix of size {size}")
            tied = f"consistent with the checkpoint of size {old_size}"
        else:
            fail(f"{what}: the proof's tree ({size}) is smaller than the trusted checkpoint's ({old_size})")
        result = {"tree_size": size, "root_hash": r["_root"]}
    return result, tied


def check_verification(state):
    if SKIP_VERIFY:
        return "skipped (VOUCHDB_SKIP_VERIFY=1)"
    conn = state["conn"]
    v = load_verifier()
    cp = checkpoint(conn)
    if cp["tree_size"] < 1 or len(bytes.fromhex(cp["root_hash"])) != 32:
        fail(f"vouch_checkpoint(): tree_size {cp['tree_size']}, root_hash {cp['root_hash']!r}")
    body = cp["checkpoint"].split("\n")
    if len(body) != 4 or body[1] != str(cp["tree_size"]):
        fail(f"vouch_checkpoint(): checkpoint body {cp['checkpoint']!r} does not name size {cp['tree_size']}")
    # Same tree size as the checkpoint (nothing committed in between): the roots must be equal.
    trusted, how1 = verify_get(conn, v, 1, ROW1, cp, "verified_get(1)")
    # Commit a transaction, so the next proof is for a larger tree: checked with a consistency proof.
    conn.execute(f"INSERT INTO {D}_tx VALUES (%s, %s)", (100, "grow the log"))
    _, how2 = verify_get(conn, v, 2, ROW2, trusted, "verified_get(2)")
    cur = conn.execute(f"SELECT * FROM verified_get('{TYPES}', %s)", (999,))
    expect_eq(cur.fetchall(), [], "verified_get of a missing key")
    return f"({how1}; then {how2})"


# ---------------------------------------------------------------------------------------------
# psycopg particulars
# ---------------------------------------------------------------------------------------------

def check_prepared(state):
    conn = connect()
    try:
        conn.prepared_max = 3
        conn.execute(f"CREATE TABLE {D}_prep (id integer PRIMARY KEY, a text)")
        conn.execute(f"INSERT INTO {D}_prep VALUES (%s, %s), (%s, %s)", (1, "one", 2, "two"))
        q = f"SELECT * FROM {D}_prep WHERE id = %s"
        for i in (1, 2, 1, 2):
            expect_eq(conn.execute(q, (i,)).fetchone()[1], ["one", "two"][i - 1], f"prepared {q} ({i})")
        # More distinct statements than prepared_max: psycopg sends DEALLOCATE for the oldest.
        for k in range(8):
            expect_eq(conn.execute(f"SELECT %s::int + {k}", (1,)).fetchone()[0], 1 + k, f"statement {k}")
        expect_eq(conn.execute(q, (2,)).fetchone()[1], "two", "re-prepared after DEALLOCATE")
        # After a DROP psycopg sends DEALLOCATE ALL; the same SQL then has a new result shape.
        conn.execute(f"DROP TABLE {D}_prep")
        conn.execute(f"CREATE TABLE {D}_prep (id integer PRIMARY KEY, a integer, b text)")
        conn.execute(f"INSERT INTO {D}_prep VALUES (%s, %s, %s)", (1, 10, "ten"))
        expect_eq(conn.execute(q, (1,)).fetchone(), (1, 10, "ten"), "the same SQL after DROP and CREATE")
    finally:
        conn.close()


def check_pipeline(state):
    conn = state["conn"]
    conn.execute(f"CREATE TABLE {D}_pipe (id integer PRIMARY KEY, t text, n numeric, ts timestamptz)")
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    with conn.pipeline() as p:
        for i in range(1, 11):
            conn.execute(f"INSERT INTO {D}_pipe VALUES (%s, %s, %s, %s)",
                         (i, f"p{i}", Decimal(i) / 4, t0 + timedelta(hours=i)))
        c1 = conn.execute(f"SELECT t, n, ts FROM {D}_pipe WHERE id = %s", (7,))
        c2 = conn.cursor(binary=True)
        c2.execute(f"SELECT count(*), sum(n) FROM {D}_pipe WHERE id > %s", (5,))
        p.sync()
        expect_eq(c1.fetchone(), ("p7", Decimal("1.75"), t0 + timedelta(hours=7)), "pipelined SELECT")
        expect_eq(c2.fetchone(), (5, Decimal("10.00")), "pipelined binary SELECT")
    # An error inside a pipeline: the statements of its implicit transaction (up to the Sync) are
    # undone, the ones after the error are skipped, the error has its SQLSTATE.
    try:
        with conn.pipeline():
            conn.execute(f"INSERT INTO {D}_pipe (id, t) VALUES (%s, %s)", (20, "before the error"))
            conn.execute(f"INSERT INTO {D}_pipe (id, t) VALUES (%s, %s)", (3, "duplicate"))
            conn.execute(f"INSERT INTO {D}_pipe (id, t) VALUES (%s, %s)", (21, "after the error"))
    except errors.UniqueViolation as e:
        expect_eq(e.sqlstate, "23505", "SQLSTATE of the error in the pipeline")
    else:
        fail("pipeline: expected UniqueViolation (23505) from the duplicate insert")
    expect_usable(conn, "after the pipeline error")
    ids = [r[0] for r in conn.execute(f"SELECT id FROM {D}_pipe WHERE id >= %s ORDER BY id", (20,))]
    expect_eq(ids, [], "rows of the failed pipeline's implicit transaction")
    # Errors in separate sync segments: the first segment is committed.
    try:
        with conn.pipeline() as p:
            conn.execute(f"INSERT INTO {D}_pipe (id, t) VALUES (%s, %s)", (30, "own segment"))
            p.sync()
            conn.execute("SELECT 1 / %s", (0,))
    except errors.DivisionByZero:
        pass
    else:
        fail("pipeline: expected DivisionByZero (22012)")
    ids = [r[0] for r in conn.execute(f"SELECT id FROM {D}_pipe WHERE id >= %s ORDER BY id", (20,))]
    expect_eq(ids, [30], "rows after an error in a later sync segment")
    # A pipeline inside a transaction block, and the connection still works in a pipeline afterwards.
    with conn.transaction(), conn.pipeline():
        conn.execute(f"UPDATE {D}_pipe SET t = %s WHERE id = %s", ("updated", 1))
        cur = conn.execute(f"SELECT t FROM {D}_pipe WHERE id = %s", (1,))
    expect_eq(cur.fetchone(), ("updated",), "pipeline in a transaction")


def check_executemany(state):
    conn = state["conn"]
    conn.execute(f"CREATE TABLE {D}_many (id integer PRIMARY KEY, t text, n numeric(10,2), u uuid)")
    cur = conn.cursor()
    rows = [(i, f"m{i}", Decimal(i) / 4, uuid.UUID(int=i)) for i in range(1, 101)]
    cur.executemany(f"INSERT INTO {D}_many VALUES (%s, %s, %s, %s)", rows)
    expect_eq(cur.rowcount, 100, "executemany rowcount")
    expect_eq(conn.execute(f"SELECT count(*), sum(n) FROM {D}_many").fetchone(), (100, Decimal("1262.50")),
              "count and sum after executemany")
    cur.executemany(f"INSERT INTO {D}_many (id, t) VALUES (%s, %s) RETURNING id * 2, t",
                    [(i, f"r{i}") for i in range(101, 106)], returning=True)
    got = []
    while True:
        got.append(cur.fetchone())
        if not cur.nextset():
            break
    expect_eq(got, [(i * 2, f"r{i}") for i in range(101, 106)], "executemany(returning=True) results")
    expect_sqlstate("23505", "executemany with a duplicate key", cur.executemany,
                    f"INSERT INTO {D}_many (id, t) VALUES (%s, %s)", [(200, "a"), (50, "dup"), (201, "b")])
    expect_usable(conn, "executemany error")
    expect_eq(conn.execute(f"SELECT count(*) FROM {D}_many").fetchone()[0], 105,
              "rows after the failed executemany")


def check_copy(state):
    conn = state["conn"]
    conn.execute(f"CREATE TABLE {D}_copy (id integer PRIMARY KEY, t text, n numeric(8,2), "
                 "ts timestamptz, ai integer[], bin bytea)")
    t0 = datetime(2024, 2, 29, 13, 45, 56, 123456, tzinfo=timezone.utc)
    rows = [
        (1, "plain", Decimal("1.50"), t0, [1, 2], b"\x00\x01"),
        (2, "tab\there, newline\nhere, backslash \\ and ✓", Decimal("-2.25"), t0 + timedelta(days=1),
         [None], b"\\x"),
        (3, None, None, None, None, None),
        (4, "\\N is not null", Decimal("0.00"), t0, [], b""),
    ]
    cur = conn.cursor()
    with cur.copy(f"COPY {D}_copy (id, t, n, ts, ai, bin) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    expect_eq(cur.rowcount, 4, "COPY FROM STDIN (write_row) row count")
    # Raw text-format data, with escapes, written in two chunks.
    with cur.copy(f"COPY {D}_copy (id, t, n) FROM STDIN") as copy:
        copy.write("5\tr\\u00e9sum\\303\\251\t3\n6\t")
        copy.write("\\N\t\\N\n")
    expect_eq(cur.rowcount, 2, "COPY FROM STDIN (raw data) row count")
    expect_eq(conn.execute(f"SELECT t FROM {D}_copy WHERE id = %s", (5,)).fetchone()[0], "ru00e9sumé",
              "a text COPY value with escapes")
    # COPY TO STDOUT, rows parsed by psycopg.
    got = []
    with cur.copy(f"COPY (SELECT id, t, n, ts, ai, bin FROM {D}_copy WHERE id <= 4 ORDER BY id) TO STDOUT") as copy:
        copy.set_types(["int4", "text", "numeric", "timestamptz", "int4[]", "bytea"])
        got = list(copy.rows())
    expect_eq(len(got), 4, "COPY TO STDOUT row count")
    for g, w in zip(got, rows):
        expect_eq(g, w, f"COPY TO STDOUT row {w[0]}")
    # COPY TO STDOUT as raw bytes, CSV.
    data = b""
    with cur.copy(f"COPY {D}_copy (id, t, n) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
        for chunk in copy:
            data += bytes(chunk)
    want = ('id,t,n\n1,plain,1.50\n2,"tab\there, newline\nhere, backslash \\ and ✓",-2.25\n3,,\n'
            '4,\\N is not null,0.00\n5,ru00e9sumé,3.00\n6,,\n').encode()
    expect_eq(data, want, "COPY TO STDOUT (FORMAT csv, HEADER) bytes")
    expect_eq(cur.rowcount, 6, "COPY TO STDOUT row count (tag)")
    # A bad value: 22P02, nothing written, the connection stays usable.
    def bad_copy():
        with cur.copy(f"COPY {D}_copy (id, t) FROM STDIN") as copy:
            copy.write("7\tfine\nnot-a-number\tbad\n")
    expect_sqlstate("22P02", "COPY FROM STDIN with a bad integer", bad_copy)
    expect_usable(conn, "failed COPY")
    expect_eq(conn.execute(f"SELECT count(*) FROM {D}_copy").fetchone()[0], 6, "rows after the failed COPY")


CHECKS = [
    ("connect (SCRAM-SHA-256, prepare_threshold=0)", check_connect),
    ("wrong password is 28P01", check_wrong_password),
    ("create table", check_create),
    ("write every type with bound parameters (auto, text and binary)", check_write),
    ("read every type back (text and binary results)", check_read),
    ("transactions (rollback, commit, 25P02, savepoint)", check_transactions),
    ("errors carry their SQLSTATE (23505 42P01 42601 22012 22001)", check_errors),
    ("verified_get proof checked with rfc9162.py", check_verification),
    ("result metadata (type OIDs, typmods, TypeInfo)", check_metadata),
    ("prepared statement cache (DEALLOCATE, DEALLOCATE ALL)", check_prepared),
    ("pipeline mode", check_pipeline),
    ("executemany", check_executemany),
    ("COPY FROM STDIN / TO STDOUT (text, csv)", check_copy),
]


def main():
    print(f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__} implementation, libpq {psycopg.pq.version()})")
    state = {}
    for name, fn in CHECKS:
        try:
            note = fn(state)
        except CheckFailed as e:
            print(f"FAIL {name}: {e}")
            return 1
        except Exception as e:
            print(f"FAIL {name}: unexpected {type(e).__name__}: {e}")
            traceback.print_exc()
            return 1
        print(f"ok {name}" + (f" {note}" if note else ""))
    state["conn"].close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
