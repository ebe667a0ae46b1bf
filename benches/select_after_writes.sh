#!/usr/bin/env bash
# PK SELECT before and after a burst of INSERTs, on one vouchdb server (no PostgreSQL): what the
# side-by-side report's ordering does to the SELECT figures (report.sh runs its INSERTs first, and
# they push the `sel` rows out of the memtables into SST files). Prints tps of benches/pgbench/select.sql
# at CLIENTS before the inserts, then the RocksDB shape, then three times after, each with the CPU time
# per transaction of the server and of pgbench; then verified_get.sql twice (the proof functions read
# Merkle nodes that the inserts pushed out of the memtables).
# Usage: benches/select_after_writes.sh [seconds per run, default 10] [clients, default 16]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CLIENTS=${2:-16}
source benches/lib.sh # sets CARGO_TARGET_DIR
cargo build --release --quiet --bin vouchdb
WORK=$(mktemp -d /tmp/vouchdb-saw.XXXXXX)
VOUCHDB_ADMIN_PASSWORD=bench VOUCHDB_LOG=warn "$CARGO_TARGET_DIR/release/vouchdb" serve --listen 127.0.0.1:55745 \
  --metrics-listen 127.0.0.1:55746 --data-dir "$WORK/data" 2>"$WORK/vouchdb.log" &
VPID=$!
trap 'kill "$VPID" 2>/dev/null || true; wait "$VPID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/55745) 2>/dev/null && break; sleep 0.1; done
URL="host=127.0.0.1 port=55745 user=admin password=bench dbname=vouchdb"
shape() { curl -s http://127.0.0.1:55746/metrics | awk '$1 ~ /^vouchdb_rocksdb_(l0_files|pending_compaction_bytes|memtable_bytes|sst_bytes)$/ { printf "%s=%s ", $1, $2 } END { print "" }'; }
HZ=$(getconf CLK_TCK)
# tps, and the CPU µs per transaction of the server (all its threads, RocksDB's included) and of pgbench.
select_run() { # label [script, default select.sql]
  local s0 s1 out
  s0=$(awk '{ print $14 + $15 }' "/proc/$VPID/stat")
  out=$(/usr/bin/time -f "client-cpu %U %S" pgbench "$URL" -n -M prepared -f "benches/pgbench/${2:-select.sql}" -c "$CLIENTS" -j 2 -T "$SECS" 2>&1)
  s1=$(awk '{ print $14 + $15 }' "/proc/$VPID/stat")
  echo "$out" | awk -v script="${2:-select.sql}" -v label="$1" -v ticks=$((s1 - s0)) -v hz="$HZ" '
    /^tps = / { tps = $3 } /^number of transactions actually processed/ { n = $NF } /^client-cpu/ { c = $2 + $3 }
    END { printf "%s at %s clients, %s: %.0f tps, server %.1f µs/tx, pgbench %.1f µs/tx\n", script, ENVIRON["CLIENTS"], label, tps, ticks / hz * 1e6 / n, c * 1e6 / n }'
}
export CLIENTS
fill_sel "$URL"
select_run "fresh store"
for c in 1 4 16 32; do echo "insert at $c clients: $(tps "$URL" insert.sql "$c") tps"; done
shape
for _ in 1 2 3; do select_run "after the inserts"; done
shape
for _ in 1 2; do select_run "after the inserts" verified_get.sql; done
