//! Upgrading a vault of an older format to this build's, every key kept.

use std::path::Path;
use std::time::Duration;

use crate::event::{EventKind, LogHead, read_head};
use crate::head::LogDigest;
use crate::verify::verify;
use crate::writer::Transaction;
use crate::{Error, FORMAT_VERSION, Identities, Vault, VaultWriter};

/// How many recipients `data-key.age` (its bytes, `armored`) is sealed to: the stanzas of its
/// header but age's grease stanzas (tags ending in `-grease`, which carry nothing). `None`
/// if it is not an age file. Each recipient gets one stanza (age v1; polyseal's plugins).
fn recipient_stanzas(armored: &[u8]) -> Option<usize> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    age::armor::ArmoredReader::new(armored)
        .read_to_end(&mut bytes)
        .ok()?;
    // The header is text up to the line starting with `---`; the payload follows it.
    let end = bytes.windows(4).position(|w| w == b"\n---")?;
    let header = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut lines = header.lines();
    (lines.next()? == "age-encryption.org/v1").then_some(())?;
    Some(
        lines
            .filter_map(|line| line.strip_prefix("-> "))
            .filter(|stanza| {
                stanza
                    .split(' ')
                    .next()
                    .is_some_and(|tag| !tag.ends_with("-grease"))
            })
            .count(),
    )
}

/// What [`VaultWriter::upgrade`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upgraded {
    /// The format the vault had.
    pub from: u32,
    /// The format it has now ([`FORMAT_VERSION`]); equal to `from` when it was current.
    pub to: u32,
    /// How many live keys it holds, each opened and checked against its fingerprint.
    pub live_keys: usize,
    /// The event log's head after the upgrade.
    pub head: LogHead,
    /// The labels of the recipients the (new) data key is sealed to.
    pub recipients: Vec<String>,
}

impl VaultWriter {
    /// Upgrades the vault in `dir` to this build's format, waiting up to `max_wait` for the
    /// lock. Format 1 (before authenticated vault state) becomes format 2: `vault.toml` says
    /// `format = 2` and `head.json` authenticates every file from then on (docs/VAULT.md).
    ///
    /// Nothing is written unless the vault is what its own history says it is: the event log
    /// must verify against every record and `vault.toml` ([`Error::VerifyFailed`] otherwise,
    /// for a format-1 vault was never authenticated, and an upgrade must not bless an edit),
    /// `identities` must open its data key, and every live key must open and match its
    /// fingerprint. Keys are not re-sealed: each stays the bytes it was. A vault already of
    /// this format is left as it is.
    ///
    /// `expect_head`, a head of the log recorded before (docs/VAULT.md, anchoring heads), is
    /// checked first: the log must still hold it ([`Vault::check_anchor`]).
    pub fn upgrade(
        dir: &Path,
        max_wait: Duration,
        identities: &Identities,
        expect_head: Option<&LogHead>,
    ) -> Result<(VaultWriter, Upgraded), Error> {
        let (layout, lock) = VaultWriter::lock(dir, max_wait)?;
        let (head, log_len) = read_head(&layout.events())?;
        let (vault, from) = Vault::load_any_format(layout, Some(lock))?;
        if let Some(anchor) = expect_head {
            vault.check_anchor(anchor)?;
        }
        let recipients = vault.recipient_labels();
        if from == FORMAT_VERSION {
            let data_key = vault.unlock(identities)?;
            let live_keys = vault.open_live_keys(&data_key)?.len();
            let writer = VaultWriter::from_parts(vault, head, log_len);
            let upgraded = Upgraded {
                from,
                to: from,
                live_keys,
                head,
                recipients,
            };
            return Ok((writer, upgraded));
        }
        // A vault that was ever of format 2 has an authenticated head and a data key sealed
        // with the format-2 marker; one edited back to `format = 1` would otherwise have every
        // change made behind the head's back blessed here.
        let edited_back = |what: &str| Error::NotAuthentic {
            dir: vault.layout.root().to_path_buf(),
            findings: vec![format!(
                "vault.toml says format 1, but {what}: this vault was of format 2 and was edited \
                 back, which only someone changing it outside polyseal does; restore it from a \
                 copy you trust"
            )],
        };
        if vault.found.head.is_some() {
            return Err(edited_back(
                "head.json is there, which no format-1 vault has",
            ));
        }
        verify(&vault)?;
        let (data_key, data_key_file) = vault.unwrap_data_key(identities)?;
        // vault.toml of format 1 is not authenticated, but data-key.age's header is (its MAC
        // covers every stanza, and only the data key's holders can make one): a recipient
        // added to vault.toml by hand has no stanza there. Refused before the new data key
        // is sealed to it.
        let stanzas = recipient_stanzas(&data_key_file);
        let listed = vault.config.recipients.len();
        if stanzas != Some(listed) {
            return Err(Error::NotAuthentic {
                dir: vault.layout.root().to_path_buf(),
                findings: vec![format!(
                    "vault.toml lists {listed} recipients, but data-key.age is sealed to {}: \
                     vault.toml was edited (a recipient added or removed by hand); restore it \
                     from a copy you trust",
                    stanzas.map_or("an unreadable number of them".to_owned(), |n| n.to_string())
                )],
            });
        }
        if data_key.sealed_for_format_2() {
            return Err(edited_back(
                "data-key.age was sealed for a format-2 vault (it carries the format-2 line)",
            ));
        }
        let live_keys = vault.open_live_keys(&data_key)?.len();
        // The data key is replaced and every key re-sealed under it (the keys stay the same):
        // a copy of the vault from before the upgrade, sealed under the old data key, then
        // opens nothing in this one.
        let new_key = data_key.successor();
        let mut config = vault.config.clone();
        config.data_key_check = new_key.check();
        let data_key_file = new_key.wrap(&config.recipients, config.threshold)?;
        let mut writer = VaultWriter::from_parts(vault, head, log_len);
        let mut txn = Transaction::new();
        writer.reseal_all(&mut txn, &data_key, &new_key)?;
        txn.events.push(EventKind::FormatUpgraded {
            from,
            to: FORMAT_VERSION,
        });
        txn.events.push(EventKind::DataKeyRotated {
            data_key_check: config.data_key_check.clone(),
        });
        // Every file is written anew, so the first head records each one's digest.
        txn.all_buckets = true;
        txn.config = Some(config);
        txn.data_key_file = Some(data_key_file);
        let log_digest = LogDigest::of_file(&writer.vault().layout.events())?;
        writer.apply(None, log_digest, &new_key, txn)?;
        let upgraded = Upgraded {
            from,
            to: FORMAT_VERSION,
            live_keys,
            head: writer.log_head(),
            recipients,
        };
        Ok((writer, upgraded))
    }
}
