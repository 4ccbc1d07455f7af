//! The parameters of a plaintext configuration file, as a phone applies them.
//!
//! Polycom configuration lives in attributes, `<reg reg.1.auth.password="…"/>` in the nested
//! schema and `<device device.set="1" …/>` in the flat one; every attribute of every element
//! is a parameter, named by the attribute.

use quick_xml::XmlVersion;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// The parameters of `bytes` in document order, values with entities resolved; an error
/// (text for a report) when the file is not UTF-8 XML.
pub(crate) fn parameters(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut reader = Reader::from_str(text);
    let mut found = Vec::new();
    loop {
        let tag = match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(tag) | Event::Empty(tag) => tag,
            Event::Eof => return Ok(found),
            _ => continue,
        };
        for attribute in tag.attributes() {
            let attribute = attribute.map_err(|e| format!("bad attribute: {e}"))?;
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| format!("bad attribute value: {e}"))?;
            found.push((attribute.key.0.to_owned(), value.into_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_is_a_parameter_in_order() {
        let xml = br#"<?xml version="1.0"?>
<polycomConfig><reg reg.1.auth.password="a&amp;b" reg.1.address="1001"/>
<device device.set="1"/></polycomConfig>"#;
        assert_eq!(
            parameters(xml),
            Ok(vec![
                ("reg.1.auth.password".into(), "a&b".into()),
                ("reg.1.address".into(), "1001".into()),
                ("device.set".into(), "1".into()),
            ])
        );
    }

    #[test]
    fn broken_xml_is_reported() {
        assert!(parameters(b"<a><b></a>").is_err());
        assert!(parameters(&[0xff, 0xfe]).is_err());
    }
}
