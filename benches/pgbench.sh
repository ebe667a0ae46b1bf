#!/usr/bin/env bash
# Side-by-side pgbench: vouchdb and a PostgreSQL 15 started here, same machine, same run.
# Prints tps for single-row INSERT (bigint primary key and one secondary index) and primary-key SELECT
# at 1 and 16 clients,
# `-M prepared`, and the ratio vouchdb / PostgreSQL. Both servers run durable (fsync on).
# Usage: benches/pgbench.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
source benches/lib.sh
start_both bench 55433 55434
fill_sel "$VURL" "$PGURL"
printf '| workload | clients | vouchdb tps | PostgreSQL 15 tps | ratio |\n|---|---|---|---|---|\n'
for w in insert select; do
  for c in 1 16; do
    v=$(tps "$VURL" $w.sql $c); p=$(tps "$PGURL" $w.sql $c)
    printf '| %s | %s | %.0f | %.0f | %.2f |\n' "$w" "$c" "$v" "$p" "$(python3 -c "print($v / $p)")"
  done
done
