//! Why a ledger could not be written or read.

use std::path::PathBuf;

/// Why a ledger could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a read or write.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The ledger.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
}
