"""Shared by the Python driver programs (psycopg, asyncpg): load the independent verifier
(tests/verifier/rfc9162.py, from VOUCHDB_VERIFIER) and check one verified_get row's proofs with it.
Driver-neutral: a row is anything indexable by column name."""

import base64
import importlib.util
import os
import sys


def load_verifier(fail):
    path = os.environ.get("VOUCHDB_VERIFIER")
    if not path:
        fail("VOUCHDB_VERIFIER is not set")
    sys.dont_write_bytecode = True  # leave no __pycache__ in tests/verifier
    spec = importlib.util.spec_from_file_location("rfc9162", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_row_proof(v, r, what, fail):
    """The entry is a user-table put proven in its transaction's entries tree, the transaction's leaf
    is proven in the tree of `_tree_size` with root `_root`, and the row's checkpoint body names that
    tree. Returns (tx, tree size, root bytes, leaf bytes)."""
    leaf = bytes.fromhex(r["_leaf"])
    entry = bytes.fromhex(r["_entry"])
    tx, size, root = r["_tx"], r["_tree_size"], bytes.fromhex(r["_root"])
    tx_proof = v.parse_hash_list(",".join(r["_tx_proof"]), "_tx_proof")
    entry_proof = v.parse_hash_list(",".join(r["_entry_proof"]), "_entry_proof")
    decoded_leaf = v.decode_leaf(leaf)
    if decoded_leaf["tx"] != tx:
        fail(f"{what}: the leaf's tx is {decoded_leaf['tx']}, the row's {tx}")
    decoded_entry = v.decode_entry(entry)
    if decoded_entry["table"] < v.FIRST_USER_TABLE_ID or decoded_entry["flags"] & v.FLAG_DELETE:
        fail(f"{what}: the entry is not a user-table put: {decoded_entry}")
    if not v.verify_inclusion(r["_entry_index"], decoded_leaf["entry_count"], v.leaf_hash(entry),
                              entry_proof, decoded_leaf["entries_root"]):
        fail(f"{what}: entry {r['_entry_index']} is not proven to be in the entries tree of tx {tx}")
    if not 1 <= tx <= size:
        fail(f"{what}: _tx {tx} is outside the tree of size {size}")
    if not v.verify_inclusion(tx - 1, size, v.leaf_hash(leaf), tx_proof, root):
        fail(f"{what}: tx {tx} (leaf index {tx - 1}) is not proven to be in the tree of size {size}, "
             f"root {root.hex()}")
    # The checkpoint body the row carries names the same tree.
    lines = r["_checkpoint"].split("\n")
    if len(lines) != 4 or lines[3] != "" or lines[1] != str(size) or base64.b64decode(lines[2]) != root:
        fail(f"{what}: _checkpoint {r['_checkpoint']!r} does not name tree size {size}, root {root.hex()}")
    return tx, size, root, leaf
