//! The SQL proof functions (docs/VERIFYING.md): `verified_get`, `verified_get_at`, `verified_history`,
//! `verified_tx`, `inclusion_proof`, `consistency_proof` and `vouch_txs`. Each is a set-returning
//! function in FROM, so it composes with ordinary SQL. The server only hands out proof material here;
//! checking it is the client's job (`crate::client`, `vouchdb verify`, the auditor, any RFC 9162
//! verifier). Every row of one call is proven against one tree size, whose signed checkpoint it carries.
//! Hashes and byte strings are lowercase hex text; proof paths are `text[]` of hex hashes.

use super::*;
use crate::signing::SignedCheckpoint;
use crate::verify::{to_hex, Hash};

/// One call of a proof function, with its arguments compiled.
pub(crate) enum ProofCall {
    /// `verified_get('t', key…)`, `verified_get_at('t', tx, key…)`, `verified_history('t', key…)`.
    Row {
        table: Box<TableDef>,
        key: Vec<Expr>,
        at: Option<Expr>,
        history: bool,
    },
    Tx(Expr),
    Inclusion(Expr, Expr),
    Consistency(Expr, Expr),
    /// `vouch_txs(first, last)`: the raw log, for auditors.
    Txs(Expr, Expr),
    /// `vouch_log(first, last)`, `provenance(tx)` (first = last) and the `vouch_log` view (None: the
    /// whole log): each transaction's provenance record, decoded.
    Log(Option<(Expr, Expr)>),
    /// `deref('name')`, `deref('t', name)`, `verified_deref(…)`: the row a reference points at
    /// (references.rs). `fixed`: the table was found from the reference when planning.
    Deref {
        table: Box<TableDef>,
        name: Expr,
        fixed: bool,
        verified: bool,
    },
}

impl ProofCall {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            ProofCall::Row { at: Some(_), .. } => "verified_get_at",
            ProofCall::Row { history: true, .. } => "verified_history",
            ProofCall::Row { .. } => "verified_get",
            ProofCall::Tx(_) => "verified_tx",
            ProofCall::Inclusion(..) => "inclusion_proof",
            ProofCall::Consistency(..) => "consistency_proof",
            ProofCall::Txs(..) => "vouch_txs",
            ProofCall::Log(_) => "vouch_log",
            ProofCall::Deref { verified: true, .. } => "verified_deref",
            ProofCall::Deref { .. } => "deref",
        }
    }

    pub(crate) fn exprs(&self) -> Vec<&Expr> {
        match self {
            ProofCall::Row { key, at, .. } => key.iter().chain(at).collect(),
            ProofCall::Tx(e) => vec![e],
            ProofCall::Inclusion(a, b) | ProofCall::Consistency(a, b) | ProofCall::Txs(a, b) => vec![a, b],
            ProofCall::Log(range) => range.iter().flat_map(|(a, b)| [a, b]).collect(),
            ProofCall::Deref { name, .. } => vec![name],
        }
    }
}

/// Whether `f` names a proof function.
pub(crate) fn is_proof_function(f: &str) -> bool {
    matches!(
        f,
        "verified_get"
            | "verified_get_at"
            | "verified_history"
            | "verified_tx"
            | "inclusion_proof"
            | "consistency_proof"
            | "vouch_txs"
            | "vouch_log"
            | "provenance"
            | "deref"
            | "verified_deref"
    )
}

const HEX_ARRAY: DataType = DataType::Array(&DataType::Text);

/// The types of the proof columns `verified_get` adds after the row's columns (their names are
/// `crate::client::proof::ROW_PROOF_COLUMNS`, the contract clients read).
const ROW_PROOF_TYPES: [DataType; 11] = [
    DataType::Int8,
    DataType::Timestamptz,
    DataType::Int4,
    DataType::Text,
    HEX_ARRAY,
    DataType::Text,
    HEX_ARRAY,
    DataType::Int8,
    DataType::Text,
    DataType::Text,
    DataType::Text,
];

/// The types of the reference's proof columns `verified_deref` adds after the target's
/// (`crate::client::proof::REF_PROOF_COLUMNS`).
const REF_PROOF_TYPES: [DataType; 6] = [DataType::Int8, DataType::Int4, DataType::Text, HEX_ARRAY, DataType::Text, HEX_ARRAY];

const TX_COLUMNS: [(&str, DataType); 11] = [
    ("tx", DataType::Int8),
    ("commit_ts", DataType::Timestamptz),
    ("client_ts", DataType::Timestamptz),
    ("leaf", DataType::Text),
    ("entries", HEX_ARRAY),
    ("provenance", DataType::Text),
    ("tx_proof", HEX_ARRAY),
    ("tree_size", DataType::Int8),
    ("root", DataType::Text),
    ("checkpoint", DataType::Text),
    ("signature", DataType::Text),
];

const INCLUSION_COLUMNS: [(&str, DataType); 6] = [
    ("tx", DataType::Int8),
    ("leaf_index", DataType::Int8),
    ("tree_size", DataType::Int8),
    ("leaf_hash", DataType::Text),
    ("root", DataType::Text),
    ("proof", HEX_ARRAY),
];

const CONSISTENCY_COLUMNS: [(&str, DataType); 5] = [
    ("old_size", DataType::Int8),
    ("new_size", DataType::Int8),
    ("old_root", DataType::Text),
    ("new_root", DataType::Text),
    ("proof", HEX_ARRAY),
];

const TXS_COLUMNS: [(&str, DataType); 5] =
    [("tx", DataType::Int8), ("leaf", DataType::Text), ("entries", HEX_ARRAY), ("provenance", DataType::Text), ("nodes", HEX_ARRAY)];

/// The columns of `vouch_log` and `provenance(tx)` (docs/PROVENANCE.md).
pub(crate) const LOG_COLUMNS: [(&str, DataType); 15] = [
    ("tx", DataType::Int8),
    ("commit_ts", DataType::Timestamptz),
    ("client_ts", DataType::Timestamptz),
    ("principal", DataType::Text),
    ("auth_method", DataType::Text),
    ("tls", DataType::Bool),
    ("session", DataType::Int8),
    ("statements", DataType::Array(&DataType::Text)),
    ("params", DataType::Jsonb),
    ("policies", DataType::Array(&DataType::Text)),
    ("signature", DataType::Text),
    ("refused", DataType::Bool),
    ("refusal", DataType::Text),
    ("entries", DataType::Int4),
    ("record", DataType::Text),
];

/// Most transactions one `vouch_txs` call returns (an auditor pages through the log).
pub const MAX_TXS_PER_CALL: i64 = 100_000;

fn hex_array(hashes: &[Hash]) -> Value {
    Value::Array(hashes.iter().map(|h| Value::Text(to_hex(h))).collect())
}

fn bad_arg(msg: impl Into<String>) -> SqlError {
    SqlError::new("22023", msg)
}

/// A bigint argument that must be present and not negative.
fn count_arg(e: &Expr, env: &Env, what: &str) -> SqlResult<Option<u64>> {
    match e.eval(&[], env)?.cast(DataType::Int8)? {
        Value::Null => Ok(None),
        Value::Int(n) if n >= 0 => Ok(Some(n as u64)),
        Value::Int(n) => Err(bad_arg(format!("{what} must not be negative (got {n})"))),
        other => Err(SqlError::new("XX000", format!("{what} evaluated to {other:?}"))),
    }
}

impl Engine {
    /// Plan a proof function in FROM: its compiled arguments and its columns.
    pub(crate) fn plan_proof(
        &self,
        f: &str,
        args: &[&ast::Expr],
        alias: Option<String>,
        params: &mut Vec<Option<DataType>>,
    ) -> SqlResult<(ProofCall, Vec<ScopeCol>)> {
        let q = alias.unwrap_or_else(|| f.to_string());
        let mut c = Ctx { scope: &[], params, aggs: None, planner: Some(self) };
        let arity = |n: usize| -> SqlResult<()> {
            if args.len() == n {
                Ok(())
            } else {
                Err(SqlError::new("42883", format!("function {f}() takes {n} argument(s), got {}", args.len())))
            }
        };
        match f {
            "verified_get" | "verified_get_at" | "verified_history" => {
                let at_arg = usize::from(f == "verified_get_at");
                if args.len() < 2 + at_arg {
                    return Err(SqlError::new(
                        "42883",
                        format!("function {f}() takes the table name{} and the primary key", if at_arg == 1 { ", a tx" } else { "" }),
                    ));
                }
                let tname = args
                    .first()
                    .and_then(|a| plan::string_literal(a))
                    .ok_or_else(|| SqlError::syntax(format!("{f}() takes the table name as a string literal first")))?;
                let t = self.catalog().table(&tname.to_lowercase())?.clone();
                let key_args = args.len().saturating_sub(1 + at_arg);
                if args.len() < 1 + at_arg || key_args != t.primary_key.len() {
                    let what = if at_arg == 1 { "the table name, a tx and" } else { "the table name and" };
                    return Err(SqlError::new(
                        "42883",
                        format!("{f}('{}', …) takes {what} {} key value(s), the table's primary key", t.name, t.primary_key.len()),
                    ));
                }
                let at = if at_arg == 1 { Some(c.compile_as(args[1], DataType::Int8)?.expr) } else { None };
                let key = args[1 + at_arg..]
                    .iter()
                    .zip(&t.primary_key)
                    .map(|(a, &i)| c.compile_as(a, t.columns[i].ty).map(|x| x.expr))
                    .collect::<SqlResult<Vec<_>>>()?;
                let history = f == "verified_history";
                let mut extra: Vec<(&str, DataType)> =
                    crate::client::proof::ROW_PROOF_COLUMNS.iter().copied().zip(ROW_PROOF_TYPES).collect();
                if history {
                    extra.push(("_deleted", DataType::Bool));
                }
                let scope = plan::scope_with(&t, &q, &extra, false);
                Ok((ProofCall::Row { table: Box::new(t), key, at, history }, scope))
            }
            "deref" | "verified_deref" => {
                let verified = f == "verified_deref";
                let literal = |a: &ast::Expr, what: &str| {
                    plan::string_literal(a).map(str::to_string).ok_or_else(|| {
                        SqlError::syntax(format!(
                            "{f}() takes {what} as a string literal: {f}('name'), or {f}('table', name) where name may be a parameter"
                        ))
                    })
                };
                let (table, name, fixed) = match args {
                    [name] => {
                        let n = literal(name, "the reference name")?;
                        let r = self.latest_reference(&n)?.ok_or_else(|| {
                            SqlError::new(
                                "42704",
                                format!("reference \"{n}\" does not exist (a reference written by this transaction is found with {f}('table', '{n}'))"),
                            )
                        })?;
                        let t = self
                            .catalog()
                            .table_by_id(r.table)
                            .cloned()
                            .ok_or_else(|| SqlError::undefined_table(&format!("(table {})", r.table)))?;
                        (t, c.compile_as(name, DataType::Text)?.expr, true)
                    }
                    [table, name] => {
                        let t = self.catalog().table(&literal(table, "the table name")?.to_lowercase())?.clone();
                        (t, c.compile_as(name, DataType::Text)?.expr, false)
                    }
                    _ => {
                        return Err(SqlError::new(
                            "42883",
                            format!("function {f}() takes the reference name, or the table name and the reference name"),
                        ))
                    }
                };
                let mut extra: Vec<(&str, DataType)> = if verified {
                    crate::client::proof::ROW_PROOF_COLUMNS
                        .iter()
                        .copied()
                        .zip(ROW_PROOF_TYPES)
                        .chain(crate::client::proof::REF_PROOF_COLUMNS.iter().copied().zip(REF_PROOF_TYPES))
                        .collect()
                } else {
                    vec![("_tx", DataType::Int8)]
                };
                if !verified {
                    extra.push(("_ref_tx", DataType::Int8));
                }
                let scope = plan::scope_with(&table, &q, &extra, false);
                Ok((ProofCall::Deref { table: Box::new(table), name, fixed, verified }, scope))
            }
            "verified_tx" => {
                arity(1)?;
                Ok((ProofCall::Tx(c.compile_as(args[0], DataType::Int8)?.expr), super::plan::virtual_scope(&q, &TX_COLUMNS)))
            }
            "provenance" => {
                arity(1)?;
                let tx = c.compile_as(args[0], DataType::Int8)?.expr;
                Ok((ProofCall::Log(Some((tx.clone(), tx))), super::plan::virtual_scope(&q, &LOG_COLUMNS)))
            }
            "inclusion_proof" | "consistency_proof" | "vouch_txs" | "vouch_log" => {
                arity(2)?;
                let a = c.compile_as(args[0], DataType::Int8)?.expr;
                let b = c.compile_as(args[1], DataType::Int8)?.expr;
                Ok(match f {
                    "vouch_log" => (ProofCall::Log(Some((a, b))), super::plan::virtual_scope(&q, &LOG_COLUMNS)),
                    "inclusion_proof" => (ProofCall::Inclusion(a, b), super::plan::virtual_scope(&q, &INCLUSION_COLUMNS)),
                    "consistency_proof" => (ProofCall::Consistency(a, b), super::plan::virtual_scope(&q, &CONSISTENCY_COLUMNS)),
                    _ => (ProofCall::Txs(a, b), super::plan::virtual_scope(&q, &TXS_COLUMNS)),
                })
            }
            _ => Err(SqlError::new("42883", format!("function {f}() does not exist"))),
        }
    }

    /// The head every row of one call is proven against, with its signed checkpoint.
    fn proof_head(&self) -> (crate::ledger::Head, Arc<SignedCheckpoint>) {
        let head = self.ledger.head();
        let cp = self.signer.sign_cached(&head);
        (head, cp)
    }

    /// The rows of a proof function.
    pub(crate) fn proof_rows(&self, call: &ProofCall, txn: &Txn, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        // Whole transactions include system-table entries such as roles' SCRAM verifiers, which only
        // superusers may read (as pg_authid in PostgreSQL).
        if matches!(call, ProofCall::Tx(_) | ProofCall::Txs(..)) && !self.catalog().users.get(env.user).is_some_and(|u| u.superuser) {
            return Err(SqlError::new(
                "42501",
                format!("permission denied for function {}: it returns whole transactions, which only superusers may read", call.name()),
            ));
        }
        match call {
            ProofCall::Row { table, key, at, history } => {
                self.may_read(env.user, table)?;
                self.verified_rows(table, key, at.as_ref(), *history, txn, env)
            }
            ProofCall::Deref { table, name, fixed, verified: false } => self.deref_rows(table, name, *fixed, txn, env),
            ProofCall::Deref { table, name, fixed, verified: true } => self.verified_deref_rows(table, name, *fixed, txn, env),
            ProofCall::Tx(tx) => {
                let Some(tx) = count_arg(tx, env, "tx")? else { return Ok(vec![]) };
                let (head, cp) = self.proof_head();
                if tx == 0 || tx > head.size {
                    return Err(bad_arg(format!("tx {tx} is not in the log (it holds tx 1 to {})", head.size)));
                }
                let rec = self.ledger.get_tx(tx)?;
                let client = match rec.leaf.client_time_us {
                    0 => Value::Null,
                    t => Value::Timestamptz(t as i64),
                };
                Ok(vec![vec![
                    Value::Int(tx as i64),
                    Value::Timestamptz(rec.leaf.commit_time_us as i64),
                    client,
                    Value::Text(to_hex(&rec.leaf_bytes)),
                    Value::Array(rec.entry_bytes.iter().map(|e| Value::Text(to_hex(e))).collect()),
                    Value::Text(to_hex(&rec.provenance)),
                    hex_array(&self.ledger.inclusion_proof(tx, head.size)?),
                    Value::Int(head.size as i64),
                    Value::Text(to_hex(head.root)),
                    Value::Text(cp.body.clone()),
                    Value::Text(cp.signature_base64()),
                ]])
            }
            ProofCall::Inclusion(tx, size) => {
                let (Some(tx), Some(size)) = (count_arg(tx, env, "tx")?, count_arg(size, env, "tree_size")?) else { return Ok(vec![]) };
                let head = self.ledger.head().size;
                if size > head {
                    return Err(bad_arg(format!("tree size {size} is larger than the log ({head} transactions)")));
                }
                if tx == 0 || tx > size {
                    return Err(bad_arg(format!("tx {tx} is not in a tree of size {size}")));
                }
                let (leaf, _) = self.ledger.leaf(tx)?;
                Ok(vec![vec![
                    Value::Int(tx as i64),
                    Value::Int(tx as i64 - 1),
                    Value::Int(size as i64),
                    Value::Text(to_hex(leaf.hash())),
                    Value::Text(to_hex(self.ledger.root_at(size)?)),
                    hex_array(&self.ledger.inclusion_proof(tx, size)?),
                ]])
            }
            ProofCall::Consistency(old, new) => {
                let (Some(old), Some(new)) = (count_arg(old, env, "old_size")?, count_arg(new, env, "new_size")?) else {
                    return Ok(vec![]);
                };
                let head = self.ledger.head().size;
                if new > head {
                    return Err(bad_arg(format!("tree size {new} is larger than the log ({head} transactions)")));
                }
                if old > new {
                    return Err(bad_arg(format!("old size {old} is larger than new size {new}")));
                }
                Ok(vec![vec![
                    Value::Int(old as i64),
                    Value::Int(new as i64),
                    Value::Text(to_hex(self.ledger.root_at(old)?)),
                    Value::Text(to_hex(self.ledger.root_at(new)?)),
                    hex_array(&self.ledger.consistency_proof(old, new)?),
                ]])
            }
            ProofCall::Log(range) => {
                let (first, last) = match range {
                    None => (1, u64::MAX),
                    Some((first, last)) => match (count_arg(first, env, "first tx")?, count_arg(last, env, "last tx")?) {
                        (Some(first), Some(last)) => (first.max(1), last),
                        _ => return Ok(vec![]),
                    },
                };
                self.log_rows(first, last.min(self.ledger.head().size), env.user)
            }
            ProofCall::Txs(first, last) => {
                let (Some(first), Some(last)) = (count_arg(first, env, "first tx")?, count_arg(last, env, "last tx")?) else {
                    return Ok(vec![]);
                };
                let first = first.max(1);
                if last >= first && last - first >= MAX_TXS_PER_CALL as u64 {
                    return Err(SqlError::new(
                        "54000",
                        format!("vouch_txs returns at most {MAX_TXS_PER_CALL} transactions per call; page through the log"),
                    ));
                }
                let last = last.min(self.ledger.head().size);
                Ok(self
                    .ledger
                    .raw_txs(first, last)?
                    .into_iter()
                    .map(|r| {
                        vec![
                            Value::Int(r.tx as i64),
                            Value::Text(to_hex(&r.leaf)),
                            Value::Array(r.entries.iter().map(|e| Value::Text(to_hex(e))).collect()),
                            Value::Text(to_hex(&r.provenance)),
                            hex_array(&r.nodes),
                        ]
                    })
                    .collect())
            }
        }
    }

    /// Rows of `vouch_log` for transactions `first..=last`. Superusers see every transaction; other
    /// roles see the ones they committed.
    fn log_rows(&self, first: u64, last: u64, user: &str) -> SqlResult<Vec<Vec<Value>>> {
        let all = self.catalog().users.get(user).is_some_and(|u| u.superuser);
        let mut rows = Vec::new();
        for tx in first..=last {
            let (leaf, _) = self.ledger.leaf(tx)?;
            let bytes = self.ledger.provenance(tx)?;
            let record = crate::sql::provenance::Provenance::decode(&bytes).ok();
            if !all && record.as_ref().is_none_or(|r| r.user != user) {
                continue;
            }
            let time = |us: u64| if us == 0 { Value::Null } else { Value::Timestamptz(us as i64) };
            let text_array = |v: &[String]| Value::Array(v.iter().cloned().map(Value::Text).collect());
            let row = match &record {
                Some(r) => vec![
                    Value::Text(r.user.clone()),
                    r.auth.as_ref().map_or(Value::Null, |a| Value::Text(a.method.clone())),
                    r.auth.as_ref().map_or(Value::Null, |a| Value::Bool(a.tls)),
                    r.session.map_or(Value::Null, Value::Int),
                    text_array(&r.statements),
                    if r.params.is_empty() { Value::Null } else { Value::Jsonb(serde_json::json!(r.params)) },
                    if r.policies.is_empty() {
                        Value::Null
                    } else {
                        Value::Array(r.policies.iter().map(|p| p.clone().map_or(Value::Null, Value::Text)).collect())
                    },
                    Value::Text(if r.signature.is_some() { "signed" } else { "unsigned" }.into()),
                    Value::Bool(r.refused.is_some()),
                    r.refused.as_ref().map_or(Value::Null, |f| Value::Text(format!("{}: {}", f.sqlstate, f.message))),
                ],
                None => vec![Value::Null; 10],
            };
            let mut out = vec![Value::Int(tx as i64), time(leaf.commit_time_us), time(leaf.client_time_us)];
            out.extend(row);
            out.push(Value::Int(leaf.entry_count.into()));
            out.push(String::from_utf8(bytes).map_or(Value::Null, Value::Text));
            rows.push(out);
        }
        Ok(rows)
    }

    fn verified_rows(
        &self,
        table: &TableDef,
        key: &[Expr],
        at: Option<&Expr>,
        history: bool,
        txn: &Txn,
        env: &Env,
    ) -> SqlResult<Vec<Vec<Value>>> {
        let vals =
            key.iter().zip(&table.primary_key).map(|(e, &i)| e.eval(&[], env)?.cast(table.columns[i].ty)).collect::<SqlResult<Vec<_>>>()?;
        if vals.iter().any(Value::is_null) {
            return Ok(vec![]);
        }
        let key = encode_key(&vals)?;
        if txn.writes.contains_key(&(table.id, key.clone())) {
            return Err(SqlError::new(
                "55000",
                format!("this transaction has written the row of \"{}\": a row is proven only once it is committed", table.name),
            ));
        }
        let (head, cp) = self.proof_head();
        let versions = match at {
            Some(at) => {
                let Some(at) = count_arg(at, env, "tx")? else { return Ok(vec![]) };
                if at > head.size {
                    return Err(bad_arg(format!("tx {at} is not in the log (it holds tx 1 to {})", head.size)));
                }
                self.ledger.get_as_of(table.id, &key, at)?.into_iter().filter(|v| !v.entry.is_delete()).collect()
            }
            None if history => {
                let mut all = self.ledger.history(table.id, &key)?;
                all.retain(|v| v.tx <= txn.snapshot);
                all
            }
            None => {
                txn.note_read(table.id);
                self.ledger.get_as_of(table.id, &key, txn.snapshot)?.into_iter().filter(|v| !v.entry.is_delete()).collect::<Vec<_>>()
            }
        };
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            let mut row = self.proven_row(table, &v, &head, &cp)?;
            if history {
                row.push(Value::Bool(v.entry.is_delete()));
            }
            out.push(row);
        }
        Ok(out)
    }

    /// A row version's columns (NULL for a delete) and its proof columns against `head`.
    fn proven_row(
        &self,
        table: &TableDef,
        v: &crate::ledger::Version,
        head: &crate::ledger::Head,
        cp: &SignedCheckpoint,
    ) -> SqlResult<Vec<Value>> {
        let mut row = if v.entry.is_delete() {
            vec![Value::Null; table.columns.len()]
        } else {
            let mut r = self.decode(table, &v.entry.value, v.tx)?;
            r.truncate(table.columns.len());
            r
        };
        let (tx, rest) = self.entry_proof_columns(v, head)?;
        row.push(tx);
        row.extend(rest);
        row.extend([
            Value::Int(head.size as i64),
            Value::Text(to_hex(head.root)),
            Value::Text(cp.body.clone()),
            Value::Text(cp.signature_base64()),
        ]);
        Ok(row)
    }

    /// An entry's proof columns: `_tx`, then `_commit_ts`, `_entry_index`, `_entry`, `_entry_proof`,
    /// `_leaf`, `_tx_proof` (the reference's `_ref_…` columns are the same without `_commit_ts`).
    fn entry_proof_columns(&self, v: &crate::ledger::Version, head: &crate::ledger::Head) -> SqlResult<(Value, Vec<Value>)> {
        let m = self.ledger.entry_material(v.tx, v.index)?;
        Ok((
            Value::Int(v.tx as i64),
            vec![
                Value::Timestamptz(m.leaf.commit_time_us as i64),
                Value::Int(v.index as i64),
                Value::Text(to_hex(&m.entry_bytes)),
                hex_array(&m.entry_proof),
                Value::Text(to_hex(&m.leaf_bytes)),
                hex_array(&self.ledger.inclusion_proof(v.tx, head.size)?),
            ],
        ))
    }

    /// The rows of `verified_deref(…)`: the target's row and proof columns (as `verified_get`), then
    /// the reference entry's proof (`_ref_tx` … `_ref_tx_proof`), both against one signed head.
    fn verified_deref_rows(&self, table: &TableDef, name: &Expr, fixed: bool, txn: &Txn, env: &Env) -> SqlResult<Vec<Vec<Value>>> {
        let Value::Text(name) = name.eval(&[], env)?.cast(DataType::Text)? else { return Ok(vec![]) };
        let catalog = self.catalog().clone();
        let refs = self.references_def(&catalog)?;
        self.may_read(env.user, &refs)?;
        self.may_read(env.user, table)?;
        let Some(r) = self.resolve_reference(txn, &name, true)? else { return Ok(vec![]) };
        self.check_reference_table(&r, table, fixed)?;
        if r.target.tx == 0 && txn.writes.contains_key(&(table.id, r.target.key.clone())) {
            return Err(SqlError::new(
                "55000",
                format!(
                    "this transaction has written the row of \"{}\" the reference points at: a row is proven only once it is committed",
                    table.name
                ),
            ));
        }
        let (head, cp) = self.proof_head();
        // resolve_reference(…, committed_only) read it from the log.
        let Some(ref_version) = &r.version else { return Ok(vec![]) };
        txn.note_read(table.id);
        let at = if r.target.tx == 0 { txn.snapshot } else { r.target.tx };
        let Some(target) = self.ledger.get_as_of(table.id, &r.target.key, at)?.filter(|v| !v.entry.is_delete()) else { return Ok(vec![]) };
        let mut row = self.proven_row(table, &target, &head, &cp)?;
        let (tx, rest) = self.entry_proof_columns(ref_version, &head)?;
        row.push(tx);
        row.extend(rest.into_iter().skip(1));
        Ok(vec![row])
    }
}
