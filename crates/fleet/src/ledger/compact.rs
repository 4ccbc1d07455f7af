//! Keeping the ledger's size bounded: entries older than the window are folded into one
//! summary line per phone, the rest kept as they are, in a file written whole and renamed over
//! the ledger (docs/DELIVERY.md, "The ledger").

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use polyseal_vault::Timestamp;

use super::{Error, Line, PhoneSummary, read};

/// Rewrites the ledger at `path`: every entry answered before `now - window` folded into its
/// phone's summary (with the summaries already there), the later ones kept in order. A torn
/// last line is dropped. Returns the lines written.
pub fn compact(path: &Path, window: Duration, now: Timestamp) -> Result<usize, Error> {
    let ledger = read(path)?;
    let cutoff = now.unix_seconds().saturating_sub(window.as_secs());
    let mut summaries: BTreeMap<String, PhoneSummary> = ledger
        .summaries
        .into_iter()
        .map(|s| (s.mac.clone(), s))
        .collect();
    let mut kept = Vec::new();
    for entry in ledger.entries {
        let old = entry.timestamp().is_some_and(|t| t.unix_seconds() < cutoff);
        match (&entry.mac, old) {
            (Some(mac), true) => summaries
                .entry(mac.clone())
                .or_insert_with(|| PhoneSummary {
                    mac: mac.clone(),
                    ..PhoneSummary::default()
                })
                .fold(&entry),
            // Unidentified requests before the window are dropped: no phone to keep them for.
            (None, true) => {}
            (_, false) => kept.push(entry),
        }
    }
    let mut text = Vec::new();
    let io = |source| Error::Io {
        path: path.to_owned(),
        action: "compact the ledger",
        source,
    };
    for summary in summaries.into_values() {
        serde_json::to_writer(&mut text, &Line::Summary { summary })
            .map_err(|e| io(std::io::Error::other(e)))?;
        text.push(b'\n');
    }
    let lines = text.iter().filter(|&&b| b == b'\n').count() + kept.len();
    for entry in &kept {
        serde_json::to_writer(&mut text, entry).map_err(|e| io(std::io::Error::other(e)))?;
        text.push(b'\n');
    }
    // Written whole (a temporary file renamed over the ledger, synced), mode 0640.
    crate::write::write_atomic(path, &text, super::LEDGER_MODE)
        .map_err(|e| io(std::io::Error::other(e.to_string())))?;
    Ok(lines)
}
