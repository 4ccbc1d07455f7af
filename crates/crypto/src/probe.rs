//! Which layouts a file fits: every one of the 72 tried with the file's key, for `polyseal
//! format probe` (docs/FORMAT.md, "Learning the layout").

use crate::file::{Header, decrypt_with};
use crate::{Error, KeyString, Layout};

/// How far reading a file in a layout got, worst first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Stage {
    /// The file's structure is not the layout's (line ending, IV field, digest length, body
    /// encoding).
    Structure,
    /// The ciphertext is not whole blocks.
    Blocks,
    /// The padding is invalid.
    Padding,
    /// The padding is valid, the digest does not match.
    Digest,
    /// The digest matches, the plaintext given differs.
    Plaintext,
    /// It fits.
    Fits,
}

impl Stage {
    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Structure => "structure differs",
            Stage::Blocks => "not whole blocks",
            Stage::Padding => "padding invalid",
            Stage::Digest => "padding valid, digest differs",
            Stage::Plaintext => "digest matches, plaintext differs",
            Stage::Fits => "fits",
        }
    }
}

/// What probing found.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Probe {
    /// Every layout every file fits, the default first when it is one.
    pub fits: Vec<Layout>,
    /// For each dimension (in [`Layout::DIMENSIONS`] order), each value and the furthest any
    /// layout with it got on its worst file.
    pub closest: Vec<Vec<(&'static str, Stage)>>,
}

/// Tries every layout on every file of `files` with `key`; with `plaintext`, a layout fits
/// only if each file decrypts to it. A file that is not an encrypted file, or names another
/// KeyDesc than the key's, is an error before any layout is tried.
pub fn probe(files: &[&[u8]], key: &KeyString, plaintext: Option<&[u8]>) -> Result<Probe, Error> {
    for file in files {
        let header = Header::parse(file)?;
        if let Some(desc) = header.key_desc()
            && desc != key.key_desc()
        {
            return Err(Error::KeyDescMismatch {
                file: desc.to_string(),
                key: key.key_desc().to_string(),
            });
        }
    }
    let layouts = Layout::all();
    let reached: Vec<Stage> = layouts
        .iter()
        .map(|layout| {
            files
                .iter()
                .map(|file| match decrypt_with(file, key, layout) {
                    Ok(got) if plaintext.is_some_and(|want| want != &got[..]) => Stage::Plaintext,
                    Ok(_) => Stage::Fits,
                    Err(error) => stage_of(&error),
                })
                .min()
                .unwrap_or(Stage::Structure)
        })
        .collect();
    let fits = layouts
        .iter()
        .zip(&reached)
        .filter(|(_, stage)| **stage == Stage::Fits)
        .map(|(layout, _)| *layout)
        .collect();
    let closest = (0..Layout::DIMENSIONS.len())
        .map(|dimension| {
            let mut values: Vec<(&'static str, Stage)> = Vec::new();
            for (layout, stage) in layouts.iter().zip(&reached) {
                let value = layout.value(dimension);
                match values.iter_mut().find(|(v, _)| *v == value) {
                    Some((_, best)) => *best = (*best).max(*stage),
                    None => values.push((value, *stage)),
                }
            }
            values
        })
        .collect();
    Ok(Probe { fits, closest })
}

fn stage_of(error: &Error) -> Stage {
    match error {
        Error::TruncatedBody { .. } | Error::BodyNotBlockAligned { .. } => Stage::Blocks,
        Error::BadPadding => Stage::Padding,
        Error::DigestMismatch => Stage::Digest,
        _ => Stage::Structure,
    }
}
