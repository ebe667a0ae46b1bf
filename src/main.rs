//! The `vouchdb` binary: one program, several subcommands.

use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use vouchdb::ledger::{Entry, Ledger, NewTx, Options};
use vouchdb::signing::{self, CheckpointSigner};

mod cli;

/// mimalloc for every Rust allocation: the server's answers (rows, text rendering, proof material)
/// allocate and free many small buffers per request, and under glibc's malloc that was ~20 % of the
/// server's CPU in the audit profile (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "vouchdb", version, about = "A tamper-evident SQL database over an RFC 6962 Merkle log", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the data directory to PostgreSQL clients until SIGINT/SIGTERM (then finish queued commits).
    Serve(ServeArgs),
    /// Write a new P-256 signing key (PKCS#8 PEM, readable by openssl) and print its public key.
    Keygen {
        /// Where to write the private key; an existing file is never overwritten.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Print the signed checkpoint of a data directory (the server must not be running).
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
        /// Also write body.txt, sig.der, pub.pem and note.txt here, for `openssl dgst -verify`.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Re-derive every leaf, entries root and the tree root from the log and compare with what is stored.
    Check {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Append synthetic one-entry transactions from concurrent committers (bulk load, benchmarks, crash tests).
    Load(LoadArgs),
    /// Verify what a server hands out against a pinned key and a trusted-state file (exit 0 only when
    /// everything verified): a checkpoint, a row, a transaction, or an offline proof bundle.
    #[command(subcommand)]
    Verify(cli::VerifyCommand),
    /// Audit a server continuously (or --once): verify every new checkpoint and re-hash every new
    /// transaction against the signed tree; exit non-zero on any integrity failure. With --replay,
    /// re-execute every recorded transaction from genesis and check its entries, policies and
    /// signatures (docs/PROVENANCE.md).
    Audit(cli::AuditArgs),
    /// Run the verifying gateway: a PostgreSQL relay (ideally on another host) that checks every
    /// verified_get result and every commit against its trusted state, plus an optional REST endpoint.
    Gateway(cli::GatewayArgs),
}

#[derive(Args, Clone)]
struct StoreArgs {
    /// Data directory (RocksDB store and default signing key).
    #[arg(long, env = "VOUCHDB_DATA_DIR", default_value = "./vouchdb-data")]
    data_dir: PathBuf,
    /// PEM signing key (SEC1 or PKCS#8, P-256). Default: <data-dir>/signing.key, created on first start.
    #[arg(long, env = "VOUCHDB_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
    /// Checkpoint origin line. Default: vouchdb/<first 8 bytes of SHA-256 of the public key, hex>.
    #[arg(long, env = "VOUCHDB_ORIGIN")]
    origin: Option<String>,
    /// Refuse commits (SQLSTATE 53100, nothing written; reads go on) while the data directory's
    /// filesystem has less than this many MiB free, so the store never runs out of space mid-write;
    /// commits resume once space is freed. 0: no reserve.
    #[arg(long, env = "VOUCHDB_MIN_FREE_SPACE_MB", default_value_t = vouchdb::ledger::DEFAULT_MIN_FREE_BYTES >> 20)]
    min_free_space_mb: u64,
    /// MiB of memory for RocksDB's block cache, which also holds its write buffers (memtables, at most
    /// a quarter of it, up to 64 MiB): with the ledger's capped caches, what bounds the server's
    /// memory as its data grows (docs/PERFORMANCE.md, "Soak").
    #[arg(long, env = "VOUCHDB_CACHE_MB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..))]
    cache_mb: u64,
    /// MiB of memory for the row cache: the newest version of recently read rows, so a primary-key
    /// read at the head needs no RocksDB lookup (every commit forgets the rows it writes before it is
    /// visible; ARCHITECTURE.md, "row cache"). 0: off.
    #[arg(long, env = "VOUCHDB_ROW_CACHE_MB", default_value_t = vouchdb::ledger::DEFAULT_ROW_CACHE_BYTES >> 20)]
    row_cache_mb: u64,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to accept PostgreSQL clients on.
    #[arg(long, env = "VOUCHDB_LISTEN", default_value = "127.0.0.1:5433")]
    listen: String,
    /// PEM certificate chain for TLS (with --tls-key); clients then connect with sslmode=require.
    #[arg(long, env = "VOUCHDB_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "VOUCHDB_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: a PEM bundle of the CAs that sign client certificates. Every connection must then
    /// use TLS and present a valid certificate (unexpired, chaining to one of these CAs), whose
    /// identity (--tls-client-identity) names the role it logs in as, with no password (PostgreSQL's
    /// `cert` method). Needs --tls-cert.
    #[arg(long, env = "VOUCHDB_TLS_CLIENT_CA", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Which part of a client certificate names its role: `cn` (subject common name), or a
    /// subjectAltName: `dns`, `email`, `uri`.
    #[arg(long, env = "VOUCHDB_TLS_CLIENT_IDENTITY", default_value = "cn", value_parser = ["cn", "dns", "email", "uri"], requires = "tls_client_ca")]
    tls_client_identity: String,
    /// A file mapping certificate identities to roles, one `IDENTITY ROLE` per line (# comments;
    /// quote an identity with spaces). Without it, the identity must be the role's name.
    #[arg(long, env = "VOUCHDB_TLS_CLIENT_MAP", requires = "tls_client_ca")]
    tls_client_map: Option<PathBuf>,
    /// Seconds a session may leave a transaction open while its client sends nothing; then it is
    /// terminated (FATAL 25P03) and its row locks released. `SET idle_in_transaction_session_timeout`
    /// overrides it per session. 0: never.
    #[arg(long, env = "VOUCHDB_IDLE_IN_TRANSACTION_TIMEOUT", default_value_t = 300)]
    idle_in_transaction_timeout: u64,
    /// Seconds a client may stall in the middle of a message (some bytes of it sent, no more) before it
    /// is disconnected (FATAL 08P01). 0: never.
    #[arg(long, env = "VOUCHDB_CLIENT_MESSAGE_TIMEOUT", default_value_t = 60)]
    client_message_timeout: u64,
    /// How clients authenticate: `scram` (SCRAM-SHA-256) or `password` (a cleartext password, asked
    /// for on TLS connections only and checked against the stored SCRAM verifier; connections without
    /// TLS still use SCRAM-SHA-256).
    #[arg(long, env = "VOUCHDB_AUTH", default_value = "scram", value_parser = ["scram", "password"])]
    auth: String,
    /// Password for the `admin` role created on first start (default: generated and printed once).
    #[arg(long, env = "VOUCHDB_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
    /// Microseconds a connection thread keeps polling for the next request after an answer before
    /// it sleeps (0: sleep at once). Cuts the latency of a waking thread; costs CPU while it polls.
    #[arg(long, env = "VOUCHDB_SPIN_US", default_value_t = 50)]
    spin_us: u64,
    /// Serve Prometheus metrics at http://ADDR/metrics (tree size, group commits, RocksDB memory and
    /// files, the ledger's caches, resident memory; docs/PERFORMANCE.md). Off unless given.
    #[arg(long, env = "VOUCHDB_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Seconds a client timestamp (`SET vouch.client_timestamp`) may differ from the server's clock;
    /// a commit carrying one further off is refused (SQLSTATE 22023).
    #[arg(long, env = "VOUCHDB_MAX_CLIENT_SKEW", default_value_t = 300)]
    max_client_skew: u64,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Concurrent committers.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Transactions to append in total.
    #[arg(long, default_value_t = 100_000)]
    txs: u64,
    /// Bytes of value in each entry.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Print "ack <tx>" on stdout for every durable transaction, as soon as it is acknowledged.
    #[arg(long)]
    print_acks: bool,
    /// Table id the entries are written under (raw bytes, not SQL rows: use an id no SQL table has,
    /// e.g. 999, to grow a SQL server's log for benchmarks).
    #[arg(long, default_value_t = 1)]
    table: u32,
}

fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join("store")
}

fn signer(args: &StoreArgs) -> vouchdb::Result<CheckpointSigner> {
    let (path, key) = match &args.signing_key {
        Some(p) => (p.clone(), signing::load_key(p)?),
        None => {
            let p = args.data_dir.join("signing.key");
            if p.exists() {
                (p.clone(), signing::load_key(&p)?)
            } else {
                std::fs::create_dir_all(&args.data_dir).map_err(|e| vouchdb::Error::Io { path: args.data_dir.clone(), source: e })?;
                let key = signing::generate_key(&p)?;
                tracing::warn!(path = %p.display(), "NO SIGNING KEY GIVEN: created a new checkpoint signing key; back it up and publish its public key");
                eprintln!("*** vouchdb created a new checkpoint signing key at {} ***", p.display());
                eprintln!("*** Verifiers must pin this public key:\n{}", signing::public_key_pem(key.verifying_key()));
                (p, key)
            }
        }
    };
    let origin = args.origin.clone().unwrap_or_else(|| CheckpointSigner::default_origin(&key));
    CheckpointSigner::new(key, origin, path)
}

fn open(args: &StoreArgs) -> vouchdb::Result<Ledger> {
    let cache = (args.cache_mb as usize) << 20;
    let options = Options {
        min_free_bytes: args.min_free_space_mb << 20,
        block_cache_bytes: cache,
        memtable_bytes: (cache / 4).min(64 << 20),
        row_cache_bytes: args.row_cache_mb << 20,
        ..Options::default()
    };
    Ledger::open(store_path(&args.data_dir), options)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VOUCHDB_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Keygen { out } => keygen(&out),
        Command::Checkpoint { store, out_dir } => checkpoint(&store, out_dir.as_deref()),
        Command::Check { store } => check(&store),
        Command::Load(a) => load(a),
        Command::Verify(c) => client_command(cli::verify(c)),
        Command::Audit(a) => client_command(cli::audit(a)),
        Command::Gateway(a) => client_command(cli::gateway(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vouchdb: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run a client-side subcommand on a small runtime; its errors already say what failed.
fn client_command(f: impl std::future::Future<Output = Result<(), vouchdb::client::ClientError>>) -> vouchdb::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| vouchdb::Error::InvalidInput(format!("cannot start a runtime: {e}")))?;
    rt.block_on(f).map_err(|e| {
        let lead = if e.is_integrity() { "VERIFICATION FAILED: " } else { "" };
        vouchdb::Error::Verification(format!("{lead}{e}"))
    })
}

fn serve(args: ServeArgs) -> vouchdb::Result<()> {
    let signer = Arc::new(signer(&args.store)?);
    let ledger = Arc::new(open(&args.store)?);
    let cp = signer.sign(&ledger.head());
    tracing::info!(data_dir = %args.store.data_dir.display(), tree_size = cp.checkpoint.size, origin = signer.origin(), "ledger open and consistent");
    let sql_err = |e: vouchdb::sql::SqlError| vouchdb::Error::InvalidInput(e.to_string());
    let engine = Arc::new(vouchdb::sql::Engine::new(ledger.clone(), signer).map_err(sql_err)?);
    engine.set_client_skew(std::time::Duration::from_secs(args.max_client_skew));
    let io = |e| vouchdb::Error::Io { path: args.store.data_dir.clone(), source: e };
    let rt = tokio::runtime::Runtime::new().map_err(io)?;
    rt.block_on(async {
        if engine.catalog().users.is_empty() {
            let (password, generated) = match &args.admin_password {
                Some(p) => (p.clone(), false),
                None => {
                    use rand_core::RngCore;
                    let mut b = [0u8; 15];
                    rand_core::OsRng.fill_bytes(&mut b);
                    (base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b), true)
                }
            };
            engine.set_user_password("admin", &password, true, "vouchdb").await.map_err(sql_err)?;
            if generated {
                eprintln!("*** created role \"admin\" with password: {password}");
                eprintln!("*** (shown once; set VOUCHDB_ADMIN_PASSWORD on first start to choose it)");
            } else {
                tracing::info!("created role \"admin\" with the password from VOUCHDB_ADMIN_PASSWORD");
            }
        }
        if let Some(m) = &args.metrics_listen {
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register_collector(Box::new(vouchdb::metrics::ServerCollector { ledger: ledger.clone() }));
            let bound = vouchdb::metrics::serve(m, Arc::new(std::sync::Mutex::new(registry))).map_err(io)?;
            tracing::info!(%bound, "serving Prometheus metrics at /metrics");
        }
        let addr = vouchdb::server::parse_listen(&args.listen).map_err(vouchdb::Error::InvalidInput)?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(io)?;
        tracing::info!(%addr, "accepting PostgreSQL connections");
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => futures::future::pending::<()>().await } } => {}
            }
        };
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => {
                Some(vouchdb::server::tls_acceptor(c, k, args.tls_client_ca.as_deref()).map_err(vouchdb::Error::InvalidInput)?)
            }
            _ => None,
        };
        let client_certs = match &args.tls_client_ca {
            Some(_) => Some(vouchdb::server::certs::CertAuth {
                identity: args.tls_client_identity.parse().map_err(vouchdb::Error::InvalidInput)?,
                map: match &args.tls_client_map {
                    Some(p) => Some(vouchdb::server::certs::CertAuth::read_map(p).map_err(vouchdb::Error::InvalidInput)?),
                    None => None,
                },
            }),
            None => None,
        };
        let auth: vouchdb::server::AuthMethod = args.auth.parse().map_err(vouchdb::Error::InvalidInput)?;
        if auth == vouchdb::server::AuthMethod::Password && tls.is_none() {
            tracing::warn!(
                "--auth password without --tls-cert: every connection uses SCRAM-SHA-256 (cleartext passwords are accepted over TLS only)"
            );
        }
        let spin = std::time::Duration::from_micros(args.spin_us);
        let limits = vouchdb::server::Limits {
            idle_in_transaction: std::time::Duration::from_secs(args.idle_in_transaction_timeout),
            message: std::time::Duration::from_secs(args.client_message_timeout),
        };
        let config = vouchdb::server::ServeConfig { tls, auth, client_certs, limits, spin };
        vouchdb::server::serve(engine.clone(), listener, config, shutdown).await.map_err(io)
    })?;
    tracing::info!("shutting down: finishing queued commits");
    ledger.close();
    Ok(())
}

fn keygen(out: &Path) -> vouchdb::Result<()> {
    let key = signing::generate_key(out)?;
    eprintln!("wrote P-256 signing key to {}", out.display());
    print!("{}", signing::public_key_pem(key.verifying_key()));
    Ok(())
}

fn checkpoint(store: &StoreArgs, out_dir: Option<&Path>) -> vouchdb::Result<()> {
    let signer = signer(store)?;
    let ledger = open(store)?;
    let cp = signer.sign(&ledger.head());
    println!("tree_size: {}", cp.checkpoint.size);
    println!("root_hash: {}", hex::encode(cp.checkpoint.root));
    println!("signature: {}", cp.signature_base64());
    println!("public_key:\n{}", cp.public_key_pem.trim_end());
    println!("signed_note:\n{}", cp.note.trim_end());
    if let Some(dir) = out_dir {
        let io = |e| vouchdb::Error::Io { path: dir.to_path_buf(), source: e };
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::write(dir.join("body.txt"), &cp.body).map_err(io)?;
        std::fs::write(dir.join("sig.der"), &cp.signature_der).map_err(io)?;
        std::fs::write(dir.join("pub.pem"), &cp.public_key_pem).map_err(io)?;
        std::fs::write(dir.join("note.txt"), &cp.note).map_err(io)?;
        eprintln!("verify with: openssl dgst -sha256 -verify {0}/pub.pem -signature {0}/sig.der {0}/body.txt", dir.display());
    }
    Ok(())
}

fn check(store: &StoreArgs) -> vouchdb::Result<()> {
    let ledger = open(store)?;
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = ledger.scan(|done, total| {
        if tty && (done % 10_000 == 0 || done == total) {
            eprint!("\rchecked {done}/{total} transactions ({:.0}%)", 100.0 * done as f64 / total.max(1) as f64);
        }
    })?;
    if tty {
        eprintln!();
    }
    println!(
        "ok: {} transactions, every leaf, entries root and provenance hash re-derived; root {}",
        report.size,
        hex::encode(report.root)
    );
    Ok(())
}

fn load(args: LoadArgs) -> vouchdb::Result<()> {
    let ledger = Arc::new(open(&args.store)?);
    let start = std::time::Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let threads: Vec<_> = (0..args.clients.max(1))
        .map(|c| {
            let (ledger, next, stdout) = (Arc::clone(&ledger), Arc::clone(&next), Arc::clone(&stdout));
            let (total, value_bytes, print, table) = (args.txs, args.value_bytes, args.print_acks, args.table);
            std::thread::spawn(move || -> vouchdb::Result<()> {
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= total {
                        return Ok(());
                    }
                    let key = format!("c{c}-{n}").into_bytes();
                    let tx = NewTx {
                        entries: vec![Entry::put(table, key, vec![b'v'; value_bytes])],
                        provenance: n.to_be_bytes().to_vec(),
                        client_time_us: 0,
                        ..Default::default()
                    };
                    let r = ledger.append_blocking(tx)?;
                    if print {
                        let mut out = stdout.lock().expect("stdout lock");
                        let _ = writeln!(out, "ack {}", r.tx);
                        let _ = out.flush();
                    } else if tty && n % 20_000 == 0 {
                        eprint!("\rappended {n}/{total}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("load threads do not panic")?;
    }
    let secs = start.elapsed().as_secs_f64();
    if tty {
        eprintln!();
    }
    eprintln!("appended {} transactions in {secs:.2}s: {:.0} tx/s, tree size {}", args.txs, args.txs as f64 / secs, ledger.head().size);
    ledger.close();
    Ok(())
}
