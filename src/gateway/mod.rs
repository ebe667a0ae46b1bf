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
pub mod sign;

// The proof columns a verified result carries, removed before the client sees it.
use crate::client::proof::{RowProof, SignedBody, REF_PROOF_COLUMNS, ROW_PROOF_COLUMNS as PROOF_COLUMNS};
use crate::client::{ClientError, VerifyingClient};
use crate::server::types::decode_binary;
use crate::sql::value::{decode_row, DataType, Value};
use bytes::{Buf, BufMut, BytesMut};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Largest message the gateway relays (the server's own limit is lower).
const MAX_MESSAGE: usize = 1 << 30;

/// What every connection shares: where the server is and the trusted state, behind one lock so that
/// checks and state updates are serialised.
pub struct Gateway {
    pub upstream: String,
    /// The gateway's own connection string (for reconnecting its verifier).
    pub conn: String,
    pub verifier: Mutex<VerifyingClient>,
    /// Set the client timestamp (`vouch.client_timestamp`) of every transaction its clients commit to
    /// the gateway's clock (`--client-timestamps`).
    pub client_timestamps: bool,
    /// Sign every transaction a client commits with the key for its role (`--signing-key`).
    pub keys: sign::Keys,
}

impl Gateway {
    /// Verify a checkpoint against the trusted state and advance it (a rollback or fork is an error).
    async fn accept_checkpoint(&self, signed: &SignedBody) -> Result<crate::verify::checkpoint::Checkpoint, ClientError> {
        let mut v = self.verifier.lock().await;
        match v.accept_signed(signed).await {
            Err(ClientError::Connection(_)) if v.client().is_closed() => {
                v.reconnect(&self.conn).await?;
                v.accept_signed(signed).await
            }
            r => r,
        }
    }

    async fn verify_current(&self) -> Result<u64, ClientError> {
        let mut v = self.verifier.lock().await;
        match v.checkpoint().await {
            Err(ClientError::Connection(_)) if v.client().is_closed() => {
                v.reconnect(&self.conn).await?;
                Ok(v.checkpoint().await?.size)
            }
            r => Ok(r?.size),
        }
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
    /// `verified_deref`: the reference entry's proof columns follow the row's (in `proof` too).
    reference: bool,
}

impl Layout {
    /// The columns the client sees, in their order: the row's, and `_deleted` for history.
    fn shown(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = self.keep.iter().chain(self.deleted.iter()).copied().collect();
        idx.sort_unstable();
        idx
    }
}

/// A verified result's layout: its last columns are the proof columns, in this order (then `_deleted`
/// for `verified_history`, or the reference's proof columns for `verified_deref`). Found by position,
/// so a user column named `_tx` or `_deleted` is just a column.
fn layout(fields: Vec<Field>) -> Option<Layout> {
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    let r = REF_PROOF_COLUMNS.len();
    if names.len() >= PROOF_COLUMNS.len() + r && names[names.len() - r..] == REF_PROOF_COLUMNS {
        let n = names.len() - r;
        if names[n - PROOF_COLUMNS.len()..n] == PROOF_COLUMNS {
            let start = n - PROOF_COLUMNS.len();
            let proof = PROOF_COLUMNS.iter().chain(&REF_PROOF_COLUMNS).enumerate().map(|(k, name)| (*name, start + k)).collect();
            return Some(Layout { fields, proof, keep: (0..start).collect(), deleted: None, reference: true });
        }
    }
    let n = fields.len();
    let history = n > PROOF_COLUMNS.len() && names[n - 1] == "_deleted" && names[n - 1 - PROOF_COLUMNS.len()..n - 1] == PROOF_COLUMNS;
    let plain = n >= PROOF_COLUMNS.len() && names[n - PROOF_COLUMNS.len()..] == PROOF_COLUMNS;
    let (start, deleted) = match (history, plain) {
        (true, _) => (n - 1 - PROOF_COLUMNS.len(), Some(n - 1)),
        (false, true) => (n - PROOF_COLUMNS.len(), None),
        _ => return None,
    };
    let proof = PROOF_COLUMNS.iter().enumerate().map(|(k, name)| (*name, start + k)).collect();
    Some(Layout { fields, proof, keep: (0..start).collect(), deleted, reference: false })
}

/// A prepared statement as the client defined it; a re-Parse of the same name makes a new one, so an
/// answer is always matched with the statement it was for, even with pipelining.
#[derive(Debug, Default)]
struct Statement {
    /// Its text calls a proof function: its results must carry the proof.
    must_verify: bool,
    /// Its result layout, once the server described it (None inside: not a verified result).
    layout: std::sync::Mutex<Option<Option<Layout>>>,
    /// Its text as the server records it, and what it is to a transaction's record (None: the text
    /// is not one statement, the server refuses it).
    text: String,
    kind: Option<crate::sql::engine::StatementKind>,
    /// Its parameter types, as the server describes them (when the gateway signs).
    types: Arc<sign::ParamTypes>,
}

/// A bound portal: its statement (as of the Bind) and the result formats the client asked for.
#[derive(Debug, Clone)]
struct Portal {
    statement: Arc<Statement>,
    formats: Vec<i16>,
    /// Its layout, when the client described the portal (formats included).
    described: Slot,
    /// The Bind's parameter formats and values (when the gateway signs).
    values: Arc<sign::BindValues>,
}

type Slot = Arc<std::sync::Mutex<Option<Option<Layout>>>>;

/// What the server will answer next, in order, with everything needed captured when it was sent.
#[derive(Debug)]
enum Expect {
    DescribeStatement(Arc<Statement>),
    DescribePortal(Slot),
    Execute(Option<Portal>),
    /// A simple query, and whether its text calls a proof function.
    Simple(bool),
    /// A FunctionCall: one answer, then ReadyForQuery.
    Function,
    Sync,
    /// The gateway's own `SET vouch.client_timestamp` query: its answers are not the client's.
    Injected,
    /// A Parse, Bind or Close: one answer (ParseComplete, BindComplete, CloseComplete).
    Plain,
    /// The gateway's own Describe of a client's statement: its parameter types are noted, its
    /// answers swallowed.
    InjectedDescribe(Arc<sign::ParamTypes>),
    /// The gateway's own extended-protocol SET statements that sign a transaction: this many answers
    /// left to swallow.
    InjectedSet(usize),
}

#[derive(Default)]
struct Session {
    /// The next client message starts a new unit of work (nothing sent yet, or after a Sync or a
    /// simple Query): where the gateway may put its own query first.
    mid_batch: bool,
    statements: HashMap<String, Arc<Statement>>,
    portals: HashMap<String, Portal>,
    queue: VecDeque<Expect>,
    /// The layout of the result being streamed (simple query or Execute), if verified.
    current: Option<Layout>,
    /// The result being streamed must be verified (its statement calls a proof function).
    current_must_verify: bool,
    /// The gateway answered with an error the server did not see: drop the server's answers until
    /// ReadyForQuery.
    failed: bool,
    /// The current transaction wrote something.
    wrote: bool,
    /// The connecting role and the key the gateway signs its transactions with, if any.
    role: String,
    key: Option<p256::ecdsa::SigningKey>,
    /// The transaction under way, as the server will record it (followed only when signing).
    unit: sign::Unit,
    /// The forwarding side has noted a message it has not sent yet: the server's transaction status
    /// does not reflect it.
    forwarding: bool,
    /// Messages that end with ReadyForQuery (Sync, Query, FunctionCall), sent and answered: the
    /// messages between two of them are one epoch.
    epoch_sent: u64,
    epoch_done: u64,
    /// The epoch whose remaining messages the server skips after an error (extended protocol).
    skipped_epoch: Option<u64>,
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

/// A Bind's parts: portal, statement, and the offset of its result-format section.
fn bind_parts(body: &[u8]) -> Option<(String, String, usize)> {
    let mut b = body;
    let portal = cstr(&mut b)?;
    let stmt = cstr(&mut b)?;
    i16s(&mut b)?;
    if b.len() < 2 {
        return None;
    }
    let n = b.get_i16().max(0) as usize;
    for _ in 0..n {
        if b.len() < 4 {
            return None;
        }
        let len = b.get_i32();
        if len > 0 {
            if b.len() < len as usize {
                return None;
            }
            b.advance(len as usize);
        }
    }
    Some((portal, stmt, body.len() - b.len()))
}

impl Session {
    /// Note a frontend message on its way to the server; returns the message to send (a Bind's result
    /// formats are widened to the proof columns the client does not see).
    fn frontend(&mut self, ty: u8, body: Vec<u8>) -> Vec<u8> {
        let mut b = &body[..];
        match ty {
            b'P' => {
                self.queue.push_back(Expect::Plain);
                if let Some(name) = cstr(&mut b) {
                    let query = cstr(&mut b).unwrap_or_default();
                    let must_verify = calls_proof_function(&query);
                    let (text, kind) = match crate::sql::parse(&query) {
                        Ok(mut v) if v.len() == 1 && self.key.is_some() => {
                            let (stmt, text) = v.pop().expect("one statement");
                            (text, Some(crate::sql::engine::statement_kind(&stmt)))
                        }
                        _ => (String::new(), None),
                    };
                    self.statements.insert(name, Arc::new(Statement { must_verify, text, kind, ..Default::default() }));
                }
            }
            b'C' => self.queue.push_back(Expect::Plain),
            b'B' => {
                self.queue.push_back(Expect::Plain);
                if let Some((portal, stmt, at)) = bind_parts(&body) {
                    let values = match self.key {
                        Some(_) => Arc::new(sign::bind_values(&body).unwrap_or_default()),
                        None => Arc::default(),
                    };
                    let statement = self.statements.get(&stmt).cloned().unwrap_or_default();
                    let mut rest = &body[at..];
                    let mut formats = i16s(&mut rest).unwrap_or_default();
                    // The client sees the row's columns only: one format code per visible column is
                    // widened with text codes for the proof columns the server also returns.
                    let widened = match statement.layout.lock().expect("statement lock").as_ref() {
                        Some(Some(l)) if formats.len() > 1 && formats.len() == l.shown().len() => {
                            let shown = l.shown();
                            let mut full = vec![0i16; l.fields.len()];
                            for (k, &i) in shown.iter().enumerate() {
                                full[i] = formats[k];
                            }
                            Some(full)
                        }
                        _ => None,
                    };
                    let out = match widened {
                        Some(full) => {
                            let mut m = body[..at].to_vec();
                            m.put_i16(full.len() as i16);
                            for f in &full {
                                m.put_i16(*f);
                            }
                            formats = full;
                            m
                        }
                        None => body,
                    };
                    self.portals.insert(portal, Portal { statement, formats, described: Slot::default(), values });
                    return out;
                }
            }
            b'D' if !b.is_empty() => {
                let kind = b.get_u8();
                if let Some(name) = cstr(&mut b) {
                    self.queue.push_back(if kind == b'S' {
                        Expect::DescribeStatement(self.statements.get(&name).cloned().unwrap_or_default())
                    } else {
                        Expect::DescribePortal(self.portals.get(&name).map(|p| p.described.clone()).unwrap_or_default())
                    });
                }
            }
            b'E' => {
                if let Some(portal) = cstr(&mut b) {
                    self.queue.push_back(Expect::Execute(self.portals.get(&portal).cloned()));
                }
            }
            b'Q' => {
                let must = cstr(&mut b).is_some_and(|q| calls_proof_function(&q));
                self.queue.push_back(Expect::Simple(must))
            }
            b'F' => self.queue.push_back(Expect::Function),
            b'S' => self.queue.push_back(Expect::Sync),
            _ => {}
        }
        body
    }
}

impl Session {
    /// When the gateway signs: follow the transaction through a client message about to be sent, and
    /// return the statements to sign before it when it commits (sign.rs).
    fn sign_point(&mut self, ty: u8, body: &[u8]) -> Option<Vec<sign::Pending>> {
        let mut b = body;
        match ty {
            b'Q' => {
                let query = cstr(&mut b)?;
                let statements = crate::sql::parse(&query).ok()?;
                // One signature per query string: the first transaction it commits.
                let mut first = None;
                for (stmt, text) in statements {
                    let pending = sign::Pending { text, params: sign::Params::Text(Vec::new()) };
                    let committed = self.unit.step(&crate::sql::engine::statement_kind(&stmt), pending);
                    first = first.or(committed);
                }
                let end = self.unit.end_of_unit();
                first.or(end)
            }
            b'E' => {
                let portal = self.portals.get(&cstr(&mut b)?)?;
                let kind = portal.statement.kind.clone()?;
                let params = sign::Params::Bound { types: portal.statement.types.clone(), bind: portal.values.clone() };
                self.unit.step(&kind, sign::Pending { text: portal.statement.text.clone(), params })
            }
            b'S' => self.unit.end_of_unit(),
            _ => None,
        }
    }

    /// After an ErrorResponse the server skips to the next Sync: so do the expectations. Returns
    /// whether a parameter-type wait was settled.
    fn skip_to_sync(&mut self) -> bool {
        if !matches!(self.queue.front(), Some(Expect::Simple(_) | Expect::Injected | Expect::Function | Expect::Sync) | None) {
            self.skipped_epoch = Some(self.epoch_done);
        }
        let mut settled = false;
        while let Some(
            Expect::DescribeStatement(_)
            | Expect::DescribePortal(_)
            | Expect::Execute(_)
            | Expect::Plain
            | Expect::InjectedDescribe(_)
            | Expect::InjectedSet(_),
        ) = self.queue.front()
        {
            if let Some(Expect::InjectedDescribe(types)) = self.queue.pop_front() {
                types.set(None);
                settled = true;
            }
        }
        settled
    }
}

/// The layout of an Execute's rows: its statement's, with the Bind's result formats applied.
fn execute_layout(p: &Portal) -> Option<Layout> {
    if let Some(described) = p.described.lock().expect("portal lock").clone() {
        return described;
    }
    let mut l = p.statement.layout.lock().expect("statement lock").clone().flatten()?;
    for (i, f) in l.fields.iter_mut().enumerate() {
        f.format = match p.formats.len() {
            0 => 0,
            1 => p.formats[0],
            _ => p.formats.get(i).copied().unwrap_or(0),
        };
    }
    Some(l)
}

/// Whether statement text calls a row proof function (whose results the gateway must verify).
fn calls_proof_function(q: &str) -> bool {
    let q = q.to_ascii_lowercase();
    q.contains("verified_get") || q.contains("verified_history") || q.contains("verified_deref")
}

const NEEDS_PROOF: &str = "vouchdb gateway: a verified_get, verified_history or verified_deref result must carry its proof \
                           columns to be verified; select them all (SELECT * FROM verified_get(…))";

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
    value_list(&mut &body[..])
}

/// A count (int16) and that many values, each an int32 length (-1: NULL) and its bytes: a DataRow's
/// columns, a Bind's parameters.
fn value_list(b: &mut &[u8]) -> Option<Vec<Option<Vec<u8>>>> {
    if b.len() < 2 {
        return None;
    }
    let n = b.get_i16().max(0) as usize;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        if b.len() < 4 {
            return None;
        }
        let len = b.get_i32();
        if len < 0 {
            values.push(None);
        } else {
            values.push(Some(b.get(..len as usize)?.to_vec()));
            b.advance(len as usize);
        }
    }
    Some(values)
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

/// An ErrorResponse made by the gateway.
fn error_response(severity: &str, code: &str, msg: &str) -> Vec<u8> {
    response(b'E', severity, code, msg)
}

/// An ErrorResponse (`E`) or NoticeResponse (`N`).
fn response(kind: u8, severity: &str, code: &str, msg: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in [(b'S', severity), (b'V', severity), (b'C', code), (b'M', msg)] {
        body.push(t);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    message(kind, &body)
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
    let proof = RowProof::from_columns(|n| text_of(l, cols, n))?;
    let (key, origin) = gw.key().await;
    let v = proof.verify(&key, &origin, None)?;
    if l.reference {
        // The reference entry is proven in the same tree and points at exactly this row version.
        let r = RowProof::reference_from_columns(|n| text_of(l, cols, n))?.verify(&key, &origin, None)?;
        crate::client::proof::check_reference(&r, &v)?;
    }
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
    // Compared as values, with no cast of the proven value (a cast could round it into agreement):
    // the served value, decoded by its declared type, must equal the proven one.
    for (&i, p) in l.keep.iter().zip(proven) {
        let f = &l.fields[i];
        let shown = column_value(f, &cols[i])?;
        let same = match (&shown, &p) {
            (Value::Null, Value::Null) => true,
            (Value::Null, _) | (_, Value::Null) => false,
            (a, b) => a.compare(b) == Some(std::cmp::Ordering::Equal) && a.natural_type().is_numeric() == b.natural_type().is_numeric(),
        };
        if !same {
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
    let role = sign::startup_user(&startup);
    let key = gw.keys.for_role(&role);
    let session = Arc::new(std::sync::Mutex::new(Session { role, key: key.clone(), ..Session::default() }));
    let s2 = session.clone();
    // Parameter types described, or known never to come: a signature waiting for them may go on.
    let typed = Arc::new(tokio::sync::Notify::new());
    let typed2 = typed.clone();
    // Client → server: relayed (a Bind's result formats widened), noted on the way.
    let stamp = gw.client_timestamps;
    let forward = async move {
        loop {
            let (ty, body) = read_message(&mut cr).await?;
            let mut out = Vec::new();
            let to_sign = match &key {
                Some(_) => {
                    let mut s = s2.lock().expect("session lock");
                    s.forwarding = true;
                    // In an epoch the server skips after an error nothing commits: nothing to sign.
                    let point = s.sign_point(ty, &body);
                    point.filter(|_| s.skipped_epoch != Some(s.epoch_sent))
                }
                None => None,
            };
            if let (Some(pending), Some(key)) = (to_sign, &key) {
                // The types of the parameters to sign come from Describes already sent.
                let resolved = loop {
                    let notified = typed2.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    match sign::resolve(&pending) {
                        sign::Resolved::Ready { statements, params } => break Some((statements, params)),
                        sign::Resolved::Never => break None,
                        sign::Resolved::Waiting => {}
                    }
                    if tokio::time::timeout(std::time::Duration::from_secs(60), notified).await.is_err() {
                        tracing::warn!("gateway: the server did not describe a statement's parameters; not signing");
                        break None;
                    }
                };
                if let Some((texts, params)) = resolved {
                    let mut s = s2.lock().expect("session lock");
                    let sets = sign::settings(key, &s.role, &texts, &params);
                    if ty == b'Q' {
                        let mut q = sets.join("; ").into_bytes();
                        q.push(0);
                        out.extend_from_slice(&message(b'Q', &q));
                        s.queue.push_back(Expect::Injected);
                        s.epoch_sent += 1;
                    } else {
                        out.extend_from_slice(&sign::extended(&sets));
                        s.queue.push_back(Expect::InjectedSet(sign::extended_answers(sets.len())));
                    }
                }
            }
            {
                let mut s = s2.lock().expect("session lock");
                s.forwarding = false;
                // The client timestamp of whatever this unit of work commits: the gateway's clock now
                // (docs/PROVENANCE.md). Its answers are swallowed (Expect::Injected). A signing
                // gateway sets it with the signature instead.
                if stamp && key.is_none() && !s.mid_batch && matches!(ty, b'Q' | b'P' | b'B' | b'E') {
                    let now = chrono::Utc::now().timestamp_micros();
                    let text = Value::Timestamptz(now).to_text(DataType::Timestamptz).unwrap_or_default();
                    let mut q = format!("SET vouch.client_timestamp = '{text}'").into_bytes();
                    q.push(0);
                    out.extend_from_slice(&message(b'Q', &q));
                    s.queue.push_back(Expect::Injected);
                    s.epoch_sent += 1;
                }
                s.mid_batch = match ty {
                    b'S' | b'Q' => false,
                    // Extended-protocol messages (not the startup's password messages).
                    b'P' | b'B' | b'E' | b'D' | b'C' | b'H' => true,
                    _ => s.mid_batch,
                };
                let body = s.frontend(ty, body);
                out.extend_from_slice(&message(ty, &body));
                // A signing gateway asks for the parameter types of every statement it may sign.
                if ty == b'P' && key.is_some() {
                    let mut b = &body[..];
                    if let Some(name) = cstr(&mut b) {
                        if let Some(st) = s.statements.get(&name).filter(|st| st.kind.is_some()) {
                            let types = st.types.clone();
                            if s.skipped_epoch == Some(s.epoch_sent) {
                                types.set(None); // skipped by the server: never described
                            }
                            out.extend_from_slice(&sign::describe(&name));
                            s.queue.push_back(Expect::InjectedDescribe(types));
                        }
                    }
                }
                if matches!(ty, b'S' | b'Q' | b'F') {
                    s.epoch_sent += 1;
                }
            }
            uw.write_all(&out).await?;
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
            let mut settled = false;
            {
                let mut s = session.lock().expect("session lock");
                let s = &mut *s;
                // The answer to a client's Parse, Bind or Close: the client's, whatever the gateway
                // queued after it (its signing statements may already be queued behind it).
                let plain = matches!(ty, b'1' | b'2' | b'3') && matches!(s.queue.front(), Some(Expect::Plain));
                if plain {
                    s.queue.pop_front();
                }
                let injected = !plain && matches!(s.queue.front(), Some(Expect::Injected));
                match ty {
                    // The answers to the gateway's signing statements (an error goes to the client:
                    // the server skips the client's messages up to Sync too).
                    b'E' if matches!(s.queue.front(), Some(Expect::InjectedSet(_))) => {
                        tracing::warn!("gateway: the server refused the settings that sign a transaction");
                        settled |= s.skip_to_sync();
                        out.extend_from_slice(&message(ty, &body));
                    }
                    // (ReadyForQuery is never theirs: the server skipped them after an error.)
                    _ if !plain && ty != b'Z' && matches!(s.queue.front(), Some(Expect::InjectedSet(_))) => {
                        if let Some(Expect::InjectedSet(left)) = s.queue.front_mut() {
                            *left -= 1;
                            if *left == 0 {
                                s.queue.pop_front();
                            }
                        }
                    }
                    // The answers to the gateway's Describe of a statement it may sign.
                    b't' | b'T' | b'n' if matches!(s.queue.front(), Some(Expect::InjectedDescribe(_))) => {
                        if let Some(Expect::InjectedDescribe(types)) = s.queue.front() {
                            if ty == b't' {
                                types.set(sign::parameter_oids(&body));
                            } else {
                                types.set(None);
                                s.queue.pop_front();
                            }
                            settled = true;
                        }
                    }
                    // The answers to the gateway's own query, up to its ReadyForQuery.
                    _ if injected => {
                        if ty == b'E' {
                            tracing::warn!("gateway: the server refused the client timestamp");
                        }
                        if ty == b'Z' {
                            s.queue.pop_front();
                            s.epoch_done += 1;
                        }
                    }
                    // After the gateway answered with an error, the server's answers up to
                    // ReadyForQuery are dropped (the client treats the error as ending them).
                    b'T' | b'D' | b'C' | b's' | b'I' | b'E' | b'n' | b't' | b'1' | b'2' | b'3' if s.failed => {
                        if matches!(ty, b'C' | b's' | b'I' | b'E') {
                            if let Some(Expect::Execute(_)) = s.queue.front() {
                                s.queue.pop_front();
                            }
                        }
                        if ty == b'E' {
                            settled |= s.skip_to_sync();
                        }
                        if ty == b'T' || ty == b'n' {
                            if let Some(Expect::DescribeStatement(_) | Expect::DescribePortal(_)) = s.queue.front() {
                                s.queue.pop_front();
                            }
                        }
                    }
                    b'T' => {
                        let l = layout(parse_row_description(&body).unwrap_or_default());
                        match s.queue.front() {
                            Some(Expect::DescribeStatement(st)) => {
                                *st.layout.lock().expect("statement lock") = Some(l.clone());
                                s.queue.pop_front();
                            }
                            Some(Expect::DescribePortal(slot)) => {
                                *slot.lock().expect("portal lock") = Some(l.clone());
                                s.queue.pop_front();
                            }
                            Some(Expect::Simple(must)) => {
                                s.current_must_verify = *must;
                                s.current = l.clone().map(|mut l| {
                                    // Simple-query results are text.
                                    l.fields.iter_mut().for_each(|f| f.format = 0);
                                    l
                                });
                            }
                            _ => s.current = l.clone(),
                        }
                        let unverifiable = l.is_none() && matches!(s.queue.front(), Some(Expect::Simple(true)));
                        if unverifiable {
                            s.failed = true;
                            out.extend_from_slice(&error_response("ERROR", "XX001", NEEDS_PROOF));
                        } else {
                            match &l {
                                Some(l) => {
                                    let keep: Vec<&Field> = l.shown().into_iter().map(|i| &l.fields[i]).collect();
                                    out.extend_from_slice(&message(b'T', &row_description(&keep)));
                                }
                                None => out.extend_from_slice(&message(ty, &body)),
                            }
                        }
                    }
                    b'n' => {
                        if let Some(Expect::DescribeStatement(_) | Expect::DescribePortal(_)) = s.queue.front() {
                            match s.queue.pop_front() {
                                Some(Expect::DescribeStatement(st)) => *st.layout.lock().expect("statement lock") = Some(None),
                                Some(Expect::DescribePortal(slot)) => *slot.lock().expect("portal lock") = Some(None),
                                _ => {}
                            }
                        }
                        out.extend_from_slice(&message(ty, &body));
                    }
                    b'D' => {
                        if s.current.is_none() {
                            if let Some(Expect::Execute(p)) = s.queue.front() {
                                s.current = p.as_ref().and_then(execute_layout);
                                s.current_must_verify = p.as_ref().is_some_and(|p| p.statement.must_verify);
                            } else if let Some(Expect::Simple(must)) = s.queue.front() {
                                s.current_must_verify = *must;
                            }
                        }
                        match &s.current {
                            Some(l) => match parse_data_row(&body) {
                                Some(cols) => pending_verify = Some((l.clone(), cols)),
                                None => {
                                    s.failed = true;
                                    out.extend_from_slice(&error_response(
                                        "FATAL",
                                        "XX001",
                                        "vouchdb gateway: malformed DataRow from the server",
                                    ));
                                }
                            },
                            None if s.current_must_verify => {
                                s.failed = true;
                                out.extend_from_slice(&error_response("ERROR", "XX001", NEEDS_PROOF));
                            }
                            None => out.extend_from_slice(&message(ty, &body)),
                        }
                    }
                    b'C' | b's' | b'I' => {
                        if ty == b'C' && is_write_tag(&body) {
                            s.wrote = true;
                        }
                        s.current = None;
                        s.current_must_verify = false;
                        if let Some(Expect::Execute(_)) = s.queue.front() {
                            s.queue.pop_front();
                        }
                        out.extend_from_slice(&message(ty, &body));
                    }
                    b'E' => {
                        s.current = None;
                        s.current_must_verify = false;
                        // The server skips to the next Sync: so do the expectations.
                        settled |= s.skip_to_sync();
                        out.extend_from_slice(&message(ty, &body));
                    }
                    b't' => {
                        if let Some(Expect::DescribeStatement(st)) = s.queue.front() {
                            st.types.set(sign::parameter_oids(&body));
                            settled = true;
                        }
                        out.extend_from_slice(&message(ty, &body));
                    }
                    b'V' => {
                        if let Some(Expect::Function) = s.queue.front() {
                            s.queue.pop_front();
                        }
                        out.extend_from_slice(&message(ty, &body));
                    }
                    b'Z' => {
                        s.current = None;
                        s.current_must_verify = false;
                        s.failed = false;
                        while let Some(e) = s.queue.pop_front() {
                            if let Expect::InjectedDescribe(types) = &e {
                                types.set(None);
                                settled = true;
                            }
                            if matches!(e, Expect::Sync | Expect::Simple(_) | Expect::Function) {
                                break;
                            }
                        }
                        s.epoch_done += 1;
                        if let Some(notice) = s.unit.notice.take() {
                            out.extend_from_slice(&response(b'N', "WARNING", "01000", &notice));
                        }
                        let idle = body.first() == Some(&b'I');
                        // Nothing in flight: the server's transaction status is the truth.
                        if s.key.is_some() && s.queue.is_empty() && !s.forwarding {
                            s.unit.resync(body.first().copied().unwrap_or(b'I'));
                        }
                        if idle && std::mem::take(&mut s.wrote) {
                            check_write = true;
                        } else {
                            out.extend_from_slice(&message(ty, &body));
                        }
                    }
                    _ => out.extend_from_slice(&message(ty, &body)),
                }
            }
            if settled {
                typed.notify_waiters();
            }
            if let Some((l, cols)) = pending_verify {
                match verify_row(&gw, &l, &cols).await {
                    Ok(()) => {
                        let keep: Vec<&Option<Vec<u8>>> = l.shown().into_iter().map(|i| &cols[i]).collect();
                        out.extend_from_slice(&message(b'D', &data_row(&keep)));
                    }
                    Err(e) if e.is_integrity() => {
                        // Evidence against the server: end the session, so nothing after this (a
                        // pipelined write, an implicit transaction) goes on as if nothing happened.
                        tracing::error!(error = %e, "gateway: a verified read failed verification");
                        out.extend_from_slice(&error_response("FATAL", "XX001", &format!("vouchdb gateway: verification failed: {e}")));
                        cw.write_all(&out).await?;
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "gateway: a verified read could not be checked");
                        session.lock().expect("session lock").failed = true;
                        out.extend_from_slice(&error_response("ERROR", "08006", &format!("vouchdb gateway: could not verify: {e}")));
                    }
                }
            }
            if check_write {
                match gw.verify_current().await {
                    Ok(_) => {}
                    Err(e) if e.is_integrity() => {
                        tracing::error!(error = %e, "gateway: the checkpoint after a write does not verify");
                        let msg =
                            format!("vouchdb gateway: the write committed, but the server's checkpoint after it does not verify: {e}");
                        out.extend_from_slice(&error_response("FATAL", "XX001", &msg));
                        cw.write_all(&out).await?;
                        return Ok(());
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "gateway: could not confirm a write");
                        let msg = format!("vouchdb gateway: the write committed but could not be confirmed: {e}");
                        out.extend_from_slice(&response(b'N', "WARNING", "01000", &msg));
                    }
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
