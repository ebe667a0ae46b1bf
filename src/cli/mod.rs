//! The client-side subcommands of the `vouchdb` binary: `verify` and `audit`. They talk to a server
//! over pgwire and check everything with `vouchdb::client` and `vouchdb::verify`.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use vouchdb::audit::Auditor;
use vouchdb::client::state::TrustedState;
use vouchdb::client::{bundle, ClientError, Trust, VerifyingClient};
use vouchdb::sql::value::{format_timestamp, Value};

#[derive(Args, Clone)]
pub struct ServerArgs {
    /// The server: a libpq connection string or URL (`host=… port=… user=… dbname=…` or
    /// `postgresql://user@host:port/db`); a password not in it comes from PGPASSWORD.
    #[arg(long, env = "VOUCHDB_SERVER")]
    pub server: String,
    /// Trusted-state file (created if missing; updated atomically after each verified checkpoint).
    #[arg(long, env = "VOUCHDB_STATE", default_value = "vouchdb-trusted.json")]
    pub state: PathBuf,
    /// The server's public key (PEM) to pin. Needed the first time, unless --trust-on-first-use.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// Pin whatever key the server presents if the state file does not know it yet.
    #[arg(long, conflicts_with = "public_key")]
    pub trust_on_first_use: bool,
}

#[derive(Subcommand)]
pub enum VerifyCommand {
    /// Fetch the server's checkpoint; check its signature with the pinned key and its consistency with
    /// the trusted state; advance the state.
    Checkpoint {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Fetch a row with verified_get and check its proofs; print its proven values.
    Row {
        #[command(flatten)]
        server: ServerArgs,
        /// Table name.
        #[arg(long)]
        table: String,
        /// Primary-key value, one per key column, in order. Numbers are integers, anything else text;
        /// force a type with `TYPE:value` (int, text, uuid, date, timestamp, timestamptz, numeric, bool).
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// The version as of this tx (verified_get_at) instead of the current one.
        #[arg(long)]
        at: Option<u64>,
        /// Also write the proof as an offline bundle (C2SP tlog-proof) to this file.
        #[arg(long)]
        bundle_out: Option<PathBuf>,
    },
    /// Fetch the row a reference points at with verified_deref and check both proofs (the reference's
    /// entry and the row's) and that the proven reference leads to the proven row; print its values.
    Deref {
        #[command(flatten)]
        server: ServerArgs,
        /// The reference's name (a row of vouch_references).
        #[arg(long)]
        name: String,
    },
    /// Fetch a whole transaction with verified_tx: re-hash its entries and provenance record, check its
    /// inclusion in the signed tree.
    Tx {
        #[command(flatten)]
        server: ServerArgs,
        /// Transaction id.
        #[arg(long)]
        tx: u64,
    },
    /// Verify an offline proof bundle (made by `verify row --bundle-out`) with no server at all.
    Bundle {
        /// The bundle file.
        file: PathBuf,
        /// The log's public key (PEM).
        #[arg(long)]
        public_key: PathBuf,
        /// Require this log origin.
        #[arg(long)]
        origin: Option<String>,
    },
}

#[derive(Args)]
pub struct AuditArgs {
    /// The server: a libpq connection string or URL; a password not in it comes from PGPASSWORD.
    /// The role needs superuser rights (vouch_txs returns whole transactions).
    #[arg(long, env = "VOUCHDB_SERVER", required_unless_present = "data_dir", conflicts_with = "data_dir")]
    pub server: Option<String>,
    /// The log's public key (PEM), pinned: a key the server presents is never used.
    #[arg(long, required_unless_present = "data_dir")]
    pub public_key: Option<PathBuf>,
    /// Replay every transaction from genesis in a scratch store: each recorded statement, run as its
    /// principal with its parameters at its snapshot, must produce exactly the recorded entries, be
    /// admitted by the policies in force, and carry a valid client signature where one is required.
    /// Exit 1 when any transaction violates this (each is listed with the reason).
    /// Online with --server and --public-key (the checkpoint and every transaction verified as the
    /// auditor does), or offline with --data-dir.
    #[arg(long)]
    pub replay: bool,
    /// With --replay: the data directory to replay, offline (a copy, or one no server is running on).
    #[arg(long, requires = "replay")]
    pub data_dir: Option<PathBuf>,
    /// With --replay: where the scratch store goes (default: the system's temporary directory).
    #[arg(long)]
    pub scratch_dir: Option<PathBuf>,
    /// Audit state file (audited size, root and frontier), created on the first round.
    #[arg(long, default_value = "vouchdb-audit.json")]
    pub state: PathBuf,
    /// Run one round and exit (0: everything verified).
    #[arg(long)]
    pub once: bool,
    /// Seconds between rounds when running continuously.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// Transactions downloaded per request.
    #[arg(long, default_value_t = vouchdb::audit::DEFAULT_PAGE)]
    pub page: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics.
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Connections transactions are downloaded over in parallel.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
}

fn read(path: &PathBuf) -> Result<String, ClientError> {
    std::fs::read_to_string(path).map_err(|e| ClientError::State(format!("cannot read {}: {e}", path.display())))
}

fn trust(a: &ServerArgs) -> Result<Trust, ClientError> {
    Ok(match (&a.public_key, a.trust_on_first_use) {
        (Some(p), _) => Trust::Pinned(read(p)?),
        (None, true) => Trust::FirstUse,
        (None, false) => Trust::StateOnly,
    })
}

async fn connect(a: &ServerArgs) -> Result<VerifyingClient, ClientError> {
    let state = TrustedState::load(&a.state)?;
    VerifyingClient::connect(&a.server, state, trust(a)?).await
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        v => v.to_text(v.natural_type()).unwrap_or_else(|| format!("{v:?}")),
    }
}

fn checked(what: &str) {
    println!("ok  {what}");
}

fn checked_checkpoint(cp: &vouchdb::verify::checkpoint::Checkpoint) {
    checked(&format!("checkpoint of {} signed by the pinned key: tree size {}, root {}", cp.origin, cp.size, hex::encode(cp.root)));
}

pub async fn verify(cmd: VerifyCommand) -> Result<(), ClientError> {
    match cmd {
        VerifyCommand::Checkpoint { server } => {
            let before = TrustedState::load(&server.state)?;
            let mut c = connect(&server).await?;
            let cp = c.checkpoint().await?;
            let prev = before.get(c.origin()).map_or(0, |l| l.tree_size);
            checked_checkpoint(&cp);
            if prev == 0 {
                checked("no earlier checkpoint was trusted: this one is now the trusted state");
            } else {
                checked(&format!("consistent with the trusted tree of size {prev} (no rollback, no fork)"));
            }
            println!("trusted state {} now at tree size {}", server.state.display(), cp.size);
        }
        VerifyCommand::Row { server, table, keys, at, bundle_out } => {
            let key = keys.iter().map(|k| vouchdb::client::parse_key(k)).collect::<Result<Vec<_>, _>>()?;
            let mut c = connect(&server).await?;
            let row = c
                .verified_get_at(&table, at, &key)
                .await?
                .ok_or_else(|| ClientError::Server(format!("no row in {table} with that key (absence is not proven)")))?;
            let cp = &row.checkpoint;
            checked_checkpoint(cp);
            checked("checkpoint consistent with the trusted state, which now trusts it");
            checked(&format!(
                "tx {} (committed {}) is leaf {} of that tree (inclusion proof)",
                row.tx,
                format_timestamp(row.commit_time_us as i64),
                row.tx - 1
            ));
            checked(&format!("the entry is entry {} of tx {} (inclusion in the tx's entries root)", row.proof.entry_index, row.tx));
            checked(&format!("the entry is for table id {} and the requested primary key", row.table_id));
            println!("proven values (column order of the row as written):");
            for (i, v) in row.values.iter().enumerate() {
                println!("  {i}: {}", show(v));
            }
            if let Some(path) = bundle_out {
                let text = bundle::render(&row.proof, c.key())?;
                std::fs::write(&path, text).map_err(|e| ClientError::State(format!("cannot write {}: {e}", path.display())))?;
                println!("wrote offline proof bundle {}", path.display());
            }
        }
        VerifyCommand::Deref { server, name } => {
            let mut c = connect(&server).await?;
            let d = c
                .verified_deref(&name)
                .await?
                .ok_or_else(|| ClientError::Server(format!("no reference {name:?}, or no row where it points (absence is not proven)")))?;
            let row = &d.row;
            checked_checkpoint(&row.checkpoint);
            checked("checkpoint consistent with the trusted state, which now trusts it");
            checked(&format!("the reference {name:?} is an entry of tx {} (inclusion in the tx and in the tree)", d.reference_tx));
            checked(&format!(
                "the row is entry {} of tx {} (committed {}), included in the same tree",
                row.proof.entry_index,
                row.tx,
                format_timestamp(row.commit_time_us as i64)
            ));
            match d.pinned_tx {
                Some(p) => checked(&format!(
                    "the reference points at table id {} and this key, pinned at tx {p}: the row's version is from tx {} <= {p}",
                    row.table_id, row.tx
                )),
                None => checked(&format!("the reference points at table id {} and this key (its latest version)", row.table_id)),
            }
            println!("proven values (column order of the row as written):");
            for (i, v) in row.values.iter().enumerate() {
                println!("  {i}: {}", show(v));
            }
        }
        VerifyCommand::Tx { server, tx } => {
            let mut c = connect(&server).await?;
            let t = c.verified_tx(tx).await?;
            let cp = &t.checkpoint;
            checked_checkpoint(cp);
            checked("checkpoint consistent with the trusted state, which now trusts it");
            checked(&format!("tx {tx} is leaf {} of that tree (inclusion proof)", tx - 1));
            checked(&format!("its {} entries re-hash to its entries root {}", t.entries.len(), hex::encode(t.leaf.entries_root)));
            checked(&format!("its provenance record ({} bytes) re-hashes to {}", t.provenance.len(), hex::encode(t.leaf.provenance_hash)));
            println!("committed {}", format_timestamp(t.leaf.commit_time_us as i64));
            for (i, e) in t.entries.iter().enumerate() {
                let kind = if e.is_delete() { "delete" } else { "put" };
                println!("  entry {i}: {kind} table {} key {}", e.table, hex::encode(&e.key));
            }
            println!("provenance: {}", String::from_utf8_lossy(&t.provenance));
        }
        VerifyCommand::Bundle { file, public_key, origin } => {
            let key = vouchdb::verify::checkpoint::parse_public_key_pem(&read(&public_key)?).map_err(ClientError::Signature)?;
            let proof = bundle::parse(&read(&file)?, &key)?;
            let log = proof.checkpoint.body.lines().next().unwrap_or_default().to_string();
            if let Some(o) = origin.filter(|o| *o != log) {
                return Err(ClientError::Origin { expected: o, got: log });
            }
            let v = proof.verify(&key, &log, None)?;
            checked(&format!(
                "signed note of {log} verifies with the given key: tree size {}, root {}",
                proof.tree_size,
                hex::encode(proof.root)
            ));
            checked(&format!("tx {} is leaf {} of that tree (inclusion proof)", v.tx, v.tx - 1));
            checked(&format!("entry {} is in tx {} (inclusion in its entries root)", proof.entry_index, v.tx));
            println!(
                "entry: table id {}, key {}, {}",
                v.entry.table,
                hex::encode(&v.entry.key),
                if v.entry.is_delete() { "delete" } else { "put" }
            );
            if !v.entry.is_delete() && v.entry.table >= 1000 {
                if let Ok((_, values)) = vouchdb::sql::value::decode_row(&v.entry.value) {
                    for (i, val) in values.iter().enumerate() {
                        println!("  {i}: {}", show(val));
                    }
                }
            }
            println!("not checked offline: consistency with any other checkpoint you trust (compare tree sizes and roots, or ask the server for a consistency proof)");
        }
    }
    Ok(())
}

/// A progress bar on a terminal, structured logs otherwise; `what` names the work.
fn progress_reporter(what: &'static str) -> (indicatif::ProgressBar, Box<dyn FnMut(u64, u64) + Send>) {
    let bar = indicatif::ProgressBar::new(0);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!("{{spinner}} {what} {{pos}}/{{len}} tx [{{bar:40}}] {{per_sec}} eta {{eta}}"))
                .expect("a valid template")
                .progress_chars("=> "),
        );
        let b = bar.clone();
        (
            bar,
            Box::new(move |done, total| {
                b.set_length(total);
                b.set_position(done);
            }),
        )
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        let mut last = 0;
        (
            bar,
            Box::new(move |done, total| {
                if done == total || done >= last + 100_000 {
                    last = done;
                    tracing::info!(done, total, "{what} progress");
                }
            }),
        )
    }
}

/// `vouchdb audit --replay --data-dir DIR`.
async fn replay(a: &AuditArgs) -> Result<(), ClientError> {
    let (bar, progress) = progress_reporter("replay");
    let result = match (&a.data_dir, &a.server, &a.public_key) {
        (Some(data_dir), _, _) => {
            // The data directory's RocksDB store (as `vouchdb serve` lays it out); never create one.
            let dir = data_dir.join("store");
            if !dir.join("CURRENT").exists() {
                return Err(ClientError::State(format!("{} holds no vouchdb store (no {})", data_dir.display(), dir.display())));
            }
            let ledger = vouchdb::ledger::Ledger::open(&dir, vouchdb::ledger::Options::default())
                .map_err(|e| ClientError::State(format!("cannot open {}: {e}", dir.display())))?;
            let r = vouchdb::audit::replay::replay_store(&ledger, a.scratch_dir.as_deref(), progress).await;
            ledger.close();
            r
        }
        (None, Some(server), Some(key)) => {
            let client = vouchdb::client::connect(server).await?;
            vouchdb::audit::replay::replay_server(&client, &read(key)?, a.scratch_dir.as_deref(), progress).await
        }
        _ => return Err(ClientError::State("--replay needs --data-dir, or --server and --public-key".into())),
    };
    bar.finish_and_clear();
    let report = result.map_err(ClientError::State)?;
    let rate = report.txs as f64 / report.elapsed.as_secs_f64().max(1e-9);
    for (tx, reasons) in &report.violations {
        for r in reasons {
            println!("VIOLATION tx {tx}: {r}");
        }
    }
    tracing::info!(txs = report.txs, violations = report.violations.len(), tx_per_sec = rate as u64, "replay finished");
    if report.violations.is_empty() {
        println!(
            "ok  replayed tx 1..={} ({:.0} tx/s): every transaction is its recorded statements, run by its principal as the policies then in force allow; root {}",
            report.txs,
            rate,
            vouchdb::verify::to_hex(report.root)
        );
        Ok(())
    } else {
        Err(ClientError::State(format!("{} of {} transactions violate their records (listed above)", report.violations.len(), report.txs)))
    }
}

/// `vouchdb audit`: rounds until an integrity failure (exit non-zero) or, with --once, one round.
pub async fn audit(a: AuditArgs) -> Result<(), ClientError> {
    if a.replay {
        return replay(&a).await;
    }
    let (Some(server), Some(public_key)) = (&a.server, &a.public_key) else {
        return Err(ClientError::State("--server and --public-key are required (or --replay --data-dir)".into()));
    };
    let mut auditor = Auditor::new(&read(public_key)?, a.state.clone())?;
    auditor.page = a.page.clamp(1, vouchdb::audit::MAX_PAGE);
    if let Some(addr) = &a.metrics_listen {
        let bound =
            vouchdb::metrics::serve(addr, vouchdb::audit::registry(&auditor.metrics)).map_err(|e| ClientError::State(e.to_string()))?;
        tracing::info!(%bound, "serving auditor metrics at /metrics");
    }
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    loop {
        let bar = indicatif::ProgressBar::new(0);
        if tty {
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} audit {pos}/{len} tx [{bar:40}] {per_sec} eta {eta}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            let b = bar.clone();
            auditor.progress = Some(Box::new(move |done, total| {
                b.set_length(total);
                b.set_position(done);
            }));
        } else {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            auditor.progress = Some(Box::new(|done, total| {
                if done == total || done % 100_000 < vouchdb::audit::DEFAULT_PAGE {
                    tracing::info!(done, total, "audit progress");
                }
            }));
        }
        let mut readers = Vec::new();
        let mut result = Ok(());
        for _ in 0..a.connections.max(1) {
            match vouchdb::client::connect(server).await {
                Ok(c) => readers.push(std::sync::Arc::new(c)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let result = match result {
            Ok(()) => auditor.round(&readers).await,
            Err(e) => Err(e),
        };
        drop(readers);
        bar.finish_and_clear();
        match result {
            Ok(r) => {
                let n = r.to + 1 - r.from;
                let rate = n as f64 / r.elapsed.as_secs_f64().max(1e-9);
                tracing::info!(from = r.from, to = r.to, secs = r.elapsed.as_secs_f64(), tx_per_sec = rate as u64, "audit round passed");
                println!("ok  audited tx {}..={} ({n} transactions, {:.0} tx/s); tree size {} verified", r.from, r.to, rate, r.to);
            }
            Err(e) => {
                auditor.metrics.failures.inc();
                auditor.metrics.healthy.set(0);
                let integrity = e.is_integrity();
                if integrity || a.once {
                    tracing::error!(error = %e, "AUDIT FAILED");
                    return Err(e);
                }
                tracing::warn!(error = %e, "audit round could not run; retrying");
            }
        }
        if a.once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(a.interval.max(1))).await;
    }
}

#[derive(Args)]
pub struct GatewayArgs {
    /// The server to relay to (host:port of its PostgreSQL listener).
    #[arg(long, env = "VOUCHDB_UPSTREAM")]
    pub upstream: String,
    /// Where applications connect (PostgreSQL protocol, plain TCP).
    #[arg(long, env = "VOUCHDB_GATEWAY_LISTEN", default_value = "127.0.0.1:5434")]
    pub listen: String,
    /// The gateway's own connection to the server, for checkpoints and proofs: a libpq connection
    /// string or URL (host and port default to --upstream's); a password not in it comes from PGPASSWORD.
    #[arg(long, env = "VOUCHDB_GATEWAY_CONN")]
    pub conn: String,
    /// The log's public key (PEM), pinned on first start.
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// The gateway's trusted-state file (shared by all its clients).
    #[arg(long, env = "VOUCHDB_STATE", default_value = "vouchdb-gateway-trusted.json")]
    pub state: PathBuf,
    /// Serve the REST/JSON endpoint (checkpoint, verified_get, proofs) on this address.
    #[arg(long)]
    pub rest_listen: Option<String>,
    /// Set the client timestamp of every transaction a client commits through the gateway to the
    /// gateway's clock (`SET vouch.client_timestamp` before each query or extended-protocol batch;
    /// docs/PROVENANCE.md).
    #[arg(long, env = "VOUCHDB_GATEWAY_CLIENT_TIMESTAMPS")]
    pub client_timestamps: bool,
    /// Sign every transaction a client commits through the gateway (docs/PROVENANCE.md, "Client
    /// signatures"): `ROLE=PATH` signs that role's transactions with the P-256 private key (PEM) at
    /// PATH, a plain `PATH` those of every role not named. Repeatable. The server must know the public
    /// key (`ALTER ROLE … ADD SIGNING KEY`). Sets the client timestamp too.
    #[arg(long = "signing-key", value_name = "[ROLE=]PATH")]
    pub signing_keys: Vec<String>,
}

/// `vouchdb gateway`: relay PostgreSQL clients to the server, verifying reads and writes.
pub async fn gateway(a: GatewayArgs) -> Result<(), ClientError> {
    let trust = match &a.public_key {
        Some(p) => Trust::Pinned(read(p)?),
        None => Trust::StateOnly,
    };
    let (host, port) = a.upstream.rsplit_once(':').ok_or_else(|| ClientError::State("--upstream must be HOST:PORT".into()))?;
    let mut conn = a.conn.clone();
    if !conn.contains("host") && !conn.contains("://") {
        conn = format!("host={host} port={port} {conn}");
    }
    let keys = vouchdb::gateway::sign::Keys::load(&a.signing_keys).map_err(|e| ClientError::State(format!("--signing-key: {e}")))?;
    let verifier = VerifyingClient::connect(&conn, TrustedState::load(&a.state)?, trust).await?;
    tracing::info!(origin = verifier.origin(), "gateway trusts the log's checkpoint");
    let gw = std::sync::Arc::new(vouchdb::gateway::Gateway {
        upstream: a.upstream.clone(),
        conn,
        verifier: tokio::sync::Mutex::new(verifier),
        client_timestamps: a.client_timestamps,
        keys,
    });
    if let Some(addr) = &a.rest_listen {
        let bound = vouchdb::gateway::rest::serve(addr, gw.clone(), tokio::runtime::Handle::current())
            .map_err(|e| ClientError::State(e.to_string()))?;
        tracing::info!(%bound, "gateway REST endpoint");
    }
    let listener =
        tokio::net::TcpListener::bind(&a.listen).await.map_err(|e| ClientError::State(format!("listen on {}: {e}", a.listen)))?;
    tracing::info!(listen = %a.listen, upstream = %a.upstream, "gateway accepting PostgreSQL clients");
    vouchdb::gateway::serve(gw, listener).await.map_err(|e| ClientError::Connection(e.to_string()))
}
