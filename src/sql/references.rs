//! Item references (docs/SQL.md, "References"): rows of the system table `vouch_references`
//! (table 8), written by ordinary INSERT / UPDATE / DELETE and stored as REFERENCE entries
//! (docs/FORMAT.md) that point at a row of another table, at its latest version or pinned at a tx.
//!
//! A reference row is `(name, target_table, target_key text[], at_tx)`. Its entry keeps the row as its
//! value and, in the entry's reference field, the target's table id, encoded primary key and tx (0 for
//! "latest"), so a verifier reads the pointer from the proven entry itself. The table and key are
//! resolved from the row when the entry is built (`write_entry`, at commit and in replay: the same
//! catalog gives the same bytes); a statement that writes a reference to a row that does not exist
//! fails at its end (`check_references`, 23503). Reads: `deref(…)` here, `verified_deref(…)` in
//! proofs.rs.

use super::*;
use crate::ledger::format::{Reference, FLAG_REFERENCE};
use crate::sql::catalog::{FIRST_USER_TABLE, REFERENCES_TABLE, SYS_REFERENCES};

/// The key of the reference named `name` in system table 8.
pub(crate) fn reference_key(name: &str) -> SqlResult<Vec<u8>> {
    encode_key(&[Value::Text(name.to_string())])
}

fn invalid(msg: String) -> SqlError {
    SqlError::new("22023", msg)
}

/// A reference as read by a transaction: where it points, and the tx that wrote it (0: this
/// transaction, not committed yet).
pub(crate) struct Resolved {
    pub name: String,
    pub target: Reference,
    pub written_in: u64,
    /// The committed entry it was read from (None for this transaction's own write).
    pub version: Option<crate::ledger::Version>,
}

impl Engine {
    /// The definition of `vouch_references` (absent only in a database that had a user table of that
    /// name before references existed).
    pub(crate) fn references_def(&self, catalog: &Catalog) -> SqlResult<TableDef> {
        match catalog.table_by_id(SYS_REFERENCES) {
            Some(t) => Ok(t.clone()),
            None => Err(SqlError::new(
                "0A000",
                format!("references are not available: this database has a user table named \"{REFERENCES_TABLE}\""),
            )),
        }
    }

    /// Where a `vouch_references` row (decoded: name, target_table, target_key, at_tx) points.
    pub(crate) fn reference_target(&self, catalog: &Catalog, row: &[Value]) -> SqlResult<(TableDef, Reference)> {
        let (Some(Value::Text(name)), Some(Value::Text(table)), Some(Value::Array(key)), Some(at)) =
            (row.first(), row.get(1), row.get(2), row.get(3))
        else {
            return Err(invalid("a reference needs a name, a target_table and a target_key".into()));
        };
        let t = catalog
            .tables
            .get(table)
            .or_else(|| catalog.tables.get(&table.to_lowercase()))
            .ok_or_else(|| SqlError::new("42P01", format!("reference \"{name}\": relation \"{table}\" does not exist")))?;
        if t.id < FIRST_USER_TABLE {
            return Err(invalid(format!("reference \"{name}\": a reference points at a row of a user table, not \"{}\"", t.name)));
        }
        if key.len() != t.primary_key.len() {
            return Err(invalid(format!(
                "reference \"{name}\": target_key has {} value(s), but the primary key of \"{}\" has {} column(s)",
                key.len(),
                t.name,
                t.primary_key.len()
            )));
        }
        let vals = key
            .iter()
            .zip(&t.primary_key)
            .map(|(v, &i)| {
                let col = &t.columns[i];
                match v {
                    Value::Null => Err(invalid(format!("reference \"{name}\": target_key must not hold NULL"))),
                    Value::Text(s) => col.fit(Value::parse(s, col.ty)?),
                    other => col.fit(other.clone().cast(col.ty)?),
                }
            })
            .collect::<SqlResult<Vec<_>>>()?;
        let tx = match at {
            Value::Null => 0,
            Value::Int(n) if *n >= 1 => *n as u64,
            other => {
                let n = other.to_text(DataType::Int8).unwrap_or_default();
                return Err(invalid(format!("reference \"{name}\": at_tx must be a tx of the log (1 or more), not {n}")));
            }
        };
        Ok((t.clone(), Reference { table: t.id, key: encode_key(&vals)?, tx }))
    }

    /// The entry a committed write becomes: a reference's row also carries its target.
    pub(crate) fn write_entry(&self, catalog: &Catalog, table: u32, key: Vec<u8>, row: Option<Vec<u8>>) -> SqlResult<Entry> {
        Ok(match row {
            None => Entry::delete(table, key),
            Some(value) if table == SYS_REFERENCES => {
                let def = self.references_def(catalog)?;
                let (_, reference) = self.reference_target(catalog, &self.decode(&def, &value, 0)?)?;
                Entry { table, key, value, flags: FLAG_REFERENCE, reference: Some(reference) }
            }
            Some(value) => Entry::put(table, key, value),
        })
    }

    /// At the end of a writing statement: every reference it wrote points at a row that exists (at
    /// its pinned tx, or as this transaction sees it).
    pub(super) fn check_references(&self, txn: &Txn, before: &BTreeMap<WriteKey, Option<Vec<u8>>>) -> SqlResult<()> {
        let mut written = txn.writes.range((SYS_REFERENCES, Vec::new())..(SYS_REFERENCES + 1, Vec::new())).peekable();
        if written.peek().is_none() {
            return Ok(());
        }
        let catalog = self.catalog().clone();
        let def = self.references_def(&catalog)?;
        for (k, row) in written {
            let Some(bytes) = row else { continue };
            if before.get(k) == Some(row) {
                continue;
            }
            let vals = self.decode(&def, bytes, 0)?;
            let (target, r) = self.reference_target(&catalog, &vals)?;
            let exists = if r.tx == 0 {
                self.get_row(&target, txn, &r.key)?.is_some()
            } else {
                if r.tx > txn.snapshot {
                    return Err(invalid(format!(
                        "reference \"{}\": at_tx {} is not in the log this transaction sees (tx 1 to {})",
                        vals[0].to_text(DataType::Text).unwrap_or_default(),
                        r.tx,
                        txn.snapshot
                    )));
                }
                self.ledger.get_as_of(target.id, &r.key, r.tx)?.is_some_and(|v| !v.entry.is_delete())
            };
            if !exists {
                let Value::Array(key) = &vals[2] else { unreachable!("reference_target checked the key") };
                let key: Vec<String> = key.iter().map(|v| v.to_text(DataType::Text).unwrap_or_default()).collect();
                let at = if r.tx == 0 { String::new() } else { format!(" as of tx {}", r.tx) };
                return Err(SqlError::new(
                    "23503",
                    format!(
                        "reference \"{}\" points at a row that does not exist{at}: Key ({})=({}) of table \"{}\"",
                        vals[0].to_text(DataType::Text).unwrap_or_default(),
                        target.primary_key.iter().map(|&i| target.columns[i].name.as_str()).collect::<Vec<_>>().join(", "),
                        key.join(", "),
                        target.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The committed reference `name` as of the newest tx (for planning `deref('name')`).
    pub(crate) fn latest_reference(&self, name: &str) -> SqlResult<Option<Reference>> {
        match self.ledger.get_latest(SYS_REFERENCES, &reference_key(name)?)? {
            Some(v) if !v.entry.is_delete() => Ok(Some(stored_target(&v.entry, v.tx)?)),
            _ => Ok(None),
        }
    }

    /// The reference `name` as `txn` sees it (its own writes included unless `committed_only`).
    pub(crate) fn resolve_reference(&self, txn: &Txn, name: &str, committed_only: bool) -> SqlResult<Option<Resolved>> {
        let key = reference_key(name)?;
        if let Some(w) = txn.writes.get(&(SYS_REFERENCES, key.clone())) {
            if committed_only {
                return Err(SqlError::new(
                    "55000",
                    format!("this transaction has written the reference \"{name}\": a reference is proven only once it is committed"),
                ));
            }
            let Some(bytes) = w else { return Ok(None) };
            let catalog = self.catalog();
            let def = self.references_def(&catalog)?;
            let (_, target) = self.reference_target(&catalog, &self.decode(&def, bytes, 0)?)?;
            return Ok(Some(Resolved { name: name.to_string(), target, written_in: 0, version: None }));
        }
        txn.note_read(SYS_REFERENCES);
        match self.ledger.get_as_of(SYS_REFERENCES, &key, txn.snapshot)? {
            Some(v) if !v.entry.is_delete() => {
                Ok(Some(Resolved { name: name.to_string(), target: stored_target(&v.entry, v.tx)?, written_in: v.tx, version: Some(v) }))
            }
            _ => Ok(None),
        }
    }

    /// The table a reference points at must be the one the query was planned for.
    pub(crate) fn check_reference_table(&self, r: &Resolved, planned: &TableDef, fixed: bool) -> SqlResult<()> {
        if r.target.table == planned.id {
            return Ok(());
        }
        let other = self.catalog().table_by_id(r.target.table).map_or_else(|| format!("table {}", r.target.table), |t| t.name.clone());
        if fixed {
            // PostgreSQL's error when a prepared statement's result columns would change.
            Err(SqlError::new(
                "0A000",
                format!("cached plan must not change result type: reference \"{}\" now points at \"{other}\"", r.name),
            ))
        } else {
            Err(invalid(format!("reference \"{}\" points at table \"{other}\", not \"{}\"", r.name, planned.name)))
        }
    }

    /// The rows of `deref(…)`: the target row's columns, `_tx` (the tx of the version read; 0 for a
    /// row this transaction wrote) and `_ref_tx` (the tx that wrote the reference; 0 likewise).
    pub(crate) fn deref_rows(&self, table: &TableDef, name: &Expr, fixed: bool, txn: &Txn, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        let Value::Text(name) = name.eval(&[], env)?.cast(DataType::Text)? else { return Ok(vec![]) };
        let catalog = self.catalog().clone();
        self.may_read(env.user, &self.references_def(&catalog)?)?;
        self.may_read(env.user, table)?;
        let Some(r) = self.resolve_reference(txn, &name, false)? else { return Ok(vec![]) };
        self.check_reference_table(&r, table, fixed)?;
        txn.note_read(table.id);
        let row = if r.target.tx == 0 {
            self.get_row(table, txn, &r.target.key)?
        } else {
            match self.ledger.get_as_of(table.id, &r.target.key, r.target.tx)? {
                Some(v) if !v.entry.is_delete() => Some(self.decode(table, &v.entry.value, v.tx)?),
                _ => None,
            }
        };
        Ok(row
            .map(|mut row| {
                row.truncate(table.columns.len() + 1); // the columns and _tx
                row.push(Value::Int(r.written_in as i64));
                row
            })
            .into_iter()
            .collect())
    }
}

/// The target a stored reference entry names.
pub(crate) fn stored_target(e: &Entry, tx: u64) -> SqlResult<Reference> {
    e.reference
        .clone()
        .ok_or_else(|| SqlError::new("XX001", format!("the entry of tx {tx} in {REFERENCES_TABLE} is not a reference entry")))
}
