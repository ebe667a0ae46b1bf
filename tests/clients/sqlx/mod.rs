//! sqlx 0.8 (Postgres, tokio runtime) through its compile-free `query` API: sqlx prepares and describes
//! every statement, binds parameters in binary and reads results in binary. Every check of
//! tests/clients/README.md, with sqlx's chrono, uuid, rust_decimal and serde_json types.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Row;
use std::str::FromStr;

const CREATE: &str = "CREATE TABLE sqlx_types (
    id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
    f8 double precision, n numeric(12,3), t text, vc varchar(20), bin bytea, ts timestamp,
    tstz timestamptz, d date, u uuid, j jsonb, ai integer[], ta text[])";

const INSERT: &str = "INSERT INTO sqlx_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

fn options(server: &crate::common::Server, password: &str) -> PgConnectOptions {
    PgConnectOptions::new().host("127.0.0.1").port(server.port).username("admin").password(password).database("vouchdb")
}

/// The SQLSTATE of a failed query.
fn code(r: Result<impl std::fmt::Debug, sqlx::Error>) -> String {
    let e = r.expect_err("the statement fails");
    e.as_database_error().and_then(|d| d.code().map(|c| c.to_string())).unwrap_or_else(|| panic!("no SQLSTATE: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlx_contract() {
    let mut server = crate::common::Server::start();
    // 1. SCRAM.
    let wrong = PgPoolOptions::new().max_connections(1).connect_with(options(&server, "wrong")).await;
    assert_eq!(code(wrong), "28P01");
    let pool: PgPool = PgPoolOptions::new().max_connections(4).connect_with(options(&server, crate::common::PASSWORD)).await.unwrap();

    // 2–3. Every type through bound parameters.
    sqlx::query(CREATE).execute(&pool).await.unwrap();
    let ts = NaiveDateTime::parse_from_str("2024-02-29 13:45:56.123456", "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let tstz = DateTime::parse_from_str("2024-02-29 13:45:56.123456 +05:30", "%Y-%m-%d %H:%M:%S%.f %z").unwrap().with_timezone(&Utc);
    let d = NaiveDate::from_ymd_opt(1999, 12, 31).unwrap();
    let u = uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
    let j = serde_json::json!({"a": [1, 2, {"b": null}], "c": "x"});
    let n = Decimal::from_str("12345.678").unwrap();
    let bin = vec![0x00u8, 0xff, 0x27, 0x5c];
    let ai = vec![Some(1i32), None, Some(3)];
    let ta = vec![Some("a".to_string()), Some("b c".to_string()), None];
    sqlx::query(INSERT)
        .bind(1i64)
        .bind(true)
        .bind(i16::MIN)
        .bind(i32::MAX)
        .bind(i64::MIN)
        .bind(1.5f32)
        .bind(-0.1f64)
        .bind(n)
        .bind("zoë ✓ \"q\"")
        .bind("varchar")
        .bind(&bin)
        .bind(ts)
        .bind(tstz)
        .bind(d)
        .bind(u)
        .bind(&j)
        .bind(&ai)
        .bind(&ta)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(INSERT)
        .bind(2i64)
        .bind(None::<bool>)
        .bind(None::<i16>)
        .bind(None::<i32>)
        .bind(None::<i64>)
        .bind(None::<f32>)
        .bind(None::<f64>)
        .bind(None::<Decimal>)
        .bind(None::<String>)
        .bind(None::<String>)
        .bind(None::<Vec<u8>>)
        .bind(None::<NaiveDateTime>)
        .bind(None::<DateTime<Utc>>)
        .bind(None::<NaiveDate>)
        .bind(None::<uuid::Uuid>)
        .bind(None::<serde_json::Value>)
        .bind(None::<Vec<i32>>)
        .bind(None::<Vec<String>>)
        .execute(&pool)
        .await
        .unwrap();

    // 4. Read back as sqlx's types (binary results).
    let r = sqlx::query("SELECT * FROM sqlx_types WHERE id = $1").bind(1i64).fetch_one(&pool).await.unwrap();
    assert!(r.get::<bool, _>("b"));
    assert_eq!(r.get::<i16, _>("i2"), i16::MIN);
    assert_eq!(r.get::<i32, _>("i4"), i32::MAX);
    assert_eq!(r.get::<i64, _>("i8"), i64::MIN);
    assert_eq!(r.get::<f32, _>("f4"), 1.5);
    assert_eq!(r.get::<f64, _>("f8"), -0.1);
    assert_eq!(r.get::<Decimal, _>("n"), n);
    assert_eq!(r.get::<String, _>("t"), "zoë ✓ \"q\"");
    assert_eq!(r.get::<String, _>("vc"), "varchar");
    assert_eq!(r.get::<Vec<u8>, _>("bin"), bin);
    assert_eq!(r.get::<NaiveDateTime, _>("ts"), ts);
    assert_eq!(r.get::<DateTime<Utc>, _>("tstz"), tstz);
    assert_eq!(r.get::<NaiveDate, _>("d"), d);
    assert_eq!(r.get::<uuid::Uuid, _>("u"), u);
    assert_eq!(r.get::<serde_json::Value, _>("j"), j);
    assert_eq!(r.get::<Vec<Option<i32>>, _>("ai"), ai);
    assert_eq!(r.get::<Vec<Option<String>>, _>("ta"), ta);
    let r = sqlx::query("SELECT * FROM sqlx_types WHERE id = $1").bind(2i64).fetch_one(&pool).await.unwrap();
    assert_eq!(r.get::<Option<bool>, _>("b"), None);
    assert_eq!(r.get::<Option<Decimal>, _>("n"), None);
    assert_eq!(r.get::<Option<DateTime<Utc>>, _>("tstz"), None);
    assert_eq!(r.get::<Option<serde_json::Value>, _>("j"), None);
    assert_eq!(r.get::<Option<Vec<String>>, _>("ta"), None);

    // 5. Transactions.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO sqlx_types (id) VALUES ($1)").bind(3i64).execute(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO sqlx_types (id) VALUES ($1)").bind(4i64).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM sqlx_types ORDER BY id").fetch_all(&pool).await.unwrap();
    assert_eq!(ids, [1, 2, 4]);
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(code(sqlx::query("INSERT INTO sqlx_types (id) VALUES ($1)").bind(1i64).execute(&mut *tx).await), "23505");
    assert_eq!(code(sqlx::query("SELECT 1").execute(&mut *tx).await), "25P02");
    tx.rollback().await.unwrap();

    // 6. Errors.
    assert_eq!(code(sqlx::query("SELECT * FROM no_such_table").fetch_all(&pool).await), "42P01");
    assert_eq!(code(sqlx::query("SELEC 1").fetch_all(&pool).await), "42601");
    assert_eq!(code(sqlx::query("SELECT 1 / $1::int").bind(0i32).fetch_all(&pool).await), "22012");
    assert_eq!(code(sqlx::query("UPDATE sqlx_types SET vc = $1 WHERE id = 1").bind("x".repeat(21)).execute(&pool).await), "22001");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlx_types").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 3);

    // 7. Verification functions with a bound key.
    let size: i64 = sqlx::query_scalar("SELECT tree_size FROM vouch_checkpoint()").fetch_one(&pool).await.unwrap();
    let r = sqlx::query("SELECT t, _tx, _tree_size, _root, _tx_proof FROM verified_get('sqlx_types', $1)")
        .bind(1i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(r.get::<String, _>("t"), "zoë ✓ \"q\"");
    let (tx, tree, root): (i64, i64, String) = (r.get("_tx"), r.get("_tree_size"), r.get("_root"));
    assert!(tx >= 1 && tree >= size, "tx {tx}, tree {tree}, checkpoint {size}");
    let proof: Vec<String> = r.get("_tx_proof");
    let inc = sqlx::query("SELECT root, proof FROM inclusion_proof($1, $2)").bind(tx).bind(tree).fetch_one(&pool).await.unwrap();
    assert_eq!(inc.get::<String, _>("root"), root);
    assert_eq!(inc.get::<Vec<String>, _>("proof"), proof);
    pool.close().await;
    server.check_ledger();
}
