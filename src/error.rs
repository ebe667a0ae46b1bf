//! The one error type of vouchdb. Later layers map it to SQLSTATE codes in exactly one place.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// RocksDB reported an error (I/O, no space, corruption it detected itself).
    #[error("storage error in {path}: {message}")]
    Storage { path: PathBuf, message: String },
    /// A stored value failed to decode or disagrees with what it must match.
    #[error("corrupt data in {path}: {what}")]
    Corrupt { path: PathBuf, what: String },
    /// The data directory was written by a newer vouchdb.
    #[error("{}: data format version {found} is newer than this vouchdb supports ({supported}); upgrade vouchdb", path.display())]
    NewerFormat { path: PathBuf, found: u32, supported: u32 },
    /// A key file is missing, malformed, or not a P-256 key.
    #[error("signing key {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
    /// The caller asked for something malformed (too large, unknown flag, out of range).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The caller asked for a transaction or tree size that does not exist (yet).
    #[error("not found: {0}")]
    NotFound(String),
    /// The ledger is shutting down or its commit pipeline has stopped after a storage failure.
    #[error("ledger is closed: {0}")]
    Closed(String),
    /// A proof or signature did not verify.
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    /// A client-side verification (`vouchdb verify`, `vouchdb audit`) failed; the text says what.
    #[error("{0}")]
    Verification(String),
}
