#!/usr/bin/env bash
# Interleaved A/B of vouchdb binaries on one pgbench workload, for a machine whose load changes from
# minute to minute: each round runs every variant once, in turn, on a fresh data directory, and prints
# its tps and, per server thread, the CPU time it ran and the time it waited runnable for a CPU
# (/proc/PID/task/TID/schedstat, measured over the middle of the run), and the whole server's CPU time
# per transaction (every thread, RocksDB's included). Compare medians over rounds.
# Usage: benches/ab.sh ROUNDS SECS CLIENTS insert.sql|select.sql 'label|/path/to/vouchdb|server args' ...
# Example: benches/ab.sh 3 10 16 insert.sql "old|/tmp/vouchdb-old|" "new|target/release/vouchdb|"
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=$1; SECS=$2; CLIENTS=$3; SCRIPT=$4; shift 4
PORT=55533
URL="host=127.0.0.1 port=$PORT user=admin password=bench dbname=vouchdb"
schedstat() { for t in /proc/$1/task/*; do echo "$(cat "$t/comm") $(cat "$t/schedstat")"; done; }
one() { # bin args...
  local bin=$1; shift
  local work; work=$(mktemp -d /tmp/vouchdb-ab.XXXXXX)
  VOUCHDB_ADMIN_PASSWORD=bench VOUCHDB_LOG=warn "$bin" serve --listen 127.0.0.1:$PORT --data-dir "$work/d" "$@" 2>"$work/log" &
  local pid=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  if [ "$SCRIPT" != insert.sql ]; then
    python3 -c "
rows = ','.join(f\"({i}, 'value {i}')\" for i in range(1, 10001))
print('CREATE TABLE sel (id bigint PRIMARY KEY, v text); INSERT INTO sel VALUES ' + rows + ';')" | psql "$URL" -X -q >/dev/null
  fi
  psql "$URL" -X -q -c "CREATE TABLE bench (id bigint PRIMARY KEY, k int, v text); CREATE INDEX bench_k ON bench (k);" >/dev/null
  (sleep 2; schedstat $pid >"$work/s0"; sleep $((SECS - 4)); schedstat $pid >"$work/s1") &
  local probe=$!
  local tps
  tps=$(pgbench "$URL" -n -M prepared -f "benches/pgbench/$SCRIPT" -c "$CLIENTS" -j 2 -T "$SECS" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  wait $probe || true
  local threads
  threads=$(paste -d' ' "$work/s0" "$work/s1" | awk -v tx="$tps" -v secs="$((SECS - 4))" '
    { run = ($6 - $2) / 1e6; total += run; if ($1 !~ /rocksdb|tokio/ && run > 1) printf "%s run %.0f ms, runq %.0f ms; ", $1, run, ($7 - $3) / 1e6 }
    END { if (tx > 0) printf "server %.1f us/tx", total * 1000 / (tx * secs) }')
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  rm -rf "$work"
  printf '%.0f tps | %s\n' "$tps" "$threads"
}
for _ in $(seq "$ROUNDS"); do
  for v in "$@"; do
    IFS='|' read -r label bin args <<<"$v"
    # shellcheck disable=SC2086
    printf '%-12s %s\n' "$label" "$(one "$bin" $args)"
  done
done
