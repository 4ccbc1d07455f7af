//! The bytes of each published file: copied, encrypted, or the bootstrap file.

use std::fs;
use std::path::Path;

use polyseal_crypto::{KeyString, Layout};
use polyseal_provision::bootstrap_file;
use zeroize::Zeroizing;

use super::existing::read_source;
use super::manifest::Stamp;
use super::output::{Content, Output};
use crate::Error;

/// An output's content, what to tell about it, and the source's stamp.
pub(super) struct Rendered {
    pub(super) body: Body,
    pub(super) notes: Vec<String>,
    pub(super) source: Option<Stamp>,
}

/// What an output's file is filled with.
pub(super) enum Body {
    /// These bytes: an encrypted file, a bootstrap file, a per-phone file's plaintext.
    Bytes(Zeroizing<Vec<u8>>),
    /// The open source of a copied file, streamed (firmware images run to hundreds of MB: no
    /// size limit, never whole in memory, and in the kernel where it can).
    Stream(fs::File),
}

/// What `output` writes.
pub(super) fn render(output: &Output<'_>) -> Result<Rendered, Error> {
    Ok(match &output.content {
        Content::Copy { source: path } => {
            let file = fs::File::open(path).map_err(|e| Error::io(path, "read", e))?;
            // The stamp comes before the copy, so a change during it shows next time.
            let metadata = file.metadata().map_err(|e| Error::io(path, "read", e))?;
            Rendered {
                body: Body::Stream(file),
                notes: Vec::new(),
                source: Stamp::of(&metadata),
            }
        }
        Content::Encrypt {
            source: path,
            key,
            layout,
        } => {
            let (plaintext, source) = read_source(path)?;
            if polyseal_crypto::is_encrypted(&plaintext) {
                // `check` compared its KeyDesc with the one the phone is served; another vault
                // names its keys the same way, so the key itself must open it.
                if polyseal_crypto::decrypt_with(&plaintext, key, layout).is_err() {
                    return Err(Error::EncryptedSourceDoesNotOpen {
                        path: path.to_owned(),
                        key_desc: key.key_desc().to_string(),
                    });
                }
                let note = format!(
                    "{}: already encrypted in the source tree, under its phone's key; copied as \
                     it is",
                    path.display()
                );
                return Ok(Rendered {
                    body: Body::Bytes(plaintext),
                    notes: vec![note],
                    source,
                });
            }
            // Read and scanned before any key was made (`checks::check_per_phone_files`).
            let sealed = polyseal_crypto::encrypt_with(&plaintext, key, layout)
                .map_err(|e| Error::crypto(path, e))?;
            Rendered {
                body: Body::Bytes(Zeroizing::new(sealed)),
                notes: Vec::new(),
                source,
            }
        }
        Content::Bootstrap { key } => Rendered {
            body: Body::Bytes(bootstrap_file(key)),
            notes: Vec::new(),
            source: None,
        },
        Content::Plaintext {
            source: path,
            key,
            layout,
            ..
        } => {
            // Checked before any key was made, as the file it is when encrypted; that it is
            // served in plaintext for now is said once, in the summary.
            let (plaintext, source) = plaintext_source(path, *key, layout)?;
            Rendered {
                body: Body::Bytes(plaintext),
                notes: Vec::new(),
                source,
            }
        }
    })
}

/// The plaintext of a per-phone file served in plaintext: its source, decrypted with `key` in
/// `layout` if it is encrypted there.
pub(super) fn plaintext_source(
    path: &Path,
    key: Option<&KeyString>,
    layout: &Layout,
) -> Result<(Zeroizing<Vec<u8>>, Option<Stamp>), Error> {
    let (bytes, stamp) = read_source(path)?;
    if !polyseal_crypto::is_encrypted(&bytes) {
        return Ok((bytes, stamp));
    }
    let decrypted = key.and_then(|key| polyseal_crypto::decrypt_with(&bytes, key, layout).ok());
    match decrypted {
        Some(plaintext) => Ok((plaintext, stamp)),
        None => Err(Error::EncryptedSourceDoesNotOpen {
            path: path.to_owned(),
            key_desc: key.map_or_else(|| "none".to_owned(), |k| k.key_desc().to_string()),
        }),
    }
}
