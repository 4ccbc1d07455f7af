//! Making a staged tree durable: one flush of the whole file system before the swap, and
//! writeback started while the tree is still being written, so that flush finds little left.
//!
//! Syncing 200,000 files one by one would cost 200,000 disk flushes; one `syncfs` at the end
//! costs one. But the kernel starts writing dirty pages back only when they pass a share of
//! memory (gigabytes), so that one call would then write the whole tree (about a gigabyte at
//! 100,000 phones) while nothing else happens. [`EarlyWriteback`] has a thread start it every
//! second while the tree is written: the disk works while the CPUs encrypt.

use std::fs;
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::failure::Failure;

/// How often [`EarlyWriteback`] flushes what has been written so far.
const INTERVAL: Duration = Duration::from_secs(1);

/// A thread that flushes the file system holding a directory every [`INTERVAL`] until
/// dropped. Its flushes only bring work forward: [`sync_tree`] afterwards is what makes the
/// tree durable, so an early flush that fails is ignored.
pub(crate) struct EarlyWriteback {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl EarlyWriteback {
    /// Starts flushing the file system of `dir`; does nothing where that cannot be done.
    pub(crate) fn start(dir: &Path) -> EarlyWriteback {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = fs::File::open(dir).ok();
        let thread = handle.map(|handle| {
            thread::spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    let _ = flush_file_system(&handle);
                }
            })
        });
        EarlyWriteback {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for EarlyWriteback {
    fn drop(&mut self) {
        // Closing the channel wakes the thread at once.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Flushes everything written under `dir` to disk.
pub(crate) fn sync_tree(dir: &Path) -> Result<(), Failure> {
    let handle = fs::File::open(dir).map_err(|e| Failure::io(dir, "open", &e))?;
    flush_file_system(&handle).map_err(|e| Failure::io(dir, "sync", &e))
}

/// One flush of the whole file system `handle` is on (Linux), or of the directory itself.
#[cfg(target_os = "linux")]
fn flush_file_system(handle: &fs::File) -> std::io::Result<()> {
    rustix::fs::syncfs(handle).map_err(std::io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn flush_file_system(handle: &fs::File) -> std::io::Result<()> {
    handle.sync_all()
}
