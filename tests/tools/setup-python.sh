#!/usr/bin/env bash
# A Python 3.11 virtual environment with the pinned ORM and migration tools and drivers that
# tests/tools.rs and tests/clients run against the real server. Idempotent: the environment is kept
# outside the clone (VOUCHDB_VENV, default $HOME/.cache/vouchdb-venv) and rebuilt only when the pins
# below change. Prints the venv's python.
set -euo pipefail
venv="${VOUCHDB_VENV:-$HOME/.cache/vouchdb-venv}"
pins=(
  "SQLAlchemy==2.0.36"
  "alembic==1.14.0"
  "psycopg[binary]==3.2.3"
  "Django==5.1.4"
  "asyncpg==0.30.0"
)
stamp="$venv/.vouchdb-pins"
want="$(printf '%s\n' "${pins[@]}")"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
py=""
for cand in python3.11 python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 10))'; then
    py="$cand"
    break
  fi
done
[ -n "$py" ] || { echo "setup-python: no python3 (3.10 or newer) found" >&2; exit 1; }
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$py" -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}" >&2
printf '%s\n' "$want" >"$stamp"
echo "$venv/bin/python"
