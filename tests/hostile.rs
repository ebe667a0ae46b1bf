//! Hostile bytes on the socket, sent raw: invalid UTF-8 and NUL bytes in SQL text and parameters,
//! broken lengths, unknown message types, bad startup packets, HTTP. Each is answered as PostgreSQL
//! answers it, nothing panics, and a fresh client can always run SELECT 1 afterwards.

mod common;

use common::raw::{self, bind, cstr, execute_sync, first_column, first_error, frame, parse, Raw};
use std::io::Write;

/// A fresh driver connection still works, and no task panicked.
async fn server_is_fine(server: &common::Server) {
    let c = server.client().await;
    assert_eq!(c.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
    let log = std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}

fn utf8_error(bytes: &str) -> (String, String, String) {
    ("ERROR".into(), "22021".into(), format!("invalid byte sequence for encoding \"UTF8\": {bytes}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_simple_query_is_22021_and_the_connection_goes_on() {
    let server = common::Server::start();
    let mut r = raw::connect(server.port);
    r.query(b"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    for (sql, shown) in [
        (&b"INSERT INTO t VALUES (1, 'a\xffb')"[..], "0xff"),
        (&b"INSERT INTO t VALUES (2, 'a\xc3\x28')"[..], "0xc3 0x28"),
        (&b"INSERT INTO t VALUES (3, '\xe2\x82')"[..], "0xe2 0x82 0x27"),
        (&b"SELECT '\xed\xa0\x80'"[..], "0xed 0xa0 0x80"),
    ] {
        let msgs = r.query(sql);
        assert_eq!(first_error(&msgs), Some(utf8_error(shown)), "{sql:?}");
        assert_eq!(msgs.last().map(|m| m.0), Some(b'Z'));
    }
    // Nothing was stored, in particular no U+FFFD instead of the bad bytes.
    assert_eq!(first_column(&r.query(b"SELECT count(*) FROM t")), ["0"]);
    assert_eq!(first_column(&r.query("SELECT 'ok ü'".as_bytes())), ["ok ü"]);
    server_is_fine(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_nul_in_parse_and_bind_are_22021() {
    let server = common::Server::start();
    let mut r = raw::connect(server.port);
    r.query(b"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    // Parse with invalid SQL text: the error, then everything up to Sync is skipped.
    let mut m = parse(b"SELECT '\xff'");
    m.extend(bind(&[], 0));
    m.extend(execute_sync());
    r.send(&m);
    let msgs = r.until_ready();
    assert_eq!(first_error(&msgs), Some(utf8_error("0xff")));
    assert_eq!(msgs.iter().filter(|m| m.0 == b'E').count(), 1);
    // Text-format parameters: invalid UTF-8 and NUL bytes are refused at Bind.
    for (value, shown) in [(&b"a\xffb"[..], "0xff"), (&b"a\0b"[..], "0x00"), (&b"\xf0\x9f\x98"[..], "0xf0 0x9f 0x98")] {
        let mut m = parse(b"INSERT INTO t VALUES ($1, $2)");
        m.extend(bind(&[Some(b"1"), Some(value)], 0));
        m.extend(execute_sync());
        r.send(&m);
        let msgs = r.until_ready();
        assert_eq!(first_error(&msgs), Some(utf8_error(shown)), "{value:?}");
    }
    // Binary-format text parameters too.
    let mut m = parse(b"INSERT INTO t VALUES ($1::integer, $2::text)");
    m.extend(bind(&[Some(&7i32.to_be_bytes()), Some(b"x\xfe")], 1));
    m.extend(execute_sync());
    r.send(&m);
    assert_eq!(first_error(&r.until_ready()), Some(utf8_error("0xfe")));
    assert_eq!(first_column(&r.query(b"SELECT count(*) FROM t")), ["0"]);
    // A valid one is stored as sent.
    let mut m = parse(b"INSERT INTO t VALUES ($1, $2)");
    m.extend(bind(&[Some(b"1"), Some("ünïcode ✓".as_bytes())], 0));
    m.extend(execute_sync());
    r.send(&m);
    assert_eq!(first_error(&r.until_ready()), None);
    assert_eq!(first_column(&r.query(b"SELECT v FROM t")), ["ünïcode ✓"]);
    server_is_fine(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_with_the_wrong_number_of_parameters_is_08p01() {
    let server = common::Server::start();
    let mut r = raw::connect(server.port);
    for params in [&[][..], &[Some(&b"1"[..]), Some(b"2")][..]] {
        let mut m = parse(b"SELECT $1::integer + 1");
        m.extend(bind(params, 0));
        m.extend(execute_sync());
        r.send(&m);
        let msgs = r.until_ready();
        let (sev, code, msg) = first_error(&msgs).expect("an error");
        assert_eq!((sev.as_str(), code.as_str()), ("ERROR", "08P01"));
        assert_eq!(msg, format!("bind message supplies {} parameters, but prepared statement \"\" requires 1", params.len()));
    }
    let mut m = parse(b"SELECT $1::integer + 1");
    m.extend(bind(&[Some(b"41")], 0));
    m.extend(execute_sync());
    r.send(&m);
    assert_eq!(first_column(&r.until_ready()), ["42"]);
    server_is_fine(&server).await;
}

/// Send `bytes` on an authenticated connection; the server must answer FATAL `code` and close.
fn fatal_after(port: u16, bytes: &[u8], code: &str) -> String {
    let mut r = raw::connect(port);
    r.send(bytes);
    let msgs = r.until_ready();
    let (sev, got, msg) = first_error(&msgs).unwrap_or_else(|| panic!("no error for {bytes:?}: {msgs:?}"));
    assert_eq!((sev.as_str(), got.as_str()), ("FATAL", code), "{msg}");
    assert!(r.closed(), "the connection stays open after {bytes:?}");
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_frames_close_the_connection_with_08p01() {
    let server = common::Server::start();
    // An unknown message type.
    let msg = fatal_after(server.port, &frame(b'z', b""), "08P01");
    assert_eq!(msg, "invalid frontend message type 122");
    server_is_fine(&server).await;
    // A length of 2^31 - 1: refused at once, nothing allocated or waited for.
    let started = std::time::Instant::now();
    let msg = fatal_after(server.port, &[b'Q', 0x7f, 0xff, 0xff, 0xff, b'S'], "08P01");
    assert_eq!(msg, "invalid message length");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Lengths below the length field itself, zero and negative.
    for len in [0i32, 3, -1, i32::MIN] {
        let mut m = vec![b'Q'];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(b"SELECT 1\0");
        assert_eq!(fatal_after(server.port, &m, "08P01"), "invalid message length", "length {len}");
    }
    // Bodies cut short where pgwire would read fixed-width fields past them: Parse without its
    // parameter-type count, Bind whose parameter is longer than the message, Execute without its row
    // limit, Parse claiming 1000 parameter types, Bind claiming 51,971 parameters (a count pgwire reads
    // as unsigned: it was taken as negative, so as none, and pgwire's decoder panicked).
    let mut bad_bind = cstr(b"");
    bad_bind.extend(cstr(b""));
    bad_bind.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 100, b'x']);
    let mut many_params = cstr(b"");
    many_params.extend(cstr(b""));
    many_params.extend_from_slice(&[0, 0, 0xcb, 0x03, 0, 0]);
    for m in [
        frame(b'P', &[cstr(b""), cstr(b"SELECT 1")].concat()),
        frame(b'B', &bad_bind),
        frame(b'B', &many_params),
        frame(b'E', &cstr(b"")),
        frame(b'P', &[cstr(b""), cstr(b"SELECT 1"), vec![3, 232, 0, 0]].concat()),
        frame(b'D', b""),
    ] {
        assert_eq!(fatal_after(server.port, &m, "08P01"), "invalid message format", "{m:?}");
    }
    // A Sync that claims a body (longer than pgwire allows for it).
    let mut m = vec![b'S'];
    m.extend_from_slice(&1_000_000i32.to_be_bytes());
    fatal_after(server.port, &m, "08P01");
    server_is_fine(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_startup_packets_and_http_are_refused() {
    let server = common::Server::start();
    let open = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        Raw { s }
    };
    // An unknown protocol version.
    let mut r = open();
    r.send(&raw::startup_packet("admin", 9 << 16));
    let (sev, code, msg) = first_error(&r.until_ready()).expect("an error");
    assert_eq!(
        (sev.as_str(), code.as_str(), msg.as_str()),
        ("FATAL", "0A000", "unsupported frontend protocol 9.0: server supports 3.0 to 3.0")
    );
    assert!(r.closed());
    // Startup lengths: 2^31 - 1, too short, negative.
    for len in [i32::MAX, 4, -8] {
        let mut r = open();
        let mut m = len.to_be_bytes().to_vec();
        m.extend_from_slice(&196608u32.to_be_bytes());
        r.send(&m);
        let (sev, code, msg) = first_error(&r.until_ready()).expect("an error");
        assert_eq!((sev.as_str(), code.as_str(), msg.as_str()), ("FATAL", "08P01", "invalid length of startup packet"), "length {len}");
        assert!(r.closed());
    }
    // A message before the startup packet is a startup packet with a bad length.
    let mut r = open();
    r.send(&frame(b'Q', &cstr(b"SELECT 1")));
    assert!(r.closed());
    // A real HTTP client.
    let out = std::process::Command::new("curl")
        .args(["-s", "-S", "--max-time", "10", &format!("http://127.0.0.1:{}/", server.port)])
        .output()
        .expect("curl is installed");
    assert!(!out.status.success(), "curl got an HTTP answer: {}", String::from_utf8_lossy(&out.stdout));
    // Raw HTTP, and half a message followed by a hang-up.
    let mut r = open();
    r.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(r.closed());
    let mut r = raw::connect(server.port);
    r.s.write_all(&[b'Q', 0, 0, 1, 0, b'S']).unwrap();
    drop(r);
    server_is_fine(&server).await;
}

/// Extended-protocol semantics drivers rely on (psycopg pipelines, pgjdbc batches): the Executes
/// before one Sync are one implicit transaction, so an error rolls back the statements before it; a
/// lone Execute commits at once; Describe of a statement without a result is NoData; and a statement
/// that fails to parse inside a transaction block aborts it (25P02 after, ROLLBACK at COMMIT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_are_implicit_transactions_and_parse_errors_abort_blocks() {
    let server = common::Server::start();
    let mut r = raw::connect(server.port);
    r.query(b"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    let insert = |id: &str| {
        let mut m = parse(b"INSERT INTO t VALUES ($1, 'x')");
        m.extend(bind(&[Some(id.as_bytes())], 0));
        m.extend(frame(b'E', &[0, 0, 0, 0, 0]));
        m
    };
    // 1, 2 and a duplicate 1 before one Sync: all rolled back.
    let mut pipeline = [insert("1"), insert("2"), insert("1")].concat();
    pipeline.extend(frame(b'S', &[]));
    r.send(&pipeline);
    let msgs = r.until_ready();
    assert_eq!(first_error(&msgs).map(|e| e.1), Some("23505".into()));
    assert_eq!(first_column(&r.query(b"SELECT count(*) FROM t")), ["0"]);
    // Without the error, the pipeline commits at Sync.
    let mut pipeline = [insert("1"), insert("2")].concat();
    pipeline.extend(frame(b'S', &[]));
    r.send(&pipeline);
    assert_eq!(first_error(&r.until_ready()), None);
    assert_eq!(first_column(&r.query(b"SELECT count(*) FROM t")), ["2"]);

    // Describe of a named INSERT: ParameterDescription, then NoData (not an empty RowDescription).
    let mut named = cstr(b"ins");
    named.extend(cstr(b"INSERT INTO t VALUES ($1, $2)"));
    named.extend_from_slice(&0i16.to_be_bytes());
    let mut m = frame(b'P', &named);
    let mut describe = vec![b'S'];
    describe.extend(cstr(b"ins"));
    m.extend(frame(b'D', &describe));
    m.extend(frame(b'S', &[]));
    r.send(&m);
    let tags: Vec<u8> = r.until_ready().iter().map(|m| m.0).collect();
    assert_eq!(tags, b"1tnZ");

    // A parse error inside a block aborts it: the next statement is 25P02, COMMIT rolls back.
    r.query(b"BEGIN");
    r.query(b"INSERT INTO t VALUES (3, 'in the block')");
    let mut m = parse(b"SELECT * FROM missing");
    m.extend(frame(b'S', &[]));
    r.send(&m);
    assert_eq!(first_error(&r.until_ready()).map(|e| e.1), Some("42P01".into()));
    assert_eq!(first_error(&r.query(b"SELECT 1")).map(|e| e.1), Some("25P02".into()));
    let msgs = r.query(b"COMMIT");
    assert!(msgs.iter().any(|m| m.0 == b'C' && m.1.starts_with(b"ROLLBACK")), "{msgs:?}");
    assert_eq!(first_column(&r.query(b"SELECT count(*) FROM t")), ["2"]);
    server_is_fine(&server).await;
}
