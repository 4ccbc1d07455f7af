//! `polyseal log`: the vault's event log.

use polyseal_vault::{EventKind, KeyRef, LogHead};

use crate::cli::{LogCommand, LogShowArgs, TableFormat};
use crate::count::count;
use crate::failure::Failure;
use crate::session::Session;
use crate::table::emit;

pub(crate) fn run(session: &Session, command: LogCommand) -> Result<(), Failure> {
    match command {
        LogCommand::Show(args) => show(session, &args),
        LogCommand::Verify(args) => {
            let anchor = parse_expect_head(args.expect_head.as_deref())?;
            let vault = session.vault()?;
            let report = vault.verify()?;
            if let Some(anchor) = &anchor {
                vault.check_anchor(anchor)?;
            }
            // With an identity, the files are checked against the authenticated head too.
            let authenticated = if session.has_identity(&vault) {
                session.unlock(&vault)?;
                vault.head_counter()
            } else {
                None
            };
            emit(&format!(
                "event log verified: {}, {}, {}\nhead {} {}\n",
                count(
                    usize::try_from(report.head.seq).unwrap_or(usize::MAX),
                    "event"
                ),
                count(report.phones, "phone"),
                count(report.generations, "key generation"),
                report.head.seq,
                report.head.hash_hex()
            ))?;
            if let Some(anchor) = anchor {
                session.say(&format!(
                    "the log holds the expected head {}:{}",
                    anchor.seq,
                    anchor.hash_hex()
                ));
            }
            match authenticated {
                Some(counter) => session.say(&format!(
                    "every file of the vault is as polyseal last wrote it (authenticated head, \
                     transaction {counter})"
                )),
                None => session.note_unchecked(),
            }
            Ok(())
        }
    }
}

/// `--expect-head HEAD`, as `log verify` prints a head, or bad input naming it.
pub(crate) fn parse_expect_head(text: Option<&str>) -> Result<Option<LogHead>, Failure> {
    text.map(|text| {
        LogHead::parse(text).ok_or_else(|| {
            Failure::input(format!(
                "--expect-head {text:?}: not a head as `log verify` prints it (`head SEQ HEX`, \
                 or `SEQ:HEX`: a sequence number and 64 hex digits)"
            ))
        })
    })
    .transpose()
}

fn show(session: &Session, args: &LogShowArgs) -> Result<(), Failure> {
    let vault = session.vault_unchecked()?;
    if args.json || args.format == TableFormat::Json {
        let path = session.vault_dir().join("events.log");
        let text = std::fs::read_to_string(&path).map_err(|e| Failure::io(&path, "read", &e))?;
        return emit(&text);
    }
    let mut text = String::new();
    for event in vault.events()? {
        text.push_str(&format!(
            "{:>6}  {}  {}\n",
            event.seq,
            event.time,
            describe(&event.kind)
        ));
    }
    emit(&text)
}

/// One event in words.
fn describe(kind: &EventKind) -> String {
    let key = |k: &KeyRef| {
        format!(
            "{} g{} {} {}",
            k.mac, k.generation, k.key_desc, k.fingerprint
        )
    };
    match kind {
        EventKind::Created {
            vault_id,
            key_desc_template,
            cryptoperiod_days,
            ..
        } => format!(
            "vault {vault_id} created, KeyDesc template {key_desc_template}, cryptoperiod {}",
            cryptoperiod_days.map_or("none".to_owned(), |d| format!("{d} days"))
        ),
        EventKind::RecipientAdded { label, public_key } => {
            format!("recipient {label:?} added ({public_key})")
        }
        EventKind::RecipientRemoved {
            label, public_key, ..
        } => {
            format!("recipient {label:?} removed ({public_key}); data key rotated")
        }
        EventKind::KeyAdded { key: k, state } => format!("key added: {} ({state})", key(k)),
        EventKind::StateChanged { key: k, from, to } => format!("{}: {from} -> {to}", key(k)),
        EventKind::Confirmed { key: k, evidence } => format!("{}: confirmed by {evidence}", key(k)),
        EventKind::KeyTimingSet { timing } => format!("key timing set to {timing}"),
        EventKind::LayoutSet { layout } => format!("layout of encrypted files set to {layout}"),
        EventKind::RolloutChanged { change, .. } => format!("rollout: {change}"),
        EventKind::Acknowledged { label, public_key } => {
            format!("custodian {label:?} ({public_key}) acknowledged their responsibilities")
        }
        EventKind::FormatUpgraded { from, to } => {
            format!("vault upgraded from format {from} to {to}, every key kept")
        }
        EventKind::DataKeyRotated { .. } => {
            "data key rotated: every key re-sealed under a new one (crypto-shredding)".to_owned()
        }
        EventKind::ThresholdSet { threshold } => format!(
            "threshold set: opening the vault needs {threshold} of its recipients; the data key \
             split anew"
        ),
        EventKind::DataKeyRewrapped { data_key_check } => format!(
            "data key {data_key_check} sealed anew to every recipient (transit keys at their \
             latest version)"
        ),
        // An event of a later version: its action is in the raw line (`log show --format json`).
        _ => "an event this version of polyseal does not describe".to_owned(),
    }
}
