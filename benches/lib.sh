# Shared by the side-by-side benchmark scripts (sourced, not run): build release, start vouchdb and a
# PostgreSQL 15 in a temporary directory (both durable), stop and remove them on exit, and the pgbench
# helpers. After `start_both NAME VPORT PPORT`: $WORK, $BIN, $VURL, $PGURL are set.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/vouchdb-target}"

start_both() { # name vouchdb-port postgres-port
  cargo build --release --quiet --bin vouchdb
  BIN="$CARGO_TARGET_DIR/release/vouchdb"
  WORK=$(mktemp -d "/tmp/vouchdb-$1.XXXXXX")
  chmod 755 "$WORK"
  trap 'kill "$VPID" 2>/dev/null || true; scripts/pg15 stop "$WORK/pg" || true; rm -rf "$WORK"' EXIT
  VOUCHDB_ADMIN_PASSWORD=bench VOUCHDB_LOG=warn "$BIN" serve --listen "127.0.0.1:$2" --data-dir "$WORK/vouchdb" 2>"$WORK/vouchdb.log" &
  VPID=$!
  PGURL=$(scripts/pg15 start "$WORK/pg" "$3")
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$2") 2>/dev/null && break; sleep 0.1; done
  VURL="host=127.0.0.1 port=$2 user=admin password=bench dbname=vouchdb"
}

# The table `sel` (10,000 rows) that select.sql and verified_get.sql read, in every URL given.
fill_sel() {
  local fill
  fill=$(python3 -c "
rows = ','.join(f\"({i}, 'value {i}')\" for i in range(1, 10001))
print('CREATE TABLE sel (id bigint PRIMARY KEY, v text); INSERT INTO sel VALUES ' + rows + ';')")
  for url in "$@"; do echo "$fill" | psql "$url" -X -q >/dev/null; done
}

# tps of `benches/pgbench/SCRIPT` with CLIENTS for $SECS seconds (-M prepared -j 2), on a fresh `bench`
# table (PK and one secondary index) for insert.sql.
tps() { # url script clients
  psql "$1" -X -q -c "DROP TABLE IF EXISTS bench; CREATE TABLE bench (id bigint PRIMARY KEY, k int, v text); CREATE INDEX bench_k ON bench (k);" >/dev/null 2>&1
  pgbench "$1" -n -M prepared -f "benches/pgbench/$2" -c "$3" -j 2 -T "$SECS" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}
