//! Identities that unlock a vault: age identity files (plain or passphrase-protected), SSH
//! private keys, age plugin identities; and where a front end finds them.

use std::ffi::OsString;
use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::armor::ArmoredReader;
use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::Error;
use crate::transit::{TransitClient, TransitToken};

/// How the vault talks to the person at the keyboard while unlocking: passphrases for
/// protected identity files and SSH keys, messages from age plugins ("touch your YubiKey").
///
/// The command-line front end implements it on the terminal; [`NoPrompt`] refuses everything,
/// for unattended runs.
pub trait Prompt: Send + Sync {
    /// Shows a message, such as a plugin's request to touch a hardware key.
    fn message(&self, text: &str);

    /// Asks for the passphrase described by `description` (it names the file). `None` if
    /// no passphrase can be asked for.
    fn passphrase(&self, description: &str) -> Option<Zeroizing<String>>;

    /// Asks a yes/no question for an age plugin (e.g. "insert the key, or skip").
    /// `None` if no question can be asked; the default.
    fn confirm(&self, message: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let _ = (message, yes, no);
        None
    }
}

/// A [`Prompt`] for unattended runs: shows nothing, answers nothing. A passphrase-protected
/// identity then fails with [`Error::IdentityLocked`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPrompt;

impl Prompt for NoPrompt {
    fn message(&self, _text: &str) {}

    fn passphrase(&self, _description: &str) -> Option<Zeroizing<String>> {
        None
    }
}

/// Adapts a [`Prompt`] to age's callback interface.
#[derive(Clone)]
struct PromptCallbacks(Arc<dyn Prompt>);

impl age::Callbacks for PromptCallbacks {
    fn display_message(&self, message: &str) {
        self.0.message(message);
    }

    fn confirm(&self, message: &str, yes_string: &str, no_string: Option<&str>) -> Option<bool> {
        self.0.confirm(message, yes_string, no_string)
    }

    fn request_public_string(&self, _description: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        let passphrase = self.0.passphrase(description)?;
        Some(SecretString::from(passphrase.as_str().to_owned()))
    }
}

/// Where the identity comes from, in the order a front end looks: files named on the command
/// line, files named by `POLYSEAL_IDENTITY` (a `:`-separated list), the standard output of the command in
/// `POLYSEAL_IDENTITY_CMD` (a CI secret store's client), or the identity itself in
/// `POLYSEAL_IDENTITY_DATA` (for CI, where secrets arrive as variables).
pub enum IdentitySource {
    /// Identity files, one or more (a threshold vault takes several custodians' identities).
    Files(Vec<PathBuf>),
    /// A command (run with `sh -c`) whose standard output is the identity file's text.
    Command(String),
    /// The identity file's contents, from the variable named.
    Data {
        /// The environment variable it came from, for messages.
        variable: &'static str,
        /// The identity text, zeroized on drop.
        text: Zeroizing<String>,
    },
}

impl IdentitySource {
    /// The variable naming identity files (`:`-separated).
    pub const PATH_VARIABLE: &'static str = "POLYSEAL_IDENTITY";
    /// The variable holding an identity file's contents.
    pub const DATA_VARIABLE: &'static str = "POLYSEAL_IDENTITY_DATA";
    /// The variable holding a command that prints the identity file's contents.
    pub const COMMAND_VARIABLE: &'static str = "POLYSEAL_IDENTITY_CMD";

    /// Picks the source: `flags` (the command line's files) first, then the path variable (a
    /// `:`-separated list of files), then the command variable, then the data variable. Empty
    /// values count as unset.
    ///
    /// ```
    /// use polyseal_vault::IdentitySource;
    /// let chosen = IdentitySource::choose(&[], Some("/etc/a.txt:/etc/b.txt".into()), None, Some("AGE-SECRET-KEY-1…".into()))?;
    /// assert!(matches!(chosen, IdentitySource::Files(paths) if paths.len() == 2));
    /// let chosen = IdentitySource::choose(&[], None, Some("vault-cli read ci/polyseal".into()), None)?;
    /// assert!(matches!(chosen, IdentitySource::Command(_)));
    /// assert!(IdentitySource::choose(&[], None, None, None).is_err());
    /// # Ok::<(), polyseal_vault::Error>(())
    /// ```
    pub fn choose(
        flags: &[PathBuf],
        path_variable: Option<OsString>,
        command_variable: Option<String>,
        data_variable: Option<String>,
    ) -> Result<IdentitySource, Error> {
        let data_variable = data_variable.map(Zeroizing::new);
        let flags: Vec<PathBuf> = flags
            .iter()
            .filter(|p| !p.as_os_str().is_empty())
            .cloned()
            .collect();
        if !flags.is_empty() {
            return Ok(IdentitySource::Files(flags));
        }
        let listed: Vec<PathBuf> = path_variable
            .as_deref()
            .map(|list| {
                std::env::split_paths(list)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if !listed.is_empty() {
            return Ok(IdentitySource::Files(listed));
        }
        if let Some(command) = command_variable.filter(|c| !c.trim().is_empty()) {
            return Ok(IdentitySource::Command(command));
        }
        match data_variable {
            Some(text) if !text.trim().is_empty() => Ok(IdentitySource::Data {
                variable: IdentitySource::DATA_VARIABLE,
                text,
            }),
            _ => Err(Error::NoIdentity),
        }
    }

    /// The first identity file that its group or others may read or write (`0644`, `0666`),
    /// with its mode: anyone with that access can open the vault. `None` when every file is
    /// owner-only, for identity text from the environment, and for a file that cannot be looked
    /// at (loading it says why).
    pub fn loose_mode(&self) -> Option<(&Path, u32)> {
        #[cfg(unix)]
        if let IdentitySource::Files(paths) = self {
            use std::os::unix::fs::PermissionsExt as _;
            return paths.iter().find_map(|path| {
                let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
                (mode & 0o077 != 0).then_some((path.as_path(), mode))
            });
        }
        None
    }

    /// [`IdentitySource::choose`] with this process's environment.
    pub fn from_flag_or_env(flags: &[PathBuf]) -> Result<IdentitySource, Error> {
        IdentitySource::choose(
            flags,
            std::env::var_os(IdentitySource::PATH_VARIABLE),
            std::env::var(IdentitySource::COMMAND_VARIABLE).ok(),
            std::env::var(IdentitySource::DATA_VARIABLE).ok(),
        )
    }
}

impl std::fmt::Debug for IdentitySource {
    /// Names the file or the variable, never the identity text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentitySource::Files(paths) => {
                let shown: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "IdentitySource::Files({})", shown.join(", "))
            }
            IdentitySource::Command(_) => write!(f, "IdentitySource::Command(..)"),
            IdentitySource::Data { variable, .. } => write!(f, "IdentitySource::Data({variable})"),
        }
    }
}

/// Identities loaded and ready to unlock a vault.
///
/// Loading decrypts passphrase-protected identities at once (asking the [`Prompt`]), so a
/// wrong passphrase is reported as such, before the vault is touched.
pub struct Identities {
    origin: String,
    identities: Vec<Box<dyn age::Identity>>,
    /// The client for the vault's transit recipients, when a token was given.
    transit: Option<Arc<TransitClient>>,
}

impl std::fmt::Debug for Identities {
    /// Names the origin and counts the identities; never shows one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Identities({} from {})",
            self.identities.len(),
            self.origin
        )
    }
}

impl Identities {
    /// Loads identities from `source`, with `transit` (when given) for the vault's transit
    /// recipients. The command of [`IdentitySource::Command`] runs with the token in its
    /// variable (a secret store's client, such as `vault kv get`, may need it): the one
    /// subprocess that gets it.
    pub fn load(
        source: &IdentitySource,
        prompt: Arc<dyn Prompt>,
        transit: Option<&TransitToken>,
    ) -> Result<Identities, Error> {
        let mut loaded = match source {
            IdentitySource::Files(paths) => {
                let mut all = Identities::nothing("");
                for path in paths {
                    all.add(Identities::from_file(path, prompt.clone())?);
                }
                all
            }
            IdentitySource::Command(command) => {
                // The variable, not the command: a command line may carry a token.
                let origin = IdentitySource::COMMAND_VARIABLE.to_owned();
                let text = run_identity_command(command, &origin, transit)?;
                Identities::from_bytes(&text, origin, prompt)?
            }
            IdentitySource::Data { variable, text } => {
                Identities::from_text(text, variable, prompt)?
            }
        };
        if let Some(token) = transit {
            loaded.transit = Some(TransitClient::new(token));
        }
        Ok(loaded)
    }

    /// No identity file, only a transit token: for a vault that a transit recipient opens
    /// alone. Messages name the token's variable.
    pub fn transit_only(token: &TransitToken) -> Identities {
        let mut identities = Identities::nothing(token.variable());
        identities.transit = Some(TransitClient::new(token));
        identities
    }

    fn nothing(origin: &str) -> Identities {
        Identities {
            origin: origin.to_owned(),
            identities: Vec::new(),
            transit: None,
        }
    }

    /// The transit client, when a token was given.
    pub(crate) fn transit(&self) -> Option<&Arc<TransitClient>> {
        self.transit.as_ref()
    }

    /// Loads an identity file: an age identity file (`AGE-SECRET-KEY-1…` and plugin
    /// identity lines), a passphrase-protected age identity file (binary or armored, as made
    /// by `age-keygen | age -p`), or an OpenSSH ed25519/RSA private key (optionally
    /// passphrase-protected).
    pub fn from_file(path: &Path, prompt: Arc<dyn Prompt>) -> Result<Identities, Error> {
        let bytes = Zeroizing::new(
            fs::read(path).map_err(|e| Error::io(path, "read the identity file", e))?,
        );
        Identities::from_bytes(&bytes, path.display().to_string(), prompt)
    }

    /// Loads identities from the text of an identity file; `origin` names where it came from
    /// in messages (for example `POLYSEAL_IDENTITY_DATA`).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use polyseal_vault::{Identities, NoPrompt};
    /// let text = "# created: 2026-11-22\nAGE-SECRET-KEY-1K5GLS3ZY7H4C09CZZUTUM4S5QS8DPM3KJU3DPGGWX9RJ8085M56SF6V0E2\n";
    /// let identities = Identities::from_text(text, "example", Arc::new(NoPrompt))?;
    /// assert_eq!(identities.origin(), "example");
    /// # Ok::<(), polyseal_vault::Error>(())
    /// ```
    pub fn from_text(
        text: &str,
        origin: &str,
        prompt: Arc<dyn Prompt>,
    ) -> Result<Identities, Error> {
        Identities::from_bytes(text.as_bytes(), origin.to_owned(), prompt)
    }

    /// Adds `more` (another custodian's identities, for a threshold).
    pub fn add(&mut self, more: Identities) {
        if self.origin.is_empty() {
            self.origin = more.origin;
        } else {
            self.origin = format!("{}, {}", self.origin, more.origin);
        }
        self.identities.extend(more.identities);
        if more.transit.is_some() {
            self.transit = more.transit;
        }
    }

    /// Where the identities came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub(crate) fn as_age(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.identities.iter().map(|identity| identity.as_ref())
    }

    fn from_bytes(
        bytes: &[u8],
        origin: String,
        prompt: Arc<dyn Prompt>,
    ) -> Result<Identities, Error> {
        let callbacks = PromptCallbacks(prompt);
        let start = bytes.trim_ascii_start();
        let identities = if start.starts_with(b"age-encryption.org/")
            || start.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        {
            passphrase_protected_identities(bytes, &origin, callbacks)?
        } else if start.starts_with(b"-----BEGIN ") {
            vec![ssh_identity(bytes, &origin, &callbacks)?]
        } else {
            identity_file(age::IdentityFile::from_buffer(bytes), &origin, callbacks)?
        };
        if identities.is_empty() {
            return Err(Error::InvalidIdentity {
                origin,
                reason: "holds no identity".to_owned(),
            });
        }
        Ok(Identities {
            origin,
            identities,
            transit: None,
        })
    }
}

/// The most an identity command may print: an identity file is a few hundred bytes; an SSH
/// RSA key a few kilobytes.
const MAX_COMMAND_OUTPUT: usize = 64 * 1024;

/// Runs `command` with `sh -c` (standard input closed, standard error passed through) and
/// returns what it printed, in a buffer sized up front and zeroized on drop, never logged.
fn run_identity_command(
    command: &str,
    origin: &str,
    transit: Option<&TransitToken>,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    use std::io::Read as _;
    let failed = |reason: String| Error::InvalidIdentity {
        origin: origin.to_owned(),
        reason,
    };
    let mut child = std::process::Command::new("sh");
    child.arg("-c").arg(command);
    if let Some(token) = transit {
        child.env(token.variable(), token.expose());
    }
    let mut child = child
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| failed(format!("the command could not be started ({e})")))?;
    // Sized up front: a Vec that grows leaves its old buffer behind, unzeroized.
    let mut output = Zeroizing::new(Vec::with_capacity(MAX_COMMAND_OUTPUT + 1));
    let read = match child.stdout.take() {
        Some(stdout) => stdout
            .take(MAX_COMMAND_OUTPUT as u64 + 1)
            .read_to_end(&mut output),
        None => Ok(0),
    };
    let status = child
        .wait()
        .map_err(|e| failed(format!("the command could not be waited for ({e})")))?;
    read.map_err(|e| failed(format!("its output could not be read ({e})")))?;
    if !status.success() {
        return Err(failed(format!("the command failed ({status})")));
    }
    if output.len() > MAX_COMMAND_OUTPUT {
        return Err(failed("the command printed more than 64 KiB".to_owned()));
    }
    Ok(output)
}

/// The identities of an age identity file (`AGE-SECRET-KEY-1…`, plugin identities).
fn identity_file<C: age::Callbacks>(
    parsed: std::io::Result<age::IdentityFile<age::NoCallbacks>>,
    origin: &str,
    callbacks: C,
) -> Result<Vec<Box<dyn age::Identity>>, Error> {
    let file = parsed.map_err(|e| Error::InvalidIdentity {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })?;
    let identities = file
        .with_callbacks(callbacks)
        .into_identities()
        .map_err(|e| identity_error(e, origin))?;
    Ok(identities
        .into_iter()
        .map(|identity| identity as Box<dyn age::Identity>)
        .collect())
}

/// An age identity file encrypted with a passphrase (scrypt), decrypted now.
fn passphrase_protected_identities(
    bytes: &[u8],
    origin: &str,
    callbacks: PromptCallbacks,
) -> Result<Vec<Box<dyn age::Identity>>, Error> {
    let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(Cursor::new(bytes)))
        .map_err(|e| identity_error(e, origin))?;
    let encrypted =
        age::encrypted::EncryptedIdentity::new(decryptor, callbacks, None).ok_or_else(|| {
            Error::InvalidIdentity {
                origin: origin.to_owned(),
                reason: "is an age file encrypted to recipients, not a passphrase-protected \
                     identity file"
                    .to_owned(),
            }
        })?;
    let file = encrypted
        .decrypt(Some(origin))
        .map_err(|e| identity_error(e, origin))?;
    file.into_identities()
        .map(|identities| {
            identities
                .into_iter()
                .map(|identity| identity as Box<dyn age::Identity>)
                .collect()
        })
        .map_err(|e| identity_error(e, origin))
}

/// An OpenSSH ed25519 or RSA private key; a protected one is decrypted now.
fn ssh_identity(
    bytes: &[u8],
    origin: &str,
    callbacks: &PromptCallbacks,
) -> Result<Box<dyn age::Identity>, Error> {
    let invalid = |reason: String| Error::InvalidIdentity {
        origin: origin.to_owned(),
        reason,
    };
    let identity = age::ssh::Identity::from_buffer(bytes, Some(origin.to_owned()))
        .map_err(|e| invalid(format!("not a supported SSH private key ({e})")))?;
    match identity {
        age::ssh::Identity::Unencrypted(_) => Ok(Box::new(identity)),
        age::ssh::Identity::Encrypted(key) => {
            let passphrase = age::Callbacks::request_passphrase(
                callbacks,
                &format!("passphrase for SSH key {origin}"),
            )
            .ok_or_else(|| Error::IdentityLocked {
                origin: origin.to_owned(),
            })?;
            let key = key
                .decrypt(passphrase)
                .map_err(|e| identity_error(e, origin))?;
            Ok(Box::new(age::ssh::Identity::Unencrypted(key)))
        }
        age::ssh::Identity::Unsupported(key) => Err(invalid(UnsupportedSshKey(&key).to_string())),
    }
}

/// age's own explanation of why an SSH key is not supported and what to do instead.
struct UnsupportedSshKey<'a>(&'a age::ssh::UnsupportedKey);

impl std::fmt::Display for UnsupportedSshKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.display(f, None)
    }
}

fn identity_error(error: age::DecryptError, origin: &str) -> Error {
    match error {
        age::DecryptError::KeyDecryptionFailed => Error::IdentityLocked {
            origin: origin.to_owned(),
        },
        age::DecryptError::PluginResolve(_) | age::DecryptError::Plugin(_) => Error::Plugin {
            reason: error.to_string(),
        },
        other => Error::InvalidIdentity {
            origin: origin.to_owned(),
            reason: other.to_string(),
        },
    }
}
