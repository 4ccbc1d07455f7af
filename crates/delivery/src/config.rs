//! What `polyseal nginx-config` is asked for, and the checks that make it safe to write into
//! an nginx configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{Error, Setting, Warning};

/// The inputs of the nginx configuration that serves a published tree.
///
/// Build it with [`NginxConfig::new`], set the optional fields, then call
/// [`NginxConfig::render`] (which checks every input) and [`NginxConfig::warnings`] (what
/// the command should print on standard error).
///
/// ```
/// use polyseal_delivery::{NginxConfig, Warning};
///
/// let mut config = NginxConfig::new("/srv/polyseal/published", "/etc/polyseal/tls/fullchain.pem",
///                                   "/etc/polyseal/tls/privkey.pem");
/// config.server_name = Some("prov.example.com".into());
/// config.client_ca = Some("/etc/polyseal/polycom-device-ca.pem".into());
/// config.uploads = Some("/srv/polyseal/uploads".into());
/// let text = config.render()?;
/// assert!(text.contains("ssl_verify_client on;"));
/// assert!(config.warnings().is_empty());
///
/// config.client_ca = None;
/// assert!(config.render()?.contains("WARNING"));
/// assert!(config.warnings().contains(&Warning::NoClientCa));
/// # Ok::<(), polyseal_delivery::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NginxConfig {
    /// The published tree, served as the document root (`--tree`).
    pub tree: PathBuf,
    /// The name clients reach the server by (`--server-name`); none: nginx's default.
    pub server_name: Option<String>,
    /// The server certificate chain, PEM (`--cert`).
    pub cert: PathBuf,
    /// The server certificate's private key, PEM (`--key`).
    pub key: PathBuf,
    /// The CA that issues phones' client certificates (`--client-ca`): the Polycom device CA
    /// in production. None serves every file to any client, and says so loudly.
    pub client_ca: Option<PathBuf>,
    /// Where phones' uploads (PUT) go (`--uploads`); none refuses every upload.
    pub uploads: Option<PathBuf>,
    /// The address and port to listen on (`--listen`); none: port 443 on every IPv4 and IPv6
    /// address.
    pub listen: Option<SocketAddr>,
    /// Where nginx writes its access log in polyseal's format (one JSON line per request),
    /// for `polyseal status --nginx-log`; `None` leaves nginx's own access log alone.
    pub access_log: Option<PathBuf>,
}

/// The inputs after the checks, as they go into the configuration.
pub(crate) struct Checked<'a> {
    pub(crate) tree: &'a str,
    pub(crate) server_name: Option<&'a str>,
    pub(crate) cert: &'a str,
    pub(crate) key: &'a str,
    pub(crate) client_ca: Option<&'a str>,
    pub(crate) uploads: Option<&'a str>,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) access_log: Option<&'a str>,
}

impl NginxConfig {
    /// The configuration of a server for `tree` with the TLS certificate chain `cert` and its
    /// private key `key`; no client CA, no uploads, default name and port.
    pub fn new(
        tree: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> NginxConfig {
        NginxConfig {
            tree: tree.into(),
            server_name: None,
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            uploads: None,
            listen: None,
            access_log: None,
        }
    }

    /// What is unsafe about this configuration without being an error, for the command to
    /// print. The rendered configuration carries the same warnings as comments.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut warnings = Vec::new();
        if self.client_ca.is_none() {
            warnings.push(Warning::NoClientCa);
            if self.uploads.is_some() {
                warnings.push(Warning::UploadsWithoutClientCa);
            }
        }
        warnings
    }

    /// Checks every input; see [`Error`] for what is refused.
    pub(crate) fn check(&self) -> Result<Checked<'_>, Error> {
        let tree = checked_path(Setting::Tree, &self.tree)?;
        if self.tree.parent().is_none() {
            return Err(Error::TreeIsRoot);
        }
        let uploads = self
            .uploads
            .as_deref()
            .map(|uploads| checked_path(Setting::Uploads, uploads))
            .transpose()?;
        if let Some(uploads) = &self.uploads {
            if uploads.starts_with(&self.tree) || self.tree.starts_with(uploads) {
                return Err(Error::UploadsOverlapTree {
                    tree: self.tree.clone(),
                    uploads: uploads.clone(),
                });
            }
        }
        let key = checked_path(Setting::Key, &self.key)?;
        if let Some(served) = [Some(&self.tree), self.uploads.as_ref()]
            .into_iter()
            .flatten()
            .find(|served| self.key.starts_with(served))
        {
            return Err(Error::KeyIsServed {
                key: self.key.clone(),
                served: served.clone(),
            });
        }
        Ok(Checked {
            tree,
            server_name: self
                .server_name
                .as_deref()
                .map(checked_server_name)
                .transpose()?,
            cert: checked_path(Setting::Cert, &self.cert)?,
            key,
            client_ca: self
                .client_ca
                .as_deref()
                .map(|ca| checked_path(Setting::ClientCa, ca))
                .transpose()?,
            uploads,
            listen: self.listen,
            access_log: self
                .access_log
                .as_deref()
                .map(|log| checked_path(Setting::AccessLog, log))
                .transpose()?,
        })
    }
}

/// `path` as text that can stand in double quotes in an nginx configuration: absolute,
/// UTF-8, without `.`/`..` components and without characters nginx would read as syntax.
fn checked_path(setting: Setting, path: &Path) -> Result<&str, Error> {
    let Some(text) = path.to_str() else {
        return Err(Error::NotUtf8 {
            setting,
            path: path.to_owned(),
        });
    };
    check_characters(setting, text)?;
    if !path.is_absolute() {
        return Err(Error::RelativePath {
            setting,
            path: path.to_owned(),
        });
    }
    // Path::components() hides inner `.` components, so look at the text itself.
    if text.split('/').any(|part| part == "." || part == "..") {
        return Err(Error::NotNormalized {
            setting,
            path: path.to_owned(),
        });
    }
    Ok(text)
}

/// Refuses the characters that could end a quoted nginx value or start something else in it.
/// Spaces are fine: every path is written in double quotes.
fn check_characters(setting: Setting, value: &str) -> Result<(), Error> {
    const SYNTAX: &[char] = &['"', '\'', '\\', ';', '{', '}', '$', '#'];
    match value.chars().find(|c| SYNTAX.contains(c) || c.is_control()) {
        Some(character) => Err(Error::UnsafeCharacter {
            setting,
            value: value.to_owned(),
            character,
        }),
        None => Ok(()),
    }
}

/// A host name nginx matches literally, or with a leading `*.` wildcard label.
fn checked_server_name(name: &str) -> Result<&str, Error> {
    check_characters(Setting::ServerName, name)?;
    let invalid = |reason| {
        Err(Error::ServerName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.len() > 253 {
        return invalid("is longer than 253 characters");
    }
    let labels = name.strip_prefix("*.").unwrap_or(name);
    for label in labels.split('.') {
        if label.is_empty() {
            return invalid("has an empty label (leading, trailing or doubled '.')");
        }
        if label.len() > 63 {
            return invalid("has a label longer than 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return invalid(
                "may hold only letters, digits, '-' and '.', with an optional leading '*.'",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return invalid("has a label that starts or ends with '-'");
        }
    }
    Ok(name)
}
