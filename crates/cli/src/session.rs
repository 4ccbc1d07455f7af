//! What every command shares: the vault location, the identity, and how loud to be.

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use polyseal_crypto::Mac;
use polyseal_vault::{DataKey, Identities, IdentitySource, Prompt, Vault, VaultWriter};
use zeroize::Zeroizing;

use crate::Secrets;
use crate::cli::{ColorChoice, GlobalArgs};
use crate::failure::Failure;

/// The global options, turned into the services commands use.
pub(crate) struct Session {
    args: GlobalArgs,
    color: bool,
    /// `POLYSEAL_IDENTITY_DATA`, `VAULT_TOKEN` and `BAO_TOKEN`, taken out of the environment
    /// at start.
    secrets: Secrets,
}

impl Session {
    pub(crate) fn new(args: GlobalArgs, secrets: Secrets) -> Session {
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stderr().is_terminal()
            }
        };
        Session {
            args,
            color,
            secrets,
        }
    }

    /// Opens the vault for reading (no identity needed).
    pub(crate) fn vault(&self) -> Result<Vault, Failure> {
        Ok(Vault::open_with_wait(&self.args.vault, self.lock_wait())?)
    }

    /// Opens the vault for a command that reads it without an identity, and says so: its files
    /// cannot be checked against the authenticated head without the data key
    /// (docs/VAULT.md, "Authenticated state").
    pub(crate) fn vault_unchecked(&self) -> Result<Vault, Failure> {
        let vault = self.vault()?;
        self.note_unchecked();
        Ok(vault)
    }

    /// The note of a command that read the vault without checking its authenticity.
    pub(crate) fn note_unchecked(&self) {
        self.say(
            "note: read without an identity, so the vault's files were not checked against its \
             authenticated head; commands that unlock the vault check them (`polyseal log verify \
             --identity FILE` does)",
        );
    }

    /// For a command whose identity is optional (`audit`, `report`): the data key when an
    /// identity is given (one that does not open the vault stops the command: the operator
    /// expects the checks that need it, and a replaced data-key.age looks just like it), or,
    /// without one, why there is none, after saying the vault was not checked.
    pub(crate) fn unlock_if_given(
        &self,
        vault: &Vault,
    ) -> Result<Result<DataKey, String>, Failure> {
        if self.has_identity(vault) {
            return Ok(Ok(self.unlock(vault)?));
        }
        self.note_unchecked();
        Ok(Err(
            Failure::from(polyseal_vault::Error::NoIdentity).to_string()
        ))
    }

    /// Whether an identity was given (--identity, POLYSEAL_IDENTITY or
    /// POLYSEAL_IDENTITY_DATA), or a transit token for a vault with a transit recipient, for
    /// commands where it is optional.
    pub(crate) fn has_identity(&self, vault: &Vault) -> bool {
        self.identity_source().is_ok()
            || (vault.has_transit_recipient() && !matches!(self.secrets.transit_token, Ok(None)))
    }

    /// Where the identity comes from: --identity, POLYSEAL_IDENTITY, or the text of
    /// POLYSEAL_IDENTITY_DATA that `main` took out of the environment.
    fn identity_source(&self) -> Result<IdentitySource, Failure> {
        let data = self.secrets.identity_data.as_deref().cloned();
        Ok(IdentitySource::choose(
            &self.args.identity,
            std::env::var_os(IdentitySource::PATH_VARIABLE),
            std::env::var(IdentitySource::COMMAND_VARIABLE).ok(),
            data,
        )?)
    }

    /// The transit token (`VAULT_TOKEN` or `BAO_TOKEN`), taken out of the environment at
    /// start, for sealing a new vault's data key to a transit recipient.
    pub(crate) fn transit_token(&self) -> Result<Option<polyseal_vault::TransitToken>, Failure> {
        self.secrets.transit_token.clone().map_err(Failure::input)
    }

    /// Opens the vault for writing: takes the writer's lock.
    pub(crate) fn writer(&self) -> Result<VaultWriter, Failure> {
        Ok(VaultWriter::open_with_wait(
            &self.args.vault,
            self.lock_wait(),
        )?)
    }

    pub(crate) fn lock_wait(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.args.lock_wait)
    }

    /// The vault directory.
    pub(crate) fn vault_dir(&self) -> &std::path::Path {
        &self.args.vault
    }

    /// Opens the vault's data key with the identity from --identity or the environment:
    /// the one unlock of a command (one YubiKey touch, one passphrase).
    pub(crate) fn unlock(&self, vault: &Vault) -> Result<DataKey, Failure> {
        // A token alone opens only a vault with a transit recipient.
        if !vault.has_transit_recipient() {
            self.identity_source()?;
        }
        Ok(vault.unlock(&self.identities()?)?)
    }

    /// The identity from --identity or the environment, loaded (a passphrase asked for on the
    /// terminal), with a warning for a file others may read.
    pub(crate) fn identities(&self) -> Result<Identities, Failure> {
        let source = match self.identity_source() {
            Ok(source) => source,
            // A transit recipient opens with the token alone.
            Err(e) => match self.transit_token()? {
                Some(token) => return Ok(Identities::transit_only(&token)),
                None => return Err(e),
            },
        };
        if let Some((path, mode)) = source.loose_mode() {
            let what = format!(
                "identity file {}: mode {mode:04o}, readable by group or others, who could open \
                 the vault with it",
                path.display()
            );
            if self.args.strict_perms {
                return Err(Failure::input(what).with_hint(format!(
                    "chmod 600 {} (--strict-perms refuses it until then)",
                    path.display()
                )));
            }
            self.warn(&format!("{what}; chmod 600 {}", path.display()));
        }
        Ok(Identities::load(
            &source,
            Arc::new(TerminalPrompt),
            self.transit_token()?.as_ref(),
        )?)
    }

    /// The progress bar and `-v` file lines of a long run.
    pub(crate) fn progress(&self) -> crate::progress::FileProgress {
        crate::progress::FileProgress::new(self.args.quiet, self.args.verbose)
    }

    /// Whether to colour what goes to standard error.
    pub(crate) fn color(&self) -> bool {
        self.color
    }

    /// A progress or summary message on standard error, unless --quiet.
    pub(crate) fn say(&self, message: &str) {
        if !self.args.quiet {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }

    /// A detail on standard error, with --verbose only.
    pub(crate) fn detail(&self, message: &str) {
        if self.args.verbose {
            let _ = writeln!(std::io::stderr(), "{message}");
        }
    }

    /// A warning on standard error (shown even with --quiet: it is about something wrong).
    pub(crate) fn warn(&self, message: &str) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {message}",
            warning_prefix(self.color)
        );
    }

    /// [`Session::warn`] as a function a server's threads can call.
    pub(crate) fn warner(&self) -> std::sync::Arc<dyn Fn(&str) + Send + Sync> {
        let color = self.color;
        std::sync::Arc::new(move |message: &str| {
            let _ = writeln!(std::io::stderr(), "{} {message}", warning_prefix(color));
        })
    }
}

/// `warning:`, in yellow on a terminal that shows colour.
fn warning_prefix(color: bool) -> &'static str {
    if color {
        "\x1b[33mwarning:\x1b[0m"
    } else {
        "warning:"
    }
}

/// Parses a MAC given on the command line, naming it in the error.
pub(crate) fn parse_mac(input: &str) -> Result<Mac, Failure> {
    Mac::parse(input).map_err(|e| Failure::input(e.to_string()))
}

/// Parses every MAC, stopping at the first bad one.
pub(crate) fn parse_macs(inputs: &[String]) -> Result<Vec<Mac>, Failure> {
    inputs.iter().map(|m| parse_mac(m)).collect()
}

/// Asks for passphrases on the terminal (never echoed) and shows plugin messages.
struct TerminalPrompt;

impl Prompt for TerminalPrompt {
    fn message(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "{text}");
    }

    fn passphrase(&self, description: &str) -> Option<Zeroizing<String>> {
        // rpassword reads from the controlling terminal, so this works even when standard
        // input is a pipe; without a terminal (CI) there is no one to ask.
        rpassword::prompt_password(format!("Passphrase for {description}: "))
            .ok()
            .map(Zeroizing::new)
    }
}
