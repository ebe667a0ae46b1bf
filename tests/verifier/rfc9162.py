#!/usr/bin/env python3
"""rfc9162.py: an independent verifier for vouchdb's Merkle proofs.

It is written from RFC 9162 section 2.1 and the byte formats of vouchdb's docs/FORMAT.md (format
version 1). It shares no code with the vouchdb server. It needs Python 3.11 and the standard
library only.

Merkle Tree Hash (RFC 9162 section 2.1.1), over a list of leaf data D[n]:

    MTH({})    = SHA-256()                                        the empty tree
    MTH({d0})  = SHA-256(0x00 || d0)                              a leaf hash
    MTH(D[n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))      k = largest power of 2 below n

Inclusion proofs are checked with the algorithm of RFC 9162 section 2.1.3.2 and consistency
proofs with that of section 2.1.4.2. Leaf indices are 0-based, and transaction `tx` (1-based) is
leaf index tx - 1 of the log tree.

Subcommands (see `rfc9162.py <subcommand> --help`):

    inclusion    check an inclusion proof of a leaf hash
    consistency  check a consistency proof between two tree heads
    row          check one entry (a row version): entry -> transaction leaf -> log root
    tx           check a whole transaction: all entries, the provenance record, the leaf

Exit status: 0 when every check passed; 1 when a check failed (a "FAIL  ..." line says which);
2 on malformed input (a "FAIL  malformed ..." line says what).

A proof or list argument can be written as psql prints a text[] column ({ab12...,cd34...},
{} for an empty list), as a comma-separated list, or as an empty string.

This script does not check checkpoint signatures. Use OpenSSL for that:
    openssl dgst -sha256 -verify pub.pem -signature sig.der body.txt
"""

import argparse
import base64
import datetime
import hashlib
import json
import struct
import sys

HASH_SIZE = 32
EMPTY_TREE_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = e3b0c442...b855

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

# Entry flags (docs/FORMAT.md, "Entry").
FLAG_DELETE = 0x01
FLAG_REFERENCE = 0x02

# Table ids below this belong to vouchdb's system tables, whose values are JSON documents. User
# tables hold rows in the row encoding (docs/FORMAT.md, "SQL rows in entries").
FIRST_USER_TABLE_ID = 1000


class Malformed(Exception):
    """The input cannot be parsed. The script exits with status 2."""


class ProofError(Exception):
    """The number of hashes in a proof does not fit the tree sizes."""


# ---------------------------------------------------------------------------------------------
# Hashing (RFC 9162 section 2.1.1)
# ---------------------------------------------------------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf_hash(leaf_data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return sha256(LEAF_PREFIX + leaf_data)


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return sha256(NODE_PREFIX + left + right)


def merkle_tree_hash(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) for the list of leaf data `leaves`, exactly as RFC 9162 section 2.1.1 defines it."""

    def mth(hashes: list[bytes], start: int, end: int) -> bytes:
        n = end - start
        if n == 1:
            return hashes[start]
        k = 1
        while k * 2 < n:  # k = the largest power of two smaller than n
            k *= 2
        return node_hash(mth(hashes, start, start + k), mth(hashes, start + k, end))

    if not leaves:
        return EMPTY_TREE_ROOT
    leaf_hashes = [leaf_hash(d) for d in leaves]
    return mth(leaf_hashes, 0, len(leaf_hashes))


def is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# ---------------------------------------------------------------------------------------------
# Inclusion proofs (RFC 9162 section 2.1.3.2)
# ---------------------------------------------------------------------------------------------

def root_from_inclusion_proof(leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: list[bytes]) -> bytes:
    """Return the root that `inclusion_path` gives for leaf `leaf_index` of a tree of `tree_size`.

    The proof verifies if the caller finds this root equal to the expected root hash. Raises
    ProofError when the proof cannot be a proof for these sizes.
    """
    # Step 1: the leaf must be in the tree.
    if leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is not below the tree size {tree_size}")
    # Step 2.
    fn = leaf_index
    sn = tree_size - 1
    # Step 3.
    r = hash_
    # Step 4.
    for p in inclusion_path:
        # 4a.
        if sn == 0:
            raise ProofError(f"the proof has too many hashes ({len(inclusion_path)})")
        # 4b.
        if fn & 1 == 1 or fn == sn:
            r = node_hash(p, r)  # 4b.i
            if fn & 1 == 0:  # 4b.ii
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        # 4c.
        fn >>= 1
        sn >>= 1
    # Step 5: every level of the tree must have been used.
    if sn != 0:
        raise ProofError(f"the proof has too few hashes ({len(inclusion_path)})")
    return r


def verify_inclusion(leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: list[bytes], root_hash: bytes) -> bool:
    """True if `inclusion_path` proves leaf hash `hash_` at `leaf_index` in the tree (tree_size, root_hash)."""
    try:
        return root_from_inclusion_proof(leaf_index, tree_size, hash_, inclusion_path) == root_hash
    except ProofError:
        return False


# ---------------------------------------------------------------------------------------------
# Consistency proofs (RFC 9162 section 2.1.4.2)
# ---------------------------------------------------------------------------------------------

def roots_from_consistency_proof(first: int, second: int, first_hash: bytes, consistency_path: list[bytes]) -> tuple[bytes, bytes]:
    """Return the (first, second) roots that `consistency_path` gives, for 0 < first < second.

    The proof verifies if the caller finds them equal to the two expected root hashes. Raises
    ProofError when the proof cannot be a proof for these sizes.
    """
    if not 0 < first < second:
        raise ProofError(f"this algorithm needs 0 < first < second, got {first} and {second}")
    # Step 1.
    if not consistency_path:
        raise ProofError("the proof is empty")
    path = list(consistency_path)
    # Step 2: the proof leaves out the old root when the old tree is a complete subtree.
    if is_power_of_two(first):
        path.insert(0, first_hash)
    # Step 3.
    fn = first - 1
    sn = second - 1
    # Step 4.
    while fn & 1 == 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = path[0]
    sr = path[0]
    # Step 6.
    for c in path[1:]:
        # 6a.
        if sn == 0:
            raise ProofError(f"the proof has too many hashes ({len(consistency_path)})")
        # 6b.
        if fn & 1 == 1 or fn == sn:
            fr = node_hash(c, fr)  # 6b.i
            sr = node_hash(c, sr)  # 6b.ii
            if fn & 1 == 0:  # 6b.iii
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        # 6c.
        fn >>= 1
        sn >>= 1
    # Step 7 (the comparison of the roots is the caller's): every level must have been used.
    if sn != 0:
        raise ProofError(f"the proof has too few hashes ({len(consistency_path)})")
    return fr, sr


def check_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes, proof: list[bytes]) -> str | None:
    """Return None if `proof` proves tree (first, first_hash) is a prefix of (second, second_hash),
    else the reason it does not."""
    if first > second:
        return f"the old size {first} is larger than the new size {second}"
    if first == second:
        # RFC 9162 section 2.1.4: the proof for equal sizes is empty, and the roots must match.
        if proof:
            return f"the sizes are equal, so the proof must be empty, but it has {len(proof)} hashes"
        if first_hash != second_hash:
            return f"the sizes are equal but the roots differ: old root {first_hash.hex()}, new root {second_hash.hex()}"
        return None
    if first == 0:
        # Every tree extends the empty tree: there is nothing to prove, so the proof must be
        # empty, and the root of a tree of size 0 is MTH({}).
        if proof:
            return f"the old tree is empty, so the proof must be empty, but it has {len(proof)} hashes"
        if first_hash != EMPTY_TREE_ROOT:
            return f"the old tree is empty but its root {first_hash.hex()} is not the empty-tree root {EMPTY_TREE_ROOT.hex()}"
        return None
    try:
        fr, sr = roots_from_consistency_proof(first, second, first_hash, proof)
    except ProofError as e:
        return str(e)
    problems = []
    if fr != first_hash:
        problems.append(f"the proof gives old root {fr.hex()}, expected {first_hash.hex()}")
    if sr != second_hash:
        problems.append(f"the proof gives new root {sr.hex()}, expected {second_hash.hex()}")
    return "; ".join(problems) or None


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes, proof: list[bytes]) -> bool:
    return check_consistency(first, second, first_hash, second_hash, proof) is None


# ---------------------------------------------------------------------------------------------
# Parsing command-line values
# ---------------------------------------------------------------------------------------------

HEX_DIGITS = set("0123456789abcdefABCDEF")


def parse_hex(text: str, what: str, size: int | None = None) -> bytes:
    """Hex to bytes. A leading \\x (as psql prints bytea) or 0x is allowed."""
    s = text.strip()
    if s[:2] in ("\\x", "0x"):
        s = s[2:]
    if not set(s) <= HEX_DIGITS:
        bad = next(c for c in s if c not in HEX_DIGITS)
        raise Malformed(f"{what}: {bad!r} is not a hex digit")
    if len(s) % 2:
        raise Malformed(f"{what}: odd number of hex digits ({len(s)})")
    data = bytes.fromhex(s)
    if size is not None and len(data) != size:
        raise Malformed(f"{what}: expected {size} bytes ({2 * size} hex digits), got {len(data)} bytes")
    return data


def split_list(text: str, what: str) -> list[str]:
    """Split "{a,b}" (a PostgreSQL array as psql prints it), "a,b" or "" into its elements."""
    s = text.strip()
    if s.startswith("{") or s.endswith("}"):
        if not (s.startswith("{") and s.endswith("}")):
            raise Malformed(f"{what}: unbalanced braces in {text!r}")
        s = s[1:-1].strip()
    if not s:
        return []
    items = []
    for raw in s.split(","):
        item = raw.strip()
        # psql double-quotes array elements with backslashes, e.g. a bytea[]: {"\\x0102"}.
        if len(item) >= 2 and item[0] == item[-1] == '"':
            item = item[1:-1].replace("\\\\", "\\")
        items.append(item)
    return items


def parse_hash_list(text: str, what: str) -> list[bytes]:
    return [parse_hex(item, f"{what} hash {i}", HASH_SIZE) for i, item in enumerate(split_list(text, what))]


def parse_hex_list(text: str, what: str) -> list[bytes]:
    return [parse_hex(item, f"{what} element {i}") for i, item in enumerate(split_list(text, what))]


# ---------------------------------------------------------------------------------------------
# Decoding vouchdb's byte formats (docs/FORMAT.md, format version 1; integers are big-endian)
# ---------------------------------------------------------------------------------------------

class Reader:
    """Reads big-endian fields from `data`; any shortfall is Malformed."""

    def __init__(self, data: bytes, what: str):
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, n: int, field: str) -> bytes:
        left = len(self.data) - self.pos
        if n > left:
            raise Malformed(f"{self.what}: truncated in {field} at byte {self.pos} (needs {n} bytes, {left} left)")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, field: str) -> int | float:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), field))[0]

    def u8(self, field):  return self.unpack(">B", field)
    def u16(self, field): return self.unpack(">H", field)
    def u32(self, field): return self.unpack(">I", field)
    def u64(self, field): return self.unpack(">Q", field)
    def i32(self, field): return self.unpack(">i", field)
    def i64(self, field): return self.unpack(">q", field)
    def f64(self, field): return self.unpack(">d", field)

    def byte_string(self, field: str) -> bytes:
        """A u32 length, then that many bytes."""
        return self.take(self.u32(field + " length"), field)

    def finish(self) -> None:
        if self.pos != len(self.data):
            raise Malformed(f"{self.what}: {len(self.data) - self.pos} trailing bytes after byte {self.pos}")


def decode_leaf(data: bytes) -> dict:
    """Transaction leaf data: u8 version, u64 tx, u64 commit time, u64 client time, u32 entry count,
    32-byte entries root, 32-byte provenance hash, u8 state-root presence, [32-byte state root]."""
    r = Reader(data, "leaf")
    leaf = {"version": r.u8("version")}
    if leaf["version"] != 1:
        raise Malformed(f"leaf: version {leaf['version']} is not supported (this verifier knows version 1)")
    leaf["tx"] = r.u64("tx")
    leaf["commit_time_us"] = r.u64("commit time")
    leaf["client_time_us"] = r.u64("client time")
    leaf["entry_count"] = r.u32("entry count")
    leaf["entries_root"] = r.take(HASH_SIZE, "entries root")
    leaf["provenance_hash"] = r.take(HASH_SIZE, "provenance hash")
    present = r.u8("state root presence")
    if present not in (0, 1):
        raise Malformed(f"leaf: state root presence byte is {present}, must be 0 or 1")
    leaf["state_root"] = r.take(HASH_SIZE, "state root") if present else None
    r.finish()
    return leaf


def decode_entry(data: bytes, what: str = "entry") -> dict:
    """Entry: u8 version, u8 flags, u32 table id, bytes key, bytes value,
    and with flag REFERENCE: u32 ref table, bytes ref key, u64 ref tx."""
    r = Reader(data, what)
    entry = {"version": r.u8("version")}
    if entry["version"] != 1:
        raise Malformed(f"{what}: version {entry['version']} is not supported (this verifier knows version 1)")
    flags = entry["flags"] = r.u8("flags")
    if flags & ~(FLAG_DELETE | FLAG_REFERENCE):
        raise Malformed(f"{what}: unknown flag bits in flags 0x{flags:02x}")
    entry["table"] = r.u32("table id")
    entry["key"] = r.byte_string("key")
    entry["value"] = r.byte_string("value")
    if flags & FLAG_DELETE and entry["value"]:
        raise Malformed(f"{what}: a delete must have an empty value, this one has {len(entry['value'])} bytes")
    entry["reference"] = None
    if flags & FLAG_REFERENCE:
        entry["reference"] = {
            "table": r.u32("reference table"),
            "key": r.byte_string("reference key"),
            "tx": r.u64("reference tx"),
        }
    r.finish()
    return entry


def format_time_us(us: int, utc: bool) -> str:
    try:
        t = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=us)
    except OverflowError:
        return f"{us} us since the epoch"
    return t.isoformat() + ("Z" if utc else "") + f" ({us} us)"


def format_date(days: int) -> str:
    try:
        return (datetime.date(1970, 1, 1) + datetime.timedelta(days=days)).isoformat() + f" ({days} days)"
    except OverflowError:
        return f"{days} days since the epoch"


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Malformed(f"{what}: not valid UTF-8 ({e.reason} at byte {e.start})") from None


def decode_row(value: bytes) -> list[str]:
    """Describe a row value (row encoding version 1), one line per value.

    u8 row-encoding version, u32 schema version, u16 value count, then per value a tag byte and
    its payload. An unknown tag ends the decoding: the bytes are covered by the entry's hash
    anyway, this is only the display.
    """
    r = Reader(value, "row value")
    version = r.u8("row encoding version")
    if version != 1:
        return [f"row encoding version {version} is not known to this verifier; raw value {value.hex()}"]
    schema_version = r.u32("schema version")
    count = r.u16("value count")
    lines = [f"row encoding 1, schema version {schema_version}, {count} values"]
    for i in range(count):
        field = f"value {i}"
        tag = r.u8(f"{field} tag")
        if tag == 0x00:
            text = "NULL"
        elif tag == 0x01:
            b = r.u8(field)
            if b not in (0, 1):
                raise Malformed(f"row value: {field} is a boolean byte {b}, must be 0 or 1")
            text = f"boolean {'true' if b else 'false'}"
        elif tag == 0x02:
            text = f"integer {r.i64(field)}"
        elif tag == 0x03:
            text = f"float {r.f64(field)!r}"
        elif tag == 0x04:
            text = f"numeric {decode_utf8(r.byte_string(field), 'row value: ' + field)}"
        elif tag == 0x05:
            text = f"text {json.dumps(decode_utf8(r.byte_string(field), 'row value: ' + field), ensure_ascii=False)}"
        elif tag == 0x06:
            text = f"bytea \\x{r.byte_string(field).hex()}"
        elif tag == 0x07:
            text = f"timestamp {format_time_us(r.i64(field), utc=False)}"
        elif tag == 0x08:
            text = f"timestamptz {format_time_us(r.i64(field), utc=True)}"
        elif tag == 0x09:
            text = f"date {format_date(r.i32(field))}"
        elif tag == 0x0A:
            u = r.take(16, field).hex()
            text = f"uuid {u[0:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:32]}"
        elif tag == 0x0B:
            text = f"jsonb {decode_utf8(r.byte_string(field), 'row value: ' + field)}"
        else:
            lines.append(f"{field}: undecoded tag 0x{tag:02X}")
            return lines
        lines.append(f"{field}: {text}")
    r.finish()
    return lines


def describe_entry(entry: dict, title: str) -> list[str]:
    flags = entry["flags"]
    names = [n for bit, n in ((FLAG_DELETE, "delete"), (FLAG_REFERENCE, "reference")) if flags & bit]
    lines = [
        f"{title}:",
        f"  table id     {entry['table']}",
        f"  flags        0x{flags:02x} ({', '.join(names) or 'put'})",
        f"  key          {entry['key'].hex()}",
    ]
    if entry["reference"]:
        ref = entry["reference"]
        pinned = f"tx {ref['tx']}" if ref["tx"] else "latest (tx 0)"
        lines.append(f"  reference    table {ref['table']}, key {ref['key'].hex()}, {pinned}")
    value = entry["value"]
    if flags & FLAG_DELETE:
        lines.append("  value        (none: this is a delete)")
    elif entry["table"] < FIRST_USER_TABLE_ID:
        try:
            shown = value.decode("utf-8")
        except UnicodeDecodeError:
            shown = "hex " + value.hex()
        lines.append(f"  value        system table document, {len(value)} bytes: {shown}")
    else:
        row = decode_row(value)
        lines.append(f"  row          {row[0]}")
        lines.extend(f"    {line}" for line in row[1:])
    return lines


def describe_leaf(leaf: dict, data: bytes) -> list[str]:
    client = format_time_us(leaf["client_time_us"], utc=True) if leaf["client_time_us"] else "none (0)"
    state = leaf["state_root"].hex() if leaf["state_root"] else "none"
    return [
        f"leaf ({len(data)} bytes), leaf hash {leaf_hash(data).hex()}:",
        f"  tx               {leaf['tx']}",
        f"  commit time      {format_time_us(leaf['commit_time_us'], utc=True)}",
        f"  client time      {client}",
        f"  entry count      {leaf['entry_count']}",
        f"  entries root     {leaf['entries_root'].hex()}",
        f"  provenance hash  {leaf['provenance_hash'].hex()}",
        f"  state root       {state}",
    ]


def read_checkpoint_body(path: str) -> dict:
    """A C2SP tlog-checkpoint body: origin, tree size in decimal, base64 root, each ending in "\\n"."""
    what = f"checkpoint {path}"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Malformed(f"{what}: cannot read it ({e.strerror})") from None
    text = decode_utf8(data, what)
    if not text.endswith("\n"):
        raise Malformed(f"{what}: the body must end with a newline")
    lines = text[:-1].split("\n")
    if "" in lines:
        raise Malformed(f"{what}: has an empty line; pass only the three-line body, not the signed note")
    if len(lines) != 3:
        raise Malformed(f"{what}: expected 3 lines (origin, size, root), got {len(lines)}")
    origin, size_text, root_text = lines
    if not (size_text.isascii() and size_text.isdigit()) or (size_text != "0" and size_text.startswith("0")):
        raise Malformed(f"{what}: tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except ValueError:
        raise Malformed(f"{what}: root {root_text!r} is not standard base64") from None
    if len(root) != HASH_SIZE or base64.b64encode(root).decode() != root_text:
        raise Malformed(f"{what}: root {root_text!r} is not the base64 of a 32-byte hash")
    return {"origin": origin, "size": int(size_text), "root": root}


# ---------------------------------------------------------------------------------------------
# Checks and their report
# ---------------------------------------------------------------------------------------------

class Report:
    """Prints one line per check and gives the exit status."""

    def __init__(self):
        self.checks = 0
        self.failures = 0

    def check(self, passed: bool, ok_text: str, fail_text: str) -> bool:
        self.checks += 1
        if passed:
            print(f"OK  {ok_text}")
        else:
            self.failures += 1
            print(f"FAIL  {fail_text}")
        return passed

    def inclusion(self, subject: str, tree: str, index: int, size: int, hash_: bytes, proof: list[bytes], root: bytes) -> bool:
        """Check that `subject` (leaf hash `hash_`, leaf index `index`) is in `tree` (size, root)."""
        try:
            computed = root_from_inclusion_proof(index, size, hash_, proof)
            reason = f"the proof gives root {computed.hex()}, expected {root.hex()}"
        except ProofError as e:
            computed, reason = None, f"{e}; expected root {root.hex()}"
        return self.check(
            computed == root,
            f"{subject} is in {tree}, root {root.hex()}",
            f"{subject} is not proven to be in {tree}: {reason}",
        )

    def status(self) -> int:
        if self.failures:
            print(f"RESULT  {self.failures} of {self.checks} checks FAILED")
            return 1
        print(f"RESULT  all {self.checks} checks passed")
        return 0


def note_unsigned_root(report: Report, checkpoint_path: str | None, tree_size: int, root: bytes) -> None:
    if checkpoint_path is None:
        print(f"NOTE  no --checkpoint given: the root {root.hex()} of size {tree_size} is trusted as given; "
              "compare it with a signed checkpoint")
        return
    cp = read_checkpoint_body(checkpoint_path)
    report.check(cp["size"] == tree_size,
                 f"checkpoint {checkpoint_path} (origin {cp['origin']}) has tree size {tree_size}",
                 f"checkpoint {checkpoint_path} has tree size {cp['size']}, expected --tree-size {tree_size}")
    report.check(cp["root"] == root,
                 f"checkpoint {checkpoint_path} has root {root.hex()}",
                 f"checkpoint {checkpoint_path} has root {cp['root'].hex()}, expected --root {root.hex()}")
    print("NOTE  this script does not check the checkpoint's signature; check it with: "
          f"openssl dgst -sha256 -verify pub.pem -signature sig.der {checkpoint_path}")


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------

def cmd_inclusion(args) -> int:
    leaf = parse_hex(args.leaf_hash, "--leaf-hash", HASH_SIZE)
    root = parse_hex(args.root, "--root", HASH_SIZE)
    proof = parse_hash_list(args.proof, "--proof")
    report = Report()
    report.inclusion(f"leaf {args.index} (leaf hash {leaf.hex()})", f"the tree of size {args.size}",
                     args.index, args.size, leaf, proof, root)
    return report.status()


def cmd_consistency(args) -> int:
    old_root = parse_hex(args.old_root, "--old-root", HASH_SIZE)
    new_root = parse_hex(args.new_root, "--new-root", HASH_SIZE)
    proof = parse_hash_list(args.proof, "--proof")
    problem = check_consistency(args.old, args.new, old_root, new_root, proof)
    report = Report()
    report.check(problem is None,
                 f"the tree of size {args.old} (root {old_root.hex()}) is a prefix of "
                 f"the tree of size {args.new} (root {new_root.hex()})",
                 f"the tree of size {args.old} is not proven to be a prefix of the tree of size {args.new}: {problem}")
    return report.status()


def cmd_row(args) -> int:
    # Parse everything first, so malformed input stops before any check is printed.
    entry_bytes = parse_hex(args.entry, "--entry")
    leaf_bytes = parse_hex(args.leaf, "--leaf")
    entry_proof = parse_hash_list(args.entry_proof, "--entry-proof")
    tx_proof = parse_hash_list(args.tx_proof, "--tx-proof")
    root = parse_hex(args.root, "--root", HASH_SIZE)
    leaf = decode_leaf(leaf_bytes)
    entry = decode_entry(entry_bytes)
    entry_text = describe_entry(entry, f"entry {args.entry_index} of tx {args.tx}")
    if args.checkpoint is not None:
        read_checkpoint_body(args.checkpoint)

    print("\n".join(entry_text))
    print("\n".join(describe_leaf(leaf, leaf_bytes)))
    report = Report()
    report.check(leaf["tx"] == args.tx, f"the leaf is the leaf of tx {args.tx}",
                 f"the leaf is the leaf of tx {leaf['tx']}, expected tx {args.tx}")
    count = leaf["entry_count"]
    report.inclusion(f"entry {args.entry_index}", f"the entries tree of tx {args.tx} ({count} entries)",
                     args.entry_index, count, leaf_hash(entry_bytes), entry_proof, leaf["entries_root"])
    report.inclusion(f"tx {args.tx} (leaf index {args.tx - 1})", f"the log tree of size {args.tree_size}",
                     args.tx - 1, args.tree_size, leaf_hash(leaf_bytes), tx_proof, root)
    note_unsigned_root(report, args.checkpoint, args.tree_size, root)
    return report.status()


def cmd_tx(args) -> int:
    leaf_bytes = parse_hex(args.leaf, "--leaf")
    entries = parse_hex_list(args.entries, "--entries")
    provenance = parse_hex(args.provenance, "--provenance")
    tx_proof = parse_hash_list(args.tx_proof, "--tx-proof")
    root = parse_hex(args.root, "--root", HASH_SIZE)
    leaf = decode_leaf(leaf_bytes)
    entry_text = []
    for i, data in enumerate(entries):
        entry_text += describe_entry(decode_entry(data, f"entry {i}"), f"entry {i} of tx {args.tx}")

    print("\n".join(describe_leaf(leaf, leaf_bytes)))
    if entry_text:
        print("\n".join(entry_text))
    try:
        shown = provenance.decode("utf-8")
    except UnicodeDecodeError:
        shown = "hex " + provenance.hex()
    print(f"provenance ({len(provenance)} bytes): {shown[:500]}{' ...' if len(shown) > 500 else ''}")

    report = Report()
    report.check(leaf["tx"] == args.tx, f"the leaf is the leaf of tx {args.tx}",
                 f"the leaf is the leaf of tx {leaf['tx']}, expected tx {args.tx}")
    report.check(len(entries) == leaf["entry_count"], f"the leaf's entry count is {len(entries)}",
                 f"the leaf's entry count is {leaf['entry_count']}, but {len(entries)} entries were given")
    computed = merkle_tree_hash(entries)
    report.check(computed == leaf["entries_root"],
                 f"the {len(entries)} entries have the leaf's entries root {computed.hex()}",
                 f"the entries root of the {len(entries)} entries is {computed.hex()}, "
                 f"expected (the leaf's) {leaf['entries_root'].hex()}")
    computed = sha256(provenance)
    report.check(computed == leaf["provenance_hash"],
                 f"SHA-256 of the provenance record is the leaf's provenance hash {computed.hex()}",
                 f"SHA-256 of the provenance record is {computed.hex()}, "
                 f"expected (the leaf's) {leaf['provenance_hash'].hex()}")
    report.inclusion(f"tx {args.tx} (leaf index {args.tx - 1})", f"the log tree of size {args.tree_size}",
                     args.tx - 1, args.tree_size, leaf_hash(leaf_bytes), tx_proof, root)
    note_unsigned_root(report, None, args.tree_size, root)
    return report.status()


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are 'FAIL  malformed ...' with exit status 2."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise Malformed(f"arguments: {message}")


def integer(minimum: int):
    def parse(text: str) -> int:
        s = text.strip()
        if not (s.isascii() and s.isdigit()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative decimal integer")
        value = int(s)
        if not minimum <= value < 2**64:
            raise argparse.ArgumentTypeError(f"{value} is not in [{minimum}, 2^64)")
        return value
    return parse


def build_parser() -> Parser:
    parser = Parser(
        prog="rfc9162.py",
        description="Independent verifier of vouchdb's RFC 9162 Merkle proofs (Python standard library only).",
        epilog="Exit status: 0 every check passed, 1 a check failed, 2 malformed input. "
               "Lists of hashes: psql's text[] output {ab..,cd..}, {}, a comma-separated list, or ''.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    u64, tx = integer(0), integer(1)

    p = sub.add_parser("inclusion", help="check an inclusion proof (RFC 9162 section 2.1.3.2)",
                       description="Check that a leaf hash is at --index in the tree of --size leaves with --root.")
    p.add_argument("--index", type=u64, required=True, metavar="I", help="0-based leaf index (tx N is index N-1)")
    p.add_argument("--size", type=u64, required=True, metavar="N", help="tree size")
    p.add_argument("--leaf-hash", required=True, metavar="HEX", help="the leaf hash, SHA-256(0x00 || leaf data)")
    p.add_argument("--root", required=True, metavar="HEX", help="the root hash of the tree")
    p.add_argument("--proof", required=True, metavar="P", help="the inclusion proof hashes, leaf to root")
    p.set_defaults(func=cmd_inclusion)

    p = sub.add_parser("consistency", help="check a consistency proof (RFC 9162 section 2.1.4.2)",
                       description="Check that the tree (--old, --old-root) is a prefix of (--new, --new-root).")
    p.add_argument("--old", type=u64, required=True, metavar="N", help="old tree size")
    p.add_argument("--new", type=u64, required=True, metavar="M", help="new tree size")
    p.add_argument("--old-root", required=True, metavar="HEX")
    p.add_argument("--new-root", required=True, metavar="HEX")
    p.add_argument("--proof", required=True, metavar="P", help="the consistency proof hashes")
    p.set_defaults(func=cmd_consistency)

    p = sub.add_parser("row", help="check one entry: entry -> tx leaf -> log root [-> checkpoint]",
                       description="Decode an entry and its transaction leaf, check the entry is in the "
                                   "transaction's entries tree, the leaf is in the log tree, and optionally "
                                   "that a checkpoint body names that tree.")
    p.add_argument("--tx", type=tx, required=True, metavar="N", help="the transaction id (1-based)")
    p.add_argument("--entry", required=True, metavar="HEX", help="the entry bytes")
    p.add_argument("--entry-index", type=u64, required=True, metavar="I", help="the entry's 0-based index in the tx")
    p.add_argument("--entry-proof", required=True, metavar="P", help="inclusion proof of the entry in the entries tree")
    p.add_argument("--leaf", required=True, metavar="HEX", help="the transaction's leaf data")
    p.add_argument("--tx-proof", required=True, metavar="P", help="inclusion proof of the leaf in the log tree")
    p.add_argument("--tree-size", type=u64, required=True, metavar="N", help="size of the log tree")
    p.add_argument("--root", required=True, metavar="HEX", help="root of the log tree of --tree-size")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="checkpoint body file; its size and root must equal --tree-size and --root "
                        "(its signature is checked separately with openssl)")
    p.set_defaults(func=cmd_row)

    p = sub.add_parser("tx", help="check a whole transaction: entries, provenance, leaf -> log root",
                       description="Recompute the entries root from all entries, check the entry count and "
                                   "the provenance hash, and check the leaf is in the log tree.")
    p.add_argument("--tx", type=tx, required=True, metavar="N", help="the transaction id (1-based)")
    p.add_argument("--leaf", required=True, metavar="HEX", help="the transaction's leaf data")
    p.add_argument("--entries", required=True, metavar="LIST", help="all entries of the tx, in order: {hex,hex}")
    p.add_argument("--provenance", required=True, metavar="HEX", help="the provenance record bytes")
    p.add_argument("--tx-proof", required=True, metavar="P", help="inclusion proof of the leaf in the log tree")
    p.add_argument("--tree-size", type=u64, required=True, metavar="N", help="size of the log tree")
    p.add_argument("--root", required=True, metavar="HEX", help="root of the log tree of --tree-size")
    p.set_defaults(func=cmd_tx)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        sys.stdout.reconfigure(errors="backslashreplace")
    except AttributeError:  # stdout replaced (tests)
        pass
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except Malformed as e:
        print(f"FAIL  malformed {e}")
        return 2
    except Exception as e:  # never a traceback for bad input
        print(f"FAIL  malformed input (unexpected {type(e).__name__}: {e})")
        return 2


if __name__ == "__main__":
    sys.exit(main())
