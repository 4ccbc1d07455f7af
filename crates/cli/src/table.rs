//! Aligned text tables and CSV for listings.

use std::borrow::Cow;

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
        emit(&self.aligned())
    }

    /// The aligned columns, every control character of every cell escaped
    /// ([`escape_controls`]).
    fn aligned(&self) -> String {
        let rows: Vec<Vec<Cow<'_, str>>> = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|row| row.iter().map(|cell| escape_controls(cell)).collect())
            .collect();
        let mut widths: Vec<usize> = Vec::new();
        for row in &rows {
            for (column, cell) in row.iter().enumerate() {
                let width = cell.chars().count();
                match widths.get_mut(column) {
                    Some(widest) => *widest = (*widest).max(width),
                    None => widths.push(width),
                }
            }
        }
        let mut text = String::new();
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text
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

/// `cell` with every control character (C0, DEL and C1) escaped: `\n`, `\r`, `\t`, `\x1b`,
/// `\x7f`, `\u{9b}`. Cells carry what clients sent (a request's path, in `status`), which
/// printed raw could move the cursor, recolour the terminal or forge a row.
fn escape_controls(cell: &str) -> Cow<'_, str> {
    if !cell.contains(char::is_control) {
        return Cow::Borrowed(cell);
    }
    let mut escaped = String::with_capacity(cell.len() + 8);
    for c in cell.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_ascii_control() => escaped.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if c.is_control() => escaped.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_a_cell_are_escaped_and_align_as_they_are_shown() {
        let mut table = Table::new(&["path", "status"]);
        table.row(vec![
            "/\u{1b}[31mx\nforged  row\r\t\u{7f}\u{9b}2J.cfg".to_owned(),
            "404".to_owned(),
        ]);
        table.row(vec!["/ok.cfg".to_owned(), "200".to_owned()]);
        let text = table.aligned();
        assert!(
            !text.contains(|c: char| c.is_control() && c != '\n'),
            "{text:?}"
        );
        let shown = r"/\x1b[31mx\nforged  row\r\t\x7f\u{9b}2J.cfg";
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                format!("{:<width$}  status", "path", width = shown.len()),
                format!("{shown}  404"),
                format!("{:<width$}  200", "/ok.cfg", width = shown.len()),
            ]
        );
    }
}
