//! Computing the report from the vault, its log and the tree.

use std::collections::BTreeMap;

use polyseal_vault::{
    Event, EventKind, FORMAT_VERSION, Generation, KeyState, Recipient, Record, Timestamp, Vault,
};

use super::ReportRequest;
use super::controls::controls;
use super::model::{
    AgeBin, AuditTrail, Change, Charts, Checks, Component, Custodian, Inventory, KeyRow,
    LedgerHealth, Report, ReportFinding, SCHEMA, TreeAudit, VaultSummary,
};
use crate::audit::{AuditRequest, Code, Severity, audit};
use crate::{Clock, Error};

/// Seconds in a day.
const DAY: u64 = 86_400;
/// Width of a bin of the key-age histogram, in days.
const AGE_BIN_DAYS: u64 = 30;
/// The histogram never has more bins than this; the last holds every older key.
const MAX_AGE_BINS: u64 = 25;
/// Every state, in NIST SP 800-57's order.
const STATES: [KeyState; 5] = [
    KeyState::PreActive,
    KeyState::Active,
    KeyState::Deactivated,
    KeyState::Compromised,
    KeyState::Destroyed,
];

/// Builds the report: every figure from the vault, its log and (when given) the tree.
pub fn build(request: ReportRequest<'_>, clock: &dyn Clock) -> Result<Report, Error> {
    let ReportRequest {
        vault,
        tree,
        data_key,
        as_of,
        ledger,
    } = request;
    let generated = Timestamp::from_system_time(clock.now());
    let as_of = as_of.unwrap_or(generated);

    let (verified, mut log_problems) = match vault.verify() {
        Ok(report) => (Some(report), Vec::new()),
        Err(polyseal_vault::Error::VerifyFailed { findings, .. }) => (None, findings),
        Err(error) => (None, vec![error.to_string()]),
    };
    let events = match vault.events() {
        Ok(events) => events,
        Err(error) => {
            let problem = error.to_string();
            if !log_problems.contains(&problem) {
                log_problems.push(problem);
            }
            Vec::new()
        }
    };
    if let Some(first) = events.first().filter(|first| as_of < first.time) {
        return Err(Error::AsOfBeforeVault {
            as_of: as_of.to_string(),
            created: first.time.to_string(),
        });
    }
    let mut not_made = Vec::new();
    let authenticity_checked = match &data_key {
        Ok(key) => {
            if let Err(error) = vault.open_live_keys(key) {
                log_problems.push(format!("a key does not open: {error}"));
            }
            true
        }
        Err(reason) => {
            not_made.push(format!(
                "the vault's files against its authenticated head, and every key against its \
                 fingerprint: {reason}"
            ));
            if tree.is_some() {
                not_made.push(
                    "the published files' decryption under their phones' keys: needs the \
                     identity too"
                        .to_owned(),
                );
            }
            false
        }
    };

    let keys = key_rows(vault, as_of);
    let mut findings = cryptoperiod_findings(vault, &keys);
    if !log_problems.is_empty() {
        findings.insert(
            0,
            ReportFinding {
                severity: Code::EventLogUnverified.severity().as_str(),
                code: Code::EventLogUnverified.as_str(),
                mac: None,
                message: format!(
                    "the vault's event log does not verify: {}",
                    log_problems.join("; ")
                ),
                fix: "find out what changed the vault (polyseal log verify; the heads you \
                      anchored), and restore it from a copy you trust"
                    .to_owned(),
            },
        );
    }
    let ledger = ledger.map(|(source, ledger)| {
        let mut status = crate::status::fleet_status(
            Some(vault),
            &ledger.entries,
            &ledger.summaries,
            vec![source.to_owned()],
            ledger.torn_last_line,
            &crate::status::StatusOptions::new(as_of),
        );
        status.count_folded_unidentified(ledger.unidentified.as_ref());
        // A phone in a reboot loop, or refused its own files, is not provisioned: findings.
        for phone in &status.phones {
            let (severity, fix) = match phone.health {
                crate::status::Health::RebootLoop => (
                    "error",
                    "republish the phone's files (polyseal audit --tree finds a file under the \
                     wrong key), and see docs/DELIVERY.md, status",
                ),
                crate::status::Health::Refused => (
                    "warning",
                    "publish the file the phone asks for, or correct its plan",
                ),
                _ => continue,
            };
            findings.push(ReportFinding {
                severity,
                code: phone.health.as_str(),
                mac: Some(phone.mac.clone()),
                message: format!(
                    "the ledger shows {}: {}",
                    phone.health.as_str(),
                    phone.detail
                ),
                fix: fix.to_owned(),
            });
        }
        LedgerHealth {
            source: source.to_owned(),
            requests: status.requests,
            torn_last_line: status.torn_last_line,
            by_health: status.summary,
        }
    });
    let tree_audit = match tree {
        Some(tree) => {
            let audited = audit(
                AuditRequest {
                    tree,
                    vault,
                    listed: None,
                    uploads: None,
                    data_key,
                    as_of: Some(as_of),
                },
                clock,
            )?;
            let mut by_code = BTreeMap::new();
            for finding in audited.findings() {
                *by_code.entry(finding.code.as_str().to_owned()).or_insert(0) += 1;
                // The tree's errors and warnings are the report's findings too: a tree that
                // serves a compromised key must not leave the first screen green.
                if matches!(finding.severity(), Severity::Error | Severity::Warning)
                    && finding.code != Code::KeyPastCryptoperiod
                {
                    let file = finding
                        .file
                        .as_ref()
                        .map_or(String::new(), |f| format!("{}: ", f.display()));
                    findings.push(ReportFinding {
                        severity: finding.severity().as_str(),
                        code: finding.code.as_str(),
                        mac: finding.mac.map(|m| m.to_string()),
                        message: format!("{file}{}", finding.message),
                        fix: finding.fix.clone(),
                    });
                }
            }
            Some(TreeAudit {
                tree: tree.root().display().to_string(),
                errors: audited.count(Severity::Error),
                warnings: audited.count(Severity::Warning),
                by_code,
                skipped: audited
                    .skipped
                    .iter()
                    .map(|(check, why)| format!("{}: {why}", check.as_str()))
                    .collect(),
            })
        }
        None => None,
    };

    let inventory = inventory(vault, &keys);
    let charts = charts(vault, &keys, &events, as_of);
    let custodians = custodians(vault, &events);
    let audit_trail = audit_trail(&events, verified.map(|r| r.head));
    let checks = Checks {
        log_verified: log_problems.is_empty(),
        log_problems,
        authenticity_checked,
        not_made,
    };
    let summary = VaultSummary {
        dir: vault.dir().display().to_string(),
        id: vault.id().to_string(),
        format: FORMAT_VERSION,
        key_desc_template: vault.key_desc_template().as_str().to_owned(),
        cryptoperiod_days: vault.cryptoperiod().map(|p| p.days()),
        key_timing: vault.key_timing().to_string(),
        threshold: vault.threshold(),
    };
    let changes = changes(&events, as_of);
    let controls = controls(&summary, &inventory, &custodians, &checks, &audit_trail);
    Ok(Report {
        schema: SCHEMA,
        generated: generated.to_string(),
        as_of: as_of.to_string(),
        vault: summary,
        checks,
        architecture: architecture(),
        inventory,
        keys,
        charts,
        custodians,
        changes,
        audit_trail,
        tree_audit,
        ledger,
        findings,
        controls,
    })
}

fn key_rows(vault: &Vault, as_of: Timestamp) -> Vec<KeyRow> {
    let period = vault.cryptoperiod();
    vault
        .records()
        .flat_map(|record| {
            record
                .generations()
                .iter()
                .map(move |g| key_row(record, g, period, as_of))
        })
        .collect()
}

fn key_row(
    record: &Record,
    generation: &Generation,
    period: Option<polyseal_vault::Cryptoperiod>,
    as_of: Timestamp,
) -> KeyRow {
    let time = |state| generation.since(state).map(|t| t.to_string());
    let activated = generation.since(KeyState::Active);
    let end = period.zip(activated).map(|(p, at)| p.end(at));
    let active = generation.state() == KeyState::Active;
    let remaining = end.filter(|_| active).map(|end| {
        let (end, now) = (end.unix_seconds() as i64, as_of.unix_seconds() as i64);
        (end - now).div_euclid(DAY as i64)
    });
    KeyRow {
        mac: record.mac().to_string(),
        generation: generation.number(),
        key_desc: generation.key_desc().to_string(),
        fingerprint: generation.fingerprint().to_string(),
        state: generation.state().to_string(),
        past_cryptoperiod: active && end.is_some_and(|end| as_of > end),
        created: generation.created().to_string(),
        activated: activated.map(|t| t.to_string()),
        deactivated: time(KeyState::Deactivated),
        compromised: time(KeyState::Compromised),
        destroyed: time(KeyState::Destroyed),
        confirmed: generation.confirmed().map(|c| c.at.to_string()),
        confirmed_by: generation.confirmed().map(|c| c.evidence.clone()),
        age_days: as_of
            .unix_seconds()
            .saturating_sub(generation.created().unix_seconds())
            / DAY,
        cryptoperiod_end: end.map(|t| t.to_string()),
        cryptoperiod_remaining_days: remaining,
    }
}

fn cryptoperiod_findings(vault: &Vault, keys: &[KeyRow]) -> Vec<ReportFinding> {
    let Some(period) = vault.cryptoperiod() else {
        return Vec::new();
    };
    keys.iter()
        .filter(|k| k.past_cryptoperiod)
        .map(|k| ReportFinding {
            severity: Code::KeyPastCryptoperiod.severity().as_str(),
            code: Code::KeyPastCryptoperiod.as_str(),
            mac: Some(k.mac.clone()),
            message: format!(
                "generation {} ({}) active since {}: its {}-day cryptoperiod ended {}",
                k.generation,
                k.key_desc,
                k.activated.as_deref().unwrap_or(&k.created),
                period.days(),
                k.cryptoperiod_end.as_deref().unwrap_or("?")
            ),
            fix: format!(
                "rotate it: polyseal rotate start {} --src SRC --out TREE, then confirm and \
                 finish (docs/ROTATION.md)",
                k.mac
            ),
        })
        .collect()
}

fn inventory(vault: &Vault, keys: &[KeyRow]) -> Inventory {
    let mut inventory = Inventory {
        phones: vault.records().len(),
        generations: keys.len(),
        by_state: STATES.iter().map(|s| (s.to_string(), 0)).collect(),
        ..Inventory::default()
    };
    for key in keys {
        *inventory.by_state.entry(key.state.clone()).or_insert(0) += 1;
        *inventory
            .by_generation
            .entry(key.generation.to_string())
            .or_insert(0) += 1;
        inventory.past_cryptoperiod += usize::from(key.past_cryptoperiod);
    }
    inventory
}

fn charts(vault: &Vault, keys: &[KeyRow], events: &[Event], as_of: Timestamp) -> Charts {
    let active: Vec<u64> = keys
        .iter()
        .filter(|k| k.state == KeyState::Active.to_string())
        .map(|k| k.age_days)
        .collect();
    let period_days = vault.cryptoperiod().map_or(0, |p| u64::from(p.days()));
    let oldest = active.iter().copied().max().unwrap_or(0);
    let bins = (period_days.max(oldest) / AGE_BIN_DAYS + 2).clamp(2, MAX_AGE_BINS);
    let mut active_key_age_days: Vec<AgeBin> = (0..bins)
        .map(|i| AgeBin {
            from_days: i * AGE_BIN_DAYS,
            to_days: (i + 1 < bins).then_some((i + 1) * AGE_BIN_DAYS - 1),
            keys: 0,
        })
        .collect();
    for age in active {
        let bin = (age / AGE_BIN_DAYS).min(bins - 1);
        if let Some(bin) = usize::try_from(bin)
            .ok()
            .and_then(|i| active_key_age_days.get_mut(i))
        {
            bin.keys += 1;
        }
    }
    let months = last_twelve_months(as_of);
    let mut rotations_per_month: BTreeMap<String, usize> =
        months.iter().map(|m| (m.clone(), 0)).collect();
    for event in events.iter().filter(|e| e.time <= as_of) {
        if let EventKind::StateChanged {
            key,
            to: KeyState::Active,
            ..
        } = &event.kind
        {
            if key.generation > 1 {
                if let Some(count) = rotations_per_month.get_mut(&month_of(event.time)) {
                    *count += 1;
                }
            }
        }
    }
    let mut keys_per_state: BTreeMap<String, usize> =
        STATES.iter().map(|s| (s.to_string(), 0)).collect();
    for key in keys {
        *keys_per_state.entry(key.state.clone()).or_insert(0) += 1;
    }
    Charts {
        active_key_age_days,
        keys_per_state,
        rotations_per_month,
    }
}

/// `YYYY-MM` of a time.
fn month_of(time: Timestamp) -> String {
    time.to_string().chars().take(7).collect()
}

/// The 12 months up to and including `as_of`'s, as `YYYY-MM`, oldest first.
fn last_twelve_months(as_of: Timestamp) -> Vec<String> {
    let month = month_of(as_of);
    let (year, month) = month.split_once('-').unwrap_or(("1970", "01"));
    let (year, month): (i64, i64) = (year.parse().unwrap_or(1970), month.parse().unwrap_or(1));
    let index = year * 12 + (month - 1);
    (index - 11..=index)
        .map(|i| format!("{:04}-{:02}", i.div_euclid(12), i.rem_euclid(12) + 1))
        .collect()
}

fn custodians(vault: &Vault, events: &[Event]) -> Vec<Custodian> {
    let mut custodians: Vec<Custodian> = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::RecipientAdded { label, public_key } => custodians.push(Custodian {
                label: label.clone(),
                kind: recipient_kind(public_key),
                public_key: public_key.clone(),
                added: Some(event.time.to_string()),
                removed: None,
                acknowledged: None,
            }),
            EventKind::Acknowledged { label, public_key } => {
                if let Some(custodian) = custodians.iter_mut().rev().find(|c| {
                    &c.label == label && &c.public_key == public_key && c.removed.is_none()
                }) {
                    custodian.acknowledged = Some(event.time.to_string());
                }
            }
            EventKind::RecipientRemoved {
                label, public_key, ..
            } => {
                if let Some(custodian) = custodians.iter_mut().rev().find(|c| {
                    &c.label == label && &c.public_key == public_key && c.removed.is_none()
                }) {
                    custodian.removed = Some(event.time.to_string());
                }
            }
            _ => {}
        }
    }
    // A log that could not be read still leaves the vault's recipients to list.
    for recipient in vault.recipients() {
        let public_key = recipient.public_key();
        if !custodians
            .iter()
            .any(|c| c.public_key == public_key && c.removed.is_none())
        {
            custodians.push(Custodian {
                label: recipient.label().to_owned(),
                kind: recipient_kind(&public_key),
                public_key,
                added: None,
                removed: None,
                acknowledged: None,
            });
        }
    }
    custodians
}

/// What kind of recipient a public key from the log or `vault.toml` is, in words
/// ([`Recipient::kind`]).
fn recipient_kind(public_key: &str) -> String {
    Recipient::parse("custodian", public_key).map_or_else(|_| "unknown".to_owned(), |r| r.kind())
}

fn changes(events: &[Event], as_of: Timestamp) -> Vec<Change> {
    events
        .iter()
        .filter(|e| e.time <= as_of)
        .filter_map(|event| {
            let (key, action, from, to, evidence) = match &event.kind {
                EventKind::KeyAdded { key, state } => {
                    (key, "add", None, Some(state.to_string()), None)
                }
                EventKind::StateChanged { key, from, to } => (
                    key,
                    "state",
                    Some(from.to_string()),
                    Some(to.to_string()),
                    None,
                ),
                EventKind::Confirmed { key, evidence } => {
                    (key, "confirm", None, None, Some(evidence.clone()))
                }
                _ => return None,
            };
            Some(Change {
                time: event.time.to_string(),
                mac: key.mac.to_string(),
                generation: key.generation,
                key_desc: key.key_desc.to_string(),
                action,
                from,
                to,
                evidence,
            })
        })
        .collect()
}

fn audit_trail(events: &[Event], head: Option<polyseal_vault::LogHead>) -> AuditTrail {
    let mut by_action = BTreeMap::new();
    for event in events {
        *by_action
            .entry(EventKind::action(&event.kind).to_owned())
            .or_insert(0) += 1;
    }
    AuditTrail {
        events: events.len() as u64,
        first_event: events.first().map(|e| e.time.to_string()),
        last_event: events.last().map(|e| e.time.to_string()),
        head: head.map(|h| format!("head {} {}", h.seq, h.hash_hex())),
        by_action,
    }
}

/// Every key of the system, what it protects and where it lives (docs/VAULT.md,
/// docs/FORMAT.md, docs/DELIVERY.md).
fn architecture() -> Vec<Component> {
    vec![
        Component {
            name: "phone configuration key",
            algorithm: "AES-128-CBC (the phones' format: docs/FORMAT.md), one key per phone and generation, from the operating system's random number generator",
            bits: Some(128),
            protects: "the phone's own configuration files (SIP credentials), encrypted with a fresh IV per file",
            lives: "sealed in the vault (keys/<xx>.jsonl); on the phone; in its bootstrap file <mac>-key.cfg on the provisioning server (plaintext, owner-only, served only over mutual TLS to that phone)",
        },
        Component {
            name: "vault data key",
            algorithm: "AES-256-GCM, a 96-bit random nonce per seal; associated data binds vault id, MAC, generation and KeyDesc",
            bits: Some(256),
            protects: "every phone key in the vault",
            lives: "data-key.age, sealed with age to every recipient; in memory of a command that unlocked the vault, zeroized after",
        },
        Component {
            name: "recipient identities (key-encrypting keys)",
            algorithm: "age v1: X25519, SSH ed25519, SSH RSA of 2048 bits or more, an age plugin (hardware token), or an OpenBao/HashiCorp Vault transit key (AES-256-GCM96 in the service); with a threshold, each holds one Shamir share (GF(256)) of the data key",
            bits: None,
            protects: "the vault data key",
            lives: "with each custodian (a file, an SSH key, a hardware token) or in the transit service (never leaving it); never in the vault",
        },
        Component {
            name: "vault head key",
            algorithm: "HMAC-SHA256 under a key derived from the data key with HKDF-SHA256 (salt: vault id)",
            bits: Some(256),
            protects: "every file of the vault and the end of its event log against change (head.json)",
            lives: "derived in memory when the vault is unlocked; never stored",
        },
        Component {
            name: "event log",
            algorithm: "SHA-256 hash chain; its end authenticated by the vault head",
            bits: None,
            protects: "the history of every key and custodian",
            lives: "events.log in the vault; its head recorded outside (docs/VAULT.md)",
        },
        Component {
            name: "transport",
            algorithm: "TLS with client certificates from the Polycom device CA chain (docs/DELIVERY.md)",
            bits: None,
            protects: "configuration files and bootstrap keys on the wire; each phone's files only to its own certificate",
            lives: "the provisioning web server",
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_twelve_months_cross_a_year() {
        let as_of = Timestamp::parse("2026-02-10T00:00:00Z").expect("time");
        let months = last_twelve_months(as_of);
        assert_eq!(months.first().map(String::as_str), Some("2025-03"));
        assert_eq!(months.last().map(String::as_str), Some("2026-02"));
        assert_eq!(months.len(), 12);
    }

    #[test]
    fn recipient_kinds_are_named() {
        assert_eq!(
            recipient_kind("age1y605jvun0aa3svvyf60lxdteud9wumq5rv2dv59v0e63wc0rv38qs3mm26"),
            "age X25519"
        );
        assert_eq!(
            recipient_kind(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN"
            ),
            "SSH ed25519"
        );
        assert_eq!(
            recipient_kind(
                "age1polysealtest1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0jq0arevz"
            ),
            "age plugin (polysealtest)"
        );
        assert_eq!(recipient_kind("not a key"), "unknown");
    }
}
