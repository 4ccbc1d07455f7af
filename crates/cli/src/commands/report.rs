//! `polyseal report`: the evidence pack, written as three files into --out.

use std::path::Path;

use polyseal_fleet::SystemClock;
use polyseal_fleet::report::{ReportRequest, SCHEMA, build, render_html, write_inventory_csv};
use polyseal_fleet::write::{create_dirs, write_atomic, write_atomic_with};
use polyseal_provision::SourceTree;

use crate::cli::ReportArgs;
use crate::commands::audit::{Kind, parse_as_of, require};
use crate::count::count;
use crate::failure::{ExitClass, Failure};
use crate::phones::key_file_pattern;
use crate::session::Session;

/// The files a report is, by name.
const FILES: [&str; 3] = ["index.html", "report.json", "inventory.csv"];

pub(crate) fn run(session: &Session, args: &ReportArgs) -> Result<(), Failure> {
    let as_of = parse_as_of(args.as_of.as_deref())?;
    if let Some(tree) = &args.tree {
        require("--tree", tree, Kind::Directory)?;
    }
    check_out(&args.out)?;
    for (option, dir) in [
        ("--vault", Some(session.vault_dir())),
        ("--tree", args.tree.as_deref()),
    ] {
        if let Some(dir) = dir.filter(|dir| inside(&args.out, dir)) {
            return Err(Failure::input(format!(
                "--out {}: inside {option} {}; the report would be read as part of it (or \
                 served with it): write it elsewhere",
                args.out.display(),
                dir.display()
            )));
        }
    }
    let key_file = key_file_pattern(&args.key_file)?;
    let tree = match &args.tree {
        Some(path) => Some(SourceTree::open(path)?.with_key_file_pattern(key_file)),
        None => None,
    };
    // The ledger is read before anything is written: a ledger that cannot be read stops here.
    let ledger = match &args.ledger {
        Some(path) => Some((
            path.display().to_string(),
            crate::commands::status::read_ledger(session, path)?,
        )),
        None => None,
    };
    let vault = session.vault()?;
    // The identity is optional: with one, the vault's authenticity and every key are checked
    // (an altered vault is refused, as everywhere it is unlocked); without, the report's first
    // screen names what was not checked.
    let data_key = session.unlock_if_given(&vault)?;
    let report = build(
        ReportRequest {
            vault: &vault,
            tree: tree.as_ref(),
            data_key,
            as_of,
            ledger: ledger
                .as_ref()
                .map(|(source, ledger)| (source.as_str(), ledger)),
        },
        &SystemClock,
    )?;
    create_dirs(&args.out, 0o755)?;
    // Metadata only, no key: readable by the assessor's account as any document. The JSON and
    // the CSV are streamed: at 100,000 phones with a year of history they are 100 and 30 MB.
    write_atomic_with(&args.out.join("report.json"), 0o644, |out| {
        serde_json::to_writer(&mut *out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
    })?;
    write_atomic_with(&args.out.join("inventory.csv"), 0o644, |out| {
        write_inventory_csv(&report, out)
    })?;
    write_atomic(
        &args.out.join("index.html"),
        render_html(&report).as_bytes(),
        0o644,
    )?;
    session.say(&format!(
        "wrote the report of {} and {} into {} (index.html, report.json, inventory.csv)",
        count(report.inventory.phones, "phone"),
        count(report.inventory.generations, "key generation"),
        args.out.display()
    ));
    if !report.checks.log_verified {
        return Err(Failure::new(
            ExitClass::Integrity,
            format!(
                "the vault does not verify; the report says so on its first screen: {}",
                report.checks.log_problems.join("; ")
            ),
        ));
    }
    Ok(())
}

/// Whether `out` is `dir` or a path under it (both resolved as far as they exist).
fn inside(out: &Path, dir: &Path) -> bool {
    let resolve = |path: &Path| {
        let mut existing = path.to_path_buf();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name.to_owned());
                    existing = parent.to_path_buf();
                }
                _ => break,
            }
        }
        let mut resolved = std::fs::canonicalize(if existing.as_os_str().is_empty() {
            Path::new(".")
        } else {
            &existing
        })
        .unwrap_or(existing);
        resolved.extend(rest.iter().rev());
        resolved
    };
    resolve(out).starts_with(resolve(dir))
}

/// Refuses an --out that holds anything but an earlier report: a report never overwrites or
/// mixes with files it did not write.
fn check_out(out: &Path) -> Result<(), Failure> {
    let entries = match std::fs::read_dir(out) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(Failure::input(format!(
                "--out {}: not a directory",
                out.display()
            )));
        }
        Err(e) => return Err(Failure::io(out, "list", &e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Failure::io(out, "list", &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // A report's files are regular files: a directory or pipe of that name is not one.
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        names.push(if regular {
            name
        } else {
            format!("{name} (not a regular file)")
        });
    }
    if names.is_empty() {
        return Ok(());
    }
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| !FILES.contains(&n.as_str()))
        .collect();
    // Read only once every name is one of a report's regular files: never a pipe.
    let earlier_report = foreign.is_empty()
        && std::fs::read_to_string(out.join("report.json"))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|json| json["schema"] == SCHEMA);
    if foreign.is_empty() && earlier_report {
        return Ok(());
    }
    let why = match foreign.first() {
        Some(name) => format!("holds {name}, which polyseal's report does not write"),
        None => "holds files of a report polyseal did not write".to_owned(),
    };
    Err(Failure::input(format!(
        "--out {}: not empty and not an earlier report ({why}); give a new or empty directory",
        out.display()
    )))
}
