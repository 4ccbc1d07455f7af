//! The masters and shared files of a new tree, read and checked before any key is made:
//! every phone (and anyone who asks) is served them in plaintext.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use polyseal_provision::{
    DEFAULT_MASTER, Exposure, FileScan, FindingKind, PhoneFiles, Placeholder, SourceTree, scan_file,
};
use rayon::prelude::*;

use super::PublishSummary;
use super::existing::read_source;
use super::output::is_phone_master;
use super::warnings::grouped_findings;
use crate::Error;

/// What one file of the tree is to this check.
struct Candidate<'t> {
    file: &'t Path,
    exposure: Exposure,
    /// A master, or a file a master lists: a phone reads it, so it must be one it can read.
    read_by_phones: bool,
}

/// Reads the masters, every shared file a master lists (whatever its name: phones read it as
/// configuration) and every other file named like configuration (`.cfg`, `.xml`, also as
/// `site.cfg.bak`), and returns what it refuses, each refusal naming every file at fault:
///
/// - a file phones read that is not well-formed XML, or that is encrypted (only the phone of
///   its key could read it; an encrypted master is refused by the plan checks);
/// - a secret in any of them, served in plaintext to every phone, unless `allow`.
///
/// A file no phone reads that is not well-formed, or encrypted, is published as it is, with a
/// warning: it breaks no phone.
pub(super) fn check_shared_files(
    tree: &SourceTree,
    phone_files: &PhoneFiles<'_>,
    listed: &BTreeSet<PathBuf>,
    allow: bool,
    summary: &mut PublishSummary,
    placeholders: &mut Vec<Placeholder>,
) -> Vec<Error> {
    let mut refused = Vec::new();
    let owned: HashSet<&Path> = phone_files
        .by_phone
        .iter()
        .flat_map(|(mac, files)| {
            files
                .iter()
                .filter(move |file| !is_phone_master(tree, mac, file))
                .copied()
        })
        .collect();
    let unlisted: HashSet<&Path> = phone_files.unlisted.iter().map(|f| f.path).collect();
    // Looked up once: a fleet where every phone has a `<mac>.cfg` has 100,000 of them.
    let masters: HashSet<&Path> = std::iter::once(Path::new(DEFAULT_MASTER))
        .chain(
            tree.phone_masters()
                .filter_map(|(_, master)| master.path().strip_prefix(tree.root()).ok()),
        )
        .collect();
    let candidates: Vec<Candidate<'_>> = tree
        .files()
        .filter(|file| !owned.contains(file) && !unlisted.contains(file))
        .filter_map(|file| {
            let master = masters.contains(file);
            let read_by_phones = master || listed.contains(file);
            (read_by_phones || named_like_configuration(file)).then_some(Candidate {
                file,
                exposure: if master {
                    Exposure::Master
                } else {
                    Exposure::Shared
                },
                read_by_phones,
            })
        })
        .collect();
    let outcomes: Vec<Result<Option<FileScan>, Error>> = candidates
        .par_iter()
        .map(|candidate| {
            let path = tree.path_of(candidate.file);
            let (bytes, _) = read_source(&path)?;
            if polyseal_crypto::is_encrypted(&bytes) {
                return Ok(None);
            }
            Ok(Some(scan_file(&path, &bytes, candidate.exposure)?))
        })
        .collect();
    let mut findings = Vec::new();
    let mut malformed = Vec::new();
    let mut encrypted = None;
    for (candidate, outcome) in candidates.iter().zip(outcomes) {
        let path = tree.path_of(candidate.file);
        match outcome {
            Ok(Some(scanned)) => {
                findings.extend(scanned.findings);
                placeholders.extend(scanned.placeholders);
            }
            Ok(None) if candidate.exposure == Exposure::Master => {}
            Ok(None) if candidate.read_by_phones => {
                encrypted.get_or_insert(Error::SharedFileEncrypted { path });
            }
            Ok(None) => summary.warnings.push(format!(
                "{}: encrypted, but no master lists it: published as it is, and a phone that \
                 fetched it could not read it",
                path.display()
            )),
            Err(Error::Provision(error @ polyseal_provision::Error::Xml { .. }))
                if candidate.read_by_phones =>
            {
                malformed.push(error);
            }
            Err(Error::Provision(error @ polyseal_provision::Error::Xml { .. })) => {
                summary.warnings.push(format!(
                    "{error}; no master lists it, so no phone reads it: published as it is"
                ));
            }
            Err(other) if candidate.read_by_phones => refused.push(other),
            Err(other) => summary
                .warnings
                .push(format!("{other}; no master lists it: published as it is")),
        }
    }
    refused.extend(encrypted);
    if !malformed.is_empty() {
        let first = malformed.remove(0);
        refused.push(Error::Malformed {
            first,
            others: malformed,
        });
    }
    let (mut exposed, others): (Vec<_>, Vec<_>) = findings.into_iter().partition(|finding| {
        matches!(
            finding.kind,
            FindingKind::SecretInMaster | FindingKind::SecretInSharedFile
        )
    });
    summary.warnings.extend(grouped_findings(others));
    if !allow && !exposed.is_empty() {
        let first = exposed.remove(0);
        refused.push(Error::PlaintextSecrets {
            first,
            others: exposed,
        });
        return refused;
    }
    summary.warnings.extend(
        grouped_findings(exposed)
            .into_iter()
            .map(|w| format!("{w} (allowed by --allow-plaintext-secrets)")),
    );
    refused
}

/// True for a name configuration files have: `.cfg` or `.xml`, also before another extension
/// (`site.cfg.bak`, `directory.xml~`), in any case.
fn named_like_configuration(file: &Path) -> bool {
    file.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| {
            let name = name.to_ascii_lowercase();
            name.contains(".cfg") || name.contains(".xml")
        })
}
