//! tokio-postgres: every check of tests/clients/README.md with the driver's own types (chrono, uuid,
//! serde_json, rust_decimal through postgres-types' features). `query` sends parameters and receives
//! results in binary; `simple_query` receives text, so both formats are compared. The proof returned by
//! `verified_get` is checked by vouchdb's client library (src/client), which is built on this driver.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, SimpleQueryMessage};
use vouchdb::client::state::TrustedState;
use vouchdb::client::{Trust, VerifyingClient};

/// The contract's row 1, as Rust values.
struct Row1 {
    ts: NaiveDateTime,
    tstz: DateTime<FixedOffset>,
    d: NaiveDate,
    u: uuid::Uuid,
    j: serde_json::Value,
    n: Decimal,
}

fn row1() -> Row1 {
    Row1 {
        ts: NaiveDateTime::parse_from_str("2024-02-29 13:45:56.123456", "%Y-%m-%d %H:%M:%S%.f").unwrap(),
        tstz: DateTime::parse_from_str("2024-02-29 13:45:56.123456 +05:30", "%Y-%m-%d %H:%M:%S%.f %z").unwrap(),
        d: NaiveDate::from_ymd_opt(1999, 12, 31).unwrap(),
        u: uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap(),
        j: serde_json::json!({"a": [1, 2, {"b": null}], "c": "x"}),
        n: Decimal::from_str("12345.678").unwrap(),
    }
}

const CREATE: &str = "CREATE TABLE tokio_postgres_types (
    id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, i8 bigint, f4 real,
    f8 double precision, n numeric(12,3), t text, vc varchar(20), bin bytea, ts timestamp,
    tstz timestamptz, d date, u uuid, j jsonb, ai integer[], ta text[])";

const INSERT: &str =
    "INSERT INTO tokio_postgres_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

async fn sqlstate(c: &impl GenericClient, sql: &str, params: &[&(dyn ToSql + Sync)]) -> String {
    match c.query(sql, params).await {
        Ok(_) => panic!("{sql} succeeded"),
        Err(e) => e.code().map(|s| s.code().to_string()).unwrap_or_else(|| panic!("{sql}: no SQLSTATE: {e}")),
    }
}

async fn text_row(c: &Client, sql: &str) -> Vec<Option<String>> {
    for m in c.simple_query(sql).await.unwrap() {
        if let SimpleQueryMessage::Row(r) = m {
            return (0..r.len()).map(|i| r.get(i).map(str::to_string)).collect();
        }
    }
    panic!("{sql}: no row")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_contract() {
    let mut server = crate::common::Server::start();
    // 1. SCRAM: the right password connects (Server::client), a wrong one is 28P01.
    let wrong = server.url().replace(crate::common::PASSWORD, "wrong");
    let err = tokio_postgres::connect(&wrong, NoTls).await.err().expect("a wrong password is refused");
    assert_eq!(err.code().map(|s| s.code()), Some("28P01"), "{err}");
    let c = server.client().await;

    // 2–3. Every type through bound parameters, in binary.
    c.batch_execute(CREATE).await.unwrap();
    let v = row1();
    let bin: &[u8] = &[0x00, 0xff, 0x27, 0x5c];
    let ai = vec![Some(1i32), None, Some(3)];
    let ta = vec![Some("a"), Some("b c"), None];
    let params: [&(dyn ToSql + Sync); 18] = [
        &1i64,
        &true,
        &i16::MIN,
        &i32::MAX,
        &i64::MIN,
        &1.5f32,
        &-0.1f64,
        &v.n,
        &"zoë ✓ \"q\"",
        &"varchar",
        &bin,
        &v.ts,
        &v.tstz,
        &v.d,
        &v.u,
        &v.j,
        &ai,
        &ta,
    ];
    c.execute(INSERT, &params).await.unwrap();
    let nulls: [&(dyn ToSql + Sync); 18] = [
        &2i64,
        &None::<bool>,
        &None::<i16>,
        &None::<i32>,
        &None::<i64>,
        &None::<f32>,
        &None::<f64>,
        &None::<Decimal>,
        &None::<String>,
        &None::<String>,
        &None::<Vec<u8>>,
        &None::<NaiveDateTime>,
        &None::<DateTime<Utc>>,
        &None::<NaiveDate>,
        &None::<uuid::Uuid>,
        &None::<serde_json::Value>,
        &None::<Vec<i32>>,
        &None::<Vec<String>>,
    ];
    c.execute(INSERT, &nulls).await.unwrap();

    // 4. Read back in binary, as the driver's types.
    let r = c.query_one("SELECT * FROM tokio_postgres_types WHERE id = $1", &[&1i64]).await.unwrap();
    assert!(r.get::<_, bool>("b"));
    assert_eq!(r.get::<_, i16>("i2"), i16::MIN);
    assert_eq!(r.get::<_, i32>("i4"), i32::MAX);
    assert_eq!(r.get::<_, i64>("i8"), i64::MIN);
    assert_eq!(r.get::<_, f32>("f4"), 1.5);
    assert_eq!(r.get::<_, f64>("f8"), -0.1);
    assert_eq!(r.get::<_, Decimal>("n"), v.n);
    assert_eq!(r.get::<_, String>("t"), "zoë ✓ \"q\"");
    assert_eq!(r.get::<_, String>("vc"), "varchar");
    assert_eq!(r.get::<_, Vec<u8>>("bin"), bin);
    assert_eq!(r.get::<_, NaiveDateTime>("ts"), v.ts);
    assert_eq!(r.get::<_, DateTime<Utc>>("tstz"), v.tstz.with_timezone(&Utc));
    assert_eq!(r.get::<_, NaiveDate>("d"), v.d);
    assert_eq!(r.get::<_, uuid::Uuid>("u"), v.u);
    assert_eq!(r.get::<_, serde_json::Value>("j"), v.j);
    assert_eq!(r.get::<_, Vec<Option<i32>>>("ai"), ai);
    assert_eq!(r.get::<_, Vec<Option<String>>>("ta"), vec![Some("a".to_string()), Some("b c".to_string()), None]);
    let r = c.query_one("SELECT * FROM tokio_postgres_types WHERE id = $1", &[&2i64]).await.unwrap();
    for i in 1..r.len() {
        assert!(r.try_get::<_, Option<String>>(i).is_err() || r.get::<_, Option<String>>(i).is_none(), "column {i} of row 2");
    }
    assert_eq!(r.get::<_, Option<NaiveDateTime>>("ts"), None);
    assert_eq!(r.get::<_, Option<Vec<Option<i32>>>>("ai"), None);
    // …and in text, as PostgreSQL prints them (session time zone UTC).
    let text = text_row(&c, "SELECT * FROM tokio_postgres_types WHERE id = 1").await;
    let expected = [
        "1",
        "t",
        "-32768",
        "2147483647",
        "-9223372036854775808",
        "1.5",
        "-0.1",
        "12345.678",
        "zoë ✓ \"q\"",
        "varchar",
        "\\x00ff275c",
        "2024-02-29 13:45:56.123456",
        "2024-02-29 08:15:56.123456+00",
        "1999-12-31",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        r#"{"a": [1, 2, {"b": null}], "c": "x"}"#,
        "{1,NULL,3}",
        r#"{a,"b c",NULL}"#,
    ];
    assert_eq!(text, expected.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>());
    let text = text_row(&c, "SELECT * FROM tokio_postgres_types WHERE id = 2").await;
    assert_eq!(text[0].as_deref(), Some("2"));
    assert!(text[1..].iter().all(Option::is_none), "{text:?}");

    // 5. Transactions.
    let mut c = c;
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO tokio_postgres_types (id) VALUES ($1)", &[&3i64]).await.unwrap();
    tx.rollback().await.unwrap();
    let tx = c.transaction().await.unwrap();
    tx.execute("INSERT INTO tokio_postgres_types (id) VALUES ($1)", &[&4i64]).await.unwrap();
    tx.commit().await.unwrap();
    let ids: Vec<i64> = c.query("SELECT id FROM tokio_postgres_types ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(ids, [1, 2, 4]);
    let tx = c.transaction().await.unwrap();
    assert_eq!(sqlstate(&tx, "INSERT INTO tokio_postgres_types (id) VALUES (1)", &[]).await, "23505");
    assert_eq!(sqlstate(&tx, "SELECT 1", &[]).await, "25P02");
    tx.rollback().await.unwrap();

    // 6. Errors keep the connection usable.
    assert_eq!(sqlstate(&c, "INSERT INTO tokio_postgres_types (id) VALUES ($1)", &[&1i64]).await, "23505");
    assert_eq!(sqlstate(&c, "SELECT * FROM no_such_table", &[]).await, "42P01");
    assert_eq!(sqlstate(&c, "SELEC 1", &[]).await, "42601");
    assert_eq!(sqlstate(&c, "SELECT 1 / $1::int", &[&0i32]).await, "22012");
    assert_eq!(sqlstate(&c, "UPDATE tokio_postgres_types SET vc = $1 WHERE id = 1", &[&"x".repeat(21)]).await, "22001");
    assert_eq!(c.query_one("SELECT count(*) FROM tokio_postgres_types", &[]).await.unwrap().get::<_, i64>(0), 3);

    // 7. Verification: the SQL functions with a bound key, and the proof checked by the client library.
    let size: i64 = c.query_one("SELECT tree_size FROM vouch_checkpoint()", &[]).await.unwrap().get(0);
    let r = c.query_one("SELECT t, _tx, _tree_size, _root FROM verified_get('tokio_postgres_types', $1)", &[&1i64]).await.unwrap();
    assert_eq!(r.get::<_, String>(0), "zoë ✓ \"q\"");
    let (tx, tree, root): (i64, i64, String) = (r.get(1), r.get(2), r.get(3));
    assert!(tx >= 1 && tree >= size, "tx {tx}, tree {tree}, checkpoint {size}");
    let inc = c.query_one("SELECT root, leaf_index FROM inclusion_proof($1, $2)", &[&tx, &tree]).await.unwrap();
    assert_eq!((inc.get::<_, String>(0), inc.get::<_, i64>(1)), (root, tx - 1));
    let state_file = server.dir.path().join("trusted-state.json");
    let state = TrustedState::load(&state_file).unwrap();
    let key = std::fs::read_to_string(server.public_key_file()).unwrap();
    let mut vc = VerifyingClient::connect(&server.url(), state, Trust::Pinned(key)).await.unwrap();
    let row = vc.verified_get("tokio_postgres_types", &[vouchdb::sql::Value::Int(1)]).await.unwrap().expect("row 1");
    assert_eq!(row.tx, tx as u64);
    drop((c, vc));
    server.check_ledger();
}
