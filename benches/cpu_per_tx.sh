#!/usr/bin/env bash
# What bounds INSERT throughput on this machine (issue 7's "show what bounds them"): vouchdb and a
# PostgreSQL 15 side by side, each under pgbench INSERT (PK + one secondary index, -M prepared) at
# CLIENTS connections, reporting tps, the server's CPU time per transaction (user and kernel, from
# /proc: vouchdb's process; PostgreSQL's postmaster with its exited backends, cutime/cstime) and the
# machine's idle share during the run (niced processes' time counts as idle). When the machine has no idle CPU left, tps is CPU per tx into
# the cores there are: a ratio of R against PostgreSQL needs R times less CPU per transaction.
# Usage: benches/cpu_per_tx.sh [seconds, default 10] [clients, default 16] [script, default insert.sql]
#        [rounds, default 2] [warm-up seconds, default 0]
# Each round measures vouchdb, then PostgreSQL; with a warm-up, each server first runs the workload
# unmeasured for that long (as benches/report.sh does). Ends with the median of the rounds' ratios.
# (select.sql: PK SELECT of the 10,000-row `sel` table, as in report.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CLIENTS=${2:-16}
SCRIPT=${3:-insert.sql}
ROUNDS=${4:-2}
WARM=${5:-0}
source benches/lib.sh
start_both cpu 55733 55734
[ "$SCRIPT" = insert.sql ] || fill_sel "$VURL" "$PGURL"
HZ=$(getconf CLK_TCK)

# utime stime of a process and of its waited-for children (fields 14-17 of /proc/PID/stat).
cpu_ticks() { awk '{ print $14 + $16, $15 + $17 }' "/proc/$1/stat"; }
# Idle, iowait and niced time: a niced background job (a fuzzer) only takes CPU nobody else wants.
idle_ticks() { awk '/^cpu / { print $3 + $5 + $6; exit }' /proc/stat; }
all_ticks() { awk '/^cpu / { s = 0; for (i = 2; i <= NF; i++) s += $i; print s; exit }' /proc/stat; }

measure() { # label url pid
  psql "$2" -X -q -c "DROP TABLE IF EXISTS bench; CREATE TABLE bench (id bigint PRIMARY KEY, k int, v text); CREATE INDEX bench_k ON bench (k);" >/dev/null 2>&1
  read -r u0 s0 < <(cpu_ticks "$3"); i0=$(idle_ticks); a0=$(all_ticks)
  out=$(/usr/bin/time -f "client-cpu %U %S" pgbench "$2" -n -M prepared -f "benches/pgbench/$SCRIPT" -c "$CLIENTS" -j 2 -T "$SECS" 2>&1)
  client=$(echo "$out" | awk '/^client-cpu/ { print $2 + $3 }')
  sleep 0.5 # PostgreSQL's backends exit and are reaped into the postmaster's children times
  read -r u1 s1 < <(cpu_ticks "$3"); i1=$(idle_ticks); a1=$(all_ticks)
  tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  txs=$(echo "$out" | sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p')
  python3 - "$1" "$tps" "$txs" "$((u1 - u0))" "$((s1 - s0))" "$((i1 - i0))" "$((a1 - a0))" "$HZ" "$client" <<'PY'
import sys
label, tps, txs, u, s, idle, total, hz = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), *map(int, sys.argv[4:9])
client = float(sys.argv[9]) * 1e6 / txs
us = lambda ticks: ticks / hz * 1e6 / txs
print(f"| {label} | {tps:,.0f} | {us(u):.0f} | {us(s):.0f} | {us(u + s):.0f} | {client:.0f} | {idle / total * 100:.0f} % |")
PY
}

PGPID=$(head -1 "$WORK/pg/postmaster.pid")
echo "$SCRIPT at $CLIENTS clients, $SECS s each, -M prepared; CPU µs per transaction of the server alone"
echo
echo "| server | tps | user µs/tx | kernel µs/tx | total µs/tx | pgbench µs/tx (user + kernel) | machine idle |"
echo "|---|---|---|---|---|---|---|"
if [ "$WARM" -gt 0 ]; then
  for url in "$VURL" "$PGURL"; do SECS=$WARM tps "$url" "$SCRIPT" "$CLIENTS" >/dev/null; done
fi
ratios=()
for _ in $(seq "$ROUNDS"); do
  v=$(measure "vouchdb" "$VURL" "$VPID"); echo "$v"
  p=$(measure "PostgreSQL 15" "$PGURL" "$PGPID"); echo "$p"
  ratios+=("$(python3 -c "import sys; f = lambda l: float(l.split('|')[2].replace(',', '')); print(f(sys.argv[1]) / f(sys.argv[2]))" "$v" "$p")")
done
echo
python3 -c "import statistics, sys; r = sorted(map(float, sys.argv[1:])); print('ratios', ' '.join(f'{x:.2f}' for x in r), '| median', f'{statistics.median(r):.2f}')" "${ratios[@]}"
