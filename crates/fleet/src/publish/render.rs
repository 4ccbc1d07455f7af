//! The bytes of each published file: copied, encrypted, or the bootstrap file; reading a
//! per-phone file's plaintext also scans it.

use std::fs;
use std::path::Path;

use polyseal_provision::{Exposure, Finding, bootstrap_file};
use zeroize::Zeroizing;

use super::existing::read_source;
use super::manifest::Stamp;
use super::output::{Content, Output};
use crate::Error;

/// An output's content, what reading a per-phone file's plaintext found, and the source's
/// stamp.
pub(super) struct Rendered {
    pub(super) body: Body,
    pub(super) notes: Notes,
    pub(super) source: Option<Stamp>,
}

/// What rendering a file found: findings of the scan (grouped across the fleet when said) and
/// other notes.
#[derive(Default)]
pub(super) struct Notes {
    pub(super) findings: Vec<Finding>,
    pub(super) texts: Vec<String>,
}

/// What an output's file is filled with.
pub(super) enum Body {
    /// These bytes: an encrypted file, a bootstrap file, a per-phone file's plaintext.
    Bytes(Zeroizing<Vec<u8>>),
    /// The open source of a copied file, streamed (firmware images run to hundreds of MB: no
    /// size limit, never whole in memory, and in the kernel where it can).
    Stream(fs::File),
}

/// What `output` writes. Reading a per-phone file's plaintext also finds weak SIP passwords
/// (the header digest is unkeyed, see docs/FORMAT.md). Malformed XML is an error: a phone
/// could not read the file once decrypted.
pub(super) fn render(output: &Output<'_>) -> Result<Rendered, Error> {
    Ok(match &output.content {
        Content::Copy { source: path } => {
            let file = fs::File::open(path).map_err(|e| Error::io(path, "read", e))?;
            // The stamp comes before the copy, so a change during it shows next time.
            let metadata = file.metadata().map_err(|e| Error::io(path, "read", e))?;
            Rendered {
                body: Body::Stream(file),
                notes: Notes::default(),
                source: Stamp::of(&metadata),
            }
        }
        Content::Encrypt { source: path, key } => {
            let (plaintext, source) = read_source(path)?;
            if polyseal_crypto::is_encrypted(&plaintext) {
                let note = format!(
                    "{}: already encrypted in the source tree; copied as it is",
                    path.display()
                );
                return Ok(Rendered {
                    body: Body::Bytes(plaintext),
                    notes: Notes {
                        findings: Vec::new(),
                        texts: vec![note],
                    },
                    source,
                });
            }
            let notes = Notes {
                findings: per_phone_findings(path, &plaintext)?,
                texts: Vec::new(),
            };
            let sealed =
                polyseal_crypto::encrypt(&plaintext, key).map_err(|e| Error::crypto(path, e))?;
            Rendered {
                body: Body::Bytes(Zeroizing::new(sealed)),
                notes,
                source,
            }
        }
        Content::Bootstrap { key } => Rendered {
            body: Body::Bytes(bootstrap_file(key)),
            notes: Notes::default(),
            source: None,
        },
        Content::Plaintext { source: path } => {
            let (plaintext, source) = read_source(path)?;
            // Checked as it would be encrypted: the file is per-phone content; that it is
            // served in plaintext for now is said once, in the summary.
            let notes = Notes {
                findings: if polyseal_crypto::is_encrypted(&plaintext) {
                    Vec::new()
                } else {
                    per_phone_findings(path, &plaintext)?
                },
                texts: Vec::new(),
            };
            Rendered {
                body: Body::Bytes(plaintext),
                notes,
                source,
            }
        }
    })
}

/// What reading a per-phone file's plaintext finds (weak SIP passwords); an error for
/// malformed XML.
fn per_phone_findings(path: &Path, plaintext: &[u8]) -> Result<Vec<Finding>, Error> {
    Ok(polyseal_provision::scan(
        path,
        plaintext,
        Exposure::PerPhoneEncrypted,
    )?)
}
