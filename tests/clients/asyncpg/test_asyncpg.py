#!/usr/bin/env python3
"""vouchdb driver compatibility: asyncpg (tests/clients/README.md is the contract).

asyncpg speaks only the extended protocol, prepares every statement (named, cached) and asks for
binary results for every type it has a binary codec for. For a type OID it has no codec for
(`integer[]`, `int2vector`, …) it runs its recursive `pg_type` introspection query first, and
`set_type_codec` looks the type up by name (TYPE_BY_NAME). Values are asyncpg's native Python
types: int, float, Decimal, str, bytes, naive and aware datetime, date, UUID, lists; jsonb is a JSON
string until a codec is set.

Beyond the contract, asyncpg particulars:
- type introspection: the types of `integer[]` and `text[]` columns, `int2vector` (`pg_index.indkey`),
  a `regclass` parameter (asyncpg sends and reads reg* types as text), `set_type_codec` for jsonb
  (json.dumps / json.loads, text format) and numeric (text format), so results mix text and binary;
- `conn.prepare()` statements reused with different arguments, their parameter and attribute types,
  `PreparedStatement.executemany`, and a cursor over a portal fetched in pieces (PortalSuspended);
- `executemany` (plain, and atomic on an error);
- `conn.transaction()`: commit, rollback, a nested block (a savepoint) rolled back alone, isolation
  levels, and a read-only transaction refusing a write (25006);
- COPY: `copy_to_table` (text and CSV from a file object), `copy_from_table` (text) and
  `copy_from_query` with an argument (asyncpg inlines it with `quote_literal`), CSV; and a bad value
  failing with 22P02. `copy_records_to_table` is not used: it is binary COPY, which vouchdb does not
  support (docs/SQL.md, COPY: `FORMAT binary` is 0A000).

Environment: the libpq variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (asyncpg reads them);
VOUCHDB_VERIFIER, the path of tests/verifier/rfc9162.py. For a run against PostgreSQL:
VOUCHDB_SKIP_VERIFY=1 skips the vouchdb-only verification functions, VOUCHDB_SKIP_WRONG_PASSWORD=1 the
wrong-password check (for a server with trust authentication).
"""

import asyncio
import getpass
import io
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import rowproof  # noqa: E402  (tests/clients/rowproof.py)
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
from asyncpg import exceptions as exc

D = "asyncpg"  # table-name prefix
TYPES = f"{D}_types"
SKIP_VERIFY = os.environ.get("VOUCHDB_SKIP_VERIFY") == "1"
SKIP_WRONG_PASSWORD = os.environ.get("VOUCHDB_SKIP_WRONG_PASSWORD") == "1"

COLUMNS = ["id", "b", "i2", "i4", "i8", "f4", "f8", "n", "t", "vc", "bin", "ts", "tstz", "d", "u", "j",
           "ai", "ta"]
# PostgreSQL 15's type OIDs and names for the columns above.
OIDS = {"id": 20, "b": 16, "i2": 21, "i4": 23, "i8": 20, "f4": 700, "f8": 701, "n": 1700, "t": 25,
        "vc": 1043, "bin": 17, "ts": 1114, "tstz": 1184, "d": 1082, "u": 2950, "j": 3802, "ai": 1007,
        "ta": 1009}
TYPE_NAMES = {"id": "int8", "b": "bool", "i2": "int2", "i4": "int4", "i8": "int8", "f4": "float4",
              "f8": "float8", "n": "numeric", "t": "text", "vc": "varchar", "bin": "bytea", "ts": "timestamp",
              "tstz": "timestamptz", "d": "date", "u": "uuid", "j": "jsonb", "ai": "int4[]", "ta": "text[]"}

J = {"a": [1, 2, {"b": None}], "c": "x"}
J_TEXT = '{"a": [1, 2, {"b": null}], "c": "x"}'  # how PostgreSQL prints this jsonb value
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
    "j": J_TEXT,
    "ai": [1, None, 3],
    "ta": ["a", "b c", None],
}
ROW2 = {c: None for c in COLUMNS} | {"id": 2}


class CheckFailed(Exception):
    pass


def fail(msg):
    raise CheckFailed(msg)


def expect_eq(got, want, what):
    if got != want or (want is not None and got is not None and not isinstance(got, type(want))):
        fail(f"{what}: expected {want!r} ({type(want).__name__}), got {got!r} ({type(got).__name__})")


async def expect_sqlstate(code, what, coro, exc_class=None):
    """Await coro, which must raise a PostgresError with SQLSTATE `code`; return the error."""
    try:
        await coro
    except asyncpg.PostgresError as e:
        if e.sqlstate != code:
            fail(f"{what}: expected SQLSTATE {code}, got {e.sqlstate} ({type(e).__name__}: {e})")
        if exc_class is not None and not isinstance(e, exc_class):
            fail(f"{what}: expected {exc_class.__name__}, got {type(e).__name__}")
        return e
    fail(f"{what}: expected an error with SQLSTATE {code}, the statement succeeded")


async def expect_usable(conn, what):
    try:
        got = await conn.fetchval("SELECT 41 + $1::int", 1)
    except asyncpg.PostgresError as e:
        fail(f"{what}: the connection is not usable afterwards: {e.sqlstate} {e}")
    expect_eq(got, 42, f"{what}: SELECT 41 + 1 afterwards")


def compare_row(got, want: dict, what: str, json_decoded=False):
    for col in COLUMNS:
        g, w = got[col], want[col]
        if w is None:
            expect_eq(g, None, f"{what}: column {col}")
        elif col == "tstz":
            if not isinstance(g, datetime) or g.tzinfo is None:
                fail(f"{what}: column tstz: expected an aware datetime, got {g!r}")
            if g != w:
                fail(f"{what}: column tstz: expected the instant {w.astimezone(timezone.utc)}, "
                     f"got {g!r} = {g.astimezone(timezone.utc)}")
        elif col == "ts":
            if not isinstance(g, datetime) or g.tzinfo is not None:
                fail(f"{what}: column ts: expected a naive datetime, got {g!r}")
            expect_eq(g, w, f"{what}: column ts")
        elif col == "u":
            # asyncpg returns its own UUID class (a uuid.UUID).
            if not isinstance(g, uuid.UUID) or uuid.UUID(str(g)) != w:
                fail(f"{what}: column u: expected {w}, got {g!r}")
        elif col == "j":
            expect_eq(g, J if json_decoded else J_TEXT, f"{what}: column j")
        else:
            expect_eq(g, w, f"{what}: column {col}")
            if col == "n" and str(g) != str(w):
                fail(f"{what}: column n: expected {w} with scale 3, got {g}")


# ---------------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------------

async def check_connect(state):
    conn = await asyncpg.connect()
    state["conn"] = conn
    v = conn.get_server_version()
    if (v.major, v.minor) < (15, 0):
        fail(f"server_version {conn.get_settings().server_version} is below 15")
    await expect_usable(conn, "connect")


async def check_wrong_password(state):
    if SKIP_WRONG_PASSWORD:
        return "skipped (VOUCHDB_SKIP_WRONG_PASSWORD=1)"
    # asyncpg reports protocol trouble (a message it does not expect) to the event loop's handler.
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        e = await expect_sqlstate("28P01", "wrong password",
                                  asyncpg.connect(password=os.environ.get("PGPASSWORD", "") + "-wrong"),
                                  exc.InvalidPasswordError)
        await asyncio.sleep(0.2)
    finally:
        loop.set_exception_handler(None)
    want = f'password authentication failed for user "{os.environ.get("PGUSER") or getpass.getuser()}"'
    expect_eq(str(e), want, "wrong password: the message")
    if reported:
        c = reported[0]
        fail(f"wrong password: asyncpg reported a protocol error after the authentication failure: "
             f"{c.get('message')}: {c.get('exception')!r}")


async def check_create(state):
    conn = state["conn"]
    for t in (TYPES, f"{D}_tx", f"{D}_many", f"{D}_copy", f"{D}_cursor"):
        await conn.execute(f'DROP TABLE IF EXISTS "{t}"')
    await conn.execute(f"""CREATE TABLE {TYPES} (
        id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
        f8 double precision, n numeric(12,3), t text, vc varchar(20), bin bytea, ts timestamp,
        tstz timestamptz, d date, u uuid, j jsonb, ai integer[], ta text[])""")
    expect_eq(await conn.fetchval(f"SELECT count(*) FROM {TYPES}"), 0, "rows in the new table")


INSERT = f"INSERT INTO {TYPES} ({', '.join(COLUMNS)}) VALUES ({', '.join(f'${i}' for i in range(1, 19))})"
SELECT = f"SELECT {', '.join(COLUMNS)} FROM {TYPES} WHERE id = $1"


async def check_write(state):
    conn = state["conn"]
    for row in (ROW1, ROW2):
        status = await conn.execute(INSERT, *[row[c] for c in COLUMNS])
        expect_eq(status, "INSERT 0 1", f"status of the INSERT of row {row['id']}")


async def check_read(state):
    conn = state["conn"]
    compare_row(await conn.fetchrow(SELECT, 1), ROW1, "row 1")
    compare_row(await conn.fetchrow(SELECT, 2), ROW2, "row 2")
    # A parameter of every type in a WHERE.
    ids = await conn.fetch(
        f"SELECT id FROM {TYPES} WHERE b = $1 AND i2 = $2 AND i4 = $3 AND i8 = $4 AND f4 = $5 AND f8 = $6 "
        "AND n = $7 AND t = $8 AND vc = $9 AND bin = $10 AND ts = $11 AND tstz = $12 AND d = $13 AND u = $14 "
        "AND j = $15 AND ai = $16 AND ta = $17",
        *[ROW1[c] for c in COLUMNS[1:]])
    expect_eq([r["id"] for r in ids], [1], "ids matched by every value as a parameter")


async def check_metadata(state):
    conn = state["conn"]
    stmt = await conn.prepare(SELECT)
    attrs = stmt.get_attributes()
    expect_eq([a.name for a in attrs], COLUMNS, "column names")
    for a in attrs:
        expect_eq((a.type.oid, a.type.name), (OIDS[a.name], TYPE_NAMES[a.name]), f"type of column {a.name}")
    ai = next(a for a in attrs if a.name == "ai")
    expect_eq((ai.type.kind, ai.type.schema), ("array", "pg_catalog"), "kind and schema of integer[]")
    params = stmt.get_parameters()
    expect_eq([(p.oid, p.name) for p in params], [(20, "int8")], "parameter types of SELECT … WHERE id = $1")
    ins = await conn.prepare(INSERT)
    expect_eq([p.oid for p in ins.get_parameters()], [OIDS[c] for c in COLUMNS], "parameter types of the INSERT")


async def check_transactions(state):
    conn = state["conn"]
    await conn.execute(f"CREATE TABLE {D}_tx (id integer PRIMARY KEY, t text)")

    class Rollback(Exception):
        pass

    try:
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 1, "rolled back")
            raise Rollback
    except Rollback:
        pass
    expect_eq(await conn.fetchval(f"SELECT count(*) FROM {D}_tx WHERE id = $1", 1), 0,
              "rows after a rolled-back insert")
    async with conn.transaction():
        await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 2, "committed")
    expect_eq(await conn.fetchval(f"SELECT t FROM {D}_tx WHERE id = $1", 2), "committed", "a committed insert")
    # An error inside a transaction: the next statement is 25P02 until ROLLBACK.
    tr = conn.transaction()
    await tr.start()
    await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 3, "then an error")
    await expect_sqlstate("22012", "division by zero in a transaction", conn.fetchval("SELECT 1 / $1::int", 0))
    await expect_sqlstate("25P02", "a statement after an error in a transaction",
                          conn.fetchval("SELECT $1::int", 1), exc.InFailedSQLTransactionError)
    await tr.rollback()
    expect_eq(conn.is_in_transaction(), False, "in a transaction after ROLLBACK")
    expect_eq(await conn.fetchval(f"SELECT count(*) FROM {D}_tx WHERE id = $1", 3), 0,
              "the aborted transaction's insert")
    # Nested blocks are savepoints: the inner one rolls back alone.
    async with conn.transaction():
        await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 4, "outer")
        try:
            async with conn.transaction():
                await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 5, "inner")
                await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 4, "duplicate")
        except exc.UniqueViolationError:
            pass
        else:
            fail("nested transaction: expected UniqueViolationError")
        async with conn.transaction():
            await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 6, "inner, released")
        await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 7, "after the savepoints")
    ids = [r["id"] for r in await conn.fetch(f"SELECT id FROM {D}_tx ORDER BY id")]
    expect_eq(ids, [2, 4, 6, 7], "rows after nested transactions")
    # Isolation levels and a read-only transaction.
    for level, shown in (("serializable", "serializable"), ("repeatable_read", "repeatable read"),
                         ("read_committed", "read committed")):
        async with conn.transaction(isolation=level):
            expect_eq(await conn.fetchval("SHOW transaction_isolation"), shown, f"isolation {level}")
            await conn.execute(f"UPDATE {D}_tx SET t = $1 WHERE id = $2", level, 2)
    expect_eq(await conn.fetchval(f"SELECT t FROM {D}_tx WHERE id = $1", 2), "read_committed",
              "value after the isolation-level transactions")
    async with conn.transaction(readonly=True):
        expect_eq(await conn.fetchval(f"SELECT count(*) FROM {D}_tx"), 4, "a read in a read-only transaction")
    try:
        async with conn.transaction(readonly=True):
            await expect_sqlstate("25006", "a write in a read-only transaction",
                                  conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 8, "read only"))
            raise Rollback
    except Rollback:
        pass
    await expect_usable(conn, "read-only transaction")


async def check_errors(state):
    conn = state["conn"]
    for code, cls, what, q, args in [
        ("23505", exc.UniqueViolationError, "duplicate key", f"INSERT INTO {TYPES} (id) VALUES ($1)", (1,)),
        ("42P01", exc.UndefinedTableError, "unknown table", f"SELECT * FROM {D}_no_such_table WHERE id = $1", (1,)),
        ("42601", exc.PostgresSyntaxError, "syntax error", "SELEC $1", (1,)),
        ("22012", exc.DivisionByZeroError, "division by zero through a parameter", "SELECT 1 / $1::int", (0,)),
        ("22001", exc.StringDataRightTruncationError, "value too long for varchar(20)",
         f"INSERT INTO {TYPES} (id, vc) VALUES ($1, $2)", (10, "x" * 21)),
    ]:
        await expect_sqlstate(code, what, conn.execute(q, *args), cls)
        await expect_usable(conn, what)
        # The same through a statement prepared first (the error comes from Execute, or from Parse).
        async def prepared():
            stmt = await conn.prepare(q)
            await stmt.fetch(*args)
        await expect_sqlstate(code, f"{what} (conn.prepare)", prepared(), cls)
        await expect_usable(conn, what)
    expect_eq(await conn.fetchval(f"SELECT count(*) FROM {TYPES} WHERE id = $1", 10), 0,
              "rows written by the failed statements")


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------

def load_verifier():
    return rowproof.load_verifier(fail)


async def verify_get(conn, v, key, want, trusted, what):
    """verified_get(TYPES, key): compare the values, check the proofs with the verifier, and tie the
    tree to the `trusted` checkpoint (same size: same root; otherwise a consistency proof)."""
    stmt = await conn.prepare(f"SELECT * FROM verified_get('{TYPES}', $1)")
    names = [a.name for a in stmt.get_attributes()]
    expect_eq(names[:len(COLUMNS)], COLUMNS, f"{what}: the row's columns come first")
    rows = await stmt.fetch(key)
    if len(rows) != 1:
        fail(f"{what}: expected 1 row, got {len(rows)}")
    r = rows[0]
    compare_row(r, want, what)
    tx, size, root, leaf = rowproof.check_row_proof(v, r, what, fail)
    inc = await conn.fetchrow("SELECT * FROM inclusion_proof($1, $2)", tx, size)
    expect_eq((inc["leaf_index"], inc["tree_size"], inc["root"], list(inc["proof"])),
              (tx - 1, size, r["_root"], list(r["_tx_proof"])), f"{what}: inclusion_proof({tx}, {size})")
    expect_eq(bytes.fromhex(inc["leaf_hash"]), v.leaf_hash(leaf), f"{what}: inclusion_proof leaf_hash")
    old_size, old_root = trusted["tree_size"], bytes.fromhex(trusted["root_hash"])
    if size == old_size:
        expect_eq(root, old_root, f"{what}: root at the checkpoint's tree size {size}")
        tied = "same tree as the checkpoint"
    elif size > old_size:
        c = await conn.fetchrow("SELECT * FROM consistency_proof($1, $2)", old_size, size)
        expect_eq((c["old_root"], c["new_root"]), (trusted["root_hash"], r["_root"]),
                  f"{what}: consistency_proof({old_size}, {size}) roots")
        proof = v.parse_hash_list(",".join(c["proof"]), "consistency proof")
        if not v.verify_consistency(old_size, size, old_root, root, proof):
            fail(f"{what}: the tree of size {old_size} is not proven to be a prefix of size {size}")
        tied = f"consistent with the checkpoint of size {old_size}"
    else:
        fail(f"{what}: the proof's tree ({size}) is smaller than the trusted checkpoint's ({old_size})")
    return {"tree_size": size, "root_hash": r["_root"]}, tied


async def check_verification(state):
    if SKIP_VERIFY:
        return "skipped (VOUCHDB_SKIP_VERIFY=1)"
    conn = state["conn"]
    v = load_verifier()
    cp = await conn.fetchrow("SELECT * FROM vouch_checkpoint()")
    for col in ("tree_size", "root_hash", "checkpoint", "signature", "public_key", "signed_note"):
        if col not in cp.keys():
            fail(f"vouch_checkpoint(): no column {col}")
    if cp["tree_size"] < 1 or len(bytes.fromhex(cp["root_hash"])) != 32:
        fail(f"vouch_checkpoint(): tree_size {cp['tree_size']}, root_hash {cp['root_hash']!r}")
    body = cp["checkpoint"].split("\n")
    if len(body) != 4 or body[1] != str(cp["tree_size"]):
        fail(f"vouch_checkpoint(): checkpoint body {cp['checkpoint']!r} does not name size {cp['tree_size']}")
    trusted, how1 = await verify_get(conn, v, 1, ROW1, dict(cp), "verified_get(1)")
    await conn.execute(f"INSERT INTO {D}_tx VALUES ($1, $2)", 100, "grow the log")
    _, how2 = await verify_get(conn, v, 2, ROW2, trusted, "verified_get(2)")
    expect_eq(await conn.fetch(f"SELECT * FROM verified_get('{TYPES}', $1)", 999), [],
              "verified_get of a missing key")
    return f"({how1}; then {how2})"


# ---------------------------------------------------------------------------------------------
# asyncpg particulars
# ---------------------------------------------------------------------------------------------

async def check_introspection(state):
    # A fresh connection: no type has been introspected on it yet.
    conn = await asyncpg.connect()
    try:
        # integer[] has no builtin codec: asyncpg runs its introspection query before decoding.
        expect_eq(await conn.fetchval(f"SELECT ai FROM {TYPES} WHERE id = $1", 1), [1, None, 3],
                  "integer[] after introspection")
        expect_eq(await conn.fetchval("SELECT $1::integer[]", [4, None]), [4, None], "integer[] parameter")
        # int2vector (pg_index.indkey), looked up by a regclass parameter (a text-format codec).
        stmt = await conn.prepare("SELECT indkey, indrelid::regclass AS rel FROM pg_index "
                                  "WHERE indrelid = $1::regclass AND indisprimary")
        expect_eq([(a.name, a.type.name) for a in stmt.get_attributes()],
                  [("indkey", "int2vector[]"), ("rel", "regclass")],
                  "pg_index attribute types (asyncpg names int2vector, an array type, int2vector[])")
        row = await stmt.fetchrow(TYPES)
        if row is None:
            fail(f"no primary-key index of {TYPES} in pg_index")
        expect_eq(list(row["indkey"]), [1], "indkey of the primary key (int2vector)")
        expect_eq(row["rel"], TYPES, "indrelid::regclass (text format)")
        # set_type_codec looks the type up by name (TYPE_BY_NAME); both are text-format codecs, so
        # these results mix text and binary columns.
        await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads,
                                  format="text")
        await conn.set_type_codec("numeric", schema="pg_catalog", encoder=str, decoder=Decimal,
                                  format="text")
        compare_row(await conn.fetchrow(SELECT, 1), ROW1, "row 1 with jsonb and numeric text codecs",
                    json_decoded=True)
        expect_eq(await conn.fetchval(f"SELECT id FROM {TYPES} WHERE j = $1 AND n = $2", J, ROW1["n"]), 1,
                  "jsonb and numeric parameters through the text codecs")
        await conn.reset_type_codec("jsonb", schema="pg_catalog")
        expect_eq(await conn.fetchval(f"SELECT j FROM {TYPES} WHERE id = $1", 1), J_TEXT,
                  "jsonb after reset_type_codec")
    finally:
        await conn.close()


async def check_prepared(state):
    conn = state["conn"]
    await conn.execute(f"CREATE TABLE {D}_cursor (id integer PRIMARY KEY, t text, n numeric)")
    stmt = await conn.prepare(f"INSERT INTO {D}_cursor VALUES ($1, $2, $3)")
    await stmt.executemany([(i, f"c{i}", Decimal(i) / 8) for i in range(1, 51)])
    for i in range(51, 61):
        await stmt.fetch(i, f"c{i}", Decimal(i) / 8)
    sel = await conn.prepare(f"SELECT t, n FROM {D}_cursor WHERE id = $1")
    for i in (3, 60, 3, 17):
        expect_eq(tuple(await sel.fetchrow(i)), (f"c{i}", Decimal(i) / 8), f"prepared SELECT reused ({i})")
    expect_eq(await sel.fetchval(999), None, "prepared SELECT with no row")
    expect_eq(await conn.fetchval(f"SELECT count(*) FROM {D}_cursor"), 60, "rows inserted through prepared statements")
    # A cursor over a portal, fetched in pieces (Execute with a row limit, PortalSuspended).
    q = await conn.prepare(f"SELECT id FROM {D}_cursor WHERE id > $1 ORDER BY id")
    async with conn.transaction():
        got = [r["id"] async for r in q.cursor(10, prefetch=7)]
        expect_eq(got, list(range(11, 61)), "rows of a cursor with prefetch=7")
        cur = await q.cursor(40)
        expect_eq([r["id"] for r in await cur.fetch(5)], [41, 42, 43, 44, 45], "cursor.fetch(5)")
        expect_eq((await cur.fetchrow())["id"], 46, "cursor.fetchrow()")
        expect_eq([r["id"] for r in await cur.fetch(100)], list(range(47, 61)), "cursor.fetch(100)")


async def check_executemany(state):
    conn = state["conn"]
    await conn.execute(f"CREATE TABLE {D}_many (id integer PRIMARY KEY, t text, n numeric(10,2), u uuid, "
                       "ts timestamptz)")
    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    rows = [(i, f"m{i}", Decimal(i) / 4, uuid.UUID(int=i), t0 + timedelta(minutes=i)) for i in range(1, 101)]
    await conn.executemany(f"INSERT INTO {D}_many VALUES ($1, $2, $3, $4, $5)", rows)
    expect_eq(tuple(await conn.fetchrow(f"SELECT count(*), sum(n), max(ts) FROM {D}_many")),
              (100, Decimal("1262.50"), t0 + timedelta(minutes=100)), "count, sum, max after executemany")
    # executemany is atomic: a duplicate key in the batch writes none of its rows.
    await expect_sqlstate("23505", "executemany with a duplicate key",
                          conn.executemany(f"INSERT INTO {D}_many (id, t) VALUES ($1, $2)",
                                           [(200, "a"), (50, "dup"), (201, "b")]),
                          exc.UniqueViolationError)
    await expect_usable(conn, "executemany error")
    expect_eq(await conn.fetchval(f"SELECT count(*) FROM {D}_many"), 100, "rows after the failed executemany")


async def check_copy(state):
    conn = state["conn"]
    await conn.execute(f"CREATE TABLE {D}_copy (id integer PRIMARY KEY, t text, n numeric(8,2), "
                       "ts timestamptz, ai integer[])")
    text_data = ("1\tplain\t1.5\t2024-02-29 13:45:56.123456+00\t{1,2}\n"
                 "2\ttab\\there, newline\\nhere, backslash \\\\ and ✓\t-2.25\t2024-03-01 13:45:56.123456+00\t{NULL}\n"
                 "3\t\\N\t\\N\t\\N\t\\N\n")
    status = await conn.copy_to_table(f"{D}_copy", source=io.BytesIO(text_data.encode()))
    expect_eq(status, "COPY 3", "copy_to_table (text) status")
    csv_data = 'id,t,n\n4,"quoted, with ""quotes""",0\n5,,7.125\n'
    status = await conn.copy_to_table(f"{D}_copy", source=io.BytesIO(csv_data.encode()), columns=["id", "t", "n"],
                                      format="csv", header=True)
    expect_eq(status, "COPY 2", "copy_to_table (csv) status")
    t0 = datetime(2024, 2, 29, 13, 45, 56, 123456, tzinfo=timezone.utc)
    got = [tuple(r) for r in await conn.fetch(f"SELECT id, t, n, ts, ai FROM {D}_copy ORDER BY id")]
    want = [(1, "plain", Decimal("1.50"), t0, [1, 2]),
            (2, "tab\there, newline\nhere, backslash \\ and ✓", Decimal("-2.25"), t0 + timedelta(days=1), [None]),
            (3, None, None, None, None),
            (4, 'quoted, with "quotes"', Decimal("0.00"), None, None),
            (5, None, Decimal("7.13"), None, None)]
    expect_eq(got, want, "rows loaded by copy_to_table")
    out = io.BytesIO()
    status = await conn.copy_from_table(f"{D}_copy", output=out, columns=["id", "t", "n"])
    expect_eq(status, "COPY 5", "copy_from_table status")
    lines = sorted(out.getvalue().decode().splitlines())
    expect_eq(lines, sorted(["1\tplain\t1.50", "2\ttab\\there, newline\\nhere, backslash \\\\ and ✓\t-2.25",
                             "3\t\\N\t\\N", '4\tquoted, with "quotes"\t0.00', "5\t\\N\t7.13"]),
              "copy_from_table (text) lines")
    out = io.BytesIO()
    status = await conn.copy_from_query(f"SELECT id, t, ai FROM {D}_copy WHERE id <= $1 ORDER BY id", 2,
                                        output=out, format="csv", header=True)
    expect_eq(status, "COPY 2", "copy_from_query status")
    expect_eq(out.getvalue().decode(),
              'id,t,ai\n1,plain,"{1,2}"\n2,"tab\there, newline\nhere, backslash \\ and ✓",{NULL}\n',
              "copy_from_query (csv, an argument) output")
    # A bad value: 22P02, nothing written, the connection stays usable.
    await expect_sqlstate("22P02", "copy_to_table with a bad integer",
                          conn.copy_to_table(f"{D}_copy", source=io.BytesIO(b"6\tfine\nnot-a-number\tbad\n"),
                                             columns=["id", "t"]))
    await expect_usable(conn, "failed COPY")
    expect_eq(await conn.fetchval(f"SELECT count(*) FROM {D}_copy"), 5, "rows after the failed COPY")


CHECKS = [
    ("connect (SCRAM-SHA-256)", check_connect),
    ("wrong password is 28P01", check_wrong_password),
    ("create table", check_create),
    ("write every type with bound parameters", check_write),
    ("read every type back (binary results)", check_read),
    ("transactions (rollback, commit, 25P02, savepoints, isolation, read only)", check_transactions),
    ("errors carry their SQLSTATE (23505 42P01 42601 22012 22001)", check_errors),
    ("verified_get proof checked with rfc9162.py", check_verification),
    ("result and parameter types (prepared statement metadata)", check_metadata),
    ("type introspection (integer[], int2vector, regclass, set_type_codec)", check_introspection),
    ("prepared statements reused, cursor over a portal", check_prepared),
    ("executemany", check_executemany),
    ("COPY (copy_to_table, copy_from_table, copy_from_query; text and csv)", check_copy),
]


async def run():
    print(f"asyncpg {asyncpg.__version__}")
    state = {}
    try:
        for name, fn in CHECKS:
            try:
                note = await fn(state)
            except CheckFailed as e:
                print(f"FAIL {name}: {e}")
                return 1
            except Exception as e:
                print(f"FAIL {name}: unexpected {type(e).__name__}: {e}")
                traceback.print_exc()
                return 1
            print(f"ok {name}" + (f" {note}" if note else ""))
    finally:
        if "conn" in state:
            await state["conn"].close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(run()))
