#!/usr/bin/env bash
# The pinned Node packages (knex and node-postgres) that tests/tools.rs runs against the real server.
# Idempotent: installed outside the clone (VOUCHDB_NODE_MODULES_DIR, default $HOME/.cache/vouchdb-node)
# and reinstalled only when the pins below change. Prints the node_modules directory.
set -euo pipefail
dir="${VOUCHDB_NODE_MODULES_DIR:-$HOME/.cache/vouchdb-node}"
pins=(
  "knex@3.1.0"
  "pg@8.13.1"
)
stamp="$dir/.vouchdb-pins"
want="$(printf '%s\n' "${pins[@]}")"
if [ -d "$dir/node_modules/knex" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$dir/node_modules"
  exit 0
fi
command -v node >/dev/null 2>&1 || { echo "setup-node: node is not installed" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "setup-node: npm is not installed" >&2; exit 1; }
rm -rf "$dir"
mkdir -p "$dir"
echo '{"name": "vouchdb-tool-tests", "private": true}' >"$dir/package.json"
(cd "$dir" && npm install --no-audit --no-fund --silent "${pins[@]}" >&2)
printf '%s\n' "$want" >"$stamp"
echo "$dir/node_modules"
