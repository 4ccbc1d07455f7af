//! The one error type of this crate.

use std::fmt;
use std::io;
use std::path::PathBuf;

use polyseal_crypto::{KeyDesc, Mac};

use crate::Position;

/// Everything that can stop `polyseal-provision` from reading a tree, a file or a phones list.
///
/// Every message names its input (file path, and line and column where there is one) and what
/// is wrong with it. No message carries a secret: XML errors name tags, never attribute values,
/// and key errors name the field at fault, never the key.
///
/// Problems that do not stop the reading (a master that does not list the key file, a secret
/// in a shared file) are not errors: they are [`crate::PlanIssue`]s and [`crate::Finding`]s.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The tree's root directory does not exist, or is not a directory. Exit-code class:
    /// input.
    MissingTree {
        /// The root given.
        path: PathBuf,
    },
    /// A file or directory could not be read. Exit-code class: I/O.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A file that should be text is not valid UTF-8. Exit-code class: input.
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte is.
        position: Position,
    },
    /// A file is not well-formed XML. Exit-code class: input.
    Xml {
        /// The file.
        path: PathBuf,
        /// Where the XML parser stopped.
        position: Position,
        /// What the XML parser found wrong (names tags, never attribute values).
        reason: String,
    },
    /// A file read as a master file has a root element other than `<APPLICATION>`.
    /// Exit-code class: input.
    NotAMaster {
        /// The file.
        path: PathBuf,
        /// The root element it has.
        root: String,
        /// Where that root element starts.
        position: Position,
    },
    /// A file that must be read as XML is an encrypted configuration file. Exit-code class: input.
    Encrypted {
        /// The file.
        path: PathBuf,
        /// The KeyDesc in its header, if the header names one.
        key_desc: Option<KeyDesc>,
    },
    /// A line of a phones file does not hold a valid MAC address. Exit-code class: input.
    PhonesFileMac {
        /// The phones file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong with the MAC (the message quotes it; a MAC is not secret).
        source: polyseal_crypto::Error,
    },
    /// A phones file lists the same phone twice. Exit-code class: input.
    DuplicatePhone {
        /// The phones file.
        path: PathBuf,
        /// The line of the second mention, from 1.
        line: usize,
        /// The line of the first mention, from 1.
        first_line: usize,
        /// The phone.
        mac: Mac,
    },
    /// A key file name pattern cannot name a per-phone key file. Exit-code class: input (usage
    /// when it came from the command line).
    KeyFilePattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A bootstrap or key-change file does not deliver a key the way phones need it.
    /// Exit-code class: input.
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// A symbolic link in the source tree points outside it, or to a hidden file in it:
    /// following it would publish a file of the machine (an identity, a password file) to
    /// phones. Exit-code class: input.
    SymlinkOutsideTree {
        /// The link, in the tree.
        link: PathBuf,
        /// Where it resolves to.
        target: PathBuf,
    },
    /// `polyseal-crypto` refused a key string or an encrypted file. Exit-code class:
    /// crypto/integrity when [`Error::is_integrity_failure`] is true, input otherwise.
    Crypto {
        /// The file.
        path: PathBuf,
        /// The crypto error (never carries key material).
        source: polyseal_crypto::Error,
    },
}

impl Error {
    /// True for errors of the operating system (exit-code class I/O), false for errors in the
    /// input's content.
    pub fn is_io(&self) -> bool {
        matches!(self, Error::Io { .. })
    }

    /// True when an encrypted file was altered or the key offered is wrong (exit-code class
    /// crypto/integrity), as decided by [`polyseal_crypto::Error::is_integrity_failure`].
    pub fn is_integrity_failure(&self) -> bool {
        matches!(self, Error::Crypto { source, .. } if source.is_integrity_failure())
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingTree { path } => write!(
                f,
                "{}: no such directory to read a provisioning tree from",
                path.display()
            ),
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::NotUtf8 { path, position } => {
                write!(f, "{}:{position}: not valid UTF-8 text", path.display())
            }
            Error::Xml {
                path,
                position,
                reason,
            } => write!(
                f,
                "{}:{position}: not well-formed XML: {reason}",
                path.display()
            ),
            Error::NotAMaster {
                path,
                root,
                position,
            } => write!(
                f,
                "{}:{position}: not a master file: the root element is <{root}>, a master's is \
                 <APPLICATION>",
                path.display()
            ),
            Error::Encrypted { path, key_desc } => {
                write!(f, "{}: is an encrypted configuration file", path.display())?;
                if let Some(desc) = key_desc {
                    write!(f, " (KeyDesc {desc})")?;
                }
                f.write_str("; decrypt it first to read it as XML")
            }
            Error::PhonesFileMac { path, line, source } => {
                write!(f, "{}:{line}: {source}", path.display())
            }
            Error::DuplicatePhone {
                path,
                line,
                first_line,
                mac,
            } => write!(
                f,
                "{}:{line}: phone {mac} is already listed on line {first_line}",
                path.display()
            ),
            Error::KeyFilePattern { pattern, reason } => {
                write!(f, "key file name pattern {pattern:?} {reason}")
            }
            Error::KeyFile { path, reason } => {
                write!(f, "{}: not a usable key file: {reason}", path.display())
            }
            Error::SymlinkOutsideTree { link, target } => write!(
                f,
                "{}: a symbolic link to {}, outside the source tree or hidden in it; it would be \
                 published to phones: replace it with a copy of the file, or remove it",
                link.display(),
                target.display()
            ),
            Error::Crypto { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::PhonesFileMac { source, .. } | Error::Crypto { source, .. } => Some(source),
            _ => None,
        }
    }
}
