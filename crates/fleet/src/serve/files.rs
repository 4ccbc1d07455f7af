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
        let fd = rustix::fs::openat(
            &dir,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(UPLOAD_MODE),
        )?;
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
