#!/usr/bin/env bash
# Hot-row workload: pgbench's TPC-B-like transaction at scale 1 (one branch row that every transaction
# updates, 10 tellers, 100,000 accounts) against vouchdb and a PostgreSQL 15 started here, same machine,
# same run, durable (fsync on). Both are loaded by `pgbench -i -s 1` with its default steps (drop, create
# tables without keys, COPY the data client-side, vacuum, add primary keys) and run pgbench's built-in
# `tpcb-like` script with `-M prepared`, timing the load too.
# Usage: benches/tpcb.sh [seconds, default 30] [clients, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}; CLIENTS=${2:-8}
source benches/lib.sh
start_both tpcb 55443 55444
load() {
  local t0 t1
  t0=$(date +%s.%N)
  pgbench "$1" -i -s 1 -q >/dev/null 2>"$WORK/init.log" || { cat "$WORK/init.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}
vl=$(load "$VURL"); pl=$(load "$PGURL")
echo "pgbench -i -s 1: vouchdb ${vl} s, PostgreSQL 15 ${pl} s"
run() { pgbench "$1" -n -M prepared -b tpcb-like -c "$CLIENTS" -j 2 -T "$SECS" 2>&1; }
v=$(run "$VURL"); p=$(run "$PGURL")
vt=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$v"); pt=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$p")
vf=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$v"); pf=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$p")
printf '| system | clients | tps | failed transactions |\n|---|---|---|---|\n'
printf '| vouchdb | %s | %.0f | %s |\n| PostgreSQL 15 | %s | %.0f | %s |\n' "$CLIENTS" "$vt" "${vf:-0}" "$CLIENTS" "$pt" "${pf:-0}"
printf 'ratio vouchdb / PostgreSQL: %.2f\n' "$(python3 -c "print($vt / $pt)")"
b=$(psql "$VURL" -X -A -t -c "SELECT sum(delta) = (SELECT bbalance FROM pgbench_branches WHERE bid = 1) FROM pgbench_history")
echo "vouchdb: branch balance equals the sum of history deltas: $b"
