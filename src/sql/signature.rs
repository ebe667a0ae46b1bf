//! Client signatures over transactions (docs/PROVENANCE.md, "Client signatures"): the keys bound to
//! roles and the exact bytes a client signs. Verification uses `crate::verify` only, so auditors and
//! clients check signatures with the same code as the server.

use super::error::{SqlError, SqlResult};
use p256::ecdsa::VerifyingKey;
use p256::pkcs8::EncodePublicKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Parse a P-256 public key (PEM SubjectPublicKeyInfo, as `openssl ec -pubout` writes it).
pub fn parse_public_key(pem: &str) -> SqlResult<VerifyingKey> {
    crate::verify::checkpoint::parse_public_key_pem(pem).map_err(|e| SqlError::new("22023", format!("signing key: {e}")))
}

/// The canonical PEM of a key (what the catalog stores and the provenance record names).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    crate::signing::public_key_pem(key)
}

/// A key's fingerprint: SHA-256 of its DER SubjectPublicKeyInfo, lowercase hex
/// (`openssl pkey -pubin -outform DER | sha256sum`).
pub fn fingerprint(key: &VerifyingKey) -> String {
    let der = key.to_public_key_der().expect("a valid P-256 point always encodes as SPKI");
    hex::encode(Sha256::digest(der.as_bytes()))
}

pub fn fingerprint_of_pem(pem: &str) -> Option<String> {
    parse_public_key(pem).ok().map(|k| fingerprint(&k))
}

#[derive(Serialize)]
struct Signed<'a> {
    v: u32,
    role: &'a str,
    client_time_us: u64,
    nonce: &'a str,
    statements: &'a [String],
    params: Vec<&'a [Option<String>]>,
}

/// The bytes a client signs for a transaction: compact JSON with the fields in this order —
/// `{"v":1,"role":…,"client_time_us":…,"nonce":…,"statements":[…],"params":[[…],…]}` — with one
/// parameter list per statement (empty when it had none), values as their text, null for NULL.
pub fn signed_message(role: &str, client_time_us: u64, nonce: &str, statements: &[String], params: &[Vec<Option<String>>]) -> Vec<u8> {
    const NONE: &[Option<String>] = &[];
    let params = (0..statements.len()).map(|i| params.get(i).map_or(NONE, Vec::as_slice)).collect();
    serde_json::to_vec(&Signed { v: 1, role, client_time_us, nonce, statements, params }).expect("a signed message always serialises")
}

/// Sign a transaction's message (the client side: `crate::client` and the gateway).
pub fn sign(key: &p256::ecdsa::SigningKey, message: &[u8]) -> String {
    use p256::ecdsa::signature::Signer;
    let sig: p256::ecdsa::Signature = key.sign(message);
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sig.to_der().as_bytes())
}

/// Check `signature_b64` (DER, base64) over `message` against `key_pem`.
pub fn verify(key_pem: &str, message: &[u8], signature_b64: &str) -> Result<(), String> {
    let key = crate::verify::checkpoint::parse_public_key_pem(key_pem).map_err(|e| e.to_string())?;
    let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, signature_b64.trim())
        .map_err(|_| "the signature is not base64".to_string())?;
    crate::verify::checkpoint::verify_signature(message, &der, &key).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let key = p256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap();
        let pem = public_key_pem(key.verifying_key());
        let msg = signed_message("app", 5, "n1", &["INSERT INTO t VALUES ($1)".into()], &[vec![Some("1".into())]]);
        assert_eq!(
            String::from_utf8(msg.clone()).unwrap(),
            r#"{"v":1,"role":"app","client_time_us":5,"nonce":"n1","statements":["INSERT INTO t VALUES ($1)"],"params":[["1"]]}"#
        );
        let sig = sign(&key, &msg);
        verify(&pem, &msg, &sig).unwrap();
        let other = signed_message("app", 5, "n2", &["INSERT INTO t VALUES ($1)".into()], &[vec![Some("1".into())]]);
        assert!(verify(&pem, &other, &sig).is_err());
        assert_eq!(fingerprint_of_pem(&pem).unwrap().len(), 64);
    }
}
