//! The secret scanner: which secrets in a file would reach the wrong eyes, and which are weak.

use std::borrow::Cow;
use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use crate::secrets::{effective_value, secret_kind, weakness};
use crate::url::has_url_password;
use crate::xml::{Attribute, XmlText};
use crate::{Error, Position, SecretKind, Weakness};

/// Who can read a file as the web server serves it; it decides which secrets are findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Exposure {
    /// A master file: always plaintext (phones cannot read an encrypted master), fetched by
    /// every phone that boots from it.
    Master,
    /// A file without a phone's MAC in its name: it cannot carry a per-phone key, so it is
    /// served in plaintext to every phone (and to anyone who asks for it).
    Shared,
    /// One phone's file, served in plaintext.
    PerPhonePlaintext,
    /// One phone's file, served encrypted with that phone's key.
    PerPhoneEncrypted,
    /// One phone's bootstrap key file: plaintext by necessity (the phone has no key yet), served
    /// only over HTTPS. Its configuration key is expected; any other secret is a finding.
    KeyFile,
}

/// What is wrong with one secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// A non-empty secret in a master file, which is never encrypted and which every phone
    /// (and anyone who guesses its name) fetches.
    SecretInMaster,
    /// A non-empty secret in a shared file, served in plaintext to every phone.
    SecretInSharedFile,
    /// A non-empty secret in a per-phone file that is served in plaintext.
    SecretInPlaintextPerPhoneFile,
    /// A SIP password weak enough to guess offline from an encrypted file's unkeyed digest.
    WeakSipPassword(Weakness),
}

/// One finding: a file, a parameter, where it is, and what is wrong. Never the secret's value.
///
/// `Display` gives one line, `path:line:column: parameter: problem; fix: hint`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Finding {
    /// The file, as given to the scanner.
    pub file: PathBuf,
    /// The parameter (the attribute name).
    pub parameter: String,
    /// Where the attribute is.
    pub position: Position,
    /// What the secret protects.
    pub secret: SecretKind,
    /// What is wrong.
    pub kind: FindingKind,
}

impl Finding {
    /// What to do about it.
    pub fn hint(&self) -> &'static str {
        match (self.kind, self.secret) {
            (FindingKind::SecretInMaster, SecretKind::UrlPassword) => {
                "serve that file from the provisioning server itself, or give its server \
                 another form of authentication; a master file cannot be encrypted"
            }
            (FindingKind::SecretInMaster | FindingKind::SecretInSharedFile, _) => {
                "move the parameter to a per-phone file listed in CONFIG_FILES (for example \
                 [PHONE_MAC_ADDRESS]-sip.cfg) and encrypt that file with the phone's key"
            }
            (FindingKind::SecretInPlaintextPerPhoneFile, _) => {
                "encrypt this file with the phone's key before publishing it"
            }
            (FindingKind::WeakSipPassword(_), _) => {
                "set a random password of at least 12 characters, not only digits, on the SIP \
                 server and in this file"
            }
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} ({}): ",
            self.file.display(),
            self.position,
            self.parameter,
            self.secret
        )?;
        match self.kind {
            FindingKind::SecretInMaster => f.write_str(
                "secret in a master file, which is never encrypted and is served to every phone",
            )?,
            FindingKind::SecretInSharedFile => f.write_str(
                "secret in a shared file, which cannot carry a per-phone key and is served in \
                 plaintext to every phone",
            )?,
            FindingKind::SecretInPlaintextPerPhoneFile => {
                f.write_str("secret in a per-phone file that is served in plaintext")?
            }
            FindingKind::WeakSipPassword(weakness) => write!(
                f,
                "weak SIP password ({weakness}): the encrypted file's digest is unkeyed, so it \
                 can be guessed offline"
            )?,
        }
        write!(f, "; fix: {}", self.hint())
    }
}

/// Scans one file's bytes for secrets, given who will be able to read it. `path` names the
/// file in findings and errors.
///
/// A secret is a parameter named in [`crate::SECRET_PARAMETERS`] with a non-empty value
/// (a lone template placeholder such as `{$pass}` counts as empty), or any parameter whose
/// value is a URL with a password. Findings come in file order.
///
/// Errors: the bytes are an encrypted file (decrypt first), not UTF-8, or not well-formed XML.
///
/// ```
/// use polyseal_provision::{scan, Exposure, FindingKind};
/// let site = br#"<polycomConfig><reg reg.1.auth.userId="1001" reg.1.auth.password="1234"/></polycomConfig>"#;
/// let findings = scan("site.cfg".as_ref(), site, Exposure::Shared)?;
/// assert_eq!(findings.len(), 2);
/// assert_eq!(findings[0].kind, FindingKind::SecretInSharedFile);
/// assert_eq!(findings[0].parameter, "reg.1.auth.password");
/// assert!(!findings[0].to_string().contains("1234"));
/// # Ok::<(), polyseal_provision::Error>(())
/// ```
pub fn scan(path: &Path, bytes: &[u8], exposure: Exposure) -> Result<Vec<Finding>, Error> {
    scan_file(path, bytes, exposure).map(|scanned| scanned.findings)
}

/// A value a template engine was meant to fill in (`{$name}` somewhere in it): phones would take
/// it literally. Not a secret (see [`scan`]); worth a warning.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Placeholder {
    /// The file, as given to the scanner.
    pub file: PathBuf,
    /// The parameter (the attribute name).
    pub parameter: String,
    /// Where the attribute is.
    pub position: Position,
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.file.display(),
            self.position,
            self.parameter
        )
    }
}

/// What [`scan_file`] finds in one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileScan {
    /// The findings, as [`scan`] returns them.
    pub findings: Vec<Finding>,
    /// Values holding an unrendered template placeholder, in file order.
    pub placeholders: Vec<Placeholder>,
}

/// [`scan`], and the values that hold an unrendered template placeholder (`{$name}`).
pub fn scan_file(path: &Path, bytes: &[u8], exposure: Exposure) -> Result<FileScan, Error> {
    let text = XmlText::new(path, bytes)?;
    let mut scanned = FileScan::default();
    text.for_each_element(|element| {
        for attribute in element.attributes {
            scan_attribute(&text, attribute, exposure, &mut scanned.findings)?;
            if attribute.raw_value_contains("{$") {
                scanned.placeholders.push(Placeholder {
                    file: path.to_owned(),
                    parameter: attribute.name.to_owned(),
                    position: text.position(attribute.offset),
                });
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(scanned)
}

fn scan_attribute(
    text: &XmlText<'_>,
    attribute: &Attribute<'_>,
    exposure: Exposure,
    findings: &mut Vec<Finding>,
) -> Result<(), Error> {
    let by_name = secret_kind(attribute.name);
    // Unescaping every value would cost more than the whole scan; a URL's `://` is never
    // escaped, so only candidates are read.
    if by_name.is_none() && !attribute.raw_value_contains("://") {
        return Ok(());
    }
    let value = text.value(attribute)?;
    let secret = match by_name {
        Some(kind) => effective_value(&value).map(|v| (kind, weakness(v))),
        None => has_url_password(&value).then_some((SecretKind::UrlPassword, None)),
    };
    if let Cow::Owned(mut owned) = value {
        owned.zeroize();
    }
    let Some((kind, weakness)) = secret else {
        return Ok(());
    };
    let mut report = |kind_of_finding| {
        findings.push(Finding {
            file: text.path().to_owned(),
            parameter: attribute.name.to_owned(),
            position: text.position(attribute.offset),
            secret: kind,
            kind: kind_of_finding,
        })
    };
    let exposed = match exposure {
        Exposure::Master => Some(FindingKind::SecretInMaster),
        Exposure::Shared => Some(FindingKind::SecretInSharedFile),
        Exposure::KeyFile if kind == SecretKind::ConfigurationKey => None,
        Exposure::PerPhonePlaintext | Exposure::KeyFile => {
            Some(FindingKind::SecretInPlaintextPerPhoneFile)
        }
        Exposure::PerPhoneEncrypted => None,
    };
    if let Some(exposed) = exposed {
        report(exposed);
    }
    if let (SecretKind::SipPassword, Some(weakness)) = (kind, weakness) {
        report(FindingKind::WeakSipPassword(weakness));
    }
    Ok(())
}
