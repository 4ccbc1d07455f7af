//! Reading a Polycom XML file element by element, with the position of every element and
//! attribute, so that errors and findings can name line and column.
//!
//! Polycom configuration lives in attributes (`<reg reg.1.auth.password="…"/>` in the old nested
//! schema, `<device device.set="1" …/>` in the newer flat one), so this reader hands out
//! elements with their attributes and nothing else. Values are borrowed, never copied, so a
//! secret is not left behind in memory that is not zeroized.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::ops::ControlFlow;
use std::path::Path;

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::name::QName;
use quick_xml::reader::Reader;
use zeroize::Zeroize;

use crate::file_kind::encrypted_header;
use crate::position::{LineIndex, utf8_text};
use crate::{Error, Position};

/// The UTF-8 byte order mark, which some editors put at the start of a file.
const BOM: &str = "\u{feff}";

/// The text of one XML file, with what is needed to report positions in it.
pub(crate) struct XmlText<'a> {
    path: &'a Path,
    /// The file's own bytes for UTF-8; its characters re-encoded for ISO-8859-1.
    text: Cow<'a, str>,
    lines: OnceCell<LineIndex>,
}

impl Drop for XmlText<'_> {
    fn drop(&mut self) {
        // A re-encoded copy holds whatever secrets the file does.
        if let Cow::Owned(text) = &mut self.text {
            text.zeroize();
        }
    }
}

/// The encodings phones read besides UTF-8, by the names an XML declaration may give them
/// (compared without case): Polycom's contact directories are often ISO-8859-1 (issue 12).
/// US-ASCII is a subset of it; Windows-1252 differs from it only in bytes 0x80-0x9F
/// (typographic quotes, the euro sign), never in markup, so a file declaring it is read as
/// ISO-8859-1 for checking and published byte for byte as always.
const LATIN1_NAMES: [&str; 10] = [
    "iso-8859-1",
    "iso8859-1",
    "iso_8859-1",
    "latin1",
    "latin-1",
    "l1",
    "us-ascii",
    "ascii",
    "windows-1252",
    "cp1252",
];

/// One element: its name, nesting depth (0 for the root) and attributes.
pub(crate) struct Element<'e> {
    pub(crate) name: &'e str,
    pub(crate) depth: usize,
    /// Byte offset of the element's name in the file's text.
    pub(crate) offset: usize,
    pub(crate) attributes: &'e [Attribute<'e>],
}

/// One attribute as written in the file: name, raw (still escaped) value, position.
pub(crate) struct Attribute<'e> {
    pub(crate) name: &'e str,
    raw_value: Cow<'e, str>,
    /// Byte offset of the attribute's name in the file's text.
    pub(crate) offset: usize,
}

impl Attribute<'_> {
    /// True if the value as written (entities not resolved) contains `needle`.
    pub(crate) fn raw_value_contains(&self, needle: &str) -> bool {
        self.raw_value.contains(needle)
    }
}

impl<'a> XmlText<'a> {
    /// Takes a file's bytes as text: they must be UTF-8 (a leading byte order mark is skipped)
    /// and must not be an encrypted configuration file.
    pub(crate) fn new(path: &'a Path, bytes: &'a [u8]) -> Result<XmlText<'a>, Error> {
        if let Some(header) = encrypted_header(bytes) {
            return Err(Error::Encrypted {
                path: path.to_owned(),
                key_desc: header.ok().and_then(|h| h.key_desc().cloned()),
            });
        }
        let bytes = bytes.strip_prefix(BOM.as_bytes()).unwrap_or(bytes);
        if bytes.starts_with(BOM.as_bytes()) {
            return Err(Error::Xml {
                path: path.to_owned(),
                position: Position { line: 1, column: 1 },
                reason: "a second byte order mark before the document".to_owned(),
            });
        }
        let text = match declared_encoding(bytes) {
            None => Cow::Borrowed(utf8_text(path, bytes)?),
            Some(name)
                if name.eq_ignore_ascii_case("utf-8") || name.eq_ignore_ascii_case("utf8") =>
            {
                Cow::Borrowed(utf8_text(path, bytes)?)
            }
            Some(name) if LATIN1_NAMES.iter().any(|n| name.eq_ignore_ascii_case(n)) => {
                // Every byte is the character of the same number.
                Cow::Owned(bytes.iter().copied().map(char::from).collect())
            }
            Some(name) => {
                return Err(Error::Xml {
                    path: path.to_owned(),
                    position: Position { line: 1, column: 1 },
                    reason: format!(
                        "the XML declaration names the encoding {name}, which polyseal cannot \
                         read (UTF-8 and ISO-8859-1 can); save the file as UTF-8"
                    ),
                });
            }
        };
        Ok(XmlText {
            path,
            text,
            lines: OnceCell::new(),
        })
    }

    /// The file's path, as given for messages.
    pub(crate) fn path(&self) -> &'a Path {
        self.path
    }

    /// The position of byte `offset` of the text.
    pub(crate) fn position(&self, offset: usize) -> Position {
        self.lines
            .get_or_init(|| LineIndex::new(&self.text))
            .position(&self.text, offset)
    }

    /// An [`Error::Xml`] at byte `offset`.
    pub(crate) fn error(&self, offset: usize, reason: impl fmt::Display) -> Error {
        Error::Xml {
            path: self.path.to_owned(),
            position: self.position(offset),
            reason: reason.to_string(),
        }
    }

    /// An attribute's value as the phone reads it: entities resolved and whitespace normalised
    /// as XML 1.0 says.
    pub(crate) fn value<'v>(&self, attribute: &'v Attribute<'_>) -> Result<Cow<'v, str>, Error> {
        quick_xml::events::attributes::Attribute {
            key: QName(attribute.name),
            value: Cow::Borrowed(&attribute.raw_value),
        }
        .normalized_value(XmlVersion::Implicit1_0)
        .map_err(|e| {
            self.error(
                attribute.offset,
                format_args!("the value of {} cannot be read: {e}", attribute.name),
            )
        })
    }

    /// Calls `visit` for every element in document order, until it breaks or the document ends.
    /// The whole document is checked first for well-formedness as libxml2 (`xmllint`) judges
    /// it (docs/PROVISIONING.md §7): roxmltree checks the XML 1.0 grammar, which a lenient
    /// reader would not (`b="2"c="3"`, `a="x&y"`, `--` in a comment, an XML declaration after
    /// whitespace), and a phone's parser may not take what it refuses.
    pub(crate) fn for_each_element(
        &self,
        mut visit: impl FnMut(&Element<'_>) -> Result<ControlFlow<()>, Error>,
    ) -> Result<(), Error> {
        let document = self.parse()?;
        // One buffer serves every element: a 5 KB configuration has some sixty elements, and
        // allocating a buffer for each was 13% of the scanner's instructions.
        let mut attributes = Vec::new();
        let root = document.root();
        for node in root.descendants().filter(roxmltree::Node::is_element) {
            // The element's name as written (with any prefix) starts after its `<`.
            let offset = node.range().start + 1;
            let name = self
                .text
                .get(offset..)
                .unwrap_or_default()
                .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .next()
                .unwrap_or_default();
            attributes.clear();
            for attribute in node.attributes() {
                let (name_range, value_range) = (attribute.range_qname(), attribute.range_value());
                attributes.push(Attribute {
                    name: self.text.get(name_range.clone()).unwrap_or_default(),
                    raw_value: Cow::Borrowed(self.text.get(value_range).unwrap_or_default()),
                    offset: name_range.start,
                });
            }
            let element = Element {
                name,
                // The document node and the element itself are among its ancestors.
                depth: node.ancestors().count().saturating_sub(2),
                offset,
                attributes: &attributes,
            };
            if visit(&element)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The document, or an error with its position if it is not well-formed.
    fn parse(&self) -> Result<roxmltree::Document<'_>, Error> {
        let options = roxmltree::ParsingOptions {
            // Polycom configuration files have no DOCTYPE; one can define entities and default
            // attribute values (a password a scanner of the elements would not see), which
            // phones' parsers may or may not apply. Refused: docs/PROVISIONING.md §7.
            allow_dtd: false,
            // Far above any configuration file (Polycom's largest template has some 3,000
            // elements and attributes).
            nodes_limit: WELL_FORMED_NODES_LIMIT,
            ..roxmltree::ParsingOptions::default()
        };
        let document =
            roxmltree::Document::parse_with_options(&self.text, options).map_err(|error| {
                if matches!(error, roxmltree::Error::DtdDetected) {
                    // roxmltree names no place for it: the declaration is where it starts.
                    return self.error(
                        self.text.find("<!DOCTYPE").unwrap_or(0),
                        "a DOCTYPE: Polycom configuration files have none, and polyseal reads \
                         none (remove it)",
                    );
                }
                let at = error.pos();
                Error::Xml {
                    path: self.path.to_owned(),
                    position: Position {
                        line: usize::try_from(at.row).unwrap_or(usize::MAX),
                        column: usize::try_from(at.col).unwrap_or(usize::MAX),
                    },
                    reason: well_formed_reason(&error),
                }
            })?;
        self.check_declaration()?;
        if let Some(offset) = invalid_character_reference(&self.text) {
            return Err(self.error(
                offset,
                "a character reference to a code point that is no XML character",
            ));
        }
        for node in document.descendants() {
            if node.is_pi()
                && node
                    .pi()
                    .is_some_and(|pi| pi.target.eq_ignore_ascii_case("xml"))
            {
                return Err(self.error(
                    node.range().start,
                    "a processing instruction named xml, a name XML reserves",
                ));
            }
            // libxml2 refuses documents nested deeper than this (xmllint without --huge).
            if node.is_element() && node.ancestors().count() > MAX_DEPTH + 2 {
                return Err(self.error(
                    node.range().start,
                    format_args!("elements nested more than {MAX_DEPTH} deep"),
                ));
            }
        }
        Ok(document)
    }

    /// Refuses an XML declaration that names a version other than 1.x or a `standalone` other
    /// than `yes` or `no`.
    fn check_declaration(&self) -> Result<(), Error> {
        let mut reader = Reader::from_str(&self.text);
        let Ok(Event::Decl(declaration)) = reader.read_event() else {
            return Ok(());
        };
        let version = declaration
            .version()
            .map(std::borrow::Cow::into_owned)
            .unwrap_or_default();
        if !version.starts_with("1.") {
            return Err(self.error(
                0,
                format_args!("the XML declaration names version {version:?}; XML is 1.x"),
            ));
        }
        if let Some(Ok(standalone)) = declaration.standalone() {
            if !matches!(standalone.as_ref(), "yes" | "no") {
                return Err(self.error(0, "standalone must be \"yes\" or \"no\""));
            }
        }
        Ok(())
    }

    /// The root element's name and offset, read without parsing the rest of the document.
    pub(crate) fn root(&self) -> Result<(String, usize), Error> {
        // Read with quick-xml up to the root's start tag only: a file that goes wrong later is
        // still classified (the scan, which reads it whole, says where it goes wrong).
        let mut reader = Reader::from_str(&self.text);
        loop {
            let event = reader.read_event().map_err(|e| {
                let offset = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                self.error(offset, e)
            })?;
            match event {
                Event::Start(tag) | Event::Empty(tag) => {
                    let name = tag.name().0.to_owned();
                    // The tag's text is a slice of ours: its address tells where it starts.
                    let offset = (tag.as_ptr() as usize)
                        .saturating_sub(self.text.as_ptr() as usize)
                        .min(self.text.len());
                    return Ok((name, offset));
                }
                Event::Eof => {
                    return Err(self.error(self.text.len(), "the document has no root element"));
                }
                _ => {}
            }
        }
    }
}

/// Where `text` has a character reference to a code point XML 1.0 does not allow (a surrogate,
/// a control character other than tab and line ends, U+FFFE, U+FFFF, or beyond U+10FFFF),
/// which roxmltree lets through. Inside a comment such text is no reference; refusing it there
/// too is one place polyseal is stricter than libxml2.
fn invalid_character_reference(text: &str) -> Option<usize> {
    text.match_indices("&#").find_map(|(at, _)| {
        let rest = text.get(at + 2..)?;
        let (digits, radix) = match rest.strip_prefix('x') {
            Some(hex) => (hex, 16),
            None => (rest, 10),
        };
        let end = digits.find(';')?;
        let value = u32::from_str_radix(digits.get(..end)?, radix)
            .ok()
            .unwrap_or(u32::MAX);
        let allowed = matches!(value, 0x9 | 0xA | 0xD)
            || (0x20..=0xD7FF).contains(&value)
            || (0xE000..=0xFFFD).contains(&value)
            || (0x1_0000..=0x10_FFFF).contains(&value);
        (!allowed).then_some(at)
    })
}

/// The encoding an XML declaration at the very start of `bytes` names, if any.
fn declared_encoding(bytes: &[u8]) -> Option<String> {
    let mut reader = Reader::from_reader(bytes);
    match reader.read_event() {
        Ok(Event::Decl(declaration)) => declaration
            .encoding()
            .and_then(Result::ok)
            .map(Cow::into_owned),
        _ => None,
    }
}

/// How deep elements may nest: libxml2's limit (`xmllint` refuses deeper documents).
const MAX_DEPTH: usize = 256;

/// The most nodes (elements, attributes, text) a file may expand to; see
/// [`XmlText::check_well_formed`].
const WELL_FORMED_NODES_LIMIT: u32 = 1_000_000;

/// roxmltree's message without its own position (the error carries ours).
fn well_formed_reason(error: &roxmltree::Error) -> String {
    let at = error.pos();
    error
        .to_string()
        .replace(&format!(" at {}:{}", at.row, at.col), "")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Name, depth, and attributes with their positions.
    type Found = (String, usize, Vec<(String, Position)>);

    fn elements(xml: &str) -> Result<Vec<Found>, Error> {
        let text = XmlText::new(Path::new("t.xml"), xml.as_bytes())?;
        let mut out = Vec::new();
        text.for_each_element(|e| {
            let attributes = e
                .attributes
                .iter()
                .map(|a| (a.name.to_owned(), text.position(a.offset)))
                .collect();
            out.push((e.name.to_owned(), e.depth, attributes));
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }

    #[test]
    fn attributes_carry_their_own_line_and_column() -> Result<(), Error> {
        let found = elements("<a>\n  <b x=\"1\"\n     y='2'/>\n</a>")?;
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].0.as_str(), found[0].1), ("a", 0));
        assert_eq!((found[1].0.as_str(), found[1].1), ("b", 1));
        let positions: Vec<_> = found[1].2.iter().map(|(n, p)| (n.as_str(), *p)).collect();
        assert_eq!(
            positions,
            [
                ("x", Position { line: 2, column: 6 }),
                ("y", Position { line: 3, column: 6 })
            ]
        );
        Ok(())
    }

    #[test]
    fn values_are_unescaped_and_normalised() -> Result<(), Error> {
        let xml = "<a v=\"x&amp;y&lt;&#65;\nz\"/>";
        let text = XmlText::new(Path::new("t.xml"), xml.as_bytes())?;
        let mut value = String::new();
        text.for_each_element(|e| {
            value = text.value(&e.attributes[0])?.into_owned();
            Ok(ControlFlow::Continue(()))
        })?;
        assert_eq!(value, "x&y<A z");
        Ok(())
    }

    #[test]
    fn ill_formed_documents_are_errors_with_positions() {
        let cases = [
            ("<a><b></a>", 1, "mismatched"),
            ("<a x='1'\n   x='2'/>", 2, "duplicate"),
            ("<a x/>", 1, "no equals"),
            ("<a x=1/>", 1, "unquoted"),
            ("<a/>\n<b/>", 2, "second root"),
            ("<a/>\ntext", 2, "text outside"),
            ("", 1, "no root"),
            // roxmltree names the first element left open.
            ("<a>\n<b>", 1, "unclosed"),
        ];
        for (xml, line, what) in cases {
            match elements(xml) {
                Err(Error::Xml {
                    position, reason, ..
                }) => {
                    assert_eq!(position.line, line, "{what}: {xml:?}: {reason}")
                }
                other => panic!("{what}: expected an XML error for {xml:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_repeated_attribute_is_named_with_the_position_of_its_repeat() {
        let error = elements("<a\n x='1'\n x='2'/>")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("t.xml:3:2: not well-formed XML: attribute 'x' is already defined")
        );
    }

    #[test]
    fn an_unclosed_element_is_named() {
        let error = elements("<a>\n<b>").err().map(|e| e.to_string());
        assert!(
            error.as_deref().is_some_and(|e| e.contains("t.xml:1:")),
            "{error:?}"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_with_their_position() {
        let result = XmlText::new(Path::new("t.xml"), b"<a>\n  \xff</a>");
        assert!(
            matches!(result, Err(Error::NotUtf8 { position, .. }) if position == Position { line: 2, column: 3 })
        );
    }
}
