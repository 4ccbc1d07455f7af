//! `vault.toml`: the vault's identity and policy, and who can open it.

use std::path::Path;

use polyseal_crypto::{KeyDescTemplate, Layout};
use serde::{Deserialize, Serialize};

use crate::data_key::VaultId;
use crate::rollout::{Rollout, RolloutFile};
use crate::{Cryptoperiod, Error, FORMAT_VERSION, KeyTiming, Recipient};

/// The contents of `vault.toml`.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) vault_id: VaultId,
    pub(crate) key_desc_template: KeyDescTemplate,
    pub(crate) cryptoperiod: Option<Cryptoperiod>,
    /// When the fleet's firmware applies a new key.
    pub(crate) key_timing: KeyTiming,
    /// [`DataKey::check`](crate::DataKey::check) of the current data key.
    pub(crate) data_key_check: String,
    pub(crate) recipients: Vec<Recipient>,
    /// How many recipients must take part to open the data key (1: any one).
    pub(crate) threshold: usize,
    /// The byte layout of the fleet's encrypted files (docs/FORMAT.md, "Layouts").
    pub(crate) layout: Layout,
    /// The fleet's move onto encryption, while one is under way or kept (docs/ROLLOUT.md).
    pub(crate) rollout: Option<Rollout>,
}

#[derive(Serialize, Deserialize)]
struct ConfigFile {
    format: i64,
    vault_id: String,
    key_desc_template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cryptoperiod_days: Option<u32>,
    /// Absent means `immediate`, so vaults made before the setting existed read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_timing: Option<String>,
    data_key_check: String,
    /// Absent means 1: any one recipient opens the vault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<usize>,
    /// Absent means the default layout, so vaults made before the setting read as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    #[serde(default)]
    recipient: Vec<RecipientEntry>,
    /// Absent: no rollout, every phone's files encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout: Option<RolloutFile>,
}

#[derive(Serialize, Deserialize)]
struct RecipientEntry {
    label: String,
    public_key: String,
}

impl Config {
    /// Renders `vault.toml`.
    pub(crate) fn render(&self) -> String {
        let file = ConfigFile {
            format: i64::from(FORMAT_VERSION),
            vault_id: self.vault_id.to_string(),
            key_desc_template: self.key_desc_template.as_str().to_owned(),
            cryptoperiod_days: self.cryptoperiod.map(Cryptoperiod::days),
            key_timing: (self.key_timing != KeyTiming::Immediate)
                .then(|| self.key_timing.to_string()),
            data_key_check: self.data_key_check.clone(),
            threshold: (self.threshold > 1).then_some(self.threshold),
            layout: (self.layout != Layout::DEFAULT).then(|| self.layout.to_string()),
            recipient: self
                .recipients
                .iter()
                .map(|r| RecipientEntry {
                    label: r.label().to_owned(),
                    public_key: r.public_key(),
                })
                .collect(),
            rollout: self.rollout.as_ref().map(Rollout::to_file),
        };
        // Strings and integers always serialize; a failure is a bug, and panicking before
        // the journal is written leaves the vault untouched.
        #[allow(clippy::expect_used)]
        toml::to_string(&file).expect("vault.toml serializes")
    }

    /// Parses `vault.toml` read from `path`, of this build's format or of format 1 (read only
    /// to be upgraded; its fields are the same). Returns the format too.
    pub(crate) fn parse(path: &Path, text: &str) -> Result<(Config, u32), Error> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| Error::corrupt(path, e.message()))?;
        let format = match u32::try_from(file.format) {
            Ok(format @ (1 | FORMAT_VERSION)) => format,
            _ => {
                return Err(Error::UnsupportedFormat {
                    path: path.to_path_buf(),
                    found: file.format,
                    supported: FORMAT_VERSION,
                });
            }
        };
        let bad = |reason: String| Error::corrupt(path, reason);
        let vault_id = VaultId::parse(&file.vault_id)
            .ok_or_else(|| bad(format!("vault_id {:?} is not 32 hex digits", file.vault_id)))?;
        let key_desc_template =
            KeyDescTemplate::parse(&file.key_desc_template).map_err(|e| bad(e.to_string()))?;
        let cryptoperiod = file
            .cryptoperiod_days
            .map(|days| {
                Cryptoperiod::from_days(days)
                    .ok_or_else(|| bad("cryptoperiod_days is 0".to_owned()))
            })
            .transpose()?;
        let key_timing = file
            .key_timing
            .as_deref()
            .map(str::parse::<KeyTiming>)
            .transpose()
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or_default();
        let recipients = file
            .recipient
            .iter()
            .map(|r| Recipient::parse(&r.label, &r.public_key).map_err(|e| bad(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        if recipients.is_empty() {
            return Err(bad("lists no recipient".to_owned()));
        }
        let threshold = file.threshold.unwrap_or(1);
        crate::threshold::Threshold::new(threshold, recipients.len())
            .map_err(|e| bad(e.to_string()))?;
        let layout = file
            .layout
            .as_deref()
            .map(str::parse::<Layout>)
            .transpose()
            .map_err(|e| bad(e.to_string()))?
            .unwrap_or_default();
        let rollout = file
            .rollout
            .as_ref()
            .map(Rollout::from_file)
            .transpose()
            .map_err(bad)?;
        let config = Config {
            layout,
            rollout,
            vault_id,
            key_desc_template,
            cryptoperiod,
            key_timing,
            data_key_check: file.data_key_check,
            recipients,
            threshold,
        };
        Ok((config, format))
    }
}
