'use strict'
// node-postgres (pg 8.13.1) against vouchdb: the contract of tests/clients/README.md, plus what is
// particular to this driver.
//
// Run: NODE_PATH=/root/.cache/vouchdb-node/node_modules node test.js   (Node 20)
// The connection comes from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (pg reads them itself).
// Prints one `ok <check>` line per check; on the first failure prints `FAIL <check>: …` and exits 1.
//
// Covered, beyond the common contract:
// - parameterised queries (`client.query(text, values)`; pg uses the extended protocol for them, with
//   every parameter's type left unspecified (OID 0), so the server infers it from context), values
//   as pg's own JS types: boolean, number, BigInt, string, Buffer (sent as a *binary* parameter),
//   Date, JS arrays (pg renders them as array literals) and plain objects (pg JSON.stringify's them);
// - named prepared statements (`{name, text, values}`), each reused several times: pg parses a named
//   statement once per connection, so only its first use gets a ParseComplete;
// - results in text (pg's default, with pg-types' text parsers) and in binary (`binary: true`).
//   pg 8.13.1 cannot read binary results itself: pg-protocol decodes every DataRow field as a UTF-8
//   string, so any byte that is not valid UTF-8 is lost before pg-types' binary parsers run (they
//   then return garbage: `SELECT $1::int2` with 1 gives "0\u0001", int8 throws; this is the same on
//   PostgreSQL 15; upstream brianc/node-postgres#3495). The binary checks therefore read the raw
//   DataRow bytes from the connection's socket (WireTap below, a second 'data' listener; the driver is
//   unchanged and still sends the Bind with result format 1) and compare every column, byte for byte,
//   with the PostgreSQL 15 binary encoding computed here; then they decode those raw bytes with
//   pg-types' own binary parsers where pg-types has one (bool, int2, int4, int8, float4, float8,
//   numeric, timestamp, timestamptz, int4[], text[], text) and compare the values. bytea, date, uuid,
//   jsonb and varchar have no pg-types binary parser: they are checked on the raw bytes only (text
//   and varchar also through pg's own result, since valid UTF-8 survives its decoding);
// - pg-types' text parsers for int[], text[] (quotes, backslashes, commas, braces, empty strings, the
//   string 'NULL' against a NULL, non-ASCII) and jsonb (nested, unicode, escapes, scalars);
// - a pg.Pool whose clients insert concurrently (each worker holds its own pooled client, with its own
//   backend, named statements and explicit transactions);
// - BEGIN / COMMIT / ROLLBACK on a pooled client, visibility to the pool's other clients;
// - DatabaseError fields: `code` for every error, and for 23505 what PostgreSQL 15 also sets
//   (`schema`, `table`, `constraint`, `detail`); 42P01's message and `position`;
// - verification: vouch_checkpoint() (body, signature with the key it hands out), verified_get with a
//   bound parameter (values, _tree_size / _root against inclusion_proof(_tx, _tree_size)), and the
//   proofs recomputed here with node's crypto: the tx leaf in the log tree (RFC 9162 §2.1.3.2 at leaf
//   index _tx - 1), the entry in the tx's entries tree (docs/FORMAT.md leaf layout), the checkpoint
//   body, and a consistency proof (RFC 9162 §2.1.4.2) between two checkpoints.
//
// Environment switches for running the same program against PostgreSQL 15:
//   VOUCHDB_SKIP_VERIFY=1  skip the vouchdb-only verification functions;
//   VOUCHDB_SKIP_AUTH=1    skip the SCRAM and wrong-password checks (a PostgreSQL with trust auth).

const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const pg = require('pg')

const P = 'node_postgres' // table prefix
const T = `${P}_types`
const SKIP_VERIFY = process.env.VOUCHDB_SKIP_VERIFY === '1'
const SKIP_AUTH = process.env.VOUCHDB_SKIP_AUTH === '1'

let current = '(setup)'
async function check(name, fn) {
  current = name
  await fn()
  console.log(`ok ${name}`)
}

function fail(err) {
  const msg = err && err.stack ? err.stack : String(err)
  console.error(`FAIL ${current}: ${msg}`)
  if (err && err.code) console.error(`  (SQLSTATE ${err.code}${err.detail ? ', detail: ' + err.detail : ''})`)
  process.exit(1)
}

function eq(actual, expected, what) {
  try {
    assert.deepStrictEqual(actual, expected)
  } catch (e) {
    throw new Error(`${what}: expected ${show(expected)}, got ${show(actual)}`)
  }
}

function show(v) {
  if (Buffer.isBuffer(v)) return `<bytes ${v.toString('hex')}>`
  if (v instanceof Date) return `Date(${isNaN(v) ? 'invalid' : v.toISOString()})`
  if (typeof v === 'bigint') return `${v}n`
  try {
    return JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? `${x}n` : x))
  } catch (_) {
    return String(v)
  }
}

async function expectError(promise, code, what) {
  try {
    await promise
  } catch (err) {
    if (err.code !== code) {
      throw new Error(`${what}: expected SQLSTATE ${code}, got ${err.code} (${err.message})`)
    }
    return err
  }
  throw new Error(`${what}: expected SQLSTATE ${code}, but the statement succeeded`)
}

async function usable(client, what) {
  const r = await client.query('SELECT $1::int + 1 AS v', [41])
  eq(r.rows[0].v, 42, `${what}: the connection is usable afterwards (SELECT $1::int + 1)`)
}

// Raw server messages of one client's socket, for the binary result checks (see the header).
class WireTap {
  constructor(client) {
    this.active = false
    this.buf = Buffer.alloc(0)
    this.msgs = []
    client.connection.stream.on('data', (chunk) => {
      if (!this.active) return
      this.buf = Buffer.concat([this.buf, chunk])
      while (this.buf.length >= 5) {
        const len = this.buf.readUInt32BE(1)
        if (this.buf.length < 1 + len) break
        this.msgs.push({ type: String.fromCharCode(this.buf[0]), body: Buffer.from(this.buf.subarray(5, 1 + len)) })
        this.buf = this.buf.subarray(1 + len)
      }
    })
  }

  // Runs `fn` (one awaited query on this idle client) and returns the server's messages for it.
  async capture(fn) {
    this.buf = Buffer.alloc(0)
    this.msgs = []
    this.active = true
    let result
    try {
      result = await fn()
    } finally {
      this.active = false
    }
    if (this.buf.length) throw new Error(`wire tap: ${this.buf.length} bytes of an incomplete message`)
    return { result, msgs: this.msgs }
  }
}

function dataRows(msgs) {
  return msgs
    .filter((m) => m.type === 'D')
    .map((m) => {
      const n = m.body.readInt16BE(0)
      const fields = []
      let off = 2
      for (let i = 0; i < n; i++) {
        const len = m.body.readInt32BE(off)
        off += 4
        if (len === -1) fields.push(null)
        else {
          fields.push(m.body.subarray(off, off + len))
          off += len
        }
      }
      return fields
    })
}

// ---- PostgreSQL binary encodings (the send functions of PostgreSQL 15) ----
const enc = {
  bool: (v) => Buffer.from([v ? 1 : 0]),
  int2: (v) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b },
  int4: (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b },
  int8: (v) => { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); return b },
  float4: (v) => { const b = Buffer.alloc(4); b.writeFloatBE(v); return b },
  float8: (v) => { const b = Buffer.alloc(8); b.writeDoubleBE(v); return b },
  text: (s) => Buffer.from(s, 'utf8'),
  // numeric_send: ndigits, weight, sign, dscale, then base-10000 digits without leading/trailing zeros.
  numeric: (s) => {
    const neg = s.startsWith('-')
    const [ip, fp = ''] = s.replace(/^[-+]/, '').split('.')
    const dscale = fp.length
    const intPart = ip.replace(/^0+/, '')
    const ipad = intPart.padStart(Math.ceil(intPart.length / 4) * 4, '0')
    const fpad = fp.padEnd(Math.ceil(fp.length / 4) * 4, '0')
    let digits = []
    for (let i = 0; i < ipad.length; i += 4) digits.push(parseInt(ipad.slice(i, i + 4), 10))
    let weight = digits.length - 1
    for (let i = 0; i < fpad.length; i += 4) digits.push(parseInt(fpad.slice(i, i + 4), 10))
    while (digits.length && digits[0] === 0) { digits.shift(); weight-- }
    while (digits.length && digits[digits.length - 1] === 0) digits.pop()
    if (!digits.length) weight = 0
    const b = Buffer.alloc(8 + 2 * digits.length)
    b.writeInt16BE(digits.length, 0)
    b.writeInt16BE(weight, 2)
    b.writeUInt16BE(neg && digits.length ? 0x4000 : 0, 4)
    b.writeInt16BE(dscale, 6)
    digits.forEach((d, i) => b.writeInt16BE(d, 8 + 2 * i))
    return b
  },
  // microseconds since 2000-01-01 00:00:00 (UTC for timestamptz)
  timestamp: (utcMs, extraMicros) => enc.int8(BigInt(utcMs) * 1000n + BigInt(extraMicros) - 946684800000000n),
  date: (utcMs) => enc.int4(Math.round((utcMs - 946684800000) / 86400000)),
  uuid: (s) => Buffer.from(s.replace(/-/g, ''), 'hex'),
  jsonb: (s) => Buffer.concat([Buffer.from([1]), Buffer.from(s, 'utf8')]),
  array: (elemOid, elems) => {
    const parts = []
    const head = Buffer.alloc(20)
    head.writeInt32BE(1, 0) // ndim
    head.writeInt32BE(elems.some((e) => e === null) ? 1 : 0, 4) // has nulls
    head.writeUInt32BE(elemOid, 8)
    head.writeInt32BE(elems.length, 12)
    head.writeInt32BE(1, 16) // lower bound
    parts.push(head)
    for (const e of elems) {
      const len = Buffer.alloc(4)
      len.writeInt32BE(e === null ? -1 : e.length)
      parts.push(len)
      if (e !== null) parts.push(e)
    }
    return Buffer.concat(parts)
  },
}

// ---- the values of the contract ----
const TS_UTC_MS = Date.UTC(2024, 1, 29, 13, 45, 56, 123) // 2024-02-29 13:45:56.123456 (wall clock)
const TSTZ_UTC_MS = Date.UTC(2024, 1, 29, 8, 15, 56, 123) // 2024-02-29 13:45:56.123456+05:30
const D_UTC_MS = Date.UTC(1999, 11, 31)
const JSON_DOC = { a: [1, 2, { b: null }], c: 'x' }
const JSON_TEXT = '{"a": [1, 2, {"b": null}], "c": "x"}' // as PostgreSQL prints jsonb
const UUID = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'
const BYTES = Buffer.from([0x00, 0xff, 0x27, 0x5c])

const COLS = ['id', 'b', 'i2', 'i4', 'i8', 'f4', 'f8', 'n', 't', 'vc', 'bin', 'ts', 'tstz', 'd', 'u', 'j', 'ai', 'ta']
const OIDS = [20, 16, 21, 23, 20, 700, 701, 1700, 25, 1043, 17, 1114, 1184, 1082, 2950, 3802, 1007, 1009]
// Row 1 as pg's JS values. Timestamps are strings: a JS Date has millisecond precision only, and the
// contract's values have microseconds (Date parameters are checked separately).
const ROW1_PARAMS = [
  1, true, -32768, 2147483647, -9223372036854775808n, 1.5, -0.1, '12345.678', 'zoë ✓ "q"', 'varchar',
  BYTES, '2024-02-29 13:45:56.123456', '2024-02-29 13:45:56.123456+05:30', '1999-12-31', UUID, JSON_DOC,
  [1, null, 3], ['a', 'b c', null],
]
// Row 1 as PostgreSQL 15 prints it (session TimeZone UTC, DateStyle ISO, MDY).
const ROW1_TEXT = [
  '1', 't', '-32768', '2147483647', '-9223372036854775808', '1.5', '-0.1', '12345.678', 'zoë ✓ "q"', 'varchar',
  '\\x00ff275c', '2024-02-29 13:45:56.123456', '2024-02-29 08:15:56.123456+00', '1999-12-31', UUID, JSON_TEXT,
  '{1,NULL,3}', '{a,"b c",NULL}',
]
// Row 1 in PostgreSQL 15's binary format.
const ROW1_BINARY = [
  enc.int8(1), enc.bool(true), enc.int2(-32768), enc.int4(2147483647), enc.int8(-9223372036854775808n),
  enc.float4(1.5), enc.float8(-0.1), enc.numeric('12345.678'), enc.text('zoë ✓ "q"'), enc.text('varchar'),
  BYTES, enc.timestamp(TS_UTC_MS, 456), enc.timestamp(TSTZ_UTC_MS, 456), enc.date(D_UTC_MS), enc.uuid(UUID),
  enc.jsonb(JSON_TEXT),
  enc.array(23, [enc.int4(1), null, enc.int4(3)]),
  enc.array(25, [enc.text('a'), enc.text('b c'), null]),
]

// Row 1 as pg's text parsers return it. pg parses timestamp (without time zone) and date as local
// wall-clock time, timestamptz as the instant; int8 and numeric as strings; both lose microseconds.
function checkRow1Parsed(row, what) {
  eq(Object.keys(row), COLS, `${what}: columns`)
  eq(row.id, '1', `${what}: id (int8 → string)`)
  eq(row.b, true, `${what}: b`)
  eq(row.i2, -32768, `${what}: i2`)
  eq(row.i4, 2147483647, `${what}: i4`)
  eq(BigInt(row.i8), -9223372036854775808n, `${what}: i8`)
  eq(row.f4, 1.5, `${what}: f4`)
  eq(row.f8, -0.1, `${what}: f8`)
  eq(row.n, '12345.678', `${what}: n`)
  eq(row.t, 'zoë ✓ "q"', `${what}: t`)
  eq(row.vc, 'varchar', `${what}: vc`)
  eq(row.bin, BYTES, `${what}: bin`)
  eq(row.ts, new Date(2024, 1, 29, 13, 45, 56, 123), `${what}: ts (local wall clock)`)
  eq(row.tstz, new Date(TSTZ_UTC_MS), `${what}: tstz (instant)`)
  eq(row.d, new Date(1999, 11, 31), `${what}: d (local midnight)`)
  eq(row.u, UUID, `${what}: u`)
  eq(row.j, JSON_DOC, `${what}: j`)
  eq(row.ai, [1, null, 3], `${what}: ai`)
  eq(row.ta, ['a', 'b c', null], `${what}: ta`)
}

// A `types` override that hands back each column's text exactly as the server sent it.
const RAW_TEXT = { getTypeParser: () => (v) => v }

// ---- RFC 9162 ----
const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest()
const leafHash = (data) => sha256(Buffer.from([0]), data)
const nodeHash = (l, r) => sha256(Buffer.from([1]), l, r)

// RFC 9162 §2.1.3.2: the root an inclusion proof gives for leaf `index` of a tree of `size`.
function rootFromInclusion(index, size, hash, path) {
  if (index >= size) throw new Error(`leaf index ${index} is not below the tree size ${size}`)
  let fn = index
  let sn = size - 1
  let r = hash
  for (const p of path) {
    if (sn === 0) throw new Error(`the inclusion proof has too many hashes (${path.length})`)
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  if (sn !== 0) throw new Error(`the inclusion proof has too few hashes (${path.length})`)
  return r
}

// RFC 9162 §2.1.4.2: checks a consistency proof between (size1, root1) and (size2, root2).
function verifyConsistency(size1, size2, root1, root2, proof) {
  if (size1 > size2) throw new Error('old size above new size')
  if (size1 === size2) {
    if (proof.length !== 0 || !root1.equals(root2)) throw new Error('equal sizes need an empty proof and equal roots')
    return
  }
  if (size1 === 0) {
    if (proof.length !== 0) throw new Error('a proof from the empty tree must be empty')
    return
  }
  let path = proof.slice()
  if (path.length === 0) throw new Error('empty consistency proof')
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...path] // size1 is a power of two
  let fn = size1 - 1
  let sn = size2 - 1
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  let fr = path[0]
  let sr = path[0]
  for (const c of path.slice(1)) {
    if (sn === 0) throw new Error('consistency proof too long')
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  if (sn !== 0) throw new Error('consistency proof too short')
  if (!fr.equals(root1)) throw new Error(`consistency proof gives old root ${fr.toString('hex')}, expected ${root1.toString('hex')}`)
  if (!sr.equals(root2)) throw new Error(`consistency proof gives new root ${sr.toString('hex')}, expected ${root2.toString('hex')}`)
}

const hex = (s, what) => {
  if (typeof s !== 'string' || !/^([0-9a-f]{2})*$/.test(s)) throw new Error(`${what}: not lowercase hex: ${show(s)}`)
  return Buffer.from(s, 'hex')
}

function connectionConfig(extra) {
  return { ...extra } // pg reads PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE itself
}

async function main() {
  // 1. Connect with SCRAM-SHA-256; a wrong password is 28P01.
  const client = new pg.Client(connectionConfig())
  const sasl = []
  client.connection.on('authenticationSASL', (m) => sasl.push(m.mechanisms))
  client.connection.on('authenticationSASLFinal', () => sasl.push('final'))
  await check('connect', async () => {
    await client.connect()
    await usable(client, 'connect')
  })
  if (!SKIP_AUTH) {
    await check('connect uses SCRAM-SHA-256 (server signature verified by pg)', async () => {
      eq(sasl.length, 2, 'SASL exchange (AuthenticationSASL, AuthenticationSASLFinal)')
      if (!sasl[0].includes('SCRAM-SHA-256')) throw new Error(`mechanisms: expected SCRAM-SHA-256 among ${show(sasl[0])}`)
      eq(sasl[1], 'final', 'AuthenticationSASLFinal')
    })
    await check('wrong password fails with 28P01', async () => {
      const bad = new pg.Client(connectionConfig({ password: 'not-the-' + (process.env.PGPASSWORD || 'password') }))
      const err = await expectError(bad.connect(), '28P01', 'wrong password')
      eq(err.severity, 'FATAL', 'severity')
      eq(err.message, `password authentication failed for user "${process.env.PGUSER}"`, 'message')
      await bad.end().catch(() => {})
    })
  }
  const tap = new WireTap(client)

  // 2. Create the table.
  await check(`create ${T}`, async () => {
    await client.query(`DROP TABLE IF EXISTS ${T}`)
    const r = await client.query(`CREATE TABLE ${T} (
      id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
      f8 double precision, n numeric(12,3), t text, vc varchar(20), bin bytea, ts timestamp,
      tstz timestamptz, d date, u uuid, j jsonb, ai integer[], ta text[])`)
    eq(r.command, 'CREATE', 'command tag')
  })

  // 3. Write every type with bound parameters, through a named prepared statement.
  const insertText = `INSERT INTO ${T} (${COLS.join(', ')}) VALUES (${COLS.map((_, i) => '$' + (i + 1)).join(', ')})`
  const insert = (values) => ({ name: 'node_insert_types', text: insertText, values })
  await check('insert row 1 (every type, bound parameters, named statement)', async () => {
    const { result, msgs } = await tap.capture(() => client.query(insert(ROW1_PARAMS)))
    eq(result.rowCount, 1, 'rowCount')
    eq(result.command, 'INSERT', 'command')
    eq(msgs.filter((m) => m.type === '1').length, 1, 'ParseComplete on first use of the named statement')
  })
  await check('insert row 2 (NULLs, same named statement reused)', async () => {
    const { result, msgs } = await tap.capture(() => client.query(insert([2, ...Array(17).fill(null)])))
    eq(result.rowCount, 1, 'rowCount')
    eq(msgs.filter((m) => m.type === '1').length, 0, 'no Parse on reuse of the named statement')
  })

  // 4. Read back, text and binary.
  const selectText = `SELECT * FROM ${T} WHERE id = $1`
  await check('select row 1 (text, parameterised, pg type parsers)', async () => {
    const r = await client.query(selectText, [1])
    eq(r.rows.length, 1, 'rows')
    eq(r.fields.map((f) => f.name), COLS, 'column names')
    eq(r.fields.map((f) => f.dataTypeID), OIDS, 'column type OIDs')
    eq(r.fields.map((f) => f.format), Array(18).fill('text'), 'column formats')
    checkRow1Parsed(r.rows[0], 'row 1 (text)')
  })
  await check('select row 1 (text, exact server text)', async () => {
    const r = await client.query({ text: selectText, values: [1], types: RAW_TEXT, rowMode: 'array' })
    r.rows[0].forEach((v, i) => eq(v, ROW1_TEXT[i], `row 1 column ${COLS[i]} as text`))
  })
  // Binary results: pg's binary parsers get the UTF-8-decoded field (see the header) and throw or
  // return garbage, so pg hands over its decoded strings unparsed and the raw bytes are checked.
  const AS_DECODED = { getTypeParser: (oid, format) => (format === 'binary' ? (v) => v : pg.types.getTypeParser(oid, format)) }
  const selectNamed = (id, binary) => ({ name: 'node_select_types', text: selectText, values: [id], binary, types: binary ? AS_DECODED : undefined })
  await check('select rows 1 and 2 (text, named statement reused)', async () => {
    for (let k = 0; k < 3; k++) {
      const r1 = await client.query(selectNamed(1, false))
      checkRow1Parsed(r1.rows[0], `row 1 (named, use ${k + 1})`)
      const r2 = await client.query(selectNamed(2, false))
      eq(r2.rows.length, 1, 'row 2 rows')
      eq(r2.rows[0].id, '2', 'row 2 id')
      COLS.slice(1).forEach((c) => eq(r2.rows[0][c], null, `row 2 column ${c}`))
    }
    const none = await client.query(selectNamed(99, false))
    eq(none.rows.length, 0, 'id 99: no row')
  })
  await check('select row 1 (binary results, PostgreSQL binary encoding byte for byte)', async () => {
    for (let k = 0; k < 2; k++) {
      const { result, msgs } = await tap.capture(() => client.query(selectNamed(1, true)))
      eq(result.fields.map((f) => f.format), Array(18).fill('binary'), 'column formats')
      eq(result.fields.map((f) => f.dataTypeID), OIDS, 'column type OIDs')
      const rows = dataRows(msgs)
      eq(rows.length, 1, 'DataRows')
      rows[0].forEach((v, i) => eq(v, ROW1_BINARY[i], `row 1 column ${COLS[i]} (${OIDS[i]}) binary`))
      // What survives pg 8.13.1's UTF-8 decoding of binary fields: text and varchar.
      eq(result.rows[0].t, 'zoë ✓ "q"', "pg's value of t (binary)")
      eq(result.rows[0].vc, 'varchar', "pg's value of vc (binary)")
    }
  })
  await check("select row 1 (binary results decoded by pg-types' binary parsers)", async () => {
    const { msgs } = await tap.capture(() => client.query(selectNamed(1, true)))
    const raw = dataRows(msgs)[0]
    const parse = (col) => pg.types.getTypeParser(OIDS[COLS.indexOf(col)], 'binary')(raw[COLS.indexOf(col)])
    eq(parse('id'), '1', 'id')
    eq(parse('b'), true, 'b')
    eq(parse('i2'), -32768, 'i2')
    eq(parse('i4'), 2147483647, 'i4')
    eq(parse('i8'), '-9223372036854775808', 'i8')
    eq(parse('f4'), 1.5, 'f4')
    eq(parse('f8'), -0.1, 'f8')
    eq(parse('n'), 12345.678, 'n')
    eq(parse('t'), 'zoë ✓ "q"', 't')
    eq(parse('ts').getTime(), new Date(2024, 1, 29, 13, 45, 56, 123).getTime(), 'ts')
    eq(parse('ts').usec, 456, 'ts microseconds')
    eq(parse('tstz').getTime(), TSTZ_UTC_MS, 'tstz')
    eq(parse('tstz').usec, 456, 'tstz microseconds')
    eq(parse('ai'), [1, null, 3], 'ai')
    eq(parse('ta'), ['a', 'b c', null], 'ta')
  })
  await check('binary numeric encodings (numeric_send: no leading or trailing zero digit groups)', async () => {
    for (const v of ['0', '-1.5', '0.001', '10000', '100000000', '12345678901234567890.5', '1.10']) {
      const { msgs } = await tap.capture(() => client.query({ text: 'SELECT $1::numeric AS v', values: [v], binary: true, types: AS_DECODED }))
      eq(dataRows(msgs)[0][0], enc.numeric(v), `numeric ${v} binary`)
    }
  })
  await check('select row 2 (binary results, NULLs)', async () => {
    const { result, msgs } = await tap.capture(() => client.query(selectNamed(2, true)))
    const rows = dataRows(msgs)
    eq(rows.length, 1, 'DataRows')
    eq(rows[0], [enc.int8(2), ...Array(17).fill(null)], 'row 2 binary')
    COLS.slice(1).forEach((c) => eq(result.rows[0][c], null, `pg's value of row 2 column ${c}`))
  })
  await check('bytea as a binary parameter (pg sends a Buffer in binary format)', async () => {
    const r = await client.query(`SELECT id FROM ${T} WHERE bin = $1`, [BYTES])
    eq(r.rows.map((x) => x.id), ['1'], 'ids')
    const r2 = await client.query('SELECT $1::bytea AS v, length($1::bytea) AS n', [Buffer.from([0, 1, 2, 0xfe, 0xff])])
    eq(r2.rows[0].v, Buffer.from([0, 1, 2, 0xfe, 0xff]), 'round trip')
    eq(r2.rows[0].n, 5, 'length')
  })
  await check('Date and BigInt parameters', async () => {
    const r = await client.query(
      `SELECT id FROM ${T} WHERE tstz > $1 AND tstz < $2 AND i8 = $3`,
      [new Date(TSTZ_UTC_MS - 1), new Date(TSTZ_UTC_MS + 1), -9223372036854775808n]
    )
    eq(r.rows.map((x) => x.id), ['1'], 'ids')
    const r2 = await client.query('SELECT $1::timestamptz AS v', [new Date(TSTZ_UTC_MS)])
    eq(r2.rows[0].v, new Date(TSTZ_UTC_MS), 'timestamptz round trip of a Date')
  })

  // pg-types' array and jsonb parsers on harder values.
  const A = `${P}_arrays`
  await check('int[] and text[] type parsers', async () => {
    await client.query(`DROP TABLE IF EXISTS ${A}`)
    await client.query(`CREATE TABLE ${A} (id integer PRIMARY KEY, ai integer[], ta text[], j jsonb)`)
    const cases = [
      [1, [-2147483648, 0, null, 2147483647], ['', 'NULL', null, 'with "quote"', 'back\\slash', 'comma,brace{}', 'zoë ✓', ' spaced ']],
      [2, [], []],
      [3, [null], [null]],
      [4, [7], ['{}']],
    ]
    const ins = { name: 'node_insert_arrays', text: `INSERT INTO ${A} (id, ai, ta) VALUES ($1, $2, $3)` }
    for (const [id, ai, ta] of cases) await client.query({ ...ins, values: [id, ai, ta] })
    const sel = { name: 'node_select_arrays', text: `SELECT ai, ta FROM ${A} WHERE id = $1` }
    for (const [id, ai, ta] of cases) {
      const r = await client.query({ ...sel, values: [id] })
      eq(r.rows[0].ai, ai, `row ${id} ai`)
      eq(r.rows[0].ta, ta, `row ${id} ta`)
    }
    const raw = await client.query({ ...sel, values: [1], types: RAW_TEXT })
    eq(raw.rows[0].ai, '{-2147483648,0,NULL,2147483647}', 'row 1 ai as text')
    eq(raw.rows[0].ta, '{"","NULL",NULL,"with \\"quote\\"","back\\\\slash","comma,brace{}","zoë ✓"," spaced "}', 'row 1 ta as text')
    const ex = await client.query('SELECT $1::int[] AS a, $2::text[] AS b, array_length($1::int[], 1) AS n', [[5, 6, 7], ['x', null]])
    eq(ex.rows[0], { a: [5, 6, 7], b: ['x', null], n: 3 }, 'array parameters in expressions')
    const any = await client.query(`SELECT id FROM ${A} WHERE $1 = ANY (ta) ORDER BY id`, ['NULL'])
    eq(any.rows.map((x) => x.id), [1], "'NULL' = ANY (ta)")
  })
  await check('jsonb type parser', async () => {
    const docs = [
      [10, { nested: { arr: [1, 2.5, -3, true, false, null, 's'] }, unicode: 'zoë ✓', esc: 'a"b\\c\nd\te', empty: {}, list: [] }],
      [11, [1, 'two', { three: 3 }]],
      [12, 'a string'],
      [13, 42],
      [14, null], // the JSON null, not SQL NULL
    ]
    const ins = { name: 'node_insert_json', text: `INSERT INTO ${A} (id, j) VALUES ($1, $2)` }
    for (const [id, doc] of docs) await client.query({ ...ins, values: [id, JSON.stringify(doc)] })
    await client.query({ ...ins, values: [15, { plain: 'object', n: 1 }] }) // pg JSON.stringify's objects
    const sel = { name: 'node_select_json', text: `SELECT j FROM ${A} WHERE id = $1` }
    for (const [id, doc] of docs) {
      const r = await client.query({ ...sel, values: [id] })
      eq(r.rows[0].j, doc, `row ${id} j`)
    }
    eq((await client.query({ ...sel, values: [15] })).rows[0].j, { plain: 'object', n: 1 }, 'row 15 j')
    const raw = await client.query({ ...sel, values: [11], types: RAW_TEXT })
    eq(raw.rows[0].j, '[1, "two", {"three": 3}]', 'row 11 j as text')
    // jsonb keeps numbers as numeric: digits and scale as written (JSON.parse would hide a change).
    await client.query({ ...ins, values: [16, '{"n": [2.50, 1e2, 12345678901234567890123, 0.1000000000000000000001, -0]}'] })
    const nums = await client.query({ ...sel, values: [16], types: RAW_TEXT })
    eq(nums.rows[0].j, '{"n": [2.50, 100, 12345678901234567890123, 0.1000000000000000000001, 0]}', 'row 16 j (numbers) as text')
    const cmp = await client.query(`SELECT id FROM ${A} WHERE j = $1 ORDER BY id`, ['[1,"two",{"three":3}]'])
    eq(cmp.rows.map((x) => x.id), [11], 'jsonb compared with a parameter (whitespace-insensitive)')
  })

  // 5. Transactions on a pooled client.
  const pool = new pg.Pool(connectionConfig({ max: 6 }))
  pool.on('error', fail)
  const X = `${P}_tx`
  await check('transactions on a pooled client (ROLLBACK, COMMIT, visibility)', async () => {
    await pool.query(`DROP TABLE IF EXISTS ${X}`)
    await pool.query(`CREATE TABLE ${X} (id integer PRIMARY KEY, v text)`)
    const a = await pool.connect()
    const b = await pool.connect()
    try {
      const count = async (c, id) => (await c.query(`SELECT count(*)::int AS n FROM ${X} WHERE id = $1`, [id])).rows[0].n
      await a.query('BEGIN')
      await a.query(`INSERT INTO ${X} (id, v) VALUES ($1, $2)`, [1, 'rolled back'])
      eq(await count(a, 1), 1, 'own uncommitted insert visible inside the transaction')
      eq(await count(b, 1), 0, 'uncommitted insert invisible to another pooled client')
      await a.query('ROLLBACK')
      eq(await count(a, 1), 0, 'rolled-back insert (same client)')
      eq(await count(b, 1), 0, 'rolled-back insert (other client)')
      await a.query('BEGIN')
      await a.query(`INSERT INTO ${X} (id, v) VALUES ($1, $2)`, [2, 'committed'])
      await a.query('COMMIT')
      eq(await count(b, 2), 1, 'committed insert visible to another pooled client')
      eq((await pool.query(`SELECT v FROM ${X} WHERE id = $1`, [2])).rows, [{ v: 'committed' }], 'committed value')
    } finally {
      a.release()
      b.release()
    }
  })
  await check('error inside a transaction: 25P02, then ROLLBACK recovers', async () => {
    const c = await pool.connect()
    try {
      await c.query('BEGIN')
      await c.query(`INSERT INTO ${X} (id, v) VALUES ($1, $2)`, [3, 'lost'])
      await expectError(c.query(`INSERT INTO ${X} (id, v) VALUES ($1, $2)`, [2, 'duplicate']), '23505', 'duplicate inside the transaction')
      const err = await expectError(c.query('SELECT 1'), '25P02', 'statement after the error')
      if (!/current transaction is aborted/.test(err.message)) throw new Error(`25P02 message: ${err.message}`)
      await expectError(c.query(`SELECT * FROM ${X} WHERE id = $1`, [1]), '25P02', 'parameterised statement after the error')
      const rb = await c.query('ROLLBACK')
      eq(rb.command, 'ROLLBACK', 'ROLLBACK command tag')
      await usable(c, 'after ROLLBACK')
      eq((await c.query(`SELECT count(*)::int AS n FROM ${X} WHERE id = $1`, [3])).rows[0].n, 0, 'insert before the error rolled back')
      // COMMIT of a failed transaction rolls back, as in PostgreSQL.
      await c.query('BEGIN')
      await c.query(`INSERT INTO ${X} (id, v) VALUES ($1, $2)`, [4, 'lost too'])
      await expectError(c.query('SELECT 1 / $1::int', [0]), '22012', 'division by zero inside the transaction')
      const cm = await c.query('COMMIT')
      eq(cm.command, 'ROLLBACK', 'COMMIT of a failed transaction reports ROLLBACK')
      eq((await c.query(`SELECT count(*)::int AS n FROM ${X} WHERE id = $1`, [4])).rows[0].n, 0, 'failed transaction not committed')
    } finally {
      c.release()
    }
  })

  // 6. Errors with their SQLSTATEs; the connection stays usable.
  await check('23505 duplicate key (code, schema, table, constraint, detail)', async () => {
    const err = await expectError(client.query(insert([1, ...Array(17).fill(null)])), '23505', 'duplicate id')
    eq(err.severity, 'ERROR', 'severity')
    eq(err.message, `duplicate key value violates unique constraint "${T}_pkey"`, 'message')
    eq(err.constraint, `${T}_pkey`, 'err.constraint')
    eq(err.table, T, 'err.table')
    eq(err.schema, 'public', 'err.schema')
    eq(err.detail, 'Key (id)=(1) already exists.', 'err.detail')
    await usable(client, '23505')
  })
  await check('42P01 unknown table (message, position)', async () => {
    const err = await expectError(client.query(`SELECT * FROM ${P}_missing WHERE id = $1`, [1]), '42P01', 'unknown table')
    eq(err.message, `relation "${P}_missing" does not exist`, 'message')
    eq(err.position, '15', 'err.position')
    await usable(client, '42P01')
  })
  await check('42601 syntax error', async () => {
    await expectError(client.query('SELEC 1'), '42601', 'syntax error (simple query)')
    await expectError(client.query('SELECT * FROM WHERE id = $1', [1]), '42601', 'syntax error (extended query)')
    await usable(client, '42601')
  })
  await check('22012 division by zero through a parameter', async () => {
    await expectError(client.query('SELECT 1 / $1 AS v', [0]), '22012', '1 / $1 with 0')
    await expectError(client.query(`SELECT i4 / $1 AS v FROM ${T} WHERE id = $2`, [0, 1]), '22012', 'i4 / $1 with 0')
    await usable(client, '22012')
  })
  await check('22001 value too long for varchar(20)', async () => {
    await expectError(
      client.query(`INSERT INTO ${T} (id, vc) VALUES ($1, $2)`, [3, 'x'.repeat(21)]),
      '22001',
      'varchar(20) with 21 characters'
    )
    eq((await client.query(selectText, [3])).rows.length, 0, 'nothing inserted')
    await usable(client, '22001')
  })
  await check('named statement: the same name for another text is refused by pg', async () => {
    await assert.rejects(
      client.query({ name: 'node_select_types', text: 'SELECT 1', values: [] }),
      /Prepared statements must be unique/
    )
    const r = await client.query(selectNamed(1, false)) // still usable
    checkRow1Parsed(r.rows[0], 'row 1 after the refused reuse')
  })

  // A pool whose clients insert concurrently.
  const W = `${P}_pool`
  await check('pg.Pool: concurrent inserts from several clients', async () => {
    await pool.query(`DROP TABLE IF EXISTS ${W}`)
    await pool.query(`CREATE TABLE ${W} (id integer PRIMARY KEY, worker integer NOT NULL, n integer NOT NULL, note text)`)
    const WORKERS = 6
    const PER = 25
    const pids = new Set()
    await Promise.all(
      Array.from({ length: WORKERS }, async (_, w) => {
        const c = await pool.connect()
        try {
          pids.add(c.processID)
          for (let n = 0; n < PER; n++) {
            const id = w * 1000 + n
            if (n % 5 === 4) {
              // every fifth row in an explicit transaction, with a rolled-back one beside it
              await c.query('BEGIN')
              await c.query({ name: 'node_pool_insert', text: `INSERT INTO ${W} (id, worker, n, note) VALUES ($1, $2, $3, $4)`, values: [id, w, n, 'tx'] })
              await c.query('COMMIT')
              await c.query('BEGIN')
              await c.query({ name: 'node_pool_insert', text: `INSERT INTO ${W} (id, worker, n, note) VALUES ($1, $2, $3, $4)`, values: [id + 500, w, n, 'rolled back'] })
              await c.query('ROLLBACK')
            } else {
              await c.query({ name: 'node_pool_insert', text: `INSERT INTO ${W} (id, worker, n, note) VALUES ($1, $2, $3, $4)`, values: [id, w, n, null] })
            }
          }
        } finally {
          c.release()
        }
      })
    )
    eq(pids.size, WORKERS, 'distinct backend process ids (BackendKeyData) of the pooled clients')
    eq(pool.totalCount, WORKERS, 'pool.totalCount')
    const r = await pool.query(`SELECT worker, count(*)::int AS c, sum(n)::int AS s FROM ${W} GROUP BY worker ORDER BY worker`)
    eq(r.rows, Array.from({ length: WORKERS }, (_, w) => ({ worker: w, c: PER, s: (PER * (PER - 1)) / 2 })), 'rows per worker')
    eq((await pool.query(`SELECT count(*)::int AS c FROM ${W} WHERE note = $1`, ['rolled back'])).rows[0].c, 0, 'rolled-back rows')
  })
  await check('pg.Pool: concurrent pool.query on one table', async () => {
    const res = await Promise.all(
      Array.from({ length: 30 }, (_, k) => pool.query(`INSERT INTO ${W} (id, worker, n) VALUES ($1, $2, $3) RETURNING id`, [100000 + k, 99, k]))
    )
    eq(res.map((r) => r.rows[0].id), Array.from({ length: 30 }, (_, k) => 100000 + k), 'RETURNING ids')
    eq((await pool.query(`SELECT count(*)::int AS c FROM ${W} WHERE worker = $1`, [99])).rows[0].c, 30, 'rows')
  })

  await check('extended query with a row limit per Execute (PortalSuspended, pg re-executes)', async () => {
    const { result, msgs } = await tap.capture(() =>
      client.query({ text: `SELECT id, n FROM ${W} WHERE worker = $1 ORDER BY id`, values: [99], rows: 7 })
    )
    eq(result.rows.map((x) => x.id), Array.from({ length: 30 }, (_, k) => 100000 + k), 'all rows, in order')
    eq(msgs.filter((m) => m.type === 's').length, 4, 'PortalSuspended messages (30 rows, 7 per Execute)')
    eq(msgs.filter((m) => m.type === 'C').length, 1, 'CommandComplete')
    eq(result.rowCount, 2, 'rowCount (from the last Execute, as pg reports it)')
  })
  await check('simple query protocol: several statements in one query', async () => {
    const res = await client.query(`SELECT 1 AS a; SELECT count(*)::int AS c FROM ${W} WHERE worker = 99; SELECT 'x' AS b`)
    eq(Array.isArray(res) && res.map((r) => r.rows), [[{ a: 1 }], [{ c: 30 }], [{ b: 'x' }]], 'three results')
    await expectError(client.query('SELECT 1; SELECT 1 / 0; SELECT 3'), '22012', 'an error stops the batch')
    await usable(client, 'after the failed batch')
  })

  // 7. Verification functions.
  if (!SKIP_VERIFY) {
    let cp1
    await check('vouch_checkpoint()', async () => {
      const r = await client.query('SELECT * FROM vouch_checkpoint()')
      eq(r.rows.length, 1, 'rows')
      cp1 = r.rows[0]
      for (const c of ['tree_size', 'root_hash', 'checkpoint', 'signature', 'public_key', 'signed_note']) {
        if (!(c in cp1)) throw new Error(`column ${c} missing (got ${Object.keys(cp1).join(', ')})`)
      }
      const size = Number(cp1.tree_size)
      if (!(size > 0)) throw new Error(`tree_size: ${cp1.tree_size}`)
      const lines = cp1.checkpoint.split('\n')
      eq(lines.length, 4, 'checkpoint body: three lines, each ending in \\n')
      if (!lines[0].startsWith('vouchdb/')) throw new Error(`origin: ${lines[0]}`)
      eq(lines[1], String(size), 'checkpoint body tree size')
      eq(Buffer.from(lines[2], 'base64').toString('hex'), cp1.root_hash, 'checkpoint body root')
      const ok = crypto.verify('sha256', Buffer.from(cp1.checkpoint), cp1.public_key, Buffer.from(cp1.signature, 'base64'))
      if (!ok) throw new Error('the ECDSA signature does not verify with the returned public key')
      if (!cp1.signed_note.startsWith(cp1.checkpoint + '\n\u2014 ' + lines[0] + ' ')) throw new Error(`signed_note: ${show(cp1.signed_note)}`)
    })
    let vg
    const vget = (id) => ({ name: 'node_verified_get', text: `SELECT * FROM verified_get('${T}', $1)`, values: [id] })
    await check('verified_get with a bound parameter (values and proof columns)', async () => {
      const r = await client.query(vget(1))
      eq(r.rows.length, 1, 'rows')
      vg = r.rows[0]
      const proofCols = ['_tx', '_commit_ts', '_entry_index', '_entry', '_entry_proof', '_leaf', '_tx_proof', '_tree_size', '_root', '_checkpoint', '_signature']
      eq(r.fields.map((f) => f.name), [...COLS, ...proofCols], 'columns')
      eq(r.fields.slice(0, COLS.length).map((f) => f.dataTypeID), OIDS, 'row column type OIDs')
      const row = Object.fromEntries(COLS.map((c) => [c, vg[c]]))
      checkRow1Parsed(row, 'verified_get row 1')
      const r2 = await client.query(vget(2))
      eq(r2.rows.length, 1, 'row 2 rows')
      COLS.slice(1).forEach((c) => eq(r2.rows[0][c], null, `row 2 column ${c}`))
      eq((await client.query(vget(99))).rows.length, 0, 'verified_get of a missing key: no row')
      const again = await client.query(vget(1))
      eq(again.rows[0]._tx, vg._tx, 'named verified_get reused: same _tx')
    })
    await check('verified_get proof: _tree_size and _root agree with inclusion_proof(_tx, _tree_size)', async () => {
      const r = await client.query('SELECT * FROM inclusion_proof($1, $2)', [vg._tx, vg._tree_size])
      eq(r.rows.length, 1, 'rows')
      const ip = r.rows[0]
      eq(String(ip.tx), String(vg._tx), 'tx')
      eq(String(ip.leaf_index), String(Number(vg._tx) - 1), 'leaf_index')
      eq(String(ip.tree_size), String(vg._tree_size), 'tree_size')
      eq(ip.root, vg._root, 'root')
      eq(ip.proof, vg._tx_proof, 'proof')
      eq(ip.leaf_hash, leafHash(hex(vg._leaf, '_leaf')).toString('hex'), 'leaf_hash = sha256(0x00 || _leaf)')
    })
    await check('verified_get proof: RFC 9162 inclusion of the tx leaf recomputed in JavaScript', async () => {
      const tx = Number(vg._tx)
      const size = Number(vg._tree_size)
      const path = vg._tx_proof.map((h, i) => hex(h, `_tx_proof[${i}]`))
      path.forEach((h, i) => eq(h.length, 32, `_tx_proof[${i}] length`))
      const root = rootFromInclusion(tx - 1, size, leafHash(hex(vg._leaf, '_leaf')), path)
      eq(root.toString('hex'), vg._root, 'root from _tx_proof at leaf index _tx - 1')
      // A changed proof hash, or another leaf index, must not give the root.
      if (path.length) {
        const bad = path.map((h) => Buffer.from(h))
        bad[0][0] ^= 1
        if (rootFromInclusion(tx - 1, size, leafHash(hex(vg._leaf, '_leaf')), bad).equals(root)) throw new Error('a changed proof hash still verifies')
      }
    })
    await check('verified_get proof: leaf, entry inclusion, checkpoint and signature', async () => {
      const leaf = hex(vg._leaf, '_leaf')
      eq(leaf[0], 1, 'leaf version')
      eq(leaf.length === 94 || leaf.length === 126, true, `leaf length (${leaf.length})`)
      eq(leaf.readBigUInt64BE(1), BigInt(vg._tx), 'leaf tx id')
      eq(new Date(Number(leaf.readBigUInt64BE(9) / 1000n)), vg._commit_ts, 'leaf commit time = _commit_ts (ms)')
      const count = leaf.readUInt32BE(25)
      const entriesRoot = leaf.subarray(29, 61)
      const entry = hex(vg._entry, '_entry')
      eq(entry[0], 1, 'entry version')
      eq(entry[1], 0, 'entry flags')
      if (entry.readUInt32BE(2) < 1000) throw new Error(`entry table id ${entry.readUInt32BE(2)} is a system table's`)
      const ei = Number(vg._entry_index)
      const epath = vg._entry_proof.map((h, i) => hex(h, `_entry_proof[${i}]`))
      eq(rootFromInclusion(ei, count, leafHash(entry), epath).toString('hex'), entriesRoot.toString('hex'), 'entries root from _entry_proof')
      const lines = vg._checkpoint.split('\n')
      eq(lines[1], String(vg._tree_size), '_checkpoint tree size')
      eq(Buffer.from(lines[2], 'base64').toString('hex'), vg._root, '_checkpoint root')
      const ok = crypto.verify('sha256', Buffer.from(vg._checkpoint), cp1.public_key, Buffer.from(vg._signature, 'base64'))
      if (!ok) throw new Error('_signature does not verify with the public key of vouch_checkpoint()')
    })
    await check('consistency_proof between two checkpoints, recomputed in JavaScript', async () => {
      await client.query(`INSERT INTO ${T} (id, t) VALUES ($1, $2)`, [5, 'later'])
      const cp2 = (await client.query('SELECT * FROM vouch_checkpoint()')).rows[0]
      const s1 = Number(cp1.tree_size)
      const s2 = Number(cp2.tree_size)
      if (!(s2 > s1)) throw new Error(`tree did not grow: ${s1} → ${s2}`)
      const r = await client.query('SELECT * FROM consistency_proof($1, $2)', [s1, s2])
      const cp = r.rows[0]
      eq(cp.old_root, cp1.root_hash, 'old_root')
      eq(cp.new_root, cp2.root_hash, 'new_root')
      verifyConsistency(s1, s2, hex(cp1.root_hash, 'old root'), hex(cp2.root_hash, 'new root'), cp.proof.map((h, i) => hex(h, `proof[${i}]`)))
      const v5 = await client.query(vget(5))
      eq(v5.rows[0].t, 'later', 'verified_get of the new row')
      const size = Number(v5.rows[0]._tree_size)
      const root = rootFromInclusion(Number(v5.rows[0]._tx) - 1, size, leafHash(hex(v5.rows[0]._leaf, '_leaf')), v5.rows[0]._tx_proof.map((h) => hex(h, '_tx_proof')))
      eq(root.toString('hex'), v5.rows[0]._root, 'new row: root from _tx_proof')
    })
    await check('verification function errors', async () => {
      await expectError(client.query(`SELECT * FROM verified_get('${P}_missing', $1)`, [1]), '42P01', 'verified_get of an unknown table')
      await expectError(client.query(`SELECT * FROM verified_get('${T}', $1, $2)`, [1, 2]), '42883', 'verified_get with a wrong number of keys')
      await expectError(client.query('SELECT * FROM inclusion_proof($1, $2)', [1, 1000000000]), '22023', 'inclusion_proof beyond the log')
      await usable(client, 'verification errors')
    })
  }

  await pool.end()
  await client.end()
  console.log('all checks passed')
}

process.on('unhandledRejection', fail)
main().catch(fail)
