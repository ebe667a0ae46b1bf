//! vouchdb: a tamper-evident SQL database. See ARCHITECTURE.md for the map.

pub mod audit;
pub mod client;
pub mod error;
/// Entry points shared by the cargo-fuzz targets and the regression test (docs/FUZZING.md).
pub mod fuzzing;
pub mod gateway;
pub mod ledger;
pub mod merkle;
pub mod metrics;
pub mod server;
pub mod signing;
pub mod sql;
pub mod verify;

pub use error::{Error, Result};
