//! What kind of Polycom file a file is, told by its first bytes and its root element.

use std::fmt;
use std::path::Path;

use polyseal_crypto::KeyDesc;

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
