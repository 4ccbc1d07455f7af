//! `polyseal status`: every phone's health from the ledger or nginx's log (polyseal-fleet's
//! `status`).

use std::path::Path;
use std::time::Duration;

use polyseal_fleet::ledger::{Entry, Ledger};
use polyseal_fleet::status::{FleetStatus, StatusOptions, fleet_status, read_nginx_log};
use polyseal_vault::{Timestamp, Vault};

use crate::cli::{HealthRuleArgs, RequestSourceArgs, StatusArgs, TableFormat};
use crate::commands::audit::parse_as_of;
use crate::failure::Failure;
use crate::session::Session;
use crate::table::{Table, emit};

/// The phones' requests read from the ledger and nginx's log, and every phone's status.
pub(crate) struct Observed {
    /// Every request still held raw, in time order.
    pub(crate) entries: Vec<Entry>,
    /// Every phone's status.
    pub(crate) status: FleetStatus,
}

pub(crate) fn run(session: &Session, args: &StatusArgs) -> Result<(), Failure> {
    let vault = match session.vault() {
        Ok(vault) => Some(vault),
        Err(_) if !session.vault_dir().exists() => None,
        Err(e) => return Err(e),
    };
    let Observed { status, .. } = observe(session, vault.as_ref(), &args.sources, &args.rules)?;
    print_status(session, &status, args.format)
}

/// Reads `sources` and judges every phone of `vault` (when given: it names the phones never
/// seen and the generations of KeyDescs; without one, only the phones the sources saw) and of
/// the sources by `rules`.
pub(crate) fn observe(
    session: &Session,
    vault: Option<&Vault>,
    args: &RequestSourceArgs,
    rules: &HealthRuleArgs,
) -> Result<Observed, Failure> {
    let as_of = parse_as_of(rules.as_of.as_deref())?.unwrap_or_else(Timestamp::now);
    let mut entries = Vec::new();
    let mut summaries = Vec::new();
    let mut sources = Vec::new();
    let mut torn = false;
    let mut folded_unidentified = None;
    if let Some(path) = &args.ledger {
        let ledger = read_ledger(session, path)?;
        torn |= ledger.torn_last_line;
        folded_unidentified = ledger.unidentified;
        entries.extend(ledger.entries);
        summaries.extend(ledger.summaries);
        sources.push(path.display().to_string());
    }
    if let Some(path) = &args.nginx_log {
        let log = read_nginx_log(path).map_err(ledger_failure)?;
        warn_damage(session, path, &log);
        torn |= log.torn_last_line;
        entries.extend(log.entries);
        sources.push(path.display().to_string());
    }
    entries.sort_by(|a, b| a.time.cmp(&b.time));
    let mut options = StatusOptions::new(as_of);
    options.loop_boots = usize::from(rules.loop_boots);
    options.loop_window = Duration::from_secs(u64::from(rules.loop_minutes) * 60);
    options.poll_interval = Duration::from_secs(u64::from(rules.poll_hours) * 3600);
    let mut status = fleet_status(vault, &entries, &summaries, sources, torn, &options);
    status.count_folded_unidentified(folded_unidentified.as_ref());
    Ok(Observed { entries, status })
}

fn print_status(
    session: &Session,
    status: &FleetStatus,
    format: TableFormat,
) -> Result<(), Failure> {
    match format {
        TableFormat::Json => {
            let json =
                serde_json::to_string_pretty(status).map_err(|e| Failure::input(e.to_string()))?;
            emit(&format!("{json}\n"))
        }
        TableFormat::Table => {
            let mut table =
                Table::new(&["mac", "health", "last_seen", "served", "uploads", "detail"]);
            for phone in &status.phones {
                let generation = |g: Option<u32>| g.map_or("-".to_owned(), |g| format!("g{g}"));
                table.row(vec![
                    phone.mac.clone(),
                    phone.health.as_str().to_owned(),
                    phone.last_seen.clone().unwrap_or_else(|| "-".to_owned()),
                    generation(phone.served_generation),
                    generation(phone.upload_generation),
                    phone.detail.clone(),
                ]);
            }
            table.print()?;
            let counts: Vec<String> = status
                .summary
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(health, n)| format!("{n} {health}"))
                .collect();
            session.say(&format!(
                "{} phones: {}; {} requests read",
                status.phones.len(),
                counts.join(", "),
                status.requests
            ));
            Ok(())
        }
    }
}

/// Reads the ledger at `path`, warning of its damage (a torn last line, skipped lines).
pub(crate) fn read_ledger(session: &Session, path: &Path) -> Result<Ledger, Failure> {
    let ledger = polyseal_fleet::ledger::read(path).map_err(ledger_failure)?;
    warn_damage(session, path, &ledger);
    Ok(ledger)
}

/// Warns of what was skipped reading the ledger or log at `path`.
fn warn_damage(session: &Session, path: &Path, ledger: &Ledger) {
    if ledger.torn_last_line {
        session.warn(&format!(
            "{}: the last line was torn (the writer stopped mid-line) and was skipped",
            path.display()
        ));
    }
    if let Some((line, reason)) = &ledger.first_skipped {
        session.warn(&format!(
            "{}: {} line(s) that are not ledger lines were skipped; the first, line {line}: {}",
            path.display(),
            ledger.skipped_lines,
            reason
        ));
    }
}

fn ledger_failure(error: polyseal_fleet::ledger::Error) -> Failure {
    match error {
        polyseal_fleet::ledger::Error::Io { path, source, .. } => {
            Failure::io(&path, "read", &source)
        }
        other => Failure::input(other.to_string()),
    }
}
