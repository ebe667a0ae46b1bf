#!/usr/bin/env bash
# The replay audit's throughput (issue 6), one run on this machine: a log of SQL transactions written
# through pgbench (the INSERT script of benches/pgbench.sh: one row with a primary key and a secondary
# index per transaction, 16 clients, -M prepared, so every transaction has bound parameters), then
# `vouchdb audit --replay` over the stopped server's data directory.
# Usage: benches/replay.sh [seconds of pgbench load, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vouchdb-target}"
cargo build --release --quiet --bin vouchdb
BIN="$CARGO_TARGET_DIR/release/vouchdb"
WORK=$(mktemp -d /tmp/vouchdb-replay-bench.XXXXXX)
PORT=55447
cleanup() { kill "$VPID" 2>/dev/null || true; wait "$VPID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
VOUCHDB_ADMIN_PASSWORD=bench VOUCHDB_LOG=warn "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$WORK/data" 2>>"$WORK/vouchdb.log" &
VPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
URL="host=127.0.0.1 port=$PORT user=admin password=bench dbname=vouchdb"
psql "$URL" -X -q -c "CREATE TABLE bench (id bigint PRIMARY KEY, k int, v text); CREATE INDEX bench_k ON bench (k)"
pgbench "$URL" -n -M prepared -f benches/pgbench/insert.sql -c 16 -j 2 -T "$SECS" 2>&1 | grep -E "^tps|processed"
kill "$VPID"; wait "$VPID" 2>/dev/null || true
echo "## vouchdb audit --replay"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, max RSS %M KB" "$BIN" audit --replay --data-dir "$WORK/data" 2>&1 | grep -E "^ok|VIOLATION|wall|replay finished"
