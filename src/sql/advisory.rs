//! Advisory locks (`pg_advisory_lock` and friends), session-level, as migration tools use them to keep
//! two migrators apart (sqlx's `Migrator` takes `pg_advisory_lock` around its run).
//!
//! A key is one bigint, or two integers combined as PostgreSQL does (`(a << 32) | b`). Each key is a
//! tokio mutex shared by all sessions; the session keeps the guard and a re-entry count, so a lock is
//! released by as many unlocks as locks, by `pg_advisory_unlock_all()`, or when the connection closes
//! (the session and its guards are dropped). Waits honour `lock_timeout` and `statement_timeout`.
//!
//! Taking a lock waits, and expressions are evaluated synchronously, so the functions run as a
//! statement of their own: `SELECT pg_advisory_lock(k)` (any of the functions, alone, without FROM),
//! which is how tools call them. Elsewhere in a query they are 0A000. They write nothing to the ledger.

use super::{lock_deadline, Column, Engine, Outcome, Session};
use crate::sql::{DataType, SqlError, SqlResult, Value};
use sqlparser::ast;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedMutexGuard;

/// The advisory functions: (name, result type).
pub(crate) const FUNCTIONS: [(&str, DataType); 4] = [
    ("pg_advisory_lock", DataType::Text),
    ("pg_try_advisory_lock", DataType::Bool),
    ("pg_advisory_unlock", DataType::Bool),
    ("pg_advisory_unlock_all", DataType::Text),
];

/// The lock table: one mutex per key that some session holds or waits for.
#[derive(Default)]
pub(crate) struct AdvisoryLocks {
    keys: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

/// The advisory locks a session holds: the guard and how many times it was taken.
#[derive(Default)]
pub(crate) struct Held(HashMap<i64, (OwnedMutexGuard<()>, u32)>);

impl AdvisoryLocks {
    fn mutex(&self, key: i64) -> SqlResult<Arc<tokio::sync::Mutex<()>>> {
        let mut keys = self.keys.lock().map_err(|_| SqlError::new("XX000", "advisory lock table poisoned"))?;
        Ok(keys.entry(key).or_default().clone())
    }

    /// Forget keys nobody holds or waits for (only the table refers to them).
    fn prune(&self) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, m| Arc::strong_count(m) > 1);
        }
    }
}

/// `SELECT f(args)` alone, where f is an advisory function: its name, arguments and column name.
pub(crate) fn call(stmt: &ast::Statement) -> Option<(&'static str, Vec<&ast::Expr>, String)> {
    let ast::Statement::Query(q) = stmt else { return None };
    let ast::SetExpr::Select(sel) = &*q.body else { return None };
    if !sel.from.is_empty() || sel.selection.is_some() || q.with.is_some() || sel.projection.len() != 1 {
        return None;
    }
    let (e, alias) = match &sel.projection[0] {
        ast::SelectItem::UnnamedExpr(e) => (e, None),
        ast::SelectItem::ExprWithAlias { expr, alias } => (expr, Some(crate::sql::expr::normalize_ident(alias))),
        _ => return None,
    };
    let ast::Expr::Function(f) = e else { return None };
    let name = f.name.0.last()?.as_ident()?.value.to_lowercase();
    let (name, _) = FUNCTIONS.iter().find(|(n, _)| *n == name)?;
    let args = match &f.args {
        ast::FunctionArguments::None => vec![],
        ast::FunctionArguments::List(l) => l
            .args
            .iter()
            .map(|a| match a {
                ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Some(e),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        ast::FunctionArguments::Subquery(_) => return None,
    };
    Some((name, args, alias.unwrap_or_else(|| name.to_string())))
}

impl Engine {
    /// Run an advisory-lock call (see the module comment).
    pub(crate) async fn advisory(
        &self,
        s: &mut Session,
        call: (&'static str, Vec<&ast::Expr>, String),
        params: &[Value],
    ) -> SqlResult<Outcome> {
        let (name, args, column) = call;
        if s.in_failed_transaction() {
            return Err(SqlError::aborted_transaction());
        }
        let key = match args.as_slice() {
            [] if name == "pg_advisory_unlock_all" => None,
            [k] if name != "pg_advisory_unlock_all" => Some(int_arg(k, DataType::Int8, params)?),
            [a, b] if name != "pg_advisory_unlock_all" => {
                Some((int_arg(a, DataType::Int4, params)? << 32) | (int_arg(b, DataType::Int4, params)? & 0xffff_ffff))
            }
            _ => return Err(SqlError::new("42883", format!("function {name} with {} arguments does not exist", args.len()))),
        };
        let value = match (name, key) {
            ("pg_advisory_unlock_all", _) => {
                s.advisory.0.clear();
                self.advisory_locks.prune();
                Value::Text(String::new())
            }
            (_, None) => Value::Null,
            ("pg_advisory_lock" | "pg_try_advisory_lock", Some(k)) if s.advisory.0.contains_key(&k) => {
                if let Some((_, n)) = s.advisory.0.get_mut(&k) {
                    *n += 1;
                }
                if name == "pg_advisory_lock" {
                    Value::Text(String::new())
                } else {
                    Value::Bool(true)
                }
            }
            ("pg_advisory_lock", Some(k)) => {
                let lock = self.advisory_locks.mutex(k)?.lock_owned();
                let guard = match lock_deadline(&s.settings) {
                    None => lock.await,
                    Some((at, code)) => tokio::time::timeout_at(at.into(), lock).await.map_err(|_| {
                        self.advisory_locks.prune();
                        let what = if code == "55P03" { "lock timeout" } else { "statement timeout" };
                        SqlError::new(code, format!("canceling statement due to {what}"))
                    })?,
                };
                s.advisory.0.insert(k, (guard, 1));
                Value::Text(String::new())
            }
            ("pg_try_advisory_lock", Some(k)) => match self.advisory_locks.mutex(k)?.try_lock_owned() {
                Ok(guard) => {
                    s.advisory.0.insert(k, (guard, 1));
                    Value::Bool(true)
                }
                Err(_) => {
                    self.advisory_locks.prune();
                    Value::Bool(false)
                }
            },
            (_, Some(k)) => match s.advisory.0.get_mut(&k) {
                Some((_, n)) if *n > 1 => {
                    *n -= 1;
                    Value::Bool(true)
                }
                Some(_) => {
                    s.advisory.0.remove(&k);
                    self.advisory_locks.prune();
                    Value::Bool(true)
                }
                // PostgreSQL also warns that the session does not hold it.
                None => Value::Bool(false),
            },
        };
        let ty = FUNCTIONS.iter().find(|(n, _)| *n == name).map_or(DataType::Text, |(_, t)| *t);
        Ok(Outcome::Rows { columns: Arc::from(vec![Column::new(column, ty)]), rows: vec![vec![value]], tag: "SELECT 1".into() })
    }
}

/// An integer argument: a constant or a parameter.
fn int_arg(e: &ast::Expr, ty: DataType, params: &[Value]) -> SqlResult<i64> {
    match crate::sql::expr::eval_constant(e, ty, params)?.cast(ty)? {
        Value::Int(i) => Ok(i),
        Value::Null => Err(SqlError::new("22004", "an advisory lock key must not be NULL")),
        other => Err(SqlError::new("42804", format!("an advisory lock key must be an integer, not {}", other.natural_type().name()))),
    }
}
