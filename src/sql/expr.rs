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
    /// The table column it reads, for a result column's description (RowDescription).
    pub origin: Option<ColumnOrigin>,
    /// 0 for the query's own FROM items; 1 for the query a subquery sits in, and so on: a name
    /// resolves to the nearest level that has it, as in PostgreSQL.
    pub depth: u8,
}

/// Where a result column comes from, as PostgreSQL describes it: the table's oid, the column's
/// number, and its type modifier (`varchar(20)`, `numeric(12,3)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnOrigin {
    pub table: u32,
    pub attnum: i16,
    pub typmod: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    ArrayAgg,
    /// `string_agg(value, separator)`: the separator is `AggCall::extra`.
    StringAgg,
    BoolAnd,
    BoolOr,
}

#[derive(Debug, Clone)]
pub struct AggCall {
    pub func: AggFunc,
    /// None for count(*).
    pub arg: Option<Expr>,
    pub distinct: bool,
    pub ty: DataType,
    /// A second argument (string_agg's separator).
    pub extra: Option<Expr>,
    /// `ORDER BY` inside the call (`array_agg(x ORDER BY y DESC)`): keys with (ascending, nulls first).
    pub order: Vec<(Expr, bool, bool)>,
    /// `FILTER (WHERE …)`: the rows it aggregates.
    pub filter: Option<Expr>,
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
    /// Integer bitwise `&`, `|`, `#` (xor), `<<`, `>>`.
    BitAnd,
    BitOr,
    BitXor,
    Shl,
    Shr,
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
    /// `left op ANY (array)` (`all` false) or `left op ALL (array)`.
    Quantified(BinOp, bool, Box<Expr>, Box<Expr>),
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
    /// `ARRAY(SELECT …)`: the first column's values as an array.
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

/// The fields of a row constructor, `(a, b)` or `ROW(a, …)`, or `None` when `e` is not one.
fn row_items(e: &ast::Expr) -> Option<Vec<&ast::Expr>> {
    match e {
        ast::Expr::Tuple(items) => Some(items.iter().collect()),
        ast::Expr::Nested(inner) => row_items(inner),
        ast::Expr::Function(f) if object_name(&f.name) == "row" && f.name.0.len() == 1 => match &f.args {
            ast::FunctionArguments::List(l) if l.clauses.is_empty() && l.duplicate_treatment.is_none() => l
                .args
                .iter()
                .map(|a| match a {
                    ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => Some(x),
                    _ => None,
                })
                .collect(),
            ast::FunctionArguments::None => Some(vec![]),
            _ => None,
        },
        _ => None,
    }
}

fn row_value_unsupported() -> SqlError {
    SqlError::unsupported(
        "row values are supported only in comparisons (=, <>, <, <=, >, >=, IN, IS [NOT] DISTINCT FROM, IS [NOT] NULL), not as values yet",
    )
}

/// The conjunction of `each` (true when empty).
fn all_of(each: Vec<Expr>) -> Expr {
    each.into_iter().reduce(|a, b| Expr::And(Box::new(a), Box::new(b))).unwrap_or(Expr::Const(Value::Bool(true)))
}

/// The disjunction of `each` (false when empty).
fn any_of(each: Vec<Expr>) -> Expr {
    each.into_iter().reduce(|a, b| Expr::Or(Box::new(a), Box::new(b))).unwrap_or(Expr::Const(Value::Bool(false)))
}

pub fn object_name(n: &ast::ObjectName) -> String {
    n.0.last().and_then(|p| p.as_ident()).map(ident_name).unwrap_or_default()
}

pub fn normalize_ident(i: &ast::Ident) -> String {
    ident_name(i)
}

impl Ctx<'_> {
    fn resolve(&self, qualifier: Option<&str>, name: &str) -> SqlResult<Typed> {
        let all: Vec<usize> = (0..self.scope.len())
            .filter(|&i| self.scope[i].name == name && (qualifier.is_none() || self.scope[i].qualifier.as_deref() == qualifier))
            .collect();
        // The nearest query level that has the name.
        let nearest = all.iter().map(|&i| self.scope[i].depth).min().unwrap_or(0);
        let matches: Vec<usize> = all.into_iter().filter(|&i| self.scope[i].depth == nearest).collect();
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
            // A string literal compared with or assigned to character(n) is blank-padded to n.
            Expr::Const(Value::Text(ref s)) if t.ty == DataType::Text && matches!(hint, DataType::Bpchar(Some(_))) => {
                match Value::Text(s.clone()).cast(hint) {
                    Ok(v) => Typed { expr: Expr::Const(v), ty: hint },
                    Err(_) => Typed { expr: Expr::Cast(Box::new(t.expr), hint), ty: hint },
                }
            }
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
            // A row IS NULL when every field is; IS NOT NULL when no field is (both can be false).
            A::IsNull(x) | A::IsNotNull(x) if row_items(x).is_some() => {
                let negated = matches!(e, A::IsNotNull(_));
                let mut fields = Vec::new();
                for f in row_items(x).unwrap_or_default() {
                    fields.push(Expr::IsNull(Box::new(self.compile(f)?.expr), negated));
                }
                Typed { expr: all_of(fields), ty: DataType::Bool }
            }
            A::IsNull(x) => Typed { expr: Expr::IsNull(Box::new(self.compile(x)?.expr), false), ty: DataType::Bool },
            A::IsNotNull(x) => Typed { expr: Expr::IsNull(Box::new(self.compile(x)?.expr), true), ty: DataType::Bool },
            A::IsDistinctFrom(l, r) => self.distinct(l, r, false)?,
            A::IsNotDistinctFrom(l, r) => self.distinct(l, r, true)?,
            // `(a, b) [NOT] IN ((1, 2), (3, 4))`: the row equals one of the rows.
            A::In { expr, target: ast::InTarget::List(list), negated, .. } if row_items(expr).is_some() => {
                let mut any = Vec::new();
                for item in list {
                    any.push(self.binary(expr, &B::Eq, item)?.expr);
                }
                let any = any_of(any);
                Typed { expr: if *negated { Expr::Not(Box::new(any)) } else { any }, ty: DataType::Bool }
            }
            A::In { expr, target: ast::InTarget::Subquery(_), .. } if row_items(expr).is_some() => {
                return Err(SqlError::unsupported("a row compared with a subquery (row IN (SELECT …)) is not supported yet"));
            }
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
            A::Cast { expr, data_type, .. } if reg_type(data_type).is_some() => {
                let kind = reg_type(data_type).unwrap_or_default();
                // A text expression (not a literal) cast to regclass is a relation name, as
                // SQLAlchemy's `pg_get_serial_sequence(…)::regclass::oid`: look it up by name,
                // schema-qualified or not (NULL when there is no such relation).
                // A parameter (`CAST($1 AS REGCLASS)`) is a name too: drivers send the text.
                let param = matches!(&**expr, ast::Expr::Value(v) if matches!(v.value, ast::Value::Placeholder(_)));
                if kind == "regclass"
                    && (param || !matches!(&**expr, ast::Expr::Value(_)) && self.compile(expr).is_ok_and(|t| t.ty.is_text()))
                {
                    let sql = format!(
                        "COALESCE(__vouch_catalog_oid(CAST(({expr}) AS text)), (SELECT vouch_oid FROM pg_catalog.vouch_objects \
                         WHERE vouch_kind = 'class' AND vouch_sub = 0 AND (vouch_text = ({expr}) OR 'public.' || vouch_text = ({expr}))))"
                    );
                    return self.compile(&crate::sql::parse_expr(&sql)?);
                }
                match reg_cast(kind, expr) {
                    // An oid shown as its relation's name: typed regclass, as clients describe it.
                    Some(sql) if kind == "regclass" && !matches!(&**expr, ast::Expr::Value(_)) => {
                        Typed { expr: self.compile(&crate::sql::parse_expr(&sql)?)?.expr, ty: DataType::Regclass }
                    }
                    Some(sql) => self.compile(&crate::sql::parse_expr(&sql)?)?,
                    None => {
                        let t = self.compile_as(expr, DataType::Int8)?;
                        Typed { expr: Expr::Cast(Box::new(t.expr), DataType::Int8), ty: DataType::Int8 }
                    }
                }
            }
            A::Cast { expr, data_type, .. } => {
                let ty = DataType::from_ast(data_type)?;
                // `oid_expr::regclass::oid` (or `::bigint`): the oid itself, not its relation's name.
                if let A::Cast { expr: inner, data_type: reg, .. } = &**expr {
                    if ty.is_integer() && reg_type(reg) == Some("regclass") && !matches!(&**inner, ast::Expr::Value(_)) {
                        let t = self.compile(inner)?;
                        if t.ty.is_integer() {
                            return Ok(Typed { expr: Expr::Cast(Box::new(t.expr), ty), ty });
                        }
                    }
                }
                let mut t = self.compile(expr)?;
                if matches!(t.ty, DataType::Bpchar(_)) && ty.is_text() && !matches!(ty, DataType::Bpchar(_)) {
                    // character(n) to text: trailing blanks go.
                    t = bpchar_trimmed(t);
                }
                if t.ty == DataType::Int2Vector && ty.is_text() {
                    // int2vector's text form: the values separated by spaces.
                    let joined = Expr::Func("array_to_string".into(), vec![t.expr, Expr::Const(Value::Text(" ".into()))]);
                    return Ok(Typed { expr: Expr::Cast(Box::new(joined), ty), ty });
                }
                let t = self.coerce(t, ty);
                let cast = Expr::Cast(Box::new(t.expr), ty);
                // `::numeric(p, s)` rounds to the scale and checks the precision, as a column would.
                match crate::sql::value::numeric_typmod(data_type)? {
                    Some((p, s)) => Typed {
                        expr: Expr::Func(
                            "__vouch_numeric_fit".into(),
                            vec![cast, Expr::Const(Value::Int(p as i64)), Expr::Const(Value::Int(s as i64))],
                        ),
                        ty,
                    },
                    None => Typed { expr: cast, ty },
                }
            }
            // pg_typeof(x): the name of x's type (regtype prints as the name).
            A::Function(f)
                if object_name(&f.name) == "pg_typeof" && matches!(&f.args, ast::FunctionArguments::List(l) if l.args.len() == 1) =>
            {
                let ast::FunctionArguments::List(l) = &f.args else { unreachable!("matched above") };
                let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(arg)) = &l.args[0] else {
                    return Err(SqlError::syntax("pg_typeof takes one expression"));
                };
                let t = self.compile(arg)?;
                Typed { expr: Expr::Const(Value::Text(t.ty.name())), ty: DataType::Text }
            }
            // to_regtype(name): the type's oid, or NULL when there is no such type (psycopg's TypeInfo).
            A::Function(f)
                if object_name(&f.name) == "to_regtype" && matches!(&f.args, ast::FunctionArguments::List(l) if l.args.len() == 1) =>
            {
                let ast::FunctionArguments::List(l) = &f.args else { unreachable!("matched above") };
                let arg = &l.args[0];
                let sql = format!(
                    "(SELECT min(oid) FROM pg_catalog.pg_type WHERE typname = ({arg}) OR pg_catalog.format_type(oid, NULL) = ({arg}) \
                     OR 'pg_catalog.' || typname = ({arg}))"
                );
                self.compile(&crate::sql::parse_expr(&sql)?)?
            }
            A::Function(f) if object_name(&f.name) == "array" && matches!(f.args, ast::FunctionArguments::Subquery(_)) => {
                let ast::FunctionArguments::Subquery(q) = &f.args else { unreachable!("matched above") };
                self.subquery(q, SubKind::Array, None)?
            }
            A::Tuple(_) => return Err(row_value_unsupported()),
            A::Function(_) if row_items(e).is_some() => return Err(row_value_unsupported()),
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
            A::Array(arr) => {
                let items = arr.elem.iter().map(|e| self.compile(e)).collect::<SqlResult<Vec<_>>>()?;
                let elem = items.iter().filter(|t| !matches!(t.expr, Expr::Const(Value::Null))).map(|t| t.ty).reduce(wider);
                let elem = elem.unwrap_or(DataType::Text);
                let exprs = items.into_iter().map(|t| self.coerce(t, elem).expr).collect();
                Typed { expr: Expr::Func("__array".into(), exprs), ty: DataType::array_of(elem) }
            }
            A::AnyOp { left, compare_op, right, .. } => self.quantified(left, compare_op, right, false)?,
            A::AllOp { left, compare_op, right } => self.quantified(left, compare_op, right, true)?,
            A::CompoundFieldAccess { root, access_chain } => {
                // `t.col[1]` parses as `t` followed by `.col` and `[1]`: the leading dotted names are
                // one column reference (Django's `con.conkey[1]`).
                let names = access_chain.iter().take_while(|a| matches!(a, ast::AccessExpr::Dot(ast::Expr::Identifier(_)))).count();
                let (mut t, rest) = match &**root {
                    ast::Expr::Identifier(first) if names > 0 => {
                        let mut parts = vec![first.clone()];
                        for a in &access_chain[..names] {
                            if let ast::AccessExpr::Dot(ast::Expr::Identifier(i)) = a {
                                parts.push(i.clone());
                            }
                        }
                        (self.compile(&ast::Expr::CompoundIdentifier(parts))?, &access_chain[names..])
                    }
                    _ => (self.compile(root)?, &access_chain[..]),
                };
                for a in rest {
                    // `(record).field`: the field's position in the record's value.
                    if let (ast::AccessExpr::Dot(ast::Expr::Identifier(f)), DataType::Record(fields)) = (a, t.ty) {
                        let name = if f.quote_style.is_some() { f.value.clone() } else { f.value.to_lowercase() };
                        let Some(i) = fields.iter().position(|(n, _)| *n == name) else {
                            return Err(SqlError::new("42703", format!("could not identify column \"{name}\" in record data type")));
                        };
                        let index = Expr::Const(Value::Int(i as i64 + 1));
                        t = Typed { expr: Expr::Func("__subscript".into(), vec![t.expr, index]), ty: fields[i].1 };
                        continue;
                    }
                    let ast::AccessExpr::Subscript(ast::Subscript::Index { index }) = a else {
                        return Err(SqlError::unsupported(format!("expression not supported yet: {e}")));
                    };
                    let elem = t.ty.elem().ok_or_else(|| {
                        SqlError::new("42804", format!("cannot subscript type {} because it does not support subscripting", t.ty.name()))
                    })?;
                    let mut i = self.compile_as(index, DataType::Int4)?.expr;
                    if t.ty == DataType::Int2Vector {
                        // int2vector subscripts start at 0 (`indoption[0]` is the first column's).
                        i = Expr::Bin(BinOp::Add, DataType::Int4, Box::new(i), Box::new(Expr::Const(Value::Int(1))));
                    }
                    t = Typed { expr: Expr::Func("__subscript".into(), vec![t.expr, i]), ty: elem };
                }
                t
            }
            A::TypedString(ts) => {
                let ty = DataType::from_ast(&ts.data_type)?;
                let text = match &ts.value.value {
                    ast::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Typed { expr: Expr::Const(Value::parse(&text, ty)?), ty }
            }
            // TRIM([BOTH | LEADING | TRAILING] [chars] FROM s): btrim, ltrim or rtrim (spaces by default).
            A::Trim { expr, trim_where, trim_what, trim_characters } => {
                let f = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "ltrim",
                    Some(ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "btrim",
                };
                let chars = match (trim_what, trim_characters.as_deref()) {
                    (Some(w), _) => format!(", ({w})"),
                    (None, Some([c])) => format!(", ({c})"),
                    (None, None | Some([])) => String::new(),
                    (None, Some(_)) => return Err(SqlError::new("42883", "function trim takes at most two arguments")),
                };
                self.compile(&crate::sql::parse_expr(&format!("{f}(({expr}){chars})"))?)?
            }
            // SUBSTRING(s FROM start [FOR count]); with a text FROM and no FOR, the part of s matching a
            // POSIX regular expression (its first parenthesized group, if any), as in PostgreSQL.
            A::Substring { expr, substring_from, substring_for, .. } => {
                let s = self.compile(expr)?.expr;
                let from = substring_from.as_ref().map(|f| self.compile(f)).transpose()?;
                let count = substring_for.as_ref().map(|n| self.compile_as(n, DataType::Int8)).transpose()?;
                let args = match (from, count) {
                    (Some(p), None) if p.ty.is_text() => {
                        return Ok(Typed { expr: Expr::Func("__vouch_substring_regex".into(), vec![s, p.expr]), ty: DataType::Text });
                    }
                    (Some(p), Some(_)) if p.ty.is_text() => {
                        return Err(SqlError::unsupported("SUBSTRING(… SIMILAR … ESCAPE …) is not supported yet"));
                    }
                    (from, count) => {
                        let mut args = vec![s, from.map_or(Expr::Const(Value::Int(1)), |f| f.expr)];
                        args.extend(count.map(|c| c.expr));
                        args
                    }
                };
                Typed { expr: Expr::Func("substr".into(), args), ty: DataType::Text }
            }
            other => return Err(SqlError::unsupported(format!("expression not supported yet: {other}"))),
        })
    }

    fn subquery(&mut self, q: &ast::Query, kind: SubKind, left: Option<Typed>) -> SqlResult<Typed> {
        let planner = self.planner.ok_or_else(|| SqlError::unsupported("subqueries are not allowed here"))?;
        let outer: Vec<ScopeCol> =
            self.scope.iter().map(|c| ScopeCol { hidden: true, depth: c.depth.saturating_add(1), ..c.clone() }).collect();
        let (plan, correlated) = planner.plan_subquery(q, &outer, self.params)?;
        let cols = plan.columns();
        let ty = match kind {
            SubKind::Exists => DataType::Bool,
            SubKind::Array => {
                if cols.len() != 1 {
                    return Err(SqlError::syntax("subquery must return only one column"));
                }
                DataType::array_of(cols[0].ty)
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

    /// `left op ANY|ALL (right)`: right is an array, or a subquery (`= ANY (SELECT …)` is IN).
    fn quantified(&mut self, left: &ast::Expr, op: &B, right: &ast::Expr, all: bool) -> SqlResult<Typed> {
        let bop = match op {
            B::Eq => BinOp::Eq,
            B::NotEq => BinOp::Ne,
            B::Lt => BinOp::Lt,
            B::LtEq => BinOp::Le,
            B::Gt => BinOp::Gt,
            B::GtEq => BinOp::Ge,
            other => return Err(SqlError::unsupported(format!("operator {other} with ANY/ALL"))),
        };
        let inner = match right {
            ast::Expr::Nested(x) => &**x,
            x => x,
        };
        if let ast::Expr::Subquery(q) = inner {
            let l = self.compile(left)?;
            return match (bop, all) {
                (BinOp::Eq, false) => self.subquery(q, SubKind::In(false), Some(l)),
                (BinOp::Ne, true) => self.subquery(q, SubKind::In(true), Some(l)),
                _ => Err(SqlError::unsupported("ANY/ALL over a subquery with an operator other than = / <>")),
            };
        }
        let mut l = self.compile(left)?;
        let mut r = self.compile(right)?;
        match r.ty.elem() {
            Some(elem) => l = self.coerce(l, elem),
            None if matches!(r.expr, Expr::Param(_) | Expr::Const(Value::Text(_)) | Expr::Const(Value::Null)) => {
                r = self.coerce(r, DataType::array_of(l.ty))
            }
            None => return Err(SqlError::new("42809", format!("op ANY/ALL (array) requires array on right side, not {}", r.ty.name()))),
        }
        comparable(l.ty, r.ty.elem().unwrap_or(l.ty))?;
        Ok(Typed { expr: Expr::Quantified(bop, all, Box::new(l.expr), Box::new(r.expr)), ty: DataType::Bool })
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
        match (row_items(left), row_items(right)) {
            (Some(l), Some(r)) if !matches!(op, B::And | B::Or) => return self.row_compare(&l, op, &r),
            (l, r) if l.is_some() != r.is_some() && !matches!(op, B::And | B::Or) => {
                let other = if l.is_some() { right } else { left };
                if matches!(other, ast::Expr::Subquery(_)) {
                    return Err(SqlError::unsupported("a row compared with a subquery is not supported yet"));
                }
                let ty = self.compile(other)?.ty.name();
                let (l, r) = if l.is_some() { ("record".to_string(), ty) } else { (ty, "record".to_string()) };
                return Err(SqlError::new("42883", format!("operator does not exist: {l} {op} {r}")));
            }
            _ => {}
        }
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
            B::BitwiseAnd => BinOp::BitAnd,
            B::BitwiseOr => BinOp::BitOr,
            B::PGBitwiseXor | B::BitwiseXor => BinOp::BitXor,
            B::PGBitwiseShiftLeft => BinOp::Shl,
            B::PGBitwiseShiftRight => BinOp::Shr,
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
        // character(n): trailing blanks are insignificant when compared with another type or width,
        // and dropped by `||` (which works on text).
        let bpchar = |t: &Typed| matches!(t.ty, DataType::Bpchar(_));
        if bop == BinOp::Concat || (bpchar(&l) || bpchar(&r)) && l.ty != r.ty {
            if bpchar(&l) {
                l = bpchar_trimmed(l);
            }
            if bpchar(&r) {
                r = bpchar_trimmed(r);
            }
        }
        let ty = match bop {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                comparable(l.ty, r.ty)?;
                DataType::Bool
            }
            BinOp::Concat => DataType::Text,
            BinOp::Regex(_) => DataType::Bool,
            BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor | BinOp::Shl | BinOp::Shr => {
                if !(l.ty.is_integer() && r.ty.is_integer()) {
                    return Err(SqlError::new("42883", format!("operator does not exist: {} {} {}", l.ty.name(), op, r.ty.name())));
                }
                // A shift keeps its left operand's type; the others take the wider one.
                if matches!(bop, BinOp::Shl | BinOp::Shr) {
                    l.ty
                } else {
                    wider(l.ty, r.ty)
                }
            }
            _ => {
                if !(l.ty.is_numeric() && r.ty.is_numeric()) {
                    return Err(SqlError::new("42883", format!("operator does not exist: {} {} {}", l.ty.name(), op, r.ty.name())));
                }
                wider(l.ty, r.ty)
            }
        };
        Ok(Typed { expr: Expr::Bin(bop, ty, Box::new(l.expr), Box::new(r.expr)), ty })
    }

    /// `(l1, l2, …) op (r1, r2, …)`, as PostgreSQL compares rows: `=` when every pair is equal, `<>`
    /// when some pair differs, and the ordering operators field by field from the left, decided by
    /// the first pair that differs (NULL when that pair, or an earlier one, has a NULL). Written out
    /// as comparisons of the fields, so a row equality on key columns can still use an index.
    fn row_compare(&mut self, l: &[&ast::Expr], op: &B, r: &[&ast::Expr]) -> SqlResult<Typed> {
        if l.len() != r.len() {
            return Err(SqlError::syntax("unequal number of entries in row expressions"));
        }
        let strict = match op {
            B::Eq | B::NotEq => None,
            B::Lt | B::LtEq => Some(B::Lt),
            B::Gt | B::GtEq => Some(B::Gt),
            other => {
                // As PostgreSQL: the fields' operator must exist, and then must yield a boolean.
                let first = match (l.first(), r.first()) {
                    (Some(a), Some(b)) => self.binary(a, other, b)?.ty.name(),
                    _ => "record".to_string(),
                };
                return Err(SqlError::new("42804", format!("row comparison operator must yield type boolean, not type {first}")));
            }
        };
        let pairs: Vec<(&ast::Expr, &ast::Expr)> = l.iter().copied().zip(r.iter().copied()).collect();
        let expr = match strict {
            None => {
                let mut each = Vec::new();
                for (a, b) in pairs {
                    each.push(self.binary(a, op, b)?.expr);
                }
                if *op == B::Eq {
                    all_of(each)
                } else {
                    any_of(each)
                }
            }
            Some(strict) => {
                // a < x OR (a = x AND (b < y OR (b = y AND c <= z))), from the last field outwards.
                let Some(((la, lb), rest)) = pairs.split_last() else {
                    return Err(SqlError::syntax("a row comparison needs at least one field"));
                };
                let mut acc = self.binary(la, op, lb)?.expr;
                for (a, b) in rest.iter().rev() {
                    let before = self.binary(a, &strict, b)?.expr;
                    let equal = self.binary(a, &B::Eq, b)?.expr;
                    acc = Expr::Or(Box::new(before), Box::new(Expr::And(Box::new(equal), Box::new(acc))));
                }
                // With `a >= x AND …` in front (`a <= x` for `<`), the planner can scan a key or index
                // range from the first field. The result is the same: where that bound is false the
                // comparison is false, and where it is NULL the comparison is NULL.
                if let [(a, b), _, ..] = pairs.as_slice() {
                    let bound = self.binary(a, if strict == B::Lt { &B::LtEq } else { &B::GtEq }, b)?.expr;
                    acc = Expr::And(Box::new(bound), Box::new(acc));
                }
                acc
            }
        };
        Ok(Typed { expr, ty: DataType::Bool })
    }

    /// `l IS [NOT] DISTINCT FROM r`: equality where NULL equals NULL, never NULL itself. Rows are
    /// distinct when some pair of fields is.
    fn distinct(&mut self, l: &ast::Expr, r: &ast::Expr, not: bool) -> SqlResult<Typed> {
        let expr = match (row_items(l), row_items(r)) {
            (Some(li), Some(ri)) => {
                if li.len() != ri.len() {
                    return Err(SqlError::syntax("unequal number of entries in row expressions"));
                }
                let mut each = Vec::new();
                for (a, b) in li.iter().zip(&ri) {
                    each.push(self.distinct(a, b, false)?.expr);
                }
                any_of(each)
            }
            // The same typing as `=` (untyped sides take the other's type), then the null-safe test.
            _ => match self.binary(l, &B::Eq, r)?.expr {
                Expr::Bin(BinOp::Eq, _, a, b) => Expr::Func("__distinct".into(), vec![*a, *b]),
                other => return Err(SqlError::new("XX000", format!("IS DISTINCT FROM compiled to {other:?}"))),
            },
        };
        Ok(Typed { expr: if not { Expr::Not(Box::new(expr)) } else { expr }, ty: DataType::Bool })
    }

    fn function(&mut self, f: &ast::Function) -> SqlResult<Typed> {
        let name = object_name(&f.name);
        let mut order_by: &[ast::OrderByExpr] = &[];
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (vec![], false, false),
            ast::FunctionArguments::List(l) => {
                for c in &l.clauses {
                    match c {
                        ast::FunctionArgumentClause::OrderBy(o) => order_by = o,
                        other => return Err(SqlError::unsupported(format!("{other} in a function call"))),
                    }
                }
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
            "array_agg" => Some(AggFunc::ArrayAgg),
            "string_agg" => Some(AggFunc::StringAgg),
            "bool_and" | "every" => Some(AggFunc::BoolAnd),
            "bool_or" => Some(AggFunc::BoolOr),
            _ => None,
        };
        // The length of a character(n) value does not count its trailing blanks.
        if matches!(name.as_str(), "length" | "char_length" | "character_length") && args.len() == 1 {
            let a = self.compile(&args[0])?;
            if matches!(a.ty, DataType::Bpchar(_)) {
                return Ok(Typed { expr: Expr::Func("length".into(), vec![bpchar_trimmed(a).expr]), ty: DataType::Int4 });
            }
        }
        // The `n`th element of an array or vector, counting from 1 whatever its lower bound.
        if name == "__vouch_elem" {
            let [a, n] = args.as_slice() else { return Err(SqlError::new("XX000", "__vouch_elem takes two arguments")) };
            let (a, n) = (self.compile(a)?, self.compile_as(n, DataType::Int4)?);
            let ty = a.ty.elem().ok_or_else(|| SqlError::new("42804", format!("{} is not an array", a.ty.name())))?;
            return Ok(Typed { expr: Expr::Func("__subscript".into(), vec![a.expr, n.expr]), ty });
        }
        // A row of `information_schema._pg_expandarray(a)`, made by the select-list rewrite
        // (plan.rs): the record `(x, n)` of an element and its subscript.
        if name == "__vouch_expandarray_row" {
            let [x, n] = args.as_slice() else { return Err(SqlError::new("XX000", "__vouch_expandarray_row takes two arguments")) };
            let (x, n) = (self.compile(x)?, self.compile_as(n, DataType::Int4)?);
            let ty = DataType::record(&[("x", x.ty), ("n", DataType::Int4)]);
            return Ok(Typed { expr: Expr::Func("__array".into(), vec![x.expr, n.expr]), ty });
        }
        if let Some(func) = agg {
            let mut extra = None;
            if func == AggFunc::StringAgg {
                let [_, sep] = args.as_slice() else {
                    return Err(SqlError::new("42883", "function string_agg takes a value and a separator"));
                };
                let mut inner = Ctx { scope: self.scope, params: self.params, aggs: None, planner: self.planner };
                extra = Some(inner.compile_as(sep, DataType::Text)?.expr);
            }
            let arg = match (star, args.as_slice()) {
                (true, []) if func == AggFunc::Count => None,
                (false, [a]) | (false, [a, _]) if (args.len() == 1) == (func != AggFunc::StringAgg) => {
                    let mut inner = Ctx { scope: self.scope, params: self.params, aggs: None, planner: self.planner };
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
                (AggFunc::Sum, Some(a)) if a.ty == DataType::Numeric => DataType::Numeric,
                (AggFunc::Avg | AggFunc::Sum, Some(a)) if a.ty.is_numeric() => DataType::Float8,
                (AggFunc::Avg | AggFunc::Sum, Some(a)) => {
                    return Err(SqlError::new("42883", format!("function {name}({}) does not exist", a.ty.name())))
                }
                (AggFunc::ArrayAgg, Some(a)) => DataType::array_of(a.ty),
                (AggFunc::StringAgg, _) => DataType::Text,
                (AggFunc::BoolAnd | AggFunc::BoolOr, Some(a)) if a.ty == DataType::Bool => DataType::Bool,
                (AggFunc::BoolAnd | AggFunc::BoolOr, Some(a)) => {
                    return Err(SqlError::new("42883", format!("function {name}({}) does not exist", a.ty.name())))
                }
                (_, Some(a)) => a.ty,
                (_, None) => DataType::Int8,
            };
            let mut order = Vec::new();
            for o in order_by {
                let mut inner = Ctx { scope: self.scope, params: self.params, aggs: None, planner: self.planner };
                let asc = !matches!(o.options.sort, Some(ast::OrderBySort::Desc));
                order.push((inner.compile(&o.expr)?.expr, asc, o.options.nulls_first.unwrap_or(!asc)));
            }
            let filter = match &f.filter {
                Some(w) => {
                    let mut inner = Ctx { scope: self.scope, params: self.params, aggs: None, planner: self.planner };
                    Some(inner.compile_as(w, DataType::Bool)?.expr)
                }
                None => None,
            };
            let aggs = self.aggs.as_deref_mut().ok_or_else(|| SqlError::new("42803", "aggregate functions are not allowed here"))?;
            aggs.push(AggCall { func, arg: arg.map(|a| a.expr), distinct, ty, extra, order, filter });
            return Ok(Typed { expr: Expr::Agg(aggs.len() - 1), ty });
        }
        if let Some(sql) = catalog_function(&name, &args) {
            return self.compile(&crate::sql::parse_expr(&sql)?);
        }
        // A sequence named by a literal (`'s'` or `'s'::regclass`) is kept as its name.
        let seq_name = |e: &ast::Expr| -> Option<String> {
            let e = match e {
                ast::Expr::Cast { expr, data_type, .. } if reg_type(data_type) == Some("regclass") => expr,
                e => e,
            };
            match e {
                ast::Expr::Value(v) => match &v.value {
                    ast::Value::SingleQuotedString(s) => Some(s.clone()),
                    _ => None,
                },
                _ => None,
            }
        };
        let key_type = if args.len() == 2 { DataType::Int4 } else { DataType::Int8 };
        let compiled = args
            .iter()
            .enumerate()
            .map(|(i, a)| match seq_name(a) {
                _ if advisory_type(&name).is_some() => self.compile_as(a, key_type),
                Some(n) if i == 0 && matches!(name.as_str(), "nextval" | "currval" | "setval") => {
                    Ok(Typed { expr: Expr::Const(Value::Text(n)), ty: DataType::Text })
                }
                _ => self.compile(a),
            })
            .collect::<SqlResult<Vec<_>>>()?;
        // Functions of text take a character(n) value as text, without its trailing blanks
        // (`concat`, `coalesce` and the like keep it as it is, as in PostgreSQL).
        let text_function = matches!(
            name.as_str(),
            "lower"
                | "upper"
                | "md5"
                | "substr"
                | "substring"
                | "replace"
                | "repeat"
                | "strpos"
                | "left"
                | "right"
                | "split_part"
                | "starts_with"
                | "reverse"
                | "initcap"
                | "lpad"
                | "rpad"
                | "translate"
                | "ascii"
                | "ltrim"
                | "btrim"
        );
        let compiled: Vec<Typed> = compiled
            .into_iter()
            .map(|t| if text_function && matches!(t.ty, DataType::Bpchar(_)) { bpchar_trimmed(t) } else { t })
            .collect();
        let ty = match (name.as_str(), compiled.as_slice()) {
            ("lower" | "upper" | "btrim" | "ltrim" | "rtrim" | "md5" | "concat" | "substr" | "substring" | "replace" | "repeat", _) => {
                DataType::Text
            }
            ("version" | "current_database" | "current_schema" | "current_user" | "session_user" | "user", []) => DataType::Text,
            ("pg_backend_pid", []) => DataType::Int4,
            ("quote_ident" | "quote_literal" | "quote_nullable", [_]) => DataType::Text,
            ("__vouch_substring_regex", [_, _]) => DataType::Text,
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
            ("pg_encoding_to_char" | "array_to_string", _) => DataType::Text,
            ("nextval" | "currval", [_]) | ("setval", [_, _] | [_, _, _]) | ("lastval", []) => DataType::Int8,
            ("gen_random_uuid", []) => DataType::Uuid,
            ("json_build_object" | "jsonb_build_object", args) if args.len() % 2 == 0 => DataType::Jsonb,
            ("json_build_object" | "jsonb_build_object", _) => {
                return Err(SqlError::new("22023", "argument list must have even number of elements"))
            }
            ("json_build_array" | "jsonb_build_array", _) | ("to_json" | "to_jsonb", [_]) => DataType::Jsonb,
            ("__vouch_rowid", [_]) => DataType::Int8,
            ("__vouch_catalog_oid", [_]) => DataType::Int8,
            ("__vouch_numeric_fit", [a, _, _]) => a.ty,
            ("pg_get_serial_sequence", [_, _]) => DataType::Text,
            ("array_length" | "array_upper" | "array_lower" | "array_position", [a, _]) if a.ty.elem().is_some() => DataType::Int4,
            ("cardinality", [a]) if a.ty.elem().is_some() => DataType::Int4,
            ("string_to_array", [_, _]) => DataType::array_of(DataType::Text),
            ("current_schemas", [_]) => DataType::array_of(DataType::Text),
            ("current_setting", [_] | [_, _]) | ("set_config", [_, _, _]) => DataType::Text,
            ("pg_table_is_visible" | "pg_type_is_visible" | "pg_function_is_visible", [_]) => DataType::Bool,
            ("format_type", [_, _]) => DataType::Text,
            ("pg_sleep", [_]) => DataType::Text,
            // Advisory locks run as statements of their own (engine/advisory.rs); typed here for Describe.
            // The argument count is checked where they run.
            (n, _) if advisory_type(n).is_some() => advisory_type(n).unwrap_or(DataType::Text),
            ("__vouch_require_relation", [a, _]) => a.ty,
            // vouchdb has no partitions: a table's only ancestor is itself.
            // regclass, which is an oid (bigint) here; a table is its own only ancestor and root.
            ("pg_partition_ancestors" | "pg_partition_root", [_]) => DataType::Int8,
            ("shobj_description", [_, _]) => DataType::Text,
            ("pg_get_viewdef" | "pg_get_triggerdef" | "pg_get_functiondef" | "pg_get_statisticsobjdef_columns", [_, ..]) => DataType::Text,
            // No partitioned tables and no rules: NULL, as PostgreSQL gives for other relations.
            ("pg_get_partkeydef" | "pg_get_ruledef", [_, ..]) => DataType::Text,
            // Scan statistics are not kept.
            ("pg_stat_get_numscans", [_]) => DataType::Int8,
            ("pg_relation_size" | "pg_total_relation_size" | "pg_table_size" | "pg_indexes_size", [_]) => DataType::Int8,
            ("pg_size_pretty", [_]) => DataType::Text,
            ("pg_relation_is_publishable" | "pg_is_in_recovery" | "pg_is_wal_replay_paused", _) => DataType::Bool,
            ("pg_get_function_result" | "pg_get_function_arguments" | "pg_get_function_identity_arguments", [_]) => DataType::Text,
            (
                "has_table_privilege"
                | "has_schema_privilege"
                | "has_database_privilege"
                | "has_column_privilege"
                | "has_sequence_privilege"
                | "has_function_privilege",
                [_, ..],
            ) => DataType::Bool,
            ("coalesce" | "nullif" | "greatest" | "least", [first, rest @ ..]) => rest.iter().fold(first.ty, |t, a| wider(t, a.ty)),
            _ => return Err(SqlError::new("42883", format!("function {name}() does not exist or is not supported yet"))),
        };
        let exprs = compiled.into_iter().map(|t| t.expr).collect();
        Ok(Typed { expr: Expr::Func(name, exprs), ty })
    }
}

/// The result type of an advisory-lock function, None for any other name.
fn advisory_type(name: &str) -> Option<DataType> {
    crate::sql::engine::advisory::FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Catalog functions that are lookups in the emulated `pg_catalog`, as SQL over its tables (so they
/// see the same catalog snapshot as the query, and compose with it).
fn catalog_function(name: &str, args: &[ast::Expr]) -> Option<String> {
    let a: Vec<String> = args.iter().map(|a| format!("({a})")).collect();
    let arg = |i: usize| a.get(i).cloned().unwrap_or_else(|| "0".into());
    Some(match (name, a.len()) {
        ("pg_get_userbyid", 1) => format!("COALESCE({}, 'unknown (OID=' || {} || ')')", lookup("role", &arg(0), "0"), arg(0)),
        ("pg_get_indexdef", 1) => lookup("def", &arg(0), "0"),
        // With `pretty`, names visible on the search path are not schema-qualified.
        ("pg_get_indexdef", 3) => {
            format!("CASE WHEN {} THEN {} ELSE {} END", arg(2), lookup("pdef", &arg(0), &arg(1)), lookup("def", &arg(0), &arg(1)))
        }
        ("pg_get_constraintdef", 1 | 2) => lookup("def", &arg(0), "0"),
        ("pg_get_viewdef", 1 | 2) => lookup("def", &arg(0), "0"),
        ("obj_description", 1 | 2) => lookup("comment", &arg(0), "0"),
        ("col_description", 2) => lookup("comment", &arg(0), &arg(1)),
        // Defaults and predicates are stored as expression text, which is what this returns.
        ("pg_get_expr", 2 | 3) => format!("CAST({} AS text)", arg(0)),
        _ => return None,
    })
}

/// SQL for a lookup in the internal `vouch_objects` catalog table.
fn lookup(kind: &str, oid: &str, sub: &str) -> String {
    format!("(SELECT vouch_text FROM pg_catalog.vouch_objects WHERE vouch_kind = '{kind}' AND vouch_oid = {oid} AND vouch_sub = {sub})")
}

/// A character(n) value as text: without its trailing blanks.
fn bpchar_trimmed(t: Typed) -> Typed {
    Typed { expr: Expr::Func("rtrim".into(), vec![t.expr]), ty: DataType::Text }
}

/// The `reg*` type a cast names, if any.
fn reg_type(t: &ast::DataType) -> Option<&'static str> {
    if matches!(t, ast::DataType::Regclass) {
        return Some("regclass");
    }
    let ast::DataType::Custom(name, _) = t else { return None };
    let n = name.to_string().to_ascii_lowercase();
    ["regclass", "regtype", "regnamespace", "regproc", "regprocedure", "regrole"]
        .into_iter()
        .find(|r| n.trim_start_matches("pg_catalog.") == *r)
}

/// `x::regclass` and friends. A string literal is looked up to an oid; any other expression (an oid)
/// becomes the object's name, as PostgreSQL prints a reg* value. None: keep the value as an integer.
fn reg_cast(kind: &str, e: &ast::Expr) -> Option<String> {
    let lit = match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    };
    let by_name = |k: &str, name: &str| {
        format!(
            "(SELECT vouch_oid FROM pg_catalog.vouch_objects WHERE vouch_kind = '{k}' AND vouch_sub = 0 AND vouch_text = '{}')",
            name.replace('\'', "''")
        )
    };
    let by_oid = |k: &str| format!("COALESCE({}, CAST(({e}) AS text))", lookup(k, &format!("({e})"), "0"));
    match (kind, lit) {
        (_, Some(digits)) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => Some(digits),
        ("regclass", Some(name)) if crate::sql::pg_catalog::catalog_table_oid(&name).is_some() => {
            crate::sql::pg_catalog::catalog_table_oid(&name).map(|o| o.to_string())
        }
        ("regclass", Some(name)) => {
            let bare = name.rsplit('.').next().unwrap_or(&name);
            let bare = if bare.starts_with('"') { bare.trim_matches('"').to_string() } else { bare.to_lowercase() };
            // PostgreSQL refuses a name that is not a relation (42P01).
            Some(format!("__vouch_require_relation({}, '{}')", by_name("class", &bare), bare.replace('\'', "''")))
        }
        ("regclass", None) => Some(by_oid("class")),
        ("regtype", Some(name)) => {
            let n = name.trim().trim_start_matches("pg_catalog.").to_lowercase();
            let oid = crate::sql::pg_catalog::TYPES
                .iter()
                .find(|r| r.1 == n || crate::sql::pg_catalog::format_type(r.0, None).as_deref() == Some(n.as_str()))
                .map(|r| r.0)
                .or_else(|| Some(crate::sql::pg_catalog::type_oid(DataType::from_ast(&crate::sql::parse_data_type(&n).ok()?).ok()?)))?;
            Some(oid.to_string())
        }
        ("regtype", None) => Some(format!("pg_catalog.format_type(({e}), NULL)")),
        ("regnamespace", Some(name)) => Some(by_name("namespace", &name)),
        ("regnamespace", None) => Some(by_oid("namespace")),
        // A function is named by its name, which is also how pg_type.typinput and friends hold it.
        ("regproc" | "regprocedure", Some(name)) => {
            let bare = name.trim().trim_start_matches("pg_catalog.");
            Some(format!("'{}'", bare.replace('\'', "''")))
        }
        ("regrole", Some(name)) => Some(by_name("role", &name)),
        ("regrole", None) => Some(by_oid("role")),
        _ => None,
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
    /// Sequences and random values (recorded for replay); `None` where they cannot be used.
    pub gen: Option<&'a dyn Generator>,
}

/// What nextval(), currval(), setval(), lastval(), gen_random_uuid() and pg_get_serial_sequence()
/// need from the engine and the session (implemented in `engine/sequence.rs`).
/// Evaluate an expression that reads no columns (a LIMIT, an advisory-lock key) as `ty`, with the
/// statement's parameters.
pub fn eval_constant(e: &ast::Expr, ty: DataType, params: &[Value]) -> SqlResult<Value> {
    let mut types = params.iter().map(|p| Some(p.natural_type())).collect();
    Ctx { scope: &[], params: &mut types, aggs: None, planner: None }.compile_as(e, ty)?.expr.eval(&[], &Env { params, ..Env::constant() })
}

impl Env<'static> {
    /// For constant expressions evaluated at plan time (no parameters, no session).
    pub fn constant() -> Env<'static> {
        Env { params: &[], aggs: &[], now_us: 0, user: "", sub: None, outer: &[], settings: None, gen: None }
    }
}

pub trait Generator {
    fn nextval(&self, name: &str) -> SqlResult<i64>;
    fn currval(&self, name: &str) -> SqlResult<i64>;
    fn setval(&self, name: &str, value: i64, called: bool) -> SqlResult<i64>;
    fn lastval(&self) -> SqlResult<i64>;
    fn random_uuid(&self) -> [u8; 16];
    fn serial_sequence(&self, table: &str, column: &str) -> SqlResult<Option<String>>;
    /// The next implicit `_rowid` of a table without a primary key.
    fn rowid(&self, table: u32) -> SqlResult<i64>;
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        _ => None,
    }
}

impl Expr {
    /// Whether a subquery occurs anywhere in this expression.
    pub fn has_subquery(&self) -> bool {
        match self {
            Expr::Sub(..) => true,
            Expr::Const(_) | Expr::Column(_) | Expr::Param(_) | Expr::Agg(_) => false,
            Expr::Not(x) | Expr::Neg(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.has_subquery(),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Bin(_, _, a, b) | Expr::Like(a, b, _, _) | Expr::Quantified(_, _, a, b) => {
                a.has_subquery() || b.has_subquery()
            }
            Expr::InList(x, items, _) => x.has_subquery() || items.iter().any(Expr::has_subquery),
            Expr::Case(op, arms, el) => {
                op.as_ref().is_some_and(|o| o.has_subquery())
                    || arms.iter().any(|(c, r)| c.has_subquery() || r.has_subquery())
                    || el.as_ref().is_some_and(|e| e.has_subquery())
            }
            Expr::Func(_, args) => args.iter().any(Expr::has_subquery),
        }
    }

    /// Whether the expression reads column `col` of its row.
    pub fn references(&self, col: usize) -> bool {
        match self {
            Expr::Column(i) => *i == col,
            Expr::Const(_) | Expr::Param(_) | Expr::Agg(_) => false,
            Expr::Not(x) | Expr::Neg(x) | Expr::IsNull(x, _) | Expr::Cast(x, _) => x.references(col),
            Expr::Sub(s, left) => s.correlated || left.as_ref().is_some_and(|l| l.references(col)),
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Bin(_, _, a, b) | Expr::Like(a, b, _, _) | Expr::Quantified(_, _, a, b) => {
                a.references(col) || b.references(col)
            }
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
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Bin(_, _, a, b) | Expr::Like(a, b, _, _) | Expr::Quantified(_, _, a, b) => {
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
                Value::NumericNaN => Value::NumericNaN,
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
            Expr::Quantified(op, all, l, r) => {
                let lv = l.eval(row, env)?;
                let items = match r.eval(row, env)? {
                    Value::Array(items) => items,
                    Value::Null => return Ok(Value::Null),
                    v => return Err(SqlError::datatype_mismatch(format!("ANY/ALL needs an array, not {}", v.natural_type().name()))),
                };
                // ANY: true if some comparison is true; ALL: false if some is false; else NULL if any was NULL.
                let mut saw_null = false;
                for item in items {
                    match binop(*op, DataType::Bool, lv.clone(), item)? {
                        Value::Bool(b) if b != *all => return Ok(Value::Bool(b)),
                        Value::Bool(_) => {}
                        _ => saw_null = true,
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*all)
                }
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
                    SubKind::Array => Value::Array(rows.iter().map(|r| r[0].clone()).collect()),
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
            BinOp::BitAnd => Some(x & y),
            BinOp::BitOr => Some(x | y),
            BinOp::BitXor => Some(x ^ y),
            // PostgreSQL shifts within the type's width, wrapping into the type as its C shift does.
            BinOp::Shl | BinOp::Shr => {
                let bits = match ty {
                    DataType::Int2 => 16,
                    DataType::Int4 => 32,
                    _ => 64,
                };
                let n = y.rem_euclid(bits) as u32;
                let v = if op == BinOp::Shl { x.wrapping_shl(n) } else { x >> n };
                Some(match ty {
                    DataType::Int2 => v as i16 as i64,
                    DataType::Int4 => v as i32 as i64,
                    _ => v,
                })
            }
            _ => unreachable!("comparisons returned above"),
        };
        let r = r.ok_or_else(|| SqlError::out_of_range(&ty.name()))?;
        return Value::Int(r).cast(ty);
    }
    if ty == DataType::Numeric {
        let (x, y) = match (a.cast(DataType::Numeric)?, b.cast(DataType::Numeric)?) {
            (Value::Numeric(x), Value::Numeric(y)) => (x, y),
            // NaN in, NaN out (also for a zero divisor), as PostgreSQL.
            _ => return Ok(Value::NumericNaN),
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
        ("__array", _) => Value::Array(args),
        ("__distinct", [a, b]) => Value::Bool(match (a.is_null(), b.is_null()) {
            (true, true) => false,
            (false, false) => a.compare(b) != Some(Ordering::Equal),
            _ => true,
        }),
        ("__vouch_require_relation", [Value::Null, name]) => {
            return Err(SqlError::undefined_table(&text(name).unwrap_or_default()));
        }
        ("__vouch_require_relation", [v, _]) => v.clone(),
        ("gen_random_uuid", []) => Value::Uuid(env.gen.map_or_else(crate::sql::engine::sequence::random_uuid, |g| g.random_uuid())),
        ("lastval", []) => Value::Int(generator(env)?.lastval()?),
        (n, _) if advisory_type(n).is_some() => {
            return Err(SqlError::unsupported(format!("{n}() is supported only as a statement of its own: SELECT {n}(key)")))
        }
        ("json_build_object" | "jsonb_build_object", pairs) => {
            let mut obj = serde_json::Map::new();
            for kv in pairs.chunks(2) {
                let key = match &kv[0] {
                    Value::Null => return Err(SqlError::new("22004", "null value not allowed for object key")),
                    Value::Text(k) => k.clone(),
                    k => k.to_text(k.natural_type()).unwrap_or_default(),
                };
                obj.insert(key, kv.get(1).map_or(serde_json::Value::Null, Value::to_json));
            }
            Value::Jsonb(serde_json::Value::Object(obj))
        }
        ("json_build_array" | "jsonb_build_array", items) => {
            Value::Jsonb(serde_json::Value::Array(items.iter().map(Value::to_json).collect()))
        }
        (_, [Value::Null, ..]) => Value::Null,
        ("to_json" | "to_jsonb", [v]) => Value::Jsonb(v.to_json()),
        ("__vouch_numeric_fit", [Value::Numeric(d), Value::Int(p), Value::Int(s)]) => {
            Value::Numeric(crate::sql::value::fit_numeric(*d, *p as u32, *s as u32)?)
        }
        ("__vouch_numeric_fit", [v, _, _]) => v.clone(),
        ("__vouch_catalog_oid", [n]) => {
            crate::sql::pg_catalog::catalog_table_oid(&text(n).unwrap_or_default()).map_or(Value::Null, Value::Int)
        }
        ("nextval", [n]) => Value::Int(generator(env)?.nextval(&text(n).unwrap_or_default())?),
        ("__vouch_rowid", [Value::Int(t)]) => Value::Int(generator(env)?.rowid(u32::try_from(*t).unwrap_or_default())?),
        ("currval", [n]) => Value::Int(generator(env)?.currval(&text(n).unwrap_or_default())?),
        ("setval", [n, v, rest @ ..]) => {
            let called = match rest.first() {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Ok(Value::Null),
            };
            match v.clone().cast(DataType::Int8)? {
                Value::Int(v) => Value::Int(generator(env)?.setval(&text(n).unwrap_or_default(), v, called)?),
                _ => Value::Null,
            }
        }
        ("pg_get_serial_sequence", [t, c]) => {
            generator(env)?.serial_sequence(&text(t).unwrap_or_default(), &text(c).unwrap_or_default())?.map_or(Value::Null, Value::Text)
        }
        ("__subscript", [Value::Array(items), i]) => match i {
            Value::Int(i) if *i >= 1 => items.get(*i as usize - 1).cloned().unwrap_or(Value::Null),
            _ => Value::Null,
        },
        ("array_to_string", [Value::Array(items), sep, rest @ ..]) => {
            let sep = text(sep).unwrap_or_default();
            let null = rest.first().and_then(text);
            let parts: Vec<String> = items.iter().filter_map(|v| text(v).or_else(|| null.clone())).collect();
            Value::Text(parts.join(&sep))
        }
        ("array_length" | "array_upper", [Value::Array(items), dim]) => match dim {
            Value::Int(1) if !items.is_empty() => Value::Int(items.len() as i64),
            _ => Value::Null,
        },
        ("array_lower", [Value::Array(items), dim]) => match dim {
            Value::Int(1) if !items.is_empty() => Value::Int(1),
            _ => Value::Null,
        },
        ("cardinality", [Value::Array(items)]) => Value::Int(items.len() as i64),
        ("array_position", [Value::Array(items), v]) => {
            items.iter().position(|i| i.compare(v) == Some(Ordering::Equal)).map_or(Value::Null, |p| Value::Int(p as i64 + 1))
        }
        ("string_to_array", [s, sep]) => {
            let s = text(s).unwrap_or_default();
            match sep {
                Value::Null => Value::Array(s.chars().map(|c| Value::Text(c.to_string())).collect()),
                sep if s.is_empty() => {
                    let _ = sep;
                    Value::Array(vec![])
                }
                sep => Value::Array(s.split(text(sep).unwrap_or_default().as_str()).map(|p| Value::Text(p.to_string())).collect()),
            }
        }
        ("repeat", [v, n]) => {
            let n = match n {
                Value::Int(n) => (*n).max(0) as usize,
                _ => return Err(SqlError::new("22023", "repeat count must be an integer")),
            };
            let t = text(v).unwrap_or_default();
            if t.len().saturating_mul(n) > 1 << 30 {
                return Err(SqlError::new("54000", "requested length too large"));
            }
            Value::Text(t.repeat(n))
        }
        ("lower", [v]) => Value::Text(text(v).unwrap_or_default().to_lowercase()),
        ("upper", [v]) => Value::Text(text(v).unwrap_or_default().to_uppercase()),
        ("length", [Value::Bytea(b)]) => Value::Int(b.len() as i64),
        ("length" | "char_length", [v]) => Value::Int(text(v).unwrap_or_default().chars().count() as i64),
        ("octet_length", [v]) => Value::Int(match v {
            Value::Bytea(b) => b.len() as i64,
            v => text(v).unwrap_or_default().len() as i64,
        }),
        // PostgreSQL trims spaces only, or the characters of the second argument.
        (f @ ("btrim" | "ltrim" | "rtrim"), [v, chars @ ..]) if chars.len() <= 1 => {
            let set: Vec<char> = match chars {
                [c] => text(c).unwrap_or_default().chars().collect(),
                _ => vec![' '],
            };
            let s = text(v).unwrap_or_default();
            let s = if f == "rtrim" { s.as_str() } else { s.trim_start_matches(set.as_slice()) };
            Value::Text(if f == "ltrim" { s } else { s.trim_end_matches(set.as_slice()) }.to_string())
        }
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
        ("abs" | "floor" | "ceil" | "ceiling" | "round", [Value::NumericNaN, ..]) => Value::NumericNaN,
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
        ("pg_table_is_visible" | "pg_type_is_visible" | "pg_function_is_visible", [_]) => Value::Bool(true),
        // As PostgreSQL: oid 0 (no type, e.g. the typelem of a scalar type) is "-".
        ("format_type", [Value::Int(0), _]) => Value::Text("-".into()),
        ("format_type", [Value::Int(oid), typmod]) => {
            let m = if let Value::Int(m) = typmod { Some(*m) } else { None };
            crate::sql::pg_catalog::format_type(*oid, m).map_or(Value::Text("???".into()), Value::Text)
        }
        ("shobj_description", _) => Value::Null,
        ("pg_partition_ancestors" | "pg_partition_root", [v]) => v.clone().cast(DataType::Int8)?,
        ("pg_sleep", [secs]) => {
            let Value::Float(s) = secs.clone().cast(DataType::Float8)? else { return Ok(Value::Null) };
            // At most a minute per call; the wait does not hold a runtime thread hostage.
            let d = std::time::Duration::from_secs_f64(s.clamp(0.0, 60.0));
            let multi =
                tokio::runtime::Handle::try_current().is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            if multi {
                tokio::task::block_in_place(|| std::thread::sleep(d));
            } else {
                std::thread::sleep(d);
            }
            Value::Text(String::new())
        }
        (
            "pg_get_viewdef"
            | "pg_get_triggerdef"
            | "pg_get_functiondef"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_function_result"
            | "pg_get_function_arguments"
            | "pg_get_function_identity_arguments"
            | "pg_get_partkeydef"
            | "pg_get_ruledef",
            _,
        ) => Value::Null,
        // Per-relation sizes are not tracked (one RocksDB store holds every table).
        ("pg_relation_size" | "pg_total_relation_size" | "pg_table_size" | "pg_indexes_size", _) => Value::Null,
        ("pg_size_pretty", [v]) => match v.clone().cast(DataType::Int8)? {
            Value::Int(b) => Value::Text(size_pretty(b)),
            _ => Value::Null,
        },
        ("pg_relation_is_publishable" | "pg_is_in_recovery" | "pg_is_wal_replay_paused", _) => Value::Bool(false),
        ("pg_stat_get_numscans", [_]) => Value::Int(0),
        // No per-object privileges yet: every role may use every object (policies: docs/THREAT_MODEL.md).
        (
            "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege"
            | "has_column_privilege"
            | "has_sequence_privilege"
            | "has_function_privilege",
            _,
        ) => Value::Bool(true),
        ("current_setting", [name, ..]) => {
            let n = text(name).unwrap_or_default().to_lowercase();
            match env.settings.and_then(|s| s.get(&n)) {
                Some(v) => Value::Text(v.clone()),
                None => match crate::sql::engine::default_setting(&n) {
                    None if !matches!(args.get(1), Some(Value::Bool(true))) => {
                        return Err(SqlError::new("42704", format!("unrecognized configuration parameter \"{n}\"")))
                    }
                    None => Value::Null,
                    Some(v) => Value::Text(v.to_string()),
                },
            }
        }
        // set_config(name, value, is_local) returns the value; the session keeps SET values only
        // through SET (an expression cannot change the session).
        ("set_config", [_, value, _]) => Value::Text(text(value).unwrap_or_default()),
        ("pg_encoding_to_char", [_]) => Value::Text("UTF8".into()),
        ("version", []) => Value::Text(format!("PostgreSQL {} (vouchdb {})", crate::server::PG_VERSION, env!("CARGO_PKG_VERSION"))),
        ("current_database", []) => Value::Text("vouchdb".into()),
        ("current_schema", []) => Value::Text("public".into()),
        // The search path: pg_catalog (implicitly first) and public.
        ("current_schemas", [implicit]) => {
            let mut path = Vec::new();
            if matches!(implicit.clone().cast(DataType::Bool)?, Value::Bool(true)) {
                path.push(Value::Text("pg_catalog".into()));
            }
            path.push(Value::Text("public".into()));
            Value::Array(path)
        }
        ("current_user" | "session_user" | "user", []) => Value::Text(env.user.to_string()),
        ("__vouch_substring_regex", [v, p]) => match (text(v), text(p)) {
            (Some(v), Some(p)) => {
                let re = regex::Regex::new(&p).map_err(|e| SqlError::new("2201B", format!("invalid regular expression: {e}")))?;
                match re.captures(&v) {
                    None => Value::Null,
                    Some(c) => c.get(1).or_else(|| c.get(0)).map_or(Value::Null, |m| Value::Text(m.as_str().to_string())),
                }
            }
            _ => Value::Null,
        },
        ("quote_ident", [v]) => text(v).map_or(Value::Null, |t| Value::Text(crate::sql::pg_catalog::quote_ident(&t))),
        ("quote_literal", [v]) => text(v).map_or(Value::Null, |t| Value::Text(quote_literal(&t))),
        ("quote_nullable", [v]) => Value::Text(text(v).map_or_else(|| "NULL".to_string(), |t| quote_literal(&t))),
        ("pg_backend_pid", []) => {
            env.settings.and_then(|s| s.get(crate::sql::engine::BACKEND_PID)).and_then(|p| p.parse().ok()).map_or(Value::Null, Value::Int)
        }
        _ => return Err(SqlError::new("42883", format!("function {name} does not exist for these argument types"))),
    })
}

fn generator<'a>(env: &Env<'a>) -> SqlResult<&'a dyn Generator> {
    env.gen.ok_or_else(|| SqlError::unsupported("sequence functions are not supported here"))
}

/// `pg_size_pretty`: bytes, kB, MB, GB, TB with PostgreSQL's rounding (switch at 10 × the next unit).
fn size_pretty(b: i64) -> String {
    let mut v = b;
    for unit in ["bytes", "kB", "MB", "GB", "TB"] {
        if v.abs() < 10 * 1024 || unit == "TB" {
            return format!("{v} {unit}");
        }
        v = (v + if v >= 0 { 512 } else { -512 }) / 1024;
    }
    unreachable!("the loop returns at TB")
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

/// PostgreSQL's `quote_literal`: single-quoted, quotes doubled; with a backslash, the E'' form with
/// backslashes doubled.
fn quote_literal(t: &str) -> String {
    let q = t.replace('\'', "''");
    if t.contains('\\') {
        format!("E'{}'", q.replace('\\', "\\\\"))
    } else {
        format!("'{q}'")
    }
}
