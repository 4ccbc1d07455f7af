//! The files under a directory, as publish and audit walk a published tree.

use std::fs;
use std::path::{Path, PathBuf};

use crate::Error;

/// Every file under `dir`, in any subdirectory, except hidden ones (names starting with `.`,
/// such as polyseal's own staging directories and temporary files), in no particular order
/// (sorting 200,000 paths is a noticeable part of a publish that changes nothing). Empty if
/// `dir` does not exist.
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    walk(dir, false).map(|(files, _)| files)
}

/// Every file and every directory under `dir`, hidden ones too (`.htaccess`, `.well-known/`):
/// what an operator or a phone put under a published tree, all of which publish keeps.
pub(crate) fn entries_under(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), Error> {
    walk(dir, true)
}

/// The files and directories under `dir`, with hidden ones or without.
fn walk(dir: &Path, hidden: bool) -> Result<(Vec<PathBuf>, Vec<PathBuf>), Error> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&current, "read", e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&current, "read", e))?;
            if !hidden && entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if hidden {
                    dirs.push(path.clone());
                }
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok((files, dirs))
}
