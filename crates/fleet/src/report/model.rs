//! `report.json`: the evidence pack's data, schema `polyseal-report/1` (docs/COMPLIANCE.md).
//! The HTML page and the CSV inventory are renderings of this one value.

use std::collections::BTreeMap;

use serde::Serialize;

/// The `schema` field of `report.json`. A change to any field's name or meaning is a new
/// schema; the golden test in `crates/fleet/tests/report.rs` pins this one.
pub const SCHEMA: &str = "polyseal-report/1";

/// The whole report.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// When it was made (RFC 3339, UTC).
    pub generated: String,
    /// The time everything is judged at: cryptoperiods, ages (`--as-of`, or `generated`).
    pub as_of: String,
    /// Which vault.
    pub vault: VaultSummary,
    /// What could and could not be checked; the first screen of the page.
    pub checks: Checks,
    /// The cryptographic architecture: every key, its algorithm, length and place.
    pub architecture: Vec<Component>,
    /// Counts.
    pub inventory: Inventory,
    /// Every phone's every generation (the CSV holds the same rows).
    pub keys: Vec<KeyRow>,
    /// The charts' data.
    pub charts: Charts,
    /// Who can open the vault, and who could.
    pub custodians: Vec<Custodian>,
    /// Every state change and confirmation up to `as_of`.
    pub changes: Vec<Change>,
    /// The event log.
    pub audit_trail: AuditTrail,
    /// The published tree's audit, when a tree was given.
    pub tree_audit: Option<TreeAudit>,
    /// The fleet's health from the provisioning ledger, when one was given.
    pub ledger: Option<LedgerHealth>,
    /// What needs doing: keys past their cryptoperiod, a log that does not verify.
    pub findings: Vec<ReportFinding>,
    /// PCI DSS v4 and NIST SP 800-57 requirements: what here supports each, and what cannot.
    pub controls: Vec<Control>,
}

/// The vault the report is about.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct VaultSummary {
    /// Its directory, as given.
    pub dir: String,
    /// Its random id.
    pub id: String,
    /// Its format (`vault.toml`'s `format`).
    pub format: u32,
    /// How generations are named.
    pub key_desc_template: String,
    /// The cryptoperiod policy in days, if any.
    pub cryptoperiod_days: Option<u32>,
    /// When the fleet's firmware applies a new key.
    pub key_timing: String,
    /// How many recipients must take part to open the data key (1: any one).
    pub threshold: usize,
}

/// What was checked for this report, and what was not (and why).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Checks {
    /// Whether the event log verified against every record and `vault.toml`.
    pub log_verified: bool,
    /// Why it did not, one sentence each (empty when it did).
    pub log_problems: Vec<String>,
    /// Whether the vault's files were checked against its authenticated head (needs an
    /// identity).
    pub authenticity_checked: bool,
    /// Checks that needed an identity and were not made, each with why.
    pub not_made: Vec<String>,
}

/// One key of the architecture.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Component {
    /// What it is.
    pub name: &'static str,
    /// Its algorithm.
    pub algorithm: &'static str,
    /// Its length in bits, where it has one.
    pub bits: Option<u32>,
    /// What it protects.
    pub protects: &'static str,
    /// Where it lives.
    pub lives: &'static str,
}

/// Counts of the inventory.
#[derive(Debug, Default, Serialize)]
#[non_exhaustive]
pub struct Inventory {
    /// Phones with a record.
    pub phones: usize,
    /// Key generations, all states.
    pub generations: usize,
    /// Generations by NIST SP 800-57 state (every state named, zero or not).
    pub by_state: BTreeMap<String, usize>,
    /// Generations by number (`"1"`, `"2"`, …).
    pub by_generation: BTreeMap<String, usize>,
    /// Active keys past their cryptoperiod at `as_of`.
    pub past_cryptoperiod: usize,
}

/// One phone's generation: a row of the inventory (and of `inventory.csv`).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct KeyRow {
    /// 12 lower-case hex digits.
    pub mac: String,
    /// The generation number.
    pub generation: u32,
    /// What phones see.
    pub key_desc: String,
    /// Identifies the key without revealing it.
    pub fingerprint: String,
    /// The NIST SP 800-57 state.
    pub state: String,
    /// An active key older than its cryptoperiod at `as_of` (its state stays `active`).
    pub past_cryptoperiod: bool,
    /// When it was made (pre-active since then).
    pub created: String,
    /// When it became active.
    pub activated: Option<String>,
    /// When it was deactivated.
    pub deactivated: Option<String>,
    /// When it was marked compromised.
    pub compromised: Option<String>,
    /// When its bytes were destroyed.
    pub destroyed: Option<String>,
    /// When its phone was seen to hold it (a rotation's evidence).
    pub confirmed: Option<String>,
    /// What showed it.
    pub confirmed_by: Option<String>,
    /// Whole days from `created` to `as_of`.
    pub age_days: u64,
    /// When its cryptoperiod ends (activated + the policy), if it was activated and a policy
    /// is set.
    pub cryptoperiod_end: Option<String>,
    /// Whole days left of it at `as_of`, negative when past; for active keys only.
    pub cryptoperiod_remaining_days: Option<i64>,
}

/// The data of the page's three charts.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Charts {
    /// Active keys by age, in 30-day bins from 0 (the last bin holds everything older).
    pub active_key_age_days: Vec<AgeBin>,
    /// Generations by state (as `inventory.by_state`).
    pub keys_per_state: BTreeMap<String, usize>,
    /// Rotations finished (a generation after the first made active) by month, `YYYY-MM`,
    /// for the 12 months up to `as_of`.
    pub rotations_per_month: BTreeMap<String, usize>,
}

/// One bin of the key-age histogram.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct AgeBin {
    /// Its first day.
    pub from_days: u64,
    /// Its last day; `None` for the open last bin.
    pub to_days: Option<u64>,
    /// Active keys of that age.
    pub keys: usize,
}

/// A recipient of the vault, now or before.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Custodian {
    /// Its label.
    pub label: String,
    /// `age X25519`, `SSH ed25519`, `SSH RSA`, `age plugin (NAME)`, or `OpenBao/Vault transit`.
    pub kind: String,
    /// Its public key.
    pub public_key: String,
    /// When it was added (the vault's creation, for the first).
    pub added: Option<String>,
    /// When it was removed, if it was.
    pub removed: Option<String>,
    /// When its holder acknowledged their responsibilities, if recorded.
    pub acknowledged: Option<String>,
}

/// A key's state change or confirmation.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Change {
    /// When.
    pub time: String,
    /// The phone.
    pub mac: String,
    /// The generation.
    pub generation: u32,
    /// Its KeyDesc.
    pub key_desc: String,
    /// `add`, `state` or `confirm`.
    pub action: &'static str,
    /// The state left (for `state`).
    pub from: Option<String>,
    /// The state entered (for `add` and `state`).
    pub to: Option<String>,
    /// What showed the phone holds the key (for `confirm`: an upload, or `operator`).
    pub evidence: Option<String>,
}

/// The event log, summarised.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct AuditTrail {
    /// How many events it holds.
    pub events: u64,
    /// When the first happened.
    pub first_event: Option<String>,
    /// When the last happened.
    pub last_event: Option<String>,
    /// `head SEQ HEX`, to record outside the vault (docs/VAULT.md, anchoring heads).
    pub head: Option<String>,
    /// Events by action.
    pub by_action: BTreeMap<String, usize>,
}

/// What the provisioning ledger shows of the fleet (`polyseal status`, docs/DELIVERY.md).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct LedgerHealth {
    /// The ledger read.
    pub source: String,
    /// Requests in it (summarised ones not counted).
    pub requests: u64,
    /// Whether its last line was torn and skipped.
    pub torn_last_line: bool,
    /// Phones per health (every health listed).
    pub by_health: BTreeMap<String, usize>,
}

/// The published tree's audit.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct TreeAudit {
    /// The tree.
    pub tree: String,
    /// Findings of severity error.
    pub errors: usize,
    /// Findings of severity warning.
    pub warnings: usize,
    /// Findings by code.
    pub by_code: BTreeMap<String, usize>,
    /// Checks the audit skipped, with why.
    pub skipped: Vec<String>,
}

/// Something that needs doing.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct ReportFinding {
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Stable code.
    pub code: &'static str,
    /// The phone it is about.
    pub mac: Option<String>,
    /// What was found.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// One requirement and how this report bears on it.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Control {
    /// `PCI DSS v4 3.7.4`, `NIST SP 800-57 Pt1 §5.3`, …
    pub id: &'static str,
    /// What it asks.
    pub requirement: &'static str,
    /// What in this report supports it (with this vault's figures).
    pub supported_by: String,
    /// What it cannot show: procedures, people, places.
    pub cannot_show: String,
}
