//! psql, as a user types at it: `session.sql` (DDL, every type, `\copy` in both directions in text and
//! CSV, `\d`, `\dt`, transactions, errors with their SQLSTATEs, `\gset`) runs in a scratch directory and
//! its echoed output must equal `session.out`, PostgreSQL 15's output for the same input (made with
//! a role named `admin`, so that `\dt`'s owners match). Then psql calls the verification functions.
//! The COPY feature itself, byte for byte against PostgreSQL, is tested in tests/copy.rs.

use std::process::Command;

#[test]
fn psql_session_matches_postgres_15() {
    let mut server = crate::common::Server::start();
    let scratch = tempfile::tempdir().unwrap();
    let session = crate::dir("psql").join("session.sql");
    let expected = std::fs::read_to_string(crate::dir("psql").join("session.out")).unwrap();
    // One stream for stdout and stderr, as the expected file was made: errors appear where they happen.
    let out = Command::new("sh")
        .arg("-c")
        .arg("psql \"$1\" -X -a -f - < \"$2\" 2>&1")
        .arg("sh")
        .arg(server.psql_url())
        .arg(&session)
        .current_dir(scratch.path())
        .output()
        .expect("run psql");
    let actual = String::from_utf8_lossy(&out.stdout).to_string();
    if actual != expected {
        let first =
            actual.lines().zip(expected.lines()).position(|(a, e)| a != e).unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "psql output differs from PostgreSQL 15's at line {}:\n  vouchdb:  {:?}\n  expected: {:?}\n--- whole vouchdb output ---\n{actual}",
            first + 1,
            actual.lines().nth(first),
            expected.lines().nth(first)
        );
    }
    assert!(scratch.path().join("types.csv").exists());

    // The verification functions from psql, with a psql variable as the key.
    let (ok, out, err) = crate::common::runtimes::psql(
        &server.psql_url(),
        scratch.path(),
        &["-At", "-f", "-"],
        b"SELECT tree_size AS size FROM vouch_checkpoint() \\gset\n\
          SELECT note, _tx > 0, _tree_size >= :size, array_length(_tx_proof, 1) >= 0 FROM verified_get('psql_notes', 5);\n\
          SELECT _tx AS tx, _tree_size AS tree, _root AS root FROM verified_get('psql_notes', 5) \\gset\n\
          SELECT root = :'root', leaf_index = :tx - 1 FROM inclusion_proof(:tx, :tree);\n",
    );
    assert!(ok, "psql: {err}");
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out, "committed|t|t|t\nt|t\n");
    server.check_ledger();
}
