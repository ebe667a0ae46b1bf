//! Runs every `sql-tests/*.slt` file (sqllogictest format) against a real vouchdb server over pgwire.
//! Errors are matched as "<SQLSTATE>: <message>", so `statement error 42P01` checks the SQLSTATE.
//! Set `SLT_URL` (a libpq connection string) to run the same files against another server, e.g. PostgreSQL 15,
//! and `SLT_FILTER` to run only the files whose name contains it.

mod common;

use async_trait::async_trait;
use sqllogictest::{DBOutput, DefaultColumnType};

#[derive(Debug)]
struct SqlError(String);
impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SqlError {}

struct Conn {
    client: tokio_postgres::Client,
    engine: &'static str,
}

#[async_trait]
impl sqllogictest::AsyncDB for Conn {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let msgs = self.client.simple_query(sql).await.map_err(|e| match e.as_db_error() {
            Some(db) => SqlError(format!("{}: {}", db.code().code(), db.message())),
            None => SqlError(format!("client error: {e}")),
        })?;
        let mut rows = Vec::new();
        let mut ncols = None;
        let mut affected = 0;
        for m in msgs {
            match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    ncols = Some(r.len());
                    rows.push(
                        (0..r.len())
                            .map(|i| {
                                r.get(i)
                                    .map(|s| if s.is_empty() { "(empty)".to_string() } else { s.to_string() })
                                    .unwrap_or_else(|| "NULL".into())
                            })
                            .collect(),
                    );
                }
                tokio_postgres::SimpleQueryMessage::RowDescription(d) => ncols = Some(d.len()),
                tokio_postgres::SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        match ncols {
            Some(n) => Ok(DBOutput::Rows { types: vec![DefaultColumnType::Any; n], rows }),
            None => Ok(DBOutput::StatementComplete(affected)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        self.engine
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await
    }
}

async fn connect(url: &str, engine: &'static str) -> Result<Conn, SqlError> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| SqlError(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Conn { client, engine })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_logic_tests() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-tests");
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "slt")).collect();
    if let Ok(filter) = std::env::var("SLT_FILTER") {
        files.retain(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(&filter)));
    }
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let external = std::env::var("SLT_URL").ok();
    let mut failures = Vec::new();
    for file in &files {
        // A fresh server (fresh data directory) per file, so files do not see each other's tables.
        let server = if external.is_none() { Some(common::Server::start()) } else { None };
        let url = external.clone().unwrap_or_else(|| server.as_ref().unwrap().url());
        let engine = if external.is_some() { "postgres" } else { "vouchdb" };
        let mut runner = sqllogictest::Runner::new(move || {
            let url = url.clone();
            async move { connect(&url, engine).await }
        });
        runner.add_label(engine);
        if let Err(e) = runner.run_file_async(file).await {
            failures.push(format!("{}:\n{}", file.display(), e.display(false)));
            continue;
        }
        // Every transaction the file committed must replay to exactly its entries
        // (docs/PROVENANCE.md): the replay audit over the stopped server's data directory.
        if let Some(mut server) = server {
            drop(runner);
            server.stop();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_vouchdb"))
                .args(["audit", "--replay", "--data-dir"])
                .arg(server.data_dir())
                .env("VOUCHDB_LOG", "warn")
                .output()
                .unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "{}: the replay audit failed:\n{}{}",
                    file.display(),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} .slt files failed:\n{}", failures.len(), files.len(), failures.join("\n\n"));
}
