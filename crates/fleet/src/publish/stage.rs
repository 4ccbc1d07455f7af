//! Writing the published tree: reuse what is up to date, stage the rest beside `--out`, swap
//! it in, and record what was written in the manifest.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::PublishSummary;
use super::existing::{Existing, existing};
use super::manifest::{Entry, Manifest, Stamp};
use super::output::{Output, OutputKind};
use super::ownership::OutFiles;
use super::render::{Body, render};
use super::swap::{sibling, swap};
use crate::files::entries_under;
use crate::write::{DIRECTORY_MODE, create_dirs, create_new};
use crate::{Clock, Error, Progress};

/// Writes the published tree: nothing if it is already up to date; otherwise a staging
/// directory (unchanged files hard-linked from the current tree) swapped in for `out`. Either
/// way the manifest beside the tree ends up describing it, so the next run can trust `stat`.
/// The time and the progress reports of a run.
#[derive(Clone, Copy)]
pub(super) struct RunContext<'a> {
    pub(super) clock: &'a dyn Clock,
    pub(super) progress: &'a dyn Progress,
    /// The vault's layout, which the manifest's entries of encrypted files were made in.
    pub(super) layout: polyseal_crypto::Layout,
}

pub(super) fn write_tree(
    out: &Path,
    outputs: &[Output<'_>],
    out_files: &OutFiles,
    summary: &mut PublishSummary,
    context: RunContext<'_>,
    commit_keys: &mut dyn FnMut() -> Result<(), Error>,
) -> Result<(), Error> {
    let RunContext {
        clock,
        progress,
        layout,
    } = context;
    let manifest_path = sibling(out, "manifest")?;
    remove_leftovers(out)?;
    let manifest = Manifest::load(&manifest_path, &layout);
    let existing: Vec<Existing> = if out.is_dir() {
        progress.start(outputs.len() as u64);
        let existing = outputs
            .par_iter()
            .map(|o| {
                let existing = existing(out, o, &manifest, clock.now());
                progress.advance();
                existing
            })
            .collect::<Result<_, _>>()?;
        progress.finish();
        existing
    } else {
        // Publishing from nothing: 200,000 failed opens would only say so one by one.
        outputs.iter().map(|_| Existing::Stale).collect()
    };
    summary.reused = existing.iter().filter(|e| e.is_fresh()).count();
    summary.phone_files_written = outputs
        .iter()
        .zip(&existing)
        .filter(|(o, e)| !e.is_fresh() && o.content.kind() != OutputKind::Copy)
        .count();
    summary.recorded = existing
        .iter()
        .filter(|e| matches!(e, Existing::Recorded))
        .count();
    summary.removed = out_files.removed.len();
    summary.kept = out_files.kept.len();
    summary.changed = summary.reused < outputs.len() || summary.removed > 0 || !out.is_dir();
    if !summary.changed {
        commit_keys()?;
        // Files proved by reading get entries, so the next run does not read them again; an
        // adopted tree's files become polyseal's.
        if existing.iter().any(|e| matches!(e, Existing::Verified(_))) || manifest.is_empty() {
            let entries = outputs.iter().zip(&existing).map(|(o, e)| {
                let entry = match e {
                    Existing::Recorded => manifest.get(&o.relative),
                    Existing::Verified(entry) => entry.as_ref(),
                    Existing::Stale => None,
                };
                (o.relative.as_ref(), entry)
            });
            save_manifest(&manifest_path, &layout, entries, summary);
        }
        return Ok(());
    }

    let staging = sibling(out, "staging")?;
    let result = stage(
        out,
        &staging,
        outputs,
        existing,
        &manifest,
        &mut summary.warnings,
        context,
    )
    .and_then(|staged| {
        keep_others_files(out, &staging, outputs, &manifest)?;
        // The tree is staged whole: only now do the new keys enter the vault, and only then is
        // the tree that hands them out swapped in.
        commit_keys()?;
        // Before the swap, the manifest names every file polyseal wrote in either tree and
        // proves none: killed on either side of the swap, the next run knows which files are
        // its own (and reads them all once).
        let either = outputs
            .iter()
            .map(|o| o.relative.as_ref())
            .chain(out_files.removed.iter().map(PathBuf::as_path))
            .map(|relative| (relative, None));
        Manifest::save(&manifest_path, &layout, either)?;
        swap(out, &staging)?;
        Ok(staged)
    });
    let staged = match result {
        Ok(staged) => staged,
        Err(failure) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(failure);
        }
    };
    for path in &out_files.removed {
        progress.removed(&out.join(path));
    }
    // A reused file's change time moved twice, when it was linked into the staging tree and
    // when the old tree's link was removed: stamp it now that both are done.
    let entries: Vec<Option<Entry>> = outputs
        .par_iter()
        .zip(staged.into_par_iter())
        .map(|(output, staged)| match staged {
            Staged::Linked(entry) => entry
                .zip(Stamp::at(&out.join(&output.relative)))
                .map(|(e, s)| e.restamped(s)),
            Staged::Written(entry) => entry,
        })
        .collect();
    drop(manifest);
    let entries = outputs
        .iter()
        .zip(&entries)
        .map(|(o, e)| (o.relative.as_ref(), e.as_ref()));
    save_manifest(&manifest_path, &layout, entries, summary);
    Ok(())
}

/// Carries what is under `out` and not polyseal's into the staging tree, at its paths, as it
/// is: files as hard links (or, where the kernel refuses to link another user's file, moved),
/// so they are neither read nor rewritten and stay served; directories with their mode (and
/// owner, when run as root), empty ones too. The tree is listed again here, just before the
/// swap, so what phones uploaded while the run checked and staged is kept too.
fn keep_others_files(
    out: &Path,
    staging: &Path,
    outputs: &[Output<'_>],
    manifest: &Manifest,
) -> Result<(), Error> {
    if !out.is_dir() {
        return Ok(());
    }
    let wanted: HashSet<&Path> = outputs.iter().map(|o| o.relative.as_ref()).collect();
    let (files, dirs) = entries_under(out)?;
    for dir in &dirs {
        let Ok(relative) = dir.strip_prefix(out) else {
            continue;
        };
        let target = staging.join(relative);
        if target.exists() {
            continue;
        }
        fs::create_dir(&target).map_err(|e| Error::io(&target, "create", e))?;
        copy_owner_and_mode(dir, &target)?;
    }
    for file in &files {
        let Ok(relative) = file.strip_prefix(out) else {
            continue;
        };
        let ours = manifest.owns(relative) || (manifest.is_legacy() && wanted.contains(relative));
        if ours || wanted.contains(relative) {
            continue;
        }
        let target = staging.join(relative);
        if fs::hard_link(file, &target).is_err() {
            fs::rename(file, &target).map_err(|e| Error::io(file, "keep", e))?;
        }
    }
    Ok(())
}

/// Gives `target` the permission bits of `source`, and its owner when run as root.
#[cfg(unix)]
fn copy_owner_and_mode(source: &Path, target: &Path) -> Result<(), Error> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(source).map_err(|e| Error::io(source, "read", e))?;
    fs::set_permissions(target, metadata.permissions())
        .map_err(|e| Error::io(target, "set the mode of", e))?;
    // Only root may give a file away; anyone else keeps what they created.
    let _ = std::os::unix::fs::chown(target, Some(metadata.uid()), Some(metadata.gid()));
    Ok(())
}

#[cfg(not(unix))]
fn copy_owner_and_mode(_source: &Path, _target: &Path) -> Result<(), Error> {
    Ok(())
}

/// Removes what a publish killed midway left beside `out`: a staging tree (new files never
/// swapped in, or the old tree after the exchange) and, from the two-rename swap, the old
/// tree moved aside. They are polyseal's own by name and never served.
fn remove_leftovers(out: &Path) -> Result<(), Error> {
    // Killed between the two renames of the fallback swap: the old tree, with every file that
    // was not polyseal's, is only beside `out`. It goes back first.
    let old = sibling(out, "old")?;
    if fs::symlink_metadata(out).is_err() && old.is_dir() {
        fs::rename(&old, out).map_err(|e| Error::io(out, "restore the previous tree at", e))?;
    }
    for what in ["staging", "old"] {
        let leftover = sibling(out, what)?;
        if fs::symlink_metadata(&leftover).is_ok() {
            fs::remove_dir_all(&leftover).map_err(|e| Error::io(&leftover, "remove", e))?;
        }
    }
    Ok(())
}

/// How one output got into the staging tree, with its manifest entry.
enum Staged {
    /// Hard-linked from the current tree; the entry's stamp is taken after the swap.
    Linked(Option<Entry>),
    /// Written; the entry is final.
    Written(Option<Entry>),
}

/// Writes the manifest; failing to is a warning, not a failure: the tree is published, and
/// the next run reads every file instead of trusting `stat`.
fn save_manifest<'a>(
    path: &Path,
    layout: &polyseal_crypto::Layout,
    entries: impl Iterator<Item = (&'a Path, Option<&'a Entry>)>,
    summary: &mut PublishSummary,
) {
    if let Err(failure) = Manifest::save(path, layout, entries) {
        summary.warnings.push(format!(
            "{failure}; the next publish will read every file to find what changed"
        ));
    }
}

/// Fills `staging` with every output; says how each got there.
fn stage(
    out: &Path,
    staging: &Path,
    outputs: &[Output<'_>],
    existing: Vec<Existing>,
    manifest: &Manifest,
    warnings: &mut Vec<String>,
    context: RunContext<'_>,
) -> Result<Vec<Staged>, Error> {
    let RunContext {
        clock, progress, ..
    } = context;
    // remove_leftovers cleared the way; the staging tree is new.
    create_dirs(staging, DIRECTORY_MODE)?;
    let dirs: BTreeSet<PathBuf> = outputs
        .iter()
        .filter_map(|o| o.relative.parent().map(|p| staging.join(p)))
        .collect();
    for dir in dirs {
        create_dirs(&dir, DIRECTORY_MODE)?;
    }
    progress.start(outputs.len() as u64);
    let stage_all = || -> Result<Vec<(Vec<String>, Staged)>, Error> {
        outputs
            .par_iter()
            .zip(existing.into_par_iter())
            .map(|(output, existing)| {
                let target = staging.join(&output.relative);
                progress.advance();
                let recorded = match existing {
                    Existing::Recorded => Some(manifest.get(&output.relative).cloned()),
                    Existing::Verified(entry) => Some(entry),
                    Existing::Stale => None,
                };
                if let Some(entry) = recorded {
                    if fs::hard_link(out.join(&output.relative), &target).is_ok() {
                        return Ok((Vec::new(), Staged::Linked(entry)));
                    }
                }
                let rendered = render(output)?;
                let written = write_file(&target, rendered.body, output.mode())?;
                progress.wrote(&out.join(&output.relative));
                let entry = Stamp::of(&written).and_then(|s| {
                    Entry::new(&output.provenance(), s, rendered.source, clock.now())
                });
                Ok((rendered.notes, Staged::Written(entry)))
            })
            .collect()
    };
    let staged = match staging_pool() {
        Some(pool) => pool.install(stage_all),
        None => stage_all(),
    }?;
    progress.finish();
    let staged = staged
        .into_iter()
        .map(|(notes, staged)| {
            warnings.extend(notes);
            staged
        })
        .collect();
    sync_tree(staging)?;
    Ok(staged)
}

/// The threads that fill the staging tree: twice as many as the rest of the run uses (four
/// per core). Reading a source that is not in the page cache blocks its thread on the disk,
/// and creating files in one directory takes turns on its lock; more threads in flight keep
/// the disk's queue full and the cores busy (CHANGELOG.md, performance history of 0.1.0:
/// from nothing with a cold page cache, 8.3-9.0 s with 8 threads against 9.7-10.8 s with 4). `None` if the threads
/// cannot be started: the shared pool serves then.
fn staging_pool() -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2 * rayon::current_num_threads())
        .build()
        .ok()
}

/// Creates `path` with `mode`, fills it with `body`, and returns the written file's metadata
/// (its stamp for the manifest). A copied file is streamed: `io::copy` between two files is
/// `copy_file_range` on Linux, in the kernel (and sharing blocks where the file system can),
/// never a hard link, so an edit of the source never changes the served file. Not synced one
/// by one: [`sync_tree`] makes the whole staging directory durable with one call before the
/// swap.
fn write_file(path: &Path, body: Body, mode: u32) -> Result<fs::Metadata, Error> {
    use std::io::Write;
    let mut file = create_new(path, mode)?;
    match body {
        Body::Bytes(bytes) => file.write_all(&bytes),
        Body::Stream(mut source) => std::io::copy(&mut source, &mut file).map(|_| ()),
    }
    .and_then(|()| file.metadata())
    .map_err(|e| Error::io(path, "write", e))
}

/// Flushes everything written under `dir` to disk.
#[cfg(target_os = "linux")]
fn sync_tree(dir: &Path) -> Result<(), Error> {
    let handle = fs::File::open(dir).map_err(|e| Error::io(dir, "open", e))?;
    rustix::fs::syncfs(&handle).map_err(|e| Error::io(dir, "sync", e.into()))
}

#[cfg(not(target_os = "linux"))]
fn sync_tree(dir: &Path) -> Result<(), Error> {
    crate::write::sync_dir(dir)
}
