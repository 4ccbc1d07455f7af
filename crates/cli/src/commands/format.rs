//! `polyseal format`: show, set or probe the byte layout of the fleet's encrypted files
//! (polyseal-crypto's `Layout` and `probe`).

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;

use polyseal_crypto::{KeyString, Layout, MAX_FILE_SIZE, Mac, inspect, probe};
use polyseal_fleet::learn::learn_layout;
use polyseal_vault::VaultWriter;
use zeroize::Zeroizing;

use crate::cli::{FormatCommand, FormatLearnArgs, FormatProbeArgs, FormatSetArgs};
use crate::exit_code::ExitClass;
use crate::failure::Failure;
use crate::output::read_input;
use crate::session::{Session, parse_mac};
use crate::table::emit;

pub(crate) fn run(session: &Session, command: FormatCommand) -> Result<(), Failure> {
    match command {
        FormatCommand::Show => {
            let vault = session.vault_unchecked()?;
            emit(&format!("{}\n", vault.layout()))
        }
        FormatCommand::Set(args) => set(session, &args),
        FormatCommand::Probe(args) => run_probe(session, &args),
        FormatCommand::Learn(args) => learn(session, &args),
    }
}

fn learn(session: &Session, args: &FormatLearnArgs) -> Result<(), Failure> {
    let macs = args
        .macs
        .iter()
        .map(|m| parse_mac(m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut writer = session.writer()?;
    // During a rollout the layout is confirmed for its waves: only the canaries' uploads
    // (received over their own certificates, with the ledger) may show it.
    if args.set && writer.vault().rollout().is_some_and(|r| !r.is_complete()) {
        return Err(Failure::input(
            "format learn --set during a rollout: the layout it confirms must come from the \
             canaries' uploads",
        )
        .with_hint("`polyseal rollout learn --uploads DIR [--ledger FILE]`"));
    }
    learn_into(
        session,
        &mut writer,
        &args.uploads,
        (!macs.is_empty()).then_some(macs.as_slice()),
        None,
        args.set,
    )?;
    Ok(())
}

/// Warns when `layout` is the one that was confirmed when the rollout's last wave was aborted:
/// the same evidence confirms it again, and its phones looped on it.
fn warn_if_rejected(session: &Session, writer: &VaultWriter, layout: Layout) {
    let rejected = writer
        .vault()
        .rollout()
        .filter(|r| !r.is_complete())
        .and_then(|r| r.rejected());
    if rejected == Some(layout) {
        session.warn(&format!(
            "{layout} was the rollout's layout when its last wave was aborted: find why that \
             wave's phones looped before advancing in it again (docs/ROLLOUT.md, \"4. A loop\")"
        ));
    }
}

/// Learns the layout from the uploads under `uploads` (of `macs`, or of every phone), prints
/// it, and with `set` stores it (during a rollout, confirmed for it too); returns the phones
/// whose uploads showed it.
pub(crate) fn learn_into(
    session: &Session,
    writer: &mut VaultWriter,
    uploads: &Path,
    macs: Option<&[Mac]>,
    received: Option<&BTreeSet<(Mac, String)>>,
    set: bool,
) -> Result<Vec<Mac>, Failure> {
    if !uploads.is_dir() {
        return Err(Failure::input(format!(
            "{}: is not a directory of uploads",
            uploads.display()
        )));
    }
    let data_key = session.unlock(writer.vault())?;
    let learned = learn_layout(writer.vault(), &data_key, uploads, macs, received)?;
    let shown: Vec<Mac> = learned.evidence.iter().map(|(mac, _)| *mac).collect();
    emit(&format!("{}\n", learned.layout))?;
    let shown_by = learned
        .evidence
        .iter()
        .map(|(mac, file)| format!("{mac} ({})", file.display()))
        .collect::<Vec<_>>()
        .join(", ");
    if !set {
        session.say(&format!(
            "shown by {shown_by}; `--set` stores it (now {})",
            writer.vault().layout()
        ));
        return Ok(shown);
    }
    let before = writer.vault().layout();
    writer.set_layout(&data_key, learned.layout)?;
    warn_if_rejected(session, writer, learned.layout);
    session.say(&if before == learned.layout {
        format!("the layout is already {before}, as {shown_by} show")
    } else {
        format!(
            "the layout is now {} (was {before}), as {shown_by} show; `polyseal publish` \
             re-encrypts every published file in it",
            learned.layout
        )
    });
    Ok(shown)
}

fn set(session: &Session, args: &FormatSetArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let before = writer.vault().layout();
    let layout = before
        .with(&args.assignments.join(" "))
        .map_err(|e| Failure::input(e.to_string()))?;
    // During a rollout, setting the layout also vouches for it (docs/ROLLOUT.md), even when
    // it is the vault's already.
    let confirms = writer
        .vault()
        .rollout()
        .is_some_and(|r| !r.is_complete() && r.layout() != Some(layout));
    if layout == before && !confirms {
        session.say(&format!("the layout is already {layout}"));
        return Ok(());
    }
    if !args.i_accept_the_risk {
        return Err(Failure::input(format!(
            "{layout} has not been shown by a phone of the fleet, and every phone whose \
             firmware reads another layout reboots on the files published in it: give \
             --i-accept-the-risk to set it all the same"
        ))
        .with_hint("learn the layout from a phone's upload with `polyseal format probe`"));
    }
    // Every change is authenticated with the data key (docs/VAULT.md, "Authenticated state").
    let data_key = session.unlock(writer.vault())?;
    writer.set_layout(&data_key, layout)?;
    warn_if_rejected(session, &writer, layout);
    session.say(&if layout == before {
        format!("the layout {layout} is confirmed for the rollout, on your word")
    } else if confirms {
        format!(
            "the layout is now {layout} (was {before}), confirmed for the rollout; `polyseal \
             publish` re-encrypts the waves' files in it, and the last wave must read them again"
        )
    } else {
        format!(
            "the layout is now {layout} (was {before}); `polyseal publish` re-encrypts every \
             published file in it"
        )
    });
    Ok(())
}

fn run_probe(session: &Session, args: &FormatProbeArgs) -> Result<(), Failure> {
    // Everything given is read and checked before any key is opened.
    let files = args
        .files
        .iter()
        .map(|path| read_input(path, MAX_FILE_SIZE))
        .collect::<Result<Vec<_>, _>>()?;
    let mut key_desc = None;
    for (path, file) in args.files.iter().zip(&files) {
        let header = inspect(file).map_err(|e| Failure::crypto(path, &e))?;
        match (&key_desc, header.key_desc().cloned()) {
            (None, desc) => key_desc = Some(desc),
            (Some(first), desc) if *first != desc => {
                return Err(Failure::input(format!(
                    "{}: names KeyDesc {}, another file {}; probe the files of one key at a \
                     time",
                    path.display(),
                    desc.map_or("none".to_owned(), |d| d.to_string()),
                    first
                        .as_ref()
                        .map_or("none".to_owned(), ToString::to_string),
                )));
            }
            _ => {}
        }
    }
    let plaintext = args
        .plaintext
        .as_deref()
        .map(|path| read_input(path, MAX_FILE_SIZE))
        .transpose()?;
    let key = match (&args.key_string, &args.mac) {
        (Some(text), _) => key_string(text)?,
        (None, Some(mac)) => {
            let mac = parse_mac(mac)?;
            let vault = session.vault()?;
            let first = &args.files[0];
            let generation = polyseal_fleet::key_for_file(
                &vault,
                first,
                key_desc.flatten().as_ref(),
                Some(mac),
            )?;
            let data_key = session.unlock(&vault)?;
            vault.open_key(&data_key, &generation.0, generation.1)?.key
        }
        (None, None) => return Err(Failure::input("give --mac MAC or --key-string STRING")),
    };
    let borrowed: Vec<&[u8]> = files.iter().map(|f| &f[..]).collect();
    let found = probe(&borrowed, &key, plaintext.as_deref().map(|p| &p[..]))
        .map_err(|e| Failure::crypto(&args.files[0], &e))?;
    let names = args
        .files
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    emit(
        &found
            .fits
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )?;
    match found.fits.as_slice() {
        [_] => Ok(()),
        [] => {
            // Per dimension, the value that got furthest, and how far.
            let furthest = Layout::DIMENSIONS
                .iter()
                .zip(&found.closest)
                .filter_map(|(dimension, values)| {
                    let (value, stage) = values.iter().max_by_key(|(_, stage)| *stage)?;
                    Some(format!("{dimension}={value} ({})", stage.describe()))
                })
                .collect::<Vec<_>>()
                .join(", ");
            Err(Failure::new(
                ExitClass::Integrity,
                format!("{names}: no layout fits; furthest per dimension: {furthest}"),
            )
            .with_hint(
                "check the key is the phone's (its KeyDesc is in the file's header) and that the \
                 file is the phone's own upload",
            ))
        }
        [first, rest @ ..] => {
            let mut apart: Vec<String> = rest
                .iter()
                .flat_map(|other| first.differences(other))
                .map(|d| d.split('=').next().unwrap_or_default().to_owned())
                .collect();
            apart.sort();
            apart.dedup();
            Err(Failure::input(format!(
                "{names}: {} layouts fit; they differ in {}",
                found.fits.len(),
                apart.join(", ")
            ))
            .with_hint(
                "another upload of the phone, or --plaintext FILE with what it encrypted, tells \
                 them apart (a plaintext that is not a whole number of 16 bytes and does not end \
                 in a zero byte decides the padding)",
            ))
        }
    }
}

/// The key string given, or read from standard input for `-`.
fn key_string(text: &str) -> Result<KeyString, Failure> {
    let text = if text == "-" {
        let mut read = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .take(4096)
            .read_to_string(&mut read)
            .map_err(|e| Failure::io(std::path::Path::new("standard input"), "read", &e))?;
        read
    } else {
        Zeroizing::new(text.to_owned())
    };
    KeyString::parse(text.trim()).map_err(|e| Failure::input(format!("--key-string: {e}")))
}
