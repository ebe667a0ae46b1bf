//! Planning and running SELECT, INSERT, UPDATE and DELETE. A plan is built from the AST without
//! touching data (so Describe can report parameter types and result columns), then run against a
//! transaction.

use super::*;
use crate::sql::expr::{BinOp, SubqueryPlanner, SubqueryRunner};

/// Runs subqueries of a statement against its transaction.
pub(crate) struct Runner<'a> {
    pub(crate) engine: &'a Engine,
    pub(crate) txn: &'a Txn,
}

impl SubqueryRunner for Runner<'_> {
    fn run(&self, plan: &QueryPlan, outer: &[Value], env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        let env = Env { outer, aggs: &[], ..*env };
        self.engine.run_query(plan, self.txn, &env)
    }
}

impl SubqueryPlanner for Engine {
    fn plan_subquery(&self, q: &ast::Query, outer: &[ScopeCol], params: &mut Vec<Option<DataType>>) -> SqlResult<(QueryPlan, bool)> {
        match &*q.body {
            ast::SetExpr::Select(select) if q.with.is_none() => {
                // Set-returning functions in its SELECT list move into FROM first, as at the top level.
                let rewritten = rewrite_select_list_srfs(select)?;
                let select = rewritten.as_ref().unwrap_or(select);
                let (source, mut scope) = self.plan_from(&select.from, &Ctes::new(), outer, params)?;
                let inner = scope.len();
                scope.extend(outer.iter().cloned());
                let series_correlated = source.reads_outer();
                let mut plan = self.plan_core(source, scope, Some(select), q, params)?;
                let correlated = series_correlated || plan.references_beyond(inner);
                if correlated {
                    plan.outer_width = outer.len();
                }
                Ok((plan, correlated))
            }
            _ => {
                let plan = self.plan_query_with(q, &Ctes::new(), outer, params)?;
                let correlated = plan.uses_outer();
                Ok((plan, correlated))
            }
        }
    }
}

pub(crate) type Ctes = HashMap<String, Arc<QueryPlan>>;

/// The working table of a recursive query: set by `Source::Recursive` before each round of its
/// recursive term, read by the `Source::WorkTable` in that term.
#[derive(Debug, Clone, Default)]
pub(crate) struct WorkTable(Arc<std::sync::Mutex<Vec<Vec<Value>>>>);

/// Rows a recursive query may produce before it is stopped (a runaway recursion).
const MAX_RECURSIVE_ROWS: usize = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeriesFunc {
    GenerateSeries,
    Unnest,
    /// `pg_partition_ancestors(rel) [WITH ORDINALITY]`: vouchdb has no partitions, so a table is its
    /// own only ancestor (at depth 1).
    PartitionAncestors,
}

impl Source {
    /// Whether a set-returning function's arguments read the outer query's row.
    fn reads_outer(&self) -> bool {
        match self {
            Source::Series { correlated, .. } => *correlated,
            Source::Join { left, right, .. } => left.reads_outer() || right.reads_outer(),
            Source::Lateral { left, correlated, .. } => left.reads_outer() || *correlated,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JoinKind {
    Inner,
    Left,
}

pub(crate) enum Source {
    /// No FROM: one empty row.
    Unit,
    /// The rows of a planned query (a CTE, a subquery in FROM, one side of a UNION).
    Derived(Arc<QueryPlan>),
    Union {
        parts: Vec<Source>,
        all: bool,
    },
    /// EXCEPT (`intersect` false) or INTERSECT of two parts: distinct rows, or with ALL as multisets.
    SetOp {
        parts: Vec<Source>,
        all: bool,
        intersect: bool,
    },
    /// WITH RECURSIVE: `base` once, then `step` over the rows the previous round added (its
    /// `WorkTable`) until a round adds none; UNION (not ALL) drops rows already produced.
    Recursive {
        base: Box<Source>,
        step: Box<Source>,
        all: bool,
        work: WorkTable,
    },
    /// The rows of the previous round of the recursive query being run.
    WorkTable(WorkTable),
    Values(Vec<Vec<Expr>>),
    /// Rows computed at plan time (the `pg_catalog` emulation).
    Rows(Vec<Vec<Value>>),
    /// A set-returning function in FROM (`generate_series`, `unnest`); its arguments are evaluated
    /// over the outer query's row (they may be correlated).
    Series {
        func: SeriesFunc,
        args: Vec<Expr>,
        correlated: bool,
        /// WITH ORDINALITY: a second column numbering the rows from 1.
        ordinality: bool,
    },
    /// A function in FROM that reads an earlier FROM item's columns: for each left row, the right
    /// side runs with that row ahead of the outer row (its arguments were compiled against the left
    /// scope followed by the outer one). Rows are the left row followed by each right row.
    Lateral {
        left: Box<Source>,
        right: Box<Source>,
        /// Whether the right side also reads the outer query's row (beyond the left row).
        correlated: bool,
    },
    /// Nested-loop join; rows are the left row followed by the right row (`right_width` values).
    Join {
        left: Box<Source>,
        right: Box<Source>,
        kind: JoinKind,
        on: Option<Expr>,
        right_width: usize,
    },
    Table {
        table: TableDef,
        pk: Option<Vec<Expr>>,
        index: Option<Box<IndexAccess>>,
        /// Bounds on the first primary-key column (inclusive; the filter re-checks strictness).
        pk_range: Option<Box<(Option<Expr>, Option<Expr>)>>,
        as_of: Option<AsOf>,
        commit_ts: bool,
    },
    Checkpoint,
    /// A proof function: `verified_get`, `inclusion_proof`, … (src/sql/proofs.rs).
    Proof(Box<super::proofs::ProofCall>),
    /// `history('t', key…)`: every version of one row.
    History {
        table: TableDef,
        key: Vec<Expr>,
    },
}

/// A secondary-index lookup: equality on the index's leading columns, then an optional range.
pub(crate) struct IndexAccess {
    index: crate::sql::catalog::IndexDef,
    eq: Vec<Expr>,
    lo: Option<Expr>,
    hi: Option<Expr>,
}

/// A time-travel clause: read the table as it was after a tx, or at a time.
pub(crate) enum AsOf {
    Tx(Expr),
    Timestamp(Expr),
}

pub struct QueryPlan {
    /// For a correlated subquery: how many outer-row values follow each source row.
    outer_width: usize,
    source: Source,
    filter: Option<Expr>,
    grouped: bool,
    group_by: Vec<Expr>,
    aggs: Vec<AggCall>,
    having: Option<Expr>,
    /// Output columns, then hidden ORDER BY keys.
    outputs: Vec<(String, Expr, DataType)>,
    /// For each visible output that reads a table column unchanged: where it comes from.
    origins: Vec<Option<crate::sql::expr::ColumnOrigin>>,
    visible: usize,
    distinct: bool,
    /// DISTINCT ON: the outputs (visible or hidden) whose values pick the first row of each group.
    distinct_on: Vec<usize>,
    order_by: Vec<(usize, bool, bool)>,
    limit: Option<Expr>,
    offset: Option<Expr>,
    /// `row_number() OVER (PARTITION BY … ORDER BY …)` items: their numbers are appended to each row
    /// (after the filter, from index `window_base`) for the outputs to read.
    windows: Vec<Window>,
    window_base: usize,
}

/// One `row_number() OVER (…)`: partition keys, then sort keys with (ascending, nulls first).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    partition: Vec<Expr>,
    order: Vec<(Expr, bool, bool)>,
}

/// The window specification of a `row_number() OVER (…)` select item, with the item's name.
fn row_number_item(item: &ast::SelectItem) -> Option<(&ast::WindowSpec, String)> {
    let (e, name) = match item {
        ast::SelectItem::UnnamedExpr(e) => (e, "row_number".to_string()),
        ast::SelectItem::ExprWithAlias { expr, alias } => (expr, normalize_ident(alias)),
        _ => return None,
    };
    match e {
        ast::Expr::Function(f) if object_name(&f.name) == "row_number" => match &f.over {
            Some(ast::WindowType::WindowSpec(spec)) => Some((spec, name)),
            _ => None,
        },
        _ => None,
    }
}

/// Order of window keys: NULLs equal to each other, last unless `nulls_first`.
fn cmp_window_key(a: &Value, b: &Value, asc: bool, nulls_first: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nulls_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nulls_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => {
            let o = a.compare(b).unwrap_or(Ordering::Equal);
            if asc {
                o
            } else {
                o.reverse()
            }
        }
    }
}

/// Append the row number of each window to every row.
fn number_rows(windows: &[Window], base: usize, rows: &mut [Vec<Value>], env: &Env) -> SqlResult<()> {
    for r in rows.iter_mut() {
        r.resize(base.max(r.len()), Value::Null);
    }
    for w in windows {
        let mut keys = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            let p = w.partition.iter().map(|e| e.eval(r, env)).collect::<SqlResult<Vec<_>>>()?;
            let o = w.order.iter().map(|(e, ..)| e.eval(r, env)).collect::<SqlResult<Vec<_>>>()?;
            keys.push((p, o));
        }
        let same_partition = |a: &[Value], b: &[Value]| a.iter().zip(b).all(|(x, y)| cmp_window_key(x, y, true, false).is_eq());
        let mut idx: Vec<usize> = (0..rows.len()).collect();
        idx.sort_by(|&a, &b| {
            let (pa, oa) = &keys[a];
            let (pb, ob) = &keys[b];
            let by_partition = pa.iter().zip(pb).map(|(x, y)| cmp_window_key(x, y, true, false)).find(|o| o.is_ne());
            by_partition.unwrap_or_else(|| {
                oa.iter()
                    .zip(ob)
                    .zip(&w.order)
                    .map(|((x, y), (_, asc, nf))| cmp_window_key(x, y, *asc, *nf))
                    .find(|o| o.is_ne())
                    .unwrap_or(a.cmp(&b))
            })
        });
        let mut numbers = vec![0i64; rows.len()];
        let mut n = 0;
        for (k, &i) in idx.iter().enumerate() {
            n = if k > 0 && same_partition(&keys[idx[k - 1]].0, &keys[i].0) { n + 1 } else { 1 };
            numbers[i] = n;
        }
        for (r, n) in rows.iter_mut().zip(numbers) {
            r.push(Value::Int(n));
        }
    }
    Ok(())
}

fn explain_source(source: &Source, depth: usize, out: &mut Vec<String>) {
    let pad = if depth == 0 { String::new() } else { format!("{}->  ", "      ".repeat(depth - 1) + "  ") };
    let line = match source {
        Source::Unit => "Result".to_string(),
        Source::Checkpoint => "Function Scan on vouch_checkpoint".to_string(),
        Source::Proof(call) => format!("Function Scan on {}", call.name()),
        Source::History { table, .. } => format!("Function Scan on history ({}, primary key lookup)", table.name),
        Source::Values(rows) => format!("Values Scan ({} rows)", rows.len()),
        Source::Rows(rows) => format!("Catalog Scan ({} rows)", rows.len()),
        Source::WorkTable(_) => "WorkTable Scan".to_string(),
        Source::Series { func, .. } => {
            format!(
                "Function Scan on {}",
                match func {
                    SeriesFunc::Unnest => "unnest",
                    SeriesFunc::GenerateSeries => "generate_series",
                    SeriesFunc::PartitionAncestors => "pg_partition_ancestors",
                }
            )
        }
        Source::Table { table, pk, index, pk_range, as_of, .. } => {
            let at = if as_of.is_some() { " (as of a past snapshot)" } else { "" };
            match (pk, index) {
                (Some(_), _) => format!("Index Scan using {}_pkey on {} (point lookup){at}", table.name, table.name),
                (None, None) if pk_range.is_some() => format!("Index Scan using {}_pkey on {} (range){at}", table.name, table.name),
                (None, Some(ia)) => {
                    let kind = if ia.eq.len() == ia.index.columns.len() {
                        "equality"
                    } else if ia.lo.is_some() || ia.hi.is_some() {
                        "range"
                    } else {
                        "prefix"
                    };
                    format!("Index Scan using {} on {} ({kind}){at}", ia.index.name, table.name)
                }
                (None, None) => format!("Seq Scan on {}{at}", table.name),
            }
        }
        Source::Derived(p) => {
            out.push(format!("{pad}Subquery Scan"));
            explain_source(&p.source, depth + 1, out);
            return;
        }
        Source::Recursive { base, step, .. } => {
            out.push(format!("{pad}Recursive Union"));
            explain_source(base, depth + 1, out);
            explain_source(step, depth + 1, out);
            return;
        }
        Source::Union { parts, all } => {
            out.push(format!("{pad}{}", if *all { "Append" } else { "Unique -> Append" }));
            for p in parts {
                explain_source(p, depth + 1, out);
            }
            return;
        }
        Source::SetOp { parts, all, intersect } => {
            let cmd = if *intersect { "Intersect" } else { "Except" };
            out.push(format!("{pad}HashSetOp {cmd}{}", if *all { " All" } else { "" }));
            for p in parts {
                explain_source(p, depth + 1, out);
            }
            return;
        }
        Source::Lateral { left, right, .. } => {
            out.push(format!("{pad}Nested Loop"));
            explain_source(left, depth + 1, out);
            explain_source(right, depth + 1, out);
            return;
        }
        Source::Join { left, right, kind, .. } => {
            out.push(format!("{pad}Nested Loop{}", if *kind == JoinKind::Left { " Left Join" } else { "" }));
            explain_source(left, depth + 1, out);
            explain_source(right, depth + 1, out);
            return;
        }
    };
    out.push(format!("{pad}{line}"));
}

impl QueryPlan {
    /// EXPLAIN output: one line per plan node, PostgreSQL-style.
    pub(crate) fn explain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut top = Vec::new();
        if self.limit.is_some() || self.offset.is_some() {
            top.push("Limit");
        }
        if !self.order_by.is_empty() {
            top.push("Sort");
        }
        if self.distinct {
            top.push("Unique");
        }
        if self.grouped {
            top.push(if self.group_by.is_empty() { "Aggregate" } else { "HashAggregate" });
        }
        for (i, t) in top.iter().enumerate() {
            out.push(if i == 0 { t.to_string() } else { format!("{}->  {t}", "      ".repeat(i - 1) + "  ") });
        }
        let mut src = Vec::new();
        explain_source(&self.source, top.len(), &mut src);
        if let (Some(first), true) = (src.first_mut(), self.filter.is_some()) {
            first.push_str(" (filtered)");
        }
        out.extend(src);
        out
    }

    /// Whether any expression reads a row value at index `width` or beyond (an outer column).
    fn references_beyond(&self, width: usize) -> bool {
        let max = width + 4096;
        let exprs = self.filter.iter().chain(&self.group_by).chain(self.having.iter()).chain(self.outputs.iter().map(|o| &o.1));
        let exprs: Vec<&Expr> = exprs.chain(self.aggs.iter().filter_map(|a| a.arg.as_ref())).collect();
        (width..max).any(|c| exprs.iter().any(|e| e.references(c)))
    }

    pub(crate) fn columns(&self) -> Vec<Column> {
        self.outputs[..self.visible]
            .iter()
            .enumerate()
            .map(|(i, (n, _, t))| Column { name: n.clone(), ty: *t, origin: self.origins.get(i).copied().flatten() })
            .collect()
    }

    /// Whether the plan or a plan it reads rows from appends the outer query's row (is correlated).
    fn uses_outer(&self) -> bool {
        fn source(s: &Source) -> bool {
            match s {
                Source::Derived(p) => p.uses_outer(),
                Source::Union { parts, .. } | Source::SetOp { parts, .. } => parts.iter().any(source),
                Source::Recursive { base, step, .. } => source(base) || source(step),
                Source::Join { left, right, .. } => source(left) || source(right),
                Source::Lateral { left, correlated, .. } => source(left) || *correlated,
                Source::Series { correlated, .. } => *correlated,
                _ => false,
            }
        }
        self.outer_width > 0 || source(&self.source)
    }

    /// Whether a subquery occurs anywhere in the plan.
    pub(crate) fn has_subquery(&self) -> bool {
        let exprs = self.filter.iter().chain(&self.group_by).chain(&self.having).chain(self.outputs.iter().map(|o| &o.1));
        let mut exprs = exprs.chain(self.aggs.iter().filter_map(|a| a.arg.as_ref())).chain(&self.limit).chain(&self.offset);
        exprs.any(Expr::has_subquery) || self.source.has_subquery()
    }
}

impl Source {
    fn has_subquery(&self) -> bool {
        let any = |v: &[Expr]| v.iter().any(Expr::has_subquery);
        match self {
            Source::Unit | Source::Rows(_) | Source::Checkpoint | Source::WorkTable(_) => false,
            // The working table lives in the plan: a recursive query is planned afresh each time.
            Source::Recursive { .. } => true,
            Source::Derived(p) => p.has_subquery(),
            Source::Union { parts, .. } | Source::SetOp { parts, .. } => parts.iter().any(Source::has_subquery),
            Source::Values(rows) => rows.iter().any(|r| any(r)),
            Source::Join { left, right, on, .. } => left.has_subquery() || right.has_subquery() || on.iter().any(Expr::has_subquery),
            Source::Lateral { left, right, .. } => left.has_subquery() || right.has_subquery(),
            Source::Table { pk, index, pk_range, as_of, .. } => {
                pk.as_deref().is_some_and(any)
                    || index.as_ref().is_some_and(|i| any(&i.eq) || i.lo.iter().chain(&i.hi).any(Expr::has_subquery))
                    || pk_range.as_ref().is_some_and(|r| r.0.iter().chain(&r.1).any(Expr::has_subquery))
                    || as_of.as_ref().is_some_and(|a| match a {
                        AsOf::Tx(e) | AsOf::Timestamp(e) => e.has_subquery(),
                    })
            }
            Source::History { key, .. } => any(key),
            Source::Proof(call) => call.exprs().into_iter().any(Expr::has_subquery),
            Source::Series { args, .. } => any(args),
        }
    }
}

pub(crate) struct InsertPlan {
    table: TableDef,
    targets: Vec<usize>,
    rows: Vec<Vec<Expr>>,
    /// `INSERT … SELECT`: the query whose rows are inserted (instead of `rows`).
    query: Option<QueryPlan>,
    defaults: Vec<Option<Expr>>,
    do_nothing: bool,
    /// ON CONFLICT … DO UPDATE: assignments and WHERE over (existing row ‖ `excluded` row).
    do_update: Option<DoUpdate>,
    returning: Vec<(String, Expr, DataType)>,
    pub(crate) returning_columns: Arc<[Column]>,
}

/// `SET col = expr, …` assignments and the optional `WHERE` of ON CONFLICT DO UPDATE.
type DoUpdate = (Vec<(usize, Expr)>, Option<Expr>);

impl InsertPlan {
    /// Whether a subquery occurs anywhere in the plan.
    pub(crate) fn has_subquery(&self) -> bool {
        let rows = self.rows.iter().flatten().chain(self.defaults.iter().flatten());
        let update = self.do_update.iter().flat_map(|(sets, cond)| sets.iter().map(|s| &s.1).chain(cond));
        let mut all = rows.chain(update).chain(self.returning.iter().map(|r| &r.1));
        all.any(Expr::has_subquery)
    }
}

impl ModifyPlan {
    /// Whether a subquery occurs anywhere in the plan.
    pub(crate) fn has_subquery(&self) -> bool {
        let mut all = self.filter.iter().chain(self.pk.iter().flatten()).chain(self.assignments.iter().map(|a| &a.1));
        all.any(Expr::has_subquery) || self.returning.iter().any(|r| r.1.has_subquery())
    }
}

pub struct ModifyPlan {
    table: TableDef,
    filter: Option<Expr>,
    pk: Option<Vec<Expr>>,
    assignments: Vec<(usize, Expr)>,
    returning: Vec<(String, Expr, DataType)>,
    pub(crate) returning_columns: Arc<[Column]>,
}

const CHECKPOINT_COLUMNS: [(&str, DataType); 6] = [
    ("tree_size", DataType::Int8),
    ("root_hash", DataType::Text),
    ("checkpoint", DataType::Text),
    ("signature", DataType::Text),
    ("public_key", DataType::Text),
    ("signed_note", DataType::Text),
];

/// A table's columns, then pseudo-columns (`hidden` ones are not expanded by `*`).
pub(super) fn scope_with(t: &TableDef, qualifier: &str, extra: &[(&str, DataType)], hidden: bool) -> Vec<ScopeCol> {
    let col = |name: &str, ty: DataType, hidden: bool| ScopeCol {
        qualifier: Some(qualifier.to_string()),
        name: name.to_string(),
        ty,
        hidden,
        origin: None,
        depth: 0,
    };
    let mut s: Vec<ScopeCol> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| ScopeCol {
            origin: Some(crate::sql::expr::ColumnOrigin {
                table: t.id,
                attnum: i as i16 + 1,
                typmod: crate::sql::pg_catalog::column_typmod(c) as i32,
            }),
            ..col(&c.name, c.ty, c.hidden)
        })
        .collect();
    s.extend(extra.iter().map(|(n, ty)| col(n, *ty, hidden)));
    s
}

/// The scope of a relation that is not a table (a catalog view, a set-returning function): its
/// columns under qualifier `q`.
pub(super) fn virtual_scope(q: &str, list: &[(&str, DataType)]) -> Vec<ScopeCol> {
    list.iter()
        .map(|(n, t)| ScopeCol { qualifier: Some(q.to_string()), name: n.to_string(), ty: *t, hidden: false, origin: None, depth: 0 })
        .collect()
}

/// The pseudo-columns every table has, hidden from `*`, after its own columns.
const PSEUDO_COLUMNS: [(&str, DataType); 2] = [("_tx", DataType::Int8), ("_commit_ts", DataType::Timestamptz)];

/// A table's columns and its hidden `_tx` and `_commit_ts`.
fn table_scope(t: &TableDef, qualifier: &str) -> Vec<ScopeCol> {
    scope_with(t, qualifier, &PSEUDO_COLUMNS, true)
}

/// Columns of `history()`: the table's, then the version's tx, commit time, client time and delete flag.
fn history_scope(t: &TableDef, qualifier: &str) -> Vec<ScopeCol> {
    let extra = [
        ("_tx", DataType::Int8),
        ("_commit_ts", DataType::Timestamptz),
        ("_client_ts", DataType::Timestamptz),
        ("_deleted", DataType::Bool),
    ];
    scope_with(t, qualifier, &extra, false)
}

/// The rows of a set-returning function for evaluated arguments.
fn series_rows(func: SeriesFunc, vals: &[Value]) -> SqlResult<Vec<Vec<Value>>> {
    const MAX_ROWS: i64 = 100_000_000;
    match (func, vals) {
        (SeriesFunc::Unnest, [Value::Array(items)]) => Ok(items.iter().map(|v| vec![v.clone()]).collect()),
        // Several arrays: zipped, the shorter ones padded with NULLs (a NULL array is empty).
        (SeriesFunc::Unnest, arrays) if arrays.len() > 1 => {
            let len = |v: &Value| if let Value::Array(items) = v { items.len() } else { 0 };
            let n = arrays.iter().map(len).max().unwrap_or(0);
            Ok((0..n)
                .map(|i| {
                    arrays
                        .iter()
                        .map(|a| match a {
                            Value::Array(items) => items.get(i).cloned().unwrap_or(Value::Null),
                            _ => Value::Null,
                        })
                        .collect()
                })
                .collect())
        }
        (SeriesFunc::PartitionAncestors, [Value::Null]) => Ok(vec![]),
        (SeriesFunc::PartitionAncestors, [v]) => Ok(vec![vec![v.clone().cast(DataType::Int8)?]]),
        (SeriesFunc::GenerateSeries, [Value::Int(a), Value::Int(b), rest @ ..]) => {
            let step = match rest {
                [Value::Int(s)] => *s,
                [] => 1,
                _ => return Ok(vec![]),
            };
            if step == 0 {
                return Err(SqlError::new("22023", "step size cannot equal zero"));
            }
            let n = if step > 0 { (b - a).div_euclid(step) + 1 } else { (a - b).div_euclid(-step) + 1 };
            if n > MAX_ROWS {
                return Err(SqlError::new("54000", format!("generate_series would return {n} rows; the limit is {MAX_ROWS}")));
            }
            Ok((0..n.max(0)).map(|i| vec![Value::Int(a + i * step)]).collect())
        }
        _ => Ok(vec![]),
    }
}

impl Engine {
    /// The stored tables a FROM clause names directly, with the qualifier their columns carry.
    fn tables_in_from(&self, from: &[ast::TableWithJoins]) -> Vec<(String, crate::sql::catalog::TableDef)> {
        let catalog = self.catalog();
        from.iter()
            .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
            .filter_map(|f| match f {
                ast::TableFactor::Table { name, alias, args: None, .. } => {
                    let table = catalog.table(&object_name(name)).ok()?.clone();
                    let qualifier = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| table.name.clone());
                    Some((qualifier, table))
                }
                _ => None,
            })
            .collect()
    }
}

/// `unnest(a)` and `generate_subscripts(a, 1)` in a SELECT list (set-returning functions there, as
/// SQLAlchemy's index reflection uses them over `pg_index.indkey`): the row is repeated once per
/// subscript, as PostgreSQL 10+ does, by joining `generate_series(1, n)` where `n` is the longest
/// array over the query's own FROM and WHERE, and keeping the subscripts each row's arrays have.
/// Shorter arrays give NULLs, as in PostgreSQL. None: nothing to rewrite.
fn rewrite_select_list_srfs(select: &ast::Select) -> SqlResult<Option<ast::Select>> {
    let is_srf = |e: &ast::Expr| -> Option<(String, ast::Expr, Option<ast::Expr>)> {
        let ast::Expr::Function(f) = e else { return None };
        let name = object_name(&f.name);
        let ast::FunctionArguments::List(list) = &f.args else { return None };
        let args = function_args(&list.args).ok()?;
        match (name.as_str(), args.as_slice()) {
            ("unnest", [a]) => Some((name, (*a).clone(), None)),
            // information_schema._pg_expandarray(a): the records (a[i], i), as pgjdbc's
            // getPrimaryKeys and getIndexInfo use it (`(_pg_expandarray(i.indkey)).n`).
            ("_pg_expandarray", [a]) => Some((name, (*a).clone(), None)),
            // Arrays here have one dimension: subscripts of any other are none (NULL).
            ("generate_subscripts", [a, d]) => Some((name, (*a).clone(), Some((*d).clone()))),
            _ => None,
        }
    };
    // The function itself, or a field of its record (`(f(a)).n`).
    let item_expr = |i: &ast::SelectItem| match i {
        ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => match e {
            ast::Expr::CompoundFieldAccess { root, access_chain } if matches!(access_chain.as_slice(), [ast::AccessExpr::Dot(_)]) => {
                match &**root {
                    ast::Expr::Nested(inner) => Some((**inner).clone()),
                    _ => Some(e.clone()),
                }
            }
            _ => Some(e.clone()),
        },
        _ => None,
    };
    if select.from.is_empty() {
        return Ok(from_less_srf(select));
    }
    let srfs: Vec<_> = select.projection.iter().filter_map(|i| item_expr(i).and_then(|e| is_srf(&e))).collect();
    if srfs.is_empty() {
        return Ok(None);
    }
    if !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty()) || select.having.is_some() {
        return Err(SqlError::unsupported("set-returning functions in a SELECT list with GROUP BY or HAVING"));
    }
    let longest =
        format!("greatest({})", srfs.iter().map(|(_, a, _)| format!("coalesce(array_length(({a}), 1), 0)")).collect::<Vec<_>>().join(", "));
    let from = select.from.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    let filter = select.selection.as_ref().map(|w| format!(" WHERE {w}")).unwrap_or_default();
    let series =
        format!("SELECT 1 FROM generate_series(1, (SELECT coalesce(max({longest}), 0) FROM {from}{filter})) AS __vouch_srf(__vouch_i)");
    let ast::Statement::Query(series) = crate::sql::parse(&series)?.remove(0).0 else {
        return Err(SqlError::new("XX000", "set-returning function rewrite"));
    };
    let ast::SetExpr::Select(series) = *series.body else { return Err(SqlError::new("XX000", "set-returning function rewrite")) };
    let mut out = select.clone();
    out.from.extend(series.from);
    let keep = crate::sql::parse_expr(&format!("__vouch_srf.__vouch_i <= {longest}"))?;
    out.selection = Some(match out.selection.take() {
        Some(w) => crate::sql::parse_expr(&format!("({w}) AND ({keep})"))?,
        None => keep,
    });
    for item in out.projection.iter_mut() {
        let Some(e) = item_expr(&*item) else { continue };
        let Some((name, a, dim)) = is_srf(&e) else { continue };
        let replaced = match dim {
            None if name.ends_with("_pg_expandarray") => crate::sql::parse_expr(&format!(
                "__vouch_expandarray_row(__vouch_elem(({a}), __vouch_srf.__vouch_i), __vouch_srf.__vouch_i)"
            ))?,
            None => crate::sql::parse_expr(&format!("__vouch_elem(({a}), __vouch_srf.__vouch_i)"))?,
            Some(d) => crate::sql::parse_expr(&format!(
                "CASE WHEN ({d}) = 1 AND __vouch_srf.__vouch_i <= array_length(({a}), 1) THEN __vouch_srf.__vouch_i END"
            ))?,
        };
        // `(f(a)).field` keeps its field access, now on the record.
        let (replaced, default_name) = match item {
            ast::SelectItem::UnnamedExpr(ast::Expr::CompoundFieldAccess { access_chain, .. })
            | ast::SelectItem::ExprWithAlias { expr: ast::Expr::CompoundFieldAccess { access_chain, .. }, .. } => {
                let field = match access_chain.first() {
                    Some(ast::AccessExpr::Dot(ast::Expr::Identifier(i))) => i.value.to_lowercase(),
                    _ => name.clone(),
                };
                (
                    ast::Expr::CompoundFieldAccess {
                        root: Box::new(ast::Expr::Nested(Box::new(replaced))),
                        access_chain: access_chain.clone(),
                    },
                    field,
                )
            }
            _ => (replaced, name.rsplit('.').next().unwrap_or(&name).to_string()),
        };
        *item = match item {
            ast::SelectItem::ExprWithAlias { alias, .. } => ast::SelectItem::ExprWithAlias { expr: replaced, alias: alias.clone() },
            _ => ast::SelectItem::ExprWithAlias { expr: replaced, alias: ast::Ident::new(default_name) },
        };
    }
    Ok(Some(out))
}

/// A SELECT without FROM whose one set-returning item is `generate_series(…)` or `unnest(…)`
/// (`ARRAY(SELECT generate_series(1, i.indnatts))`, pgAdmin): the function moves into FROM and the item
/// reads its column, which gives the same rows. Other items are evaluated once per row, as PostgreSQL
/// does. None: nothing to rewrite.
fn from_less_srf(select: &ast::Select) -> Option<ast::Select> {
    let srf_index = |e: &ast::Expr| match e {
        ast::Expr::Function(f) => matches!(object_name(&f.name).as_str(), "generate_series" | "unnest").then(|| f.clone()),
        _ => None,
    };
    let mut found = None;
    for (i, item) in select.projection.iter().enumerate() {
        let e = match item {
            ast::SelectItem::UnnamedExpr(e) | ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        if let Some(f) = srf_index(e) {
            if found.is_some() {
                return None;
            }
            found = Some((i, f));
        }
    }
    let (i, f) = found?;
    let name = object_name(&f.name);
    let from = crate::sql::parse(&format!("SELECT 1 FROM {f} AS __vouch_srf(__vouch_v)")).ok()?.remove(0).0;
    let ast::Statement::Query(q) = from else { return None };
    let ast::SetExpr::Select(inner) = *q.body else { return None };
    let mut out = select.clone();
    out.from = inner.from;
    let column = crate::sql::parse_expr("__vouch_srf.__vouch_v").ok()?;
    out.projection[i] = match &select.projection[i] {
        ast::SelectItem::ExprWithAlias { alias, .. } => ast::SelectItem::ExprWithAlias { expr: column, alias: alias.clone() },
        _ => ast::SelectItem::ExprWithAlias { expr: column, alias: ast::Ident::new(name) },
    };
    Some(out)
}

/// A set-returning function in FROM (`f(…)` or `UNNEST(…)`).
fn is_function_item(t: &ast::TableFactor) -> bool {
    matches!(t, ast::TableFactor::Table { args: Some(_), .. } | ast::TableFactor::UNNEST { .. })
}

fn function_args(args: &[ast::FunctionArg]) -> SqlResult<Vec<&ast::Expr>> {
    args.iter()
        .map(|a| match a {
            ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => Ok(e),
            other => Err(SqlError::unsupported(format!("function argument {other}"))),
        })
        .collect()
}

pub(super) fn string_literal(e: &ast::Expr) -> Option<&str> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// `col = <expr without columns>` for every primary-key column, found in a conjunction.
fn pk_lookup(t: &TableDef, filter: &Expr) -> Option<Vec<Expr>> {
    let eqs: Vec<(usize, Expr)> = comparisons(filter).into_iter().filter(|(_, op, _)| *op == BinOp::Eq).map(|(c, _, e)| (c, e)).collect();
    t.primary_key.iter().map(|&k| eqs.iter().find(|(i, _)| *i == k).map(|(_, v)| v.clone())).collect()
}

/// Conjuncts of the form `column op <expr without columns>`, op normalised to the column's side.
fn comparisons(filter: &Expr) -> Vec<(usize, BinOp, Expr)> {
    // Constants and parameters, and casts and arithmetic of them (`k BETWEEN $1 AND $1 + 10`): a bound
    // computed once per execution. Nothing volatile (functions) or row-dependent.
    fn no_columns(e: &Expr) -> bool {
        match e {
            Expr::Const(_) | Expr::Param(_) => true,
            Expr::Cast(x, _) | Expr::Neg(x) => no_columns(x),
            Expr::Bin(BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod | BinOp::Concat, _, a, b) => {
                no_columns(a) && no_columns(b)
            }
            _ => false,
        }
    }
    fn flip(op: BinOp) -> BinOp {
        match op {
            BinOp::Lt => BinOp::Gt,
            BinOp::Le => BinOp::Ge,
            BinOp::Gt => BinOp::Lt,
            BinOp::Ge => BinOp::Le,
            o => o,
        }
    }
    fn walk(e: &Expr, out: &mut Vec<(usize, BinOp, Expr)>) {
        match e {
            Expr::And(a, b) => {
                walk(a, out);
                walk(b, out);
            }
            Expr::Bin(op @ (BinOp::Eq | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge), _, a, b) => match (&**a, &**b) {
                (Expr::Column(i), v) if no_columns(v) => out.push((*i, *op, v.clone())),
                (v, Expr::Column(i)) if no_columns(v) => out.push((*i, flip(*op), v.clone())),
                _ => {}
            },
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(filter, &mut out);
    out
}

/// Range conditions on the first primary-key column. Equality on it (a composite key's leading
/// column fixed, the rest not) is the range from that value to that value: the bounds are inclusive
/// as key prefixes (`Ledger::scan_table_range`).
fn pk_range(t: &TableDef, filter: &Expr) -> Option<(Option<Expr>, Option<Expr>)> {
    let first = *t.primary_key.first()?;
    let conds = comparisons(filter);
    let eq = conds.iter().find(|(c, op, _)| *c == first && *op == BinOp::Eq).map(|x| x.2.clone());
    let lo = eq.clone().or_else(|| conds.iter().find(|(c, op, _)| *c == first && matches!(op, BinOp::Gt | BinOp::Ge)).map(|x| x.2.clone()));
    let hi = eq.or_else(|| conds.iter().find(|(c, op, _)| *c == first && matches!(op, BinOp::Lt | BinOp::Le)).map(|x| x.2.clone()));
    (lo.is_some() || hi.is_some()).then_some((lo, hi))
}

/// The best secondary index for a filter: most leading equality columns, then a range on the next.
fn index_lookup(t: &TableDef, filter: &Expr) -> Option<IndexAccess> {
    let conds = comparisons(filter);
    let mut best: Option<(usize, IndexAccess)> = None;
    for index in &t.indexes {
        let mut eq = Vec::new();
        for &c in &index.columns {
            match conds.iter().find(|(col, op, _)| *col == c && *op == BinOp::Eq) {
                Some((_, _, v)) => eq.push(v.clone()),
                None => break,
            }
        }
        let next = index.columns.get(eq.len());
        let lo =
            next.and_then(|&c| conds.iter().find(|(col, op, _)| *col == c && matches!(op, BinOp::Gt | BinOp::Ge))).map(|x| x.2.clone());
        let hi =
            next.and_then(|&c| conds.iter().find(|(col, op, _)| *col == c && matches!(op, BinOp::Lt | BinOp::Le))).map(|x| x.2.clone());
        let score = eq.len() * 2 + usize::from(lo.is_some() || hi.is_some());
        if score > 0 && best.as_ref().is_none_or(|(b, _)| score > *b) {
            best = Some((score, IndexAccess { index: index.clone(), eq, lo, hi }));
        }
    }
    best.map(|(_, a)| a)
}

fn output_name(item: &ast::Expr) -> String {
    match item {
        ast::Expr::Identifier(i) => normalize_ident(i),
        ast::Expr::CompoundIdentifier(p) => p.last().map(normalize_ident).unwrap_or_default(),
        ast::Expr::Function(f) => object_name(&f.name),
        ast::Expr::Cast { expr, data_type, .. } => match &**expr {
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) | ast::Expr::Function(_) => output_name(expr),
            _ => DataType::from_ast(data_type).map(|t| pg_type_word(&t)).unwrap_or_else(|_| "?column?".into()),
        },
        ast::Expr::Nested(e) => output_name(e),
        // `a[1]` and `t.a[1]` are named `a`; `(r).f` is named `f`.
        ast::Expr::CompoundFieldAccess { root, access_chain } => {
            match access_chain.iter().rev().find(|a| matches!(a, ast::AccessExpr::Dot(ast::Expr::Identifier(_)))) {
                Some(ast::AccessExpr::Dot(ast::Expr::Identifier(i))) => normalize_ident(i),
                _ => output_name(root),
            }
        }
        ast::Expr::Case { .. } => "case".into(),
        _ => "?column?".into(),
    }
}

fn pg_type_word(t: &DataType) -> String {
    match t {
        DataType::Int2 => "int2",
        DataType::Int4 => "int4",
        DataType::Int8 => "int8",
        DataType::Float4 => "float4",
        DataType::Float8 => "float8",
        DataType::Bool => "bool",
        DataType::Varchar(_) => "varchar",
        DataType::Bpchar(_) => "bpchar",
        DataType::Timestamptz => "timestamptz",
        DataType::Timestamp => "timestamp",
        _ => return t.name(),
    }
    .into()
}

fn returning(
    scope: &[ScopeCol],
    items: &Option<Vec<ast::SelectItem>>,
    params: &mut Vec<Option<DataType>>,
) -> SqlResult<Vec<(String, Expr, DataType)>> {
    let mut out = Vec::new();
    for item in items.iter().flatten() {
        project_item(scope, item, params, None, &mut out, None)?;
    }
    // The row a statement writes has no tx and no commit time until its transaction commits; reading
    // them would give NULL, which looks like an answer. (A correlated subquery reads the row as a
    // whole and is let through.)
    // (`scope` is a `table_scope`: the pseudo-columns are its last ones.)
    let first_pseudo = scope.len().saturating_sub(PSEUDO_COLUMNS.len());
    for (i, c) in scope.iter().enumerate().skip(first_pseudo) {
        if out.iter().any(|(_, e, _)| !e.has_subquery() && e.references(i)) {
            return Err(SqlError::unsupported(format!(
                "RETURNING cannot read {}: a written row's tx and commit time are known only once its transaction commits (read them after COMMIT, or with history())",
                c.name
            )));
        }
    }
    Ok(out)
}

fn project_item(
    scope: &[ScopeCol],
    item: &ast::SelectItem,
    params: &mut Vec<Option<DataType>>,
    aggs: Option<&mut Vec<AggCall>>,
    out: &mut Vec<(String, Expr, DataType)>,
    planner: Option<&dyn SubqueryPlanner>,
) -> SqlResult<()> {
    match item {
        ast::SelectItem::Wildcard(_) | ast::SelectItem::QualifiedWildcard(..) => {
            let q = match item {
                ast::SelectItem::QualifiedWildcard(ast::SelectItemQualifiedWildcardKind::ObjectName(n), _) => Some(object_name(n)),
                _ => None,
            };
            for (i, c) in scope.iter().enumerate() {
                if !c.hidden && (q.is_none() || c.qualifier == q) {
                    out.push((c.name.clone(), Expr::Column(i), c.ty));
                }
            }
            Ok(())
        }
        ast::SelectItem::UnnamedExpr(e) => {
            let t = Ctx { scope, params, aggs, planner }.compile(e)?;
            out.push((output_name(e), t.expr, t.ty));
            Ok(())
        }
        ast::SelectItem::ExprWithAlias { expr, alias } => {
            let t = Ctx { scope, params, aggs, planner }.compile(expr)?;
            out.push((normalize_ident(alias), t.expr, t.ty));
            Ok(())
        }
        other => Err(SqlError::unsupported(format!("select item not supported yet: {other}"))),
    }
}

/// A bound on the first primary-key column, as key bytes (inclusive, as a key prefix); `None` when
/// there is none or it cannot narrow the scan (NULL, or out of the column's range: the filter decides).
fn pk_bound(table: &TableDef, e: &Option<Expr>, env: &Env) -> SqlResult<Option<Vec<u8>>> {
    let ty = table.columns[table.primary_key[0]].ty;
    match e {
        None => Ok(None),
        Some(e) => match e.eval(&[], env)?.cast(ty) {
            Ok(v) if !v.is_null() => Ok(Some(encode_key(std::slice::from_ref(&v))?)),
            Ok(_) => Ok(None),
            Err(e) if e.code == "22003" => Ok(None),
            Err(e) => Err(e),
        },
    }
}

fn const_usize(e: &Option<Expr>, env: &Env, what: &str) -> SqlResult<Option<usize>> {
    match e {
        None => Ok(None),
        Some(e) => match e.eval(&[], env)?.cast(DataType::Int8)? {
            Value::Null => Ok(None),
            Value::Int(i) if i >= 0 => Ok(Some(i as usize)),
            _ => Err(SqlError::new("2201W", format!("{what} must not be negative"))),
        },
    }
}

impl Engine {
    /// `pg_catalog.x`, or an unqualified `pg_x` that is not a user table.
    fn is_pg_catalog(&self, name: &ast::ObjectName) -> bool {
        let n = object_name(name);
        match name.0.len() {
            1 => n.starts_with("pg_") && !self.catalog().tables.contains_key(&n),
            2 => name.0[0].as_ident().is_some_and(|i| matches!(normalize_ident(i).as_str(), "pg_catalog" | "information_schema")),
            _ => false,
        }
    }

    fn resolve_table(&self, name: &ast::ObjectName) -> SqlResult<TableDef> {
        let n = object_name(name);
        if name.0.len() > 1 {
            let schema = name.0[0].as_ident().map(normalize_ident).unwrap_or_default();
            if schema != "public" {
                return Err(SqlError::new("3F000", format!("schema \"{schema}\" does not exist")));
            }
        }
        Ok(self.catalog().table(&n)?.clone())
    }

    pub(crate) fn plan_query(&self, q: &ast::Query, params: &mut Vec<Option<DataType>>) -> SqlResult<QueryPlan> {
        self.plan_query_with(q, &Ctes::new(), &[], params)
    }

    /// A SELECT whose expressions may read `outer_cols` (the row of the query a subquery is in):
    /// the plan then appends the outer row to its rows (`outer_width`).
    fn plan_select_in(
        &self,
        select: &ast::Select,
        q: &ast::Query,
        ctes: &Ctes,
        outer_cols: &[ScopeCol],
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<QueryPlan> {
        if let Some(rewritten) = rewrite_select_list_srfs(select)? {
            return self.plan_select_in(&rewritten, q, ctes, outer_cols, params);
        }
        let (source, mut scope) = self.plan_from(&select.from, ctes, outer_cols, params)?;
        if outer_cols.is_empty() {
            return self.plan_core(source, scope, Some(select), q, params);
        }
        let inner = scope.len();
        scope.extend(outer_cols.iter().cloned());
        let series_correlated = source.reads_outer();
        let mut plan = self.plan_core(source, scope, Some(select), q, params)?;
        if series_correlated || plan.references_beyond(inner) {
            plan.outer_width = outer_cols.len();
        }
        Ok(plan)
    }

    fn plan_query_with(
        &self,
        q: &ast::Query,
        outer: &Ctes,
        outer_cols: &[ScopeCol],
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<QueryPlan> {
        let mut ctes = outer.clone();
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                if with.recursive {
                    if let Some(plan) = self.plan_recursive_cte(cte, &ctes, outer_cols, params)? {
                        ctes.insert(normalize_ident(&cte.alias.name), Arc::new(plan));
                        continue;
                    }
                }
                let mut plan = self.plan_query_with(&cte.query, &ctes, outer_cols, params)?;
                rename_outputs(&mut plan, &cte.alias)?;
                ctes.insert(normalize_ident(&cte.alias.name), Arc::new(plan));
            }
        }
        match &*q.body {
            ast::SetExpr::Select(select) => self.plan_select_in(select, q, &ctes, outer_cols, params),
            ast::SetExpr::Query(inner) if q.order_by.is_none() && q.limit_clause.is_none() => {
                self.plan_query_with(inner, &ctes, outer_cols, params)
            }
            body @ (ast::SetExpr::Query(_) | ast::SetExpr::SetOperation { .. } | ast::SetExpr::Values(_)) => {
                let (source, columns) = self.plan_set_expr(body, &ctes, outer_cols, params)?;
                let scope = columns
                    .iter()
                    .map(|c| ScopeCol { qualifier: None, name: c.name.clone(), ty: c.ty, hidden: false, origin: None, depth: 0 })
                    .collect();
                self.plan_core(source, scope, None, q, params)
            }
            other => Err(SqlError::unsupported(format!("query not supported yet: {}", first_words(&other.to_string())))),
        }
    }

    /// A CTE of WITH RECURSIVE whose query is `non-recursive term UNION [ALL] recursive term` and
    /// whose recursive term names the CTE; None for a CTE that is not recursive.
    fn plan_recursive_cte(
        &self,
        cte: &ast::Cte,
        ctes: &Ctes,
        outer_cols: &[ScopeCol],
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<Option<QueryPlan>> {
        let name = normalize_ident(&cte.alias.name);
        let ast::SetExpr::SetOperation { left, op: ast::SetOperator::Union, set_quantifier, right } = &*cte.query.body else {
            return Ok(None);
        };
        if !right.to_string().to_lowercase().contains(&name) || cte.query.order_by.is_some() || cte.query.limit_clause.is_some() {
            return Ok(None);
        }
        let all = match set_quantifier {
            ast::SetQuantifier::All => true,
            ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
            other => return Err(SqlError::unsupported(format!("UNION {other}"))),
        };
        let (base, base_cols) = self.plan_set_expr(left, ctes, outer_cols, params)?;
        if cte.alias.columns.len() > base_cols.len() {
            let msg =
                format!("table \"{name}\" has {} columns available but {} columns specified", base_cols.len(), cte.alias.columns.len());
            return Err(SqlError::new("42P10", msg));
        }
        let cols: Vec<Column> = base_cols
            .iter()
            .enumerate()
            .map(|(i, c)| Column::new(cte.alias.columns.get(i).map_or_else(|| c.name.clone(), |a| normalize_ident(&a.name)), c.ty))
            .collect();
        let scope = |cols: &[Column]| -> Vec<ScopeCol> {
            cols.iter()
                .map(|c| ScopeCol { qualifier: None, name: c.name.clone(), ty: c.ty, hidden: false, origin: None, depth: 0 })
                .collect()
        };
        let work = WorkTable::default();
        let bare = bare_query(&ast::SetExpr::Values(ast::Values { explicit_row: false, value_keyword: false, rows: vec![] }));
        let work_plan = self.plan_core(Source::WorkTable(work.clone()), scope(&cols), None, &bare, params)?;
        let mut inner = ctes.clone();
        inner.insert(name.clone(), Arc::new(work_plan));
        let (step, step_cols) = self.plan_set_expr(right, &inner, outer_cols, params)?;
        if step_cols.len() != cols.len() {
            return Err(SqlError::syntax("each UNION query must have the same number of columns"));
        }
        let source = Source::Recursive { base: Box::new(base), step: Box::new(step), all, work };
        Ok(Some(self.plan_core(source, scope(&cols), None, &bare, params)?))
    }

    /// A set expression as a row source: UNION [ALL] chains, VALUES lists, parenthesised queries.
    fn plan_set_expr(
        &self,
        body: &ast::SetExpr,
        ctes: &Ctes,
        outer_cols: &[ScopeCol],
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<(Source, Vec<Column>)> {
        match body {
            ast::SetExpr::Select(select) => {
                let plan = self.plan_select_in(select, &bare_query(body), ctes, outer_cols, params)?;
                let cols = plan.columns();
                Ok((Source::Derived(Arc::new(plan)), cols))
            }
            ast::SetExpr::Query(q) => {
                let plan = self.plan_query_with(q, ctes, outer_cols, params)?;
                let cols = plan.columns();
                Ok((Source::Derived(Arc::new(plan)), cols))
            }
            ast::SetExpr::SetOperation { left, op, set_quantifier, right }
                if matches!(op, ast::SetOperator::Union | ast::SetOperator::Except | ast::SetOperator::Intersect) =>
            {
                let all = match set_quantifier {
                    ast::SetQuantifier::All => true,
                    ast::SetQuantifier::Distinct | ast::SetQuantifier::None => false,
                    other => return Err(SqlError::unsupported(format!("{op} {other}"))),
                };
                let (l, lcols) = self.plan_set_expr(left, ctes, outer_cols, params)?;
                let (r, rcols) = self.plan_set_expr(right, ctes, outer_cols, params)?;
                if lcols.len() != rcols.len() {
                    return Err(SqlError::syntax(format!("each {op} query must have the same number of columns")));
                }
                for (a, b) in lcols.iter().zip(&rcols) {
                    if a.ty != b.ty && !(a.ty.is_numeric() && b.ty.is_numeric()) && !(a.ty.is_text() && b.ty.is_text()) {
                        return Err(SqlError::new("42804", format!("{op} types {} and {} cannot be matched", a.ty.name(), b.ty.name())));
                    }
                }
                let cols =
                    lcols.iter().zip(&rcols).map(|(a, b)| Column::new(a.name.clone(), crate::sql::expr::wider(a.ty, b.ty))).collect();
                let parts = vec![l, r];
                Ok(match op {
                    ast::SetOperator::Union => (Source::Union { parts, all }, cols),
                    _ => (Source::SetOp { parts, all, intersect: *op == ast::SetOperator::Intersect }, cols),
                })
            }
            ast::SetExpr::SetOperation { op, .. } => Err(SqlError::unsupported(format!("{op} is not supported yet"))),
            ast::SetExpr::Values(values) => {
                let mut rows = Vec::new();
                let mut types: Vec<Option<DataType>> = Vec::new();
                for r in &values.rows {
                    if !rows.is_empty() && r.len() != types.len() {
                        return Err(SqlError::syntax("VALUES lists must all be the same length"));
                    }
                    types.resize(r.len(), None);
                    let mut c = Ctx { scope: &[], params, aggs: None, planner: None };
                    let mut exprs = Vec::new();
                    for (i, e) in r.iter().enumerate() {
                        let t = match types[i] {
                            Some(ty) => c.compile_as(e, ty)?,
                            None => c.compile(e)?,
                        };
                        if types[i].is_none() && !matches!(t.expr, Expr::Const(Value::Null)) {
                            types[i] = Some(t.ty);
                        }
                        exprs.push(t.expr);
                    }
                    rows.push(exprs);
                }
                let cols =
                    types.iter().enumerate().map(|(i, t)| Column::new(format!("column{}", i + 1), t.unwrap_or(DataType::Text))).collect();
                Ok((Source::Values(rows), cols))
            }
            other => Err(SqlError::unsupported(format!("query not supported yet: {}", first_words(&other.to_string())))),
        }
    }

    /// FROM: comma-separated items are cross joined; each item may carry JOINs.
    fn plan_from(
        &self,
        from: &[ast::TableWithJoins],
        ctes: &Ctes,
        outer: &[ScopeCol],
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<(Source, Vec<ScopeCol>)> {
        let mut acc: Option<(Source, Vec<ScopeCol>)> = None;
        for twj in from {
            // A function in FROM after other items may read their columns (PostgreSQL's implicit
            // LATERAL for functions, as in `FROM pg_index i, unnest(i.indkey) …`).
            if let (Some((l, lscope)), true) = (&mut acc, is_function_item(&twj.relation)) {
                if twj.joins.is_empty() {
                    let mut seen = lscope.clone();
                    seen.extend(outer.iter().cloned());
                    let (right, rscope) = self.plan_relation(&twj.relation, ctes, &seen, params)?;
                    if right.reads_outer() {
                        let left = std::mem::replace(l, Source::Unit);
                        let correlated = match &right {
                            Source::Series { args, .. } => args.iter().any(|a| (lscope.len()..seen.len()).any(|i| a.references(i))),
                            _ => true,
                        };
                        *l = Source::Lateral { left: Box::new(left), right: Box::new(right), correlated };
                        lscope.extend(rscope);
                        continue;
                    }
                }
            }
            let (mut source, mut scope) = self.plan_relation(&twj.relation, ctes, outer, params)?;
            for j in &twj.joins {
                let (right, rscope) = self.plan_relation(&j.relation, ctes, outer, params)?;
                let (kind, constraint) = match &j.join_operator {
                    ast::JoinOperator::Join(c) | ast::JoinOperator::Inner(c) => (JoinKind::Inner, Some(c)),
                    ast::JoinOperator::Left(c) | ast::JoinOperator::LeftOuter(c) => (JoinKind::Left, Some(c)),
                    ast::JoinOperator::CrossJoin(_) => (JoinKind::Inner, None),
                    _ => return Err(SqlError::unsupported("this join type is not supported yet (INNER, LEFT and CROSS are)")),
                };
                let right_width = rscope.len();
                let left_width = scope.len();
                scope.extend(rscope);
                let on = match constraint {
                    None | Some(ast::JoinConstraint::None) => None,
                    // USING (a, …): equality of the named columns; the right side's copies are hidden,
                    // so an unqualified name means the left one (equal, or the row's own for LEFT).
                    Some(ast::JoinConstraint::Using(names)) => {
                        let mut cond: Option<Expr> = None;
                        for n in names {
                            let name = object_name(n);
                            let find = |range: std::ops::Range<usize>| {
                                let hits: Vec<usize> = range.filter(|&i| !scope[i].hidden && scope[i].name == name).collect();
                                match hits.as_slice() {
                                    [i] => Ok(*i),
                                    [] => Err(SqlError::new(
                                        "42703",
                                        format!("column \"{name}\" specified in USING clause does not exist in left or right table"),
                                    )),
                                    _ => Err(SqlError::new("42702", format!("common column name \"{name}\" appears more than once"))),
                                }
                            };
                            let (l, r) = (find(0..left_width)?, find(left_width..scope.len())?);
                            scope[r].hidden = true;
                            let eq = Expr::Bin(BinOp::Eq, DataType::Bool, Box::new(Expr::Column(l)), Box::new(Expr::Column(r)));
                            cond = Some(match cond {
                                None => eq,
                                Some(c) => Expr::And(Box::new(c), Box::new(eq)),
                            });
                        }
                        cond
                    }
                    Some(ast::JoinConstraint::On(e)) => {
                        Some(Ctx { scope: &scope, params, aggs: None, planner: Some(self) }.compile_as(e, DataType::Bool)?.expr)
                    }
                    Some(_) => return Err(SqlError::unsupported("JOIN … USING / NATURAL JOIN are not supported yet")),
                };
                source = Source::Join { left: Box::new(source), right: Box::new(right), kind, on, right_width };
            }
            acc = Some(match acc {
                None => (source, scope),
                Some((l, mut lscope)) => {
                    let right_width = scope.len();
                    lscope.extend(scope);
                    (Source::Join { left: Box::new(l), right: Box::new(source), kind: JoinKind::Inner, on: None, right_width }, lscope)
                }
            });
        }
        Ok(acc.unwrap_or((Source::Unit, Vec::new())))
    }

    fn plan_relation(
        &self,
        relation: &ast::TableFactor,
        ctes: &Ctes,
        outer: &[ScopeCol],
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<(Source, Vec<ScopeCol>)> {
        Ok(match relation {
            // The `vouch_log` system view: the log's provenance records (docs/PROVENANCE.md).
            ast::TableFactor::Table { name, alias, args: None, .. }
                if name.0.len() == 1 && object_name(name) == "vouch_log" && !self.catalog().tables.contains_key("vouch_log") =>
            {
                let q = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| "vouch_log".into());
                (Source::Proof(Box::new(super::proofs::ProofCall::Log(None))), virtual_scope(&q, &super::proofs::LOG_COLUMNS))
            }
            // The `vouch_policies` system view: one row per rule of every policy in force.
            ast::TableFactor::Table { name, alias, args: None, .. }
                if name.0.len() == 1 && object_name(name) == "vouch_policies" && !self.catalog().tables.contains_key("vouch_policies") =>
            {
                let q = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| "vouch_policies".into());
                let cols = [
                    ("policy", DataType::Text),
                    ("role", DataType::Text),
                    ("rule", DataType::Text),
                    ("template", DataType::Text),
                    ("max_rows", DataType::Int8),
                ];
                (Source::Rows(super::governance::policy_rows(&self.catalog().policies)), virtual_scope(&q, &cols))
            }
            ast::TableFactor::Table { name, alias, args: None, .. } if self.is_pg_catalog(name) => {
                let n = object_name(name);
                let info = name.0.len() == 2 && name.0[0].as_ident().is_some_and(|i| normalize_ident(i) == "information_schema");
                let found = if info {
                    crate::sql::pg_catalog::information_schema(&n, &self.catalog())?
                } else {
                    crate::sql::pg_catalog::table(&n, &self.catalog())?
                };
                let (cols, mut rows) = found.ok_or_else(|| SqlError::undefined_table(&n))?;
                let q = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| n.clone());
                let mut scope = virtual_scope(&q, &cols);
                // The system column `tableoid` (pgAdmin joins pg_depend on it): the catalog's own oid.
                if let Some(oid) = crate::sql::pg_catalog::catalog_table_oid(&n) {
                    scope.push(ScopeCol {
                        qualifier: Some(q),
                        name: "tableoid".into(),
                        ty: DataType::Oid,
                        hidden: true,
                        origin: None,
                        depth: 0,
                    });
                    for r in &mut rows {
                        r.push(Value::Int(oid));
                    }
                }
                (Source::Rows(rows), scope)
            }
            ast::TableFactor::Table { name, alias, args: None, .. }
                if name.0.len() == 1 && !ctes.contains_key(&object_name(name)) && self.catalog().views.contains_key(&object_name(name)) =>
            {
                let view = self.catalog().views[&object_name(name)].clone();
                let q = match crate::sql::parse(&view.sql)?.into_iter().next() {
                    Some((ast::Statement::Query(q), _)) => q,
                    _ => return Err(SqlError::new("XX000", format!("view \"{}\" has an unreadable definition", view.name))),
                };
                let mut plan = self.plan_query_with(&q, &Ctes::new(), &[], params)?;
                // A view has the columns it was created with: a `*` over a table that gained columns
                // since does not grow (PostgreSQL expands it when the view is created).
                plan.visible = plan.visible.min(view.columns.len());
                // The view's column names (as created) over whatever its query names them.
                for (o, (n, _)) in plan.outputs.iter_mut().zip(&view.columns) {
                    o.0 = n.clone();
                }
                let qual = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| view.name.clone());
                let scope = plan
                    .columns()
                    .into_iter()
                    .map(|c| ScopeCol { qualifier: Some(qual.clone()), name: c.name, ty: c.ty, hidden: false, origin: None, depth: 0 })
                    .collect();
                (Source::Derived(Arc::new(plan)), scope)
            }
            ast::TableFactor::Table { name, alias, args: None, .. } if name.0.len() == 1 && ctes.contains_key(&object_name(name)) => {
                let plan = ctes[&object_name(name)].clone();
                let q = alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| object_name(name));
                let scope = plan
                    .columns()
                    .into_iter()
                    .map(|c| ScopeCol { qualifier: Some(q.clone()), name: c.name, ty: c.ty, hidden: false, origin: None, depth: 0 })
                    .collect();
                (Source::Derived(plan), scope)
            }
            ast::TableFactor::Derived { subquery, alias, lateral: false, .. } => {
                let mut plan = self.plan_query_with(subquery, ctes, outer, params)?;
                let alias = alias.as_ref().ok_or_else(|| SqlError::syntax("subquery in FROM must have an alias"))?;
                rename_outputs(&mut plan, alias)?;
                let q = normalize_ident(&alias.name);
                let scope = plan
                    .columns()
                    .into_iter()
                    .map(|c| ScopeCol { qualifier: Some(q.clone()), name: c.name, ty: c.ty, hidden: false, origin: None, depth: 0 })
                    .collect();
                (Source::Derived(Arc::new(plan)), scope)
            }
            ast::TableFactor::NestedJoin { table_with_joins, alias: None } => {
                self.plan_from(std::slice::from_ref(&**table_with_joins), ctes, outer, params)?
            }
            ast::TableFactor::Table { name, alias, args, with_ordinality, .. } => {
                let alias_name = alias.as_ref().map(|a| normalize_ident(&a.name));
                let args = args.as_ref().map(|a| function_args(&a.args)).transpose()?;
                let marker = args.as_ref().and_then(|a| a.first()).and_then(|e| string_literal(e));
                match (args.as_deref(), marker) {
                    (Some([_, v]), Some(m @ (crate::sql::AS_OF_TX | crate::sql::AS_OF_TIMESTAMP))) => {
                        let current = self.resolve_table(name);
                        let mut c = Ctx { scope: &[], params, aggs: None, planner: None };
                        let as_of = if m == crate::sql::AS_OF_TX {
                            AsOf::Tx(c.compile_as(v, DataType::Int8)?.expr)
                        } else {
                            AsOf::Timestamp(c.compile_as(v, DataType::Timestamptz)?.expr)
                        };
                        // A literal point in time reads under the schema the table had then (columns
                        // dropped since, types changed since); otherwise under the current one.
                        let literal = matches!(v, ast::Expr::Value(_) | ast::Expr::TypedString { .. })
                            || matches!(v, ast::Expr::Cast { expr, .. } if matches!(**expr, ast::Expr::Value(_)));
                        // The name is resolved as of that point too: a table dropped (or renamed) since is
                        // found under the name it had then.
                        let t = match literal.then(|| self.as_of_snapshot(&as_of, &Env::constant())) {
                            Some(Ok(snapshot)) => match self.table_named_at(&object_name(name), snapshot)? {
                                Some(def) => def,
                                None => {
                                    let t = current?;
                                    self.table_def_at(&t, snapshot)?.unwrap_or(t)
                                }
                            },
                            _ => current?,
                        };
                        let scope = table_scope(&t, &alias_name.unwrap_or_else(|| t.name.clone()));
                        (Source::Table { table: t, pk: None, index: None, pk_range: None, as_of: Some(as_of), commit_ts: false }, scope)
                    }
                    (Some(args), _) => {
                        let f = object_name(name);
                        match f.as_str() {
                            // Set-returning catalog functions that are tables here.
                            "pg_show_all_settings" | "pg_get_keywords" if args.is_empty() => {
                                let table = if f == "pg_show_all_settings" { "pg_settings" } else { "pg_get_keywords" };
                                let (cols, rows) = crate::sql::pg_catalog::table(table, &self.catalog())?
                                    .ok_or_else(|| SqlError::undefined_table(table))?;
                                let q = alias_name.unwrap_or(f);
                                (Source::Rows(rows), virtual_scope(&q, &cols))
                            }
                            "vouch_checkpoint" if args.is_empty() => {
                                (Source::Checkpoint, virtual_scope(&alias_name.unwrap_or(f), &CHECKPOINT_COLUMNS))
                            }
                            "history" if !args.is_empty() => {
                                let tname = string_literal(args[0])
                                    .ok_or_else(|| SqlError::syntax("history() takes the table name as a string literal"))?;
                                let t = self.catalog().table(&tname.to_lowercase())?.clone();
                                if args.len() - 1 != t.primary_key.len() {
                                    return Err(SqlError::new(
                                        "42883",
                                        format!(
                                            "history('{}', …) takes {} key value(s), the table's primary key",
                                            t.name,
                                            t.primary_key.len()
                                        ),
                                    ));
                                }
                                let mut c = Ctx { scope: &[], params, aggs: None, planner: None };
                                let key = args[1..]
                                    .iter()
                                    .zip(&t.primary_key)
                                    .map(|(a, &i)| c.compile_as(a, t.columns[i].ty).map(|x| x.expr))
                                    .collect::<SqlResult<Vec<_>>>()?;
                                let scope = history_scope(&t, &alias_name.unwrap_or_else(|| "history".into()));
                                (Source::History { table: t, key }, scope)
                            }
                            f if super::proofs::is_proof_function(f) => {
                                let (call, scope) = self.plan_proof(f, args, alias_name, params)?;
                                (Source::Proof(Box::new(call)), scope)
                            }
                            "generate_series" | "unnest" | "pg_partition_ancestors" => {
                                self.plan_series(&f, args, alias.as_ref(), *with_ordinality, outer, params)?
                            }
                            _ => return Err(SqlError::new("42883", format!("function {f}() does not exist"))),
                        }
                    }
                    (None, _) => {
                        let t = self.resolve_table(name)?;
                        let scope = table_scope(&t, &alias_name.unwrap_or_else(|| t.name.clone()));
                        (Source::Table { table: t, pk: None, index: None, pk_range: None, as_of: None, commit_ts: false }, scope)
                    }
                }
            }
            ast::TableFactor::UNNEST { alias, array_exprs, with_offset: false, with_ordinality, .. } if !array_exprs.is_empty() => {
                let args: Vec<&ast::Expr> = array_exprs.iter().collect();
                self.plan_series("unnest", &args, alias.as_ref(), *with_ordinality, outer, params)?
            }
            other => return Err(SqlError::unsupported(format!("FROM item not supported yet: {other}"))),
        })
    }

    /// A set-returning function in FROM. Its arguments may read the outer query's columns.
    fn plan_series(
        &self,
        f: &str,
        args: &[&ast::Expr],
        alias: Option<&ast::TableAlias>,
        ordinality: bool,
        outer: &[ScopeCol],
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<(Source, Vec<ScopeCol>)> {
        let mut c = Ctx { scope: outer, params, aggs: None, planner: Some(self) };
        let typed = args.iter().map(|a| c.compile(a)).collect::<SqlResult<Vec<_>>>()?;
        // unnest(a, b, …) zips its arrays (one column each); the others give one column.
        let mut extra_types = Vec::new();
        let (func, ty) = match (f, typed.as_slice()) {
            ("unnest", [a, rest @ ..]) => {
                for t in rest {
                    match t.ty.elem() {
                        Some(e) => extra_types.push(e),
                        None => return Err(SqlError::new("42883", format!("function unnest({}) does not exist", t.ty.name()))),
                    }
                }
                match a.ty.elem() {
                    Some(e) => (SeriesFunc::Unnest, e),
                    None => return Err(SqlError::new("42883", format!("function unnest({}) does not exist", a.ty.name()))),
                }
            }
            ("generate_series", [a, b] | [a, b, _]) if a.ty.is_integer() && b.ty.is_integer() => {
                (SeriesFunc::GenerateSeries, crate::sql::expr::wider(a.ty, b.ty))
            }
            ("pg_partition_ancestors", [_]) => (SeriesFunc::PartitionAncestors, DataType::Int8),
            _ => return Err(SqlError::new("42883", format!("function {f} with these arguments does not exist"))),
        };
        let correlated = typed.iter().any(|t| (0..outer.len()).any(|c| t.expr.references(c)));
        let args = typed.into_iter().map(|t| t.expr).collect();
        let q = alias.map(|a| normalize_ident(&a.name)).unwrap_or(f.to_string());
        let default = if func == SeriesFunc::PartitionAncestors { "relid".to_string() } else { q.clone() };
        let col = alias.and_then(|a| a.columns.first()).map(|c| normalize_ident(&c.name)).unwrap_or(default);
        let mut scope = vec![ScopeCol { qualifier: Some(q.clone()), name: col, ty, hidden: false, origin: None, depth: 0 }];
        for (i, ty) in extra_types.into_iter().enumerate() {
            let name = alias.and_then(|a| a.columns.get(i + 1)).map(|c| normalize_ident(&c.name)).unwrap_or_else(|| q.clone());
            scope.push(ScopeCol { qualifier: Some(q.clone()), name, ty, hidden: false, origin: None, depth: 0 });
        }
        if ordinality {
            let at = scope.len();
            let name = alias.and_then(|a| a.columns.get(at)).map(|c| normalize_ident(&c.name)).unwrap_or("ordinality".into());
            scope.push(ScopeCol { qualifier: Some(q), name, ty: DataType::Int8, hidden: false, origin: None, depth: 0 });
        }
        Ok((Source::Series { func, args, correlated, ordinality }, scope))
    }

    /// The part of a query after FROM: WHERE, grouping, projection, DISTINCT, ORDER BY, LIMIT.
    /// `select` None means `SELECT *` over the source (a set operation or VALUES).
    fn plan_core(
        &self,
        source: Source,
        scope: Vec<ScopeCol>,
        select: Option<&ast::Select>,
        q: &ast::Query,
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<QueryPlan> {
        let star;
        let select = match select {
            Some(s) => s,
            None => {
                star = star_select();
                &star
            }
        };
        let filter = select
            .selection
            .as_ref()
            .map(|w| Ctx { scope: &scope, params, aggs: None, planner: Some(self) }.compile_as(w, DataType::Bool))
            .transpose()?;
        let source = match source {
            Source::Table { table, as_of, .. } => {
                let pk = filter.as_ref().and_then(|f| pk_lookup(&table, &f.expr));
                let mut index = if pk.is_none() { filter.as_ref().and_then(|f| index_lookup(&table, &f.expr)).map(Box::new) } else { None };
                // Equality on an index beats a primary-key range; a primary-key range beats an index range.
                let pk_range = match (&pk, &index) {
                    (None, Some(ia)) if !ia.eq.is_empty() => None,
                    (None, _) => filter.as_ref().and_then(|f| pk_range(&table, &f.expr)).map(Box::new),
                    _ => None,
                };
                if pk_range.is_some() {
                    index = None;
                }
                Source::Table { table, pk, index, pk_range, as_of, commit_ts: false }
            }
            s => s,
        };
        let group_exprs = match &select.group_by {
            ast::GroupByExpr::Expressions(e, _) => e.clone(),
            ast::GroupByExpr::All(_) => return Err(SqlError::unsupported("GROUP BY ALL")),
        };
        let mut aggs = Vec::new();
        let mut outputs = Vec::new();
        let mut windows = Vec::new();
        for item in &select.projection {
            if let Some((spec, name)) = row_number_item(item) {
                if spec.window_name.is_some() || spec.window_frame.is_some() {
                    return Err(SqlError::unsupported("window names and frames"));
                }
                let mut c = Ctx { scope: &scope, params, aggs: None, planner: Some(self) };
                let partition = spec.partition_by.iter().map(|e| Ok(c.compile(e)?.expr)).collect::<SqlResult<Vec<_>>>()?;
                let mut order = Vec::new();
                for item in &spec.order_by {
                    let asc = !matches!(item.options.sort, Some(ast::OrderBySort::Desc));
                    order.push((c.compile(&item.expr)?.expr, asc, item.options.nulls_first.unwrap_or(!asc)));
                }
                windows.push(Window { partition, order });
                outputs.push((name, Expr::Column(scope.len() + windows.len() - 1), DataType::Int8));
                continue;
            }
            project_item(&scope, item, params, Some(&mut aggs), &mut outputs, Some(self))?;
        }
        let visible = outputs.len();
        let mut group_by = Vec::new();
        for g in &group_exprs {
            // GROUP BY may name an output column or position.
            let e = match g {
                ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                    let n: usize = v.value.to_string().parse().map_err(|_| SqlError::syntax("bad GROUP BY position"))?;
                    outputs
                        .get(n.wrapping_sub(1))
                        .map(|o| o.1.clone())
                        .ok_or_else(|| SqlError::new("42P10", format!("GROUP BY position {n} is not in select list")))?
                }
                _ => match (Ctx { scope: &scope, params, aggs: None, planner: Some(self) }).compile(g) {
                    Ok(t) => t.expr,
                    // A name that is no input column may be an output column's alias, as in PostgreSQL.
                    Err(e) if e.code == "42703" => match g {
                        ast::Expr::Identifier(i) if outputs[..visible].iter().filter(|o| o.0 == normalize_ident(i)).count() == 1 => {
                            outputs[..visible].iter().find(|o| o.0 == normalize_ident(i)).expect("counted above").1.clone()
                        }
                        _ => return Err(e),
                    },
                    Err(e) => return Err(e),
                },
            };
            group_by.push(e);
        }
        // Functional dependency (PostgreSQL 9.1+): grouping by a table's primary key groups by all of
        // its columns, so they may be read outside aggregates (Django groups by the key alone).
        if !group_by.is_empty() {
            let grouped: Vec<String> = group_by.iter().map(|g| format!("{g:?}")).collect();
            let mut implied = Vec::new();
            for (qualifier, table) in self.tables_in_from(&select.from) {
                let col = |name: &str| scope.iter().position(|c| c.qualifier.as_deref() == Some(qualifier.as_str()) && c.name == name);
                let keyed = !table.primary_key.is_empty()
                    && table
                        .primary_key
                        .iter()
                        .all(|&k| col(&table.columns[k].name).is_some_and(|i| grouped.contains(&format!("{:?}", Expr::Column(i)))));
                if keyed {
                    implied
                        .extend((0..scope.len()).filter(|&i| scope[i].qualifier.as_deref() == Some(qualifier.as_str())).map(Expr::Column));
                }
            }
            group_by.extend(implied.into_iter().filter(|e| !grouped.contains(&format!("{e:?}"))));
        }
        let having = select
            .having
            .as_ref()
            .map(|h| Ctx { scope: &scope, params, aggs: Some(&mut aggs), planner: Some(self) }.compile_as(h, DataType::Bool))
            .transpose()?;
        let grouped = !group_by.is_empty() || !aggs.is_empty();
        if grouped {
            // PostgreSQL: outside aggregates, only GROUP BY expressions (or their columns) may be read.
            let allowed: Vec<String> = group_by.iter().map(|g| format!("{g:?}")).collect();
            let checked = outputs.iter().map(|o| &o.1).chain(having.iter().map(|h| &h.expr));
            for e in checked {
                if let Some(i) = e.ungrouped_column(&allowed) {
                    let c = &scope[i];
                    let name = match &c.qualifier {
                        Some(q) => format!("{q}.{}", c.name),
                        None => c.name.clone(),
                    };
                    return Err(SqlError::new(
                        "42803",
                        format!("column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"),
                    ));
                }
            }
        }
        let mut order_by = Vec::new();
        if let Some(ob) = &q.order_by {
            let ast::OrderByKind::Expressions(items) = &ob.kind else { return Err(SqlError::unsupported("ORDER BY ALL")) };
            for item in items {
                let asc = !matches!(item.options.sort, Some(ast::OrderBySort::Desc));
                let nulls_first = item.options.nulls_first.unwrap_or(!asc);
                let idx = match &item.expr {
                    ast::Expr::Value(v) if matches!(v.value, ast::Value::Number(..)) => {
                        let n: usize = v.value.to_string().parse().map_err(|_| SqlError::syntax("bad ORDER BY position"))?;
                        if n == 0 || n > visible {
                            return Err(SqlError::new("42P10", format!("ORDER BY position {n} is not in select list")));
                        }
                        n - 1
                    }
                    ast::Expr::Identifier(i) if outputs[..visible].iter().filter(|o| o.0 == normalize_ident(i)).count() == 1 => {
                        outputs.iter().position(|o| o.0 == normalize_ident(i)).expect("counted above")
                    }
                    e => {
                        let t = Ctx { scope: &scope, params, aggs: Some(&mut aggs), planner: Some(self) }.compile(e)?;
                        outputs.push(("?order?".into(), t.expr, t.ty));
                        outputs.len() - 1
                    }
                };
                order_by.push((idx, asc, nulls_first));
            }
        }
        let (limit, offset) = match &q.limit_clause {
            None => (None, None),
            Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
                let mut c = Ctx { scope: &[], params, aggs: None, planner: Some(self) };
                let l = limit.as_ref().map(|l| c.compile_as(l, DataType::Int8)).transpose()?.map(|t| t.expr);
                let o = offset.as_ref().map(|o| c.compile_as(&o.value, DataType::Int8)).transpose()?.map(|t| t.expr);
                (l, o)
            }
            Some(_) => return Err(SqlError::syntax("LIMIT offset, count is not PostgreSQL syntax")),
        };
        let mut distinct_on = Vec::new();
        let distinct = match &select.distinct {
            None | Some(ast::Distinct::All) => false,
            Some(ast::Distinct::Distinct) => true,
            // DISTINCT ON (exprs): the first row (in ORDER BY order) of each distinct value of exprs.
            Some(ast::Distinct::On(exprs)) => {
                for e in exprs {
                    let idx = match e {
                        ast::Expr::Identifier(i) if outputs[..visible].iter().filter(|o| o.0 == normalize_ident(i)).count() == 1 => {
                            outputs.iter().position(|o| o.0 == normalize_ident(i)).expect("counted above")
                        }
                        e => {
                            let t = Ctx { scope: &scope, params, aggs: Some(&mut aggs), planner: Some(self) }.compile(e)?;
                            outputs.push(("?distinct?".into(), t.expr, t.ty));
                            outputs.len() - 1
                        }
                    };
                    distinct_on.push(idx);
                }
                false
            }
        };
        let filter = filter.map(|f| f.expr);
        let having = having.map(|h| h.expr);
        let mut source = source;
        if let Source::Table { table, commit_ts, .. } = &mut source {
            // `_commit_ts` costs a log read per row: fetch it only when something refers to it.
            let col = table.columns.len() + 1;
            let exprs = filter.iter().chain(&group_by).chain(having.iter()).chain(outputs.iter().map(|o| &o.1));
            *commit_ts = exprs.chain(aggs.iter().filter_map(|a| a.arg.as_ref())).any(|e| e.references(col));
        }
        if !windows.is_empty() && (!aggs.is_empty() || !group_by.is_empty()) {
            return Err(SqlError::unsupported("window functions with GROUP BY or aggregates"));
        }
        let window_base = scope.len();
        let origins = outputs[..visible]
            .iter()
            .map(|(_, e, _)| match e {
                Expr::Column(i) if !grouped => scope.get(*i).and_then(|c| c.origin),
                _ => None,
            })
            .collect();
        Ok(QueryPlan {
            windows,
            window_base,
            outer_width: 0,
            source,
            filter,
            grouped,
            group_by,
            aggs,
            having,
            outputs,
            origins,
            visible,
            distinct,
            distinct_on,
            order_by,
            limit,
            offset,
        })
    }

    fn source_rows(&self, source: &Source, txn: &Txn, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        Ok(match source {
            Source::Unit => vec![vec![]],
            Source::Derived(plan) => self.run_query(plan, txn, env)?,
            Source::Rows(rows) => rows.clone(),
            Source::WorkTable(work) => work.0.lock().map_err(|_| SqlError::new("XX000", "working table poisoned"))?.clone(),
            Source::Recursive { base, step, all, work } => {
                let mut out = self.source_rows(base, txn, env)?;
                if !all {
                    dedup_rows(&mut out, usize::MAX);
                }
                let mut from = 0;
                while from < out.len() {
                    *work.0.lock().map_err(|_| SqlError::new("XX000", "working table poisoned"))? = out[from..].to_vec();
                    let new = self.source_rows(step, txn, env)?;
                    from = out.len();
                    out.extend(new);
                    if !all {
                        dedup_rows(&mut out, usize::MAX);
                    }
                    if out.len() > MAX_RECURSIVE_ROWS {
                        return Err(SqlError::new("54001", format!("recursive query produced more than {MAX_RECURSIVE_ROWS} rows")));
                    }
                }
                work.0.lock().map_err(|_| SqlError::new("XX000", "working table poisoned"))?.clear();
                out
            }
            Source::Series { func, args, ordinality, .. } => {
                let vals = args.iter().map(|a| a.eval(env.outer, env)).collect::<SqlResult<Vec<_>>>()?;
                let mut rows = series_rows(*func, &vals)?;
                if *ordinality {
                    for (i, r) in rows.iter_mut().enumerate() {
                        r.push(Value::Int(i as i64 + 1));
                    }
                }
                rows
            }
            Source::Values(rows) => {
                rows.iter().map(|r| r.iter().map(|e| e.eval(&[], env)).collect::<SqlResult<Vec<_>>>()).collect::<SqlResult<_>>()?
            }
            Source::Union { parts, all } => {
                let mut out = Vec::new();
                for p in parts {
                    out.extend(self.source_rows(p, txn, env)?);
                }
                if !all {
                    dedup_rows(&mut out, usize::MAX);
                }
                out
            }
            Source::SetOp { parts, all, intersect } => {
                let mut left = self.source_rows(&parts[0], txn, env)?;
                let right = self.source_rows(&parts[1], txn, env)?;
                // How many times each right row occurs (rows compare as UNION's dedup does: NULLs equal).
                let mut counts: HashMap<String, usize> = HashMap::new();
                for r in &right {
                    *counts.entry(format!("{r:?}")).or_default() += 1;
                }
                if !all {
                    dedup_rows(&mut left, usize::MAX);
                }
                left.retain(|l| {
                    let n = counts.get_mut(&format!("{l:?}"));
                    let found = n.as_ref().is_some_and(|n| **n > 0);
                    if let (true, Some(n)) = (*all, n) {
                        *n = n.saturating_sub(1);
                    }
                    found == *intersect
                });
                left
            }
            Source::Lateral { left, right, .. } => {
                let mut out = Vec::new();
                for l in self.source_rows(left, txn, env)? {
                    let mut seen = l.clone();
                    seen.extend_from_slice(env.outer);
                    let inner = Env { outer: &seen, ..*env };
                    for r in self.source_rows(right, txn, &inner)? {
                        let mut row = l.clone();
                        row.extend(r);
                        out.push(row);
                    }
                }
                out
            }
            Source::Join { left, right, kind, on, right_width } => {
                let lrows = self.source_rows(left, txn, env)?;
                let rrows = self.source_rows(right, txn, env)?;
                let mut out = Vec::new();
                for l in &lrows {
                    let mut matched = false;
                    for r in &rrows {
                        let mut row = Vec::with_capacity(l.len() + r.len());
                        row.extend_from_slice(l);
                        row.extend_from_slice(r);
                        let keep = match on {
                            Some(c) => c.eval(&row, env)? == Value::Bool(true),
                            None => true,
                        };
                        if keep {
                            matched = true;
                            out.push(row);
                        }
                    }
                    if !matched && *kind == JoinKind::Left {
                        let mut row = l.clone();
                        row.extend(std::iter::repeat_n(Value::Null, *right_width));
                        out.push(row);
                    }
                }
                out
            }
            Source::Checkpoint => {
                let cp = self.signer.sign(&self.ledger.head());
                vec![vec![
                    Value::Int(cp.checkpoint.size as i64),
                    Value::Text(hex::encode(cp.checkpoint.root)),
                    Value::Text(cp.body.clone()),
                    Value::Text(cp.signature_base64()),
                    Value::Text(cp.public_key_pem.clone()),
                    Value::Text(cp.note.clone()),
                ]]
            }
            Source::Table { table, pk, index, pk_range, as_of, commit_ts } => {
                if as_of.is_none() {
                    txn.note_read(table.id);
                }
                let key = self.pk_key(table, pk.as_ref(), env)?;
                if pk.is_some() && key.is_none() {
                    return Ok(vec![]);
                }
                let past;
                let txn = match as_of {
                    None => txn,
                    Some(a) => {
                        past = Txn { snapshot: self.as_of_snapshot(a, env)?, ..self.begin_txn(false) };
                        &past
                    }
                };
                let mut rows: Vec<Vec<Value>> = match (index, key, pk_range) {
                    (Some(ia), None, _) => self.index_rows(table, ia, txn, env)?,
                    (None, None, Some(range)) => {
                        let (lo, hi) = (pk_bound(table, &range.0, env)?, pk_bound(table, &range.1, env)?);
                        self.scan_range(table, txn, None, lo.as_deref(), hi.as_deref())?.into_iter().map(|s| s.row).collect()
                    }
                    (_, key, _) => self.scan(table, txn, key)?.into_iter().map(|s| s.row).collect(),
                };
                if *commit_ts {
                    let mut times: HashMap<i64, Value> = HashMap::new();
                    for r in &mut rows {
                        let n = table.columns.len();
                        if let Value::Int(tx) = r[n] {
                            let v = match times.get(&tx) {
                                Some(v) => v.clone(),
                                None => {
                                    let v = Value::Timestamptz(self.ledger.leaf(tx as u64)?.0.commit_time_us as i64);
                                    times.insert(tx, v.clone());
                                    v
                                }
                            };
                            r[n + 1] = v;
                        }
                    }
                }
                rows
            }
            Source::Proof(call) => self.proof_rows(call, txn, env)?,
            Source::History { table, key } => {
                let vals = key
                    .iter()
                    .zip(&table.primary_key)
                    .map(|(e, &i)| e.eval(&[], env)?.cast(table.columns[i].ty))
                    .collect::<SqlResult<Vec<_>>>()?;
                if vals.iter().any(Value::is_null) {
                    return Ok(vec![]);
                }
                let mut out = Vec::new();
                for v in self.ledger.history(table.id, &encode_key(&vals)?)? {
                    if v.tx > txn.snapshot {
                        break;
                    }
                    let leaf = self.ledger.leaf(v.tx)?.0;
                    let mut row = if v.entry.is_delete() {
                        vec![Value::Null; table.columns.len()]
                    } else {
                        let mut r = self.decode(table, &v.entry.value, v.tx)?;
                        r.truncate(table.columns.len());
                        r
                    };
                    let client = if leaf.client_time_us == 0 { Value::Null } else { Value::Timestamptz(leaf.client_time_us as i64) };
                    row.extend([
                        Value::Int(v.tx as i64),
                        Value::Timestamptz(leaf.commit_time_us as i64),
                        client,
                        Value::Bool(v.entry.is_delete()),
                    ]);
                    out.push(row);
                }
                out
            }
        })
    }

    /// Rows reached through a secondary index (the caller's filter re-checks them), plus the rows this
    /// transaction wrote itself.
    fn index_rows(&self, table: &TableDef, ia: &IndexAccess, txn: &Txn, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        let ty = |i: usize| table.columns[ia.index.columns[i]].ty;
        let mut eq = Vec::with_capacity(ia.eq.len());
        for (i, e) in ia.eq.iter().enumerate() {
            match e.eval(&[], env)?.cast(ty(i)) {
                Ok(Value::Null) => return Ok(vec![]),
                Ok(v) => eq.push(v),
                Err(e) if e.code == "22003" => return Ok(vec![]),
                Err(e) => return Err(e),
            }
        }
        let bound = |e: &Option<Expr>| -> SqlResult<Option<Value>> {
            match e {
                None => Ok(None),
                Some(e) => match e.eval(&[], env)?.cast(ty(eq.len())) {
                    Ok(v) if !v.is_null() => Ok(Some(v)),
                    Ok(_) => Ok(None),
                    Err(e) if e.code == "22003" => Ok(None),
                    Err(e) => Err(e),
                },
            }
        };
        let (lo, hi) = (bound(&ia.lo)?, bound(&ia.hi)?);
        let (lower, upper) = crate::sql::index::range(&ia.index, &eq, lo.as_ref(), hi.as_ref())?;
        let mut keys = crate::sql::index::live_keys(self.ledger.scan_index(&lower, &upper, txn.snapshot)?);
        keys.extend(txn.writes.range((table.id, Vec::new())..).take_while(|((t, _), _)| *t == table.id).map(|((_, k), _)| k.clone()));
        keys.sort();
        keys.dedup();
        let mut rows = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(r) = self.get_row(table, txn, &k)? {
                rows.push(r);
            }
        }
        Ok(rows)
    }

    /// UNIQUE indexes: no other live row, committed (by anyone, up to now) or written by this
    /// transaction, may have the same non-NULL values.
    fn check_unique(&self, t: &TableDef, txn: &Txn, pk: &[u8], row: &[Value]) -> SqlResult<()> {
        for index in t.indexes.iter().filter(|i| i.unique) {
            let vals = crate::sql::index::values_of(index, row);
            if vals.iter().any(Value::is_null) {
                continue;
            }
            let (lower, upper) = crate::sql::index::range(index, &vals, None, None)?;
            let mut candidates = crate::sql::index::live_keys(self.ledger.scan_index(&lower, &upper, u64::MAX)?);
            candidates.extend(txn.writes.range((t.id, Vec::new())..).take_while(|((id, _), _)| *id == t.id).map(|((_, k), _)| k.clone()));
            for c in candidates {
                if c == pk {
                    continue;
                }
                let other = match txn.writes.get(&(t.id, c.clone())) {
                    Some(w) => w.as_ref().map(|b| self.decode(t, b, 0)).transpose()?,
                    None => match self.ledger.get_latest(t.id, &c)? {
                        Some(v) if !v.entry.is_delete() => Some(self.decode(t, &v.entry.value, v.tx)?),
                        _ => None,
                    },
                };
                if other.is_some_and(|o| crate::sql::index::values_of(index, &o) == vals) {
                    return Err(crate::sql::index::unique_violation(t, index, &vals));
                }
            }
        }
        Ok(())
    }

    /// The tree size a time-travel clause names.
    /// A table's definition as of a snapshot (None if it did not exist then).
    fn table_def_at(&self, t: &TableDef, snapshot: u64) -> SqlResult<Option<TableDef>> {
        match self.ledger.get_as_of(crate::sql::catalog::SYS_TABLES, &t.id.to_be_bytes(), snapshot)? {
            Some(v) if !v.entry.is_delete() => Ok(TableDef::decode(&v.entry.value).ok()),
            _ => Ok(None),
        }
    }

    /// The table that had this name when the log had `snapshot` transactions, if any.
    fn table_named_at(&self, name: &str, snapshot: u64) -> SqlResult<Option<TableDef>> {
        for (_, v) in self.ledger.scan_table(crate::sql::catalog::SYS_TABLES, snapshot, None)? {
            if v.entry.is_delete() {
                continue;
            }
            if let Ok(def) = TableDef::decode(&v.entry.value) {
                if def.name == name {
                    return Ok(Some(def));
                }
            }
        }
        Ok(None)
    }

    fn as_of_snapshot(&self, a: &AsOf, env: &Env) -> SqlResult<u64> {
        let head = self.ledger.head().size;
        match a {
            AsOf::Tx(e) => match e.eval(&[], env)?.cast(DataType::Int8)? {
                Value::Int(n) if n >= 0 && (n as u64) <= head => Ok(n as u64),
                Value::Int(n) => Err(SqlError::new("22023", format!("AS OF TX {n}: the log holds tx 1 to {head}"))),
                _ => Err(SqlError::new("22004", "AS OF TX needs a value, not NULL")),
            },
            AsOf::Timestamp(e) => match e.eval(&[], env)?.cast(DataType::Timestamptz)? {
                Value::Timestamptz(t) => Ok(self.ledger.tx_at_time(t.max(0) as u64)?),
                _ => Err(SqlError::new("22004", "AS OF TIMESTAMP needs a value, not NULL")),
            },
        }
    }

    /// Evaluate a primary-key lookup; `None` inside `Some` means a key value was NULL (no row matches).
    fn pk_key(&self, table: &TableDef, pk: Option<&Vec<Expr>>, env: &Env) -> SqlResult<Option<Vec<u8>>> {
        let Some(exprs) = pk else { return Ok(None) };
        let mut vals = Vec::with_capacity(exprs.len());
        for (e, &col) in exprs.iter().zip(&table.primary_key) {
            let v = e.eval(&[], env)?;
            if v.is_null() {
                return Ok(None);
            }
            match v.cast(table.columns[col].ty) {
                Ok(v) => vals.push(v),
                // A value the key type cannot hold matches no row; the filter decides the rest.
                Err(e) if e.code == "22003" => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        Ok(Some(encode_key(&vals)?))
    }

    /// LIMIT over a primary-key scan in the order the query asks for (no ORDER BY, or ORDER BY the
    /// key's leading columns ascending, which is the key's byte order): the key range is read
    /// in batches, stopping once OFFSET + LIMIT rows have passed the filter, instead of whole. The rows
    /// come back filtered. `None` when the plan is not of that shape, or when the transaction has its
    /// own writes to the table (those are merged by the whole-range scan).
    fn limited_scan(&self, plan: &QueryPlan, txn: &Txn, env: &Env) -> SqlResult<Option<Vec<Vec<Value>>>> {
        let Source::Table { table, pk: None, index: None, pk_range, as_of: None, commit_ts: false } = &plan.source else {
            return Ok(None);
        };
        if plan.outer_width > 0 || plan.grouped || plan.distinct || !plan.distinct_on.is_empty() || !plan.windows.is_empty() {
            return Ok(None);
        }
        for (k, &(i, asc, _)) in plan.order_by.iter().enumerate() {
            let in_key_order = match (table.primary_key.get(k), plan.outputs.get(i)) {
                // Key encodings sort as the values do (`encode_key`), for every type a key can have.
                (Some(&c), Some((_, Expr::Column(j), _))) => asc && c == *j,
                _ => false,
            };
            if !in_key_order {
                return Ok(None);
            }
        }
        let Some(limit) = const_usize(&plan.limit, env, "LIMIT")? else { return Ok(None) };
        let needed = const_usize(&plan.offset, env, "OFFSET")?.unwrap_or(0).saturating_add(limit);
        if txn.writes.range((table.id, Vec::new())..).next().is_some_and(|((t, _), _)| *t == table.id) {
            return Ok(None);
        }
        txn.note_read(table.id);
        let (lo, hi) = match pk_range {
            Some(r) => (pk_bound(table, &r.0, env)?, pk_bound(table, &r.1, env)?),
            None => (None, None),
        };
        let mut out = Vec::new();
        // The next batch starts at the last key read (inclusive, so that key is skipped).
        let mut last: Option<Vec<u8>> = None;
        let mut batch = needed.clamp(16, 4096);
        while out.len() < needed {
            let from = last.as_deref().or(lo.as_deref());
            let want = batch + usize::from(last.is_some());
            let got = self.ledger.scan_table_range(table.id, txn.snapshot, from, hi.as_deref(), Some(want))?;
            let exhausted = got.len() < want;
            for (key, v) in got {
                if last.as_ref() == Some(&key) {
                    continue;
                }
                let row = self.decode(table, &v.entry.value, v.tx)?;
                last = Some(key);
                if plan.filter.as_ref().map_or(Ok(true), |f| f.eval(&row, env).map(|b| b == Value::Bool(true)))? {
                    out.push(row);
                    if out.len() == needed {
                        break;
                    }
                }
            }
            if exhausted {
                break;
            }
            batch = (batch * 2).min(4096);
        }
        Ok(Some(out))
    }

    pub(crate) fn run_query(&self, plan: &QueryPlan, txn: &Txn, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        if let Some(rows) = self.limited_scan(plan, txn, env)? {
            return self.finish_query(plan, rows, env);
        }
        let mut rows = self.source_rows(&plan.source, txn, env)?;
        if plan.outer_width > 0 {
            for r in &mut rows {
                r.extend_from_slice(&env.outer[..plan.outer_width.min(env.outer.len())]);
            }
        }
        if let Some(f) = &plan.filter {
            let mut kept = Vec::with_capacity(rows.len());
            for r in rows {
                if f.eval(&r, env)? == Value::Bool(true) {
                    kept.push(r);
                }
            }
            rows = kept;
        }
        self.finish_query(plan, rows, env)
    }

    /// Everything after the filter: windows, grouping, projection, DISTINCT, ORDER BY, OFFSET, LIMIT.
    fn finish_query(&self, plan: &QueryPlan, mut rows: Vec<Vec<Value>>, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        if !plan.windows.is_empty() {
            number_rows(&plan.windows, plan.window_base, &mut rows, env)?;
        }
        let mut out = if plan.grouped { self.grouped(plan, rows, env)? } else { project(&plan.outputs, &rows, env)? };
        if plan.distinct {
            dedup_rows(&mut out, plan.visible);
        }
        if !plan.order_by.is_empty() {
            out.sort_by(|a, b| {
                for &(i, asc, nulls_first) in &plan.order_by {
                    let (x, y) = (&a[i], &b[i]);
                    let o = match (x.is_null(), y.is_null()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => {
                            if nulls_first {
                                std::cmp::Ordering::Less
                            } else {
                                std::cmp::Ordering::Greater
                            }
                        }
                        (false, true) => {
                            if nulls_first {
                                std::cmp::Ordering::Greater
                            } else {
                                std::cmp::Ordering::Less
                            }
                        }
                        _ => {
                            let o = x.sort_cmp(y);
                            if asc {
                                o
                            } else {
                                o.reverse()
                            }
                        }
                    };
                    if o.is_ne() {
                        return o;
                    }
                }
                std::cmp::Ordering::Equal
            });
        }
        if !plan.distinct_on.is_empty() {
            // The sort is stable: the first row of each key is the first in ORDER BY order.
            let mut seen: HashSet<String> = HashSet::new();
            out.retain(|r| seen.insert(format!("{:?}", plan.distinct_on.iter().map(|&i| &r[i]).collect::<Vec<_>>())));
        }
        let offset = const_usize(&plan.offset, env, "OFFSET")?.unwrap_or(0);
        let limit = const_usize(&plan.limit, env, "LIMIT")?;
        let out = out.into_iter().skip(offset).take(limit.unwrap_or(usize::MAX)).map(|mut r| {
            r.truncate(plan.visible);
            r
        });
        Ok(out.collect())
    }

    fn grouped(&self, plan: &QueryPlan, rows: Vec<Vec<Value>>, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        let mut groups: Vec<(Vec<Value>, Vec<Vec<Value>>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for r in rows {
            let key = plan.group_by.iter().map(|g| g.eval(&r, env)).collect::<SqlResult<Vec<_>>>()?;
            let k = format!("{key:?}");
            match index.get(&k) {
                Some(&i) => groups[i].1.push(r),
                None => {
                    index.insert(k, groups.len());
                    groups.push((key, vec![r]));
                }
            }
        }
        if groups.is_empty() && plan.group_by.is_empty() {
            groups.push((vec![], vec![]));
        }
        let mut out = Vec::new();
        for (_, members) in groups {
            let aggs = plan.aggs.iter().map(|a| aggregate(a, &members, env)).collect::<SqlResult<Vec<_>>>()?;
            let genv = Env { aggs: &aggs, ..*env };
            let rep = members.first().cloned().unwrap_or_default();
            if let Some(h) = &plan.having {
                if h.eval(&rep, &genv)? != Value::Bool(true) {
                    continue;
                }
            }
            out.push(plan.outputs.iter().map(|(_, e, _)| e.eval(&rep, &genv)).collect::<SqlResult<Vec<_>>>()?);
        }
        Ok(out)
    }

    // ---- INSERT -----------------------------------------------------------------------------------

    pub(crate) fn plan_insert(&self, ins: &ast::Insert, params: &mut Vec<Option<DataType>>) -> SqlResult<InsertPlan> {
        let ast::TableObject::TableName(name) = &ins.table else { return Err(SqlError::unsupported("INSERT INTO a table function")) };
        let table = self.resolve_table(name)?;
        // Without a column list the values fill the first columns, in order; the rest take defaults.
        let implicit = ins.columns.is_empty();
        let mut targets: Vec<usize> = if ins.source.is_none() {
            vec![]
        } else if implicit {
            (0..table.columns.len()).filter(|&i| !table.columns[i].hidden).collect()
        } else {
            ins.columns
                .iter()
                .map(|c| {
                    let n = object_name(c);
                    match table.column(&n) {
                        Some(i) if table.columns[i].hidden => {
                            Err(SqlError::new("428C9", format!("cannot assign to system column \"{n}\"")))
                        }
                        Some(i) => Ok(i),
                        None => Err(SqlError::new("42703", format!("column \"{n}\" of relation \"{}\" does not exist", table.name))),
                    }
                })
                .collect::<SqlResult<_>>()?
        };
        // DEFAULT VALUES: one row of defaults.
        let mut query = None;
        let value_rows: Vec<&[ast::Expr]> = match ins.source.as_deref() {
            None => vec![&[]],
            Some(source) => match &*source.body {
                ast::SetExpr::Values(values) if source.order_by.is_none() && source.limit_clause.is_none() => {
                    values.rows.iter().map(|r| r.content.as_slice()).collect()
                }
                _ => {
                    let q = self.plan_query(source, params)?;
                    let cols = q.columns();
                    if implicit && cols.len() < targets.len() {
                        targets.truncate(cols.len());
                    }
                    if cols.len() != targets.len() {
                        return Err(SqlError::syntax(if cols.len() > targets.len() {
                            "INSERT has more expressions than target columns"
                        } else {
                            "INSERT has more target columns than expressions"
                        }));
                    }
                    query = Some(q);
                    vec![]
                }
            },
        };
        // Identity columns: GENERATED ALWAYS takes a value only with OVERRIDING SYSTEM VALUE;
        // OVERRIDING USER VALUE ignores the given values.
        let identity = self.identity_columns(&table);
        if let (true, Some(first)) = (implicit, value_rows.first()) {
            if first.len() < targets.len() {
                targets.truncate(first.len());
            }
        }
        let mut rows = Vec::new();
        for r in value_rows {
            if r.len() != targets.len() {
                return Err(SqlError::syntax(if r.len() > targets.len() {
                    "INSERT has more expressions than target columns"
                } else {
                    "INSERT has more target columns than expressions"
                }));
            }
            let mut c = Ctx { scope: &[], params, aggs: None, planner: None };
            let exprs = r
                .iter()
                .zip(&targets)
                .map(|(e, &col)| match e {
                    ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case("default") && i.quote_style.is_none() => {
                        Ok(Expr::Const(Value::Text("\u{0}DEFAULT".into())))
                    }
                    _ if identity[col].is_some() && ins.overriding == Some(ast::InsertOverriding::User) => {
                        Ok(Expr::Const(Value::Text("\u{0}DEFAULT".into())))
                    }
                    _ if identity[col].as_ref().is_some_and(|(always, _)| *always)
                        && ins.overriding != Some(ast::InsertOverriding::System) =>
                    {
                        Err(SqlError::new(
                            "428C9",
                            format!("cannot insert a non-DEFAULT value into column \"{}\"", table.columns[col].name),
                        ))
                    }
                    e => c.compile_as(e, table.columns[col].ty).map(|t| t.expr),
                })
                .collect::<SqlResult<Vec<_>>>()?;
            rows.push(exprs);
        }
        let defaults = Self::column_defaults(&table, &identity)?;
        let mut do_update = None;
        if ins.or == Some(ast::SqliteOnConflict::Replace) {
            // UPSERT INTO: on a primary-key conflict, the given non-key columns replace the existing ones.
            if ins.on.is_some() {
                return Err(SqlError::syntax("UPSERT does not take ON CONFLICT"));
            }
            let n = table.columns.len() + 2;
            let sets = targets.iter().filter(|c| !table.primary_key.contains(c)).map(|&c| (c, Expr::Column(n + c))).collect();
            do_update = Some((sets, None));
        } else if ins.or.is_some() {
            return Err(SqlError::syntax("INSERT OR … is not PostgreSQL syntax"));
        }
        let do_nothing = match &ins.on {
            None => false,
            Some(_) if do_update.is_some() => unreachable!("UPSERT with ON CONFLICT was refused above"),
            Some(ast::OnInsert::OnConflict(oc)) => {
                // The conflict target must name the primary key or a unique index (as in PostgreSQL).
                if let Some(target) = &oc.conflict_target {
                    let ast::ConflictTarget::Columns { columns, predicate: None } = target else {
                        return Err(SqlError::unsupported("ON CONFLICT ON CONSTRAINT / with a predicate is not supported yet"));
                    };
                    let mut cols = columns
                        .iter()
                        .map(|c| table.column(&normalize_ident(c)))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| SqlError::new("42703", "a column of the ON CONFLICT target does not exist"))?;
                    cols.sort_unstable();
                    let sorted = |v: &[usize]| {
                        let mut v = v.to_vec();
                        v.sort_unstable();
                        v
                    };
                    let matches_pk = sorted(&table.primary_key) == cols;
                    let matches_unique = table.indexes.iter().any(|i| i.unique && sorted(&i.columns) == cols);
                    if !(matches_pk || matches_unique) {
                        return Err(SqlError::new(
                            "42P10",
                            "there is no unique or exclusion constraint matching the ON CONFLICT specification",
                        ));
                    }
                }
                match &oc.action {
                    ast::OnConflictAction::DoNothing => true,
                    ast::OnConflictAction::DoUpdate(du) => {
                        if oc.conflict_target.is_none() {
                            return Err(SqlError::new(
                                "42601",
                                "ON CONFLICT DO UPDATE requires inference specification or constraint name",
                            ));
                        }
                        let mut scope = table_scope(&table, &table.name);
                        scope.extend(table_scope(&table, "excluded"));
                        let mut sets = Vec::new();
                        for a in &du.assignments {
                            let ast::AssignmentTarget::ColumnName(n) = &a.target else {
                                return Err(SqlError::unsupported("tuple assignment"));
                            };
                            let cname = object_name(n);
                            let col = table.column(&cname).ok_or_else(|| {
                                SqlError::new("42703", format!("column \"{cname}\" of relation \"{}\" does not exist", table.name))
                            })?;
                            if table.primary_key.contains(&col) {
                                return Err(SqlError::unsupported("ON CONFLICT DO UPDATE of a primary-key column is not supported yet"));
                            }
                            sets.push((
                                col,
                                Ctx { scope: &scope, params, aggs: None, planner: None }.compile_as(&a.value, table.columns[col].ty)?.expr,
                            ));
                        }
                        let cond = du
                            .selection
                            .as_ref()
                            .map(|w| Ctx { scope: &scope, params, aggs: None, planner: None }.compile_as(w, DataType::Bool))
                            .transpose()?;
                        do_update = Some((sets, cond.map(|c| c.expr)));
                        false
                    }
                }
            }
            Some(_) => return Err(SqlError::syntax("ON DUPLICATE KEY UPDATE is not PostgreSQL syntax")),
        };
        let scope = table_scope(&table, &table.name);
        let returning = returning(&scope, &ins.returning, params)?;
        let returning_columns = returning.iter().map(|(n, _, t)| Column::new(n.clone(), *t)).collect();
        Ok(InsertPlan { table, targets, rows, query, defaults, do_nothing, do_update, returning, returning_columns })
    }

    /// Per column: `Some((always, sequence))` for an identity column.
    fn identity_columns(&self, table: &TableDef) -> Vec<Option<(bool, String)>> {
        let catalog = self.catalog();
        table
            .columns
            .iter()
            .map(|c| catalog.identity(table.id, &c.name).map(|s| (s.identity.as_deref() == Some("a"), s.name.clone())))
            .collect()
    }

    /// Per column: the expression that fills it when a row does not give it (DEFAULT, or nextval of
    /// its identity sequence).
    fn column_defaults(table: &TableDef, identity: &[Option<(bool, String)>]) -> SqlResult<Vec<Option<Expr>>> {
        table
            .columns
            .iter()
            .zip(identity)
            .map(|(c, id)| {
                c.default
                    .clone()
                    .or_else(|| id.as_ref().map(|(_, seq)| format!("nextval('{}')", seq.replace('\'', "''"))))
                    .map(|d| {
                        let e = crate::sql::parse_expr(&d)?;
                        Ok(Ctx { scope: &[], params: &mut vec![], aggs: None, planner: None }.compile_as(&e, c.ty)?.expr)
                    })
                    .transpose()
            })
            .collect()
    }

    /// The INSERT plan a `COPY t [(cols)] FROM STDIN` inserts its rows with: the columns the input
    /// fills, and the defaults of the others. Identity columns take the given values (PostgreSQL's COPY
    /// behaves as OVERRIDING SYSTEM VALUE).
    pub(crate) fn plan_copy_insert(&self, name: &ast::ObjectName, columns: &[ast::Ident]) -> SqlResult<InsertPlan> {
        let table = match self.resolve_table(name) {
            Err(e) if e.code == "42P01" && self.catalog().views.contains_key(&object_name(name)) => {
                return Err(SqlError::new("42809", format!("cannot copy to view \"{}\"", object_name(name))));
            }
            r => r?,
        };
        let targets: Vec<usize> = if columns.is_empty() {
            (0..table.columns.len()).filter(|&i| !table.columns[i].hidden).collect()
        } else {
            let mut targets = Vec::with_capacity(columns.len());
            for c in columns {
                let n = normalize_ident(c);
                let col = match table.column(&n) {
                    Some(i) if table.columns[i].hidden => {
                        return Err(SqlError::new("428C9", format!("cannot assign to system column \"{n}\"")))
                    }
                    Some(i) => i,
                    None => return Err(SqlError::new("42703", format!("column \"{n}\" of relation \"{}\" does not exist", table.name))),
                };
                if targets.contains(&col) {
                    return Err(SqlError::new("42701", format!("column \"{n}\" specified more than once")));
                }
                targets.push(col);
            }
            targets
        };
        let identity = self.identity_columns(&table);
        let defaults = Self::column_defaults(&table, &identity)?;
        Ok(InsertPlan {
            table,
            targets,
            rows: vec![],
            query: None,
            defaults,
            do_nothing: false,
            do_update: None,
            returning: vec![],
            returning_columns: Arc::new([]),
        })
    }

    /// The names of the columns a COPY FROM plan fills, in input order.
    pub(crate) fn copy_columns(plan: &InsertPlan) -> Vec<String> {
        plan.targets.iter().map(|&c| plan.table.columns[c].name.clone()).collect()
    }

    /// `COPY … FROM STDIN`: decode the transaction's COPY input and insert its rows through the
    /// INSERT path (defaults, NOT NULL, primary key and unique indexes; CHECK and FOREIGN KEY
    /// constraints and row locks follow as for any writing statement).
    pub(crate) fn run_copy_in(&self, stmt: &ast::Statement, txn: &mut Txn, env: &Env) -> SqlResult<Outcome> {
        let ast::Statement::Copy { source: ast::CopySource::Table { table_name, columns }, .. } = stmt else {
            return Err(SqlError::syntax("COPY ... FROM does not support query as a source"));
        };
        let opts = super::super::copy::CopyOptions::from_statement(stmt)?;
        let plan = self.plan_copy_insert(table_name, columns)?;
        let Some(data) = txn.copy_input.clone() else {
            return Err(SqlError::new("08P01", "COPY FROM STDIN needs its data through the COPY protocol"));
        };
        let names = Self::copy_columns(&plan);
        let t = &plan.table;
        let mut decoder = super::super::copy::Decoder::new(&data, &opts, &t.name, &names)?;
        let mut count = 0u64;
        loop {
            let line = match decoder.next_row() {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => return Err(super::super::copy::name_missing_column(e, &names)),
            };
            let mut row = vec![Value::Null; t.columns.len()];
            let mut given = vec![false; t.columns.len()];
            for ((field, &col), name) in line.fields.iter().zip(&plan.targets).zip(&names) {
                given[col] = true;
                if let Some(text) = field {
                    row[col] = Value::parse(text, t.columns[col].ty)
                        .map_err(|e| e.with_context(decoder.column_context(line.number, name, Some(text))))?;
                }
            }
            // PostgreSQL names the line of a unique violation without its text (the row is checked
            // after the line was consumed), and shows the text for other row errors.
            let inserted = self.insert_one(&plan, txn, env, row, given).map_err(|e| {
                let ctx = if e.code == "23505" { format!("COPY {}, line {}", t.name, line.number) } else { decoder.line_context(line.raw) };
                e.with_context(ctx)
            })?;
            if inserted.is_some() {
                count += 1;
            }
        }
        Ok(Outcome::Command(format!("COPY {count}")))
    }

    pub(crate) fn run_insert(&self, plan: &InsertPlan, txn: &mut Txn, env: &Env) -> SqlResult<Outcome> {
        let t = &plan.table;
        let mut count = 0;
        let mut returned = Vec::new();
        let selected;
        let rows = match &plan.query {
            None => &plan.rows,
            Some(q) => {
                let runner = Runner { engine: self, txn: &*txn };
                let result = self.run_query(q, txn, &Env { sub: Some(&runner), ..*env })?;
                selected = result
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .zip(&plan.targets)
                            .map(|(v, &c)| Ok(Expr::Const(v.cast(t.columns[c].ty)?)))
                            .collect::<SqlResult<Vec<_>>>()
                    })
                    .collect::<SqlResult<Vec<_>>>()?;
                &selected
            }
        };
        for exprs in rows {
            let mut row = vec![Value::Null; t.columns.len()];
            let mut given = vec![false; t.columns.len()];
            for (e, &col) in exprs.iter().zip(&plan.targets) {
                if !matches!(e, Expr::Const(Value::Text(s)) if s == "\u{0}DEFAULT") {
                    row[col] = e.eval(&[], env)?;
                    given[col] = true;
                }
            }
            let Some(row) = self.insert_one(plan, txn, env, row, given)? else { continue };
            count += 1;
            if !plan.returning.is_empty() {
                let mut full = row;
                full.extend([Value::Null, Value::Null]);
                returned.push(project(&plan.returning, std::slice::from_ref(&full), env)?.remove(0));
            }
        }
        let tag = format!("INSERT 0 {count}");
        if plan.returning.is_empty() {
            Ok(Outcome::Command(tag))
        } else {
            Ok(Outcome::Rows { columns: plan.returning_columns.clone(), rows: returned, tag })
        }
    }

    /// Insert one row (`given`: which columns the statement gave; the others get their defaults),
    /// with ON CONFLICT handling. The row as stored, or None when it was skipped.
    fn insert_one(
        &self,
        plan: &InsertPlan,
        txn: &mut Txn,
        env: &Env,
        mut row: Vec<Value>,
        given: Vec<bool>,
    ) -> SqlResult<Option<Vec<Value>>> {
        let t = &plan.table;
        for (i, d) in plan.defaults.iter().enumerate() {
            if let (false, Some(d)) = (given[i], d) {
                row[i] = d.eval(&[], env)?;
            }
        }
        let row = self.check_row(t, row)?;
        let key = encode_key(&t.primary_key.iter().map(|&i| row[i].clone()).collect::<Vec<_>>())?;
        let mut row = row;
        if let Some(existing) = self.get_row(t, txn, &key)? {
            let Some((sets, cond)) = &plan.do_update else {
                if plan.do_nothing {
                    return Ok(None);
                }
                return Err(duplicate_key(t, &row));
            };
            // ON CONFLICT DO UPDATE: the existing row, then the proposed one as `excluded`.
            let mut both = existing.clone();
            both.extend(row.iter().cloned());
            both.extend([Value::Null, Value::Null]);
            if let Some(c) = cond {
                if c.eval(&both, env)? != Value::Bool(true) {
                    return Ok(None);
                }
            }
            let mut updated = existing[..t.columns.len()].to_vec();
            for (col, e) in sets {
                updated[*col] = e.eval(&both, env)?;
            }
            row = self.check_row(t, updated)?;
        }
        match self.check_unique(t, txn, &key, &row) {
            Err(e) if e.code == "23505" && plan.do_nothing => return Ok(None),
            r => r?,
        }
        txn.writes.insert((t.id, key), Some(encode_row(t.version, &row)));
        Ok(Some(row))
    }

    /// Cast every value to its column's type and enforce NOT NULL.
    fn check_row(&self, t: &TableDef, row: Vec<Value>) -> SqlResult<Vec<Value>> {
        row.into_iter()
            .zip(&t.columns)
            .map(|(v, c)| {
                if v.is_null() && c.not_null {
                    return Err(SqlError::new(
                        "23502",
                        format!("null value in column \"{}\" of relation \"{}\" violates not-null constraint", c.name, t.name),
                    ));
                }
                c.fit(v.cast(c.ty)?)
            })
            .collect()
    }

    // ---- UPDATE / DELETE ----------------------------------------------------------------------------

    fn plan_modify(
        &self,
        relation: &ast::TableFactor,
        selection: &Option<ast::Expr>,
        assignments: &[ast::Assignment],
        ret: &Option<Vec<ast::SelectItem>>,
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<ModifyPlan> {
        let ast::TableFactor::Table { name, alias, .. } = relation else {
            return Err(SqlError::unsupported("UPDATE/DELETE target must be a table"));
        };
        let table = self.resolve_table(name)?;
        let scope = table_scope(&table, &alias.as_ref().map(|a| normalize_ident(&a.name)).unwrap_or_else(|| table.name.clone()));
        let filter = selection
            .as_ref()
            .map(|w| Ctx { scope: &scope, params, aggs: None, planner: None }.compile_as(w, DataType::Bool))
            .transpose()?
            .map(|t| t.expr);
        let pk = filter.as_ref().and_then(|f| pk_lookup(&table, f));
        let mut assigns = Vec::new();
        for a in assignments {
            let ast::AssignmentTarget::ColumnName(n) = &a.target else { return Err(SqlError::unsupported("tuple assignment")) };
            let cname = object_name(n);
            let col = table
                .column(&cname)
                .ok_or_else(|| SqlError::new("42703", format!("column \"{cname}\" of relation \"{}\" does not exist", table.name)))?;
            if table.columns[col].hidden {
                return Err(SqlError::new("428C9", format!("cannot assign to system column \"{cname}\"")));
            }
            let identity = self.catalog().identity(table.id, &cname).map(|s| (s.identity.as_deref() == Some("a"), s.name.clone()));
            let is_default =
                matches!(&a.value, ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case("default") && i.quote_style.is_none());
            if identity.as_ref().is_some_and(|(always, _)| *always) && !is_default {
                return Err(SqlError::new("428C9", format!("column \"{cname}\" can only be updated to DEFAULT")));
            }
            let default =
                table.columns[col].default.clone().or_else(|| identity.map(|(_, seq)| format!("nextval('{}')", seq.replace('\'', "''"))));
            let e = match &a.value {
                ast::Expr::Identifier(i) if i.value.eq_ignore_ascii_case("default") && i.quote_style.is_none() => match &default {
                    Some(d) => {
                        Ctx { scope: &[], params: &mut vec![], aggs: None, planner: None }
                            .compile_as(&crate::sql::parse_expr(d)?, table.columns[col].ty)?
                            .expr
                    }
                    None => Expr::Const(Value::Null),
                },
                v => Ctx { scope: &scope, params, aggs: None, planner: None }.compile_as(v, table.columns[col].ty)?.expr,
            };
            assigns.push((col, e));
        }
        let returning = returning(&scope, ret, params)?;
        let returning_columns = returning.iter().map(|(n, _, t)| Column::new(n.clone(), *t)).collect();
        Ok(ModifyPlan { table, filter, pk, assignments: assigns, returning, returning_columns })
    }

    pub(crate) fn plan_update(&self, u: &ast::Update, params: &mut Vec<Option<DataType>>) -> SqlResult<ModifyPlan> {
        if u.from.is_some() || !u.table.joins.is_empty() {
            return Err(SqlError::unsupported("UPDATE … FROM is not supported yet"));
        }
        self.plan_modify(&u.table.relation, &u.selection, &u.assignments, &u.returning, params)
    }

    pub(crate) fn plan_delete(&self, d: &ast::Delete, params: &mut Vec<Option<DataType>>) -> SqlResult<ModifyPlan> {
        let (ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from)) = &d.from;
        let [twj] = from.as_slice() else { return Err(SqlError::unsupported("DELETE from several tables")) };
        if d.using.is_some() || !twj.joins.is_empty() {
            return Err(SqlError::unsupported("DELETE … USING is not supported yet"));
        }
        self.plan_modify(&twj.relation, &d.selection, &[], &d.returning, params)
    }

    fn matching(&self, plan: &ModifyPlan, txn: &Txn, env: &Env) -> SqlResult<Vec<Scanned>> {
        let key = self.pk_key(&plan.table, plan.pk.as_ref(), env)?;
        if plan.pk.is_some() && key.is_none() {
            return Ok(vec![]);
        }
        let mut out = Vec::new();
        txn.note_read(plan.table.id);
        for s in self.scan(&plan.table, txn, key)? {
            if match &plan.filter {
                Some(f) => f.eval(&s.row, env)? == Value::Bool(true),
                None => true,
            } {
                out.push(s);
            }
        }
        Ok(out)
    }

    pub(crate) fn run_update(&self, plan: &ModifyPlan, txn: &mut Txn, env: &Env) -> SqlResult<Outcome> {
        let t = &plan.table;
        let targets = self.matching(plan, txn, env)?;
        let mut returned = Vec::new();
        let mut new_rows = Vec::new();
        for s in &targets {
            let mut row = s.row[..t.columns.len()].to_vec();
            for (col, e) in &plan.assignments {
                row[*col] = e.eval(&s.row, env)?;
            }
            let row = self.check_row(t, row)?;
            let key = encode_key(&t.primary_key.iter().map(|&i| row[i].clone()).collect::<Vec<_>>())?;
            new_rows.push((s.key.clone(), key, row));
        }
        // Keys that move must not land on a row that stays.
        let moving: HashSet<&Vec<u8>> = new_rows.iter().filter(|(o, n, _)| o != n).map(|(o, _, _)| o).collect();
        for (old, new, row) in &new_rows {
            if old != new && !moving.contains(new) && self.get_row(t, txn, new)?.is_some() {
                return Err(duplicate_key(t, row));
            }
        }
        for (old, new, _) in &new_rows {
            if old != new {
                txn.writes.insert((t.id, old.clone()), None);
            }
        }
        for (_, new, row) in &new_rows {
            self.check_unique(t, txn, new, row)?;
        }
        for (_, new, row) in new_rows {
            if !plan.returning.is_empty() {
                let mut full = row.clone();
                full.extend([Value::Null, Value::Null]);
                returned.push(project(&plan.returning, std::slice::from_ref(&full), env)?.remove(0));
            }
            txn.writes.insert((t.id, new), Some(encode_row(t.version, &row)));
        }
        let tag = format!("UPDATE {}", targets.len());
        if plan.returning.is_empty() {
            Ok(Outcome::Command(tag))
        } else {
            Ok(Outcome::Rows { columns: plan.returning_columns.clone(), rows: returned, tag })
        }
    }

    pub(crate) fn run_delete(&self, plan: &ModifyPlan, txn: &mut Txn, env: &Env) -> SqlResult<Outcome> {
        let targets = self.matching(plan, txn, env)?;
        let returned = if plan.returning.is_empty() {
            vec![]
        } else {
            project(&plan.returning, &targets.iter().map(|s| s.row.clone()).collect::<Vec<_>>(), env)?
        };
        for s in &targets {
            txn.writes.insert((plan.table.id, s.key.clone()), None);
        }
        let tag = format!("DELETE {}", targets.len());
        if plan.returning.is_empty() {
            Ok(Outcome::Command(tag))
        } else {
            Ok(Outcome::Rows { columns: plan.returning_columns.clone(), rows: returned, tag })
        }
    }
}

fn duplicate_key(t: &TableDef, row: &[Value]) -> SqlError {
    let names: Vec<&str> = t.primary_key.iter().map(|&i| t.columns[i].name.as_str()).collect();
    let vals: Vec<String> = t.primary_key.iter().map(|&i| row[i].to_text(t.columns[i].ty).unwrap_or_default()).collect();
    let constraint = format!("{}_pkey", t.name);
    SqlError::new("23505", format!("duplicate key value violates unique constraint \"{constraint}\"")).on_constraint(
        &t.name,
        &constraint,
        Some(format!("Key ({})=({}) already exists.", names.join(", "), vals.join(", "))),
    )
}

fn project(outputs: &[(String, Expr, DataType)], rows: &[Vec<Value>], env: &Env) -> SqlResult<Vec<Vec<Value>>> {
    rows.iter().map(|r| outputs.iter().map(|(_, e, _)| e.eval(r, env)).collect()).collect()
}

fn aggregate(a: &AggCall, rows: &[Vec<Value>], env: &Env) -> SqlResult<Value> {
    // `FILTER (WHERE …)`: only the rows it holds true for.
    let rows: Vec<&Vec<Value>> = match &a.filter {
        None => rows.iter().collect(),
        Some(f) => {
            let mut kept = Vec::with_capacity(rows.len());
            for r in rows {
                if matches!(f.eval(r, env)?, Value::Bool(true)) {
                    kept.push(r);
                }
            }
            kept
        }
    };
    if a.func == AggFunc::ArrayAgg || a.func == AggFunc::StringAgg {
        // These keep row order (or their ORDER BY's) and (array_agg) NULLs; string_agg puts each value's
        // separator before it.
        let mut items: Vec<(Value, Value)> = Vec::with_capacity(rows.len());
        let mut ordered: Vec<&Vec<Value>> = rows.clone();
        if !a.order.is_empty() {
            let keys = ordered
                .iter()
                .map(|r| a.order.iter().map(|(e, _, _)| e.eval(r, env)).collect::<SqlResult<Vec<_>>>())
                .collect::<SqlResult<Vec<_>>>()?;
            let mut idx: Vec<usize> = (0..ordered.len()).collect();
            idx.sort_by(|&x, &y| {
                a.order
                    .iter()
                    .enumerate()
                    .map(|(k, (_, asc, nulls_first))| cmp_window_key(&keys[x][k], &keys[y][k], *asc, *nulls_first))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            ordered = idx.into_iter().map(|i| ordered[i]).collect();
        }
        for r in ordered {
            let v = a.arg.as_ref().map(|e| e.eval(r, env)).transpose()?.unwrap_or(Value::Null);
            let sep = a.extra.as_ref().map(|e| e.eval(r, env)).transpose()?.unwrap_or(Value::Null);
            if a.func == AggFunc::StringAgg && v.is_null() {
                continue;
            }
            if a.distinct && items.iter().any(|(x, _)| x.sort_cmp(&v).is_eq()) {
                continue;
            }
            items.push((v, sep));
        }
        if items.is_empty() {
            return Ok(Value::Null);
        }
        if a.func == AggFunc::ArrayAgg {
            return Ok(Value::Array(items.into_iter().map(|(v, _)| v).collect()));
        }
        let mut out = String::new();
        for (i, (v, sep)) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(&sep.to_text(DataType::Text).unwrap_or_default());
            }
            out.push_str(&v.to_text(v.natural_type()).unwrap_or_default());
        }
        return Ok(Value::Text(out));
    }
    let mut vals = Vec::with_capacity(rows.len());
    for r in &rows {
        match &a.arg {
            None => vals.push(Value::Bool(true)),
            Some(e) => {
                let v = e.eval(r, env)?;
                if !v.is_null() {
                    vals.push(v);
                }
            }
        }
    }
    if a.distinct {
        vals.sort_by(|x, y| x.sort_cmp(y));
        vals.dedup_by(|x, y| x.sort_cmp(y).is_eq());
    }
    Ok(match a.func {
        AggFunc::Count => Value::Int(vals.len() as i64),
        _ if vals.is_empty() => Value::Null,
        AggFunc::Min => vals.into_iter().min_by(|x, y| x.sort_cmp(y)).expect("non-empty"),
        AggFunc::Max => vals.into_iter().max_by(|x, y| x.sort_cmp(y)).expect("non-empty"),
        AggFunc::BoolAnd => Value::Bool(vals.iter().all(|v| *v == Value::Bool(true))),
        AggFunc::BoolOr => Value::Bool(vals.contains(&Value::Bool(true))),
        AggFunc::ArrayAgg | AggFunc::StringAgg => unreachable!("handled above"),
        AggFunc::Sum | AggFunc::Avg => {
            let n = vals.len();
            let sum = if a.ty == DataType::Float8 {
                Value::Float(
                    vals.iter()
                        .map(|v| if let Value::Float(f) = v.clone().cast(DataType::Float8).unwrap_or(Value::Null) { f } else { 0.0 })
                        .sum(),
                )
            } else {
                let mut acc = Some(rust_decimal::Decimal::ZERO);
                for v in vals {
                    match v.cast(DataType::Numeric)? {
                        Value::Numeric(d) => {
                            if let Some(a) = acc {
                                acc = Some(a.checked_add(d).ok_or_else(|| SqlError::out_of_range("numeric"))?);
                            }
                        }
                        // A NaN makes the sum (and the average) NaN.
                        Value::NumericNaN => acc = None,
                        _ => {}
                    }
                }
                acc.map_or(Value::NumericNaN, Value::Numeric)
            };
            match (a.func, sum) {
                (AggFunc::Avg, Value::Float(f)) => Value::Float(f / n as f64),
                (AggFunc::Avg, Value::Numeric(d)) => {
                    let count = rust_decimal::Decimal::from(n);
                    let scale = numeric_div_scale(&d, &count);
                    let q = d.checked_div(count).ok_or_else(|| SqlError::out_of_range("numeric"))?;
                    let mut q = q.round_dp_with_strategy(scale, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
                    q.rescale(scale);
                    Value::Numeric(q)
                }
                (_, s) => s.cast(a.ty)?,
            }
        }
    })
}
/// The display scale PostgreSQL gives a NUMERIC quotient `a / b` (numeric.c's `select_div_scale`):
/// at least 16 significant digits, and no fewer decimals than either operand shows. Capped at 28,
/// the most decimals a value here can hold.
fn numeric_div_scale(a: &rust_decimal::Decimal, b: &rust_decimal::Decimal) -> u32 {
    // The base-10000 weight and leading base-10000 digit of a value, as PostgreSQL stores it.
    fn weight_first(d: &rust_decimal::Decimal) -> (i64, i64) {
        let text = d.abs().to_string();
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let int = int.trim_start_matches('0');
        if !int.is_empty() {
            let weight = (int.len() as i64 - 1) / 4;
            let lead = int.len() - 4 * weight as usize;
            return (weight, int[..lead].parse().unwrap_or(0));
        }
        match frac.find(|c| c != '0') {
            None => (0, 0),
            Some(z) => {
                let group = z / 4;
                let digits: String = frac.chars().chain(std::iter::repeat('0')).skip(group * 4).take(4).collect();
                (-(group as i64) - 1, digits.parse().unwrap_or(0))
            }
        }
    }
    let ((w1, f1), (w2, f2)) = (weight_first(a), weight_first(b));
    let qweight = w1 - w2 - i64::from(f1 < f2);
    let scale = (16 - qweight * 4).max(a.scale() as i64).max(b.scale() as i64).max(0);
    scale.min(28) as u32
}

/// A query with nothing but a body (no WITH, ORDER BY or LIMIT).
fn bare_query(body: &ast::SetExpr) -> ast::Query {
    ast::Query {
        with: None,
        body: Box::new(body.clone()),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: vec![],
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: vec![],
    }
}

/// `SELECT *` with no FROM, WHERE or grouping: the core applied over a set operation or VALUES.
fn star_select() -> ast::Select {
    match crate::sql::parse("SELECT *").ok().and_then(|mut v| v.pop()) {
        Some((ast::Statement::Query(q), _)) => match *q.body {
            ast::SetExpr::Select(s) => *s,
            _ => unreachable!("SELECT * parses as a select"),
        },
        _ => unreachable!("SELECT * parses"),
    }
}

/// Apply a `name(col, …)` alias's column list to a plan's outputs.
fn rename_outputs(plan: &mut QueryPlan, alias: &ast::TableAlias) -> SqlResult<()> {
    if alias.columns.len() > plan.visible {
        return Err(SqlError::new(
            "42P10",
            format!("table \"{}\" has {} columns available but {} columns specified", alias.name, plan.visible, alias.columns.len()),
        ));
    }
    for (o, c) in plan.outputs.iter_mut().zip(&alias.columns) {
        o.0 = normalize_ident(&c.name);
    }
    Ok(())
}

/// Keep the first of each group of rows equal in their first `width` values (SQL equality, NULLs equal).
fn dedup_rows(rows: &mut Vec<Vec<Value>>, width: usize) {
    let mut seen: HashSet<String> = HashSet::new();
    rows.retain(|r| seen.insert(format!("{:?}", &r[..width.min(r.len())])));
}
