//! The catalog: table definitions and users, stored in the ledger itself (system tables), so every schema
//! change is a ledger transaction with its own proof. The in-memory copy is rebuilt from the ledger on
//! start and updated after each committed DDL.

use super::error::{SqlError, SqlResult};
use super::value::DataType;
use crate::ledger::{Entry, Ledger};
use std::collections::BTreeMap;

/// System table holding table definitions: key = table id (u32, big-endian), value = JSON `TableDef`.
pub const SYS_TABLES: u32 = 1;
/// System table holding users: key = user name, value = JSON `UserDef`.
pub const SYS_USERS: u32 = 2;
/// System table holding sequence definitions: key = sequence id (u32, big-endian), value = JSON `SequenceDef`.
pub const SYS_SEQUENCES: u32 = 3;
/// System table holding sequence states (high-water marks): key = sequence id, value = JSON
/// `{"last_value": n, "is_called": b}`.
pub const SYS_SEQUENCE_VALUES: u32 = 4;
/// System table 5: view definitions (JSON `ViewDef`), keyed by the view's id (4 bytes, big-endian).
pub const SYS_VIEWS: u32 = 5;

/// A view: its query's SQL text and the columns it had when it was created.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ViewDef {
    pub id: u32,
    pub name: String,
    pub sql: String,
    pub columns: Vec<(String, DataType)>,
    /// The role that created the view (None: created before view owners were recorded; superusers
    /// own it). Readers need SELECT on the view; the tables it reads are checked as its owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// GRANTs on the view, as a table's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl ViewDef {
    pub fn entry(&self) -> Entry {
        Entry::put(SYS_VIEWS, self.id.to_be_bytes().to_vec(), serde_json::to_vec(self).expect("a view definition always serialises"))
    }
}
/// First id given to a user table.
pub const FIRST_USER_TABLE: u32 = 1000;

/// System table 8: item references (docs/SQL.md, "References"), readable and writable in SQL as the
/// table `vouch_references`. Its rows are written as REFERENCE entries (docs/FORMAT.md) that point at
/// another table's row.
pub const SYS_REFERENCES: u32 = 8;
/// The SQL name of system table 8.
pub const REFERENCES_TABLE: &str = "vouch_references";

/// The definition of `vouch_references` (every database has it; it is in the catalog without a
/// stored definition until a GRANT on it stores one). Superusers own it.
pub fn references_table() -> TableDef {
    let mut name = ColumnDef::new("name".into(), DataType::Text);
    name.not_null = true;
    let mut target_table = ColumnDef::new("target_table".into(), DataType::Text);
    target_table.not_null = true;
    let mut target_key = ColumnDef::new("target_key".into(), DataType::Array(&DataType::Text));
    target_key.not_null = true;
    TableDef {
        id: SYS_REFERENCES,
        name: REFERENCES_TABLE.into(),
        version: 1,
        columns: vec![name, target_table, target_key, ColumnDef::new("at_tx".into(), DataType::Int8)],
        primary_key: vec![0],
        indexes: vec![],
        checks: vec![],
        foreign_keys: vec![],
        comments: BTreeMap::new(),
        append_only: false,
        owner: None,
        grants: BTreeMap::new(),
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ColumnDef {
    pub name: String,
    pub ty: DataType,
    pub not_null: bool,
    /// The DEFAULT expression as SQL text, re-parsed when used.
    pub default: Option<String>,
    /// For a column added by ALTER TABLE: the value (text form) that rows written before it read as,
    /// PostgreSQL's "missing value". Old rows are never rewritten.
    #[serde(default)]
    pub missing: Option<String>,
    /// Not visible to SQL by position or `*`: the implicit `_rowid` key of a table created without a
    /// primary key (named, so it can be selected), or a dropped column (renamed to PostgreSQL's
    /// `........pg.dropped.N........`, so nothing can name it). Rows keep a value in its position.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden: bool,
    /// `NUMERIC(precision, scale)`: values are rounded to the scale when written, and a value with
    /// more integer digits than precision − scale is 22003 (`atttypmod` reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<(u32, u32)>,
}

/// The implicit key column of a table created without a primary key.
pub const ROWID: &str = "_rowid";

impl ColumnDef {
    pub fn new(name: String, ty: DataType) -> ColumnDef {
        ColumnDef { name, ty, not_null: false, default: None, missing: None, hidden: false, numeric: None }
    }

    /// A column of a type written in SQL (which may carry NUMERIC's precision and scale).
    pub fn from_ast(name: String, t: &sqlparser::ast::DataType) -> crate::sql::SqlResult<ColumnDef> {
        let mut c = ColumnDef::new(name, DataType::from_ast(t)?);
        c.numeric = crate::sql::value::numeric_typmod(t)?;
        Ok(c)
    }

    /// The value as this column stores it: NUMERIC(p, s) rounded to its scale, within its precision.
    pub fn fit(&self, v: crate::sql::Value) -> crate::sql::SqlResult<crate::sql::Value> {
        match (self.numeric, v) {
            (Some((p, s)), crate::sql::Value::Numeric(d)) => crate::sql::value::fit_numeric(d, p, s).map(crate::sql::Value::Numeric),
            (_, v) => Ok(v),
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableDef {
    pub id: u32,
    pub name: String,
    /// Bumped by every schema change; rows record the version they were written under.
    pub version: u32,
    pub columns: Vec<ColumnDef>,
    /// Indices into `columns`, in key order.
    pub primary_key: Vec<usize>,
    /// Secondary indexes.
    #[serde(default)]
    pub indexes: Vec<IndexDef>,
    #[serde(default)]
    pub checks: Vec<CheckDef>,
    #[serde(default)]
    pub foreign_keys: Vec<ForeignKeyDef>,
    /// COMMENT ON TABLE (key "") and COMMENT ON COLUMN (key: the column name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub comments: BTreeMap<String, String>,
    /// `WITH (append_only = true)`: a key is written once and never replaced or deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub append_only: bool,
    /// The role that created the table (None: created before owners were recorded; superusers own it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Privileges granted on the table: role (or `public`) → SELECT, INSERT, UPDATE, DELETE, TRUNCATE.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// A CHECK constraint: its name and its expression's SQL text.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckDef {
    pub name: String,
    pub expr: String,
}

/// What happens to referencing rows when the referenced row is deleted or its key updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FkAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl FkAction {
    /// The letter pg_constraint uses (`confdeltype`, `confupdtype`).
    pub fn code(self) -> &'static str {
        match self {
            FkAction::NoAction => "a",
            FkAction::Restrict => "r",
            FkAction::Cascade => "c",
            FkAction::SetNull => "n",
            FkAction::SetDefault => "d",
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            FkAction::NoAction => "NO ACTION",
            FkAction::Restrict => "RESTRICT",
            FkAction::Cascade => "CASCADE",
            FkAction::SetNull => "SET NULL",
            FkAction::SetDefault => "SET DEFAULT",
        }
    }
}

/// A FOREIGN KEY constraint: `columns` of this table reference `ref_columns` of table `ref_table`
/// (its primary key or a unique index), matched as MATCH SIMPLE (a NULL in the key skips the check).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ForeignKeyDef {
    pub name: String,
    pub columns: Vec<usize>,
    pub ref_table: u32,
    pub ref_columns: Vec<usize>,
    pub on_delete: FkAction,
    pub on_update: FkAction,
}

/// A secondary index: derived entries in the ledger's `sec` column family, written with each commit.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IndexDef {
    /// Unique among tables and indexes; the first 4 bytes of every entry of this index.
    pub id: u32,
    pub name: String,
    /// Indices into the table's columns, in index order.
    pub columns: Vec<usize>,
    pub unique: bool,
    /// Created by a UNIQUE constraint (shown as a constraint in `pg_constraint` and `\d`).
    #[serde(default)]
    pub constraint: bool,
}

impl TableDef {
    /// Decode a stored definition (system table 1) and check that every column position it holds
    /// names a column, so that no later use of it can index out of range: the bytes come from the
    /// store, and a definition changed on disk must be refused, not panic a connection.
    pub fn decode(bytes: &[u8]) -> Result<TableDef, String> {
        let t: TableDef = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        t.check_positions()?;
        Ok(t)
    }

    fn check_positions(&self) -> Result<(), String> {
        let n = self.columns.len();
        let in_range = |what: &str, cols: &[usize]| -> Result<(), String> {
            match cols.iter().find(|&&c| c >= n) {
                Some(c) => Err(format!("table \"{}\": {what} names column position {c}, but the table has {n} columns", self.name)),
                None if cols.is_empty() => Err(format!("table \"{}\": {what} names no column", self.name)),
                None => Ok(()),
            }
        };
        in_range("the primary key", &self.primary_key)?;
        for i in &self.indexes {
            in_range(&format!("index \"{}\"", i.name), &i.columns)?;
        }
        for f in &self.foreign_keys {
            in_range(&format!("foreign key \"{}\"", f.name), &f.columns)?;
            if f.ref_columns.len() != f.columns.len() {
                return Err(format!(
                    "table \"{}\": foreign key \"{}\" has {} columns and {} referenced columns",
                    self.name,
                    f.name,
                    f.columns.len(),
                    f.ref_columns.len()
                ));
            }
        }
        Ok(())
    }

    /// Created without a primary key: rows are keyed by the hidden `_rowid`.
    pub fn keyless(&self) -> bool {
        self.primary_key.iter().any(|&i| self.columns[i].hidden)
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn entry(&self) -> Entry {
        Entry::put(SYS_TABLES, self.id.to_be_bytes().to_vec(), serde_json::to_vec(self).expect("a table definition always serialises"))
    }
}

/// A sequence (CREATE SEQUENCE, or the one a SERIAL or identity column owns). Its id is a relation id,
/// from the same counter as tables and indexes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SequenceDef {
    pub id: u32,
    pub name: String,
    /// smallint, integer or bigint.
    pub ty: DataType,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub start: i64,
    pub cache: i64,
    pub cycle: bool,
    /// The column that owns it (table id, column name): dropped with its table.
    #[serde(default)]
    pub owned_by: Option<(u32, String)>,
    /// For an identity column's sequence: `"a"` (GENERATED ALWAYS) or `"d"` (BY DEFAULT).
    #[serde(default)]
    pub identity: Option<String>,
}

/// The statement text recorded with a role change, written by the server outside a SQL transaction
/// (never with the password); the replay audit checks the role's entry against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleRecord {
    /// `-- create role r [SUPERUSER]`.
    Create { superuser: bool },
    /// `-- set password of role r`.
    Password,
    /// `DROP ROLE r`.
    Drop,
}

impl RoleRecord {
    pub fn text(self, role: &str) -> String {
        match self {
            RoleRecord::Create { superuser: false } => format!("-- create role {role}"),
            RoleRecord::Create { superuser: true } => format!("-- create role {role} SUPERUSER"),
            RoleRecord::Password => format!("-- set password of role {role}"),
            RoleRecord::Drop => format!("DROP ROLE {role}"),
        }
    }
}

/// A login role with its SCRAM-SHA-256 verifier (never the password).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserDef {
    pub name: String,
    pub superuser: bool,
    pub salt: String,
    pub iterations: u32,
    pub stored_key: String,
    pub server_key: String,
    /// Public keys (PEM) whose signatures this role's transactions may carry (docs/PROVENANCE.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<String>,
    /// Every transaction of this role that writes must carry a valid client signature.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_signature: bool,
}

impl UserDef {
    pub fn entry(&self) -> Entry {
        Entry::put(SYS_USERS, self.name.as_bytes().to_vec(), serde_json::to_vec(self).expect("a user always serialises"))
    }
}

#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: BTreeMap<String, TableDef>,
    pub users: BTreeMap<String, UserDef>,
    pub sequences: BTreeMap<String, SequenceDef>,
    pub views: BTreeMap<String, ViewDef>,
    /// Allowlist policies by name (system table 6).
    pub policies: BTreeMap<String, super::policy::PolicyDef>,
    pub next_table_id: u32,
}

impl Catalog {
    /// Load the catalog as of the ledger's head.
    pub fn load(ledger: &Ledger) -> SqlResult<Catalog> {
        let snapshot = ledger.head().size;
        let mut c = Catalog { next_table_id: FIRST_USER_TABLE, ..Default::default() };
        for (_, v) in ledger.scan_table(SYS_TABLES, snapshot, None)? {
            let t = TableDef::decode(&v.entry.value).map_err(|e| SqlError::new("XX001", format!("catalog entry in tx {}: {e}", v.tx)))?;
            c.next_table_id = c.next_table_id.max(t.id + 1);
            for i in &t.indexes {
                c.next_table_id = c.next_table_id.max(i.id + 1);
            }
            c.tables.insert(t.name.clone(), t);
        }
        // A foreign key's referenced columns must exist in the table it references.
        for t in c.tables.values() {
            for f in &t.foreign_keys {
                if let Some(parent) = c.tables.values().find(|p| p.id == f.ref_table) {
                    if let Some(col) = f.ref_columns.iter().find(|&&col| col >= parent.columns.len()) {
                        return Err(SqlError::new(
                            "XX001",
                            format!("catalog: foreign key \"{}\" of table \"{}\" references column position {col} of \"{}\", which has {} columns", f.name, t.name, parent.name, parent.columns.len()),
                        ));
                    }
                }
            }
        }
        // `vouch_references` has no stored definition until a GRANT on it (a database that already had
        // a user table of that name keeps it, and has no references).
        if !c.tables.contains_key(REFERENCES_TABLE) {
            c.tables.insert(REFERENCES_TABLE.into(), references_table());
        }
        for (_, v) in ledger.scan_table(SYS_USERS, snapshot, None)? {
            let u: UserDef =
                serde_json::from_slice(&v.entry.value).map_err(|e| SqlError::new("XX001", format!("user entry in tx {}: {e}", v.tx)))?;
            c.users.insert(u.name.clone(), u);
        }
        for (_, v) in ledger.scan_table(SYS_SEQUENCES, snapshot, None)? {
            let s: SequenceDef = serde_json::from_slice(&v.entry.value)
                .map_err(|e| SqlError::new("XX001", format!("sequence entry in tx {}: {e}", v.tx)))?;
            c.sequences.insert(s.name.clone(), s);
        }
        for (_, v) in ledger.scan_table(SYS_VIEWS, snapshot, None)? {
            let d: ViewDef =
                serde_json::from_slice(&v.entry.value).map_err(|e| SqlError::new("XX001", format!("view entry in tx {}: {e}", v.tx)))?;
            c.views.insert(d.name.clone(), d);
        }
        for (_, v) in ledger.scan_table(super::policy::SYS_POLICIES, snapshot, None)? {
            let p: super::policy::PolicyDef =
                serde_json::from_slice(&v.entry.value).map_err(|e| SqlError::new("XX001", format!("policy entry in tx {}: {e}", v.tx)))?;
            c.policies.insert(p.name.clone(), p);
        }
        for (k, _) in ledger.scan_table_all_keys(SYS_VIEWS)? {
            if let Ok(id) = <[u8; 4]>::try_from(k.as_slice()) {
                c.next_table_id = c.next_table_id.max(u32::from_be_bytes(id) + 1);
            }
        }
        for (k, _) in ledger.scan_table_all_keys(SYS_SEQUENCES)? {
            if let Ok(id) = <[u8; 4]>::try_from(k.as_slice()) {
                c.next_table_id = c.next_table_id.max(u32::from_be_bytes(id) + 1);
            }
        }
        // Ids are never reused: every version of every definition, dropped tables and indexes included,
        // keeps its ids reserved (index entries of a dropped index stay in the store).
        for (k, _) in ledger.scan_table_all_keys(SYS_TABLES)? {
            for v in ledger.history(SYS_TABLES, &k)? {
                if let Ok(t) = TableDef::decode(&v.entry.value) {
                    let last = t.indexes.iter().map(|i| i.id).chain([t.id]).max().unwrap_or(t.id);
                    c.next_table_id = c.next_table_id.max(last + 1);
                }
            }
            if let Ok(id) = <[u8; 4]>::try_from(k.as_slice()) {
                c.next_table_id = c.next_table_id.max(u32::from_be_bytes(id) + 1);
            }
        }
        Ok(c)
    }

    /// The tables users created (system tables such as `vouch_references` are not listed in
    /// `pg_class`, as PostgreSQL's own catalogs are not in `public`).
    pub fn user_tables(&self) -> impl Iterator<Item = &TableDef> {
        self.tables.values().filter(|t| t.id >= FIRST_USER_TABLE)
    }

    pub fn table_by_id(&self, id: u32) -> Option<&TableDef> {
        self.tables.values().find(|t| t.id == id)
    }

    /// The table that has an index of this name.
    pub fn index(&self, name: &str) -> Option<(&TableDef, &IndexDef)> {
        self.tables.values().find_map(|t| t.indexes.iter().find(|i| i.name == name).map(|i| (t, i)))
    }

    /// The sequence owned by a column (SERIAL, identity or OWNED BY).
    pub fn owned_sequence(&self, table: u32, column: &str) -> Option<&SequenceDef> {
        self.sequences.values().find(|s| s.owned_by.as_ref().is_some_and(|(t, c)| *t == table && c == column))
    }

    /// The identity sequence of a column, if it is an identity column.
    pub fn identity(&self, table: u32, column: &str) -> Option<&SequenceDef> {
        self.owned_sequence(table, column).filter(|s| s.identity.is_some())
    }

    pub fn table(&self, name: &str) -> SqlResult<&TableDef> {
        self.tables.get(name).ok_or_else(|| SqlError::undefined_table(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(json: serde_json::Value) -> Result<TableDef, String> {
        TableDef::decode(&serde_json::to_vec(&json).unwrap())
    }

    /// A stored definition whose column positions lie outside its columns (changed on disk, or written
    /// by a bug) is refused when the catalog loads, instead of panicking the first statement that uses
    /// it (`keyless()` indexed `columns` with the primary key's positions).
    #[test]
    fn a_definition_naming_a_missing_column_is_refused() {
        let col = serde_json::json!({"name": "id", "ty": "Int8", "not_null": true, "default": null});
        let table = |pk: serde_json::Value, indexes: serde_json::Value| serde_json::json!({"id": 100, "name": "t", "version": 1, "columns": [col], "primary_key": pk, "indexes": indexes});
        let good = def(table(serde_json::json!([0]), serde_json::json!([]))).expect("a sound definition decodes");
        assert!(!good.keyless());
        let e = def(table(serde_json::json!([1]), serde_json::json!([]))).unwrap_err();
        assert!(e.contains("the primary key names column position 1, but the table has 1 columns"), "{e}");
        assert!(def(table(serde_json::json!([]), serde_json::json!([]))).unwrap_err().contains("names no column"));
        let index = serde_json::json!([{"id": 101, "name": "t_x", "columns": [0, 7], "unique": false}]);
        assert!(def(table(serde_json::json!([0]), index)).unwrap_err().contains("index \"t_x\" names column position 7"));
    }
}
