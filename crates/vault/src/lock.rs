//! One writer at a time, readers never see a half-applied transaction.
//!
//! `vault.lock` is locked with `flock(2)` (through `fs4`): exclusively by a writer, shared by
//! readers. The kernel releases the lock when its holder exits, even by SIGKILL, so a crash
//! never leaves the vault locked. A writer writes its pid into the file so that a second
//! writer's error can name it; it clears the pid when it lets go.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use fs4::FileExt;

use crate::Error;

/// How long `open` waits for a lock held by someone else before giving up, by default.
/// Transactions take milliseconds to seconds; a writer waiting for a passphrase or a
/// hardware-key touch can hold its lock much longer, and then the error names it.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);

const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A held lock on a vault; released on drop.
#[derive(Debug)]
pub(crate) struct VaultLock {
    file: File,
    exclusive: bool,
}

impl VaultLock {
    /// Takes the writer's lock. Another writer holding it is an error at once, naming its pid;
    /// readers holding it are waited for, up to `max_wait`.
    pub(crate) fn exclusive(path: &Path, max_wait: Duration) -> Result<VaultLock, Error> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(path)
            .map_err(|e| Error::io(path, "open the lock file", e))?;
        let deadline = Instant::now() + max_wait;
        loop {
            match FileExt::try_lock(&file) {
                Ok(()) => break,
                Err(fs4::TryLockError::WouldBlock) => {
                    let holder = recorded_pid(path);
                    if holder.is_some() || Instant::now() >= deadline {
                        return Err(locked(path, holder));
                    }
                    thread::sleep(POLL_INTERVAL);
                }
                Err(fs4::TryLockError::Error(e)) => {
                    return Err(Error::io(path, "lock", e));
                }
            }
        }
        let mut lock = VaultLock {
            file,
            exclusive: true,
        };
        lock.record_pid()
            .map_err(|e| Error::io(path, "write the pid into", e))?;
        Ok(lock)
    }

    /// Takes a reader's lock, waiting up to `max_wait` for a writer to finish. `Ok(None)` if
    /// the vault has no lock file (a copy made without it): there is nothing to coordinate with.
    pub(crate) fn shared(path: &Path, max_wait: Duration) -> Result<Option<VaultLock>, Error> {
        // Read-only, so an auditor's read-only copy of a vault can still be opened.
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, "open the lock file", e)),
        };
        let deadline = Instant::now() + max_wait;
        loop {
            match FileExt::try_lock_shared(&file) {
                Ok(()) => {
                    return Ok(Some(VaultLock {
                        file,
                        exclusive: false,
                    }));
                }
                Err(fs4::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(POLL_INTERVAL);
                }
                Err(fs4::TryLockError::WouldBlock) => {
                    return Err(locked(path, recorded_pid(path)));
                }
                Err(fs4::TryLockError::Error(e)) => return Err(Error::io(path, "lock", e)),
            }
        }
    }

    /// True for a writer's lock.
    pub(crate) fn is_exclusive(&self) -> bool {
        self.exclusive
    }

    fn record_pid(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        writeln!(self.file, "{}", std::process::id())
    }
}

impl Drop for VaultLock {
    fn drop(&mut self) {
        if self.exclusive {
            // Best effort: a pid left behind only makes a later contention message name a
            // process that no longer holds the lock; the lock itself is released by close.
            let _ = self.file.set_len(0);
        }
    }
}

fn locked(path: &Path, holder: Option<u32>) -> Error {
    Error::Locked {
        lock_file: PathBuf::from(path),
        holder,
    }
}

/// The pid a writer recorded in the lock file, if any.
fn recorded_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
