//! CHECK and FOREIGN KEY constraints, enforced at the end of each writing statement (as PostgreSQL's
//! non-deferred constraint triggers are), over everything the statement wrote: new row versions are
//! checked (CHECK, and the referenced row exists), and removed or re-keyed rows that other tables
//! reference get their ON DELETE / ON UPDATE action, whose own writes are checked in turn.
//! A referencing row's parent key is locked with the statement's other locks (`Engine::lock_keys`),
//! so a concurrent delete of the parent waits for, or is waited on by, the child's transaction.

use super::{Engine, Txn, WriteKey};
use crate::sql::catalog::{FkAction, ForeignKeyDef, TableDef};
use crate::sql::error::{SqlError, SqlResult};
use crate::sql::expr::{Ctx, Env, Expr, ScopeCol};
use crate::sql::value::{encode_key, encode_row, DataType, Value};
use std::collections::{BTreeMap, HashMap};

/// A table's columns as an expression scope (rows carry `_tx` and `_commit_ts` after them).
fn scope(t: &TableDef) -> Vec<ScopeCol> {
    t.columns
        .iter()
        .map(|c| ScopeCol { qualifier: Some(t.name.clone()), name: c.name.clone(), ty: c.ty, hidden: false, origin: None, depth: 0 })
        .collect()
}

/// The columns a CHECK expression reads (`pg_constraint.conkey`), in table order; none if it does not
/// compile.
pub(crate) fn check_columns(t: &TableDef, sql: &str) -> Vec<usize> {
    match compile_check(t, sql) {
        Ok(e) => (0..t.columns.len()).filter(|&i| e.references(i)).collect(),
        Err(_) => vec![],
    }
}

/// Compile a CHECK expression against its table.
pub(super) fn compile_check(t: &TableDef, sql: &str) -> SqlResult<Expr> {
    let scope = scope(t);
    let mut params = vec![];
    let e = crate::sql::parse_expr(sql)?;
    Ok(Ctx { scope: &scope, params: &mut params, aggs: None, planner: None }.compile_as(&e, DataType::Bool)?.expr)
}

fn key_text(t: &TableDef, cols: &[usize], row: &[Value]) -> String {
    let names: Vec<&str> = cols.iter().map(|&c| t.columns[c].name.as_str()).collect();
    let vals: Vec<String> = cols.iter().map(|&c| row[c].to_text(t.columns[c].ty).unwrap_or_else(|| "NULL".into())).collect();
    format!("Key ({})=({})", names.join(", "), vals.join(", "))
}

impl Engine {
    /// Enforce CHECK and FOREIGN KEY constraints over what the statement changed (`txn.writes`
    /// against `before`), applying referential actions.
    pub(super) fn enforce_constraints(&self, txn: &mut Txn, before: &BTreeMap<WriteKey, Option<Vec<u8>>>, env: &Env) -> SqlResult<()> {
        self.check_references(txn, before)?;
        let catalog = self.catalog().clone();
        if catalog.tables.values().all(|t| t.checks.is_empty() && t.foreign_keys.is_empty()) {
            return Ok(());
        }
        let mut queue: Vec<WriteKey> = txn.writes.iter().filter(|(k, v)| before.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
        let mut checks: HashMap<u32, Vec<(String, Expr)>> = HashMap::new();
        let mut steps = 0usize;
        while let Some((table, key)) = queue.pop() {
            steps += 1;
            if steps > 1_000_000 {
                return Err(SqlError::new("54001", "referential actions touch more than a million rows in one statement"));
            }
            let Some(def) = catalog.table_by_id(table) else { continue };
            let new = match txn.writes.get(&(table, key.clone())) {
                Some(Some(b)) => Some(self.decode(def, b, 0)?),
                _ => None,
            };
            let old = match before.get(&(table, key.clone())) {
                Some(w) => w.as_ref().map(|b| self.decode(def, b, 0)).transpose()?,
                None => match self.ledger.get_as_of(table, &key, txn.snapshot)? {
                    Some(v) if !v.entry.is_delete() => Some(self.decode(def, &v.entry.value, v.tx)?),
                    _ => None,
                },
            };
            if let Some(row) = &new {
                if !def.checks.is_empty() {
                    let compiled = match checks.entry(table) {
                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => v.insert(
                            def.checks.iter().map(|c| Ok((c.name.clone(), compile_check(def, &c.expr)?))).collect::<SqlResult<_>>()?,
                        ),
                    };
                    for (name, e) in compiled.iter() {
                        if e.eval(row, env)? == Value::Bool(false) {
                            return Err(SqlError::new(
                                "23514",
                                format!("new row for relation \"{}\" violates check constraint \"{name}\"", def.name),
                            )
                            .on_constraint(&def.name, name, None));
                        }
                    }
                }
                for fk in &def.foreign_keys {
                    let vals: Vec<Value> = fk.columns.iter().map(|&c| row[c].clone()).collect();
                    if vals.iter().any(Value::is_null) {
                        continue;
                    }
                    if old.as_ref().is_some_and(|o| fk.columns.iter().all(|&c| o[c] == row[c])) {
                        continue;
                    }
                    let parent = catalog.table_by_id(fk.ref_table).ok_or_else(|| SqlError::undefined_table("(dropped)"))?;
                    if !self.referenced_row_exists(parent, fk, &vals, txn)? {
                        return Err(SqlError::new(
                            "23503",
                            format!("insert or update on table \"{}\" violates foreign key constraint \"{}\"", def.name, fk.name),
                        )
                        .on_constraint(
                            &def.name,
                            &fk.name,
                            Some(format!("{} is not present in table \"{}\".", key_text(def, &fk.columns, row), parent.name)),
                        ));
                    }
                }
            }
            let Some(old) = old else { continue };
            for child in catalog.tables.values() {
                for fk in child.foreign_keys.iter().filter(|f| f.ref_table == table) {
                    let old_vals: Vec<Value> = fk.ref_columns.iter().map(|&c| old[c].clone()).collect();
                    if old_vals.iter().any(Value::is_null) {
                        continue;
                    }
                    let new_vals: Option<Vec<Value>> = new.as_ref().map(|n| fk.ref_columns.iter().map(|&c| n[c].clone()).collect());
                    if new_vals.as_ref() == Some(&old_vals) {
                        continue;
                    }
                    let referencing: Vec<(Vec<u8>, Vec<Value>)> = self
                        .scan(child, txn, None)?
                        .into_iter()
                        .filter(|s| fk.columns.iter().zip(&old_vals).all(|(&c, v)| s.row[c].compare(v) == Some(std::cmp::Ordering::Equal)))
                        .map(|s| (s.key, s.row))
                        .collect();
                    if referencing.is_empty() {
                        continue;
                    }
                    let action = if new.is_none() { fk.on_delete } else { fk.on_update };
                    for (ckey, mut crow) in referencing {
                        crow.truncate(child.columns.len());
                        match (action, &new_vals) {
                            (FkAction::NoAction | FkAction::Restrict, _) => {
                                return Err(SqlError::new(
                                    "23503",
                                    format!(
                                        "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                                        def.name, fk.name, child.name
                                    ),
                                )
                                .on_constraint(
                                    &child.name,
                                    &fk.name,
                                    Some(format!(
                                        "{} is still referenced from table \"{}\".",
                                        key_text(def, &fk.ref_columns, &old),
                                        child.name
                                    )),
                                ))
                            }
                            (FkAction::Cascade, None) => {
                                txn.writes.insert((child.id, ckey.clone()), None);
                            }
                            (FkAction::Cascade, Some(nv)) => {
                                for (&c, v) in fk.columns.iter().zip(nv) {
                                    crow[c] = v.clone().cast(child.columns[c].ty)?;
                                }
                                self.rewrite_child(child, txn, &ckey, &crow)?;
                            }
                            (FkAction::SetNull | FkAction::SetDefault, _) => {
                                for &c in &fk.columns {
                                    crow[c] = match (action, &child.columns[c].default) {
                                        (FkAction::SetDefault, Some(d)) => {
                                            let mut params = vec![];
                                            let e = crate::sql::parse_expr(d)?;
                                            let ty = child.columns[c].ty;
                                            let x =
                                                Ctx { scope: &[], params: &mut params, aggs: None, planner: None }.compile_as(&e, ty)?;
                                            x.expr.eval(&[], env)?.cast(ty)?
                                        }
                                        _ => Value::Null,
                                    };
                                    if crow[c].is_null() && child.columns[c].not_null {
                                        return Err(SqlError::new(
                                            "23502",
                                            format!(
                                                "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                                                child.columns[c].name, child.name
                                            ),
                                        ));
                                    }
                                }
                                self.rewrite_child(child, txn, &ckey, &crow)?;
                            }
                        }
                        queue.push((child.id, ckey));
                    }
                }
            }
        }
        Ok(())
    }

    /// Write a referencing row back after an action changed it (its primary key may change too).
    fn rewrite_child(&self, child: &TableDef, txn: &mut Txn, key: &[u8], row: &[Value]) -> SqlResult<()> {
        let pk: Vec<Value> = child.primary_key.iter().map(|&c| row[c].clone()).collect();
        let new_key = encode_key(&pk)?;
        if new_key != key {
            txn.writes.insert((child.id, key.to_vec()), None);
        }
        txn.writes.insert((child.id, new_key), Some(encode_row(child.version, row)));
        Ok(())
    }

    /// Whether the referenced table holds a live row with `vals` in the referenced columns, as the
    /// transaction sees it (its own writes first).
    pub(super) fn referenced_row_exists(&self, parent: &TableDef, fk: &ForeignKeyDef, vals: &[Value], txn: &Txn) -> SqlResult<bool> {
        let typed = fk.ref_columns.iter().zip(vals).map(|(&c, v)| v.clone().cast(parent.columns[c].ty)).collect::<SqlResult<Vec<_>>>()?;
        if fk.ref_columns == parent.primary_key {
            return Ok(self.get_row(parent, txn, &encode_key(&typed)?)?.is_some());
        }
        Ok(self
            .scan(parent, txn, None)?
            .iter()
            .any(|s| fk.ref_columns.iter().zip(&typed).all(|(&c, v)| s.row[c].compare(v) == Some(std::cmp::Ordering::Equal))))
    }

    /// The lock on the parent row (or unique value) a new referencing row depends on.
    pub(super) fn parent_lock_keys(
        catalog: &crate::sql::catalog::Catalog,
        def: &TableDef,
        row: &[Value],
        out: &mut Vec<crate::sql::locks::LockKey>,
    ) -> SqlResult<()> {
        for fk in &def.foreign_keys {
            let Some(parent) = catalog.table_by_id(fk.ref_table) else { continue };
            let vals: Vec<Value> = fk
                .columns
                .iter()
                .zip(&fk.ref_columns)
                .map(|(&c, &p)| row[c].clone().cast(parent.columns[p].ty))
                .collect::<SqlResult<_>>()?;
            if vals.iter().any(Value::is_null) {
                continue;
            }
            let lock_table = if fk.ref_columns == parent.primary_key {
                parent.id
            } else {
                match parent.indexes.iter().find(|i| i.unique && i.columns == fk.ref_columns) {
                    Some(i) => i.id,
                    None => continue,
                }
            };
            let k = (lock_table, encode_key(&vals)?);
            if !out.contains(&k) {
                out.push(k);
            }
        }
        Ok(())
    }
}
