//! Appending to the ledger: one line per request with one `write`, and compaction when the
//! ledger grows past its bound, done by the request that crossed it while the others go on
//! appending (docs/DELIVERY.md, "The ledger").

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use polyseal_vault::Timestamp;

use super::compact::Plan;
use super::{Compaction, Entry, Error, LEDGER_MODE};

/// Appends entries to a ledger file, compacting it when it grows past its bound.
#[derive(Debug)]
pub struct LedgerWriter {
    path: PathBuf,
    state: Mutex<State>,
    compaction: Compaction,
    torn_tail: bool,
}

#[derive(Debug)]
struct State {
    file: File,
    /// The ledger's size, as this writer wrote it.
    size: u64,
    /// The size past which it is compacted next.
    next: u64,
    /// Whether a compaction is under way (only one at a time).
    compacting: bool,
    /// Whether the ledger ends with a newline: when it does not (a torn line left by a crash,
    /// or a write that failed midway), the next line starts with one, so that the damage
    /// stays one skipped line and never swallows a whole entry.
    ends_clean: bool,
}

impl LedgerWriter {
    /// Opens (or creates, mode 0640) the ledger at `path` for appending, and removes what a
    /// compaction cut short by a kill left beside it.
    pub fn open(path: &Path, compaction: Compaction) -> Result<LedgerWriter, Error> {
        let file = open_for_append(path)?;
        remove_stale_compactions(path);
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let ends_clean = size == 0 || last_byte(&file, size) == Some(b'\n');
        Ok(LedgerWriter {
            path: path.to_owned(),
            state: Mutex::new(State {
                file,
                size,
                next: compaction.max_bytes,
                compacting: false,
                ends_clean,
            }),
            compaction,
            torn_tail: !ends_clean,
        })
    }

    /// How many names the ledger file has: more than one means a hard link elsewhere, perhaps
    /// in a served directory.
    pub fn links(&self) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        self.lock().file.metadata().map_or(1, |m| m.nlink())
    }

    /// Whether the ledger ended with a torn line when it was opened (a crash mid-write): the
    /// line is kept, ended with a newline before the next entry, and skipped by readers.
    pub fn found_torn_tail(&self) -> bool {
        self.torn_tail
    }

    /// Appends `entry` as one line, with one write; when the ledger has grown past its bound,
    /// compacts it before returning (other appends go on meanwhile). A failed compaction
    /// leaves the ledger as it was and is reported; the line is appended all the same.
    pub fn append(&self, entry: &Entry) -> Result<(), Error> {
        let entry = entry.bounded();
        let mut line = Vec::with_capacity(256);
        let io = |action, source| Error::Io {
            path: self.path.clone(),
            action,
            source,
        };
        let compact_upto = {
            let mut state = self.lock();
            if !state.ends_clean {
                line.push(b'\n');
            }
            serde_json::to_writer(&mut line, &*entry)
                .map_err(|e| io("encode a ledger entry", io::Error::other(e)))?;
            line.push(b'\n');
            if let Err(e) = state.file.write_all(&line) {
                // Part of the line may be there: what follows starts on a new line.
                state.ends_clean = false;
                state.size = state.file.metadata().map_or(state.size, |m| m.len());
                return Err(io("append to the ledger", e));
            }
            state.ends_clean = true;
            state.size += line.len() as u64;
            (state.size > state.next && !state.compacting).then(|| {
                state.compacting = true;
                state.size
            })
        };
        match compact_upto {
            Some(upto) => self.compact(upto),
            None => Ok(()),
        }
    }

    /// Compacts the ledger's first `upto` bytes without the lock, then, holding it, appends
    /// what was written since and renames the result over the ledger.
    fn compact(&self, upto: u64) -> Result<(), Error> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            action: "compact the ledger",
            source,
        };
        let planned = File::open(&self.path).map_err(io).and_then(|source| {
            let plan = Plan::read(
                &self.path,
                &source,
                upto,
                &self.compaction,
                Timestamp::now(),
            )?;
            Ok((source, plan))
        });
        let mut held: Option<MutexGuard<'_, State>> = None;
        let written = planned.and_then(|(source, plan)| {
            crate::write::write_atomic_with(&self.path, LEDGER_MODE, |out| {
                plan.write(out, &source)?;
                let state = self.lock();
                let mut tail = &source;
                tail.seek(SeekFrom::Start(plan.end()))?;
                io::copy(&mut tail.take(state.size - plan.end()), out)?;
                held = Some(state);
                Ok(())
            })
            .map_err(|e| io(io::Error::other(e.to_string())))
        });
        let mut state = held.unwrap_or_else(|| self.lock());
        state.compacting = false;
        let reopened = written.and_then(|()| open_for_append(&self.path));
        match reopened {
            Ok(file) => {
                state.size = file.metadata().map_or(0, |m| m.len());
                state.file = file;
                // When the window alone is past the budget's bound (a fleet larger than the
                // bound was set for), the next compaction waits for another half bound: never
                // one per request.
                state.next =
                    (state.size + self.compaction.max_bytes / 2).max(self.compaction.max_bytes);
                Ok(())
            }
            Err(e) => {
                // Tried again after another half bound, not at every request.
                state.next = state.size + self.compaction.max_bytes / 2;
                Err(e)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes the temporary files of compactions of the ledger at `path` that a killed server
/// left (`.NAME.polyseal-PID.tmp`, `crate::write::write_atomic_with`'s): one server writes a
/// ledger (docs/DELIVERY.md, "The ledger"), so none is in use.
fn remove_stale_compactions(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.polyseal-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The last byte of `file`, `size` bytes long.
fn last_byte(file: &File, size: u64) -> Option<u8> {
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, size.checked_sub(1)?).ok()?;
    Some(byte[0])
}

/// The ledger opened for appending (and reading its last byte), created 0640, never through a
/// symbolic link.
fn open_for_append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .append(true)
        .read(true)
        .create(true)
        .mode(LEDGER_MODE)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .map_err(|source| Error::Io {
            path: path.to_owned(),
            action: "open the ledger for appending",
            source,
        })
}
