//! What publish refuses before it touches the vault or the tree: trees that would brick
//! phones, and secrets that would be served in plaintext to every phone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;
use polyseal_provision::{
    FileReference, KeyFilePattern, Master, MasterAttribute, PHONE_MAC_ADDRESS, Placeholder,
    PlanIssue, Position, Role, SourceTree, UnlistedFile,
};
use rayon::prelude::*;

use super::PublishSummary;
use super::warnings::{EXAMPLES, and_more};
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
                master,
                attribute,
                position,
                ..
            } => {
                return Err(Error::KeyFileNotListed {
                    master: master.clone(),
                    attribute: attribute.clone(),
                    position: *position,
                    pattern: key_file.as_str().to_owned(),
                    first: None,
                });
            }
            PlanIssue::KeyFileListedLate {
                master,
                attribute,
                position,
                first,
                ..
            } => {
                return Err(Error::KeyFileNotListed {
                    master: master.clone(),
                    attribute: attribute.clone(),
                    position: *position,
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
                let master = tree.master_for(&mac);
                return Err(Error::OtherPhonesFileListed {
                    own_master_of: tree.phone_master(&mac).map(|_| mac),
                    master: master.map_or_else(|| tree.root().to_owned(), |m| m.path().to_owned()),
                    position: master.and_then(|m| attribute_position(m, attribute)),
                    attribute: attribute.clone(),
                    file: reference.to_string(),
                    owner: *owner,
                });
            }
            // A phone's own file: said for that phone.
            PlanIssue::PhoneFileNotMaster { .. } => {
                let text = format!("{mac}: {issue}");
                if reported.insert(text.clone()) {
                    summary.warnings.push(text);
                }
            }
            other => {
                // A master's problem is every phone's of that master: said once, for the
                // master, as the master spells it (only two phones of each are planned).
                let master = tree
                    .master_for(&mac)
                    .map_or_else(|| tree.root().to_owned(), |m| m.path().to_owned());
                let text = format!(
                    "{}: {}",
                    master.display(),
                    other
                        .to_string()
                        .replace(&mac.to_string(), PHONE_MAC_ADDRESS)
                );
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

/// Refuses a master that lists a configuration file the tree does not have (a typo such as
/// `sitee.cfg`, a directory, `/etc/passwd` read as a path of the tree) or that lies outside it
/// (`../identity.txt`): phones would get a 404 and boot without its settings, or polyseal would
/// serve what it never checked. Every such entry is named, the first in full. One phone per
/// master is enough to see every shared entry, as they name no phone; a phone's own files may
/// be missing for some phones, and the contacts and override files are the phones' to upload:
/// not checked here. Returns the shared files the masters list, which phones read as
/// configuration whatever their name.
pub(super) fn check_listed_files(
    tree: &SourceTree,
    macs: &[Mac],
) -> (BTreeSet<PathBuf>, Result<(), Error>) {
    let mut listed = BTreeSet::new();
    let result = listed_files(tree, macs, &mut listed);
    (listed, result)
}

fn listed_files(
    tree: &SourceTree,
    macs: &[Mac],
    listed: &mut BTreeSet<PathBuf>,
) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    let mut refused: Vec<(PathBuf, Position, String, String)> = Vec::new();
    for mac in macs {
        let Some(master) = tree.master_for(mac) else {
            continue;
        };
        if !seen.insert(master.path().to_owned()) {
            continue;
        }
        let Master::Plain(config) = master else {
            continue;
        };
        for plan in tree.fetch_plans(mac)? {
            // Phones without a directory of their own start from the seed beside it
            // (docs/PROVISIONING.md §3): every one of them reads it.
            let seed = plan
                .files
                .iter()
                .filter(|file| file.role == Role::Contacts)
                .filter_map(|file| file.path()?.parent())
                .map(|dir| dir.join(CONTACTS_SEED))
                .filter(|seed| tree.contains(seed));
            listed.extend(seed);
            let list = config.setting(MasterAttribute::ConfigFiles, plan.model.as_deref());
            for file in plan
                .files
                .iter()
                .filter(|file| matches!(file.role, Role::SharedConfig | Role::PerPhoneConfig))
            {
                let outside = matches!(file.reference, FileReference::OutsideTree(_));
                let missing = file.role == Role::SharedConfig
                    && file.reference.tree_path().is_some()
                    && !file.exists();
                if file.role == Role::SharedConfig && !missing {
                    listed.extend(file.path().map(Path::to_path_buf));
                }
                if !(outside || missing) {
                    continue;
                }
                let entry = (
                    master.path().to_owned(),
                    list.map_or(config.position, |l| l.position),
                    list.map_or_else(|| "CONFIG_FILES".to_owned(), |l| l.attribute.clone()),
                    file.reference
                        .to_string()
                        .replace(&mac.to_string(), PHONE_MAC_ADDRESS),
                );
                if !refused.contains(&entry) {
                    refused.push(entry);
                }
            }
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    let (master, position, list, file) = refused.remove(0);
    Err(Error::ListedFileMissing {
        master,
        position,
        list,
        file,
        others: refused
            .into_iter()
            .map(|(master, position, list, file)| {
                format!("{}:{position} {list} {file}", master.display())
            })
            .collect(),
    })
}

/// The contact directory phones without one of their own start from.
const CONTACTS_SEED: &str = "000000000000-directory.xml";

/// One warning for every file of `unlisted`, with the first of them.
pub(super) fn unlisted_warning(unlisted: &[UnlistedFile<'_>]) -> Option<String> {
    if unlisted.is_empty() {
        return None;
    }
    let examples: Vec<String> = unlisted
        .iter()
        .take(EXAMPLES)
        .map(|file| match &file.requested {
            Some(requested) => format!(
                "{} (phones request {}: the MAC in lower case)",
                file.path.display(),
                requested.display()
            ),
            None => file.path.display().to_string(),
        })
        .collect();
    let (counted, it) = match unlisted.len() {
        1 => ("1 file is".to_owned(), "it"),
        n => (format!("{n} files are"), "them"),
    };
    Some(format!(
        "{counted} named with a phone's MAC but listed for that phone by no master, so no phone \
         requests {it}: not published ({}{}); list {it} for the phone in a master \
         ([PHONE_MAC_ADDRESS] in CONFIG_FILES) or remove {it}",
        examples.join(", "),
        and_more(unlisted.len(), EXAMPLES),
    ))
}

/// What phones read differently from what a master seems to say (an attribute with another
/// model's suffix, as in Polycom's own SPIP320 template): one warning each.
pub(super) fn master_warnings(tree: &SourceTree, summary: &mut PublishSummary) {
    let masters = tree
        .default_master()
        .into_iter()
        .chain(tree.phone_masters().map(|(_, master)| master));
    for master in masters {
        if let Master::Plain(master) = master {
            summary
                .warnings
                .extend(master.warnings.iter().map(ToString::to_string));
        }
    }
}

/// One warning for every value of the tree that holds an unrendered template placeholder
/// (`{$name}`): phones would take it literally. Not a refusal: the file is well-formed, and a
/// placeholder is no secret (a placeholder with a default, `{$name|value}`, is scanned as its
/// default).
pub(super) fn placeholder_warning(placeholders: &[Placeholder]) -> Option<String> {
    if placeholders.is_empty() {
        return None;
    }
    let places: Vec<String> = placeholders
        .iter()
        .take(EXAMPLES)
        .map(ToString::to_string)
        .collect();
    Some(format!(
        "{} an unrendered template placeholder ({{$name}}), which phones would take \
         literally: {}{}; render the templates (fill in every {{$…}}) before publishing",
        match placeholders.len() {
            1 => "1 value holds".to_owned(),
            n => format!("{n} values hold"),
        },
        places.join(", "),
        and_more(placeholders.len(), EXAMPLES),
    ))
}

/// Warns about a master's firmware image or directory that neither the source tree nor `out`
/// has: nothing breaks at once, but phones keep their firmware, or cannot upload their logs,
/// overrides or contact directories (issue 12, point 3: a warning, not a refusal).
pub(super) fn master_paths(tree: &SourceTree, out: &Path, summary: &mut PublishSummary) {
    let masters = tree
        .default_master()
        .into_iter()
        .chain(tree.phone_masters().map(|(_, master)| master));
    let mut said = BTreeSet::new();
    for master in masters {
        let Master::Plain(master) = master else {
            continue;
        };
        let models =
            std::iter::once(None).chain(master.models.iter().map(|m| Some(m.model.as_str())));
        for model in models {
            for (attribute, consequence) in MASTER_PATHS {
                let Some(setting) = master.setting(attribute, model) else {
                    continue;
                };
                // `[PHONE_MAC_ADDRESS]` in a directory is a directory per phone: not checked.
                if setting.value.trim().is_empty() || setting.value.contains('[') {
                    continue;
                }
                let reference = FileReference::parse(&setting.value);
                let Some(path) = reference.tree_path() else {
                    continue;
                };
                let present = if attribute == MasterAttribute::AppFilePath {
                    has_firmware(tree, out, path)
                } else {
                    tree.files().any(|file| file.starts_with(path)) || out.join(path).is_dir()
                };
                if present {
                    continue;
                }
                said.insert(format!(
                    "{}:{}: {} names {}, which neither the source tree nor --out has: {}",
                    master.path.display(),
                    setting.position,
                    setting.attribute,
                    setting.value.trim(),
                    consequence
                ));
            }
        }
    }
    summary.warnings.extend(said);
}

/// The master attributes that name a file or directory phones need on the server, with what
/// phones do without it and what to do.
const MASTER_PATHS: [(MasterAttribute, &str); 5] = [
    (
        MasterAttribute::AppFilePath,
        "phones keep the firmware they run; copy the image into the source tree or --out, or \
         leave the attribute empty",
    ),
    (
        MasterAttribute::LogFileDirectory,
        "phones cannot upload their logs; create it under --out, writable by the web server \
         (docs/DELIVERY.md)",
    ),
    (
        MasterAttribute::OverridesDirectory,
        "phones cannot save settings made on the phone; create it under --out, writable by the \
         web server (docs/DELIVERY.md)",
    ),
    (
        MasterAttribute::ContactsDirectory,
        "phones cannot save their contact directories; create it under --out, writable by the \
         web server (docs/DELIVERY.md)",
    ),
    (
        MasterAttribute::LicenseDirectory,
        "phones find no feature licence there; create it, or leave the attribute empty",
    ),
];

/// True if the firmware image at `path` (`sip.ld`), or a split image of it named by a part
/// number (`3111-40250-001.sip.ld`, which phones request first), is in the tree or under `out`.
fn has_firmware(tree: &SourceTree, out: &Path, path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    let split = format!(".{name}");
    let matches = |candidate: &Path| {
        candidate.parent() == path.parent()
            && candidate
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == name || n.ends_with(&split))
    };
    if tree.files().any(matches) {
        return true;
    }
    let dir = out.join(path.parent().unwrap_or(Path::new("")));
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| matches(&path.with_file_name(entry.file_name())))
    })
}

/// Where `master` carries the attribute named `name` (`CONFIG_FILES`, `CONFIG_FILES_SPIP300`).
fn attribute_position(master: &Master, name: &str) -> Option<Position> {
    let Master::Plain(master) = master else {
        return None;
    };
    std::iter::once(&master.settings)
        .chain(master.models.iter().map(|m| &m.settings))
        .flat_map(|settings| MasterAttribute::ALL.map(|a| settings.get(a)))
        .flatten()
        .find(|setting| setting.attribute == name)
        .map(|setting| setting.position)
}
