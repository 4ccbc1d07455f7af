//! What publish refuses before it touches the vault or the tree: trees that would brick
//! phones, and secrets that would be served in plaintext to every phone.

use std::collections::BTreeSet;

use polyseal_crypto::Mac;
use polyseal_provision::{
    Exposure, FindingKind, KeyFilePattern, PHONE_MAC_ADDRESS, PlanIssue, Role, SourceTree,
};
use rayon::prelude::*;

use super::PublishSummary;
use crate::Error;

/// Refuses trees that would brick phones; collects the warnings that would not.
pub(super) fn check_plans(
    tree: &SourceTree,
    macs: &[Mac],
    key_file: &KeyFilePattern,
    summary: &mut PublishSummary,
) -> Result<(), Error> {
    // One lookup per phone, on every core; the first phone in MAC order is the one named.
    let clash = macs.par_iter().find_map_first(|mac| {
        key_file
            .reference(mac)
            .tree_path()
            .filter(|path| tree.contains(path))
            .map(|path| (*mac, tree.path_of(path)))
    });
    if let Some((mac, path)) = clash {
        return Err(Error::KeyFileInSource { path, mac });
    }
    let mut reported = BTreeSet::new();
    for (mac, issue) in tree.plan_issues(macs)? {
        match &issue {
            PlanIssue::NoMaster => {
                return Err(Error::NoMaster {
                    root: tree.root().to_owned(),
                    mac,
                });
            }
            PlanIssue::MasterEncrypted { path, .. } => {
                return Err(Error::MasterEncrypted { path: path.clone() });
            }
            // A phone that never fetches its key, or fetches an encrypted file first, cannot
            // read it and reboots again and again: refused (issue 12).
            PlanIssue::KeyFileNotListed {
                master, attribute, ..
            } => {
                return Err(Error::KeyFileNotListed {
                    master: master.clone(),
                    attribute: attribute.clone(),
                    pattern: key_file.as_str().to_owned(),
                    first: None,
                });
            }
            PlanIssue::KeyFileListedLate {
                master,
                attribute,
                first,
                ..
            } => {
                return Err(Error::KeyFileNotListed {
                    master: master.clone(),
                    attribute: attribute.clone(),
                    pattern: key_file.as_str().to_owned(),
                    first: Some(first.replace(&mac.to_string(), PHONE_MAC_ADDRESS)),
                });
            }
            // A file named after one phone in a list every phone of the master reads: served
            // to all of them, it carries that phone's settings (and, encrypted, loops the
            // others; in plaintext, hands them its password).
            PlanIssue::OtherPhonesFile {
                attribute,
                reference,
                owner,
            } => {
                let master = tree
                    .master_for(&mac)
                    .map_or_else(|| tree.root().to_owned(), |m| m.path().to_owned());
                return Err(Error::OtherPhonesFileListed {
                    master,
                    attribute: attribute.clone(),
                    file: reference.to_string(),
                    owner: *owner,
                });
            }
            other => {
                // The same master problem repeats for every phone: say it once.
                let text = format!("{mac}: {other}");
                if reported.insert(text.clone()) {
                    summary.warnings.push(text);
                }
            }
        }
    }
    Ok(())
}

/// Refuses file names the manifest cannot record (not UTF-8, or holding a line break): the
/// next publish could not tell the file was polyseal's. Phones request names in UTF-8 anyway.
pub(super) fn check_names(tree: &SourceTree) -> Result<(), Error> {
    match tree
        .files()
        .find(|f| f.to_str().is_none_or(|name| name.contains(['\n', '\r'])))
    {
        Some(file) => Err(Error::UnservableName {
            path: tree.path_of(file),
        }),
        None => Ok(()),
    }
}

/// Refuses a master that lists a shared configuration file the tree does not have (a typo
/// such as `sitee.cfg`, a directory, `/etc/passwd` read as a path of the tree): phones would
/// get a 404 and boot without its settings. One phone per master is enough to see every
/// entry, as shared entries name no phone. A phone's own files may be missing for some
/// phones, and the contacts and override files are the phones' to upload: not checked here.
pub(super) fn check_listed_files(tree: &SourceTree, macs: &[Mac]) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for mac in macs {
        let Some(master) = tree.master_for(mac) else {
            continue;
        };
        if !seen.insert(master.path().to_owned()) {
            continue;
        }
        for plan in tree.fetch_plans(mac)? {
            let missing = plan.files.iter().find(|file| {
                file.role == Role::SharedConfig
                    && file.reference.tree_path().is_some()
                    && !file.exists()
            });
            if let Some(file) = missing {
                return Err(Error::ListedFileMissing {
                    master: master.path().to_owned(),
                    list: plan.model.map_or_else(
                        || "CONFIG_FILES".to_owned(),
                        |model| format!("CONFIG_FILES (model {model})"),
                    ),
                    file: file.reference.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Refuses secrets that would be served in plaintext to every phone, unless allowed.
pub(super) fn check_secrets(
    tree: &SourceTree,
    allow: bool,
    summary: &mut PublishSummary,
) -> Result<(), Error> {
    // Per-phone files are scanned as they are encrypted (`render`), when they are read anyway.
    let scan = tree.scan_where(true, |exposure| exposure != Exposure::PerPhoneEncrypted);
    if let Some(error) = scan.errors.into_iter().next() {
        return Err(error.into());
    }
    let mut exposed = Vec::new();
    for finding in scan.findings {
        match finding.kind {
            FindingKind::SecretInMaster | FindingKind::SecretInSharedFile => exposed.push(finding),
            _ => summary
                .warnings
                .push(format!("{finding} ({})", finding.hint())),
        }
    }
    if !allow && !exposed.is_empty() {
        let first = exposed.remove(0);
        return Err(Error::PlaintextSecrets {
            first,
            others: exposed,
        });
    }
    summary.warnings.extend(
        exposed
            .iter()
            .map(|f| format!("{f} (allowed by --allow-plaintext-secrets)")),
    );
    Ok(())
}
