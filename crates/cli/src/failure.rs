//! What a failed command reports: one line naming the input and what is wrong, an optional
//! hint of what to do next, and the exit code of its class.

use std::fmt;
use std::path::Path;

use polyseal_vault::ErrorKind;

pub(crate) use crate::exit_code::ExitClass;

/// A command's failure.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) class: ExitClass,
    message: String,
    hint: Option<String>,
    /// Further refusals of the same command, each said on its own line after this one.
    also: Vec<Failure>,
}

impl Failure {
    /// A failure of `class` with a one-line message.
    pub(crate) fn new(class: ExitClass, message: impl Into<String>) -> Failure {
        Failure {
            class,
            message: message.into(),
            hint: None,
            also: Vec::new(),
        }
    }

    /// Bad input.
    pub(crate) fn input(message: impl Into<String>) -> Failure {
        Failure::new(ExitClass::Input, message)
    }

    /// An I/O failure on `path` while doing `what` ("read", "write", "create").
    pub(crate) fn io(path: &Path, what: &str, error: &std::io::Error) -> Failure {
        Failure::new(
            ExitClass::Io,
            format!("cannot {what} {}: {}", path.display(), error_text(error)),
        )
    }

    /// A crypto error about the file `path`.
    pub(crate) fn crypto(path: &Path, error: &polyseal_crypto::Error) -> Failure {
        let class = if error.is_integrity_failure() {
            ExitClass::Integrity
        } else {
            ExitClass::Input
        };
        Failure::new(class, format!("{}: {error}", path.display()))
    }

    /// Adds what to do next.
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Failure {
        self.hint = Some(hint.into());
        self
    }

    /// The further refusals of the same command.
    pub(crate) fn also(&self) -> &[Failure] {
        &self.also
    }

    /// The hint, if any.
    pub(crate) fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

/// The OS error without Rust's " (os error N)" suffix.
fn error_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever a library put in its message.
        f.write_str(&self.message.replace('\n', " "))
    }
}

impl From<polyseal_vault::Error> for Failure {
    fn from(error: polyseal_vault::Error) -> Failure {
        let class = match error.kind() {
            ErrorKind::Input => ExitClass::Input,
            ErrorKind::Integrity => ExitClass::Integrity,
            ErrorKind::Vault => ExitClass::Vault,
            ErrorKind::Io => ExitClass::Io,
            _ => ExitClass::Vault,
        };
        let hint = vault_hint(&error);
        let failure = Failure::new(class, error.to_string());
        match hint {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

/// What to do next for the vault errors people meet most.
fn vault_hint(error: &polyseal_vault::Error) -> Option<String> {
    use polyseal_vault::Error as E;
    Some(match error {
        E::NeedsUpgrade { dir, .. } => {
            return Some(format!(
                "upgrade it, keeping every key: polyseal upgrade --vault {} --identity FILE",
                dir.display()
            ));
        }
        E::NotAuthentic { .. } => {
            "nothing was changed; find out who changed the vault (`polyseal log show`, the \
             heads you anchored: docs/VAULT.md), then restore it from a copy you trust"
        }
        E::NotAVault { .. } => {
            "create one with `polyseal init --recipient age1…`, or point --vault / POLYSEAL_VAULT at it"
        }
        E::Locked { .. } => "wait for the other polyseal command to finish, then try again",
        E::NoIdentity => {
            "pass --identity FILE, or set POLYSEAL_IDENTITY (a path) or POLYSEAL_IDENTITY_DATA"
        }
        E::IdentityLocked { .. } => {
            "type the passphrase again at the prompt; unattended runs have no terminal to ask on, \
             so give them an identity without a passphrase, readable by their user only"
        }
        E::NoMatchingIdentity { .. } => {
            "use an identity whose public key is one of the vault's recipients (`polyseal recipients list`)"
        }
        E::UnknownMac { .. } | E::NoActiveKey { .. } => {
            "make one with `polyseal keys add MAC` or `polyseal publish`"
        }
        E::UnfinishedTransaction { .. } => "run `polyseal log verify`; the next writer recovers it",
        _ => return None,
    }
    .to_owned())
}

impl From<polyseal_provision::Error> for Failure {
    fn from(error: polyseal_provision::Error) -> Failure {
        let class = if error.is_io() {
            ExitClass::Io
        } else if error.is_integrity_failure() {
            ExitClass::Integrity
        } else {
            ExitClass::Input
        };
        let failure = Failure::new(class, error.to_string());
        match provision_hint(&error) {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

/// What to do next about a file of the tree that cannot be read as phones read it.
fn provision_hint(error: &polyseal_provision::Error) -> Option<&'static str> {
    use polyseal_provision::Error as E;
    Some(match error {
        E::Xml { .. } => {
            "fix the file at that place, then run the command again (docs/PROVISIONING.md §7: \
             what xmllint refuses, and a DOCTYPE, is refused)"
        }
        E::NotUtf8 { .. } => {
            "save the file as UTF-8; an XML file in ISO-8859-1, which phones read too, may \
             say so in its first line instead: <?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"
        }
        _ => return None,
    })
}

impl From<polyseal_fleet::Error> for Failure {
    fn from(error: polyseal_fleet::Error) -> Failure {
        use polyseal_fleet::Error as E;
        let error = match error {
            E::Vault(e) => return e.into(),
            E::Provision(e) => return e.into(),
            // The first names the exit code; every one is said.
            E::Refusals(errors) => {
                let mut failures = errors.into_iter().map(Failure::from);
                let Some(mut first) = failures.next() else {
                    return Failure::input("refused");
                };
                first.also = failures.collect();
                return first;
            }
            other => other,
        };
        let class = match &error {
            E::Io { .. } => ExitClass::Io,
            E::Crypto { source, .. } if source.is_integrity_failure() => ExitClass::Integrity,
            E::KeyMissing { .. } | E::NoActiveKey { .. } => ExitClass::Vault,
            // No key of ours opens the file (docs/CLI.md, exit 4).
            E::KeyDescNotInVault { .. } | E::KeyOfAnotherPhone { .. } => ExitClass::Integrity,
            // No layout opens the phones' own files: as `format probe` with none fitting.
            E::NoLayoutFits { .. } | E::UploadsDisagree { .. } => ExitClass::Integrity,
            // A phone cannot read what it was served (docs/ROLLOUT.md, exit codes).
            E::RolloutHalted { .. } => ExitClass::Integrity,
            _ => ExitClass::Input,
        };
        let hint = fleet_hint(&error);
        let failure = Failure::new(class, error.to_string());
        match hint {
            Some(hint) => failure.with_hint(hint),
            None => failure,
        }
    }
}

/// What to do next about a refusal of the fleet engine.
fn fleet_hint(error: &polyseal_fleet::Error) -> Option<String> {
    use polyseal_fleet::Error as E;
    Some(match error {
        E::KeyFileInSource { .. } => "remove it from the source tree".to_owned(),
        E::MasterEncrypted { .. } => "replace it with the plaintext master".to_owned(),
        // The error line says the fix already ("fix: …").
        E::PlaintextSecrets { .. } => "or pass --allow-plaintext-secrets to publish them \
                                       anyway, in plaintext to every phone"
            .to_owned(),
        E::Malformed { .. } => "fix each file at its place, then run the command again \
                                (docs/PROVISIONING.md §7: what xmllint refuses, and a \
                                DOCTYPE, is refused)"
            .to_owned(),
        E::NothingToRotate { .. } => {
            "publish it first: `polyseal publish` makes and bootstraps its key".to_owned()
        }
        E::RotationUnderWay { .. } => {
            "confirm and finish it first (`polyseal rotate status`)".to_owned()
        }
        E::NothingToConfirm { .. } => {
            "start a rotation first: `polyseal rotate start MAC`".to_owned()
        }
        E::UploadsDisagree { .. } => "one vault serves one layout: move those phones onto one \
            firmware first (`polyseal format probe FILE --mac MAC` shows each one's layout)"
            .to_owned(),
        E::NoEncryptedUpload { .. } => "on one phone that holds its key: have a configuration \
            file it reads set sec.encryption.upload.overrides=\"1\", reboot it, then change a \
            setting on the phone (its menu or web interface) so it uploads <MAC>-phone.cfg"
            .to_owned(),
        // A file that sets it otherwise comes first in the phone's CONFIG_FILES: a line
        // added to a later one would not count (docs/ROLLOUT.md, "Before you start").
        E::UploadsNotEncrypted {
            set_in: Some((path, position, _)),
            ..
        } => format!(
            "set it to \"1\" at {}:{position}, then run the command again (docs/ROLLOUT.md)",
            path.display()
        ),
        E::UploadsNotEncrypted { shared, .. } => format!(
            "add <sec sec.encryption.upload.overrides=\"1\"/> to {} (a file every phone \
             reads), then run the command again (docs/ROLLOUT.md)",
            shared.as_ref().map_or_else(
                || "a shared file listed in CONFIG_FILES".to_owned(),
                |p| p.display().to_string()
            )
        ),
        E::RolloutUnderWay { .. } => {
            "advance it to the end, or abort its waves one by one (`polyseal rollout status`)"
                .to_owned()
        }
        E::NoRollout => "start one: `polyseal rollout start --src SRC --out OUT`".to_owned(),
        E::LayoutNotConfirmed { .. } => "`polyseal rollout learn --uploads DIR` once a canary \
            uploaded its override file (or, knowing the layout, `polyseal format set \
            --i-accept-the-risk …`)"
            .to_owned(),
        E::RolloutHalted { .. } => {
            "`polyseal rollout abort --src SRC --out OUT` serves that wave in plaintext again"
                .to_owned()
        }
        E::WaveNotSettled { .. } => "wait for those phones to poll (or reboot them), then run \
            it again; `polyseal rollout status` lists them; `--waive MAC` lets the next wave go \
            without a phone that is unplugged or broken"
            .to_owned(),
        E::UploadsLayoutUnconfirmed { .. } => "`polyseal rollout learn --uploads DIR` first, \
            or leave --uploads out"
            .to_owned(),
        E::CannotWaive { .. } => "`polyseal rollout status` shows where each phone of the last \
            wave stands"
            .to_owned(),
        E::TreeNotPublished { .. } => "`polyseal publish --src SRC --out OUT` (the tree the \
            phones are served), then let the wave's phones poll"
            .to_owned(),
        E::CannotFinish { .. } => {
            "a phone must be confirmed to hold the new key first: `polyseal rotate confirm`"
                .to_owned()
        }
        _ => return None,
    })
}
