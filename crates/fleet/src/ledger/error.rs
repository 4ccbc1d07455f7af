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
    /// A line before the last is not a ledger entry: the file is not a ledger, or was edited.
    #[error("{path}: line {line} is not a ledger entry ({reason})")]
    BadLine {
        /// The ledger.
        path: PathBuf,
        /// The line number, from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
}
