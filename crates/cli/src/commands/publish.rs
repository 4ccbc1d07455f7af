//! `polyseal publish`: the main job.

use std::fmt::Write as _;

use polyseal_fleet::SystemClock;
use std::path::Path;

use polyseal_fleet::publish::{
    self, CheckedPublish, OutChanges, PlannedPhone, PublishRequest, PublishSummary,
};
use polyseal_vault::{DataKey, VaultWriter};

use crate::cli::PublishArgs;
use crate::count::count;
use crate::failure::Failure;
use crate::phones::key_file_pattern;
use crate::session::Session;
use crate::table::emit;

pub(crate) fn run(session: &Session, args: &PublishArgs) -> Result<(), Failure> {
    let key_file = key_file_pattern(&args.key_file)?;
    let mut request = PublishRequest::new(&args.src, &args.out, key_file);
    request.phones_file = args.phones.as_deref();
    request.allow_plaintext_secrets = args.allow_plaintext_secrets;
    request.adopt_out = args.adopt_out;
    let mut writer = session.writer()?;
    let checked = publish::check(writer.vault(), &request)?;
    if args.dry_run {
        let plan = checked.dry_run(writer.vault());
        print_plan(session, &plan, &checked.out_changes());
        report(session, &args.out, checked.summary(), true);
        // A dry run needs no identity and opens no key.
        session.note_unchecked();
        return Ok(());
    }
    let data_key = session.unlock(writer.vault())?;
    run_checked(session, &mut writer, checked, &data_key, &args.out)
}

/// Publishes a checked tree and reports; `rotate start` and `finish` republish through here.
pub(crate) fn run_checked(
    session: &Session,
    writer: &mut VaultWriter,
    checked: CheckedPublish,
    data_key: &DataKey,
    out: &Path,
) -> Result<(), Failure> {
    let progress = session.progress();
    let summary = checked.run(writer, data_key, &SystemClock, &progress)?;
    report(session, out, &summary, false);
    Ok(())
}

/// `--dry-run`: what would be done, phone by phone, then file by file under `--out`.
fn print_plan(session: &Session, plan: &[PlannedPhone], changes: &OutChanges<'_>) {
    let mut text = String::new();
    for phone in plan {
        let _ = if let Some(generation) = phone.new_generation {
            writeln!(text, "{}: new key g{generation}, bootstrap file", phone.mac)
        } else {
            writeln!(text, "{}: {}", phone.mac, phone.step)
        };
        for file in &phone.files {
            let _ = writeln!(text, "  {file}");
        }
    }
    for (action, paths) in [
        ("add", changes.added),
        ("remove", changes.removed),
        ("keep (not written by polyseal)", changes.kept),
        (
            "replace (not written by polyseal; --adopt-out)",
            changes.replaced,
        ),
    ] {
        for path in paths {
            let _ = writeln!(text, "{action} {}", path.display());
        }
    }
    let _ = emit(&text);
    session.say(&format!(
        "{} already published would be compared and rewritten if changed",
        count(changes.compared, "file")
    ));
    let keys = plan.iter().filter(|p| p.new_key).count();
    session.say(&format!(
        "dry run: {}, {} would be made; nothing written",
        count(plan.len(), "phone"),
        count(keys, "key")
    ));
}

/// The closing summary of a publish.
fn report(session: &Session, out: &std::path::Path, summary: &PublishSummary, dry_run: bool) {
    for warning in &summary.warnings {
        session.warn(warning);
    }
    if dry_run {
        return;
    }
    session.detail(&format!(
        "{} already published: {} proved unchanged by the manifest (stat only), {} by reading them",
        count(summary.reused, "file"),
        summary.recorded,
        summary.reused - summary.recorded
    ));
    if !summary.changed {
        session.say(&format!(
            "{} is up to date: {}, nothing changed, nothing written",
            out.display(),
            count(summary.phones, "phone")
        ));
        return;
    }
    let files = summary.key_files + summary.encrypted + summary.copied + summary.plaintext;
    let kept = if summary.kept > 0 {
        format!(", {} polyseal did not write kept", summary.kept)
    } else {
        String::new()
    };
    let plaintext = if summary.plaintext > 0 {
        format!(", {} in plaintext", summary.plaintext)
    } else {
        String::new()
    };
    session.say(&format!(
        "published {}: {}, {} made; {} ({}, {} encrypted, {} copied{plaintext}): {} written, {} unchanged, {} removed{kept}; {}",
        out.display(),
        count(summary.phones, "phone"),
        count(summary.keys_made, "key"),
        count(files, "file"),
        count(summary.key_files, "key file"),
        summary.encrypted,
        summary.copied,
        files - summary.reused,
        summary.reused,
        summary.removed,
        count(summary.warnings.len(), "warning")
    ));
}
