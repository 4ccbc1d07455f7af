//! `polyseal rotate`: move phones to a new key generation without bricking them.
//! docs/ROTATION.md describes the steps; `RotationStep` reads them from the vault.

use polyseal_crypto::Mac;
use polyseal_fleet::publish::PublishRequest;
use polyseal_fleet::rotate::{self, Note, Targets};
use polyseal_vault::{InitialState, KeyState, KeyTiming, RotationStep, VaultWriter};

use crate::cli::{ListFormat, RotateArgs, RotateCommand, RotateStatusArgs};
use crate::commands::publish::publish_with;
use crate::failure::Failure;
use crate::phones::key_file_pattern;
use crate::session::{Session, parse_macs};
use crate::table::{Table, emit};

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
fn named_macs(args: &RotateArgs) -> Result<Option<Vec<Mac>>, Failure> {
    if args.all || args.macs.is_empty() {
        return Ok(None);
    }
    parse_macs(&args.macs).map(Some)
}

/// [`Targets`] of the phones `named_macs` gives.
fn targets(named: Option<&[Mac]>) -> Targets<'_> {
    named.map_or(Targets::All, Targets::Named)
}

fn start(session: &Session, args: &RotateArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let named = named_macs(args)?;
    let macs = rotate::start_targets(writer.vault(), targets(named.as_deref()))?;
    if macs.is_empty() && args.uploads.is_none() {
        session.say("no phone to rotate: every phone is already rotating or has no key");
        return Ok(());
    }
    let data_key = session.unlock(writer.vault())?;
    if !macs.is_empty() {
        writer.add_keys(&data_key, &macs, InitialState::PreActive)?;
        session.say(&format!(
            "started rotation of {} phones: each has a new pre-active generation",
            macs.len()
        ));
    }
    match &args.uploads {
        Some(dir) => {
            let resealed = rotate::reseal_uploads(writer.vault(), &data_key, dir)?;
            session.say(&match writer.vault().key_timing() {
                KeyTiming::NextBoot => format!(
                    "decrypted {resealed} uploaded files of rotating phones: a next-boot phone \
                     reads them back under either key"
                ),
                _ => format!(
                    "re-encrypted {resealed} uploaded files of rotating phones under their new keys"
                ),
            });
        }
        None => session.warn(
            "no --uploads given: a phone that reads back an override or directory it uploaded \
             under its old key will fail to decrypt it (docs/ROTATION.md)",
        ),
    }
    republish(session, &mut writer, args, "new keys")
}

fn confirm(session: &Session, args: &RotateArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let named = if args.macs.is_empty() {
        None
    } else {
        Some(parse_macs(&args.macs)?)
    };
    let plan = rotate::confirm(writer.vault(), named.as_deref(), args.uploads.as_deref())?;
    for note in &plan.notes {
        match note {
            Note::Detail(text) => session.detail(text),
            Note::Warning(text) => session.warn(text),
        }
    }
    writer.confirm(&plan.confirmations)?;
    let waiting = rotate::waiting(writer.vault());
    session.say(&format!(
        "confirmed {} phones; {waiting} still waiting for evidence",
        plan.confirmations.len()
    ));
    Ok(())
}

fn finish(session: &Session, args: &RotateArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let named = named_macs(args)?;
    let changes = rotate::finish_changes(writer.vault(), targets(named.as_deref()))?;
    writer.set_states(&changes)?;
    session.say(&format!(
        "finished rotation of {} phones: new generation active, old one deactivated",
        changes.iter().filter(|c| c.to == KeyState::Active).count()
    ));
    republish(session, &mut writer, args, "files under the new keys")
}

/// Republishes when --src and --out were given; otherwise says what to run.
fn republish(
    session: &Session,
    writer: &mut VaultWriter,
    args: &RotateArgs,
    what: &str,
) -> Result<(), Failure> {
    let (Some(src), Some(out)) = (&args.src, &args.out) else {
        session.say(&format!(
            "run `polyseal publish --src SRC --out OUT` to serve the {what}"
        ));
        return Ok(());
    };
    let mut request = PublishRequest::new(src, out, key_file_pattern(&args.key_file)?);
    request.phones_file = args.phones.as_deref();
    publish_with(session, writer, &request, false)
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
}

fn status(session: &Session, args: &RotateStatusArgs) -> Result<(), Failure> {
    let vault = session.vault()?;
    let rows: Vec<StatusRow> = vault
        .records()
        .map(|record| {
            let step = RotationStep::of(Some(record));
            let plaintext = if step.serves_plaintext(vault.key_timing()) {
                "; its per-phone files are served in plaintext until it is confirmed (key timing next-boot)"
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
            }
        })
        .collect();
    if args.format == ListFormat::Json {
        let json =
            serde_json::to_string_pretty(&rows).map_err(|e| Failure::input(e.to_string()))?;
        return emit(&format!("{json}\n"));
    }
    let mut table = Table::new(&["mac", "step", "since", "evidence"]);
    for row in rows {
        table.row(vec![
            row.mac,
            row.step,
            row.since.unwrap_or_default(),
            row.evidence.unwrap_or_default(),
        ]);
    }
    match args.format {
        ListFormat::Csv => table.print_csv(),
        _ => table.print(),
    }
}
