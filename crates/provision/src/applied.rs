//! The value a phone applies for one parameter: the first occurrence across the files of its
//! `CONFIG_FILES`, left to right (Polycom's UC Software admin guide: the first file listed
//! wins), read from the plaintext files of its fetch plan.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::xml::XmlText;
use crate::{Error, FetchPlan, FileState, Position, Role, SourceTree};

/// How [`SourceTree::applied_setting`] reads a file already encrypted in the tree: from its
/// path and bytes, its plaintext, or `None` when it cannot be opened.
pub type OpenEncrypted<'a> = dyn FnMut(&Path, &[u8]) -> Option<Zeroizing<Vec<u8>>> + 'a;

/// Where a phone's value of a parameter comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppliedSetting {
    /// The file that sets it, relative to the tree's root.
    pub file: PathBuf,
    /// Its place in the file.
    pub position: Position,
    /// The value, as the phone reads it.
    pub value: String,
}

impl SourceTree {
    /// The value `plan`'s phone applies for `parameter`, from the first of its configuration
    /// files (per-phone or shared, in the tree) that sets it; `None` if none does. A file
    /// already encrypted in the tree is read through `open` (its path and bytes; its plaintext,
    /// or `None` when it cannot be opened, and is then passed over: the caller refuses such a
    /// file on its own).
    ///
    /// Errors: a listed file that cannot be read, or is not well-formed XML.
    pub fn applied_setting(
        &self,
        plan: &FetchPlan,
        parameter: &str,
        open: &mut OpenEncrypted<'_>,
    ) -> Result<Option<AppliedSetting>, Error> {
        let configs = plan.files.iter().filter(|file| {
            matches!(file.role, Role::PerPhoneConfig | Role::SharedConfig)
                && matches!(
                    file.state,
                    FileState::Plaintext | FileState::Encrypted { .. }
                )
        });
        for file in configs {
            let Some(relative) = file.path() else {
                continue;
            };
            let path = self.path_of(relative);
            // A per-phone file holds its phone's secrets.
            let read = Zeroizing::new(std::fs::read(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?);
            let bytes = if matches!(file.state, FileState::Encrypted { .. }) {
                match open(&path, &read) {
                    Some(plaintext) => plaintext,
                    None => continue,
                }
            } else {
                read
            };
            // An attribute's name is written out as it is (XML has no escape for names), so a
            // file without it cannot set it: at 100,000 phones this skips parsing 786 MB.
            let name = parameter.as_bytes();
            if !name.is_empty() && !bytes.windows(name.len()).any(|w| w == name) {
                continue;
            }
            let text = XmlText::new(&path, &bytes)?;
            let mut found = None;
            text.for_each_element(|element| {
                for attribute in element.attributes {
                    if attribute.name == parameter {
                        found = Some(AppliedSetting {
                            file: relative.to_owned(),
                            position: text.position(attribute.offset),
                            value: text.value(attribute)?.into_owned(),
                        });
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}
