//! `rollout status`: every wave and its phones, each with the ledger's health and whether it
//! has settled on its encrypted files (the gate of the next wave).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use polyseal_crypto::Mac;
use polyseal_delivery::access::UPLOAD_SUFFIXES;
use polyseal_vault::{DataKey, Rollout, Timestamp, Vault, WavePhones};
use serde::Serialize;

use super::published::PublishedTree;
use crate::ledger::Entry;
use crate::status::{FleetStatus, Health, PhoneStatus, is_master};

/// Where a phone of a wave stands on its encrypted files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Settled {
    /// No encrypted file of its own answered 200 since its wave was advanced.
    NotServed,
    /// Served its encrypted files, not heard from at a master request since.
    Served,
    /// Served its encrypted files, then requested its master again: it polled (or restarted)
    /// after reading them.
    PolledAgain,
}

impl Settled {
    /// Its name in `rollout status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Settled::NotServed => "not-served",
            Settled::Served => "served",
            Settled::PolledAgain => "polled-again",
        }
    }
}

/// One phone of a wave.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PhoneInWave {
    /// The phone.
    pub mac: String,
    /// Its health in `status`.
    pub health: Health,
    /// What `status` says of it.
    pub detail: String,
    /// Where it stands on its encrypted files.
    pub settled: Settled,
    /// True if it settled on files it read since the tree was last published (in the vault's
    /// layout): evidence that layout works, whichever wave the phone is in.
    pub proves_layout: bool,
    /// True if it was served an encrypted file of its own at any time since its wave was
    /// advanced (in whatever layout the tree had then): a phone silent since may be looping.
    pub served_since_advanced: bool,
}

impl PhoneInWave {
    /// True if it lets the next wave go: it polled again after its encrypted files, and is ok.
    pub fn is_settled(&self) -> bool {
        self.settled == Settled::PolledAgain && self.health == Health::Ok
    }
}

/// One wave.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct WaveView {
    /// 1 for the canaries.
    pub number: usize,
    /// When it was advanced.
    pub advanced: String,
    /// True if it took every phone no earlier wave took.
    pub rest: bool,
    /// From when its phones' reads count: for the last wave, the second after the tree was
    /// published in the rollout's state (`None` until it is); for an earlier one, its advance.
    pub reads_from: Option<String>,
    /// Its phones.
    pub phones: Vec<PhoneInWave>,
}

/// The whole rollout, as `rollout status` shows it.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct RolloutView {
    /// When it started.
    pub started: String,
    /// The canaries.
    pub canaries: Vec<String>,
    /// The vault's layout.
    pub layout: String,
    /// True if `rollout learn` (or `format set`) confirmed that layout for this rollout.
    pub layout_confirmed: bool,
    /// True once a wave took every phone.
    pub complete: bool,
    /// When publish last wrote the tree in the rollout's state; `None` since a change it has
    /// not published (`advance` or `abort` without `--src`/`--out`, a new layout).
    pub published: Option<String>,
    /// The waves advanced.
    pub waves: Vec<WaveView>,
    /// Phones of the vault no wave took: served their per-phone files in plaintext.
    pub plaintext_phones: usize,
}

/// Where the requests of a view come from, and the tree to judge them by.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Reads<'a> {
    /// serve's ledger: a request names the KeyDesc of an encrypted file served. With the
    /// rollout's tree, the file it names must also be there, sealed for the phone (in the
    /// vault's layout, with the data key); without (`rollout status` away from the tree), the
    /// KeyDesc alone counts.
    Ledger(Option<&'a Path>),
    /// nginx's access log, judged by the rollout's tree alone (it names no KeyDesc).
    Nginx(&'a Path),
}

/// The view of `rollout` of `vault`'s phones, judged by `status` and the requests `entries`
/// (read from `reads`); with `data_key`, a file counts only if its phone's key opens it in the
/// vault's layout.
pub fn view(
    vault: &Vault,
    rollout: &Rollout,
    status: &FleetStatus,
    entries: &[Entry],
    reads: Reads<'_>,
    data_key: Option<&DataKey>,
) -> RolloutView {
    let (mut tree, needs_key_desc) = match reads {
        Reads::Ledger(tree) => (tree.map(|root| PublishedTree::new(root, data_key)), true),
        Reads::Nginx(root) => (Some(PublishedTree::new(root, data_key)), false),
    };
    let fleet: Vec<Mac> = vault.records().map(|r| r.mac()).collect();
    // Indexed once: at 100,000 phones a search per phone would be 10^10 comparisons.
    let mut by_phone: HashMap<&str, Vec<&Entry>> = HashMap::new();
    for entry in entries {
        if let Some(mac) = &entry.mac {
            by_phone.entry(mac.as_str()).or_default().push(entry);
        }
    }
    let statuses: HashMap<&str, &PhoneStatus> =
        status.phones.iter().map(|p| (p.mac.as_str(), p)).collect();
    let mut taken: HashSet<Mac> = HashSet::new();
    let last = rollout.waves().len().saturating_sub(1);
    // The tree shows the rollout's state only once publish wrote it; a read in the second it
    // did may have come before.
    let published_from = rollout
        .published()
        .map(|t| Timestamp::from_unix_seconds(t.unix_seconds() + 1));
    let waves = rollout
        .waves()
        .iter()
        .enumerate()
        .map(|(index, wave)| {
            let macs: Vec<Mac> = match wave.phones() {
                WavePhones::Listed(macs) => macs.clone(),
                _ => fleet
                    .iter()
                    .filter(|m| !taken.contains(m))
                    .copied()
                    .collect(),
            };
            taken.extend(&macs);
            let reads_from = if index == last {
                published_from
            } else {
                Some(wave.advanced())
            };
            let from = |time: Option<Timestamp>| time.map_or(u64::MAX, |t| t.unix_seconds());
            let (since, since_published) = (from(reads_from), from(published_from));
            let since_advanced = wave.advanced().unix_seconds();
            WaveView {
                number: index + 1,
                advanced: wave.advanced().to_string(),
                rest: matches!(wave.phones(), WavePhones::Rest),
                reads_from: reads_from.map(|t| t.to_string()),
                phones: macs
                    .iter()
                    .map(|mac| {
                        let name = mac.to_string();
                        let requests = by_phone.get(name.as_str()).map_or(&[][..], Vec::as_slice);
                        let phone = statuses.get(name.as_str()).copied();
                        let mut encrypted = |entry: &Entry| {
                            (entry.key_desc.is_some() || !needs_key_desc)
                                && tree
                                    .as_mut()
                                    .is_none_or(|t| t.is_encrypted(vault, &name, &entry.path))
                        };
                        let after = |since: u64| {
                            requests.iter().copied().filter(move |e| {
                                e.timestamp().is_some_and(|t| t.unix_seconds() >= since)
                            })
                        };
                        let settled_on = settled(&name, after(since), &mut encrypted);
                        let health = phone.map_or(Health::NeverSeen, |p| p.health);
                        let proves_layout = health == Health::Ok
                            && settled(&name, after(since_published), &mut encrypted)
                                == Settled::PolledAgain;
                        let served_since_advanced =
                            settled(&name, after(since_advanced), &mut encrypted)
                                != Settled::NotServed;
                        PhoneInWave {
                            settled: settled_on,
                            health,
                            proves_layout,
                            served_since_advanced,
                            detail: phone.map(|p| p.detail.clone()).unwrap_or_default(),
                            mac: name,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    RolloutView {
        started: rollout.started().to_string(),
        canaries: rollout.canaries().iter().map(Mac::to_string).collect(),
        layout: vault.layout().to_string(),
        layout_confirmed: rollout.layout() == Some(vault.layout()),
        complete: rollout.is_complete(),
        published: rollout.published().map(|t| t.to_string()),
        waves,
        plaintext_phones: fleet.iter().filter(|m| !rollout.encrypts(m)).count(),
    }
}

/// Where phone `mac` stands, from its requests since its wave, in time order (`encrypted`
/// tells an encrypted file served). It polled again only with a master request after it read
/// on past its last encrypted file, to another file it GETs: a phone that cannot decrypt a
/// file restarts right after it (docs/ROLLOUT.md), uploading its log (a PUT) on the way, and
/// one such restart is not yet the `reboot-loop` that `status` needs several for. The files it
/// uploads (its override and directory files, `UPLOAD_SUFFIXES`) it encrypted itself, and
/// reads back from the uploads: they show nothing of the files polyseal encrypted.
fn settled<'e>(
    mac: &str,
    requests: impl Iterator<Item = &'e Entry>,
    encrypted: &mut dyn FnMut(&Entry) -> bool,
) -> Settled {
    let uploads: Vec<String> = UPLOAD_SUFFIXES
        .iter()
        .map(|suffix| format!("{mac}{suffix}"))
        .collect();
    let mut settled = Settled::NotServed;
    let mut last_was_encrypted = false;
    for entry in requests {
        let served = entry.method == "GET" && entry.status == 200;
        // A boot asks for `<mac>.cfg` first, and for `000000000000.cfg` after a 404.
        if entry.method == "GET" && is_master(mac, &entry.path) {
            if served && settled == Settled::Served && !last_was_encrypted {
                return Settled::PolledAgain;
            }
            continue;
        }
        if entry.method != "GET" {
            continue;
        }
        let name = entry.path.rsplit('/').next().unwrap_or(&entry.path);
        let uploaded = uploads.iter().any(|u| name.eq_ignore_ascii_case(u));
        last_was_encrypted = served && !uploaded && encrypted(entry);
        if last_was_encrypted {
            settled = Settled::Served;
        }
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: &str = "0004f2a10001";

    fn get(path: &str, encrypted: bool) -> Entry {
        let mut entry = Entry::now("GET", path, 200, 100);
        entry.mac = Some(MAC.to_owned());
        entry.key_desc = encrypted.then(|| format!("{MAC}-g1"));
        entry
    }

    fn by_key_desc(entry: &Entry) -> bool {
        entry.key_desc.is_some()
    }

    fn boot(encrypted_last: bool) -> Vec<Entry> {
        let mut own_master = get(&format!("{MAC}.cfg"), false);
        own_master.status = 404;
        let mut boot = vec![
            own_master,
            get("000000000000.cfg", false),
            get(&format!("{MAC}-key.cfg"), false),
            get(&format!("{MAC}-sip.cfg"), true),
        ];
        if !encrypted_last {
            boot.push(get("site.cfg", false));
            boot.push(get(&format!("overrides/{MAC}-phone.cfg"), true));
        }
        boot
    }

    #[test]
    fn a_restart_right_after_an_encrypted_file_is_not_a_poll() {
        let once = [boot(true), boot(false)].concat();
        // Served, then restarted right after its -sip.cfg: not settled, however it ends.
        assert_eq!(settled(MAC, once.iter(), &mut by_key_desc), Settled::Served);
        let looping = [boot(true), boot(true), vec![get("000000000000.cfg", false)]].concat();
        assert_eq!(
            settled(MAC, looping.iter(), &mut by_key_desc),
            Settled::Served
        );
    }

    #[test]
    fn a_boot_that_read_on_past_its_files_then_a_master_request_is_a_poll() {
        let polled = [boot(false), vec![get("000000000000.cfg", false)]].concat();
        assert_eq!(
            settled(MAC, polled.iter(), &mut by_key_desc),
            Settled::PolledAgain
        );
        assert_eq!(
            settled(MAC, boot(false).iter(), &mut by_key_desc),
            Settled::Served
        );
        assert_eq!(
            settled(MAC, std::iter::empty(), &mut by_key_desc),
            Settled::NotServed
        );
    }

    #[test]
    fn an_upload_after_an_encrypted_file_is_no_reading_on() {
        let mut log = Entry::now("PUT", &format!("{MAC}-boot.log"), 201, 100);
        log.mac = Some(MAC.to_owned());
        let looping = [boot(true), vec![log, get("000000000000.cfg", false)]].concat();
        assert_eq!(
            settled(MAC, looping.iter(), &mut by_key_desc),
            Settled::Served
        );
    }

    #[test]
    fn a_file_the_phone_uploaded_itself_is_not_one_polyseal_encrypted() {
        let mut sip = get(&format!("{MAC}-sip.cfg"), false);
        sip.key_desc = None;
        let read_back = [
            get("000000000000.cfg", false),
            sip,
            get(&format!("contacts/{MAC}-directory.xml"), true),
            get("site.cfg", false),
            get("000000000000.cfg", false),
        ];
        assert_eq!(
            settled(MAC, read_back.iter(), &mut by_key_desc),
            Settled::NotServed
        );
    }
}
