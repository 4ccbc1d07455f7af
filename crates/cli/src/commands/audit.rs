//! `polyseal audit`: findings for the compliance officer (docs/AUDIT.md).

use std::path::Path;

use polyseal_fleet::SystemClock;
use polyseal_fleet::audit::{AuditRequest, audit};
use polyseal_provision::SourceTree;
use polyseal_vault::Timestamp;

use crate::audit_table;
use crate::cli::{AuditArgs, ReportFormat};
use crate::failure::{ExitClass, Failure};
use crate::phones::{key_file_pattern, read_mac_list};
use crate::session::Session;
use crate::table::emit;

pub(crate) fn run(session: &Session, args: &AuditArgs) -> Result<(), Failure> {
    require("--tree", &args.tree, Kind::Directory)?;
    if let Some(uploads) = &args.uploads {
        require("--uploads", uploads, Kind::Directory)?;
    }
    if let Some(phones) = args.phones.as_deref().filter(|p| *p != Path::new("-")) {
        require("--phones", phones, Kind::File)?;
    }
    let as_of = parse_as_of(args.as_of.as_deref())?;
    let key_file = key_file_pattern(&args.key_file)?;
    let listed = match &args.phones {
        Some(path) => Some((path.as_path(), read_mac_list(path)?)),
        None => None,
    };
    // Both read thousands of files: side by side on a large fleet.
    let (vault, tree) = rayon::join(|| session.vault(), || SourceTree::open(&args.tree));
    let vault = vault?;
    let tree = tree?.with_key_file_pattern(key_file);
    // The identity is optional: without one, the checks that decrypt are skipped and the
    // report says why.
    let data_key = session.unlock_if_given(&vault)?;

    let report = audit(
        AuditRequest {
            tree: &tree,
            vault: &vault,
            listed,
            uploads: args.uploads.as_deref(),
            data_key,
            as_of,
        },
        &SystemClock,
    )?;
    match args.format {
        ReportFormat::Table => emit(&audit_table::table(&report))?,
        ReportFormat::Json => emit(&report.to_json())?,
        ReportFormat::Csv => audit_table::csv(&report)?,
    }
    let failing = report.strict_failures();
    if args.strict && failing > 0 {
        return Err(Failure::new(
            ExitClass::Findings,
            format!(
                "{failing} finding{} of severity error or warning (--strict)",
                if failing == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

/// `--as-of TIME`: an RFC 3339 UTC time, or bad input naming it.
pub(crate) fn parse_as_of(text: Option<&str>) -> Result<Option<Timestamp>, Failure> {
    text.map(|text| {
        Timestamp::parse(text).ok_or_else(|| {
            Failure::input(format!(
                "--as-of {text}: not an RFC 3339 UTC time such as 2026-12-31T00:00:00Z"
            ))
        })
    })
    .transpose()
}

/// What an option names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Directory,
}

/// Refuses an input that is missing or of the wrong kind, naming the option: bad input, not
/// an I/O failure.
pub(crate) fn require(option: &str, path: &Path, kind: Kind) -> Result<(), Failure> {
    let (wanted, found) = match kind {
        Kind::File => ("file", path.is_file()),
        Kind::Directory => ("directory", path.is_dir()),
    };
    if found {
        return Ok(());
    }
    let problem = match std::fs::metadata(path) {
        Ok(_) => format!("not a {wanted}"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("no such {wanted}"),
        Err(e) => return Err(Failure::io(path, "read", &e)),
    };
    Err(Failure::input(format!(
        "{option} {}: {problem}",
        path.display()
    )))
}
