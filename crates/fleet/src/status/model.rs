//! The status report: `{"schema": "polyseal-status/1", "phones": [...], ...}`, documented in
//! docs/DELIVERY.md and pinned by `crates/fleet/tests/fixtures/status-schema.txt`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Health;

/// The schema name of the JSON form.
pub const SCHEMA: &str = "polyseal-status/1";

/// The fleet's status.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct FleetStatus {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The moment judged (RFC 3339, UTC).
    pub as_of: String,
    /// The ledgers and logs read.
    pub sources: Vec<String>,
    /// Whether a source's last line was torn (a crash mid-write) and skipped.
    pub torn_last_line: bool,
    /// Requests read, those compaction folded into phones' summaries included.
    pub requests: u64,
    /// Requests whose client certificate named no MAC (or without one), those compaction
    /// folded included ([`FleetStatus::count_folded_unidentified`]).
    pub unidentified_requests: u64,
    /// Phones per health, every health listed.
    pub summary: BTreeMap<String, usize>,
    /// One row per phone of the vault and of the sources, by MAC.
    pub phones: Vec<PhoneStatus>,
}

impl FleetStatus {
    /// Counts the requests of no phone that compaction folded into the ledger's
    /// `unidentified` line (`Ledger::unidentified`).
    pub fn count_folded_unidentified(
        &mut self,
        folded: Option<&crate::ledger::UnidentifiedSummary>,
    ) {
        if let Some(folded) = folded {
            self.unidentified_requests += folded.requests;
            self.requests += folded.requests;
        }
    }
}

/// One phone.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct PhoneStatus {
    /// 12 lower-case hex digits.
    pub mac: String,
    /// The first health that applies (see [`Health`]).
    pub health: Health,
    /// Why, in words: the file, the restarts, the generations.
    pub detail: String,
    /// Whether the vault holds a key for it (false: seen, but not a phone of this vault).
    pub in_vault: bool,
    /// Its last request (RFC 3339), if any.
    pub last_seen: Option<String>,
    /// Boot sequences seen in all.
    pub boots: usize,
    /// The files of its last boot, in order, with their status.
    pub last_boot: Vec<FetchedFile>,
    /// Restarts within the reboot-loop window before its last request, each with the last file
    /// fetched before it (the likely culprit).
    pub restarts: Vec<Restart>,
    /// The generation of the last key file served to it (KeyDesc known to the vault).
    pub served_generation: Option<u32>,
    /// The KeyDesc of the last key file served to it.
    pub served_key_desc: Option<String>,
    /// The generation its last encrypted upload is under.
    pub upload_generation: Option<u32>,
    /// The KeyDesc of its last encrypted upload.
    pub upload_key_desc: Option<String>,
    /// Requests it made for other phones' files (a security signal, not a health).
    pub other_phone_requests: u64,
    /// The last of them, if any.
    pub last_other_phone_request: Option<String>,
}

/// A file of a boot sequence.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct FetchedFile {
    /// When.
    pub time: String,
    /// `GET` or `PUT`.
    pub method: String,
    /// The path.
    pub path: String,
    /// The status answered.
    pub status: u16,
}

/// A restart: a master file requested again after the plan had begun, or fetched again alone
/// (a boot start, docs/DELIVERY.md §9).
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Restart {
    /// When the master file was requested again.
    pub time: String,
    /// The last file fetched before it.
    pub after: Option<String>,
}
