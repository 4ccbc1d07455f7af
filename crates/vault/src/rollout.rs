//! A rollout: the fleet moved onto encryption (from plaintext, or onto a new layout) in waves
//! the operator advances one at a time (docs/ROLLOUT.md). The vault keeps it in its
//! authenticated `vault.toml`, because it decides which phones are served their files in
//! plaintext: an edit that put a phone back in plaintext would be a downgrade.

use polyseal_crypto::{Layout, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Timestamp;

/// A rollout in progress (or complete: its last wave takes every phone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    started: Timestamp,
    canaries: Vec<Mac>,
    /// The layout the phones showed (`rollout learn`) or the operator vouched for (`format
    /// set`) during this rollout: no wave is advanced before one.
    layout: Option<Layout>,
    waves: Vec<Wave>,
    /// When publish last wrote the tree in this state (its waves, the vault's layout); `None`
    /// since the last change. The gate counts only what phones read after it: before, they
    /// were served the files of the state before (docs/ROLLOUT.md, "3.").
    published: Option<Timestamp>,
    /// The layout confirmed when the last wave was aborted: evidence against it.
    rejected: Option<Layout>,
    /// The published tree the phones are served (`rollout start --out`, absolute): only a
    /// publish there changes what they read.
    tree: Option<String>,
}

/// One wave: the phones whose files it encrypted, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wave {
    advanced: Timestamp,
    phones: WavePhones,
}

/// Which phones a wave encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WavePhones {
    /// These phones, in MAC order (publish asks of each of 200,000 files whether a wave took
    /// its phone: a binary search).
    Listed(Vec<Mac>),
    /// Every phone no earlier wave took, including phones added later: the last wave.
    Rest,
}

impl Rollout {
    /// A rollout started at `started` with `canaries` (they make the first wave), no phone's
    /// files encrypted yet.
    pub fn new(started: Timestamp, canaries: Vec<Mac>) -> Rollout {
        Rollout {
            started,
            canaries,
            layout: None,
            waves: Vec::new(),
            published: None,
            rejected: None,
            tree: None,
        }
    }

    /// The layout confirmed for this rollout, if one was.
    pub fn layout(&self) -> Option<Layout> {
        self.layout
    }

    /// The rollout with `layout` confirmed for it.
    #[must_use]
    pub fn with_layout(mut self, layout: Layout) -> Rollout {
        self.layout = Some(layout);
        self
    }

    /// When publish last wrote the tree in this rollout's state, if it has since the last
    /// change.
    pub fn published(&self) -> Option<Timestamp> {
        self.published
    }

    /// The rollout with the tree published in its state at `at`.
    #[must_use]
    pub fn with_tree_published(mut self, at: Timestamp) -> Rollout {
        self.published = Some(at);
        self
    }

    /// The rollout with its tree to be published again (the vault's layout changed).
    #[must_use]
    pub fn unpublished(mut self) -> Rollout {
        self.published = None;
        self
    }

    /// The layout that was confirmed when the last wave was aborted, if one was.
    pub fn rejected(&self) -> Option<Layout> {
        self.rejected
    }

    /// The published tree the phones are served, if recorded.
    pub fn tree(&self) -> Option<&str> {
        self.tree.as_deref()
    }

    /// The rollout serving the phones from `tree` (an absolute path).
    #[must_use]
    pub fn with_tree(mut self, tree: &str) -> Rollout {
        self.tree = Some(tree.to_owned());
        self
    }

    /// The rollout, started again before any wave, keeping what `previous` learned of the
    /// fleet's firmware: the layout confirmed for it (if it is still the vault's, `layout`) and
    /// the layout an aborted wave was in.
    #[must_use]
    pub fn with_evidence_of(mut self, previous: &Rollout, layout: Layout) -> Rollout {
        self.layout = previous.layout.filter(|l| *l == layout);
        self.rejected = previous.rejected;
        self
    }

    /// When it started.
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// The canaries, in the order given.
    pub fn canaries(&self) -> &[Mac] {
        &self.canaries
    }

    /// The waves advanced, in order.
    pub fn waves(&self) -> &[Wave] {
        &self.waves
    }

    /// True if `mac`'s per-phone files are served encrypted: a wave took it.
    pub fn encrypts(&self, mac: &Mac) -> bool {
        self.waves.iter().any(|wave| wave.takes(mac))
    }

    /// True once a wave took every phone.
    pub fn is_complete(&self) -> bool {
        self.waves
            .last()
            .is_some_and(|wave| wave.phones == WavePhones::Rest)
    }

    /// The rollout with `wave` advanced.
    #[must_use]
    pub fn advanced(mut self, wave: Wave) -> Rollout {
        self.waves.push(wave);
        self.published = None;
        self
    }

    /// The rollout with its last wave taken back (its phones served in plaintext again), and
    /// that wave; `None` if no wave was advanced. Its layout is no longer confirmed: a wave
    /// aborted is evidence against it, and advancing again in it at once would serve the same
    /// phones the same files (docs/ROLLOUT.md, "4. A loop").
    pub fn aborted(mut self) -> (Rollout, Option<Wave>) {
        let wave = self.waves.pop();
        if wave.is_some() {
            self.rejected = self.layout.take().or(self.rejected);
            self.published = None;
        }
        (self, wave)
    }

    /// SHA-256 of its `vault.toml` form, in hex: what the event log records, so that `log
    /// verify` catches an edit without the log listing 100,000 MACs.
    pub fn digest(&self) -> String {
        #[allow(clippy::expect_used)] // Strings and integers always serialize.
        let text = toml::to_string(&self.to_file()).expect("a rollout serializes");
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    pub(crate) fn to_file(&self) -> RolloutFile {
        RolloutFile {
            started: self.started.to_string(),
            canaries: self.canaries.iter().map(Mac::to_string).collect(),
            layout: self.layout.map(|l| l.to_string()),
            published: self.published.map(|t| t.to_string()),
            rejected: self.rejected.map(|l| l.to_string()),
            tree: self.tree.clone(),
            wave: self
                .waves
                .iter()
                .map(|wave| WaveFile {
                    advanced: wave.advanced.to_string(),
                    phones: match &wave.phones {
                        WavePhones::Listed(macs) => Some(macs.iter().map(Mac::to_string).collect()),
                        WavePhones::Rest => None,
                    },
                    rest: (wave.phones == WavePhones::Rest).then_some(true),
                })
                .collect(),
        }
    }

    pub(crate) fn from_file(file: &RolloutFile) -> Result<Rollout, String> {
        let time = |text: &str| {
            Timestamp::parse(text).ok_or_else(|| format!("rollout: {text:?} is not a time"))
        };
        let macs = |list: &[String]| {
            list.iter()
                .map(|m| {
                    m.parse::<Mac>()
                        .map_err(|_| format!("rollout: {m:?} is not a MAC"))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let waves = file
            .wave
            .iter()
            .map(|wave| {
                let phones = match (&wave.phones, wave.rest) {
                    (Some(list), None | Some(false)) => WavePhones::Listed(macs(list)?),
                    (None, Some(true)) => WavePhones::Rest,
                    _ => {
                        return Err("rollout: a wave has either phones or rest = true".to_owned());
                    }
                };
                Ok(Wave::new(time(&wave.advanced)?, phones))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if waves
            .iter()
            .rev()
            .skip(1)
            .any(|wave| wave.phones == WavePhones::Rest)
        {
            return Err("rollout: only the last wave can take the rest".to_owned());
        }
        let layout = |text: &Option<String>| {
            text.as_deref()
                .map(str::parse::<Layout>)
                .transpose()
                .map_err(|e| format!("rollout: {e}"))
        };
        Ok(Rollout {
            started: time(&file.started)?,
            canaries: macs(&file.canaries)?,
            layout: layout(&file.layout)?,
            waves,
            published: file.published.as_deref().map(time).transpose()?,
            rejected: layout(&file.rejected)?,
            tree: file.tree.clone(),
        })
    }
}

impl Wave {
    /// A wave of `phones` advanced at `advanced`.
    pub fn new(advanced: Timestamp, phones: WavePhones) -> Wave {
        let phones = match phones {
            WavePhones::Listed(mut macs) => {
                macs.sort_unstable();
                macs.dedup();
                WavePhones::Listed(macs)
            }
            rest => rest,
        };
        Wave { advanced, phones }
    }

    /// When it was advanced.
    pub fn advanced(&self) -> Timestamp {
        self.advanced
    }

    /// Which phones it took.
    pub fn phones(&self) -> &WavePhones {
        &self.phones
    }

    /// True if it took `mac`.
    pub fn takes(&self, mac: &Mac) -> bool {
        match &self.phones {
            WavePhones::Listed(macs) => macs.binary_search(mac).is_ok(),
            WavePhones::Rest => true,
        }
    }
}

/// The `[rollout]` table of `vault.toml`.
#[derive(Serialize, Deserialize)]
pub(crate) struct RolloutFile {
    started: String,
    canaries: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rejected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tree: Option<String>,
    #[serde(default)]
    wave: Vec<WaveFile>,
}

#[derive(Serialize, Deserialize)]
struct WaveFile {
    advanced: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phones: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rest: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> Mac {
        format!("0004f2a100{n:02x}").parse().expect("mac")
    }

    #[test]
    fn a_rollout_reads_back_as_written_and_its_digest_follows_every_change() {
        let start = Timestamp::from_unix_seconds(1_000);
        let rollout = Rollout::new(start, vec![mac(1)])
            .advanced(Wave::new(start, WavePhones::Listed(vec![mac(1)])))
            .advanced(Wave::new(start, WavePhones::Rest));
        let back = Rollout::from_file(&rollout.to_file()).expect("reads");
        assert_eq!(back, rollout);
        assert!(rollout.is_complete() && rollout.encrypts(&mac(9)));
        let (aborted, wave) = rollout.clone().aborted();
        assert_eq!(wave.map(|w| w.phones), Some(WavePhones::Rest));
        assert!(aborted.encrypts(&mac(1)) && !aborted.encrypts(&mac(2)));
        assert_ne!(aborted.digest(), rollout.digest());
    }

    #[test]
    fn a_rest_wave_before_the_last_is_refused() {
        let start = Timestamp::from_unix_seconds(1_000);
        let rollout = Rollout::new(start, vec![mac(1)])
            .advanced(Wave::new(start, WavePhones::Rest))
            .advanced(Wave::new(start, WavePhones::Listed(vec![mac(1)])));
        assert!(Rollout::from_file(&rollout.to_file()).is_err());
    }
}
