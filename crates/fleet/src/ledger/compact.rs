//! Keeping the ledger's size bounded: entries older than the window are folded into one
//! summary line per phone (and one for the requests of no phone); of the window, at most the
//! bound is kept, noise folded first, then the oldest. The ledger is read as a stream,
//! three times, never held whole (docs/DELIVERY.md, "The ledger").

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read as _, Seek as _, Write};
use std::path::Path;

use polyseal_vault::Timestamp;

use super::{Compaction, Entry, Error, Line, Lines, PhoneSummary, Scanned, UnidentifiedSummary};

/// Rewrites the ledger at `path` whole, as [`Compaction`] says, `now` being the present;
/// returns the lines written. For a ledger no server is appending to (a running `serve`
/// compacts its own ledger as it appends).
pub fn compact(path: &Path, compaction: &Compaction, now: Timestamp) -> Result<usize, Error> {
    let source = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "compact the ledger",
        source,
    })?;
    let end = source.metadata().map(|m| m.len()).unwrap_or(0);
    let plan = Plan::read(path, &source, end, compaction, now)?;
    let mut lines = 0;
    crate::write::write_atomic_with(path, super::LEDGER_MODE, |out| {
        lines = plan.write(out, &source)?;
        Ok(())
    })
    .map_err(|e| Error::Io {
        path: path.to_owned(),
        action: "compact the ledger",
        source: io::Error::other(e.to_string()),
    })?;
    Ok(lines)
}

/// What becomes of each line of the ledger's first `end` bytes.
pub(super) struct Plan {
    end: u64,
    /// By line (in file order): whether it is kept as it is.
    kept: Vec<bool>,
    summaries: BTreeMap<String, PhoneSummary>,
    unidentified: Option<UnidentifiedSummary>,
}

/// A line's fate, as the first pass sees it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Folded (a summary, an entry before the window, or a line that is not a ledger line).
    Folded,
    /// In the window, of a phone: its length, and the phone (an index).
    Phone(u32, u32),
    /// In the window, noise ([`Entry::is_noise`]).
    Noise(u32),
}

impl Plan {
    /// Reads the ledger's first `end` bytes (whole lines; the bytes past them are appended by
    /// the caller) and decides.
    pub(super) fn read(
        path: &Path,
        source: &File,
        end: u64,
        compaction: &Compaction,
        now: Timestamp,
    ) -> Result<Plan, Error> {
        let cutoff = now
            .unix_seconds()
            .saturating_sub(compaction.window.as_secs());
        // First pass: each line's fate, and the bytes the window holds.
        let mut fates = Vec::new();
        let mut window_bytes = 0u64;
        let mut phones: HashMap<String, u32> = HashMap::new();
        super::scan_from(path, source, Some(end), |line| {
            let fate = match &line {
                Scanned::Line(len, Line::Request(entry))
                    if entry.timestamp().is_none_or(|t| t.unix_seconds() >= cutoff) =>
                {
                    window_bytes += len;
                    let len = u32::try_from(*len).unwrap_or(u32::MAX);
                    match &entry.mac {
                        Some(mac) if !entry.is_noise() => {
                            let next = u32::try_from(phones.len()).unwrap_or(u32::MAX);
                            Fate::Phone(len, *phones.entry(mac.clone()).or_insert(next))
                        }
                        _ => Fate::Noise(len),
                    }
                }
                _ => Fate::Folded,
            };
            // Lines skipped by the scan (empty) have no fate; they are not written again.
            fates.push(fate);
        })?;
        // Past the budget, noise is folded first (oldest first), then phones' oldest requests,
        // each phone cut to a fair share: one phone's flood never pushes out another's boots.
        let budget = compaction.max_bytes;
        for fate in fates.iter_mut() {
            if window_bytes <= budget {
                break;
            }
            if let Fate::Noise(len) = *fate {
                window_bytes -= u64::from(len);
                *fate = Fate::Folded;
            }
        }
        if window_bytes > budget {
            fold_to_fair_shares(&mut fates, phones.len(), budget);
        }
        // Second pass: fold what is folded.
        let mut plan = Plan {
            end,
            kept: fates.iter().map(|f| *f != Fate::Folded).collect(),
            summaries: BTreeMap::new(),
            unidentified: None,
        };
        let mut index = 0;
        super::scan_from(path, source, Some(end), |line| {
            let kept = plan.kept.get(index).copied().unwrap_or(false);
            index += 1;
            if kept {
                return;
            }
            match line {
                Scanned::Line(_, Line::Summary { summary }) => {
                    plan.summaries.insert(summary.mac.clone(), summary);
                }
                Scanned::Line(_, Line::Unidentified { unidentified }) => {
                    plan.unidentified
                        .get_or_insert_with(UnidentifiedSummary::default)
                        .merge(&unidentified);
                }
                Scanned::Line(_, Line::Request(entry)) => plan.fold(&entry),
                // Damage is not carried into the compacted ledger.
                Scanned::Torn | Scanned::Bad { .. } => {}
            }
        })?;
        Ok(plan)
    }

    fn fold(&mut self, entry: &Entry) {
        match &entry.mac {
            Some(mac) => self
                .summaries
                .entry(mac.clone())
                .or_insert_with(|| PhoneSummary {
                    mac: mac.clone(),
                    ..PhoneSummary::default()
                })
                .fold(entry),
            None => self
                .unidentified
                .get_or_insert_with(UnidentifiedSummary::default)
                .fold(entry),
        }
    }

    /// Third pass: writes the summaries, then the kept lines as they were, to `out`; returns
    /// the lines written.
    pub(super) fn write(&self, out: &mut dyn Write, source: &File) -> io::Result<usize> {
        let mut written = 0;
        for summary in self.summaries.values() {
            serde_json::to_writer(
                &mut *out,
                &Line::Summary {
                    summary: summary.clone(),
                },
            )?;
            out.write_all(b"\n")?;
            written += 1;
        }
        if let Some(unidentified) = &self.unidentified {
            let line = Line::Unidentified {
                unidentified: unidentified.clone(),
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        let mut file = source;
        file.rewind()?;
        let mut lines = Lines::new(BufReader::with_capacity(256 * 1024, file.take(self.end)));
        // The same lines, in the same order, as the passes of `read` gave fates to.
        let mut index = 0;
        while let Some(raw) = lines.next_line()? {
            let Some(bytes) = raw.bytes else {
                index += 1;
                continue;
            };
            if bytes.trim_ascii().is_empty() {
                continue;
            }
            if self.kept.get(index).copied().unwrap_or(false) && raw.complete {
                out.write_all(bytes)?;
                written += 1;
            }
            index += 1;
        }
        Ok(written)
    }

    /// Where the lines this plan did not read start.
    pub(super) fn end(&self) -> u64 {
        self.end
    }
}

/// Folds the oldest requests of the phones holding more than a fair share of `budget` (the
/// largest share every phone can have with the total within the budget: phones under it keep
/// everything), until each holds at most that share.
fn fold_to_fair_shares(fates: &mut [Fate], phones: usize, budget: u64) {
    let mut held = vec![0u64; phones];
    for fate in fates.iter() {
        if let Fate::Phone(len, phone) = *fate {
            held[phone as usize] += u64::from(len);
        }
    }
    let mut sorted = held.clone();
    sorted.sort_unstable();
    let mut left = budget;
    let mut share = 0;
    for (i, bytes) in sorted.iter().enumerate() {
        let sharing = (sorted.len() - i) as u64;
        if bytes * sharing > left {
            share = left / sharing;
            break;
        }
        left -= bytes;
        share = *bytes;
    }
    for fate in fates.iter_mut() {
        if let Fate::Phone(len, phone) = *fate
            && held[phone as usize] > share
        {
            held[phone as usize] -= u64::from(len);
            *fate = Fate::Folded;
        }
    }
}
