//! The one error type of this crate, and the classes a front end maps to exit codes.

use std::fmt;
use std::io;
use std::path::PathBuf;

use polyseal_crypto::Mac;

use crate::{KeyState, Timestamp};

/// Everything that can go wrong in `polyseal-vault`.
///
/// Every message names what it is about (a file, a MAC, a generation, a label) and what is
/// wrong with it. No variant carries key material, so no message can leak a key.
/// [`Error::kind`] sorts the variants into the classes a command-line front end turns into
/// distinct exit codes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    // ---- vault state and locking -------------------------------------------------------
    /// The directory holds no vault (no `vault.toml`).
    NotAVault {
        /// The directory that was opened.
        dir: PathBuf,
    },
    /// `create` was pointed at a directory that already has something in it.
    DirectoryNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// Another process holds the vault's lock.
    Locked {
        /// The lock file.
        lock_file: PathBuf,
        /// The process id of the writer holding it; `None` when readers hold it (they record
        /// no pid) or the writer's pid could not be read.
        holder: Option<u32>,
        /// The pid recorded by a writer that no longer runs (killed before it could clear it):
        /// the lock is someone else's now.
        ended: Option<u32>,
    },
    /// A vault file declares a format version this build does not know.
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        found: i64,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The vault is of an older format (1: before authenticated vault state). It is read only
    /// to be upgraded, every key kept: [`VaultWriter::upgrade`](crate::VaultWriter::upgrade).
    NeedsUpgrade {
        /// The vault directory.
        dir: PathBuf,
        /// The format it has.
        found: u32,
    },
    /// A transaction journal was left by a writer that stopped mid-transaction, and it could
    /// not be completed now (typically: no write access to the vault directory).
    UnfinishedTransaction {
        /// The journal file.
        journal: PathBuf,
        /// Why completing it failed.
        source: Box<Error>,
    },
    /// The data key offered belongs to another vault, or to this vault before its data key was
    /// rotated (a recipient was removed since it was unlocked).
    StaleDataKey {
        /// The vault directory.
        dir: PathBuf,
    },
    /// An earlier write through this writer failed after its transaction became durable, so
    /// the writer's view may be out of date. Open the vault again: that completes the
    /// transaction.
    WriterPoisoned {
        /// The vault directory.
        dir: PathBuf,
    },
    /// Keys prepared for the vault no longer fit it: it changed before they were committed.
    ChangedSincePrepared {
        /// The vault directory.
        dir: PathBuf,
    },

    // ---- input: what the caller asked for is wrong ---------------------------------------
    /// No key record exists for this MAC.
    UnknownMac {
        /// The MAC.
        mac: Mac,
    },
    /// The MAC has no generation with this number.
    UnknownGeneration {
        /// The MAC.
        mac: Mac,
        /// The generation asked for.
        generation: u32,
    },
    /// The MAC has no active generation (and none was named).
    NoActiveKey {
        /// The MAC.
        mac: Mac,
    },
    /// No generation of any MAC carries this KeyDesc.
    UnknownKeyDesc {
        /// The KeyDesc.
        key_desc: String,
    },
    /// The generation was destroyed: its metadata is kept, its key bytes are gone.
    KeyDestroyed {
        /// The MAC.
        mac: Mac,
        /// The generation.
        generation: u32,
    },
    /// NIST SP 800-57 does not allow this state change.
    IllegalTransition {
        /// The MAC.
        mac: Mac,
        /// The generation.
        generation: u32,
        /// Its current state.
        from: KeyState,
        /// The state asked for.
        to: KeyState,
    },
    /// Activating this generation would give the MAC two active generations.
    AlreadyActive {
        /// The MAC.
        mac: Mac,
        /// The generation that is active now.
        active: u32,
    },
    /// The MAC has used up every generation number (over four billion rotations).
    GenerationsExhausted {
        /// The MAC.
        mac: Mac,
    },
    /// A batch names the same MAC twice.
    DuplicateMac {
        /// The MAC.
        mac: Mac,
    },
    /// Only a pre-active generation can be confirmed as received by its phone.
    NotPreActive {
        /// The MAC.
        mac: Mac,
        /// The generation.
        generation: u32,
        /// Its current state.
        state: KeyState,
    },
    /// The generation was confirmed before.
    AlreadyConfirmed {
        /// The MAC.
        mac: Mac,
        /// The generation.
        generation: u32,
        /// When it was confirmed.
        at: Timestamp,
    },
    /// A confirmation's evidence text is empty, too long, or holds control characters.
    InvalidEvidence {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A recipient's public key is not an age X25519, SSH ed25519/RSA or age plugin recipient.
    InvalidRecipient {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file given as a recipient holds no public key line.
    NoPublicKeyInFile {
        /// The file.
        path: PathBuf,
    },
    /// A recipient label is empty, too long, or holds control characters.
    InvalidLabel {
        /// The label given.
        label: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The vault already has a recipient with this label or this public key.
    DuplicateRecipient {
        /// The label of the recipient being added.
        label: String,
    },
    /// The vault has no recipient with this label.
    UnknownRecipient {
        /// The label asked for.
        label: String,
        /// The labels the vault has.
        known: Vec<String>,
    },
    /// Removing this recipient would leave nobody able to open the vault.
    LastRecipient {
        /// The label.
        label: String,
    },
    /// A vault needs at least one recipient.
    NoRecipients,
    /// The identity offered does not open what is sealed to this recipient alone: it is not
    /// that custodian's.
    NotTheCustodian {
        /// The recipient's label.
        label: String,
        /// Where the identity came from.
        origin: String,
    },
    /// No identity was given: neither a file, nor `POLYSEAL_IDENTITY`, nor
    /// `POLYSEAL_IDENTITY_DATA`.
    NoIdentity,
    /// An identity file or text could not be read as an age identity file, a
    /// passphrase-protected age identity file, or an SSH private key.
    InvalidIdentity {
        /// Where the identity came from: a path or an environment variable's name.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A passphrase-protected identity could not be decrypted: the passphrase was wrong or
    /// none could be asked for.
    IdentityLocked {
        /// Where the identity came from.
        origin: String,
    },
    /// None of the identities given is a recipient of the vault's data key.
    NoMatchingIdentity {
        /// The data-key file.
        data_key_file: PathBuf,
        /// Where the identities came from.
        origin: String,
        /// The labels of the vault's recipients, so the user can tell which identity to use.
        recipients: Vec<String>,
    },
    /// An age plugin could not be found or failed.
    Plugin {
        /// What the plugin or the plugin lookup reported.
        reason: String,
    },
    /// A transit service refused the token (wrong, expired, revoked, or without the policy),
    /// or the token may not be sent to that address: bad input, like a wrong identity.
    TransitDenied {
        /// The recipient, `vault-transit:URL`.
        url: String,
        /// What the service said, or why the token was not sent.
        reason: String,
    },
    /// A transit service could not do the call: sealed, no such key, unreachable, a TLS
    /// failure, an answer that makes no sense.
    TransitUnavailable {
        /// The recipient, `vault-transit:URL`.
        url: String,
        /// What the service said or what failed.
        reason: String,
    },
    /// The data key must be sealed to a transit recipient and no token is set.
    NoTransitToken {
        /// The recipient, `vault-transit:URL`.
        url: String,
    },
    /// A threshold that the recipients cannot meet, or that is out of range.
    InvalidThreshold {
        /// The threshold asked for.
        threshold: usize,
        /// How many recipients there would be.
        recipients: usize,
        /// What is wrong, and the fix.
        reason: String,
    },
    /// Fewer custodians than the threshold opened their shares of the data key.
    ThresholdNotMet {
        /// How many shares are needed.
        needed: usize,
        /// The labels of the recipients whose shares opened.
        opened: Vec<String>,
        /// The labels of the recipients who could give the rest.
        could_give: Vec<String>,
        /// Where the identities given came from.
        origin: String,
    },

    // ---- integrity: the vault's files are damaged or were altered ------------------------
    /// A vault file cannot be parsed.
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file every vault has is missing.
    MissingFile {
        /// The file.
        path: PathBuf,
    },
    /// `data-key.age` is missing: no key of this vault can be opened until it is restored.
    MissingDataKey {
        /// The file.
        path: PathBuf,
    },
    /// A phone's record sits in a bucket file that is not its own: the record or the file was
    /// moved or renamed.
    MisplacedRecord {
        /// The bucket file.
        path: PathBuf,
        /// The MAC the record names.
        mac: Mac,
    },
    /// A MAC has two records.
    DuplicateRecord {
        /// The bucket file holding the second one.
        path: PathBuf,
        /// The MAC.
        mac: Mac,
    },
    /// A sealed key does not open under the data key with its MAC, generation and KeyDesc:
    /// the record was edited or moved to another MAC, or belongs to another vault.
    SealBroken {
        /// The bucket file.
        path: PathBuf,
        /// The MAC.
        mac: Mac,
        /// The generation.
        generation: u32,
    },
    /// A sealed key opened, but its fingerprint differs from the one recorded: the record's
    /// metadata was edited.
    FingerprintMismatch {
        /// The bucket file.
        path: PathBuf,
        /// The MAC.
        mac: Mac,
        /// The generation.
        generation: u32,
    },
    /// `data-key.age` opened, but to a key that is not this vault's data key.
    DataKeyMismatch {
        /// The file.
        path: PathBuf,
    },
    /// `events.log` cannot be read as a hash-chained event log.
    EventLog {
        /// The log file.
        path: PathBuf,
        /// The 1-based line number at fault.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The vault's files are not those its authenticated head (`head.json`) records: edited
    /// outside polyseal, restored from an older copy, cut, or the head itself forged. Found
    /// when the vault is unlocked, before anything is sealed to anyone.
    NotAuthentic {
        /// The vault directory.
        dir: PathBuf,
        /// Every difference found, one sentence each, naming its file.
        findings: Vec<String>,
    },
    /// `verify` found records and event log in disagreement, or a broken hash chain.
    VerifyFailed {
        /// The vault directory.
        dir: PathBuf,
        /// Every problem found, one sentence each.
        findings: Vec<String>,
    },

    // ---- I/O ----------------------------------------------------------------------------
    /// Reading or writing a file failed.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done: "read", "write", "create", "rename", …
        action: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
}

/// The class of an [`Error`], for choosing an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// What the caller asked for or supplied is wrong: an unknown MAC, an illegal state change,
    /// a bad recipient, an identity that does not fit.
    Input,
    /// The vault's files are damaged or were altered.
    Integrity,
    /// The vault is not in a state to do this: missing, locked, of an unknown format version,
    /// left mid-transaction.
    Vault,
    /// The operating system refused a read or write.
    Io,
}

impl Error {
    /// The class of this error; see [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotAVault { .. }
            | Error::DirectoryNotEmpty { .. }
            | Error::Locked { .. }
            | Error::UnsupportedFormat { .. }
            | Error::NeedsUpgrade { .. }
            | Error::UnfinishedTransaction { .. }
            | Error::StaleDataKey { .. }
            | Error::WriterPoisoned { .. }
            | Error::ChangedSincePrepared { .. } => ErrorKind::Vault,
            Error::UnknownMac { .. }
            | Error::UnknownGeneration { .. }
            | Error::NoActiveKey { .. }
            | Error::UnknownKeyDesc { .. }
            | Error::KeyDestroyed { .. }
            | Error::IllegalTransition { .. }
            | Error::AlreadyActive { .. }
            | Error::GenerationsExhausted { .. }
            | Error::DuplicateMac { .. }
            | Error::NotPreActive { .. }
            | Error::AlreadyConfirmed { .. }
            | Error::InvalidEvidence { .. }
            | Error::InvalidRecipient { .. }
            | Error::NoPublicKeyInFile { .. }
            | Error::InvalidLabel { .. }
            | Error::DuplicateRecipient { .. }
            | Error::UnknownRecipient { .. }
            | Error::LastRecipient { .. }
            | Error::NoRecipients
            | Error::NoIdentity
            | Error::NotTheCustodian { .. }
            | Error::InvalidIdentity { .. }
            | Error::IdentityLocked { .. }
            | Error::NoMatchingIdentity { .. }
            | Error::Plugin { .. }
            | Error::TransitDenied { .. }
            | Error::NoTransitToken { .. }
            | Error::InvalidThreshold { .. }
            | Error::ThresholdNotMet { .. } => ErrorKind::Input,
            Error::TransitUnavailable { .. } => ErrorKind::Vault,
            Error::CorruptFile { .. }
            | Error::MissingFile { .. }
            | Error::MissingDataKey { .. }
            | Error::MisplacedRecord { .. }
            | Error::DuplicateRecord { .. }
            | Error::SealBroken { .. }
            | Error::FingerprintMismatch { .. }
            | Error::DataKeyMismatch { .. }
            | Error::EventLog { .. }
            | Error::VerifyFailed { .. }
            | Error::NotAuthentic { .. } => ErrorKind::Integrity,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// An I/O error on `path` while doing `action`.
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            action,
            source,
        }
    }

    /// A parse failure of the vault file at `path`.
    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl fmt::Display) -> Error {
        Error::CorruptFile {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotAVault { dir } if !dir.exists() => {
                write!(
                    f,
                    "{}: no vault here (the directory does not exist)",
                    dir.display()
                )
            }
            Error::NotAVault { dir } => {
                write!(
                    f,
                    "{} is not a polyseal vault (no vault.toml)",
                    dir.display()
                )
            }
            Error::DirectoryNotEmpty { dir } => write!(
                f,
                "cannot create a vault in {}: the directory is not empty",
                dir.display()
            ),
            Error::Locked {
                lock_file,
                holder,
                ended,
            } => match (holder, ended) {
                (Some(pid), _) => write!(
                    f,
                    "vault is locked by another writer: process {pid} holds it (pid recorded in \
                     {})",
                    lock_file.display()
                ),
                (None, Some(pid)) => write!(
                    f,
                    "vault is locked by another polyseal command reading it; process {pid}, \
                     recorded in {} by a writer, has ended",
                    lock_file.display()
                ),
                (None, None) => write!(
                    f,
                    "vault is locked by another polyseal command (a reader, or a writer whose pid \
                     is not recorded in {})",
                    lock_file.display()
                ),
            },
            Error::NeedsUpgrade { dir, found } => write!(
                f,
                "the vault at {} has format {found}, from before authenticated vault state; \
                 this polyseal opens it only to upgrade it to format {}, every key kept",
                dir.display(),
                crate::FORMAT_VERSION
            ),
            Error::UnsupportedFormat {
                path,
                found,
                supported,
            } => write!(
                f,
                "{} has format version {found}; this polyseal reads version {supported} only",
                path.display()
            ),
            Error::UnfinishedTransaction { journal, source } => write!(
                f,
                "{} holds an unfinished transaction that could not be completed ({source}); \
                 open the vault once with write access to complete it",
                journal.display()
            ),
            Error::StaleDataKey { dir } => write!(
                f,
                "the data key offered is not the current data key of the vault at {} \
                 (another vault's, or rotated since it was unlocked); unlock again",
                dir.display()
            ),
            Error::WriterPoisoned { dir } => write!(
                f,
                "an earlier write to the vault at {} failed part-way; open the vault again",
                dir.display()
            ),
            Error::ChangedSincePrepared { dir } => write!(
                f,
                "the vault at {} changed after keys were prepared for it; nothing was added, run \
                 the command again",
                dir.display()
            ),
            Error::UnknownMac { mac } => write!(f, "MAC {mac} has no key in this vault"),
            Error::UnknownGeneration { mac, generation } => {
                write!(f, "MAC {mac} has no key generation {generation}")
            }
            Error::NoActiveKey { mac } => write!(f, "MAC {mac} has no active key"),
            Error::UnknownKeyDesc { key_desc } => {
                write!(f, "no key in this vault has KeyDesc {key_desc:?}")
            }
            Error::KeyDestroyed { mac, generation } => write!(
                f,
                "key generation {generation} of MAC {mac} was destroyed; only its metadata is kept"
            ),
            Error::IllegalTransition {
                mac,
                generation,
                from,
                to,
            } => write!(
                f,
                "key generation {generation} of MAC {mac} cannot go from {from} to {to} \
                 (allowed: pre-active → active → deactivated, pre-active → destroyed, \
                 any live state → compromised, deactivated or compromised → destroyed)"
            ),
            Error::AlreadyActive { mac, active } => write!(
                f,
                "MAC {mac} already has an active key (generation {active}); deactivate it in \
                 the same batch first"
            ),
            Error::GenerationsExhausted { mac } => {
                write!(f, "MAC {mac} has used up every key generation number")
            }
            Error::DuplicateMac { mac } => write!(f, "MAC {mac} appears twice in one batch"),
            Error::NotPreActive {
                mac,
                generation,
                state,
            } => write!(
                f,
                "key generation {generation} of MAC {mac} is {state}; only a pre-active key \
                 can be confirmed"
            ),
            Error::AlreadyConfirmed {
                mac,
                generation,
                at,
            } => write!(
                f,
                "key generation {generation} of MAC {mac} was already confirmed at {at}"
            ),
            Error::InvalidEvidence { reason } => write!(f, "confirmation evidence {reason}"),
            Error::NoPublicKeyInFile { path } => write!(
                f,
                "{}: holds no public key (an age1… or ssh-… line, or a `# public key:` comment)",
                path.display()
            ),
            Error::InvalidRecipient { input, reason } => {
                write!(f, "recipient {input:?} is not usable: {reason}")
            }
            Error::InvalidLabel { label, reason } => {
                write!(f, "recipient label {label:?} {reason}")
            }
            Error::DuplicateRecipient { label } => write!(
                f,
                "recipient {label:?}: the vault already has a recipient with this label or \
                 this public key"
            ),
            Error::UnknownRecipient { label, known } => write!(
                f,
                "the vault has no recipient labelled {label:?}; its recipients are: {}",
                known.join(", ")
            ),
            Error::LastRecipient { label } => write!(
                f,
                "cannot remove recipient {label:?}: it is the only one, and nobody could open \
                 the vault"
            ),
            Error::NoRecipients => write!(f, "a vault needs at least one recipient"),
            Error::NoIdentity => write!(
                f,
                "no identity given: pass an identity file, or set POLYSEAL_IDENTITY to its \
                 path, or POLYSEAL_IDENTITY_DATA to its contents"
            ),
            Error::InvalidIdentity { origin, reason } => {
                write!(f, "identity {origin} is not usable: {reason}")
            }
            Error::IdentityLocked { origin } => write!(
                f,
                "identity {origin} is passphrase-protected and could not be decrypted \
                 (wrong passphrase, or no passphrase could be asked for)"
            ),
            Error::NoMatchingIdentity {
                data_key_file,
                origin,
                recipients,
            } => write!(
                f,
                "identity {origin} cannot open {}: it is none of the vault's recipients ({})",
                data_key_file.display(),
                recipients.join(", ")
            ),
            Error::Plugin { reason } => write!(f, "age plugin failed: {reason}"),
            Error::TransitDenied { url, reason } | Error::TransitUnavailable { url, reason } => {
                write!(f, "transit recipient {url}: {reason}")
            }
            Error::NoTransitToken { url } => write!(
                f,
                "transit recipient {url}: no token (set VAULT_TOKEN or BAO_TOKEN to a token \
                 whose policy allows transit encrypt and decrypt on that key)"
            ),
            Error::InvalidThreshold {
                threshold,
                recipients,
                reason,
            } => write!(
                f,
                "threshold {threshold} with {recipients} recipient{}: {reason}",
                if *recipients == 1 { "" } else { "s" }
            ),
            Error::ThresholdNotMet {
                needed,
                opened,
                could_give,
                origin,
            } => {
                let more = needed.saturating_sub(opened.len());
                let whose = if opened.is_empty() {
                    format!(" (the identities given, {origin}, open none of the shares)")
                } else {
                    format!(" ({})", opened.join(", "))
                };
                write!(
                    f,
                    "the vault needs {needed} custodians to open its data key; {} opened{whose}; \
                     {more} more needed, from: {}",
                    opened.len(),
                    could_give.join(", ")
                )
            }
            Error::CorruptFile { path, reason } => {
                write!(f, "{} is corrupt: {reason}", path.display())
            }
            Error::MissingFile { path } => {
                write!(f, "vault file {} is missing", path.display())
            }
            Error::MissingDataKey { path } => write!(
                f,
                "data key file {} is missing; no key of this vault can be opened until it is \
                 restored from a backup",
                path.display()
            ),
            Error::MisplacedRecord { path, mac } => write!(
                f,
                "{} holds the record of MAC {mac}, which belongs in another bucket file: the \
                 record or the file was moved or renamed",
                path.display()
            ),
            Error::DuplicateRecord { path, mac } => {
                write!(f, "{} holds a second record for MAC {mac}", path.display())
            }
            Error::SealBroken {
                path,
                mac,
                generation,
            } => write!(
                f,
                "{}: the sealed key of MAC {mac} generation {generation} does not open: the \
                 record was edited or moved from another MAC, or belongs to another vault",
                path.display()
            ),
            Error::FingerprintMismatch {
                path,
                mac,
                generation,
            } => write!(
                f,
                "{}: the key of MAC {mac} generation {generation} does not match its recorded \
                 fingerprint: the record was edited",
                path.display()
            ),
            Error::DataKeyMismatch { path } => write!(
                f,
                "{} opens to a key that is not this vault's data key (data_key_check in \
                 vault.toml differs): the file was replaced",
                path.display()
            ),
            // Line 0: about the log as a whole (its end, its length), not one line.
            Error::EventLog {
                path,
                line: 0,
                reason,
            } => write!(f, "{}: {reason}", path.display()),
            Error::EventLog { path, line, reason } => {
                write!(f, "{} line {line}: {reason}", path.display())
            }
            Error::VerifyFailed { dir, findings } => {
                write!(
                    f,
                    "vault {} failed verification ({} problem{}): {}",
                    dir.display(),
                    findings.len(),
                    if findings.len() == 1 { "" } else { "s" },
                    findings.join("; ")
                )
            }
            Error::NotTheCustodian { label, origin } => write!(
                f,
                "the identity from {origin} is not recipient {label:?}'s: it does not open a \
                 challenge sealed to {label:?} alone, so it cannot acknowledge for them"
            ),
            Error::NotAuthentic { dir, findings } => write!(
                f,
                "the vault at {} is not as polyseal left it ({} difference{} from its \
                 authenticated head, nothing was done): {}",
                dir.display(),
                findings.len(),
                if findings.len() == 1 { "" } else { "s" },
                findings.join("; ")
            ),
            Error::Io {
                path,
                action,
                source,
            } => write!(f, "cannot {action} {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::UnfinishedTransaction { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}
