//! The audit report for people: what was audited, findings grouped by severity and code, and
//! a summary line. The JSON for tools is the engine's (`Report::to_json`).

use std::fmt::Write as _;

use polyseal_fleet::audit::{Check, Report, Severity};

use crate::cli::ListFormat;
use crate::failure::Failure;
use crate::table::print_listing;

/// The report for people: what was audited, findings grouped by severity and code, and a
/// summary line.
pub(crate) fn table(report: &Report) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "audit of {} against vault {} at {}",
        report.tree.display(),
        report.vault.display(),
        report.generated_at
    );
    if report.as_of != report.generated_at {
        let _ = writeln!(text, "cryptoperiods judged as of {}", report.as_of);
    }
    let run: Vec<&str> = report.checks_run().map(Check::as_str).collect();
    let _ = writeln!(text, "checks run: {}", run.join(", "));
    for (check, reason) in &report.skipped {
        let _ = writeln!(text, "skipped: {}: {reason}", check.as_str());
    }
    let mut severity = None;
    let mut code = None;
    for finding in report.findings() {
        if severity != Some(finding.severity()) {
            severity = Some(finding.severity());
            let count = report.count(finding.severity());
            let _ = writeln!(text, "\n{} ({count})", heading(finding.severity()));
        }
        if code != Some(finding.code) {
            code = Some(finding.code);
            let _ = writeln!(
                text,
                "\n  {}: {}",
                finding.code.as_str(),
                finding.code.title()
            );
        }
        let place: Vec<String> = finding
            .mac
            .map(|m| m.to_string())
            .into_iter()
            .chain(finding.file.as_ref().map(|f| f.display().to_string()))
            .collect();
        if !place.is_empty() {
            let _ = writeln!(text, "    {}", place.join("  "));
        }
        let _ = writeln!(text, "      {}", finding.message);
        let _ = writeln!(text, "      fix: {}", finding.fix);
    }
    if report.findings().is_empty() {
        text.push_str("\nno findings\n");
    }
    let _ = writeln!(text, "\n{}", summary_line(report));
    text
}

/// `3 phones, 8 files checked: 1 error, 0 warnings, 2 info`.
pub(crate) fn summary_line(report: &Report) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let mut files = plural(report.files, "file");
    if report.uploads.is_some() {
        files.push_str(&format!(" and {}", plural(report.uploaded_files, "upload")));
    }
    format!(
        "{}, {files} checked: {}, {}, {} info",
        plural(report.phones, "phone"),
        plural(report.count(Severity::Error), "error"),
        plural(report.count(Severity::Warning), "warning"),
        report.count(Severity::Info)
    )
}

/// The heading of a severity's group.
fn heading(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "ERRORS",
        Severity::Warning => "WARNINGS",
        Severity::Info => "INFO",
    }
}

/// One finding of the CSV report.
#[derive(serde::Serialize)]
struct CsvFinding<'a> {
    severity: &'static str,
    code: &'static str,
    mac: String,
    file: String,
    message: &'a str,
    fix: &'a str,
}

/// The findings as CSV, one a line under a header (docs/AUDIT.md): for a spreadsheet.
pub(crate) fn csv(report: &Report) -> Result<(), Failure> {
    let rows: Vec<CsvFinding<'_>> = report
        .findings()
        .iter()
        .map(|f| CsvFinding {
            severity: f.severity().as_str(),
            code: f.code.as_str(),
            mac: f.mac.map(|m| m.to_string()).unwrap_or_default(),
            file: f
                .file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            message: &f.message,
            fix: &f.fix,
        })
        .collect();
    print_listing(
        &rows,
        ListFormat::Csv,
        &["severity", "code", "mac", "file", "message", "fix"],
        |row| {
            vec![
                row.severity.to_owned(),
                row.code.to_owned(),
                row.mac.clone(),
                row.file.clone(),
                row.message.to_owned(),
                row.fix.to_owned(),
            ]
        },
    )
}
