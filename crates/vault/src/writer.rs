//! Changing a vault: one writer at a time, every change one durable, all-or-nothing
//! transaction recorded in the event log.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use polyseal_crypto::{ConfigKey, KeyDescTemplate, KeyString, Mac};
use rayon::prelude::*;

use crate::config::Config;
use crate::data_key::{DataKey, VaultId};
use crate::event::{EventKind, KeyRef, LogHead, read_head};
use crate::head::{Head, LogDigest, LogEnd, digest};
use crate::journal::{self, JournalWriter};
use crate::layout::{
    CONFIG_FILE, DATA_KEY_FILE, HEAD_FILE, Layout, bucket_of, bucket_relative_path,
};
use crate::lock::{DEFAULT_LOCK_WAIT, VaultLock};
use crate::record::{Confirmed, Generation, Record};
use crate::threshold::Threshold;
use crate::transit::{TransitClient, TransitToken};
use crate::vault::Found;
use crate::{
    Cryptoperiod, Error, InitialState, KeyState, KeyTiming, OpenedKey, Recipient, Timestamp, Vault,
    bucket, durable,
};

/// How many bucket files a transaction renders at once, in parallel.
const RENDER_BATCH: usize = 32;

/// Longest confirmation evidence accepted, in characters.
const MAX_EVIDENCE_CHARS: usize = 256;

/// What a new vault is made with.
#[derive(Clone, Debug)]
pub struct VaultSettings {
    /// Who can open it; at least one.
    pub recipients: Vec<Recipient>,
    /// How generations are named; the default is `{mac}-g{generation}`.
    pub key_desc_template: KeyDescTemplate,
    /// The cryptoperiod policy, if any.
    pub cryptoperiod: Option<Cryptoperiod>,
    /// When the fleet's firmware applies a new key.
    pub key_timing: KeyTiming,
    /// How many recipients must take part to open the data key: 1 (any one, the default) up
    /// to the number of recipients (docs/VAULT.md, "Threshold").
    pub threshold: usize,
    /// The token that seals the new data key to transit recipients, if any.
    pub transit_token: Option<TransitToken>,
}

impl VaultSettings {
    /// Settings with these recipients, the default KeyDesc template and no cryptoperiod.
    pub fn new(recipients: Vec<Recipient>) -> VaultSettings {
        VaultSettings {
            recipients,
            key_desc_template: KeyDescTemplate::default(),
            cryptoperiod: None,
            key_timing: KeyTiming::Immediate,
            threshold: 1,
            transit_token: None,
        }
    }
}

/// One state change in a batch for [`VaultWriter::set_states`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// The phone.
    pub mac: Mac,
    /// The generation.
    pub generation: u32,
    /// The state to enter.
    pub to: KeyState,
}

/// One confirmation in a batch for [`VaultWriter::confirm`]: the phone `mac` holds pre-active
/// generation `generation`, as `evidence` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// The phone.
    pub mac: Mac,
    /// The pre-active generation it holds.
    pub generation: u32,
    /// What shows it, such as `upload 0004f2abcdef-phone.cfg` or `operator`: 1–256
    /// characters, no control characters.
    pub evidence: String,
}

/// The vault opened for writing: holds the writer's lock until dropped.
///
/// Every method that changes the vault is one transaction: it is all applied or not at all,
/// it is durable when the method returns, and each change is an event in `events.log`. Read
/// the vault's state through [`VaultWriter::vault`].
///
/// ```
/// use std::sync::Arc;
/// use polyseal_crypto::Mac;
/// use polyseal_vault::{
///     Identities, InitialState, KeyState, NoPrompt, Recipient, StateChange, VaultSettings,
///     VaultWriter,
/// };
///
/// # let tmp = tempfile::tempdir()?;
/// # let dir = tmp.path().join("vault");
/// // An age identity, as `age-keygen` writes it. Example only: never use a published key.
/// let identity = "AGE-SECRET-KEY-1K5GLS3ZY7H4C09CZZUTUM4S5QS8DPM3KJU3DPGGWX9RJ8085M56SF6V0E2";
/// let ops = Recipient::parse("ops", "age1y605jvun0aa3svvyf60lxdteud9wumq5rv2dv59v0e63wc0rv38qs3mm26")?;
///
/// let mut writer = VaultWriter::create(&dir, VaultSettings::new(vec![ops]))?;
/// let identities = Identities::from_text(identity, "example", Arc::new(NoPrompt))?;
/// let data_key = writer.vault().unlock(&identities)?;
///
/// // A phone without a key gets an active one at once (it goes into its bootstrap file).
/// let mac: Mac = "0004f2abcdef".parse()?;
/// let added = writer.add_keys(&data_key, &[mac], InitialState::Active)?;
/// assert_eq!(added[0].key.key_desc().as_str(), "0004f2abcdef-g1");
///
/// // Rotation: generation 2 starts pre-active, is confirmed, then replaces generation 1.
/// writer.add_keys(&data_key, &[mac], InitialState::PreActive)?;
/// writer.confirm(&data_key, &[polyseal_vault::Confirmation {
///     mac,
///     generation: 2,
///     evidence: "upload 0004f2abcdef-phone.cfg".into(),
/// }])?;
/// writer.set_states(&data_key, &[
///     StateChange { mac, generation: 1, to: KeyState::Deactivated },
///     StateChange { mac, generation: 2, to: KeyState::Active },
/// ])?;
/// let active = writer.vault().open_key(&data_key, &mac, None)?;
/// assert_eq!(active.generation, 2);
/// let report = writer.vault().verify()?;
/// // create, recipient-add, add, add, confirm, state, state
/// assert_eq!(report.head.seq, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct VaultWriter {
    vault: Vault,
    head: LogHead,
    log_len: u64,
    poisoned: bool,
}

/// The changes of one transaction, staged in memory until they are committed.
/// Keys made and sealed by [`VaultWriter::prepare_keys`], not yet in the vault. Dropping it
/// discards them (their bytes are zeroized with their [`OpenedKey`]s).
pub struct PreparedKeys {
    txn: Transaction,
    keys: Vec<OpenedKey>,
    /// The event log's length when they were made: the vault they fit.
    log_len: u64,
}

impl PreparedKeys {
    /// The keys, in the order of the MACs given.
    pub fn keys(&self) -> &[OpenedKey] {
        &self.keys
    }
}

impl std::fmt::Debug for PreparedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys: only how many.
        write!(f, "PreparedKeys({} keys)", self.keys.len())
    }
}

pub(crate) struct Transaction {
    time: Timestamp,
    pub(crate) events: Vec<EventKind>,
    /// Records as they will be after the transaction (only those it changes).
    staged: BTreeMap<Mac, Record>,
    /// Rewrite every bucket (the data key changed, so every sealed key did).
    pub(crate) all_buckets: bool,
    pub(crate) config: Option<Config>,
    pub(crate) data_key_file: Option<String>,
}

impl Transaction {
    pub(crate) fn new() -> Transaction {
        Transaction {
            time: Timestamp::now(),
            events: Vec::new(),
            staged: BTreeMap::new(),
            all_buckets: false,
            config: None,
            data_key_file: None,
        }
    }
}

impl VaultWriter {
    /// Creates a vault in `dir` (which must not exist, or be empty) and returns it open for
    /// writing. The vault has a new random id and data key sealed to `settings.recipients`.
    pub fn create(dir: &Path, settings: VaultSettings) -> Result<VaultWriter, Error> {
        if settings.recipients.is_empty() {
            return Err(Error::NoRecipients);
        }
        for (i, recipient) in settings.recipients.iter().enumerate() {
            if settings.recipients[..i]
                .iter()
                .any(|r| r.label() == recipient.label() || r.public_key() == recipient.public_key())
            {
                return Err(Error::DuplicateRecipient {
                    label: recipient.label().to_owned(),
                });
            }
        }
        Threshold::new(settings.threshold, settings.recipients.len())?;
        check_custody(&settings.recipients, settings.threshold)?;
        ensure_empty_dir(dir)?;
        // Everything that can fail for a reason other than the disk (a plugin recipient
        // whose plugin is missing) happens before anything is written, so a refused create
        // leaves no directory behind to refuse the next attempt.
        let vault_id = VaultId::generate();
        let mut data_key = DataKey::generate(vault_id);
        if let Some(token) = &settings.transit_token {
            data_key.set_transit(Some(TransitClient::new(token)));
        }
        let data_key_file = data_key.wrap(&settings.recipients, settings.threshold)?;
        let config = Config {
            vault_id,
            key_desc_template: settings.key_desc_template,
            cryptoperiod: settings.cryptoperiod,
            key_timing: settings.key_timing,
            data_key_check: data_key.check(),
            recipients: settings.recipients,
            threshold: settings.threshold,
            layout: polyseal_crypto::Layout::DEFAULT,
            rollout: None,
        };
        let mut events = vec![EventKind::Created {
            vault_id,
            key_desc_template: config.key_desc_template.as_str().to_owned(),
            cryptoperiod_days: config.cryptoperiod.map(Cryptoperiod::days),
            data_key_check: config.data_key_check.clone(),
        }];
        events.extend(config.recipients.iter().map(|r| EventKind::RecipientAdded {
            label: r.label().to_owned(),
            public_key: r.public_key(),
        }));
        if config.key_timing != KeyTiming::default() {
            events.push(EventKind::KeyTimingSet {
                timing: config.key_timing,
            });
        }
        if config.threshold > 1 {
            events.push(EventKind::ThresholdSet {
                threshold: u32::try_from(config.threshold).unwrap_or(u32::MAX),
            });
        }
        let files = [
            (DATA_KEY_FILE.to_owned(), data_key_file),
            (CONFIG_FILE.to_owned(), config.render()),
        ];

        let layout = Layout::new(dir);
        durable::create_private_dir(dir)?;
        durable::restrict_dir(dir)?;
        durable::create_private_dir(&layout.keys_dir())?;
        let lock = VaultLock::exclusive(layout.root(), &layout.lock(), Duration::ZERO)?;
        let empty = LogStart {
            head: LogHead::EMPTY,
            len: 0,
            digest: LogDigest::empty(),
        };
        let time = Timestamp::now();
        write_journal(&layout, empty, time, &events, files, None, &data_key)?;
        journal::recover(&layout)?;
        VaultWriter::from_locked(layout, lock)
    }

    /// Opens the vault in `dir` for writing, waiting up to [`DEFAULT_LOCK_WAIT`] for another
    /// writer or readers holding the lock; then the error names the writer's pid. A
    /// transaction a crashed writer left is completed first.
    pub fn open(dir: &Path) -> Result<VaultWriter, Error> {
        VaultWriter::open_with_wait(dir, DEFAULT_LOCK_WAIT)
    }

    /// [`VaultWriter::open`], waiting up to `max_wait` for the lock.
    pub fn open_with_wait(dir: &Path, max_wait: Duration) -> Result<VaultWriter, Error> {
        let (layout, lock) = VaultWriter::lock(dir, max_wait)?;
        VaultWriter::from_locked(layout, lock)
    }

    /// Takes the writer's lock on the vault in `dir`, then completes a transaction a crashed
    /// writer left and removes its temporary files.
    pub(crate) fn lock(dir: &Path, max_wait: Duration) -> Result<(Layout, VaultLock), Error> {
        let layout = Layout::new(dir);
        // Never create a lock file in a directory that is not a vault.
        if !layout.config().exists() && !layout.journal().exists() {
            return Err(Error::NotAVault {
                dir: dir.to_path_buf(),
            });
        }
        let lock = VaultLock::exclusive(layout.root(), &layout.lock(), max_wait)?;
        // Before anything is written or removed under keys/: never through a link.
        durable::ensure_real_dir(&layout.keys_dir())?;
        journal::recover(&layout)?;
        durable::remove_stale_temp_files(layout.root())?;
        durable::remove_stale_temp_files(&layout.keys_dir())?;
        Ok((layout, lock))
    }

    fn from_locked(layout: Layout, lock: VaultLock) -> Result<VaultWriter, Error> {
        debug_assert!(lock.is_exclusive());
        let (head, log_len) = read_head(&layout.events())?;
        let vault = Vault::load(layout, Some(lock))?;
        Ok(VaultWriter::from_parts(vault, head, log_len))
    }

    /// A writer of `vault`, loaded under the writer's lock, whose log ends at `head`, `log_len`
    /// bytes long.
    pub(crate) fn from_parts(vault: Vault, head: LogHead, log_len: u64) -> VaultWriter {
        VaultWriter {
            vault,
            head,
            log_len,
            poisoned: false,
        }
    }

    /// Where the event log ends now.
    pub(crate) fn log_head(&self) -> LogHead {
        self.head
    }

    /// The vault as it is now, for reading and unlocking.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Adds a new generation with a new random key for each MAC in `macs`, in one
    /// transaction. A MAC without a record gets generation 1. Returns the new keys, in the
    /// order of `macs`.
    ///
    /// `InitialState::Active` is for phones that have no active key: one that has is an
    /// [`Error::AlreadyActive`], and nothing is added.
    pub fn add_keys(
        &mut self,
        data_key: &DataKey,
        macs: &[Mac],
        state: InitialState,
    ) -> Result<Vec<OpenedKey>, Error> {
        let prepared = self.prepare_keys(data_key, macs, state)?;
        self.commit_keys(data_key, prepared)
    }

    /// [`VaultWriter::add_keys`] in two steps: the keys are made and sealed here, in memory,
    /// and written only by [`VaultWriter::commit_keys`]. A command can use them first (publish
    /// encrypts and stages with them) and drop them if that fails: the vault then never held
    /// them. Nothing may change the vault in between: `commit_keys` refuses then.
    pub fn prepare_keys(
        &self,
        data_key: &DataKey,
        macs: &[Mac],
        state: InitialState,
    ) -> Result<PreparedKeys, Error> {
        self.vault.ensure_current(data_key)?;
        let mut txn = Transaction::new();
        // Checked one by one, in order, so the first problem is the one reported.
        let mut planned = Vec::with_capacity(macs.len());
        let mut seen = BTreeSet::new();
        for mac in macs {
            if !seen.insert(*mac) {
                return Err(Error::DuplicateMac { mac: *mac });
            }
            let record = self
                .vault
                .record(mac)
                .cloned()
                .unwrap_or_else(|| Record::new(*mac, Vec::new()));
            let number = record
                .next_number()
                .ok_or(Error::GenerationsExhausted { mac: *mac })?;
            if let (InitialState::Active, Some(active)) = (state, record.active()) {
                return Err(Error::AlreadyActive {
                    mac: *mac,
                    active: active.number(),
                });
            }
            planned.push((record, number));
        }
        // Making and sealing the keys is the per-phone work (two reads of the OS's random
        // source and an AES-GCM seal each): on every core. The order of `macs` is kept.
        let template = &self.vault.config.key_desc_template;
        let made: Vec<(Generation, OpenedKey)> = planned
            .par_iter()
            .map(|(record, number)| {
                let (mac, number) = (record.mac(), *number);
                let key_desc = template.render(&mac, number);
                let key = ConfigKey::generate();
                let sealed = data_key.seal(&mac, number, &key_desc, &key);
                let generation = Generation::new(
                    number,
                    key_desc.clone(),
                    key.fingerprint(),
                    state.into(),
                    txn.time,
                    Some(sealed),
                );
                let opened = OpenedKey {
                    mac,
                    generation: number,
                    state: state.into(),
                    key: KeyString::new(key_desc, key),
                };
                (generation, opened)
            })
            .collect();
        let mut added = Vec::with_capacity(made.len());
        for ((mut record, _), (generation, opened)) in planned.into_iter().zip(made) {
            txn.events.push(EventKind::KeyAdded {
                key: key_ref(opened.mac, &generation),
                state: state.into(),
            });
            record.push(generation);
            txn.staged.insert(opened.mac, record);
            added.push(opened);
        }
        Ok(PreparedKeys {
            txn,
            keys: added,
            log_len: self.log_len,
        })
    }

    /// Writes keys made by [`VaultWriter::prepare_keys`] in one transaction and returns them.
    pub fn commit_keys(
        &mut self,
        data_key: &DataKey,
        prepared: PreparedKeys,
    ) -> Result<Vec<OpenedKey>, Error> {
        if prepared.log_len != self.log_len {
            return Err(Error::ChangedSincePrepared {
                dir: self.vault.dir().to_path_buf(),
            });
        }
        self.commit(data_key, prepared.txn)?;
        Ok(prepared.keys)
    }

    /// Applies state changes in order, in one transaction. Every change must be allowed by
    /// [`KeyState::can_become`] and leave at most one active generation per MAC, so a
    /// rotation's finish deactivates the old generation before activating the new one.
    /// Destroying erases the sealed key and keeps the metadata.
    ///
    /// A change that destroys or compromises a key also replaces the data key, in the same
    /// transaction, and re-seals every key left under the new one, so a copy of a record saved
    /// before (a backup of a bucket file, a destroyed key's bytes) no longer opens through this
    /// vault (crypto-shredding, docs/VAULT.md). Returns the new data key then (`data_key` is
    /// refused from then on), `None` when no change destroyed or compromised a key.
    pub fn set_states(
        &mut self,
        data_key: &DataKey,
        changes: &[StateChange],
    ) -> Result<Option<DataKey>, Error> {
        self.vault.ensure_current(data_key)?;
        let mut txn = Transaction::new();
        self.stage_states(&mut txn, changes)?;
        if !changes.iter().any(|c| c.to.shreds()) {
            self.commit(data_key, txn)?;
            return Ok(None);
        }
        let mut config = self.vault.config.clone();
        let new_key = data_key.successor();
        self.reseal_all(&mut txn, data_key, &new_key)?;
        config.data_key_check = new_key.check();
        // Logged first, then the changes that caused it: one transaction either way.
        txn.events.insert(
            0,
            EventKind::DataKeyRotated {
                data_key_check: config.data_key_check.clone(),
            },
        );
        txn.data_key_file = Some(new_key.wrap(&config.recipients, config.threshold)?);
        txn.config = Some(config);
        self.commit_under(data_key, &new_key, txn)?;
        Ok(Some(new_key))
    }

    /// Stages every record re-sealed under `new_key`: each generation that has its bytes, in
    /// the vault and in `txn` (a key `txn` destroys has none left), opened with `data_key`.
    pub(crate) fn reseal_all(
        &self,
        txn: &mut Transaction,
        data_key: &DataKey,
        new_key: &DataKey,
    ) -> Result<(), Error> {
        for record in self.vault.records() {
            let mut resealed = txn
                .staged
                .get(&record.mac())
                .cloned()
                .unwrap_or_else(|| record.clone());
            for generation in record.generations() {
                let keeps_bytes = resealed
                    .generation(generation.number())
                    .is_some_and(|g| g.state().is_live());
                if !generation.state().is_live() || !keeps_bytes {
                    continue;
                }
                let opened = self.vault.open_generation(data_key, record, generation)?;
                let sealed = new_key.seal(
                    &opened.mac,
                    opened.generation,
                    opened.key.key_desc(),
                    opened.key.key(),
                );
                if let Some(g) = resealed.generation_mut(generation.number()) {
                    g.set_sealed(sealed);
                }
            }
            txn.staged.insert(record.mac(), resealed);
        }
        txn.all_buckets = true;
        Ok(())
    }

    /// Stages `changes` in `txn`, each checked against the key's state.
    fn stage_states(&self, txn: &mut Transaction, changes: &[StateChange]) -> Result<(), Error> {
        for change in changes {
            let record = self.staged_record(&mut txn.staged, &change.mac)?;
            let other_active = record
                .active()
                .map(Generation::number)
                .filter(|&n| n != change.generation);
            let generation =
                record
                    .generation_mut(change.generation)
                    .ok_or(Error::UnknownGeneration {
                        mac: change.mac,
                        generation: change.generation,
                    })?;
            let from = generation.state();
            if !from.can_become(change.to) {
                return Err(Error::IllegalTransition {
                    mac: change.mac,
                    generation: change.generation,
                    from,
                    to: change.to,
                });
            }
            if let (KeyState::Active, Some(active)) = (change.to, other_active) {
                return Err(Error::AlreadyActive {
                    mac: change.mac,
                    active,
                });
            }
            generation.enter(change.to, txn.time);
            let key = key_ref(change.mac, generation);
            txn.events.push(EventKind::StateChanged {
                key,
                from,
                to: change.to,
            });
        }
        Ok(())
    }

    /// Records, in one transaction, that phones hold their pre-active generations
    /// (docs/ROTATION.md: the evidence that lets a rotation finish).
    pub fn confirm(
        &mut self,
        data_key: &DataKey,
        confirmations: &[Confirmation],
    ) -> Result<(), Error> {
        let mut txn = Transaction::new();
        for confirmation in confirmations {
            validate_evidence(&confirmation.evidence)?;
            let (mac, number) = (confirmation.mac, confirmation.generation);
            let record = self.staged_record(&mut txn.staged, &mac)?;
            let generation = record
                .generation_mut(number)
                .ok_or(Error::UnknownGeneration {
                    mac,
                    generation: number,
                })?;
            if generation.state() != KeyState::PreActive {
                return Err(Error::NotPreActive {
                    mac,
                    generation: number,
                    state: generation.state(),
                });
            }
            if let Some(earlier) = generation.confirmed() {
                return Err(Error::AlreadyConfirmed {
                    mac,
                    generation: number,
                    at: earlier.at,
                });
            }
            generation.set_confirmed(Confirmed {
                at: txn.time,
                evidence: confirmation.evidence.clone(),
            });
            txn.events.push(EventKind::Confirmed {
                key: key_ref(mac, generation),
                evidence: confirmation.evidence.clone(),
            });
        }
        self.commit(data_key, txn)
    }

    /// Sets when the fleet's firmware applies a new key (a no-op if it already is `timing`).
    /// It decides how `rotate start` serves phones from then on; phones already rotating
    /// keep what they were served until the next publish.
    pub fn set_key_timing(&mut self, data_key: &DataKey, timing: KeyTiming) -> Result<(), Error> {
        if self.vault.config.key_timing == timing {
            return Ok(());
        }
        self.change_config(data_key, EventKind::KeyTimingSet { timing }, |config| {
            config.key_timing = timing;
        })
    }

    /// Sets the byte layout of the fleet's encrypted files (a no-op if it already is
    /// `layout`). Files published before are re-encrypted in it by the next `publish`.
    pub fn set_layout(
        &mut self,
        data_key: &DataKey,
        layout: polyseal_crypto::Layout,
    ) -> Result<(), Error> {
        // During a rollout, the layout set is the one its waves are encrypted in: shown by
        // the canaries (`rollout learn`) or vouched for (`format set`), docs/ROLLOUT.md.
        let rollout = self
            .vault
            .config
            .rollout
            .clone()
            .filter(|r| !r.is_complete() && r.layout() != Some(layout))
            .map(|r| r.with_layout(layout));
        if self.vault.config.layout == layout && rollout.is_none() {
            return Ok(());
        }
        let mut config = self.vault.config.clone();
        let mut txn = Transaction::new();
        // Every encrypted file changes with the layout: what phones read before proves
        // nothing of the new one until the tree is published in it.
        let rollout = rollout.map(|r| {
            if config.layout == layout {
                r
            } else {
                r.unpublished()
            }
        });
        if config.layout != layout {
            txn.events.push(EventKind::LayoutSet { layout });
            config.layout = layout;
        }
        if let Some(rollout) = rollout {
            txn.events.push(EventKind::RolloutChanged {
                change: format!("layout {layout} confirmed"),
                digest: Some(rollout.digest()),
            });
            config.rollout = Some(rollout);
        }
        txn.config = Some(config);
        self.commit(data_key, txn)
    }

    /// Stores `rollout` (`None`: forgets it, every phone's files encrypted), with an event
    /// saying what `change` did ("started with 2 canaries"); a rollout equal to the stored
    /// one changes nothing.
    pub fn set_rollout(
        &mut self,
        data_key: &DataKey,
        rollout: Option<crate::Rollout>,
        change: &str,
    ) -> Result<(), Error> {
        if self.vault.config.rollout == rollout {
            return Ok(());
        }
        let event = EventKind::RolloutChanged {
            change: change.to_owned(),
            digest: rollout.as_ref().map(crate::Rollout::digest),
        };
        self.change_config(data_key, event, |config| config.rollout = rollout)
    }

    /// Commits `vault.toml` changed by `change`, with `event`.
    fn change_config(
        &mut self,
        data_key: &DataKey,
        event: EventKind,
        change: impl FnOnce(&mut Config),
    ) -> Result<(), Error> {
        let mut config = self.vault.config.clone();
        change(&mut config);
        let mut txn = Transaction::new();
        txn.events.push(event);
        txn.config = Some(config);
        self.commit(data_key, txn)
    }

    /// Checks that `recipient` could be added (its label and key are new, and a threshold
    /// would still count custodians apart), before anything is unlocked.
    pub fn check_new_recipient(&self, recipient: &Recipient) -> Result<(), Error> {
        let config = &self.vault.config;
        if config
            .recipients
            .iter()
            .any(|r| r.label() == recipient.label() || r.public_key() == recipient.public_key())
        {
            return Err(Error::DuplicateRecipient {
                label: recipient.label().to_owned(),
            });
        }
        let mut recipients = config.recipients.clone();
        recipients.push(recipient.clone());
        check_custody(&recipients, config.threshold)
    }

    /// Adds a recipient: re-seals the (unchanged) data key to every recipient, or splits it
    /// anew with a share for the new one. Nobody loses the power to open the vault, so the
    /// data key stays.
    pub fn add_recipient(&mut self, data_key: &DataKey, recipient: Recipient) -> Result<(), Error> {
        self.vault.ensure_current(data_key)?;
        self.check_new_recipient(&recipient)?;
        let mut config = self.vault.config.clone();
        let mut txn = Transaction::new();
        txn.events.push(EventKind::RecipientAdded {
            label: recipient.label().to_owned(),
            public_key: recipient.public_key(),
        });
        config.recipients.push(recipient);
        txn.data_key_file = Some(data_key.wrap(&config.recipients, config.threshold)?);
        txn.config = Some(config);
        self.commit(data_key, txn)
    }

    /// Checks that the recipient labelled `label` could be removed (it exists, is not the
    /// last, and the others still reach the threshold), before anything is unlocked.
    pub fn check_removal(&self, label: &str) -> Result<(), Error> {
        let config = &self.vault.config;
        if !config.recipients.iter().any(|r| r.label() == label) {
            return Err(Error::UnknownRecipient {
                label: label.to_owned(),
                known: self.vault.recipient_labels(),
            });
        }
        if config.recipients.len() == 1 {
            return Err(Error::LastRecipient {
                label: label.to_owned(),
            });
        }
        let left = config.recipients.len() - 1;
        if config.threshold > left {
            return Err(Error::InvalidThreshold {
                threshold: config.threshold,
                recipients: left,
                reason: format!(
                    "removing {label} would leave fewer recipients than the threshold; lower it \
                     first (`polyseal recipients threshold {left}`)"
                ),
            });
        }
        Ok(())
    }

    /// Removes the recipient labelled `label` and replaces the data key: a new data key is
    /// sealed (or split) to the remaining recipients and every record re-sealed under it, so
    /// the removed recipient's copy of the old data key, or of its old share (with another
    /// custodian's old share, from a backup), opens nothing written from now on. Returns the
    /// new data key; the old one is refused from now on (docs/VAULT.md, "Recipients").
    pub fn remove_recipient(&mut self, data_key: &DataKey, label: &str) -> Result<DataKey, Error> {
        self.vault.ensure_current(data_key)?;
        self.check_removal(label)?;
        let mut config = self.vault.config.clone();
        let index = config
            .recipients
            .iter()
            .position(|r| r.label() == label)
            .ok_or_else(|| Error::UnknownRecipient {
                label: label.to_owned(),
                known: self.vault.recipient_labels(),
            })?;
        let removed = config.recipients.remove(index);
        let new_key = data_key.successor();
        let mut txn = Transaction::new();
        self.reseal_all(&mut txn, data_key, &new_key)?;
        config.data_key_check = new_key.check();
        txn.events.push(EventKind::RecipientRemoved {
            label: removed.label().to_owned(),
            public_key: removed.public_key(),
            data_key_check: config.data_key_check.clone(),
        });
        txn.data_key_file = Some(new_key.wrap(&config.recipients, config.threshold)?);
        txn.config = Some(config);
        self.commit_under(data_key, &new_key, txn)?;
        Ok(new_key)
    }

    /// Checks that `threshold` is one the recipients can meet and that changes something,
    /// before anything is unlocked: `Ok(false)` when it is the vault's threshold already.
    pub fn check_threshold(&self, threshold: usize) -> Result<bool, Error> {
        let config = &self.vault.config;
        Threshold::new(threshold, config.recipients.len())?;
        check_custody(&config.recipients, threshold)?;
        Ok(threshold != config.threshold)
    }

    /// Sets how many recipients must take part to open the data key (1: any one).
    ///
    /// Lowering it splits the same data key anew (no record is re-sealed). Raising it takes
    /// power away from every group of custodians smaller than the new threshold, who may
    /// hold the whole key (from before a threshold) or enough old shares (from a backup of
    /// `data-key.age`): it replaces the data key and re-seals every record, and returns the
    /// new key (the old one is refused from now on). `None` when the key stays.
    pub fn set_threshold(
        &mut self,
        data_key: &DataKey,
        threshold: usize,
    ) -> Result<Option<DataKey>, Error> {
        self.vault.ensure_current(data_key)?;
        if !self.check_threshold(threshold)? {
            return Ok(None);
        }
        let mut config = self.vault.config.clone();
        let raised = threshold > config.threshold;
        config.threshold = threshold;
        let mut txn = Transaction::new();
        txn.events.push(EventKind::ThresholdSet {
            threshold: u32::try_from(threshold).unwrap_or(u32::MAX),
        });
        if !raised {
            txn.data_key_file = Some(data_key.wrap(&config.recipients, config.threshold)?);
            txn.config = Some(config);
            self.commit(data_key, txn)?;
            return Ok(None);
        }
        let new_key = data_key.successor();
        self.reseal_all(&mut txn, data_key, &new_key)?;
        config.data_key_check = new_key.check();
        txn.events.push(EventKind::DataKeyRotated {
            data_key_check: config.data_key_check.clone(),
        });
        txn.data_key_file = Some(new_key.wrap(&config.recipients, config.threshold)?);
        txn.config = Some(config);
        self.commit_under(data_key, &new_key, txn)?;
        Ok(Some(new_key))
    }

    /// Seals the same data key anew to every recipient (or splits it anew): after a transit
    /// key was rotated, its stanza is then under the key's latest version, and the service
    /// can set `min_decryption_version` past the old one.
    pub fn rewrap(&mut self, data_key: &DataKey) -> Result<(), Error> {
        self.vault.ensure_current(data_key)?;
        let config = &self.vault.config;
        let mut txn = Transaction::new();
        txn.events.push(EventKind::DataKeyRewrapped {
            data_key_check: config.data_key_check.clone(),
        });
        txn.data_key_file = Some(data_key.wrap(&config.recipients, config.threshold)?);
        self.commit(data_key, txn)
    }

    /// The staged copy of `mac`'s record, copied from the vault on first use.
    fn staged_record<'t>(
        &self,
        staged: &'t mut BTreeMap<Mac, Record>,
        mac: &Mac,
    ) -> Result<&'t mut Record, Error> {
        if !staged.contains_key(mac) {
            let record = self
                .vault
                .record(mac)
                .ok_or(Error::UnknownMac { mac: *mac })?;
            staged.insert(*mac, record.clone());
        }
        staged.get_mut(mac).ok_or(Error::UnknownMac { mac: *mac })
    }

    /// Makes `txn` durable and applies it; only then does the in-memory state change.
    fn commit(&mut self, data_key: &DataKey, txn: Transaction) -> Result<(), Error> {
        self.commit_under(data_key, data_key, txn)
    }

    /// [`VaultWriter::commit`], for the changes written in other files of this crate.
    pub(crate) fn commit_change(
        &mut self,
        data_key: &DataKey,
        txn: Transaction,
    ) -> Result<(), Error> {
        self.commit_under(data_key, data_key, txn)
    }

    /// [`VaultWriter::commit`] of a transaction that replaces the data key `data_key` with
    /// `next_key`: the vault is authenticated with the first, its new head with the second.
    fn commit_under(
        &mut self,
        data_key: &DataKey,
        next_key: &DataKey,
        txn: Transaction,
    ) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::WriterPoisoned {
                dir: self.vault.dir().to_path_buf(),
            });
        }
        if txn.events.is_empty() {
            return Ok(());
        }
        // The files are checked against the head before anything is written: a change made
        // outside polyseal (a recipient appended, a state edited back) is refused, never
        // sealed to or written into a new head.
        self.vault.ensure_current(data_key)?;
        let data_key_file =
            durable::read_optional(&self.vault.layout.data_key())?.ok_or_else(|| {
                Error::MissingDataKey {
                    path: self.vault.layout.data_key(),
                }
            })?;
        let (previous, log_digest) = self
            .vault
            .authenticate(data_key, data_key_file.as_bytes())?;
        self.apply(Some(&previous), log_digest, next_key, txn)
    }

    /// Journals `txn` with the head after `previous` (`None`: a head of every file, for an
    /// upgraded vault), tagged with `head_key`, and applies it. `log_digest` is the digest of
    /// the log as it is now.
    pub(crate) fn apply(
        &mut self,
        previous: Option<&Head>,
        log_digest: LogDigest,
        head_key: &DataKey,
        txn: Transaction,
    ) -> Result<(), Error> {
        let buckets: Vec<_> = self.buckets_to_write(&txn).into_iter().collect();
        // Rendered on every core, a few buckets at a time: all 256 at once would hold the
        // whole inventory's text (25 MB at 100,000 phones) on top of the records.
        let rendered = buckets.chunks(RENDER_BATCH).flat_map(|batch| {
            batch
                .par_iter()
                .map(|(bucket, records)| {
                    (
                        bucket_relative_path(*bucket),
                        bucket::render(records.values().copied()),
                    )
                })
                .collect::<Vec<_>>()
        });
        let config = txn
            .config
            .as_ref()
            .map(|config| (CONFIG_FILE.to_owned(), config.render()));
        let data_key = txn
            .data_key_file
            .clone()
            .map(|file| (DATA_KEY_FILE.to_owned(), file));
        let files = rendered.chain(data_key).chain(config);
        let log = LogStart {
            head: self.head,
            len: self.log_len,
            digest: log_digest,
        };
        let written = write_journal(
            &self.vault.layout,
            log,
            txn.time,
            &txn.events,
            files,
            previous,
            head_key,
        )?;
        // Committed: until the journal is applied, this writer's view is behind the disk.
        self.poisoned = true;
        journal::recover(&self.vault.layout)?;
        self.poisoned = false;
        self.head = written.head.log.head;
        self.log_len = written.head.log.len;
        self.vault.found = written.found();
        self.vault.records.extend(txn.staged);
        self.vault.key_descs = std::sync::OnceLock::new();
        if let Some(config) = txn.config {
            self.vault.config = config;
        }
        Ok(())
    }

    /// The records of every bucket the transaction changes, as they will be after it.
    fn buckets_to_write<'a>(
        &'a self,
        txn: &'a Transaction,
    ) -> BTreeMap<u8, BTreeMap<Mac, &'a Record>> {
        let touched: BTreeSet<u8> = if txn.all_buckets {
            self.vault.records.keys().map(bucket_of).collect()
        } else {
            txn.staged.keys().map(bucket_of).collect()
        };
        let mut buckets: BTreeMap<u8, BTreeMap<Mac, &Record>> =
            touched.iter().map(|&b| (b, BTreeMap::new())).collect();
        for (mac, record) in self.vault.records.iter().chain(&txn.staged) {
            if let Some(bucket) = buckets.get_mut(&bucket_of(mac)) {
                bucket.insert(*mac, record);
            }
        }
        buckets
    }
}

/// What a transaction's journal holds, once committed.
struct Written {
    /// The vault's head after it.
    head: Head,
    /// `head.json` as written.
    head_file: String,
}

impl Written {
    /// The files as a reader of the vault after the transaction finds them.
    fn found(self) -> Found {
        let mut files = self.head.files;
        files.remove(DATA_KEY_FILE);
        Found {
            head: Some(self.head_file),
            files,
        }
    }
}

/// The event log before a transaction: where it ends and its digest so far.
struct LogStart {
    head: LogHead,
    len: u64,
    digest: LogDigest,
}

/// Writes and commits the journal of one transaction: its event lines after `log`, the files
/// it replaces, and last the vault head after it (tagged with `head_key`), which records every
/// file's digest and where the log ends.
fn write_journal(
    layout: &Layout,
    log: LogStart,
    time: Timestamp,
    events: &[EventKind],
    files: impl IntoIterator<Item = (String, String)>,
    previous: Option<&Head>,
    head_key: &DataKey,
) -> Result<Written, Error> {
    let mut journal = JournalWriter::create(layout, log.len)?;
    let (mut log_head, mut log_len, mut log_digest) = (log.head, log.len, log.digest);
    for kind in events {
        let line = log_head.append(time, kind);
        log_len += line.len() as u64 + 1;
        log_digest.update(line.as_bytes());
        log_digest.update(b"\n");
        journal.event(&line)?;
    }
    let mut written = Vec::new();
    for (relative, contents) in files {
        written.push((relative.clone(), digest(contents.as_bytes())));
        journal.file(relative, contents.as_bytes())?;
    }
    let log = LogEnd {
        head: log_head,
        len: log_len,
        sha256: log_digest.value(),
    };
    let head = Head::after(previous, log, written);
    let head_file = head.render(head_key);
    journal.file(HEAD_FILE.to_owned(), head_file.as_bytes())?;
    journal.commit()?;
    Ok(Written { head, head_file })
}

fn key_ref(mac: Mac, generation: &Generation) -> KeyRef {
    KeyRef::new(
        mac,
        generation.number(),
        generation.key_desc().clone(),
        generation.fingerprint(),
    )
}

fn validate_evidence(evidence: &str) -> Result<(), Error> {
    let invalid = |reason| Err(Error::InvalidEvidence { reason });
    if evidence.trim().is_empty() {
        return invalid("is empty");
    }
    if evidence.chars().count() > MAX_EVIDENCE_CHARS {
        return invalid("is longer than 256 characters");
    }
    if evidence.chars().any(char::is_control) {
        return invalid("holds a control character");
    }
    Ok(())
}

/// Refuses a directory that has anything in it.
fn ensure_empty_dir(dir: &Path) -> Result<(), Error> {
    match fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(Error::DirectoryNotEmpty {
                dir: dir.to_path_buf(),
            }),
            None => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, "list", e)),
    }
}

/// Refuses a threshold that one credential could meet alone: two transit recipients on the
/// same service open with one token, so they would count as two custodians.
pub(crate) fn check_custody(recipients: &[Recipient], threshold: usize) -> Result<(), Error> {
    if threshold <= 1 {
        return Ok(());
    }
    let transit: Vec<(&Recipient, String)> = recipients
        .iter()
        .filter_map(|r| r.transit_key().map(|key| (r, key.service())))
        .collect();
    for (i, (first, service)) in transit.iter().enumerate() {
        if let Some((second, _)) = transit[i + 1..].iter().find(|(_, s)| s == service) {
            return Err(Error::InvalidThreshold {
                threshold,
                recipients: recipients.len(),
                reason: format!(
                    "transit recipients {} and {} are on one service ({service}): one token \
                     opens both, so they would count as two custodians; keep one",
                    first.label(),
                    second.label()
                ),
            });
        }
    }
    Ok(())
}
