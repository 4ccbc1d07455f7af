//! A phone's MAC address.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The OUIs registered to Polycom / Poly in the IEEE registry.
const POLYCOM_OUIS: [[u8; 3]; 3] = [[0x00, 0x04, 0xf2], [0x64, 0x16, 0x7f], [0x48, 0x25, 0x67]];

/// A phone's MAC address.
///
/// Parsing accepts `0004F2ABCDEF`, `00:04:f2:ab:cd:ef`, `00-04-F2-AB-CD-EF` and
/// `0004.f2ab.cdef`, with surrounding whitespace. It rejects addresses that cannot be a phone:
/// all zeros (the shared master file's name), broadcast and multicast. The canonical form,
/// used in file names and shown by [`Display`](fmt::Display), is 12 lowercase hex digits.
///
/// ```
/// use polyseal_crypto::Mac;
/// let mac: Mac = " 00-04-F2-AB-CD-EF ".parse()?;
/// assert_eq!(mac.to_string(), "0004f2abcdef");
/// assert!(mac.is_polycom_oui());
/// assert!("000000000000".parse::<Mac>().is_err());
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    /// Parses any accepted spelling; see the type's documentation.
    pub fn parse(input: &str) -> Result<Mac, Error> {
        let trimmed = input.trim();
        let syntax = || Error::MacSyntax {
            input: input.to_owned(),
        };
        let digits: String = trimmed.chars().filter(char::is_ascii_hexdigit).collect();
        let separator = trimmed.chars().find(|c| !c.is_ascii_hexdigit());
        if separator.is_some_and(|sep| !matches!(sep, ':' | '-' | '.')) {
            return Err(syntax());
        }
        if digits.len() != 12 {
            return Err(Error::MacLength {
                input: input.to_owned(),
                digits: digits.len(),
            });
        }
        if let Some(sep) = separator {
            if !is_grouped_by(trimmed, sep) {
                return Err(syntax());
            }
        }
        let mut octets = [0u8; 6];
        hex::decode_to_slice(&digits, &mut octets).map_err(|_| syntax())?;
        Mac::from_octets(octets)
    }

    /// Builds a MAC from its six octets, applying the same checks as [`Mac::parse`].
    pub fn from_octets(octets: [u8; 6]) -> Result<Mac, Error> {
        let mac = Mac(octets);
        if octets == [0; 6] {
            Err(Error::MacAllZero)
        } else if octets == [0xff; 6] {
            Err(Error::MacBroadcast)
        } else if octets[0] & 1 == 1 {
            Err(Error::MacMulticast {
                mac: mac.to_string(),
            })
        } else {
            Ok(mac)
        }
    }

    /// The six octets.
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    /// The organisationally unique identifier: the first three octets.
    pub fn oui(&self) -> [u8; 3] {
        [self.0[0], self.0[1], self.0[2]]
    }

    /// True if the OUI is one registered to Polycom / Poly (00-04-F2, 64-16-7F, 48-25-67).
    /// Other OUIs are allowed everywhere; audit reports them.
    pub fn is_polycom_oui(&self) -> bool {
        POLYCOM_OUIS.contains(&self.oui())
    }
}

/// True if `s` is hex groups separated by `sep` in an accepted layout: six groups of two for
/// `:` and `-` (`00:04:f2:ab:cd:ef`), three groups of four for `.` (`0004.f2ab.cdef`).
fn is_grouped_by(s: &str, sep: char) -> bool {
    let group_len = if sep == '.' { 4 } else { 2 };
    let groups: Vec<&str> = s.split(sep).collect();
    groups.len() * group_len == 12
        && groups
            .iter()
            .all(|g| g.len() == group_len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl FromStr for Mac {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mac, Error> {
        Mac::parse(s)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for octet in self.0 {
            write!(f, "{octet:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}
