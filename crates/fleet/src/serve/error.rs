//! Why `polyseal serve` could not start.

use std::path::PathBuf;

/// Why the server could not start. Once it serves, a failing request is answered (and logged
/// in the ledger), never an error of the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory the server needs could not be used.
    #[error("{path}: cannot {action}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done (`read the certificate`, `open the tree`).
        action: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The certificate, key or client CA file is not what it must be.
    #[error("{path}: {reason}")]
    BadPem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The tree or the uploads directory is not a directory, or they overlap.
    #[error("{path}: {reason}")]
    BadDirectory {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The ledger file is inside the tree or the uploads directory, where phones could read
    /// or overwrite it.
    #[error("ledger {ledger}: inside {served}, which the server serves; keep it outside")]
    LedgerServed {
        /// The ledger file.
        ledger: PathBuf,
        /// The served directory it is in.
        served: PathBuf,
    },
    /// The ledger file has other names (hard links), which may be in a served directory.
    #[error(
        "ledger {ledger}: the file has {links} names (hard links); give the server a ledger of \
         its own, outside what it serves"
    )]
    LedgerLinked {
        /// The ledger file.
        ledger: PathBuf,
        /// How many names it has.
        links: u64,
    },
    /// Serving without client certificates was not asked for explicitly.
    #[error(
        "no client CA: every phone's key file would be served to anyone who asks; give \
         --client-ca FILE, or leave it out to trust the Polycom device CA chain bundled with \
         polyseal, or say --insecure-no-client-cert"
    )]
    NoClientCertificates,
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The TLS configuration was refused by rustls.
    #[error("TLS configuration: {reason}")]
    Tls {
        /// What rustls said.
        reason: String,
    },
    /// The ledger could not be opened or read.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::Error),
}
