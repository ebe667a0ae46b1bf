#!/usr/bin/env bash
# PK SELECT (benches/pgbench/select.sql, 16 clients) of rows held in RocksDB's memtables and of the same
# rows after a restart, which flushes them into an SST file: the row cache's case. For each vouchdb
# binary and server arguments given: a fresh server, the 10,000-row `sel` table, two runs; a restart on
# the same data directory, two runs. Prints tps and the server's CPU µs per transaction.
# Usage: benches/select_from_sst.sh [seconds, default 10] 'label|/path/to/vouchdb|server args' ...
# Example: benches/select_from_sst.sh 10 "cache|target/release/vouchdb|" "off|target/release/vouchdb|--row-cache-mb 0"
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
shift
source benches/lib.sh
PORT=55747
URL="host=127.0.0.1 port=$PORT user=admin password=bench dbname=vouchdb"
HZ=$(getconf CLK_TCK)
WORK=$(mktemp -d /tmp/vouchdb-sst.XXXXXX)
VPID=
trap 'kill "$VPID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
start() { # bin args
  local bin=$1
  shift
  VOUCHDB_ADMIN_PASSWORD=bench VOUCHDB_LOG=warn "$bin" serve --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" "$@" 2>>"$WORK/vouchdb.log" &
  VPID=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
}
stop() {
  kill "$VPID"
  wait "$VPID" || true
}
run() { # label
  local s0 s1 out
  s0=$(awk '{ print $14 + $15 }' "/proc/$VPID/stat")
  out=$(pgbench "$URL" -n -M prepared -f benches/pgbench/select.sql -c 16 -j 2 -T "$SECS" 2>&1)
  s1=$(awk '{ print $14 + $15 }' "/proc/$VPID/stat")
  echo "$out" | awk -v label="$1" -v ticks=$((s1 - s0)) -v hz="$HZ" '
    /^tps = / { tps = $3 } /^number of transactions actually processed/ { n = $NF }
    END { printf "%s: %.0f tps, server %.1f µs/tx\n", label, tps, ticks / hz * 1e6 / n }'
}
for v in "$@"; do
  IFS='|' read -r label bin args <<<"$v"
  rm -rf "$WORK/data"
  # shellcheck disable=SC2086 # args is a list of words
  start "$bin" $args
  fill_sel "$URL"
  run "$label, rows in memtables"
  run "$label, rows in memtables"
  stop
  # shellcheck disable=SC2086
  start "$bin" $args
  run "$label, after a restart (rows in an SST file)"
  run "$label, after a restart (rows in an SST file)"
  stop
done
