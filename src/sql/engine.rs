//! The SQL engine: sessions, transactions and statement execution over the ledger.
//!
//! Every committed SQL transaction is exactly one ledger transaction. Reads see the ledger as of the
//! transaction's snapshot (a tree size) plus the transaction's own writes. A commit checks, under the
//! commit lock, that no key it writes was written by a transaction committed after its snapshot or still
//! in flight (first committer wins, 40001 otherwise), then queues its ledger append while still holding
//! the lock (so queue order is commit order) and waits for durability without it, so concurrent
//! commits share one group-commit fsync.

use super::catalog::{Catalog, ColumnDef, TableDef, SYS_TABLES};
use super::error::{SqlError, SqlResult};
use super::expr::{normalize_ident, object_name, AggCall, AggFunc, Ctx, Env, Expr, ScopeCol};
use super::value::{decode_row, encode_key, encode_row, DataType, Value};
use crate::ledger::{Entry, Ledger, NewTx};
use crate::signing::CheckpointSigner;
use sqlparser::ast::{self, Statement};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// A result column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: DataType,
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

pub(crate) struct Txn {
    snapshot: u64,
    /// The oldest snapshot any writing statement read: commit-time conflicts are checked against it.
    write_snapshot: u64,
    start_us: i64,
    explicit: bool,
    failed: bool,
    writes: BTreeMap<WriteKey, Option<Vec<u8>>>,
    statements: Vec<String>,
}

/// Per-connection state.
pub struct Session {
    pub user: String,
    txn: Option<Txn>,
    pub settings: BTreeMap<String, String>,
}

impl Session {
    pub fn new(user: &str) -> Session {
        Session { user: user.to_string(), txn: None, settings: BTreeMap::new() }
    }
    pub fn in_transaction(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.explicit)
    }
    pub fn in_failed_transaction(&self) -> bool {
        self.txn.as_ref().is_some_and(|t| t.failed)
    }
}

pub struct Engine {
    pub ledger: Arc<Ledger>,
    pub signer: Arc<CheckpointSigner>,
    catalog: RwLock<Catalog>,
    /// Bumped whenever the catalog changes: cached plans of an older generation are stale.
    catalog_generation: AtomicU64,
    /// Keys of commits queued but not yet durable.
    in_flight: Mutex<HashSet<WriteKey>>,
    /// Serialises DDL (table id allocation and catalog updates).
    ddl: tokio::sync::Mutex<()>,
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
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
            catalog: RwLock::new(catalog),
            catalog_generation: AtomicU64::new(0),
            in_flight: Mutex::new(HashSet::new()),
            ddl: tokio::sync::Mutex::new(()),
        })
    }

    pub fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().expect("catalog lock is never poisoned")
    }

    /// The catalog, for a change: every cached plan becomes stale.
    fn catalog_mut(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        let guard = self.catalog.write().expect("catalog lock is never poisoned");
        self.catalog_generation.fetch_add(1, Ordering::AcqRel);
        guard
    }

    pub(crate) fn begin_txn(&self, explicit: bool) -> Txn {
        Txn {
            snapshot: self.ledger.head().size,
            write_snapshot: u64::MAX,
            start_us: now_us(),
            explicit,
            failed: false,
            writes: BTreeMap::new(),
            statements: Vec::new(),
        }
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
        match stmt {
            Statement::StartTransaction { .. } => {
                if s.txn.is_none() {
                    s.txn = Some(self.begin_txn(true));
                }
                return Ok(Outcome::Begin);
            }
            Statement::Commit { .. } => {
                let Some(txn) = s.txn.take() else { return Ok(Outcome::Commit("COMMIT".into())) };
                if txn.failed {
                    return Ok(Outcome::Commit("ROLLBACK".into()));
                }
                self.commit(&s.user, txn).await?;
                return Ok(Outcome::Commit("COMMIT".into()));
            }
            Statement::Rollback { .. } => {
                s.txn = None;
                return Ok(Outcome::Commit("ROLLBACK".into()));
            }
            _ => {}
        }
        if s.in_failed_transaction() {
            return Err(SqlError::new("25P02", "current transaction is aborted, commands ignored until end of transaction block"));
        }
        match stmt {
            Statement::CreateTable(_)
            | Statement::Drop { object_type: ast::ObjectType::Table | ast::ObjectType::Index, .. }
            | Statement::CreateIndex(_)
            | Statement::AlterTable(_) => {
                if s.in_transaction() {
                    return Err(SqlError::unsupported("DDL inside a transaction block is not supported yet; run it on its own"));
                }
                return self.ddl(&s.user, stmt, sql).await;
            }
            Statement::CreateRole(_)
            | Statement::AlterRole { .. }
            | Statement::Drop { object_type: ast::ObjectType::Role | ast::ObjectType::User, .. } => {
                if s.in_transaction() {
                    return Err(SqlError::unsupported("role changes inside a transaction block are not supported yet"));
                }
                return self.roles(&s.user, stmt).await;
            }
            Statement::Set(set) => return self.set(s, set),
            // Connection-pool hygiene that drivers send (asyncpg sends all four on release).
            Statement::Discard { .. } => {
                s.settings.clear();
                return Ok(Outcome::Command("DISCARD ALL".into()));
            }
            Statement::Reset(_) => {
                s.settings.clear();
                return Ok(Outcome::Command("RESET".into()));
            }
            Statement::Close { .. } => return Ok(Outcome::Command("CLOSE CURSOR ALL".into())),
            Statement::UNLISTEN { .. } => return Ok(Outcome::Command("UNLISTEN".into())),
            Statement::ShowVariable { variable } => return Ok(self.show(s, variable)),
            _ => {}
        }
        let Some(mut txn) = s.txn.take() else { return self.autocommit(&s.user, &s.settings, stmt, sql, params, cache).await };
        // READ COMMITTED: each statement of an explicit transaction reads a fresh snapshot.
        txn.snapshot = self.ledger.head().size;
        let writes_before = txn.writes.len();
        match self.run(&s.user, &s.settings, &mut txn, stmt, params, cache) {
            Ok(out) => {
                txn.statements.push(sql.to_string());
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

    /// A statement outside a transaction block is its own transaction. When its commit loses a race
    /// for a row (40001), it runs again on a fresh snapshot, as PostgreSQL re-checks a row it waited
    /// for, so single-statement writers of a hot row do not see serialization failures.
    async fn autocommit(
        &self,
        user: &str,
        settings: &BTreeMap<String, String>,
        stmt: &Statement,
        sql: &str,
        params: &[Value],
        cache: Option<&PlanCache>,
    ) -> SqlResult<Outcome> {
        const RETRIES: u32 = 1000;
        let mut attempt = 0;
        loop {
            let mut txn = self.begin_txn(false);
            txn.write_snapshot = txn.snapshot;
            let out = self.run(user, settings, &mut txn, stmt, params, cache)?;
            if txn.writes.is_empty() {
                // Nothing to commit (a read): no provenance to record.
                return Ok(out);
            }
            txn.statements.push(sql.to_string());
            match self.commit(user, txn).await {
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
    pub fn describe(&self, stmt: &Statement, given: &[Option<DataType>]) -> SqlResult<Shape> {
        let mut params: Vec<Option<DataType>> = given.to_vec();
        let columns = match stmt {
            Statement::Query(q) => self.plan_query(q, &mut params)?.columns(),
            Statement::Insert(ins) => self.plan_insert(ins, &mut params)?.returning_columns.to_vec(),
            Statement::Update(u) => self.plan_update(u, &mut params)?.returning_columns.to_vec(),
            Statement::Delete(d) => self.plan_delete(d, &mut params)?.returning_columns.to_vec(),
            Statement::ShowVariable { variable } => vec![Column { name: show_name(variable), ty: DataType::Text }],
            Statement::Explain { .. } => vec![Column { name: "QUERY PLAN".into(), ty: DataType::Text }],
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
        let Some(cache) = cache else { return Ok(self.plan_statement(stmt)?.map(Arc::new)) };
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
        let env = Env { params, aggs: &[], now_us: txn.start_us, user, sub: None, outer: &[], settings: Some(settings) };
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
                Ok(Outcome::Rows { columns: Arc::new([Column { name: "QUERY PLAN".into(), ty: DataType::Text }]), rows, tag })
            }
            other => Err(SqlError::unsupported(format!("statement not supported yet: {}", first_words(&other.to_string())))),
        }
    }

    async fn commit(&self, user: &str, txn: Txn) -> SqlResult<()> {
        if txn.writes.is_empty() {
            return Ok(());
        }
        let keys: Vec<WriteKey> = txn.writes.keys().cloned().collect();
        let snapshot = txn.write_snapshot.min(txn.snapshot);
        let pending = {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock is never poisoned");
            let mut index_entries = Vec::new();
            let catalog = self.catalog();
            for ((table, key), new) in &txn.writes {
                let latest = self.ledger.get_latest(*table, key)?;
                if in_flight.contains(&(*table, key.clone())) || latest.as_ref().is_some_and(|v| v.tx > snapshot) {
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
            drop(catalog);
            in_flight.extend(keys.iter().cloned());
            let entries = txn
                .writes
                .into_iter()
                .map(|((table, key), row)| match row {
                    Some(bytes) => Entry::put(table, key, bytes),
                    None => Entry::delete(table, key),
                })
                .collect();
            let provenance = serde_json::to_vec(&serde_json::json!({ "user": user, "statements": txn.statements }))
                .expect("provenance always serialises");
            self.ledger.append(NewTx { entries, provenance, client_time_us: 0, index_entries })
        };
        // Release the keys however this future ends, also when a cancel request drops it.
        let _release = InFlight { set: &self.in_flight, keys };
        pending.await.map(|_| ()).map_err(SqlError::from)
    }

    // ---- DDL ------------------------------------------------------------------------------------

    async fn ddl(&self, user: &str, stmt: &Statement, sql: &str) -> SqlResult<Outcome> {
        let _guard = self.ddl.lock().await;
        if let Statement::CreateIndex(ci) = stmt {
            return self.create_index(user, ci, sql).await;
        }
        let (entries, tag, apply): (Vec<Entry>, &str, CatalogChange) = match stmt {
            Statement::CreateTable(ct) => {
                let name = object_name(&ct.name);
                if self.catalog().tables.contains_key(&name) {
                    if ct.if_not_exists {
                        return Ok(Outcome::Command("CREATE TABLE".into()));
                    }
                    return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
                }
                let def = self.table_def(ct, &name)?;
                let entry = def.entry();
                (
                    vec![entry],
                    "CREATE TABLE",
                    Box::new(move |c: &mut Catalog| {
                        let last = def.indexes.iter().map(|i| i.id).chain([def.id]).max().unwrap_or(def.id);
                        c.next_table_id = c.next_table_id.max(last + 1);
                        c.tables.insert(def.name.clone(), def);
                    }),
                )
            }
            Statement::Drop { object_type: ast::ObjectType::Table, if_exists, names, .. } => {
                let mut entries = Vec::new();
                let mut dropped = Vec::new();
                for n in names {
                    let name = object_name(n);
                    match self.catalog().tables.get(&name) {
                        Some(t) => {
                            entries.push(Entry::delete(SYS_TABLES, t.id.to_be_bytes().to_vec()));
                            dropped.push(name);
                        }
                        None if *if_exists => {}
                        None => return Err(SqlError::undefined_table(&name)),
                    }
                }
                if entries.is_empty() {
                    return Ok(Outcome::Command("DROP TABLE".into()));
                }
                (
                    entries,
                    "DROP TABLE",
                    Box::new(move |c: &mut Catalog| {
                        for n in dropped {
                            c.tables.remove(&n);
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
                            let mut col = ColumnDef {
                                name: cname.clone(),
                                ty: DataType::from_ast(&column_def.data_type)?,
                                not_null: false,
                                default: None,
                                missing: None,
                            };
                            for o in &column_def.options {
                                match &o.option {
                                    ast::ColumnOption::NotNull => col.not_null = true,
                                    ast::ColumnOption::Null => {}
                                    ast::ColumnOption::Default(e) => col.default = Some(e.to_string()),
                                    other => return Err(SqlError::unsupported(format!("ADD COLUMN with {other} is not supported yet"))),
                                }
                            }
                            // Existing rows take the default's value now (evaluated once, as PostgreSQL does for
                            // a non-volatile default).
                            let missing = match &col.default {
                                Some(d) => {
                                    let e = Ctx { scope: &[], params: &mut vec![], aggs: None, planner: None }
                                        .compile_as(&crate::sql::parse_expr(d)?, col.ty)?;
                                    let env = Env { params: &[], aggs: &[], now_us: now_us(), user, sub: None, outer: &[], settings: None };
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
                            col.missing = missing.to_text(col.ty);
                            t.columns.push(col);
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
                let entry = t.entry();
                (
                    vec![entry],
                    "ALTER TABLE",
                    Box::new(move |c: &mut Catalog| {
                        c.tables.insert(t.name.clone(), t);
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
        let provenance =
            serde_json::to_vec(&serde_json::json!({ "user": user, "statements": [sql] })).expect("provenance always serialises");
        self.ledger.append(NewTx { entries, provenance, client_time_us: 0, ..Default::default() }).await?;
        apply(&mut self.catalog_mut());
        Ok(Outcome::Command(tag.into()))
    }

    /// CREATE [UNIQUE] INDEX: one ledger transaction carrying the new table definition and an index
    /// entry for every existing row. Commits are held off (the in-flight lock) from the moment the
    /// existing rows are read until the new definition is in the catalog, so no row escapes the index.
    async fn create_index(&self, user: &str, ci: &ast::CreateIndex, sql: &str) -> SqlResult<Outcome> {
        let mut table = self.catalog().table(&object_name(&ci.table_name))?.clone();
        let name = match &ci.name {
            Some(n) => object_name(n),
            None => format!(
                "{}_{}_idx",
                table.name,
                ci.columns.iter().map(|c| c.column.expr.to_string().to_lowercase()).collect::<Vec<_>>().join("_")
            ),
        };
        if self.catalog().index(&name).is_some() || self.catalog().tables.contains_key(&name) {
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
        let index = super::catalog::IndexDef { id: self.catalog().next_table_id, name, columns, unique: ci.unique };
        let pending = loop {
            {
                let in_flight = self.in_flight.lock().expect("in-flight lock is never poisoned");
                if in_flight.is_empty() {
                    let head = self.ledger.head().size;
                    let mut entries = Vec::new();
                    let mut seen: HashMap<Vec<u8>, ()> = HashMap::new();
                    for (key, v) in self.ledger.scan_table(table.id, head, None)? {
                        let row = self.decode(&table, &v.entry.value, v.tx)?;
                        let vals = super::index::values_of(&index, &row);
                        if index.unique
                            && !vals.iter().any(Value::is_null)
                            && seen.insert(super::index::encode_values(&vals)?, ()).is_some()
                        {
                            return Err(super::index::unique_violation(&table, &index, &vals));
                        }
                        let mut one = table.clone();
                        one.indexes = vec![index.clone()];
                        entries.extend(super::index::maintain(&one, &key, None, Some(&row))?);
                    }
                    table.indexes.push(index.clone());
                    table.version += 1;
                    let provenance = serde_json::to_vec(&serde_json::json!({ "user": user, "statements": [sql] }))
                        .expect("provenance always serialises");
                    let fut =
                        self.ledger.append(NewTx { entries: vec![table.entry()], provenance, client_time_us: 0, index_entries: entries });
                    let mut catalog = self.catalog_mut();
                    catalog.next_table_id = catalog.next_table_id.max(index.id + 1);
                    catalog.tables.insert(table.name.clone(), table.clone());
                    break fut;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        };
        if let Err(e) = pending.await {
            // Not durable: take the index back out of the catalog.
            let mut catalog = self.catalog_mut();
            if let Some(t) = catalog.tables.get_mut(&table.name) {
                t.indexes.retain(|i| i.id != index.id);
            }
            return Err(e.into());
        }
        Ok(Outcome::Command("CREATE INDEX".into()))
    }

    fn table_def(&self, ct: &ast::CreateTable, name: &str) -> SqlResult<TableDef> {
        if ct.query.is_some() || ct.like.is_some() {
            return Err(SqlError::unsupported("CREATE TABLE AS / LIKE is not supported yet"));
        }
        let mut columns = Vec::new();
        let mut pk: Vec<String> = Vec::new();
        let mut unique: Vec<Vec<String>> = Vec::new();
        for c in &ct.columns {
            let cname = normalize_ident(&c.name);
            if columns.iter().any(|x: &ColumnDef| x.name == cname) {
                return Err(SqlError::new("42701", format!("column \"{cname}\" specified more than once")));
            }
            let mut col =
                ColumnDef { name: cname.clone(), ty: DataType::from_ast(&c.data_type)?, not_null: false, default: None, missing: None };
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
                    ast::ColumnOption::Unique(_) => unique.push(vec![cname.clone()]),
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
                    unique.push(cols);
                }
                other => return Err(SqlError::unsupported(format!("table constraint not supported yet: {other}"))),
            }
        }
        if pk.is_empty() {
            return Err(SqlError::unsupported(format!("table \"{name}\" needs a PRIMARY KEY (tables without one are not supported yet)")));
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
        let id = self.catalog().next_table_id;
        let mut indexes = Vec::new();
        for (n, cols) in unique.into_iter().enumerate() {
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
                name: format!("{name}_{}_key", cols.join("_")),
                columns: idx,
                unique: true,
            });
        }
        Ok(TableDef { id, name: name.to_string(), version: 1, columns, primary_key, indexes })
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
                s.settings.insert(name, value);
                Ok(Outcome::Command("SET".into()))
            }
            _ => Ok(Outcome::Command("SET".into())),
        }
    }

    fn show(&self, s: &Session, variable: &[ast::Ident]) -> Outcome {
        let name = show_name(variable);
        let value = s.settings.get(&name).cloned().unwrap_or_else(|| default_setting(&name).to_string());
        Outcome::Rows { columns: Arc::new([Column { name, ty: DataType::Text }]), rows: vec![vec![Value::Text(value)]], tag: "SHOW".into() }
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

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn show_name(variable: &[ast::Ident]) -> String {
    let name = variable.iter().map(|i| i.value.to_lowercase()).collect::<Vec<_>>().join(" ");
    match name.as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        _ => name,
    }
}

pub(crate) fn default_setting(name: &str) -> &'static str {
    match name {
        "server_version" => crate::server::PG_VERSION,
        "server_version_num" => crate::server::PG_VERSION_NUM,
        "server_encoding" | "client_encoding" => "UTF8",
        "datestyle" => "ISO, MDY",
        "timezone" => "UTC",
        "transaction_isolation" | "default_transaction_isolation" => "read committed",
        "standard_conforming_strings" => "on",
        "integer_datetimes" => "on",
        "search_path" => "\"$user\", public",
        "max_identifier_length" => "63",
        "intervalstyle" => "postgres",
        "is_superuser" => "on",
        _ => "",
    }
}

// Query planning and DML live in their own file.
#[path = "plan.rs"]
pub(crate) mod plan;

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
                    let provenance = serde_json::to_vec(&serde_json::json!({ "user": by, "statements": [format!("DROP ROLE {name}")] }))
                        .expect("provenance always serialises");
                    let _guard = self.ddl.lock().await;
                    let entry = Entry::delete(super::catalog::SYS_USERS, name.as_bytes().to_vec());
                    self.ledger.append(NewTx { entries: vec![entry], provenance, ..Default::default() }).await?;
                    self.catalog_mut().users.remove(&name);
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
        };
        let provenance = serde_json::to_vec(&serde_json::json!({ "user": by, "statements": [format!("-- set password of role {name}")] }))
            .expect("provenance always serialises");
        let _guard = self.ddl.lock().await;
        self.ledger.append(NewTx { entries: vec![user.entry()], provenance, client_time_us: 0, ..Default::default() }).await?;
        self.catalog_mut().users.insert(name.to_string(), user);
        Ok(())
    }
}
