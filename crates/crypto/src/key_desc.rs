//! The KeyDesc that names a key inside a key string and an encrypted file's header.

use std::fmt;

use crate::{Error, Mac};

/// The name of a key, carried in key strings (`KeyDesc=…`) and in encrypted files' headers,
/// so that a file tells which key sealed it.
///
/// 1 to 64 printable ASCII characters, without `;`, `=` or `"` (they would break the key
/// string or the XML attribute that carries it) and without spaces at either end. Not secret.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyDesc(String);

impl KeyDesc {
    /// Longest KeyDesc accepted.
    pub const MAX_LEN: usize = 64;

    /// Validates `desc`.
    ///
    /// ```
    /// use polyseal_crypto::KeyDesc;
    /// assert!(KeyDesc::new("companyNameKey1").is_ok());
    /// assert!(KeyDesc::new("a;b").is_err());
    /// ```
    pub fn new(desc: &str) -> Result<KeyDesc, Error> {
        let invalid = |reason| Error::KeyDesc {
            input: desc.to_owned(),
            reason,
        };
        if desc.is_empty() {
            return Err(invalid("is empty"));
        }
        if desc.len() > KeyDesc::MAX_LEN {
            return Err(invalid("is longer than 64 characters"));
        }
        if desc.starts_with(' ') || desc.ends_with(' ') {
            return Err(invalid("starts or ends with a space"));
        }
        if !desc.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(invalid("holds a character that is not printable ASCII"));
        }
        if desc.contains([';', '=', '"']) {
            return Err(invalid("holds ';', '=' or '\"'"));
        }
        Ok(KeyDesc(desc.to_owned()))
    }

    /// The default KeyDesc of generation `generation` of `mac`'s key: `<mac>-g<generation>`,
    /// so every file names the phone and the key generation that sealed it.
    ///
    /// ```
    /// use polyseal_crypto::{KeyDesc, Mac};
    /// let mac: Mac = "0004f2abcdef".parse()?;
    /// assert_eq!(KeyDesc::for_generation(&mac, 3).as_str(), "0004f2abcdef-g3");
    /// # Ok::<(), polyseal_crypto::Error>(())
    /// ```
    pub fn for_generation(mac: &Mac, generation: u32) -> KeyDesc {
        KeyDescTemplate::default().render(mac, generation)
    }

    /// The KeyDesc as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDesc({:?})", self.0)
    }
}

/// A pattern that names each generation of each phone's key, such as `{mac}-g{generation}`
/// (the default) or `acme-{mac}-{generation}`.
///
/// `{mac}` is required, so every KeyDesc names its phone and two phones never share one;
/// `{generation}` is required, so a rotation changes the KeyDesc and a phone's uploaded file
/// tells which generation it holds.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyDescTemplate(String);

impl KeyDescTemplate {
    /// The default template.
    pub const DEFAULT: &'static str = "{mac}-g{generation}";

    /// Validates a template: both placeholders present, no other `{…}`, and the rendered
    /// result a valid [`KeyDesc`] for the longest generation number.
    ///
    /// ```
    /// use polyseal_crypto::{KeyDescTemplate, Mac};
    /// let template = KeyDescTemplate::parse("acme-{mac}-{generation}")?;
    /// let mac: Mac = "0004f2abcdef".parse()?;
    /// assert_eq!(template.render(&mac, 2).as_str(), "acme-0004f2abcdef-2");
    /// # Ok::<(), polyseal_crypto::Error>(())
    /// ```
    pub fn parse(template: &str) -> Result<KeyDescTemplate, Error> {
        let invalid = |reason| Error::KeyDescTemplate {
            template: template.to_owned(),
            reason,
        };
        if !template.contains("{mac}") {
            return Err(invalid("does not contain {mac}"));
        }
        if !template.contains("{generation}") {
            return Err(invalid("does not contain {generation}"));
        }
        let rest = template.replace("{mac}", "").replace("{generation}", "");
        if rest.contains(['{', '}']) {
            return Err(invalid(
                "has a placeholder other than {mac} and {generation}",
            ));
        }
        let widest = template
            .replace("{mac}", "0004f2abcdef")
            .replace("{generation}", &u32::MAX.to_string());
        KeyDesc::new(&widest).map_err(|_| {
            invalid("renders to an invalid KeyDesc (over 64 characters, or ';', '=', '\"')")
        })?;
        Ok(KeyDescTemplate(template.to_owned()))
    }

    /// The KeyDesc of generation `generation` of `mac`'s key.
    pub fn render(&self, mac: &Mac, generation: u32) -> KeyDesc {
        // parse() proved that every rendering is a valid KeyDesc.
        KeyDesc(
            self.0
                .replace("{mac}", &mac.to_string())
                .replace("{generation}", &generation.to_string()),
        )
    }

    /// The template as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for KeyDescTemplate {
    fn default() -> KeyDescTemplate {
        KeyDescTemplate(KeyDescTemplate::DEFAULT.to_owned())
    }
}
