//! Aligned text tables and CSV for listings.

use crate::cli::ListFormat;
use crate::failure::Failure;

/// Rows of text under a header, printed aligned or as CSV.
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Prints aligned columns on standard output.
    pub(crate) fn print(&self) -> Result<(), Failure> {
        let mut widths: Vec<usize> = self.header.iter().map(String::len).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        emit(&text)
    }

    /// Prints RFC 4180 CSV on standard output.
    pub(crate) fn print_csv(&self) -> Result<(), Failure> {
        let mut text = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        emit(&text)
    }
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// Writes `text` to standard output.
pub(crate) fn emit(text: &str) -> Result<(), Failure> {
    crate::output::write_stdout(text.as_bytes())
}

/// Prints `rows` as `format`: one pretty JSON document of their serde form, or aligned
/// columns or CSV of `cells` under `header`. Every listing prints through here.
pub(crate) fn print_listing<R: serde::Serialize>(
    rows: &[R],
    format: ListFormat,
    header: &[&str],
    cells: impl Fn(&R) -> Vec<String>,
) -> Result<(), Failure> {
    if format == ListFormat::Json {
        let json = serde_json::to_string_pretty(rows)
            .map_err(|e| Failure::new(crate::failure::ExitClass::Io, e.to_string()))?;
        return emit(&format!("{json}\n"));
    }
    let mut table = Table::new(header);
    for row in rows {
        table.row(cells(row));
    }
    match format {
        ListFormat::Csv => table.print_csv(),
        _ => table.print(),
    }
}
