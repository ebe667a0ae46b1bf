//! The pinned non-Rust runtimes that tool and driver tests run: the Python virtual environment of
//! tests/tools/setup-python.sh and the node_modules of tests/tools/setup-node.sh. Both scripts are
//! idempotent (scripts/setup runs them too); a missing Python or Node is a failure, never a skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Run a setup script of tests/tools and return the path it prints last, which must exist and, when
/// `expect` is given, hold it.
fn setup(script: &str, expect: Option<&str>) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools").join(script);
    let out = Command::new("bash").arg(&path).output().unwrap_or_else(|e| panic!("run tests/tools/{script}: {e}"));
    assert!(
        out.status.success(),
        "tests/tools/{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string();
    let found = Path::new(&printed);
    assert!(expect.map_or(found.exists(), |e| found.join(e).exists()), "{script} printed no usable path: {printed:?}");
    PathBuf::from(printed)
}

/// The venv's python, set up once per test process.
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| setup("setup-python.sh", None))
}

/// The pinned node_modules (knex, pg), set up once per test process.
pub fn node_modules() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| setup("setup-node.sh", Some("knex")))
}

/// Run `cmd` to completion; panics with its output unless it exits 0, else returns the output.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{what} failed ({}):\n{text}", out.status);
    text
}

/// Run psql (`-X -q -v ON_ERROR_STOP=1` and `args`) against `url` in `cwd`, feeding `stdin`:
/// (success, stdout, stderr).
pub fn psql(url: &str, cwd: &Path, args: &[&str], stdin: &[u8]) -> (bool, Vec<u8>, String) {
    let mut child = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql is installed (scripts/setup installs postgresql-client)");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}
