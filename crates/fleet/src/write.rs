//! Writing results so that nothing half-written is ever left behind.

use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use zeroize::Zeroizing;

use crate::Error;
use crate::secret_io::{ZeroizingWriter, read_zeroizing};

/// File mode of files that carry a key or plaintext secrets: owner only.
pub const SECRET_MODE: u32 = 0o600;
/// File mode of files anyone may read (encrypted files, masters, shared files).
pub const PUBLIC_MODE: u32 = 0o644;

/// Reads the file at `path`, refusing more than `limit` bytes, into a buffer zeroized on drop.
pub fn read_capped(path: &Path, limit: usize) -> Result<Zeroizing<Vec<u8>>, Error> {
    let file = fs::File::open(path).map_err(|e| Error::io(path, "read", e))?;
    let expected = file
        .metadata()
        .map_or(0, |m| usize::try_from(m.len()).unwrap_or(usize::MAX));
    read_capped_sized(path, file, limit, expected)
}

/// Reads what `reader` (named `name` in errors) gives, refusing more than `limit` bytes, into
/// a buffer zeroized on drop (and as it grows).
pub fn read_capped_from(
    name: &Path,
    reader: impl Read,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    read_capped_sized(name, reader, limit, 0)
}

fn read_capped_sized(
    name: &Path,
    reader: impl Read,
    limit: usize,
    expected: usize,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let bytes = read_zeroizing(reader, limit, expected).map_err(|e| Error::io(name, "read", e))?;
    if bytes.len() > limit {
        return Err(Error::TooLarge {
            path: name.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory with `mode`,
/// fsync, rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    write_atomic_with(path, mode, |out| out.write_all(bytes))
}

/// [`write_atomic`] for content produced piece by piece by `fill` (through a buffer), so a
/// large file is never held whole in memory.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| Error::NotAFileName {
        path: path.to_owned(),
    })?;
    let temp = dir.join(format!(
        ".{}.polyseal-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_new_with(&temp, mode, fill)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| Error::io(path, "write", e)))
        .and_then(|()| sync_dir(dir));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Creates `path` (which must not exist) with `mode`, writes what `fill` produces, and syncs
/// it.
fn write_new_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Error> {
    let mut out = ZeroizingWriter::new(create_new(path, mode)?);
    fill(&mut out)
        .and_then(|()| out.into_inner())
        .and_then(|file| file.sync_all())
        .map_err(|e| Error::io(path, "write", e))
}

/// File mode of the directories of a published tree: the web server must enter them.
pub const DIRECTORY_MODE: u32 = 0o755;

/// Creates `path`, which must not exist, with permissions `mode` from the start (a secret file
/// is never readable by others, not even for a moment), whatever the umask: one that would
/// take bits away (077 turns 0644 into 0600, and the web server could not read the file) is
/// undone at once with `fchmod`.
pub fn create_new(path: &Path, mode: u32) -> Result<fs::File, Error> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let file = options
        .open(path)
        .map_err(|e| Error::io(path, "create", e))?;
    #[cfg(unix)]
    if umask().is_none_or(|umask| umask & mode != 0) {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, "set the mode of", e))?;
    }
    Ok(file)
}

/// Creates the directory `path` and its missing parents, each with `mode` whatever the umask
/// (000 would leave them writable by anyone, 077 closed to the web server).
pub fn create_dirs(path: &Path, mode: u32) -> Result<(), Error> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dirs(parent, mode)?;
    }
    match fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => return Ok(()),
        Err(e) => return Err(Error::io(path, "create", e)),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(path, "set the mode of", e))?;
    }
    Ok(())
}

/// The process's umask, read once from `/proc/self/status` (Linux 4.7 and later); `None`
/// where it cannot be read, and then every created file gets its mode set explicitly.
/// Reading it this way leaves it alone: `umask(2)` can only be read by setting it, which
/// would race with threads creating files.
#[cfg(unix)]
fn umask() -> Option<u32> {
    static UMASK: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
        u32::from_str_radix(line.trim(), 8).ok()
    })
}

/// Makes a rename in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), Error> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "sync", e))
}
