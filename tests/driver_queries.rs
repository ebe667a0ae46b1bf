//! The introspection queries asyncpg and pgjdbc send at connect and first use, verbatim
//! (tests/support/driver_queries.rs), run as the drivers run them (prepared, with parameters) and
//! checked for the built-in types. `DRIVER_QUERIES_URL` (a libpq connection string) runs the same
//! checks against another server, e.g. PostgreSQL 15.

mod common;
#[path = "support/driver_queries.rs"]
mod q;

use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};

/// A result cell as text, whatever its type (NULL as "NULL").
fn cell(row: &Row, i: usize) -> String {
    let ty = row.columns()[i].type_().clone();
    macro_rules! get {
        ($t:ty) => {
            row.get::<_, Option<$t>>(i).map_or("NULL".to_string(), |v| v.to_string())
        };
    }
    match ty {
        Type::OID => get!(u32),
        Type::INT8 => get!(i64),
        Type::INT4 => get!(i32),
        Type::INT2 => get!(i16),
        Type::BOOL => get!(bool),
        Type::CHAR => row.get::<_, Option<i8>>(i).map_or("NULL".to_string(), |v| (v as u8 as char).to_string()),
        Type::OID_ARRAY => row.get::<_, Option<Vec<u32>>>(i).map_or("NULL".to_string(), |v| format!("{v:?}")),
        Type::INT8_ARRAY => row.get::<_, Option<Vec<i64>>>(i).map_or("NULL".to_string(), |v| format!("{v:?}")),
        Type::TEXT_ARRAY | Type::NAME_ARRAY => row.get::<_, Option<Vec<String>>>(i).map_or("NULL".to_string(), |v| format!("{v:?}")),
        _ => get!(String),
    }
}

async fn run(c: &Client, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> (Vec<String>, Vec<Vec<String>>) {
    let stmt = c.prepare(sql).await.unwrap_or_else(|e| panic!("prepare: {e:?}\n{sql}"));
    let types = stmt.columns().iter().map(|c| format!("{}:{}", c.name(), c.type_().name())).collect();
    let rows = c.query(&stmt, params).await.unwrap_or_else(|e| panic!("execute: {e:?}\n{sql}"));
    (types, rows.iter().map(|r| (0..r.len()).map(|i| cell(r, i)).collect()).collect())
}

async fn connect() -> (Option<common::Server>, Client) {
    let (server, url) = match std::env::var("DRIVER_QUERIES_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let s = common::Server::start();
            let url = s.url();
            (Some(s), url)
        }
    };
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    (server, client)
}

/// Run `sql` with `params`; the rows as text, the current database's name as "<db>".
async fn rows(c: &Client, sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]) -> Vec<Vec<String>> {
    let db: String = c.query_one("SELECT current_database()::text", &[]).await.unwrap().get(0);
    let (_, rows) = run(c, sql, params).await;
    rows.into_iter().map(|r| r.into_iter().map(|v| if v == db { "<db>".to_string() } else { v }).collect()).collect()
}

fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|v| v.to_string()).collect()).collect()
}

/// An oid parameter as the server described it: oid in PostgreSQL, bigint in vouchdb.
async fn by_oid(c: &Client, sql: &str, oid: u32) -> Vec<Vec<String>> {
    let stmt = c.prepare(sql).await.unwrap_or_else(|e| panic!("prepare: {e:?}\n{sql}"));
    if stmt.params()[0] == Type::OID {
        rows(c, sql, &[&oid]).await
    } else {
        rows(c, sql, &[&(oid as i64)]).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncpg_and_pgjdbc_introspection_queries() {
    let (_server, c) = connect().await;
    c.batch_execute(
        "DROP VIEW IF EXISTS drv_view; DROP TABLE IF EXISTS drv_items; \
         CREATE TABLE drv_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price NUMERIC, tags TEXT[], at TIMESTAMPTZ DEFAULT now()); \
         CREATE VIEW drv_view AS SELECT id, name FROM drv_items",
    )
    .await
    .unwrap();

    // asyncpg: the recursive type introspection, for a scalar, an array (and its element) and numeric.
    let stmt = c.prepare(q::ASYNCPG_INTRO_LOOKUP_TYPES).await.unwrap();
    let oids = [23u32, 1007, 1700, 25];
    let mut got = if stmt.params()[0] == Type::OID_ARRAY {
        rows(&c, q::ASYNCPG_INTRO_LOOKUP_TYPES, &[&oids.to_vec()]).await
    } else {
        rows(&c, q::ASYNCPG_INTRO_LOOKUP_TYPES, &[&oids.iter().map(|&o| o as i64).collect::<Vec<_>>()]).await
    };
    // ORDER BY depth DESC leaves the order within a depth open.
    got.sort_by(|a, b| b[10].cmp(&a[10]).then(a[0].parse::<u32>().unwrap().cmp(&b[0].parse().unwrap())));
    let n = "NULL";
    assert_eq!(
        got,
        strings(&[
            &["23", "pg_catalog", "int4", "b", n, "0", n, n, n, n, "1", n, "-", n],
            &["23", "pg_catalog", "int4", "b", n, "0", n, n, n, n, "0", n, "-", n],
            &["25", "pg_catalog", "text", "b", n, "0", n, n, n, n, "0", n, "-", n],
            &["1007", "pg_catalog", "_int4", "b", n, "23", ",", n, n, n, "0", n, "integer", n],
            &["1700", "pg_catalog", "numeric", "b", n, "0", n, n, n, n, "0", n, "-", n],
        ])
    );
    assert_eq!(rows(&c, q::ASYNCPG_TYPE_BY_NAME, &[&"int4", &"pg_catalog"]).await, strings(&[&["23", "0", "b"]]));
    assert_eq!(rows(&c, q::ASYNCPG_TYPE_BY_NAME, &[&"nosuchtype", &"pg_catalog"]).await, strings(&[]));

    // pgjdbc's TypeInfoCache.
    assert_eq!(by_oid(&c, q::PGJDBC_GET_SQL_TYPE, 1007).await, strings(&[&["true", "b", "_int4", "1007"]]));
    assert_eq!(by_oid(&c, q::PGJDBC_GET_SQL_TYPE, 1700).await, strings(&[&["false", "b", "numeric", "1700"]]));
    assert_eq!(rows(&c, q::PGJDBC_OID_SIMPLE, &[&"int4"]).await, strings(&[&["23", "int4"]]));
    assert_eq!(rows(&c, q::PGJDBC_OID_SIMPLE, &[&"timestamptz"]).await, strings(&[&["1184", "timestamptz"]]));
    assert_eq!(rows(&c, q::PGJDBC_OID_ARRAY, &[&"int4", &"pg_catalog", &true]).await, strings(&[&["1007", "_int4"]]));
    assert_eq!(rows(&c, q::PGJDBC_OID_ARRAY, &[&"text", &"public", &true]).await, strings(&[&["1009", "_text"]]));
    assert_eq!(rows(&c, q::PGJDBC_OID_NON_ARRAY, &[&"numeric", &"public", &true]).await, strings(&[&["1700", "numeric"]]));
    assert_eq!(rows(&c, q::PGJDBC_OID_NON_ARRAY, &[&"numeric", &"public", &false]).await, strings(&[]));
    assert_eq!(by_oid(&c, q::PGJDBC_TYPE_NAME, 1700).await, strings(&[&["true", "pg_catalog", "numeric"]]));
    assert_eq!(by_oid(&c, q::PGJDBC_ARRAY_DELIMITER, 1009).await, strings(&[&[","]]));
    assert_eq!(by_oid(&c, q::PGJDBC_ARRAY_ELEMENT, 1009).await, strings(&[&["25", "true", "pg_catalog", "text"]]));

    // pgjdbc's DatabaseMetaData.getTables and getColumns.
    let e = "";
    assert_eq!(
        rows(&c, q::PGJDBC_GET_TABLES, &[&"public", &"drv%"]).await,
        strings(&[&["<db>", "public", "drv_items", "TABLE", n, e, e, e, e, e], &["<db>", "public", "drv_view", "VIEW", n, e, e, e, e, e]])
    );
    assert_eq!(
        rows(&c, q::PGJDBC_GET_COLUMNS, &[&"public", &"drv%", &"%"]).await,
        strings(&[
            &["<db>", "public", "drv_items", "id", "23", "true", "-1", "4", "-1", "1", n, n, n, n, "0", "b"],
            &["<db>", "public", "drv_items", "name", "25", "true", "-1", "-1", "-1", "2", n, n, n, n, "0", "b"],
            &["<db>", "public", "drv_items", "price", "1700", "false", "-1", "-1", "-1", "3", n, n, n, n, "0", "b"],
            &["<db>", "public", "drv_items", "tags", "1009", "false", "-1", "-1", "-1", "4", n, n, n, n, "0", "b"],
            &["<db>", "public", "drv_items", "at", "1184", "false", "-1", "8", "-1", "5", n, n, "now()", n, "0", "b"],
            &["<db>", "public", "drv_view", "id", "23", "false", "-1", "4", "-1", "1", n, n, n, n, "0", "b"],
            &["<db>", "public", "drv_view", "name", "25", "false", "-1", "-1", "-1", "2", n, n, n, n, "0", "b"],
        ])
    );
    // Only the columns asked for keep their numbers (row_number() runs before the outer filter).
    let cols = rows(&c, q::PGJDBC_GET_COLUMNS, &[&"public", &"drv_items", &"pr%"]).await;
    assert_eq!((cols.len(), cols[0][3].as_str(), cols[0][9].as_str()), (1, "price", "3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_ctes_row_number_and_join_using() {
    let (_server, c) = connect().await;
    let q = |sql: &'static str| {
        let c = &c;
        async move { rows(c, sql, &[]).await }
    };
    assert_eq!(
        q("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 5) SELECT sum(n)::int, count(*)::int FROM t").await,
        strings(&[&["15", "5"]])
    );
    // UNION (not ALL) stops when a round adds nothing new.
    assert_eq!(
        q("WITH RECURSIVE t(n) AS (SELECT 1 UNION SELECT (n % 3) + 1 FROM t) SELECT n FROM t ORDER BY n").await,
        strings(&[&["1"], &["2"], &["3"]])
    );
    // A correlated recursive CTE inside a scalar subquery, as asyncpg's typebases.
    assert_eq!(
        q("SELECT x, (WITH RECURSIVE d(v, depth) AS (SELECT x, 0 UNION ALL SELECT v / 2, depth + 1 FROM d WHERE v > 1) \
           SELECT depth FROM d ORDER BY depth DESC LIMIT 1) FROM (VALUES (1), (8), (9)) AS s(x) ORDER BY x")
        .await,
        strings(&[&["1", "0"], &["8", "3"], &["9", "3"]])
    );
    assert_eq!(
        q("SELECT g, v, row_number() OVER (PARTITION BY g ORDER BY v DESC) AS rn FROM (VALUES ('a', 1), ('b', 5), ('a', 3), ('a', 2)) AS s(g, v) ORDER BY g, rn")
            .await,
        strings(&[&["a", "3", "1"], &["a", "2", "2"], &["a", "1", "3"], &["b", "5", "1"]])
    );
    assert_eq!(
        q("SELECT l.k, l.a, r.b FROM (VALUES (1, 'x'), (2, 'y')) AS l(k, a) JOIN (VALUES (2, 'z'), (3, 'w')) AS r(k, b) USING (k)").await,
        strings(&[&["2", "y", "z"]])
    );
    assert_eq!(
        q("SELECT current_schemas(false)::text, current_schemas(true)::text").await,
        strings(&[&["{public}", "{pg_catalog,public}"]])
    );
}
