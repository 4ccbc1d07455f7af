//! `polyseal rotate`: move phones to a new key generation without bricking them.
//! docs/ROTATION.md describes the steps; [`Step`] reads them from the vault.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use polyseal_crypto::{
    Error as CryptoError, Header, MAX_FILE_SIZE, Mac, decrypt as open, encrypt as seal,
};
use polyseal_vault::{
    Confirmation, InitialState, KeyState, KeyTiming, StateChange, Vault, VaultWriter,
};

use crate::cli::{ListFormat, RotateArgs, RotateCommand, RotateStatusArgs};
use crate::commands::publish::report;
use crate::failure::Failure;
use crate::output_file::{PUBLIC_MODE, read_input, write_atomic};
use crate::phones::key_file_pattern;
use crate::publish::{PublishRequest, publish};
use crate::rotation::Step;
use crate::session::{Session, parse_macs};
use crate::table::{Table, emit};
use crate::uploads::uploads_in;

pub(crate) fn run(session: &Session, command: RotateCommand) -> Result<(), Failure> {
    match command {
        RotateCommand::Start(args) => start(session, &args),
        RotateCommand::Confirm(args) => confirm(session, &args),
        RotateCommand::Finish(args) => finish(session, &args),
        RotateCommand::Status(args) => status(session, &args),
    }
}

/// The phones named on the command line, or with --all every phone whose step `wanted` accepts.
fn targets(
    vault: &Vault,
    args: &RotateArgs,
    wanted: fn(Step) -> bool,
) -> Result<Vec<Mac>, Failure> {
    if args.all || args.macs.is_empty() {
        return Ok(vault
            .records()
            .filter(|r| wanted(Step::of(Some(r))))
            .map(|r| r.mac())
            .collect());
    }
    parse_macs(&args.macs)
}

fn start(session: &Session, args: &RotateArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let macs = targets(writer.vault(), args, |s| matches!(s, Step::Steady { .. }))?;
    for mac in &macs {
        match Step::of(writer.vault().record(mac)) {
            Step::Steady { .. } => {}
            Step::NoKey => {
                return Err(
                    Failure::input(format!("{mac} has no active key to rotate from")).with_hint(
                        "publish it first: `polyseal publish` makes and bootstraps its key",
                    ),
                );
            }
            step => {
                return Err(Failure::input(format!(
                    "{mac}: a rotation is already under way ({step})"
                ))
                .with_hint("confirm and finish it first (`polyseal rotate status`)"));
            }
        }
    }
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
            let resealed = reseal_uploads(writer.vault(), &data_key, dir)?;
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

/// Re-encrypts, under the new generation, every override and directory file that a rotating
/// phone uploaded under its old one: the phone reads them back at boot, and from `start` on it
/// holds only the new key. On a next-boot fleet a phone that has not yet proved it holds the
/// new key reads them back under the old key in one boot and the new one in the next, so they
/// are decrypted instead, as its per-phone files are served ([`Step::serves_plaintext`]); the
/// file keeps its mode. Idempotent: files already as they should be are left alone, so
/// `rotate start --all --uploads DIR` can be run again after an interruption.
fn reseal_uploads(
    vault: &Vault,
    data_key: &polyseal_vault::DataKey,
    dir: &Path,
) -> Result<usize, Failure> {
    let mut resealed = 0;
    for upload in read_uploads(dir)? {
        let Held::Desc(desc) = &upload.holds else {
            continue;
        };
        let step = Step::of(vault.record(&upload.mac));
        let (Step::Started { active, next } | Step::Confirmed { active, next }) = step else {
            continue;
        };
        let old = vault.open_key(data_key, &upload.mac, Some(active))?;
        if desc != old.key.key_desc() {
            continue;
        }
        let path = dir.join(&upload.file);
        let sealed = read_input(&path, MAX_FILE_SIZE)?;
        let plaintext = open(&sealed, &old.key).map_err(|e| Failure::crypto(&path, &e))?;
        let mode = file_mode(&path);
        if step.serves_plaintext(vault.key_timing()) {
            write_atomic(&path, &plaintext, mode)?;
        } else {
            let new = vault.open_key(data_key, &upload.mac, Some(next))?;
            let resealed_file =
                seal(&plaintext, &new.key).map_err(|e| Failure::crypto(&path, &e))?;
            write_atomic(&path, &resealed_file, mode)?;
        }
        resealed += 1;
    }
    Ok(resealed)
}

/// The permission bits of `path`, to keep them when the file is replaced.
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).map_or(PUBLIC_MODE, |m| m.permissions().mode() & 0o777)
}

fn confirm(session: &Session, args: &RotateArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let vault = writer.vault();
    let named = if args.macs.is_empty() {
        None
    } else {
        Some(parse_macs(&args.macs)?)
    };
    let mut confirmations = Vec::new();
    match &args.uploads {
        Some(dir) => {
            for evidence in read_uploads(dir)? {
                if named.as_ref().is_some_and(|n| !n.contains(&evidence.mac)) {
                    continue;
                }
                let step = Step::of(vault.record(&evidence.mac));
                match (&evidence.holds, step) {
                    (Held::Desc(desc), Step::Started { next, .. }) => {
                        let shown = vault.find_key_desc(desc).filter(|(r, _)| r.mac() == evidence.mac);
                        match shown {
                            Some((_, g)) if g.number() == next => {
                                if !confirmations.iter().any(|c: &Confirmation| c.mac == evidence.mac) {
                                    confirmations.push(Confirmation {
                                        mac: evidence.mac,
                                        generation: next,
                                        evidence: format!("upload {}", evidence.file.display()),
                                    });
                                }
                            }
                            Some((_, g)) => session.detail(&format!(
                                "{}: {} shows generation {} (not yet g{next})",
                                evidence.mac,
                                evidence.file.display(),
                                g.number()
                            )),
                            None => session.warn(&format!(
                                "{}: encrypted under {desc}, which is not one of this phone's keys",
                                evidence.file.display()
                            )),
                        }
                    }
                    (Held::Plaintext, Step::Started { .. } | Step::Confirmed { .. }) => session.warn(&format!(
                        "{}: uploaded in plaintext: the phone holds no key (factory reset?); see docs/ROTATION.md",
                        evidence.file.display()
                    )),
                    _ => {}
                }
            }
        }
        None => {
            let macs = named.ok_or_else(|| {
                Failure::input("name the phones to confirm, or give --uploads DIR")
            })?;
            for mac in macs {
                match Step::of(vault.record(&mac)) {
                    Step::Started { next, .. } => confirmations.push(Confirmation {
                        mac,
                        generation: next,
                        evidence: "operator".to_owned(),
                    }),
                    Step::Confirmed { .. } => session.detail(&format!("{mac}: already confirmed")),
                    step => {
                        return Err(
                            Failure::input(format!("{mac}: nothing to confirm ({step})"))
                                .with_hint("start a rotation first: `polyseal rotate start MAC`"),
                        );
                    }
                }
            }
        }
    }
    writer.confirm(&confirmations)?;
    let waiting = writer
        .vault()
        .records()
        .filter(|r| matches!(Step::of(Some(r)), Step::Started { .. }))
        .count();
    session.say(&format!(
        "confirmed {} phones; {waiting} still waiting for evidence",
        confirmations.len()
    ));
    Ok(())
}

fn finish(session: &Session, args: &RotateArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let macs = targets(writer.vault(), args, |s| {
        matches!(s, Step::Confirmed { .. })
    })?;
    let mut changes = Vec::new();
    for mac in &macs {
        match Step::of(writer.vault().record(mac)) {
            Step::Confirmed { active, next } => changes.extend([
                StateChange {
                    mac: *mac,
                    generation: active,
                    to: KeyState::Deactivated,
                },
                StateChange {
                    mac: *mac,
                    generation: next,
                    to: KeyState::Active,
                },
            ]),
            step => {
                return Err(Failure::input(format!("{mac}: cannot finish ({step})")).with_hint(
                    "a phone must be confirmed to hold the new key first: `polyseal rotate confirm`",
                ));
            }
        }
    }
    writer.set_states(&changes)?;
    session.say(&format!(
        "finished rotation of {} phones: new generation active, old one deactivated",
        macs.len()
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
    let request = PublishRequest {
        src,
        out,
        phones_file: args.phones.as_deref(),
        dry_run: false,
        allow_plaintext_secrets: false,
        key_file: key_file_pattern(&args.key_file)?,
    };
    let summary = publish(session, writer, &request)?;
    report(session, out, &summary, false);
    Ok(())
}

/// What an uploaded file shows about the key its phone holds.
enum Held {
    /// Encrypted under this KeyDesc.
    Desc(polyseal_crypto::KeyDesc),
    /// Not encrypted: the phone has no key.
    Plaintext,
}

/// One uploaded file of a phone.
struct Upload {
    mac: Mac,
    file: PathBuf,
    holds: Held,
}

/// The override and directory files phones uploaded under `dir`, with what each shows.
fn read_uploads(dir: &Path) -> Result<Vec<Upload>, Failure> {
    let mut uploads = Vec::new();
    for (mac, path) in uploads_in(dir)? {
        let mut head = Vec::new();
        fs::File::open(&path)
            .and_then(|f| f.take(1024).read_to_end(&mut head))
            .map_err(|e| Failure::io(&path, "read", &e))?;
        let holds = match Header::parse(&head) {
            Ok(header) => match header.key_desc() {
                Some(desc) => Held::Desc(desc.clone()),
                None => continue,
            },
            Err(CryptoError::NotEncrypted) => Held::Plaintext,
            Err(_) => continue,
        };
        let file = path.strip_prefix(dir).unwrap_or(&path).to_owned();
        uploads.push(Upload { mac, file, holds });
    }
    Ok(uploads)
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
            let step = Step::of(Some(record));
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
