//! The people and machines that can open a vault: age recipients, each with a label.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::sync::Arc;

use age::armor::{ArmoredWriter, Format};

use crate::Error;
use crate::transit::{TransitClient, TransitKey, TransitSealer, transit_error};

/// Longest recipient label accepted, in characters.
const MAX_LABEL_CHARS: usize = 64;

/// A recipient of the vault's data key: an age public key with a label that says whose it is
/// (`ops-laptop`, `backup-yubikey`, `ci`).
///
/// Accepted public keys: age X25519 (`age1…`), SSH ed25519 (`ssh-ed25519 AAAA… [comment]`),
/// SSH RSA of 2048 bits or more (`ssh-rsa AAAA… [comment]`), and age plugin recipients
/// (`age1yubikey1…`), whose plugin binary (`age-plugin-yubikey`) must be on `PATH` whenever
/// the data key is sealed; and transit keys of OpenBao or HashiCorp Vault
/// (`vault-transit:https://bao.example:8200/v1/transit/keys/polyseal`), used with the token in
/// `VAULT_TOKEN` or `BAO_TOKEN`.
///
/// ```
/// use polyseal_vault::Recipient;
/// let r = Recipient::parse(
///     "ops",
///     "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
/// )?;
/// assert_eq!(r.label(), "ops");
/// assert!(Recipient::parse("ops", "ssh-dss AAAAB3NzaC1kc3M=").is_err());
/// # Ok::<(), polyseal_vault::Error>(())
/// ```
#[derive(Clone)]
pub struct Recipient {
    label: String,
    key: PublicKey,
}

#[derive(Clone)]
enum PublicKey {
    X25519(age::x25519::Recipient),
    Ssh(age::ssh::Recipient),
    Plugin(age::plugin::Recipient),
    Transit(TransitKey),
}

impl Recipient {
    /// What kind of recipient it is, in words: `age X25519`, `SSH ed25519`, `SSH RSA`, or
    /// `age plugin (NAME)`.
    pub fn kind(&self) -> String {
        match &self.key {
            PublicKey::X25519(_) => "age X25519".to_owned(),
            PublicKey::Ssh(age::ssh::Recipient::SshRsa(..)) => "SSH RSA".to_owned(),
            PublicKey::Ssh(_) => "SSH ed25519".to_owned(),
            PublicKey::Plugin(key) => format!("age plugin ({})", key.plugin()),
            PublicKey::Transit(_) => "OpenBao/Vault transit".to_owned(),
        }
    }

    /// Validates a label (1–64 characters, no control characters, no space at either end)
    /// and parses a public key.
    pub fn parse(label: &str, public_key: &str) -> Result<Recipient, Error> {
        let label = validate_label(label)?;
        let text = public_key.trim();
        let invalid = |reason: String| Error::InvalidRecipient {
            input: public_key.to_owned(),
            reason,
        };
        let key = if text.starts_with(TransitKey::PREFIX) {
            PublicKey::Transit(TransitKey::parse(text).map_err(invalid)?)
        } else if text.starts_with("ssh-") {
            PublicKey::Ssh(text.parse().map_err(|e| invalid(ssh_error_reason(&e)))?)
        } else if let Ok(key) = text.parse::<age::x25519::Recipient>() {
            PublicKey::X25519(key)
        } else if let Ok(key) = text.parse::<age::plugin::Recipient>() {
            PublicKey::Plugin(key)
        } else {
            return Err(invalid(
                "expected an age recipient (age1…), an SSH public key (ssh-ed25519 …, \
                 ssh-rsa …), an age plugin recipient (age1<plugin>1…) or a transit key \
                 (vault-transit:https://HOST:8200/v1/transit/keys/NAME)"
                    .to_owned(),
            ));
        };
        Ok(Recipient { label, key })
    }

    /// A recipient from what an operator types: a public key as text, or a file holding one
    /// (a `.pub` file, or an age identity file whose `# public key: age1…` comment names it).
    pub fn from_key_or_file(label: &str, arg: &str) -> Result<Recipient, Error> {
        let looks_like_key = ["age1", "ssh-", "ecdsa-", TransitKey::PREFIX]
            .iter()
            .any(|p| arg.starts_with(p));
        let path = std::path::Path::new(arg);
        if looks_like_key || !path.is_file() {
            return Recipient::parse(label, arg.trim());
        }
        let content = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let text = public_key_in(&content).ok_or_else(|| Error::NoPublicKeyInFile {
            path: path.to_owned(),
        })?;
        Recipient::parse(label, &text)
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The public key in canonical form (SSH keys without their comment).
    pub fn public_key(&self) -> String {
        match &self.key {
            PublicKey::X25519(key) => key.to_string(),
            PublicKey::Ssh(key) => key.to_string(),
            PublicKey::Plugin(key) => key.to_string(),
            PublicKey::Transit(key) => key.to_string(),
        }
    }

    /// The transit key, for a transit recipient.
    pub(crate) fn transit_key(&self) -> Option<&TransitKey> {
        match &self.key {
            PublicKey::Transit(key) => Some(key),
            _ => None,
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.label, self.public_key())
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

fn validate_label(label: &str) -> Result<String, Error> {
    let invalid = |reason| Error::InvalidLabel {
        label: label.to_owned(),
        reason,
    };
    if label.is_empty() {
        return Err(invalid("is empty"));
    }
    if label.chars().count() > MAX_LABEL_CHARS {
        return Err(invalid("is longer than 64 characters"));
    }
    if label.trim() != label {
        return Err(invalid("starts or ends with a space"));
    }
    if label.chars().any(char::is_control) {
        return Err(invalid("holds a control character"));
    }
    Ok(label.to_owned())
}

fn ssh_error_reason(error: &age::ssh::ParseRecipientKeyError) -> String {
    use age::ssh::ParseRecipientKeyError as E;
    match error {
        E::RsaModulusTooSmall => "RSA keys under 2048 bits are too weak".to_owned(),
        E::RsaModulusTooLarge => "the RSA key is larger than age supports".to_owned(),
        E::Unsupported(key_type) => {
            format!("SSH key type {key_type} is not supported (ssh-ed25519 and ssh-rsa are)")
        }
        _ => "not a valid SSH public key".to_owned(),
    }
}

/// Seals `plaintext` to every recipient as an ASCII-armored age file, the form `age -d` reads;
/// `transit` is the client for transit recipients ([`Error::NoTransitToken`] without one).
pub(crate) fn seal_to_all(
    recipients: &[Recipient],
    plaintext: &[u8],
    transit: Option<&Arc<TransitClient>>,
) -> Result<String, Error> {
    let mut sealers: Vec<Box<dyn age::Recipient>> = Vec::new();
    let mut plugin_recipients: BTreeMap<&str, Vec<age::plugin::Recipient>> = BTreeMap::new();
    for recipient in recipients {
        match &recipient.key {
            PublicKey::X25519(key) => sealers.push(Box::new(key.clone())),
            PublicKey::Ssh(key) => sealers.push(Box::new(key.clone())),
            PublicKey::Transit(key) => {
                let client = transit.cloned().ok_or_else(|| Error::NoTransitToken {
                    url: key.to_string(),
                })?;
                sealers.push(Box::new(TransitSealer {
                    key: key.clone(),
                    client,
                }));
            }
            PublicKey::Plugin(key) => plugin_recipients
                .entry(key.plugin())
                .or_default()
                .push(key.clone()),
        }
    }
    // One plugin process serves all of that plugin's recipients. Sealing needs no user
    // interaction, so the plugin gets no callbacks.
    for (plugin, keys) in &plugin_recipients {
        let sealer = age::plugin::RecipientPluginV1::new(plugin, keys, &[], age::NoCallbacks)
            .map_err(|e| Error::Plugin {
                reason: e.to_string(),
            })?;
        sealers.push(Box::new(sealer));
    }
    if sealers.is_empty() {
        return Err(Error::NoRecipients);
    }
    let plugin_failure = |e: age::EncryptError| match transit_error(e) {
        Ok(transit) => transit,
        Err(e) => Error::Plugin {
            reason: e.to_string(),
        },
    };
    let encryptor = age::Encryptor::with_recipients(sealers.iter().map(|s| s.as_ref() as _))
        .map_err(plugin_failure)?;
    let armored = ArmoredWriter::wrap_output(Vec::new(), Format::AsciiArmor)
        .and_then(|armor| encryptor.wrap_output(armor))
        .and_then(|mut writer| {
            writer.write_all(plaintext)?;
            writer.finish()?.finish()
        })
        .map_err(|e| plugin_failure(age::EncryptError::Io(e)))?;
    String::from_utf8(armored).map_err(|_| Error::Plugin {
        reason: "age produced armor that is not text".to_owned(),
    })
}

/// The first public key in a file's text: a line starting with `age1` or `ssh-`, or the
/// `# public key: age1…` comment that age-keygen writes into identity files.
fn public_key_in(content: &str) -> Option<String> {
    content.lines().map(str::trim).find_map(|line| {
        let line = line.strip_prefix("# public key:").map_or(line, str::trim);
        (line.starts_with("age1")
            || line.starts_with("ssh-")
            || line.starts_with("ecdsa-")
            || line.starts_with(TransitKey::PREFIX))
        .then(|| line.to_owned())
    })
}
