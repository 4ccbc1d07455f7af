//! The encrypted configuration file: one readable header line, then IV and ciphertext.
//!
//! ```text
//! Crypt=1;KeyDesc=<desc>;Digest=<SHA-256 of the plaintext, 64 lowercase hex>;\n
//! <16-byte random IV><AES-128-CBC ciphertext of the plaintext, PKCS#7 padded>
//! ```
//!
//! Everything about this layout that public Polycom documentation does not confirm lives in this
//! module and nowhere else (see `docs/FORMAT.md`), so that a real vendor-made file can correct it
//! in one place.

use std::fmt;

use aes::Aes128;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{Error, KeyDesc, KeyString};

/// Largest encrypted file accepted by [`decrypt`], and largest result [`encrypt`] produces.
/// Real configuration files are kilobytes; the cap keeps a hostile input from exhausting memory.
pub const MAX_FILE_SIZE: usize = 64 * 1024 * 1024;

/// The header line must end within this many bytes. Ours are under 200.
const MAX_HEADER_LEN: usize = 1024;

/// AES block size, and the IV length.
const BLOCK: usize = 16;

/// The hash whose digest the header's `Digest=` field carries, told apart by its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// 32 hex digits. Recognised, not verified.
    Md5,
    /// 40 hex digits. Recognised, not verified.
    Sha1,
    /// 64 hex digits. What polyseal writes and verifies.
    Sha256,
}

impl DigestAlgorithm {
    fn from_hex_len(len: usize) -> Option<DigestAlgorithm> {
        match len {
            32 => Some(DigestAlgorithm::Md5),
            40 => Some(DigestAlgorithm::Sha1),
            64 => Some(DigestAlgorithm::Sha256),
            _ => None,
        }
    }
}

impl fmt::Display for DigestAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha1 => "SHA-1",
            DigestAlgorithm::Sha256 => "SHA-256",
        })
    }
}

/// The readable first line of an encrypted file. Reading it needs no key.
///
/// ```
/// use polyseal_crypto::{DigestAlgorithm, Header};
/// let file = b"Digest=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;Crypt=1;KeyDesc=k1\r\n...";
/// let header = Header::parse(file)?;
/// assert_eq!(header.key_desc().map(|d| d.as_str()), Some("k1"));
/// assert_eq!(header.digest_algorithm(), DigestAlgorithm::Sha256);
/// assert_eq!(header.body_offset(), file.len() - 3);
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    key_desc: Option<KeyDesc>,
    algorithm: DigestAlgorithm,
    digest: Vec<u8>,
    body_offset: usize,
}

impl Header {
    /// Reads the header line at the start of `file`: fields in any order, separated by `;`
    /// (trailing `;` optional), ended by LF or CRLF. `Crypt` must be 1 and `Digest` present;
    /// `KeyDesc` is optional; unknown fields are ignored.
    pub fn parse(file: &[u8]) -> Result<Header, Error> {
        let malformed = |reason: &str| Error::MalformedHeader {
            reason: reason.to_owned(),
        };
        let window = &file[..file.len().min(MAX_HEADER_LEN)];
        // XML (every plaintext Polycom file) starts with '<', and may carry a key string such
        // as `Crypt=1;KeyDesc=…` on its first line: that is a bootstrap file, not a header.
        if window.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            return Err(Error::NotEncrypted);
        }
        let Some(newline) = window.iter().position(|&b| b == b'\n') else {
            return Err(if contains(window, b"Crypt=") {
                malformed("no end of line within the first 1024 bytes")
            } else {
                Error::NotEncrypted
            });
        };
        let line = &window[..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !contains(line, b"Crypt=") {
            return Err(Error::NotEncrypted);
        }
        let line = std::str::from_utf8(line)
            .ok()
            .filter(|l| l.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .ok_or_else(|| malformed("the header line is not printable ASCII"))?;

        let (mut crypt, mut key_desc, mut digest) = (None, None, None);
        for field in line.strip_suffix(';').unwrap_or(line).split(';') {
            let (name, value) = field
                .split_once('=')
                .ok_or_else(|| malformed(&format!("field {field:?} has no '='")))?;
            let slot = match name {
                "Crypt" => &mut crypt,
                "KeyDesc" => &mut key_desc,
                "Digest" => &mut digest,
                // Unknown fields are tolerated: the vendor layout beyond Crypt, KeyDesc and
                // Digest is not public, and ignoring extra fields costs nothing.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(malformed(&format!("field {name} appears twice")));
            }
        }
        match crypt {
            Some("1") => {}
            Some(other) => {
                return Err(Error::UnsupportedCrypt {
                    value: other.to_owned(),
                });
            }
            None => return Err(malformed("no Crypt field")),
        }
        let digest_hex = digest.ok_or_else(|| malformed("no Digest field"))?;
        let algorithm = DigestAlgorithm::from_hex_len(digest_hex.len()).ok_or_else(|| {
            malformed("Digest is not 32, 40 or 64 hex digits (MD5, SHA-1 or SHA-256)")
        })?;
        let digest = hex::decode(digest_hex).map_err(|_| malformed("Digest is not hexadecimal"))?;
        let key_desc = key_desc.map(KeyDesc::new).transpose()?;
        Ok(Header {
            key_desc,
            algorithm,
            digest,
            body_offset: newline + 1,
        })
    }

    /// The KeyDesc of the key that sealed the file, if the header names one.
    pub fn key_desc(&self) -> Option<&KeyDesc> {
        self.key_desc.as_ref()
    }

    /// Which hash the digest's length indicates.
    pub fn digest_algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The digest of the plaintext, lowercase hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(&self.digest)
    }

    /// True if `plaintext` has this header's digest (SHA-256 only; other algorithms are never
    /// verified and give false). Constant-time comparison.
    pub fn matches_plaintext(&self, plaintext: &[u8]) -> bool {
        self.algorithm == DigestAlgorithm::Sha256
            && bool::from(Sha256::digest(plaintext).as_slice().ct_eq(&self.digest))
    }

    /// Where the body (IV, then ciphertext) starts: just after the header's line ending.
    pub fn body_offset(&self) -> usize {
        self.body_offset
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Reads an encrypted file's header without any key. Same as [`Header::parse`].
pub fn inspect(file: &[u8]) -> Result<Header, Error> {
    Header::parse(file)
}

/// True if `bytes` starts with an encrypted-file header line, even one this crate cannot
/// decrypt (an unsupported `Crypt` or digest). Plain XML configuration is never encrypted.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    !matches!(Header::parse(bytes), Err(Error::NotEncrypted))
}

/// Encrypts `plaintext` under `key`: header line with the key's KeyDesc and the plaintext's
/// SHA-256, a fresh random IV, then AES-128-CBC with PKCS#7 padding.
///
/// Fails only if the result would exceed [`MAX_FILE_SIZE`].
pub fn encrypt(plaintext: &[u8], key: &KeyString) -> Result<Vec<u8>, Error> {
    let header = format!(
        "Crypt=1;KeyDesc={};Digest={};\n",
        key.key_desc(),
        hex::encode(Sha256::digest(plaintext))
    );
    let padded_len = (plaintext.len() / BLOCK + 1) * BLOCK;
    let total = header.len() + BLOCK + padded_len;
    if total > MAX_FILE_SIZE {
        return Err(Error::TooLarge {
            len: plaintext.len(),
            max: MAX_FILE_SIZE - header.len() - 2 * BLOCK,
        });
    }
    let mut iv = [0u8; BLOCK];
    #[allow(clippy::expect_used)] // A fixed or reused IV would be worse than stopping.
    SysRng
        .try_fill_bytes(&mut iv)
        .expect("operating system random number generator failed");

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&iv);
    let body_start = out.len();
    out.extend_from_slice(plaintext);
    out.resize(total, 0);
    let written = cbc::Encryptor::<Aes128>::new(key.key().expose_bytes().into(), &iv.into())
        .encrypt_padded::<Pkcs7>(&mut out[body_start..], plaintext.len())
        .map(<[u8]>::len);
    debug_assert_eq!(written.ok(), Some(padded_len));
    Ok(out)
}

/// Decrypts an encrypted file with `key`, failing closed.
///
/// Checks, in order: size cap; header; that the header's KeyDesc (if any) is the key's; that
/// the digest is SHA-256; body length; padding; digest. The plaintext is returned in a buffer
/// that is zeroized on drop, because configuration files carry passwords.
pub fn decrypt(file: &[u8], key: &KeyString) -> Result<Zeroizing<Vec<u8>>, Error> {
    if file.len() > MAX_FILE_SIZE {
        return Err(Error::TooLarge {
            len: file.len(),
            max: MAX_FILE_SIZE,
        });
    }
    let header = Header::parse(file)?;
    if let Some(file_desc) = header.key_desc() {
        if file_desc != key.key_desc() {
            return Err(Error::KeyDescMismatch {
                file: file_desc.to_string(),
                key: key.key_desc().to_string(),
            });
        }
    }
    if header.digest_algorithm() != DigestAlgorithm::Sha256 {
        return Err(Error::UnsupportedDigest {
            algorithm: header.digest_algorithm(),
        });
    }
    let body = &file[header.body_offset()..];
    if body.len() < 2 * BLOCK {
        return Err(Error::TruncatedBody { len: body.len() });
    }
    if body.len() % BLOCK != 0 {
        return Err(Error::BodyNotBlockAligned { len: body.len() });
    }
    let (iv, ciphertext) = body.split_at(BLOCK);
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let iv: [u8; BLOCK] = iv
        .try_into()
        .map_err(|_| Error::TruncatedBody { len: body.len() })?;
    let plaintext_len = cbc::Decryptor::<Aes128>::new(key.key().expose_bytes().into(), &iv.into())
        .decrypt_padded::<Pkcs7>(&mut buf)
        .map_err(|_| Error::BadPadding)?
        .len();
    buf.truncate(plaintext_len);
    if !header.matches_plaintext(&buf) {
        return Err(Error::DigestMismatch);
    }
    Ok(buf)
}
