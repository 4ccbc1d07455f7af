//! `polyseal rotate`: move phones to a new key generation without bricking them.
//! docs/ROTATION.md describes the steps; `RotationStep` reads them from the vault.

use polyseal_crypto::Mac;
use std::path::PathBuf;

use polyseal_fleet::publish::{self, CheckedPublish, PublishRequest};
use polyseal_fleet::rotate::{self, Note, Targets};
use polyseal_fleet::uploads::uploads_in;
use polyseal_vault::{
    DataKey, InitialState, KeyState, KeyTiming, RotationStep, Vault, VaultWriter,
};

use crate::cli::{
    RepublishArgs, RotateCommand, RotateConfirmArgs, RotateFinishArgs, RotateStartArgs,
    RotateStatusArgs,
};
use crate::commands::publish::run_checked;
use crate::count::count;
use crate::failure::Failure;
use crate::phones::parse_key_file;
use crate::session::{Session, parse_macs};
use crate::table::print_listing;

pub(crate) fn run(session: &Session, command: RotateCommand) -> Result<(), Failure> {
    match command {
        RotateCommand::Start(args) => start(session, &args),
        RotateCommand::Confirm(args) => confirm(session, &args),
        RotateCommand::Finish(args) => finish(session, &args),
        RotateCommand::Status(args) => status(session, &args),
    }
}

/// The phones named on the command line, or with --all (or none named) every phone at the
/// step the command acts on.
fn named_macs(all: bool, macs: &[String]) -> Result<Option<Vec<Mac>>, Failure> {
    if all || macs.is_empty() {
        return Ok(None);
    }
    parse_macs(macs).map(Some)
}

/// [`Targets`] of the phones `named_macs` gives.
fn targets(named: Option<&[Mac]>) -> Targets<'_> {
    named.map_or(Targets::All, Targets::Named)
}

fn start(session: &Session, args: &RotateStartArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let named = named_macs(args.all, &args.macs)?;
    // Everything is checked before the vault changes: the phones, the uploads directory and
    // the tree to republish.
    let macs = rotate::start_targets(writer.vault(), targets(named.as_deref()))?;
    if let Some(dir) = &args.uploads {
        uploads_in(dir)?;
        rotate::check_uploads_readable(writer.vault())?;
    }
    let planned = check_republish(writer.vault(), &args.republish, &macs)?;
    if macs.is_empty() && args.uploads.is_none() {
        session.say("no phone to rotate: every phone is already rotating or has no key");
        // An interrupted `rotate start` left its keys made: its republish still has to run.
        if planned.is_none() {
            return Ok(());
        }
    }
    let data_key = session.unlock(writer.vault())?;
    if !macs.is_empty() {
        writer.add_keys(&data_key, &macs, InitialState::PreActive)?;
        session.say(&format!(
            "started rotation of {}: each has a new pre-active generation",
            count(macs.len(), "phone")
        ));
    }
    match &args.uploads {
        Some(dir) => {
            let rewritten = rotate::reseal_uploads(writer.vault(), &data_key, dir, &mut |note| {
                say_note(session, note)
            })?;
            for path in &rewritten {
                session.detail(&format!("wrote {}", path.display()));
            }
            let resealed = count(rewritten.len(), "uploaded file");
            session.say(&match writer.vault().key_timing() {
                KeyTiming::NextBoot => format!(
                    "decrypted {resealed} of rotating phones: a next-boot phone reads them \
                     back under either key"
                ),
                _ => format!("re-encrypted {resealed} of rotating phones under their new keys"),
            });
        }
        None => session.warn(
            "no --uploads given: a phone that reads back an override or directory it uploaded \
             under its old key will fail to decrypt it (docs/ROTATION.md)",
        ),
    }
    republish(session, &mut writer, planned, &data_key, "new keys")
}

fn confirm(session: &Session, args: &RotateConfirmArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let named = if args.macs.is_empty() {
        None
    } else {
        Some(parse_macs(&args.macs)?)
    };
    // Uploads are evidence only once decrypted, and every change is authenticated with the
    // data key: both take the identity.
    let received = match &args.ledger {
        Some(path) => Some(rotate::received_uploads(
            &crate::commands::status::read_ledger(session, path)?.entries,
        )),
        None => None,
    };
    if args.uploads.is_some() {
        rotate::check_uploads_readable(writer.vault())?;
    }
    let data_key = session.unlock(writer.vault())?;
    let uploads = args.uploads.as_deref().map(|dir| (dir, &data_key));
    let confirmations = rotate::confirm_received(
        writer.vault(),
        named.as_deref(),
        uploads,
        received.as_ref(),
        &mut |note| say_note(session, note),
    )?;
    writer.confirm(&data_key, &confirmations)?;
    let waiting = rotate::waiting(writer.vault());
    session.say(&format!(
        "confirmed {}; {waiting} still waiting for evidence",
        count(confirmations.len(), "phone")
    ));
    Ok(())
}

fn finish(session: &Session, args: &RotateFinishArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let named = named_macs(args.all, &args.macs)?;
    let changes = rotate::finish_changes(writer.vault(), targets(named.as_deref()))?;
    let planned = check_republish(writer.vault(), &args.republish, &[])?;
    // The identity is asked for before anything changes, so a wrong one changes nothing.
    let data_key = session.unlock(writer.vault())?;
    writer.set_states(&data_key, &changes)?;
    session.say(&format!(
        "finished rotation of {}: new generation active, old one deactivated",
        count(
            changes.iter().filter(|c| c.to == KeyState::Active).count(),
            "phone"
        )
    ));
    match planned {
        Some(_) => republish(
            session,
            &mut writer,
            planned,
            &data_key,
            "files under the new keys",
        ),
        None => republish_hint(session, "files under the new keys"),
    }
}

/// The republish of --src into --out, checked before a step changes the vault; `None` when
/// they were not given.
pub(crate) fn check_republish(
    vault: &Vault,
    args: &RepublishArgs,
    rotating: &[Mac],
) -> Result<Option<(CheckedPublish, PathBuf)>, Failure> {
    let (Some(src), Some(out)) = (&args.src, &args.out) else {
        return Ok(None);
    };
    let mut request = PublishRequest::new(src, out, parse_key_file(&args.key_file)?);
    request.phones_file = args.phones.as_deref();
    request.allow_plaintext_secrets = args.allow_plaintext_secrets;
    request.rotating = rotating;
    Ok(Some((publish::check(vault, &request)?, out.clone())))
}

/// Republishes the checked tree; without one, says what to run.
pub(crate) fn republish(
    session: &Session,
    writer: &mut VaultWriter,
    checked: Option<(CheckedPublish, PathBuf)>,
    data_key: &DataKey,
    what: &str,
) -> Result<(), Failure> {
    match checked {
        Some((checked, out)) => run_checked(session, writer, checked, data_key, &out),
        None => republish_hint(session, what),
    }
}

fn republish_hint(session: &Session, what: &str) -> Result<(), Failure> {
    session.say(&format!(
        "run `polyseal publish --src SRC --out OUT` to serve the {what}"
    ));
    Ok(())
}

/// One phone's line in `rotate status`.
#[derive(serde::Serialize)]
struct StatusRow {
    mac: String,
    step: String,
    active: Option<u32>,
    next: Option<u32>,
    since: Option<String>,
    evidence: Option<String>,
    /// With `--ledger`: what the ledger shows of the phone.
    #[serde(skip_serializing_if = "Option::is_none")]
    ledger: Option<LedgerView>,
}

/// The ledger's view of a rotating phone, beside the vault's (`rotate status --ledger`).
#[derive(serde::Serialize)]
struct LedgerView {
    health: String,
    last_seen: Option<String>,
    served_generation: Option<u32>,
    upload_generation: Option<u32>,
}

fn status(session: &Session, args: &RotateStatusArgs) -> Result<(), Failure> {
    let vault = session.vault_unchecked()?;
    let fleet = match &args.ledger {
        Some(path) => {
            let ledger = crate::commands::status::read_ledger(session, path)?;
            let options =
                polyseal_fleet::status::StatusOptions::new(polyseal_vault::Timestamp::now());
            let status = polyseal_fleet::status::fleet_status(
                Some(&vault),
                &ledger.entries,
                &ledger.summaries,
                vec![path.display().to_string()],
                ledger.torn_last_line,
                &options,
            );
            status
                .phones
                .into_iter()
                .map(|p| (p.mac.clone(), p))
                .collect::<std::collections::BTreeMap<_, _>>()
        }
        None => std::collections::BTreeMap::new(),
    };
    let rows: Vec<StatusRow> = vault
        .records()
        .map(|record| {
            let step = RotationStep::of(Some(record));
            let plaintext = if step.serves_plaintext(vault.key_timing()) {
                "; its per-phone files are to be served in plaintext until it is confirmed (key timing next-boot)"
            } else {
                ""
            };
            StatusRow {
                mac: record.mac().to_string(),
                step: format!("{step}{plaintext}"),
                active: step.active_generation(),
                next: step.next_generation(),
                since: step.since(Some(record)).map(|t| t.to_string()),
                evidence: step
                    .next_generation()
                    .and_then(|n| record.generation(n))
                    .and_then(|g| g.confirmed())
                    .map(|c| c.evidence.clone()),
                ledger: fleet.get(&record.mac().to_string()).map(|p| LedgerView {
                    health: p.health.as_str().to_owned(),
                    last_seen: p.last_seen.clone(),
                    served_generation: p.served_generation,
                    upload_generation: p.upload_generation,
                }),
            }
        })
        .collect();
    if args.ledger.is_none() {
        return print_listing(
            &rows,
            args.format,
            &["mac", "step", "since", "evidence"],
            |row| {
                vec![
                    row.mac.clone(),
                    row.step.clone(),
                    row.since.clone().unwrap_or_default(),
                    row.evidence.clone().unwrap_or_default(),
                ]
            },
        );
    }
    let generation = |g: Option<u32>| g.map_or("-".to_owned(), |g| format!("g{g}"));
    print_listing(
        &rows,
        args.format,
        &[
            "mac", "step", "since", "evidence", "ledger", "served", "uploads",
        ],
        |row| {
            let ledger = row.ledger.as_ref();
            vec![
                row.mac.clone(),
                row.step.clone(),
                row.since.clone().unwrap_or_default(),
                row.evidence.clone().unwrap_or_default(),
                ledger.map_or("-".to_owned(), |l| l.health.clone()),
                generation(ledger.and_then(|l| l.served_generation)),
                generation(ledger.and_then(|l| l.upload_generation)),
            ]
        },
    )
}

/// Says what the rotation engine noted: details with `-v`, warnings always.
fn say_note(session: &Session, note: Note) {
    match note {
        Note::Detail(text) => session.detail(&text),
        Note::Warning(text) => session.warn(&text),
    }
}
