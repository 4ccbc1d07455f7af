//! `verify`: replays the event log through the same state machine the writer uses, and
//! compares the result with `vault.toml` and every record.

use std::collections::BTreeMap;

use polyseal_crypto::Mac;

use crate::event::{Event, EventKind, KeyRef, LogHead, read_log};
use crate::layout::{bucket_of, bucket_relative_path};
use crate::record::{Confirmed, Generation, push_generation};
use crate::{Error, KeyState, KeyTiming, Vault};

/// At most this many findings are listed; the rest are counted.
const MAX_FINDINGS: usize = 100;

/// The result of a successful [`Vault::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The event log's head; its hash anchors the whole history.
    pub head: LogHead,
    /// How many phones have records.
    pub phones: usize,
    /// How many key generations they have in all.
    pub generations: usize,
}

/// What the event log says the vault should hold.
#[derive(Default)]
struct Replayed {
    vault_id: Option<String>,
    key_desc_template: Option<String>,
    cryptoperiod_days: Option<u32>,
    key_timing: KeyTiming,
    layout: polyseal_crypto::Layout,
    /// The digest of the rollout, if one is kept.
    rollout: Option<String>,
    /// Absent from a log: 1.
    threshold: Option<u32>,
    data_key_check: Option<String>,
    /// Label and public key, in the order added.
    recipients: Vec<(String, String)>,
    keys: BTreeMap<Mac, Vec<Generation>>,
}

#[derive(Default)]
struct Findings {
    listed: Vec<String>,
    omitted: usize,
}

impl Findings {
    fn add(&mut self, finding: String) {
        if self.listed.len() < MAX_FINDINGS {
            self.listed.push(finding);
        } else {
            self.omitted += 1;
        }
    }

    fn into_list(mut self) -> Vec<String> {
        if self.omitted > 0 {
            self.listed
                .push(format!("… and {} more problems", self.omitted));
        }
        self.listed
    }
}

pub(crate) fn verify(vault: &Vault) -> Result<VerifyReport, Error> {
    let failed = |findings: Vec<String>| Error::VerifyFailed {
        dir: vault.dir().to_path_buf(),
        findings,
    };
    let (events, head) = match read_log(&vault.layout.events()) {
        Ok(log) => log,
        // A broken chain makes everything after it untrustworthy: stop there.
        Err(e @ (Error::EventLog { .. } | Error::MissingFile { .. })) => {
            return Err(failed(vec![e.to_string()]));
        }
        Err(e) => return Err(e),
    };
    let mut findings = Findings::default();
    let replayed = replay(&events, &mut findings);
    compare_config(vault, &replayed, &mut findings);
    compare_records(vault, &replayed, &mut findings);
    if findings.listed.is_empty() {
        Ok(VerifyReport {
            head,
            phones: vault.records.len(),
            generations: vault.records.values().map(|r| r.generations().len()).sum(),
        })
    } else {
        Err(failed(findings.into_list()))
    }
}

fn replay(events: &[Event], findings: &mut Findings) -> Replayed {
    let mut replayed = Replayed::default();
    if events.is_empty() {
        findings.add("events.log is empty: it must begin with the vault's creation".to_owned());
    }
    for event in events {
        let at = |problem: String| format!("events.log line {}: {problem}", event.seq);
        match &event.kind {
            EventKind::Created {
                vault_id,
                key_desc_template,
                cryptoperiod_days,
                data_key_check,
            } if event.seq == 1 => {
                replayed.vault_id = Some(vault_id.to_string());
                replayed.key_desc_template = Some(key_desc_template.clone());
                replayed.cryptoperiod_days = *cryptoperiod_days;
                replayed.data_key_check = Some(data_key_check.clone());
            }
            _ if event.seq == 1 => {
                findings.add(at("the first event is not the creation".to_owned()))
            }
            EventKind::Created { .. } => findings.add(at("a second creation event".to_owned())),
            EventKind::RecipientAdded { label, public_key } => {
                if replayed.recipients.iter().any(|(l, _)| l == label) {
                    findings.add(at(format!("recipient {label:?} is added twice")));
                }
                replayed
                    .recipients
                    .push((label.clone(), public_key.clone()));
            }
            EventKind::RecipientRemoved {
                label,
                data_key_check,
                ..
            } => {
                let before = replayed.recipients.len();
                replayed.recipients.retain(|(l, _)| l != label);
                if replayed.recipients.len() == before {
                    findings.add(at(format!(
                        "removes recipient {label:?}, which was never added"
                    )));
                }
                replayed.data_key_check = Some(data_key_check.clone());
            }
            EventKind::DataKeyRotated { data_key_check } => {
                replayed.data_key_check = Some(data_key_check.clone());
            }
            EventKind::KeyTimingSet { timing } => replayed.key_timing = *timing,
            EventKind::LayoutSet { layout } => replayed.layout = *layout,
            EventKind::RolloutChanged { digest, .. } => replayed.rollout = digest.clone(),
            EventKind::ThresholdSet { threshold } => replayed.threshold = Some(*threshold),
            EventKind::DataKeyRewrapped { data_key_check } => {
                if replayed.data_key_check.as_ref() != Some(data_key_check) {
                    findings.add(at(format!(
                        "re-wraps data key {data_key_check}, which is not the current one"
                    )));
                }
            }
            // Changes the files' format, not what they say.
            EventKind::FormatUpgraded { .. } => {}
            EventKind::Acknowledged { label, public_key } => {
                if !replayed
                    .recipients
                    .iter()
                    .any(|(l, k)| l == label && k == public_key)
                {
                    findings.add(at(format!(
                        "acknowledges recipient {label:?}, which is not a recipient then"
                    )));
                }
            }
            EventKind::KeyAdded { key, state } => {
                let generations = replayed.keys.entry(key.mac).or_default();
                let expected = generations
                    .last()
                    .map_or(1, |g| g.number().saturating_add(1));
                if key.generation != expected {
                    findings.add(at(format!(
                        "adds generation {} of MAC {} where {expected} was next",
                        key.generation, key.mac
                    )));
                }
                push_generation(
                    generations,
                    Generation::new(
                        key.generation,
                        key.key_desc.clone(),
                        key.fingerprint,
                        *state,
                        event.time,
                        None,
                    ),
                );
            }
            EventKind::StateChanged { key, from, to } => {
                if let Err(problem) = replay_transition(&mut replayed, key, *from, *to, event) {
                    findings.add(at(problem));
                }
            }
            EventKind::Confirmed { key, evidence } => {
                if let Err(problem) = replay_confirmation(&mut replayed, key, evidence, event) {
                    findings.add(at(problem));
                }
            }
        }
    }
    replayed
}

fn replayed_generation<'a>(
    replayed: &'a mut Replayed,
    key: &KeyRef,
) -> Result<&'a mut Generation, String> {
    let generation = replayed
        .keys
        .get_mut(&key.mac)
        .and_then(|gs| gs.iter_mut().find(|g| g.number() == key.generation))
        .ok_or_else(|| {
            format!(
                "names generation {} of MAC {}, which was never added",
                key.generation, key.mac
            )
        })?;
    if generation.key_desc() != &key.key_desc || generation.fingerprint() != key.fingerprint {
        return Err(format!(
            "names generation {} of MAC {} with another KeyDesc or fingerprint than it was \
             added with",
            key.generation, key.mac
        ));
    }
    Ok(generation)
}

fn replay_transition(
    replayed: &mut Replayed,
    key: &KeyRef,
    from: KeyState,
    to: KeyState,
    event: &Event,
) -> Result<(), String> {
    let other_active = replayed.keys.get(&key.mac).is_some_and(|gs| {
        gs.iter()
            .any(|g| g.state() == KeyState::Active && g.number() != key.generation)
    });
    let generation = replayed_generation(replayed, key)?;
    if generation.state() != from || !from.can_become(to) {
        return Err(format!(
            "moves generation {} of MAC {} from {from} to {to}, but it was {} and that \
             transition is {}",
            key.generation,
            key.mac,
            generation.state(),
            if from.can_become(to) {
                "allowed"
            } else {
                "illegal"
            }
        ));
    }
    if to == KeyState::Active && other_active {
        return Err(format!(
            "activates generation {} of MAC {} while another generation is active",
            key.generation, key.mac
        ));
    }
    generation.enter(to, event.time);
    Ok(())
}

fn replay_confirmation(
    replayed: &mut Replayed,
    key: &KeyRef,
    evidence: &str,
    event: &Event,
) -> Result<(), String> {
    let generation = replayed_generation(replayed, key)?;
    if generation.state() != KeyState::PreActive || generation.confirmed().is_some() {
        return Err(format!(
            "confirms generation {} of MAC {}, which is {} or already confirmed",
            key.generation,
            key.mac,
            generation.state()
        ));
    }
    generation.set_confirmed(Confirmed {
        at: event.time,
        evidence: evidence.to_owned(),
    });
    Ok(())
}

fn compare_config(vault: &Vault, replayed: &Replayed, findings: &mut Findings) {
    let config = &vault.config;
    let mut differs = |field: &str, file: String, log: Option<String>| {
        let log = log.unwrap_or_else(|| "nothing".to_owned());
        if file != log {
            findings.add(format!(
                "vault.toml: {field} is {file}, the event log says {log}"
            ));
        }
    };
    differs(
        "vault_id",
        config.vault_id.to_string(),
        replayed.vault_id.clone(),
    );
    differs(
        "key_desc_template",
        config.key_desc_template.as_str().to_owned(),
        replayed.key_desc_template.clone(),
    );
    let days = |days: Option<u32>| days.map_or_else(|| "unset".to_owned(), |d| d.to_string());
    differs(
        "cryptoperiod_days",
        days(config.cryptoperiod.map(|c| c.days())),
        Some(days(replayed.cryptoperiod_days)),
    );
    differs(
        "key_timing",
        config.key_timing.to_string(),
        Some(replayed.key_timing.to_string()),
    );
    differs(
        "layout",
        config.layout.to_string(),
        Some(replayed.layout.to_string()),
    );
    differs(
        "rollout",
        config.rollout.as_ref().map_or_else(
            || "nothing".to_owned(),
            |r| format!("digest {}", r.digest()),
        ),
        replayed.rollout.as_ref().map(|d| format!("digest {d}")),
    );
    differs(
        "threshold",
        config.threshold.to_string(),
        Some(replayed.threshold.unwrap_or(1).to_string()),
    );
    differs(
        "data_key_check",
        config.data_key_check.clone(),
        replayed.data_key_check.clone(),
    );
    let mut in_file: Vec<(String, String)> = config
        .recipients
        .iter()
        .map(|r| (r.label().to_owned(), r.public_key()))
        .collect();
    let mut in_log = replayed.recipients.clone();
    in_file.sort();
    in_log.sort();
    if in_file != in_log {
        let labels = |list: &[(String, String)]| {
            list.iter()
                .map(|(label, _)| label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        findings.add(format!(
            "vault.toml: the recipients ({}) differ from those the event log added and \
             removed ({})",
            labels(&in_file),
            labels(&in_log)
        ));
    }
}

fn compare_records(vault: &Vault, replayed: &Replayed, findings: &mut Findings) {
    for (mac, expected) in &replayed.keys {
        let file = bucket_relative_path(bucket_of(mac));
        let Some(record) = vault.records.get(mac) else {
            findings.add(format!(
                "{file}: MAC {mac} has no record, but the event log added {} generation(s) \
                 (record deleted)",
                expected.len()
            ));
            continue;
        };
        for want in expected {
            match record.generation(want.number()) {
                None => findings.add(format!(
                    "{file}: MAC {mac} generation {} is missing (the event log says {})",
                    want.number(),
                    want.describe()
                )),
                Some(have) if !have.same_metadata(want) => findings.add(format!(
                    "{file}: MAC {mac} generation {} says {}; the event log says {} (record edited)",
                    want.number(),
                    have.describe(),
                    want.describe()
                )),
                Some(_) => {}
            }
        }
        for have in record.generations() {
            if !expected.iter().any(|g| g.number() == have.number()) {
                findings.add(format!(
                    "{file}: MAC {mac} generation {} is not in the event log (record inserted)",
                    have.number()
                ));
            }
        }
    }
    for mac in vault.records.keys() {
        if !replayed.keys.contains_key(mac) {
            findings.add(format!(
                "{}: MAC {mac} has a record the event log never added (record inserted or \
                 moved from another MAC)",
                bucket_relative_path(bucket_of(mac))
            ));
        }
    }
}
