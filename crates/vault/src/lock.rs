//! One writer at a time, readers never see a half-applied transaction.
//!
//! The lock is `flock(2)` (through `fs4`) on the **vault directory itself**: exclusively by a
//! writer, shared by readers. The kernel releases it when its holder exits, even by SIGKILL, so
//! a crash never leaves the vault locked. A lock on a file inside the vault could be defeated:
//! deleting `vault.lock` while a writer held it let a second writer lock a new file of the same
//! name, and a `vault.lock` that was a symbolic link was followed (and truncated) (issue 13).
//! The directory cannot be unlinked while it holds the vault's files, and it is the vault.
//!
//! `vault.lock` only records the pid of the writer holding the lock, so that a second
//! command's error can name it; it is opened without following a symbolic link, and cleared
//! when the writer lets go.

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
    /// The vault directory, opened: the lock is on it.
    _dir: File,
    /// `vault.lock`, holding this writer's pid (writers only).
    pid_file: Option<File>,
}

impl VaultLock {
    /// Takes the writer's lock on the vault directory `dir`, waiting up to `max_wait` for the
    /// writer or readers holding it; then records this process's pid in `pid_path`.
    pub(crate) fn exclusive(
        dir: &Path,
        pid_path: &Path,
        max_wait: Duration,
    ) -> Result<VaultLock, Error> {
        let dir_file = File::open(dir).map_err(|e| Error::io(dir, "open to lock", e))?;
        wait_for(&dir_file, pid_path, max_wait, FileExt::try_lock)?;
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
            // A symbolic link at `vault.lock` is refused, never followed (ELOOP); a pipe there
            // does not block the open.
            options.custom_flags(
                i32::try_from((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits())
                    .unwrap_or(i32::MAX),
            );
        }
        let mut pid_file = options
            .open(pid_path)
            .map_err(|e| Error::io(pid_path, "open the lock file", e))?;
        // A hard link to a file outside the vault, or a device or pipe, would have the pid
        // written into it (and the file emptied when the lock is let go).
        crate::durable::ensure_own_file(&pid_file, pid_path)?;
        record_pid(&mut pid_file).map_err(|e| Error::io(pid_path, "write the pid into", e))?;
        Ok(VaultLock {
            _dir: dir_file,
            pid_file: Some(pid_file),
        })
    }

    /// Takes a reader's lock on the vault directory `dir`, waiting up to `max_wait` for a
    /// writer to finish. `Ok(None)` if there is no such directory: there is nothing to
    /// coordinate with (loading it says what is missing).
    pub(crate) fn shared(
        dir: &Path,
        pid_path: &Path,
        max_wait: Duration,
    ) -> Result<Option<VaultLock>, Error> {
        let dir_file = match File::open(dir) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(dir, "open to lock", e)),
        };
        wait_for(&dir_file, pid_path, max_wait, FileExt::try_lock_shared)?;
        Ok(Some(VaultLock {
            _dir: dir_file,
            pid_file: None,
        }))
    }

    /// True for a writer's lock.
    pub(crate) fn is_exclusive(&self) -> bool {
        self.pid_file.is_some()
    }
}

/// Takes a lock on `dir` with `try_lock`, polling until `max_wait` has passed.
fn wait_for(
    dir: &File,
    pid_path: &Path,
    max_wait: Duration,
    try_lock: fn(&File) -> Result<(), fs4::TryLockError>,
) -> Result<(), Error> {
    let deadline = Instant::now() + max_wait;
    loop {
        match try_lock(dir) {
            Ok(()) => return Ok(()),
            Err(fs4::TryLockError::WouldBlock) if Instant::now() < deadline => {
                thread::sleep(POLL_INTERVAL);
            }
            Err(fs4::TryLockError::WouldBlock) => return Err(locked(pid_path)),
            Err(fs4::TryLockError::Error(e)) => return Err(Error::io(pid_path, "lock", e)),
        }
    }
}

impl Drop for VaultLock {
    fn drop(&mut self) {
        if let Some(file) = &self.pid_file {
            // Best effort: a pid left behind is checked for life before an error names it.
            let _ = file.set_len(0);
        }
    }
}

fn record_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    writeln!(file, "{}", std::process::id())
}

/// The error for a lock held by someone else: the writer's pid if it recorded one and still
/// runs; the recorded pid of a writer that has ended otherwise (a reader holds the lock now).
fn locked(pid_path: &Path) -> Error {
    let recorded = recorded_pid(pid_path);
    let running = recorded.filter(|pid| is_running(*pid));
    Error::Locked {
        lock_file: PathBuf::from(pid_path),
        holder: running,
        ended: recorded.filter(|_| running.is_none()),
    }
}

/// The pid a writer recorded in the lock file, if any. Read without following a symbolic link.
fn recorded_pid(path: &Path) -> Option<u32> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(
            i32::try_from((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits())
                .ok()?,
        );
    }
    let file = options.open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    file.take(64).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// True if a process `pid` runs (signal 0 reaches it, or it exists but is another user's).
fn is_running(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(error) => error == rustix::io::Errno::PERM,
    }
}
