//! The one error type of this crate.

use std::fmt;

use crate::file::DigestAlgorithm;
use crate::layout::Layout;

/// Everything that can go wrong in `polyseal-crypto`.
///
/// Messages never contain key material: where a key string fails to parse, the message says
/// which field is wrong, not what it held. Messages do not name files (this crate sees only
/// bytes); callers add the file name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A MAC address has the wrong number of hex digits.
    MacLength {
        /// The input as given (a MAC is not secret).
        input: String,
        /// How many hex digits it had.
        digits: usize,
    },
    /// A MAC address contains a character that is neither a hex digit nor an accepted separator,
    /// or its separators are not one of the accepted spellings.
    MacSyntax {
        /// The input as given.
        input: String,
    },
    /// `000000000000` names the phones' shared master file, not a phone.
    MacAllZero,
    /// `ffffffffffff` is the broadcast address, not a phone.
    MacBroadcast,
    /// The low bit of the first octet is set: a multicast group, not a phone.
    MacMulticast {
        /// The address, canonical form.
        mac: String,
    },
    /// A configuration key is not 32 hex digits.
    KeyHex,
    /// A KeyDesc is empty, longer than 64 characters, or holds a character phones cannot carry
    /// in a key string (`;`, `=`, `"`, or anything not printable ASCII).
    KeyDesc {
        /// The offending KeyDesc (a KeyDesc is not secret).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A KeyDesc template does not contain `{mac}` or has an unknown `{placeholder}`.
    KeyDescTemplate {
        /// The template as given.
        template: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key string (`Crypt=1;KeyDesc=…;Key=…;`) is malformed. The message names the field,
    /// never the key.
    KeyString {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A key string or file header carries a `Crypt` value other than 1.
    UnsupportedCrypt {
        /// The value found.
        value: String,
    },
    /// The input does not begin with an encrypted-file header line.
    NotEncrypted,
    /// The first line looks like an encrypted-file header but cannot be read.
    MalformedHeader {
        /// What is wrong with it.
        reason: String,
    },
    /// The header's digest is not of the layout's algorithm (told by its length).
    UnsupportedDigest {
        /// The algorithm the digest length indicates.
        algorithm: DigestAlgorithm,
        /// The layout's.
        layout: DigestAlgorithm,
    },
    /// A layout's text form cannot be read.
    BadLayout {
        /// The text.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not in the layout it is read in (a line ending, an IV field, a body encoding
    /// other than the layout's).
    LayoutMismatch {
        /// The dimension that does not fit (`eol`, `iv`, `body`).
        dimension: &'static str,
        /// What the file has.
        found: String,
        /// The layout.
        layout: Layout,
    },
    /// The file was sealed under a different KeyDesc than the key offered to open it.
    KeyDescMismatch {
        /// KeyDesc in the file's header.
        file: String,
        /// KeyDesc of the key offered.
        key: String,
    },
    /// The body is shorter than an IV plus one cipher block.
    TruncatedBody {
        /// Body length in bytes (after the header line).
        len: usize,
    },
    /// The ciphertext is not a whole number of 16-byte blocks: bytes were lost or added.
    BodyNotBlockAligned {
        /// Body length in bytes (after the header line).
        len: usize,
    },
    /// Decryption produced invalid PKCS#7 padding: the key is wrong or the body is damaged.
    BadPadding,
    /// The decrypted plaintext does not match the header's digest: the key is wrong, or the
    /// body or header was altered.
    DigestMismatch,
    /// The input is larger than [`crate::MAX_FILE_SIZE`].
    TooLarge {
        /// Size of the input in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
}

impl Error {
    /// True for errors that mean "this data was altered or the key is wrong", as opposed to
    /// malformed input. Callers use it to choose an exit code.
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            Error::KeyDescMismatch { .. }
                | Error::TruncatedBody { .. }
                | Error::BodyNotBlockAligned { .. }
                | Error::BadPadding
                | Error::DigestMismatch
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MacLength { input, digits } => write!(
                f,
                "MAC address {input:?} has {digits} hex digits; a MAC has 12"
            ),
            Error::MacSyntax { input } => write!(
                f,
                "MAC address {input:?} is not 12 hex digits, optionally separated as \
                 00:04:f2:ab:cd:ef, 00-04-f2-ab-cd-ef or 0004.f2ab.cdef"
            ),
            Error::MacAllZero => write!(
                f,
                "MAC address 000000000000 names the shared master file, not a phone"
            ),
            Error::MacBroadcast => write!(
                f,
                "MAC address ffffffffffff is the broadcast address, not a phone"
            ),
            Error::MacMulticast { mac } => write!(
                f,
                "MAC address {mac} is a multicast address (low bit of the first octet set), not a phone"
            ),
            Error::KeyHex => write!(f, "configuration key is not 32 hex digits"),
            Error::KeyDesc { input, reason } => write!(f, "KeyDesc {input:?} {reason}"),
            Error::KeyDescTemplate { template, reason } => {
                write!(f, "KeyDesc template {template:?} {reason}")
            }
            Error::KeyString { reason } => write!(f, "key string {reason}"),
            Error::UnsupportedCrypt { value } => {
                write!(
                    f,
                    "Crypt={value} is not supported; only Crypt=1 (AES-128-CBC) is"
                )
            }
            Error::NotEncrypted => write!(
                f,
                "not an encrypted configuration file (no Crypt=…;Digest=…; header line)"
            ),
            Error::MalformedHeader { reason } => {
                write!(f, "malformed encrypted-file header: {reason}")
            }
            Error::UnsupportedDigest { algorithm, layout } => write!(
                f,
                "the header carries a {algorithm} digest; the layout's is {layout} (digest={})",
                layout.name()
            ),
            Error::BadLayout { input, reason } => write!(f, "layout {input:?}: {reason}"),
            Error::LayoutMismatch {
                dimension,
                found,
                layout,
            } => write!(
                f,
                "not in the layout {dimension}={}: {found} (`polyseal format probe` tells which \
                 layout a file is in)",
                layout.value(
                    Layout::DIMENSIONS
                        .iter()
                        .position(|d| d == dimension)
                        .unwrap_or(0)
                )
            ),
            Error::KeyDescMismatch { file, key } => write!(
                f,
                "file was encrypted under KeyDesc {file:?} but the key offered is {key:?}"
            ),
            Error::TruncatedBody { len } => write!(
                f,
                "encrypted body is truncated: {len} bytes, less than an IV and one block (32)"
            ),
            Error::BodyNotBlockAligned { len } => write!(
                f,
                "encrypted body is damaged: {len} bytes after the header is not a whole number of 16-byte blocks"
            ),
            // One message for both: telling a padding failure from a digest failure would tell
            // an attacker which bytes they reached (a padding oracle). Issue 13, point 5.
            Error::BadPadding | Error::DigestMismatch => {
                write!(f, "does not decrypt: wrong key, or the file was altered")
            }
            Error::TooLarge { len, max } => {
                write!(f, "input is {len} bytes, over the {max}-byte limit")
            }
        }
    }
}

impl std::error::Error for Error {}
