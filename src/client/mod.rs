//! The trusted-state client: a tokio-postgres connection plus a pinned key and the newest checkpoint
//! this client has verified (a state file). Every verified read checks, with `crate::verify` only:
//! the checkpoint's signature with the pinned key, the entry's inclusion in its transaction, the
//! transaction's inclusion in the signed tree, and the consistency of that tree with the trusted one.
//! A smaller tree than the trusted one (rollback), a different root at a trusted size or an
//! inconsistent larger tree (fork), or any failed proof is an error naming what failed, and the
//! trusted state is not advanced. docs/VERIFYING.md describes what each check means.

pub mod bundle;
pub mod proof;
pub mod state;

use crate::sql::value::{decode_row, encode_key, DataType, Value};
use crate::verify::checkpoint::Checkpoint;
use crate::verify::{consistency, VerifyError};
use proof::{parse_hash, parse_hash_array, parse_hex, parse_hex_array, RowProof, SignedBody, TxProof};
use state::TrustedState;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage, SimpleQueryRow};

/// Why a verified operation failed. Every variant names what was checked.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot talk to the server: {0}")]
    Connection(String),
    #[error("the server answered with an error: {0}")]
    Server(String),
    #[error("malformed proof material: {0}")]
    Malformed(String),
    #[error("checkpoint signature does not verify with the pinned key: {0}")]
    Signature(VerifyError),
    #[error("checkpoint is for log {got:?}, the trusted log is {expected:?}")]
    Origin { expected: String, got: String },
    #[error("tx {tx} is tampered: {what}")]
    Tampered { tx: u64, what: String },
    #[error("tx {tx} is not included in the signed tree of size {size}: {err}")]
    TxInclusion { tx: u64, size: u64, err: VerifyError },
    #[error("entry {index} of tx {tx} is not included in the transaction: {err}")]
    EntryInclusion { tx: u64, index: u32, err: VerifyError },
    #[error("tx {tx}: the proven entry is for key {got}, the request was for key {want}")]
    KeyMismatch { tx: u64, got: String, want: String },
    #[error("the proven reference {name:?} does not lead to the proven row: {what}")]
    ReferenceMismatch { name: String, what: String },
    #[error("rollback: the server's tree has {got} transactions, this client already trusts a tree of {trusted}")]
    Rollback { trusted: u64, got: u64 },
    #[error("fork: {0}")]
    Fork(String),
    #[error("no trusted state for log {0:?}: pin its public key (--public-key) or trust on first use explicitly (--trust-on-first-use)")]
    Untrusted(String),
    #[error("the pinned public key for log {0:?} differs from the one given")]
    KeyChanged(String),
    #[error("trusted state: {0}")]
    State(String),
}

impl ClientError {
    /// Whether this is evidence against the server (a proof, signature or consistency failure), as
    /// opposed to a connection, server-side or local problem.
    pub fn is_integrity(&self) -> bool {
        !matches!(
            self,
            ClientError::Connection(_)
                | ClientError::Server(_)
                | ClientError::State(_)
                | ClientError::Untrusted(_)
                | ClientError::KeyChanged(_)
        )
    }
}

/// How to establish trust in a server the state file does not know yet.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Only servers already in the state file.
    StateOnly,
    /// Pin this public key (PEM); it must match the state file's if the server is known.
    Pinned(String),
    /// Pin whatever key the server presents now (explicit trust on first use).
    FirstUse,
}

/// A row version proven against a signed checkpoint.
#[derive(Debug, Clone)]
pub struct VerifiedRow {
    pub tx: u64,
    /// The proven version is a delete (its `values` are empty).
    pub deleted: bool,
    pub commit_time_us: u64,
    /// The table id the entry is written under.
    pub table_id: u32,
    /// The row's values decoded from the proven entry, in the table's column order when it was written
    /// (hidden columns such as `_rowid` included). These are the values to trust.
    pub values: Vec<Value>,
    /// The proof material as served, e.g. to save as an offline bundle.
    pub proof: RowProof,
    pub checkpoint: Checkpoint,
}

/// A whole transaction proven against a signed checkpoint.
#[derive(Debug, Clone)]
pub struct VerifiedTx {
    pub leaf: crate::ledger::format::LeafData,
    pub entries: Vec<crate::ledger::format::Entry>,
    pub provenance: Vec<u8>,
    pub checkpoint: Checkpoint,
}

/// Parse `--key` values: `TYPE:value`, or an integer, or text.
pub fn parse_key(k: &str) -> Result<Value, ClientError> {
    let types = [
        ("int", DataType::Int8),
        ("text", DataType::Text),
        ("uuid", DataType::Uuid),
        ("date", DataType::Date),
        ("timestamp", DataType::Timestamp),
        ("timestamptz", DataType::Timestamptz),
        ("numeric", DataType::Numeric),
        ("bool", DataType::Bool),
    ];
    if let Some((t, v)) = k.split_once(':') {
        if let Some((_, ty)) = types.iter().find(|(n, _)| *n == t) {
            return Value::parse(v, *ty).map_err(|e| ClientError::Malformed(format!("--key {k}: {}", e.message)));
        }
    }
    Ok(match k.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::Text(k.to_string()),
    })
}

/// A PostgreSQL string literal (standard_conforming_strings): quotes doubled.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn literal(v: &Value) -> Result<String, ClientError> {
    match v {
        Value::Null => Ok("NULL".into()),
        Value::Int(i) => Ok(i.to_string()),
        v => v
            .to_text(v.natural_type())
            .map(|t| quote_literal(&t))
            .ok_or_else(|| ClientError::Malformed("key value has no text form".into())),
    }
}

/// Connect with a libpq-style connection string or URL. A password missing from it is taken from
/// `PGPASSWORD`, as libpq does.
pub async fn connect(conn: &str) -> Result<Client, ClientError> {
    let mut config: tokio_postgres::Config = conn.parse().map_err(|e| ClientError::Connection(format!("connection string: {e}")))?;
    if config.get_password().is_none() {
        if let Ok(pw) = std::env::var("PGPASSWORD") {
            config.password(pw);
        }
    }
    if config.get_user().is_none() {
        if let Ok(u) = std::env::var("PGUSER") {
            config.user(u);
        }
    }
    let (client, connection) = config.connect(NoTls).await.map_err(|e| ClientError::Connection(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// Run `statements` (SQL text without parameters, one statement each) as one transaction signed
/// with `key` for `role`: [`execute_signed_params`] with no parameters.
pub async fn execute_signed(
    client: &Client,
    role: &str,
    key: &p256::ecdsa::SigningKey,
    statements: &[&str],
) -> Result<(u64, String), ClientError> {
    let with: Vec<(&str, &[&(dyn ToSql + Sync)])> = statements.iter().map(|s| (*s, &[] as &[&(dyn ToSql + Sync)])).collect();
    execute_signed_params(client, role, key, &with).await
}

/// Run `statements` (each SQL text with its parameter values, `$n` placeholders) as one transaction
/// signed with `key` for `role` (docs/PROVENANCE.md, "Client signatures"): sets the client timestamp
/// (now), a fresh random nonce and the signature over exactly these statements and parameters, then
/// runs them (between BEGIN and COMMIT when there are several; a single statement is its own
/// transaction, so policy and role changes can be signed too). Statements without parameters go by
/// the simple protocol, the others are prepared first: the server's parameter types are what the
/// values are converted with, and the signed text of each value is the one the server records (the
/// value decoded as that type, in PostgreSQL's text form). The server refuses the commit unless the
/// signature verifies with a key bound to `role`. Returns the client timestamp (µs) and nonce it signed.
pub async fn execute_signed_params(
    client: &Client,
    role: &str,
    key: &p256::ecdsa::SigningKey,
    statements: &[(&str, &[&(dyn ToSql + Sync)])],
) -> Result<(u64, String), ClientError> {
    let mut prepared = Vec::with_capacity(statements.len());
    let mut texts = Vec::with_capacity(statements.len());
    let mut params = Vec::with_capacity(statements.len());
    for (sql, values) in statements {
        texts.push(sql.to_string());
        if values.is_empty() {
            prepared.push(None);
            params.push(Vec::new());
            continue;
        }
        let stmt = client.prepare(sql).await.map_err(|e| server_error(&e))?;
        if stmt.params().len() != values.len() {
            return Err(ClientError::Malformed(format!(
                "statement has {} parameters, {} values were given: {sql}",
                stmt.params().len(),
                values.len()
            )));
        }
        params.push(stmt.params().iter().zip(values.iter()).map(|(ty, v)| param_text(ty, *v)).collect::<Result<Vec<_>, _>>()?);
        prepared.push(Some(stmt));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or_default();
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let nonce = hex::encode(nonce);
    let message = crate::sql::signature::signed_message(role, now, &nonce, &texts, &params);
    let signature = crate::sql::signature::sign(key, &message);
    let time = Value::Timestamptz(now as i64).to_text(DataType::Timestamptz).unwrap_or_default();
    let run = |sql: String| async move { client.batch_execute(&sql).await.map_err(|e| server_error(&e)) };
    run(format!("SET vouch.client_timestamp = '{time}'; SET vouch.nonce = '{nonce}'; SET vouch.signature = '{signature}'")).await?;
    let block = statements.len() > 1;
    if block {
        run("BEGIN".into()).await?;
    }
    for ((sql, values), stmt) in statements.iter().zip(&prepared) {
        let done = match stmt {
            Some(stmt) => client.execute(stmt, values).await.map(|_| ()).map_err(|e| server_error(&e)),
            None => run(sql.to_string()).await,
        };
        if let Err(e) = done {
            // Nothing was committed: end the block and clear the settings meant for this commit.
            let _ = client.batch_execute(if block { "ROLLBACK; RESET vouch.signature" } else { "RESET vouch.signature" }).await;
            let _ = client.batch_execute("RESET vouch.nonce; RESET vouch.client_timestamp").await;
            return Err(e);
        }
    }
    if block {
        run("COMMIT".into()).await?;
    }
    Ok((now, nonce))
}

/// A parameter value's text as the server records it: encoded by the driver in binary for the
/// parameter's type, decoded as the server decodes it, printed in PostgreSQL's text form.
fn param_text(ty: &Type, value: &(dyn ToSql + Sync)) -> Result<Option<String>, ClientError> {
    let mut buf = bytes::BytesMut::new();
    let bad = |what: String| ClientError::Malformed(format!("parameter of type {ty}: {what}"));
    match value.to_sql_checked(ty, &mut buf).map_err(|e| bad(e.to_string()))? {
        tokio_postgres::types::IsNull::Yes => Ok(None),
        tokio_postgres::types::IsNull::No => {
            let dt = crate::server::types::data_type(ty).ok_or_else(|| bad("not a type vouchdb accepts".into()))?;
            let v = crate::server::types::decode_binary(&buf, dt).map_err(|e| bad(e.to_string()))?;
            Ok(crate::sql::engine::param_text(&v))
        }
    }
}

fn server_error(e: &tokio_postgres::Error) -> ClientError {
    match e.as_db_error() {
        Some(db) => ClientError::Server(format!("{} (SQLSTATE {})", db.message(), db.code().code())),
        None => ClientError::Connection(e.to_string()),
    }
}

/// Run one statement with the simple protocol and return its rows (text columns).
pub async fn simple_rows(client: &Client, sql: &str) -> Result<Vec<SimpleQueryRow>, ClientError> {
    let msgs = client.simple_query(sql).await.map_err(|e| server_error(&e))?;
    Ok(msgs
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect())
}

/// A named column of a simple-query row, required to be non-NULL.
pub fn col<'a>(row: &'a SimpleQueryRow, name: &str) -> Result<&'a str, ClientError> {
    row.try_get(name)
        .map_err(|_| ClientError::Malformed(format!("the answer has no column {name}")))?
        .ok_or_else(|| ClientError::Malformed(format!("column {name} is NULL")))
}

fn num(row: &SimpleQueryRow, name: &str) -> Result<u64, ClientError> {
    col(row, name)?.parse().map_err(|_| ClientError::Malformed(format!("column {name} is not a number")))
}

/// The current signed checkpoint as the server hands it out.
pub async fn fetch_checkpoint(client: &Client) -> Result<(SignedBody, String), ClientError> {
    let rows = simple_rows(client, "SELECT checkpoint, signature, public_key FROM vouch_checkpoint()").await?;
    let row = rows.first().ok_or_else(|| ClientError::Malformed("vouch_checkpoint() returned no row".into()))?;
    Ok((
        SignedBody { body: col(row, "checkpoint")?.to_string(), signature: col(row, "signature")?.to_string() },
        col(row, "public_key")?.to_string(),
    ))
}

/// Fetch a consistency proof and check it: the trusted tree (`old_size`, `old_root`) is a prefix of
/// the tree of `new`. Errors are forks.
pub async fn check_consistency(
    client: &Client,
    old_size: u64,
    old_root: &crate::verify::Hash,
    new: &Checkpoint,
) -> Result<(), ClientError> {
    if old_size == 0 {
        return Ok(());
    }
    if new.size < old_size {
        return Err(ClientError::Rollback { trusted: old_size, got: new.size });
    }
    if new.size == old_size {
        if &new.root != old_root {
            return Err(ClientError::Fork(format!(
                "the signed root at tree size {} is {}, the trusted root at that size is {}",
                new.size,
                hex::encode(new.root),
                hex::encode(old_root)
            )));
        }
        return Ok(());
    }
    let rows = simple_rows(client, &format!("SELECT proof FROM consistency_proof({old_size}, {})", new.size)).await?;
    let row = rows.first().ok_or_else(|| ClientError::Malformed("consistency_proof() returned no row".into()))?;
    let proof = parse_hash_array("consistency proof", col(row, "proof")?)?;
    consistency(old_size, new.size, old_root, &new.root, &proof).map_err(|e| {
        ClientError::Fork(format!("the tree of size {} is not an extension of the trusted tree of size {old_size}: {e}", new.size))
    })
}

/// A connection with a trusted state.
pub struct VerifyingClient {
    client: Client,
    state: TrustedState,
    origin: String,
    key: p256::ecdsa::VerifyingKey,
}

impl VerifyingClient {
    /// Connect, establish which log this is and which key is trusted for it, and verify the server's
    /// current checkpoint against the trusted state (advancing it).
    pub async fn connect(conn: &str, state: TrustedState, trust: Trust) -> Result<VerifyingClient, ClientError> {
        let client = connect(conn).await?;
        Self::with_client(client, state, trust).await
    }

    /// Like `connect`, over an existing connection.
    pub async fn with_client(client: Client, mut state: TrustedState, trust: Trust) -> Result<VerifyingClient, ClientError> {
        let (signed, server_key) = fetch_checkpoint(&client).await?;
        let origin = signed.body.lines().next().unwrap_or_default().to_string();
        match (state.get(&origin), &trust) {
            (Some(log), Trust::Pinned(pem)) => {
                let given =
                    crate::verify::checkpoint::parse_public_key_pem(pem).map_err(|e| ClientError::State(format!("--public-key: {e}")))?;
                if log.key()? != given {
                    return Err(ClientError::KeyChanged(origin));
                }
            }
            (Some(_), _) => {}
            (None, Trust::Pinned(pem)) => state.pin(&origin, pem)?,
            (None, Trust::FirstUse) => state.pin(&origin, &server_key)?,
            (None, Trust::StateOnly) => return Err(ClientError::Untrusted(origin)),
        }
        let key = state.get(&origin).expect("pinned above").key()?;
        let mut c = VerifyingClient { client, state, origin, key };
        c.accept(&signed).await?;
        Ok(c)
    }

    /// Replace the connection (after the server restarted), keeping the trusted state.
    pub async fn reconnect(&mut self, conn: &str) -> Result<(), ClientError> {
        self.client = connect(conn).await?;
        Ok(())
    }

    /// The underlying connection, for ordinary queries.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn state(&self) -> &TrustedState {
        &self.state
    }

    pub fn key(&self) -> &p256::ecdsa::VerifyingKey {
        &self.key
    }

    /// Verify a checkpoint's signature and its consistency with the trusted state, then advance the
    /// state to it.
    async fn accept(&mut self, signed: &SignedBody) -> Result<Checkpoint, ClientError> {
        self.accept_as(signed, true).await
    }

    /// `current`: the checkpoint is the server's current one, so a smaller tree than the trusted one is
    /// a rollback. Otherwise it came with an answer that may have been computed before the trusted
    /// state advanced (another task sharing this client): a smaller tree is then accepted, without
    /// advancing, if the server proves it is a prefix of the trusted tree.
    async fn accept_as(&mut self, signed: &SignedBody, current: bool) -> Result<Checkpoint, ClientError> {
        let cp = signed.verify(&self.key, &self.origin)?;
        let trusted = self.state.get(&self.origin).ok_or_else(|| ClientError::Untrusted(self.origin.clone()))?.clone();
        let trusted_root = trusted.root_hash()?;
        if !current && cp.size < trusted.tree_size && cp.size > 0 {
            let rows = simple_rows(&self.client, &format!("SELECT proof FROM consistency_proof({}, {})", cp.size, trusted.tree_size)).await;
            let proof = match rows {
                Ok(rows) => rows.first().map(|r| col(r, "proof").and_then(|p| parse_hash_array("consistency proof", p))).transpose()?,
                Err(_) => None,
            };
            return match proof {
                Some(p) if consistency(cp.size, trusted.tree_size, &cp.root, &trusted_root, &p).is_ok() => Ok(cp),
                _ => Err(ClientError::Rollback { trusted: trusted.tree_size, got: cp.size }),
            };
        }
        check_consistency(&self.client, trusted.tree_size, &trusted_root, &cp).await?;
        if cp.size > trusted.tree_size {
            self.state.advance(&cp, &signed.body, &signed.signature)?;
        }
        Ok(cp)
    }

    /// Verify a checkpoint handed out with some other answer, and advance the trusted state to it (an
    /// older checkpoint proven to be a prefix of the trusted tree is accepted without advancing).
    pub async fn accept_signed(&mut self, signed: &SignedBody) -> Result<Checkpoint, ClientError> {
        self.accept_as(signed, false).await
    }

    /// Fetch and verify the server's current checkpoint.
    pub async fn checkpoint(&mut self) -> Result<Checkpoint, ClientError> {
        let (signed, _) = fetch_checkpoint(&self.client).await?;
        self.accept(&signed).await
    }

    /// The current version of a row, verified; `None` when the key has no row (which the server
    /// asserts but does not prove).
    pub async fn verified_get(&mut self, table: &str, key: &[Value]) -> Result<Option<VerifiedRow>, ClientError> {
        self.verified_get_at(table, None, key).await
    }

    /// The version of a row as of `at` (a tx), or the current one.
    pub async fn verified_get_at(&mut self, table: &str, at: Option<u64>, key: &[Value]) -> Result<Option<VerifiedRow>, ClientError> {
        let mut args = vec![quote_literal(table)];
        if let Some(at) = at {
            args.push(at.to_string());
        }
        for v in key {
            args.push(literal(v)?);
        }
        let func = if at.is_some() { "verified_get_at" } else { "verified_get" };
        let rows = simple_rows(&self.client, &format!("SELECT * FROM {func}({})", args.join(", "))).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let proof = row_proof(row)?;
        let expected_key = encode_key(key).map_err(|e| ClientError::Malformed(format!("key: {}", e.message)))?;
        if let Some(at) = at {
            if proof.tx > at {
                return Err(ClientError::Malformed(format!("asked for the version as of tx {at}, the server proved tx {}", proof.tx)));
            }
        }
        let row = self.verify_row(proof, &expected_key).await?;
        // A proven delete: the row does not exist at that version.
        Ok((!row.deleted).then_some(row))
    }

    /// The row the reference `name` points at, verified: the reference's entry (in `vouch_references`,
    /// under that name) and the target row's entry are each proven in the signed tree, and the
    /// reference's stored target (table, key, and pinned tx if any) is the proven row. `None` when the
    /// reference or its target does not exist (which the server asserts but does not prove).
    pub async fn verified_deref(&mut self, name: &str) -> Result<Option<VerifiedDeref>, ClientError> {
        let rows = simple_rows(&self.client, &format!("SELECT * FROM verified_deref({})", quote_literal(name))).await?;
        let Some(row) = rows.first() else { return Ok(None) };
        let target = row_proof(row)?;
        let reference = RowProof::reference_from_columns(|n| col(row, n).map(str::to_string))?;
        let ref_key = encode_key(&[Value::Text(name.to_string())]).map_err(|e| ClientError::Malformed(format!("key: {}", e.message)))?;
        let r = reference.verify(&self.key, &self.origin, Some(&ref_key))?;
        let target_key = match &r.entry.reference {
            Some(t) => t.key.clone(),
            None => return Err(ClientError::ReferenceMismatch { name: name.into(), what: "the proven entry is not a reference".into() }),
        };
        let t = proof::check_reference(&r, &target.verify(&self.key, &self.origin, Some(&target_key))?).map_err(|e| match e {
            ClientError::ReferenceMismatch { what, .. } => ClientError::ReferenceMismatch { name: name.into(), what },
            e => e,
        })?;
        let row = self.verify_row(target, &target_key).await?;
        Ok(Some(VerifiedDeref { row, reference_tx: r.tx, pinned_tx: (t.tx != 0).then_some(t.tx) }))
    }

    /// Verify a row proof against the pinned key, the trusted state and the key asked for.
    pub async fn verify_row(&mut self, proof: RowProof, expected_key: &[u8]) -> Result<VerifiedRow, ClientError> {
        let v = proof.verify(&self.key, &self.origin, Some(expected_key))?;
        self.accept_as(&proof.checkpoint, false).await?;
        let values = if v.entry.is_delete() {
            Vec::new()
        } else {
            decode_row(&v.entry.value).map_err(|e| ClientError::Tampered { tx: v.tx, what: format!("its row does not decode: {e}") })?.1
        };
        Ok(VerifiedRow {
            deleted: v.entry.is_delete(),
            tx: v.tx,
            commit_time_us: v.leaf.commit_time_us,
            table_id: v.entry.table,
            values,
            proof,
            checkpoint: v.checkpoint,
        })
    }

    /// A whole transaction, verified: its entries and provenance against its leaf, its leaf against
    /// the signed tree.
    pub async fn verified_tx(&mut self, tx: u64) -> Result<VerifiedTx, ClientError> {
        let rows = simple_rows(&self.client, &format!("SELECT * FROM verified_tx({tx})")).await?;
        let row = rows.first().ok_or_else(|| ClientError::Malformed("verified_tx() returned no row".into()))?;
        let proof = TxProof {
            tx: num(row, "tx")?,
            leaf: parse_hex("leaf", col(row, "leaf")?)?,
            entries: parse_hex_array("entries", col(row, "entries")?)?,
            provenance: parse_hex("provenance", col(row, "provenance")?)?,
            tx_proof: parse_hash_array("tx_proof", col(row, "tx_proof")?)?,
            tree_size: num(row, "tree_size")?,
            root: parse_hash("root", col(row, "root")?)?,
            checkpoint: SignedBody { body: col(row, "checkpoint")?.to_string(), signature: col(row, "signature")?.to_string() },
        };
        if proof.tx != tx {
            return Err(ClientError::Malformed(format!("asked for tx {tx}, the server proved tx {}", proof.tx)));
        }
        let (leaf, cp) = proof.verify(&self.key, &self.origin)?;
        self.accept_as(&proof.checkpoint, false).await?;
        let entries = proof
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                crate::ledger::format::Entry::decode(e).map_err(|err| ClientError::Tampered { tx, what: format!("entry {i}: {err}") })
            })
            .collect::<Result<_, _>>()?;
        Ok(VerifiedTx { leaf, entries, provenance: proof.provenance, checkpoint: cp })
    }
}

/// A row reached through a reference, verified (`VerifyingClient::verified_deref`).
#[derive(Debug, Clone)]
pub struct VerifiedDeref {
    pub row: VerifiedRow,
    /// The tx that wrote the reference.
    pub reference_tx: u64,
    /// The tx the reference is pinned to, if it is (the row is then its version as of that tx).
    pub pinned_tx: Option<u64>,
}

/// The proof columns of a `verified_get` row.
pub fn row_proof(row: &SimpleQueryRow) -> Result<RowProof, ClientError> {
    RowProof::from_columns(|name| col(row, name).map(str::to_string))
}
