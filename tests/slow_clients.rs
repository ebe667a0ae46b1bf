//! Slow and broken clients never hold locks forever nor grow the server's memory without bound: a
//! session idle in a transaction is terminated after `--idle-in-transaction-timeout` (or its own
//! `idle_in_transaction_session_timeout`); a client stalled in the middle of a message is disconnected
//! after `--client-message-timeout`; a client that disconnects mid-transaction releases its locks at
//! once; a client that floods pipelined queries without reading the answers is held back by the socket
//! (the server stops reading), not buffered.

mod common;

use common::raw::{self, Raw};
use common::Server;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn server(extra: &[&str]) -> Server {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let s = Server::start_with(move |_| extra);
    rt().block_on(async {
        s.client().await.batch_execute("CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, 0)").await.unwrap();
    });
    s
}

/// Another session's UPDATE of the locked row: how long it waited.
async fn update_waits(s: &Server, n: i32) -> Duration {
    let c = s.client().await;
    let start = Instant::now();
    let done = tokio::time::timeout(Duration::from_secs(30), c.execute("UPDATE t SET n = $1 WHERE id = 1", &[&n])).await;
    assert_eq!(done.expect("the row lock was never released").unwrap(), 1);
    start.elapsed()
}

#[test]
fn a_session_idle_in_a_transaction_is_terminated_and_its_locks_released() {
    let s = server(&["--idle-in-transaction-timeout", "1"]);
    rt().block_on(async {
        let a = s.client().await;
        a.batch_execute("BEGIN; UPDATE t SET n = 1 WHERE id = 1").await.unwrap();
        let waited = update_waits(&s, 2).await;
        assert!(waited >= Duration::from_millis(700), "the lock was released too early: {waited:?}");
        // The idle session was terminated; its update never committed.
        assert!(a.simple_query("SELECT 1").await.is_err(), "the idle session is still open");
        let c = s.client().await;
        assert_eq!(c.query_one("SELECT n FROM t WHERE id = 1", &[]).await.unwrap().get::<_, i32>(0), 2);
        // A session may lift the limit for itself, and idle outside a transaction is never limited.
        c.batch_execute("SET idle_in_transaction_session_timeout = 0; BEGIN; UPDATE t SET n = 3 WHERE id = 1").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1800)).await;
        c.batch_execute("COMMIT").await.unwrap();
        let d = s.client().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(d.query_one("SELECT n FROM t WHERE id = 1", &[]).await.unwrap().get::<_, i32>(0), 3);
    });
}

#[test]
fn a_client_stalled_mid_message_is_disconnected_and_one_that_leaves_releases_its_locks() {
    let s = server(&["--client-message-timeout", "1"]);
    // Stalled: a transaction holding a row lock, then the first bytes of a message and nothing more.
    let mut r = raw::connect(s.port);
    assert!(raw::first_error(&r.query(b"BEGIN; UPDATE t SET n = 5 WHERE id = 1")).is_none());
    r.send(&[b'Q', 0, 0, 0, 100, b'S', b'E', b'L']);
    let start = Instant::now();
    let (ty, body) = r.recv().expect("an error before the server closes");
    assert_eq!(ty, b'E');
    let (severity, code, message) = raw::error_fields(&body);
    assert_eq!((severity.as_str(), code.as_str()), ("FATAL", "08P01"), "{message}");
    assert!(message.contains("sent part of a message and nothing more"), "{message}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(r.closed(), "the server keeps the connection");
    rt().block_on(async {
        update_waits(&s, 6).await;
        // Leaving mid-transaction: the lock goes with the connection, at once.
        let mut r = raw::connect(s.port);
        assert!(raw::first_error(&r.query(b"BEGIN; UPDATE t SET n = 7 WHERE id = 1")).is_none());
        drop(r);
        let waited = update_waits(&s, 8).await;
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        let c = s.client().await;
        assert_eq!(c.query_one("SELECT n FROM t WHERE id = 1", &[]).await.unwrap().get::<_, i32>(0), 8);
    });
}

#[test]
fn a_flood_of_pipelined_queries_is_held_back_not_buffered() {
    let s = server(&[]);
    const QUERIES: usize = 20_000;
    // 1 kB per query, so that 20 MB of queries cannot all sit in the sockets' buffers.
    let query = raw::frame(b'Q', format!("SELECT repeat('x', 10000) -- {}\0", "p".repeat(1000)).as_bytes());
    let mut r: Raw<std::net::TcpStream> = raw::connect(s.port);
    let before = s.rss_kib();
    // The writer sends every query without reading an answer: 20,000 answers of 10 kB (200 MB) that
    // the server must not buffer, so it stops reading and the writer blocks.
    let mut w = r.s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..QUERIES {
            if w.write_all(&query).is_err() {
                return false;
            }
        }
        true
    });
    std::thread::sleep(Duration::from_secs(3));
    let during = s.rss_kib();
    assert!(!writer.is_finished(), "all 20,000 queries were accepted without their answers being read");
    assert!(during < before + 100 * 1024, "the server's memory grew from {before} KiB to {during} KiB");
    // Reading the answers lets everything through.
    let mut ready = 0;
    let mut buf = vec![0u8; 1 << 16];
    let mut pending: Vec<u8> = Vec::new();
    r.s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    while ready < QUERIES {
        let n = r.s.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed the connection after {ready} answers");
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while pending.len() >= at + 5 {
            let len = u32::from_be_bytes(pending[at + 1..at + 5].try_into().unwrap()) as usize;
            if pending.len() < at + 1 + len {
                break;
            }
            if pending[at] == b'Z' {
                ready += 1;
            }
            assert_ne!(pending[at], b'E', "a query failed");
            at += 1 + len;
        }
        pending.drain(..at);
    }
    assert!(writer.join().unwrap());
    let after = s.rss_kib();
    assert!(after < before + 100 * 1024, "the server's memory grew from {before} KiB to {after} KiB");
}
