//! The SQL engine: sessions, transactions and statement execution over the ledger.
//!
//! Every committed SQL transaction is exactly one ledger transaction. Reads see the ledger as of the
//! transaction's snapshot (a tree size) plus the transaction's own writes. A commit checks, under the
//! commit lock, that no key it writes was written by a transaction committed after its snapshot or still
//! in flight (first committer wins, 40001 otherwise), then queues its ledger append while still holding
//! the lock (so queue order is commit order) and waits for durability without it, so concurrent
//! commits share one group-commit fsync.

use super::catalog::{Catalog, CheckDef, ColumnDef, FkAction, ForeignKeyDef, TableDef, SYS_TABLES};
use super::error::{SqlError, SqlResult};
use super::expr::{normalize_ident, object_name, AggCall, AggFunc, Ctx, Env, Expr, ScopeCol};
use super::policy;
use super::provenance::{Auth, Provenance};
use super::value::{decode_row, encode_key, encode_row, DataType, Value};
use crate::ledger::{Entry, Ledger, NewTx};
use crate::signing::CheckpointSigner;
use sqlparser::ast::{self, Statement};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A result column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: DataType,
    /// The table column it reads unchanged, if any (RowDescription's table oid, column number and
    /// type modifier).
    pub origin: Option<super::expr::ColumnOrigin>,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: DataType) -> Column {
        Column { name: name.into(), ty, origin: None }
    }
}

/// What a statement produced.
#[derive(Debug)]
pub enum Outcome {
    Rows { columns: Arc<[Column]>, rows: Vec<Vec<Value>>, tag: String },
    Command(String),
    Begin,
    Commit(String),
}

/// A statement's shape, known before it runs (for Describe): parameter types and result columns.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    pub params: Vec<DataType>,
    pub columns: Vec<Column>,
}

type WriteKey = (u32, Vec<u8>);

/// Transaction isolation, as PostgreSQL names it (READ UNCOMMITTED behaves as READ COMMITTED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    fn parse(s: &str) -> Option<Isolation> {
        match s.trim().to_lowercase().replace(['_', '-'], " ").as_str() {
            "read committed" | "read uncommitted" => Some(Isolation::ReadCommitted),
            "repeatable read" => Some(Isolation::RepeatableRead),
            "serializable" => Some(Isolation::Serializable),
            _ => None,
        }
    }

    fn from_ast(l: &ast::TransactionIsolationLevel) -> Isolation {
        match l {
            ast::TransactionIsolationLevel::RepeatableRead | ast::TransactionIsolationLevel::Snapshot => Isolation::RepeatableRead,
            ast::TransactionIsolationLevel::Serializable => Isolation::Serializable,
            _ => Isolation::ReadCommitted,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read committed",
            Isolation::RepeatableRead => "repeatable read",
            Isolation::Serializable => "serializable",
        }
    }
}

/// A planned statement (always held in an `Arc`, so the variants' sizes do not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Planned {
    /// A query and its result columns.
    Query(plan::QueryPlan, Arc<[Column]>),
    Insert(plan::InsertPlan),
    Update(plan::ModifyPlan),
    Delete(plan::ModifyPlan),
}

impl Planned {
    /// Whether the plan carries a subquery, whose result is cached inside the plan for one execution.
    fn has_subquery(&self) -> bool {
        match self {
            Planned::Query(p, _) => p.has_subquery(),
            Planned::Insert(p) => p.has_subquery(),
            Planned::Update(p) | Planned::Delete(p) => p.has_subquery(),
        }
    }
}

/// The plan of a prepared statement, kept between executions and used while the catalog is unchanged
/// (the catalog generation it was planned under still current). Plans with subqueries are not kept.
#[derive(Default)]
pub struct PlanCache(Mutex<Option<(u64, Arc<Planned>)>>);

impl std::fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlanCache")
    }
}

/// How a committed DDL statement changes the in-memory catalog.
type CatalogChange = Box<dyn FnOnce(&mut Catalog) + Send>;

thread_local! {
    /// The catalog of the transaction whose statement runs on this thread right now, when that
    /// transaction changed the catalog (DDL inside a transaction block). See `TxnCatalog`.
    static TXN_CATALOG: std::cell::RefCell<Option<Arc<Catalog>>> = const { std::cell::RefCell::new(None) };
}

/// While alive, `Engine::catalog` (and `update_catalog`) on this thread use a transaction's own
/// catalog. Only ever held around synchronous code, never across an `.await`: connection tasks share
/// their thread. Dropping it restores the previous state (so a failed DDL statement's changes vanish);
/// `leave` hands back the catalog as the statement left it.
pub(crate) struct TxnCatalog {
    prev: Option<Option<Arc<Catalog>>>,
}

impl TxnCatalog {
    pub(crate) fn enter(c: Option<&Arc<Catalog>>) -> TxnCatalog {
        match c {
            None => TxnCatalog { prev: None },
            Some(c) => TxnCatalog { prev: Some(TXN_CATALOG.with(|o| o.borrow_mut().replace(c.clone()))) },
        }
    }

    /// Whether a transaction's own catalog is in scope on this thread (plans made under it are
    /// never cached).
    fn active() -> bool {
        TXN_CATALOG.with(|o| o.borrow().is_some())
    }

    fn leave(mut self) -> Option<Arc<Catalog>> {
        let prev = self.prev.take()?;
        TXN_CATALOG.with(|o| std::mem::replace(&mut *o.borrow_mut(), prev))
    }
}

impl Drop for TxnCatalog {
    fn drop(&mut self) {
        if let Some(prev) = self.prev.take() {
            TXN_CATALOG.with(|o| *o.borrow_mut() = prev);
        }
    }
}

pub(crate) struct Txn {
    isolation: Isolation,
    /// After DDL: the transaction's own catalog (installed when it commits) and the DDL lock, held to
    /// the end of the transaction so that no other catalog change interleaves.
    catalog: Option<Arc<Catalog>>,
    ddl_guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Indexes created by this transaction: (table id, index id). Their entries for committed rows
    /// are built at commit, when no other commit is in flight.
    new_indexes: Vec<(u32, u32)>,
    /// Row locks held until the transaction ends (after its commit is durable).
    locks: super::locks::LockSet,
    /// The snapshot each statement read (recorded in the provenance, for replay).
    snapshots: Vec<u64>,
    /// Tables read by a SERIALIZABLE transaction, validated at commit.
    read_tables: Mutex<HashSet<u32>>,
    snapshot: u64,
    /// The oldest snapshot any writing statement read: commit-time conflicts are checked against it.
    write_snapshot: u64,
    start_us: i64,
    explicit: bool,
    /// BEGIN READ ONLY: statements that write fail with 25006.
    read_only: bool,
    failed: bool,
    writes: BTreeMap<WriteKey, Option<Vec<u8>>>,
    /// Every statement that ran, with its parameters and the policy that admitted it (provenance).
    statements: Vec<StmtRecord>,
    /// The session's currval/lastval state, and what this transaction's statements drew (provenance).
    seq_session: sequence::SessionSeqs,
    drawn: sequence::Drawn,
    /// The data of the COPY FROM STDIN statement running now.
    copy_input: Option<Arc<Vec<u8>>>,
    /// The data of each COPY FROM statement in `statements`, in order (provenance `copy_data`).
    copy_data: Vec<Arc<Vec<u8>>>,
    /// Open savepoints, oldest first, each with the state ROLLBACK TO returns to.
    savepoints: Vec<(String, Savepoint)>,
    /// Replaying a recorded transaction (`audit::replay`): the values it drew.
    replay: Option<Arc<Mutex<sequence::ReplayDraws>>>,
    /// The first object id its DDL could hand out (ids used by transactions that rolled back are
    /// not reused, so this is not derivable from the log alone; recorded for replay).
    first_table_id: Option<u32>,
}

/// One statement of a transaction as its provenance record keeps it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StmtRecord {
    sql: String,
    params: Vec<Option<String>>,
    policy: Option<String>,
}

impl StmtRecord {
    fn new(sql: &str, params: &[Value], policy: Option<String>) -> StmtRecord {
        StmtRecord { sql: sql.to_string(), params: params.iter().map(param_text).collect(), policy }
    }
}

/// A parameter value as the provenance record (and so a client signature) holds it: PostgreSQL's
/// text form of the value, None for NULL. Clients that sign (`crate::client`, the gateway) use this.
pub fn param_text(v: &Value) -> Option<String> {
    v.to_text(v.natural_type())
}

/// What a statement is to a transaction's provenance record: the rule [`Engine::execute_prepared`]
/// follows, for clients that must predict the record to sign it (the gateway). A statement that is
/// `Recorded` and succeeds inside a transaction (a block, a multi-statement query string, a pipeline
/// before Sync) is recorded; on its own it is recorded when it writes. A statement rolled back to a
/// savepoint taken before it is not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    Begin,
    /// COMMIT / END.
    Commit,
    /// ROLLBACK / ABORT of the whole transaction.
    Rollback,
    Savepoint(String),
    ReleaseSavepoint(String),
    RollbackToSavepoint(String),
    /// Never part of a record: SET, SHOW, RESET, DISCARD, CLOSE, UNLISTEN, VACUUM, ANALYZE, advisory
    /// lock calls, PREPARE, DEALLOCATE.
    Session,
    /// Policy and signing-key statements: the implicit transaction before them commits first, then
    /// they commit alone, recorded (and signed) on their own.
    OwnCommit,
    /// Role changes: they commit on their own and are never signed.
    RoleChange,
    /// `EXECUTE name (args)`: recorded as the prepared statement's text and the evaluated arguments.
    SqlExecute,
    Recorded,
}

pub fn statement_kind(stmt: &Statement) -> StatementKind {
    if advisory::call(stmt).is_some() {
        return StatementKind::Session;
    }
    if policy::vouch_statement(stmt).is_some() {
        return StatementKind::OwnCommit;
    }
    match stmt {
        Statement::StartTransaction { .. } => StatementKind::Begin,
        Statement::Commit { .. } => StatementKind::Commit,
        Statement::Rollback { savepoint: Some(name), .. } => StatementKind::RollbackToSavepoint(name.value.clone()),
        Statement::Rollback { .. } => StatementKind::Rollback,
        Statement::Savepoint { name } => StatementKind::Savepoint(name.value.clone()),
        Statement::ReleaseSavepoint { name } => StatementKind::ReleaseSavepoint(name.value.clone()),
        Statement::CreateRole(_)
        | Statement::AlterRole { .. }
        | Statement::Drop { object_type: ast::ObjectType::Role | ast::ObjectType::User, .. } => StatementKind::RoleChange,
        Statement::Set(_)
        | Statement::Discard { .. }
        | Statement::Reset(_)
        | Statement::Close { .. }
        | Statement::UNLISTEN { .. }
        | Statement::ShowVariable { .. }
        | Statement::Vacuum(_)
        | Statement::Analyze(_)
        | Statement::Prepare { .. }
        | Statement::Deallocate { .. } => StatementKind::Session,
        Statement::Execute { name: Some(_), .. } => StatementKind::SqlExecute,
        _ => StatementKind::Recorded,
    }
}

/// Who commits a transaction, as its provenance record names them. `client_time_us` comes from the
/// session's `vouch.client_timestamp` (0 when unset); `consumed` is set once a commit recorded it.
pub(crate) struct Who {
    user: String,
    auth: Auth,
    session: i64,
    client_time_us: u64,
    /// `vouch.nonce` and `vouch.signature`: the client's signature over this transaction.
    signature: Option<(String, String)>,
    consumed: std::sync::atomic::AtomicBool,
}

impl Who {
    /// The provenance record of a transaction of these statements.
    fn record(
        &self,
        statements: &[StmtRecord],
        snapshots: &[u64],
        isolation: Isolation,
        start_us: i64,
        drawn: &sequence::Drawn,
    ) -> Provenance {
        let mut p = Provenance::simple(&self.user, statements.iter().map(|s| s.sql.clone()).collect());
        p.auth = Some(self.auth.clone());
        p.session = Some(self.session);
        if statements.iter().any(|s| !s.params.is_empty()) {
            p.params = statements.iter().map(|s| s.params.clone()).collect();
        }
        if statements.iter().any(|s| s.policy.is_some()) {
            p.policies = statements.iter().map(|s| s.policy.clone()).collect();
        }
        p.snapshots = snapshots.to_vec();
        p.isolation = Some(isolation.name().to_string());
        p.now_us = Some(start_us);
        p.sequence_values = drawn.sequence_values.clone();
        p.random_uuids = drawn.random_uuids.clone();
        p
    }
}

/// What `ROLLBACK TO SAVEPOINT` restores: the writes, the catalog and the provenance lists (statements,
/// snapshots, drawn values, COPY data) as they were when the savepoint was set, so the committed record
/// replays to exactly the committed writes. Row locks taken since are kept until the transaction ends
/// (more than PostgreSQL holds, never less); sequence values drawn since are not handed out again, as in
/// PostgreSQL.
struct Savepoint {
    catalog: Option<Arc<Catalog>>,
    new_indexes: usize,
    writes: BTreeMap<WriteKey, Option<Vec<u8>>>,
    statements: usize,
    snapshots: usize,
    drawn: (usize, usize),
    copy_data: usize,
    restarted: HashMap<u32, sequence::SeqValue>,
}

impl Txn {
    /// Record a table read (SERIALIZABLE validates its read set at commit).
    pub(crate) fn note_read(&self, table: u32) {
        if self.isolation == Isolation::Serializable {
            self.read_tables.lock().expect("read set lock is never poisoned").insert(table);
        }
    }
}

/// Per-connection state.
/// The session setting holding the session's process id (`pg_backend_pid()`): a number unique
/// among the server's sessions, kept across RESET and DISCARD.
pub const BACKEND_PID: &str = "vouchdb.backend_pid";

pub struct Session {
    pub user: String,
    txn: Option<Txn>,
    pub settings: BTreeMap<String, String>,
    seq: sequence::SessionSeqs,
    /// The data of the COPY FROM STDIN statement being executed (set by `copy_from`).
    copy_input: Option<Arc<Vec<u8>>>,
    /// Session-level advisory locks held (released when the session is dropped).
    advisory: advisory::Held,
    /// How the session authenticated (recorded in the provenance of its transactions).
    pub auth: Auth,
    pid: i32,
    /// The policy rule that admitted the statement running now, with its row limit.
    admission: Option<(String, Option<u64>)>,
}

/// The session setting a client sets to the timestamp of its next transaction (docs/PROVENANCE.md).
pub const CLIENT_TIMESTAMP: &str = "vouch.client_timestamp";
/// The session settings carrying a client's signature over its next transaction and the nonce it
/// signed (docs/PROVENANCE.md, "Client signatures").
pub const SIGNATURE: &str = "vouch.signature";
pub const NONCE: &str = "vouch.nonce";

impl Session {
    /// A session of `user` that authenticated in-process (tests, tools): method `internal`.
    pub fn new(user: &str) -> Session {
        Session::connected(user, Auth { method: "internal".into(), tls: false, client_cert: None })
    }

    /// A session of a client that authenticated as `user` by `auth`.
    pub fn connected(user: &str, auth: Auth) -> Session {
        static NEXT_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(1000);
        let pid = NEXT_PID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Session {
            user: user.to_string(),
            txn: None,
            settings: BTreeMap::from([(BACKEND_PID.to_string(), pid.to_string())]),
            seq: Default::default(),
            copy_input: None,
            advisory: Default::default(),
            auth,
            pid,
            admission: None,
        }
    }

    /// Who commits this session's next transaction.
    fn who(&self) -> SqlResult<Who> {
        let client_time_us = match self.settings.get(CLIENT_TIMESTAMP).filter(|v| !v.is_empty()) {
            None => 0,
            Some(text) => parse_client_timestamp(text)?,
        };
        let signature = match (self.settings.get(NONCE).filter(|v| !v.is_empty()), self.settings.get(SIGNATURE).filter(|v| !v.is_empty())) {
            (Some(n), Some(sig)) => Some((n.clone(), sig.clone())),
            (None, None) => None,
            _ => {
                return Err(SqlError::new(
                    "22023",
                    format!("{SIGNATURE} and {NONCE} are set together: the nonce is part of what is signed"),
                ))
            }
        };
        Ok(Who {
            user: self.user.clone(),
            auth: self.auth.clone(),
            session: self.pid.into(),
            client_time_us,
            signature,
            consumed: Default::default(),
        })
    }

    /// After a commit: a client timestamp applies to one transaction only.
    fn consume(&mut self, who: &Who) {
        if who.consumed.load(Ordering::Relaxed) {
            self.settings.remove(CLIENT_TIMESTAMP);
            self.settings.remove(NONCE);
            self.settings.remove(SIGNATURE);
        }
    }
    pub fn in_transaction(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit)
    }

    /// How long the session may wait for its client while a transaction (a block, or a pipeline's
    /// implicit one) is open: `idle_in_transaction_session_timeout` (0 = forever), else the server's
    /// default. None outside a transaction.
    pub fn idle_in_transaction_timeout(&self, default: std::time::Duration) -> Option<std::time::Duration> {
        self.txn.as_ref()?;
        let d = setting_ms(&self.settings, "idle_in_transaction_session_timeout").map_or(default, std::time::Duration::from_millis);
        (!d.is_zero()).then_some(d)
    }
    pub fn in_failed_transaction(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.failed)
    }
}

pub struct Engine {
    pub ledger: Arc<Ledger>,
    pub signer: Arc<CheckpointSigner>,
    catalog: RwLock<Arc<Catalog>>,
    /// Bumped whenever the catalog changes: cached plans of an older generation are stale.
    catalog_generation: AtomicU64,
    /// Keys of commits queued but not yet durable.
    in_flight: Mutex<HashSet<WriteKey>>,
    /// Serialises DDL (table id allocation and catalog updates).
    ddl: Arc<tokio::sync::Mutex<()>>,
    /// Advisory locks by key (`pg_advisory_lock`).
    advisory_locks: advisory::AdvisoryLocks,
    locks: Arc<super::locks::LockManager>,
    next_txn_id: std::sync::atomic::AtomicU64,
    sequences: sequence::Sequences,
    /// How far (µs) a client timestamp may be from the server's clock.
    client_skew_us: AtomicU64,
}

/// The default of `--max-client-skew`: five minutes.
pub const DEFAULT_CLIENT_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// `vouch.client_timestamp`'s value: a timestamp with a time zone (UTC when none is given), in
/// microseconds since the Unix epoch; before 1970 is refused (the leaf stores it unsigned).
fn parse_client_timestamp(text: &str) -> SqlResult<u64> {
    let bad = || {
        SqlError::new(
            "22007",
            format!(
                "invalid value for parameter \"{CLIENT_TIMESTAMP}\": \"{text}\" (expected a timestamp such as 2026-11-25 10:00:00.123+00)"
            ),
        )
    };
    match Value::parse(text, DataType::Timestamptz).map_err(|_| bad())? {
        Value::Timestamptz(us) if us > 0 => Ok(us as u64),
        _ => Err(bad()),
    }
}

/// Rows of one table as seen by a transaction, each with its key and the tx that wrote it.
pub(crate) struct Scanned {
    key: Vec<u8>,
    row: Vec<Value>,
}

impl Engine {
    pub fn new(ledger: Arc<Ledger>, signer: Arc<CheckpointSigner>) -> SqlResult<Engine> {
        let catalog = Catalog::load(&ledger)?;
        Ok(Engine {
            ledger,
            signer,
            catalog: RwLock::new(Arc::new(catalog)),
            catalog_generation: AtomicU64::new(0),
            in_flight: Mutex::new(HashSet::new()),
            ddl: Arc::new(tokio::sync::Mutex::new(())),
            advisory_locks: Default::default(),
            locks: Arc::new(super::locks::LockManager::default()),
            next_txn_id: std::sync::atomic::AtomicU64::new(1),
            sequences: Default::default(),
            client_skew_us: AtomicU64::new(DEFAULT_CLIENT_SKEW.as_micros() as u64),
        })
    }

    /// The catalog a statement sees: its transaction's own (after DDL in that transaction, see
    /// `TxnCatalog`), or else the committed one.
    pub fn catalog(&self) -> Arc<Catalog> {
        if let Some(c) = TXN_CATALOG.with(|o| o.borrow().clone()) {
            return c;
        }
        self.committed_catalog()
    }

    /// The committed catalog, whatever transaction is running.
    pub fn committed_catalog(&self) -> Arc<Catalog> {
        self.catalog.read().expect("catalog lock is never poisoned").clone()
    }

    /// Change the catalog: the running transaction's own copy while one is in scope (`TxnCatalog`),
    /// else the committed one, which makes every cached plan stale.
    pub(crate) fn update_catalog<R>(&self, f: impl FnOnce(&mut Catalog) -> R) -> R {
        if let Some(mut c) = TXN_CATALOG.with(|o| o.borrow_mut().take()) {
            let r = f(Arc::make_mut(&mut c));
            TXN_CATALOG.with(|o| *o.borrow_mut() = Some(c));
            return r;
        }
        let mut guard = self.catalog.write().expect("catalog lock is never poisoned");
        self.catalog_generation.fetch_add(1, Ordering::AcqRel);
        f(Arc::make_mut(&mut guard))
    }

    /// Replace the committed catalog (a transaction that changed it commits, or its commit failed).
    fn install_catalog(&self, c: Arc<Catalog>) {
        let mut guard = self.catalog.write().expect("catalog lock is never poisoned");
        self.catalog_generation.fetch_add(1, Ordering::AcqRel);
        *guard = c;
    }

    pub(crate) fn begin_txn(&self, explicit: bool) -> Txn {
        self.begin_txn_with(explicit, Isolation::ReadCommitted)
    }

    fn begin_txn_with(&self, explicit: bool, isolation: Isolation) -> Txn {
        let id = self.next_txn_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Txn {
            isolation,
            catalog: None,
            ddl_guard: None,
            new_indexes: Vec::new(),
            locks: super::locks::LockSet::new(self.locks.clone(), id),
            snapshots: Vec::new(),
            read_tables: Mutex::new(HashSet::new()),
            snapshot: self.ledger.head().size,
            write_snapshot: u64::MAX,
            start_us: now_us(),
            explicit,
            read_only: false,
            failed: false,
            writes: BTreeMap::new(),
            statements: Vec::new(),
            seq_session: Default::default(),
            drawn: Default::default(),
            copy_input: None,
            copy_data: Vec::new(),
            savepoints: Vec::new(),
            replay: None,
            first_table_id: None,
        }
    }

    /// SAVEPOINT, RELEASE [SAVEPOINT] and ROLLBACK TO [SAVEPOINT], inside a transaction block.
    fn savepoint(&self, s: &mut Session, stmt: &Statement) -> SqlResult<Outcome> {
        let (name, tag) = match stmt {
            Statement::Savepoint { name } => (name, "SAVEPOINT"),
            Statement::ReleaseSavepoint { name } => (name, "RELEASE"),
            Statement::Rollback { savepoint: Some(name), .. } => (name, "ROLLBACK"),
            _ => return Err(SqlError::new("XX000", "not a savepoint statement")),
        };
        let Some(txn) = s.txn.as_mut().filter(|t| t.explicit) else {
            let what = if tag == "SAVEPOINT" { "SAVEPOINT" } else { "RELEASE SAVEPOINT" };
            let what = if tag == "ROLLBACK" { "ROLLBACK TO SAVEPOINT" } else { what };
            return Err(SqlError::new("25P01", format!("{what} can only be used in transaction blocks")));
        };
        let name = normalize_ident(name);
        if tag != "ROLLBACK" && txn.failed {
            return Err(SqlError::aborted_transaction());
        }
        if tag == "SAVEPOINT" {
            let mark = Savepoint {
                catalog: txn.catalog.clone(),
                new_indexes: txn.new_indexes.len(),
                writes: txn.writes.clone(),
                statements: txn.statements.len(),
                snapshots: txn.snapshots.len(),
                drawn: txn.drawn.len(),
                copy_data: txn.copy_data.len(),
                restarted: txn.seq_session.lock().expect("session sequence lock is never poisoned").restarted_mark(),
            };
            txn.savepoints.push((name, mark));
            return Ok(Outcome::Command(tag.into()));
        }
        // The newest savepoint of that name (names may repeat, as in PostgreSQL).
        let Some(at) = txn.savepoints.iter().rposition(|(n, _)| *n == name) else {
            txn.failed = true;
            return Err(SqlError::new("3B001", format!("savepoint \"{name}\" does not exist")));
        };
        if tag == "RELEASE" {
            txn.savepoints.truncate(at);
            return Ok(Outcome::Command(tag.into()));
        }
        // ROLLBACK TO keeps the savepoint itself and discards the ones set after it.
        txn.savepoints.truncate(at + 1);
        let mark = &txn.savepoints[at].1;
        txn.catalog = mark.catalog.clone();
        txn.new_indexes.truncate(mark.new_indexes);
        txn.writes = mark.writes.clone();
        txn.statements.truncate(mark.statements);
        txn.snapshots.truncate(mark.snapshots);
        txn.drawn.truncate(mark.drawn);
        txn.copy_data.truncate(mark.copy_data);
        let restarted = mark.restarted.clone();
        txn.seq_session.lock().expect("session sequence lock is never poisoned").restore_restarted(restarted);
        txn.failed = false;
        Ok(Outcome::Command(tag.into()))
    }

    /// Run one parsed statement. `sql` is its text (recorded in the provenance of the transaction).
    pub async fn execute(&self, s: &mut Session, stmt: &Statement, sql: &str, params: &[Value]) -> SqlResult<Outcome> {
        self.execute_prepared(s, stmt, sql, params, None).await
    }

    /// `execute`, reusing (and filling) the plan cache of a prepared statement.
    pub async fn execute_prepared(
        &self,
        s: &mut Session,
        stmt: &Statement,
        sql: &str,
        params: &[Value],
        cache: Option<&PlanCache>,
    ) -> SqlResult<Outcome> {
        if let Some(call) = advisory::call(stmt) {
            return self.advisory(s, call, params).await;
        }
        match stmt {
            Statement::StartTransaction { modes, .. } => {
                // BEGIN inside an implicit transaction (a pipeline before Sync) turns it into a block.
                if let Some(t) = s.txn.as_mut() {
                    t.explicit = true;
                }
                if s.txn.is_none() {
                    let mut isolation = session_isolation(&s.settings);
                    let mut read_only = false;
                    for m in modes {
                        match m {
                            ast::TransactionMode::IsolationLevel(l) => isolation = Isolation::from_ast(l),
                            ast::TransactionMode::AccessMode(a) => read_only = *a == ast::TransactionAccessMode::ReadOnly,
                        }
                    }
                    let mut txn = self.begin_txn_with(true, isolation);
                    txn.read_only = read_only;
                    txn.seq_session = s.seq.clone();
                    s.txn = Some(txn);
                }
                return Ok(Outcome::Begin);
            }
            Statement::Commit { .. } => {
                let Some(txn) = s.txn.take() else { return Ok(Outcome::Commit("COMMIT".into())) };
                if txn.failed {
                    self.abandon(txn);
                    return Ok(Outcome::Commit("ROLLBACK".into()));
                }
                let who = s.who()?;
                self.commit(&who, txn).await?;
                s.consume(&who);
                return Ok(Outcome::Commit("COMMIT".into()));
            }
            Statement::Savepoint { .. } | Statement::ReleaseSavepoint { .. } | Statement::Rollback { savepoint: Some(_), .. } => {
                return self.savepoint(s, stmt);
            }
            Statement::Rollback { .. } => {
                if let Some(txn) = s.txn.take() {
                    self.abandon(txn);
                }
                return Ok(Outcome::Commit("ROLLBACK".into()));
            }
            _ => {}
        }
        if s.in_failed_transaction() {
            return Err(SqlError::aborted_transaction());
        }
        if s.txn.as_ref().is_some_and(|t| t.read_only) {
            if let Some(what) = writing_statement(stmt) {
                self.fail_statement(s);
                return Err(SqlError::new("25006", format!("cannot execute {what} in a read-only transaction")));
            }
        }
        s.admission = None;
        match self.admit(s, stmt, sql, params).await {
            Ok(policy::Admission::Admitted { rule, max_rows }) => s.admission = Some((rule, max_rows)),
            Ok(_) => {}
            Err(e) => {
                self.fail_statement(s);
                return Err(e);
            }
        }
        if let Some(v) = policy::vouch_statement(stmt) {
            return self.vouch_statement(s, v, sql).await;
        }
        if let Err(e) = self.check_privileges(&s.user, stmt) {
            self.fail_statement(s);
            return Err(e);
        }
        let append_only = governance::append_only_target(&self.catalog(), stmt);
        if let Some(table) = append_only {
            self.fail_statement(s);
            return Err(governance::append_only_error(&table));
        }
        if let Statement::Copy { .. } = stmt {
            if let Err(e) = self.check_copy(stmt) {
                // A failed statement aborts the transaction block, as in PostgreSQL.
                self.fail_statement(s);
                return Err(e);
            }
        }
        match stmt {
            _ if is_ddl(stmt) => {
                // DDL is transactional, as in PostgreSQL: outside a block it is a transaction of its own.
                let Some(mut txn) = s.txn.take() else {
                    let mut txn = self.begin_txn_with(false, session_isolation(&s.settings));
                    txn.seq_session = s.seq.clone();
                    let who = s.who()?;
                    let out = self.ddl_in(s, &mut txn, stmt, sql).await?;
                    self.commit(&who, txn).await?;
                    s.consume(&who);
                    return Ok(out);
                };
                let out = self.ddl_in(s, &mut txn, stmt, sql).await;
                txn.failed |= out.is_err();
                s.txn = Some(txn);
                return out;
            }
            Statement::CreateRole(_)
            | Statement::AlterRole { .. }
            | Statement::Drop { object_type: ast::ObjectType::Role | ast::ObjectType::User, .. } => {
                if s.in_transaction() {
                    return Err(SqlError::unsupported("role changes inside a transaction block are not supported yet"));
                }
                // Role changes commit on their own: what a query string or pipeline did before this
                // statement commits first (it may hold the DDL lock the role change needs).
                self.end_implicit(s).await?;
                // A role change is recorded without a client signature and without spending a nonce,
                // so a role that must sign may not make one (else a stolen password alone could
                // create a superuser).
                if self.catalog().users.get(&s.user).is_some_and(|u| u.require_signature) {
                    return Err(SqlError::new(
                        "42501",
                        format!(
                            "role \"{}\" must sign its transactions, and role changes cannot be signed yet: lift the requirement with a signed ALTER ROLE {} NO REQUIRE SIGNATURE first; nothing was committed",
                            s.user, s.user
                        ),
                    ));
                }
                return self.roles(&s.user, stmt).await;
            }
            Statement::Set(set) => return self.set(s, set),
            // Connection-pool hygiene that drivers send (asyncpg sends all four on release).
            Statement::Discard { .. } => {
                s.settings.retain(|k, _| k == BACKEND_PID);
                *s.seq.lock().expect("session sequence lock is never poisoned") = Default::default();
                return Ok(Outcome::Command("DISCARD ALL".into()));
            }
            Statement::Reset(r) => {
                match &r.reset {
                    // RESET name: that setting back to its default (vouch.* included), the others kept.
                    ast::Reset::ConfigurationParameter(name) => {
                        let name = name.to_string().to_lowercase();
                        if name != BACKEND_PID {
                            s.settings.remove(&name);
                        }
                    }
                    _ => s.settings.retain(|k, _| k == BACKEND_PID),
                }
                return Ok(Outcome::Command("RESET".into()));
            }
            Statement::Close { .. } => return Ok(Outcome::Command("CLOSE CURSOR ALL".into())),
            Statement::UNLISTEN { .. } => return Ok(Outcome::Command("UNLISTEN".into())),
            Statement::ShowVariable { variable } => return Ok(self.show(s, variable)),
            // Storage is an append-only log: there is nothing to vacuum, and no statistics to gather.
            Statement::Vacuum(_) => return Ok(Outcome::Command("VACUUM".into())),
            Statement::Analyze(_) => return Ok(Outcome::Command("ANALYZE".into())),
            _ => {}
        }
        let Some(mut txn) = s.txn.take() else {
            let who = s.who()?;
            let out = self.autocommit(s, &who, stmt, sql, params, cache).await;
            s.consume(&who);
            return out;
        };
        // READ COMMITTED: each statement of an explicit transaction reads a fresh snapshot;
        // REPEATABLE READ and SERIALIZABLE keep the one their first statement took.
        if txn.isolation == Isolation::ReadCommitted || txn.snapshots.is_empty() {
            txn.snapshot = self.ledger.head().size;
        }
        let writes_before = txn.writes.len();
        // A rule with MAX ROWS counts the rows this statement writes: keep what was written before it.
        let rows_before = if s.admission.as_ref().is_some_and(|a| a.1.is_some()) { txn.writes.clone() } else { BTreeMap::new() };
        txn.copy_input = s.copy_input.clone();
        let result = self.run_locked(&s.user, &s.settings, &mut txn, stmt, params, cache).await;
        let copy_input = txn.copy_input.take();
        match result {
            Ok(out) => {
                if let Err(e) = self.check_max_rows(s, governance::rows_affected(&out, &rows_before, &txn.writes), sql, params).await {
                    txn.failed = true;
                    s.txn = Some(txn);
                    return Err(e);
                }
                debug_assert_eq!(statement_kind(stmt), StatementKind::Recorded, "statement_kind must follow execute_prepared");
                txn.statements.push(StmtRecord::new(sql, params, s.admission.as_ref().map(|a| a.0.clone())));
                txn.copy_data.extend(copy_input);
                txn.snapshots.push(txn.snapshot);
                if txn.writes.len() != writes_before || matches!(stmt, Statement::Update(_) | Statement::Delete(_)) {
                    txn.write_snapshot = txn.write_snapshot.min(txn.snapshot);
                }
                s.txn = Some(txn);
                Ok(out)
            }
            Err(e) => {
                txn.failed = true;
                s.txn = Some(txn);
                Err(e)
            }
        }
    }

    /// Check a COPY statement before any data moves: no server-side files or programs, no inline
    /// data, valid options, and for COPY FROM an existing table and columns. Returns, for COPY FROM,
    /// the number of columns the input fills (for CopyInResponse).
    pub fn check_copy(&self, stmt: &Statement) -> SqlResult<usize> {
        let Statement::Copy { source, to, target, payload, .. } = stmt else {
            return Err(SqlError::new("XX000", "not a COPY statement"));
        };
        super::copy::refuse_server_side(target, *to)?;
        if payload.is_some() {
            return Err(SqlError::unsupported(
                "COPY data inline in the query string is not supported; send it through the COPY protocol (as psql does)",
            ));
        }
        let opts = super::copy::CopyOptions::from_statement(stmt)?;
        match source {
            ast::CopySource::Table { table_name, columns } if !*to => {
                let plan = self.plan_copy_insert(table_name, columns)?;
                let names = Self::copy_columns(&plan);
                super::copy::Decoder::new(&[], &opts, table_name.to_string().as_str(), &names)?;
                Ok(names.len())
            }
            _ => Ok(0),
        }
    }

    /// Run `COPY … FROM STDIN` with the data the client sent (everything between CopyInResponse and
    /// CopyDone). Outside a transaction block it is one ledger transaction; inside one it joins it.
    pub async fn copy_from(&self, s: &mut Session, stmt: &Statement, sql: &str, data: Vec<u8>) -> SqlResult<Outcome> {
        s.copy_input = Some(Arc::new(data));
        let out = self.execute(s, stmt, sql, &[]).await;
        s.copy_input = None;
        out
    }

    /// Open an implicit transaction unless one (implicit or a block) is open: the statements of one
    /// extended-protocol pipeline (up to Sync) or one multi-statement query string run in it, as in
    /// PostgreSQL, so they commit together at its end or not at all.
    pub fn begin_implicit(&self, s: &mut Session) {
        if s.txn.is_none() {
            let mut txn = self.begin_txn_with(false, session_isolation(&s.settings));
            txn.seq_session = s.seq.clone();
            s.txn = Some(txn);
        }
    }

    /// End the implicit transaction, if one is open: commit it, or roll it back when a statement of
    /// it failed. A transaction block (BEGIN) stays open.
    pub async fn end_implicit(&self, s: &mut Session) -> SqlResult<()> {
        if s.txn.as_ref().is_none_or(|t| t.explicit) {
            return Ok(());
        }
        let txn = s.txn.take().expect("checked above");
        if txn.failed {
            self.abandon(txn);
            return Ok(());
        }
        let who = s.who()?;
        self.commit(&who, txn).await?;
        s.consume(&who);
        Ok(())
    }

    /// A COPY FROM that failed before its statement ran (bad data caught by the server, CopyFail):
    /// inside a transaction block the transaction is aborted, as after any failed statement.
    pub fn fail_statement(&self, s: &mut Session) {
        if let Some(txn) = s.txn.as_mut() {
            txn.failed = true;
        }
    }

    /// A statement outside a transaction block is its own transaction. When its commit loses a race
    /// for a row (40001), it runs again on a fresh snapshot, as PostgreSQL re-checks a row it waited
    /// for, so single-statement writers of a hot row do not see serialization failures.
    async fn autocommit(
        &self,
        s: &Session,
        who: &Who,
        stmt: &Statement,
        sql: &str,
        params: &[Value],
        cache: Option<&PlanCache>,
    ) -> SqlResult<Outcome> {
        let (user, settings, seq) = (s.user.as_str(), &s.settings, &s.seq);
        const RETRIES: u32 = 1000;
        let mut attempt = 0;
        loop {
            let mut txn = self.begin_txn_with(false, session_isolation(settings));
            txn.seq_session = seq.clone();
            txn.copy_input = s.copy_input.clone();
            let out = self.run_locked(user, settings, &mut txn, stmt, params, cache).await?;
            txn.write_snapshot = txn.snapshot;
            if txn.writes.is_empty() {
                // Nothing to commit (a read): no provenance to record.
                return Ok(out);
            }
            self.check_max_rows(s, governance::rows_affected(&out, &BTreeMap::new(), &txn.writes), sql, params).await?;
            debug_assert_eq!(statement_kind(stmt), StatementKind::Recorded, "statement_kind must follow execute_prepared");
            txn.statements.push(StmtRecord::new(sql, params, s.admission.as_ref().map(|a| a.0.clone())));
            let copy_input = txn.copy_input.take();
            txn.copy_data.extend(copy_input);
            txn.snapshots.push(txn.snapshot);
            match self.commit(who, txn).await {
                Err(e) if e.code == "40001" && attempt < RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_micros(50 * u64::from(attempt.min(20)))).await;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(out),
            }
        }
    }

    /// The parameter types and result columns of a statement, without running it.
    pub fn describe(&self, s: &Session, stmt: &Statement, given: &[Option<DataType>]) -> SqlResult<Shape> {
        let _scope = TxnCatalog::enter(s.txn.as_ref().and_then(|t| t.catalog.as_ref()));
        let mut params: Vec<Option<DataType>> = given.to_vec();
        let columns = match stmt {
            Statement::Query(q) => self.plan_query(q, &mut params)?.columns(),
            Statement::Insert(ins) => self.plan_insert(ins, &mut params)?.returning_columns.to_vec(),
            Statement::Update(u) => self.plan_update(u, &mut params)?.returning_columns.to_vec(),
            Statement::Delete(d) => self.plan_delete(d, &mut params)?.returning_columns.to_vec(),
            Statement::ShowVariable { variable } => vec![Column::new(show_name(variable), DataType::Text)],
            Statement::Explain { .. } => vec![Column::new("QUERY PLAN", DataType::Text)],
            _ => vec![],
        };
        Ok(Shape { params: params.into_iter().map(|p| p.unwrap_or(DataType::Text)).collect(), columns })
    }

    /// Plan a SELECT, INSERT, UPDATE or DELETE; None for other statements.
    fn plan_statement(&self, stmt: &Statement) -> SqlResult<Option<Planned>> {
        let mut types = vec![];
        Ok(Some(match stmt {
            Statement::Query(q) => {
                let plan = self.plan_query(q, &mut types)?;
                let columns = plan.columns().into();
                Planned::Query(plan, columns)
            }
            Statement::Insert(ins) => Planned::Insert(self.plan_insert(ins, &mut types)?),
            Statement::Update(u) => Planned::Update(self.plan_update(u, &mut types)?),
            Statement::Delete(d) => Planned::Delete(self.plan_delete(d, &mut types)?),
            _ => return Ok(None),
        }))
    }

    /// The plan of a statement: from the cache when it was planned under the current catalog.
    fn planned(&self, stmt: &Statement, cache: Option<&PlanCache>) -> SqlResult<Option<Arc<Planned>>> {
        let Some(cache) = cache.filter(|_| !TxnCatalog::active()) else { return Ok(self.plan_statement(stmt)?.map(Arc::new)) };
        // Read before planning: a catalog change during planning leaves the plan tagged as stale.
        let generation = self.catalog_generation.load(Ordering::Acquire);
        if let Some((g, p)) = &*cache.0.lock().expect("plan cache lock is never poisoned") {
            if *g == generation {
                return Ok(Some(p.clone()));
            }
        }
        let Some(p) = self.plan_statement(stmt)? else { return Ok(None) };
        let p = Arc::new(p);
        if !p.has_subquery() {
            *cache.0.lock().expect("plan cache lock is never poisoned") = Some((generation, p.clone()));
        }
        Ok(Some(p))
    }

    fn run(
        &self,
        user: &str,
        settings: &BTreeMap<String, String>,
        txn: &mut Txn,
        stmt: &Statement,
        params: &[Value],
        cache: Option<&PlanCache>,
    ) -> SqlResult<Outcome> {
        let _scope = TxnCatalog::enter(txn.catalog.as_ref());
        let gen = sequence::Generated::new(self, txn.seq_session.clone(), user, txn.replay.clone());
        let out = self.run_statement(user, settings, txn, stmt, params, &gen, cache);
        let drawn = gen.into_drawn();
        txn.drawn.sequence_values.extend(drawn.sequence_values);
        txn.drawn.random_uuids.extend(drawn.random_uuids);
        out
    }

    // The statement's inputs plus the two per-run collaborators (value generator, plan cache).
    #[allow(clippy::too_many_arguments)]
    fn run_statement(
        &self,
        user: &str,
        settings: &BTreeMap<String, String>,
        txn: &mut Txn,
        stmt: &Statement,
        params: &[Value],
        gen: &sequence::Generated,
        cache: Option<&PlanCache>,
    ) -> SqlResult<Outcome> {
        let env = Env { params, aggs: &[], now_us: txn.start_us, user, sub: None, outer: &[], settings: Some(settings), gen: Some(gen) };
        if let Some(planned) = self.planned(stmt, cache)? {
            return match &*planned {
                Planned::Query(plan, columns) => {
                    let columns = columns.clone();
                    let runner = plan::Runner { engine: self, txn: &*txn };
                    let rows = self.run_query(plan, txn, &Env { sub: Some(&runner), ..env })?;
                    let tag = format!("SELECT {}", rows.len());
                    Ok(Outcome::Rows { columns, rows, tag })
                }
                Planned::Insert(plan) => self.run_insert(plan, txn, &env),
                Planned::Update(plan) => self.run_update(plan, txn, &env),
                Planned::Delete(plan) => self.run_delete(plan, txn, &env),
            };
        }
        match stmt {
            Statement::Truncate(t) => self.run_truncate(t, txn),
            Statement::Copy { to: false, .. } => self.run_copy_in(stmt, txn, &env),
            Statement::Copy { to: true, source, .. } => {
                if let ast::CopySource::Table { table_name, .. } = source {
                    let name = object_name(table_name);
                    if self.catalog().views.contains_key(&name) {
                        // PostgreSQL's answer, which suggests `COPY (SELECT …) TO`.
                        return Err(SqlError::new("42809", format!("cannot copy from view \"{name}\"")));
                    }
                }
                let q = copy_query(source)?;
                let plan = self.plan_query(&q, &mut vec![])?;
                let columns: Arc<[Column]> = plan.columns().into();
                let runner = plan::Runner { engine: self, txn: &*txn };
                let rows = self.run_query(&plan, txn, &Env { sub: Some(&runner), ..env })?;
                let tag = format!("COPY {}", rows.len());
                Ok(Outcome::Rows { columns, rows, tag })
            }
            Statement::Explain { statement, analyze: false, .. } => {
                let mut types = vec![];
                let lines = match &**statement {
                    Statement::Query(q) => self.plan_query(q, &mut types)?.explain(),
                    other => {
                        return Err(SqlError::unsupported(format!("EXPLAIN of {} is not supported yet", first_words(&other.to_string()))))
                    }
                };
                let rows = lines.into_iter().map(|l| vec![Value::Text(l)]).collect::<Vec<_>>();
                let tag = format!("EXPLAIN {}", rows.len());
                Ok(Outcome::Rows { columns: Arc::new([Column::new("QUERY PLAN", DataType::Text)]), rows, tag })
            }
            other => Err(SqlError::unsupported(format!("statement not supported yet: {}", first_words(&other.to_string())))),
        }
    }

    /// Run a statement, then lock what it writes. A writer that had to wait for a lock, or whose rows
    /// changed after its snapshot, runs again: under READ COMMITTED on a fresh snapshot (PostgreSQL
    /// re-checks the row it waited for against the newest committed version); under REPEATABLE READ
    /// and SERIALIZABLE a row changed since the transaction's snapshot is a serialization failure.
    async fn run_locked(
        &self,
        user: &str,
        settings: &BTreeMap<String, String>,
        txn: &mut Txn,
        stmt: &Statement,
        params: &[Value],
        cache: Option<&PlanCache>,
    ) -> SqlResult<Outcome> {
        let for_update = match stmt {
            Statement::Query(q) if !q.locks.is_empty() => Some(q),
            Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Truncate(_)
            | Statement::Copy { to: false, .. } => None,
            _ => return self.run(user, settings, txn, stmt, params, cache),
        };
        let mut deadline = lock_deadline(settings);
        if let Some(q) = for_update {
            if q.locks.iter().any(|l| l.nonblock == Some(ast::NonBlock::SkipLocked)) {
                return self.run_skip_locked(user, settings, txn, q, params).await;
            }
            if q.locks.iter().any(|l| l.nonblock == Some(ast::NonBlock::Nowait)) {
                deadline = Some((std::time::Instant::now(), "55P03"));
            }
        }
        loop {
            let before = txn.writes.clone();
            let drawn_before = txn.drawn.len();
            let out = self.run(user, settings, txn, stmt, params, cache)?;
            let scope = TxnCatalog::enter(txn.catalog.clone().as_ref());
            if for_update.is_none() {
                // Referential actions may evaluate defaults (SET DEFAULT), which may draw sequence values.
                let gen = sequence::Generated::new(self, txn.seq_session.clone(), user, txn.replay.clone());
                let env =
                    Env { params, aggs: &[], now_us: txn.start_us, user, sub: None, outer: &[], settings: Some(settings), gen: Some(&gen) };
                let enforced = self.enforce_constraints(txn, &before, &env);
                let drawn = gen.into_drawn();
                txn.drawn.sequence_values.extend(drawn.sequence_values);
                txn.drawn.random_uuids.extend(drawn.random_uuids);
                enforced?;
            }
            let keys = match for_update {
                Some(q) => self.for_update_keys(user, settings, txn, q, params)?.into_iter().filter(|k| !txn.locks.holds(k)).collect(),
                None => self.lock_keys(txn, &before)?,
            };
            drop(scope);
            if keys.is_empty() {
                return Ok(out);
            }
            let waited = txn.locks.acquire(&keys, deadline).await?;
            let changed = keys.iter().try_fold(false, |acc, (table, key)| -> SqlResult<bool> {
                Ok(acc
                    || (self.catalog().table_by_id(*table).is_some()
                        && self.ledger.get_latest(*table, key)?.is_some_and(|v| v.tx > txn.snapshot)))
            })?;
            if !waited && !changed {
                return Ok(out);
            }
            if changed && txn.isolation != Isolation::ReadCommitted {
                return Err(SqlError::new("40001", "could not serialize access due to concurrent update"));
            }
            txn.writes = before;
            // The statement runs again and draws again: only the values of the run that counts are recorded.
            txn.drawn.truncate(drawn_before);
            if txn.isolation == Isolation::ReadCommitted {
                txn.snapshot = self.ledger.head().size;
            }
        }
    }

    /// `SELECT … FOR UPDATE / FOR SHARE` locks the rows it returns: their primary keys, found by the
    /// same query projecting the key columns. Both lock modes are exclusive here (stricter than
    /// PostgreSQL's shared FOR SHARE, never weaker). One table per locking query.
    fn for_update_keys(
        &self,
        user: &str,
        settings: &BTreeMap<String, String>,
        txn: &Txn,
        q: &ast::Query,
        params: &[Value],
    ) -> SqlResult<Vec<super::locks::LockKey>> {
        let one_table = || SqlError::unsupported("FOR UPDATE/FOR SHARE is supported on a query over one table");
        let mut kq = q.clone();
        kq.locks.clear();
        let ast::SetExpr::Select(sel) = &mut *kq.body else { return Err(one_table()) };
        if sel.from.len() != 1 || !sel.from[0].joins.is_empty() {
            return Err(one_table());
        }
        if !matches!(sel.group_by, ast::GroupByExpr::Expressions(ref e, _) if e.is_empty())
            || sel.having.is_some()
            || sel.distinct.is_some()
        {
            return Err(SqlError::unsupported("FOR UPDATE is not allowed with GROUP BY, HAVING or DISTINCT"));
        }
        let ast::TableFactor::Table { name, alias, args: None, .. } = &sel.from[0].relation else { return Err(one_table()) };
        let def = self.catalog().table(&object_name(name))?.clone();
        let qualifier = alias.as_ref().map(|a| a.name.clone()).unwrap_or_else(|| ast::Ident::new(def.name.clone()));
        sel.projection = def
            .primary_key
            .iter()
            .map(|&c| {
                ast::SelectItem::UnnamedExpr(ast::Expr::CompoundIdentifier(vec![
                    qualifier.clone(),
                    ast::Ident::with_quote('"', def.columns[c].name.clone()),
                ]))
            })
            .collect();
        let plan = self.plan_query(&kq, &mut vec![])?;
        let env = Env { params, aggs: &[], now_us: txn.start_us, user, sub: None, outer: &[], settings: Some(settings), gen: None };
        let runner = plan::Runner { engine: self, txn };
        let rows = self.run_query(&plan, txn, &Env { sub: Some(&runner), ..env })?;
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows {
            keys.push((def.id, encode_key(&r[..def.primary_key.len()])?));
        }
        Ok(keys)
    }

    /// `SELECT … FOR UPDATE/SHARE SKIP LOCKED` (the job-queue pattern): rows locked by another
    /// transaction are left out, and LIMIT counts only the rows this one could lock, as PostgreSQL's
    /// LockRows node sits below its Limit. A row changed since the snapshot is skipped too (another
    /// transaction just finished with it).
    async fn run_skip_locked(
        &self,
        user: &str,
        settings: &BTreeMap<String, String>,
        txn: &mut Txn,
        q: &ast::Query,
        params: &[Value],
    ) -> SqlResult<Outcome> {
        let mut unlimited = q.clone();
        let limit = match unlimited.limit_clause.take() {
            None => None,
            Some(ast::LimitClause::LimitOffset { limit: None, offset: None, limit_by }) if limit_by.is_empty() => None,
            Some(ast::LimitClause::LimitOffset { limit: Some(e), offset: None, limit_by }) if limit_by.is_empty() => {
                match crate::sql::expr::eval_constant(&e, DataType::Int8, params)? {
                    Value::Int(n) if n >= 0 => Some(n as usize),
                    Value::Null => None,
                    _ => return Err(SqlError::new("2201W", "LIMIT must not be negative")),
                }
            }
            Some(_) => return Err(SqlError::unsupported("SKIP LOCKED with OFFSET is not supported yet")),
        };
        let stmt = Statement::Query(Box::new(unlimited.clone()));
        let Outcome::Rows { columns, rows, .. } = self.run(user, settings, txn, &stmt, params, None)? else {
            return Err(SqlError::new("XX000", "a query returned no rows object"));
        };
        let keys = {
            let _scope = TxnCatalog::enter(txn.catalog.clone().as_ref());
            self.for_update_keys(user, settings, txn, &unlimited, params)?
        };
        let mut kept = Vec::new();
        for (row, key) in rows.into_iter().zip(keys) {
            if limit.is_some_and(|l| kept.len() >= l) {
                break;
            }
            if !txn.locks.holds(&key) {
                match txn.locks.acquire(std::slice::from_ref(&key), Some((std::time::Instant::now(), "55P03"))).await {
                    Ok(_) => {}
                    Err(e) if e.code == "55P03" => continue,
                    Err(e) => return Err(e),
                }
                if self.ledger.get_latest(key.0, &key.1)?.is_some_and(|v| v.tx > txn.snapshot) {
                    continue;
                }
            }
            kept.push(row);
        }
        let tag = format!("SELECT {}", kept.len());
        Ok(Outcome::Rows { columns, rows: kept, tag })
    }

    /// TRUNCATE: a tombstone for every row the transaction sees, so history stays in the log and every
    /// deleted version stays provable.
    fn run_truncate(&self, t: &ast::Truncate, txn: &mut Txn) -> SqlResult<Outcome> {
        let mut tables = Vec::new();
        for target in &t.table_names {
            let name = object_name(&target.name);
            match self.catalog().tables.get(&name) {
                Some(def) => tables.push(def.clone()),
                None if t.if_exists => {}
                None => return Err(SqlError::undefined_table(&name)),
            }
        }
        for def in &tables {
            txn.note_read(def.id);
            for row in self.scan(def, txn, None)? {
                txn.writes.insert((def.id, row.key), None);
            }
        }
        Ok(Outcome::Command("TRUNCATE TABLE".into()))
    }

    /// The locks a statement needs and does not hold yet: every key it wrote, and for each row it
    /// wrote the values of the table's unique indexes (so concurrent inserts of one value serialise).
    fn lock_keys(&self, txn: &Txn, before: &BTreeMap<WriteKey, Option<Vec<u8>>>) -> SqlResult<Vec<super::locks::LockKey>> {
        let mut keys = Vec::new();
        let catalog = self.catalog();
        for ((table, key), new) in &txn.writes {
            if before.get(&(*table, key.clone())) == Some(new) {
                continue;
            }
            if !txn.locks.holds(&(*table, key.clone())) {
                keys.push((*table, key.clone()));
            }
            let Some(def) = catalog.table_by_id(*table).filter(|d| d.indexes.iter().any(|i| i.unique) || !d.foreign_keys.is_empty()) else {
                continue;
            };
            let Some(bytes) = new else { continue };
            let row = self.decode(def, bytes, 0)?;
            if !def.foreign_keys.is_empty() {
                let mut parents = Vec::new();
                Self::parent_lock_keys(&catalog, def, &row, &mut parents)?;
                for k in parents {
                    if !txn.locks.holds(&k) && !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            for index in def.indexes.iter().filter(|i| i.unique) {
                let vals = super::index::values_of(index, &row);
                if vals.iter().any(Value::is_null) {
                    continue;
                }
                let k = (index.id, encode_key(&vals)?);
                if !txn.locks.holds(&k) && !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        Ok(keys)
    }

    /// A statement admitted by a rule with `MAX ROWS n` that affected more rows is refused (and the
    /// refusal recorded); its writes are discarded with its transaction.
    async fn check_max_rows(&self, s: &Session, n: u64, sql: &str, params: &[Value]) -> SqlResult<()> {
        let Some((rule, Some(max))) = &s.admission else { return Ok(()) };
        if n <= *max {
            return Ok(());
        }
        let e = SqlError::new(
            "42501",
            format!("permission denied: the statement affected {n} rows, more than the {max} that policy rule {rule} allows; nothing was written"),
        );
        self.record_refusal(s, sql, params, &e).await?;
        Err(e)
    }

    /// A client timestamp further than the configured skew from the server's clock refuses the commit.
    fn check_client_time(&self, who: &Who) -> SqlResult<()> {
        if who.client_time_us == 0 {
            return Ok(());
        }
        let skew = self.client_skew_us.load(Ordering::Relaxed);
        let now = now_us() as u64;
        if who.client_time_us.abs_diff(now) > skew {
            let text = |us: u64| Value::Timestamptz(us as i64).to_text(DataType::Timestamptz).unwrap_or_default();
            return Err(SqlError::new(
                "22023",
                format!(
                    "client timestamp {} is {:.3} s from the server's clock ({}), more than the allowed skew of {} s; nothing was committed",
                    text(who.client_time_us),
                    who.client_time_us.abs_diff(now) as f64 / 1e6,
                    text(now),
                    skew as f64 / 1e6
                ),
            ));
        }
        Ok(())
    }

    /// How far a client timestamp may be from the server's clock (`--max-client-skew`).
    pub fn set_client_skew(&self, skew: std::time::Duration) {
        self.client_skew_us.store(skew.as_micros().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// Tables written by transactions committed after `snapshot` or queued now (for SERIALIZABLE).
    fn tables_written_since(&self, snapshot: u64, in_flight: &HashSet<WriteKey>) -> SqlResult<HashSet<u32>> {
        let mut tables: HashSet<u32> = in_flight.iter().map(|(t, _)| *t).collect();
        for tx in snapshot + 1..=self.ledger.head().size {
            tables.extend(self.ledger.get_tx(tx)?.entries.iter().map(|e| e.table));
        }
        Ok(tables)
    }

    async fn commit(&self, who: &Who, mut txn: Txn) -> SqlResult<()> {
        let restarted = Self::seal_restarted(&mut txn);
        if txn.writes.is_empty() {
            if let Some(c) = txn.catalog {
                self.install_catalog(c);
            }
            return Ok(());
        }
        let replaying = txn.replay.is_some();
        let signature = if replaying {
            None
        } else {
            self.check_client_time(who)?;
            self.check_signature(who, &txn.statements)?
        };
        if let Some(sig) = &signature {
            // The nonce is spent by this transaction: an entry of system table 7, so a second use
            // meets it (and an auditor sees every nonce in the log).
            let key = governance::nonce_key(&sig.key, &sig.nonce);
            if self.ledger.get_latest(governance::SYS_NONCES, &key)?.is_some() {
                return Err(SqlError::new(
                    "42501",
                    format!("nonce \"{}\" was already used with this signing key: a signed transaction cannot be replayed", sig.nonce),
                ));
            }
            txn.writes.insert((governance::SYS_NONCES, key), Some(Vec::new()));
        }
        let keys: Vec<WriteKey> = txn.writes.keys().cloned().collect();
        // Under READ COMMITTED every written key is locked and was re-read under the lock; the
        // other levels validate against the transaction's snapshot.
        let snapshot = if txn.isolation == Isolation::ReadCommitted { u64::MAX } else { txn.write_snapshot.min(txn.snapshot) };
        let Txn {
            writes,
            statements,
            snapshots,
            locks,
            isolation,
            read_tables,
            start_us,
            drawn,
            catalog: txn_catalog,
            ddl_guard,
            new_indexes,
            copy_data,
            first_table_id,
            ..
        } = txn;
        let mut previous_catalog = None;
        let pending = loop {
            // A new index is built from the committed rows: wait until none is in flight.
            let busy = || !self.in_flight.lock().expect("in-flight lock is never poisoned").is_empty();
            if !new_indexes.is_empty() && busy() {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                continue;
            }
            let mut in_flight = self.in_flight.lock().expect("in-flight lock is never poisoned");
            if !new_indexes.is_empty() && !in_flight.is_empty() {
                continue;
            }
            if isolation == Isolation::Serializable {
                let read = read_tables.into_inner().expect("read set lock is never poisoned");
                if !read.is_empty() && self.tables_written_since(snapshot, &in_flight)?.iter().any(|t| read.contains(t)) {
                    return Err(SqlError::new("40001", "could not serialize access due to read/write dependencies among transactions"));
                }
            }
            let catalog = txn_catalog.clone().unwrap_or_else(|| self.committed_catalog());
            let mut index_entries = self.index_backfill(&catalog, &new_indexes, &writes)?;
            for ((table, key), new) in &writes {
                let latest = self.ledger.get_latest(*table, key)?;
                // The backstop for upserts and referential actions: an append-only table's key is
                // written once.
                if let Some(def) = catalog.table_by_id(*table).filter(|d| d.append_only && !replaying) {
                    if new.is_none() || latest.is_some() {
                        return Err(governance::append_only_error(&def.name));
                    }
                }
                // A sequence's state is last-writer-wins (block reservations are not row versions).
                let conflict = *table != super::catalog::SYS_SEQUENCE_VALUES && latest.as_ref().is_some_and(|v| v.tx > snapshot);
                if in_flight.contains(&(*table, key.clone())) || conflict {
                    return Err(SqlError::new("40001", "could not serialize access due to concurrent update"));
                }
                // Secondary indexes: the row this commit replaces is the latest committed one.
                if let Some(def) = catalog.table_by_id(*table).filter(|d| !d.indexes.is_empty()) {
                    let old = match latest {
                        Some(v) if !v.entry.is_delete() => Some(self.decode(def, &v.entry.value, v.tx)?),
                        _ => None,
                    };
                    let new = new.as_ref().map(|b| self.decode(def, b, 0)).transpose()?;
                    index_entries.extend(super::index::maintain(def, key, old.as_deref(), new.as_deref())?);
                }
            }
            let entries =
                writes.into_iter().map(|((table, key), row)| self.write_entry(&catalog, table, key, row)).collect::<SqlResult<Vec<_>>>()?;
            drop(catalog);
            in_flight.extend(keys.iter().cloned());
            let mut record = who.record(&statements, &snapshots, isolation, start_us, &drawn);
            record.next_table_id = first_table_id;
            record.signature = signature.clone();
            let provenance = record.encode_with_copy_data(&copy_data);
            let pending = self.ledger.append(NewTx { entries, provenance, client_time_us: who.client_time_us, index_entries });
            who.consumed.store(true, Ordering::Relaxed);
            // A changed catalog is installed before the next commit can start (it is queued behind
            // this one), so that commit already maintains this one's new indexes.
            if let Some(c) = &txn_catalog {
                previous_catalog = Some(self.committed_catalog());
                self.install_catalog(c.clone());
            }
            break pending;
        };
        // Release the keys however this future ends, also when a cancel request drops it.
        let release = InFlight { set: &self.in_flight, keys };
        let result = pending.await.map(|_| ()).map_err(SqlError::from);
        if let (Err(_), Some(prev)) = (&result, previous_catalog) {
            // Not durable: the catalog changes did not happen.
            self.install_catalog(prev);
        }
        if result.is_ok() && !replaying {
            for (id, v) in restarted {
                self.sequences.restarted(id, v);
            }
        }
        // Row locks go only now that the commit is durable (or failed), after the in-flight keys.
        drop(release);
        drop(locks);
        drop(ddl_guard);
        result
    }

    // ---- DDL ------------------------------------------------------------------------------------

    /// The views that read any of the relations `names` (a `kind`, "table" or "view", being dropped),
    /// directly or through other views, dependents last. Without CASCADE any is 2BP01.
    fn dependent_views(&self, names: &BTreeSet<String>, kind: &str, cascade: bool) -> SqlResult<Vec<super::catalog::ViewDef>> {
        let catalog = self.catalog();
        let reads: Vec<(&super::catalog::ViewDef, BTreeSet<String>)> = catalog.views.values().map(|v| (v, view_reads(&v.sql))).collect();
        let mut gone = names.clone();
        let mut out: Vec<super::catalog::ViewDef> = Vec::new();
        loop {
            let next = reads.iter().find(|(v, r)| !gone.contains(&v.name) && r.iter().any(|n| gone.contains(n)));
            let Some((v, r)) = next else { break };
            if !cascade {
                let on =
                    r.iter().find(|n| names.contains(*n)).or_else(|| r.iter().find(|n| gone.contains(*n))).cloned().unwrap_or_default();
                return Err(SqlError::new(
                    "2BP01",
                    format!(
                        "cannot drop {kind} {on} because other objects depend on it: view {} depends on it (use DROP … CASCADE)",
                        v.name
                    ),
                ));
            }
            gone.insert(v.name.clone());
            out.push((*v).clone());
        }
        Ok(out)
    }

    /// Run a DDL statement inside a transaction: the first one takes the DDL lock (held to the end of
    /// the transaction) and a private copy of the catalog, which the statements change and the commit
    /// installs. Its catalog entries are ordinary writes of the transaction.
    async fn ddl_in(&self, s: &Session, txn: &mut Txn, stmt: &Statement, sql: &str) -> SqlResult<Outcome> {
        let user = s.user.as_str();
        if txn.ddl_guard.is_none() {
            // Another transaction's DDL holds the lock until it ends: wait, within lock_timeout /
            // statement_timeout as for a row lock.
            let lock = self.ddl.clone().lock_owned();
            let guard = match lock_deadline(&s.settings) {
                None => lock.await,
                Some((at, code)) => tokio::time::timeout_at(at.into(), lock).await.map_err(|_| {
                    let what = if code == "55P03" { "lock timeout" } else { "statement timeout" };
                    SqlError::new(code, format!("canceling statement due to {what}"))
                })?,
            };
            txn.ddl_guard = Some(guard);
            let catalog = self.committed_catalog();
            txn.first_table_id = Some(catalog.next_table_id);
            txn.catalog = Some(catalog);
        }
        if txn.isolation == Isolation::ReadCommitted || txn.snapshots.is_empty() {
            txn.snapshot = self.ledger.head().size;
        }
        let scope = TxnCatalog::enter(txn.catalog.as_ref());
        let out = self.ddl(user, txn, stmt)?;
        txn.catalog = scope.leave();
        debug_assert_eq!(statement_kind(stmt), StatementKind::Recorded, "statement_kind must follow execute_prepared");
        txn.statements.push(StmtRecord::new(sql, &[], s.admission.as_ref().map(|a| a.0.clone())));
        txn.snapshots.push(txn.snapshot);
        Ok(out)
    }

    /// A transaction ends without committing. Object ids it handed out stay used (a sequence it
    /// created may have recorded a high-water mark under its id).
    fn abandon(&self, txn: Txn) {
        txn.seq_session.lock().expect("session sequence lock is never poisoned").take_restarted();
        if let Some(c) = &txn.catalog {
            if c.next_table_id > self.committed_catalog().next_table_id {
                self.update_catalog(|cc| cc.next_table_id = cc.next_table_id.max(c.next_table_id));
            }
        }
    }

    /// The states this transaction's `ALTER SEQUENCE … RESTART` left (its nextval calls drew from
    /// them), written as the sequences' state entries: the sequences' state once it commits.
    pub(crate) fn seal_restarted(txn: &mut Txn) -> Vec<(u32, sequence::SeqValue)> {
        let restarted = txn.seq_session.lock().expect("session sequence lock is never poisoned").take_restarted();
        for (id, v) in &restarted {
            Self::write_entries(txn, vec![sequence::value_entry(*id, *v)]);
        }
        restarted
    }

    /// Add catalog (or row) entries to a transaction's writes.
    pub(crate) fn write_entries(txn: &mut Txn, entries: Vec<Entry>) {
        for e in entries {
            let value = if e.is_delete() { None } else { Some(e.value) };
            txn.writes.insert((e.table, e.key), value);
        }
    }

    /// One DDL statement, with the transaction's catalog in scope (`TxnCatalog`).
    fn ddl(&self, user: &str, txn: &mut Txn, stmt: &Statement) -> SqlResult<Outcome> {
        // System tables (`vouch_references`) keep their definition: only GRANT and REVOKE change it.
        let targets: Vec<&ast::ObjectName> = match stmt {
            Statement::Drop { object_type: ast::ObjectType::Table, names, .. } => names.iter().collect(),
            Statement::AlterTable(at) => vec![&at.name],
            Statement::CreateIndex(ci) => vec![&ci.table_name],
            Statement::Comment { object_name, .. } => vec![object_name],
            _ => vec![],
        };
        for n in targets {
            let parts: Vec<String> = n.0.iter().filter_map(|p| p.as_ident()).map(normalize_ident).collect();
            let system = |name: &String| self.catalog().tables.get(name).is_some_and(|t| t.id < super::catalog::FIRST_USER_TABLE);
            if let Some(name) = parts.iter().rev().take(2).find(|name| system(name)) {
                return Err(SqlError::new("42501", format!("permission denied: \"{name}\" is a system catalog")));
            }
        }
        if let Statement::CreateIndex(ci) = stmt {
            return self.create_index(txn, ci);
        }
        if matches!(stmt, Statement::CreateSequence { .. } | Statement::Drop { object_type: ast::ObjectType::Sequence, .. }) {
            return self.sequence_ddl(txn, stmt);
        }
        let (entries, tag, apply): (Vec<Entry>, &str, CatalogChange) = match stmt {
            Statement::CreateTable(ct) => {
                let name = object_name(&ct.name);
                let exists = {
                    let c = self.catalog();
                    c.tables.contains_key(&name) || c.sequences.contains_key(&name)
                };
                if exists {
                    if ct.if_not_exists {
                        return Ok(Outcome::Command("CREATE TABLE".into()));
                    }
                    return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
                }
                // SERIAL and identity columns become integer columns owning a sequence each.
                let (ct, serials) = self.serial_columns(ct, &name)?;
                let mut def = self.table_def(&ct, &name)?;
                def.owner = Some(user.to_string());
                for (col, s) in serials.iter().filter(|(_, s)| s.identity.is_none()) {
                    if let Some(c) = def.columns.iter_mut().find(|c| &c.name == col) {
                        c.default = Some(format!("nextval('{}'::regclass)", super::pg_catalog::quote_ident(&s.name).replace('\'', "''")));
                    }
                }
                let mut next = def.indexes.iter().map(|i| i.id).chain([def.id]).max().unwrap_or(def.id) + 1;
                let mut seqs = Vec::new();
                for (col, mut s) in serials {
                    s.id = next;
                    s.owned_by = Some((def.id, col));
                    next += 1;
                    seqs.push(s);
                }
                let entries = std::iter::once(def.entry()).chain(seqs.iter().map(|s| s.entry())).collect();
                (
                    entries,
                    "CREATE TABLE",
                    Box::new(move |c: &mut Catalog| {
                        c.next_table_id = c.next_table_id.max(next);
                        c.tables.insert(def.name.clone(), def);
                        for s in seqs {
                            c.sequences.insert(s.name.clone(), s);
                        }
                    }),
                )
            }
            Statement::Drop { object_type: ast::ObjectType::Table, if_exists, names, cascade, .. } => {
                let mut entries = Vec::new();
                let mut dropped = Vec::new();
                let mut dropped_ids = Vec::new();
                for n in names {
                    let name = object_name(n);
                    match self.catalog().tables.get(&name) {
                        Some(t) => {
                            entries.push(Entry::delete(SYS_TABLES, t.id.to_be_bytes().to_vec()));
                            dropped_ids.push(t.id);
                            dropped.push(name);
                        }
                        None if *if_exists => {}
                        None => return Err(SqlError::undefined_table(&name)),
                    }
                }
                // Sequences owned by their columns go with them.
                for s in self.catalog().sequences.values().filter(|s| s.owned_by.as_ref().is_some_and(|o| dropped_ids.contains(&o.0))) {
                    entries.push(Entry::delete(super::catalog::SYS_SEQUENCES, s.id.to_be_bytes().to_vec()));
                    dropped.push(s.name.clone());
                }
                if entries.is_empty() {
                    return Ok(Outcome::Command("DROP TABLE".into()));
                }
                // Views that read a dropped table (directly or through other views): refused, or with
                // CASCADE dropped too, as PostgreSQL does.
                let tables: BTreeSet<String> = names.iter().map(object_name).collect();
                let dropped_views = self.dependent_views(&tables, "table", *cascade)?;
                for v in &dropped_views {
                    entries.push(Entry::delete(super::catalog::SYS_VIEWS, v.id.to_be_bytes().to_vec()));
                }
                // Foreign keys of other tables that reference a dropped table: refused, or with
                // CASCADE dropped from those tables (their rows stay).
                let mut changed: Vec<TableDef> = Vec::new();
                for other in self.catalog().tables.values().filter(|o| !dropped_ids.contains(&o.id)) {
                    let Some(fk) = other.foreign_keys.iter().find(|f| dropped_ids.contains(&f.ref_table)) else { continue };
                    if !*cascade {
                        return Err(SqlError::new(
                            "2BP01",
                            format!(
                                "cannot drop table because other objects depend on it: constraint {} on table {} depends on it (use DROP … CASCADE)",
                                fk.name, other.name
                            ),
                        ));
                    }
                    let mut o = other.clone();
                    o.foreign_keys.retain(|f| !dropped_ids.contains(&f.ref_table));
                    o.version += 1;
                    entries.push(o.entry());
                    changed.push(o);
                }
                (
                    entries,
                    "DROP TABLE",
                    Box::new(move |c: &mut Catalog| {
                        for v in dropped_views {
                            c.views.remove(&v.name);
                        }
                        for n in dropped {
                            c.tables.remove(&n);
                            c.sequences.remove(&n);
                        }
                        for o in changed {
                            c.tables.insert(o.name.clone(), o);
                        }
                    }),
                )
            }
            Statement::AlterTable(at) => {
                let name = object_name(&at.name);
                let Some(mut t) = self.catalog().tables.get(&name).cloned() else {
                    if at.if_exists {
                        return Ok(Outcome::Command("ALTER TABLE".into()));
                    }
                    return Err(SqlError::undefined_table(&name));
                };
                let mut views = view_deps::ViewChanges::default();
                for op in &at.operations {
                    match op {
                        ast::AlterTableOperation::AddColumn { if_not_exists, column_def, .. } => {
                            let cname = normalize_ident(&column_def.name);
                            if t.column(&cname).is_some() {
                                if *if_not_exists {
                                    continue;
                                }
                                return Err(SqlError::new("42701", format!("column \"{cname}\" of relation \"{name}\" already exists")));
                            }
                            let mut col = ColumnDef::from_ast(cname.clone(), &column_def.data_type)?;
                            // Column constraints, added (and checked against the existing rows) once the
                            // column is there.
                            let mut unique = Vec::new();
                            let mut added = Vec::new();
                            for o in &column_def.options {
                                match &o.option {
                                    ast::ColumnOption::NotNull => col.not_null = true,
                                    ast::ColumnOption::Null => {}
                                    ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
                                    ast::ColumnOption::Unique(_) => unique.push(o.name.as_ref().map(normalize_ident)),
                                    ast::ColumnOption::Check(ck) => added.push(NewConstraint::Check {
                                        name: o.name.as_ref().or(ck.name.as_ref()).map(normalize_ident),
                                        expr: ck.expr.to_string(),
                                        column: Some(cname.clone()),
                                    }),
                                    ast::ColumnOption::ForeignKey(fk) => added.push(NewConstraint::foreign_key(
                                        o.name.as_ref().or(fk.name.as_ref()),
                                        vec![cname.clone()],
                                        fk,
                                    )),
                                    other => return Err(SqlError::unsupported(format!("ADD COLUMN with {other} is not supported yet"))),
                                }
                            }
                            // Existing rows take the default's value now (evaluated once, as PostgreSQL does for
                            // a non-volatile default).
                            let missing = match &col.default {
                                Some(d) => {
                                    let e = Ctx { scope: &[], params: &mut vec![], aggs: None, planner: None }
                                        .compile_as(&crate::sql::parse_expr(d)?, col.ty)?;
                                    let env = Env {
                                        params: &[],
                                        aggs: &[],
                                        now_us: now_us(),
                                        user,
                                        sub: None,
                                        outer: &[],
                                        settings: None,
                                        gen: None,
                                    };
                                    e.expr.eval(&[], &env)?.cast(col.ty)?
                                }
                                None => Value::Null,
                            };
                            if missing.is_null() && col.not_null && !self.ledger.scan_table(t.id, u64::MAX, Some(1))?.is_empty() {
                                return Err(SqlError::new(
                                    "23502",
                                    format!("column \"{cname}\" of relation \"{name}\" contains null values"),
                                ));
                            }
                            col.missing = col.fit(missing)?.to_text(col.ty);
                            t.columns.push(col);
                            let at = t.columns.len() - 1;
                            for u in unique {
                                let n = u.unwrap_or_else(|| format!("{}_{cname}_key", t.name));
                                self.add_unique(&mut t, txn, n, vec![at])?;
                            }
                            if !added.is_empty() {
                                for c in added {
                                    self.add_constraint(&mut t, c)?;
                                }
                                self.validate_existing_rows(&t, user, txn)?;
                            }
                        }
                        ast::AlterTableOperation::AddConstraint { constraint, .. } => {
                            let c = match constraint {
                                ast::TableConstraint::Check(ck) => NewConstraint::Check {
                                    name: ck.name.as_ref().map(normalize_ident),
                                    expr: ck.expr.to_string(),
                                    column: None,
                                },
                                ast::TableConstraint::ForeignKey(fk) => {
                                    NewConstraint::foreign_key(fk.name.as_ref(), fk.columns.iter().map(normalize_ident).collect(), fk)
                                }
                                ast::TableConstraint::PrimaryKey(p) => {
                                    let cols = constraint_columns(&t, p.columns.iter().map(|c| &c.column.expr))?;
                                    self.add_primary_key(&mut t, txn, cols)?;
                                    continue;
                                }
                                ast::TableConstraint::Unique(u) => {
                                    let cols = constraint_columns(&t, u.columns.iter().map(|c| &c.column.expr))?;
                                    let cname = match &u.name {
                                        Some(n) => normalize_ident(n),
                                        None => format!(
                                            "{}_{}_key",
                                            t.name,
                                            cols.iter().map(|&c| t.columns[c].name.as_str()).collect::<Vec<_>>().join("_")
                                        ),
                                    };
                                    self.add_unique(&mut t, txn, cname, cols)?;
                                    continue;
                                }
                                other => {
                                    return Err(SqlError::unsupported(format!(
                                        "ALTER TABLE ADD {} is not supported yet",
                                        first_words(&other.to_string())
                                    )))
                                }
                            };
                            self.add_constraint(&mut t, c)?;
                            self.validate_existing_rows(&t, user, txn)?;
                        }
                        ast::AlterTableOperation::DropConstraint { if_exists, name: cname, .. } => {
                            let cname = normalize_ident(cname);
                            let before = (t.checks.len(), t.foreign_keys.len(), t.indexes.len());
                            t.checks.retain(|c| c.name != cname);
                            t.foreign_keys.retain(|f| f.name != cname);
                            t.indexes.retain(|i| !(i.constraint && i.name == cname));
                            if before == (t.checks.len(), t.foreign_keys.len(), t.indexes.len()) {
                                if cname == format!("{name}_pkey") {
                                    return Err(SqlError::unsupported("dropping a primary key is not supported"));
                                }
                                if !*if_exists {
                                    return Err(SqlError::new(
                                        "42704",
                                        format!("constraint \"{cname}\" of relation \"{name}\" does not exist"),
                                    ));
                                }
                            }
                        }
                        ast::AlterTableOperation::AlterColumn { column_name, op } => {
                            let cname = normalize_ident(column_name);
                            let i = t.column(&cname).ok_or_else(|| {
                                SqlError::new("42703", format!("column \"{cname}\" of relation \"{name}\" does not exist"))
                            })?;
                            match op {
                                ast::AlterColumnOperation::SetNotNull => {
                                    let probe = self.begin_txn(false);
                                    if self.scan(&t, &probe, None)?.iter().any(|r| r.row[i].is_null()) {
                                        return Err(SqlError::new(
                                            "23502",
                                            format!("column \"{cname}\" of relation \"{name}\" contains null values"),
                                        ));
                                    }
                                    t.columns[i].not_null = true;
                                }
                                ast::AlterColumnOperation::DropNotNull => {
                                    if t.primary_key.contains(&i) {
                                        return Err(SqlError::new("42P16", format!("column \"{cname}\" is in a primary key")));
                                    }
                                    t.columns[i].not_null = false;
                                }
                                ast::AlterColumnOperation::SetDefault { value } => {
                                    Ctx { scope: &[], params: &mut vec![], aggs: None, planner: None }
                                        .compile_as(value, t.columns[i].ty)?;
                                    t.columns[i].default = Some(value.to_string());
                                }
                                ast::AlterColumnOperation::DropDefault => t.columns[i].default = None,
                                ast::AlterColumnOperation::SetDataType { data_type, using, .. } => {
                                    self.views_after_alter(&t, view_deps::ViewImpact::ColumnType { column: &cname })?;
                                    let ty = DataType::from_ast(data_type)?;
                                    let numeric = crate::sql::value::numeric_typmod(data_type)?;
                                    self.alter_column_type(&mut t, txn, i, (ty, numeric), using.as_ref(), user)?;
                                }
                                other => {
                                    return Err(SqlError::unsupported(format!(
                                        "ALTER COLUMN {} is not supported yet",
                                        first_words(&other.to_string())
                                    )))
                                }
                            }
                        }
                        ast::AlterTableOperation::DropColumn { column_names, if_exists, drop_behavior, .. } => {
                            let cascade = matches!(drop_behavior, Some(ast::DropBehavior::Cascade));
                            for cn in column_names {
                                let column = normalize_ident(cn);
                                let gone = self.views_after_alter(&t, view_deps::ViewImpact::DropColumn { column: &column, cascade })?;
                                views.dropped.extend(gone.dropped);
                                self.drop_column(&mut t, txn, &column, *if_exists, cascade)?;
                            }
                        }
                        ast::AlterTableOperation::RenameColumn { old_column_name, new_column_name } => {
                            let (old, new) = (normalize_ident(old_column_name), normalize_ident(new_column_name));
                            let i = t
                                .column(&old)
                                .ok_or_else(|| SqlError::new("42703", format!("column \"{old}\" of relation \"{name}\" does not exist")))?;
                            if t.column(&new).is_some() {
                                return Err(SqlError::new("42701", format!("column \"{new}\" of relation \"{name}\" already exists")));
                            }
                            let moved = self.views_after_alter(&t, view_deps::ViewImpact::RenameColumn { old: &old, new: &new })?;
                            views.rewritten.extend(moved.rewritten);
                            // Rows are stored by position, so old rows read under the new name.
                            for c in &mut t.checks {
                                c.expr = crate::sql::rename_ident(&c.expr, &old, &new);
                            }
                            t.columns[i].name = new;
                        }
                        ast::AlterTableOperation::RenameTable { table_name } => {
                            let new = match table_name {
                                ast::RenameTableNameKind::As(n) | ast::RenameTableNameKind::To(n) => object_name(n),
                            };
                            if self.catalog().tables.contains_key(&new) {
                                return Err(SqlError::new("42P07", format!("relation \"{new}\" already exists")));
                            }
                            let moved = self.views_after_alter(&t, view_deps::ViewImpact::RenameTable { old: &t.name, new: &new })?;
                            views.rewritten.extend(moved.rewritten);
                            t.name = new;
                        }
                        other => {
                            return Err(SqlError::unsupported(format!(
                                "ALTER TABLE {} is not supported yet",
                                first_words(&other.to_string())
                            )))
                        }
                    }
                }
                t.version += 1;
                let mut entries = vec![t.entry()];
                entries.extend(views.entries());
                let old_name = name.clone();
                (
                    entries,
                    "ALTER TABLE",
                    Box::new(move |c: &mut Catalog| {
                        views.apply(c);
                        c.tables.remove(&old_name);
                        c.next_table_id = c.next_table_id.max(t.indexes.iter().map(|i| i.id + 1).max().unwrap_or(0));
                        c.tables.insert(t.name.clone(), t);
                    }),
                )
            }
            Statement::Grant(ast::Grant { privileges, objects, grantees, .. })
            | Statement::Revoke(ast::Revoke { privileges, objects, grantees, .. }) => {
                let grant = matches!(stmt, Statement::Grant(_));
                let governance::GrantTargets { tables, views, privileges: privs, roles } =
                    governance::grant_targets(&self.catalog(), user, privileges, objects.as_ref(), grantees)?;
                let change = |grants: &mut BTreeMap<String, BTreeSet<String>>| {
                    for r in &roles {
                        let set = grants.entry(r.clone()).or_default();
                        for p in &privs {
                            if grant {
                                set.insert(p.to_string());
                            } else {
                                set.remove(*p);
                            }
                        }
                        if set.is_empty() {
                            grants.remove(r);
                        }
                    }
                };
                let (mut defs, mut views) = (tables, views);
                defs.iter_mut().for_each(|t| change(&mut t.grants));
                views.iter_mut().for_each(|v| change(&mut v.grants));
                (
                    defs.iter().map(|t| t.entry()).chain(views.iter().map(|v| v.entry())).collect(),
                    if grant { "GRANT" } else { "REVOKE" },
                    Box::new(move |c: &mut Catalog| {
                        for t in defs {
                            c.tables.insert(t.name.clone(), t);
                        }
                        for v in views {
                            c.views.insert(v.name.clone(), v);
                        }
                    }),
                )
            }
            Statement::Comment { object_type, object_name: on, comment, if_exists } => {
                let parts: Vec<String> = on.0.iter().filter_map(|p| p.as_ident()).map(normalize_ident).collect();
                let (table, column) = match (object_type, parts.as_slice()) {
                    (ast::CommentObject::Table, [.., t]) => (t.clone(), None),
                    (ast::CommentObject::Column, [.., t, c]) => (t.clone(), Some(c.clone())),
                    _ => return Err(SqlError::unsupported("COMMENT ON is supported for tables and columns")),
                };
                let Some(mut t) = self.catalog().tables.get(&table).cloned() else {
                    if *if_exists {
                        return Ok(Outcome::Command("COMMENT".into()));
                    }
                    return Err(SqlError::undefined_table(&table));
                };
                if let Some(c) = &column {
                    if t.column(c).is_none() {
                        return Err(SqlError::new("42703", format!("column \"{c}\" of relation \"{table}\" does not exist")));
                    }
                }
                let key = column.unwrap_or_default();
                match comment {
                    Some(text) if !text.is_empty() => {
                        t.comments.insert(key, text.clone());
                    }
                    _ => {
                        t.comments.remove(&key);
                    }
                }
                t.version += 1;
                (
                    vec![t.entry()],
                    "COMMENT",
                    Box::new(move |c: &mut Catalog| {
                        c.tables.insert(t.name.clone(), t);
                    }),
                )
            }
            Statement::CreateView(cv) => {
                if cv.materialized {
                    return Err(SqlError::unsupported("materialized views are not supported"));
                }
                let name = object_name(&cv.name);
                let existing = self.catalog().views.get(&name).cloned();
                if self.catalog().tables.contains_key(&name) || (existing.is_some() && !cv.or_replace) {
                    if cv.if_not_exists {
                        return Ok(Outcome::Command("CREATE VIEW".into()));
                    }
                    return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
                }
                let plan = self.plan_query(&cv.query, &mut vec![])?;
                let mut columns: Vec<(String, DataType)> = plan.columns().into_iter().map(|c| (c.name, c.ty)).collect();
                if cv.columns.len() > columns.len() {
                    return Err(SqlError::new("42601", "CREATE VIEW specifies more column names than columns"));
                }
                for (c, n) in columns.iter_mut().zip(&cv.columns) {
                    c.0 = normalize_ident(&n.name);
                }
                if let Some(old) = &existing {
                    // PostgreSQL's OR REPLACE may only add columns at the end.
                    if old.columns.len() > columns.len() || old.columns.iter().zip(&columns).any(|(a, b)| a != b) {
                        return Err(SqlError::new(
                            "42P16",
                            format!("cannot change the columns of view \"{name}\" (drop it and create it again)"),
                        ));
                    }
                }
                let id = existing.as_ref().map_or(self.catalog().next_table_id, |v| v.id);
                // A replaced view keeps its owner and grants, as in PostgreSQL.
                let (owner, grants) = match existing {
                    Some(old) => (old.owner, old.grants),
                    None => (Some(user.to_string()), Default::default()),
                };
                let view = super::catalog::ViewDef { id, name: name.clone(), sql: cv.query.to_string(), columns, owner, grants };
                (
                    vec![view.entry()],
                    "CREATE VIEW",
                    Box::new(move |c: &mut Catalog| {
                        c.next_table_id = c.next_table_id.max(view.id + 1);
                        c.views.insert(view.name.clone(), view);
                    }),
                )
            }
            Statement::Drop { object_type: ast::ObjectType::View, if_exists, names, cascade, .. } => {
                let mut entries = Vec::new();
                let mut dropped = Vec::new();
                for n in names {
                    let name = object_name(n);
                    match self.catalog().views.get(&name) {
                        Some(v) => {
                            entries.push(Entry::delete(super::catalog::SYS_VIEWS, v.id.to_be_bytes().to_vec()));
                            dropped.push(name);
                        }
                        None if *if_exists => {}
                        None => return Err(SqlError::undefined_table(&name)),
                    }
                }
                if entries.is_empty() {
                    return Ok(Outcome::Command("DROP VIEW".into()));
                }
                let named: BTreeSet<String> = dropped.iter().cloned().collect();
                for v in self.dependent_views(&named, "view", *cascade)? {
                    entries.push(Entry::delete(super::catalog::SYS_VIEWS, v.id.to_be_bytes().to_vec()));
                    dropped.push(v.name);
                }
                (
                    entries,
                    "DROP VIEW",
                    Box::new(move |c: &mut Catalog| {
                        for n in dropped {
                            c.views.remove(&n);
                        }
                    }),
                )
            }
            Statement::Drop { object_type: ast::ObjectType::Index, if_exists, names, .. } => {
                let mut changed: Vec<TableDef> = Vec::new();
                for n in names {
                    let name = object_name(n);
                    let found = {
                        let catalog = self.catalog();
                        let found = changed.iter().find(|t| t.indexes.iter().any(|i| i.name == name)).cloned();
                        found.or_else(|| catalog.index(&name).map(|(t, _)| t.clone()))
                    };
                    match found {
                        Some(mut t) => {
                            t.indexes.retain(|i| i.name != name);
                            t.version += 1;
                            changed.retain(|c| c.id != t.id);
                            changed.push(t);
                        }
                        None if *if_exists => {}
                        None => return Err(SqlError::new("42704", format!("index \"{name}\" does not exist"))),
                    }
                }
                if changed.is_empty() {
                    return Ok(Outcome::Command("DROP INDEX".into()));
                }
                let entries = changed.iter().map(TableDef::entry).collect();
                (
                    entries,
                    "DROP INDEX",
                    Box::new(move |c: &mut Catalog| {
                        for t in changed {
                            c.tables.insert(t.name.clone(), t);
                        }
                    }),
                )
            }
            other => return Err(SqlError::unsupported(format!("statement not supported yet: {}", first_words(&other.to_string())))),
        };
        Self::write_entries(txn, entries);
        self.update_catalog(apply);
        Ok(Outcome::Command(tag.into()))
    }

    /// CREATE [UNIQUE] INDEX: the new table definition, in the transaction's catalog. The commit adds
    /// an index entry for every existing row while no other commit is in flight, and installs the new
    /// catalog before it lets the next commit in, so no row escapes the index.
    fn create_index(&self, txn: &mut Txn, ci: &ast::CreateIndex) -> SqlResult<Outcome> {
        let mut table = self.catalog().table(&object_name(&ci.table_name))?.clone();
        let name = match &ci.name {
            Some(n) => object_name(n),
            None => format!(
                "{}_{}_idx",
                table.name,
                ci.columns.iter().map(|c| c.column.expr.to_string().to_lowercase()).collect::<Vec<_>>().join("_")
            ),
        };
        let taken_by_sequence = self.catalog().sequences.contains_key(&name);
        if self.catalog().index(&name).is_some() || self.catalog().tables.contains_key(&name) || taken_by_sequence {
            if ci.if_not_exists {
                return Ok(Outcome::Command("CREATE INDEX".into()));
            }
            return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
        }
        if ci.predicate.is_some() || !ci.include.is_empty() {
            return Err(SqlError::unsupported("partial indexes and INCLUDE are not supported yet"));
        }
        let mut columns = Vec::new();
        for c in &ci.columns {
            let ast::Expr::Identifier(i) = &c.column.expr else {
                return Err(SqlError::unsupported("indexes on expressions are not supported yet"));
            };
            let cname = normalize_ident(i);
            let col = table.column(&cname).ok_or_else(|| SqlError::undefined_column(&cname))?;
            if !table.columns[col].ty.keyable() {
                return Err(SqlError::unsupported(format!("an index on a {} column is not supported yet", table.columns[col].ty.name())));
            }
            columns.push(col);
        }
        let index = super::catalog::IndexDef { id: self.catalog().next_table_id, name, columns, unique: ci.unique, constraint: false };
        // Checked now against the rows this transaction sees (an early error); the entries for committed
        // rows are built, and uniqueness checked again, at commit (`index_backfill`).
        if index.unique {
            self.check_unique_visible(&table, &index, txn)?;
        }
        txn.new_indexes.push((table.id, index.id));
        table.indexes.push(index.clone());
        table.version += 1;
        Self::write_entries(txn, vec![table.entry()]);
        self.update_catalog(|c| {
            c.next_table_id = c.next_table_id.max(index.id + 1);
            c.tables.insert(table.name.clone(), table);
        });
        Ok(Outcome::Command("CREATE INDEX".into()))
    }

    /// A new unique index against the rows this transaction sees (an early 23505; the commit checks
    /// again over all committed rows).
    fn check_unique_visible(&self, table: &TableDef, index: &super::catalog::IndexDef, txn: &Txn) -> SqlResult<()> {
        let mut seen = HashSet::new();
        for r in self.scan(table, txn, None)? {
            let vals = super::index::values_of(index, &r.row);
            if !vals.iter().any(Value::is_null) && !seen.insert(super::index::encode_values(&vals)?) {
                return Err(super::index::unique_violation(table, index, &vals));
            }
        }
        Ok(())
    }

    /// At commit, with no other commit in flight: index entries of the indexes this transaction
    /// created, for the committed rows it did not write (the rows it wrote get theirs from the
    /// ordinary commit path), with a final uniqueness check over all rows.
    fn index_backfill(
        &self,
        txn_catalog: &Catalog,
        new_indexes: &[(u32, u32)],
        writes: &BTreeMap<WriteKey, Option<Vec<u8>>>,
    ) -> SqlResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let head = self.ledger.head().size;
        let mut entries = Vec::new();
        for (table_id, index_id) in new_indexes {
            let Some(table) = txn_catalog.table_by_id(*table_id) else { continue };
            let Some(index) = table.indexes.iter().find(|i| i.id == *index_id) else { continue };
            let mut one = table.clone();
            one.indexes = vec![index.clone()];
            let mut seen = HashSet::new();
            let mut check = |row: &[Value]| -> SqlResult<()> {
                let vals = super::index::values_of(index, row);
                if index.unique && !vals.iter().any(Value::is_null) && !seen.insert(super::index::encode_values(&vals)?) {
                    return Err(super::index::unique_violation(table, index, &vals));
                }
                Ok(())
            };
            for (key, v) in self.ledger.scan_table(table.id, head, None)? {
                if writes.contains_key(&(table.id, key.clone())) {
                    continue;
                }
                let row = self.decode(table, &v.entry.value, v.tx)?;
                check(&row)?;
                entries.extend(super::index::maintain(&one, &key, None, Some(&row))?);
            }
            for ((t, _), w) in writes.range((table.id, Vec::new())..) {
                if *t != table.id {
                    break;
                }
                if let Some(b) = w {
                    check(&self.decode(table, b, 0)?)?;
                }
            }
        }
        Ok(entries)
    }

    /// ALTER TABLE … ADD PRIMARY KEY on a table created without one: every row moves from its
    /// `_rowid` key to its new key (a tombstone for the old entry, a put of the new one, in this
    /// transaction), and `_rowid` becomes a dropped column. Rows stay in the log under both keys.
    fn add_primary_key(&self, t: &mut TableDef, txn: &mut Txn, cols: Vec<usize>) -> SqlResult<()> {
        if !t.keyless() {
            return Err(SqlError::new("42P16", format!("multiple primary keys for table \"{}\" are not allowed", t.name)));
        }
        if let Some(&bad) = cols.iter().find(|&&c| !t.columns[c].ty.keyable()) {
            return Err(SqlError::unsupported(format!("a {} column cannot be part of a primary key", t.columns[bad].ty.name())));
        }
        let old = t.clone();
        let rowid = t.primary_key[0];
        drop_column_def(t, rowid);
        for &c in &cols {
            t.columns[c].not_null = true;
        }
        t.primary_key = cols.clone();
        let name = t.name.clone();
        self.rewrite_rows(&old, t, txn, |row| {
            if let Some(&c) = cols.iter().find(|&&c| row[c].is_null()) {
                return Err(SqlError::new(
                    "23502",
                    format!("column \"{}\" of relation \"{name}\" contains null values", old.columns[c].name),
                ));
            }
            row[rowid] = Value::Null;
            Ok(())
        })
    }

    /// Write every row of a table again under its new definition `t` (after `change` edits it), in
    /// this transaction: a row whose key changes leaves a tombstone under its old key. Two rows with
    /// one new key are a 23505 naming the primary key; the rewrite is checked at commit against the
    /// snapshot it read.
    fn rewrite_rows(
        &self,
        old: &TableDef,
        t: &TableDef,
        txn: &mut Txn,
        mut change: impl FnMut(&mut Vec<Value>) -> SqlResult<()>,
    ) -> SqlResult<()> {
        let mut moved = BTreeMap::new();
        for r in self.scan(old, txn, None)? {
            let mut row = r.row[..old.columns.len()].to_vec();
            change(&mut row)?;
            let key_vals: Vec<Value> = t.primary_key.iter().map(|&c| row[c].clone()).collect();
            let key = encode_key(&key_vals)?;
            if key != r.key {
                txn.writes.insert((t.id, r.key), None);
            }
            if moved.insert(key, encode_row(t.version + 1, &row)).is_some() {
                let pk = super::catalog::IndexDef {
                    id: 0,
                    name: format!("{}_pkey", t.name),
                    columns: t.primary_key.clone(),
                    unique: true,
                    constraint: true,
                };
                let e = super::index::unique_violation(t, &pk, &key_vals);
                return Err(SqlError::new("23505", format!("could not create unique index \"{}_pkey\": {}", t.name, e.message)));
            }
        }
        for (key, row) in moved {
            txn.writes.insert((t.id, key), Some(row));
        }
        txn.write_snapshot = txn.write_snapshot.min(txn.snapshot);
        Ok(())
    }

    /// ALTER TABLE … DROP COLUMN: the column becomes a dropped column (rows keep their values in the
    /// log; time travel to before the drop still shows it); indexes and constraints on it go with it.
    fn drop_column(&self, t: &mut TableDef, txn: &mut Txn, cname: &str, if_exists: bool, cascade: bool) -> SqlResult<()> {
        let Some(i) = t.column(cname).filter(|&i| !t.columns[i].hidden) else {
            if if_exists {
                return Ok(());
            }
            return Err(SqlError::new("42703", format!("column \"{cname}\" of relation \"{}\" does not exist", t.name)));
        };
        if t.primary_key.contains(&i) {
            return Err(SqlError::unsupported(format!(
                "cannot drop column \"{cname}\": it is part of the primary key of \"{}\", by which every row is stored",
                t.name
            )));
        }
        // Foreign keys of other tables that reference the column: refused, or dropped with CASCADE.
        let catalog = self.catalog();
        for other in catalog.tables.values().filter(|o| o.id != t.id) {
            let refs: Vec<&ForeignKeyDef> =
                other.foreign_keys.iter().filter(|f| f.ref_table == t.id && f.ref_columns.contains(&i)).collect();
            if refs.is_empty() {
                continue;
            }
            if !cascade {
                return Err(SqlError::new(
                    "2BP01",
                    format!(
                        "cannot drop column {cname} of table {} because other objects depend on it: constraint {} on table {} depends on it (use DROP … CASCADE)",
                        t.name, refs[0].name, other.name
                    ),
                ));
            }
            let mut o = other.clone();
            o.foreign_keys.retain(|f| !(f.ref_table == t.id && f.ref_columns.contains(&i)));
            o.version += 1;
            Self::write_entries(txn, vec![o.entry()]);
            self.update_catalog(|c| c.tables.insert(o.name.clone(), o));
        }
        // As in PostgreSQL, indexes and constraints that involve the column are dropped with it.
        t.indexes.retain(|x| !x.columns.contains(&i));
        t.foreign_keys.retain(|f| !(f.columns.contains(&i) || (f.ref_table == t.id && f.ref_columns.contains(&i))));
        // (A CHECK mentions the column when renaming it changes the text; both sides re-tokenised.)
        t.checks.retain(|c| crate::sql::rename_ident(&c.expr, cname, "\u{1}") == crate::sql::rename_ident(&c.expr, "\u{2}", "\u{1}"));
        t.comments.remove(cname);
        drop_column_def(t, i);
        Ok(())
    }

    /// ALTER TABLE … ALTER COLUMN … TYPE: every row is written again with the converted value (its
    /// old versions stay in the log, readable by time travel under the old type). Without USING, only
    /// conversions PostgreSQL makes implicitly (assignment casts) are accepted.
    fn alter_column_type(
        &self,
        t: &mut TableDef,
        txn: &mut Txn,
        i: usize,
        (ty, typmod): (DataType, Option<(u32, u32)>),
        using: Option<&ast::Expr>,
        user: &str,
    ) -> SqlResult<()> {
        let from = t.columns[i].ty;
        let textual = |d: DataType| matches!(d, DataType::Text | DataType::Varchar(_) | DataType::Bpchar(_));
        let numeric = |d: DataType| d.is_integer() || matches!(d, DataType::Numeric | DataType::Float4 | DataType::Float8);
        let temporal = |d: DataType| matches!(d, DataType::Timestamp | DataType::Timestamptz | DataType::Date);
        let implicit = from == ty
            || textual(ty)
            || (numeric(from) && numeric(ty))
            || (temporal(from) && matches!(ty, DataType::Timestamp | DataType::Timestamptz));
        if using.is_none() && !implicit {
            return Err(SqlError::new(
                "42804",
                format!(
                    "column \"{}\" cannot be cast automatically to type {} (add USING {}::{})",
                    t.columns[i].name,
                    ty.name(),
                    t.columns[i].name,
                    ty.name()
                ),
            ));
        }
        let keyed = t.primary_key.contains(&i) || t.indexes.iter().any(|x| x.columns.contains(&i));
        if keyed && !ty.keyable() {
            return Err(SqlError::unsupported(format!("a key or index on a {} column is not supported yet", ty.name())));
        }
        let old = t.clone();
        let scope = table_columns_scope(&old);
        let conv = match using {
            Some(e) => Ctx { scope: &scope, params: &mut vec![], aggs: None, planner: None }.compile_as(e, ty)?.expr,
            None => Expr::Column(i),
        };
        t.columns[i].ty = ty;
        t.columns[i].numeric = typmod;
        let env = Env { params: &[], aggs: &[], now_us: txn.start_us, user, sub: None, outer: &[], settings: None, gen: None };
        if let Some(m) = t.columns[i].missing.clone() {
            t.columns[i].missing = t.columns[i].fit(Value::parse(&m, from)?.cast(ty)?)?.to_text(ty);
        }
        let new = t.clone();
        self.rewrite_rows(&old, t, txn, |row| {
            let source = row.clone();
            row[i] = new.columns[i].fit(conv.eval(&source, &env)?.cast(ty)?)?;
            if row[i].is_null() && new.columns[i].not_null {
                return Err(SqlError::new(
                    "23502",
                    format!("column \"{}\" of relation \"{}\" contains null values", new.columns[i].name, new.name),
                ));
            }
            Ok(())
        })
    }

    /// ALTER TABLE … ADD [CONSTRAINT name] UNIQUE (cols): a unique index, built as CREATE UNIQUE INDEX.
    fn add_unique(&self, t: &mut TableDef, txn: &mut Txn, name: String, cols: Vec<usize>) -> SqlResult<()> {
        let catalog = self.catalog();
        if constraint_names(t).contains(&name)
            || catalog.index(&name).is_some()
            || catalog.tables.contains_key(&name)
            || catalog.sequences.contains_key(&name)
        {
            return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
        }
        if let Some(&bad) = cols.iter().find(|&&c| !t.columns[c].ty.keyable()) {
            return Err(SqlError::unsupported(format!(
                "a UNIQUE constraint on a {} column is not supported yet",
                t.columns[bad].ty.name()
            )));
        }
        let id = t.indexes.iter().map(|i| i.id + 1).max().unwrap_or(0).max(catalog.next_table_id);
        let index = super::catalog::IndexDef { id, name, columns: cols, unique: true, constraint: true };
        self.check_unique_visible(t, &index, txn)?;
        txn.new_indexes.push((t.id, index.id));
        t.indexes.push(index);
        Ok(())
    }

    /// Resolve a CHECK or FOREIGN KEY constraint against the table and catalog, and add it to `t`.
    fn add_constraint(&self, t: &mut TableDef, c: NewConstraint) -> SqlResult<()> {
        let column = |t: &TableDef, n: &str| t.column(n).ok_or_else(|| SqlError::new("42703", format!("column \"{n}\" does not exist")));
        let duplicate = |t: &TableDef, n: &str| {
            if constraint_names(t).iter().any(|x| x == n) {
                Err(SqlError::new("42710", format!("constraint \"{n}\" for relation \"{}\" already exists", t.name)))
            } else {
                Ok(())
            }
        };
        match c {
            NewConstraint::Check { name, expr, column: col } => {
                constraints::compile_check(t, &expr)?;
                let name = match name {
                    Some(n) => {
                        duplicate(t, &n)?;
                        n
                    }
                    None => {
                        // PostgreSQL names a check after the first column its expression mentions.
                        let first = col.or_else(|| {
                            let words: Vec<String> =
                                expr.split(|c: char| !(c.is_alphanumeric() || c == '_')).map(|w| w.to_lowercase()).collect();
                            words.into_iter().find(|w| t.column(w).is_some())
                        });
                        choose_constraint_name(t, &first.into_iter().collect::<Vec<_>>(), "check")
                    }
                };
                t.checks.push(CheckDef { name, expr });
            }
            NewConstraint::ForeignKey { name, columns, table, ref_columns, on_delete, on_update } => {
                let cols = columns.iter().map(|c| column(t, c)).collect::<SqlResult<Vec<_>>>()?;
                let parent = if table == t.name { t.clone() } else { self.catalog().table(&table)?.clone() };
                let refs = if ref_columns.is_empty() {
                    parent.primary_key.clone()
                } else {
                    ref_columns.iter().map(|c| column(&parent, c)).collect::<SqlResult<Vec<_>>>()?
                };
                if refs.len() != cols.len() {
                    return Err(SqlError::new("42830", "number of referencing and referenced columns for foreign key disagree"));
                }
                let mut sorted = refs.clone();
                sorted.sort();
                let keyed = |k: &[usize]| {
                    let mut k = k.to_vec();
                    k.sort();
                    k == sorted
                };
                if !keyed(&parent.primary_key) && !parent.indexes.iter().any(|i| i.unique && keyed(&i.columns)) {
                    return Err(SqlError::new(
                        "42830",
                        format!("there is no unique constraint matching given keys for referenced table \"{}\"", parent.name),
                    ));
                }
                for (&c, &p) in cols.iter().zip(&refs) {
                    let (a, b) = (t.columns[c].ty, parent.columns[p].ty);
                    if !(a == b || (a.is_numeric() && b.is_numeric()) || (a.is_text() && b.is_text())) {
                        return Err(SqlError::new(
                            "42804",
                            format!(
                                "foreign key constraint cannot be implemented: key columns \"{}\" and \"{}\" are of incompatible types: {} and {}",
                                t.columns[c].name,
                                parent.columns[p].name,
                                a.name(),
                                b.name()
                            ),
                        ));
                    }
                }
                let name = match name {
                    Some(n) => {
                        duplicate(t, &n)?;
                        n
                    }
                    None => choose_constraint_name(t, &columns, "fkey"),
                };
                t.foreign_keys.push(ForeignKeyDef { name, columns: cols, ref_table: parent.id, ref_columns: refs, on_delete, on_update });
            }
        }
        Ok(())
    }

    /// After ADD CONSTRAINT: every live row must satisfy the table's CHECK and FOREIGN KEY constraints.
    fn validate_existing_rows(&self, t: &TableDef, user: &str, txn: &Txn) -> SqlResult<()> {
        // The rows as the transaction sees them (its own writes included).
        let mut probe = self.begin_txn(false);
        probe.snapshot = txn.snapshot;
        probe.writes = txn.writes.clone();
        let mut rows = BTreeMap::new();
        for r in self.scan(t, &probe, None)? {
            rows.insert((t.id, r.key), Some(encode_row(t.version, &r.row[..t.columns.len()])));
        }
        let env = Env { params: &[], aggs: &[], now_us: probe.start_us, user, sub: None, outer: &[], settings: None, gen: None };
        // Checked against the new definition (enforce_constraints reads the committed catalog).
        let checks =
            t.checks.iter().map(|c| Ok((c.name.clone(), constraints::compile_check(t, &c.expr)?))).collect::<SqlResult<Vec<_>>>()?;
        for bytes in rows.values() {
            let Some(b) = bytes else { continue };
            let row = self.decode(t, b, 0)?;
            for (name, e) in &checks {
                if e.eval(&row, &env)? == Value::Bool(false) {
                    return Err(SqlError::new(
                        "23514",
                        format!("check constraint \"{name}\" of relation \"{}\" is violated by some row", t.name),
                    ));
                }
            }
            for fk in &t.foreign_keys {
                let vals: Vec<Value> = fk.columns.iter().map(|&c| row[c].clone()).collect();
                if vals.iter().any(Value::is_null) {
                    continue;
                }
                let parent = if fk.ref_table == t.id {
                    t.clone()
                } else {
                    self.catalog().table_by_id(fk.ref_table).cloned().ok_or_else(|| SqlError::undefined_table("(dropped)"))?
                };
                if !self.referenced_row_exists(&parent, fk, &vals, &probe)? {
                    return Err(SqlError::new(
                        "23503",
                        format!("insert or update on table \"{}\" violates foreign key constraint \"{}\"", t.name, fk.name),
                    ));
                }
            }
        }
        Ok(())
    }

    fn table_def(&self, ct: &ast::CreateTable, name: &str) -> SqlResult<TableDef> {
        if ct.query.is_some() {
            return Err(SqlError::unsupported("CREATE TABLE AS is not supported yet"));
        }
        let mut columns = Vec::new();
        // LIKE copies the visible columns' names, types and NOT NULL (and defaults with INCLUDING
        // DEFAULTS), not keys or indexes, as in PostgreSQL.
        if let Some(ast::CreateTableLikeKind::Parenthesized(like) | ast::CreateTableLikeKind::Plain(like)) = &ct.like {
            let catalog = self.catalog();
            let source = catalog.table(&object_name(&like.name))?;
            let defaults = like.defaults == Some(ast::CreateTableLikeDefaults::Including);
            for c in source.columns.iter().filter(|c| !c.hidden) {
                let mut c = c.clone();
                c.missing = None;
                if !defaults {
                    c.default = None;
                }
                columns.push(c);
            }
        }
        let mut pk: Vec<String> = Vec::new();
        // UNIQUE constraints: their names if given, and their columns.
        let mut unique: Vec<(Option<String>, Vec<String>)> = Vec::new();
        let mut constraints: Vec<NewConstraint> = Vec::new();
        for c in &ct.columns {
            let cname = normalize_ident(&c.name);
            if columns.iter().any(|x: &ColumnDef| x.name == cname) {
                return Err(SqlError::new("42701", format!("column \"{cname}\" specified more than once")));
            }
            let mut col = ColumnDef::from_ast(cname.clone(), &c.data_type)?;
            for o in &c.options {
                match &o.option {
                    ast::ColumnOption::NotNull => col.not_null = true,
                    ast::ColumnOption::Null => {}
                    ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
                    ast::ColumnOption::PrimaryKey(_) => {
                        if !pk.is_empty() {
                            return Err(SqlError::new("42P16", format!("multiple primary keys for table \"{name}\" are not allowed")));
                        }
                        pk.push(cname.clone());
                        col.not_null = true;
                    }
                    ast::ColumnOption::Unique(_) => unique.push((o.name.as_ref().map(normalize_ident), vec![cname.clone()])),
                    ast::ColumnOption::Check(ck) => constraints.push(NewConstraint::Check {
                        name: o.name.as_ref().or(ck.name.as_ref()).map(normalize_ident),
                        expr: ck.expr.to_string(),
                        column: Some(cname.clone()),
                    }),
                    ast::ColumnOption::ForeignKey(fk) => {
                        constraints.push(NewConstraint::foreign_key(o.name.as_ref().or(fk.name.as_ref()), vec![cname.clone()], fk))
                    }
                    other => return Err(SqlError::unsupported(format!("column option not supported yet: {other}"))),
                }
            }
            columns.push(col);
        }
        for tc in &ct.constraints {
            match tc {
                ast::TableConstraint::PrimaryKey(p) => {
                    if !pk.is_empty() {
                        return Err(SqlError::new("42P16", format!("multiple primary keys for table \"{name}\" are not allowed")));
                    }
                    for ic in &p.columns {
                        match &ic.column.expr {
                            ast::Expr::Identifier(i) => pk.push(normalize_ident(i)),
                            other => return Err(SqlError::syntax(format!("primary key column must be a name, not {other}"))),
                        }
                    }
                }
                ast::TableConstraint::Unique(u) => {
                    let mut cols = Vec::new();
                    for ic in &u.columns {
                        match &ic.column.expr {
                            ast::Expr::Identifier(i) => cols.push(normalize_ident(i)),
                            other => return Err(SqlError::syntax(format!("unique column must be a name, not {other}"))),
                        }
                    }
                    unique.push((u.name.as_ref().map(normalize_ident), cols));
                }
                ast::TableConstraint::Check(ck) => constraints.push(NewConstraint::Check {
                    name: ck.name.as_ref().map(normalize_ident),
                    expr: ck.expr.to_string(),
                    column: None,
                }),
                ast::TableConstraint::ForeignKey(fk) => {
                    constraints.push(NewConstraint::foreign_key(fk.name.as_ref(), fk.columns.iter().map(normalize_ident).collect(), fk))
                }
                other => return Err(SqlError::unsupported(format!("table constraint not supported yet: {other}"))),
            }
        }
        let id = self.catalog().next_table_id;
        if pk.is_empty() {
            // No primary key: rows are keyed by an implicit `_rowid`, drawn from a per-table counter
            // (durable high-water marks, like a sequence's; the values are in the provenance).
            if columns.iter().any(|c| c.name == super::catalog::ROWID) {
                return Err(SqlError::new(
                    "42701",
                    format!("column name \"{}\" conflicts with a system column name", super::catalog::ROWID),
                ));
            }
            let mut rowid = ColumnDef::new(super::catalog::ROWID.into(), DataType::Int8);
            rowid.hidden = true;
            rowid.default = Some(format!("__vouch_rowid({id})"));
            columns.insert(0, rowid);
            pk.push(super::catalog::ROWID.into());
        }
        let mut primary_key = Vec::new();
        for k in &pk {
            let i = columns
                .iter()
                .position(|c| &c.name == k)
                .ok_or_else(|| SqlError::new("42703", format!("column \"{k}\" named in key does not exist")))?;
            if !columns[i].ty.keyable() {
                return Err(SqlError::unsupported(format!("a {} column cannot be part of a primary key", columns[i].ty.name())));
            }
            columns[i].not_null = true;
            primary_key.push(i);
        }
        let mut indexes = Vec::new();
        for (n, (cname, cols)) in unique.into_iter().enumerate() {
            let idx = cols
                .iter()
                .map(|c| {
                    columns
                        .iter()
                        .position(|x| &x.name == c)
                        .ok_or_else(|| SqlError::new("42703", format!("column \"{c}\" named in key does not exist")))
                })
                .collect::<SqlResult<Vec<_>>>()?;
            if let Some(&bad) = idx.iter().find(|&&i| !columns[i].ty.keyable()) {
                return Err(SqlError::unsupported(format!(
                    "a UNIQUE constraint on a {} column is not supported yet",
                    columns[bad].ty.name()
                )));
            }
            indexes.push(super::catalog::IndexDef {
                id: id + 1 + n as u32,
                name: cname.unwrap_or_else(|| format!("{name}_{}_key", cols.join("_"))),
                columns: idx,
                unique: true,
                constraint: true,
            });
        }
        let mut def = TableDef {
            id,
            name: name.to_string(),
            version: 1,
            columns,
            primary_key,
            indexes,
            checks: vec![],
            foreign_keys: vec![],
            comments: Default::default(),
            append_only: table_options(ct)?,
            owner: None,
            grants: Default::default(),
        };
        for c in constraints {
            self.add_constraint(&mut def, c)?;
        }
        Ok(def)
    }

    // ---- SET / SHOW -----------------------------------------------------------------------------

    fn set(&self, s: &mut Session, set: &ast::Set) -> SqlResult<Outcome> {
        match set {
            ast::Set::SingleAssignment { variable, values, .. } => {
                let name = variable.to_string().to_lowercase();
                let value = values
                    .iter()
                    .map(|v| match v {
                        ast::Expr::Value(v) => match &v.value {
                            ast::Value::SingleQuotedString(s) => s.clone(),
                            other => other.to_string(),
                        },
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                if name == CLIENT_TIMESTAMP && !value.is_empty() {
                    parse_client_timestamp(&value)?;
                }
                s.settings.insert(name, value);
                Ok(Outcome::Command("SET".into()))
            }
            ast::Set::SetTransaction { modes, session, .. } => {
                for m in modes {
                    let ast::TransactionMode::IsolationLevel(l) = m else { continue };
                    let level = Isolation::from_ast(l);
                    match s.txn.as_mut() {
                        _ if *session => {
                            s.settings.insert("default_transaction_isolation".into(), level.name().into());
                        }
                        Some(t) if t.explicit && t.snapshots.is_empty() => t.isolation = level,
                        Some(t) if t.explicit => {
                            return Err(SqlError::new("25001", "SET TRANSACTION ISOLATION LEVEL must be called before any query"))
                        }
                        // Outside a transaction block PostgreSQL warns and does nothing.
                        _ => {}
                    }
                }
                Ok(Outcome::Command("SET".into()))
            }
            _ => Ok(Outcome::Command("SET".into())),
        }
    }

    fn show(&self, s: &Session, variable: &[ast::Ident]) -> Outcome {
        let name = show_name(variable);
        let value = match (&s.txn, name.as_str()) {
            (Some(t), "transaction_isolation") => t.isolation.name().to_string(),
            (None, "transaction_isolation") => session_isolation(&s.settings).name().to_string(),
            _ => s.settings.get(&name).cloned().unwrap_or_else(|| default_setting(&name).unwrap_or_default().to_string()),
        };
        Outcome::Rows { columns: Arc::new([Column::new(name, DataType::Text)]), rows: vec![vec![Value::Text(value)]], tag: "SHOW".into() }
    }

    // ---- reading --------------------------------------------------------------------------------

    pub(crate) fn decode(&self, t: &TableDef, bytes: &[u8], tx: u64) -> SqlResult<Vec<Value>> {
        let (_, mut row) = decode_row(bytes).map_err(|e| SqlError::new("XX001", format!("row of table \"{}\" in tx {tx}: {e}", t.name)))?;
        // Columns added after this row was written read as their recorded missing value.
        for c in &t.columns[row.len().min(t.columns.len())..] {
            row.push(match &c.missing {
                Some(text) => Value::parse(text, c.ty)?,
                None => Value::Null,
            });
        }
        row.truncate(t.columns.len());
        row.push(Value::Int(tx as i64));
        row.push(Value::Null); // _commit_ts, filled in by the scan when a query refers to it
        Ok(row)
    }

    /// One row by primary key, as the transaction sees it.
    fn get_row(&self, t: &TableDef, txn: &Txn, key: &[u8]) -> SqlResult<Option<Vec<Value>>> {
        if !txn.writes.is_empty() {
            if let Some(w) = txn.writes.get(&(t.id, key.to_vec())) {
                return w.as_ref().map(|b| self.decode(t, b, 0)).transpose();
            }
        }
        match self.ledger.get_as_of(t.id, key, txn.snapshot)? {
            Some(v) if !v.entry.is_delete() => Ok(Some(self.decode(t, &v.entry.value, v.tx)?)),
            _ => Ok(None),
        }
    }

    /// All live rows of a table as the transaction sees them, in key order; `pk` narrows to one key.
    fn scan(&self, t: &TableDef, txn: &Txn, pk: Option<Vec<u8>>) -> SqlResult<Vec<Scanned>> {
        self.scan_range(t, txn, pk, None, None)
    }

    /// Rows in primary-key order, optionally only those whose key starts in `[lo, hi]` (key prefixes);
    /// the transaction's own writes are merged in (the caller's filter re-checks bounds).
    pub(crate) fn scan_range(
        &self,
        t: &TableDef,
        txn: &Txn,
        pk: Option<Vec<u8>>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
    ) -> SqlResult<Vec<Scanned>> {
        if let Some(key) = pk {
            return Ok(self.get_row(t, txn, &key)?.map(|row| Scanned { key, row }).into_iter().collect());
        }
        let mut rows: BTreeMap<Vec<u8>, Vec<Value>> = BTreeMap::new();
        for (key, v) in self.ledger.scan_table_range(t.id, txn.snapshot, lo, hi, None)? {
            rows.insert(key, self.decode(t, &v.entry.value, v.tx)?);
        }
        for ((table, key), w) in txn.writes.range((t.id, Vec::new())..) {
            if *table != t.id {
                break;
            }
            match w {
                Some(b) => rows.insert(key.clone(), self.decode(t, b, 0)?),
                None => rows.remove(key),
            };
        }
        Ok(rows.into_iter().map(|(key, row)| Scanned { key, row }).collect())
    }
}

struct InFlight<'a> {
    set: &'a Mutex<HashSet<WriteKey>>,
    keys: Vec<WriteKey>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut set = self.set.lock().expect("in-flight lock is never poisoned");
        for k in &self.keys {
            set.remove(k);
        }
    }
}

/// The query a `COPY … TO` reads: the query itself, or `SELECT cols FROM table`.
fn copy_query(source: &ast::CopySource) -> SqlResult<ast::Query> {
    match source {
        ast::CopySource::Query(q) => Ok((**q).clone()),
        ast::CopySource::Table { table_name, columns } => {
            let cols =
                if columns.is_empty() { "*".to_string() } else { columns.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ") };
            let mut parsed = super::parse(&format!("SELECT {cols} FROM {table_name}"))?;
            match parsed.pop() {
                Some((Statement::Query(q), _)) => Ok(*q),
                _ => Err(SqlError::syntax("bad COPY source")),
            }
        }
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn show_name(variable: &[ast::Ident]) -> String {
    let name = variable.iter().map(|i| i.value.to_lowercase()).collect::<Vec<_>>().join(" ");
    match name.as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        "session authorization" => "session_authorization".into(),
        // A qualified (custom) setting such as `vouch.client_timestamp`, which the parser splits.
        _ => name.replace(' ', "."),
    }
}

/// The settings every session starts with (what SHOW, current_setting() and pg_settings report).
pub(crate) const SETTINGS: &[(&str, &str)] = &[
    ("server_version", crate::server::PG_VERSION),
    ("server_version_num", crate::server::PG_VERSION_NUM),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("default_transaction_isolation", "read committed"),
    ("standard_conforming_strings", "on"),
    ("integer_datetimes", "on"),
    ("search_path", "\"$user\", public"),
    ("max_identifier_length", "63"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("max_index_keys", "32"),
    ("block_size", "8192"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("application_name", ""),
];

/// The command name of a statement that writes (for 25006 in a read-only transaction), or None.
fn writing_statement(stmt: &Statement) -> Option<&'static str> {
    Some(match stmt {
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Truncate(_) => "TRUNCATE TABLE",
        Statement::Copy { to: false, .. } => "COPY FROM",
        Statement::CreateTable(_) => "CREATE TABLE",
        Statement::CreateIndex(_) => "CREATE INDEX",
        Statement::CreateView(_) => "CREATE VIEW",
        Statement::CreateSequence { .. } => "CREATE SEQUENCE",
        Statement::AlterTable(_) => "ALTER TABLE",
        Statement::Drop { .. } => "DROP",
        Statement::Comment { .. } => "COMMENT",
        Statement::Grant(_) => "GRANT",
        Statement::Revoke(_) => "REVOKE",
        _ => return None,
    })
}

/// Statements that run as transactional DDL (`ddl_in`): they change the catalog inside the
/// transaction. The replay audit re-runs them the same way.
fn is_ddl(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::CreateTable(_)
            | Statement::Drop { object_type: ast::ObjectType::Table | ast::ObjectType::Index, .. }
            | Statement::CreateIndex(_)
            | Statement::AlterTable(_)
            | Statement::CreateSequence { .. }
            | Statement::Drop { object_type: ast::ObjectType::Sequence | ast::ObjectType::View, .. }
            | Statement::CreateView(_)
            | Statement::Comment { .. }
            | Statement::Grant(_)
            | Statement::Revoke(_)
    )
}

/// The storage options of `CREATE TABLE … WITH (…)`: `append_only` (a boolean) is vouchdb's; the
/// ones PostgreSQL accepts for heap tables are accepted and ignored; others are errors (22023).
fn table_options(ct: &ast::CreateTable) -> SqlResult<bool> {
    let ast::CreateTableOptions::With(opts) = &ct.table_options else { return Ok(false) };
    let mut append_only = false;
    for o in opts {
        let ast::SqlOption::KeyValue { key, value } = o else {
            return Err(SqlError::new("22023", format!("unrecognized parameter \"{o}\"")));
        };
        let name = object_name(key);
        match name.as_str() {
            "append_only" => {
                let text = match value {
                    ast::Expr::Value(v) => match &v.value {
                        ast::Value::Boolean(b) => b.to_string(),
                        ast::Value::SingleQuotedString(s) => s.to_lowercase(),
                        ast::Value::Number(n, _) => n.to_string(),
                        other => other.to_string().to_lowercase(),
                    },
                    ast::Expr::Identifier(i) => i.value.to_lowercase(),
                    other => other.to_string().to_lowercase(),
                };
                append_only = match text.as_str() {
                    "true" | "on" | "1" | "yes" => true,
                    "false" | "off" | "0" | "no" => false,
                    _ => return Err(SqlError::new("22023", format!("invalid value for boolean option \"append_only\": {text}"))),
                };
            }
            "fillfactor" | "autovacuum_enabled" | "toast_tuple_target" | "parallel_workers" | "user_catalog_table" => {}
            _ => return Err(SqlError::new("22023", format!("unrecognized parameter \"{name}\""))),
        }
    }
    Ok(append_only)
}

/// The isolation level new transactions of a session get (`SET default_transaction_isolation`).
/// A CHECK or FOREIGN KEY constraint as written, before it is resolved against the catalog.
enum NewConstraint {
    Check {
        name: Option<String>,
        expr: String,
        column: Option<String>,
    },
    ForeignKey {
        name: Option<String>,
        columns: Vec<String>,
        table: String,
        ref_columns: Vec<String>,
        on_delete: FkAction,
        on_update: FkAction,
    },
}

impl NewConstraint {
    fn foreign_key(name: Option<&ast::Ident>, columns: Vec<String>, fk: &ast::ForeignKeyConstraint) -> NewConstraint {
        let action = |a: &Option<ast::ReferentialAction>| match a {
            Some(ast::ReferentialAction::Cascade) => FkAction::Cascade,
            Some(ast::ReferentialAction::Restrict) => FkAction::Restrict,
            Some(ast::ReferentialAction::SetNull) => FkAction::SetNull,
            Some(ast::ReferentialAction::SetDefault) => FkAction::SetDefault,
            Some(ast::ReferentialAction::NoAction) | None => FkAction::NoAction,
        };
        NewConstraint::ForeignKey {
            name: name.map(normalize_ident),
            columns,
            table: object_name(&fk.foreign_table),
            ref_columns: fk.referred_columns.iter().map(normalize_ident).collect(),
            on_delete: action(&fk.on_delete),
            on_update: action(&fk.on_update),
        }
    }
}

/// Every constraint name a table uses (PostgreSQL keeps them unique per table).
fn constraint_names(t: &TableDef) -> Vec<String> {
    let mut names = vec![format!("{}_pkey", t.name)];
    names.extend(t.indexes.iter().filter(|i| i.constraint).map(|i| i.name.clone()));
    names.extend(t.checks.iter().map(|c| c.name.clone()));
    names.extend(t.foreign_keys.iter().map(|f| f.name.clone()));
    names
}

/// PostgreSQL's choice of a constraint name: `<table>_<columns>_<suffix>`, numbered if taken.
/// A table's stored columns (hidden ones too, by position) as an expression scope.
fn table_columns_scope(t: &TableDef) -> Vec<ScopeCol> {
    t.columns
        .iter()
        .map(|c| ScopeCol { qualifier: Some(t.name.clone()), name: c.name.clone(), ty: c.ty, hidden: c.hidden, origin: None, depth: 0 })
        .collect()
}

/// The columns a PRIMARY KEY or UNIQUE constraint names.
fn constraint_columns<'a>(t: &TableDef, exprs: impl Iterator<Item = &'a ast::Expr>) -> SqlResult<Vec<usize>> {
    exprs
        .map(|e| match e {
            ast::Expr::Identifier(i) => {
                let n = normalize_ident(i);
                t.column(&n)
                    .filter(|&c| !t.columns[c].hidden)
                    .ok_or_else(|| SqlError::new("42703", format!("column \"{n}\" named in key does not exist")))
            }
            other => Err(SqlError::unsupported(format!("a key on the expression {other} is not supported"))),
        })
        .collect()
}

/// Turn column `i` into a dropped column, as PostgreSQL keeps one: rows keep a (NULL) value in its
/// position, and nothing can name it.
fn drop_column_def(t: &mut TableDef, i: usize) {
    let c = &mut t.columns[i];
    c.name = format!("........pg.dropped.{}........", i + 1);
    c.hidden = true;
    c.not_null = false;
    c.default = None;
    c.missing = None;
}

fn choose_constraint_name(t: &TableDef, cols: &[String], suffix: &str) -> String {
    let base = if cols.is_empty() { format!("{}_{suffix}", t.name) } else { format!("{}_{}_{suffix}", t.name, cols.join("_")) };
    let taken = constraint_names(t);
    if !taken.contains(&base) {
        return base;
    }
    (1..).map(|n| format!("{base}{n}")).find(|n| !taken.contains(n)).expect("some name is free")
}

fn session_isolation(settings: &BTreeMap<String, String>) -> Isolation {
    settings.get("default_transaction_isolation").and_then(|v| Isolation::parse(v)).unwrap_or(Isolation::ReadCommitted)
}

/// The relations a view's query names (tables, views; a CTE of the same name counts too).
fn view_reads(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(stmts) = crate::sql::parse(sql) {
        for (stmt, _) in stmts {
            let _ = sqlparser::ast::visit_relations(&stmt, |r| {
                out.insert(object_name(r));
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
    }
    out
}

/// A duration setting in milliseconds (`500`, `500ms`, `5s`, `2min`), None when unset or unreadable.
fn setting_ms(settings: &BTreeMap<String, String>, name: &str) -> Option<u64> {
    let v = settings.get(name)?.trim().to_lowercase();
    let (num, scale) = match v.strip_suffix("ms") {
        Some(n) => (n.trim().to_string(), 1),
        None => match v.strip_suffix("min") {
            Some(n) => (n.trim().to_string(), 60_000),
            None => match v.strip_suffix('s') {
                Some(n) => (n.trim().to_string(), 1000),
                None => (v.clone(), 1),
            },
        },
    };
    num.parse::<u64>().ok().map(|n| n * scale)
}

/// The deadline of a lock wait: `lock_timeout` (55P03) or `statement_timeout` (57014), in ms, 0 = none.
fn lock_deadline(settings: &BTreeMap<String, String>) -> Option<(std::time::Instant, &'static str)> {
    let ms = |name: &str| setting_ms(settings, name).filter(|n| *n > 0);
    let now = std::time::Instant::now();
    match (ms("lock_timeout"), ms("statement_timeout")) {
        (Some(l), Some(s)) if s < l => Some((now + std::time::Duration::from_millis(s), "57014")),
        (Some(l), _) => Some((now + std::time::Duration::from_millis(l), "55P03")),
        (None, Some(s)) => Some((now + std::time::Duration::from_millis(s), "57014")),
        (None, None) => None,
    }
}

/// A setting's default, `None` for a name the server does not know (an empty default is a value).
pub(crate) fn default_setting(name: &str) -> Option<&'static str> {
    SETTINGS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

// CHECK and FOREIGN KEY enforcement.
#[path = "constraints.rs"]
pub(crate) mod constraints;

// Advisory locks (pg_advisory_lock and friends).
#[path = "advisory.rs"]
pub(crate) mod advisory;

// Query planning and DML live in their own file.
#[path = "plan.rs"]
pub(crate) mod plan;

// The proof functions: verified_get, inclusion_proof, consistency_proof, …
#[path = "proofs.rs"]
pub(crate) mod proofs;

/// Item references: `vouch_references` rows as REFERENCE entries, `deref`.
#[path = "references.rs"]
pub(crate) mod references;

// Views over a table that ALTER TABLE changes (their column dependencies).
#[path = "view_deps.rs"]
pub(crate) mod view_deps;

// Sequences, SERIAL and identity columns, and the values statements draw for replay.
#[path = "sequence.rs"]
pub(crate) mod sequence;

// Replaying recorded transactions in a scratch store (the replay audit).
#[path = "replay.rs"]
pub mod replay;

// Policies, refusals recorded in the log, signing keys bound to roles.
#[path = "governance.rs"]
pub(crate) mod governance;

impl Engine {
    fn password_text(p: &ast::Password) -> SqlResult<Option<String>> {
        match p {
            ast::Password::NullPassword => Ok(None),
            ast::Password::Password(ast::Expr::Value(v)) => match &v.value {
                ast::Value::SingleQuotedString(s) => Ok(Some(s.clone())),
                _ => Err(SqlError::syntax("PASSWORD takes a string literal")),
            },
            ast::Password::Password(_) => Err(SqlError::syntax("PASSWORD takes a string literal")),
        }
    }

    /// CREATE USER/ROLE, ALTER USER … PASSWORD, DROP USER/ROLE. Passwords never reach the log: the
    /// recorded statement says which role changed, and only the SCRAM verifier is stored.
    async fn roles(&self, by: &str, stmt: &Statement) -> SqlResult<Outcome> {
        let superuser = self.catalog().users.get(by).is_some_and(|u| u.superuser);
        match stmt {
            Statement::CreateRole(cr) => {
                if !superuser {
                    return Err(SqlError::new("42501", "permission denied to create role"));
                }
                for n in &cr.names {
                    let name = object_name(n);
                    if self.catalog().users.contains_key(&name) {
                        if cr.if_not_exists {
                            continue;
                        }
                        return Err(SqlError::new("42710", format!("role \"{name}\" already exists")));
                    }
                    let password = match &cr.password {
                        Some(p) => Self::password_text(p)?,
                        None => None,
                    };
                    // A role without a password cannot log in: give it a random one nobody knows.
                    let password = password.unwrap_or_else(|| {
                        let mut b = [0u8; 24];
                        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut b);
                        hex::encode(b)
                    });
                    self.set_user_password(&name, &password, cr.superuser.unwrap_or(false), by).await?;
                }
                Ok(Outcome::Command("CREATE ROLE".into()))
            }
            Statement::AlterRole { name, operation } => {
                let name = normalize_ident(name);
                let Some(existing) = self.catalog().users.get(&name).cloned() else {
                    return Err(SqlError::new("42704", format!("role \"{name}\" does not exist")));
                };
                if !superuser && name != by {
                    return Err(SqlError::new("42501", "permission denied to alter role"));
                }
                let ast::AlterRoleOperation::WithOptions { options } = operation else {
                    return Err(SqlError::unsupported("this ALTER ROLE form is not supported yet (PASSWORD is)"));
                };
                for o in options {
                    match o {
                        ast::RoleOption::Password(p) => {
                            let pw = Self::password_text(p)?.ok_or_else(|| SqlError::unsupported("PASSWORD NULL is not supported"))?;
                            self.set_user_password(&name, &pw, existing.superuser, by).await?;
                        }
                        _ => return Err(SqlError::unsupported("only ALTER ROLE … PASSWORD is supported yet")),
                    }
                }
                Ok(Outcome::Command("ALTER ROLE".into()))
            }
            Statement::Drop { names, if_exists, .. } => {
                if !superuser {
                    return Err(SqlError::new("42501", "permission denied to drop role"));
                }
                for n in names {
                    let name = object_name(n);
                    if name == by {
                        return Err(SqlError::new("55006", "current user cannot be dropped"));
                    }
                    if !self.catalog().users.contains_key(&name) {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::new("42704", format!("role \"{name}\" does not exist")));
                    }
                    let provenance = serde_json::to_vec(
                        &serde_json::json!({ "user": by, "statements": [super::catalog::RoleRecord::Drop.text(&name)] }),
                    )
                    .expect("provenance always serialises");
                    let _guard = self.ddl.lock().await;
                    let entry = Entry::delete(super::catalog::SYS_USERS, name.as_bytes().to_vec());
                    self.ledger.append(NewTx { entries: vec![entry], provenance, ..Default::default() }).await?;
                    self.update_catalog(|c| c.users.remove(&name));
                }
                Ok(Outcome::Command("DROP ROLE".into()))
            }
            _ => unreachable!("roles() is called for role statements only"),
        }
    }

    /// Create (or replace the password of) a login role, storing only its SCRAM-SHA-256 verifier.
    pub async fn set_user_password(&self, name: &str, password: &str, superuser: bool, by: &str) -> SqlResult<()> {
        use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramSecret};
        let mut salt = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
        const ITERATIONS: usize = 4096;
        let salted = gen_salted_password(password, &salt, ITERATIONS);
        let ScramSecret::Verifier { stored_key, server_key, .. } =
            ScramSecret::verifier_from_salted_password(salt.to_vec(), salted, ITERATIONS)
        else {
            unreachable!("verifier_from_salted_password returns a verifier")
        };
        let user = super::catalog::UserDef {
            name: name.to_string(),
            superuser,
            salt: hex::encode(salt),
            iterations: ITERATIONS as u32,
            stored_key: hex::encode(stored_key),
            server_key: hex::encode(server_key),
            // A new password keeps the role's signing keys.
            signing_keys: self.catalog().users.get(name).map(|u| u.signing_keys.clone()).unwrap_or_default(),
            require_signature: self.catalog().users.get(name).is_some_and(|u| u.require_signature),
        };
        // The record names the change, never the password.
        let text = match self.catalog().users.get(name) {
            Some(_) => super::catalog::RoleRecord::Password,
            None => super::catalog::RoleRecord::Create { superuser },
        }
        .text(name);
        let provenance =
            serde_json::to_vec(&serde_json::json!({ "user": by, "statements": [text] })).expect("provenance always serialises");
        let _guard = self.ddl.lock().await;
        self.ledger.append(NewTx { entries: vec![user.entry()], provenance, client_time_us: 0, ..Default::default() }).await?;
        self.update_catalog(|c| c.users.insert(name.to_string(), user));
        Ok(())
    }
}
