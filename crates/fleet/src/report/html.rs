//! `index.html`: the report as one self-contained page (inline CSS and SVG, no script, no
//! external asset), readable on screen and printed to PDF by a browser.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::charts::{Bar, bar_chart};
use super::model::{KeyRow, Report};

/// Above this many key generations the page lists only those that need attention and
/// summarises the rest; every row is in `inventory.csv` and `report.json`.
const MAX_LISTED_KEYS: usize = 1000;
/// At most this many changes are listed, the latest; all are in `report.json`.
const MAX_LISTED_CHANGES: usize = 1000;

const STYLE: &str = "
:root { --ok: #1b6e3a; --bad: #a4161a; --warn: #9a6700; --line: #c9ccd1; --muted: #5b616b; }
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #1f2328;
  max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .25rem; border-bottom: 2px solid var(--line); }
.dated { color: var(--muted); font-size: .85rem; margin: 0 0 .75rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid var(--line); padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: .85em; }
td.mono { white-space: nowrap; }
td.key { word-break: break-all; }
.status { border: 2px solid var(--ok); border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.status.bad { border-color: var(--bad); background: #fff1f1; }
.status.partial { border-color: var(--warn); background: #fff8e6; }
.status h2 { border: 0; margin-top: 0; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.charts { display: grid; grid-template-columns: 1fr; gap: 1.25rem; max-width: 760px; }
figure { margin: 0; }
figcaption { font-size: .9rem; color: var(--muted); }
svg.chart { width: 100%; height: auto; }
svg .bar { fill: #3b6ea8; }
svg .bar.alert { fill: #a4161a; }
svg .axis { stroke: #1f2328; }
svg .marker { stroke: #a4161a; stroke-dasharray: 4 3; }
svg text { font: 11px sans-serif; text-anchor: middle; fill: #1f2328; }
svg text.small { font-size: 9px; text-anchor: start; }
svg text.marker-label { text-anchor: start; fill: #a4161a; }
@page { size: A4; margin: 14mm; }
@media print {
  body { font-size: 10pt; max-width: none; padding: 0; }
  h2 { break-after: avoid; }
  table, figure, .status { break-inside: avoid; }
  tr { break-inside: avoid; }
  .charts { display: block; }
  figure { margin-bottom: 1rem; }
}
";

/// The page of `report`.
pub fn render_html(report: &Report) -> String {
    let mut page = String::with_capacity(64 * 1024 + report.keys.len().min(MAX_LISTED_KEYS) * 400);
    let title = format!("Key-management report, vault {}", report.vault.id);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"polyseal {}\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&title)
    );
    let _ = writeln!(
        page,
        "<header><h1>{}</h1><p class=\"dated\">Vault <code>{}</code> (format {}) at <code>{}</code>. \
         Generated {}: the keys, states and custodians are the vault's when generated; ages, \
         cryptoperiods and the changes listed are judged as of <strong>{}</strong>. Schema \
         <code>{}</code>.</p></header>",
        escape(&title),
        escape(&report.vault.id),
        report.vault.format,
        escape(&report.vault.dir),
        escape(&report.generated),
        escape(&report.as_of),
        report.schema
    );
    status(&mut page, report);
    architecture(&mut page, report);
    inventory(&mut page, report);
    charts(&mut page, report);
    custodians(&mut page, report);
    changes(&mut page, report);
    audit_trail(&mut page, report);
    findings(&mut page, report);
    controls(&mut page, report);
    let _ = write!(
        page,
        "<footer><p class=\"dated\">Written by polyseal {} with <code>report.json</code> (all data) \
         and <code>inventory.csv</code> (every key generation). What this report is evidence of \
         and what remains procedure: docs/COMPLIANCE.md.</p></footer>\n</body></html>\n",
        env!("CARGO_PKG_VERSION")
    );
    page
}

fn section(page: &mut String, id: &str, heading: &str, as_of: &str) {
    let _ = writeln!(
        page,
        "<section id=\"{id}\"><h2>{}</h2><p class=\"dated\">Judged as of {}.</p>",
        escape(heading),
        escape(as_of)
    );
}

/// The first screen: whether the vault verified, what was not checked, what needs doing.
fn status(page: &mut String, report: &Report) {
    let checks = &report.checks;
    let errors = report
        .findings
        .iter()
        .filter(|f| f.severity == "error")
        .count();
    let class = if !checks.log_verified || errors > 0 {
        "status bad"
    } else if !checks.not_made.is_empty() {
        "status partial"
    } else {
        "status"
    };
    let _ = write!(
        page,
        "<section id=\"status\" class=\"{class}\"><h2>Status</h2>"
    );
    if checks.log_verified {
        let _ = write!(
            page,
            "<p><span class=\"ok\">The event log verifies</span> against every record and the \
             vault's settings ({} events).</p>",
            report.audit_trail.events
        );
    } else {
        let _ = write!(
            page,
            "<p><span class=\"bad\">THE VAULT DOES NOT VERIFY.</span> Its event log and its \
             records disagree, or the log is damaged: the figures below are what the files say, \
             not a history that can be trusted.</p><ul>"
        );
        for problem in &checks.log_problems {
            let _ = write!(page, "<li>{}</li>", escape(problem));
        }
        page.push_str("</ul>");
    }
    if checks.authenticity_checked {
        page.push_str(
            "<p><span class=\"ok\">Authentic:</span> every file of the vault is as polyseal last \
             wrote it (its authenticated head), and every key opens.</p>",
        );
    } else {
        page.push_str(
            "<p><span class=\"warn\">Not checked</span> (these need a custodian's identity, \
             which this report was made without):</p><ul>",
        );
        for check in &checks.not_made {
            let _ = write!(page, "<li>{}</li>", escape(check));
        }
        page.push_str("</ul>");
    }
    let others = report.findings.len() - errors;
    let _ = write!(
        page,
        "<p>Findings: <span class=\"{}\">{errors} error(s)</span>, <span class=\"{}\">{others} \
         warning(s)</span> (<a href=\"#findings\">Findings</a>). {} phones, {} key generations, \
         {} active key(s) past the cryptoperiod.</p>",
        if errors > 0 { "bad" } else { "ok" },
        if others > 0 { "warn" } else { "ok" },
        report.inventory.phones,
        report.inventory.generations,
        report.inventory.past_cryptoperiod
    );
    if let Some(tree) = &report.tree_audit {
        let _ = write!(
            page,
            "<p>Published tree <code>{}</code>: {} error(s), {} warning(s).</p>",
            escape(&tree.tree),
            tree.errors,
            tree.warnings
        );
    }
    if let Some(ledger) = &report.ledger {
        let _ = write!(
            page,
            "<p>Provisioning ledger: {}.</p>",
            ledger_counts(ledger)
        );
    }
    page.push_str("</section>\n");
}

fn architecture(page: &mut String, report: &Report) {
    section(
        page,
        "architecture",
        "Scope and architecture",
        &report.as_of,
    );
    let _ = write!(
        page,
        "<p>Vault <code>{}</code>, format {}, KeyDesc template <code>{}</code>, key timing {}, \
         cryptoperiod {}. Key hierarchy: recipients (custodians) → data key → phone keys; \
         opening the data key takes {}.</p>\
         <table><tr><th>key</th><th>algorithm</th><th class=\"num\">bits</th><th>protects</th>\
         <th>lives</th></tr>",
        escape(&report.vault.id),
        report.vault.format,
        escape(&report.vault.key_desc_template),
        escape(&report.vault.key_timing),
        report
            .vault
            .cryptoperiod_days
            .map_or("not set".to_owned(), |d| format!("{d} days")),
        if report.vault.threshold > 1 {
            format!("{} custodians together", report.vault.threshold)
        } else {
            "any one custodian".to_owned()
        }
    );
    for c in &report.architecture {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(c.name),
            escape(c.algorithm),
            c.bits.map_or(String::new(), |b| b.to_string()),
            escape(c.protects),
            escape(c.lives)
        );
    }
    page.push_str("</table></section>\n");
}

fn inventory(page: &mut String, report: &Report) {
    section(page, "inventory", "Key inventory", &report.as_of);
    let inv = &report.inventory;
    page.push_str(
        "<table><tr><th>state (NIST SP 800-57)</th><th class=\"num\">generations</th></tr>",
    );
    for (state, count) in in_state_order(&inv.by_state) {
        let _ = write!(
            page,
            "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
            escape(state)
        );
    }
    let _ = write!(
        page,
        "<tr><th>all ({} phones)</th><th class=\"num\">{}</th></tr></table>",
        inv.phones, inv.generations
    );
    page.push_str("<table><tr><th>generation</th><th class=\"num\">keys</th></tr>");
    let mut generations: Vec<_> = inv.by_generation.iter().collect();
    generations.sort_by_key(|(g, _)| g.parse::<u32>().unwrap_or(u32::MAX));
    for (generation, count) in generations {
        let _ = write!(
            page,
            "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
            escape(generation)
        );
    }
    page.push_str("</table>");
    let listed: Vec<&KeyRow> = if report.keys.len() <= MAX_LISTED_KEYS {
        report.keys.iter().collect()
    } else {
        report
            .keys
            .iter()
            .filter(|k| k.past_cryptoperiod || k.state != "active" && k.state != "deactivated")
            .take(MAX_LISTED_KEYS)
            .collect()
    };
    if report.keys.len() > MAX_LISTED_KEYS {
        let _ = write!(
            page,
            "<p>{} key generations: listed here are the {} that need attention (past the \
             cryptoperiod, pre-active, compromised or destroyed; at most {MAX_LISTED_KEYS}). \
             Every generation is in <code>inventory.csv</code> and <code>report.json</code>.</p>",
            report.keys.len(),
            listed.len()
        );
    }
    page.push_str(
        "<table><tr><th>MAC</th><th class=\"num\">gen</th><th>KeyDesc</th><th>state</th>\
         <th>created</th><th>activated</th><th>deactivated</th><th>compromised</th>\
         <th>destroyed</th><th class=\"num\">age (days)</th><th class=\"num\">cryptoperiod \
         left (days)</th></tr>",
    );
    let cell = |value: &Option<String>| escape(value.as_deref().unwrap_or("")).into_owned();
    for key in listed {
        let state = if key.past_cryptoperiod {
            format!(
                "{} <span class=\"bad\">(past cryptoperiod)</span>",
                escape(&key.state)
            )
        } else {
            escape(&key.state).into_owned()
        };
        let _ = write!(
            page,
            "<tr><td class=\"mono\">{}</td><td class=\"num\">{}</td><td class=\"mono\">{}</td>\
             <td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&key.mac),
            key.generation,
            escape(&key.key_desc),
            escape(&key.created),
            cell(&key.activated),
            cell(&key.deactivated),
            cell(&key.compromised),
            cell(&key.destroyed),
            key.age_days,
            key.cryptoperiod_remaining_days
                .map_or(String::new(), |d| d.to_string())
        );
    }
    page.push_str("</table></section>\n");
}

/// Counts by state in NIST SP 800-57's order of a key's life, then any other.
fn in_state_order(counts: &BTreeMap<String, usize>) -> Vec<(&String, &usize)> {
    const ORDER: [&str; 5] = [
        "pre-active",
        "active",
        "deactivated",
        "compromised",
        "destroyed",
    ];
    let rank = |state: &str| {
        ORDER
            .iter()
            .position(|s| *s == state)
            .unwrap_or(ORDER.len())
    };
    let mut ordered: Vec<_> = counts.iter().collect();
    ordered.sort_by_key(|(state, _)| rank(state));
    ordered
}

fn charts(page: &mut String, report: &Report) {
    section(page, "charts", "Charts", &report.as_of);
    let charts = &report.charts;
    let period = report.vault.cryptoperiod_days.map(u64::from);
    let age_bars: Vec<Bar> = charts
        .active_key_age_days
        .iter()
        .map(|bin| Bar {
            label: match bin.to_days {
                Some(to) => format!("{}–{to}", bin.from_days),
                None => format!("{}+", bin.from_days),
            },
            value: bin.keys,
            alert: period.is_some_and(|p| bin.from_days >= p),
        })
        .collect();
    let marker_index = period.and_then(|p| {
        charts
            .active_key_age_days
            .iter()
            .position(|bin| bin.from_days >= p)
    });
    let marker = marker_index.map(|i| {
        (
            i,
            format!("cryptoperiod {} days", period.unwrap_or_default()),
        )
    });
    let age = bar_chart(
        "age",
        "Active keys by age",
        &format!(
            "Number of active keys in 30-day bins of age, as of {}{}",
            report.as_of,
            period.map_or(String::new(), |p| format!(
                "; keys right of the line are past the {p}-day cryptoperiod"
            ))
        ),
        &age_bars,
        marker.as_ref().map(|(i, text)| (*i, text.as_str())),
    );
    let state_bars: Vec<Bar> = in_state_order(&charts.keys_per_state)
        .into_iter()
        .map(|(state, count)| Bar {
            label: state.clone(),
            value: *count,
            alert: state == "compromised",
        })
        .collect();
    let states = bar_chart(
        "states",
        "Key generations per state",
        "Number of key generations in each NIST SP 800-57 state",
        &state_bars,
        None,
    );
    let month_bars: Vec<Bar> = charts
        .rotations_per_month
        .iter()
        .map(|(month, count)| Bar {
            label: month.clone(),
            value: *count,
            alert: false,
        })
        .collect();
    let rotations = bar_chart(
        "rotations",
        "Rotations per month",
        "Rotations finished (a new generation made active) in each of the last 12 months",
        &month_bars,
        None,
    );
    let _ = writeln!(
        page,
        "<div class=\"charts\"><figure>{age}<figcaption>Active keys by age (days)\
         </figcaption></figure><figure>{states}<figcaption>Key generations per state\
         </figcaption></figure><figure>{rotations}<figcaption>Rotations per month\
         </figcaption></figure></div></section>"
    );
}

fn custodians(page: &mut String, report: &Report) {
    section(page, "custodians", "Custodians", &report.as_of);
    page.push_str(
        "<p>Each recipient can open the vault's data key alone (no k-of-n threshold is \
         configured).</p><table><tr><th>label</th><th>type</th><th>public key</th><th>added</th>\
         <th>removed</th><th>acknowledged</th></tr>",
    );
    for c in &report.custodians {
        let text = |value: &Option<String>, none: &str| {
            escape(value.as_deref().unwrap_or(none)).into_owned()
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"key\"><code>{}</code></td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            escape(&c.label),
            escape(&c.kind),
            escape(&c.public_key),
            text(&c.added, "(not in the log)"),
            text(&c.removed, ""),
            text(&c.acknowledged, "not recorded")
        );
    }
    page.push_str("</table></section>\n");
}

fn changes(page: &mut String, report: &Report) {
    section(page, "changes", "Changes", &report.as_of);
    let total = report.changes.len();
    let shown = total.min(MAX_LISTED_CHANGES);
    let _ = write!(
        page,
        "<p>{total} key events up to {} (new generations, state transitions, confirmations with \
         their evidence){}.</p>",
        escape(&report.as_of),
        if shown < total {
            format!("; the latest {shown} are listed, all are in report.json")
        } else {
            String::new()
        }
    );
    page.push_str(
        "<table><tr><th>time</th><th>MAC</th><th class=\"num\">gen</th><th>event</th>\
         <th>evidence</th></tr>",
    );
    for change in report.changes.iter().skip(total - shown) {
        let what = match (change.action, &change.from, &change.to) {
            ("state", Some(from), Some(to)) => format!("{from} → {to}"),
            ("add", _, Some(to)) => format!("new generation ({to})"),
            ("confirm", _, _) => "confirmed on the phone".to_owned(),
            (action, _, _) => action.to_owned(),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td class=\"mono\">{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td>{}</td></tr>",
            escape(&change.time),
            escape(&change.mac),
            change.generation,
            escape(&what),
            escape(change.evidence.as_deref().unwrap_or(""))
        );
    }
    page.push_str("</table></section>\n");
}

fn audit_trail(page: &mut String, report: &Report) {
    section(page, "audit-trail", "Audit trail", &report.as_of);
    let trail = &report.audit_trail;
    let verified = if report.checks.log_verified {
        "<span class=\"ok\">verifies</span>"
    } else {
        "<span class=\"bad\">does not verify</span>"
    };
    let _ = write!(
        page,
        "<p>The event log {verified}: {} events, the first {}, the last {}. Record this head \
         outside the vault (a ticket, another system) and check it later with <code>polyseal \
         log verify --expect-head</code>:</p><p><code>{}</code></p><table><tr><th>event</th>\
         <th class=\"num\">count</th></tr>",
        trail.events,
        escape(trail.first_event.as_deref().unwrap_or("-")),
        escape(trail.last_event.as_deref().unwrap_or("-")),
        escape(
            trail
                .head
                .as_deref()
                .unwrap_or("(none: the log does not verify)")
        )
    );
    for (action, count) in &trail.by_action {
        let _ = write!(
            page,
            "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
            escape(action)
        );
    }
    page.push_str("</table>");
    if let Some(ledger) = &report.ledger {
        let _ = write!(
            page,
            "<p>Provisioning ledger <code>{}</code> ({} requests{}): {}. \
             Phones by health:</p><table><tr><th>health</th><th class=\"num\">phones</th></tr>",
            escape(&ledger.source),
            ledger.requests,
            if ledger.torn_last_line {
                "; its torn last line skipped"
            } else {
                ""
            },
            ledger_counts(ledger)
        );
        for (health, count) in &ledger.by_health {
            let _ = write!(
                page,
                "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
                escape(health)
            );
        }
        page.push_str("</table>");
    }
    if let Some(tree) = &report.tree_audit {
        let _ = write!(
            page,
            "<p>Audit of the published tree <code>{}</code>: {} error(s), {} warning(s).</p>\
             <table><tr><th>finding</th><th class=\"num\">count</th></tr>",
            escape(&tree.tree),
            tree.errors,
            tree.warnings
        );
        for (code, count) in &tree.by_code {
            let _ = write!(
                page,
                "<tr><td>{}</td><td class=\"num\">{count}</td></tr>",
                escape(code)
            );
        }
        page.push_str("</table>");
        if !tree.skipped.is_empty() {
            page.push_str("<p>Checks of the tree not made:</p><ul>");
            for skipped in &tree.skipped {
                let _ = write!(page, "<li>{}</li>", escape(skipped));
            }
            page.push_str("</ul>");
        }
    }
    page.push_str("</section>\n");
}

fn findings(page: &mut String, report: &Report) {
    section(page, "findings", "Findings", &report.as_of);
    if report.findings.is_empty() {
        page.push_str("<p class=\"ok\">None.</p></section>\n");
        return;
    }
    page.push_str(
        "<table><tr><th>severity</th><th>code</th><th>MAC</th><th>finding</th><th>fix</th></tr>",
    );
    for finding in &report.findings {
        let class = if finding.severity == "error" {
            "bad"
        } else {
            "warn"
        };
        let _ = write!(
            page,
            "<tr><td class=\"{class}\">{}</td><td>{}</td><td class=\"mono\">{}</td><td>{}</td>\
             <td>{}</td></tr>",
            finding.severity,
            finding.code,
            escape(finding.mac.as_deref().unwrap_or("")),
            escape(&finding.message),
            escape(&finding.fix)
        );
    }
    page.push_str("</table></section>\n");
}

fn controls(page: &mut String, report: &Report) {
    section(page, "controls", "Control map", &report.as_of);
    page.push_str(
        "<p>What in this report supports each requirement, and what it cannot show: those parts \
         are the organisation's procedures, people and places.</p><table><tr>\
         <th>requirement</th><th>asks</th><th>this report shows</th><th>cannot show</th></tr>",
    );
    for control in &report.controls {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(control.id),
            escape(control.requirement),
            escape(&control.supported_by),
            escape(&control.cannot_show)
        );
    }
    page.push_str("</table></section>\n");
}

/// `2 ok, 1 reboot-loop`: the healths that have phones.
fn ledger_counts(ledger: &super::model::LedgerHealth) -> String {
    let counts: Vec<String> = ledger
        .by_health
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(health, n)| format!("{n} {}", escape(health)))
        .collect();
    if counts.is_empty() {
        "no phone".to_owned()
    } else {
        counts.join(", ")
    }
}
