//! Putting a staged tree in the place of `--out`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::write::sync_dir;

/// Puts `staging` in the place of `out`. Two renames: the old tree moves aside, the new one
/// moves in; then the old one is deleted. The web server sees the old tree or the new one.
pub(super) fn swap(out: &Path, staging: &Path) -> Result<(), Error> {
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
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    if had_old {
        fs::remove_dir_all(&old).map_err(|e| Error::io(&old, "remove", e))?;
    }
    Ok(())
}

/// `<parent>/.<name>.polyseal-<what>`: a working directory next to `out`, on the same file
/// system so the swap is a rename.
pub(super) fn sibling(out: &Path, what: &str) -> Result<PathBuf, Error> {
    let name = out.file_name().ok_or_else(|| Error::OutNotADirectoryName {
        out: out.to_owned(),
    })?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
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
    sibling(out, "staging")?;
    match fs::metadata(out) {
        Ok(metadata) if !metadata.is_dir() => Err(Error::OutNotADirectory {
            out: out.to_owned(),
        }),
        _ => Ok(()),
    }
}
