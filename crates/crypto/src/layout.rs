//! The byte layout of an encrypted configuration file: every choice public Polycom
//! documentation leaves open, as one typed value (docs/FORMAT.md, "Layouts").
//!
//! `iv=prefix digest=sha256 padding=pkcs7 body=raw eol=lf` is polyseal's default, a documented
//! guess; a fleet's firmware may use another, which `polyseal format probe` learns from a file a
//! phone encrypted itself.

use std::fmt;
use std::str::FromStr;

use crate::{DigestAlgorithm, Error};

/// Defines one dimension of the layout: an enum, its names, and every value.
macro_rules! dimension {
    ($(#[$doc:meta])* $name:ident, $dimension:literal, { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in the order `format probe` tries them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The dimension's name in `format show`.
            pub const DIMENSION: &'static str = $dimension;

            /// Its name in `format show`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            fn from_name(name: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

dimension!(
    /// Where the CBC initialisation vector is.
    Iv, "iv", {
        /// The 16 bytes right after the header line (before base64, with `body=base64`).
        Prefix = "prefix",
        /// Sixteen zero bytes: nowhere in the file.
        Zero = "zero",
        /// An `IV=<32 hex digits>` field of the header line.
        Header = "header",
    }
);

dimension!(
    /// How the plaintext is padded to whole blocks.
    Padding, "padding", {
        /// PKCS#7: 1 to 16 bytes, each the count.
        Pkcs7 = "pkcs7",
        /// Zero bytes up to the next block, none when the plaintext fills its blocks; the
        /// digest tells trailing zeros of the plaintext from padding.
        Zero = "zero",
    }
);

dimension!(
    /// How the bytes after the header line are written.
    Body, "body", {
        /// As they are.
        Raw = "raw",
        /// Base64 (of the IV and the ciphertext together with `iv=prefix`), in lines of 64
        /// characters each ended by the layout's line ending (as `openssl enc -a`).
        Base64 = "base64",
    }
);

dimension!(
    /// The line ending of the header line (and of base64 lines), matched exactly.
    Eol, "eol", {
        /// `\n`.
        Lf = "lf",
        /// `\r\n`.
        Crlf = "crlf",
    }
);

impl Eol {
    /// Its bytes.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Eol::Lf => b"\n",
            Eol::Crlf => b"\r\n",
        }
    }
}

/// The byte layout of an encrypted file. Its text form, `format show`'s, names all five
/// dimensions: `iv=prefix digest=sha256 padding=pkcs7 body=raw eol=lf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Layout {
    /// Where the IV is.
    pub iv: Iv,
    /// The hash of the plaintext in the header's `Digest=`.
    pub digest: DigestAlgorithm,
    /// How the plaintext is padded.
    pub padding: Padding,
    /// How the body is written.
    pub body: Body,
    /// The header line's ending.
    pub eol: Eol,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout::DEFAULT
    }
}

impl Layout {
    /// polyseal's layout until a fleet shows another (docs/FORMAT.md, "How the default was
    /// chosen").
    pub const DEFAULT: Layout = Layout {
        iv: Iv::Prefix,
        digest: DigestAlgorithm::Sha256,
        padding: Padding::Pkcs7,
        body: Body::Raw,
        eol: Eol::Lf,
    };

    /// The names of the five dimensions, in the order of the text form.
    pub const DIMENSIONS: [&'static str; 5] = ["iv", "digest", "padding", "body", "eol"];

    /// Every layout (72), the default first.
    pub fn all() -> Vec<Layout> {
        let mut all = vec![Layout::DEFAULT];
        for &iv in Iv::ALL {
            for &digest in DigestAlgorithm::ALL {
                for &padding in Padding::ALL {
                    for &body in Body::ALL {
                        for &eol in Eol::ALL {
                            let layout = Layout {
                                iv,
                                digest,
                                padding,
                                body,
                                eol,
                            };
                            if layout != Layout::DEFAULT {
                                all.push(layout);
                            }
                        }
                    }
                }
            }
        }
        all
    }

    /// This layout with the `name=value` pairs of `assignments` (separated by spaces or
    /// commas) applied: `iv=zero digest=sha1`. A name given twice, an unknown name or value is
    /// an error naming it.
    pub fn with(self, assignments: &str) -> Result<Layout, Error> {
        self.with_counted(assignments).map(|(layout, _)| layout)
    }

    fn with_counted(mut self, assignments: &str) -> Result<(Layout, [bool; 5]), Error> {
        let bad = |reason: String| Error::BadLayout {
            input: assignments.to_owned(),
            reason,
        };
        let mut seen = [false; 5];
        for pair in assignments
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|p| !p.is_empty())
        {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("{pair:?} is not name=value")))?;
            let index = Layout::DIMENSIONS
                .iter()
                .position(|d| *d == name)
                .ok_or_else(|| {
                    bad(format!(
                        "no dimension {name:?}; the dimensions are {}",
                        Layout::DIMENSIONS.join(", ")
                    ))
                })?;
            if std::mem::replace(&mut seen[index], true) {
                return Err(bad(format!("{name} is given twice")));
            }
            let unknown = |values: Vec<&str>| {
                bad(format!(
                    "{name}={value:?} is not one of {}",
                    values.join(", ")
                ))
            };
            match index {
                0 => {
                    self.iv = Iv::from_name(value)
                        .ok_or_else(|| unknown(Iv::ALL.iter().map(|v| v.as_str()).collect()))?;
                }
                1 => {
                    self.digest = DigestAlgorithm::from_name(value).ok_or_else(|| {
                        unknown(DigestAlgorithm::ALL.iter().map(|v| v.name()).collect())
                    })?;
                }
                2 => {
                    self.padding = Padding::from_name(value).ok_or_else(|| {
                        unknown(Padding::ALL.iter().map(|v| v.as_str()).collect())
                    })?;
                }
                3 => {
                    self.body = Body::from_name(value)
                        .ok_or_else(|| unknown(Body::ALL.iter().map(|v| v.as_str()).collect()))?;
                }
                _ => {
                    self.eol = Eol::from_name(value)
                        .ok_or_else(|| unknown(Eol::ALL.iter().map(|v| v.as_str()).collect()))?;
                }
            }
        }
        Ok((self, seen))
    }

    /// The value of dimension `index` (of [`Layout::DIMENSIONS`]), as the text form shows it.
    pub fn value(&self, index: usize) -> &'static str {
        match index {
            0 => self.iv.as_str(),
            1 => self.digest.name(),
            2 => self.padding.as_str(),
            3 => self.body.as_str(),
            _ => self.eol.as_str(),
        }
    }

    /// The dimensions in which `other` differs from this layout, as `name=value` of `other`.
    pub fn differences(&self, other: &Layout) -> Vec<String> {
        (0..Layout::DIMENSIONS.len())
            .filter(|&i| self.value(i) != other.value(i))
            .map(|i| format!("{}={}", Layout::DIMENSIONS[i], other.value(i)))
            .collect()
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in Layout::DIMENSIONS.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={}", self.value(i))?;
        }
        Ok(())
    }
}

impl FromStr for Layout {
    type Err = Error;

    /// The text form with all five dimensions, in any order.
    fn from_str(s: &str) -> Result<Layout, Error> {
        let (layout, seen) = Layout::DEFAULT.with_counted(s)?;
        if let Some(missing) = seen.iter().position(|seen| !seen) {
            return Err(Error::BadLayout {
                input: s.to_owned(),
                reason: format!("{} is missing", Layout::DIMENSIONS[missing]),
            });
        }
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips_for_every_layout_and_they_are_72() {
        let all = Layout::all();
        assert_eq!(all.len(), 72);
        assert_eq!(all[0], Layout::DEFAULT);
        for layout in all {
            assert_eq!(layout.to_string().parse::<Layout>(), Ok(layout));
        }
        assert_eq!(
            Layout::DEFAULT.to_string(),
            "iv=prefix digest=sha256 padding=pkcs7 body=raw eol=lf"
        );
    }

    #[test]
    fn a_partial_assignment_changes_only_what_it_names_and_bad_ones_say_why() {
        let layout = Layout::DEFAULT.with("iv=zero, digest=sha1").expect("with");
        assert_eq!(
            layout.to_string(),
            "iv=zero digest=sha1 padding=pkcs7 body=raw eol=lf"
        );
        for (input, says) in [
            ("iv=middle", "not one of prefix, zero, header"),
            ("iv=zero iv=zero", "twice"),
            ("colour=red", "no dimension"),
            ("iv", "not name=value"),
        ] {
            let error = Layout::DEFAULT.with(input).expect_err(input).to_string();
            assert!(error.contains(says), "{input}: {error}");
        }
        let error = "iv=zero"
            .parse::<Layout>()
            .expect_err("partial")
            .to_string();
        assert!(error.contains("digest is missing"), "{error}");
    }
}
