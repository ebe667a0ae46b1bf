"""Tests of rfc9162.py. Run: python3 -m unittest discover -s tests/verifier -v

The reference here is a naive, recursive transcription of RFC 6962 section 2.1: MTH, PATH (the audit
path) and PROOF/SUBPROOF (the consistency proof). rfc9162.py's iterative RFC 9162 algorithms must
accept every proof these produce and reject every altered one.
"""

import base64
import contextlib
import hashlib
import io
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import rfc9162

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rfc9162.py")
MAX_SIZE = 40


# ---- naive RFC 6962 section 2.1 reference --------------------------------------------------------

def H(data):
    return hashlib.sha256(data).digest()


def split_point(n):
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(d):
    n = len(d)
    if n == 0:
        return H(b"")
    if n == 1:
        return H(b"\x00" + d[0])
    k = split_point(n)
    return H(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m, d):
    """PATH(m, D[n]), RFC 6962 section 2.1.1."""
    n = len(d)
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def proof(m, d):
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), RFC 6962 section 2.1.2."""
    def subproof(m, d, b):
        n = len(d)
        if m == n:
            return [] if b else [mth(d)]
        k = split_point(n)
        if m <= k:
            return subproof(m, d[:k], b) + [mth(d[k:])]
        return subproof(m - k, d[k:], False) + [mth(d[:k])]
    return subproof(m, d, True)


def naive_inclusion_ok(m, n, leaf_h, proof_, root):
    """Rebuild the root by following PATH's recursion; the second, independent verifier."""
    if m >= n:
        return False
    it = iter(proof_)

    def rebuild(m, n):
        if n == 1:
            return leaf_h
        k = split_point(n)
        if m < k:
            left = rebuild(m, k)
            return H(b"\x01" + left + next(it))
        right = rebuild(m - k, n - k)
        return H(b"\x01" + next(it) + right)
    try:
        r = rebuild(m, n)
    except StopIteration:
        return False
    return next(it, None) is None and r == root


def naive_consistency_ok(m, n, old_root, new_root, proof_):
    """Rebuild both roots by following SUBPROOF's recursion."""
    if m > n:
        return False
    if m == 0:
        return not proof_ and old_root == H(b"")
    if m == n:
        return not proof_ and old_root == new_root
    it = iter(proof_)

    def rebuild(m, n, b):  # -> (old subtree root, new subtree root)
        if m == n:
            if b:
                return old_root, old_root
            h = next(it)
            return h, h
        k = split_point(n)
        if m <= k:
            o, w = rebuild(m, k, b)
            return o, H(b"\x01" + w + next(it))
        o, w = rebuild(m - k, n - k, False)
        s = next(it)
        return H(b"\x01" + s + o), H(b"\x01" + s + w)
    try:
        o, w = rebuild(m, n, True)
    except StopIteration:
        return False
    return next(it, None) is None and o == old_root and w == new_root


LEAVES = [b"leaf data %d" % i for i in range(MAX_SIZE + 2)]
ROOTS = [mth(LEAVES[:n]) for n in range(MAX_SIZE + 3)]


def flipped(h, i):
    return h[:i] + bytes([h[i] ^ 0x01]) + h[i + 1:]


def run(*argv):
    """Run the CLI in-process: (exit status, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = rfc9162.main([str(a) for a in argv])
    return code, out.getvalue()


def pg_array(hashes):
    return "{" + ",".join(h.hex() for h in hashes) + "}"


# ---- vectors ---------------------------------------------------------------------------------------

class Vectors(unittest.TestCase):
    def test_empty_tree_root(self):
        self.assertEqual(rfc9162.merkle_tree_hash([]).hex(),
                         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    def test_empty_leaf_hash(self):
        self.assertEqual(rfc9162.leaf_hash(b"").hex(),
                         "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        self.assertEqual(rfc9162.merkle_tree_hash([b""]).hex(),
                         "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")

    def test_merkle_tree_hash_matches_naive(self):
        for n in range(MAX_SIZE + 1):
            self.assertEqual(rfc9162.merkle_tree_hash(LEAVES[:n]), ROOTS[n], n)


# ---- inclusion -------------------------------------------------------------------------------------

class Inclusion(unittest.TestCase):
    def test_all_proofs_verify(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                p = path(m, LEAVES[:n])
                self.assertTrue(rfc9162.verify_inclusion(m, n, H(b"\x00" + LEAVES[m]), p, ROOTS[n]), (m, n))

    def test_every_flipped_byte_fails(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                leaf = H(b"\x00" + LEAVES[m])
                p = path(m, LEAVES[:n])
                for j in range(len(p)):
                    for i in range(32):
                        bad = p[:j] + [flipped(p[j], i)] + p[j + 1:]
                        self.assertFalse(rfc9162.verify_inclusion(m, n, leaf, bad, ROOTS[n]), (m, n, j, i))
                for i in range(32):
                    self.assertFalse(rfc9162.verify_inclusion(m, n, flipped(leaf, i), p, ROOTS[n]))
                    self.assertFalse(rfc9162.verify_inclusion(m, n, leaf, p, flipped(ROOTS[n], i)))

    def test_extra_and_missing_hashes_fail(self):
        extra = H(b"extra")
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                leaf = H(b"\x00" + LEAVES[m])
                p = path(m, LEAVES[:n])
                for j in range(len(p) + 1):
                    self.assertFalse(rfc9162.verify_inclusion(m, n, leaf, p[:j] + [extra] + p[j:], ROOTS[n]))
                    self.assertFalse(rfc9162.verify_inclusion(m, n, leaf, p[:j] + [ROOTS[n]] + p[j:], ROOTS[n]))
                for j in range(len(p)):
                    self.assertFalse(rfc9162.verify_inclusion(m, n, leaf, p[:j] + p[j + 1:], ROOTS[n]), (m, n, j))

    def test_wrong_index_fails(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                leaf = H(b"\x00" + LEAVES[m])
                p = path(m, LEAVES[:n])
                for wrong in range(n + 2):
                    if wrong != m:
                        self.assertFalse(rfc9162.verify_inclusion(wrong, n, leaf, p, ROOTS[n]), (m, wrong, n))

    def test_wrong_size(self):
        # An inclusion proof does not by itself bind the tree size: the proof for leaf 0 of a tree of
        # 3 leaves also "verifies" for size 4 against the root of 3 leaves, because both audit paths
        # have the same shape. The size is bound by the signed checkpoint (size, root). So a wrong
        # size must fail exactly when its audit path has another shape than the true size's, which
        # the independent recursive verifier decides.
        accepted = 0
        for n in range(1, MAX_SIZE + 1):
            for m in range(n):
                leaf = H(b"\x00" + LEAVES[m])
                p = path(m, LEAVES[:n])
                for wrong in range(0, MAX_SIZE + 3):
                    if wrong == n:
                        continue
                    got = rfc9162.verify_inclusion(m, wrong, leaf, p, ROOTS[n])
                    self.assertEqual(got, naive_inclusion_ok(m, wrong, leaf, p, ROOTS[n]), (m, n, wrong))
                    accepted += got
                    # With the wrong size's own root (as a checkpoint of that size would carry), it fails.
                    if wrong > m:
                        self.assertFalse(rfc9162.verify_inclusion(m, wrong, leaf, p, ROOTS[wrong]), (m, n, wrong))
        self.assertTrue(rfc9162.verify_inclusion(0, 4, H(b"\x00" + LEAVES[0]), path(0, LEAVES[:3]), ROOTS[3]))
        self.assertGreater(accepted, 0)

    def test_cli(self):
        n, m = 13, 6
        leaf = H(b"\x00" + LEAVES[m]).hex()
        p = path(m, LEAVES[:n])
        for form in (pg_array(p), ",".join(h.hex() for h in p), " { " + ",".join(h.hex().upper() for h in p) + " } "):
            code, out = run("inclusion", "--index", m, "--size", n, "--leaf-hash", leaf, "--root", ROOTS[n].hex(), "--proof", form)
            self.assertEqual(code, 0, out)
            self.assertIn(f"OK  leaf {m}", out)
        code, out = run("inclusion", "--index", m, "--size", n, "--leaf-hash", leaf, "--root", ROOTS[n].hex(),
                        "--proof", pg_array(p[:-1]))
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL  leaf 6", out)
        code, out = run("inclusion", "--index", m, "--size", n, "--leaf-hash", leaf, "--root", ROOTS[n].hex(),
                        "--proof", pg_array([flipped(p[0], 3)] + p[1:]))
        self.assertEqual(code, 1, out)
        self.assertIn(ROOTS[n].hex(), out)
        # One leaf: the proof is empty, written '{}' or ''.
        for form in ("{}", ""):
            code, out = run("inclusion", "--index", 0, "--size", 1, "--leaf-hash", H(b"\x00" + LEAVES[0]).hex(),
                            "--root", ROOTS[1].hex(), "--proof", form)
            self.assertEqual(code, 0, out)
        code, out = run("inclusion", "--index", 0, "--size", 0, "--leaf-hash", leaf, "--root", ROOTS[0].hex(), "--proof", "")
        self.assertEqual(code, 1, out)


# ---- consistency -----------------------------------------------------------------------------------

class Consistency(unittest.TestCase):
    def test_all_proofs_verify(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(1, n + 1):
                p = proof(m, LEAVES[:n])
                self.assertTrue(rfc9162.verify_consistency(m, n, ROOTS[m], ROOTS[n], p), (m, n))

    def test_edge_cases(self):
        empty = H(b"")
        for n in range(0, MAX_SIZE + 1):
            self.assertTrue(rfc9162.verify_consistency(0, n, empty, ROOTS[n], []))
            self.assertFalse(rfc9162.verify_consistency(0, n, empty, ROOTS[n], [ROOTS[n]]))
            self.assertFalse(rfc9162.verify_consistency(0, n, ROOTS[1], ROOTS[n], []))
            self.assertTrue(rfc9162.verify_consistency(n, n, ROOTS[n], ROOTS[n], []))
            self.assertFalse(rfc9162.verify_consistency(n, n, ROOTS[n], ROOTS[n], [ROOTS[n]]))
            if n > 0:
                self.assertFalse(rfc9162.verify_consistency(n, n, ROOTS[n], ROOTS[n - 1], []))
                self.assertFalse(rfc9162.verify_consistency(n, n - 1, ROOTS[n], ROOTS[n - 1], []))
            if n > 1:  # old > new, with the proof of the sizes the other way round
                self.assertFalse(rfc9162.verify_consistency(n, n - 1, ROOTS[n], ROOTS[n - 1], proof(n - 1, LEAVES[:n])))
        for n in range(2, MAX_SIZE + 1):
            for m in range(1, n):
                self.assertFalse(rfc9162.verify_consistency(m, n, ROOTS[m], ROOTS[n], []), (m, n))

    def test_every_flipped_byte_fails(self):
        for n in range(1, MAX_SIZE + 1):
            for m in range(1, n + 1):
                p = proof(m, LEAVES[:n])
                for j in range(len(p)):
                    for i in range(32):
                        bad = p[:j] + [flipped(p[j], i)] + p[j + 1:]
                        self.assertFalse(rfc9162.verify_consistency(m, n, ROOTS[m], ROOTS[n], bad), (m, n, j, i))
                for i in range(32):
                    self.assertFalse(rfc9162.verify_consistency(m, n, flipped(ROOTS[m], i), ROOTS[n], p), (m, n, i))
                    self.assertFalse(rfc9162.verify_consistency(m, n, ROOTS[m], flipped(ROOTS[n], i), p), (m, n, i))

    def test_extra_and_missing_hashes_fail(self):
        extra = H(b"extra")
        for n in range(1, MAX_SIZE + 1):
            for m in range(1, n + 1):
                p = proof(m, LEAVES[:n])
                for j in range(len(p) + 1):
                    for e in (extra, ROOTS[m], ROOTS[n]):
                        self.assertFalse(rfc9162.verify_consistency(m, n, ROOTS[m], ROOTS[n], p[:j] + [e] + p[j:]),
                                         (m, n, j))
                for j in range(len(p)):
                    self.assertFalse(rfc9162.verify_consistency(m, n, ROOTS[m], ROOTS[n], p[:j] + p[j + 1:]), (m, n, j))

    def test_wrong_sizes(self):
        # As for inclusion, a consistency proof alone does not bind the sizes (e.g. the proof for
        # 1 -> 4 also verifies as 1 -> 3 with the same roots). A wrong size must fail exactly when
        # the independent recursive verifier rejects it, and always with the wrong size's own root.
        accepted = 0
        for n in range(1, MAX_SIZE + 1):
            for m in range(1, n + 1):
                p = proof(m, LEAVES[:n])
                for wrong_old in range(0, n + 2):
                    if wrong_old != m:
                        got = rfc9162.verify_consistency(wrong_old, n, ROOTS[m], ROOTS[n], p)
                        self.assertEqual(got, naive_consistency_ok(wrong_old, n, ROOTS[m], ROOTS[n], p), (m, n, wrong_old))
                        accepted += got
                        # With the wrong old size's own root, only that size's genuine proof passes.
                        genuine = ([] if wrong_old in (0, n) else
                                   None if wrong_old > n else proof(wrong_old, LEAVES[:n]))
                        self.assertEqual(rfc9162.verify_consistency(wrong_old, n, ROOTS[wrong_old], ROOTS[n], p),
                                         p == genuine, (m, n, wrong_old))
                for wrong_new in range(0, MAX_SIZE + 3):
                    if wrong_new != n:
                        got = rfc9162.verify_consistency(m, wrong_new, ROOTS[m], ROOTS[n], p)
                        self.assertEqual(got, naive_consistency_ok(m, wrong_new, ROOTS[m], ROOTS[n], p), (m, n, wrong_new))
                        accepted += got
                        self.assertFalse(rfc9162.verify_consistency(m, wrong_new, ROOTS[m], ROOTS[wrong_new], p),
                                         (m, n, wrong_new))
        self.assertTrue(rfc9162.verify_consistency(1, 3, ROOTS[1], ROOTS[4], proof(1, LEAVES[:4])))
        self.assertGreater(accepted, 0)

    def test_cli(self):
        m, n = 7, 23
        p = proof(m, LEAVES[:n])
        args = ["consistency", "--old", m, "--new", n, "--old-root", ROOTS[m].hex(), "--new-root", ROOTS[n].hex()]
        code, out = run(*args, "--proof", pg_array(p))
        self.assertEqual(code, 0, out)
        code, out = run(*args, "--proof", ",".join(h.hex() for h in p))
        self.assertEqual(code, 0, out)
        code, out = run(*args, "--proof", pg_array(p + [p[0]]))
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL  ", out)
        code, out = run("consistency", "--old", 5, "--new", 5, "--old-root", ROOTS[5].hex(),
                        "--new-root", ROOTS[5].hex(), "--proof", "{}")
        self.assertEqual(code, 0, out)
        code, out = run("consistency", "--old", 0, "--new", 5, "--old-root", H(b"").hex(),
                        "--new-root", ROOTS[5].hex(), "--proof", "")
        self.assertEqual(code, 0, out)
        code, out = run("consistency", "--old", 0, "--new", 5, "--old-root", H(b"").hex(),
                        "--new-root", ROOTS[5].hex(), "--proof", pg_array([ROOTS[5]]))
        self.assertEqual(code, 1, out)


# ---- encoders for the byte formats (from the brief / docs/FORMAT.md) ------------------------------

def bstr(b):
    return struct.pack(">I", len(b)) + b


def encode_entry(table, key, value, flags=0, ref=None):
    out = struct.pack(">BBI", 1, flags, table) + bstr(key) + bstr(value)
    if flags & 0x02:
        ref_table, ref_key, ref_tx = ref
        out += struct.pack(">I", ref_table) + bstr(ref_key) + struct.pack(">Q", ref_tx)
    return out


def encode_leaf(tx, commit_us, client_us, entries, provenance, state_root=None):
    out = struct.pack(">BQQQI", 1, tx, commit_us, client_us, len(entries))
    out += mth(entries) + H(provenance)
    out += b"\x01" + state_root if state_root is not None else b"\x00"
    return out


def encode_row(schema_version, values):
    """values: list of (tag, payload bytes)."""
    return struct.pack(">BIH", 1, schema_version, len(values)) + b"".join(bytes([t]) + p for t, p in values)


ROW_VALUES = [
    (0x00, b""),
    (0x01, b"\x01"),
    (0x02, struct.pack(">q", -42)),
    (0x03, struct.pack(">d", 2.5)),
    (0x04, bstr(b"123.4500")),
    (0x05, bstr("h\u00e9llo".encode())),
    (0x06, bstr(b"\xde\xad")),
    (0x07, struct.pack(">q", 1700000000000000)),
    (0x08, struct.pack(">q", 1700000000250000)),
    (0x09, struct.pack(">i", 19675)),
    (0x0A, bytes(range(16))),
    (0x0B, bstr(b'{"a":[1,2]}')),
    (0x0C, b"\x00\x00\x00\x02xy"),  # an array tag this verifier does not decode
    (0x00, b""),
]


class EndToEnd(unittest.TestCase):
    TX = 5

    def setUp(self):
        self.entries = [
            encode_entry(1001, b"\x02\x80\x00\x00\x00\x00\x00\x00\x2a", encode_row(3, ROW_VALUES)),
            encode_entry(1001, b"\x02\x80\x00\x00\x00\x00\x00\x00\x07", b"", flags=0x01),
            encode_entry(1002, b"k", encode_row(1, [(0x02, struct.pack(">q", 7))]), flags=0x02, ref=(1001, b"r", 4)),
        ]
        self.provenance = b'{"user":"alice","statements":["INSERT ..."]}'
        self.leaf = encode_leaf(self.TX, 1700000000250000, 0, self.entries, self.provenance, state_root=H(b"state"))
        self.log = [encode_leaf(t, 1700000000000000 + t, t, [encode_entry(1001, b"x%d" % t, b"")], b"p")
                    for t in range(1, 8)]
        self.log[self.TX - 1] = self.leaf
        self.size = len(self.log)
        self.root = mth(self.log)
        self.tmp = tempfile.TemporaryDirectory()
        self.checkpoint = os.path.join(self.tmp.name, "body.txt")
        self.write_checkpoint(self.size, self.root)

    def tearDown(self):
        self.tmp.cleanup()

    def write_checkpoint(self, size, root):
        with open(self.checkpoint, "w") as f:
            f.write(f"vouchdb/test\n{size}\n{base64.b64encode(root).decode()}\n")

    def row_args(self, i, **over):
        a = {
            "--tx": self.TX,
            "--entry": self.entries[i].hex(),
            "--entry-index": i,
            "--entry-proof": pg_array(path(i, self.entries)),
            "--leaf": self.leaf.hex(),
            "--tx-proof": pg_array(path(self.TX - 1, self.log)),
            "--tree-size": self.size,
            "--root": self.root.hex(),
            "--checkpoint": self.checkpoint,
        }
        a.update(over)
        return ["row"] + [x for k, v in a.items() if v is not None for x in (k, v)]

    def test_row_ok(self):
        code, out = run(*self.row_args(0))
        self.assertEqual(code, 0, out)
        for line in [
            "table id     1001",
            "key          02800000000000002a",
            "schema version 3, 14 values",
            "value 0: NULL",
            "value 1: boolean true",
            "value 2: integer -42",
            "value 3: float 2.5",
            "value 4: numeric 123.4500",
            'value 5: text "h\u00e9llo"',
            "value 6: bytea \\xdead",
            "value 7: timestamp 2023-11-14T22:13:20",
            "value 8: timestamptz 2023-11-14T22:13:20.250000Z",
            "value 9: date 2023-11-14",
            "value 10: uuid 00010203-0405-0607-0809-0a0b0c0d0e0f",
            'value 11: jsonb {"a":[1,2]}',
            "value 12: undecoded tag 0x0C",
            "OK  the leaf is the leaf of tx 5",
            f"OK  entry 0 is in the entries tree of tx 5 (3 entries), root {mth(self.entries).hex()}",
            f"OK  tx 5 (leaf index 4) is in the log tree of size 7, root {self.root.hex()}",
            "OK  checkpoint",
            "openssl dgst -sha256 -verify pub.pem -signature sig.der",
        ]:
            self.assertIn(line, out)
        self.assertNotIn("value 13", out)
        self.assertNotIn("FAIL", out)

    def test_row_other_entries_and_forms(self):
        code, out = run(*self.row_args(1))
        self.assertEqual(code, 0, out)
        self.assertIn("0x01 (delete)", out)
        code, out = run(*self.row_args(2, **{"--entry-proof": ",".join(h.hex() for h in path(2, self.entries)),
                                             "--checkpoint": None}))
        self.assertEqual(code, 0, out)
        self.assertIn("reference    table 1001, key 72, tx 4", out)
        self.assertIn("NOTE  no --checkpoint given", out)

    def test_row_failures(self):
        def expect(code_wanted, text, i=0, **over):
            code, out = run(*self.row_args(i, **over))
            self.assertEqual(code, code_wanted, out)
            self.assertIn(text, out)
            self.assertNotIn("Traceback", out)
            return out

        expect(1, "FAIL  the leaf is the leaf of tx 5, expected tx 4", **{"--tx": 4})
        expect(1, "FAIL  entry 1 is not proven", **{"--entry-index": 1})
        other = encode_entry(1001, b"\x02\x80\x00\x00\x00\x00\x00\x00\x07", encode_row(3, []))
        expect(1, "FAIL  entry 1 is not proven", i=1, **{"--entry": other.hex()})  # same key, a put, not the delete
        expect(2, "FAIL  malformed row value: truncated", i=1,
               **{"--entry": encode_entry(1001, b"k", encode_row(3, [(0x02, b"\x00")])).hex()})
        bad_proof = path(self.TX - 1, self.log)
        bad_proof[1] = flipped(bad_proof[1], 31)
        out = expect(1, "FAIL  tx 5 (leaf index 4) is not proven", **{"--tx-proof": pg_array(bad_proof)})
        self.assertIn(self.root.hex(), out)
        expect(1, "FAIL  tx 5", **{"--tx-proof": pg_array(path(self.TX - 1, self.log)[:-1])})
        expect(1, "FAIL  tx 5", **{"--tree-size": 6})
        # Leaf 4 has the same audit path shape in trees of 7 and 8 leaves, so the proof alone passes
        # with size 8; the checkpoint, which binds size and root, catches it.
        out = expect(1, "FAIL  checkpoint", **{"--tree-size": 8})
        self.assertIn("OK  tx 5 (leaf index 4) is in the log tree of size 8", out)
        self.write_checkpoint(self.size + 1, self.root)
        expect(1, "FAIL  checkpoint", **{})
        self.write_checkpoint(self.size, H(b"other"))
        expect(1, "FAIL  checkpoint", **{})
        # Malformed input: status 2.
        expect(2, "FAIL  malformed leaf: 1 trailing bytes", **{"--leaf": self.leaf.hex() + "00"})
        expect(2, "FAIL  malformed leaf: truncated", **{"--leaf": self.leaf[:-1].hex()})
        expect(2, "FAIL  malformed leaf: version 2", **{"--leaf": "02" + self.leaf[1:].hex()})
        expect(2, "FAIL  malformed --entry", **{"--entry": "zz"})
        expect(2, "FAIL  malformed --entry", **{"--entry": "abc"})
        expect(2, "FAIL  malformed entry: unknown flag bits", **{"--entry": "0104" + self.entries[0][2:].hex()})
        expect(2, "FAIL  malformed entry: truncated", **{"--entry": self.entries[0][:-3].hex()})
        expect(2, "FAIL  malformed --tx-proof hash 0", **{"--tx-proof": "{abcd}"})
        expect(2, "FAIL  malformed arguments", **{"--tree-size": "-1"})
        expect(2, "FAIL  malformed arguments", **{"--tx": "0"})
        expect(2, "FAIL  malformed checkpoint", **{"--checkpoint": os.path.join(self.tmp.name, "missing")})
        with open(self.checkpoint, "w") as f:
            f.write("vouchdb/test\n7\nnot base64!\n")
        expect(2, "FAIL  malformed checkpoint", **{})

    def test_tx(self):
        args = ["tx", "--tx", self.TX, "--leaf", self.leaf.hex(), "--entries", pg_array(self.entries),
                "--provenance", self.provenance.hex(), "--tx-proof", pg_array(path(self.TX - 1, self.log)),
                "--tree-size", self.size, "--root", self.root.hex()]
        code, out = run(*args)
        self.assertEqual(code, 0, out)
        self.assertIn(f"OK  the 3 entries have the leaf's entries root {mth(self.entries).hex()}", out)
        self.assertIn("OK  SHA-256 of the provenance record", out)
        self.assertIn("value 12: undecoded tag 0x0C", out)

        def with_(flag, value):
            a = list(args)
            a[a.index(flag) + 1] = value
            return a
        code, out = run(*with_("--entries", pg_array(self.entries[:2])))
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL  the leaf's entry count is 3, but 2 entries were given", out)
        self.assertIn("FAIL  the entries root of the 2 entries", out)
        code, out = run(*with_("--entries", pg_array([self.entries[1], self.entries[0], self.entries[2]])))
        self.assertEqual(code, 1, out)
        code, out = run(*with_("--provenance", (self.provenance + b" ").hex()))
        self.assertEqual(code, 1, out)
        self.assertIn(f"expected (the leaf's) {H(self.provenance).hex()}", out)
        # bytea[] as psql prints it: quoted elements with an escaped backslash.
        quoted = "{" + ",".join('"\\\\x' + e.hex() + '"' for e in self.entries) + "}"
        code, out = run(*with_("--entries", quoted))
        self.assertEqual(code, 0, out)
        code, out = run(*with_("--entries", "{" + self.entries[0].hex() + "00}"))
        self.assertEqual(code, 2, out)


class FormatWorkedExample(unittest.TestCase):
    """The worked example of docs/FORMAT.md: a transaction 1 with one entry."""

    ENTRY = bytes.fromhex("0100000000010000000561 6c696365 0000000f 7b2262616c616e6365223a3130307d".replace(" ", ""))
    LEAF = bytes.fromhex(
        "01 0000000000000001 00060a2418221090 00060a24181e4000 00000001"
        "0a696d3c6d59e3725a2ac1388e264619a68a5c28ca2204bbe3d7a6f11780072b"
        "b9973ac3b96081b85e3983f2068d793ff912836afe73264b11df71024f0db21c 00".replace(" ", ""))

    def test_example(self):
        self.assertEqual(len(self.ENTRY), 34)
        self.assertEqual(len(self.LEAF), 94)
        self.assertEqual(rfc9162.leaf_hash(self.LEAF).hex(),
                         "8c4a67ea5219d22d045efa0e78de2d3f0042775b06e26299e2d4d23ce707c5df")
        with tempfile.TemporaryDirectory() as d:
            body = os.path.join(d, "body.txt")
            with open(body, "w") as f:
                f.write("vouchdb/example\n1\njEpn6lIZ0i0EXvoOeN4tPwBCd1sG4mKZ4tTSPOcHxd8=\n")
            code, out = run("row", "--tx", 1, "--entry", self.ENTRY.hex(), "--entry-index", 0, "--entry-proof", "{}",
                            "--leaf", "\\x" + self.LEAF.hex(), "--tx-proof", "{}", "--tree-size", 1,
                            "--root", rfc9162.leaf_hash(self.LEAF).hex(), "--checkpoint", body)
        self.assertEqual(code, 0, out)
        self.assertIn('system table document, 15 bytes: {"balance":100}', out)
        code, out = run("tx", "--tx", 1, "--leaf", self.LEAF.hex(), "--entries", self.ENTRY.hex(),
                        "--provenance", b"example provenance".hex(), "--tx-proof", "", "--tree-size", 1,
                        "--root", "8c4a67ea5219d22d045efa0e78de2d3f0042775b06e26299e2d4d23ce707c5df")
        self.assertEqual(code, 0, out)


class Process(unittest.TestCase):
    """The script as a process: exit statuses and no tracebacks."""

    def sh(self, *argv):
        return subprocess.run([sys.executable, SCRIPT, *argv], capture_output=True, text=True)

    def test_help(self):
        for sub in ([], ["inclusion"], ["consistency"], ["row"], ["tx"]):
            r = self.sh(*sub, "--help")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("usage:", r.stdout)

    def test_bad_input(self):
        for argv in ([], ["nope"], ["inclusion"],
                     ["inclusion", "--index", "x", "--size", "1", "--leaf-hash", "00", "--root", "00", "--proof", ""],
                     ["inclusion", "--index", "0", "--size", "1", "--leaf-hash", "00", "--root", "00", "--proof", ""],
                     ["inclusion", "--index", "0", "--size", "1", "--leaf-hash", "g" * 64, "--root", "0" * 64, "--proof", ""],
                     ["consistency", "--old", "1", "--new", "2", "--old-root", "0" * 64, "--new-root", "0" * 64,
                      "--proof", "{" + "0" * 63 + "}"],
                     ["row", "--tx", "1", "--entry", "", "--entry-index", "0", "--entry-proof", "", "--leaf", "",
                      "--tx-proof", "", "--tree-size", "1", "--root", "0" * 64]):
            r = self.sh(*argv)
            self.assertEqual(r.returncode, 2, (argv, r.stdout, r.stderr))
            self.assertIn("FAIL  malformed", r.stdout)
            self.assertNotIn("Traceback", r.stdout + r.stderr)

    def test_fail_status(self):
        r = self.sh("inclusion", "--index", "0", "--size", "1", "--leaf-hash", "0" * 64, "--root", "1" * 64, "--proof", "{}")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("FAIL  leaf 0", r.stdout)


if __name__ == "__main__":
    unittest.main()
