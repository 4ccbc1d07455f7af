//! Line and column of a place in a text file, for messages a person can follow.

use std::fmt;
use std::path::Path;

use crate::Error;

/// A place in a text file: 1-based line and 1-based column (counted in characters).
///
/// Shown as `line:column`, so that `path:line:column` reads like a compiler message and
/// editors can jump to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line number, from 1.
    pub line: usize,
    /// Column number, from 1, in characters (not bytes).
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// `bytes` as text, or an [`Error::NotUtf8`] naming `path` and where the first invalid byte is.
pub(crate) fn utf8_text<'b>(path: &Path, bytes: &'b [u8]) -> Result<&'b str, Error> {
    std::str::from_utf8(bytes).map_err(|e| {
        // The valid prefix is text, so positions within it are computed as usual.
        let valid = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
        Error::NotUtf8 {
            path: path.to_owned(),
            position: LineIndex::new(valid).position(valid, valid.len()),
        }
    })
}

/// The byte offsets where the lines of a text start, to turn byte offsets into [`Position`]s.
#[derive(Debug)]
pub(crate) struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let line_starts = std::iter::once(0)
            .chain(
                text.bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        LineIndex { line_starts }
    }

    /// The position of byte `offset` of `text` (the text this index was built from). An offset
    /// inside a multi-byte character counts as that character.
    pub(crate) fn position(&self, text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&start| start <= offset);
        let line_start = self.line_starts[line.saturating_sub(1)];
        let column = text.as_bytes()[line_start..offset]
            .iter()
            // Count characters: every byte that does not continue a UTF-8 sequence.
            .filter(|&&b| b & 0xC0 != 0x80)
            .count();
        Position {
            line,
            column: column + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let text = "ab\nc\u{e9}d\n\nx";
        let index = LineIndex::new(text);
        let at = |offset| {
            let p = index.position(text, offset);
            (p.line, p.column)
        };
        assert_eq!(at(0), (1, 1));
        assert_eq!(at(2), (1, 3));
        assert_eq!(at(3), (2, 1));
        // 'd' follows the two-byte 'é': byte 6, character column 3.
        assert_eq!(at(6), (2, 3));
        assert_eq!(at(8), (3, 1));
        assert_eq!(at(9), (4, 1));
        assert_eq!(at(100), (4, 2));
    }
}
