//! What can go wrong in the fleet engine. Each variant names what it is about; the binary
//! decides exit codes and hints (crates/cli/src/failure.rs).

use std::path::PathBuf;

use polyseal_crypto::Mac;
use polyseal_provision::Position;
use polyseal_vault::RotationStep;

/// A failure of publish, rotate, audit or the files they write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A read, write, create, sync, rename or removal of `path` failed.
    #[error("cannot {action} {}: {}", path.display(), os_text(source))]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done: "read", "write", "create", "remove", "sync", "move aside".
        action: &'static str,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A report was asked for as of a time before the vault existed.
    #[error(
        "--as-of {as_of}: before the vault existed (its first event is of {created}); a report \
         judges the vault's records as they are now, at that time"
    )]
    AsOfBeforeVault {
        /// The time asked for.
        as_of: String,
        /// When the vault was made.
        created: String,
    },
    /// A file is larger than its limit.
    #[error("{}: larger than the {limit}-byte limit", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: usize,
    },
    /// A file could not be encrypted or decrypted.
    #[error("{}: {source}", path.display())]
    Crypto {
        /// The file.
        path: PathBuf,
        /// What the crypto crate said.
        source: polyseal_crypto::Error,
    },
    /// The source tree, a phones list or a file in it could not be used.
    #[error(transparent)]
    Provision(#[from] polyseal_provision::Error),
    /// The vault refused or failed.
    #[error(transparent)]
    Vault(#[from] polyseal_vault::Error),
    /// The source tree holds a phone's key file, which polyseal writes itself.
    #[error("{}: the source tree has a key file for {mac}; polyseal writes key files itself", path.display())]
    KeyFileInSource {
        /// The key file in the source tree.
        path: PathBuf,
        /// Its phone.
        mac: Mac,
    },
    /// No master file: phones have nothing to boot from.
    #[error(
        "{}: no master file (000000000000.cfg or {mac}.cfg): phones have nothing to boot from; \
         add 000000000000.cfg, the master every phone falls back to (never encrypted)",
        root.display()
    )]
    NoMaster {
        /// The source tree.
        root: PathBuf,
        /// A phone without one.
        mac: Mac,
    },
    /// A master file is encrypted: phones cannot read it.
    #[error("{}: master file is encrypted; phones cannot read an encrypted master and would reboot in a loop", path.display())]
    MasterEncrypted {
        /// The master.
        path: PathBuf,
    },
    /// A shared file (one every phone fetches) is encrypted in the source tree: only the
    /// phone whose key it is under could read it; every other one would reboot on it.
    #[error(
        "{}: a shared file (its name holds no phone's MAC, so every phone fetches it) is \
         encrypted; phones without its key cannot read it and reboot: put the plaintext file \
         in the source tree, without secrets, or name it after its phone",
        path.display()
    )]
    SharedFileEncrypted {
        /// The file.
        path: PathBuf,
    },
    /// A phone's file is already encrypted in the source tree, under another key than the one
    /// its phone is served: the phone could not decrypt it.
    #[error(
        "{}: already encrypted in the source tree, under {}, but phone {mac} is served {}: it \
         could not decrypt it and would reboot; put the plaintext file in the source tree \
         (polyseal encrypts it)",
        path.display(),
        found.as_deref().map_or_else(|| "no KeyDesc".to_owned(), |k| format!("KeyDesc {k}")),
        served.as_deref().map_or_else(|| "a key made by this run".to_owned(), |k| format!("KeyDesc {k}"))
    )]
    EncryptedUnderOtherKey {
        /// The source file.
        path: PathBuf,
        /// Its phone.
        mac: Mac,
        /// The KeyDesc its header names, if any.
        found: Option<String>,
        /// The KeyDesc of the generation the phone is served, if it has one yet.
        served: Option<String>,
    },
    /// A phone's file is already encrypted in the source tree under the KeyDesc its phone is
    /// served, but that key does not open it (another vault names its keys the same way).
    #[error(
        "{}: already encrypted in the source tree under {key_desc}, but this vault's key of \
         that name does not open it in the vault's layout (made by another vault, in another \
         layout, or damaged): the phone could not decrypt it; put the plaintext file in the \
         source tree (polyseal encrypts it)",
        path.display()
    )]
    EncryptedSourceDoesNotOpen {
        /// The source file.
        path: PathBuf,
        /// The KeyDesc its header names.
        key_desc: String,
    },
    /// The masters' lists give one file to several phones: no one key serves them all.
    #[error(
        "{}: the masters' lists give this file to phones {}: encrypted for one, the others \
         could not read it; write the lists so each file names one phone",
        path.display(),
        macs.iter().map(ToString::to_string).collect::<Vec<_>>().join(" and ")
    )]
    FileOfSeveralPhones {
        /// The file.
        path: PathBuf,
        /// The phones.
        macs: Vec<Mac>,
    },
    /// A symbolic link in the source tree leads to a phone's file under a name that is not
    /// that phone's: it would be served, in plaintext, to every phone.
    #[error(
        "{}: a symbolic link to {}, the file of phone {mac}: under this name it would be served \
         in plaintext to every phone; remove the link",
        link.display(),
        target.display()
    )]
    LinkToPhoneFile {
        /// The link.
        link: PathBuf,
        /// The phone's file, relative to the tree.
        target: PathBuf,
        /// Its phone.
        mac: Mac,
    },
    /// A `<mac>.cfg` that is a configuration file, listed for its phone: phones request
    /// `<mac>.cfg` first, as their master, and an encrypted master loops them.
    #[error(
        "{}: phones request <mac>.cfg first, as their master file, but this one is a \
         configuration file that a master lists for phone {mac}: encrypted, it would make the \
         phone reboot again and again; rename it (for example to {mac}-sip.cfg) and list that",
        path.display()
    )]
    PhoneFileNotMaster {
        /// The file.
        path: PathBuf,
        /// Its phone.
        mac: Mac,
    },
    /// Files are not well-formed XML: every one of them, the first in full.
    #[error("{first}{}", malformed_list(others))]
    Malformed {
        /// The first, in tree order.
        first: polyseal_provision::Error,
        /// The others.
        others: Vec<polyseal_provision::Error>,
    },
    /// Several refusals of one publish, in the order they were found: each is one line.
    #[error("{}", refusal_lines(.0))]
    Refusals(Vec<Error>),
    /// A master's file list does not list the key file, or lists a per-phone file before it:
    /// phones would loop on reboot.
    #[error(
        "{}:{position}: {attribute} {}: phones {}; list {pattern} first in {attribute}",
        master.display(),
        match first {
            Some(first) => format!("lists {first} before the key file {pattern}"),
            None => format!("does not list the key file {pattern}"),
        },
        if first.is_some() {
            "without their key would fetch an encrypted file first, fail to decrypt it and reboot"
        } else {
            "would never fetch their key and would reboot on every encrypted file"
        }
    )]
    KeyFileNotListed {
        /// The master file.
        master: PathBuf,
        /// The list: `CONFIG_FILES` or `CONFIG_FILES_<MODEL>`.
        attribute: String,
        /// Where the list is (or `<APPLICATION>`, when the master has none).
        position: Position,
        /// The key file's name pattern.
        pattern: String,
        /// The per-phone file listed before it, if the key file is listed late.
        first: Option<String>,
    },
    /// A master lists a shared configuration file the tree does not have.
    #[error(
        "{}:{position}: {list} lists {file}, which is not a file of the source tree (a typo, a \
         directory, a hidden file, a file outside the tree): fix the name or add the file{}",
        master.display(),
        if others.is_empty() {
            String::new()
        } else {
            format!(" (and {} more: {})", others.len(), others.join(", "))
        }
    )]
    ListedFileMissing {
        /// The master.
        master: PathBuf,
        /// Where the list is.
        position: Position,
        /// Every other such entry, as `master:line:column LIST entry`.
        others: Vec<String>,
        /// The list, with the model it is read for.
        list: String,
        /// The entry.
        file: String,
    },
    /// A list every phone of a master reads names one phone's file by its MAC.
    #[error(
        "{}{}: {attribute} lists {file}, the file of phone {owner}, which {}: write \
         [PHONE_MAC_ADDRESS] instead of the MAC{}",
        master.display(),
        position.map_or_else(String::new, |p| format!(":{p}")),
        match own_master_of {
            Some(phone) => format!("phone {phone}, whose own master this is, would fetch"),
            None => "every phone of this master would fetch".to_owned(),
        },
        match own_master_of {
            Some(_) => String::new(),
            None => format!(", or give {owner} a master of its own ({owner}.cfg)"),
        }
    )]
    OtherPhonesFileListed {
        /// The phone whose own `<mac>.cfg` the master is; `None` for `000000000000.cfg`.
        own_master_of: Option<Mac>,
        /// The master.
        master: PathBuf,
        /// Where the list is, if the master names it.
        position: Option<Position>,
        /// The list.
        attribute: String,
        /// The entry, as the phone requests it.
        file: String,
        /// The phone it is named after.
        owner: Mac,
    },
    /// Secrets would be served in plaintext to every phone: every one the tree holds, the
    /// first in full and the others by place and parameter, so one run shows them all.
    #[error("{first}{}", others_list(others))]
    PlaintextSecrets {
        /// The first secret found.
        first: polyseal_provision::Finding,
        /// Every other one, in tree order.
        others: Vec<polyseal_provision::Finding>,
    },
    /// A generation the phone is served has no key in the vault.
    #[error("{mac}: generation {generation} has no key in the vault (destroyed?)")]
    KeyMissing {
        /// The phone.
        mac: Mac,
        /// The generation.
        generation: u32,
    },
    /// A phone that should be served has no active key.
    #[error("{mac} has no active key")]
    NoActiveKey {
        /// The phone.
        mac: Mac,
    },
    /// `--out` does not end in a directory name.
    #[error("--out {}: not a directory name", out.display())]
    OutNotADirectoryName {
        /// The path given.
        out: PathBuf,
    },
    /// `--out` names something other than a directory.
    #[error("--out {}: not a directory", out.display())]
    OutNotADirectory {
        /// The path given.
        out: PathBuf,
    },
    /// `--out` is the root of a mounted file system, which cannot be swapped.
    #[error(
        "--out {}: a mount point, which cannot be replaced whole; publish into a directory \
         inside it (such as {}/tree) and serve that",
        out.display(),
        out.display()
    )]
    OutIsMountPoint {
        /// The path given.
        out: PathBuf,
    },
    /// The directory that holds `--out` cannot be written: the staging tree goes there.
    #[error(
        "--out {}: cannot write in {}, where the new tree is staged beside it; run as a user \
         who can, or publish into a directory of your own and point the web server there",
        out.display(),
        parent.display()
    )]
    OutParentNotWritable {
        /// The path given.
        out: PathBuf,
        /// Its parent directory.
        parent: PathBuf,
    },
    /// `--out` holds files polyseal did not write: publish would remove or overwrite them.
    #[error(
        "--out {}: {} polyseal did not write ({}{}); {}",
        out.display(),
        if *overwritten { "publishing would overwrite files" } else { "holds files" },
        list(files),
        and_more(*more),
        if *overwritten {
            "move them away, or pass --adopt-out to replace them (every other file stays)"
        } else {
            "publish into an empty or new directory, or pass --adopt-out to publish into it \
             and keep them"
        }
    )]
    OutHoldsOthersFiles {
        /// The path given.
        out: PathBuf,
        /// The first such files, relative to `out`.
        files: Vec<PathBuf>,
        /// How many more there are.
        more: usize,
        /// True if they are at paths the new tree would write; false if `out` was never
        /// published by polyseal.
        overwritten: bool,
    },
    /// `--out` exists and the user cannot write in it: the old tree could not be removed.
    #[error(
        "--out {}: cannot write in it, and the old tree could not be removed after the swap; run \
         as its owner, or publish into a directory of your own",
        out.display()
    )]
    OutNotWritable {
        /// The path given.
        out: PathBuf,
    },
    /// `--src` and `--out` hold one another.
    #[error(
        "--out {} and --src {}: one holds the other; publishing would encrypt the source in place \
         or nest the tree in itself: publish into a directory outside the source tree",
        out.display(),
        src.display()
    )]
    OutOverlapsSrc {
        /// `--out`, resolved.
        out: PathBuf,
        /// `--src`, resolved.
        src: PathBuf,
    },
    /// A source file's name cannot be recorded: not UTF-8, or it holds a line break.
    #[error(
        "{}: a file name that is not UTF-8 or holds a line break; phones request UTF-8 names: \
         rename it",
        path.display()
    )]
    UnservableName {
        /// The file.
        path: PathBuf,
    },
    /// The directory that should hold `--out` does not exist.
    #[error("--out {}: parent directory {} does not exist", out.display(), parent.display())]
    OutParentMissing {
        /// The path given.
        out: PathBuf,
        /// Its parent.
        parent: PathBuf,
    },
    /// A path that must name a file does not.
    #[error("{}: not a file name", path.display())]
    NotAFileName {
        /// The path.
        path: PathBuf,
    },
    /// The uploads directory is not a directory.
    #[error("--uploads {}: not a directory", dir.display())]
    UploadsNotADirectory {
        /// The path given.
        dir: PathBuf,
    },
    /// An encrypted file's KeyDesc names no key of the vault.
    #[error("{}: encrypted under KeyDesc {key_desc}, which is not in the vault", file.display())]
    KeyDescNotInVault {
        /// The file.
        file: PathBuf,
        /// The KeyDesc of its header.
        key_desc: polyseal_crypto::KeyDesc,
    },
    /// An encrypted file is under another phone's key than the one named.
    #[error("{}: encrypted under {key_desc} (phone {owner}), not a key of {mac}", file.display())]
    KeyOfAnotherPhone {
        /// The file.
        file: PathBuf,
        /// The KeyDesc of its header.
        key_desc: polyseal_crypto::KeyDesc,
        /// The phone whose key it is.
        owner: Mac,
        /// The phone named.
        mac: Mac,
    },
    /// An encrypted file's header names no KeyDesc and no phone was named.
    #[error("{}: header names no KeyDesc; say which phone's key with --mac", file.display())]
    NoKeyDescNoMac {
        /// The file.
        file: PathBuf,
    },
    /// `rotate start` for a phone with no active key.
    #[error("{mac} has no active key to rotate from")]
    NothingToRotate {
        /// The phone.
        mac: Mac,
    },
    /// `rotate start` for a phone already rotating.
    #[error("{mac}: a rotation is already under way ({step})")]
    RotationUnderWay {
        /// The phone.
        mac: Mac,
        /// Where it stands.
        step: RotationStep,
    },
    /// `rotate confirm` named no phone and gave no uploads.
    #[error("name the phones to confirm, or give --uploads DIR")]
    NothingNamedToConfirm,
    /// `rotate confirm` for a phone that is not rotating.
    #[error("{mac}: nothing to confirm ({step})")]
    NothingToConfirm {
        /// The phone.
        mac: Mac,
        /// Where it stands.
        step: RotationStep,
    },
    /// No phone uploaded a file encrypted under a key of its own: nothing shows the layout.
    #[error(
        "{dir}: no phone has uploaded an override file encrypted under its own key ({}), so \
         nothing shows the layout its firmware uses",
        crate::count(*plaintext, "plaintext upload")
    )]
    NoEncryptedUpload {
        /// The uploads directory.
        dir: PathBuf,
        /// How many uploads were in plaintext.
        plaintext: usize,
    },
    /// A phone's encrypted upload fits no layout under its key.
    #[error(
        "{file}: fits no layout under its phone's key (`polyseal format probe` says how far each got)"
    )]
    NoLayoutFits {
        /// The upload.
        file: PathBuf,
    },
    /// Each upload fits a layout, but no one layout fits them all.
    #[error(
        "{}: fits no layout that {} fits: these phones' firmware encrypts in different layouts",
        other.display(),
        first.display()
    )]
    UploadsDisagree {
        /// The first upload, which fits a layout with all before `other`.
        first: PathBuf,
        /// The upload that fits none of the layouts the ones before it fit.
        other: PathBuf,
    },
    /// Several layouts fit every upload.
    #[error("{} layouts fit every upload: {}", layouts.len(), layouts.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    SeveralLayoutsFit {
        /// They.
        layouts: Vec<polyseal_crypto::Layout>,
    },
    /// `rollout start` while a rollout is under way.
    #[error("a rollout is under way ({} advanced)", crate::count(*waves, "wave"))]
    RolloutUnderWay {
        /// Waves advanced so far.
        waves: usize,
    },
    /// A canary named is not a phone of the fleet being published.
    #[error("{mac}: not a phone of the fleet, so it cannot be a canary")]
    CanaryNotInFleet {
        /// The phone.
        mac: Mac,
    },
    /// The fleet has no phone.
    #[error("the fleet has no phone to roll out to")]
    NoPhoneToRollOut,
    /// A phone's configuration does not make it upload encrypted: no phone could show the
    /// layout, and its uploads would stay plaintext.
    #[error(
        "{mac}: {}",
        match set_in {
            Some((file, position, value)) => format!(
                "{}:{position} sets sec.encryption.upload.overrides to {value:?}, not \"1\", so \
                 the phone uploads in plaintext and shows no layout",
                file.display()
            ),
            None => "no file it reads sets sec.encryption.upload.overrides=\"1\", so it uploads \
                     in plaintext and shows no layout"
                .to_owned(),
        }
    )]
    UploadsNotEncrypted {
        /// The phone.
        mac: Mac,
        /// The file and place that set it otherwise, and the value.
        set_in: Option<(PathBuf, Position, String)>,
        /// A shared file the phone reads, to add the line to.
        shared: Option<PathBuf>,
    },
    /// No rollout is under way.
    #[error("no rollout is under way")]
    NoRollout,
    /// `rollout advance` when every phone is taken.
    #[error("the rollout is complete: every phone's files are encrypted")]
    RolloutComplete,
    /// `rollout advance` before a layout was confirmed for the rollout.
    #[error(
        "no layout is confirmed for this rollout (the vault's is {layout}): encrypted in a \
         layout no phone has shown, every phone of the wave could loop"
    )]
    LayoutNotConfirmed {
        /// The vault's layout.
        layout: polyseal_crypto::Layout,
    },
    /// A phone of an advanced wave is in a reboot loop: the rollout is halted.
    #[error("the rollout is halted: {mac} is in a reboot loop ({detail})")]
    RolloutHalted {
        /// The phone.
        mac: String,
        /// What `status` says of it.
        detail: String,
    },
    /// A phone of the last wave has not settled on its encrypted files.
    #[error(
        "wave {wave} has not settled: {} waiting; {mac} {why}",
        crate::count(*waiting, "phone")
    )]
    WaveNotSettled {
        /// The wave.
        wave: usize,
        /// How many of its phones have not settled.
        waiting: usize,
        /// The first of them.
        mac: String,
        /// Why it has not.
        why: String,
    },
    /// Uploads asked to be read during a rollout with no layout confirmed.
    #[error(
        "the phones' uploads cannot be read yet: no layout is confirmed for the rollout (the \
         vault's is {layout}), and phones encrypt their uploads in their firmware's layout"
    )]
    UploadsLayoutUnconfirmed {
        /// The vault's layout.
        layout: polyseal_crypto::Layout,
    },
    /// `rollout start --canary-count` larger than the fleet.
    #[error(
        "--canary-count {count} is more than the fleet's {}",
        crate::count(*fleet, "phone")
    )]
    TooManyCanaries {
        /// The count asked for.
        count: usize,
        /// The phones of the fleet.
        fleet: usize,
    },
    /// `rollout advance --waive` of a phone that cannot be waived.
    #[error("{mac} cannot be waived: {why}")]
    CannotWaive {
        /// The phone.
        mac: Mac,
        /// Why not.
        why: String,
    },
    /// `rollout advance` while the published tree does not show the last wave.
    #[error(
        "wave {wave} is not in the published tree: the rollout changed after the last publish, \
         so its phones are still served the files of before"
    )]
    TreeNotPublished {
        /// The last wave.
        wave: usize,
    },
    /// `rollout abort` with no wave advanced.
    #[error("no wave to abort: every phone's per-phone files are already served in plaintext")]
    NothingToAbort,
    /// `rotate finish` for a phone not confirmed.
    #[error("{mac}: cannot finish ({step})")]
    CannotFinish {
        /// The phone.
        mac: Mac,
        /// Where it stands.
        step: RotationStep,
    },
}

impl Error {
    /// An I/O failure on `path` while doing `action`.
    pub(crate) fn io(
        path: &std::path::Path,
        action: &'static str,
        source: std::io::Error,
    ) -> Error {
        Error::Io {
            path: path.to_owned(),
            action,
            source,
        }
    }

    /// `Ok` for no refusal, the refusal for one, [`Error::Refusals`] for several.
    pub(crate) fn refusals(mut refusals: Vec<Error>) -> Result<(), Error> {
        match refusals.len() {
            0 => Ok(()),
            1 => Err(refusals.remove(0)),
            _ => Err(Error::Refusals(refusals)),
        }
    }

    /// A crypto failure about `path`.
    pub(crate) fn crypto(path: &std::path::Path, source: polyseal_crypto::Error) -> Error {
        Error::Crypto {
            path: path.to_owned(),
            source,
        }
    }
}

/// " (and N more: file:line:column parameter, …)" after the first secret.
fn others_list(others: &[polyseal_provision::Finding]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let places: Vec<String> = others
        .iter()
        .map(|f| format!("{}:{} {}", f.file.display(), f.position, f.parameter))
        .collect();
    format!(" (and {} more: {})", others.len(), places.join(", "))
}

/// Each refusal on a line of its own.
fn refusal_lines(refusals: &[Error]) -> String {
    let lines: Vec<String> = refusals.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// " (and N more not well-formed: file:line:column, …)" after the first.
fn malformed_list(others: &[polyseal_provision::Error]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let places: Vec<String> = others
        .iter()
        .map(|error| match error {
            polyseal_provision::Error::Xml { path, position, .. } => {
                format!("{}:{position}", path.display())
            }
            other => other.to_string(),
        })
        .collect();
    format!(
        " (and {} more not well-formed: {})",
        others.len(),
        places.join(", ")
    )
}

/// Paths, comma-separated.
fn list(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    names.join(", ")
}

/// " (and N more)" after the first of several.
fn and_more(more: usize) -> String {
    if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    }
}

/// The OS error without Rust's " (os error N)" suffix.
fn os_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
