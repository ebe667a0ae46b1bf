// pgjdbc driver compatibility program (tests/clients/README.md is the contract).
//
// Run as a single-file source program, with the driver jar only:
//     java -cp /usr/share/java/postgresql.jar DriverTest.java
// Connection: VOUCHDB_JDBC_URL (e.g. jdbc:postgresql://127.0.0.1:5433/vouchdb; built from
// PGHOST/PGPORT/PGDATABASE when unset), PGUSER, PGPASSWORD.
// Against PostgreSQL 15: VOUCHDB_SKIP_VERIFY=1 skips the vouchdb-only verification functions and
// VOUCHDB_SKIP_AUTH=1 skips the wrong-password check (for a trust-auth server).
//
// Besides the common checks, what is particular to pgjdbc:
//  - PreparedStatement with typed setters (setBoolean … setBytes, setObject(LocalDateTime /
//    OffsetDateTime / LocalDate / UUID), jsonb as a PGobject and as `?::jsonb`, createArrayOf) and
//    typed getters; setNull with java.sql.Types; setTimestamp/setDate on another row.
//  - pgjdbc's switch to a named server-side statement with binary results after prepareThreshold
//    (default 5) executions: the same read is executed 7 times on the default connection (text
//    first, then binary; the result format is checked per column with PGResultSetMetaData), and
//    again on connections with prepareThreshold=1 and prepareThreshold=-1 (binary from the start).
//  - executeBatch, plain and with reWriteBatchedInserts=true, a failing batch (BatchUpdateException),
//    getGeneratedKeys, a multi-statement execute, fetch size (portal suspension), isValid.
//  - auto-commit off with commit / rollback / Savepoint, 25P02 after an error.
//  - DatabaseMetaData (getTables, getColumns, getPrimaryKeys, getIndexInfo, product name/version)
//    and ResultSetMetaData (names, java.sql.Types, type names, precision/scale, nullability).
//  - verified_get with a bound parameter; the inclusion proofs (entry in its transaction, transaction
//    in the log) and a consistency proof recomputed in Java (RFC 9162 §2.1.3.2 / §2.1.4.2) and
//    compared with inclusion_proof(_tx, _tree_size), consistency_proof and vouch_checkpoint().

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.*;
import java.time.*;
import java.util.*;
import org.postgresql.PGResultSetMetaData;
import org.postgresql.PGStatement;
import org.postgresql.util.PGobject;

public class DriverTest {
    static final String T = "pgjdbc_types";
    static final String COLS = "id, b, i2, i4, i8, f4, f8, n, t, vc, bin, ts, tstz, d, u, j, ai, ta";

    // The values of row 1 (tests/clients/README.md, step 3).
    static final String TEXT = "zoë ✓ \"q\"";
    static final byte[] BIN = {0x00, (byte) 0xff, 0x27, 0x5c};
    static final BigDecimal NUM = new BigDecimal("12345.678");
    static final LocalDateTime TS = LocalDateTime.of(2024, 2, 29, 13, 45, 56, 123456000);
    static final OffsetDateTime TSTZ = OffsetDateTime.of(TS, ZoneOffset.ofHoursMinutes(5, 30));
    static final LocalDate DATE = LocalDate.of(1999, 12, 31);
    static final UUID UID = UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    static final String JSON = "{\"a\": [1, 2, {\"b\": null}], \"c\": \"x\"}";
    static final Integer[] AI = {1, null, 3};
    static final String[] TA = {"a", "b c", null};

    static String url, user, password;
    static boolean skipVerify, skipAuth;

    // ---------------------------------------------------------------- harness

    interface Body { void run() throws Exception; }

    static final class CheckFailed extends RuntimeException {
        CheckFailed(String m) { super(m); }
    }

    static void check(String name, Body body) {
        try {
            body.run();
        } catch (Throwable e) {
            System.out.flush();
            System.err.println("FAIL " + name + ": " + describe(e));
            if (!(e instanceof CheckFailed)) e.printStackTrace();
            System.exit(1);
        }
        System.out.println("ok " + name);
    }

    static String describe(Throwable e) {
        if (e instanceof SQLException) {
            SQLException s = (SQLException) e;
            return "SQLException [SQLSTATE " + s.getSQLState() + "] " + s.getMessage();
        }
        return e instanceof CheckFailed ? e.getMessage() : e.toString();
    }

    static void fail(String what) { throw new CheckFailed(what); }

    static void eq(String what, Object expected, Object got) {
        boolean same = expected instanceof byte[] && got instanceof byte[]
            ? Arrays.equals((byte[]) expected, (byte[]) got)
            : expected instanceof Object[] && got instanceof Object[]
                ? Arrays.deepEquals((Object[]) expected, (Object[]) got)
                : Objects.equals(expected, got);
        if (!same) fail(what + ": expected " + show(expected) + ", got " + show(got));
    }

    static void truth(String what, boolean cond) { if (!cond) fail(what); }

    static String show(Object o) {
        if (o == null) return "null";
        if (o instanceof byte[]) return "bytes " + hex((byte[]) o);
        if (o instanceof Object[]) return Arrays.deepToString((Object[]) o);
        if (o instanceof String) return "\"" + o + "\"";
        return o + " (" + o.getClass().getSimpleName() + ")";
    }

    /** Runs body, which must throw an SQLException with the given SQLSTATE. */
    static SQLException expectState(String state, Body body) throws Exception {
        try {
            body.run();
        } catch (SQLException e) {
            if (!state.equals(e.getSQLState()))
                fail("expected SQLSTATE " + state + ", got " + e.getSQLState() + ": " + e.getMessage());
            return e;
        }
        fail("expected an error with SQLSTATE " + state + ", the statement succeeded");
        return null;
    }

    static Connection connect(Properties extra) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        if (password != null) p.setProperty("password", password);
        if (extra != null) p.putAll(extra);
        return DriverManager.getConnection(url, p);
    }

    static Properties props(String... kv) {
        Properties p = new Properties();
        for (int i = 0; i < kv.length; i += 2) p.setProperty(kv[i], kv[i + 1]);
        return p;
    }

    static long queryLong(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
            try (ResultSet rs = ps.executeQuery()) {
                truth("`" + sql + "` returned no row", rs.next());
                long v = rs.getLong(1);
                truth("`" + sql + "` returned more than one row", !rs.next());
                return v;
            }
        }
    }

    static void usable(Connection c) throws SQLException {
        eq("connection usable afterwards (SELECT 1)", 1L, queryLong(c, "SELECT 1"));
    }

    // ---------------------------------------------------------------- main

    public static void main(String[] args) throws Exception {
        String env = System.getenv("VOUCHDB_JDBC_URL");
        url = env != null && !env.isEmpty() ? env
            : "jdbc:postgresql://" + getenv("PGHOST", "127.0.0.1") + ":" + getenv("PGPORT", "5432") + "/"
                + getenv("PGDATABASE", "vouchdb");
        user = getenv("PGUSER", "admin");
        password = System.getenv("PGPASSWORD");
        skipVerify = "1".equals(System.getenv("VOUCHDB_SKIP_VERIFY"));
        skipAuth = "1".equals(System.getenv("VOUCHDB_SKIP_AUTH"));

        Connection[] holder = new Connection[1];
        check("connect (pgjdbc " + org.postgresql.util.DriverInfo.DRIVER_VERSION + ")", () -> {
            holder[0] = connect(null);
            truth("isValid(5) is false", holder[0].isValid(5));
            truth("auto-commit is on by default", holder[0].getAutoCommit());
            usable(holder[0]);
        });
        Connection c = holder[0];
        if (skipAuth) {
            System.out.println("skip wrong password (VOUCHDB_SKIP_AUTH=1)");
        } else {
            check("wrong password is 28P01", () -> {
                Properties p = props("user", user, "password", "not-" + password);
                expectState("28P01", () -> DriverManager.getConnection(url, p).close());
            });
        }

        createTables(c);
        writeRows(c);
        readBack(c);
        resultSetMetaData(c);
        transactions(c);
        errors(c);
        batches(c);
        misc(c);
        databaseMetaData(c);
        if (skipVerify) {
            System.out.println("skip verification functions (VOUCHDB_SKIP_VERIFY=1)");
        } else {
            verification(c);
        }
        c.close();
        System.out.println("all checks passed");
    }

    static String getenv(String k, String dflt) {
        String v = System.getenv(k);
        return v == null || v.isEmpty() ? dflt : v;
    }

    // ---------------------------------------------------------------- 2. create

    static void createTables(Connection c) {
        check("create " + T, () -> {
            try (Statement st = c.createStatement()) {
                st.execute("DROP TABLE IF EXISTS " + T + ", pgjdbc_batch, pgjdbc_items");
                st.execute("CREATE TABLE " + T + " (\n"
                    + "  id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,\n"
                    + "  f8 double precision, n numeric(12,3), t text, vc varchar(20), bin bytea, ts timestamp,\n"
                    + "  tstz timestamptz, d date, u uuid, j jsonb, ai integer[], ta text[])");
                eq("executeUpdate of CREATE INDEX", 0,
                    st.executeUpdate("CREATE INDEX pgjdbc_types_i4_idx ON " + T + " (i4)"));
                st.execute("CREATE TABLE pgjdbc_batch (id integer PRIMARY KEY, name text NOT NULL, amount numeric(10,2))");
                st.execute("CREATE TABLE pgjdbc_items (id bigserial PRIMARY KEY, name text NOT NULL, qty integer DEFAULT 7)");
            }
        });
    }

    // ---------------------------------------------------------------- 3. write

    static final String INSERT = "INSERT INTO " + T + " (" + COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

    static void writeRows(Connection c) {
        check("insert row 1 with typed setters", () -> {
            try (PreparedStatement ps = c.prepareStatement(INSERT)) {
                ps.setLong(1, 1L);
                ps.setBoolean(2, true);
                ps.setShort(3, (short) -32768);
                ps.setInt(4, 2147483647);
                ps.setLong(5, Long.MIN_VALUE);
                ps.setFloat(6, 1.5f);
                ps.setDouble(7, -0.1);
                ps.setBigDecimal(8, NUM);
                ps.setString(9, TEXT);
                ps.setString(10, "varchar");
                ps.setBytes(11, BIN);
                ps.setObject(12, TS);
                ps.setObject(13, TSTZ);
                ps.setObject(14, DATE);
                ps.setObject(15, UID);
                PGobject j = new PGobject();
                j.setType("jsonb");
                j.setValue(JSON);
                ps.setObject(16, j);
                ps.setArray(17, c.createArrayOf("int4", AI));
                ps.setArray(18, c.createArrayOf("text", TA));
                eq("update count", 1, ps.executeUpdate());
            }
        });
        check("insert row 2 with setNull", () -> {
            try (PreparedStatement ps = c.prepareStatement(INSERT)) {
                int[] types = {Types.BIGINT, Types.BOOLEAN, Types.SMALLINT, Types.INTEGER, Types.BIGINT, Types.REAL,
                    Types.DOUBLE, Types.NUMERIC, Types.VARCHAR, Types.VARCHAR, Types.BINARY, Types.TIMESTAMP,
                    Types.TIMESTAMP_WITH_TIMEZONE, Types.DATE, Types.OTHER, Types.OTHER, Types.ARRAY, Types.ARRAY};
                ps.setLong(1, 2L);
                for (int i = 2; i <= 18; i++) ps.setNull(i, types[i - 1]);
                eq("update count", 1, ps.executeUpdate());
            }
        });
        // Row 3: the same values through the older JDBC setters and jsonb as `?::jsonb` text.
        check("insert row 3 with setTimestamp/setDate/?::jsonb", () -> {
            String sql = "INSERT INTO " + T + " (id, ts, tstz, d, u, j, t) VALUES (?, ?, ?, ?, ?::uuid, ?::jsonb, ?)";
            try (PreparedStatement ps = c.prepareStatement(sql)) {
                ps.setLong(1, 3L);
                ps.setTimestamp(2, Timestamp.valueOf(TS));
                ps.setTimestamp(3, Timestamp.from(TSTZ.toInstant()));
                ps.setDate(4, java.sql.Date.valueOf(DATE));
                ps.setString(5, UID.toString());
                ps.setString(6, JSON);
                ps.setObject(7, TEXT, Types.VARCHAR);
                eq("update count", 1, ps.executeUpdate());
            }
        });
    }

    // ---------------------------------------------------------------- 4. read

    static final String SELECT = "SELECT " + COLS + " FROM " + T + " WHERE id = ?";

    static void readBack(Connection c) throws Exception {
        // Default prepareThreshold (5): executions 1-4 are unnamed statements with text results, from
        // the 5th on a named server-side statement with binary results for the types pgjdbc receives
        // in binary (integers, floats, numeric, bytea, date/time, uuid, int4[]/text[]).
        check("read back x7 on one PreparedStatement (text, then binary after prepareThreshold)", () -> {
            try (PreparedStatement ps = c.prepareStatement(SELECT)) {
                boolean sawText = false, sawBinary = false;
                for (int run = 1; run <= 7; run++) {
                    String mode = readOnce(ps, "execution " + run + ": ");
                    sawText |= mode.equals("text");
                    sawBinary |= mode.equals("binary");
                }
                truth("the statement became server-prepared", ps.unwrap(PGStatement.class).isUseServerPrepare());
                truth("text results were seen", sawText);
                truth("binary results were seen", sawBinary);
            }
        });
        for (String threshold : new String[]{"1", "-1"}) {
            check("read back with prepareThreshold=" + threshold, () -> {
                try (Connection c2 = connect(props("prepareThreshold", threshold));
                     PreparedStatement ps = c2.prepareStatement(SELECT)) {
                    Set<String> modes = new TreeSet<>();
                    for (int run = 1; run <= 3; run++) modes.add(readOnce(ps, "prepareThreshold=" + threshold + " execution " + run + ": "));
                    truth("binary results were seen (got " + modes + ")", modes.contains("binary"));
                    truth("the statement is server-prepared", ps.unwrap(PGStatement.class).isUseServerPrepare());
                }
            });
        }
        check("read back with prepareThreshold=0 (unnamed statements, text only)", () -> {
            try (Connection c2 = connect(props("prepareThreshold", "0"));
                 PreparedStatement ps = c2.prepareStatement(SELECT)) {
                for (int run = 1; run <= 6; run++)
                    eq("result format, execution " + run, "text", readOnce(ps, "prepareThreshold=0 execution " + run + ": "));
            }
        });
        check("read back row 3 with getTimestamp/getDate", () -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT ts, tstz, d, u, j, t FROM " + T + " WHERE id = ?")) {
                ps.setLong(1, 3L);
                try (ResultSet rs = ps.executeQuery()) {
                    truth("row 3 exists", rs.next());
                    eq("ts getTimestamp", Timestamp.valueOf(TS), rs.getTimestamp(1));
                    eq("tstz getTimestamp (instant)", TSTZ.toInstant(), rs.getTimestamp(2).toInstant());
                    eq("d getDate", java.sql.Date.valueOf(DATE), rs.getDate(3));
                    eq("u getObject", UID, rs.getObject(4));
                    eq("j getString", JSON, rs.getString(5));
                    eq("t getString", TEXT, rs.getString(6));
                }
            }
        });
    }

    /** Reads rows 1 and 2 through ps; returns "text", "binary" or "mixed" for row 1's result formats. */
    static String readOnce(PreparedStatement ps, String ctx) throws Exception {
        ps.setLong(1, 1L);
        String mode;
        try (ResultSet rs = ps.executeQuery()) {
            truth(ctx + "row 1 exists", rs.next());
            mode = formats(rs, ctx);
            checkRow1(rs, ctx + "[" + mode + "] ");
            truth(ctx + "exactly one row", !rs.next());
        }
        ps.setLong(1, 2L);
        try (ResultSet rs = ps.executeQuery()) {
            truth(ctx + "row 2 exists", rs.next());
            checkRow2(rs, ctx + "[" + formats(rs, ctx) + "] ");
            truth(ctx + "exactly one row", !rs.next());
        }
        return mode;
    }

    static String formats(ResultSet rs, String ctx) throws SQLException {
        PGResultSetMetaData md = rs.getMetaData().unwrap(PGResultSetMetaData.class);
        int n = rs.getMetaData().getColumnCount(), binary = 0;
        for (int i = 1; i <= n; i++) if (md.getFormat(i) == 1) binary++;
        if (binary > 0) {
            // Types pgjdbc always takes as text must never be binary, and the ones it asks in binary
            // must all be binary (the server honoured the Bind's result formats).
            for (int i : new int[]{1, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 17, 18})
                eq(ctx + "binary result format of column " + rs.getMetaData().getColumnName(i), 1, md.getFormat(i));
            for (int i : new int[]{2, 9, 10, 16})
                eq(ctx + "text result format of column " + rs.getMetaData().getColumnName(i), 0, md.getFormat(i));
        }
        return binary == 0 ? "text" : "binary";
    }

    static void checkRow1(ResultSet rs, String ctx) throws Exception {
        eq(ctx + "id getLong", 1L, rs.getLong("id"));
        eq(ctx + "b getBoolean", true, rs.getBoolean("b"));
        eq(ctx + "i2 getShort", (short) -32768, rs.getShort("i2"));
        eq(ctx + "i4 getInt", 2147483647, rs.getInt("i4"));
        eq(ctx + "i8 getLong", Long.MIN_VALUE, rs.getLong("i8"));
        eq(ctx + "f4 getFloat", 1.5f, rs.getFloat("f4"));
        eq(ctx + "f8 getDouble", -0.1, rs.getDouble("f8"));
        eq(ctx + "n getBigDecimal", NUM, rs.getBigDecimal("n"));
        eq(ctx + "n getString", "12345.678", rs.getString("n"));
        eq(ctx + "t getString", TEXT, rs.getString("t"));
        eq(ctx + "vc getString", "varchar", rs.getString("vc"));
        eq(ctx + "bin getBytes", BIN, rs.getBytes("bin"));
        eq(ctx + "ts getObject(LocalDateTime)", TS, rs.getObject("ts", LocalDateTime.class));
        eq(ctx + "ts getTimestamp", Timestamp.valueOf(TS), rs.getTimestamp("ts"));
        OffsetDateTime tstz = rs.getObject("tstz", OffsetDateTime.class);
        truth(ctx + "tstz is not null", tstz != null);
        eq(ctx + "tstz getObject(OffsetDateTime) as an instant", TSTZ.toInstant(), tstz.toInstant());
        eq(ctx + "tstz getTimestamp as an instant", TSTZ.toInstant(), rs.getTimestamp("tstz").toInstant());
        eq(ctx + "d getObject(LocalDate)", DATE, rs.getObject("d", LocalDate.class));
        eq(ctx + "d getDate", java.sql.Date.valueOf(DATE), rs.getDate("d"));
        eq(ctx + "u getObject(UUID)", UID, rs.getObject("u", UUID.class));
        eq(ctx + "u getObject", UID, rs.getObject("u"));
        eq(ctx + "j getString", JSON, rs.getString("j"));
        Object j = rs.getObject("j");
        truth(ctx + "j getObject is a PGobject, got " + show(j), j instanceof PGobject);
        eq(ctx + "j PGobject type", "jsonb", ((PGobject) j).getType());
        eq(ctx + "j PGobject value", JSON, ((PGobject) j).getValue());
        Array ai = rs.getArray("ai");
        eq(ctx + "ai base type", "int4", ai.getBaseTypeName());
        eq(ctx + "ai base java.sql.Types", Types.INTEGER, ai.getBaseType());
        eq(ctx + "ai getArray", AI, ai.getArray());
        boolean text = rs.getMetaData().unwrap(PGResultSetMetaData.class).getFormat(17) == 0;
        // (pgjdbc's getString of a binary int4[] quotes the elements: {"1",NULL,"3"}.)
        if (text) eq(ctx + "ai getString", "{1,NULL,3}", rs.getString("ai"));
        Array ta = rs.getArray("ta");
        eq(ctx + "ta base type", "text", ta.getBaseTypeName());
        eq(ctx + "ta getArray", TA, ta.getArray());
        if (text) eq(ctx + "ta getString", "{a,\"b c\",NULL}", rs.getString("ta"));
        // Array elements through the array's own result set (index, value).
        try (ResultSet ars = ai.getResultSet()) {
            List<Object> vals = new ArrayList<>();
            while (ars.next()) vals.add(ars.getObject(2));
            eq(ctx + "ai getResultSet values", Arrays.asList(AI), vals);
        }
        // getObject's default Java classes, which follow the column type OIDs.
        Class<?>[] classes = {Long.class, Boolean.class, Integer.class, Integer.class, Long.class, Float.class,
            Double.class, BigDecimal.class, String.class, String.class, byte[].class, Timestamp.class,
            Timestamp.class, java.sql.Date.class, UUID.class, PGobject.class, null, null};
        for (int i = 1; i <= 16; i++) {
            Object o = rs.getObject(i);
            truth(ctx + "getObject(" + i + ") (" + rs.getMetaData().getColumnName(i) + ") is a " + classes[i - 1].getSimpleName()
                + ", got " + show(o), classes[i - 1].isInstance(o));
        }
        truth(ctx + "getObject(ai) is a java.sql.Array", rs.getObject("ai") instanceof Array);
    }

    static void checkRow2(ResultSet rs, String ctx) throws Exception {
        eq(ctx + "id", 2L, rs.getLong(1));
        for (int i = 2; i <= 18; i++) {
            Object o = rs.getObject(i);
            if (o != null) fail(ctx + "column " + rs.getMetaData().getColumnName(i) + ": expected NULL, got " + show(o));
            truth(ctx + "wasNull after column " + i, rs.wasNull());
        }
        eq(ctx + "getInt of a NULL i4", 0, rs.getInt("i4"));
        truth(ctx + "wasNull after getInt", rs.wasNull());
        eq(ctx + "getBoolean of a NULL b", false, rs.getBoolean("b"));
        eq(ctx + "getString of a NULL t", null, rs.getString("t"));
        eq(ctx + "getArray of a NULL ai", null, rs.getArray("ai"));
        eq(ctx + "getBytes of a NULL bin", null, rs.getBytes("bin"));
        eq(ctx + "getObject(OffsetDateTime) of a NULL tstz", null, rs.getObject("tstz", OffsetDateTime.class));
    }

    // ---------------------------------------------------------------- ResultSetMetaData

    static void resultSetMetaData(Connection c) {
        check("ResultSetMetaData column names, types, precision, nullability", () -> {
            try (PreparedStatement ps = c.prepareStatement(SELECT)) {
                ps.setLong(1, 1L);
                // Before execution: pgjdbc describes the statement.
                ResultSetMetaData pre = ps.getMetaData();
                truth("getMetaData before execute is not null", pre != null);
                eq("column count before execute", 18, pre.getColumnCount());
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    String[] names = COLS.split(", ");
                    int[] types = {Types.BIGINT, Types.BIT, Types.SMALLINT, Types.INTEGER, Types.BIGINT, Types.REAL,
                        Types.DOUBLE, Types.NUMERIC, Types.VARCHAR, Types.VARCHAR, Types.BINARY, Types.TIMESTAMP,
                        Types.TIMESTAMP, Types.DATE, Types.OTHER, Types.OTHER, Types.ARRAY, Types.ARRAY};
                    String[] typeNames = {"int8", "bool", "int2", "int4", "int8", "float4", "float8", "numeric", "text",
                        "varchar", "bytea", "timestamp", "timestamptz", "date", "uuid", "jsonb", "_int4", "_text"};
                    eq("column count", 18, md.getColumnCount());
                    for (int i = 1; i <= 18; i++) {
                        eq("getColumnName(" + i + ")", names[i - 1], md.getColumnName(i));
                        eq("getColumnLabel(" + i + ")", names[i - 1], md.getColumnLabel(i));
                        eq("getColumnType(" + i + ") (" + names[i - 1] + ")", types[i - 1], md.getColumnType(i));
                        eq("getColumnTypeName(" + i + ")", typeNames[i - 1], md.getColumnTypeName(i));
                        eq("before-execute getColumnTypeName(" + i + ")", typeNames[i - 1], pre.getColumnTypeName(i));
                    }
                    eq("numeric(12,3) getPrecision", 12, md.getPrecision(8));
                    eq("numeric(12,3) getScale", 3, md.getScale(8));
                    eq("varchar(20) getPrecision", 20, md.getPrecision(10));
                    eq("varchar(20) getColumnDisplaySize", 20, md.getColumnDisplaySize(10));
                    eq("getColumnClassName(id)", "java.lang.Long", md.getColumnClassName(1));
                    eq("getColumnClassName(n)", "java.math.BigDecimal", md.getColumnClassName(8));
                    // These read pg_attribute / pg_class for the result's table OID and column numbers.
                    eq("isNullable(id)", ResultSetMetaData.columnNoNulls, md.isNullable(1));
                    eq("isNullable(t)", ResultSetMetaData.columnNullable, md.isNullable(9));
                    PGResultSetMetaData pmd = md.unwrap(PGResultSetMetaData.class);
                    eq("getBaseTableName(t)", T, pmd.getBaseTableName(9));
                    eq("getBaseColumnName(t)", "t", pmd.getBaseColumnName(9));
                    eq("getBaseSchemaName(t)", "public", pmd.getBaseSchemaName(9));
                    eq("isAutoIncrement(id)", false, md.isAutoIncrement(1));
                }
            }
            try (Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT 1 AS one, 'x'::text AS two, 2.5::numeric AS three, NULL::int4 AS four")) {
                ResultSetMetaData md = rs.getMetaData();
                eq("expression column label", "three", md.getColumnLabel(3));
                eq("expression column type", Types.NUMERIC, md.getColumnType(3));
                eq("int literal type", Types.INTEGER, md.getColumnType(1));
                eq("isNullable of an expression", ResultSetMetaData.columnNullableUnknown, md.isNullable(2));
                truth("one row", rs.next());
                eq("SELECT 1", 1, rs.getInt("one"));
                eq("'x'::text", "x", rs.getString("two"));
                eq("2.5::numeric", new BigDecimal("2.5"), rs.getBigDecimal("three"));
                eq("NULL::int4", null, rs.getObject("four"));
            }
        });
    }

    // ---------------------------------------------------------------- 5. transactions

    static void transactions(Connection c) {
        check("rolled-back insert is not visible", () -> {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, t) VALUES (?, ?)")) {
                ps.setLong(1, 10L);
                ps.setString(2, "rolled back");
                eq("update count", 1, ps.executeUpdate());
            }
            eq("own insert visible inside the transaction", 1L, queryLong(c, "SELECT count(*) FROM " + T + " WHERE id = ?", 10L));
            c.rollback();
            eq("row 10 after rollback", 0L, queryLong(c, "SELECT count(*) FROM " + T + " WHERE id = ?", 10L));
            c.commit();
        });
        check("committed insert is visible (also to another connection)", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, t) VALUES (?, ?)")) {
                ps.setLong(1, 11L);
                ps.setString(2, "committed");
                ps.executeUpdate();
            }
            try (Connection other = connect(null)) {
                eq("uncommitted row seen by another connection", 0L,
                    queryLong(other, "SELECT count(*) FROM " + T + " WHERE id = ?", 11L));
                c.commit();
                eq("committed row seen by another connection", 1L,
                    queryLong(other, "SELECT count(*) FROM " + T + " WHERE id = ?", 11L));
            }
            eq("committed row", 1L, queryLong(c, "SELECT count(*) FROM " + T + " WHERE id = ?", 11L));
            c.commit();
        });
        check("Savepoint: rollback(savepoint) keeps the earlier insert", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, t) VALUES (?, ?)")) {
                ps.setLong(1, 12L);
                ps.setString(2, "before savepoint");
                ps.executeUpdate();
                Savepoint sp = c.setSavepoint("pgjdbc_sp");
                eq("savepoint name", "pgjdbc_sp", sp.getSavepointName());
                ps.setLong(1, 13L);
                ps.setString(2, "after savepoint");
                ps.executeUpdate();
                c.rollback(sp);
                ps.setLong(1, 14L);
                ps.setString(2, "after rollback to savepoint");
                ps.executeUpdate();
                Savepoint unnamed = c.setSavepoint();
                ps.setLong(1, 15L);
                ps.executeUpdate();
                c.releaseSavepoint(unnamed);
            }
            c.commit();
            eq("rows 12..15 after commit", 3L,
                queryLong(c, "SELECT count(*) FROM " + T + " WHERE id IN (12, 13, 14, 15)"));
            eq("row 13 (rolled back to the savepoint)", 0L, queryLong(c, "SELECT count(*) FROM " + T + " WHERE id = 13"));
            c.commit();
        });
        check("Savepoint recovers from an error (25P02 ends)", () -> {
            Savepoint sp = c.setSavepoint();
            expectState("22012", () -> queryLong(c, "SELECT 1 / ?", 0));
            expectState("25P02", () -> queryLong(c, "SELECT 1"));
            c.rollback(sp);
            usable(c);
            c.commit();
        });
        check("after an error the transaction is aborted (25P02) until rollback", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, t) VALUES (?, ?)")) {
                ps.setLong(1, 16L);
                ps.setString(2, "lost");
                ps.executeUpdate();
                ps.setLong(1, 1L);
                expectState("23505", ps::executeUpdate);
            }
            expectState("25P02", () -> queryLong(c, "SELECT count(*) FROM " + T));
            c.rollback();
            eq("row 16 after rollback", 0L, queryLong(c, "SELECT count(*) FROM " + T + " WHERE id = 16"));
            c.commit();
            c.setAutoCommit(true);
            usable(c);
        });
        check("commit() of a failed transaction rolls it back", () -> {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id) VALUES (?)")) {
                ps.setLong(1, 17L);
                ps.executeUpdate();
            }
            // An error in Parse (unknown table) aborts the transaction as an execution error does.
            expectState("42P01", () -> queryLong(c, "SELECT count(*) FROM pgjdbc_missing"));
            expectState("25P02", () -> queryLong(c, "SELECT 1"));
            // The server answers COMMIT of a failed transaction with the tag ROLLBACK; pgjdbc 42.5
            // does not raise it.
            c.commit();
            c.setAutoCommit(true);
            eq("row 17 (its transaction failed)", 0L, queryLong(c, "SELECT count(*) FROM " + T + " WHERE id = 17"));
        });
    }

    // ---------------------------------------------------------------- 6. errors

    static void errors(Connection c) {
        check("23505 duplicate key", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id) VALUES (?)")) {
                ps.setLong(1, 1L);
                expectState("23505", ps::executeUpdate);
            }
            usable(c);
        });
        check("42P01 unknown table", () -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT * FROM pgjdbc_no_such_table WHERE id = ?")) {
                ps.setLong(1, 1L);
                expectState("42P01", ps::executeQuery);
            }
            usable(c);
        });
        check("42601 syntax error", () -> {
            try (Statement st = c.createStatement()) {
                expectState("42601", () -> st.executeQuery("SELEC 1"));
            }
            try (PreparedStatement ps = c.prepareStatement("SELECT FROM WHERE ?")) {
                ps.setInt(1, 1);
                expectState("42601", ps::executeQuery);
            }
            usable(c);
        });
        check("22012 division by zero through a parameter", () -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT i4 / ? FROM " + T + " WHERE id = 1")) {
                ps.setInt(1, 0);
                expectState("22012", ps::executeQuery);
                ps.setInt(1, 7);
                try (ResultSet rs = ps.executeQuery()) {
                    truth("a row", rs.next());
                    eq("2147483647 / 7", 306783378, rs.getInt(1));
                }
            }
            usable(c);
        });
        check("22001 value too long for varchar(20)", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, vc) VALUES (?, ?)")) {
                ps.setLong(1, 20L);
                ps.setString(2, "x".repeat(21));
                expectState("22001", ps::executeUpdate);
                ps.setString(2, "x".repeat(20));
                eq("a 20-character value fits", 1, ps.executeUpdate());
            }
            usable(c);
        });
        check("error fields (message, server error message)", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id) VALUES (?)")) {
                ps.setLong(1, 1L);
                SQLException e = expectState("23505", ps::executeUpdate);
                truth("an org.postgresql.util.PSQLException", e instanceof org.postgresql.util.PSQLException);
                org.postgresql.util.ServerErrorMessage m = ((org.postgresql.util.PSQLException) e).getServerErrorMessage();
                truth("a ServerErrorMessage", m != null);
                eq("severity", "ERROR", m.getSeverity());
                eq("SQLSTATE field", "23505", m.getSQLState());
                truth("message mentions the constraint: " + m.getMessage(),
                    m.getMessage() != null && m.getMessage().contains("pgjdbc_types_pkey"));
            }
        });
    }

    // ---------------------------------------------------------------- batches

    static void batches(Connection c) {
        String ins = "INSERT INTO pgjdbc_batch (id, name, amount) VALUES (?, ?, ?)";
        check("executeBatch (one Bind/Execute per row)", () -> {
            try (PreparedStatement ps = c.prepareStatement(ins)) {
                for (int i = 1; i <= 50; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "row " + i);
                    ps.setBigDecimal(3, new BigDecimal(i + ".25"));
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                eq("batch result length", 50, counts.length);
                for (int n : counts) eq("each update count", 1, n);
            }
            eq("rows", 50L, queryLong(c, "SELECT count(*) FROM pgjdbc_batch"));
            eq("sum(amount)", new BigDecimal("1287.50"), sumAmount(c));
        });
        check("executeBatch with reWriteBatchedInserts=true", () -> {
            try (Connection c2 = connect(props("reWriteBatchedInserts", "true"));
                 PreparedStatement ps = c2.prepareStatement(ins)) {
                for (int i = 101; i <= 237; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "rewritten " + i);
                    ps.setBigDecimal(3, BigDecimal.ONE);
                    ps.addBatch();
                }
                int[] counts = ps.executeBatch();
                eq("batch result length", 137, counts.length);
                for (int n : counts) truth("update count is 1 or SUCCESS_NO_INFO, got " + n, n == 1 || n == Statement.SUCCESS_NO_INFO);
                eq("rewritten rows", 137L, queryLong(c2, "SELECT count(*) FROM pgjdbc_batch WHERE id BETWEEN 101 AND 237"));
                eq("rewritten name", "rewritten 200", queryString(c2, "SELECT name FROM pgjdbc_batch WHERE id = 200"));
            }
        });
        check("executeBatch in a transaction with auto-commit off", () -> {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement(ins)) {
                for (int i = 301; i <= 310; i++) {
                    ps.setInt(1, i);
                    ps.setString(2, "tx " + i);
                    ps.setNull(3, Types.NUMERIC);
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            c.rollback();
            eq("rows after rollback", 0L, queryLong(c, "SELECT count(*) FROM pgjdbc_batch WHERE id > 300"));
            c.setAutoCommit(true);
        });
        check("failing executeBatch throws BatchUpdateException 23505", () -> {
            try (PreparedStatement ps = c.prepareStatement(ins)) {
                for (int id : new int[]{401, 402, 5, 403}) {
                    ps.setInt(1, id);
                    ps.setString(2, "dup " + id);
                    ps.setBigDecimal(3, BigDecimal.TEN);
                    ps.addBatch();
                }
                try {
                    ps.executeBatch();
                    fail("the batch with a duplicate key succeeded");
                } catch (BatchUpdateException e) {
                    SQLException cause = e.getNextException();
                    truth("BatchUpdateException has a next exception", cause != null);
                    eq("SQLSTATE of the next exception", "23505", cause.getSQLState());
                    eq("SQLSTATE of the BatchUpdateException", "23505", e.getSQLState());
                }
            }
            eq("auto-commit batch is one transaction: rows 401..403", 0L,
                queryLong(c, "SELECT count(*) FROM pgjdbc_batch WHERE id > 400"));
            usable(c);
        });
        check("Statement.addBatch of SQL strings", () -> {
            try (Statement st = c.createStatement()) {
                st.addBatch("INSERT INTO pgjdbc_batch (id, name) VALUES (501, 'five oh one')");
                st.addBatch("UPDATE pgjdbc_batch SET name = 'updated' WHERE id <= 3");
                st.addBatch("DELETE FROM pgjdbc_batch WHERE id = 501");
                int[] counts = st.executeBatch();
                eq("update counts", Arrays.asList(1, 3, 1), Arrays.asList(counts[0], counts[1], counts[2]));
            }
            eq("updated rows", 3L, queryLong(c, "SELECT count(*) FROM pgjdbc_batch WHERE name = 'updated'"));
        });
    }

    static BigDecimal sumAmount(Connection c) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT sum(amount) FROM pgjdbc_batch")) {
            rs.next();
            return rs.getBigDecimal(1);
        }
    }

    static String queryString(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            truth("`" + sql + "` returned no row", rs.next());
            return rs.getString(1);
        }
    }

    // ---------------------------------------------------------------- misc pgjdbc features

    static void misc(Connection c) {
        check("getGeneratedKeys (RETURNING appended by pgjdbc)", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO pgjdbc_items (name) VALUES (?)", new String[]{"id"})) {
                long prev = 0;
                for (String name : new String[]{"apple", "pear", "plum"}) {
                    ps.setString(1, name);
                    eq("update count", 1, ps.executeUpdate());
                    try (ResultSet keys = ps.getGeneratedKeys()) {
                        truth("a generated key", keys.next());
                        long id = keys.getLong("id");
                        truth("generated ids increase (" + prev + " then " + id + ")", id > prev);
                        prev = id;
                    }
                }
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO pgjdbc_items (name) VALUES (?)", Statement.RETURN_GENERATED_KEYS)) {
                ps.setString(1, "fig");
                ps.executeUpdate();
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    truth("a generated row", keys.next());
                    eq("RETURNING * name", "fig", keys.getString("name"));
                    eq("RETURNING * default qty", 7, keys.getInt("qty"));
                }
            }
        });
        check("setFetchSize with auto-commit off (portal suspended and resumed)", () -> {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT id, name FROM pgjdbc_batch WHERE id > ? ORDER BY id")) {
                ps.setFetchSize(7);
                ps.setInt(1, 0);
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0, last = 0;
                    while (rs.next()) {
                        int id = rs.getInt(1);
                        truth("ids in order (" + last + " then " + id + ")", id > last);
                        last = id;
                        n++;
                    }
                    eq("rows fetched 7 at a time", 187, n);
                }
            }
            c.commit();
            c.setAutoCommit(true);
        });
        check("execute with several statements and getMoreResults", () -> {
            try (Statement st = c.createStatement()) {
                truth("first result is a result set",
                    st.execute("SELECT 1 AS a; UPDATE pgjdbc_items SET qty = qty + 1 WHERE name = 'fig'; SELECT 'two' AS b"));
                try (ResultSet rs = st.getResultSet()) {
                    rs.next();
                    eq("first result", 1, rs.getInt(1));
                }
                truth("second result is an update count", !st.getMoreResults());
                eq("update count", 1, st.getUpdateCount());
                truth("third result is a result set", st.getMoreResults());
                try (ResultSet rs = st.getResultSet()) {
                    rs.next();
                    eq("third result", "two", rs.getString("b"));
                }
                truth("no more results", !st.getMoreResults() && st.getUpdateCount() == -1);
            }
        });
        check("setMaxRows and executeUpdate with RETURNING-less UPDATE/DELETE counts", () -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT id FROM pgjdbc_batch ORDER BY id")) {
                ps.setMaxRows(3);
                try (ResultSet rs = ps.executeQuery()) {
                    int n = 0;
                    while (rs.next()) n++;
                    eq("rows with setMaxRows(3)", 3, n);
                }
            }
            try (PreparedStatement ps = c.prepareStatement("UPDATE pgjdbc_batch SET amount = ? WHERE id BETWEEN ? AND ?")) {
                ps.setBigDecimal(1, new BigDecimal("9.99"));
                ps.setInt(2, 10);
                ps.setInt(3, 19);
                eq("UPDATE count", 10, ps.executeUpdate());
            }
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM pgjdbc_batch WHERE id > ?")) {
                ps.setInt(1, 230);
                eq("DELETE count", 7, ps.executeUpdate());
            }
        });
        check("setObject with inferred types and setQueryTimeout", () -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT ?::int8 + 1, ?::text || '!', ?::numeric * 2, ?::bool")) {
                ps.setQueryTimeout(10);
                ps.setObject(1, 41L);
                ps.setObject(2, "hi");
                ps.setObject(3, new BigDecimal("1.25"));
                ps.setObject(4, Boolean.FALSE);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    eq("41 + 1", 42L, rs.getLong(1));
                    eq("'hi' || '!'", "hi!", rs.getString(2));
                    eq("1.25 * 2", new BigDecimal("2.50"), rs.getBigDecimal(3));
                    eq("false", false, rs.getBoolean(4));
                }
            }
        });
    }

    // ---------------------------------------------------------------- DatabaseMetaData

    static void databaseMetaData(Connection c) {
        check("DatabaseMetaData product name and version", () -> {
            DatabaseMetaData md = c.getMetaData();
            eq("getDatabaseProductName", "PostgreSQL", md.getDatabaseProductName());
            String v = md.getDatabaseProductVersion();
            truth("getDatabaseProductVersion starts with 15, got " + v, v.startsWith("15"));
            eq("getDatabaseMajorVersion", 15, md.getDatabaseMajorVersion());
            eq("getDriverName", "PostgreSQL JDBC Driver", md.getDriverName());
            eq("getUserName", user, md.getUserName());
            eq("getURL", url, md.getURL());
            eq("getIdentifierQuoteString", "\"", md.getIdentifierQuoteString());
        });
        check("DatabaseMetaData.getTables", () -> {
            DatabaseMetaData md = c.getMetaData();
            Map<String, String> found = new TreeMap<>();
            try (ResultSet rs = md.getTables(null, "public", "%", new String[]{"TABLE"})) {
                while (rs.next()) {
                    eq("TABLE_SCHEM", "public", rs.getString("TABLE_SCHEM"));
                    found.put(rs.getString("TABLE_NAME"), rs.getString("TABLE_TYPE"));
                }
            }
            for (String t : new String[]{T, "pgjdbc_batch", "pgjdbc_items"})
                eq("getTables row for " + t + " (all: " + found + ")", "TABLE", found.get(t));
            try (ResultSet rs = md.getTables(null, null, T, null)) {
                truth("getTables(null, null, " + T + ", null) finds it", rs.next());
                eq("TABLE_NAME", T, rs.getString("TABLE_NAME"));
            }
            try (ResultSet rs = md.getSchemas()) {
                Set<String> schemas = new TreeSet<>();
                while (rs.next()) schemas.add(rs.getString("TABLE_SCHEM"));
                truth("getSchemas lists public and pg_catalog: " + schemas,
                    schemas.contains("public") && schemas.contains("pg_catalog"));
            }
        });
        check("DatabaseMetaData.getColumns", () -> {
            DatabaseMetaData md = c.getMetaData();
            String[] names = COLS.split(", ");
            int[] types = {Types.BIGINT, Types.BIT, Types.SMALLINT, Types.INTEGER, Types.BIGINT, Types.REAL,
                Types.DOUBLE, Types.NUMERIC, Types.VARCHAR, Types.VARCHAR, Types.BINARY, Types.TIMESTAMP,
                Types.TIMESTAMP, Types.DATE, Types.OTHER, Types.OTHER, Types.ARRAY, Types.ARRAY};
            String[] typeNames = {"int8", "bool", "int2", "int4", "int8", "float4", "float8", "numeric", "text",
                "varchar", "bytea", "timestamp", "timestamptz", "date", "uuid", "jsonb", "_int4", "_text"};
            try (ResultSet rs = md.getColumns(null, "public", T, "%")) {
                int i = 0;
                while (rs.next()) {
                    String col = rs.getString("COLUMN_NAME");
                    truth("more columns than expected: " + col, i < names.length);
                    eq("column " + (i + 1) + " COLUMN_NAME", names[i], col);
                    eq(col + " TABLE_NAME", T, rs.getString("TABLE_NAME"));
                    eq(col + " DATA_TYPE", types[i], rs.getInt("DATA_TYPE"));
                    eq(col + " TYPE_NAME", typeNames[i], rs.getString("TYPE_NAME"));
                    eq(col + " ORDINAL_POSITION", i + 1, rs.getInt("ORDINAL_POSITION"));
                    eq(col + " NULLABLE", i == 0 ? DatabaseMetaData.columnNoNulls : DatabaseMetaData.columnNullable,
                        rs.getInt("NULLABLE"));
                    eq(col + " IS_NULLABLE", i == 0 ? "NO" : "YES", rs.getString("IS_NULLABLE"));
                    if (col.equals("n")) {
                        eq("n COLUMN_SIZE", 12, rs.getInt("COLUMN_SIZE"));
                        eq("n DECIMAL_DIGITS", 3, rs.getInt("DECIMAL_DIGITS"));
                    }
                    if (col.equals("vc")) eq("vc COLUMN_SIZE", 20, rs.getInt("COLUMN_SIZE"));
                    if (col.equals("i4")) eq("i4 COLUMN_SIZE", 10, rs.getInt("COLUMN_SIZE"));
                    eq(col + " IS_AUTOINCREMENT", "NO", rs.getString("IS_AUTOINCREMENT"));
                    i++;
                }
                eq("number of columns", names.length, i);
            }
            try (ResultSet rs = md.getColumns(null, "public", "pgjdbc_items", "id")) {
                truth("pgjdbc_items.id is listed", rs.next());
                eq("bigserial TYPE_NAME", "bigserial", rs.getString("TYPE_NAME"));
                eq("bigserial IS_AUTOINCREMENT", "YES", rs.getString("IS_AUTOINCREMENT"));
                truth("bigserial COLUMN_DEF is nextval(...): " + rs.getString("COLUMN_DEF"),
                    rs.getString("COLUMN_DEF") != null && rs.getString("COLUMN_DEF").startsWith("nextval("));
            }
        });
        check("DatabaseMetaData.getPrimaryKeys", () -> {
            try (ResultSet rs = c.getMetaData().getPrimaryKeys(null, "public", T)) {
                truth("a primary key row", rs.next());
                eq("COLUMN_NAME", "id", rs.getString("COLUMN_NAME"));
                eq("KEY_SEQ", 1, rs.getInt("KEY_SEQ"));
                eq("PK_NAME", T + "_pkey", rs.getString("PK_NAME"));
                eq("TABLE_NAME", T, rs.getString("TABLE_NAME"));
                truth("one primary-key column", !rs.next());
            }
        });
        check("DatabaseMetaData.getIndexInfo", () -> {
            Map<String, String> idx = new TreeMap<>();
            try (ResultSet rs = c.getMetaData().getIndexInfo(null, "public", T, false, false)) {
                while (rs.next()) {
                    eq("TABLE_NAME", T, rs.getString("TABLE_NAME"));
                    idx.put(rs.getString("INDEX_NAME"),
                        rs.getString("COLUMN_NAME") + (rs.getBoolean("NON_UNIQUE") ? "" : " unique") + " #" + rs.getInt("ORDINAL_POSITION"));
                }
            }
            eq("index pgjdbc_types_pkey (all: " + idx + ")", "id unique #1", idx.get(T + "_pkey"));
            eq("index pgjdbc_types_i4_idx (all: " + idx + ")", "i4 #1", idx.get("pgjdbc_types_i4_idx"));
            try (ResultSet rs = c.getMetaData().getIndexInfo(null, "public", T, true, false)) {
                List<String> unique = new ArrayList<>();
                while (rs.next()) unique.add(rs.getString("INDEX_NAME"));
                eq("unique indexes only", List.of(T + "_pkey"), unique);
            }
        });
    }

    // ---------------------------------------------------------------- 7. verification

    static void verification(Connection c) throws Exception {
        long[] size0 = new long[1];
        String[] root0 = new String[1];
        check("vouch_checkpoint()", () -> {
            try (Statement st = c.createStatement();
                 ResultSet rs = st.executeQuery("SELECT tree_size, root_hash, checkpoint, signature, public_key, signed_note FROM vouch_checkpoint()")) {
                truth("one row", rs.next());
                size0[0] = rs.getLong("tree_size");
                root0[0] = rs.getString("root_hash");
                truth("tree_size > 0, got " + size0[0], size0[0] > 0);
                truth("root_hash is 64 hex digits: " + root0[0], root0[0].matches("[0-9a-f]{64}"));
                checkCheckpointBody(rs.getString("checkpoint"), size0[0], root0[0], "checkpoint");
                truth("public_key is PEM", rs.getString("public_key").startsWith("-----BEGIN PUBLIC KEY-----"));
                truth("signature is base64", Base64.getDecoder().decode(rs.getString("signature")).length > 8);
                truth("signed_note starts with the body", rs.getString("signed_note").startsWith(rs.getString("checkpoint")));
            }
        });
        String vg = "SELECT * FROM verified_get('" + T + "', ?)";
        check("verified_get with a bound parameter and the proofs recomputed in Java", () -> {
            verifiedGet(c, vg, "default connection: ");
        });
        check("verified_get 6x on one PreparedStatement and with prepareThreshold=-1 (binary)", () -> {
            Set<String> modes = new TreeSet<>();
            try (PreparedStatement ps = c.prepareStatement(vg)) {
                for (int run = 1; run <= 6; run++) modes.add(verifiedGetOnce(c, ps, "execution " + run + ": "));
            }
            eq("result formats of the 6 executions", new TreeSet<>(List.of("binary", "text")), modes);
            try (Connection c2 = connect(props("prepareThreshold", "-1"));
                 PreparedStatement ps = c2.prepareStatement(vg)) {
                eq("result format with prepareThreshold=-1", "binary", verifiedGetOnce(c2, ps, "prepareThreshold=-1: "));
            }
        });
        check("verified_get of a missing key returns no row", () -> {
            try (PreparedStatement ps = c.prepareStatement(vg)) {
                ps.setLong(1, 999L);
                try (ResultSet rs = ps.executeQuery()) {
                    truth("no row for key 999", !rs.next());
                }
            }
        });
        check("consistency_proof(old, new) recomputed in Java", () -> {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + T + " (id, t) VALUES (?, ?)")) {
                ps.setLong(1, 30L);
                ps.setString(2, "after the first checkpoint");
                ps.executeUpdate();
            }
            long size1;
            String root1;
            try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT tree_size, root_hash FROM vouch_checkpoint()")) {
                rs.next();
                size1 = rs.getLong(1);
                root1 = rs.getString(2);
            }
            truth("the tree grew (" + size0[0] + " -> " + size1 + ")", size1 > size0[0]);
            try (PreparedStatement ps = c.prepareStatement("SELECT old_size, new_size, old_root, new_root, proof FROM consistency_proof(?, ?)")) {
                ps.setLong(1, size0[0]);
                ps.setLong(2, size1);
                try (ResultSet rs = ps.executeQuery()) {
                    truth("one row", rs.next());
                    eq("old_size", size0[0], rs.getLong("old_size"));
                    eq("new_size", size1, rs.getLong("new_size"));
                    eq("old_root", root0[0], rs.getString("old_root"));
                    eq("new_root", root1, rs.getString("new_root"));
                    byte[][] proof = hashes((String[]) rs.getArray("proof").getArray());
                    truth("consistency proof verifies", verifyConsistency(size0[0], size1, unhex(root0[0]), unhex(root1), proof));
                    if (proof.length > 0) {
                        proof[0] = proof[0].clone();
                        proof[0][0] ^= 1;
                        truth("a changed consistency proof does not verify",
                            !verifyConsistency(size0[0], size1, unhex(root0[0]), unhex(root1), proof));
                    }
                }
            }
        });
        check("proof function errors (22023 tree size outside the log)", () -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT * FROM inclusion_proof(?, ?)")) {
                ps.setLong(1, 1L);
                ps.setLong(2, 1L << 40);
                expectState("22023", ps::executeQuery);
            }
            expectState("42P01", () -> queryLong(c, "SELECT count(*) FROM verified_get('pgjdbc_no_such_table', 1)"));
            usable(c);
        });
    }

    static void checkCheckpointBody(String body, long size, String rootHex, String what) {
        String[] lines = body.split("\n", -1);
        truth(what + " body has 3 lines ending in \\n: " + show(body), lines.length == 4 && lines[3].isEmpty());
        truth(what + " origin starts with vouchdb/: " + lines[0], lines[0].startsWith("vouchdb/"));
        eq(what + " tree size line", Long.toString(size), lines[1]);
        eq(what + " root line (base64 of the root)", Base64.getEncoder().encodeToString(unhex(rootHex)), lines[2]);
    }

    static void verifiedGet(Connection c, String sql, String ctx) throws Exception {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            verifiedGetOnce(c, ps, ctx);
        }
    }

    /** Returns the result format of verified_get's row ("text" or "binary"). */
    static String verifiedGetOnce(Connection c, PreparedStatement ps, String ctx) throws Exception {
        ps.setLong(1, 1L);
        long tx, size, entryIndex;
        String rootHex, leafHex, entryHex, checkpoint;
        byte[][] txProof, entryProof;
        String mode;
        try (ResultSet rs = ps.executeQuery()) {
            truth(ctx + "verified_get returned a row", rs.next());
            mode = formats(rs);
            ctx = ctx + "[" + mode + "] ";
            // The row's own columns first, with their types.
            ResultSetMetaData md = rs.getMetaData();
            String[] names = COLS.split(", ");
            for (int i = 1; i <= names.length; i++) eq(ctx + "column " + i + " name", names[i - 1], md.getColumnName(i));
            checkRow1(rs, ctx + "verified_get row: ");
            String[] proofCols = {"_tx", "_commit_ts", "_entry_index", "_entry", "_entry_proof", "_leaf", "_tx_proof",
                "_tree_size", "_root", "_checkpoint", "_signature"};
            for (int i = 0; i < proofCols.length; i++)
                eq(ctx + "proof column " + (names.length + 1 + i), proofCols[i], md.getColumnName(names.length + 1 + i));
            tx = rs.getLong("_tx");
            truth(ctx + "_commit_ts is a timestamp", rs.getTimestamp("_commit_ts") != null);
            entryIndex = rs.getLong("_entry_index");
            entryHex = rs.getString("_entry");
            entryProof = hashes((String[]) rs.getArray("_entry_proof").getArray());
            leafHex = rs.getString("_leaf");
            txProof = hashes((String[]) rs.getArray("_tx_proof").getArray());
            size = rs.getLong("_tree_size");
            rootHex = rs.getString("_root");
            checkpoint = rs.getString("_checkpoint");
            truth(ctx + "_signature is base64", Base64.getDecoder().decode(rs.getString("_signature")).length > 8);
            truth(ctx + "one row", !rs.next());
        }
        truth(ctx + "_tx in 1.._tree_size (" + tx + ", " + size + ")", tx >= 1 && tx <= size);
        checkCheckpointBody(checkpoint, size, rootHex, ctx + "_checkpoint");

        // The leaf (docs/FORMAT.md): version 1, tx id, ..., entry count at 25, entries root at 29.
        byte[] leaf = unhex(leafHex);
        truth(ctx + "leaf is 94 or 126 bytes, got " + leaf.length, leaf.length == 94 || leaf.length == 126);
        eq(ctx + "leaf version", 1, (int) leaf[0]);
        eq(ctx + "leaf tx id", tx, beLong(leaf, 1));
        long entryCount = beLong(leaf, 25) >>> 32;
        byte[] entriesRoot = Arrays.copyOfRange(leaf, 29, 61);
        truth(ctx + "_entry_index < entry count (" + entryIndex + ", " + entryCount + ")", entryIndex < entryCount);

        // Entry -> the transaction's entries root.
        byte[] entryLeafHash = leafHash(unhex(entryHex));
        byte[] gotEntriesRoot = rootFromInclusion(entryIndex, entryCount, entryLeafHash, entryProof);
        truth(ctx + "the entry proof does not verify", gotEntriesRoot != null);
        eq(ctx + "entries root recomputed from _entry and _entry_proof", hex(entriesRoot), hex(gotEntriesRoot));

        // Leaf -> the signed tree's root (RFC 9162 §2.1.3.2, leaf index tx - 1).
        byte[] leafHash = leafHash(leaf);
        byte[] gotRoot = rootFromInclusion(tx - 1, size, leafHash, txProof);
        truth(ctx + "the tx proof does not verify", gotRoot != null);
        eq(ctx + "root recomputed from _leaf and _tx_proof", rootHex, hex(gotRoot));
        byte[] tampered = leaf.clone();
        tampered[tampered.length - 1] ^= 1;
        truth(ctx + "a changed leaf must not verify",
            !Arrays.equals(unhex(rootHex), rootFromInclusion(tx - 1, size, leafHash(tampered), txProof)));

        // The same proof from inclusion_proof(_tx, _tree_size), bound as parameters.
        try (PreparedStatement ps2 = c.prepareStatement("SELECT tx, leaf_index, tree_size, leaf_hash, root, proof FROM inclusion_proof(?, ?)")) {
            ps2.setLong(1, tx);
            ps2.setLong(2, size);
            try (ResultSet rs = ps2.executeQuery()) {
                truth(ctx + "inclusion_proof returned a row", rs.next());
                eq(ctx + "inclusion_proof tx", tx, rs.getLong("tx"));
                eq(ctx + "inclusion_proof leaf_index", tx - 1, rs.getLong("leaf_index"));
                eq(ctx + "inclusion_proof tree_size", size, rs.getLong("tree_size"));
                eq(ctx + "inclusion_proof leaf_hash = sha256(00 || _leaf)", hex(leafHash), rs.getString("leaf_hash"));
                eq(ctx + "inclusion_proof root = _root", rootHex, rs.getString("root"));
                String[] proof = (String[]) rs.getArray("proof").getArray();
                eq(ctx + "inclusion_proof proof = _tx_proof", hexes(txProof), Arrays.asList(proof));
            }
        }
        return mode;
    }

    static String formats(ResultSet rs) throws SQLException {
        PGResultSetMetaData md = rs.getMetaData().unwrap(PGResultSetMetaData.class);
        int n = rs.getMetaData().getColumnCount(), binary = 0;
        for (int i = 1; i <= n; i++) if (md.getFormat(i) == 1) binary++;
        return binary == 0 ? "text" : "binary";
    }

    // ---------------------------------------------------------------- RFC 9162 in Java

    static byte[] sha256(byte prefix, byte[]... parts) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update(prefix);
            for (byte[] p : parts) md.update(p);
            return md.digest();
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    static byte[] leafHash(byte[] leaf) { return sha256((byte) 0, leaf); }

    static byte[] node(byte[] left, byte[] right) { return sha256((byte) 1, left, right); }

    /** RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or null if the proof is malformed. */
    static byte[] rootFromInclusion(long index, long size, byte[] leafHash, byte[][] path) {
        if (index >= size) return null;
        long fn = index, sn = size - 1;
        byte[] r = leafHash;
        for (byte[] p : path) {
            if (sn == 0) return null;
            if ((fn & 1) == 1 || fn == sn) {
                r = node(p, r);
                if ((fn & 1) == 0) {
                    while ((fn & 1) == 0 && fn != 0) { fn >>= 1; sn >>= 1; }
                }
            } else {
                r = node(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 ? r : null;
    }

    /** RFC 9162 §2.1.4.2. */
    static boolean verifyConsistency(long first, long second, byte[] firstHash, byte[] secondHash, byte[][] path) {
        if (first == second) return path.length == 0 && Arrays.equals(firstHash, secondHash);
        if (first == 0 || first > second || path.length == 0) return false;
        List<byte[]> p = new ArrayList<>(Arrays.asList(path));
        if ((first & (first - 1)) == 0) p.add(0, firstHash);
        long fn = first - 1, sn = second - 1;
        while ((fn & 1) == 1) { fn >>= 1; sn >>= 1; }
        byte[] fr = p.get(0), sr = p.get(0);
        for (byte[] c : p.subList(1, p.size())) {
            if (sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn) {
                fr = node(c, fr);
                sr = node(c, sr);
                if ((fn & 1) == 0) {
                    while ((fn & 1) == 0 && fn != 0) { fn >>= 1; sn >>= 1; }
                }
            } else {
                sr = node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        return Arrays.equals(fr, firstHash) && Arrays.equals(sr, secondHash) && sn == 0;
    }

    static long beLong(byte[] b, int off) {
        long v = 0;
        for (int i = 0; i < 8; i++) v = (v << 8) | (b[off + i] & 0xff);
        return v;
    }

    static byte[][] hashes(String[] hex) {
        byte[][] out = new byte[hex.length][];
        for (int i = 0; i < hex.length; i++) {
            out[i] = unhex(hex[i]);
            truth("proof hash " + i + " is 32 bytes: " + hex[i], out[i].length == 32);
        }
        return out;
    }

    static List<String> hexes(byte[][] hs) {
        List<String> out = new ArrayList<>();
        for (byte[] h : hs) out.add(hex(h));
        return out;
    }

    static byte[] unhex(String s) {
        truth("even-length lowercase hex: " + s, s != null && s.matches("([0-9a-f]{2})*"));
        byte[] out = new byte[s.length() / 2];
        for (int i = 0; i < out.length; i++) out[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        return out;
    }

    static String hex(byte[] b) {
        if (b == null) return "null";
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x & 0xff));
        return sb.toString();
    }
}
