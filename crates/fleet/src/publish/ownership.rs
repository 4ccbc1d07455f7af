//! Which files under `--out` are polyseal's: publish replaces and removes only files it wrote
//! (the manifest lists them), keeps every other file at its path (firmware the operator put
//! there, phones' uploads, logs), and refuses to publish into a directory it did not publish
//! unless told to adopt it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;
use polyseal_provision::KeyFilePattern;

use super::manifest::Manifest;
use crate::Error;
use crate::files::entries_under;

/// How many paths a refusal names; the count says how many more there are.
const NAMED: usize = 5;

/// The files under `--out` before a publish, sorted into polyseal's and the others'.
#[derive(Debug, Default)]
pub(super) struct OutFiles {
    /// Files polyseal wrote that the new tree no longer has: removed.
    pub(super) removed: Vec<PathBuf>,
    /// Files polyseal did not write, at paths the new tree does not use: kept as they are.
    pub(super) kept: Vec<PathBuf>,
    /// Files polyseal did not write at paths the new tree uses (only with `adopt`): replaced.
    pub(super) adopted: Vec<PathBuf>,
    /// Files polyseal wrote that the new tree has too.
    pub(super) ours: usize,
    /// Paths of the new tree that `out` does not have yet.
    pub(super) added: Vec<PathBuf>,
}

impl OutFiles {
    /// Sorts the files under `out` by the manifest beside it, for a new tree of `wanted`
    /// paths. Refuses, naming the first files, an `out` that holds files while no manifest says
    /// polyseal wrote any of them, and files polyseal did not write at paths the new tree would
    /// overwrite; `adopt` accepts both (the operator says the directory is polyseal's to
    /// manage: its other files stay).
    pub(super) fn sort(
        out: &Path,
        manifest: &Manifest,
        wanted: &HashSet<&Path>,
        adopt: bool,
    ) -> Result<OutFiles, Error> {
        let mut files = OutFiles::default();
        if !out.is_dir() {
            files.added = sorted(wanted.iter().map(|p| p.to_path_buf()));
            return Ok(files);
        }
        let mut foreign_at_wanted = Vec::new();
        let mut present = HashSet::new();
        let (listed, dirs) = entries_under(out)?;
        // A path the new tree writes under, as a directory: another's file there, or another's
        // file above a path the new tree writes, cannot stay.
        let wanted_dirs: HashSet<&Path> = wanted
            .iter()
            .flat_map(|path| path.ancestors().skip(1))
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        for path in &listed {
            let Ok(relative) = path.strip_prefix(out) else {
                continue;
            };
            present.insert(relative);
            // A manifest of before polyseal listed every file it wrote (0.1.0) did not list
            // those whose source had just changed: the new tree's paths count as its own.
            let owned =
                manifest.owns(relative) || (manifest.is_legacy() && wanted.contains(relative));
            let clashes = wanted_dirs.contains(relative)
                || relative.ancestors().skip(1).any(|a| wanted.contains(a));
            match (owned, wanted.contains(relative)) {
                (true, true) => files.ours += 1,
                (true, false) => files.removed.push(relative.to_owned()),
                (false, false) if clashes => foreign_at_wanted.push(relative.to_owned()),
                (false, false) => files.kept.push(relative.to_owned()),
                (false, true) => foreign_at_wanted.push(relative.to_owned()),
            }
        }
        // Another's directory where the new tree writes a file.
        for dir in &dirs {
            if let Ok(relative) = dir.strip_prefix(out) {
                if wanted.contains(relative) {
                    foreign_at_wanted.push(relative.to_owned());
                }
            }
        }
        if !adopt {
            if manifest.is_empty() && !(present.is_empty() && dirs.is_empty()) {
                let mut all: Vec<PathBuf> = files
                    .kept
                    .iter()
                    .chain(&foreign_at_wanted)
                    .cloned()
                    .collect();
                all.sort();
                return Err(refusal(out, all, false));
            }
            if !foreign_at_wanted.is_empty() {
                foreign_at_wanted.sort();
                return Err(refusal(out, foreign_at_wanted, true));
            }
        }
        files.added = sorted(
            wanted
                .iter()
                .filter(|p| !present.contains(**p))
                .map(|p| p.to_path_buf()),
        );
        foreign_at_wanted.sort();
        files.adopted = foreign_at_wanted;
        files.removed.sort();
        files.kept.sort();
        Ok(files)
    }
}

/// The refusal naming the first of `files`.
fn refusal(out: &Path, files: Vec<PathBuf>, overwritten: bool) -> Error {
    let more = files.len().saturating_sub(NAMED);
    Error::OutHoldsOthersFiles {
        out: out.to_owned(),
        files: files.into_iter().take(NAMED).collect(),
        more,
        overwritten,
    }
}

/// The key files a publish of `macs` writes, as paths in the tree.
pub(super) fn key_file_paths(macs: &[Mac], key_file: &KeyFilePattern) -> Vec<PathBuf> {
    macs.iter()
        .filter_map(|mac| key_file.reference(mac).tree_path().map(Path::to_owned))
        .collect()
}

/// `paths`, sorted.
fn sorted(paths: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = paths.collect();
    paths.sort();
    paths
}
