//! Writing results so that nothing half-written is ever left behind.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::failure::Failure;

/// File mode of files that carry a key or plaintext secrets: owner only.
pub(crate) const SECRET_MODE: u32 = 0o600;
/// File mode of files anyone may read (encrypted files, masters, shared files).
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// Where a command writes its result: a file, or standard output.
pub(crate) enum Destination {
    Stdout,
    File(PathBuf),
}

impl Destination {
    /// `None` or `-` is standard output.
    pub(crate) fn from_arg(arg: Option<&Path>) -> Destination {
        match arg {
            None => Destination::Stdout,
            Some(p) if p == Path::new("-") => Destination::Stdout,
            Some(p) => Destination::File(p.to_owned()),
        }
    }

    /// Writes `bytes` whole: to a file through a temporary file and a rename, so the file
    /// either keeps its old content or has the new content, never a part.
    pub(crate) fn write(&self, bytes: &[u8], mode: u32) -> Result<(), Failure> {
        match self {
            Destination::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(|e| Failure::io(Path::new("standard output"), "write", &e))
            }
            Destination::File(path) => write_atomic(path, bytes, mode),
        }
    }
}

/// Reads an input file, or standard input for `-`, refusing more than `limit` bytes.
pub(crate) fn read_input(path: &Path, limit: usize) -> Result<Vec<u8>, Failure> {
    let (name, reader): (&Path, Box<dyn Read>) = if path == Path::new("-") {
        (
            Path::new("standard input"),
            Box::new(std::io::stdin().lock()),
        )
    } else {
        let file = fs::File::open(path).map_err(|e| Failure::io(path, "read", &e))?;
        (path, Box::new(file))
    };
    let mut bytes = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::io(name, "read", &e))?;
    if bytes.len() > limit {
        return Err(Failure::input(format!(
            "{}: larger than the {limit}-byte limit",
            name.display()
        )));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory with `mode`,
/// fsync, rename over `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    write_atomic_with(path, mode, |out| out.write_all(bytes))
}

/// [`write_atomic`] for content produced piece by piece by `fill` (through a buffer), so a
/// large file is never held whole in memory.
pub(crate) fn write_atomic_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Failure::input(format!("{}: not a file name", path.display())))?;
    let temp = dir.join(format!(
        ".{}.polyseal-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = write_new_with(&temp, mode, fill)
        .and_then(|()| fs::rename(&temp, path).map_err(|e| Failure::io(path, "write", &e)))
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
) -> Result<(), Failure> {
    let mut out = std::io::BufWriter::new(create_new(path, mode)?);
    fill(&mut out)
        .and_then(|()| out.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all())
        .map_err(|e| Failure::io(path, "write", &e))
}

/// Creates `path`, which must not exist, with permissions `mode` from the start (a secret file
/// is never readable by others, not even for a moment).
pub(crate) fn create_new(path: &Path, mode: u32) -> Result<fs::File, Failure> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    options
        .open(path)
        .map_err(|e| Failure::io(path, "create", &e))
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Failure> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Failure::io(dir, "sync", &e))
}
