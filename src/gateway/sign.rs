//! Client signatures made by the gateway (`vouchdb gateway --signing-key`, docs/PROVENANCE.md "Client
//! signatures"). The gateway follows each connection's statements as it relays them and builds, for
//! the transaction under way, the list of statements and parameter values the server will record:
//! the same split of query strings (`sql::parse`), the same rule for which statements a record holds
//! (`sql::engine::statement_kind`), and the same text form of every parameter (the value decoded as
//! the server's parameter type, printed by `sql::engine::param_text`). Right before the message that
//! commits (a Sync or query string outside a block, a COMMIT), it sets `vouch.client_timestamp`,
//! `vouch.nonce` and `vouch.signature` itself, with its own statements, whose answers it swallows.
//!
//! It signs what its client sent, never what the server says it ran: a server that recorded anything
//! else fails the signature check (at commit, and in every replay audit).

use crate::server::types::decode_binary;
use crate::sql::engine::{param_text, StatementKind};
use crate::sql::value::{DataType, Value};
use p256::ecdsa::SigningKey;
use std::collections::HashMap;
use std::sync::Arc;

/// The keys the gateway signs with: one per role, and one for every other role.
#[derive(Default, Clone)]
pub struct Keys {
    by_role: HashMap<String, SigningKey>,
    default: Option<SigningKey>,
}

impl Keys {
    /// From `--signing-key` values: `ROLE=PATH` for one role, `PATH` for every role not named.
    pub fn load(specs: &[String]) -> Result<Keys, String> {
        let mut keys = Keys::default();
        for spec in specs {
            let (role, path) = match spec.split_once('=') {
                Some((role, path)) if !role.is_empty() && !role.contains('/') => (Some(role), path),
                _ => (None, spec.as_str()),
            };
            let key = crate::signing::load_key(std::path::Path::new(path)).map_err(|e| e.to_string())?;
            match role {
                Some(role) => {
                    keys.by_role.insert(role.to_string(), key);
                }
                None if keys.default.is_some() => return Err("--signing-key without ROLE= is given twice".into()),
                None => keys.default = Some(key),
            }
        }
        Ok(keys)
    }

    pub fn for_role(&self, role: &str) -> Option<SigningKey> {
        self.by_role.get(role).or(self.default.as_ref()).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.by_role.is_empty() && self.default.is_none()
    }
}

/// A prepared statement's parameter types as the server described them to the gateway.
#[derive(Debug, Default)]
pub struct ParamTypes {
    /// None: not answered yet; Some(None): never will be (its Parse failed); else the type oids.
    pub oids: std::sync::Mutex<Option<Option<Vec<u32>>>>,
}

impl ParamTypes {
    pub fn set(&self, oids: Option<Vec<u32>>) {
        let mut o = self.oids.lock().expect("param types lock");
        if o.is_none() {
            *o = Some(oids);
        }
    }
}

/// One statement of the transaction under way, as the server will record it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub text: String,
    pub params: Params,
}

#[derive(Debug, Clone)]
pub enum Params {
    /// Already in the recorded text form (a simple query's statements have none).
    Text(Vec<Option<String>>),
    /// A Bind's values, turned into text once the server described the statement's parameter types.
    Bound { types: Arc<ParamTypes>, bind: Arc<BindValues> },
}

/// A Bind's parameter format codes and values.
#[derive(Debug, Default)]
pub struct BindValues {
    pub formats: Vec<i16>,
    pub values: Vec<Option<Vec<u8>>>,
}

/// A transaction's record as far as a signature covers it, when it can be made.
#[derive(Debug, PartialEq, Eq)]
pub enum Resolved {
    /// Some parameter types are not described yet.
    Waiting,
    /// Some never will be, or a value does not decode: the server refuses the statement too, so
    /// nothing commits.
    Never,
    Ready {
        statements: Vec<String>,
        params: Vec<Vec<Option<String>>>,
    },
}

impl Params {
    /// The recorded text of every value: Ok(None) while the types are not known yet; Err when they never
    /// will be or a value does not decode (the server refuses the statement too: nothing commits).
    fn texts(&self) -> Result<Option<Vec<Option<String>>>, ()> {
        let (types, formats, values) = match self {
            Params::Text(t) => return Ok(Some(t.clone())),
            Params::Bound { types, bind } => (types, &bind.formats, &bind.values),
        };
        let oids = match types.oids.lock().expect("param types lock").clone() {
            None => return Ok(None),
            Some(None) => return Err(()),
            Some(Some(oids)) => oids,
        };
        let mut out = Vec::with_capacity(values.len());
        for (i, raw) in values.iter().enumerate() {
            let Some(raw) = raw else {
                out.push(None);
                continue;
            };
            // As the server reads a parameter: its described type (text when it has none), the Bind's
            // format code for it (one code for all, or one each).
            let ty = oids.get(i).and_then(|o| super::column_type(*o)).unwrap_or(DataType::Text);
            let binary = match formats.len() {
                0 => false,
                1 => formats[0] == 1,
                _ => formats.get(i) == Some(&1),
            };
            let v = if binary { decode_binary(raw, ty) } else { Value::parse(std::str::from_utf8(raw).map_err(|_| ())?, ty) };
            out.push(param_text(&v.map_err(|_| ())?));
        }
        Ok(Some(out))
    }
}

/// The transaction a connection is building, followed statement by statement as the gateway relays
/// them. Failed statements need no tracking: a failed statement is never recorded, and after it only a
/// ROLLBACK TO a savepoint taken before it (which drops it here too) or the end of the transaction
/// (which commits nothing) can follow.
#[derive(Debug, Default)]
pub struct Unit {
    pub statements: Vec<Pending>,
    /// Inside BEGIN … COMMIT.
    pub block: bool,
    savepoints: Vec<(String, usize)>,
    /// Why this transaction cannot be signed (an SQL-level EXECUTE), if so.
    pub unsignable: Option<&'static str>,
    /// A warning for the client: a transaction went unsigned, and why.
    pub notice: Option<String>,
}

impl Unit {
    /// Note a statement about to run; returns the statements to sign before it, when it commits
    /// something (COMMIT, or a policy statement, which commits alone).
    pub fn step(&mut self, kind: &StatementKind, pending: Pending) -> Option<Vec<Pending>> {
        match kind {
            StatementKind::Begin => self.block = true,
            // COMMIT ends whatever is open: a block, or the implicit transaction of a query string.
            StatementKind::Commit => return self.end(),
            StatementKind::Rollback => {
                self.end();
            }
            StatementKind::Savepoint(name) => self.savepoints.push((name.clone(), self.statements.len())),
            StatementKind::ReleaseSavepoint(name) => {
                if let Some(i) = self.savepoints.iter().rposition(|(n, _)| n == name) {
                    self.savepoints.truncate(i);
                }
            }
            StatementKind::RollbackToSavepoint(name) => {
                if let Some(i) = self.savepoints.iter().rposition(|(n, _)| n == name) {
                    self.statements.truncate(self.savepoints[i].1);
                    self.savepoints.truncate(i + 1);
                }
            }
            StatementKind::Session => {}
            // Role changes commit what came before them first, then themselves, unsigned; policy
            // statements the same, signed alone. One signature is set per commit point the gateway
            // sees, so only one of the two can be signed: the statements before, when there are any.
            StatementKind::RoleChange | StatementKind::OwnCommit if !self.block => {
                let before = self.end();
                if before.is_some() || *kind == StatementKind::RoleChange {
                    return before;
                }
                return Some(vec![pending]);
            }
            StatementKind::RoleChange | StatementKind::OwnCommit => {}
            StatementKind::SqlExecute => {
                self.unsignable = Some(
                    "it runs an SQL-level EXECUTE, whose record holds the prepared text and evaluated arguments; use the driver's prepared statements (extended protocol) instead",
                )
            }
            StatementKind::Recorded => self.statements.push(pending),
        }
        None
    }

    /// The end of a query string or pipeline (Sync): outside a block, its implicit transaction commits.
    pub fn end_of_unit(&mut self) -> Option<Vec<Pending>> {
        if self.block {
            return None;
        }
        self.end()
    }

    fn end(&mut self) -> Option<Vec<Pending>> {
        self.block = false;
        self.savepoints.clear();
        let unsignable = self.unsignable.take();
        let statements = std::mem::take(&mut self.statements);
        if let Some(why) = unsignable {
            tracing::warn!("gateway: not signing a transaction: {why}");
            self.notice = Some(format!("vouchdb gateway: this transaction is not signed: {why}"));
            return None;
        }
        (!statements.is_empty()).then_some(statements)
    }

    /// Resynchronise with the server's transaction status when nothing is in flight (ReadyForQuery
    /// with no answer outstanding): 'I' idle, 'T' in a block, 'E' in a failed block.
    pub fn resync(&mut self, status: u8) {
        if status == b'I' && (self.block || !self.statements.is_empty()) {
            *self = Unit::default();
        } else if status != b'I' {
            self.block = true;
        }
    }
}

/// The statements and parameter texts of `pending`, once every parameter type is known.
pub fn resolve(pending: &[Pending]) -> Resolved {
    let mut statements = Vec::with_capacity(pending.len());
    let mut params = Vec::with_capacity(pending.len());
    for p in pending {
        match p.params.texts() {
            Err(()) => return Resolved::Never,
            Ok(None) => return Resolved::Waiting,
            Ok(Some(t)) => params.push(t),
        }
        statements.push(p.text.clone());
    }
    Resolved::Ready { statements, params }
}

/// The three settings that sign a transaction, as SET statements: the client timestamp (now), a
/// fresh nonce, and the signature over the record.
pub fn settings(key: &SigningKey, role: &str, statements: &[String], params: &[Vec<Option<String>>]) -> [String; 3] {
    let now = chrono::Utc::now().timestamp_micros();
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let nonce = hex::encode(nonce);
    let message = crate::sql::signature::signed_message(role, now as u64, &nonce, statements, params);
    let signature = crate::sql::signature::sign(key, &message);
    let time = Value::Timestamptz(now).to_text(DataType::Timestamptz).unwrap_or_default();
    [
        format!("SET vouch.client_timestamp = '{time}'"),
        format!("SET vouch.nonce = '{nonce}'"),
        format!("SET vouch.signature = '{signature}'"),
    ]
}

/// The name of the gateway's own prepared statement and portal (closed right after each use).
const OWN: &str = "vouchdb_gateway_sign";

/// Extended-protocol messages that run `statements` without touching the client's unnamed statement
/// or portal: Parse, Bind, Execute, Close portal, Close statement for each. Five answers each.
pub fn extended(statements: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    let name = format!("{OWN}\0");
    for sql in statements {
        out.extend_from_slice(&super::message(b'P', &[name.as_bytes(), sql.as_bytes(), b"\0", &0i16.to_be_bytes()].concat()));
        let zero = 0i16.to_be_bytes();
        out.extend_from_slice(&super::message(b'B', &[name.as_bytes(), name.as_bytes(), &zero, &zero, &zero].concat()));
        out.extend_from_slice(&super::message(b'E', &[name.as_bytes(), &0i32.to_be_bytes()].concat()));
        out.extend_from_slice(&super::message(b'C', &[b"P", name.as_bytes()].concat()));
        out.extend_from_slice(&super::message(b'C', &[b"S", name.as_bytes()].concat()));
    }
    out
}

/// How many answers [`extended`] gets.
pub fn extended_answers(statements: usize) -> usize {
    5 * statements
}

/// A Describe of a client's prepared statement, and a Flush: its ParameterDescription tells the
/// gateway the types the server reads the statement's parameters as.
pub fn describe(statement: &str) -> Vec<u8> {
    let mut out = super::message(b'D', &[b"S", statement.as_bytes(), b"\0"].concat());
    out.extend_from_slice(&super::message(b'H', &[]));
    out
}

/// A ParameterDescription's type oids.
pub fn parameter_oids(body: &[u8]) -> Option<Vec<u32>> {
    let n = u16::from_be_bytes(body.get(..2)?.try_into().ok()?) as usize;
    let rest = body.get(2..2 + 4 * n)?;
    Some(rest.chunks(4).map(|c| u32::from_be_bytes(c.try_into().expect("chunks of 4"))).collect())
}

/// A Bind's parameter format codes and values.
pub fn bind_values(body: &[u8]) -> Option<BindValues> {
    let mut b = body;
    super::cstr(&mut b)?;
    super::cstr(&mut b)?;
    let formats = super::i16s(&mut b)?;
    let values = super::value_list(&mut b)?;
    Some(BindValues { formats, values })
}

/// The startup message's `user`.
pub fn startup_user(body: &[u8]) -> String {
    let mut parts = body.get(4..).unwrap_or_default().split(|&c| c == 0);
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if k == b"user" {
            return String::from_utf8_lossy(v).into_owned();
        }
        if k.is_empty() {
            break;
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Pending {
        Pending { text: text.into(), params: Params::Text(vec![]) }
    }

    fn texts(v: Option<Vec<Pending>>) -> Vec<String> {
        v.unwrap_or_default().into_iter().map(|p| p.text).collect()
    }

    #[test]
    fn a_block_signs_at_commit_without_what_was_rolled_back_to_a_savepoint() {
        let mut u = Unit::default();
        assert!(u.step(&StatementKind::Begin, p("BEGIN")).is_none());
        u.step(&StatementKind::Recorded, p("INSERT 1"));
        u.step(&StatementKind::Savepoint("a".into()), p("SAVEPOINT a"));
        u.step(&StatementKind::Recorded, p("INSERT 2"));
        u.step(&StatementKind::RollbackToSavepoint("a".into()), p("ROLLBACK TO a"));
        u.step(&StatementKind::Session, p("SET x = 1"));
        u.step(&StatementKind::Recorded, p("INSERT 3"));
        assert!(u.end_of_unit().is_none(), "a Sync inside a block commits nothing");
        assert_eq!(texts(u.step(&StatementKind::Commit, p("COMMIT"))), ["INSERT 1", "INSERT 3"]);
        assert!(!u.block);
    }

    #[test]
    fn outside_a_block_the_unit_commits_at_its_end_and_a_rollback_drops_it() {
        let mut u = Unit::default();
        u.step(&StatementKind::Recorded, p("INSERT 1"));
        u.step(&StatementKind::Recorded, p("SELECT 1"));
        assert_eq!(texts(u.end_of_unit()), ["INSERT 1", "SELECT 1"]);
        u.step(&StatementKind::Recorded, p("INSERT 2"));
        u.step(&StatementKind::Rollback, p("ROLLBACK"));
        assert!(u.end_of_unit().is_none());
        u.step(&StatementKind::SqlExecute, p("EXECUTE s"));
        assert!(u.end_of_unit().is_none(), "an SQL EXECUTE is not signed");
        assert_eq!(texts(u.step(&StatementKind::OwnCommit, p("CREATE POLICY"))), ["CREATE POLICY"]);
    }

    #[test]
    fn bound_values_are_signed_in_the_servers_text_form_once_typed() {
        let types = Arc::new(ParamTypes::default());
        let pending = vec![Pending {
            text: "INSERT INTO t VALUES ($1, $2, $3)".into(),
            params: Params::Bound {
                types: types.clone(),
                bind: Arc::new(BindValues {
                    formats: vec![0, 1, 0],
                    values: vec![Some(b"007".to_vec()), Some(42i64.to_be_bytes().to_vec()), None],
                }),
            },
        }];
        assert_eq!(resolve(&pending), Resolved::Waiting);
        types.set(Some(vec![23, 20, 25]));
        let Resolved::Ready { params, .. } = resolve(&pending) else { panic!("typed") };
        assert_eq!(params, vec![vec![Some("7".to_string()), Some("42".to_string()), None]]);
        let failed = Arc::new(ParamTypes::default());
        failed.set(None);
        let pending = vec![Pending { text: "x".into(), params: Params::Bound { types: failed, bind: Arc::default() } }];
        assert_eq!(resolve(&pending), Resolved::Never);
    }
}
