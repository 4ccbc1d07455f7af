//! The file that hands a phone its key: the bootstrap file (plaintext, first key) and the
//! key-change file (the next key, encrypted with the current one). docs/PROVISIONING.md §5:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8" standalone="yes"?>
//! <polycomConfig>
//!   <device device.set="1"
//!           device.sec.configEncryption.key.set="1"
//!           device.sec.configEncryption.key="Crypt=1;KeyDesc=0004f2abcdef-g1;Key=…;"/>
//! </polycomConfig>
//! ```

use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::path::Path;

use polyseal_crypto::{KeyString, Layout, Mac};
use quick_xml::Writer;
use quick_xml::escape::escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::mac_names::{PHONE_MAC_ADDRESS, expand_mac};
use crate::xml::XmlText;
use crate::{Error, FileReference};

/// `device.*` parameters apply only when this is `1`.
const DEVICE_SET: &str = "device.set";
/// The key's own `.set` companion, also required for it to apply.
const KEY_SET: &str = "device.sec.configEncryption.key.set";
/// The parameter that carries the key string.
const KEY: &str = "device.sec.configEncryption.key";

/// Room for everything in a key file but the escaped key string, so that the buffers holding
/// the key never grow (growing would leave a copy of the key in freed memory).
const FIXED_LEN: usize = 256;

/// A phone's MAC (a Polycom OUI's) that shows how a pattern's names resolve.
const SAMPLE_MAC: &str = "0004f2000001";

/// Where a phone's key file lives in the tree, such as the default
/// `[PHONE_MAC_ADDRESS]-key.cfg`. The master's `CONFIG_FILES` must list the same name, or
/// phones never fetch their key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFilePattern {
    pattern: String,
    /// How every phone's key file path ends: the resolved path's text after its last MAC
    /// (`-key.cfg` for the default). Checking it first spares expanding the pattern for each
    /// of a large tree's files ([`KeyFilePattern::is_key_file_of`]).
    tail: String,
}

impl KeyFilePattern {
    /// The default pattern, `[PHONE_MAC_ADDRESS]-key.cfg`.
    pub const DEFAULT: &'static str = "[PHONE_MAC_ADDRESS]-key.cfg";

    /// Validates a pattern: it must contain `[PHONE_MAC_ADDRESS]` (a key file is one phone's),
    /// be a path inside the tree (no URL, no `..`), hold no comma (it must fit in a
    /// `CONFIG_FILES` list), and not be `[PHONE_MAC_ADDRESS].cfg` (phones take that name for
    /// their master file).
    ///
    /// ```
    /// use polyseal_provision::KeyFilePattern;
    /// assert!(KeyFilePattern::parse("keys/[PHONE_MAC_ADDRESS]-key.cfg").is_ok());
    /// assert!(KeyFilePattern::parse("site-key.cfg").is_err());
    /// ```
    pub fn parse(pattern: &str) -> Result<KeyFilePattern, Error> {
        let invalid = |reason| {
            Err(Error::KeyFilePattern {
                pattern: pattern.to_owned(),
                reason,
            })
        };
        if !pattern.contains(PHONE_MAC_ADDRESS) {
            return invalid(
                "does not contain [PHONE_MAC_ADDRESS]: a key file belongs to one phone",
            );
        }
        if pattern.contains(',') {
            return invalid("contains a comma, which separates CONFIG_FILES entries");
        }
        // Any phone's MAC shows the shape of the names.
        let sample_mac = SAMPLE_MAC;
        match FileReference::parse(&pattern.replace(PHONE_MAC_ADDRESS, sample_mac)) {
            FileReference::InTree(path) if path.as_os_str().is_empty() => invalid("names no file"),
            FileReference::InTree(path) if path == Path::new(&format!("{sample_mac}.cfg")) => {
                invalid("is the master file's name [PHONE_MAC_ADDRESS].cfg")
            }
            FileReference::InTree(_) => Ok(KeyFilePattern::new(pattern)),
            FileReference::Url(_) | FileReference::OutsideTree(_) => {
                invalid("is not a path inside the provisioning tree")
            }
        }
    }

    /// A pattern already validated by [`KeyFilePattern::parse`] (or the default).
    fn new(pattern: &str) -> KeyFilePattern {
        // A MAC's digits cannot change how the path resolves, so any MAC shows the tail.
        let resolved = FileReference::parse(&pattern.replace(PHONE_MAC_ADDRESS, SAMPLE_MAC));
        let tail = resolved
            .tree_path()
            .and_then(Path::to_str)
            .and_then(|path| path.rsplit_once(SAMPLE_MAC))
            .map_or_else(String::new, |(_, tail)| tail.to_owned());
        KeyFilePattern {
            pattern: pattern.to_owned(),
            tail,
        }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The name `mac` requests its key file by.
    pub fn file_name(&self, mac: &Mac) -> String {
        expand_mac(&self.pattern, mac)
    }

    /// True if `relative`, a path in the tree, is `mac`'s key file.
    ///
    /// ```
    /// use polyseal_crypto::Mac;
    /// use polyseal_provision::KeyFilePattern;
    /// let mac: Mac = "0004f2abcdef".parse()?;
    /// let pattern = KeyFilePattern::default();
    /// assert!(pattern.is_key_file_of(&mac, "0004f2abcdef-key.cfg".as_ref()));
    /// assert!(!pattern.is_key_file_of(&mac, "0004f2abcdef-sip.cfg".as_ref()));
    /// # Ok::<(), polyseal_crypto::Error>(())
    /// ```
    pub fn is_key_file_of(&self, mac: &Mac, relative: &Path) -> bool {
        relative.to_str().is_some_and(|r| r.ends_with(&self.tail))
            && self.reference(mac).tree_path() == Some(relative)
    }

    /// `mac`'s key file, resolved in the tree.
    pub fn reference(&self, mac: &Mac) -> FileReference {
        FileReference::parse(&self.file_name(mac))
    }
}

impl Default for KeyFilePattern {
    fn default() -> KeyFilePattern {
        KeyFilePattern::new(KeyFilePattern::DEFAULT)
    }
}

/// The bootstrap file that gives a phone `key`: the XML of docs/PROVISIONING.md §5, plaintext, in a buffer
/// zeroized on drop. The key string is escaped as an XML attribute value by quick-xml.
/// Serve it only over HTTPS, and store it with mode 0600.
///
/// ```
/// use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac};
/// use polyseal_provision::{bootstrap_file, read_bootstrap_file};
/// let mac: Mac = "0004f2abcdef".parse()?;
/// let key = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
/// let file = bootstrap_file(&key);
/// assert!(file.starts_with(b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<polycomConfig>"));
/// assert_eq!(read_bootstrap_file("0004f2abcdef-key.cfg".as_ref(), &file)?, key);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bootstrap_file(key: &KeyString) -> Zeroizing<Vec<u8>> {
    let key_string = key.expose();
    let escaped = Zeroizing::new(escape(key_string.as_str()).into_owned());
    // The <device> tag is assembled here, in a buffer that is zeroized, rather than by
    // quick-xml's ElementWriter, whose internal buffer is not; quick-xml still escapes the value
    // and writes every event. Continuation lines align under the first attribute, as in §3.4.
    let align = " ".repeat("  <device ".len());
    let mut device = Zeroizing::new(String::with_capacity(FIXED_LEN + escaped.len()));
    // Writing into a String cannot fail.
    let _ = write!(
        device,
        "device {DEVICE_SET}=\"1\"\n{align}{KEY_SET}=\"1\"\n{align}{KEY}=\"{}\"",
        escaped.as_str()
    );
    let mut out = Zeroizing::new(Vec::with_capacity(FIXED_LEN + escaped.len()));
    let mut writer = Writer::new_with_indent(&mut *out, b' ', 2);
    let events = [
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), Some("yes"))),
        Event::Start(BytesStart::new("polycomConfig")),
        Event::Empty(BytesStart::from_content(device.as_str(), "device".len())),
        Event::End(BytesEnd::new("polycomConfig")),
    ];
    for event in events {
        // quick-xml's writer only fails when the underlying writer does; a Vec never does.
        let _ = writer.write_event(event);
    }
    out.push(b'\n');
    out
}

/// The key-change file that moves a phone from key `old` to key `new`: the bootstrap XML for
/// `new`, encrypted with `old` (the phone can read it only with the key it holds).
///
/// ```
/// use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac};
/// use polyseal_provision::{key_change_file, read_key_change_file};
/// let mac: Mac = "0004f2abcdef".parse()?;
/// let g1 = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
/// let g2 = KeyString::new(KeyDesc::for_generation(&mac, 2), ConfigKey::generate());
/// let layout = polyseal_crypto::Layout::DEFAULT;
/// let file = key_change_file(&g2, &g1, &layout);
/// assert!(polyseal_crypto::is_encrypted(&file));
/// assert_eq!(read_key_change_file("0004f2abcdef-key.cfg".as_ref(), &file, &g1, &layout)?, g2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn key_change_file(new: &KeyString, old: &KeyString, layout: &Layout) -> Vec<u8> {
    #[allow(clippy::expect_used)] // A key file is under 1 KiB; encrypt fails only above 64 MiB.
    polyseal_crypto::encrypt_with(&bootstrap_file(new), old, layout)
        .expect("a key file is far smaller than polyseal_crypto::MAX_FILE_SIZE")
}

/// The key of a bootstrap file that is byte for byte what [`bootstrap_file`] writes for it;
/// `None` for any other file, which [`read_bootstrap_file`] reads. It recognises polyseal's own
/// key files without the XML parser (an audit checks 100,000 of them); the comparison of the
/// whole file with its rendering is what makes that safe.
///
/// ```
/// use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac};
/// use polyseal_provision::{bootstrap_file, written_bootstrap_key};
///
/// let mac = Mac::parse("0004f2abcdef")?;
/// let key = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
/// assert_eq!(written_bootstrap_key(&bootstrap_file(&key)), Some(key));
/// assert_eq!(written_bootstrap_key(b"<polycomConfig/>"), None);
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
pub fn written_bootstrap_key(bytes: &[u8]) -> Option<KeyString> {
    let text = std::str::from_utf8(bytes).ok()?;
    // `device.sec.configEncryption.key.set` comes first: find the name followed by `="`.
    let rest = text
        .match_indices(KEY)
        .find_map(|(at, _)| text[at + KEY.len()..].strip_prefix("=\""))?;
    let key = KeyString::parse(&rest[..rest.find('"')?]).ok()?;
    bool::from(bootstrap_file(&key).ct_eq(bytes)).then_some(key)
}

/// Reads the key string out of a plaintext key file (a bootstrap file, or a decrypted
/// key-change file), checking what a phone needs to apply it: `device.set="1"`,
/// `device.sec.configEncryption.key.set="1"` and a valid key string. `path` names the file in
/// errors.
pub fn read_bootstrap_file(path: &Path, bytes: &[u8]) -> Result<KeyString, Error> {
    let text = XmlText::new(path, bytes)?;
    let (mut device_set, mut key_set, mut key) = (None, None, None::<Zeroizing<String>>);
    text.for_each_element(|element| {
        for attribute in element.attributes {
            let slot = match attribute.name {
                DEVICE_SET => &mut device_set,
                KEY_SET => &mut key_set,
                KEY => {
                    // The first occurrence wins, as it does on the phone.
                    if key.is_none() {
                        key = Some(Zeroizing::new(text.value(attribute)?.into_owned()));
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(text.value(attribute)?.into_owned());
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let unusable = |reason| {
        Err(Error::KeyFile {
            path: path.to_owned(),
            reason,
        })
    };
    let Some(key) = key else {
        return unusable("it has no device.sec.configEncryption.key parameter");
    };
    if device_set.as_deref() != Some("1") {
        return unusable("device.set is not \"1\", so the phone ignores its device.* parameters");
    }
    if key_set.as_deref() != Some("1") {
        return unusable(
            "device.sec.configEncryption.key.set is not \"1\", so the phone ignores the key",
        );
    }
    KeyString::parse(&key).map_err(|source| Error::Crypto {
        path: path.to_owned(),
        source,
    })
}

/// Decrypts a key-change file with the phone's current key `old` in the fleet's `layout` and
/// reads the new key out of it, as [`read_bootstrap_file`] does.
pub fn read_key_change_file(
    path: &Path,
    bytes: &[u8],
    old: &KeyString,
    layout: &Layout,
) -> Result<KeyString, Error> {
    let plaintext =
        polyseal_crypto::decrypt_with(bytes, old, layout).map_err(|source| Error::Crypto {
            path: path.to_owned(),
            source,
        })?;
    read_bootstrap_file(path, &plaintext)
}
