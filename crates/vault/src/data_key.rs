//! The vault data key: one AES-256 key that seals every phone's key, itself sealed with age
//! to the vault's recipients. One age unwrap per command opens every key in the vault.

use std::fmt;
use std::io::Read;
use std::sync::Arc;

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use age::armor::ArmoredReader;
use hkdf::Hkdf;
use hmac::{Hmac, Mac as _};
use polyseal_crypto::{ConfigKey, KeyDesc, Mac};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Error;
use crate::recipient::{Recipient, seal_to_all};
use crate::threshold::{self, Threshold};
use crate::transit::TransitClient;

/// Domain separation for [`DataKey::check`].
const CHECK_DOMAIN: &[u8] = b"polyseal vault data-key check v1\0";
/// Domain separation for the associated data of a sealed key.
const SEAL_DOMAIN: &[u8] = b"polyseal vault key v1\0";
/// HKDF `info` of the key that authenticates the vault head (docs/VAULT.md, `head.json`).
const HEAD_KEY_INFO: &[u8] = b"polyseal vault head key v1";
/// The line after the key in `data-key.age`'s plaintext since vault format 2. A format-1 vault
/// never has it, so a format-2 vault edited back to `format = 1` cannot pass for one at
/// `polyseal upgrade`: the marker is inside the age file, which only the data key's holders can
/// write (docs/VAULT.md, "Upgrading").
const FORMAT_2_MARKER: &str = "polyseal vault format 2\n";
/// Length of a data key in bytes.
const DATA_KEY_LEN: usize = 32;
/// Length of an AES-GCM nonce in bytes.
pub(crate) const NONCE_LEN: usize = 12;
/// Length of a sealed config key: 16 bytes of ciphertext and a 16-byte tag.
pub(crate) const SEALED_LEN: usize = ConfigKey::LEN + 16;

/// The random identifier of a vault, bound into every sealed key so that a record copied
/// from another vault does not open.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VaultId([u8; 16]);

impl VaultId {
    pub(crate) fn generate() -> VaultId {
        VaultId(random_bytes())
    }

    /// Parses 32 lowercase hex digits, the form `Display` writes.
    pub fn parse(text: &str) -> Option<VaultId> {
        let mut bytes = [0u8; 16];
        let canonical = text.bytes().all(|b| !b.is_ascii_uppercase());
        hex::decode_to_slice(text, &mut bytes).ok()?;
        canonical.then_some(VaultId(bytes))
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for VaultId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultId({self})")
    }
}

/// A phone key sealed under the data key: a random 96-bit nonce, and AES-256-GCM ciphertext
/// with its tag.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SealedKey {
    pub(crate) nonce: [u8; NONCE_LEN],
    pub(crate) ciphertext: [u8; SEALED_LEN],
}

impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedKey(..)")
    }
}

/// The vault's data key, unwrapped with an identity. Needed to seal new keys and to open
/// sealed ones.
///
/// Zeroized on drop; `Debug` shows only its check value. Obtained from
/// [`Vault::unlock`](crate::Vault::unlock).
pub struct DataKey {
    bytes: Zeroizing<[u8; DATA_KEY_LEN]>,
    cipher: Aes256Gcm,
    vault_id: VaultId,
    /// Whether the `data-key.age` it came from carries the format-2 marker (a key made here
    /// does).
    format_2: bool,
    /// The client that seals it to transit recipients: the unlocking custodian's token.
    transit: Option<Arc<TransitClient>>,
}

impl DataKey {
    pub(crate) fn generate(vault_id: VaultId) -> DataKey {
        DataKey::from_bytes(Zeroizing::new(random_bytes()), vault_id)
    }

    fn from_bytes(bytes: Zeroizing<[u8; DATA_KEY_LEN]>, vault_id: VaultId) -> DataKey {
        let cipher = Aes256Gcm::new(&(*bytes).into());
        DataKey {
            bytes,
            cipher,
            vault_id,
            format_2: true,
            transit: None,
        }
    }

    /// A new random data key for the same vault, sealed with the same transit token as this
    /// one (for an operation that replaces the data key).
    pub(crate) fn successor(&self) -> DataKey {
        let mut next = DataKey::generate(self.vault_id);
        next.transit = self.transit.clone();
        next
    }

    /// The client that seals to transit recipients, if the key was opened with a token.
    pub(crate) fn transit(&self) -> Option<&Arc<TransitClient>> {
        self.transit.as_ref()
    }

    /// Sets the client that seals this key to transit recipients.
    pub(crate) fn set_transit(&mut self, transit: Option<Arc<TransitClient>>) {
        self.transit = transit;
    }

    /// The vault this key belongs to.
    pub fn vault_id(&self) -> VaultId {
        self.vault_id
    }

    /// A short value that identifies this data key without revealing it (recorded in
    /// `vault.toml` as `data_key_check`): `sha256:` and the first 16 hex digits of
    /// SHA-256(`"polyseal vault data-key check v1\0"` ‖ key).
    pub fn check(&self) -> String {
        let digest = Sha256::new()
            .chain_update(CHECK_DOMAIN)
            .chain_update(&self.bytes[..])
            .finalize();
        format!("sha256:{}", hex::encode(&digest[..8]))
    }

    /// True if `check` is this key's check value (compared in constant time).
    pub(crate) fn matches_check(&self, check: &str) -> bool {
        self.check().as_bytes().ct_eq(check.as_bytes()).into()
    }

    /// Whether the `data-key.age` this key was opened from was written for a vault of format
    /// 2 or later (it carries the marker line); a key made here is.
    pub(crate) fn sealed_for_format_2(&self) -> bool {
        self.format_2
    }

    /// The contents of `data-key.age`. With `needed` 1: the key as 64 lowercase hex digits and
    /// a newline, then the line `polyseal vault format 2`, sealed with age to every recipient,
    /// ASCII-armored. With more: the key split into one share per recipient, any `needed` of
    /// which open it, each sealed to its recipient alone (docs/VAULT.md, "Threshold").
    pub(crate) fn wrap(&self, recipients: &[Recipient], needed: usize) -> Result<String, Error> {
        if needed <= 1 {
            // Sized up front: a String that grows leaves its old buffer behind, unzeroized.
            let mut plaintext = Zeroizing::new(String::with_capacity(
                2 * DATA_KEY_LEN + 1 + FORMAT_2_MARKER.len(),
            ));
            plaintext.push_str(&Zeroizing::new(hex::encode(&self.bytes[..])));
            plaintext.push('\n');
            plaintext.push_str(FORMAT_2_MARKER);
            return seal_to_all(recipients, plaintext.as_bytes(), self.transit.as_ref());
        }
        let threshold = Threshold::new(needed, recipients.len())?;
        let shares = threshold::split(&self.bytes[..], threshold)?;
        let sealed = recipients
            .iter()
            .zip(&shares)
            .map(|(recipient, share)| {
                let plaintext = threshold::share_plaintext(share, threshold, FORMAT_2_MARKER);
                seal_to_all(
                    std::slice::from_ref(recipient),
                    plaintext.as_bytes(),
                    self.transit.as_ref(),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(threshold::render(threshold, &sealed))
    }

    /// Opens `data-key.age` (its contents, `file`) with `identities`, and `transit` (the
    /// opener of transit stanzas) last: the whole key, or enough shares of it. The transit
    /// service is called only for what the identities could not open.
    pub(crate) fn unwrap(
        file: &[u8],
        identities: &[&dyn age::Identity],
        transit: Option<&dyn age::Identity>,
        vault_id: VaultId,
    ) -> Result<DataKey, UnwrapError> {
        let Some(shares_file) = threshold::parse(file) else {
            let all: Vec<&dyn age::Identity> = identities.iter().copied().chain(transit).collect();
            let plaintext = open_age_file(file, &all).map_err(UnwrapError::Age)?;
            return DataKey::from_plaintext(&plaintext, vault_id);
        };
        let (threshold, blocks) = shares_file.map_err(UnwrapError::MalformedShares)?;
        let mut opened = Vec::with_capacity(threshold.of);
        let mut missing: Vec<usize> = (0..blocks.len()).collect();
        let mut format_2 = true;
        let passes = [identities.to_vec(), transit.into_iter().collect()];
        for openers in passes.iter().filter(|openers| !openers.is_empty()) {
            if opened.len() >= threshold.needed {
                break;
            }
            let mut still_missing = Vec::new();
            for index in missing {
                let Some(block) = blocks.get(index) else {
                    continue;
                };
                match open_age_file(block, openers) {
                    Ok(plaintext) => {
                        let (share, marked) =
                            threshold::parse_share(&plaintext, threshold, FORMAT_2_MARKER)
                                .ok_or(UnwrapError::Malformed)?;
                        format_2 &= marked;
                        opened.push((index, share));
                    }
                    Err(age::DecryptError::NoMatchingKeys) => still_missing.push(index),
                    Err(e) => return Err(UnwrapError::Age(e)),
                }
            }
            missing = still_missing;
        }
        opened.sort_by_key(|(index, _)| *index);
        if opened.len() < threshold.needed {
            return Err(UnwrapError::TooFewShares {
                needed: threshold.needed,
                opened: opened.iter().map(|(index, _)| *index).collect(),
                missing,
            });
        }
        let shares: Vec<_> = opened.into_iter().map(|(_, share)| share).collect();
        let combined = threshold::combine(&shares).ok_or(UnwrapError::Malformed)?;
        let mut bytes = Zeroizing::new([0u8; DATA_KEY_LEN]);
        if combined.len() != DATA_KEY_LEN {
            return Err(UnwrapError::Malformed);
        }
        bytes.copy_from_slice(&combined);
        let mut data_key = DataKey::from_bytes(bytes, vault_id);
        data_key.format_2 = format_2;
        Ok(data_key)
    }

    /// The data key from the plaintext of a whole-key `data-key.age`.
    fn from_plaintext(plaintext: &[u8], vault_id: VaultId) -> Result<DataKey, UnwrapError> {
        let (first_line, format_2) = match plaintext.strip_suffix(FORMAT_2_MARKER.as_bytes()) {
            Some(first_line) => (first_line, true),
            None => (plaintext, false),
        };
        let hex_digits = first_line
            .strip_suffix(b"\n")
            .ok_or(UnwrapError::Malformed)?;
        let mut bytes = Zeroizing::new([0u8; DATA_KEY_LEN]);
        let canonical = !hex_digits.iter().any(u8::is_ascii_uppercase);
        hex::decode_to_slice(hex_digits, &mut *bytes).map_err(|_| UnwrapError::Malformed)?;
        if !canonical {
            return Err(UnwrapError::Malformed);
        }
        let mut data_key = DataKey::from_bytes(bytes, vault_id);
        data_key.format_2 = format_2;
        Ok(data_key)
    }

    /// Seals one generation of a phone's key.
    pub(crate) fn seal(
        &self,
        mac: &Mac,
        generation: u32,
        key_desc: &KeyDesc,
        key: &ConfigKey,
    ) -> SealedKey {
        let nonce: [u8; NONCE_LEN] = random_bytes();
        let mut buffer = Zeroizing::new(*key.expose_bytes());
        let aad = associated_data(self.vault_id, mac, generation, key_desc);
        let tag =
            self.cipher
                .encrypt_inout_detached(&Nonce::from(nonce), &aad, (&mut buffer[..]).into());
        // AES-GCM refuses only inputs of more than 2^36 bytes; ours are 16.
        #[allow(clippy::expect_used)]
        let tag = tag.expect("AES-GCM accepts a 16-byte message");
        let mut ciphertext = [0u8; SEALED_LEN];
        ciphertext[..ConfigKey::LEN].copy_from_slice(&buffer[..]);
        ciphertext[ConfigKey::LEN..].copy_from_slice(&tag);
        SealedKey { nonce, ciphertext }
    }

    /// The tag that authenticates the vault head `message`: HMAC-SHA256 under a key derived
    /// from this data key with HKDF-SHA256 (salt: the vault id; info:
    /// `"polyseal vault head key v1"`), so whoever cannot open `data-key.age` cannot make one.
    pub(crate) fn head_tag(&self, message: &[u8]) -> [u8; 32] {
        self.head_mac(message).finalize().into_bytes().into()
    }

    /// True if `tag` is [`DataKey::head_tag`] of `message` (compared in constant time).
    pub(crate) fn head_tag_matches(&self, message: &[u8], tag: &[u8; 32]) -> bool {
        self.head_mac(message).verify_slice(tag).is_ok()
    }

    fn head_mac(&self, message: &[u8]) -> Hmac<Sha256> {
        let mut head_key = Zeroizing::new([0u8; 32]);
        // HKDF-SHA256 refuses only outputs longer than 255 × 32 bytes; this one is 32.
        #[allow(clippy::expect_used)]
        Hkdf::<Sha256>::new(Some(self.vault_id.as_bytes()), &self.bytes[..])
            .expand(HEAD_KEY_INFO, &mut head_key[..])
            .expect("HKDF-SHA256 gives 32 bytes");
        // HMAC takes a key of any length.
        #[allow(clippy::expect_used)]
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&head_key[..]).expect("HMAC takes any key");
        hmac::Mac::update(&mut mac, message);
        mac
    }

    /// Opens a sealed key; `None` if it does not open under this data key with this MAC,
    /// generation and KeyDesc.
    pub(crate) fn open(
        &self,
        sealed: &SealedKey,
        mac: &Mac,
        generation: u32,
        key_desc: &KeyDesc,
    ) -> Option<ConfigKey> {
        let mut buffer = Zeroizing::new([0u8; ConfigKey::LEN]);
        buffer.copy_from_slice(&sealed.ciphertext[..ConfigKey::LEN]);
        let tag = aes_gcm::Tag::try_from(&sealed.ciphertext[ConfigKey::LEN..]).ok()?;
        let aad = associated_data(self.vault_id, mac, generation, key_desc);
        self.cipher
            .decrypt_inout_detached(
                &Nonce::from(sealed.nonce),
                &aad,
                (&mut buffer[..]).into(),
                &tag,
            )
            .ok()?;
        Some(ConfigKey::from_bytes(*buffer))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey({})", self.check())
    }
}

/// Why `data-key.age` did not open.
pub(crate) enum UnwrapError {
    /// age refused it: no identity matched, a passphrase or plugin failed, or the file is
    /// damaged.
    Age(age::DecryptError),
    /// It opened, but the plaintext is not 64 lowercase hex digits and a newline (or a share
    /// in its form, or the shares do not combine).
    Malformed,
    /// It holds shares, but its layout is wrong (the reason).
    MalformedShares(String),
    /// It holds shares, and fewer than `needed` opened: the indexes (in recipient order) of
    /// those that did and of those that did not.
    TooFewShares {
        needed: usize,
        opened: Vec<usize>,
        missing: Vec<usize>,
    },
}

/// Opens one armored age file with any of `openers`, into a buffer sized up front so that
/// reading never moves (and leaves behind) a copy of what it holds.
fn open_age_file(
    armored: &[u8],
    openers: &[&dyn age::Identity],
) -> Result<Zeroizing<Vec<u8>>, age::DecryptError> {
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(armored))?;
    let mut reader = decryptor.decrypt(openers.iter().copied())?;
    let mut plaintext = Zeroizing::new(Vec::with_capacity(1024));
    reader
        .by_ref()
        .take(1024)
        .read_to_end(&mut plaintext)
        .map_err(age::DecryptError::Io)?;
    Ok(plaintext)
}

/// The associated data that binds a sealed key to its place:
/// `"polyseal vault key v1\0"` ‖ vault id (16 bytes) ‖ MAC (6 bytes) ‖ generation (4 bytes,
/// big-endian) ‖ KeyDesc (its ASCII bytes, last so no length is needed).
pub(crate) fn associated_data(
    vault_id: VaultId,
    mac: &Mac,
    generation: u32,
    key_desc: &KeyDesc,
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SEAL_DOMAIN.len() + 16 + 6 + 4 + KeyDesc::MAX_LEN);
    aad.extend_from_slice(SEAL_DOMAIN);
    aad.extend_from_slice(vault_id.as_bytes());
    aad.extend_from_slice(&mac.octets());
    aad.extend_from_slice(&generation.to_be_bytes());
    aad.extend_from_slice(key_desc.as_str().as_bytes());
    aad
}

/// `N` bytes from the operating system's random number generator.
///
/// # Panics
/// If the operating system cannot supply random bytes: no key is better than a weak one.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    #[allow(clippy::expect_used)] // An OS without randomness must not get a made-up key.
    SysRng
        .try_fill_bytes(&mut bytes)
        .expect("operating system random number generator failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the associated-data layout that docs/VAULT.md documents byte by byte.
    #[test]
    fn associated_data_layout_matches_the_documentation() {
        let vault_id = VaultId([0x11; 16]);
        let mac = Mac::parse("0004f2abcdef").expect("mac");
        let key_desc = KeyDesc::new("0004f2abcdef-g2").expect("desc");
        let aad = associated_data(vault_id, &mac, 2, &key_desc);
        let mut expected = b"polyseal vault key v1\0".to_vec();
        expected.extend_from_slice(&[0x11; 16]);
        expected.extend_from_slice(&[0x00, 0x04, 0xf2, 0xab, 0xcd, 0xef]);
        expected.extend_from_slice(&[0, 0, 0, 2]);
        expected.extend_from_slice(b"0004f2abcdef-g2");
        assert_eq!(aad, expected);
        assert_eq!(aad.len(), 48 + key_desc.as_str().len());
    }

    #[test]
    fn a_sealed_key_opens_only_in_its_place() {
        let data_key = DataKey::generate(VaultId::generate());
        let mac = Mac::parse("0004f2abcdef").expect("mac");
        let other = Mac::parse("0004f2abcdee").expect("mac");
        let desc = KeyDesc::new("d").expect("desc");
        let key = ConfigKey::generate();
        let sealed = data_key.seal(&mac, 1, &desc, &key);
        assert_eq!(data_key.open(&sealed, &mac, 1, &desc), Some(key));
        assert!(data_key.open(&sealed, &other, 1, &desc).is_none());
        assert!(data_key.open(&sealed, &mac, 2, &desc).is_none());
        let other_desc = KeyDesc::new("e").expect("desc");
        assert!(data_key.open(&sealed, &mac, 1, &other_desc).is_none());
        let elsewhere = DataKey::generate(data_key.vault_id());
        assert!(elsewhere.open(&sealed, &mac, 1, &desc).is_none());
        assert_ne!(
            data_key.seal(&mac, 1, &desc, &ConfigKey::generate()).nonce,
            sealed.nonce
        );
    }

    #[test]
    fn check_value_is_sha256_prefixed_16_hex_digits() {
        let check = DataKey::generate(VaultId::generate()).check();
        assert_eq!(check.len(), "sha256:".len() + 16);
        assert!(check.starts_with("sha256:"));
    }
}
