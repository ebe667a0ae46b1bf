//! A real vouchdb server on a loopback port with a fresh data directory, for integration tests.
#![allow(dead_code)]

pub mod raw;
pub mod runtimes;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "test-admin-password";

pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    extra: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(|_| vec![])
    }

    /// Start with extra `serve` arguments, computed from the temporary directory (for files made there).
    pub fn start_with(extra: impl FnOnce(&std::path::Path) -> Vec<String>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let extra = extra(dir.path());
        let mut s = Server { port: 0, dir, child: None, extra };
        s.restart();
        s
    }

    /// The server process's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's resident memory in KiB (`VmRSS` in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid().expect("server runs"))).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// (Re)start the server process on a new port over the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(self.data_dir())
            .args(&self.extra)
            .env("VOUCHDB_ADMIN_PASSWORD", PASSWORD)
            .env("VOUCHDB_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.path().join("server.log")).map(Stdio::from).unwrap_or_else(|_| Stdio::null()))
            .spawn()
            .expect("start vouchdb serve");
        self.child = Some(child);
        self.port = port;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not listen on {port} within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send SIGTERM and wait for the server to exit; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return false };
        let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=admin password={PASSWORD} dbname=vouchdb", self.port)
    }

    pub fn psql_url(&self) -> String {
        format!("postgresql://admin:{PASSWORD}@127.0.0.1:{}/vouchdb", self.port)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.expect("connect");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }
}

impl Server {
    /// The server's public key, derived by openssl from its key file (never asked of the server).
    pub fn public_key_file(&self) -> PathBuf {
        let out = self.dir.path().join("pub.pem");
        let o = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(self.data_dir().join("signing.key"))
            .arg("-out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl pkey: {}", String::from_utf8_lossy(&o.stderr));
        out
    }
}

/// Copy a directory tree (a stopped server's data directory, for rollback and fork tests).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

impl Server {
    /// Stop the server and run `vouchdb check` on its data directory: the ledger must verify. Then the
    /// replay audit: every transaction must be its recorded statements (docs/PROVENANCE.md).
    pub fn check_ledger(&mut self) {
        self.stop();
        let check = Command::new(env!("CARGO_BIN_EXE_vouchdb")).arg("check").arg("--data-dir").arg(self.data_dir()).output().unwrap();
        assert!(check.status.success(), "vouchdb check: {}", String::from_utf8_lossy(&check.stderr));
        let replay = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
            .args(["audit", "--replay", "--data-dir"])
            .arg(self.data_dir())
            .env("VOUCHDB_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            replay.status.success(),
            "vouchdb audit --replay: {}{}",
            String::from_utf8_lossy(&replay.stdout),
            String::from_utf8_lossy(&replay.stderr)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
