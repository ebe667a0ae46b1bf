//! Canonical binary encodings of entries and transaction leaf data (docs/FORMAT.md is the byte-level
//! contract). All integers are big-endian; byte strings are a u32 length then the bytes. Encoding is
//! deterministic: one value has exactly one encoding, and decoders reject anything else (trailing bytes,
//! unknown flags, a delete with a value), so a hash of the bytes is a hash of the meaning.

use crate::verify::{leaf_hash, sha256, Hash};

/// Version byte that starts every entry and every leaf.
pub const FORMAT_VERSION: u8 = 1;
/// Entry flag: this entry deletes the key (tombstone); its value is empty.
pub const FLAG_DELETE: u8 = 0x01;
/// Entry flag: this entry is a reference to another key; the reference target follows the value.
pub const FLAG_REFERENCE: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_DELETE | FLAG_REFERENCE;

/// Largest key, value and transaction accepted, so a single request cannot exhaust memory.
pub const MAX_KEY_LEN: usize = 64 * 1024;
pub const MAX_VALUE_LEN: usize = 64 * 1024 * 1024;
pub const MAX_ENTRIES_PER_TX: usize = 1 << 20;

/// What an entry of a reference points at: a key, at a fixed transaction or (tx 0) at its latest version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub table: u32,
    pub key: Vec<u8>,
    pub tx: u64,
}

/// One written row version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub table: u32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub flags: u8,
    pub reference: Option<Reference>,
}

impl Entry {
    pub fn put(table: u32, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Entry {
        Entry { table, key: key.into(), value: value.into(), flags: 0, reference: None }
    }

    pub fn delete(table: u32, key: impl Into<Vec<u8>>) -> Entry {
        Entry { table, key: key.into(), value: Vec::new(), flags: FLAG_DELETE, reference: None }
    }

    pub fn is_delete(&self) -> bool {
        self.flags & FLAG_DELETE != 0
    }

    /// Check the invariants the encoding relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(format!("unknown entry flags {:#04x}", self.flags));
        }
        if self.key.len() > MAX_KEY_LEN {
            return Err(format!("key of {} bytes exceeds the {MAX_KEY_LEN}-byte limit", self.key.len()));
        }
        if self.value.len() > MAX_VALUE_LEN {
            return Err(format!("value of {} bytes exceeds the {MAX_VALUE_LEN}-byte limit", self.value.len()));
        }
        if self.is_delete() && !self.value.is_empty() {
            return Err("a delete entry carries no value".into());
        }
        match (&self.reference, self.flags & FLAG_REFERENCE != 0) {
            (Some(r), true) if r.key.len() > MAX_KEY_LEN => Err("reference key exceeds the key limit".into()),
            (Some(_), true) | (None, false) => Ok(()),
            _ => Err("the reference flag and the reference target must come together".into()),
        }
    }

    /// Canonical bytes: version, flags, table, key, value, [reference table, key, tx].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(18 + self.key.len() + self.value.len());
        out.push(FORMAT_VERSION);
        out.push(self.flags);
        out.extend_from_slice(&self.table.to_be_bytes());
        put_bytes(&mut out, &self.key);
        put_bytes(&mut out, &self.value);
        if let Some(r) = &self.reference {
            out.extend_from_slice(&r.table.to_be_bytes());
            put_bytes(&mut out, &r.key);
            out.extend_from_slice(&r.tx.to_be_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, String> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(format!("entry format version {version} is not supported (this build reads {FORMAT_VERSION})"));
        }
        let flags = r.u8()?;
        let table = r.u32()?;
        let key = r.bytes()?.to_vec();
        let value = r.bytes()?.to_vec();
        let reference =
            if flags & FLAG_REFERENCE != 0 { Some(Reference { table: r.u32()?, key: r.bytes()?.to_vec(), tx: r.u64()? }) } else { None };
        r.finish()?;
        let e = Entry { table, key, value, flags, reference };
        e.validate()?;
        Ok(e)
    }
}

/// The data of one Merkle leaf: everything that identifies a committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafData {
    pub tx: u64,
    /// Server clock at commit, microseconds since the Unix epoch.
    pub commit_time_us: u64,
    /// The client's timestamp as it supplied it, microseconds since the Unix epoch, or 0.
    pub client_time_us: u64,
    pub entry_count: u32,
    pub entries_root: Hash,
    pub provenance_hash: Hash,
    pub state_root: Option<Hash>,
}

impl LeafData {
    /// Canonical bytes: version, tx, commit time, client time, entry count, entries root, provenance
    /// hash, state-root presence byte (0 or 1), [state root].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(126);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.tx.to_be_bytes());
        out.extend_from_slice(&self.commit_time_us.to_be_bytes());
        out.extend_from_slice(&self.client_time_us.to_be_bytes());
        out.extend_from_slice(&self.entry_count.to_be_bytes());
        out.extend_from_slice(&self.entries_root);
        out.extend_from_slice(&self.provenance_hash);
        match &self.state_root {
            None => out.push(0),
            Some(h) => {
                out.push(1);
                out.extend_from_slice(h);
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<LeafData, String> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(format!("leaf format version {version} is not supported (this build reads {FORMAT_VERSION})"));
        }
        let leaf = LeafData {
            tx: r.u64()?,
            commit_time_us: r.u64()?,
            client_time_us: r.u64()?,
            entry_count: r.u32()?,
            entries_root: r.hash()?,
            provenance_hash: r.hash()?,
            state_root: match r.u8()? {
                0 => None,
                1 => Some(r.hash()?),
                b => return Err(format!("state-root presence byte is {b}, not 0 or 1")),
            },
        };
        r.finish()?;
        Ok(leaf)
    }

    /// The Merkle leaf hash of this transaction.
    pub fn hash(&self) -> Hash {
        leaf_hash(&self.encode())
    }
}

/// The root of the RFC 6962 tree whose leaves are the encoded entries of one transaction.
pub fn entries_root(encoded_entries: &[Vec<u8>]) -> Hash {
    let leaves: Vec<Hash> = encoded_entries.iter().map(|e| leaf_hash(e)).collect();
    crate::merkle::reference::root(&leaves)
}

/// The hash of a provenance record that goes into the leaf.
pub fn provenance_hash(record: &[u8]) -> Hash {
    sha256(record)
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// A bounds-checked cursor: every read of stored bytes goes through it, so truncation is an error.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, at: 0 }
    }
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| format!("truncated: needs {n} bytes at offset {} of {}", self.at, self.buf.len()))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("took 4 bytes")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().expect("took 8 bytes")))
    }
    pub(crate) fn hash(&mut self) -> Result<Hash, String> {
        Ok(self.take(32)?.try_into().expect("took 32 bytes"))
    }
    pub(crate) fn hash16(&mut self) -> Result<[u8; 16], String> {
        Ok(self.take(16)?.try_into().expect("took 16 bytes"))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(crate) fn finish(&self) -> Result<(), String> {
        if self.at != self.buf.len() {
            return Err(format!("{} trailing bytes", self.buf.len() - self.at));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40), proptest::collection::vec(any::<u8>(), 0..80), 0u8..3, any::<u64>())
            .prop_map(|(table, key, value, kind, tx)| match kind {
                0 => Entry::put(table, key, value),
                1 => Entry::delete(table, key),
                _ => Entry {
                    table,
                    key: key.clone(),
                    value: Vec::new(),
                    flags: FLAG_REFERENCE,
                    reference: Some(Reference { table, key: value, tx }),
                },
            })
    }

    proptest! {
        #[test]
        fn entries_round_trip_and_reject_any_truncation(e in arb_entry()) {
            let bytes = e.encode();
            prop_assert_eq!(Entry::decode(&bytes).unwrap(), e);
            for cut in 0..bytes.len() {
                prop_assert!(Entry::decode(&bytes[..cut]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(Entry::decode(&longer).is_err());
        }

        #[test]
        fn leaves_round_trip(tx in any::<u64>(), c in any::<u64>(), t in any::<u64>(), n in any::<u32>(), s in any::<Option<[u8; 32]>>()) {
            let l = LeafData { tx, commit_time_us: c, client_time_us: t, entry_count: n, entries_root: [7; 32], provenance_hash: [9; 32], state_root: s };
            let b = l.encode();
            prop_assert_eq!(b.len(), if s.is_some() { 126 } else { 94 });
            prop_assert_eq!(LeafData::decode(&b).unwrap(), l);
            for cut in 0..b.len() {
                prop_assert!(LeafData::decode(&b[..cut]).is_err());
            }
        }
    }

    #[test]
    fn decoders_reject_non_canonical_input() {
        let mut d = Entry::delete(1, b"k".to_vec()).encode();
        assert!(Entry::decode(&d).is_ok());
        // A delete that carries a value.
        d[11..15].copy_from_slice(&1u32.to_be_bytes());
        d.push(b'x');
        assert!(Entry::decode(&d).is_err());
        let mut unknown = Entry::put(1, b"k".to_vec(), b"v".to_vec()).encode();
        unknown[1] = 0x80;
        assert!(Entry::decode(&unknown).unwrap_err().contains("unknown entry flags"));
        let mut v2 = unknown.clone();
        v2[0] = 2;
        assert!(Entry::decode(&v2).unwrap_err().contains("version 2"));
    }
}
