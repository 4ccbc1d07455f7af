//! A phone's AES-128 configuration key.

use std::fmt;

use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::Error;

/// Domain separation for [`ConfigKey::fingerprint`], so a fingerprint can never be confused
/// with (or used as) a SHA-256 of anything else, such as a file digest.
const FINGERPRINT_DOMAIN: &[u8] = b"polyseal config-key fingerprint v1\0";

/// A phone's 128-bit configuration key (AES-128).
///
/// The bytes are zeroized on drop, compared in constant time, and never shown by `Debug`,
/// which prints the [fingerprint](ConfigKey::fingerprint) instead. Reading the key needs an
/// explicit call: [`ConfigKey::expose_bytes`] or [`ConfigKey::expose_hex`].
///
/// ```
/// use polyseal_crypto::ConfigKey;
/// let key = ConfigKey::from_hex("06a9214036b8a15b512e03d534120006")?;
/// assert!(!format!("{key:?}").contains("06a92140"));
/// assert_eq!(&*key.expose_hex(), "06a9214036b8a15b512e03d534120006");
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ConfigKey([u8; ConfigKey::LEN]);

impl ConfigKey {
    /// Key length in bytes.
    pub const LEN: usize = 16;

    /// A new key of 16 bytes from the operating system's random number generator.
    ///
    /// # Panics
    /// If the operating system cannot supply random bytes; no key is better than a weak one.
    pub fn generate() -> ConfigKey {
        let mut key = ConfigKey([0; ConfigKey::LEN]);
        #[allow(clippy::expect_used)] // An OS without randomness must not get a made-up key.
        SysRng
            .try_fill_bytes(&mut key.0)
            .expect("operating system random number generator failed");
        key
    }

    /// Wraps existing key bytes.
    pub fn from_bytes(bytes: [u8; ConfigKey::LEN]) -> ConfigKey {
        ConfigKey(bytes)
    }

    /// Parses 32 hex digits, either case.
    pub fn from_hex(hex_digits: &str) -> Result<ConfigKey, Error> {
        let mut key = ConfigKey([0; ConfigKey::LEN]);
        hex::decode_to_slice(hex_digits.trim(), &mut key.0).map_err(|_| Error::KeyHex)?;
        Ok(key)
    }

    /// The raw key bytes. The name says what the call does: use it only to encrypt, decrypt or
    /// seal.
    pub fn expose_bytes(&self) -> &[u8; ConfigKey::LEN] {
        &self.0
    }

    /// The key as 32 lowercase hex digits, in a string that is zeroized on drop.
    pub fn expose_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// A short digest that identifies this key without revealing it, for inventories, logs and
    /// audit reports: `sha256:` and the first 16 hex digits of
    /// SHA-256(`"polyseal config-key fingerprint v1\0"` ‖ key).
    ///
    /// 64 bits of a domain-separated hash of a uniformly random 128-bit key reveal nothing that
    /// helps to find the key, and collide by chance only after ~4 billion keys.
    pub fn fingerprint(&self) -> Fingerprint {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_DOMAIN)
            .chain_update(self.0)
            .finalize();
        let mut short = [0u8; 8];
        short.copy_from_slice(&digest[..8]);
        Fingerprint(short)
    }
}

impl PartialEq for ConfigKey {
    fn eq(&self, other: &ConfigKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for ConfigKey {}

impl fmt::Debug for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigKey({})", self.fingerprint())
    }
}

/// The printable identity of a [`ConfigKey`]; see [`ConfigKey::fingerprint`].
#[derive(Clone, Copy, Eq, PartialOrd, Ord)]
pub struct Fingerprint([u8; 8]);

// Written by hand only because `PartialEq` is: equal fingerprints hash alike.
impl std::hash::Hash for Fingerprint {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

/// Constant-time, as every comparison of a digest is: a fingerprint is public, but code that
/// checks "is this the key I expect" should not teach anyone how much of it matched.
impl PartialEq for Fingerprint {
    fn eq(&self, other: &Fingerprint) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Fingerprint {
    /// Parses the form produced by `Display`: `sha256:` and 16 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Fingerprint> {
        let mut bytes = [0u8; 8];
        let digits = s.strip_prefix("sha256:")?;
        hex::decode_to_slice(digits, &mut bytes).ok()?;
        Some(Fingerprint(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}
