//! Putting a staged tree in the place of `--out`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::write::sync_dir;

/// Puts `staging` in the place of `out`, atomically at every instant: `out` always names a
/// whole tree, the old one or the new one, even if the process is killed. Where the file
/// system can (Linux `renameat2(RENAME_EXCHANGE)`: ext4, xfs, btrfs, tmpfs), the two
/// directories are exchanged in one step and the old tree, now at `staging`, is deleted.
/// Elsewhere two renames do it (the old tree moves aside, the new one moves in), with a
/// moment in which `out` does not exist. `out` is a real directory here: a symbolic link is
/// resolved before (see [`resolve_out`]).
pub(super) fn swap(out: &Path, staging: &Path) -> Result<(), Error> {
    if out.is_dir() {
        match exchange(staging, out) {
            Ok(()) => {
                sync_parent(out)?;
                // The old tree is now at `staging`.
                return fs::remove_dir_all(staging)
                    .map_err(|e| Error::io(staging, "remove the old tree at", e));
            }
            Err(e) if exchange_unsupported(&e) => {}
            Err(e) => return Err(Error::io(out, "replace", e)),
        }
    }
    swap_by_renames(out, staging)
}

/// Exchanges the directories `a` and `b` in one step.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, a, CWD, b, RenameFlags::EXCHANGE).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// True if `error` says the file system or kernel cannot exchange (`EINVAL`: not this file
/// system; `ENOSYS`: no `renameat2`): then two renames do.
fn exchange_unsupported(error: &std::io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        let code = error.raw_os_error();
        if code == Some(Errno::INVAL.raw_os_error()) || code == Some(Errno::NOSYS.raw_os_error()) {
            return true;
        }
    }
    error.kind() == std::io::ErrorKind::Unsupported
}

/// The two-rename swap, for file systems that cannot exchange.
fn swap_by_renames(out: &Path, staging: &Path) -> Result<(), Error> {
    let old = sibling(out, "old")?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, "remove", e))?;
    }
    let had_old = out.exists();
    if had_old {
        fs::rename(out, &old).map_err(|e| Error::io(out, "move aside", e))?;
    }
    if let Err(e) = fs::rename(staging, out) {
        if had_old {
            let _ = fs::rename(&old, out);
        }
        return Err(Error::io(out, "replace", e));
    }
    sync_parent(out)?;
    if had_old {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, "remove", e))?;
    }
    Ok(())
}

/// Makes a rename of `path` durable.
fn sync_parent(path: &Path) -> Result<(), Error> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => sync_dir(Path::new(".")),
    }
}

/// The directory to publish into for `out`: `out` itself, or for a symbolic link the directory
/// it resolves to, so the link stays in place and the tree behind it is exchanged (a
/// deployment that flips a link between releases keeps its link).
pub(super) fn resolve_out(out: &Path) -> Result<PathBuf, Error> {
    // `out/` would follow the link: the path without its trailing separator names the link.
    let out: PathBuf = out.components().collect();
    let out = out.as_path();
    match fs::symlink_metadata(out) {
        Ok(metadata) if metadata.file_type().is_symlink() => {
            fs::canonicalize(out).map_err(|e| Error::io(out, "resolve the link", e))
        }
        _ => Ok(out.to_owned()),
    }
}

/// The published tree `out` names, as an absolute path with its parent's links and `..`
/// resolved (the tree itself may not exist yet): how a rollout knows its tree whatever path
/// names it.
pub fn tree_identity(out: &Path) -> Result<String, Error> {
    let out = resolve_out(out)?;
    let (parent, name) = parent_and_name(&out)?;
    let parent = fs::canonicalize(parent).map_err(|e| Error::io(parent, "resolve", e))?;
    Ok(parent.join(name).to_string_lossy().into_owned())
}

/// The directory `out` is in (`.` for a bare name) and its own name.
fn parent_and_name(out: &Path) -> Result<(&Path, &std::ffi::OsStr), Error> {
    let name = out.file_name().ok_or_else(|| Error::OutNotADirectoryName {
        out: out.to_owned(),
    })?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((parent, name))
}

/// `<parent>/.<name>.polyseal-<what>`: a working directory next to `out`, on the same file
/// system so the swap is a rename.
pub(super) fn sibling(out: &Path, what: &str) -> Result<PathBuf, Error> {
    let (parent, name) = parent_and_name(out)?;
    if !parent.is_dir() {
        return Err(Error::OutParentMissing {
            out: out.to_owned(),
            parent: parent.to_owned(),
        });
    }
    Ok(parent.join(format!(".{}.polyseal-{what}", name.to_string_lossy())))
}

/// Refuses an `--out` that cannot be published to, before anything is made: no directory
/// name, a parent that does not exist, or something other than a directory in its place.
pub(super) fn check_out(out: &Path) -> Result<(), Error> {
    let resolved = resolve_out(out)?;
    check_writable(out, &resolved)?;
    sibling(&resolved, "staging")?;
    let Ok(metadata) = fs::metadata(&resolved) else {
        return check_parent_writable(out, &resolved);
    };
    if !metadata.is_dir() {
        return Err(Error::OutNotADirectory {
            out: out.to_owned(),
        });
    }
    if is_mount_point(&resolved, &metadata) {
        return Err(Error::OutIsMountPoint {
            out: out.to_owned(),
        });
    }
    check_parent_writable(out, &resolved)
}

/// True if `dir` is the root of a mount: it cannot be renamed or exchanged. The kernel says
/// so (`statx`'s `STATX_ATTR_MOUNT_ROOT`, Linux 5.8), which also catches a bind mount of a
/// directory of the same file system; where it cannot, a device that differs from the
/// parent's does.
#[cfg(target_os = "linux")]
fn is_mount_point(dir: &Path, metadata: &fs::Metadata) -> bool {
    use rustix::fs::{AtFlags, CWD, StatxAttributes, StatxFlags, statx};
    if let Ok(stat) = statx(
        CWD,
        dir,
        AtFlags::NO_AUTOMOUNT | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::empty(),
    ) {
        if stat
            .stx_attributes_mask
            .contains(StatxAttributes::MOUNT_ROOT)
        {
            return stat.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
        }
    }
    on_another_device(dir, metadata)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn is_mount_point(dir: &Path, metadata: &fs::Metadata) -> bool {
    on_another_device(dir, metadata)
}

/// True if `dir` is on another device than its parent.
#[cfg(unix)]
fn on_another_device(dir: &Path, metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    fs::metadata(parent).is_ok_and(|p| p.dev() != metadata.dev())
}

#[cfg(not(unix))]
fn is_mount_point(_dir: &Path, _metadata: &fs::Metadata) -> bool {
    false
}

/// Refuses a parent directory the staging tree cannot be created in.
#[cfg(target_os = "linux")]
fn check_parent_writable(out: &Path, resolved: &Path) -> Result<(), Error> {
    use rustix::fs::{Access, access};
    let parent = resolved.parent().filter(|p| !p.as_os_str().is_empty());
    let parent = parent.unwrap_or(Path::new("."));
    match access(parent, Access::WRITE_OK | Access::EXEC_OK) {
        Ok(()) => Ok(()),
        Err(_) => Err(Error::OutParentNotWritable {
            out: out.to_owned(),
            parent: parent.to_owned(),
        }),
    }
}

#[cfg(not(target_os = "linux"))]
fn check_parent_writable(_out: &Path, _resolved: &Path) -> Result<(), Error> {
    Ok(())
}

/// Refuses an existing `--out` the user cannot write in: the old tree could not be removed
/// after the swap, and every later run would fail on it.
#[cfg(target_os = "linux")]
fn check_writable(out: &Path, resolved: &Path) -> Result<(), Error> {
    use rustix::fs::{Access, access};
    if resolved.is_dir() && access(resolved, Access::WRITE_OK | Access::EXEC_OK).is_err() {
        return Err(Error::OutNotWritable {
            out: out.to_owned(),
        });
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn check_writable(_out: &Path, _resolved: &Path) -> Result<(), Error> {
    Ok(())
}

/// Refuses a `--src` and an `--out` of which one holds the other: publishing would encrypt the
/// plaintext source in place, or nest the tree in itself on every run.
pub(super) fn check_apart(src: &Path, out: &Path) -> Result<(), Error> {
    let Ok(src) = fs::canonicalize(src) else {
        return Ok(()); // SourceTree::open says what is wrong with it.
    };
    let name = out.file_name().map(PathBuf::from).unwrap_or_default();
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    let Ok(out_dir) = fs::canonicalize(parent.unwrap_or(Path::new("."))) else {
        return Ok(());
    };
    let out = out_dir.join(name);
    if out.starts_with(&src) || src.starts_with(&out) {
        return Err(Error::OutOverlapsSrc {
            out: out.clone(),
            src,
        });
    }
    Ok(())
}
