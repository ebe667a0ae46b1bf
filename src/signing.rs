//! The checkpoint signing key (ECDSA P-256) and signed checkpoints.
//!
//! Keys are PEM files: SEC1 (`-----BEGIN EC PRIVATE KEY-----`, as `openssl ecparam -name prime256v1
//! -genkey -noout` writes it, also with the `EC PARAMETERS` block when `-noout` is left out) or PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`). Anything else, including a key on another curve, is refused with a
//! message naming the file.

use crate::error::{Error, Result};
use crate::ledger::Head;
use crate::verify::checkpoint::{signed_note, Checkpoint};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use p256::SecretKey;
use std::path::{Path, PathBuf};

/// OIDs of curves people commonly generate by mistake, to name them in the error.
const OTHER_CURVES: [(&[u8], &str); 3] = [
    (&[0x2b, 0x81, 0x04, 0x00, 0x22], "secp384r1 (P-384)"),
    (&[0x2b, 0x81, 0x04, 0x00, 0x23], "secp521r1 (P-521)"),
    (&[0x2b, 0x81, 0x04, 0x00, 0x0a], "secp256k1"),
];

/// A loaded signing key and the log origin it signs for.
pub struct CheckpointSigner {
    key: SigningKey,
    origin: String,
    path: PathBuf,
    /// The newest checkpoint signed: proof queries at one tree size share one signature.
    last: std::sync::RwLock<Option<std::sync::Arc<SignedCheckpoint>>>,
}

/// A checkpoint with everything a verifier needs.
#[derive(Debug, Clone)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub body: String,
    pub signature_der: Vec<u8>,
    pub public_key_pem: String,
    pub note: String,
}

impl SignedCheckpoint {
    pub fn signature_base64(&self) -> String {
        B64.encode(&self.signature_der)
    }
}

fn key_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::KeyFile { path: path.to_path_buf(), reason: reason.into() }
}

/// Parse a PEM private key on P-256, explaining what is wrong otherwise.
pub fn parse_private_key_pem(path: &Path, pem: &str) -> Result<SigningKey> {
    let blocks: Vec<&str> = pem.split("-----BEGIN ").skip(1).collect();
    if blocks.is_empty() {
        return Err(key_error(path, "no PEM block found (expected '-----BEGIN EC PRIVATE KEY-----' or '-----BEGIN PRIVATE KEY-----')"));
    }
    for block in blocks {
        let label = block.split("-----").next().unwrap_or("");
        let text = format!("-----BEGIN {block}");
        let text = text.trim();
        let parsed = match label {
            "EC PRIVATE KEY" => SecretKey::from_sec1_pem(text).map(SigningKey::from).map_err(|e| e.to_string()),
            "PRIVATE KEY" => SigningKey::from_pkcs8_pem(text).map_err(|e| e.to_string()),
            "EC PARAMETERS" => continue,
            "ENCRYPTED PRIVATE KEY" => return Err(key_error(path, "the key is encrypted; give an unencrypted PEM key")),
            "PUBLIC KEY" => return Err(key_error(path, "this is a public key; the server needs the private key")),
            other => return Err(key_error(path, format!("unsupported PEM block '{other}'"))),
        };
        return parsed.map_err(|e| {
            let der = pem_body(text);
            match OTHER_CURVES.iter().find(|(oid, _)| contains(&der, oid)) {
                Some((_, name)) => key_error(path, format!("the key is on curve {name}; vouchdb signs with P-256 (prime256v1)")),
                None => key_error(path, format!("not a valid P-256 private key: {e}")),
            }
        });
    }
    Err(key_error(path, "the file holds EC parameters but no private key"))
}

fn pem_body(pem: &str) -> Vec<u8> {
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(b64).unwrap_or_default()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Load a signing key file.
pub fn load_key(path: &Path) -> Result<SigningKey> {
    let pem = std::fs::read_to_string(path).map_err(|e| key_error(path, format!("cannot read: {e}")))?;
    parse_private_key_pem(path, &pem)
}

/// Write a new random P-256 key as a PKCS#8 PEM file readable only by its owner (PKCS#8 names the
/// curve, so `openssl ec -in KEY -pubout` reads it; a SEC1 file without parameters it cannot). Refuses
/// to overwrite.
pub fn generate_key(path: &Path) -> Result<SigningKey> {
    use p256::pkcs8::EncodePrivateKey;
    use std::io::Write;
    let secret = SecretKey::random(&mut rand_core::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| key_error(path, format!("cannot encode: {e}")))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| key_error(path, format!("cannot create: {e}")))?;
    f.write_all(pem.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| key_error(path, format!("cannot write: {e}")))?;
    Ok(SigningKey::from(secret))
}

/// The PEM SubjectPublicKeyInfo of a key, as `openssl ec -pubout` writes it.
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).expect("a valid P-256 point always encodes as PEM")
}

impl CheckpointSigner {
    pub fn new(key: SigningKey, origin: String, path: PathBuf) -> Result<Self> {
        if origin.is_empty() || origin.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidInput(format!("checkpoint origin {origin:?} must be non-empty without control characters")));
        }
        Ok(CheckpointSigner { key, origin, path, last: std::sync::RwLock::new(None) })
    }

    /// The default origin for a key: `vouchdb/` and the first 8 bytes of SHA-256 of its public key, hex.
    pub fn default_origin(key: &SigningKey) -> String {
        let der = key.verifying_key().to_public_key_der().expect("a valid P-256 point always encodes as SPKI");
        format!("vouchdb/{}", hex::encode(&crate::verify::sha256(der.as_bytes())[..8]))
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn key_path(&self) -> &Path {
        &self.path
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        self.key.verifying_key()
    }

    /// The signed checkpoint of a head, reusing the last signature when the head has not moved
    /// (ECDSA signing costs more than a proof; the signature is deterministic, RFC 6979, anyway).
    pub fn sign_cached(&self, head: &Head) -> std::sync::Arc<SignedCheckpoint> {
        let same = |cp: &&std::sync::Arc<SignedCheckpoint>| cp.checkpoint.size == head.size && cp.checkpoint.root == head.root;
        if let Some(cp) = self.last.read().unwrap_or_else(|e| e.into_inner()).as_ref().filter(same) {
            return cp.clone();
        }
        let cp = std::sync::Arc::new(self.sign(head));
        let mut last = self.last.write().unwrap_or_else(|e| e.into_inner());
        if last.as_ref().is_none_or(|l| l.checkpoint.size < head.size) {
            *last = Some(cp.clone());
        }
        cp
    }

    /// Sign the checkpoint of a head.
    pub fn sign(&self, head: &Head) -> SignedCheckpoint {
        let checkpoint = Checkpoint { origin: self.origin.clone(), size: head.size, root: head.root };
        let body = checkpoint.body();
        let sig: Signature = self.key.sign(body.as_bytes());
        let signature_der = sig.to_der().as_bytes().to_vec();
        let note = signed_note(&body, &self.origin, self.verifying_key(), &signature_der);
        SignedCheckpoint { checkpoint, body, signature_der, public_key_pem: public_key_pem(self.verifying_key()), note }
    }
}
