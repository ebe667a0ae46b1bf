#!/usr/bin/env bash
# Soak test (issue 7): 64 connections mixing single-row INSERTs, primary-key reads, secondary-index
# range reads and verified_get against one vouchdb server for a long run (default 10 minutes), with
# throughput, p50/p99 latency per 10-second window and the server's memory sampled every 10 s from its
# Prometheus metrics (resident memory, RocksDB block cache, memtables, SST files), so that a leak or a
# slowdown over time shows, and where the memory is. Not a timed test: run it by hand.
# Usage: benches/soak.sh [seconds, default 600] [clients, default 64] [server flags, e.g. --cache-mb 64]
# Mix (pgbench weights): write 1, pk 4, range 2, verified_get 1 (benches/soak/*.sql).
# Every statement does the same work for the whole run, so that a slowdown is the server's: the reads
# go to the 100,000 rows loaded first (a range read finds 11 of them), the writes add rows whose index
# values lie above that range (so the secondary index, the pk index and the log all grow under the
# reads, but a range read's result does not; when new rows fell inside it, its result grew fivefold
# over ten minutes and so did its cost).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-600}
CLIENTS=${2:-64}
SERVER_FLAGS=${3:-}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vouchdb-target}"
cargo build --release --quiet --bin vouchdb
BIN="$CARGO_TARGET_DIR/release/vouchdb"
WORK=$(mktemp -d /tmp/vouchdb-soak.XXXXXX)
PORT=55633
MPORT=55634
cleanup() { kill "$VPID" "${SAMPLER:-}" 2>/dev/null || true; wait "$VPID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VOUCHDB_ADMIN_PASSWORD=soak VOUCHDB_LOG=warn "$BIN" serve --listen 127.0.0.1:$PORT --metrics-listen 127.0.0.1:$MPORT --data-dir "$WORK/data" $SERVER_FLAGS 2>"$WORK/vouchdb.log" &
VPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
URL="host=127.0.0.1 port=$PORT user=admin password=soak dbname=vouchdb"
psql "$URL" -X -q -c "CREATE TABLE soak (id bigint PRIMARY KEY, k int, v text); CREATE INDEX soak_k ON soak (k);
  INSERT INTO soak SELECT g, g, 'row ' || g FROM generate_series(1, 100000) g;"
# The server's memory every 10 s: time, then RSS, block cache, memtables and SST bytes, then the
# bytes compaction still owes and the level-0 SST files (reads slow down when those pile up), then
# vouchdb's own capped caches: row cache bytes, proof material bytes, Merkle node cache entries, and
# RocksDB's table readers outside the block cache (these grow with the SST files).
( while kill -0 "$VPID" 2>/dev/null; do
    curl -s "http://127.0.0.1:$MPORT/metrics" | awk -v t="$(date +%s)" '
      $1 == "process_resident_memory_bytes" { r = $2 } $1 == "vouchdb_rocksdb_block_cache_bytes" { c = $2 }
      $1 == "vouchdb_rocksdb_memtable_bytes" { m = $2 } $1 == "vouchdb_rocksdb_sst_bytes" { s = $2 }
      $1 == "vouchdb_rocksdb_pending_compaction_bytes" { p = $2 } $1 == "vouchdb_rocksdb_l0_files" { l = $2 }
      $1 == "vouchdb_row_cache_bytes" { rc = $2 } $1 == "vouchdb_proof_material_cache_bytes" { mc = $2 }
      $1 == "vouchdb_node_cache_entries" { nc = $2 } $1 == "vouchdb_rocksdb_table_readers_bytes" { tr = $2 }
      END { if (r != "") print t, r, c, m, s, p + 0, l + 0, rc + 0, mc + 0, nc + 0, tr + 0 }'; sleep 10
  done ) >"$WORK/rss.txt" &
SAMPLER=$!
(cd "$WORK" && pgbench "$URL" -n -M prepared -c "$CLIENTS" -j 2 -T "$SECS" \
  -f "$OLDPWD/benches/soak/write.sql@1" -f "$OLDPWD/benches/soak/pk.sql@4" \
  -f "$OLDPWD/benches/soak/range.sql@2" -f "$OLDPWD/benches/soak/verified_get.sql@1" \
  --log --log-prefix=soak >"$WORK/pgbench.out" 2>&1) || { cat "$WORK/pgbench.out"; exit 1; }
kill "$SAMPLER" 2>/dev/null || true
python3 - "$WORK" "$SECS" "$CLIENTS" <<'PY'
import glob, sys, collections
work, secs, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = ["write", "pk", "range", "verified_get"]
# pgbench --log lines: client_id transaction_no time_us script_no time_epoch time_us_fraction
lat = collections.defaultdict(list)       # window -> latencies (ms)
by_window_script = collections.defaultdict(list)  # (window, script) -> latencies (ms)
per_script = collections.defaultdict(list)
failed = 0
start = None
rows = []
for f in glob.glob(f"{work}/soak.*"):
    for line in open(f):
        p = line.split()
        if len(p) < 6:
            continue
        if p[2] == "failed" or p[2] == "skipped":
            failed += 1
            continue
        t = int(p[4]) + int(p[5]) / 1e6
        rows.append((t, int(p[2]) / 1000.0, int(p[3])))
rows.sort()
start = rows[0][0] - rows[0][1] / 1000.0
for t, ms, script in rows:
    lat[int((t - start) // 10)].append(ms)
    by_window_script[(int((t - start) // 10), script)].append(ms)
    per_script[script].append(ms)
def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]
mem = [tuple(map(int, l.split())) for l in open(f"{work}/rss.txt") if len(l.split()) == 11]
MiB = 2**20
def mem_at(window):
    """RSS, block cache, memtables, SST files and compaction owed (MiB), L0 files, then row cache and
    proof material (MiB), node cache entries and table readers (MiB), at the end of a window."""
    t = start + window * 10 + 10
    b = min(mem, key=lambda r: abs(r[0] - t)) if mem else (0,) * 11
    return [b[1] / MiB, b[2] / MiB, b[3] / MiB, b[4] / MiB, b[5] / MiB, b[6], b[7] / MiB, b[8] / MiB, b[9], b[10] / MiB]
def rss_at(window):
    return mem_at(window)[0]
print(f"## Soak: {clients} connections, {secs} s, mix write 1 : pk 4 : range 2 : verified_get 1\n")
print("| window (s) | tps | p50 ms | p99 ms | server RSS MiB | block cache MiB (memtables in it) | RSS outside the block cache MiB | row cache MiB | proof material MiB | node cache entries | table readers MiB | RSS outside all caches MiB | SST MiB |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
windows = sorted(w for w in lat if (w + 1) * 10 <= secs)
# A cached Merkle node weighs about 80 bytes: its 16-byte id, its 32-byte hash and the cache's slot.
NODE_BYTES = 80
def rest_at(w):
    r, c, _, _, _, _, rc, mc, nc, tr = mem_at(w)
    return r - c - rc - mc - nc * NODE_BYTES / MiB - tr
for w in windows:
    v = lat[w]
    r, c, m, s, _, _, rc, mc, nc, tr = mem_at(w)
    rest = rest_at(w)
    print(f"| {w*10}–{w*10+10} | {len(v)/10:,.0f} | {pct(v, .5):.2f} | {pct(v, .99):.2f} | {r:,.0f} | {c:,.0f} ({m:,.0f}) | {r - c:,.0f} "
          f"| {rc:,.1f} | {mc:,.1f} | {nc:,.0f} | {tr:,.1f} | {rest:,.0f} | {s:,.0f} |")
# Which statement slows down: each one's rate and mean latency in every sixth window, with the
# compaction backlog at that time.
print("\n| window (s) | " + " | ".join(f"{n} tps / mean ms" for n in names) + " | compaction owed MiB | L0 files |")
print("|---|" + "---|" * len(names) + "---|---|")
for w in windows[::6] + ([windows[-1]] if windows and (len(windows) - 1) % 6 else []):
    cells = []
    for i in range(len(names)):
        v = by_window_script.get((w, i), [])
        cells.append(f"{len(v)/10:,.0f} / {sum(v)/len(v):.2f}" if v else "0 / –")
    owed, l0 = mem_at(w)[4:6]
    print(f"| {w*10}–{w*10+10} | " + " | ".join(cells) + f" | {owed:,.0f} | {l0:.0f} |")
print("\n| statement | transactions | p50 ms | p99 ms |")
print("|---|---|---|---|")
for s, v in sorted(per_script.items()):
    print(f"| {names[s] if s < len(names) else s} | {len(v):,} | {pct(v, .5):.2f} | {pct(v, .99):.2f} |")
if len(windows) >= 3:
    first, last = rss_at(windows[1]), rss_at(windows[-1])
    print(f"\nRSS after the first window {first:,.0f} MiB, at the end {last:,.0f} MiB ({(last/first - 1)*100:+.1f} %); "
          f"tps first window {len(lat[windows[0]])/10:,.0f}, last {len(lat[windows[-1]])/10:,.0f}; failed transactions: {failed}")
    half = windows[len(windows) // 2]
    print(f"RSS outside all caches: after the first window {rest_at(windows[1]):,.0f} MiB, at {half*10+10} s {rest_at(half):,.0f} MiB, "
          f"at the end {rest_at(windows[-1]):,.0f} MiB")
PY
