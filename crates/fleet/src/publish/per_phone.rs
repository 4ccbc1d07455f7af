//! The per-phone files of a new tree, read and checked before any key is made.

use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;
use polyseal_provision::{Exposure, FileScan, PhoneFiles, Placeholder, SourceTree, scan_file};
use polyseal_vault::{RotationStep, Vault};
use rayon::prelude::*;

use super::PublishSummary;
use super::existing::read_source;
use super::manifest::Manifest;
use super::output::is_phone_master;
use super::warnings::grouped_findings;
use crate::Error;

/// Reads every per-phone file the new tree encrypts and refuses, before any key is made, one
/// that is too large or not well-formed XML: a phone could not read it once decrypted (issue
/// 12, point 3); one already encrypted in the source under another key than the one its phone
/// is served; and a `<mac>.cfg` that is no master (phones request it first, as their master:
/// encrypted, it would loop them). What the scan finds (weak SIP passwords) becomes grouped
/// warnings. A file whose source is unchanged since the manifest recorded publishing it was
/// read then, and is not read again: a rerun of 100,000 phones stays a matter of `stat`s.
/// Returns the sources read that are already encrypted, for
/// [`CheckedPublish::check_encrypted_sources`](super::CheckedPublish::check_encrypted_sources).
pub(super) fn check_per_phone_files(
    tree: &SourceTree,
    phone_files: &PhoneFiles<'_>,
    vault: &Vault,
    rotating: &[Mac],
    manifest: &Manifest,
    summary: &mut PublishSummary,
    placeholders: &mut Vec<Placeholder>,
) -> Result<Vec<PathBuf>, Error> {
    if let Some((file, macs)) = phone_files.contested.first() {
        return Err(Error::FileOfSeveralPhones {
            path: tree.path_of(file),
            macs: macs.clone(),
        });
    }
    // A link under another name to a phone's file would serve its plaintext to every phone.
    let owner_of = |file: &Path| {
        phone_files
            .by_phone
            .iter()
            .find(|(mac, files)| files.contains(&file) && !is_phone_master(tree, mac, file))
            .map(|(mac, _)| *mac)
    };
    for (link, target) in tree.links() {
        if let Some(mac) = owner_of(target) {
            if owner_of(link) != Some(mac) {
                return Err(Error::LinkToPhoneFile {
                    link: tree.path_of(link),
                    target: target.to_owned(),
                    mac,
                });
            }
        }
    }
    let files: Vec<(Mac, &Path)> = phone_files
        .by_phone
        .iter()
        .flat_map(|(mac, files)| files.iter().map(move |file| (*mac, *file)))
        .filter(|(mac, file)| !is_phone_master(tree, mac, file))
        .collect();
    if let Some((mac, file)) = files
        .iter()
        .find(|(mac, file)| *file == Path::new(&format!("{mac}.cfg")))
    {
        return Err(Error::PhoneFileNotMaster {
            path: tree.path_of(file),
            mac: *mac,
        });
    }
    let scanned: Vec<Result<(FileScan, Option<PathBuf>), Error>> = files
        .par_iter()
        .filter(|(_, file)| {
            manifest
                .get(file)
                .is_none_or(|entry| !entry.source_unchanged(&tree.path_of(file)))
        })
        .map(|(mac, file)| {
            let path = tree.path_of(file);
            let (plaintext, _) = read_source(&path)?;
            if polyseal_crypto::is_encrypted(&plaintext) {
                check_encrypted_source(vault, rotating, mac, &path, &plaintext)?;
                return Ok((FileScan::default(), Some(path)));
            }
            Ok((
                scan_file(&path, &plaintext, Exposure::PerPhoneEncrypted)?,
                None,
            ))
        })
        .collect();
    let mut findings = Vec::new();
    let mut malformed = Vec::new();
    let mut encrypted = Vec::new();
    for outcome in scanned {
        match outcome {
            Ok((outcome, encrypted_source)) => {
                findings.extend(outcome.findings);
                placeholders.extend(outcome.placeholders);
                encrypted.extend(encrypted_source);
            }
            Err(Error::Provision(error @ polyseal_provision::Error::Xml { .. })) => {
                malformed.push(error);
            }
            Err(other) => return Err(other),
        }
    }
    if !malformed.is_empty() {
        let first = malformed.remove(0);
        return Err(Error::Malformed {
            first,
            others: malformed,
        });
    }
    summary.warnings.extend(grouped_findings(findings));
    Ok(encrypted)
}

/// Refuses a per-phone file that is already encrypted in the source tree under another key
/// than the one `mac` is served: published as it is, the phone could not decrypt it.
fn check_encrypted_source(
    vault: &Vault,
    rotating: &[Mac],
    mac: &Mac,
    path: &Path,
    bytes: &[u8],
) -> Result<(), Error> {
    let found = polyseal_crypto::inspect(bytes)
        .ok()
        .and_then(|header| header.key_desc().cloned());
    let served = RotationStep::of(vault.record(mac))
        .files_generation()
        .filter(|_| !rotating.contains(mac))
        .and_then(|generation| vault.record(mac)?.generation(generation))
        .map(|generation| generation.key_desc().clone());
    match (&found, &served) {
        (Some(found), Some(served)) if found == served => Ok(()),
        _ => Err(Error::EncryptedUnderOtherKey {
            path: path.to_owned(),
            mac: *mac,
            found: found.map(|k| k.to_string()),
            served: served.map(|k| k.to_string()),
        }),
    }
}
