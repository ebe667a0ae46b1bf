//! A full disk: the data directory on a small tmpfs (mounted here; the test needs CAP_SYS_ADMIN, as CI
//! has, and says so when it cannot mount), with a ballast file. Commits are refused with SQLSTATE 53100
//! before the filesystem is full (`--min-free-space-mb`), the server stays up, reads and proofs keep
//! working; once the ballast is deleted, commits resume with nothing lost, also after a restart.

mod common;

use common::Server;
use std::path::Path;
use std::process::Command;

fn mount_tmpfs(at: &Path, size: &str) -> bool {
    std::fs::create_dir_all(at).unwrap();
    let o = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).output();
    match o {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("SKIPPED: cannot mount a tmpfs (needs CAP_SYS_ADMIN): {}", String::from_utf8_lossy(&o.stderr));
            false
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot run mount: {e}");
            false
        }
    }
}

struct Unmount(std::path::PathBuf);
impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("--lazy").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_refuses_commits_with_53100_and_they_resume_when_space_is_freed() {
    let mut mounted = None;
    let mut s = Server::start_with(|dir| {
        let data = dir.join("data");
        if mount_tmpfs(&data, "48m") {
            std::fs::write(data.join("ballast"), vec![0u8; 16 << 20]).unwrap();
            mounted = Some(data);
        }
        vec!["--min-free-space-mb".into(), "8".into()]
    });
    let Some(data) = mounted else { return };
    let _unmount = Unmount(data.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = s.client().await;
        c.batch_execute("CREATE TABLE big (id int PRIMARY KEY, v text)").await.unwrap();
        // Fill with ever smaller inserts until even a one-row insert is refused.
        let mut acked = 0i64;
        let mut next = 0i64;
        let mut refused = None;
        for batch in [1000i64, 100, 10, 1] {
            for _ in 0..5000 {
                let sql =
                    format!("INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series({next}, {}) g", next + batch - 1);
                match c.batch_execute(&sql).await {
                    Ok(()) => {
                        acked += batch;
                        next += batch;
                    }
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
        }
        let e = refused.expect("48 MB filled without a refusal");
        let db = e.as_db_error().expect("a server error");
        assert_eq!(db.code().code(), "53100", "{db:?}");
        assert!(db.message().contains("No space left on device") && db.message().contains("nothing was written"), "{}", db.message());
        // The server is up: reads, proofs and checkpoints work, and writes are refused the same way.
        let count: i64 = c.query_one("SELECT count(*) FROM big", &[]).await.unwrap().get(0);
        assert_eq!(count, acked);
        let row = c.query_one("SELECT v FROM verified_get('big', 5)", &[]).await.unwrap();
        assert!(row.get::<_, String>(0).starts_with("e4da3b7f"));
        c.query_one("SELECT tree_size FROM vouch_checkpoint()", &[]).await.unwrap();
        let again = c.execute("INSERT INTO big VALUES (-1, 'x')", &[]).await.unwrap_err();
        assert_eq!(again.code().unwrap().code(), "53100");
        // Space freed: commits resume at once.
        std::fs::remove_file(data.join("ballast")).unwrap();
        c.execute("INSERT INTO big VALUES (-1, 'after')", &[]).await.unwrap();
        let count: i64 = c.query_one("SELECT count(*) FROM big", &[]).await.unwrap().get(0);
        assert_eq!(count, acked + 1);
    });
    // Nothing lost, and the store is consistent, after a restart.
    s.restart();
    rt.block_on(async {
        let c = s.client().await;
        let n: i64 = c.query_one("SELECT count(*) FROM big WHERE id >= -1", &[]).await.unwrap().get(0);
        assert!(n > 1000);
        assert_eq!(c.query_one("SELECT v FROM big WHERE id = -1", &[]).await.unwrap().get::<_, String>(0), "after");
    });
    s.stop();
    let o =
        Command::new(env!("CARGO_BIN_EXE_vouchdb")).args(["check", "--data-dir"]).arg(&data).env("VOUCHDB_LOG", "warn").output().unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
