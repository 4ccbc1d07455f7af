//! Lines of a ledger or an access log, read one at a time and each at most [`MAX_LINE`]
//! bytes, so that neither a huge line nor a huge file is ever held whole in memory.

use std::io::{self, BufRead};

/// The longest line kept: a ledger line is at most about 2.5 KiB (paths and subjects are
/// bounded when written, `Entry::bounded`); anything past 64 KiB is damage, skipped.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// One line read.
pub(crate) struct RawLine<'a> {
    /// Its number, from 1.
    pub(crate) number: u64,
    /// Its bytes with the newline, or `None` when it was longer than [`MAX_LINE`].
    pub(crate) bytes: Option<&'a [u8]>,
    /// Its length in the file, newline included.
    pub(crate) len: u64,
    /// Whether it ended with a newline (a last line without one is a torn write).
    pub(crate) complete: bool,
}

/// Reads lines from `reader`.
pub(crate) struct Lines<R> {
    reader: R,
    line: Vec<u8>,
    number: u64,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(reader: R) -> Lines<R> {
        Lines {
            reader,
            line: Vec::new(),
            number: 0,
        }
    }

    /// The next line, or `None` at the end.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        self.line.clear();
        let mut too_long = false;
        let mut complete = false;
        let mut len = 0u64;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let (take, found) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            if !too_long {
                if self.line.len() + take > MAX_LINE {
                    too_long = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(&available[..take]);
                }
            }
            self.reader.consume(take);
            len += take as u64;
            if found {
                complete = true;
                break;
            }
        }
        if len == 0 {
            return Ok(None);
        }
        self.number += 1;
        Ok(Some(RawLine {
            number: self.number,
            bytes: (!too_long).then_some(self.line.as_slice()),
            len,
            complete,
        }))
    }
}

/// A line of JSON lines as [`scan_json`] gives it.
pub(crate) enum Scanned<T> {
    /// A line that parsed (its length in the file, newline included).
    Line(u64, T),
    /// The last line, torn.
    Torn,
    /// A line before the last that does not parse.
    Bad {
        /// Its number, from 1.
        number: u64,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads `reader` as JSON lines of `T`, giving each to `visit`: empty lines are passed over,
/// bytes that are not UTF-8 read as U+FFFD, and a line that does not parse (or is past
/// [`MAX_LINE`]) is `Bad`, or `Torn` when it is the last (a write cut short).
pub(crate) fn scan_json<T: serde::de::DeserializeOwned>(
    reader: impl BufRead,
    mut visit: impl FnMut(Scanned<T>),
) -> io::Result<()> {
    let mut lines = Lines::new(reader);
    // A bad line is judged torn only once it is known to be the last.
    let mut pending: Option<(u64, String)> = None;
    while let Some(raw) = lines.next_line()? {
        if let Some((number, reason)) = pending.take() {
            visit(Scanned::Bad { number, reason });
        }
        let Some(bytes) = raw.bytes else {
            pending = Some((raw.number, format!("longer than {MAX_LINE} bytes")));
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(text.trim_end()) {
            Ok(_) if !raw.complete => visit(Scanned::Torn),
            Ok(line) => visit(Scanned::Line(raw.len, line)),
            Err(e) => pending = Some((raw.number, e.to_string())),
        }
    }
    if pending.is_some() {
        visit(Scanned::Torn);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_past_the_bound_is_skipped_whole_and_the_next_is_read() {
        let mut text = vec![b'a'; MAX_LINE + 10];
        text.extend_from_slice(b"\nok\nlast");
        let mut lines = Lines::new(io::BufReader::with_capacity(4096, text.as_slice()));
        let first = lines.next_line().expect("read").expect("a line");
        assert!(first.bytes.is_none() && first.complete);
        assert_eq!(first.len, MAX_LINE as u64 + 11);
        let second = lines.next_line().expect("read").expect("a line");
        assert_eq!((second.number, second.bytes), (2, Some(&b"ok\n"[..])));
        let last = lines.next_line().expect("read").expect("a line");
        assert_eq!((last.bytes, last.complete), (Some(&b"last"[..]), false));
        assert!(lines.next_line().expect("read").is_none());
    }
}
