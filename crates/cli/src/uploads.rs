//! Files under a directory, and the override and directory files phones upload.

use std::fs;
use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;

use crate::failure::Failure;

/// Every file under `dir`, in any subdirectory, except hidden ones (names starting with `.`,
/// such as polyseal's own staging directories and temporary files), in no particular order
/// (sorting 200,000 paths is a noticeable part of a publish that changes nothing). Empty if
/// `dir` does not exist.
pub(crate) fn files_under(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        let entries = match fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Failure::io(&current, "read", &e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Failure::io(&current, "read", &e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// The override (`<mac>-phone.cfg`) and directory (`<mac>-directory.xml`) files phones
/// uploaded under `dir`, each with its phone, in path order.
pub(crate) fn uploads_in(dir: &Path) -> Result<Vec<(Mac, PathBuf)>, Failure> {
    if !dir.is_dir() {
        return Err(Failure::input(format!(
            "--uploads {}: not a directory",
            dir.display()
        )));
    }
    let mut uploads: Vec<(Mac, PathBuf)> = files_under(dir)?
        .into_iter()
        .filter_map(|path| Some((uploader(&path)?, path)))
        .collect();
    uploads.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(uploads)
}

/// The phone that uploaded `path`: its name is `<mac>-phone.cfg` or `<mac>-directory.xml`,
/// with the MAC in lowercase, as phones request and upload files.
fn uploader(path: &Path) -> Option<Mac> {
    let name = path.file_name()?.to_str()?;
    let mac = name
        .strip_suffix("-phone.cfg")
        .or_else(|| name.strip_suffix("-directory.xml"))?;
    let canonical = mac.len() == 12 && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical.then(|| Mac::parse(mac).ok()).flatten()
}
