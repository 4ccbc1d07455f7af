//! The files of the published tree: masters and shared files in plaintext without secrets,
//! per-phone files under the key their phone is served, and what they decrypt to.

use std::path::Path;

use polyseal_crypto::{Header, Mac};
use polyseal_provision::{Exposure, FindingKind};

use super::describe::{bad_header, describe_key_desc, key_change_finding, without_path};
use super::file_read::{FileHead, FileRead, is_config, read_file};
use super::report::{Code, Finding};
use super::{Audit, Sealer};
use crate::Error;

impl<'a> Audit<'a> {
    /// Every check of one file of the tree.
    pub(super) fn check_tree_file(&self, relative: &Path) -> Result<Vec<Finding>, Error> {
        match self.tree.exposure(relative, true) {
            Exposure::Master => self.check_master_file(relative),
            Exposure::KeyFile => self.check_key_file(relative),
            Exposure::PerPhoneEncrypted => self.check_per_phone_file(relative),
            _ => self.check_shared_file(relative),
        }
    }

    pub(super) fn check_master_file(&self, relative: &Path) -> Result<Vec<Finding>, Error> {
        let path = self.tree.path_of(relative);
        // A phone's own master (`<mac>.cfg`) is that phone's; 000000000000.cfg is everyone's.
        let mac = self.owners.get(relative.as_os_str()).copied();
        let file = read_file(&path, FileHead::is_plaintext)?;
        // An encrypted master is reported by the masters check.
        Ok(match file.content {
            FileHead::Plaintext => self.scan(&path, &file.bytes, Exposure::Master, mac),
            _ => Vec::new(),
        })
    }

    pub(super) fn check_shared_file(&self, relative: &Path) -> Result<Vec<Finding>, Error> {
        // Firmware, images and the like are not configuration: phones never decrypt them.
        if !is_config(relative) {
            return Ok(Vec::new());
        }
        let path = self.tree.path_of(relative);
        let file = read_file(&path, FileHead::is_plaintext)?;
        Ok(match file.content {
            FileHead::Plaintext => self.scan(&path, &file.bytes, Exposure::Shared, None),
            FileHead::Encrypted(header) => vec![
                Finding::new(
                    Code::SharedFileEncrypted,
                    format!(
                        "encrypted ({}), but it names no phone, so every phone fetches it: \
                         phones without that key cannot read it and reboot",
                        describe_key_desc(header.key_desc())
                    ),
                    "serve it in plaintext and move any secret in it to per-phone files",
                )
                .file(path),
            ],
            FileHead::BadHeader(error) => vec![bad_header(&path, None, &error)],
        })
    }

    pub(super) fn check_per_phone_file(&self, relative: &Path) -> Result<Vec<Finding>, Error> {
        let path = self.tree.path_of(relative);
        let mac = self.owners.get(relative.as_os_str()).copied();
        let config = is_config(relative);
        // Without the vault's keys an encrypted file's header is all there is to check.
        let file = read_file(&path, |c| {
            config && (c.is_plaintext() || self.keys.is_some())
        })?;
        let mut findings = Vec::new();
        let key_change = mac.map(|m| self.step(&m)).filter(|step| {
            step.serves_plaintext(self.vault.key_timing()) && file.loose_mode().is_none()
        });
        let before_wave = mac.is_some_and(|m| !self.vault.encrypts_files_of(&m));
        let in_rollout = before_wave && file.loose_mode().is_none();
        let FileRead { bytes, content, .. } = file;
        match content {
            FileHead::Plaintext if in_rollout => {
                findings.push(
                    Finding::new(
                        Code::PlaintextDuringRollout,
                        "in plaintext (owner-only) until a wave of the rollout takes the phone",
                        "advance the rollout when its last wave is ok (polyseal rollout status, \
                         docs/ROLLOUT.md)",
                    )
                    .mac(mac)
                    .file(&path),
                );
                if config {
                    findings.extend(self.scan(&path, &bytes, Exposure::PerPhoneEncrypted, mac));
                }
            }
            FileHead::Plaintext if key_change.is_some() => {
                findings.extend(key_change.map(|step| key_change_finding(step, mac, &path)));
                if config {
                    findings.extend(self.scan(&path, &bytes, Exposure::PerPhoneEncrypted, mac));
                }
            }
            FileHead::Plaintext => {
                findings.push(
                    Finding::new(
                        Code::PerPhoneFilePlaintext,
                        "a per-phone file served in plaintext: anyone who asks for it reads it",
                        self.republish(),
                    )
                    .mac(mac)
                    .file(&path),
                );
                if config {
                    findings.extend(self.scan(&path, &bytes, Exposure::PerPhonePlaintext, mac));
                }
            }
            FileHead::BadHeader(error) => findings.push(bad_header(&path, mac, &error)),
            FileHead::Encrypted(header) => {
                if before_wave {
                    findings.push(
                        Finding::new(
                            Code::EncryptedBeforeWave,
                            "encrypted, but no wave of the rollout has taken the phone: the \
                             layout is not proven on it, and a phone that cannot read the file \
                             reboots",
                            "publish again (`polyseal publish --src SRC --out OUT`): it serves \
                             the file in plaintext until the phone's wave",
                        )
                        .mac(mac)
                        .file(&path),
                    );
                }
                findings.extend(self.check_file_key(mac, &header, &path));
                if config {
                    findings.extend(self.check_decrypted(mac, &header, &path, &bytes));
                }
            }
        }
        Ok(findings)
    }

    /// Whether a per-phone file of `mac` is sealed under the generation its phone is served.
    pub(super) fn check_file_key(
        &self,
        mac: Option<Mac>,
        header: &Header,
        path: &Path,
    ) -> Option<Finding> {
        let (code, message) = match self.sealer(header.key_desc()) {
            Sealer::Unnamed => (
                Code::FileUnknownKey,
                "the header names no KeyDesc, so nothing tells which key sealed it".to_owned(),
            ),
            Sealer::Unknown(desc) => (
                Code::FileUnknownKey,
                format!("encrypted under KeyDesc {desc}, which is not in the vault"),
            ),
            Sealer::Known {
                mac: sealer,
                generation,
            } => {
                let mac = mac?;
                let desc = generation.key_desc();
                if sealer != mac {
                    (
                        Code::FileOtherPhonesKey,
                        format!(
                            "encrypted under {desc}, a key of phone {sealer}: {mac} cannot read it \
                             and reboots"
                        ),
                    )
                } else {
                    let step = self.step(&mac);
                    let expected = step.files_generation()?;
                    if generation.number() == expected {
                        return None;
                    }
                    (
                        Code::FileWrongGeneration,
                        format!(
                            "encrypted under {desc} (generation {}, {}), but the phone's files \
                             belong under generation {expected} ({step})",
                            generation.number(),
                            generation.state()
                        ),
                    )
                }
            }
        };
        Some(
            Finding::new(code, message, self.republish())
                .mac(mac)
                .file(path),
        )
    }

    /// With the vault's keys: decrypts an encrypted configuration file as its phone would and
    /// scans what it says.
    pub(super) fn check_decrypted(
        &self,
        mac: Option<Mac>,
        header: &Header,
        path: &Path,
        bytes: &[u8],
    ) -> Vec<Finding> {
        // An unknown KeyDesc, or a destroyed key, is reported by the header check.
        let Some((desc, key)) = header
            .key_desc()
            .and_then(|desc| Some((desc, self.keys?.get(desc)?)))
        else {
            return Vec::new();
        };
        let layout = self.vault.layout();
        match polyseal_crypto::decrypt_with(bytes, key, &layout) {
            Ok(plaintext) => self.scan(path, &plaintext, Exposure::PerPhoneEncrypted, mac),
            // Made in another layout (before `format set`): the key opens it, the fleet's
            // firmware does not.
            Err(_) if let Some(other) = other_layout(bytes, key) => vec![
                Finding::new(
                    Code::FileOtherLayout,
                    format!(
                        "is in the layout {other}, not the vault's ({}); a phone whose firmware \
                         reads the vault's layout reboots on it",
                        other.differences(&layout).join(" ")
                    ),
                    self.republish(),
                )
                .mac(mac)
                .file(path),
            ],
            Err(error) => vec![
                Finding::new(
                    Code::FileDoesNotDecrypt,
                    format!(
                        "does not decrypt with {desc}, the key its header names: {error}; a phone \
                         holding that key reboots on it"
                    ),
                    self.republish(),
                )
                .mac(mac)
                .file(path),
            ],
        }
    }

    /// Scans a plaintext configuration file for secrets, given who can read it.
    pub(super) fn scan(
        &self,
        path: &Path,
        bytes: &[u8],
        exposure: Exposure,
        mac: Option<Mac>,
    ) -> Vec<Finding> {
        match polyseal_provision::scan(path, bytes, exposure) {
            Ok(found) => found
                .iter()
                .map(|finding| {
                    let at = format!(
                        "{} ({}) at {}",
                        finding.parameter, finding.secret, finding.position
                    );
                    let (code, message) = match finding.kind {
                        FindingKind::SecretInMaster => (
                            Code::SecretInMaster,
                            format!(
                                "{at}: a master file is never encrypted and every phone fetches it"
                            ),
                        ),
                        FindingKind::SecretInSharedFile => (
                            Code::SecretInSharedFile,
                            format!("{at}: a shared file is served in plaintext to every phone"),
                        ),
                        FindingKind::WeakSipPassword(weakness) => (
                            Code::WeakSipPassword,
                            format!(
                                "{at}: {weakness}, easy to guess; an encrypted file's unkeyed \
                                 digest lets anyone with the file test guesses offline"
                            ),
                        ),
                        _ => (
                            Code::SecretInPlaintextFile,
                            format!("{at}: served in plaintext"),
                        ),
                    };
                    Finding::new(code, message, finding.hint())
                        .mac(mac)
                        .file(path)
                })
                .collect(),
            Err(error) => vec![
                Finding::new(
                    Code::FileMalformed,
                    without_path(&error.to_string(), path),
                    "fix the file: phones cannot read it",
                )
                .mac(mac)
                .file(path),
            ],
        }
    }
}

/// The one other layout in which `key` opens `file`, if there is exactly one.
fn other_layout(file: &[u8], key: &polyseal_crypto::KeyString) -> Option<polyseal_crypto::Layout> {
    let found = polyseal_crypto::probe(&[file], key, None).ok()?;
    match found.fits.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}
