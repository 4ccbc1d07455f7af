//! The audit's checks: a published tree, the vault's metadata and (optionally) files phones
//! uploaded, compared with what each phone should be served. docs/AUDIT.md describes every
//! finding. Without an identity the audit reads only headers, plaintext files, file modes and
//! the vault's metadata; with one it also opens the keys and decrypts what phones decrypt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::Path;

use polyseal_crypto::{Error as CryptoError, Header, KeyDesc, KeyString, MAX_FILE_SIZE, Mac};
use polyseal_provision::{
    DEFAULT_MASTER, Error as ProvisionError, Exposure, FileReference, FindingKind,
    PHONE_MAC_ADDRESS, PlanIssue, SourceTree, read_bootstrap_file, written_bootstrap_key,
};
use polyseal_vault::{DataKey, Generation, KeyState, Record, Timestamp, Vault};
use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::audit_report::{Check, Code, Finding, Report};
use crate::failure::Failure;
use crate::master_plans::plan_issues;
use crate::rotation::Step;
use crate::uploads::{files_under, uploads_in};

/// An encrypted file's header ends within this many bytes (polyseal-crypto's limit): reading
/// this much tells whether a file is encrypted and under which KeyDesc.
const HEADER_WINDOW: usize = 1024;

/// What to audit.
pub(crate) struct AuditRequest<'a> {
    pub(crate) tree: &'a SourceTree,
    pub(crate) vault: &'a Vault,
    /// Phones that should exist besides those the tree names (`--phones`), and its path.
    pub(crate) listed: Option<(&'a Path, Vec<Mac>)>,
    /// Directory of files phones uploaded (`--uploads`).
    pub(crate) uploads: Option<&'a Path>,
    /// The vault's data key, or why there is none (the identity checks are then skipped).
    pub(crate) data_key: Result<DataKey, String>,
    /// When cryptoperiods are judged (`--as-of`); now when `None`.
    pub(crate) as_of: Option<Timestamp>,
}

/// Runs every check that can run and reports what it found.
pub(crate) fn audit(request: AuditRequest<'_>) -> Result<Report, Failure> {
    let AuditRequest {
        tree,
        vault,
        listed,
        uploads,
        data_key,
        as_of,
    } = request;
    let now = Timestamp::now();
    let as_of = as_of.unwrap_or(now);
    let mut skipped = BTreeMap::new();
    let mut findings = Vec::new();
    let keys = match data_key {
        Ok(data_key) => {
            let (ring, broken) = open_keys(vault, &data_key);
            findings.extend(broken);
            Some(ring)
        }
        Err(reason) => {
            skipped.insert(Check::DecryptedContents, reason);
            None
        }
    };
    if vault.cryptoperiod().is_none() {
        skipped.insert(
            Check::Cryptoperiod,
            "the vault sets no cryptoperiod; polyseal init --cryptoperiod-days sets one".to_owned(),
        );
    }
    if !cfg!(unix) {
        skipped.insert(
            Check::Permissions,
            "file modes are not available on this platform".to_owned(),
        );
    }
    let audit = Audit::new(tree, vault, listed, keys.as_ref());
    let files: Vec<&Path> = tree.files().collect();
    // Reading every file is most of the work; the checks of the vault and the masters run
    // beside it.
    let (per_file, fleet) = rayon::join(
        || {
            files
                .par_iter()
                .map(|relative| audit.check_tree_file(relative))
                .collect::<Result<Vec<_>, _>>()
        },
        || audit.fleet_checks(as_of),
    );
    findings.extend(per_file?.into_iter().flatten());
    findings.extend(fleet?);
    let mut uploaded_files = 0;
    match uploads {
        Some(dir) => {
            let (count, found) = audit.uploads(dir)?;
            uploaded_files = count;
            findings.extend(found);
        }
        None => {
            skipped.insert(Check::Uploads, "no --uploads given".to_owned());
        }
    }

    let mut report = Report::new(tree.root(), vault.dir(), uploads, now, as_of, findings);
    report.skipped = skipped;
    report.phones = audit.all_phones().len();
    report.files = files.len();
    report.uploaded_files = uploaded_files;
    Ok(report)
}

/// Every live key of the vault by KeyDesc, and a finding for each that does not open.
fn open_keys(vault: &Vault, data_key: &DataKey) -> (HashMap<KeyDesc, KeyString>, Vec<Finding>) {
    let generations: Vec<(Mac, u32)> = vault
        .records()
        .flat_map(|r| {
            r.generations()
                .iter()
                .filter(|g| g.state().is_live())
                .map(move |g| (r.mac(), g.number()))
        })
        .collect();
    let opened: Vec<_> = generations
        .par_iter()
        .map(|(mac, number)| (mac, number, vault.open_key(data_key, mac, Some(*number))))
        .collect();
    let mut ring = HashMap::new();
    let mut broken = Vec::new();
    for (mac, number, result) in opened {
        match result {
            Ok(opened) => {
                ring.insert(opened.key.key_desc().clone(), opened.key);
            }
            Err(error) => broken.push(
                Finding::new(
                    Code::VaultKeyBroken,
                    format!("generation {number} does not open: {error}"),
                    "restore the vault from a backup; if the key is lost, rotate the phone \
                     (polyseal rotate start) after re-bootstrapping it",
                )
                .mac(*mac),
            ),
        }
    }
    (ring, broken)
}

/// What a file's first bytes say it is.
enum Content {
    Plaintext,
    Encrypted(Header),
    /// It starts like an encrypted file, but its header is refused.
    BadHeader(CryptoError),
}

impl Content {
    fn is_plaintext(&self) -> bool {
        matches!(self, Content::Plaintext)
    }

    fn of(bytes: &[u8]) -> Content {
        match Header::parse(bytes) {
            Ok(header) => Content::Encrypted(header),
            Err(CryptoError::NotEncrypted) => Content::Plaintext,
            Err(error) => Content::BadHeader(error),
        }
    }
}

/// Whose key sealed a file, by the KeyDesc in its header.
enum Sealer<'v> {
    /// The header names no KeyDesc.
    Unnamed,
    /// The vault has no key of that KeyDesc.
    Unknown(KeyDesc),
    /// A generation of a phone's key.
    Known {
        mac: Mac,
        generation: &'v Generation,
    },
}

/// The state shared by the checks.
struct Audit<'a> {
    tree: &'a SourceTree,
    vault: &'a Vault,
    listed: Option<(&'a Path, Vec<Mac>)>,
    keys: Option<&'a HashMap<KeyDesc, KeyString>>,
    /// The phones the tree names files after, with those files.
    tree_phones: BTreeMap<Mac, Vec<&'a Path>>,
    /// Which phone each of those files belongs to. Keyed by the path's bytes: hashing and
    /// comparing paths component by component costs more than the rest of a lookup, and the
    /// tree spells each path one way.
    owners: HashMap<&'a OsStr, Mac>,
    /// Phones that boot from the tree: those it names files after and those listed.
    served: BTreeSet<Mac>,
    /// Every KeyDesc of the vault, with its phone and generation.
    key_descs: HashMap<&'a KeyDesc, (Mac, &'a Generation)>,
}

impl<'a> Audit<'a> {
    fn new(
        tree: &'a SourceTree,
        vault: &'a Vault,
        listed: Option<(&'a Path, Vec<Mac>)>,
        keys: Option<&'a HashMap<KeyDesc, KeyString>>,
    ) -> Audit<'a> {
        let ((tree_phones, owners), key_descs) = rayon::join(
            || {
                let tree_phones = tree.phones();
                let owners = tree_phones
                    .iter()
                    .flat_map(|(mac, files)| files.iter().map(move |f| (f.as_os_str(), *mac)))
                    .collect();
                (tree_phones, owners)
            },
            || {
                vault
                    .records()
                    .flat_map(|r| {
                        r.generations()
                            .iter()
                            .map(move |g| (g.key_desc(), (r.mac(), g)))
                    })
                    .collect()
            },
        );
        let listed_macs = listed.iter().flat_map(|(_, macs)| macs.iter().copied());
        let served = tree_phones.keys().copied().chain(listed_macs).collect();
        Audit {
            tree,
            vault,
            listed,
            keys,
            tree_phones,
            owners,
            served,
            key_descs,
        }
    }

    /// The checks of the phones, the vault and the masters: everything but the files.
    fn fleet_checks(&self, as_of: Timestamp) -> Result<Vec<Finding>, Failure> {
        let mut findings = self.phones_and_keys();
        findings.extend(self.masters()?);
        findings.extend(self.missing_key_files());
        findings.extend(self.cryptoperiods(as_of));
        findings.extend(self.ouis());
        if cfg!(unix) {
            findings.extend(vault_modes(self.vault)?);
        }
        findings.extend(event_log(self.vault));
        Ok(findings)
    }

    /// Served phones and every phone of the vault.
    fn all_phones(&self) -> BTreeSet<Mac> {
        let mut phones = self.served.clone();
        phones.extend(self.vault.records().map(Record::mac));
        phones
    }

    fn step(&self, mac: &Mac) -> Step {
        Step::of(self.vault.record(mac))
    }

    fn sealer(&self, key_desc: Option<&KeyDesc>) -> Sealer<'a> {
        let Some(desc) = key_desc else {
            return Sealer::Unnamed;
        };
        match self.key_descs.get(desc) {
            Some(&(mac, generation)) => Sealer::Known { mac, generation },
            None => Sealer::Unknown(desc.clone()),
        }
    }

    /// The hint shared by every finding that republishing fixes.
    fn republish(&self) -> String {
        format!(
            "republish the tree from its source: polyseal publish --src SRC --out {}",
            self.tree.root().display()
        )
    }

    // ---- phones and keys ---------------------------------------------------------------

    fn phones_and_keys(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for mac in &self.served {
            if self.step(mac) != Step::NoKey {
                continue;
            }
            // Where the phone was learnt from: its first file in the tree, or the phones list.
            let (file, known_from) = match self.tree_phones.get(mac).and_then(|f| f.first()) {
                Some(file) => (Some(self.tree.path_of(file)), "has files in the tree"),
                None => (
                    self.listed.as_ref().map(|(p, _)| p.to_path_buf()),
                    "is in the phones list",
                ),
            };
            let generations = self
                .vault
                .record(mac)
                .map(describe_generations)
                .map_or_else(String::new, |g| format!(" (its keys: {g})"));
            let mut finding = Finding::new(
                Code::PhoneWithoutKey,
                format!(
                    "the phone {known_from}, but the vault has no active key for it{generations}: \
                     it cannot read encrypted files"
                ),
                format!(
                    "{} (it makes the key and the bootstrap file), or polyseal keys add {mac}",
                    self.republish()
                ),
            )
            .mac(*mac);
            finding.file = file;
            findings.push(finding);
        }
        for record in self.vault.records() {
            let live = record.generations().iter().any(|g| g.state().is_live());
            if live && !self.served.contains(&record.mac()) {
                let mac = record.mac();
                let listed = if self.listed.is_some() {
                    "and not in the phones list"
                } else {
                    "(no phones list given with --phones)"
                };
                findings.push(
                    Finding::new(
                        Code::KeyWithoutPhone,
                        format!(
                            "the vault holds live keys ({}) for a phone with no files in the \
                             tree {listed}",
                            describe_generations(record)
                        ),
                        format!(
                            "if the phone is retired, polyseal keys state {mac} deactivated (then \
                             destroyed once no file needs it); otherwise publish its files or \
                             list it with --phones"
                        ),
                    )
                    .mac(mac),
                );
            }
        }
        findings
    }

    /// Served phones with a key but no key file in the tree.
    fn missing_key_files(&self) -> Vec<Finding> {
        let pattern = self.tree.key_file_pattern();
        self.served
            .iter()
            .copied()
            .filter(|mac| self.step(mac) != Step::NoKey)
            .filter_map(|mac| {
                let reference = pattern.reference(&mac);
                let relative = reference.tree_path()?;
                // A key file named after its phone is one of the phone's files; only other
                // names need the tree's slower lookup.
                let present =
                    self.owners.contains_key(relative.as_os_str()) || self.tree.contains(relative);
                (!present).then(|| {
                    Finding::new(
                        Code::KeyFileMissing,
                        "the phone's key file is missing: a phone that does not hold its key yet \
                         (new or factory-reset) cannot read its encrypted files and reboots",
                        self.republish(),
                    )
                    .mac(mac)
                    .file(self.tree.path_of(relative))
                })
            })
            .collect()
    }

    // ---- files of the tree -------------------------------------------------------------

    /// Every check of one file of the tree.
    fn check_tree_file(&self, relative: &Path) -> Result<Vec<Finding>, Failure> {
        match self.tree.exposure(relative, true) {
            Exposure::Master => self.check_master_file(relative),
            Exposure::KeyFile => self.check_key_file(relative),
            Exposure::PerPhoneEncrypted => self.check_per_phone_file(relative),
            _ => self.check_shared_file(relative),
        }
    }

    fn check_master_file(&self, relative: &Path) -> Result<Vec<Finding>, Failure> {
        let path = self.tree.path_of(relative);
        // A phone's own master (`<mac>.cfg`) is that phone's; 000000000000.cfg is everyone's.
        let mac = self.owners.get(relative.as_os_str()).copied();
        let file = read_file(&path, Content::is_plaintext)?;
        // An encrypted master is reported by the masters check.
        Ok(match file.content {
            Content::Plaintext => self.scan(&path, &file.bytes, Exposure::Master, mac),
            _ => Vec::new(),
        })
    }

    fn check_shared_file(&self, relative: &Path) -> Result<Vec<Finding>, Failure> {
        // Firmware, images and the like are not configuration: phones never decrypt them.
        if !is_config(relative) {
            return Ok(Vec::new());
        }
        let path = self.tree.path_of(relative);
        let file = read_file(&path, Content::is_plaintext)?;
        Ok(match file.content {
            Content::Plaintext => self.scan(&path, &file.bytes, Exposure::Shared, None),
            Content::Encrypted(header) => vec![
                Finding::new(
                    Code::SharedFileEncrypted,
                    format!(
                        "encrypted ({}), but it names no phone, so every phone fetches it: \
                         phones without that key cannot read it and reboot",
                        describe_key_desc(header.key_desc())
                    ),
                    "serve it in plaintext and move any secret in it to per-phone files",
                )
                .file(path),
            ],
            Content::BadHeader(error) => vec![bad_header(&path, None, &error)],
        })
    }

    fn check_per_phone_file(&self, relative: &Path) -> Result<Vec<Finding>, Failure> {
        let path = self.tree.path_of(relative);
        let mac = self.owners.get(relative.as_os_str()).copied();
        let config = is_config(relative);
        // Without the vault's keys an encrypted file's header is all there is to check.
        let file = read_file(&path, |c| {
            config && (c.is_plaintext() || self.keys.is_some())
        })?;
        let mut findings = Vec::new();
        let key_change = mac.map(|m| self.step(&m)).filter(|step| {
            step.serves_plaintext(self.vault.key_timing()) && file.loose_mode().is_none()
        });
        let FileRead { bytes, content, .. } = file;
        match content {
            Content::Plaintext if key_change.is_some() => {
                findings.extend(key_change.map(|step| key_change_finding(step, mac, &path)));
                if config {
                    findings.extend(self.scan(&path, &bytes, Exposure::PerPhoneEncrypted, mac));
                }
            }
            Content::Plaintext => {
                findings.push(
                    Finding::new(
                        Code::PerPhoneFilePlaintext,
                        "a per-phone file served in plaintext: anyone who asks for it reads it",
                        self.republish(),
                    )
                    .mac(mac)
                    .file(&path),
                );
                if config {
                    findings.extend(self.scan(&path, &bytes, Exposure::PerPhonePlaintext, mac));
                }
            }
            Content::BadHeader(error) => findings.push(bad_header(&path, mac, &error)),
            Content::Encrypted(header) => {
                findings.extend(self.check_file_key(mac, &header, &path));
                if config {
                    findings.extend(self.check_decrypted(mac, &header, &path, &bytes));
                }
            }
        }
        Ok(findings)
    }

    /// Whether a per-phone file of `mac` is sealed under the generation its phone is served.
    fn check_file_key(&self, mac: Option<Mac>, header: &Header, path: &Path) -> Option<Finding> {
        let (code, message) = match self.sealer(header.key_desc()) {
            Sealer::Unnamed => (
                Code::FileUnknownKey,
                "the header names no KeyDesc, so nothing tells which key sealed it".to_owned(),
            ),
            Sealer::Unknown(desc) => (
                Code::FileUnknownKey,
                format!("encrypted under KeyDesc {desc}, which is not in the vault"),
            ),
            Sealer::Known {
                mac: sealer,
                generation,
            } => {
                let mac = mac?;
                let desc = generation.key_desc();
                if sealer != mac {
                    (
                        Code::FileOtherPhonesKey,
                        format!(
                            "encrypted under {desc}, a key of phone {sealer}: {mac} cannot read it \
                             and reboots"
                        ),
                    )
                } else {
                    let step = self.step(&mac);
                    let expected = step.files_generation()?;
                    if generation.number() == expected {
                        return None;
                    }
                    (
                        Code::FileWrongGeneration,
                        format!(
                            "encrypted under {desc} (generation {}, {}), but the phone's files \
                             belong under generation {expected} ({step})",
                            generation.number(),
                            generation.state()
                        ),
                    )
                }
            }
        };
        Some(
            Finding::new(code, message, self.republish())
                .mac(mac)
                .file(path),
        )
    }

    /// With the vault's keys: decrypts an encrypted configuration file as its phone would and
    /// scans what it says.
    fn check_decrypted(
        &self,
        mac: Option<Mac>,
        header: &Header,
        path: &Path,
        bytes: &[u8],
    ) -> Vec<Finding> {
        // An unknown KeyDesc, or a destroyed key, is reported by the header check.
        let Some((desc, key)) = header
            .key_desc()
            .and_then(|desc| Some((desc, self.keys?.get(desc)?)))
        else {
            return Vec::new();
        };
        match polyseal_crypto::decrypt(bytes, key) {
            Ok(plaintext) => self.scan(path, &plaintext, Exposure::PerPhoneEncrypted, mac),
            Err(error) => vec![
                Finding::new(
                    Code::FileDoesNotDecrypt,
                    format!(
                        "does not decrypt with {desc}, the key its header names: {error}; a phone \
                         holding that key reboots on it"
                    ),
                    self.republish(),
                )
                .mac(mac)
                .file(path),
            ],
        }
    }

    /// Scans a plaintext configuration file for secrets, given who can read it.
    fn scan(
        &self,
        path: &Path,
        bytes: &[u8],
        exposure: Exposure,
        mac: Option<Mac>,
    ) -> Vec<Finding> {
        match polyseal_provision::scan(path, bytes, exposure) {
            Ok(found) => found
                .iter()
                .map(|finding| {
                    let at = format!(
                        "{} ({}) at {}",
                        finding.parameter, finding.secret, finding.position
                    );
                    let (code, message) = match finding.kind {
                        FindingKind::SecretInMaster => (
                            Code::SecretInMaster,
                            format!(
                                "{at}: a master file is never encrypted and every phone fetches it"
                            ),
                        ),
                        FindingKind::SecretInSharedFile => (
                            Code::SecretInSharedFile,
                            format!("{at}: a shared file is served in plaintext to every phone"),
                        ),
                        FindingKind::WeakSipPassword(weakness) => (
                            Code::WeakSipPassword,
                            format!(
                                "{at}: {weakness}, easy to guess; an encrypted file's unkeyed \
                                 digest lets anyone with the file test guesses offline"
                            ),
                        ),
                        _ => (
                            Code::SecretInPlaintextFile,
                            format!("{at}: served in plaintext"),
                        ),
                    };
                    Finding::new(code, message, finding.hint())
                        .mac(mac)
                        .file(path)
                })
                .collect(),
            Err(error) => vec![
                Finding::new(
                    Code::FileMalformed,
                    without_path(&error.to_string(), path),
                    "fix the file: phones cannot read it",
                )
                .mac(mac)
                .file(path),
            ],
        }
    }

    // ---- key files ---------------------------------------------------------------------

    fn check_key_file(&self, relative: &Path) -> Result<Vec<Finding>, Failure> {
        let path = self.tree.path_of(relative);
        let mac = self.owners.get(relative.as_os_str()).copied();
        let file = read_file(&path, |_| true)?;
        let mut findings = Vec::new();
        if let Some(mode) = file.loose_mode() {
            findings.push(
                Finding::new(
                    Code::KeyFileReadable,
                    format!("mode {mode:04o}: readable by group or others, and it carries a key"),
                    format!(
                        "chmod 600 {} (polyseal publish writes key files 0600)",
                        path.display()
                    ),
                )
                .mac(mac)
                .file(&path),
            );
        }
        match &file.content {
            Content::Plaintext => match read_key_file(&path, &file.bytes) {
                Ok((key, as_written)) => {
                    findings.extend(mac.and_then(|mac| self.check_delivered_key(mac, &path, &key)));
                    // A key file exactly as polyseal writes it carries the key and nothing
                    // else; any other is scanned for secrets besides the key.
                    if !as_written {
                        findings.extend(self.scan(&path, &file.bytes, Exposure::KeyFile, mac));
                    }
                }
                Err(error) => findings.push(
                    Finding::new(
                        Code::KeyFileInvalid,
                        without_path(&error.to_string(), &path),
                        self.republish(),
                    )
                    .mac(mac)
                    .file(&path),
                ),
            },
            Content::BadHeader(error) => findings.push(bad_header(&path, mac, error)),
            Content::Encrypted(header) => {
                findings.extend(mac.and_then(|mac| self.encrypted_key_file(mac, &path, header)));
            }
        }
        Ok(findings)
    }

    /// The generation `mac`'s key file should carry: the one it is served (docs/ROTATION.md:
    /// the active one, or during a rotation the next one).
    fn served_generation(&self, mac: Mac) -> Option<(Step, &'a Generation)> {
        let step = self.step(&mac);
        let generation = self
            .vault
            .record(&mac)?
            .generation(step.files_generation()?)?;
        Some((step, generation))
    }

    /// A key file must be a plaintext bootstrap file: a phone without the key could not read
    /// an encrypted one.
    fn encrypted_key_file(&self, mac: Mac, path: &Path, header: &Header) -> Option<Finding> {
        let (_, expected) = self.served_generation(mac)?;
        Some(
            Finding::new(
                Code::KeyFileWrongKey,
                format!(
                    "encrypted ({}): a phone that does not hold that key (new, factory-reset or \
                     rotating) cannot read it; it should get the plaintext bootstrap file of {}",
                    describe_key_desc(header.key_desc()),
                    expected.key_desc()
                ),
                self.republish(),
            )
            .mac(mac)
            .file(path),
        )
    }

    /// Whether the key a bootstrap file hands `mac` is the generation it is served, by KeyDesc
    /// and fingerprint: no identity needed.
    fn check_delivered_key(&self, mac: Mac, path: &Path, key: &KeyString) -> Option<Finding> {
        let (step, expected) = self.served_generation(mac)?;
        let fingerprint = key.key().fingerprint();
        if key.key_desc() == expected.key_desc() && fingerprint == expected.fingerprint() {
            return None;
        }
        Some(
            Finding::new(
                Code::KeyFileWrongKey,
                format!(
                    "hands the phone {} (fingerprint {fingerprint}), but it is served generation \
                     {} ({step}): {} (fingerprint {})",
                    key.key_desc(),
                    expected.number(),
                    expected.key_desc(),
                    expected.fingerprint()
                ),
                self.republish(),
            )
            .mac(mac)
            .file(path),
        )
    }

    // ---- master files ------------------------------------------------------------------

    /// The master-file problems of the served phones' fetch plans, each said once
    /// ([`plan_issues`] makes only as many plans as that takes).
    fn masters(&self) -> Result<Vec<Finding>, Failure> {
        let phones: Vec<Mac> = self.served.iter().copied().collect();
        let mut findings = BTreeSet::new();
        for (mac, issue) in plan_issues(self.tree, &phones)? {
            // A phone without any master is reported once, below, as the missing master.
            if !matches!(issue, PlanIssue::NoMaster) {
                findings.extend(self.plan_issue(&mac, &issue));
            }
        }
        for mac in phones
            .iter()
            .filter(|m| self.tree.has_phone_file_not_master(m))
        {
            findings.insert(
                Finding::new(
                    Code::PhoneFileNotMaster,
                    "phones request <mac>.cfg first, as their master file, but this one is a \
                     configuration file",
                    "rename it (for example to <mac>-sip.cfg) and list it in CONFIG_FILES",
                )
                .mac(*mac)
                .file(self.tree.path_of(Path::new(&format!("{mac}.cfg")))),
            );
        }
        let without_own_master = phones.iter().any(|m| self.tree.phone_master(m).is_none());
        if self.tree.default_master().is_none() && (phones.is_empty() || without_own_master) {
            findings.insert(
                Finding::new(
                    Code::MasterMissing,
                    format!(
                        "the tree has no {DEFAULT_MASTER}: phones without a <mac>.cfg master of \
                         their own have nothing to boot from"
                    ),
                    format!("add the master file {DEFAULT_MASTER} (never encrypted)"),
                )
                .file(self.tree.path_of(Path::new(DEFAULT_MASTER))),
            );
        }
        Ok(findings.into_iter().collect())
    }

    /// The finding for one issue of `mac`'s plan, worded for every phone of its master.
    fn plan_issue(&self, mac: &Mac, issue: &PlanIssue) -> Option<Finding> {
        let master = || self.tree.master_for(mac).map(|m| m.path().to_owned());
        let own_master = self.tree.phone_master(mac).map(|_| *mac);
        // The entry as the master spells it, not as this phone requests it.
        let unexpanded = |reference: &FileReference| {
            reference
                .to_string()
                .replace(&mac.to_string(), PHONE_MAC_ADDRESS)
        };
        Some(match issue {
            PlanIssue::MasterEncrypted { path, key_desc } => Finding::new(
                Code::MasterEncrypted,
                format!(
                    "the master file is encrypted ({}): phones cannot read an encrypted master \
                     and reboot again and again",
                    describe_key_desc(key_desc.as_ref())
                ),
                "replace it with the plaintext master file; a master is never encrypted",
            )
            .mac(own_master)
            .file(path),
            PlanIssue::KeyFileNotListed {
                master,
                attribute,
                position,
                ..
            } => {
                let pattern = self.tree.key_file_pattern().as_str();
                Finding::new(
                    Code::KeyFileNotListed,
                    format!(
                        "{attribute} at {position} does not list the key file {pattern}: phones \
                         never fetch their key and cannot read their encrypted files"
                    ),
                    format!("add {pattern} to {attribute}, first in the list"),
                )
                .mac(own_master)
                .file(master)
            }
            PlanIssue::OtherPhonesFile {
                attribute,
                reference,
                owner,
            } => Finding::new(
                Code::ListedFileOfOtherPhone,
                format!(
                    "{attribute} lists {}, named after phone {owner}: every phone of this master \
                     fetches it, and only {owner} can read it once encrypted",
                    unexpanded(reference)
                ),
                format!(
                    "write [PHONE_MAC_ADDRESS] instead of the MAC, or give {owner} a master of \
                     its own"
                ),
            )
            .mac(*owner)
            .file(master()?),
            PlanIssue::NotInTree {
                attribute,
                reference,
            } => Finding::new(
                Code::ListedFileNotInTree,
                format!(
                    "{attribute} lists {}, which is not in the tree: polyseal can neither check \
                     nor encrypt it",
                    unexpanded(reference)
                ),
                "make sure the server it comes from protects any secret in it",
            )
            .file(master()?),
            // `NoMaster` and `PhoneFileNotMaster` are reported by `masters` for every phone;
            // issues added to the library later get a code of their own before they are.
            _ => return None,
        })
    }

    // ---- keys' age and phones' makers ----------------------------------------------------

    fn cryptoperiods(&self, as_of: Timestamp) -> Vec<Finding> {
        let Some(period) = self.vault.cryptoperiod() else {
            return Vec::new();
        };
        self.vault
            .records()
            .filter_map(|record| {
                let active = record.active()?;
                let since = active.since(KeyState::Active).unwrap_or(active.created());
                let end = period.end(since);
                if as_of <= end {
                    return None;
                }
                let mac = record.mac();
                let tree = self.tree.root().display();
                let (rotating, fix) = match self.step(&mac).next_generation() {
                    Some(next) => (
                        format!(" (rotation to generation {next} under way)"),
                        format!(
                            "finish the rotation: polyseal rotate confirm {mac} once it uploads \
                             under generation {next}, then polyseal rotate finish {mac} --src SRC \
                             --out {tree}"
                        ),
                    ),
                    None => (
                        String::new(),
                        format!(
                            "rotate it: polyseal rotate start {mac} --src SRC --out {tree}, then \
                             confirm and finish"
                        ),
                    ),
                };
                Some(
                    Finding::new(
                        Code::KeyPastCryptoperiod,
                        format!(
                            "generation {} ({}) active since {since}: its {}-day cryptoperiod \
                             ended {end}{rotating}",
                            active.number(),
                            active.key_desc(),
                            period.days()
                        ),
                        fix,
                    )
                    .mac(mac),
                )
            })
            .collect()
    }

    fn ouis(&self) -> Vec<Finding> {
        self.all_phones()
            .into_iter()
            .filter(|mac| !mac.is_polycom_oui())
            .map(|mac| {
                let [a, b, c] = mac.oui();
                Finding::new(
                    Code::NonPolycomOui,
                    format!(
                        "OUI {a:02X}-{b:02X}-{c:02X} is not a Polycom/Poly OUI (00-04-F2, \
                         64-16-7F, 48-25-67)"
                    ),
                    "check the MAC for a typo; a phone of another maker needs nothing",
                )
                .mac(mac)
            })
            .collect()
    }

    // ---- uploads -----------------------------------------------------------------------

    /// The uploaded override and directory files under `dir`: how many, and what they show.
    fn uploads(&self, dir: &Path) -> Result<(usize, Vec<Finding>), Failure> {
        let uploads = uploads_in(dir)?;
        let findings: Vec<Vec<Finding>> = uploads
            .par_iter()
            .map(|(mac, path)| self.check_upload(*mac, path))
            .collect::<Result<_, _>>()?;
        Ok((uploads.len(), findings.into_iter().flatten().collect()))
    }

    /// An uploaded file's header shows the key its phone holds: its active generation, or
    /// during a rotation either that one or the next.
    fn check_upload(&self, mac: Mac, path: &Path) -> Result<Vec<Finding>, Failure> {
        let header = match read_file(path, |_| false)?.content {
            Content::Encrypted(header) => header,
            Content::BadHeader(error) => return Ok(vec![bad_header(path, Some(mac), &error)]),
            Content::Plaintext if self.step(&mac).serves_plaintext(self.vault.key_timing()) => {
                return Ok(vec![key_change_finding(self.step(&mac), Some(mac), path)]);
            }
            Content::Plaintext => {
                return Ok(vec![
                    Finding::new(
                        Code::UploadPlaintext,
                        "uploaded in plaintext: the phone does not encrypt what it uploads, and \
                         overrides and directories may carry passwords",
                        "set sec.encryption.upload.overrides=\"1\" and \
                         sec.encryption.upload.dir=\"1\" in a file every phone fetches",
                    )
                    .mac(mac)
                    .file(path),
                ]);
            }
        };
        let step = self.step(&mac);
        // During a rotation the phone holds the old key until it boots with the new one.
        let expected: Vec<u32> = step
            .active_generation()
            .into_iter()
            .chain(step.next_generation())
            .collect();
        let message = match self.sealer(header.key_desc()) {
            Sealer::Known {
                mac: holder,
                generation,
            } if holder == mac => {
                if expected.contains(&generation.number()) {
                    return Ok(Vec::new());
                }
                format!(
                    "uploaded under {} (generation {}, {}): the phone holds a key it is not \
                     served under ({step})",
                    generation.key_desc(),
                    generation.number(),
                    generation.state()
                )
            }
            Sealer::Known {
                mac: holder,
                generation,
            } => format!(
                "uploaded under {}, a key of phone {holder}: the phone was handed another \
                 phone's key",
                generation.key_desc()
            ),
            Sealer::Unknown(desc) => {
                format!("uploaded under KeyDesc {desc}, which is not in the vault")
            }
            Sealer::Unnamed => "uploaded under a key its header does not name".to_owned(),
        };
        Ok(vec![
            Finding::new(
                Code::UploadWrongKey,
                message,
                format!(
                    "hand the phone its key again: serve its bootstrap file ({}) and reboot it",
                    self.tree.key_file_pattern().file_name(&mac)
                ),
            )
            .mac(mac)
            .file(path),
        ])
    }
}

// ---- the vault's own files -------------------------------------------------------------

/// The vault's files that hold key material (`data-key.age`, `keys/*`) readable by group or
/// others. The identity file is the operator's, not the vault's.
fn vault_modes(vault: &Vault) -> Result<Vec<Finding>, Failure> {
    let mut files = vec![vault.dir().join("data-key.age")];
    let mut keys = files_under(&vault.dir().join("keys"))?;
    keys.sort();
    files.extend(keys);
    let mut findings = Vec::new();
    for path in files.iter().filter(|p| p.exists()) {
        let metadata = fs::metadata(path).map_err(|e| Failure::io(path, "read", &e))?;
        let mode = permission_bits(&metadata);
        if mode & 0o077 != 0 {
            findings.push(
                Finding::new(
                    Code::VaultFileReadable,
                    format!(
                        "mode {mode:04o}: readable by group or others, and it holds sealed key \
                         material"
                    ),
                    format!(
                        "chmod 600 {} (and chmod 700 the vault directory)",
                        path.display()
                    ),
                )
                .file(path),
            );
        }
    }
    Ok(findings)
}

/// A per-phone or uploaded file of `mac` in plaintext while the phone, at `step`, takes a new
/// key on a next-boot fleet: expected, and said so.
fn key_change_finding(step: Step, mac: Option<Mac>, path: &Path) -> Finding {
    let next = step.next_generation().unwrap_or_default();
    Finding::new(
        Code::PlaintextDuringKeyChange,
        format!(
            "in plaintext while the phone takes g{next}: under either key it would fail one of \
             the phone's two boots (key timing next-boot)"
        ),
        format!(
            "confirm the phone (polyseal rotate confirm --uploads DIR) and finish the rotation: \
             its files are then encrypted under g{next}"
        ),
    )
    .mac(mac)
    .file(path)
}

/// The event log's verification, as `polyseal log verify` does it.
fn event_log(vault: &Vault) -> Option<Finding> {
    let error = vault.verify().err()?;
    let message = match &error {
        polyseal_vault::Error::VerifyFailed { findings, .. } => {
            let first = findings.first().map_or("", String::as_str);
            match findings.len() {
                0 | 1 => format!("the event log does not verify: {first}"),
                n => format!(
                    "the event log does not verify: {first} (and {} more)",
                    n - 1
                ),
            }
        }
        other => format!("the event log cannot be verified: {other}"),
    };
    Some(
        Finding::new(
            Code::EventLogUnverified,
            message,
            "run polyseal log verify for every problem; restore the vault from a backup whose \
             log head matches the one on file, and find out who changed it",
        )
        .file(vault.dir().join("events.log")),
    )
}

// ---- small helpers -----------------------------------------------------------------------

/// A file as the checks see it.
struct FileRead {
    /// Its first kilobyte, or all of it.
    bytes: Zeroizing<Vec<u8>>,
    /// What its first bytes say it is.
    content: Content,
    /// The file's metadata, for its mode.
    metadata: fs::Metadata,
}

impl FileRead {
    /// The mode if group or others may read, write or run the file.
    fn loose_mode(&self) -> Option<u32> {
        let mode = permission_bits(&self.metadata);
        (mode & 0o077 != 0).then_some(mode)
    }
}

/// Reads a file's first bytes, and on to the end (up to polyseal-crypto's size limit) when
/// `whole` says a check needs the content. Most files of a large tree need only their header:
/// one read of a kilobyte. The size comes first (the mode check needs the metadata anyway),
/// so a file shorter than the window takes one read, not a second one to find its end:
/// system calls are most of an audit's time on 200,000 files.
fn read_file(path: &Path, whole: impl FnOnce(&Content) -> bool) -> Result<FileRead, Failure> {
    let io = |e: std::io::Error| Failure::io(path, "read", &e);
    let mut file = fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let size = usize::try_from(metadata.len()).unwrap_or(usize::MAX);
    let mut head = Zeroizing::new([0; HEADER_WINDOW]);
    let wanted = size.min(HEADER_WINDOW);
    let mut filled = 0;
    while filled < wanted {
        match file.read(&mut head[filled..wanted]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    let content = Content::of(&head[..filled]);
    let bytes = if filled == HEADER_WINDOW && whole(&content) {
        // Sized for the whole file up front: a buffer that grows leaves copies of secrets in
        // freed memory.
        let len = size.min(MAX_FILE_SIZE);
        let mut bytes = Zeroizing::new(Vec::with_capacity(len + 1));
        bytes.extend_from_slice(&head[..]);
        (&mut file)
            .take((MAX_FILE_SIZE - HEADER_WINDOW) as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        bytes
    } else {
        Zeroizing::new(head[..filled].to_vec())
    };
    Ok(FileRead {
        bytes,
        content,
        metadata,
    })
}

#[cfg(unix)]
fn permission_bits(metadata: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777
}

/// Without Unix modes nothing is reported (the permissions check is listed as skipped).
#[cfg(not(unix))]
fn permission_bits(_metadata: &fs::Metadata) -> u32 {
    0o600
}

/// Configuration files (`.cfg`, `.xml`), the only ones phones parse and the scanner reads.
fn is_config(relative: &Path) -> bool {
    relative
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("cfg") || e.eq_ignore_ascii_case("xml"))
}

/// A library message about `path` without the leading path: the finding names the file.
fn without_path(message: &str, path: &Path) -> String {
    let prefix = path.display().to_string();
    message
        .strip_prefix(&prefix)
        .map(|rest| rest.trim_start_matches([':', ' ']))
        .unwrap_or(message)
        .to_owned()
}

fn describe_key_desc(key_desc: Option<&KeyDesc>) -> String {
    key_desc.map_or_else(
        || "its header names no KeyDesc".to_owned(),
        |d| format!("KeyDesc {d}"),
    )
}

/// `g1 deactivated, g2 active`.
fn describe_generations(record: &Record) -> String {
    let generations: Vec<String> = record
        .generations()
        .iter()
        .map(|g| format!("g{} {}", g.number(), g.state()))
        .collect();
    generations.join(", ")
}

/// The key a plaintext key file carries, and whether the file is exactly as polyseal writes
/// it (recognised without the XML parser).
fn read_key_file(path: &Path, bytes: &[u8]) -> Result<(KeyString, bool), ProvisionError> {
    match written_bootstrap_key(bytes) {
        Some(key) => Ok((key, true)),
        None => read_bootstrap_file(path, bytes).map(|key| (key, false)),
    }
}

fn bad_header(path: &Path, mac: Option<Mac>, error: &CryptoError) -> Finding {
    Finding::new(
        Code::FileBadHeader,
        format!("starts like an encrypted file, but its header is refused: {error}"),
        "replace it with a file polyseal encrypted (polyseal publish or polyseal encrypt)",
    )
    .mac(mac)
    .file(path)
}
