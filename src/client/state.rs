//! The trusted state a client keeps per server: the pinned public key and origin, and the newest
//! checkpoint it has verified. Stored as JSON and replaced atomically (write a temporary file, fsync,
//! rename, fsync the directory), so a crash leaves either the old state or the new one.

use super::ClientError;
use crate::verify::checkpoint::{parse_public_key_pem, Checkpoint};
use crate::verify::Hash;
use p256::ecdsa::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a client trusts about one log (one origin).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustedLog {
    /// The server's public key (PEM), pinned when the state was created.
    pub public_key: String,
    /// The newest verified tree size (0: nothing verified yet).
    pub tree_size: u64,
    /// Its root, hex.
    pub root: String,
    /// The checkpoint body and signature that proved it (empty at size 0).
    pub checkpoint: String,
    pub signature: String,
}

impl TrustedLog {
    pub fn root_hash(&self) -> Result<Hash, ClientError> {
        super::proof::parse_hash("trusted root", &self.root)
    }

    pub fn key(&self) -> Result<VerifyingKey, ClientError> {
        parse_public_key_pem(&self.public_key).map_err(|e| ClientError::State(format!("pinned public key: {e}")))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    logs: BTreeMap<String, TrustedLog>,
}

/// A state file and its contents.
#[derive(Debug)]
pub struct TrustedState {
    path: PathBuf,
    file: StateFile,
}

impl TrustedState {
    /// Load the state file, or start an empty one if it does not exist yet.
    pub fn load(path: impl AsRef<Path>) -> Result<TrustedState, ClientError> {
        let path = path.as_ref().to_path_buf();
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                let f: StateFile = serde_json::from_slice(&bytes)
                    .map_err(|e| ClientError::State(format!("{} is not a vouchdb trusted-state file: {e}", path.display())))?;
                if f.version != 1 {
                    return Err(ClientError::State(format!("{}: state version {} is not supported", path.display(), f.version)));
                }
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => StateFile { version: 1, logs: BTreeMap::new() },
            Err(e) => return Err(ClientError::State(format!("cannot read {}: {e}", path.display()))),
        };
        Ok(TrustedState { path, file })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trusted log for `origin`, if any.
    pub fn get(&self, origin: &str) -> Option<&TrustedLog> {
        self.file.logs.get(origin)
    }

    /// The only log in the file, when there is exactly one (so a client need not name the origin).
    pub fn only(&self) -> Option<(&String, &TrustedLog)> {
        let mut it = self.file.logs.iter();
        match (it.next(), it.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }

    /// Pin a key, in memory, for an origin that has no state yet (nothing verified: size 0).
    pub fn pin(&mut self, origin: &str, public_key_pem: &str) -> Result<(), ClientError> {
        parse_public_key_pem(public_key_pem).map_err(|e| ClientError::State(format!("public key to pin: {e}")))?;
        self.file.logs.insert(
            origin.to_string(),
            TrustedLog {
                public_key: public_key_pem.trim().to_string() + "\n",
                tree_size: 0,
                root: hex::encode(crate::verify::empty_root()),
                checkpoint: String::new(),
                signature: String::new(),
            },
        );
        // Saved with the first checkpoint that verifies with this key, never before.
        Ok(())
    }

    /// Record a newly verified checkpoint. The caller has checked signature and consistency.
    pub fn advance(&mut self, cp: &Checkpoint, body: &str, signature: &str) -> Result<(), ClientError> {
        let log = self.file.logs.get_mut(&cp.origin).ok_or_else(|| ClientError::State(format!("no trusted state for {}", cp.origin)))?;
        if cp.size < log.tree_size {
            return Err(ClientError::Rollback { trusted: log.tree_size, got: cp.size });
        }
        // Another process may have advanced the same file meanwhile: never move it backwards.
        if let Ok(on_disk) = TrustedState::load(&self.path) {
            if let Some(d) = on_disk.get(&cp.origin) {
                if d.public_key == log.public_key && d.tree_size > cp.size {
                    return Ok(());
                }
            }
        }
        log.tree_size = cp.size;
        log.root = hex::encode(cp.root);
        log.checkpoint = body.to_string();
        log.signature = signature.to_string();
        self.save()
    }

    fn save(&self) -> Result<(), ClientError> {
        let mut json = serde_json::to_vec_pretty(&self.file).expect("the state always serialises");
        json.push(b'\n');
        write_atomically(&self.path, &json)
    }
}

/// Replace a file so that a crash leaves the old contents or the new, never a torn file: write a
/// temporary file beside it, fsync, rename over it, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    let io = |e: std::io::Error| ClientError::State(format!("cannot write {}: {e}", path.display()));
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
