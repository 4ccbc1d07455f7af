//! `rollout advance`: the gate, and which phones the next wave takes.

use polyseal_crypto::Mac;
use polyseal_vault::{Rollout, Timestamp, Vault, Wave, WavePhones};

use super::view::RolloutView;
use crate::Error;
use crate::status::Health;

/// The share of the fleet a wave after the canaries takes when none is given.
pub const DEFAULT_WAVE_PERCENT: u8 = 25;

/// The next wave of `rollout` (`view` is its status now), taking `percent` of `vault`'s phones
/// (the canaries, for the first), advanced at `now`. Refused when the rollout is complete,
/// when no layout was confirmed for it (`rollout learn`), when a phone of any wave is in a
/// reboot loop (the rollout is halted: `abort`), and when a phone of the last wave has not
/// settled on its encrypted files, unless the operator `waived` it (a phone unplugged or
/// broken); a waived phone must be of the last wave.
pub fn next_wave(
    vault: &Vault,
    rollout: &Rollout,
    view: &RolloutView,
    percent: u8,
    waived: &[Mac],
    now: Timestamp,
) -> Result<Wave, Error> {
    if rollout.is_complete() {
        return Err(Error::RolloutComplete);
    }
    let last_wave = view.waves.last();
    if let Some(mac) = waived.iter().find(|m| {
        let name = m.to_string();
        last_wave.is_none_or(|w| !w.phones.iter().any(|p| p.mac == name))
    }) {
        return Err(Error::WaivedNotInLastWave {
            mac: *mac,
            wave: last_wave.map(|w| w.number),
        });
    }
    if !view.layout_confirmed {
        return Err(Error::LayoutNotConfirmed {
            layout: vault.layout(),
        });
    }
    let phones = view.waves.iter().flat_map(|w| &w.phones);
    if let Some(looping) = phones.clone().find(|p| p.health == Health::RebootLoop) {
        return Err(Error::RolloutHalted {
            mac: looping.mac.clone(),
            detail: looping.detail.clone(),
        });
    }
    if let Some(last) = last_wave {
        let waiting: Vec<_> = last
            .phones
            .iter()
            .filter(|p| !p.is_settled() && !waived.iter().any(|m| m.to_string() == p.mac))
            .collect();
        if let Some(first) = waiting.first() {
            return Err(Error::WaveNotSettled {
                wave: last.number,
                waiting: waiting.len(),
                mac: first.mac.clone(),
                why: match first.settled {
                    super::Settled::NotServed => format!(
                        "has not been served its encrypted files since the wave was advanced \
                         ({})",
                        last.advanced
                    ),
                    super::Settled::Served => {
                        "was served its encrypted files but has not polled again after reading them"
                            .to_owned()
                    }
                    super::Settled::PolledAgain => {
                        format!("is {} ({})", first.health.as_str(), first.detail)
                    }
                },
            });
        }
    }
    let taken = if rollout.waves().is_empty() {
        WavePhones::Listed(rollout.canaries().to_vec())
    } else {
        let mut left: Vec<Mac> = vault
            .records()
            .map(|r| r.mac())
            .filter(|m| !rollout.encrypts(m))
            .collect();
        left.sort();
        let fleet = vault.records().len();
        let share = (fleet * usize::from(percent)).div_ceil(100).max(1);
        if share >= left.len() {
            WavePhones::Rest
        } else {
            left.truncate(share);
            WavePhones::Listed(left)
        }
    };
    Ok(Wave::new(now, taken))
}
