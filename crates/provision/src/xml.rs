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
use quick_xml::events::attributes::{AttrError, Attributes};
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::QName;
use quick_xml::reader::Reader;

use crate::file_kind::encrypted_header;
use crate::position::{LineIndex, utf8_text};
use crate::{Error, Position};

/// The UTF-8 byte order mark, which some editors put at the start of a file.
const BOM: &str = "\u{feff}";

/// The text of one XML file, with what is needed to report positions in it.
pub(crate) struct XmlText<'a> {
    path: &'a Path,
    text: &'a str,
    lines: OnceCell<LineIndex>,
}

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
        let text = utf8_text(path, bytes)?;
        Ok(XmlText {
            path,
            text: text.strip_prefix(BOM).unwrap_or(text),
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
            .get_or_init(|| LineIndex::new(self.text))
            .position(self.text, offset)
    }

    /// An [`Error::Xml`] at byte `offset`.
    pub(crate) fn error(&self, offset: usize, reason: impl fmt::Display) -> Error {
        Error::Xml {
            path: self.path.to_owned(),
            position: self.position(offset),
            reason: reason.to_string(),
        }
    }

    /// Where `part`, a slice the XML reader borrowed from this text, starts in it.
    ///
    /// The slice reader hands out events that borrow from the input, so the address difference
    /// is the offset; quick-xml has no public API for attribute positions. The clamp keeps a
    /// wrong answer a wrong position in a message, never a panic.
    fn offset_of(&self, part: &str) -> usize {
        (part.as_ptr() as usize)
            .saturating_sub(self.text.as_ptr() as usize)
            .min(self.text.len())
    }

    /// `part`, a slice the XML reader borrowed from this text, as the text's own slice: the same
    /// bytes, with the text's lifetime instead of the event's. `None` if `part` is not a slice
    /// of this text.
    fn own_slice(&self, part: &str) -> Option<&'a str> {
        let offset = self.offset_of(part);
        self.text
            .get(offset..offset + part.len())
            .filter(|own| std::ptr::eq(own.as_ptr(), part.as_ptr()))
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
    /// The whole document is checked for well-formedness up to that point: a mismatched end
    /// tag, a duplicated attribute, a second root element are errors with their position.
    pub(crate) fn for_each_element(
        &self,
        mut visit: impl FnMut(&Element<'_>) -> Result<ControlFlow<()>, Error>,
    ) -> Result<(), Error> {
        let mut reader = Reader::from_str(self.text);
        // Offsets of the names of the elements open at this point, innermost last.
        let mut open = Vec::new();
        // One buffer serves every element: a 5 KB configuration has some sixty elements, and
        // allocating a buffer for each was 13% of the scanner's instructions.
        let mut attributes = Vec::new();
        let mut root_seen = false;
        loop {
            let event = reader.read_event().map_err(|e| {
                let offset = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
                self.error(offset, e)
            })?;
            let (tag, opens) = match event {
                Event::Start(tag) => (tag, true),
                Event::Empty(tag) => (tag, false),
                Event::End(_) => {
                    open.pop();
                    continue;
                }
                Event::Text(text) if open.is_empty() && !text.trim().is_empty() => {
                    let leading_space = text.len() - text.trim_start().len();
                    return Err(self.error(
                        self.offset_of(&text) + leading_space,
                        "text outside the root element",
                    ));
                }
                Event::Eof if !root_seen => {
                    return Err(self.error(self.text.len(), "the document has no root element"));
                }
                Event::Eof => match open.last() {
                    Some(&offset) => {
                        let name = self
                            .text
                            .get(offset..)
                            .unwrap_or_default()
                            .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
                            .next()
                            .unwrap_or_default();
                        return Err(self.error(offset, format_args!("<{name}> is never closed")));
                    }
                    None => return Ok(()),
                },
                _ => continue,
            };
            if open.is_empty() && root_seen {
                return Err(self.error(
                    self.offset_of(&tag),
                    format_args!("a second root element <{}>", tag.name().0),
                ));
            }
            root_seen = true;
            let offset = self.offset_of(&tag);
            self.read_attributes(offset, &tag, &mut attributes)?;
            let element = Element {
                name: tag.name().0,
                depth: open.len(),
                offset,
                attributes: &attributes,
            };
            if visit(&element)?.is_break() {
                return Ok(());
            }
            if opens {
                open.push(element.offset);
            }
        }
    }

    /// Replaces `into` with the attributes of `tag`, which starts at byte `tag_offset`.
    ///
    /// The attributes borrow from the text, not from `tag`, so that one buffer outlives every
    /// element: the reader hands out tags that are slices of the text, taken here as the
    /// text's own.
    fn read_attributes(
        &self,
        tag_offset: usize,
        tag: &BytesStart<'_>,
        into: &mut Vec<Attribute<'a>>,
    ) -> Result<(), Error> {
        into.clear();
        let Some(tag_text) = self.own_slice(tag) else {
            return Err(self.error(tag_offset, "the XML reader lost its place in the text"));
        };
        for attribute in Attributes::new(tag_text, tag.name().0.len()) {
            let attribute = attribute.map_err(|e| self.attribute_error(tag_offset, tag, e))?;
            let name = attribute.key.0;
            into.push(Attribute {
                name,
                raw_value: attribute.value,
                offset: self.offset_of(name),
            });
        }
        Ok(())
    }

    /// An [`Error::Xml`] for a malformed attribute, in words and at a position of this file
    /// (quick-xml's own message counts bytes from the start of the tag).
    fn attribute_error(&self, tag_offset: usize, tag: &BytesStart<'_>, error: AttrError) -> Error {
        let element = tag.name().0;
        let name_at = |at: usize| {
            tag.get(at..)
                .unwrap_or_default()
                .split(|c: char| c == '=' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let (at, reason) = match error {
            AttrError::ExpectedEq(at) => (at, format!("an attribute of <{element}> has no '='")),
            AttrError::ExpectedValue(at) => (
                at,
                format!("an attribute of <{element}> has no value after '='"),
            ),
            AttrError::UnquotedValue(at) => (
                at,
                format!("an attribute value of <{element}> is not in quotes"),
            ),
            AttrError::ExpectedQuote(at, _) => (
                at,
                format!("an attribute value of <{element}> has no closing quote"),
            ),
            AttrError::Duplicated(at, first) => (
                at,
                format!(
                    "attribute {} of <{element}> is repeated (first at {})",
                    name_at(at),
                    self.position(tag_offset + first)
                ),
            ),
        };
        self.error(tag_offset + at, reason)
    }

    /// The root element's name and offset, read without parsing the rest of the document.
    pub(crate) fn root(&self) -> Result<(String, usize), Error> {
        let mut root = None;
        self.for_each_element(|element| {
            root = Some((element.name.to_owned(), element.offset));
            Ok(ControlFlow::Break(()))
        })?;
        // for_each_element fails on a document without a root, so `root` is set here.
        root.ok_or_else(|| self.error(self.text.len(), "the document has no root element"))
    }
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
            ("<a>\n<b>", 2, "unclosed"),
        ];
        for (xml, line, what) in cases {
            match elements(xml) {
                Err(Error::Xml { position, .. }) => {
                    assert_eq!(position.line, line, "{what}: {xml:?}")
                }
                other => panic!("{what}: expected an XML error for {xml:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_repeated_attribute_is_named_with_both_positions() {
        let error = elements("<a\n x='1'\n x='2'/>")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("t.xml:3:2: not well-formed XML: attribute x of <a> is repeated (first at 2:2)")
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
