//! The provisioning ledger: every request `polyseal serve` answered, one JSON line each,
//! appended before the response is sent, in a file outside the tree that anyone may read
//! without an identity (docs/DELIVERY.md, "The ledger").
//!
//! ```text
//! {"time":"2026-12-04T11:40:01Z","mac":"0004f2000001","method":"GET","path":"/0004f2000001-key.cfg","status":200,"bytes":197}
//! {"time":"2026-12-04T11:40:02Z","mac":"0004f2000001","method":"GET","path":"/0004f2000001-sip.cfg","status":200,"bytes":2112,"key_desc":"0004f2000001-g1"}
//! {"time":"2026-12-04T11:40:09Z","client":"CN=attacker,O=Example","method":"GET","path":"/site.cfg","status":403,"bytes":0}
//! ```
//!
//! Each line is written with one `write` on a file opened for appending, so lines of
//! concurrent requests never interleave; a crash can leave only the last line torn, which
//! [`read`] tolerates and reports.

mod compact;
mod error;
mod summary;

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use polyseal_vault::Timestamp;
use serde::{Deserialize, Serialize};

pub use compact::compact;
pub use error::Error;
pub use summary::PhoneSummary;

/// Mode of the ledger: the server's user writes, its group reads (an operator's `status`).
const LEDGER_MODE: u32 = 0o640;

/// A line of the ledger: a phone's summary (at the top of a compacted ledger), or a request.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Summary { summary: PhoneSummary },
    Request(Entry),
}

/// One request, as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Entry {
    /// When it was answered: UTC, RFC 3339, whole seconds ([`Entry::timestamp`]).
    pub time: String,
    /// The MAC the client certificate names (12 lower-case hex digits), if it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Who the client was when its certificate names no MAC: its subject, or `none` (no
    /// certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The request method.
    pub method: String,
    /// The path, normalised (as the per-MAC rule judged it), or as sent when it is not a path.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// Bytes of the body served, or received for an upload.
    pub bytes: u64,
    /// The KeyDesc in the header of an encrypted file served or uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_desc: Option<String>,
    /// The KeyDesc of the key a key file (bootstrap or key change) served carries; never the
    /// key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_served: Option<String>,
}

impl Entry {
    /// A request answered now.
    pub fn now(method: &str, path: &str, status: u16, bytes: u64) -> Entry {
        Entry {
            time: Timestamp::now().to_string(),
            mac: None,
            client: None,
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            bytes,
            key_desc: None,
            key_served: None,
        }
    }

    /// When it was answered; `None` for a time that is not RFC 3339.
    pub fn timestamp(&self) -> Option<Timestamp> {
        Timestamp::parse(&self.time)
    }
}

/// When a ledger is compacted: past `max_bytes`, keeping `window` of raw entries.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Compaction {
    /// The size past which the ledger is compacted.
    pub max_bytes: u64,
    /// How far back raw entries are kept (older ones fold into summaries).
    pub window: std::time::Duration,
}

impl Default for Compaction {
    /// 64 MiB, and 48 hours of raw entries: a fleet that polls daily keeps its last two polls
    /// and every boot sequence of the reboot-loop window in full; about 150 bytes a request,
    /// so 64 MiB holds two days of 100,000 phones making two requests a day between boots.
    fn default() -> Compaction {
        Compaction {
            max_bytes: 64 * 1024 * 1024,
            window: std::time::Duration::from_secs(48 * 3600),
        }
    }
}

/// Appends entries to a ledger file, compacting it when it grows past its bound.
#[derive(Debug)]
pub struct LedgerWriter {
    path: PathBuf,
    /// The file, its size, and the size at which it is compacted next.
    file: Mutex<(File, u64, u64)>,
    compaction: Compaction,
}

impl LedgerWriter {
    /// Opens (or creates, mode 0640) the ledger at `path` for appending.
    pub fn open(path: &Path, compaction: Compaction) -> Result<LedgerWriter, Error> {
        let file = open_for_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LedgerWriter {
            path: path.to_owned(),
            file: Mutex::new((file, size, compaction.max_bytes)),
            compaction,
        })
    }

    /// Appends `entry` as one line, with one write; compacts the ledger first when it has grown
    /// past its bound (a failed compaction leaves the ledger as it was, and is reported).
    pub fn append(&self, entry: &Entry) -> Result<(), Error> {
        let mut line = serde_json::to_vec(entry).map_err(|e| Error::Io {
            path: self.path.clone(),
            action: "encode a ledger entry",
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut compacted = Ok(());
        if guard.1 > guard.2 {
            compacted = compact(&self.path, self.compaction.window, Timestamp::now())
                .and_then(|_| open_for_append(&self.path))
                .map(|file| {
                    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                    // When the window alone is past the bound (a large fleet), the next
                    // compaction waits for another bound's worth: never one per request.
                    *guard = (
                        file,
                        size,
                        (size + self.compaction.max_bytes / 2).max(self.compaction.max_bytes),
                    );
                });
            if compacted.is_err() {
                // Tried again after another half bound, not at every request.
                guard.2 = guard.1 + self.compaction.max_bytes / 2;
            }
        }
        guard.0.write_all(&line).map_err(|source| Error::Io {
            path: self.path.clone(),
            action: "append to the ledger",
            source,
        })?;
        guard.1 += line.len() as u64;
        compacted
    }
}

/// The ledger opened for appending, created 0640, never through a symbolic link.
fn open_for_append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .append(true)
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

/// A ledger read back.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Ledger {
    /// The summaries of phones' requests before the window (a compacted ledger), by MAC.
    pub summaries: Vec<PhoneSummary>,
    /// Every complete entry, in order.
    pub entries: Vec<Entry>,
    /// Whether the last line was torn (cut by a crash mid-write) and skipped.
    pub torn_last_line: bool,
}

/// Reads the ledger at `path`. A last line without its newline, or that does not parse, is a
/// torn write: skipped and reported. Any other line that does not parse is an error naming it.
pub fn read(path: &Path) -> Result<Ledger, Error> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "read the ledger",
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut ledger = Ledger::default();
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut pending: Option<(u64, String)> = None;
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                action: "read the ledger",
                source,
            })?;
        if read == 0 {
            break;
        }
        number += 1;
        if let Some((at, reason)) = pending.take() {
            return Err(Error::BadLine {
                path: path.to_owned(),
                line: at,
                reason,
            });
        }
        let complete = line.ends_with(b"\n");
        match serde_json::from_slice::<Line>(line.trim_ascii_end()) {
            Ok(_) if !complete => ledger.torn_last_line = true,
            Ok(Line::Request(entry)) => ledger.entries.push(entry),
            Ok(Line::Summary { summary }) => ledger.summaries.push(summary),
            Err(e) => pending = Some((number, e.to_string())),
        }
    }
    // A bad line is tolerated only as the last one: a torn write.
    if pending.is_some() {
        ledger.torn_last_line = true;
    }
    Ok(ledger)
}
