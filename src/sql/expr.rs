//! Expressions: compiled from sqlparser's AST against a scope of columns (names resolved and types
//! inferred once), then evaluated per row.

use super::error::{SqlError, SqlResult};
use super::value::{DataType, Value};
use crate::sql::engine::plan::QueryPlan;
use rust_decimal::Decimal;
use sqlparser::ast::{self, BinaryOperator as B, UnaryOperator as U};
use std::cmp::Ordering;

/// One column visible to an expression.
#[derive(Debug, Clone)]
pub struct ScopeCol {
    pub qualifier: Option<String>,
    pub name: String,
    pub ty: DataType,
    /// Hidden columns (pseudo-columns such as `_tx`) are not expanded by `*`.
    pub hidden: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

#[derive(Debug, Clone)]
pub struct AggCall {
    pub func: AggFunc,
    /// None for count(*).
    pub arg: Option<Expr>,
    pub distinct: bool,
    pub ty: DataType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    /// `~` (false) and `!~` (true): POSIX regular-expression match, as PostgreSQL.
    Regex(bool),
}

#[derive(Debug, Clone)]
pub enum Expr {
    Const(Value),
    Column(usize),
    Param(usize),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Bin(BinOp, DataType, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>, bool),
    InList(Box<Expr>, Vec<Expr>, bool),
    Like(Box<Expr>, Box<Expr>, bool, bool),
    Case(Option<Box<Expr>>, Vec<(Expr, Expr)>, Option<Box<Expr>>),
    Cast(Box<Expr>, DataType),
    Func(String, Vec<Expr>),
    Agg(usize),
    /// A subquery; for `In` the left operand is the boxed expression.
    Sub(std::sync::Arc<Subquery>, Option<Box<Expr>>),
}

/// Plans subqueries met inside expressions (implemented by the engine).
pub trait SubqueryPlanner {
    /// Plan `q` with `outer` visible for correlation; returns the plan and whether it refers to `outer`.
    fn plan_subquery(&self, q: &ast::Query, outer: &[ScopeCol], params: &mut Vec<Option<DataType>>) -> SqlResult<(QueryPlan, bool)>;
}

/// Runs subquery plans during evaluation (implemented over an engine and a transaction).
pub trait SubqueryRunner {
    fn run(&self, plan: &QueryPlan, outer: &[Value], env: &Env) -> SqlResult<Vec<Vec<Value>>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubKind {
    Exists,
    /// `x [NOT] IN (SELECT …)`
    In(bool),
    Scalar,
    /// `ARRAY(SELECT …)`, returned as PostgreSQL's text form of the array (`{a,b}`).
    Array,
}

/// A subquery inside an expression. Uncorrelated ones run once per statement (cached).
pub struct Subquery {
    pub plan: QueryPlan,
    pub kind: SubKind,
    pub correlated: bool,
    cache: std::sync::OnceLock<Vec<Vec<Value>>>,
}

impl std::fmt::Debug for Subquery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Subquery({:?}, correlated: {})", self.kind, self.correlated)
    }
}

/// Everything compilation needs besides the AST.
pub struct Ctx<'a> {
    pub scope: &'a [ScopeCol],
    /// Inferred parameter types, indexed by `$n - 1`; `None` until some context says.
    pub params: &'a mut Vec<Option<DataType>>,
    /// Where aggregate calls go; `None` where aggregates are not allowed (WHERE, VALUES).
    pub aggs: Option<&'a mut Vec<AggCall>>,
    /// Plans subqueries; `None` where they are not allowed.
    pub planner: Option<&'a dyn SubqueryPlanner>,
}

pub struct Typed {
    pub expr: Expr,
    pub ty: DataType,
}

fn ident_name(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

pub fn object_name(n: &ast::ObjectName) -> String {
    n.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default()
}

pub fn normalize_ident(i: &ast::Ident) -> String {
    ident_name(i)
}

impl Ctx<'_> {
    fn resolve(&self, qualifier: Option<&str>, name: &str) -> SqlResult<Typed> {
        let matches: Vec<usize> = (0..self.scope.len())
            .filter(|&i| self.scope[i].name == name && (qualifier.is_none() || self.scope[i].qualifier.as_deref() == qualifier))
            .collect();
        // Outer-query columns (visible to a correlated subquery) are hidden: an inner column wins.
        let visible: Vec<usize> = matches.iter().copied().filter(|&i| !self.scope[i].hidden).collect();
        let found = match (matches.len(), visible.len()) {
            (0, _) => None,
            (1, _) => Some(matches[0]),
            (_, 1) => Some(visible[0]),
            _ => return Err(SqlError::new("42702", format!("column reference \"{name}\" is ambiguous"))),
        };
        match found {
            Some(i) => Ok(Typed { expr: Expr::Column(i), ty: self.scope[i].ty }),
            None => Err(match qualifier {
                Some(q) if !self.scope.iter().any(|c| c.qualifier.as_deref() == Some(q)) => {
                    SqlError::new("42P01", format!("missing FROM-clause entry for table \"{q}\""))
                }
                Some(q) => SqlError::undefined_column(&format!("{q}.{name}")),
                None => SqlError::undefined_column(name),
            }),
        }
    }

    /// Compile with a type hint: parameters and untyped string literals take the hinted type.
    pub fn compile_as(&mut self, e: &ast::Expr, hint: DataType) -> SqlResult<Typed> {
        let t = self.compile(e)?;
        Ok(self.coerce(t, hint))
    }

    fn coerce(&mut self, t: Typed, hint: DataType) -> Typed {
        match t.expr {
            Expr::Param(i) if self.params[i].is_none() => {
                self.params[i] = Some(hint);
                Typed { expr: Expr::Param(i), ty: hint }
            }
            Expr::Const(Value::Text(ref s)) if t.ty == DataType::Text && !hint.is_text() => match Value::parse(s, hint) {
                Ok(v) => Typed { expr: Expr::Const(v), ty: hint },
                Err(_) => Typed { expr: Expr::Cast(Box::new(t.expr), hint), ty: hint },
            },
            Expr::Const(Value::Null) => Typed { expr: t.expr, ty: hint },
            _ => t,
        }
    }

    pub fn compile(&mut self, e: &ast::Expr) -> SqlResult<Typed> {
        use ast::Expr as A;
        Ok(match e {
            A::Identifier(i) => self.resolve(None, &ident_name(i))?,
            A::CompoundIdentifier(parts) => {
                let names: Vec<String> = parts.iter().map(ident_name).collect();
                match names.as_slice() {
                    [q, n] => self.resolve(Some(q), n)?,
                    [_, q, n] => self.resolve(Some(q), n)?,
                    _ => return Err(SqlError::syntax(format!("improper qualified name: {e}"))),
                }
            }
            A::Value(v) => self.literal(&v.value)?,
            A::Nested(inner) => self.compile(inner)?,
            A::UnaryOp { op, expr } => {
                let t = self.compile(expr)?;
                match op {
                    U::Not => Typed { expr: Expr::Not(Box::new(self.coerce(t, DataType::Bool).expr)), ty: DataType::Bool },
                    U::Minus => Typed { ty: t.ty, expr: Expr::Neg(Box::new(t.expr)) },
                    U::Plus => t,
                    _ => return Err(SqlError::unsupported(format!("operator {op}"))),
                }
            }
            A::BinaryOp { left, op, right } => self.binary(left, op, right)?,
            A::IsNull(x) => Typed { expr: Expr::IsNull(Box::new(self.compile(x)?.expr), false), ty: DataType::Bool },
            A::IsNotNull(x) => Typed { expr: Expr::IsNull(Box::new(self.compile(x)?.expr), true), ty: DataType::Bool },
            A::IsTrue(x) => self.compare_const(x, Value::Bool(true), BinOp::Eq)?,
            A::IsFalse(x) => self.compare_const(x, Value::Bool(false), BinOp::Eq)?,
            A::In { expr, target: ast::InTarget::List(list), negated, .. } => {
                let t = self.compile(expr)?;
                let items = list.iter().map(|i| self.compile_as(i, t.ty).map(|x| x.expr)).collect::<SqlResult<Vec<_>>>()?;
                Typed { expr: Expr::InList(Box::new(t.expr), items, *negated), ty: DataType::Bool }
            }
            A::Between { expr, negated, low, high } => {
                let t = self.compile(expr)?;
                let ty = t.ty;
                let lo = self.compile_as(low, ty)?;
                let hi = self.compile_as(high, ty)?;
                let ge = Expr::Bin(BinOp::Ge, DataType::Bool, Box::new(t.expr.clone()), Box::new(lo.expr));
                let le = Expr::Bin(BinOp::Le, DataType::Bool, Box::new(t.expr), Box::new(hi.expr));
                let both = Expr::And(Box::new(ge), Box::new(le));
                Typed { expr: if *negated { Expr::Not(Box::new(both)) } else { both }, ty: DataType::Bool }
            }
            A::Like { negated, expr, pattern, escape_char: None, .. } => self.like(expr, pattern, *negated, false)?,
            A::ILike { negated, expr, pattern, escape_char: None, .. } => self.like(expr, pattern, *negated, true)?,
            A::Case { operand, conditions, else_result, .. } => {
                let op = operand.as_ref().map(|o| self.compile(o)).transpose()?;
                let mut arms = Vec::new();
                let mut ty = None;
                for w in conditions {
                    let c = match &op {
                        Some(o) => self.compile_as(&w.condition, o.ty)?.expr,
                        None => self.compile_as(&w.condition, DataType::Bool)?.expr,
                    };
                    let r = self.compile(&w.result)?;
                    ty = ty.or(Some(r.ty)).map(|t| wider(t, r.ty));
                    arms.push((c, r.expr));
                }
                let el = else_result.as_ref().map(|e| self.compile(e)).transpose()?;
                if let Some(e) = &el {
                    ty = ty.map(|t| wider(t, e.ty));
                }
                Typed {
                    expr: Expr::Case(op.map(|o| Box::new(o.expr)), arms, el.map(|e| Box::new(e.expr))),
                    ty: ty.unwrap_or(DataType::Text),
                }
            }
            A::Cast { expr, data_type, .. } => {
                let ty = DataType::from_ast(data_type)?;
                let t = self.compile(expr)?;
                let t = self.coerce(t, ty);
                Typed { expr: Expr::Cast(Box::new(t.expr), ty), ty }
            }
            A::Function(f) if object_name(&f.name) == "array" && matches!(f.args, ast::FunctionArguments::Subquery(_)) => {
                let ast::FunctionArguments::Subquery(q) = &f.args else { unreachable!("matched above") };
                self.subquery(q, SubKind::Array, None)?
            }
            A::Function(f) => self.function(f)?,
            A::Collate { expr, .. } => self.compile(expr)?,
            A::Exists { subquery, negated } => {
                let e = self.subquery(subquery, SubKind::Exists, None)?.expr;
                Typed { expr: if *negated { Expr::Not(Box::new(e)) } else { e }, ty: DataType::Bool }
            }
            A::In { expr, target: ast::InTarget::Subquery(q), negated, .. } => {
                let left = self.compile(expr)?;
                self.subquery(q, SubKind::In(*negated), Some(left))?
            }
            A::Subquery(q) => self.subquery(q, SubKind::Scalar, None)?,
            A::TypedString(ts) => {
                let ty = DataType::from_ast(&ts.data_type)?;
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Typed { expr: Expr::Const(Value::parse(&text, ty)?), ty }
            }
            other => return Err(SqlError::unsupported(format!("expression not supported yet: {other}"))),
        })
    }

    fn subquery(&mut self, q: &ast::Query, kind: SubKind, left: Option<Typed>) -> SqlResult<Typed> {
        let planner = self.planner.ok_or_else(|| SqlError::unsupported("subqueries are not allowed here"))?;
        let outer: Vec<ScopeCol> = self.scope.iter().map(|c| ScopeCol { hidden: true, ..c.clone() }).collect();
        let (plan, correlated) = planner.plan_subquery(q, &outer, self.params)?;
        let cols = plan.columns();
        let ty = match kind {
            SubKind::Exists => DataType::Bool,
            SubKind::Array => {
                if cols.len() != 1 {
                    return Err(SqlError::syntax("subquery must return only one column"));
                }
                DataType::Text
            }
            SubKind::In(_) | SubKind::Scalar => {
                if cols.len() != 1 {
                    return Err(SqlError::syntax("subquery must return only one column"));
                }
                if kind == SubKind::Scalar {
                    cols[0].ty
                } else {
                    DataType::Bool
                }
            }
        };
        let sub = Subquery { plan, kind, correlated, cache: std::sync::OnceLock::new() };
        Ok(Typed { expr: Expr::Sub(std::sync::Arc::new(sub), left.map(|l| Box::new(l.expr))), ty })
    }

    fn compare_const(&mut self, x: &ast::Expr, v: Value, op: BinOp) -> SqlResult<Typed> {
        let t = self.compile(x)?;
        Ok(Typed { expr: Expr::Bin(op, DataType::Bool, Box::new(t.expr), Box::new(Expr::Const(v))), ty: DataType::Bool })
    }

    fn like(&mut self, expr: &ast::Expr, pattern: &ast::Expr, negated: bool, ci: bool) -> SqlResult<Typed> {
        let e = self.compile_as(expr, DataType::Text)?;
        let p = self.compile_as(pattern, DataType::Text)?;
        Ok(Typed { expr: Expr::Like(Box::new(e.expr), Box::new(p.expr), negated, ci), ty: DataType::Bool })
    }

    fn literal(&mut self, v: &ast::Value) -> SqlResult<Typed> {
        use ast::Value as V;
        Ok(match v {
            V::Number(n, _) => {
                if let Ok(i) = n.parse::<i64>() {
                    let ty = if i32::try_from(i).is_ok() { DataType::Int4 } else { DataType::Int8 };
                    Typed { expr: Expr::Const(Value::Int(i)), ty }
                } else {
                    let d = n
                        .parse::<Decimal>()
                        .or_else(|_| Decimal::from_scientific(n))
                        .map_err(|_| SqlError::syntax(format!("bad number {n}")))?;
                    Typed { expr: Expr::Const(Value::Numeric(d)), ty: DataType::Numeric }
                }
            }
            V::SingleQuotedString(s) | V::EscapedStringLiteral(s) | V::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) => {
                Typed { expr: Expr::Const(Value::Text(s.clone())), ty: DataType::Text }
            }
            V::Boolean(b) => Typed { expr: Expr::Const(Value::Bool(*b)), ty: DataType::Bool },
            V::Null => Typed { expr: Expr::Const(Value::Null), ty: DataType::Text },
            V::Placeholder(p) => {
                let n: usize = p.trim_start_matches('$').parse().map_err(|_| SqlError::syntax(format!("bad parameter {p}")))?;
                if n == 0 || n > 65535 {
                    return Err(SqlError::syntax(format!("bad parameter {p}")));
                }
                if self.params.len() < n {
                    self.params.resize(n, None);
                }
                Typed { expr: Expr::Param(n - 1), ty: self.params[n - 1].unwrap_or(DataType::Text) }
            }
            other => return Err(SqlError::unsupported(format!("literal {other}"))),
        })
    }

    fn binary(&mut self, left: &ast::Expr, op: &B, right: &ast::Expr) -> SqlResult<Typed> {
        if matches!(op, B::And | B::Or) {
            let l = self.compile_as(left, DataType::Bool)?;
            let r = self.compile_as(right, DataType::Bool)?;
            let (l, r) = (Box::new(l.expr), Box::new(r.expr));
            return Ok(Typed { expr: if *op == B::And { Expr::And(l, r) } else { Expr::Or(l, r) }, ty: DataType::Bool });
        }
        let bop = match op {
            B::Plus => BinOp::Add,
            B::Minus => BinOp::Sub,
            B::Multiply => BinOp::Mul,
            B::Divide => BinOp::Div,
            B::Modulo => BinOp::Mod,
            B::Eq => BinOp::Eq,
            B::NotEq => BinOp::Ne,
            B::Lt => BinOp::Lt,
            B::LtEq => BinOp::Le,
            B::Gt => BinOp::Gt,
            B::GtEq => BinOp::Ge,
            B::StringConcat => BinOp::Concat,
            B::PGRegexMatch => BinOp::Regex(false),
            B::PGRegexNotMatch => BinOp::Regex(true),
            B::PGCustomBinaryOperator(parts) if parts.last().is_some_and(|p| p == "~") => BinOp::Regex(false),
            B::PGCustomBinaryOperator(parts) if parts.last().is_some_and(|p| p == "!~") => BinOp::Regex(true),
            other => return Err(SqlError::unsupported(format!("operator {other}"))),
        };
        let mut l = self.compile(left)?;
        let mut r = self.compile(right)?;
        // Untyped sides (parameters, string literals, NULL) take the other side's type.
        let untyped = |t: &Typed| matches!(t.expr, Expr::Param(_) | Expr::Const(Value::Text(_)) | Expr::Const(Value::Null));
        if !matches!(bop, BinOp::Concat | BinOp::Regex(_)) {
            if untyped(&l) && !untyped(&r) {
                l = self.coerce(l, r.ty);
            } else if untyped(&r) && !untyped(&l) {
                r = self.coerce(r, l.ty);
            }
        }
        let ty = match bop {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                comparable(l.ty, r.ty)?;
                DataType::Bool
            }
            BinOp::Concat => DataType::Text,
            BinOp::Regex(_) => DataType::Bool,
            _ => {
                if !(l.ty.is_numeric() && r.ty.is_numeric()) {
                    return Err(SqlError::new("42883", format!("operator does not exist: {} {} {}", l.ty.name(), op, r.ty.name())));
                }
                wider(l.ty, r.ty)
            }
        };
        Ok(Typed { expr: Expr::Bin(bop, ty, Box::new(l.expr), Box::new(r.expr)), ty })
    }

    fn function(&mut self, f: &ast::Function) -> SqlResult<Typed> {
        let name = object_name(&f.name);
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (vec![], false, false),
            ast::FunctionArguments::List(l) => {
                let mut args = Vec::new();
                let mut star = false;
                for a in &l.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => args.push(e.clone()),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        other => return Err(SqlError::unsupported(format!("function argument {other}"))),
                    }
                }
                (args, matches!(l.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct)), star)
            }
            ast::FunctionArguments::Subquery(_) => return Err(SqlError::unsupported("subquery as function argument")),
        };
        let agg = match name.as_str() {
            "count" => Some(AggFunc::Count),
            "sum" => Some(AggFunc::Sum),
            "min" => Some(AggFunc::Min),
            "max" => Some(AggFunc::Max),
            "avg" => Some(AggFunc::Avg),
            _ => None,
        };
        if let Some(func) = agg {
            let arg = match (star, args.as_slice()) {
                (true, []) if func == AggFunc::Count => None,
                (false, [a]) => {
                    let mut inner = Ctx { scope: self.scope, params: self.params, aggs: None, planner: None };
                    Some(inner.compile(a).map_err(|e| {
                        if e.code == "42803" {
                            SqlError::new("42803", "aggregate function calls cannot be nested")
                        } else {
                            e
                        }
                    })?)
                }
                _ => return Err(SqlError::new("42883", format!("function {name} with these arguments does not exist"))),
            };
            let ty = match (func, &arg) {
                (AggFunc::Count, _) => DataType::Int8,
                (AggFunc::Sum, Some(a)) if a.ty.is_integer() => {
                    if a.ty == DataType::Int8 {
                        DataType::Numeric
                    } else {
                        DataType::Int8
                    }
                }
                (AggFunc::Avg, Some(a)) if a.ty.is_integer() || a.ty == DataType::Numeric => DataType::Numeric,
                (AggFunc::Avg | AggFunc::Sum, Some(a)) if a.ty.is_numeric() => DataType::Float8,
                (AggFunc::Avg | AggFunc::Sum, Some(a)) => {
                    return Err(SqlError::new("42883", format!("function {name}({}) does not exist", a.ty.name())))
                }
                (_, Some(a)) => a.ty,
                (_, None) => DataType::Int8,
            };
            let aggs = self.aggs.as_deref_mut().ok_or_else(|| SqlError::new("42803", "aggregate functions are not allowed here"))?;
            aggs.push(AggCall { func, arg: arg.map(|a| a.expr), distinct, ty });
            return Ok(Typed { expr: Expr::Agg(aggs.len() - 1), ty });
        }
        let compiled = args.iter().map(|a| self.compile(a)).collect::<SqlResult<Vec<_>>>()?;
        let ty = match (name.as_str(), compiled.as_slice()) {
            ("lower" | "upper" | "btrim" | "ltrim" | "rtrim" | "md5" | "concat" | "substr" | "substring" | "replace", _) => DataType::Text,
            ("version" | "current_database" | "current_schema" | "current_user" | "session_user" | "user", []) => DataType::Text,
            ("length" | "char_length" | "octet_length", [_]) => DataType::Int4,
            ("abs", [a]) => a.ty,
            ("round" | "floor" | "ceil" | "ceiling", [a, ..]) => {
                if a.ty.is_integer() || a.ty == DataType::Numeric {
                    DataType::Numeric
                } else {
                    DataType::Float8
                }
            }
            ("now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp" | "clock_timestamp", []) => {
                DataType::Timestamptz
            }
            ("pg_get_userbyid" | "pg_encoding_to_char" | "array_to_string" | "format_type", _) => DataType::Text,
            ("current_setting", [_] | [_, _]) | ("set_config", [_, _, _]) => DataType::Text,
            ("pg_table_is_visible" | "pg_type_is_visible", [_]) => DataType::Bool,
            ("coalesce" | "nullif" | "greatest" | "least", [first, rest @ ..]) => rest.iter().fold(first.ty, |t, a| wider(t, a.ty)),
            _ => return Err(SqlError::new("42883", format!("function {name}() does not exist or is not supported yet"))),
        };
        let exprs = compiled.into_iter().map(|t| t.expr).collect();
        Ok(Typed { expr: Expr::Func(name, exprs), ty })
    }
}

fn comparable(a: DataType, b: DataType) -> SqlResult<()> {
    let ok = a == b
        || (a.is_numeric() && b.is_numeric())
        || (a.is_text() && b.is_text())
        || matches!(
            (a, b),
            (DataType::Timestamp | DataType::Timestamptz | DataType::Date, DataType::Timestamp | DataType::Timestamptz | DataType::Date)
        );
    if ok {
        Ok(())
    } else {
        Err(SqlError::new("42883", format!("operator does not exist: {} = {}", a.name(), b.name())))
    }
}

/// The result type of mixing two types (PostgreSQL's numeric promotion; otherwise the first wins).
pub fn wider(a: DataType, b: DataType) -> DataType {
    use DataType::*;
    match (a, b) {
        (Float8, _) | (_, Float8) if a.is_numeric() && b.is_numeric() => Float8,
        (Float4, _) | (_, Float4) if a.is_numeric() && b.is_numeric() => Float8,
        (Numeric, _) | (_, Numeric) if a.is_numeric() && b.is_numeric() => Numeric,
        (Int8, _) | (_, Int8) if a.is_integer() && b.is_integer() => Int8,
        (Int4, _) | (_, Int4) if a.is_integer() && b.is_integer() => Int4,
        _ => a,
    }
}

/// Runtime inputs of evaluation.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub params: &'a [Value],
    pub aggs: &'a [Value],
    /// Transaction start time (µs), what now() returns.
    pub now_us: i64,
    pub user: &'a str,
    /// Runs subqueries; `None` where there are none.
    pub sub: Option<&'a dyn SubqueryRunner>,
    /// The outer query's row, for a correlated subquery being run.
    pub outer: &'a [Value],
    /// The session's SET values, for current_setting().
    pub settings: Option<&'a std::collections::BTreeMap<String, String>>,
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

impl Expr {
    /// Whether the expression reads column `col` of its row.
    /// Whether a subquery occurs anywhere in this expression.
    pub fn has_subquery(&self) -> bool {
        match self {
            Expr::Sub(..) => true,
            Expr::Const(_) | Expr::Column(_) | Expr::Param(_) | Expr::Agg(_) => false,
            Expr::Not(x) | Expr::Neg(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.has_subquery(),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Bin(_, _, a, b) | Expr::Like(a, b, _, _) => a.has_subquery() || b.has_subquery(),
            Expr::InList(x, items, _) => x.has_subquery() || items.iter().any(Expr::has_subquery),
            Expr::Case(op, arms, el) => {
                op.as_ref().is_some_and(|o| o.has_subquery())
                    || arms.iter().any(|(c, r)| c.has_subquery() || r.has_subquery())
                    || el.as_ref().is_some_and(|e| e.has_subquery())
            }
            Expr::Func(_, args) => args.iter().any(Expr::has_subquery),
        }
    }

    pub fn references(&self, col: usize) -> bool {
        match self {
            Expr::Column(i) => *i == col,
            Expr::Const(_) | Expr::Param(_) | Expr::Agg(_) => false,
            Expr::Not(x) | Expr::Neg(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.references(col),
            Expr::Sub(s, left) => s.correlated || left.as_ref().is_some_and(|l| l.references(col)),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Bin(_, _, a, b) | Expr::Like(a, b, _, _) => a.references(col) || b.references(col),
            Expr::InList(x, items, _) => x.references(col) || items.iter().any(|i| i.references(col)),
            Expr::Case(op, arms, el) => {
                op.as_ref().is_some_and(|o| o.references(col))
                    || arms.iter().any(|(c, r)| c.references(col) || r.references(col))
                    || el.as_ref().is_some_and(|e| e.references(col))
            }
            Expr::Func(_, args) => args.iter().any(|a| a.references(col)),
        }
    }

    /// The first column this expression reads outside aggregates and outside `allowed` subtrees (the
    /// GROUP BY expressions, compared by their debug form), for PostgreSQL's 42803 check.
    pub fn ungrouped_column(&self, allowed: &[String]) -> Option<usize> {
        if allowed.iter().any(|a| *a == format!("{self:?}")) {
            return None;
        }
        match self {
            Expr::Column(i) => Some(*i),
            Expr::Const(_) | Expr::Param(_) | Expr::Agg(_) | Expr::Sub(..) => None,
            Expr::Not(x) | Expr::Neg(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.ungrouped_column(allowed),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Bin(_, _, a, b) | Expr::Like(a, b, _, _) => {
                a.ungrouped_column(allowed).or_else(|| b.ungrouped_column(allowed))
            }
            Expr::InList(x, items, _) => x.ungrouped_column(allowed).or_else(|| items.iter().find_map(|i| i.ungrouped_column(allowed))),
            Expr::Case(op, arms, el) => op
                .as_ref()
                .and_then(|o| o.ungrouped_column(allowed))
                .or_else(|| arms.iter().find_map(|(c, r)| c.ungrouped_column(allowed).or_else(|| r.ungrouped_column(allowed))))
                .or_else(|| el.as_ref().and_then(|e| e.ungrouped_column(allowed))),
            Expr::Func(_, args) => args.iter().find_map(|a| a.ungrouped_column(allowed)),
        }
    }

    pub fn eval(&self, row: &[Value], env: &Env) -> SqlResult<Value> {
        Ok(match self {
            Expr::Const(v) => v.clone(),
            // A row shorter than the scope (an empty group) reads NULL, never out of bounds.
            Expr::Column(i) => row.get(*i).cloned().unwrap_or(Value::Null),
            Expr::Param(i) => {
                env.params.get(*i).cloned().ok_or_else(|| SqlError::new("08P01", format!("no value for parameter ${}", i + 1)))?
            }
            Expr::Agg(i) => env.aggs.get(*i).cloned().ok_or_else(|| SqlError::new("42803", "aggregate functions are not allowed here"))?,
            Expr::Not(x) => match truth(&x.eval(row, env)?) {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Expr::Neg(x) => match x.eval(row, env)? {
                Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(|| SqlError::out_of_range("bigint"))?),
                Value::Float(f) => Value::Float(-f),
                Value::Numeric(d) => Value::Numeric(-d),
                Value::Null => Value::Null,
                v => return Err(SqlError::new("42883", format!("operator does not exist: - {}", v.natural_type().name()))),
            },
            Expr::And(a, b) => connective(a, b, false, row, env)?,
            Expr::Or(a, b) => connective(a, b, true, row, env)?,
            Expr::IsNull(x, negated) => Value::Bool(x.eval(row, env)?.is_null() != *negated),
            Expr::InList(x, items, negated) => {
                let v = x.eval(row, env)?;
                membership(&v, items.iter().map(|i| i.eval(row, env)), *negated)?
            }
            Expr::Like(x, p, negated, ci) => match (x.eval(row, env)?, p.eval(row, env)?) {
                (Value::Text(s), Value::Text(p)) => {
                    let m = if *ci { like(&s.to_lowercase(), &p.to_lowercase()) } else { like(&s, &p) };
                    Value::Bool(m != *negated)
                }
                _ => Value::Null,
            },
            Expr::Case(op, arms, el) => {
                let opv = op.as_ref().map(|o| o.eval(row, env)).transpose()?;
                for (c, r) in arms {
                    let cv = c.eval(row, env)?;
                    let hit = match &opv {
                        Some(o) => o.compare(&cv) == Some(Ordering::Equal),
                        None => truth(&cv) == Some(true),
                    };
                    if hit {
                        return r.eval(row, env);
                    }
                }
                match el {
                    Some(e) => e.eval(row, env)?,
                    None => Value::Null,
                }
            }
            Expr::Cast(x, ty) => x.eval(row, env)?.cast(*ty)?,
            Expr::Bin(op, ty, a, b) => binop(*op, *ty, a.eval(row, env)?, b.eval(row, env)?)?,
            Expr::Func(name, args) => {
                let vals = args.iter().map(|a| a.eval(row, env)).collect::<SqlResult<Vec<_>>>()?;
                func(name, vals, env)?
            }
            Expr::Sub(s, left) => {
                let runner = env.sub.ok_or_else(|| SqlError::unsupported("subqueries are not allowed here"))?;
                let fresh;
                let rows: &Vec<Vec<Value>> = if s.correlated {
                    fresh = runner.run(&s.plan, row, env)?;
                    &fresh
                } else {
                    match s.cache.get() {
                        Some(r) => r,
                        None => {
                            let r = runner.run(&s.plan, &[], env)?;
                            s.cache.get_or_init(|| r)
                        }
                    }
                };
                match s.kind {
                    SubKind::Exists => Value::Bool(!rows.is_empty()),
                    SubKind::Array => {
                        let items: Vec<String> =
                            rows.iter().map(|r| r[0].to_text(r[0].natural_type()).unwrap_or_else(|| "NULL".into())).collect();
                        Value::Text(format!("{{{}}}", items.join(",")))
                    }
                    SubKind::Scalar => match rows.len() {
                        0 => Value::Null,
                        1 => rows[0][0].clone(),
                        _ => return Err(SqlError::new("21000", "more than one row returned by a subquery used as an expression")),
                    },
                    SubKind::In(negated) => {
                        let v = left.as_ref().expect("IN subquery has a left operand").eval(row, env)?;
                        membership(&v, rows.iter().map(|r| Ok(r[0].clone())), negated)?
                    }
                }
            }
        })
    }
}

/// AND (`dominant` false) and OR (`dominant` true) in SQL's three-valued logic: the dominant value
/// decides alone, short-circuiting the right side.
fn connective(a: &Expr, b: &Expr, dominant: bool, row: &[Value], env: &Env) -> SqlResult<Value> {
    let a = truth(&a.eval(row, env)?);
    if a == Some(dominant) {
        return Ok(Value::Bool(dominant));
    }
    Ok(match (a, truth(&b.eval(row, env)?)) {
        (_, Some(x)) if x == dominant => Value::Bool(dominant),
        (Some(_), Some(_)) => Value::Bool(!dominant),
        _ => Value::Null,
    })
}

/// `v [NOT] IN (candidates)`: true on a match, NULL if no match but a NULL was compared, else false.
fn membership(v: &Value, candidates: impl Iterator<Item = SqlResult<Value>>, negated: bool) -> SqlResult<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut saw_null = false;
    for c in candidates {
        match v.compare(&c?) {
            Some(Ordering::Equal) => return Ok(Value::Bool(!negated)),
            None => saw_null = true,
            _ => {}
        }
    }
    Ok(if saw_null { Value::Null } else { Value::Bool(negated) })
}

/// SQL LIKE with `%` and `_` (backslash escapes the next character).
pub fn like(s: &str, p: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = p.chars().collect();
    fn go(s: &[char], p: &[char]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some('%') => (0..=s.len()).any(|i| go(&s[i..], &p[1..])),
            Some('_') => !s.is_empty() && go(&s[1..], &p[1..]),
            Some('\\') if p.len() > 1 => s.first() == Some(&p[1]) && go(&s[1..], &p[2..]),
            Some(c) => s.first() == Some(c) && go(&s[1..], &p[1..]),
        }
    }
    go(&s, &p)
}

fn binop(op: BinOp, ty: DataType, a: Value, b: Value) -> SqlResult<Value> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let cmp = |o: fn(Ordering) -> bool| -> SqlResult<Value> { Ok(a.compare(&b).map(|c| Value::Bool(o(c))).unwrap_or(Value::Null)) };
    match op {
        BinOp::Eq => return cmp(|c| c == Ordering::Equal),
        BinOp::Ne => return cmp(|c| c != Ordering::Equal),
        BinOp::Lt => return cmp(|c| c == Ordering::Less),
        BinOp::Le => return cmp(|c| c != Ordering::Greater),
        BinOp::Gt => return cmp(|c| c == Ordering::Greater),
        BinOp::Ge => return cmp(|c| c != Ordering::Less),
        BinOp::Concat => {
            let t = |v: Value| v.to_text(v.natural_type()).unwrap_or_default();
            return Ok(Value::Text(t(a) + &t(b)));
        }
        BinOp::Regex(negated) => {
            let t = |v: &Value| v.to_text(v.natural_type()).unwrap_or_default();
            let re = regex::Regex::new(&t(&b)).map_err(|e| SqlError::new("2201B", format!("invalid regular expression: {e}")))?;
            return Ok(Value::Bool(re.is_match(&t(&a)) != negated));
        }
        _ => {}
    }
    if ty.is_integer() {
        let (x, y) = match (a.cast(DataType::Int8)?, b.cast(DataType::Int8)?) {
            (Value::Int(x), Value::Int(y)) => (x, y),
            _ => unreachable!("cast to int8 yields Int"),
        };
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div | BinOp::Mod if y == 0 => return Err(SqlError::new("22012", "division by zero")),
            BinOp::Div => x.checked_div(y),
            BinOp::Mod => x.checked_rem(y),
            _ => unreachable!("comparisons returned above"),
        };
        let r = r.ok_or_else(|| SqlError::out_of_range(&ty.name()))?;
        return Value::Int(r).cast(ty);
    }
    if ty == DataType::Numeric {
        let (x, y) = match (a.cast(DataType::Numeric)?, b.cast(DataType::Numeric)?) {
            (Value::Numeric(x), Value::Numeric(y)) => (x, y),
            _ => unreachable!("cast to numeric yields Numeric"),
        };
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            BinOp::Div | BinOp::Mod if y.is_zero() => return Err(SqlError::new("22012", "division by zero")),
            BinOp::Div => x.checked_div(y),
            BinOp::Mod => x.checked_rem(y),
            _ => unreachable!("comparisons returned above"),
        };
        return Ok(Value::Numeric(r.ok_or_else(|| SqlError::out_of_range("numeric"))?));
    }
    let (x, y) = match (a.cast(DataType::Float8)?, b.cast(DataType::Float8)?) {
        (Value::Float(x), Value::Float(y)) => (x, y),
        _ => unreachable!("cast to float8 yields Float"),
    };
    Ok(Value::Float(match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div if y == 0.0 => return Err(SqlError::new("22012", "division by zero")),
        BinOp::Div => x / y,
        BinOp::Mod => x % y,
        _ => unreachable!("comparisons returned above"),
    }))
}

fn func(name: &str, args: Vec<Value>, env: &Env) -> SqlResult<Value> {
    let text = |v: &Value| v.to_text(v.natural_type());
    Ok(match (name, args.as_slice()) {
        ("coalesce", _) => args.into_iter().find(|v| !v.is_null()).unwrap_or(Value::Null),
        ("nullif", [a, b]) => {
            if a.compare(b) == Some(Ordering::Equal) {
                Value::Null
            } else {
                a.clone()
            }
        }
        ("greatest", _) => args.into_iter().filter(|v| !v.is_null()).max_by(|a, b| a.sort_cmp(b)).unwrap_or(Value::Null),
        ("least", _) => args.into_iter().filter(|v| !v.is_null()).min_by(|a, b| a.sort_cmp(b)).unwrap_or(Value::Null),
        ("concat", _) => Value::Text(args.iter().filter_map(text).collect()),
        (_, [Value::Null, ..]) => Value::Null,
        ("lower", [v]) => Value::Text(text(v).unwrap_or_default().to_lowercase()),
        ("upper", [v]) => Value::Text(text(v).unwrap_or_default().to_uppercase()),
        ("length" | "char_length", [v]) => Value::Int(text(v).unwrap_or_default().chars().count() as i64),
        ("octet_length", [v]) => Value::Int(match v {
            Value::Bytea(b) => b.len() as i64,
            v => text(v).unwrap_or_default().len() as i64,
        }),
        ("btrim", [v]) => Value::Text(text(v).unwrap_or_default().trim().to_string()),
        ("ltrim", [v]) => Value::Text(text(v).unwrap_or_default().trim_start().to_string()),
        ("rtrim", [v]) => Value::Text(text(v).unwrap_or_default().trim_end().to_string()),
        ("replace", [s, from, to]) => {
            Value::Text(text(s).unwrap_or_default().replace(&text(from).unwrap_or_default(), &text(to).unwrap_or_default()))
        }
        ("substr" | "substring", [s, start, rest @ ..]) => {
            let s: Vec<char> = text(s).unwrap_or_default().chars().collect();
            let start = match start.clone().cast(DataType::Int8)? {
                Value::Int(i) => i,
                _ => return Ok(Value::Null),
            };
            let len = match rest.first().map(|l| l.clone().cast(DataType::Int8)).transpose()? {
                Some(Value::Int(l)) if l < 0 => return Err(SqlError::new("22011", "negative substring length not allowed")),
                Some(Value::Int(l)) => Some(l),
                _ => None,
            };
            let from = (start - 1).max(0) as usize;
            let to = match len {
                Some(l) => (start - 1 + l).max(0) as usize,
                None => s.len(),
            };
            Value::Text(s.get(from.min(s.len())..to.min(s.len())).unwrap_or(&[]).iter().collect())
        }
        ("md5", [v]) => Value::Text(hex::encode(md5_digest(text(v).unwrap_or_default().as_bytes()))),
        ("abs", [Value::Int(i)]) => Value::Int(i.checked_abs().ok_or_else(|| SqlError::out_of_range("bigint"))?),
        ("abs", [Value::Float(f)]) => Value::Float(f.abs()),
        ("abs", [Value::Numeric(d)]) => Value::Numeric(d.abs()),
        ("round", [v]) | ("round", [v, Value::Null]) => round(v, 0)?,
        ("round", [v, places]) => match places.clone().cast(DataType::Int4)? {
            Value::Int(p) => round(v, p as i32)?,
            _ => Value::Null,
        },
        ("floor", [Value::Float(f)]) => Value::Float(f.floor()),
        ("ceil" | "ceiling", [Value::Float(f)]) => Value::Float(f.ceil()),
        ("floor", [v]) => Value::Numeric(numeric(v)?.floor()),
        ("ceil" | "ceiling", [v]) => Value::Numeric(numeric(v)?.ceil()),
        ("now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp", []) => Value::Timestamptz(env.now_us),
        ("clock_timestamp", []) => Value::Timestamptz(chrono::Utc::now().timestamp_micros()),
        ("pg_get_userbyid", [v]) => match v {
            Value::Int(oid) if *oid == crate::sql::pg_catalog::OWNER_OID => Value::Text("admin".into()),
            _ => Value::Text("unknown (OID not found)".into()),
        },
        ("pg_table_is_visible" | "pg_type_is_visible", [_]) => Value::Bool(true),
        ("current_setting", [name, ..]) => {
            let n = text(name).unwrap_or_default().to_lowercase();
            match env.settings.and_then(|s| s.get(&n)) {
                Some(v) => Value::Text(v.clone()),
                None => match crate::sql::engine::default_setting(&n) {
                    "" if !matches!(args.get(1), Some(Value::Bool(true))) => {
                        return Err(SqlError::new("42704", format!("unrecognized configuration parameter \"{n}\"")))
                    }
                    "" => Value::Null,
                    v => Value::Text(v.to_string()),
                },
            }
        }
        // set_config(name, value, is_local) returns the value; the session keeps SET values only
        // through SET (an expression cannot change the session).
        ("set_config", [_, value, _]) => Value::Text(text(value).unwrap_or_default()),
        ("pg_encoding_to_char", [_]) => Value::Text("UTF8".into()),
        ("array_to_string", [v, _, ..]) => Value::Text(text(v).unwrap_or_default()),
        ("version", []) => Value::Text(format!("PostgreSQL {} (vouchdb {})", crate::server::PG_VERSION, env!("CARGO_PKG_VERSION"))),
        ("current_database", []) => Value::Text("vouchdb".into()),
        ("current_schema", []) => Value::Text("public".into()),
        ("current_user" | "session_user" | "user", []) => Value::Text(env.user.to_string()),
        _ => return Err(SqlError::new("42883", format!("function {name} does not exist for these argument types"))),
    })
}

fn numeric(v: &Value) -> SqlResult<Decimal> {
    match v.clone().cast(DataType::Numeric)? {
        Value::Numeric(d) => Ok(d),
        _ => Err(SqlError::datatype_mismatch("expected a number")),
    }
}

fn round(v: &Value, places: i32) -> SqlResult<Value> {
    Ok(match v {
        Value::Float(f) => {
            let m = 10f64.powi(places);
            Value::Float((f * m).round() / m)
        }
        v => {
            let d = numeric(v)?;
            Value::Numeric(d.round_dp_with_strategy(places.max(0) as u32, rust_decimal::RoundingStrategy::MidpointAwayFromZero))
        }
    })
}

fn md5_digest(data: &[u8]) -> [u8; 16] {
    // md5 is provided for compatibility (pgbench scripts use it), not for security.
    md5::compute(data).0
}
