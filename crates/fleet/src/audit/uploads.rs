//! Files phones uploaded (overrides, directories): under which key, and can they read them back.

use std::path::Path;

use polyseal_crypto::Mac;
use rayon::prelude::*;

use super::describe::{bad_header, key_change_finding};
use super::file_read::{FileHead, read_file};
use super::report::{Code, Finding};
use super::{Audit, Sealer};
use crate::Error;
use crate::uploads::uploads_in;

impl<'a> Audit<'a> {
    /// The uploaded override and directory files under `dir`: how many, and what they show.
    pub(super) fn uploads(&self, dir: &Path) -> Result<(usize, Vec<Finding>), Error> {
        let uploads = uploads_in(dir)?;
        let findings: Vec<Vec<Finding>> = uploads
            .par_iter()
            .map(|(mac, path)| self.check_upload(*mac, path))
            .collect::<Result<_, _>>()?;
        Ok((uploads.len(), findings.into_iter().flatten().collect()))
    }

    /// An uploaded file's header shows the key its phone holds: its active generation, or
    /// during a rotation either that one or the next.
    pub(super) fn check_upload(&self, mac: Mac, path: &Path) -> Result<Vec<Finding>, Error> {
        let header = match read_file(path, |_| false)?.content {
            FileHead::Encrypted(header) => header,
            FileHead::BadHeader(error) => return Ok(vec![bad_header(path, Some(mac), &error)]),
            FileHead::Plaintext if self.step(&mac).serves_plaintext(self.vault.key_timing()) => {
                return Ok(vec![key_change_finding(self.step(&mac), Some(mac), path)]);
            }
            FileHead::Plaintext => {
                return Ok(vec![
                    Finding::new(
                        Code::UploadPlaintext,
                        "uploaded in plaintext: the phone does not encrypt what it uploads, and \
                         overrides and directories may carry passwords",
                        "set sec.encryption.upload.overrides=\"1\" and \
                         sec.encryption.upload.dir=\"1\" in a file every phone fetches",
                    )
                    .mac(mac)
                    .file(path),
                ]);
            }
        };
        let step = self.step(&mac);
        // During a rotation the phone holds the old key until it boots with the new one.
        let expected: Vec<u32> = step
            .active_generation()
            .into_iter()
            .chain(step.next_generation())
            .collect();
        let message = match self.sealer(header.key_desc()) {
            Sealer::Known {
                mac: holder,
                generation,
            } if holder == mac => {
                if expected.contains(&generation.number()) {
                    return Ok(Vec::new());
                }
                format!(
                    "uploaded under {} (generation {}, {}): the phone holds a key it is not \
                     served under ({step})",
                    generation.key_desc(),
                    generation.number(),
                    generation.state()
                )
            }
            Sealer::Known {
                mac: holder,
                generation,
            } => format!(
                "uploaded under {}, a key of phone {holder}: the phone was handed another \
                 phone's key",
                generation.key_desc()
            ),
            Sealer::Unknown(desc) => {
                format!("uploaded under KeyDesc {desc}, which is not in the vault")
            }
            Sealer::Unnamed => "uploaded under a key its header does not name".to_owned(),
        };
        Ok(vec![
            Finding::new(
                Code::UploadWrongKey,
                message,
                format!(
                    "hand the phone its key again: serve its bootstrap file ({}) and reboot it",
                    self.tree.key_file_pattern().file_name(&mac)
                ),
            )
            .mac(mac)
            .file(path),
        ])
    }
}
