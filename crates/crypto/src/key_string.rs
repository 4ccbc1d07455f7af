//! The key string phones receive: `Crypt=1;KeyDesc=…;Key=…;`.

use std::fmt;

use zeroize::Zeroizing;

use crate::{ConfigKey, Error, KeyDesc};

/// A configuration key with its KeyDesc, as carried by the phone parameter
/// `device.sec.configEncryption.key`: `Crypt=1;KeyDesc=<desc>;Key=<32 hex>;`.
///
/// Parsing accepts the fields in any order, hex in either case and an optional trailing `;`.
/// `Display` and `Debug` never show the key; [`KeyString::expose`] does, by name.
///
/// ```
/// use polyseal_crypto::KeyString;
/// let ks = KeyString::parse("Key=06A9214036B8A15B512E03D534120006;Crypt=1;KeyDesc=companyNameKey1")?;
/// assert_eq!(ks.key_desc().as_str(), "companyNameKey1");
/// assert_eq!(
///     &*ks.expose(),
///     "Crypt=1;KeyDesc=companyNameKey1;Key=06a9214036b8a15b512e03d534120006;"
/// );
/// assert!(!ks.to_string().contains("06a9"));
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct KeyString {
    key_desc: KeyDesc,
    key: ConfigKey,
}

impl KeyString {
    /// Pairs a key with its KeyDesc.
    pub fn new(key_desc: KeyDesc, key: ConfigKey) -> KeyString {
        KeyString { key_desc, key }
    }

    /// Parses a key string. Errors name the field at fault, never the key.
    pub fn parse(input: &str) -> Result<KeyString, Error> {
        let bad = |reason| Error::KeyString { reason };
        let body = input.trim();
        let body = body.strip_suffix(';').unwrap_or(body);
        let (mut crypt, mut key_desc, mut key) = (None, None, None);
        for field in body.split(';') {
            let (name, value) = field.split_once('=').ok_or(bad(
                "has a field without '=' (expected Crypt=1;KeyDesc=…;Key=…;)",
            ))?;
            let slot = match name.trim() {
                "Crypt" => &mut crypt,
                "KeyDesc" => &mut key_desc,
                "Key" => &mut key,
                _ => return Err(bad("has a field other than Crypt, KeyDesc and Key")),
            };
            if slot.replace(value).is_some() {
                return Err(bad("repeats a field"));
            }
        }
        // No value is echoed in an error: a key string typed wrong (a comma for a `;`) would
        // put the key into the value of Crypt or KeyDesc, and so into the message.
        if crypt.ok_or(bad("has no Crypt field"))?.trim() != "1" {
            return Err(bad(
                "has a Crypt other than 1 (only Crypt=1, AES-128-CBC, is known)",
            ));
        }
        let key_desc = KeyDesc::new(key_desc.ok_or(bad("has no KeyDesc field"))?).map_err(|_| {
            bad("has a KeyDesc that is not 1 to 64 printable characters without ';', '=' or '\"'")
        })?;
        let key = ConfigKey::from_hex(key.ok_or(bad("has no Key field"))?)
            .map_err(|_| bad("has a Key that is not 32 hex digits"))?;
        Ok(KeyString { key_desc, key })
    }

    /// The KeyDesc.
    pub fn key_desc(&self) -> &KeyDesc {
        &self.key_desc
    }

    /// The key.
    pub fn key(&self) -> &ConfigKey {
        &self.key
    }

    /// The full key string, key included, in canonical form
    /// (`Crypt=1;KeyDesc=<desc>;Key=<32 lowercase hex>;`), in a string zeroized on drop.
    /// This is what goes into a bootstrap file; nothing else should print it.
    pub fn expose(&self) -> Zeroizing<String> {
        let desc = self.key_desc.to_string();
        let hex = self.key.expose_hex();
        // Sized exactly first: a string that grows copies the key's hex and frees the old
        // allocation unwiped (issue 13, point 8).
        let mut text = Zeroizing::new(String::with_capacity(
            "Crypt=1;KeyDesc=".len() + desc.len() + ";Key=".len() + hex.len() + 1,
        ));
        text.push_str("Crypt=1;KeyDesc=");
        text.push_str(&desc);
        text.push_str(";Key=");
        text.push_str(&hex);
        text.push(';');
        text
    }
}

impl fmt::Display for KeyString {
    /// The key string with the key replaced by its fingerprint, for messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Crypt=1;KeyDesc={};Key=<redacted {}>;",
            self.key_desc,
            self.key.fingerprint()
        )
    }
}

impl fmt::Debug for KeyString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyString")
            .field("key_desc", &self.key_desc)
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposed_key_string_is_written_into_a_buffer_that_never_grows() {
        let mac = crate::Mac::parse("0004f2abcdef").expect("a MAC");
        let key = KeyString::new(KeyDesc::for_generation(&mac, 12), ConfigKey::generate());
        let exposed = key.expose();
        // Exactly the allocation made first: no copy of the key was left in a freed one.
        assert_eq!(exposed.capacity(), exposed.len(), "{}", exposed.len());
        assert!(exposed.starts_with("Crypt=1;KeyDesc=0004f2abcdef-g12;Key="));
    }
}
