//! `polyseal publish`: the main job.

use crate::cli::PublishArgs;
use crate::failure::Failure;
use crate::phones::key_file_pattern;
use crate::publish::{PublishRequest, PublishSummary, publish};
use crate::session::Session;

pub(crate) fn run(session: &Session, args: &PublishArgs) -> Result<(), Failure> {
    let request = PublishRequest {
        src: &args.src,
        out: &args.out,
        phones_file: args.phones.as_deref(),
        dry_run: args.dry_run,
        allow_plaintext_secrets: args.allow_plaintext_secrets,
        key_file: key_file_pattern(&args.key_file)?,
    };
    let mut writer = session.writer()?;
    let summary = publish(session, &mut writer, &request)?;
    report(session, &args.out, &summary, args.dry_run);
    Ok(())
}

/// The closing summary of a publish.
pub(crate) fn report(
    session: &Session,
    out: &std::path::Path,
    summary: &PublishSummary,
    dry_run: bool,
) {
    for warning in &summary.warnings {
        session.warn(warning);
    }
    if dry_run {
        return;
    }
    session.detail(&format!(
        "{} files already published: {} proved unchanged by the manifest (stat only), {} by reading them",
        summary.reused,
        summary.recorded,
        summary.reused - summary.recorded
    ));
    if !summary.changed {
        session.say(&format!(
            "{} is up to date: {} phones, nothing changed, nothing written",
            out.display(),
            summary.phones
        ));
        return;
    }
    let files = summary.key_files + summary.encrypted + summary.copied + summary.plaintext;
    let plaintext = if summary.plaintext > 0 {
        format!(", {} in plaintext", summary.plaintext)
    } else {
        String::new()
    };
    session.say(&format!(
        "published {}: {} phones, {} keys made; {files} files ({} key files, {} encrypted, {} copied{plaintext}): {} written, {} unchanged, {} removed; {} warnings",
        out.display(),
        summary.phones,
        summary.keys_made,
        summary.key_files,
        summary.encrypted,
        summary.copied,
        files - summary.reused,
        summary.reused,
        summary.removed,
        summary.warnings.len()
    ));
}
