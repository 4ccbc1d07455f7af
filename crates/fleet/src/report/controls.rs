//! The control map: PCI DSS v4.0.1 requirements 3.6.1–3.7.9, 10.2.2 and 10.3.4, and NIST SP
//! 800-57 Part 1 rev. 5 §5.3 and §7, each with what this report shows for it (with this vault's
//! figures) and, honestly, what no report of a tool can show (docs/COMPLIANCE.md).

use super::model::{AuditTrail, Checks, Control, Custodian, Inventory, VaultSummary};

pub(super) fn controls(
    vault: &VaultSummary,
    inventory: &Inventory,
    custodians: &[Custodian],
    checks: &Checks,
    trail: &AuditTrail,
) -> Vec<Control> {
    let current = custodians.iter().filter(|c| c.removed.is_none()).count();
    let acknowledged = custodians
        .iter()
        .filter(|c| c.removed.is_none() && c.acknowledged.is_some())
        .count();
    let state = |name: &str| inventory.by_state.get(name).copied().unwrap_or(0);
    let cryptoperiod = match vault.cryptoperiod_days {
        Some(days) => format!(
            "a cryptoperiod of {days} days is set; {} active key(s) are past it (Findings)",
            inventory.past_cryptoperiod
        ),
        None => "no cryptoperiod is set in the vault: none is enforced".to_owned(),
    };
    let log = if checks.log_verified {
        format!(
            "the event log verifies ({} events, hash-chained; {})",
            trail.events,
            trail.head.as_deref().unwrap_or("no head")
        )
    } else {
        "the event log does NOT verify (first screen)".to_owned()
    };
    let authenticity = if checks.authenticity_checked {
        "the vault's files were checked against its authenticated head for this report"
    } else {
        "the vault's authenticated head was not checked for this report (no identity)"
    };
    vec![
        Control {
            id: "PCI DSS v4 3.6.1",
            requirement: "Procedures protect cryptographic keys used to protect stored account data against disclosure and misuse",
            supported_by: format!(
                "Architecture: every key, where it lives and what protects it; {current} current custodian(s) (Custodians); {authenticity}"
            ),
            cannot_show: "the written procedures themselves, who may run polyseal with an identity, and how identities are stored by their holders".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.6.1.1",
            requirement: "Service providers: a documented description of the cryptographic architecture",
            supported_by: "Architecture: algorithms, key lengths, key hierarchy (recipients → data key → phone keys), where each key lives; the vault id and format".to_owned(),
            cannot_show: "the description of systems outside polyseal (the phones' other secrets, the PBX)".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.1",
            requirement: "Key-management procedures for generation of strong keys",
            supported_by: "Architecture: 128-bit phone keys and the 256-bit data key from the operating system's random number generator".to_owned(),
            cannot_show: "that the host's random number generator was sound when the keys were made".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.2",
            requirement: "Secure distribution of keys",
            supported_by: "Architecture: a phone receives its key only in its bootstrap file, served over TLS to the client certificate of its MAC; custodians receive the data key only sealed to their own recipient".to_owned(),
            cannot_show: "the web server's actual configuration and access control (audit the served tree with --tree; docs/DELIVERY.md)".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.3",
            requirement: "Secure storage of keys",
            supported_by: "Architecture: phone keys sealed with AES-256-GCM under the data key, the data key sealed with age to named recipients, every vault file mode 0600".to_owned(),
            cannot_show: "the storage of recipients' identities and of backups of the vault".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.4",
            requirement: "Key changes at the end of the defined cryptoperiod",
            supported_by: format!("Inventory and Findings: {cryptoperiod}; Charts: key age against the cryptoperiod; Changes: every rotation"),
            cannot_show: "the rationale for the cryptoperiod chosen".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.5",
            requirement: "Retirement or replacement of keys whose integrity is weakened or that are known or suspected to be compromised",
            supported_by: format!(
                "Inventory: {} deactivated, {} compromised, {} destroyed generation(s), each with its date; Changes: every transition and its evidence; a compromised or destroyed key replaces the data key (crypto-shredding)",
                state("deactivated"),
                state("compromised"),
                state("destroyed")
            ),
            cannot_show: "whether every suspected compromise was reported and marked".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.6",
            requirement: "Split knowledge and dual control for manual clear-text key-management operations",
            supported_by: if vault.threshold > 1 {
                format!(
                    "opening the vault needs {} of its {current} custodians: the data key is split with Shamir's scheme, one share sealed to each (docs/VAULT.md, Threshold); Custodians: who they are; a phone key is never shown unless asked for with --reveal",
                    vault.threshold
                )
            } else {
                "Custodians: who can open the vault; a phone key is never shown unless asked for with --reveal".to_owned()
            },
            cannot_show: if vault.threshold > 1 {
                "that the custodians keep their identities apart: one person holding enough of them defeats the threshold".to_owned()
            } else {
                "dual control: any one recipient can open this vault (no k-of-n threshold is set: polyseal recipients threshold K)".to_owned()
            },
        },
        Control {
            id: "PCI DSS v4 3.7.7",
            requirement: "Prevention of unauthorized substitution of keys",
            supported_by: format!("each sealed key is bound to its vault, MAC, generation and KeyDesc; every change is authenticated by the vault head; {authenticity}"),
            cannot_show: "substitution by someone who holds a recipient's identity".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.8",
            requirement: "Key custodians formally acknowledge their responsibilities",
            supported_by: format!("Custodians: {acknowledged} of {current} current custodian(s) have an acknowledgement recorded in the vault's log"),
            cannot_show: "the acknowledgement's wording and the custodian's identity as a person".to_owned(),
        },
        Control {
            id: "PCI DSS v4 3.7.9",
            requirement: "Service providers share key-management guidance with customers",
            supported_by: "docs/SECURITY.md and docs/ROTATION.md are the guidance polyseal gives".to_owned(),
            cannot_show: "that it was shared".to_owned(),
        },
        Control {
            id: "PCI DSS v4 10.2.2",
            requirement: "Audit logs record user identification, type of event, date and time, success or failure, origination, identity of affected data or resource",
            supported_by: format!("Audit trail and Changes: every key and custodian event with its time, the key by MAC, generation, KeyDesc and fingerprint; {log}"),
            cannot_show: "which person ran each command (the log records the custodian only for acknowledgements); the host's own logs".to_owned(),
        },
        Control {
            id: "PCI DSS v4 10.3.4",
            requirement: "File-integrity monitoring or change-detection on audit logs",
            supported_by: format!("{log}; the log's end is authenticated by the vault head; the head to record outside the vault is in the Audit trail"),
            cannot_show: "a rollback of the whole vault to an older copy unless its head is compared with one recorded elsewhere (polyseal log verify --expect-head)".to_owned(),
        },
        Control {
            id: "NIST SP 800-57 Pt1 §5.3",
            requirement: "Cryptoperiods",
            supported_by: format!("{cryptoperiod}; every key's activation date, age and remaining cryptoperiod (Inventory, inventory.csv)"),
            cannot_show: "the risk analysis behind the cryptoperiod".to_owned(),
        },
        Control {
            id: "NIST SP 800-57 Pt1 §7",
            requirement: "Key states and transitions",
            supported_by: format!(
                "Inventory: every generation in its state ({} pre-active, {} active, {} deactivated, {} compromised, {} destroyed) with each transition's date; only the transitions §7 allows are possible",
                state("pre-active"),
                state("active"),
                state("deactivated"),
                state("compromised"),
                state("destroyed")
            ),
            cannot_show: "keys outside this vault".to_owned(),
        },
    ]
}
