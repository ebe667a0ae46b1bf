//! The driver compatibility matrix (tests/clients/README.md, docs/CLIENTS.md): every driver users
//! reach vouchdb with, unchanged, against the real server on a loopback port. The Rust drivers are
//! modules of this binary; the Python, Node and Java programs live in their own directories and run
//! under their runtimes, which scripts/setup installs. A missing runtime fails the test.

#[path = "../common/mod.rs"]
mod common;

mod gui;
mod pgbench;
mod psql;
#[path = "sqlx/mod.rs"]
mod sqlx_driver;
#[path = "tokio-postgres/mod.rs"]
mod tokio_postgres_driver;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory of tests/clients.
fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(name)
}

/// Give `cmd` the connection as the libpq environment variables (and a JDBC URL) and the path of the
/// independent proof verifier, as tests/clients/README.md promises every driver program.
fn connection_env<'a>(cmd: &'a mut Command, server: &common::Server) -> &'a mut Command {
    cmd.env("PGHOST", "127.0.0.1")
        .env("PGPORT", server.port.to_string())
        .env("PGUSER", "admin")
        .env("PGPASSWORD", common::PASSWORD)
        .env("PGDATABASE", "vouchdb")
        .env("VOUCHDB_JDBC_URL", format!("jdbc:postgresql://127.0.0.1:{}/vouchdb", server.port))
        .env("VOUCHDB_VERIFIER", Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verifier/rfc9162.py"))
        .env_remove("PGSSLMODE")
        .env_remove("PGSERVICE")
}

/// Run one driver program against a fresh server, then check that the server's ledger verifies.
/// Returns the program's output, which has one `ok …` line per check.
fn run_driver(program: &str, args: &[&str], driver_dir: &str, env: &[(&str, &Path)]) -> String {
    let mut server = common::Server::start();
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir(driver_dir));
    for (k, v) in env {
        cmd.env(k, v);
    }
    connection_env(&mut cmd, &server);
    let out = common::runtimes::run_ok(&mut cmd, &format!("{program} {args:?} in tests/clients/{driver_dir}"));
    assert!(out.lines().filter(|l| l.starts_with("ok ")).count() >= 7, "too few checks ran:\n{out}");
    server.check_ledger();
    out
}

#[test]
fn psycopg3_prepared_binary_and_pipeline() {
    let py = common::runtimes::python();
    run_driver(py.to_str().unwrap(), &["test_psycopg.py"], "psycopg", &[]);
}

#[test]
fn asyncpg_binary_protocol_and_introspection() {
    let py = common::runtimes::python();
    run_driver(py.to_str().unwrap(), &["test_asyncpg.py"], "asyncpg", &[]);
}

#[test]
fn node_postgres_parameterised_and_prepared() {
    let modules = common::runtimes::node_modules();
    run_driver("node", &["test.js"], "node-postgres", &[("NODE_PATH", modules)]);
}

#[test]
fn pgjdbc_prepared_batches_and_metadata() {
    let jar = Path::new("/usr/share/java/postgresql.jar");
    assert!(jar.exists(), "pgjdbc is not installed: scripts/setup installs Debian's libpostgresql-jdbc-java");
    run_driver("java", &["-cp", jar.to_str().unwrap(), "DriverTest.java"], "pgjdbc", &[]);
}
