//! C2SP `tlog-checkpoint` bodies, their ECDSA P-256 signatures, and the C2SP signed-note form.
//!
//! A checkpoint body is three lines, each ending in `\n`: the origin, the tree size in decimal, and the
//! root hash in standard base64. The signature is ECDSA P-256 over SHA-256 of the body bytes, DER-encoded,
//! so `openssl dgst -sha256 -verify pub.pem -signature sig.der body.txt` checks it.
//!
//! The signed-note form appends a blank line and `— <origin> base64(key id ‖ DER signature)`, with signature
//! type `0x02` (ECDSA) of c2sp.org/signed-note: the key id is the first four bytes of SHA-256 of the public
//! key's DER SubjectPublicKeyInfo.

use super::{sha256, Hash, VerifyError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey};

/// The signed statement "the log named `origin` had `size` transactions and this root".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The exact bytes that are signed.
    pub fn body(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, B64.encode(self.root))
    }

    /// Parse a checkpoint body. Extension lines after the first three are allowed by C2SP and ignored here,
    /// but they are part of the signed bytes.
    pub fn parse(body: &str) -> Result<Checkpoint, VerifyError> {
        let bad = |m: &str| VerifyError::MalformedCheckpoint(m.to_string());
        if !body.ends_with('\n') {
            return Err(bad("body does not end with a newline"));
        }
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|l| !l.is_empty()).ok_or_else(|| bad("missing origin line"))?;
        if origin.chars().any(|c| c.is_control()) {
            return Err(bad("origin line contains a control character"));
        }
        let size_line = lines.next().ok_or_else(|| bad("missing tree size line"))?;
        if size_line.is_empty() || !size_line.bytes().all(|b| b.is_ascii_digit()) || (size_line.len() > 1 && size_line.starts_with('0')) {
            return Err(bad("tree size is not a decimal number without leading zeros"));
        }
        let size: u64 = size_line.parse().map_err(|_| bad("tree size does not fit in 64 bits"))?;
        let root_line = lines.next().ok_or_else(|| bad("missing root hash line"))?;
        let root_bytes = B64.decode(root_line).map_err(|_| bad("root hash is not standard base64"))?;
        let root: Hash = root_bytes.try_into().map_err(|_| bad("root hash is not 32 bytes"))?;
        Ok(Checkpoint { origin: origin.to_string(), size, root })
    }
}

/// Parse a PEM public key (SubjectPublicKeyInfo, as `openssl ec -pubout` writes it) on P-256.
pub fn parse_public_key_pem(pem: &str) -> Result<VerifyingKey, VerifyError> {
    VerifyingKey::from_public_key_pem(pem.trim())
        .map_err(|e| VerifyError::BadPublicKey(format!("not a P-256 SubjectPublicKeyInfo PEM: {e}")))
}

/// Verify a DER ECDSA P-256/SHA-256 signature over `body`.
pub fn verify_signature(body: &[u8], signature_der: &[u8], key: &VerifyingKey) -> Result<(), VerifyError> {
    let sig = Signature::from_der(signature_der).map_err(|_| VerifyError::BadSignature("not a DER ECDSA P-256 signature".into()))?;
    key.verify(body, &sig).map_err(|_| VerifyError::BadSignature("ECDSA P-256/SHA-256 check failed for this body and public key".into()))
}

/// c2sp.org/signed-note key id for an ECDSA key: SHA-256 of the DER SubjectPublicKeyInfo, first 4 bytes.
pub fn note_key_id(key: &VerifyingKey) -> [u8; 4] {
    let der = key.to_public_key_der().expect("a valid P-256 point always encodes as SPKI");
    let h = sha256(der.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// Render a signed note: body, blank line, one signature line by `name`.
pub fn signed_note(body: &str, name: &str, key: &VerifyingKey, signature_der: &[u8]) -> String {
    let mut blob = note_key_id(key).to_vec();
    blob.extend_from_slice(signature_der);
    format!("{body}\n\u{2014} {name} {}\n", B64.encode(blob))
}

/// Verify a signed note against a trusted key and name; returns the checkpoint it carries.
/// Signature lines by other keys are ignored (C2SP rule); at least one by the trusted key must verify.
pub fn verify_signed_note(note: &str, name: &str, key: &VerifyingKey) -> Result<Checkpoint, VerifyError> {
    let bad = |m: &str| VerifyError::MalformedCheckpoint(m.to_string());
    let split = note.find("\n\n").ok_or_else(|| bad("signed note has no blank line before its signatures"))?;
    let body = &note[..split + 1];
    let want_id = note_key_id(key);
    let mut found = false;
    for line in note[split + 2..].lines() {
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| bad("signature line does not start with an em dash"))?;
        let (line_name, b64) = rest.rsplit_once(' ').ok_or_else(|| bad("signature line has no signature"))?;
        let blob = B64.decode(b64).map_err(|_| bad("signature is not base64"))?;
        if line_name != name || blob.len() < 5 || blob[..4] != want_id {
            continue;
        }
        verify_signature(body.as_bytes(), &blob[4..], key)?;
        found = true;
    }
    if !found {
        return Err(VerifyError::BadSignature(format!("no signature by key {name} ({})", hex::encode(want_id))));
    }
    Checkpoint::parse(body)
}
