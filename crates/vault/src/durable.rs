//! Durable, atomic file writes: a temporary file in the same directory, fsync, rename over
//! the target, fsync the directory. A reader, or a process started after a crash, sees the old
//! file or the new one, never a mix.
//!
//! Every file the vault writes is mode 0600 and every directory 0700: the vault holds sealed
//! keys, and its metadata is for its operators (grant auditors read access explicitly).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// Suffix of temporary files; a writer removes stale ones left by a crash.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Writes `contents` to `path` atomically, the file's data durable before it takes the name.
/// The caller fsyncs the directory once after a group of these (see [`sync_dir`]).
pub(crate) fn replace_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let temp = temp_path(path);
    let mut file = create_private(&temp)?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(&temp, "write", e))?;
    drop(file);
    fs::rename(&temp, path).map_err(|e| Error::io(path, "rename a temporary file to", e))
}

/// Creates (or truncates) a file with mode 0600 for writing.
pub(crate) fn create_private(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    // create_new: after the removal, a link planted at this name is never followed.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // A stale file of that name keeps its old mode when truncated, so remove it first.
    remove_if_present(path)?;
    options.open(path).map_err(|e| Error::io(path, "create", e))
}

/// Creates a directory with mode 0700 (no error if it exists).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io(dir, "create directory", e))
}

/// Sets an existing directory's mode to 0700 (a directory made by `create_private_dir` has
/// it already; one that existed keeps its mode otherwise).
pub(crate) fn restrict_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(dir, "restrict the permissions of", e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Makes a directory's entries (new names, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    // Windows cannot open a directory as a file; its rename is durable on its own (NTFS
    // journals metadata), so there is nothing to do there.
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "sync directory", e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes `path`; a file that is not there is not an error.
pub(crate) fn remove_if_present(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(path, "remove", e)),
        _ => Ok(()),
    }
}

/// Removes temporary files a crashed writer left in `dir`.
pub(crate) fn remove_stale_temp_files(dir: &Path) -> Result<(), Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, "list", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "list", e))?;
        if entry.file_name().to_string_lossy().ends_with(TEMP_SUFFIX) {
            remove_if_present(&entry.path())?;
        }
    }
    Ok(())
}

/// The largest vault file read whole: a bucket of 100,000 phones' records is under 64 MiB; a
/// larger file is damage or an attack, and must not exhaust memory.
const MAX_READ: u64 = 256 << 20;

/// Opens a vault file for reading, refusing anything but a regular file: a symbolic link (it
/// could lead a journal's writes, or a read, anywhere), a directory, a device (`/dev/zero`
/// would be read until memory runs out) or a pipe (it would block the command). `Ok(None)` if
/// it does not exist.
pub(crate) fn open_regular(path: &Path) -> Result<Option<File>, Error> {
    let mut options = OpenOptions::new();
    options.read(true);
    // O_NONBLOCK: opening a pipe does not wait for a writer; on a regular file it changes
    // nothing.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
    );
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(_) if is_symlink(path) => return Err(not_regular(path)),
        Err(e) => return Err(Error::io(path, "read", e)),
    };
    let metadata = file.metadata().map_err(|e| Error::io(path, "read", e))?;
    if !metadata.is_file() {
        return Err(not_regular(path));
    }
    Ok(Some(file))
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

fn not_regular(path: &Path) -> Error {
    Error::corrupt(
        path,
        "is not a regular file (a symbolic link, directory, device or pipe): polyseal never \
         puts one there",
    )
}

/// Reads a whole vault file as bytes (a regular file, at most 256 MiB); `Ok(None)` if it does
/// not exist.
pub(crate) fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>, Error> {
    let Some(file) = open_regular(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_READ + 1), &mut bytes)
        .map_err(|e| Error::io(path, "read", e))?;
    if bytes.len() as u64 > MAX_READ {
        return Err(Error::corrupt(path, "is larger than 256 MiB"));
    }
    Ok(Some(bytes))
}

/// Reads a whole vault file as UTF-8; `Ok(None)` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    read_bytes(path)?
        .map(|bytes| {
            String::from_utf8(bytes).map_err(|_| Error::corrupt(path, "is not UTF-8 text"))
        })
        .transpose()
}

/// A directory of the vault opened once, never through a symbolic link: every file replaced
/// in it lands in this directory even if its path is swapped for a link meanwhile (a name
/// resolved again for each file could be raced to lead elsewhere).
pub(crate) struct OpenDir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl OpenDir {
    /// Opens `path`, which must be a directory of its own (not a symbolic link) unless
    /// `follow` (the vault's root, which its owner may reach through a link).
    pub(crate) fn open(path: &Path, follow: bool) -> Result<OpenDir, Error> {
        use rustix::fs::{Mode, OFlags};
        let mut flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
            if e == rustix::io::Errno::LOOP || e == rustix::io::Errno::NOTDIR {
                Error::corrupt(
                    path,
                    "is not a directory of its own (a symbolic link, or a file): polyseal \
                     never puts one there",
                )
            } else {
                Error::io(path, "open", e.into())
            }
        })?;
        Ok(OpenDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// [`replace_file`] of `name` in this directory: a temporary file made in it (never
    /// through a link), written and synced, renamed over `name`.
    pub(crate) fn replace_file(&self, name: &str, contents: &[u8]) -> Result<(), Error> {
        use rustix::fs::{Mode, OFlags};
        let target = self.path.join(name);
        let temp = format!("{name}{TEMP_SUFFIX}");
        let temp_path = self.path.join(&temp);
        match rustix::fs::unlinkat(&self.fd, temp.as_str(), rustix::fs::AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => {}
            Err(e) => return Err(Error::io(&temp_path, "remove", e.into())),
        }
        let fd = rustix::fs::openat(
            &self.fd,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| Error::io(&temp_path, "create", e.into()))?;
        let mut file = File::from(fd);
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&temp_path, "write", e))?;
        drop(file);
        rustix::fs::renameat(&self.fd, temp.as_str(), &self.fd, name)
            .map_err(|e| Error::io(&target, "rename a temporary file to", e.into()))
    }

    /// Makes this directory's entries durable.
    pub(crate) fn sync(&self) -> Result<(), Error> {
        rustix::fs::fsync(&self.fd).map_err(|e| Error::io(&self.path, "sync directory", e.into()))
    }
}

/// Refuses a vault file opened for writing in place (`events.log`, `vault.lock`) that is not a
/// regular file of the vault's own: a device or pipe, or a hard link, whose other name could
/// be a file anywhere that the writes would land in.
pub(crate) fn ensure_own_file(file: &File, path: &Path) -> Result<(), Error> {
    let metadata = file.metadata().map_err(|e| Error::io(path, "read", e))?;
    #[cfg(unix)]
    let links = std::os::unix::fs::MetadataExt::nlink(&metadata);
    #[cfg(not(unix))]
    let links = 1;
    if !metadata.is_file() || links != 1 {
        return Err(Error::corrupt(
            path,
            "is not a regular file of the vault's own (a device, pipe, or a hard link to another \
             file): polyseal never puts one there, and writes into none",
        ));
    }
    Ok(())
}

/// Refuses a directory of the vault that is a symbolic link (or not a directory): a journal
/// applied there would write wherever it leads.
pub(crate) fn ensure_real_dir(dir: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_dir() => Ok(()),
        Ok(_) => Err(Error::corrupt(
            dir,
            "is not a directory of its own (a symbolic link, or a file): polyseal never puts \
             one there",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, "read", e)),
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMP_SUFFIX);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Review 2 of issue 13 (F2): a `keys/` swapped for a link while a journal was applied had
    /// the bucket files written wherever the link led. Files go into the directory opened.
    #[test]
    fn files_replaced_in_an_open_directory_land_in_it_after_its_path_is_swapped_for_a_link() {
        let tmp = tempfile::tempdir().expect("tmp");
        let keys = tmp.path().join("keys");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&keys).expect("keys");
        fs::create_dir(&elsewhere).expect("elsewhere");
        let open = OpenDir::open(&keys, false).expect("open");
        let moved = tmp.path().join("keys.moved");
        fs::rename(&keys, &moved).expect("swap the directory away");
        std::os::unix::fs::symlink(&elsewhere, &keys).expect("and a link in its place");
        open.replace_file("01.jsonl", b"{\"format\":1}\n")
            .expect("replace");
        open.sync().expect("sync");
        assert!(
            moved.join("01.jsonl").is_file(),
            "written where it was opened"
        );
        assert_eq!(
            fs::read_dir(&elsewhere).expect("list").count(),
            0,
            "nothing elsewhere"
        );
        assert!(matches!(
            OpenDir::open(&keys, false),
            Err(Error::CorruptFile { .. })
        ));
    }
}
