//! Prometheus metrics over HTTP: `GET /metrics` in the text exposition format, served by a small
//! thread of its own so a slow scraper never touches the database's threads.

use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// Serve `registry` at `http://<addr>/metrics` until the process exits. Returns the bound address.
pub fn serve(addr: &str, registry: Arc<Mutex<Registry>>) -> std::io::Result<std::net::SocketAddr> {
    let server = tiny_http::Server::http(addr).map_err(|e| std::io::Error::other(format!("metrics listener on {addr}: {e}")))?;
    let bound = server.server_addr().to_ip().ok_or_else(|| std::io::Error::other("metrics listener has no IP address"))?;
    std::thread::Builder::new().name("metrics".into()).spawn(move || {
        for req in server.incoming_requests() {
            let resp = if req.url() == "/metrics" || req.url().starts_with("/metrics?") {
                let mut body = String::new();
                let encoded = registry.lock().map(|r| prometheus_client::encoding::text::encode(&mut body, &r).is_ok());
                if encoded.unwrap_or(false) {
                    let ct = tiny_http::Header::from_bytes("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                        .expect("a valid header");
                    tiny_http::Response::from_string(body).with_header(ct)
                } else {
                    tiny_http::Response::from_string("metrics unavailable\n").with_status_code(500)
                }
            } else {
                tiny_http::Response::from_string("not found: try /metrics\n").with_status_code(404)
            };
            let _ = req.respond(resp);
        }
    })?;
    Ok(bound)
}

/// The server's metrics, computed on each scrape: the log (tree size, group commits), RocksDB's
/// memory and files, the ledger's caches and the process's resident memory.
pub struct ServerCollector {
    pub ledger: Arc<crate::ledger::Ledger>,
}

impl std::fmt::Debug for ServerCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCollector").field("tree_size", &self.ledger.head().size).finish()
    }
}

/// Resident set size of this process (Linux `/proc/self/statm`), if it can be read.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

impl prometheus_client::collector::Collector for ServerCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::{counter::ConstCounter, gauge::ConstGauge};
        let gauge = |e: &mut prometheus_client::encoding::DescriptorEncoder, name: &str, help: &str, v: u64| {
            let g = ConstGauge::new(v as i64);
            g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
        };
        let counter = |e: &mut prometheus_client::encoding::DescriptorEncoder, name: &str, help: &str, v: u64| {
            let c = ConstCounter::new(v);
            c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
        };
        gauge(&mut encoder, "vouchdb_tree_size", "Transactions in the log (the Merkle tree's size)", self.ledger.head().size)?;
        if let Some(rss) = resident_bytes() {
            gauge(&mut encoder, "process_resident_memory_bytes", "Resident memory of the server process", rss)?;
        }
        // A storage error while reading properties leaves the RocksDB metrics out of this scrape.
        if let Ok(s) = self.ledger.stats() {
            counter(&mut encoder, "vouchdb_commit_batches", "Group commits written (one WriteBatch and one fsync each)", s.batches)?;
            counter(&mut encoder, "vouchdb_commit_batch_bytes", "Bytes of the group commits' WriteBatches", s.batch_bytes)?;
            counter(&mut encoder, "vouchdb_row_cache_hits", "Point reads answered from the row cache", s.row_cache_hits)?;
            counter(&mut encoder, "vouchdb_row_cache_misses", "Point reads the row cache could not answer", s.row_cache_misses)?;
            let g: [(&str, &str, u64); 12] = [
                (
                    "vouchdb_rocksdb_block_cache_bytes",
                    "RocksDB block cache in use (data, index and filter blocks, and the memtables charged to it)",
                    s.block_cache_bytes,
                ),
                ("vouchdb_rocksdb_block_cache_pinned_bytes", "RocksDB block cache pinned by readers", s.block_cache_pinned_bytes),
                ("vouchdb_rocksdb_memtable_bytes", "RocksDB memtables, active and not yet flushed, all column families", s.memtable_bytes),
                ("vouchdb_rocksdb_table_readers_bytes", "RocksDB table readers outside the block cache", s.table_readers_bytes),
                ("vouchdb_rocksdb_sst_bytes", "RocksDB SST files, all column families", s.sst_bytes),
                (
                    "vouchdb_rocksdb_pending_compaction_bytes",
                    "RocksDB's estimate of bytes compaction must still rewrite",
                    s.pending_compaction_bytes,
                ),
                ("vouchdb_rocksdb_l0_files", "RocksDB SST files in level 0, all column families", s.l0_files),
                ("vouchdb_node_cache_entries", "Merkle nodes cached in memory (capped)", s.node_cache_entries),
                ("vouchdb_row_cache_rows", "Rows whose newest version is in the row cache", s.row_cache_rows),
                ("vouchdb_row_cache_bytes", "Weight of the row cache (capped by --row-cache-mb)", s.row_cache_bytes),
                (
                    "vouchdb_proof_material_cache_entries",
                    "Entries whose proof material is cached in memory (capped)",
                    s.material_cache_entries,
                ),
                ("vouchdb_proof_material_cache_bytes", "Weight of the cached proof material (capped at 32 MiB)", s.material_cache_bytes),
            ];
            for (name, help, v) in g {
                gauge(&mut encoder, name, help, v)?;
            }
        }
        Ok(())
    }
}
