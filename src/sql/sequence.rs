//! Sequences (CREATE SEQUENCE, SERIAL, identity columns) and the values a statement draws from outside
//! its SQL text (nextval, gen_random_uuid), which are recorded for replay.
//!
//! A sequence's definition is an entry of system table 3, like a table's. Its state is an entry of
//! system table 4: `{"last_value": n, "is_called": b}`, a high-water mark. `nextval` hands values out of
//! a block reserved in memory; the nextval that needs a new block first appends a small ledger
//! transaction recording the state after the whole block (PostgreSQL WAL-logs 32 values ahead the same
//! way), so after a crash the sequence continues past every value it could have handed out: values are
//! never repeated, gaps are allowed. Like PostgreSQL, nextval is not undone by ROLLBACK.

use super::*;
use crate::sql::catalog::{SequenceDef, SYS_SEQUENCES, SYS_SEQUENCE_VALUES};

/// Values reserved by one high-water-mark record (PostgreSQL's SEQ_LOG_VALS).
const RESERVE: i64 = 32;

/// The durable state of a sequence, as PostgreSQL's `last_value` and `is_called`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SeqValue {
    pub last_value: i64,
    pub is_called: bool,
}

#[derive(Debug, Clone, Copy)]
struct SeqState {
    last: i64,
    called: bool,
    /// nextval calls still covered by the last durable record.
    left: i64,
    /// The definition (increment, min, max, cycle) the block was reserved under: a nextval under a
    /// changed one (ALTER SEQUENCE, committed or in the drawing transaction) reserves anew.
    under: (i64, i64, i64, bool),
}

impl SequenceDef {
    fn shape(&self) -> (i64, i64, i64, bool) {
        (self.increment, self.min, self.max, self.cycle)
    }
}

/// The in-memory state of every sequence used since start (loaded from the ledger on first use).
#[derive(Default)]
pub struct Sequences {
    state: Mutex<HashMap<u32, SeqState>>,
}

/// What `currval` and `lastval` return: per session, as in PostgreSQL.
#[derive(Debug, Default)]
pub struct SessionSeq {
    currval: HashMap<u32, i64>,
    last: Option<u32>,
    /// Sequences the running transaction restarted (ALTER SEQUENCE … RESTART): their state as the
    /// transaction sees it, drawn from by its nextval calls and written by its commit.
    restarted: HashMap<u32, SeqValue>,
}

impl SessionSeq {
    /// The transaction ends: its restarted states, to be written by its commit (or dropped).
    pub fn take_restarted(&mut self) -> Vec<(u32, SeqValue)> {
        let mut v: Vec<(u32, SeqValue)> = self.restarted.drain().collect();
        v.sort_by_key(|(id, _)| *id);
        v
    }

    /// For a savepoint: the restarted states as they are now, and to put them back (ROLLBACK TO).
    pub fn restarted_mark(&self) -> HashMap<u32, SeqValue> {
        self.restarted.clone()
    }
    pub fn restore_restarted(&mut self, mark: HashMap<u32, SeqValue>) {
        self.restarted = mark;
    }
}

pub type SessionSeqs = Arc<Mutex<SessionSeq>>;

pub(crate) fn value_entry(id: u32, v: SeqValue) -> Entry {
    Entry::put(SYS_SEQUENCE_VALUES, id.to_be_bytes().to_vec(), serde_json::to_vec(&v).expect("a sequence value always serialises"))
}

impl SequenceDef {
    pub fn entry(&self) -> Entry {
        Entry::put(SYS_SEQUENCES, self.id.to_be_bytes().to_vec(), serde_json::to_vec(self).expect("a sequence always serialises"))
    }

    /// The value after `last` (or `last` itself when it was not handed out yet).
    fn step(&self, last: i64, called: bool) -> SqlResult<i64> {
        if !called {
            return Ok(last);
        }
        let next = last.checked_add(self.increment);
        if self.increment > 0 {
            match next {
                Some(n) if n <= self.max => Ok(n),
                _ if self.cycle => Ok(self.min),
                _ => Err(SqlError::new("2200H", format!("nextval: reached maximum value of sequence \"{}\" ({})", self.name, self.max))),
            }
        } else {
            match next {
                Some(n) if n >= self.min => Ok(n),
                _ if self.cycle => Ok(self.max),
                _ => Err(SqlError::new("2200H", format!("nextval: reached minimum value of sequence \"{}\" ({})", self.name, self.min))),
            }
        }
    }
}

fn type_bounds(ty: DataType) -> (i64, i64) {
    match ty {
        DataType::Int2 => (i16::MIN as i64, i16::MAX as i64),
        DataType::Int4 => (i32::MIN as i64, i32::MAX as i64),
        _ => (i64::MIN, i64::MAX),
    }
}

fn int_of(e: &ast::Expr) -> SqlResult<i64> {
    let bad = || SqlError::syntax(format!("expected an integer, found {e}"));
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().map_err(|_| bad()),
            _ => Err(bad()),
        },
        ast::Expr::UnaryOp { op: ast::UnaryOperator::Minus, expr } => int_of(expr)?.checked_neg().ok_or_else(bad),
        ast::Expr::UnaryOp { op: ast::UnaryOperator::Plus, expr } => int_of(expr),
        ast::Expr::Nested(e) => int_of(e),
        _ => Err(bad()),
    }
}

/// The marker type name `mod.rs` uses to carry `ALTER SEQUENCE … RESTART [WITH n]` (sqlparser has no
/// ALTER SEQUENCE); its one modifier, if any, is the restart value.
pub const RESTART_MARKER: &str = "__vouch_restart";

/// What a CREATE or ALTER SEQUENCE's options ask for.
#[derive(Default)]
pub struct SeqOptions {
    pub ty: Option<DataType>,
    pub increment: Option<i64>,
    pub min: Option<Option<i64>>,
    pub max: Option<Option<i64>>,
    pub start: Option<i64>,
    pub cache: Option<i64>,
    pub cycle: Option<bool>,
    pub owned_by: Option<Option<ast::ObjectName>>,
    /// `RESTART` (None inside: to the start value) or `RESTART WITH n`.
    pub restart: Option<Option<i64>>,
}

impl SeqOptions {
    pub fn parse(opts: &[ast::SequenceOptions]) -> SqlResult<SeqOptions> {
        let mut o = SeqOptions::default();
        for opt in opts {
            match opt {
                ast::SequenceOptions::DataType(ast::DataType::Custom(name, mods)) if name.to_string() == RESTART_MARKER => {
                    o.restart = Some(
                        mods.first()
                            .map(|m| m.to_string().parse().map_err(|_| SqlError::syntax("RESTART WITH takes an integer")))
                            .transpose()?,
                    );
                }
                ast::SequenceOptions::DataType(t) => {
                    let ty = DataType::from_ast(t)?;
                    if !ty.is_integer() {
                        return Err(SqlError::new("22023", "sequence type must be smallint, integer, or bigint"));
                    }
                    o.ty = Some(ty);
                }
                ast::SequenceOptions::IncrementBy(e, _) => o.increment = Some(int_of(e)?),
                ast::SequenceOptions::MinValue(e) => o.min = Some(e.as_ref().map(int_of).transpose()?),
                ast::SequenceOptions::MaxValue(e) => o.max = Some(e.as_ref().map(int_of).transpose()?),
                ast::SequenceOptions::StartWith(e, _) => o.start = Some(int_of(e)?),
                ast::SequenceOptions::Cache(e) => o.cache = Some(int_of(e)?),
                // sqlparser's flag is "NO": `Cycle(true)` is NO CYCLE.
                ast::SequenceOptions::Cycle(no) => o.cycle = Some(!no),
                ast::SequenceOptions::OwnedBy(n) => o.owned_by = Some(n.clone()),
            }
        }
        Ok(o)
    }

    /// A new definition (`base` None) or the changed one, checked as PostgreSQL's init_params does.
    pub fn apply(&self, id: u32, name: &str, base: Option<&SequenceDef>) -> SqlResult<SequenceDef> {
        let bad = |m: String| SqlError::new("22023", m);
        let ty = self.ty.or(base.map(|b| b.ty)).unwrap_or(DataType::Int8);
        let increment = self.increment.or(base.map(|b| b.increment)).unwrap_or(1);
        if increment == 0 {
            return Err(bad("INCREMENT must not be zero".into()));
        }
        let (tmin, tmax) = type_bounds(ty);
        let max = match self.max {
            Some(Some(m)) => m,
            Some(None) => {
                if increment > 0 {
                    tmax
                } else {
                    -1
                }
            }
            None => base.map(|b| b.max).unwrap_or(if increment > 0 { tmax } else { -1 }),
        };
        let min = match self.min {
            Some(Some(m)) => m,
            Some(None) => {
                if increment > 0 {
                    1
                } else {
                    tmin
                }
            }
            None => base.map(|b| b.min).unwrap_or(if increment > 0 { 1 } else { tmin }),
        };
        if max < tmin || max > tmax {
            return Err(bad(format!("MAXVALUE ({max}) is out of range for sequence data type {}", ty.name())));
        }
        if min < tmin || min > tmax {
            return Err(bad(format!("MINVALUE ({min}) is out of range for sequence data type {}", ty.name())));
        }
        if min >= max {
            return Err(bad(format!("MINVALUE ({min}) must be less than MAXVALUE ({max})")));
        }
        let start = self.start.or(base.map(|b| b.start)).unwrap_or(if increment > 0 { min } else { max });
        if start < min {
            return Err(bad(format!("START value ({start}) cannot be less than MINVALUE ({min})")));
        }
        if start > max {
            return Err(bad(format!("START value ({start}) cannot be greater than MAXVALUE ({max})")));
        }
        if let Some(Some(r)) = self.restart {
            if r < min {
                return Err(bad(format!("RESTART value ({r}) cannot be less than MINVALUE ({min})")));
            }
            if r > max {
                return Err(bad(format!("RESTART value ({r}) cannot be greater than MAXVALUE ({max})")));
            }
        }
        let cache = self.cache.or(base.map(|b| b.cache)).unwrap_or(1);
        if cache <= 0 {
            return Err(bad(format!("CACHE ({cache}) must be greater than zero")));
        }
        Ok(SequenceDef {
            id,
            name: name.to_string(),
            ty,
            increment,
            min,
            max,
            start,
            cache,
            cycle: self.cycle.or(base.map(|b| b.cycle)).unwrap_or(false),
            owned_by: base.and_then(|b| b.owned_by.clone()),
            identity: base.and_then(|b| b.identity.clone()),
        })
    }
}

/// `name` as a relation name: an optional `public.` prefix, folded to lower case unless quoted.
pub fn relation_name(name: &str) -> String {
    let n = name.trim();
    let n = n.strip_prefix("public.").or_else(|| n.strip_prefix("\"public\".")).unwrap_or(n);
    if n.starts_with('"') && n.ends_with('"') && n.len() >= 2 {
        n[1..n.len() - 1].replace("\"\"", "\"")
    } else {
        n.to_lowercase()
    }
}

impl Sequences {
    fn load(&self, ledger: &Ledger, def: &SequenceDef) -> SqlResult<SeqState> {
        let stored = match ledger.get_latest(SYS_SEQUENCE_VALUES, &def.id.to_be_bytes())? {
            Some(v) if !v.entry.is_delete() => Some(
                serde_json::from_slice::<SeqValue>(&v.entry.value)
                    .map_err(|e| SqlError::new("XX001", format!("sequence value in tx {}: {e}", v.tx)))?,
            ),
            _ => None,
        };
        let v = stored.unwrap_or(SeqValue { last_value: def.start, is_called: false });
        Ok(SeqState { last: v.last_value, called: v.is_called, left: 0, under: def.shape() })
    }

    /// Record a sequence state durably, as a ledger transaction of its own.
    fn record(ledger: &Ledger, def: &SequenceDef, v: SeqValue, user: &str, why: &str) -> SqlResult<()> {
        let provenance = serde_json::to_vec(&serde_json::json!({
            "user": user,
            "statements": [],
            "sequence_state": { "sequence": def.name, "reason": why, "last_value": v.last_value, "is_called": v.is_called },
        }))
        .expect("provenance always serialises");
        ledger.append_blocking(NewTx { entries: vec![value_entry(def.id, v)], provenance, ..Default::default() })?;
        Ok(())
    }

    pub fn nextval(&self, ledger: &Ledger, def: &SequenceDef, user: &str) -> SqlResult<i64> {
        let mut all = self.state.lock().expect("sequence lock is never poisoned");
        let st = match all.get(&def.id) {
            Some(s) => *s,
            None => self.load(ledger, def)?,
        };
        let v = def.step(st.last, st.called)?;
        let mut left = if st.under == def.shape() { st.left } else { 0 };
        if left == 0 {
            // Reserve a block: record the state after its last value before handing any out.
            let n = RESERVE.max(def.cache);
            let mut high = v;
            for _ in 1..n {
                match def.step(high, true) {
                    Ok(x) if !(def.cycle && x == if def.increment > 0 { def.min } else { def.max }) => high = x,
                    _ => break,
                }
            }
            Self::record(ledger, def, SeqValue { last_value: high, is_called: true }, user, "reserve")?;
            left = n;
        }
        all.insert(def.id, SeqState { last: v, called: true, left: left - 1, under: def.shape() });
        Ok(v)
    }

    /// setval: the new state is durable before it is used.
    pub fn set(&self, ledger: &Ledger, def: &SequenceDef, v: SeqValue, user: &str) -> SqlResult<()> {
        let mut all = self.state.lock().expect("sequence lock is never poisoned");
        Self::record(ledger, def, v, user, "setval")?;
        all.insert(def.id, SeqState { last: v.last_value, called: v.is_called, left: 0, under: def.shape() });
        Ok(())
    }

    /// A committed ALTER SEQUENCE … RESTART: the state its transaction wrote (and drew from) is now
    /// the sequence's; the next nextval reserves a block from it.
    pub fn restarted(&self, id: u32, v: SeqValue) {
        let mut all = self.state.lock().expect("sequence lock is never poisoned");
        all.insert(id, SeqState { last: v.last_value, called: v.is_called, left: 0, under: (0, 0, 0, false) });
    }
}

/// What one statement drew: sequence values and random UUIDs, in the order handed out.
#[derive(Debug, Default, Clone)]
pub struct Drawn {
    pub sequence_values: Vec<(String, i64)>,
    pub random_uuids: Vec<String>,
}

impl Drawn {
    pub fn truncate(&mut self, to: (usize, usize)) {
        self.sequence_values.truncate(to.0);
        self.random_uuids.truncate(to.1);
    }
    pub fn len(&self) -> (usize, usize) {
        (self.sequence_values.len(), self.random_uuids.len())
    }
}

/// The values a replayed transaction draws: the ones its provenance recorded, handed out in order
/// instead of drawing new ones (and without recording sequence states).
#[derive(Debug, Default)]
pub struct ReplayDraws {
    pub sequence_values: std::collections::VecDeque<(String, i64)>,
    pub random_uuids: std::collections::VecDeque<String>,
}

/// The generator a statement's expressions call (`Env::gen`).
pub struct Generated<'a> {
    pub engine: &'a Engine,
    pub session: SessionSeqs,
    pub user: &'a str,
    pub drawn: Mutex<Drawn>,
    replay: Option<Arc<Mutex<ReplayDraws>>>,
}

impl<'a> Generated<'a> {
    pub fn new(engine: &'a Engine, session: SessionSeqs, user: &'a str, replay: Option<Arc<Mutex<ReplayDraws>>>) -> Self {
        Generated { engine, session, user, drawn: Mutex::new(Drawn::default()), replay }
    }

    /// Replaying: the next recorded value of sequence `name`.
    fn replayed_value(&self, name: &str) -> Option<SqlResult<i64>> {
        let r = self.replay.as_ref()?;
        let mut r = r.lock().expect("replay lock is never poisoned");
        Some(match r.sequence_values.pop_front() {
            Some((n, v)) if n == name => Ok(v),
            Some((n, _)) => {
                Err(SqlError::new("XX000", format!("replay: the statement drew from \"{name}\" where the record has a value of \"{n}\"")))
            }
            None => Err(SqlError::new("XX000", format!("replay: the statement drew from \"{name}\" more values than the record holds"))),
        })
    }

    pub fn into_drawn(self) -> Drawn {
        self.drawn.into_inner().expect("drawn lock is never poisoned")
    }

    fn sequence(&self, name: &str) -> SqlResult<SequenceDef> {
        let n = relation_name(name);
        let catalog = self.engine.catalog();
        match catalog.sequences.get(&n) {
            Some(s) => Ok(s.clone()),
            None if catalog.tables.contains_key(&n) || catalog.index(&n).is_some() => {
                Err(SqlError::new("42809", format!("\"{n}\" is not a sequence")))
            }
            None => Err(SqlError::undefined_table(&n)),
        }
    }

    fn note(&self, seq: &SequenceDef, v: i64) {
        self.drawn.lock().expect("drawn lock is never poisoned").sequence_values.push((seq.name.clone(), v));
    }

    fn session(&self) -> std::sync::MutexGuard<'_, SessionSeq> {
        self.session.lock().expect("session sequence lock is never poisoned")
    }
}

impl super::super::expr::Generator for Generated<'_> {
    fn nextval(&self, name: &str) -> SqlResult<i64> {
        let def = self.sequence(name)?;
        // Restarted by this transaction: drawn from the state it wrote, which its commit records.
        let restarted = self.session().restarted.get(&def.id).copied();
        let v = match (restarted, self.replayed_value(&def.name)) {
            (Some(st), replayed) => {
                let v = match replayed {
                    Some(v) => v?,
                    None => def.step(st.last_value, st.is_called)?,
                };
                self.session().restarted.insert(def.id, SeqValue { last_value: v, is_called: true });
                v
            }
            (None, Some(v)) => v?,
            (None, None) => self.engine.sequences.nextval(&self.engine.ledger, &def, self.user)?,
        };
        let mut s = self.session();
        s.currval.insert(def.id, v);
        s.last = Some(def.id);
        drop(s);
        self.note(&def, v);
        Ok(v)
    }

    fn currval(&self, name: &str) -> SqlResult<i64> {
        let def = self.sequence(name)?;
        let v =
            self.session().currval.get(&def.id).copied().ok_or_else(|| {
                SqlError::new("55000", format!("currval of sequence \"{}\" is not yet defined in this session", def.name))
            })?;
        self.note(&def, v);
        Ok(v)
    }

    fn lastval(&self) -> SqlResult<i64> {
        let none = || SqlError::new("55000", "lastval is not yet defined in this session");
        let (id, v) = {
            let s = self.session();
            let id = s.last.ok_or_else(none)?;
            (id, *s.currval.get(&id).ok_or_else(none)?)
        };
        let catalog = self.engine.catalog();
        let def = catalog.sequences.values().find(|d| d.id == id).cloned().ok_or_else(none)?;
        drop(catalog);
        self.note(&def, v);
        Ok(v)
    }

    fn setval(&self, name: &str, value: i64, called: bool) -> SqlResult<i64> {
        let def = self.sequence(name)?;
        if value < def.min || value > def.max {
            return Err(SqlError::new(
                "22003",
                format!("setval: value {value} is out of bounds for sequence \"{}\" ({}..{})", def.name, def.min, def.max),
            ));
        }
        if let Some(st) = self.session().restarted.get_mut(&def.id) {
            *st = SeqValue { last_value: value, is_called: called };
        }
        if self.replay.is_some() {
            // The new state was recorded by a transaction of its own, which the replay checks apart.
            if called {
                self.session().currval.insert(def.id, value);
            }
            return Ok(value);
        }
        self.engine.sequences.set(&self.engine.ledger, &def, SeqValue { last_value: value, is_called: called }, self.user)?;
        if called {
            self.session().currval.insert(def.id, value);
        }
        Ok(value)
    }

    fn random_uuid(&self) -> [u8; 16] {
        let replayed = self.replay.as_ref().and_then(|r| r.lock().expect("replay lock is never poisoned").random_uuids.pop_front());
        // A replay that runs out of recorded UUIDs draws a fresh one, which then differs from the
        // recorded entry and is reported there.
        let u = replayed.and_then(|t| match Value::parse(&t, DataType::Uuid) {
            Ok(Value::Uuid(u)) => Some(u),
            _ => None,
        });
        let u = u.unwrap_or_else(random_uuid);
        self.drawn
            .lock()
            .expect("drawn lock is never poisoned")
            .random_uuids
            .push(Value::Uuid(u).to_text(DataType::Uuid).unwrap_or_default());
        u
    }

    fn rowid(&self, table: u32) -> SqlResult<i64> {
        let name = match self.engine.catalog().table_by_id(table) {
            Some(t) => format!("{}.{}", t.name, crate::sql::catalog::ROWID),
            None => return Err(SqlError::new("XX000", format!("no table with id {table}"))),
        };
        // The counter's state shares the table's id (ids are never reused); blocks of 1024 values
        // keep bulk loads from recording a high-water mark every 32 rows.
        let def = SequenceDef {
            id: table,
            name,
            ty: DataType::Int8,
            increment: 1,
            min: 1,
            max: i64::MAX,
            start: 1,
            cache: 1024,
            cycle: false,
            owned_by: None,
            identity: None,
        };
        let v = match self.replayed_value(&def.name) {
            Some(v) => v?,
            None => self.engine.sequences.nextval(&self.engine.ledger, &def, self.user)?,
        };
        self.note(&def, v);
        Ok(v)
    }

    fn serial_sequence(&self, table: &str, column: &str) -> SqlResult<Option<String>> {
        let t = relation_name(table);
        let catalog = self.engine.catalog();
        // A view, an index or a sequence owns no sequence (PostgreSQL answers NULL for them too).
        if !catalog.tables.contains_key(&t)
            && (catalog.views.contains_key(&t)
                || catalog.sequences.contains_key(&t)
                || catalog.index(&t).is_some()
                || catalog.tables.values().any(|d| !d.primary_key.is_empty() && format!("{}_pkey", d.name) == t))
        {
            return Ok(None);
        }
        let def = catalog.table(&t)?;
        // The column name is taken literally (PostgreSQL does not fold its case).
        let c = column.to_string();
        if def.column(&c).is_none() {
            return Err(SqlError::new("42703", format!("column \"{c}\" of relation \"{t}\" does not exist")));
        }
        Ok(catalog.owned_sequence(def.id, &c).map(|s| format!("public.{}", super::super::pg_catalog::quote_ident(&s.name))))
    }
}

/// A version 4 (random) UUID.
pub fn random_uuid() -> [u8; 16] {
    let mut u = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut u);
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

// ---- DDL ------------------------------------------------------------------------------------------

impl Engine {
    /// CREATE TABLE with SERIAL or identity columns: rewrite each into a plain integer column with a
    /// `nextval` default (SERIAL) or an identity flag, and define its owned sequence. Returns the
    /// rewritten statement and the sequences (ids assigned later), with their column names.
    pub(crate) fn serial_columns(&self, ct: &ast::CreateTable, table: &str) -> SqlResult<(ast::CreateTable, Vec<(String, SequenceDef)>)> {
        let mut ct = ct.clone();
        let mut seqs = Vec::new();
        let catalog = self.catalog();
        let taken = |n: &str, seqs: &Vec<(String, SequenceDef)>| {
            catalog.tables.contains_key(n)
                || catalog.sequences.contains_key(n)
                || catalog.index(n).is_some()
                || n == table
                || seqs.iter().any(|(_, s)| s.name == n)
        };
        for c in &mut ct.columns {
            let cname = normalize_ident(&c.name);
            let serial = match &c.data_type {
                ast::DataType::Custom(name, _) => match name.to_string().to_ascii_lowercase().as_str() {
                    "serial" | "serial4" => Some(DataType::Int4),
                    "bigserial" | "serial8" => Some(DataType::Int8),
                    "smallserial" | "serial2" => Some(DataType::Int2),
                    _ => None,
                },
                _ => None,
            };
            let identity = c.options.iter().position(|o| {
                matches!(
                    &o.option,
                    ast::ColumnOption::Generated {
                        generated_as: ast::GeneratedAs::Always | ast::GeneratedAs::ByDefault,
                        generation_expr: None,
                        ..
                    }
                )
            });
            if serial.is_none() && identity.is_none() {
                continue;
            }
            let base = format!("{table}_{cname}_seq");
            let mut name = base.clone();
            let mut n = 0;
            while taken(&name, &seqs) {
                n += 1;
                name = format!("{base}{n}");
            }
            let mut opts = SeqOptions::default();
            if let Some(ty) = serial {
                if identity.is_some() {
                    return Err(SqlError::syntax(format!(
                        "both default and identity specified for column \"{cname}\" of table \"{table}\""
                    )));
                }
                c.data_type = match ty {
                    DataType::Int2 => ast::DataType::SmallInt(None),
                    DataType::Int4 => ast::DataType::Integer(None),
                    _ => ast::DataType::BigInt(None),
                };
                opts.ty = Some(ty);
                c.options.push(ast::ColumnOptionDef { name: None, option: ast::ColumnOption::NotNull });
                let default = crate::sql::parse_expr(&format!("nextval('{}'::regclass)", name.replace('\'', "''")))?;
                c.options.push(ast::ColumnOptionDef { name: None, option: ast::ColumnOption::Default(default) });
                let mut def = opts.apply(0, &name, None)?;
                def.owned_by = Some((0, cname.clone()));
                seqs.push((cname, def));
            } else if let Some(i) = identity {
                let ty = DataType::from_ast(&c.data_type)?;
                if !ty.is_integer() {
                    return Err(SqlError::new("22023", "identity column type must be smallint, integer, or bigint"));
                }
                let ast::ColumnOption::Generated { generated_as, sequence_options, .. } = c.options.remove(i).option else {
                    unreachable!("found above")
                };
                let mut o = SeqOptions::parse(sequence_options.as_deref().unwrap_or(&[]))?;
                o.ty = Some(ty);
                c.options.push(ast::ColumnOptionDef { name: None, option: ast::ColumnOption::NotNull });
                let mut def = o.apply(0, &name, None)?;
                def.owned_by = Some((0, cname.clone()));
                def.identity = Some(if generated_as == ast::GeneratedAs::Always { "a" } else { "d" }.to_string());
                seqs.push((cname, def));
            }
        }
        Ok((ct, seqs))
    }

    /// CREATE SEQUENCE, ALTER SEQUENCE, DROP SEQUENCE (the caller holds the DDL lock).
    pub(crate) fn sequence_ddl(&self, txn: &mut Txn, stmt: &Statement) -> SqlResult<Outcome> {
        match stmt {
            Statement::CreateSequence { temporary: false, if_not_exists, name, sequence_options } => {
                let name = object_name(name);
                let exists = {
                    let c = self.catalog();
                    c.sequences.contains_key(&name) || c.tables.contains_key(&name) || c.index(&name).is_some()
                };
                if exists {
                    if *if_not_exists {
                        return Ok(Outcome::Command("CREATE SEQUENCE".into()));
                    }
                    return Err(SqlError::new("42P07", format!("relation \"{name}\" already exists")));
                }
                let opts = SeqOptions::parse(sequence_options)?;
                if opts.restart.is_some() {
                    return Err(SqlError::syntax("RESTART is an option of ALTER SEQUENCE"));
                }
                let id = self.catalog().next_table_id;
                let mut def = opts.apply(id, &name, None)?;
                def.owned_by = self.owner_of(opts.owned_by.as_ref())?;
                Self::write_entries(txn, vec![def.entry()]);
                self.update_catalog(|c| {
                    c.next_table_id = c.next_table_id.max(id + 1);
                    c.sequences.insert(name, def);
                });
                Ok(Outcome::Command("CREATE SEQUENCE".into()))
            }
            // ALTER SEQUENCE, carried as a temporary CREATE SEQUENCE (see `mod.rs`); `if_not_exists`
            // is its IF EXISTS.
            Statement::CreateSequence { temporary: true, if_not_exists: if_exists, name, sequence_options } => {
                let name = object_name(name);
                let Some(old) = self.catalog().sequences.get(&name).cloned() else {
                    if *if_exists {
                        return Ok(Outcome::Command("ALTER SEQUENCE".into()));
                    }
                    return Err(SqlError::undefined_table(&name));
                };
                let opts = SeqOptions::parse(sequence_options)?;
                let mut def = opts.apply(old.id, &name, Some(&old))?;
                if opts.owned_by.is_some() {
                    def.owned_by = self.owner_of(opts.owned_by.as_ref())?;
                }
                // Transactional, as in PostgreSQL: the definition and a restarted state are writes of
                // the transaction. A restarted state is the transaction's own until it commits (its
                // nextval calls draw from it, and the commit records where they left it).
                if def != old {
                    Self::write_entries(txn, vec![def.entry()]);
                }
                if let Some(r) = opts.restart {
                    let v = SeqValue { last_value: r.unwrap_or(def.start), is_called: false };
                    txn.seq_session.lock().expect("session sequence lock is never poisoned").restarted.insert(def.id, v);
                    Self::write_entries(txn, vec![value_entry(def.id, v)]);
                }
                self.update_catalog(|c| c.sequences.insert(name, def));
                Ok(Outcome::Command("ALTER SEQUENCE".into()))
            }
            Statement::Drop { object_type: ast::ObjectType::Sequence, if_exists, names, .. } => {
                let mut entries = Vec::new();
                let mut dropped = Vec::new();
                for n in names {
                    let name = object_name(n);
                    let catalog = self.catalog();
                    let Some(def) = catalog.sequences.get(&name) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::new("42P01", format!("sequence \"{name}\" does not exist")));
                    };
                    if let (Some((table, col)), Some(_)) = (&def.owned_by, &def.identity) {
                        let t = catalog.table_by_id(*table).map(|t| t.name.clone()).unwrap_or_default();
                        return Err(SqlError::new(
                            "2BP01",
                            format!("cannot drop sequence {name} because column {col} of table {t} requires it"),
                        ));
                    }
                    let needle = format!("nextval('{}'", name.replace('\'', "''"));
                    for t in catalog.tables.values() {
                        if let Some(c) = t.columns.iter().find(|c| c.default.as_ref().is_some_and(|d| d.contains(&needle))) {
                            return Err(SqlError::new(
                                "2BP01",
                                format!("cannot drop sequence {name} because other objects depend on it (default value for column {} of table {} depends on it)", c.name, t.name),
                            ));
                        }
                    }
                    entries.push(Entry::delete(SYS_SEQUENCES, def.id.to_be_bytes().to_vec()));
                    dropped.push(name);
                }
                if !entries.is_empty() {
                    Self::write_entries(txn, entries);
                    self.update_catalog(|c| {
                        for n in dropped {
                            c.sequences.remove(&n);
                        }
                    });
                }
                Ok(Outcome::Command("DROP SEQUENCE".into()))
            }
            _ => unreachable!("sequence_ddl is called for sequence statements only"),
        }
    }

    /// `OWNED BY t.c` (None: `OWNED BY NONE` or no clause).
    fn owner_of(&self, owner: Option<&Option<ast::ObjectName>>) -> SqlResult<Option<(u32, String)>> {
        let Some(Some(n)) = owner else { return Ok(None) };
        let parts: Vec<String> = n.0.iter().filter_map(|p| p.as_ident().map(normalize_ident)).collect();
        let [.., t, c] = parts.as_slice() else {
            return Err(SqlError::new("42601", "invalid OWNED BY option: specify OWNED BY table.column or OWNED BY NONE"));
        };
        let catalog = self.catalog();
        let def = catalog.table(t)?;
        if def.column(c).is_none() {
            return Err(SqlError::new("42703", format!("column \"{c}\" of relation \"{t}\" does not exist")));
        }
        Ok(Some((def.id, c.clone())))
    }
}
