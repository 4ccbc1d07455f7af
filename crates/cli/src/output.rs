//! Where a command reads its input and writes its result: a file, or the standard streams.

use std::io::Write;
use std::path::{Path, PathBuf};

use polyseal_fleet::write::{read_capped, read_capped_from, write_atomic};

use crate::failure::Failure;

/// Where a command writes its result: a file, or standard output.
pub(crate) enum Destination {
    /// Standard output.
    Stdout,
    /// A file, replaced whole.
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

    /// The file written to, if not standard output.
    pub(crate) fn file(&self) -> Option<&Path> {
        match self {
            Destination::Stdout => None,
            Destination::File(path) => Some(path),
        }
    }

    /// Writes `bytes` whole: to a file through a temporary file and a rename, so the file
    /// either keeps its old content or has the new content, never a part.
    pub(crate) fn write(&self, bytes: &[u8], mode: u32) -> Result<(), Failure> {
        match self {
            Destination::Stdout => write_stdout(bytes),
            Destination::File(path) => Ok(write_atomic(path, bytes, mode)?),
        }
    }
}

/// Reads an input file, or standard input for `-`, refusing more than `limit` bytes.
pub(crate) fn read_input(path: &Path, limit: usize) -> Result<Vec<u8>, Failure> {
    Ok(if path == Path::new("-") {
        read_capped_from(Path::new("standard input"), std::io::stdin().lock(), limit)?
    } else {
        read_capped(path, limit)?
    })
}

/// Writes `bytes` to standard output. A reader that went away (`polyseal keys list | head -1`)
/// is not an error: the command ends quietly, as `cat` and `ripgrep` do.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::closed_pipe(),
            _ => Failure::io(Path::new("standard output"), "write", &e),
        })
}
