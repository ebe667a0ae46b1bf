//! SQL-level `PREPARE name [(types)] AS statement` and `EXECUTE name [(arguments)]`.
//!
//! A statement prepared in SQL is a `Prepared` like one made by the protocol's Parse (parsed,
//! described, its plan cached at the first run), kept by name in the session. `EXECUTE` evaluates its
//! arguments as the parameter types and runs the statement exactly as a Bind/Execute would, so the
//! log records the prepared statement's text and the parameter values (which is what policies match),
//! not the `EXECUTE` text. `DEALLOCATE` (in `mod.rs`) forgets both kinds, as PostgreSQL does.

use super::{Handler, Prepared, SessionCell};
use crate::sql::{self, DataType, Session, SqlError, Value};
use pgwire::api::portal::Format;
use pgwire::api::results::{Response, Tag};
use sqlparser::ast::{Expr, Ident, ObjectName, Statement};
use sqlparser::tokenizer::{Token, Tokenizer};

/// A statement name as PostgreSQL folds it (lower case unless quoted).
pub(super) fn statement_name(name: &Ident) -> String {
    if name.quote_style.is_none() {
        name.value.to_lowercase()
    } else {
        name.value.clone()
    }
}

/// The text of the statement a `PREPARE … AS` prepares, as the client wrote it.
fn prepared_text(sql: &str) -> Result<&str, SqlError> {
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location().map_err(|e| SqlError::syntax(e.to_string()))?;
    // `AS` is reserved: the first one ends the name and the parameter types.
    let after = tokens
        .iter()
        .position(|t| matches!(&t.token, Token::Word(w) if w.keyword == sqlparser::keywords::Keyword::AS && w.quote_style.is_none()))
        .and_then(|i| tokens.get(i + 1..))
        .and_then(|rest| rest.iter().find(|t| !matches!(t.token, Token::Whitespace(_))))
        .ok_or_else(|| SqlError::syntax("syntax error at end of input"))?;
    let (line, column) = (after.span.start.line as usize, after.span.start.column as usize);
    // Spans count lines and characters from 1.
    let line_start: usize = sql.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let offset = sql[line_start..].char_indices().nth(column.saturating_sub(1)).map_or(sql.len(), |(i, _)| line_start + i);
    Ok(sql[offset..].trim_end().trim_end_matches(';').trim_end())
}

impl Handler {
    /// `PREPARE name [(types)] AS statement`: parse and describe the statement under the session's
    /// transaction, and keep it under its name (42P05 if the name is taken). A failure aborts a
    /// transaction block, as any failed statement does.
    pub(super) async fn prepare(&self, cell: &SessionCell, s: &mut Session, stmt: &Statement, sql: &str) -> Result<Response, SqlError> {
        if s.in_failed_transaction() {
            return Err(SqlError::aborted_transaction());
        }
        let out = self.prepare_inner(cell, s, stmt, sql);
        if out.is_err() {
            self.engine.fail_statement(s);
        }
        out.map(|()| Response::Execution(Tag::new("PREPARE")))
    }

    fn prepare_inner(&self, cell: &SessionCell, s: &Session, stmt: &Statement, sql: &str) -> Result<(), SqlError> {
        let Statement::Prepare { name, data_types, statement } = stmt else { unreachable!("prepare is called for PREPARE") };
        if !matches!(**statement, Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)) {
            return Err(SqlError::syntax(format!("syntax error at or near \"{}\"", first_word(&statement.to_string()))));
        }
        let name = statement_name(name);
        let taken = cell.sql_prepared.lock().expect("prepared statement map is never poisoned").contains_key(&name)
            || cell.prepared.lock().expect("prepared statement list is never poisoned").contains(&name);
        if taken {
            return Err(SqlError::new("42P05", format!("prepared statement \"{name}\" already exists")));
        }
        let types =
            data_types.iter().map(|t| DataType::from_ast(t).map(|t| Some(super::types::pg_type(t)))).collect::<Result<Vec<_>, _>>()?;
        let text = prepared_text(sql)?.to_string();
        let prepared = self.parser.describe_one(s, (**statement).clone(), text, &types)?;
        cell.sql_prepared.lock().expect("prepared statement map is never poisoned").insert(name, prepared);
        Ok(())
    }

    /// `EXECUTE name [(arguments)]`: the prepared statement, run as a Bind/Execute of it would be.
    pub(super) async fn execute_sql_prepared(
        &self,
        cell: &SessionCell,
        s: &mut Session,
        name: &ObjectName,
        args: &[Expr],
        outer: &[Value],
        format: &Format,
    ) -> Result<Response, SqlError> {
        if s.in_failed_transaction() {
            return Err(SqlError::aborted_transaction());
        }
        let name = execute_name(name);
        let found = lookup(cell, &name).and_then(|p| arguments(&p, &name, args, outer).map(|params| (p, params)));
        let (prepared, params) = match found {
            Ok(x) => x,
            Err(e) => {
                self.engine.fail_statement(s);
                return Err(e);
            }
        };
        let stmt = prepared.stmt.clone().expect("PREPARE always holds a statement");
        let o = self.engine.execute_prepared(s, &stmt, &prepared.sql, &params, Some(&prepared.plan)).await?;
        super::to_response(o, format, Some(&prepared)).map_err(|e| SqlError::new("XX000", e.to_string()))
    }
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or_default()
}

/// `EXECUTE`'s statement name, folded.
pub(super) fn execute_name(name: &ObjectName) -> String {
    match name.0.as_slice() {
        [part] => part.as_ident().map(statement_name).unwrap_or_else(|| part.to_string()),
        _ => name.to_string(),
    }
}

/// The statement `EXECUTE name` runs (26000 when there is none).
pub(super) fn lookup(cell: &SessionCell, name: &str) -> Result<Prepared, SqlError> {
    cell.sql_prepared
        .lock()
        .expect("prepared statement map is never poisoned")
        .get(name)
        .cloned()
        .ok_or_else(|| SqlError::new("26000", format!("prepared statement \"{name}\" does not exist")))
}

/// `EXECUTE`'s arguments as the prepared statement's parameter types (`outer`: the parameters of the
/// EXECUTE statement itself, when it came through the extended protocol).
pub(super) fn arguments(prepared: &Prepared, name: &str, args: &[Expr], outer: &[Value]) -> Result<Vec<Value>, SqlError> {
    let want = &prepared.shape.params;
    if args.len() != want.len() {
        return Err(SqlError::new("42601", format!("wrong number of parameters for prepared statement \"{name}\"")).with_detail(format!(
            "Expected {} parameters but got {}.",
            want.len(),
            args.len()
        )));
    }
    args.iter().zip(want).map(|(a, ty)| sql::expr::eval_constant(a, *ty, outer)).collect()
}

/// The types of the parameters (`$n`) an `EXECUTE`'s arguments use: a bare `$n` argument takes the
/// prepared statement's parameter type at its position, a type the client gave wins, others are text.
pub(super) fn argument_parameters(prepared: &Prepared, args: &[Expr], given: &[Option<pgwire::api::Type>]) -> Vec<DataType> {
    let mut types: Vec<Option<DataType>> = given.iter().map(|t| t.as_ref().and_then(super::types::data_type)).collect();
    let mut note = |n: usize, ty: Option<DataType>| {
        if types.len() < n {
            types.resize(n, None);
        }
        if types[n - 1].is_none() {
            types[n - 1] = ty;
        }
    };
    for (i, a) in args.iter().enumerate() {
        let _ = sqlparser::ast::visit_expressions(a, |e| {
            if let Expr::Value(v) = e {
                if let sqlparser::ast::Value::Placeholder(p) = &v.value {
                    if let Some(n) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).filter(|n| *n > 0) {
                        let bare = matches!(a, Expr::Value(x) if x.value == v.value);
                        note(n, if bare { prepared.shape.params.get(i).copied() } else { None });
                    }
                }
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    types.into_iter().map(|t| t.unwrap_or(DataType::Text)).collect()
}

#[cfg(test)]
mod tests {
    use super::prepared_text;

    #[test]
    fn the_prepared_text_is_everything_after_as() {
        assert_eq!(prepared_text("PREPARE p AS SELECT 1").unwrap(), "SELECT 1");
        assert_eq!(
            prepared_text("prepare \"q\" (int, numeric(10,2))\n  as\n INSERT INTO t VALUES ($1, 'é as x');").unwrap(),
            "INSERT INTO t VALUES ($1, 'é as x')"
        );
        assert_eq!(prepared_text("PREPARE é (text) AS\nSELECT $1 AS a").unwrap(), "SELECT $1 AS a");
        assert!(prepared_text("PREPARE p").is_err());
    }
}
