//! What kind of Polycom file a file is, told by its first bytes and its root element.

use std::fmt;
use std::path::Path;

use polyseal_crypto::{Header, KeyDesc};

use crate::Error;
use crate::xml::XmlText;

/// What kind of Polycom file a file is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// A master file: root element `<APPLICATION>`.
    Master,
    /// A configuration file: any other root, `<polycomConfig>` in the flat schema, `<sip>`,
    /// `<phone1>`… in the old nested one.
    Config {
        /// The root element's name.
        root: String,
    },
    /// A contact directory (`<mac>-directory.xml`): root element `<directory>`.
    ContactDirectory,
    /// An encrypted configuration file; what is inside cannot be told without the key.
    Encrypted {
        /// The KeyDesc in its header, if the header names one and can be read.
        key_desc: Option<KeyDesc>,
    },
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileKind::Master => f.write_str("master file"),
            FileKind::Config { root } => write!(f, "configuration file (<{root}>)"),
            FileKind::ContactDirectory => f.write_str("contact directory"),
            FileKind::Encrypted {
                key_desc: Some(desc),
            } => {
                write!(f, "encrypted file (KeyDesc {desc})")
            }
            FileKind::Encrypted { key_desc: None } => f.write_str("encrypted file"),
        }
    }
}

/// Tells what kind of file `bytes` is. Reads only up to the root element's start tag, so a
/// file that goes wrong later is still classified; [`crate::scan`] reads it whole.
///
/// ```
/// use polyseal_provision::{classify, FileKind};
/// assert_eq!(classify("a.cfg".as_ref(), b"<APPLICATION CONFIG_FILES=\"\"/>")?, FileKind::Master);
/// # Ok::<(), polyseal_provision::Error>(())
/// ```
pub fn classify(path: &Path, bytes: &[u8]) -> Result<FileKind, Error> {
    match XmlText::new(path, bytes) {
        Err(Error::Encrypted { key_desc, .. }) => Ok(FileKind::Encrypted { key_desc }),
        Err(other) => Err(other),
        Ok(text) => Ok(match text.root()?.0.as_str() {
            "APPLICATION" => FileKind::Master,
            "directory" => FileKind::ContactDirectory,
            root => FileKind::Config {
                root: root.to_owned(),
            },
        }),
    }
}

/// The encrypted-file header `bytes` start with, `None` for plaintext; `Some(Err)` for a file
/// that starts like an encrypted one but whose header polyseal-crypto refuses.
///
/// An XML document starts with `<` (after an optional byte order mark and whitespace) and is
/// never taken for encrypted, even when its first line holds a `Crypt=…;` key string, as a
/// one-line bootstrap file does: polyseal-crypto's `is_encrypted` alone would say it is.
pub(crate) fn encrypted_header(bytes: &[u8]) -> Option<Result<Header, polyseal_crypto::Error>> {
    let start = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    if start.trim_ascii_start().starts_with(b"<") {
        return None;
    }
    match polyseal_crypto::inspect(bytes) {
        Err(polyseal_crypto::Error::NotEncrypted) => None,
        header => Some(header),
    }
}
