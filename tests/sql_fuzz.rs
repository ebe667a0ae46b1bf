//! Random statements built from SQL fragments, run through the real engine over a real store: every one
//! must end in a result or a SQL error, never a panic, and the store must stay consistent.

use proptest::prelude::*;
use std::sync::Arc;
use vouchdb::ledger::{Ledger, Options};
use vouchdb::signing::CheckpointSigner;
use vouchdb::sql::{Engine, Session};

const FRAGMENTS: &[&str] = &[
    "SELECT",
    "*",
    "FROM",
    "t",
    "u",
    "WHERE",
    "id",
    "v",
    "=",
    "<",
    ">=",
    "<>",
    "1",
    "-1",
    "0",
    "2147483648",
    "'x'",
    "''",
    "NULL",
    "(",
    ")",
    ",",
    "count(*)",
    "sum(v)",
    "max(id)",
    "GROUP BY",
    "ORDER BY",
    "LIMIT",
    "OFFSET",
    "AND",
    "OR",
    "NOT",
    "IN",
    "EXISTS",
    "UNION ALL",
    "JOIN",
    "LEFT JOIN",
    "ON",
    "AS",
    "a",
    "t.id",
    "u.v",
    "INSERT INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE",
    "CASE WHEN",
    "THEN",
    "ELSE",
    "END",
    "::int",
    "::text",
    "/ 0",
    "+",
    "*",
    "||",
    "BETWEEN",
    "LIKE",
    "'%'",
    "IS NULL",
    "DISTINCT",
    "HAVING",
    "WITH",
    "x",
    "AS OF TX",
    "history('t', 1)",
    "vouch_checkpoint()",
    "$1",
    ";",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "CREATE INDEX ON t (v)",
    "RETURNING",
];

/// Fragment soup: mostly rejected by the parser, which must reject it cleanly.
fn soup() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 1..14).prop_map(|v| v.join(" "))
}

/// Well-formed statements with random expressions: these reach the planner and the executor.
fn expr() -> impl Strategy<Value = String> {
    let leaf = proptest::sample::select(vec!["id", "v", "t.id", "1", "0", "-7", "NULL", "'x'", "''", "2147483647", "1.5", "true", "now()"])
        .prop_map(String::from);
    leaf.prop_recursive(3, 24, 3, |inner| {
        let ops = proptest::sample::select(vec!["+", "-", "*", "/", "%", "=", "<>", "<", ">=", "AND", "OR", "||", "LIKE"]);
        prop_oneof![
            (inner.clone(), ops, inner.clone()).prop_map(|(a, o, b)| format!("({a} {o} {b})")),
            inner.clone().prop_map(|a| format!("NOT ({a})")),
            inner.clone().prop_map(|a| format!("({a}) IS NULL")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(a, b, c)| format!("CASE WHEN {a} THEN {b} ELSE {c} END")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} IN ({b}, 1)")),
            inner.clone().prop_map(|a| format!("({a})::text")),
            inner.clone().prop_map(|a| format!("({a})::int")),
            inner.clone().prop_map(|a| format!("(SELECT max(u.v) FROM u WHERE u.id = {a})")),
            inner.clone().prop_map(|a| format!("EXISTS (SELECT 1 FROM u WHERE u.v = {a})")),
            inner.prop_map(|a| format!("length(({a})::text)")),
        ]
    })
}

fn well_formed() -> impl Strategy<Value = String> {
    prop_oneof![
        (expr(), expr()).prop_map(|(a, b)| format!("SELECT {a} FROM t WHERE {b}")),
        (expr(), expr()).prop_map(|(a, b)| format!("SELECT {a}, count(*) FROM t GROUP BY 1 HAVING {b}")),
        (expr(), expr()).prop_map(|(a, b)| format!("SELECT t.id, {a} FROM t LEFT JOIN u ON u.id = t.id WHERE {b} ORDER BY 2 LIMIT 3")),
        expr().prop_map(|a| format!("SELECT * FROM t AS OF TX 3 WHERE {a}")),
        (expr(), expr()).prop_map(|(a, b)| format!("INSERT INTO t VALUES (({a})::int, ({b})::text) ON CONFLICT DO NOTHING")),
        (expr(), expr()).prop_map(|(a, b)| format!("UPDATE t SET v = ({a})::text WHERE {b}")),
        (expr(), expr()).prop_map(|(a, b)| format!("UPSERT INTO u VALUES (({a})::int, ({b})::int)")),
        expr().prop_map(|a| format!("DELETE FROM u WHERE {a} RETURNING *")),
        (expr(), expr()).prop_map(|(a, b)| format!("WITH w AS (SELECT {a} AS c FROM t) SELECT c FROM w UNION ALL SELECT {b}")),
    ]
}

fn statement() -> impl Strategy<Value = String> {
    prop_oneof![1 => soup(), 3 => well_formed()]
}

fn engine() -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open(dir.path().join("store"), Options::default()).unwrap());
    let key = vouchdb::signing::generate_key(&dir.path().join("k.pem")).unwrap();
    let signer = Arc::new(CheckpointSigner::new(key, "vouchdb/fuzz".into(), dir.path().join("k.pem")).unwrap());
    (dir, Arc::new(Engine::new(ledger, signer).unwrap()))
}

#[test]
fn random_statements_never_panic() {
    let (_dir, engine) = engine();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut s = Session::new("admin");
    rt.block_on(async {
        for sql in [
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
            "CREATE TABLE u (id INTEGER PRIMARY KEY, v INTEGER)",
            "INSERT INTO t VALUES (1, 'a'), (2, NULL)",
            "INSERT INTO u VALUES (1, 5)",
        ] {
            for (stmt, text) in vouchdb::sql::parse(sql).unwrap() {
                engine.execute(&mut s, &stmt, &text, &[]).await.unwrap();
            }
        }
    });
    let session = std::cell::Cell::new(Some(s));
    let (parsed, succeeded) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 10_000, ..ProptestConfig::default() });
    runner
        .run(&statement(), |sql| {
            rt.block_on(async {
                if let Ok(stmts) = vouchdb::sql::parse(&sql) {
                    let mut s = session.take().expect("the session is put back after every case");
                    for (stmt, text) in stmts {
                        parsed.set(parsed.get() + 1);
                        let _ = engine.describe(&s, &stmt, &[]);
                        if engine.execute(&mut s, &stmt, &text, &[]).await.is_ok() {
                            succeeded.set(succeeded.get() + 1);
                        }
                    }
                    session.set(Some(s));
                }
            });
            Ok(())
        })
        .unwrap();
    eprintln!("{} statements parsed, {} ran without error", parsed.get(), succeeded.get());
    assert!(parsed.get() > 5_000 && succeeded.get() > 300, "the generator no longer reaches the engine");
    engine.ledger.scan(|_, _| {}).expect("the store stays consistent");
}
