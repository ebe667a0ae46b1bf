#!/usr/bin/env bash
# Reads over a composite primary key (day, seq), 100,000 rows, on vouchdb and PostgreSQL 15 side by
# side: equality on the leading column alone (a key range), the same
# condition written so that no bound can be taken from it (`day + 0 = …`, a full scan), keyset
# pagination with a row comparison `(day, seq) > (…)` (its first field bounds the scan) and the same
# page written with OR (no bound). Prints tps per script and the ratio to PostgreSQL.
# Usage: benches/composite_key.sh [seconds per run, default 8] [clients, default 1]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
CLIENTS=${2:-1}
source benches/lib.sh
start_both composite 55761 55762
for url in "$VURL" "$PGURL"; do
  psql "$url" -X -q -c "CREATE TABLE ev (day int, seq int, note text, PRIMARY KEY (day, seq))" \
    -c "INSERT INTO ev SELECT g / 100, g % 100, 'n' || g FROM generate_series(0, 99999) g" >/dev/null
done
run() { pgbench "$1" -n -M prepared -f "benches/composite/$2.sql" -c "$CLIENTS" -j 2 -T "$SECS" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
echo "| script | vouchdb tps | PostgreSQL 15 tps | ratio |"
echo "|---|---|---|---|"
for s in prefix_eq prefix_eq_unbounded keyset_row keyset_or; do
  v=$(run "$VURL" "$s")
  p=$(run "$PGURL" "$s")
  echo "| $s | $v | $p | $(python3 -c "print(f'{$v / $p:.3f}')") |"
done
