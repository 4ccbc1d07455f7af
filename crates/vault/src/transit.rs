//! Recipients held in an OpenBao or HashiCorp Vault transit engine: the data key (or a share
//! of it) is wrapped by the service's `encrypt` endpoint and opened by its `decrypt` endpoint,
//! so the key-encrypting key never leaves the service and every unwrap is in its audit device
//! (docs/VAULT.md, "Transit recipients").
//!
//! A transit recipient is an age recipient of polyseal's own: its stanza in `data-key.age` is
//! `-> polyseal-transit URL` with the service's ciphertext (`vault:vN:…`) as the body, beside
//! the X25519, SSH and plugin stanzas of the other recipients.

use std::collections::HashSet;
use std::fmt;
use std::io::Read as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use age::secrecy::ExposeSecret as _;
use age_core::format::{FileKey, Stanza};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use crate::Error;

/// The tag of a transit recipient's stanza in an age header.
const STANZA_TAG: &str = "polyseal-transit";
/// How long one call to the service may take: a transit call answers in milliseconds; an
/// unreachable address should fail a command in seconds, not minutes.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of a response body read: a transit answer is under a kilobyte.
const MAX_RESPONSE: u64 = 64 * 1024;
/// The variables holding the token, in the order looked at.
const TOKEN_VARIABLES: [&str; 2] = ["VAULT_TOKEN", "BAO_TOKEN"];
/// The variables naming a PEM file of CA certificates for the service.
const CACERT_VARIABLES: [&str; 2] = ["VAULT_CACERT", "BAO_CACERT"];
/// The variables naming a namespace (HashiCorp Vault Enterprise, OpenBao).
const NAMESPACE_VARIABLES: [&str; 2] = ["VAULT_NAMESPACE", "BAO_NAMESPACE"];
/// The variables naming the service's address; when set, the token is sent to no other.
const ADDRESS_VARIABLES: [&str; 2] = ["VAULT_ADDR", "BAO_ADDR"];

/// A transit key, named by its URL: `vault-transit:https://bao.example:8200/v1/transit/keys/polyseal`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct TransitKey {
    /// `scheme://host[:port]`.
    origin: String,
    /// The secrets engine's mount path (`transit`, `team-a/transit`).
    mount: String,
    /// The key's name.
    name: String,
}

impl TransitKey {
    /// The prefix of a transit recipient.
    pub(crate) const PREFIX: &'static str = "vault-transit:";

    /// Parses `vault-transit:<URL of the key>`; the reason says what is wrong.
    pub(crate) fn parse(text: &str) -> Result<TransitKey, String> {
        let url = text
            .strip_prefix(TransitKey::PREFIX)
            .ok_or_else(|| format!("does not start with {}", TransitKey::PREFIX))?;
        let shape = "expected vault-transit:https://HOST[:PORT]/v1/MOUNT/keys/NAME";
        let uri: ureq::http::Uri = url
            .parse()
            .map_err(|_| format!("{url:?} is not a URL; {shape}"))?;
        let scheme = uri.scheme_str().unwrap_or_default();
        let authority = uri
            .authority()
            .ok_or_else(|| format!("{url:?} names no host; {shape}"))?;
        if authority.as_str().contains('@') {
            return Err("a transit URL must not carry a user name or password".to_owned());
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
        match scheme {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(format!(
                    "{url:?} is plain http: the token and the data key would cross the network \
                     unencrypted (https is required except on a loopback address)"
                ));
            }
            _ => return Err(format!("{url:?} is not http(s); {shape}")),
        }
        if uri.query().is_some() || url.contains('#') {
            return Err(format!("{url:?} has a query or fragment; {shape}"));
        }
        let path = uri.path();
        let (mount, name) = path
            .strip_prefix("/v1/")
            .and_then(|rest| rest.rsplit_once("/keys/"))
            .ok_or_else(|| format!("{url:?} is not the URL of a transit key; {shape}"))?;
        // A name of letters, digits, `-`, `_` and `.`, but not `.` or `..` (a path step).
        let plain = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        let name_ok = plain(name);
        let mount_ok = mount.split('/').all(plain);
        if !name_ok || !mount_ok {
            return Err(format!("{url:?} is not the URL of a transit key; {shape}"));
        }
        Ok(TransitKey {
            origin: format!("{scheme}://{authority}"),
            mount: mount.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The key's URL, as the recipient was given (canonical form).
    pub(crate) fn url(&self) -> String {
        format!("{}/v1/{}/keys/{}", self.origin, self.mount, self.name)
    }

    /// The service it is on, with every loopback name as one (`127.0.0.1`, `localhost` and
    /// `[::1]` on one port reach one service): two transit recipients on one service open
    /// with one token.
    pub(crate) fn service(&self) -> String {
        let (scheme, authority) = self.origin.split_once("://").unwrap_or(("", &self.origin));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, port),
            _ => (authority, if scheme == "https" { "443" } else { "80" }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback());
        let host = if loopback { "loopback" } else { host };
        format!("{scheme}://{}:{port}", host.to_ascii_lowercase())
    }

    fn endpoint(&self, operation: &str) -> String {
        format!(
            "{}/v1/{}/{operation}/{}",
            self.origin, self.mount, self.name
        )
    }
}

impl fmt::Display for TransitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", TransitKey::PREFIX, self.url())
    }
}

/// A transit token (`VAULT_TOKEN` or `BAO_TOKEN`), taken out of the environment by the front
/// end so that no subprocess inherits it (docs/SECURITY.md), and handed to
/// [`Identities::load`](crate::Identities::load) and
/// [`VaultSettings`](crate::VaultSettings). Zeroized on drop; `Debug` names only the variable.
#[derive(Clone)]
pub struct TransitToken {
    variable: &'static str,
    token: Zeroizing<String>,
}

impl TransitToken {
    /// The variables a token is read from, in the order looked at.
    pub const VARIABLES: [&'static str; 2] = TOKEN_VARIABLES;

    /// A token, with the variable it came from (for messages): `Ok(None)` for an empty one,
    /// an error (naming the variable, never the value) for one that holds anything but
    /// printable ASCII, which no service issues and no HTTP header can carry.
    pub fn new(
        variable: &'static str,
        token: Zeroizing<String>,
    ) -> Result<Option<TransitToken>, Error> {
        let trimmed = token.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::InvalidIdentity {
                origin: variable.to_owned(),
                reason: "holds a character no transit token has (a space, a control \
                         character or non-ASCII)"
                    .to_owned(),
            });
        }
        let token = if trimmed.len() == token.len() {
            token
        } else {
            Zeroizing::new(trimmed.to_owned())
        };
        Ok(Some(TransitToken { variable, token }))
    }

    /// The variable it came from.
    pub fn variable(&self) -> &'static str {
        self.variable
    }

    pub(crate) fn expose(&self) -> &str {
        &self.token
    }
}

impl fmt::Debug for TransitToken {
    /// Names the variable, never the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransitToken({})", self.variable)
    }
}

/// A connection to the transit service with the caller's [`TransitToken`], and from the
/// environment `VAULT_CACERT` or `BAO_CACERT`, `VAULT_NAMESPACE` and `VAULT_ADDR`: the
/// variables the services' own clients read (none of them a secret).
pub(crate) struct TransitClient {
    token: TransitToken,
    namespace: Option<String>,
    address: Option<String>,
    agent: ureq::Agent,
    /// Why no call can be made (an unusable CA file), if so.
    setup_failure: Option<String>,
}

impl fmt::Debug for TransitClient {
    /// Never shows the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransitClient(..)")
    }
}

impl TransitClient {
    /// The client for `token` and this process's environment.
    ///
    /// A CA file that cannot be used fails each call (naming the recipient), not this: a token
    /// set for another purpose must not stop a vault that has no transit recipient.
    pub(crate) fn new(token: &TransitToken) -> Arc<TransitClient> {
        let token = token.clone();
        let first = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        };
        let mut setup_failure = None;
        let roots = match first(CACERT_VARIABLES) {
            None => ureq::tls::RootCerts::PlatformVerifier,
            Some(path) => match std::fs::read(&path) {
                Err(e) => {
                    setup_failure = Some(format!("its CA file {path} cannot be read ({e})"));
                    ureq::tls::RootCerts::Specific(Arc::new(Vec::new()))
                }
                Ok(pem) => {
                    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                        .filter_map(|item| match item {
                            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert.to_owned()),
                            _ => None,
                        })
                        .collect();
                    if certs.is_empty() {
                        setup_failure =
                            Some(format!("its CA file {path} holds no PEM certificate"));
                    }
                    ureq::tls::RootCerts::Specific(Arc::new(certs))
                }
            },
        };
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .max_redirects(0)
            .proxy(None)
            .build()
            .new_agent();
        Arc::new(TransitClient {
            token,
            namespace: first(NAMESPACE_VARIABLES),
            address: first(ADDRESS_VARIABLES).map(|a| a.trim_end_matches('/').to_owned()),
            agent,
            setup_failure,
        })
    }

    /// Refuses a key the service says does not exist (HTTP 404 on reading it), before an
    /// `encrypt` with a token allowed to create keys would make one silently. A token that may
    /// not read the key (HTTP 403) is let through: `encrypt` then says what it can.
    pub(crate) fn check_key(&self, key: &TransitKey) -> Result<(), Error> {
        match self.call_raw(key, None, "") {
            Err(Error::TransitUnavailable { reason, .. }) if reason.contains("HTTP 404") => {
                Err(Error::TransitUnavailable {
                    url: key.to_string(),
                    reason: format!(
                        "no such transit key or secrets engine (enable it and create the key: \
                         bao secrets enable -path={} transit; bao write -f {}/keys/{})",
                        key.mount, key.mount, key.name
                    ),
                })
            }
            Err(Error::TransitDenied { reason, .. }) if !reason.contains("VAULT_ADDR") => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// Wraps `plaintext` with the latest version of `key`; returns the service's ciphertext.
    pub(crate) fn encrypt(&self, key: &TransitKey, plaintext: &[u8]) -> Result<String, Error> {
        let encoded = Zeroizing::new(BASE64.encode(plaintext));
        let body = Zeroizing::new(serde_json::json!({ "plaintext": encoded.as_str() }).to_string());
        let answer = self.call(key, "encrypt", &body)?;
        answer["data"]["ciphertext"]
            .as_str()
            .filter(|c| c.starts_with("vault:v"))
            .map(str::to_owned)
            .ok_or_else(|| Error::TransitUnavailable {
                url: key.to_string(),
                reason: "the encrypt answer holds no ciphertext".to_owned(),
            })
    }

    /// Opens `ciphertext` with `key`.
    pub(crate) fn decrypt(
        &self,
        key: &TransitKey,
        ciphertext: &str,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let body = serde_json::json!({ "ciphertext": ciphertext }).to_string();
        let answer = Zeroizing::new(self.call_raw(key, Some("decrypt"), &body)?);
        let parsed: serde_json::Value =
            serde_json::from_slice(&answer).map_err(|_| Error::TransitUnavailable {
                url: key.to_string(),
                reason: "the decrypt answer is not JSON".to_owned(),
            })?;
        let plaintext = parsed["data"]["plaintext"]
            .as_str()
            .and_then(|p| BASE64.decode(p).ok())
            .map(Zeroizing::new);
        drop(parsed);
        plaintext.ok_or_else(|| Error::TransitUnavailable {
            url: key.to_string(),
            reason: "the decrypt answer holds no plaintext".to_owned(),
        })
    }

    fn call(
        &self,
        key: &TransitKey,
        operation: &str,
        body: &str,
    ) -> Result<serde_json::Value, Error> {
        let answer = self.call_raw(key, Some(operation), body)?;
        serde_json::from_slice(&answer).map_err(|_| Error::TransitUnavailable {
            url: key.to_string(),
            reason: format!("the {operation} answer is not JSON"),
        })
    }

    /// POSTs `body` to the key's `operation` endpoint (or, with `None`, GETs the key itself);
    /// a refusal becomes the error of its class: a token the service refuses is
    /// [`Error::TransitDenied`] (bad input, like a wrong identity); anything else (sealed, no
    /// such key, unreachable, TLS) is [`Error::TransitUnavailable`].
    fn call_raw(
        &self,
        key: &TransitKey,
        operation: Option<&str>,
        body: &str,
    ) -> Result<Vec<u8>, Error> {
        if let Some(address) = &self.address
            && *address != key.origin
        {
            return Err(Error::TransitDenied {
                url: key.to_string(),
                reason: format!(
                    "the token is sent only to {address} (VAULT_ADDR or BAO_ADDR), and this \
                     recipient is at {}",
                    key.origin
                ),
            });
        }
        let unavailable = |reason: String| Error::TransitUnavailable {
            url: key.to_string(),
            reason,
        };
        if let Some(failure) = &self.setup_failure {
            return Err(unavailable(failure.clone()));
        }
        let url = operation.map_or_else(|| key.url(), |operation| key.endpoint(operation));
        let mut request = ureq::http::Request::builder()
            .method(if operation.is_some() { "POST" } else { "GET" })
            .uri(url)
            .header("X-Vault-Token", self.token.expose())
            .header("Content-Type", "application/json");
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        let request = request
            .body(body.to_owned())
            .map_err(|e| unavailable(format!("the request could not be made ({e})")))?;
        let mut response = self.agent.run(request).map_err(|e| match e {
            ureq::Error::Timeout(_) => unavailable(format!(
                "no answer within {} seconds",
                CALL_TIMEOUT.as_secs()
            )),
            other => unavailable(format!("the service could not be reached ({other})")),
        })?;
        let operation = operation.unwrap_or("read");
        let status = response.status().as_u16();
        let mut answer = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(MAX_RESPONSE)
            .read_to_end(&mut answer)
            .map_err(|e| unavailable(format!("the answer could not be read ({e})")))?;
        if status == 200 {
            return Ok(answer);
        }
        if (300..400).contains(&status) {
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(|l| l.chars().filter(|c| !c.is_control()).collect::<String>())
                .unwrap_or_default();
            return Err(unavailable(format!(
                "the service answered with a redirect (HTTP {status}) to {location:?}, which \
                 polyseal does not follow: name the address it points to in the recipient (a \
                 standby node redirects to the active one)"
            )));
        }
        let said = service_errors(&answer).unwrap_or_else(|| format!("HTTP {status}"));
        match status {
            401 | 403 => Err(Error::TransitDenied {
                url: key.to_string(),
                reason: format!(
                    "the service refused the token ({said}): wrong, expired or revoked, or its \
                     policy does not allow transit/{operation}"
                ),
            }),
            503 => Err(unavailable(format!("the service is unavailable ({said})"))),
            _ => Err(unavailable(format!(
                "{operation} failed: {said} (HTTP {status})"
            ))),
        }
    }
}

/// The `errors` array of a Vault/OpenBao error answer, joined.
fn service_errors(answer: &[u8]) -> Option<String> {
    let parsed: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let errors: Vec<&str> = parsed["errors"]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    // The service's own words, without control characters (a hostile service could
    // otherwise write terminal escape sequences into the operator's error line).
    let joined: String = errors
        .join("; ")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect();
    let words: Vec<&str> = joined.split_whitespace().collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Seals an age file key to a transit key (for [`age::Encryptor`]).
pub(crate) struct TransitSealer {
    pub(crate) key: TransitKey,
    pub(crate) client: Arc<TransitClient>,
}

impl age::Recipient for TransitSealer {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let failed = |e: Error| age::EncryptError::Io(std::io::Error::other(e));
        self.client.check_key(&self.key).map_err(failed)?;
        let ciphertext = self
            .client
            .encrypt(&self.key, file_key.expose_secret())
            .map_err(failed)?;
        let stanza = Stanza {
            tag: STANZA_TAG.to_owned(),
            args: vec![self.key.url()],
            body: ciphertext.into_bytes(),
        };
        Ok((vec![stanza], HashSet::new()))
    }
}

/// Opens the transit stanzas of the vault's own transit recipients (never a URL that only
/// the data-key file names: the token goes nowhere `vault.toml` does not list). A failure is
/// kept, not returned, so that the other identities are still tried; the caller reports it
/// when nothing opened.
pub(crate) struct TransitOpener {
    pub(crate) keys: Vec<TransitKey>,
    pub(crate) client: Arc<TransitClient>,
    pub(crate) failure: Mutex<Option<Error>>,
}

impl TransitOpener {
    /// The first failure seen, if any.
    pub(crate) fn take_failure(&self) -> Option<Error> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }
}

impl age::Identity for TransitOpener {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        let [url] = stanza.args.as_slice() else {
            return None;
        };
        let key = self.keys.iter().find(|k| k.url() == *url)?;
        let ciphertext = std::str::from_utf8(&stanza.body).ok()?;
        match self.client.decrypt(key, ciphertext) {
            Ok(plaintext) => {
                let file_key = FileKey::try_init_with_mut(|bytes| {
                    if plaintext.len() == bytes.len() {
                        bytes.copy_from_slice(&plaintext);
                        Ok(())
                    } else {
                        Err(())
                    }
                });
                match file_key {
                    Ok(file_key) => Some(Ok(file_key)),
                    Err(()) => Some(Err(age::DecryptError::InvalidHeader)),
                }
            }
            Err(e) => {
                if let Ok(mut failure) = self.failure.lock() {
                    failure.get_or_insert(e);
                }
                None
            }
        }
    }
}

/// The transit error an age encryption failed with, if that was the cause.
pub(crate) fn transit_error(error: age::EncryptError) -> Result<Error, age::EncryptError> {
    match error {
        age::EncryptError::Io(io) if io.get_ref().is_some_and(|e| e.is::<Error>()) => {
            match io.into_inner().map(|e| e.downcast::<Error>()) {
                Some(Ok(error)) => Ok(*error),
                _ => Err(age::EncryptError::Io(std::io::Error::other(
                    "transit failure",
                ))),
            }
        }
        other => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::TransitKey;

    #[test]
    fn a_transit_url_names_a_key_over_https_or_on_loopback() {
        let key =
            TransitKey::parse("vault-transit:https://bao.example:8200/v1/transit/keys/polyseal")
                .expect("test value");
        assert_eq!(
            key.url(),
            "https://bao.example:8200/v1/transit/keys/polyseal"
        );
        assert_eq!(
            key.endpoint("decrypt"),
            "https://bao.example:8200/v1/transit/decrypt/polyseal"
        );
        let nested =
            TransitKey::parse("vault-transit:https://bao.example/v1/team-a/transit/keys/k1")
                .expect("test value");
        assert_eq!(
            nested.endpoint("encrypt"),
            "https://bao.example/v1/team-a/transit/encrypt/k1"
        );
        assert!(TransitKey::parse("vault-transit:http://127.0.0.1:8200/v1/transit/keys/k").is_ok());
        assert!(TransitKey::parse("vault-transit:http://[::1]:8200/v1/transit/keys/k").is_ok());
        for bad in [
            "vault-transit:http://bao.example:8200/v1/transit/keys/k",
            "vault-transit:https://bao.example/v1/transit/encrypt/k",
            "vault-transit:https://bao.example/transit/keys/k",
            "vault-transit:https://user:pw@bao.example/v1/transit/keys/k",
            "vault-transit:https://bao.example/v1/transit/keys/k?x=1",
            "vault-transit:https://bao.example/v1/../keys/k",
            "vault-transit:ftp://bao.example/v1/transit/keys/k",
            "vault-transit:https://bao.example/v1/transit/keys/",
            "vault-transit:https://bao.example/v1/./keys/k",
            "vault-transit:https://bao.example/v1/transit/keys/..",
        ] {
            assert!(TransitKey::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
