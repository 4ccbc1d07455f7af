//! The audit's checks: a published tree, the vault's metadata and (optionally) files phones
//! uploaded, compared with what each phone should be served. docs/AUDIT.md describes every
//! finding. Without an identity the audit reads only headers, plaintext files, file modes and
//! the vault's metadata; with one it also opens the keys and decrypts what phones decrypt.

mod cryptoperiods;
mod describe;
mod file_read;
mod key_files;
mod masters;
mod phones;
mod report;
mod tree_files;
mod uploads;
mod vault_files;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::path::Path;

use polyseal_crypto::{KeyDesc, KeyString, Mac};
use polyseal_provision::SourceTree;
use polyseal_vault::{DataKey, Generation, Record, RotationStep, Timestamp, Vault};
use rayon::prelude::*;

use crate::{Clock, Error};

pub use report::{Check, Code, Finding, Report, SCHEMA, Severity};

/// An encrypted file's header ends within this many bytes (polyseal-crypto's limit): reading
/// this much tells whether a file is encrypted and under which KeyDesc.
pub(super) const HEADER_WINDOW: usize = 1024;

/// What to audit.
pub struct AuditRequest<'a> {
    /// The published tree.
    pub tree: &'a SourceTree,
    /// The vault whose keys it should be served under.
    pub vault: &'a Vault,
    /// Phones that should exist besides those the tree names (`--phones`), and its path.
    pub listed: Option<(&'a Path, Vec<Mac>)>,
    /// Directory of files phones uploaded (`--uploads`).
    pub uploads: Option<&'a Path>,
    /// The vault's data key, or why there is none (the identity checks are then skipped).
    pub data_key: Result<DataKey, String>,
    /// When cryptoperiods are judged (`--as-of`); now when `None`.
    pub as_of: Option<Timestamp>,
}

/// Runs every check that can run and reports what it found.
pub fn audit(request: AuditRequest<'_>, clock: &dyn Clock) -> Result<Report, Error> {
    let AuditRequest {
        tree,
        vault,
        listed,
        uploads,
        data_key,
        as_of,
    } = request;
    let now = Timestamp::from_system_time(clock.now());
    let as_of = as_of.unwrap_or(now);
    let mut skipped = BTreeMap::new();
    let mut findings = Vec::new();
    let keys = match data_key {
        Ok(data_key) => {
            let (ring, broken) = phones::open_keys(vault, &data_key);
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

/// Whose key sealed a file, by the KeyDesc in its header.
pub(super) enum Sealer<'v> {
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
pub(super) struct Audit<'a> {
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
                // Files named with a MAC that no master lists are still that phone's here:
                // the phone is there (it uploaded them, or the tree names it), and a master
                // that cannot list them (encrypted, missing) is what the masters check finds.
                let files = tree.phone_files();
                let mut tree_phones = files.by_phone;
                for file in files.unlisted {
                    tree_phones.entry(file.mac).or_default().push(file.path);
                }
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
    fn fleet_checks(&self, as_of: Timestamp) -> Result<Vec<Finding>, Error> {
        let mut findings = self.phones_and_keys();
        findings.extend(self.masters()?);
        findings.extend(self.missing_key_files());
        findings.extend(self.cryptoperiods(as_of));
        findings.extend(self.ouis());
        if cfg!(unix) {
            findings.extend(vault_files::vault_modes(self.vault)?);
        }
        findings.extend(vault_files::event_log(self.vault));
        Ok(findings)
    }

    /// Served phones and every phone of the vault.
    fn all_phones(&self) -> BTreeSet<Mac> {
        let mut phones = self.served.clone();
        phones.extend(self.vault.records().map(Record::mac));
        phones
    }

    fn step(&self, mac: &Mac) -> RotationStep {
        RotationStep::of(self.vault.record(mac))
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
}

// ---- the vault's own files -------------------------------------------------------------
