//! Files of a served directory, opened beneath it and never through a symbolic link
//! (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so that no link planted in the
//! tree or the uploads directory leads a phone elsewhere; and uploads written whole, streamed
//! to a temporary file as they arrive (never held in memory).

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Mode of an uploaded file: the server's user reads and writes, its group reads (as
/// `nginx-config`'s `dav_access user:rw group:r`).
const UPLOAD_MODE: u32 = 0o640;
/// Mode of a directory made for uploads.
const UPLOAD_DIR_MODE: u32 = 0o750;

/// Uploads written by this process so far, numbering their temporary files.
static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

/// Opens the regular file `relative` beneath `root` for reading; `NotFound` for anything that
/// is not a regular file there (a directory, a link, a device).
pub(super) fn open_beneath(root: &Path, relative: &str) -> io::Result<File> {
    let dir = rustix::fs::open(
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let fd = rustix::fs::openat2(
        &dir,
        relative,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        resolve(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV | rustix::io::Errno::NOTDIR => {
            io::Error::from(io::ErrorKind::NotFound)
        }
        other => other.into(),
    })?;
    let stat = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::ErrorKind::NotFound.into());
    }
    Ok(File::from(fd))
}

/// An upload being received: a temporary file beside its final name, beneath the uploads
/// directory, renamed over that name once whole ([`Staged::commit`]) and removed otherwise
/// (also when the request is dropped midway).
pub(super) struct Staged {
    dir: OwnedFd,
    temporary: String,
    name: String,
    existed: bool,
    committed: bool,
}

impl Staged {
    /// Makes the directories of `relative` beneath `root` and a temporary file for it; returns
    /// the staging and the file to write the body to.
    pub(super) fn beneath(root: &Path, relative: &str) -> io::Result<(Staged, File)> {
        let (directories, name) = relative.rsplit_once('/').unwrap_or(("", relative));
        let mut dir: OwnedFd = rustix::fs::open(
            root,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for part in directories.split('/').filter(|p| !p.is_empty()) {
            match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(UPLOAD_DIR_MODE)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            dir = rustix::fs::openat2(
                &dir,
                part,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
                resolve(),
            )?;
        }
        let existed = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).is_ok();
        // Unique per process and per upload: two phones' uploads never share a temporary file.
        let serial = UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = format!(".{name}.upload-{}-{serial}", std::process::id());
        let create = || {
            rustix::fs::openat(
                &dir,
                temporary.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(UPLOAD_MODE),
            )
        };
        // The name is this process's and this upload's: one that exists was left by a killed
        // server whose process id this one has (a container's pid 1).
        let fd = match create() {
            Err(rustix::io::Errno::EXIST) => {
                rustix::fs::unlinkat(&dir, temporary.as_str(), rustix::fs::AtFlags::empty())?;
                create()?
            }
            other => other?,
        };
        let staged = Staged {
            dir,
            temporary,
            name: name.to_owned(),
            existed,
            committed: false,
        };
        Ok((staged, File::from(fd)))
    }

    /// Syncs `file` (the one [`Staged::beneath`] gave) and renames it over the upload's name;
    /// returns whether that name is new.
    pub(super) fn commit(mut self, file: File) -> io::Result<bool> {
        file.sync_all()?;
        drop(file);
        rustix::fs::renameat(
            &self.dir,
            self.temporary.as_str(),
            &self.dir,
            self.name.as_str(),
        )?;
        self.committed = true;
        rustix::fs::fsync(&self.dir)?;
        Ok(!self.existed)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(
                &self.dir,
                self.temporary.as_str(),
                rustix::fs::AtFlags::empty(),
            );
        }
    }
}

/// Whether `name` is the name of an upload's temporary file ([`Staged::beneath`]).
fn is_staged_name(name: &str) -> bool {
    name.starts_with('.')
        && name.rsplit_once(".upload-").is_some_and(|(_, tail)| {
            tail.split_once('-').is_some_and(|(pid, serial)| {
                !pid.is_empty()
                    && !serial.is_empty()
                    && pid
                        .bytes()
                        .chain(serial.bytes())
                        .all(|b| b.is_ascii_digit())
            })
        })
}

/// Removes, under `root`, the temporary files of uploads a killed server left; returns how
/// many. Run at start, before any upload of this process exists.
pub(super) fn remove_stale_uploads(root: &Path) -> usize {
    let mut removed = 0;
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(entry.path());
            } else if kind.is_file()
                && is_staged_name(&entry.file_name().to_string_lossy())
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unfinished_uploads_are_swept_at_start() {
        assert!(is_staged_name(".0004f2a10001-app.log.upload-123-4"));
        for name in [
            "0004f2a10001-app.log",
            "x.upload-1-2",
            ".x.upload-1-",
            ".x.upload--2",
            ".x.upload-1-2x",
        ] {
            assert!(!is_staged_name(name), "{name}");
        }
        let dir = tempfile::tempdir().expect("tmp");
        let sub = dir.path().join("d1");
        std::fs::create_dir(&sub).expect("dir");
        std::fs::write(sub.join(".0004f2a10001-app.log.upload-9-1"), b"half").expect("left");
        std::fs::write(sub.join("0004f2a10001-app.log"), b"whole").expect("upload");
        assert_eq!(remove_stale_uploads(dir.path()), 1);
        assert!(sub.join("0004f2a10001-app.log").exists());
        assert!(!sub.join(".0004f2a10001-app.log.upload-9-1").exists());
    }
}
