#!/usr/bin/env bash
# Side-by-side pgbench: vouchdb and a PostgreSQL 15 started here, same machine, same run.
# Prints tps for single-row INSERT (bigint primary key and one secondary index) and primary-key SELECT
# at 1 and 16 clients,
# `-M prepared`, and the ratio vouchdb / PostgreSQL. Both servers run durable (fsync on).
# Usage: benches/pgbench.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vouchdb-target}"
cargo build --release --quiet --bin vouchdb
BIN="$CARGO_TARGET_DIR/release/vouchdb"
WORK=$(mktemp -d /tmp/vouchdb-bench.XXXXXX)
chmod 755 "$WORK"
VPORT=55433; PPORT=55434
cleanup() { kill "$VPID" 2>/dev/null || true; scripts/pg15 stop "$WORK/pg" || true; rm -rf "$WORK"; }
trap cleanup EXIT
VOUCHDB_ADMIN_PASSWORD=bench VOUCHDB_LOG=warn "$BIN" serve --listen 127.0.0.1:$VPORT --data-dir "$WORK/vouchdb" 2>"$WORK/vouchdb.log" &
VPID=$!
PGURL=$(scripts/pg15 start "$WORK/pg" $PPORT)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$VPORT) 2>/dev/null && break; sleep 0.1; done
VURL="host=127.0.0.1 port=$VPORT user=admin password=bench dbname=vouchdb"

fill=$(python3 -c "
rows = ','.join(f\"({i}, 'value {i}')\" for i in range(1, 10001))
print('CREATE TABLE sel (id bigint PRIMARY KEY, v text); INSERT INTO sel VALUES ' + rows + ';')")
setup="DROP TABLE IF EXISTS bench; CREATE TABLE bench (id bigint PRIMARY KEY, k int, v text); CREATE INDEX bench_k ON bench (k);"
for url in "$VURL" "$PGURL"; do echo "$fill" | psql "$url" -X -q >/dev/null; done

tps() { # url script clients
  psql "$1" -X -q -c "$setup" >/dev/null
  pgbench "$1" -n -M prepared -f "benches/pgbench/$2" -c "$3" -j 2 -T "$SECS" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
printf '| workload | clients | vouchdb tps | PostgreSQL 15 tps | ratio |\n|---|---|---|---|---|\n'
for w in insert select; do
  for c in 1 16; do
    v=$(tps "$VURL" $w.sql $c); p=$(tps "$PGURL" $w.sql $c)
    printf '| %s | %s | %.0f | %.0f | %.2f |\n' "$w" "$c" "$v" "$p" "$(python3 -c "print($v / $p)")"
  done
done
