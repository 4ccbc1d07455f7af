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
//! [`read`] tolerates and reports, and which the next [`LedgerWriter`] ends with a newline
//! before it appends.

mod compact;
mod error;
mod lines;
mod summary;
mod writer;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use polyseal_vault::Timestamp;
use serde::{Deserialize, Serialize};

pub use compact::compact;
pub use error::Error;
pub(crate) use lines::{Lines, Scanned, scan_json};
pub use summary::{PhoneSummary, UnidentifiedSummary};
pub use writer::LedgerWriter;

/// Mode of the ledger: the server's user writes, its group reads (an operator's `status`).
const LEDGER_MODE: u32 = 0o640;

/// A line of the ledger: a phone's summary or the unidentified requests' (at the top of a
/// compacted ledger), or a request.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Line {
    Summary { summary: PhoneSummary },
    Unidentified { unidentified: UnidentifiedSummary },
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

    /// The KeyDesc of the key this request served the phone: only a GET answered 200 serves a
    /// key file's contents (a HEAD gives its size alone, whatever `key_served` records).
    pub(crate) fn served_key(&self) -> Option<&str> {
        self.key_served
            .as_deref()
            .filter(|_| self.method == "GET" && self.status == 200)
    }

    /// When it was answered; `None` for a time that is not RFC 3339.
    pub fn timestamp(&self) -> Option<Timestamp> {
        Timestamp::parse(&self.time)
    }

    /// Whether it is noise to the fleet's view: a request of no phone, for another phone's
    /// file, or refused for what the client sent (a 4xx other than 404). Compaction folds
    /// noise first when the window alone is past its budget, so that a flood of refused
    /// requests never pushes out what phones did.
    pub(crate) fn is_noise(&self) -> bool {
        match &self.mac {
            None => true,
            Some(mac) => {
                !polyseal_delivery::path_allowed(mac, &self.path)
                    || ((400..500).contains(&self.status) && self.status != 404)
            }
        }
    }

    /// This entry with its fields from the network cut to their bounds ([`MAX_FIELD`] bytes,
    /// marked with `…`), so that no request makes a ledger line longer than a few KiB.
    fn bounded(&self) -> std::borrow::Cow<'_, Entry> {
        let long = |s: &str| s.len() > MAX_FIELD;
        if !long(&self.path) && !long(&self.method) && !self.client.as_deref().is_some_and(long) {
            return std::borrow::Cow::Borrowed(self);
        }
        let cut = |s: &str| -> String {
            if s.len() <= MAX_FIELD {
                return s.to_owned();
            }
            let mut end = MAX_FIELD;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &s[..end])
        };
        let mut entry = self.clone();
        entry.path = cut(&self.path);
        entry.method = cut(&self.method);
        entry.client = self.client.as_deref().map(cut);
        std::borrow::Cow::Owned(entry)
    }
}

/// The most bytes of a path, method or client subject a ledger line keeps: a phone's paths are
/// under 100 bytes; only a hostile client sends more (up to the 16 KiB of headers `serve`
/// accepts), and the ledger must stay bounded under such a flood (docs/DELIVERY.md, "The
/// ledger").
pub const MAX_FIELD: usize = 1024;

/// When a ledger is compacted: past `max_bytes`, keeping `window` of raw entries, and of
/// those at most `max_bytes` (noise folded first, then the oldest); the next compaction comes
/// after another `max_bytes / 2`, so that the ledger never grows much past one and a half
/// times `max_bytes` (and a summary line per phone), whatever clients send.
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

/// A ledger read back.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Ledger {
    /// The summaries of phones' requests folded by compaction, by MAC.
    pub summaries: Vec<PhoneSummary>,
    /// The requests of no phone folded by compaction.
    pub unidentified: Option<UnidentifiedSummary>,
    /// Every complete entry, in order.
    pub entries: Vec<Entry>,
    /// Whether the last line was torn (cut by a crash mid-write) and skipped.
    pub torn_last_line: bool,
    /// Lines before the last that are not ledger lines (a torn write that the server ended
    /// when it started again, or an edit), skipped.
    pub skipped_lines: u64,
    /// The first of them: its number and what is wrong with it.
    pub first_skipped: Option<(u64, String)>,
}

impl Ledger {
    /// Counts a line skipped as not a ledger line, keeping the first's number and reason.
    pub(crate) fn skip(&mut self, number: u64, reason: String) {
        self.skipped_lines += 1;
        self.first_skipped.get_or_insert((number, reason));
    }
}

/// Reads the ledger at `path`. A last line without its newline, or that does not parse, is a
/// torn write: skipped and reported (`torn_last_line`). Any other line that is not a ledger
/// line is skipped and counted (`skipped_lines`, `first_skipped`): one damaged line never
/// hides the rest of the fleet.
pub fn read(path: &Path) -> Result<Ledger, Error> {
    let mut ledger = Ledger::default();
    scan(path, None, |line| match line {
        Scanned::Line(_, Line::Request(entry)) => ledger.entries.push(entry),
        Scanned::Line(_, Line::Summary { summary }) => ledger.summaries.push(summary),
        Scanned::Line(_, Line::Unidentified { unidentified }) => match &mut ledger.unidentified {
            Some(folded) => folded.merge(&unidentified),
            None => ledger.unidentified = Some(unidentified),
        },
        Scanned::Torn => ledger.torn_last_line = true,
        Scanned::Bad { number, reason } => ledger.skip(number, reason),
    })?;
    Ok(ledger)
}

/// Reads the ledger at `path` (its first `upto` bytes, when given) line by line, giving each
/// to `visit`; empty lines are passed over.
pub(crate) fn scan(
    path: &Path,
    upto: Option<u64>,
    visit: impl FnMut(Scanned<Line>),
) -> Result<(), Error> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "read the ledger",
        source,
    })?;
    scan_from(path, &file, upto, visit)
}

/// [`scan`] of the open ledger `file` (named `path` in errors), from its start.
pub(crate) fn scan_from(
    path: &Path,
    file: &File,
    upto: Option<u64>,
    visit: impl FnMut(Scanned<Line>),
) -> Result<(), Error> {
    use std::io::{Read as _, Seek as _};
    let io = |source| Error::Io {
        path: path.to_owned(),
        action: "read the ledger",
        source,
    };
    let mut file = file;
    file.rewind().map_err(io)?;
    let reader = BufReader::with_capacity(256 * 1024, file.take(upto.unwrap_or(u64::MAX)));
    scan_json(reader, visit).map_err(io)
}
