#!/usr/bin/env bash
# The walk-through of docs/VERIFYING.md as a script: verify one row of a vouchdb server with nothing but
# psql, openssl and the independent RFC 9162 verifier (tests/verifier/rfc9162.py, Python standard library).
#
# usage: walkthrough.sh CONNINFO TABLE KEY PUBLIC_KEY.pem WORKDIR
#   CONNINFO  libpq connection string or URL (password from PGPASSWORD or ~/.pgpass)
#   KEY       the primary-key value as an SQL literal, e.g. 5 or "'alice'"
# Exit status 0 only when the signature and every proof verified.
set -euo pipefail
conn=$1 table=$2 key=$3 pub=$4 dir=$5
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cd "$dir"

# 1. One query fetches the row and all its proof material, proven against one signed checkpoint.
psql -X -q -v ON_ERROR_STOP=1 "$conn" <<SQL
SELECT _tx AS tx, _entry_index AS entry_index, _entry AS entry, _entry_proof AS entry_proof,
       _leaf AS leaf, _tx_proof AS tx_proof, _tree_size AS tree_size, _root AS root,
       _checkpoint AS checkpoint, _signature AS signature
  FROM verified_get('$table', $key) \gset
\o body.txt
\qecho -n :checkpoint
\o sig.b64
\qecho :signature
\o proof.args
\qecho --tx :tx --entry-index :entry_index --entry :entry --entry-proof :entry_proof --leaf :leaf --tx-proof :tx_proof --tree-size :tree_size --root :root
\o
SQL

# 2. The checkpoint is signed by the log's key (ECDSA P-256 over SHA-256, DER signature).
base64 -d sig.b64 > sig.der
openssl dgst -sha256 -verify "$pub" -signature sig.der body.txt

# 3. The entry is in its transaction, the transaction is in the signed tree (RFC 9162 proofs).
# shellcheck disable=SC2046
python3 "$here/rfc9162.py" row $(cat proof.args) --checkpoint body.txt
