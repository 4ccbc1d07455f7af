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
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cbc::cipher::block_padding::{NoPadding, Pkcs7, ZeroPadding};
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::layout::{Body, Eol, Iv, Layout, Padding};
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
    /// 32 hex digits; verified when the layout names it.
    Md5,
    /// 40 hex digits; verified when the layout names it.
    Sha1,
    /// 64 hex digits: the default layout's.
    Sha256,
}

impl DigestAlgorithm {
    /// Every algorithm, in the order `format probe` tries them.
    pub const ALL: &'static [DigestAlgorithm] = &[
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha1,
        DigestAlgorithm::Md5,
    ];

    /// Its name in a layout (`digest=sha256`).
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "md5",
            DigestAlgorithm::Sha1 => "sha1",
            DigestAlgorithm::Sha256 => "sha256",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<DigestAlgorithm> {
        DigestAlgorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == name)
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            DigestAlgorithm::Md5 => md5::Md5::digest(data).to_vec(),
            DigestAlgorithm::Sha1 => sha1::Sha1::digest(data).to_vec(),
            DigestAlgorithm::Sha256 => Sha256::digest(data).to_vec(),
        }
    }

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
    iv: Option<[u8; BLOCK]>,
    eol: Eol,
    body_offset: usize,
}

impl Header {
    /// Reads the header line at the start of `file`: fields in any order, separated by `;`
    /// (trailing `;` optional), ended by LF or CRLF (which, [`Header::eol`] says). `Crypt` must
    /// be 1 and `Digest` present; `KeyDesc` and `IV` (32 hex digits) are optional; unknown
    /// fields are ignored.
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
        let (line, eol) = match line.strip_suffix(b"\r") {
            Some(line) => (line, Eol::Crlf),
            None => (line, Eol::Lf),
        };
        if !contains(line, b"Crypt=") {
            return Err(Error::NotEncrypted);
        }
        let line = std::str::from_utf8(line)
            .ok()
            .filter(|l| l.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .ok_or_else(|| malformed("the header line is not printable ASCII"))?;

        let (mut crypt, mut key_desc, mut digest, mut iv) = (None, None, None, None);
        for field in line.strip_suffix(';').unwrap_or(line).split(';') {
            let (name, value) = field
                .split_once('=')
                .ok_or_else(|| malformed(&format!("field {field:?} has no '='")))?;
            let slot = match name {
                "Crypt" => &mut crypt,
                "KeyDesc" => &mut key_desc,
                "Digest" => &mut digest,
                "IV" => &mut iv,
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
        let iv = iv
            .map(|hex_iv| {
                hex::decode(hex_iv)
                    .ok()
                    .and_then(|bytes| <[u8; BLOCK]>::try_from(bytes).ok())
                    .ok_or_else(|| malformed("IV is not 32 hex digits"))
            })
            .transpose()?;
        Ok(Header {
            key_desc,
            algorithm,
            digest,
            iv,
            eol,
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

    /// True if `plaintext` has this header's digest, by the algorithm its length tells.
    /// Constant-time comparison.
    pub fn matches_plaintext(&self, plaintext: &[u8]) -> bool {
        bool::from(
            self.algorithm
                .digest(plaintext)
                .as_slice()
                .ct_eq(&self.digest),
        )
    }

    /// Where the body (IV, then ciphertext) starts: just after the header's line ending.
    pub fn body_offset(&self) -> usize {
        self.body_offset
    }

    /// The line ending of the header line.
    pub fn eol(&self) -> Eol {
        self.eol
    }

    /// The IV of an `IV=` field, if the header carries one.
    pub fn iv(&self) -> Option<[u8; BLOCK]> {
        self.iv
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

/// Encrypts `plaintext` under `key` in polyseal's default layout ([`Layout::DEFAULT`]):
/// header line with the key's KeyDesc and the plaintext's SHA-256, a fresh random IV, then
/// AES-128-CBC with PKCS#7 padding.
///
/// Fails only if the result would exceed [`MAX_FILE_SIZE`].
pub fn encrypt(plaintext: &[u8], key: &KeyString) -> Result<Vec<u8>, Error> {
    encrypt_with(plaintext, key, &Layout::DEFAULT)
}

/// Encrypts `plaintext` under `key` in `layout`. The IV is fresh from the operating system for
/// every file, except with `iv=zero`, where the layout fixes it.
///
/// Fails only if the result would exceed [`MAX_FILE_SIZE`].
pub fn encrypt_with(plaintext: &[u8], key: &KeyString, layout: &Layout) -> Result<Vec<u8>, Error> {
    let mut iv = [0u8; BLOCK];
    if layout.iv != Iv::Zero {
        #[allow(clippy::expect_used)] // A fixed or reused IV would be worse than stopping.
        SysRng
            .try_fill_bytes(&mut iv)
            .expect("operating system random number generator failed");
    }
    let mut header = format!(
        "Crypt=1;KeyDesc={};Digest={};",
        key.key_desc(),
        hex::encode(layout.digest.digest(plaintext))
    )
    .into_bytes();
    if layout.iv == Iv::Header {
        header.extend_from_slice(format!("IV={};", hex::encode(iv)).as_bytes());
    }
    header.extend_from_slice(layout.eol.as_bytes());
    let padded_len = match layout.padding {
        Padding::Pkcs7 => (plaintext.len() / BLOCK + 1) * BLOCK,
        Padding::Zero => plaintext.len().div_ceil(BLOCK) * BLOCK,
    };
    let raw_len = padded_len + if layout.iv == Iv::Prefix { BLOCK } else { 0 };
    let body_len = match layout.body {
        Body::Raw => raw_len,
        Body::Base64 => {
            let chars = raw_len.div_ceil(3) * 4;
            chars + chars.div_ceil(BASE64_LINE) * layout.eol.as_bytes().len()
        }
    };
    if header.len() + body_len > MAX_FILE_SIZE {
        return Err(Error::TooLarge {
            len: plaintext.len(),
            max: MAX_FILE_SIZE - header.len() - 2 * BLOCK,
        });
    }
    // The plaintext is copied to be encrypted in place: zeroized on drop, like every copy.
    let mut body = Zeroizing::new(Vec::with_capacity(raw_len));
    if layout.iv == Iv::Prefix {
        body.extend_from_slice(&iv);
    }
    let start = body.len();
    body.extend_from_slice(plaintext);
    body.resize(raw_len, 0);
    let cipher = cbc::Encryptor::<Aes128>::new(key.key().expose_bytes().into(), &iv.into());
    let written = match layout.padding {
        Padding::Pkcs7 => cipher
            .encrypt_padded::<Pkcs7>(&mut body[start..], plaintext.len())
            .map(<[u8]>::len),
        Padding::Zero => cipher
            .encrypt_padded::<ZeroPadding>(&mut body[start..], plaintext.len())
            .map(<[u8]>::len),
    };
    // The sizes above make it exact; were it not, no plaintext may go out under a header.
    #[allow(clippy::expect_used)]
    let written = written.expect("the buffer holds the padded plaintext");
    assert_eq!(written, padded_len, "the padded length computed above");
    let mut out = header;
    match layout.body {
        Body::Raw => out.extend_from_slice(&body),
        Body::Base64 => {
            let text = BASE64.encode(&body[..]);
            for line in text.as_bytes().chunks(BASE64_LINE) {
                out.extend_from_slice(line);
                out.extend_from_slice(layout.eol.as_bytes());
            }
        }
    }
    Ok(out)
}

/// Decrypts an encrypted file with `key` in polyseal's default layout, failing closed.
///
/// Checks, in order: size cap; header; that the header's KeyDesc (if any) is the key's; that
/// the layout fits (line ending, digest algorithm, IV); body length; padding; digest. The
/// plaintext is returned in a buffer that is zeroized on drop, because configuration files
/// carry passwords.
pub fn decrypt(file: &[u8], key: &KeyString) -> Result<Zeroizing<Vec<u8>>, Error> {
    decrypt_with(file, key, &Layout::DEFAULT)
}

/// [`decrypt`] in `layout`.
pub fn decrypt_with(
    file: &[u8],
    key: &KeyString,
    layout: &Layout,
) -> Result<Zeroizing<Vec<u8>>, Error> {
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
    let mismatch = |dimension: &'static str, found: String| Error::LayoutMismatch {
        dimension,
        found,
        layout: *layout,
    };
    if header.eol() != layout.eol {
        return Err(mismatch(
            "eol",
            format!("the header line ends {}", header.eol()),
        ));
    }
    if header.digest_algorithm() != layout.digest {
        return Err(Error::UnsupportedDigest {
            algorithm: header.digest_algorithm(),
            layout: layout.digest,
        });
    }
    match (layout.iv, header.iv()) {
        (Iv::Header, None) => return Err(mismatch("iv", "no IV= field".to_owned())),
        (Iv::Prefix | Iv::Zero, Some(_)) => {
            return Err(mismatch("iv", "an IV= field".to_owned()));
        }
        _ => {}
    }
    let rest = &file[header.body_offset()..];
    let decoded;
    let body: &[u8] = match layout.body {
        Body::Raw => rest,
        Body::Base64 => {
            decoded = Zeroizing::new(base64_lines(rest, layout.eol).ok_or_else(|| {
                mismatch(
                    "body",
                    format!("not base64 in lines ended by {}", layout.eol),
                )
            })?);
            &decoded
        }
    };
    let (iv, ciphertext) = match layout.iv {
        Iv::Prefix => {
            // An IV and at least one block; zero padding of an empty plaintext is no block.
            let least = match layout.padding {
                Padding::Pkcs7 => 2 * BLOCK,
                Padding::Zero => BLOCK,
            };
            if body.len() < least {
                return Err(Error::TruncatedBody { len: body.len() });
            }
            let (iv, ciphertext) = body.split_at(BLOCK);
            let iv: [u8; BLOCK] = iv
                .try_into()
                .map_err(|_| Error::TruncatedBody { len: body.len() })?;
            (iv, ciphertext)
        }
        Iv::Zero => ([0u8; BLOCK], body),
        Iv::Header => (header.iv().unwrap_or_default(), body),
    };
    if ciphertext.is_empty() && layout.padding == Padding::Pkcs7 {
        return Err(Error::TruncatedBody { len: body.len() });
    }
    if ciphertext.len() % BLOCK != 0 {
        return Err(Error::BodyNotBlockAligned { len: body.len() });
    }
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let cipher = cbc::Decryptor::<Aes128>::new(key.key().expose_bytes().into(), &iv.into());
    match layout.padding {
        Padding::Pkcs7 => {
            let plaintext_len = cipher
                .decrypt_padded::<Pkcs7>(&mut buf)
                .map_err(|_| Error::BadPadding)?
                .len();
            buf.truncate(plaintext_len);
            if !header.matches_plaintext(&buf) {
                return Err(Error::DigestMismatch);
            }
        }
        Padding::Zero => {
            let len = cipher
                .decrypt_padded::<NoPadding>(&mut buf)
                .map_err(|_| Error::BadPadding)?
                .len();
            buf.truncate(len);
            // Zero padding cannot be told from trailing zeros of the plaintext: the digest
            // decides among the lengths the last block allows (at most 16).
            let zeros = buf
                .iter()
                .rev()
                .take(BLOCK - 1)
                .take_while(|&&b| b == 0)
                .count();
            let fits = (0..=zeros)
                .map(|cut| buf.len() - cut)
                .find(|&len| header.matches_plaintext(&buf[..len]))
                .ok_or(Error::DigestMismatch)?;
            buf.truncate(fits);
        }
    }
    Ok(buf)
}

/// Characters of a base64 body line (as `openssl enc -a`).
const BASE64_LINE: usize = 64;

/// The bytes of base64 `text` in lines each ended by exactly `eol`; `None` if it is not that.
fn base64_lines(text: &[u8], eol: Eol) -> Option<Vec<u8>> {
    let ending = eol.as_bytes();
    let mut joined = Vec::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let at = rest.iter().position(|&b| b == b'\n')?;
        let line = rest[..=at].strip_suffix(ending)?;
        if line.contains(&b'\r') || line.is_empty() {
            return None;
        }
        joined.extend_from_slice(line);
        rest = &rest[at + 1..];
    }
    BASE64.decode(&joined).ok()
}
