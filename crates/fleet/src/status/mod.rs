//! `polyseal status`: what every phone did, from the ledger of `polyseal serve` or nginx's
//! access log in polyseal's format, with one health per phone (docs/DELIVERY.md, "status").
//!
//! A phone's **boot sequence** starts with a request of a master file (`000000000000.cfg` or
//! `<mac>.cfg`) after it had begun its plan (any other request), or with a GET of the master
//! well after a GET of it with nothing between (a phone restarting on its master alone);
//! restarts closer together than the reboot-loop window are how a phone served a file it
//! cannot decrypt shows itself.

mod health;
mod model;
mod nginx_log;

use std::collections::BTreeMap;
use std::time::Duration;

use polyseal_vault::{Timestamp, Vault};

pub(crate) use health::is_master;
pub use health::{Health, OPTIONAL_FILES};
pub use model::{FetchedFile, FleetStatus, PhoneStatus, Restart, SCHEMA};
pub use nginx_log::read_nginx_log;

use crate::ledger::{Entry, PhoneSummary};

/// The settings of the health rules.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct StatusOptions {
    /// The moment judged ("now", or the end of a period).
    pub as_of: Timestamp,
    /// Boot sequences that make a reboot loop (default 3)…
    pub loop_boots: usize,
    /// …within this long (default 10 minutes).
    pub loop_window: Duration,
    /// How often phones poll; a phone unheard for twice this is `silent` (default 24 h).
    pub poll_interval: Duration,
}

impl StatusOptions {
    /// The defaults, judged at `as_of`.
    pub fn new(as_of: Timestamp) -> StatusOptions {
        StatusOptions {
            as_of,
            loop_boots: 3,
            loop_window: Duration::from_secs(10 * 60),
            poll_interval: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Every phone of `vault` (when given) and of `entries`, with its health; `sources` names where
/// the entries came from, `torn_last_line` whether a source's last line was torn.
pub fn fleet_status(
    vault: Option<&Vault>,
    entries: &[Entry],
    summaries: &[PhoneSummary],
    sources: Vec<String>,
    torn_last_line: bool,
    options: &StatusOptions,
) -> FleetStatus {
    let mut by_phone: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    let mut unidentified = 0u64;
    for entry in entries {
        match &entry.mac {
            Some(mac) => by_phone.entry(mac.clone()).or_default().push(entry),
            None => unidentified += 1,
        }
    }
    let summary_of: BTreeMap<&str, &PhoneSummary> =
        summaries.iter().map(|s| (s.mac.as_str(), s)).collect();
    for summary in summaries {
        by_phone.entry(summary.mac.clone()).or_default();
    }
    if let Some(vault) = vault {
        for record in vault.records() {
            by_phone.entry(record.mac().to_string()).or_default();
        }
    }
    let generation_of = |key_desc: &str| -> Option<u32> {
        let vault = vault?;
        let key_desc = polyseal_crypto::KeyDesc::new(key_desc).ok()?;
        vault
            .find_key_desc(&key_desc)
            .map(|(_, generation)| generation.number())
    };
    let phones: Vec<PhoneStatus> = by_phone
        .into_iter()
        .map(|(mac, entries)| {
            let in_vault =
                vault.is_none_or(|vault| mac.parse().ok().and_then(|m| vault.record(&m)).is_some());
            let summary = summary_of.get(mac.as_str()).copied();
            health::judge(&mac, in_vault, &entries, summary, &generation_of, options)
        })
        .collect();
    let mut summary: BTreeMap<String, usize> = Health::ALL
        .iter()
        .map(|h| (h.as_str().to_owned(), 0))
        .collect();
    for phone in &phones {
        *summary.entry(phone.health.as_str().to_owned()).or_default() += 1;
    }
    FleetStatus {
        schema: SCHEMA,
        as_of: options.as_of.to_string(),
        sources,
        torn_last_line,
        // Requests compaction folded count too: a phone's summary holds how many it made.
        requests: entries.len() as u64 + summaries.iter().map(|s| s.requests).sum::<u64>(),
        unidentified_requests: unidentified,
        summary,
        phones,
    }
}
