//! Each phone's key file: the plaintext bootstrap of the generation it is served.

use std::path::Path;

use polyseal_crypto::{Header, KeyString, Mac};
use polyseal_provision::{
    Error as ProvisionError, Exposure, read_bootstrap_file, written_bootstrap_key,
};
use polyseal_vault::{Generation, KeyState, RotationStep};

use super::Audit;
use super::describe::{bad_header, describe_key_desc, without_path};
use super::file_read::{FileHead, read_file};
use super::report::{Code, Finding};
use crate::Error;

impl<'a> Audit<'a> {
    pub(super) fn check_key_file(&self, relative: &Path) -> Result<Vec<Finding>, Error> {
        let path = self.tree.path_of(relative);
        let mac = self.owners.get(relative.as_os_str()).copied();
        let file = read_file(&path, |_| true)?;
        let mut findings = Vec::new();
        if let Some(mode) = file.loose_mode() {
            findings.push(
                Finding::new(
                    Code::KeyFileReadable,
                    format!("mode {mode:04o}: readable by group or others, and it carries a key"),
                    format!(
                        "chmod 600 {} (polyseal publish writes key files 0600)",
                        path.display()
                    ),
                )
                .mac(mac)
                .file(&path),
            );
        }
        match &file.content {
            FileHead::Plaintext => match read_key_file(&path, &file.bytes) {
                Ok((key, as_written)) => {
                    findings.extend(mac.and_then(|mac| self.check_delivered_key(mac, &path, &key)));
                    // A key file exactly as polyseal writes it carries the key and nothing
                    // else; any other is scanned for secrets besides the key.
                    if !as_written {
                        findings.extend(self.scan(&path, &file.bytes, Exposure::KeyFile, mac));
                    }
                }
                Err(error) => findings.push(
                    Finding::new(
                        Code::KeyFileInvalid,
                        without_path(&error.to_string(), &path),
                        self.republish(),
                    )
                    .mac(mac)
                    .file(&path),
                ),
            },
            FileHead::BadHeader(error) => findings.push(bad_header(&path, mac, error)),
            FileHead::Encrypted(header) => {
                findings.extend(mac.and_then(|mac| self.encrypted_key_file(mac, &path, header)));
            }
        }
        Ok(findings)
    }

    /// The generation `mac`'s key file should carry: the one it is served (docs/ROTATION.md:
    /// the active one, or during a rotation the next one).
    pub(super) fn served_generation(&self, mac: Mac) -> Option<(RotationStep, &'a Generation)> {
        let step = self.step(&mac);
        let generation = self
            .vault
            .record(&mac)?
            .generation(step.files_generation()?)?;
        Some((step, generation))
    }

    /// A key file must be a plaintext bootstrap file: a phone without the key could not read
    /// an encrypted one.
    pub(super) fn encrypted_key_file(
        &self,
        mac: Mac,
        path: &Path,
        header: &Header,
    ) -> Option<Finding> {
        let (_, expected) = self.served_generation(mac)?;
        Some(
            Finding::new(
                Code::KeyFileWrongKey,
                format!(
                    "encrypted ({}): a phone that does not hold that key (new, factory-reset or \
                     rotating) cannot read it; it should get the plaintext bootstrap file of {}",
                    describe_key_desc(header.key_desc()),
                    expected.key_desc()
                ),
                self.republish(),
            )
            .mac(mac)
            .file(path),
        )
    }

    /// Whether the key a bootstrap file hands `mac` is the generation it is served, by KeyDesc
    /// and fingerprint: no identity needed.
    pub(super) fn check_delivered_key(
        &self,
        mac: Mac,
        path: &Path,
        key: &KeyString,
    ) -> Option<Finding> {
        let fingerprint = key.key().fingerprint();
        let Some((step, expected)) = self.served_generation(mac) else {
            return self.retired_key_still_served(mac, path, key);
        };
        if key.key_desc() == expected.key_desc() && fingerprint == expected.fingerprint() {
            return None;
        }
        Some(
            Finding::new(
                Code::KeyFileWrongKey,
                format!(
                    "hands the phone {} (fingerprint {fingerprint}), but it is served generation \
                     {} ({step}): {} (fingerprint {})",
                    key.key_desc(),
                    expected.number(),
                    expected.key_desc(),
                    expected.fingerprint()
                ),
                self.republish(),
            )
            .mac(mac)
            .file(path),
        )
    }

    /// A bootstrap file of a phone that is served no key any more, still handing it a key
    /// the vault retired as compromised or destroyed: whoever fetches the file gets that key.
    fn retired_key_still_served(&self, mac: Mac, path: &Path, key: &KeyString) -> Option<Finding> {
        let (_, retired) = self.vault.find_key_desc(key.key_desc())?;
        if !matches!(retired.state(), KeyState::Compromised | KeyState::Destroyed) {
            return None;
        }
        Some(
            Finding::new(
                Code::KeyFileWrongKey,
                format!(
                    "still hands the phone {} (fingerprint {}), which the vault marked {}: \
                     whoever fetches this file gets that key",
                    key.key_desc(),
                    key.key().fingerprint(),
                    retired.state()
                ),
                format!(
                    "{} (the phone then gets a new key and bootstrap file), or remove {}",
                    self.republish(),
                    path.display()
                ),
            )
            .mac(mac)
            .file(path),
        )
    }
}

/// The key a plaintext key file carries, and whether the file is exactly as polyseal writes
/// it (recognised without the XML parser).
pub(super) fn read_key_file(
    path: &Path,
    bytes: &[u8],
) -> Result<(KeyString, bool), ProvisionError> {
    match written_bootstrap_key(bytes) {
        Some(key) => Ok((key, true)),
        None => read_bootstrap_file(path, bytes).map(|key| (key, false)),
    }
}
