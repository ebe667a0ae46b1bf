//! The provenance record of a transaction (docs/FORMAT.md, "Provenance record"): who committed it,
//! how they authenticated, every statement with its parameter values, the policy rule that admitted
//! each, the snapshot each read, and every input a statement drew from outside its text (the
//! transaction's start time, sequence values, random UUIDs, COPY data), so that an auditor can replay
//! it. The record is canonical JSON (fields in the order below, absent fields omitted); its SHA-256 is
//! the leaf's provenance hash, so it is covered by the Merkle tree and every checkpoint.

use serde::{Deserialize, Serialize};

/// The version written in `"v"` by this code. Records without `"v"` were written before the field
/// existed (they have no parameters, authentication or session fields).
pub const PROVENANCE_VERSION: u32 = 1;

/// How the principal of a transaction authenticated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auth {
    /// `scram-sha-256`, `password` (cleartext over TLS), or `internal` (the server's own work).
    pub method: String,
    /// Whether the connection was TLS.
    pub tls: bool,
    /// SHA-256 of the client certificate (lowercase hex), when the client presented one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
}

/// Why a statement was refused; a refused statement is recorded in a transaction with no entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub sqlstate: String,
    pub message: String,
}

/// A client's signature over the canonical signed bytes of the transaction (docs/PROVENANCE.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSignature {
    /// The signing key, PEM (SubjectPublicKeyInfo), as bound to the role.
    pub key: String,
    /// The client's nonce (any text, unique per key).
    pub nonce: String,
    /// ECDSA P-256 over SHA-256, DER, base64.
    pub signature: String,
}

/// One value a statement drew from a sequence (or a keyless table's `_rowid` counter).
pub type SequenceValue = (String, i64);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(rename = "v", default, skip_serializing_if = "is_zero")]
    pub version: u32,
    /// The principal (role) that committed the transaction.
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// The session (`pg_backend_pid()` of the connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<i64>,
    /// Every statement of the SQL transaction, as sent.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Each statement's parameter values as text (PostgreSQL's text form, timestamps in UTC), null
    /// for NULL; absent when no statement had parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Vec<Option<String>>>,
    /// The policy rule that admitted each statement (null: the role has no policy, so table
    /// privileges applied); absent when no statement was admitted by a policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Option<String>>,
    /// The snapshot (tree size) each statement read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// The transaction's start time (µs since the epoch): what `now()` returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_us: Option<i64>,
    /// The next object (table, index, sequence, view) id when the transaction's first DDL statement
    /// ran: ids handed out by transactions that rolled back are not reused, so replay needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_table_id: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequence_values: Vec<SequenceValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub random_uuids: Vec<String>,
    /// A sequence's state recorded by a transaction of its own (block reservation, setval, RESTART).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_state: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<Refusal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ClientSignature>,
    /// The data of each COPY FROM statement, in order: text, or `{"base64": …}` when not UTF-8.
    /// Written by `append_copy_data`, never re-serialised.
    #[serde(default, skip_serializing)]
    pub copy_data: Vec<serde_json::Value>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Provenance {
    /// A record of work the server does on its own behalf or for one statement of `user`.
    pub fn simple(user: &str, statements: Vec<String>) -> Provenance {
        Provenance { version: PROVENANCE_VERSION, user: user.to_string(), statements, ..Default::default() }
    }

    /// The canonical bytes (without COPY data; see `encode_with_copy_data`).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a provenance record always serialises")
    }

    /// The canonical bytes with `"copy_data": [...]` last, each COPY's data as JSON text when it is
    /// UTF-8, else `{"base64": …}` (written without re-encoding the data through a `serde_json::Value`).
    pub fn encode_with_copy_data(&self, copy_data: &[std::sync::Arc<Vec<u8>>]) -> Vec<u8> {
        let mut out = self.encode();
        if copy_data.is_empty() {
            return out;
        }
        debug_assert_eq!(out.last(), Some(&b'}'));
        out.pop();
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(b"\"copy_data\":[");
        for (i, data) in copy_data.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match std::str::from_utf8(data) {
                Ok(text) => serde_json::to_writer(&mut out, text).expect("writing to a Vec cannot fail"),
                Err(_) => {
                    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, data.as_slice());
                    serde_json::to_writer(&mut out, &serde_json::json!({ "base64": b64 })).expect("writing to a Vec cannot fail");
                }
            }
        }
        out.extend_from_slice(b"]}");
        out
    }

    /// Decode stored record bytes (any version). Records that are not JSON objects (written by
    /// tools with their own records, such as `vouchdb load`) give an error naming the problem.
    pub fn decode(bytes: &[u8]) -> Result<Provenance, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("provenance record is not a vouchdb record: {e}"))
    }

    /// The COPY data of statement-order COPY number `i`, as bytes.
    pub fn copy_bytes(&self, i: usize) -> Option<Vec<u8>> {
        match self.copy_data.get(i)? {
            serde_json::Value::String(s) => Some(s.clone().into_bytes()),
            serde_json::Value::Object(o) => {
                let b64 = o.get("base64")?.as_str()?;
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn round_trip_with_copy_data() {
        let mut p = Provenance::simple("app", vec!["INSERT INTO t VALUES ($1)".into(), "COPY t FROM STDIN".into()]);
        p.params = vec![vec![Some("1".into())], vec![]];
        p.snapshots = vec![3, 3];
        let bytes = p.encode_with_copy_data(&[Arc::new(b"1\n2\n".to_vec()), Arc::new(vec![0xff, 0x00])]);
        let back = Provenance::decode(&bytes).unwrap();
        assert_eq!(back.user, "app");
        assert_eq!(back.params, p.params);
        assert_eq!(back.copy_bytes(0).unwrap(), b"1\n2\n");
        assert_eq!(back.copy_bytes(1).unwrap(), vec![0xff, 0x00]);
        assert!(back.copy_bytes(2).is_none());
        // Field order is the declaration order, so the same record always encodes to the same bytes.
        assert!(String::from_utf8(p.encode()).unwrap().starts_with(r#"{"v":1,"user":"app","statements":"#));
    }

    #[test]
    fn old_records_decode() {
        let p = Provenance::decode(br#"{"user":"admin","statements":["CREATE TABLE t (a int)"],"snapshots":[1]}"#).unwrap();
        assert_eq!(p.version, 0);
        assert_eq!(p.snapshots, vec![1]);
        assert!(Provenance::decode(b"example provenance").is_err());
    }
}
