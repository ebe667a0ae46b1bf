//! The verifying gateway (`vouchdb gateway`, the immugw role): a PostgreSQL protocol relay, meant to run
//! on another host than the server. Applications connect to it with their ordinary driver; startup and
//! authentication (SCRAM) pass through unchanged to the server, and so does every statement. The gateway
//! reads the server's answers:
//!
//! - a result set with `verified_get`'s proof columns (`verified_get`, `verified_get_at`,
//!   `verified_history`) is verified row by row against the gateway's trusted state (one per gateway,
//!   shared by all its clients): checkpoint signature with the pinned key, consistency with the trusted
//!   tree, the transaction's and the entry's inclusion, and that every returned column equals the value
//!   decoded from the proven entry. The client gets only the row's columns; a failed check becomes an
//!   error (SQLSTATE XX001), never data.
//! - after a transaction that wrote commits (ReadyForQuery back to idle after INSERT, UPDATE, DELETE,
//!   COPY or DDL), the gateway fetches the server's checkpoint, verifies it and its consistency with the
//!   trusted state, and only then lets the client see ReadyForQuery (verified writes).
//!
//! Protocol bookkeeping: the gateway follows Parse/Bind/Describe/Execute/Sync and simple queries in
//! order, so it knows which statement each RowDescription and DataRow belongs to, with pipelining.

pub mod rest;

use crate::client::proof::{parse_hash, parse_hash_array, parse_hex, RowProof, SignedBody};
use crate::client::{ClientError, VerifyingClient};
use crate::server::types::decode_binary;
use crate::sql::value::{decode_row, DataType, Value};
use bytes::{Buf, BufMut, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// The proof columns a verified result carries, removed before the client sees it.
const PROOF_COLUMNS: [&str; 11] = [
    "_tx",
    "_commit_ts",
    "_entry_index",
    "_entry",
    "_entry_proof",
    "_leaf",
    "_tx_proof",
    "_tree_size",
    "_root",
    "_checkpoint",
    "_signature",
];

/// Largest message the gateway relays (the server's own limit is lower).
const MAX_MESSAGE: usize = 1 << 30;

/// What every connection shares: where the server is and the trusted state, behind one lock so that
/// checks and state updates are serialised.
pub struct Gateway {
    pub upstream: String,
    pub verifier: Mutex<VerifyingClient>,
}

impl Gateway {
    /// Verify a checkpoint against the trusted state and advance it (a rollback or fork is an error).
    async fn accept_checkpoint(&self, signed: &SignedBody) -> Result<crate::verify::checkpoint::Checkpoint, ClientError> {
        let mut v = self.verifier.lock().await;
        v.accept_signed(signed).await
    }

    async fn verify_current(&self) -> Result<u64, ClientError> {
        let mut v = self.verifier.lock().await;
        Ok(v.checkpoint().await?.size)
    }

    async fn key(&self) -> (p256::ecdsa::VerifyingKey, String) {
        let v = self.verifier.lock().await;
        (*v.key(), v.origin().to_string())
    }
}

/// One result column as the RowDescription describes it.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    raw: Vec<u8>,
    type_oid: u32,
    format: i16,
}

/// Where the proof columns of a verified result are, and which columns the client keeps.
#[derive(Debug, Clone)]
struct Layout {
    fields: Vec<Field>,
    proof: HashMap<&'static str, usize>,
    keep: Vec<usize>,
    deleted: Option<usize>,
}

impl Layout {
    /// The columns the client sees, in their order: the row's, and `_deleted` for history.
    fn shown(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = self.keep.iter().chain(self.deleted.iter()).copied().collect();
        idx.sort_unstable();
        idx
    }
}

fn layout(fields: Vec<Field>) -> Option<Layout> {
    let mut proof = HashMap::new();
    for name in PROOF_COLUMNS {
        proof.insert(name, fields.iter().position(|f| f.name == name)?);
    }
    let deleted = fields.iter().position(|f| f.name == "_deleted");
    let keep = (0..fields.len()).filter(|i| !proof.values().any(|p| p == i) && Some(*i) != deleted).collect();
    Some(Layout { fields, proof, keep, deleted })
}

/// What the server will answer next, in order.
#[derive(Debug)]
enum Expect {
    DescribeStatement(String),
    DescribePortal(String),
    Execute(String),
    Simple,
    Sync,
}

#[derive(Default)]
struct Session {
    /// Prepared statement name → its result layout when it is a verified result.
    statements: HashMap<String, Option<Layout>>,
    /// Portal name → (statement, result format codes from Bind).
    portals: HashMap<String, (String, Vec<i16>)>,
    queue: VecDeque<Expect>,
    /// The layout of the result being streamed (simple query or Execute), if verified.
    current: Option<Layout>,
    /// Prepared statements whose text calls a proof function: their results must carry the proof.
    must_verify: std::collections::HashSet<String>,
    /// The simple query being answered calls a proof function.
    simple_must_verify: bool,
    /// Portal name → its layout from a Describe of the portal (formats included).
    portal_layouts: HashMap<String, Option<Layout>>,
    /// A verified result failed: drop its remaining rows, the error has been sent.
    failed: bool,
    /// The current transaction wrote something.
    wrote: bool,
}

fn cstr(b: &mut &[u8]) -> Option<String> {
    let end = b.iter().position(|&c| c == 0)?;
    let s = String::from_utf8_lossy(&b[..end]).into_owned();
    *b = &b[end + 1..];
    Some(s)
}

fn i16s(b: &mut &[u8]) -> Option<Vec<i16>> {
    if b.len() < 2 {
        return None;
    }
    let n = b.get_i16().max(0) as usize;
    if b.len() < 2 * n {
        return None;
    }
    Some((0..n).map(|_| b.get_i16()).collect())
}

impl Session {
    /// Note a frontend message on its way to the server.
    fn frontend(&mut self, ty: u8, body: &[u8]) {
        let mut b = body;
        match ty {
            b'P' => {
                if let Some(name) = cstr(&mut b) {
                    let calls = cstr(&mut b).is_some_and(|q| calls_proof_function(&q));
                    if calls {
                        self.must_verify.insert(name.clone());
                    } else {
                        self.must_verify.remove(&name);
                    }
                    self.statements.insert(name, None);
                }
            }
            b'B' => {
                let (Some(portal), Some(stmt)) = (cstr(&mut b), cstr(&mut b)) else { return };
                let Some(param_formats) = i16s(&mut b) else { return };
                let _ = param_formats;
                if b.len() < 2 {
                    return;
                }
                let n = b.get_i16().max(0) as usize;
                for _ in 0..n {
                    if b.len() < 4 {
                        return;
                    }
                    let len = b.get_i32();
                    if len > 0 {
                        if b.len() < len as usize {
                            return;
                        }
                        b.advance(len as usize);
                    }
                }
                let formats = i16s(&mut b).unwrap_or_default();
                self.portal_layouts.remove(&portal);
                self.portals.insert(portal, (stmt, formats));
            }
            b'D' if !b.is_empty() => {
                let kind = b.get_u8();
                if let Some(name) = cstr(&mut b) {
                    self.queue.push_back(if kind == b'S' { Expect::DescribeStatement(name) } else { Expect::DescribePortal(name) });
                }
            }
            b'E' => {
                if let Some(portal) = cstr(&mut b) {
                    self.queue.push_back(Expect::Execute(portal));
                }
            }
            b'Q' => {
                self.simple_must_verify = cstr(&mut b).is_some_and(|q| calls_proof_function(&q));
                self.queue.push_back(Expect::Simple)
            }
            b'S' => self.queue.push_back(Expect::Sync),
            _ => {}
        }
    }

    /// The layout of a portal's rows, with the Bind's result formats applied.
    fn portal_layout(&self, portal: &str) -> Option<Layout> {
        if let Some(l) = self.portal_layouts.get(portal) {
            return l.clone();
        }
        let (stmt, formats) = self.portals.get(portal)?;
        let mut l = self.statements.get(stmt)?.clone()?;
        for (i, f) in l.fields.iter_mut().enumerate() {
            f.format = match formats.len() {
                0 => 0,
                1 => formats[0],
                _ => formats.get(i).copied().unwrap_or(0),
            };
        }
        Some(l)
    }
}

/// Whether statement text calls a row proof function (whose results the gateway must verify).
fn calls_proof_function(q: &str) -> bool {
    let q = q.to_ascii_lowercase();
    q.contains("verified_get") || q.contains("verified_history")
}

const NEEDS_PROOF: &str = "vouchdb gateway: a verified_get or verified_history result must carry its proof columns to be \
                           verified; select them all (SELECT * FROM verified_get(…))";

fn parse_row_description(body: &[u8]) -> Option<Vec<Field>> {
    let mut b = body;
    if b.len() < 2 {
        return None;
    }
    let n = b.get_i16().max(0) as usize;
    let mut fields = Vec::with_capacity(n);
    for _ in 0..n {
        let start = b;
        let name = cstr(&mut b)?;
        if b.len() < 18 {
            return None;
        }
        let _table = b.get_u32();
        let _attnum = b.get_i16();
        let type_oid = b.get_u32();
        let _len = b.get_i16();
        let _typmod = b.get_i32();
        let format = b.get_i16();
        let used = start.len() - b.len();
        fields.push(Field { name, raw: start[..used].to_vec(), type_oid, format });
    }
    Some(fields)
}

fn row_description(fields: &[&Field]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_i16(fields.len() as i16);
    for f in fields {
        body.extend_from_slice(&f.raw);
    }
    body
}

fn parse_data_row(body: &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    let mut b = body;
    if b.len() < 2 {
        return None;
    }
    let n = b.get_i16().max(0) as usize;
    let mut cols = Vec::with_capacity(n);
    for _ in 0..n {
        if b.len() < 4 {
            return None;
        }
        let len = b.get_i32();
        if len < 0 {
            cols.push(None);
        } else {
            if b.len() < len as usize {
                return None;
            }
            cols.push(Some(b[..len as usize].to_vec()));
            b.advance(len as usize);
        }
    }
    Some(cols)
}

fn data_row(cols: &[&Option<Vec<u8>>]) -> Vec<u8> {
    let mut body = Vec::new();
    body.put_i16(cols.len() as i16);
    for c in cols {
        match c {
            None => body.put_i32(-1),
            Some(v) => {
                body.put_i32(v.len() as i32);
                body.extend_from_slice(v);
            }
        }
    }
    body
}

fn message(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(5 + body.len());
    m.push(ty);
    m.put_i32(body.len() as i32 + 4);
    m.extend_from_slice(body);
    m
}

fn error_response(code: &str, msg: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in [(b'S', "ERROR"), (b'V', "ERROR"), (b'C', code), (b'M', msg)] {
        body.push(t);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(b'E', &body)
}

/// The SQL type of a result column, for decoding what the server sent.
fn column_type(oid: u32) -> Option<DataType> {
    let t = postgres_types::Type::from_oid(oid)?;
    crate::server::types::data_type(&t)
}

/// A column's value as the server sent it, decoded by its type and format.
fn column_value(f: &Field, v: &Option<Vec<u8>>) -> Result<Value, ClientError> {
    let Some(bytes) = v else { return Ok(Value::Null) };
    let ty =
        column_type(f.type_oid).ok_or_else(|| ClientError::Malformed(format!("column {} has a type the gateway cannot read", f.name)))?;
    let r = if f.format == 1 {
        decode_binary(bytes, ty)
    } else {
        Value::parse(std::str::from_utf8(bytes).map_err(|_| ClientError::Malformed(format!("column {} is not UTF-8", f.name)))?, ty)
    };
    r.map_err(|e| ClientError::Malformed(format!("column {}: {}", f.name, e.message)))
}

fn text_of(l: &Layout, cols: &[Option<Vec<u8>>], name: &str) -> Result<String, ClientError> {
    let i = l.proof[name];
    let f = &l.fields[i];
    let v = column_value(f, &cols[i])?;
    let ty = column_type(f.type_oid).unwrap_or(DataType::Text);
    v.to_text(ty).ok_or_else(|| ClientError::Malformed(format!("{name} is NULL")))
}

/// Verify one row of a verified result; returns the columns the client keeps.
async fn verify_row(gw: &Gateway, l: &Layout, cols: &[Option<Vec<u8>>]) -> Result<(), ClientError> {
    if cols.len() != l.fields.len() {
        return Err(ClientError::Malformed("a row's column count differs from its description".into()));
    }
    let t = |n: &str| text_of(l, cols, n);
    let num = |n: &str| -> Result<u64, ClientError> { t(n)?.parse().map_err(|_| ClientError::Malformed(format!("{n} is not a number"))) };
    let proof = RowProof {
        tx: num("_tx")?,
        entry_index: num("_entry_index")? as u32,
        entry: parse_hex("_entry", &t("_entry")?)?,
        entry_proof: parse_hash_array("_entry_proof", &t("_entry_proof")?)?,
        leaf: parse_hex("_leaf", &t("_leaf")?)?,
        tx_proof: parse_hash_array("_tx_proof", &t("_tx_proof")?)?,
        tree_size: num("_tree_size")?,
        root: parse_hash("_root", &t("_root")?)?,
        checkpoint: SignedBody { body: t("_checkpoint")?, signature: t("_signature")? },
    };
    let (key, origin) = gw.key().await;
    let v = proof.verify(&key, &origin, None)?;
    gw.accept_checkpoint(&proof.checkpoint).await?;
    let tx = v.tx;
    if let Some(d) = l.deleted {
        let shown = column_value(&l.fields[d], &cols[d])?;
        if shown != Value::Bool(v.entry.is_delete()) {
            return Err(ClientError::Tampered { tx, what: "the served _deleted flag differs from the proven entry".into() });
        }
    }
    // Every column the client gets must be the proven entry's value.
    let proven = if v.entry.is_delete() {
        vec![Value::Null; l.keep.len()]
    } else {
        decode_row(&v.entry.value).map_err(|e| ClientError::Tampered { tx, what: format!("its row does not decode: {e}") })?.1
    };
    if proven.len() != l.keep.len() {
        return Err(ClientError::Malformed(format!(
            "the gateway verifies a row only when all of its columns are returned in order (SELECT * FROM verified_get(…)) and the \
             table has no hidden or later-added columns: the proven entry of tx {tx} has {} values, the result {} columns",
            proven.len(),
            l.keep.len()
        )));
    }
    for (&i, p) in l.keep.iter().zip(proven) {
        let f = &l.fields[i];
        let shown = column_value(f, &cols[i])?;
        let ty = column_type(f.type_oid).unwrap_or(DataType::Text);
        let p = if p.is_null() { p } else { p.cast(ty).map_err(|e| ClientError::Malformed(e.message))? };
        if shown.to_text(ty) != p.to_text(ty) {
            return Err(ClientError::Tampered { tx, what: format!("the served column {} differs from the proven entry", f.name) });
        }
    }
    Ok(())
}

/// Read one startup-phase packet (length-prefixed, no type byte).
async fn read_startup(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = s.read_i32().await?;
    if !(8..=10_000).contains(&len) {
        return Err(std::io::Error::other("bad startup packet length"));
    }
    let mut body = vec![0u8; len as usize - 4];
    s.read_exact(&mut body).await?;
    Ok(body)
}

async fn read_message(s: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<(u8, Vec<u8>)> {
    let ty = s.read_u8().await?;
    let len = s.read_i32().await?;
    if len < 4 || len as usize > MAX_MESSAGE {
        return Err(std::io::Error::other("bad message length"));
    }
    let mut body = vec![0u8; len as usize - 4];
    s.read_exact(&mut body).await?;
    Ok((ty, body))
}

fn tag_word(body: &[u8]) -> String {
    String::from_utf8_lossy(body).split([' ', '\0']).next().unwrap_or("").to_string()
}

/// Whether a CommandComplete tag is for a statement that may have written (DML, COPY, DDL).
fn is_write_tag(body: &[u8]) -> bool {
    !matches!(
        tag_word(body).as_str(),
        "SELECT"
            | "COMMIT"
            | "END"
            | "SHOW"
            | "FETCH"
            | "BEGIN"
            | "START"
            | "SAVEPOINT"
            | "RELEASE"
            | "SET"
            | "RESET"
            | "PREPARE"
            | "DEALLOCATE"
            | "EXPLAIN"
            | "DISCARD"
            | "LISTEN"
            | "UNLISTEN"
            | "CLOSE"
            | "DECLARE"
            | "MOVE"
            | "ROLLBACK"
            | ""
    )
}

/// Relay one client connection.
pub async fn handle(gw: Arc<Gateway>, mut client: TcpStream) -> std::io::Result<()> {
    // Startup: refuse TLS and GSS encryption (the gateway speaks plain TCP to its clients), pass cancel
    // requests and the startup message to the server.
    let startup = loop {
        let body = read_startup(&mut client).await?;
        let code = i32::from_be_bytes(body[..4].try_into().expect("length checked"));
        match code {
            80877103 | 80877104 => client.write_all(b"N").await?,
            _ => break body,
        }
    };
    let mut upstream = TcpStream::connect(&gw.upstream).await?;
    upstream.set_nodelay(true)?;
    client.set_nodelay(true)?;
    let mut packet = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&startup);
    upstream.write_all(&packet).await?;
    if i32::from_be_bytes(startup[..4].try_into().expect("length checked")) == 80877102 {
        return Ok(()); // a cancel request: the server closes the connection
    }
    let (mut cr, mut cw) = client.into_split();
    let (ur, mut uw) = upstream.into_split();
    let session = Arc::new(std::sync::Mutex::new(Session::default()));
    let s2 = session.clone();
    // Client → server: relayed as is, noted on the way.
    let forward = async move {
        loop {
            let (ty, body) = read_message(&mut cr).await?;
            s2.lock().expect("session lock").frontend(ty, &body);
            uw.write_all(&message(ty, &body)).await?;
            if ty == b'X' {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    // Server → client: verified results rewritten, writes confirmed.
    let backward = async move {
        let mut out = BytesMut::new();
        let mut ur = tokio::io::BufReader::with_capacity(64 * 1024, ur);
        loop {
            let (ty, body) = read_message(&mut ur).await?;
            let mut pending_verify: Option<(Layout, Vec<Option<Vec<u8>>>)> = None;
            let mut check_write = false;
            {
                let mut s = session.lock().expect("session lock");
                match ty {
                    b'T' => {
                        let fields = parse_row_description(&body).unwrap_or_default();
                        let l = layout(fields);
                        let front = s.queue.front();
                        match front {
                            Some(Expect::DescribeStatement(name)) => {
                                let name = name.clone();
                                s.statements.insert(name, l.clone());
                                s.queue.pop_front();
                            }
                            Some(Expect::DescribePortal(name)) => {
                                let name = name.clone();
                                s.portal_layouts.insert(name, l.clone());
                                s.queue.pop_front();
                            }
                            _ => s.current = l.clone(),
                        }
                        let unverifiable = l.is_none() && matches!(s.queue.front(), Some(Expect::Simple)) && s.simple_must_verify;
                        if unverifiable {
                            s.failed = true;
                            out.extend_from_slice(&error_response("XX001", NEEDS_PROOF));
                        }
                        match &l {
                            _ if unverifiable => {}
                            Some(l) => {
                                let keep: Vec<&Field> = l.shown().into_iter().map(|i| &l.fields[i]).collect();
                                out.extend_from_slice(&message(b'T', &row_description(&keep)));
                            }
                            None => out.extend_from_slice(&message(ty, &body)),
                        }
                    }
                    b'n' => {
                        if matches!(s.queue.front(), Some(Expect::DescribeStatement(_) | Expect::DescribePortal(_))) {
                            match s.queue.pop_front() {
                                Some(Expect::DescribeStatement(name)) => {
                                    s.statements.insert(name, None);
                                }
                                Some(Expect::DescribePortal(name)) => {
                                    s.portal_layouts.insert(name, None);
                                }
                                _ => {}
                            }
                        }
                        out.extend_from_slice(&message(ty, &body));
                    }
                    b'D' => {
                        if s.current.is_none() && !s.failed {
                            if let Some(Expect::Execute(portal)) = s.queue.front() {
                                let portal = portal.clone();
                                s.current = s.portal_layout(&portal);
                                let stmt = s.portals.get(&portal).map(|(st, _)| st.clone()).unwrap_or_default();
                                if s.current.is_none() && s.must_verify.contains(&stmt) {
                                    s.failed = true;
                                    out.extend_from_slice(&error_response("XX001", NEEDS_PROOF));
                                }
                            }
                        }
                        match (&s.current, s.failed) {
                            (_, true) => {}
                            (Some(l), false) => match parse_data_row(&body) {
                                Some(cols) => pending_verify = Some((l.clone(), cols)),
                                None => {
                                    s.failed = true;
                                    out.extend_from_slice(&error_response("XX001", "gateway: malformed DataRow from the server"));
                                }
                            },
                            (None, _) => out.extend_from_slice(&message(ty, &body)),
                        }
                    }
                    b'C' | b's' | b'I' => {
                        if ty == b'C' {
                            match tag_word(&body).as_str() {
                                "ROLLBACK" => s.wrote = false,
                                _ if is_write_tag(&body) => s.wrote = true,
                                _ => {}
                            }
                        }
                        let failed = std::mem::take(&mut s.failed);
                        s.current = None;
                        if matches!(s.queue.front(), Some(Expect::Execute(_))) {
                            s.queue.pop_front();
                        }
                        if !failed {
                            out.extend_from_slice(&message(ty, &body));
                        }
                    }
                    b'E' => {
                        s.current = None;
                        let failed = std::mem::take(&mut s.failed);
                        // The server skips to the next Sync: so do the expectations.
                        while matches!(s.queue.front(), Some(Expect::DescribeStatement(_) | Expect::DescribePortal(_) | Expect::Execute(_)))
                        {
                            s.queue.pop_front();
                        }
                        if !failed {
                            out.extend_from_slice(&message(ty, &body));
                        }
                    }
                    b'Z' => {
                        s.current = None;
                        s.failed = false;
                        while let Some(e) = s.queue.pop_front() {
                            if matches!(e, Expect::Sync | Expect::Simple) {
                                break;
                            }
                        }
                        let idle = body.first() == Some(&b'I');
                        if idle && std::mem::take(&mut s.wrote) {
                            check_write = true;
                        } else {
                            out.extend_from_slice(&message(ty, &body));
                        }
                    }
                    _ => out.extend_from_slice(&message(ty, &body)),
                }
            }
            if let Some((l, cols)) = pending_verify {
                match verify_row(&gw, &l, &cols).await {
                    Ok(()) => {
                        let keep: Vec<&Option<Vec<u8>>> = l.shown().into_iter().map(|i| &cols[i]).collect();
                        out.extend_from_slice(&message(b'D', &data_row(&keep)));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "gateway: a verified read failed verification");
                        session.lock().expect("session lock").failed = true;
                        out.extend_from_slice(&error_response("XX001", &format!("vouchdb gateway: verification failed: {e}")));
                    }
                }
            }
            if check_write {
                if let Err(e) = gw.verify_current().await {
                    tracing::error!(error = %e, "gateway: the checkpoint after a write does not verify");
                    out.extend_from_slice(&error_response(
                        "XX001",
                        &format!("vouchdb gateway: the write committed, but the server's checkpoint after it does not verify: {e}"),
                    ));
                }
                out.extend_from_slice(&message(b'Z', b"I"));
            }
            // Send when the server has nothing more buffered (or much is waiting): batches rows, never
            // holds back an answer the client waits for.
            if ur.buffer().is_empty() || out.len() > 64 * 1024 {
                cw.write_all(&out).await?;
                out.clear();
            }
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        r = forward => r,
        r = backward => r,
    }
}

/// Accept clients until the listener fails.
pub async fn serve(gw: Arc<Gateway>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    loop {
        let (sock, peer) = listener.accept().await?;
        let gw = gw.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(gw, sock).await {
                tracing::debug!(%peer, error = %e, "gateway connection ended");
            }
        });
    }
}
