//! `rollout advance`: the gate, and which phones the next wave takes.

use polyseal_crypto::Mac;
use polyseal_vault::{Rollout, Timestamp, Vault, Wave, WavePhones};

use super::view::{RolloutView, Settled, WaveView};
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
    match view.waves.last() {
        Some(last) => check_last_wave(last, view, waived)?,
        None => {
            if let Some(mac) = waived.first() {
                return Err(Error::CannotWaive {
                    mac: *mac,
                    why: "no wave has been advanced yet".to_owned(),
                });
            }
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

/// The gate on the last wave: the tree shows it, and every phone of it settled on its
/// encrypted files or was `waived`. A waiver is for a phone not heard from since (unplugged,
/// broken), and never leaves the layout unproven: some phone of a wave must have settled on
/// files read since the tree was published in it.
fn check_last_wave(last: &WaveView, view: &RolloutView, waived: &[Mac]) -> Result<(), Error> {
    if view.published.is_none() {
        return Err(Error::TreeNotPublished { wave: last.number });
    }
    let names: Vec<String> = waived.iter().map(Mac::to_string).collect();
    for (mac, name) in waived.iter().zip(&names) {
        let Some(phone) = last.phones.iter().find(|p| &p.mac == name) else {
            return Err(Error::CannotWaive {
                mac: *mac,
                why: format!("it is not a phone of wave {}, the last one", last.number),
            });
        };
        let why = match phone.settled {
            _ if phone.is_settled() => "it has settled on its files: nothing to waive",
            Settled::NotServed if phone.served_since_advanced => {
                "it was served its encrypted files since its wave was advanced and has not \
                 settled since: it may be looping; wait for it, or abort the wave"
            }
            Settled::NotServed => continue,
            Settled::Served => {
                "it was served its encrypted files and has not polled since: it may be \
                 looping; wait for it, or abort the wave"
            }
            Settled::PolledAgain => "it polled again but is not ok: see `polyseal status`",
        };
        return Err(Error::CannotWaive {
            mac: *mac,
            why: why.to_owned(),
        });
    }
    let proven = view
        .waves
        .iter()
        .flat_map(|w| &w.phones)
        .any(|p| p.proves_layout);
    if let Some(mac) = waived.first().filter(|_| !proven) {
        return Err(Error::CannotWaive {
            mac: *mac,
            why: "no phone has settled on its files since the tree was published: waived, the \
                  layout would go on unproven"
                .to_owned(),
        });
    }
    let waiting: Vec<_> = last
        .phones
        .iter()
        .filter(|p| !p.is_settled() && !names.contains(&p.mac))
        .collect();
    let Some(first) = waiting.first() else {
        return Ok(());
    };
    Err(Error::WaveNotSettled {
        wave: last.number,
        waiting: waiting.len(),
        mac: first.mac.clone(),
        why: match first.settled {
            Settled::NotServed => format!(
                "has not been served its encrypted files since the tree was published ({})",
                view.published.as_deref().unwrap_or_default()
            ),
            Settled::Served => {
                "was served its encrypted files but has not polled again after reading them"
                    .to_owned()
            }
            Settled::PolledAgain => format!("is {} ({})", first.health.as_str(), first.detail),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::PhoneInWave;

    fn phone(mac: &str, settled: Settled, served_since_advanced: bool) -> PhoneInWave {
        PhoneInWave {
            mac: mac.to_owned(),
            health: Health::Ok,
            detail: String::new(),
            settled,
            proves_layout: settled == Settled::PolledAgain,
            served_since_advanced,
        }
    }

    fn view_of(phones: Vec<PhoneInWave>) -> RolloutView {
        RolloutView {
            started: "2026-12-04T00:00:00Z".to_owned(),
            canaries: vec!["0004f2a10001".to_owned()],
            layout: String::new(),
            layout_confirmed: true,
            complete: false,
            published: Some("2026-12-04T01:00:00Z".to_owned()),
            waves: vec![WaveView {
                number: 1,
                advanced: "2026-12-04T00:30:00Z".to_owned(),
                rest: false,
                reads_from: Some("2026-12-04T01:00:01Z".to_owned()),
                phones,
            }],
            plaintext_phones: 1,
        }
    }

    /// A phone served its files before the tree was published again (a layout changed and
    /// changed back) and silent since may be looping: its history before the publish counts.
    #[test]
    fn a_phone_served_since_its_wave_and_silent_is_not_waived_after_a_new_publish() {
        let mac: Mac = "0004f2a10002".parse().expect("mac");
        let view = view_of(vec![
            phone("0004f2a10001", Settled::PolledAgain, true),
            phone("0004f2a10002", Settled::NotServed, true),
        ]);
        let refused = check_last_wave(&view.waves[0], &view, &[mac]);
        assert!(
            matches!(&refused, Err(Error::CannotWaive { why, .. }) if why.contains("may be looping")),
            "{refused:?}"
        );
        let never_served = view_of(vec![
            phone("0004f2a10001", Settled::PolledAgain, true),
            phone("0004f2a10002", Settled::NotServed, false),
        ]);
        assert!(check_last_wave(&never_served.waves[0], &never_served, &[mac]).is_ok());
    }
}
