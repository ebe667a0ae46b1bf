#!/usr/bin/env bash
# Verification benchmarks (issue 5), one run on this machine:
#  1. verified_get vs a plain primary-key SELECT on vouchdb, 1 and 16 clients (pgbench -M prepared);
#  2. the size of one row's proof material once the log holds 1 M transactions;
#  3. the auditor catching up from genesis over that log (tx/s).
# Usage: benches/verify.sh [seconds per pgbench run, default 10] [log size, default 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
LOG_TXS=${2:-1000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vouchdb-target}"
cargo build --release --quiet --bin vouchdb
BIN="$CARGO_TARGET_DIR/release/vouchdb"
WORK=$(mktemp -d /tmp/vouchdb-verify-bench.XXXXXX)
PORT=55443
cleanup() { kill "$VPID" ${GWPID:-} 2>/dev/null || true; wait "$VPID" 2>/dev/null || true; cat "$WORK/gw-pgbench.log" "$WORK/gateway.log" 2>/dev/null | grep -iE "error|fatal" | head -5 >&2 || true; rm -rf "$WORK"; }
trap cleanup EXIT
start() {
  VOUCHDB_ADMIN_PASSWORD=bench VOUCHDB_LOG=warn "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$WORK/data" 2>>"$WORK/vouchdb.log" &
  VPID=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
start
URL="host=127.0.0.1 port=$PORT user=admin password=bench dbname=vouchdb"
python3 -c "
rows = ','.join(f\"({i}, 'value {i}')\" for i in range(1, 10001))
print('CREATE TABLE sel (id bigint PRIMARY KEY, v text); INSERT INTO sel VALUES ' + rows + ';')" | psql "$URL" -X -q >/dev/null

tps() { pgbench "$URL" -n -M prepared -f "benches/pgbench/$1" -c "$2" -j 2 -T "$SECS" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
# Warm up (caches, the memtable flush after the load) before anything is measured.
pgbench "$URL" -n -M prepared -f benches/pgbench/verified_get.sql -c 16 -j 2 -T 3 >/dev/null 2>&1
pgbench "$URL" -n -M prepared -f benches/pgbench/select.sql -c 16 -j 2 -T 3 >/dev/null 2>&1
echo "## verified_get vs primary-key SELECT ($SECS s per run, pgbench -M prepared -j 2)"
printf '| clients | PK SELECT tps | verified_get tps | ratio |\n|---|---|---|---|\n'
for c in 1 16; do
  s=$(tps select.sql $c); v=$(tps verified_get.sql $c)
  printf '| %s | %.0f | %.0f | %.2f |\n' "$c" "$s" "$v" "$(python3 -c "print($v / $s)")"
done

echo
echo "## verified_get through the verifying gateway (every row verified by the gateway)"
psql "$URL" -X -At -c "SELECT public_key FROM vouch_checkpoint()" > "$WORK/pub.pem"
GPORT=55444
PGPASSWORD=bench VOUCHDB_LOG=warn "$BIN" gateway --upstream 127.0.0.1:$PORT --listen 127.0.0.1:$GPORT \
  --conn "user=admin dbname=vouchdb" --public-key "$WORK/pub.pem" --state "$WORK/gw.json" 2>>"$WORK/gateway.log" &
GWPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GPORT) 2>/dev/null && break; sleep 0.1; done
GURL="host=127.0.0.1 port=$GPORT user=admin password=bench dbname=vouchdb"
printf '| clients | direct verified_get tps | through the gateway tps | ratio |\n|---|---|---|---|\n'
for c in 1 16; do
  d=$(tps verified_get.sql $c)
  g=$(pgbench "$GURL" -n -M prepared -f benches/pgbench/verified_get.sql -c "$c" -j 2 -T "$SECS" 2>&1 | tee -a "$WORK/gw-pgbench.log" | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  printf '| %s | %.0f | %.0f | %.2f |\n' "$c" "$d" "$g" "$(python3 -c "print($g / $d)")"
done
kill "$GWPID"; wait "$GWPID" 2>/dev/null || true

echo
echo "## Proof size and audit at $LOG_TXS transactions"
kill "$VPID"; wait "$VPID" 2>/dev/null || true
"$BIN" load --data-dir "$WORK/data" --table 999 --txs "$LOG_TXS" --clients 16 --value-bytes 20 2>&1 | tail -1
start
psql "$URL" -X -At -F ' ' -c "
SELECT _tree_size, cardinality(_tx_proof), cardinality(_entry_proof),
       length(_entry)/2 + length(_leaf)/2 + 32*(cardinality(_tx_proof) + cardinality(_entry_proof))
         + octet_length(_checkpoint) + length(rtrim(_signature, '=')) * 3 / 4 AS proof_bytes,
       octet_length(_entry) + octet_length(_leaf) + octet_length(array_to_string(_tx_proof, ',')) + octet_length(array_to_string(_entry_proof, ','))
         + octet_length(_checkpoint) + octet_length(_signature) AS as_text
  FROM verified_get('sel', 5000)" | while read -r size txp entp bytes text; do
  echo "tree size $size: tx proof $txp hashes, entry proof $entp hashes; proof material $bytes bytes binary, $text bytes as the SQL text columns"
done
start_s=$(date +%s.%N)
PGPASSWORD=bench "$BIN" audit --once --server "host=127.0.0.1 port=$PORT user=admin dbname=vouchdb" --public-key "$WORK/pub.pem" --state "$WORK/audit.json" 2>/dev/null
end_s=$(date +%s.%N)
python3 -c "print(f'audit from genesis (wall clock incl. connect): {($end_s - $start_s):.2f} s')"
