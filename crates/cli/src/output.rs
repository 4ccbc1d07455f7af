//! Where a command reads its input and writes its result: a file, or the standard streams.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use polyseal_fleet::write::{read_capped, read_capped_from, write_atomic};
use zeroize::Zeroizing;

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

/// Reads an input file, or standard input for `-`, refusing more than `limit` bytes, into a
/// buffer zeroized on drop and as it grows (it may be a plaintext configuration).
pub(crate) fn read_input(path: &Path, limit: usize) -> Result<Zeroizing<Vec<u8>>, Failure> {
    Ok(if path == Path::new("-") {
        read_capped_from(Path::new("standard input"), std::io::stdin().lock(), limit)?
    } else {
        read_capped(path, limit)?
    })
}

/// Set once standard output's reader went away.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to standard output. A reader that went away (`polyseal keys list | head -1`)
/// is not an error: the rest of the output is dropped and the command goes on to its own
/// result, so `audit --strict | head` still exits 1 on findings and a listing exits 0, as `cat`
/// does.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(Failure::io(Path::new("standard output"), "write", &e)),
    }
}
