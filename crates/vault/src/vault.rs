//! Reading a vault: the inventory without any identity, keys after one unlock.

use sha2::Digest as _;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::num::NonZeroUsize;
use std::panic::resume_unwind;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use polyseal_crypto::{KeyDesc, KeyDescTemplate, KeyString, Mac};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::data_key::{DataKey, UnwrapError, VaultId};
use crate::event::{Event, read_head, read_log};
use crate::head::{FileDigest, Head, LogDigest, LogEnd, digest};
use crate::layout::{
    CONFIG_FILE, DATA_KEY_FILE, HEAD_FILE, Layout, bucket_of, bucket_relative_path,
    parse_bucket_file_name,
};
use crate::lock::{DEFAULT_LOCK_WAIT, VaultLock};
use crate::recipient::seal_to_all;
use crate::record::{Generation, Record};
use crate::transit::TransitOpener;
use crate::verify::{VerifyReport, verify};
use crate::{
    Cryptoperiod, Error, FORMAT_VERSION, Identities, KeyState, KeyTiming, Recipient, VaultWriter,
    bucket, durable,
};

/// An open vault: its policy, recipients and every phone's record, read under a shared lock
/// that is held until the `Vault` is dropped, so every query sees one consistent state.
///
/// Opening needs no identity. [`Vault::unlock`] turns an identity into the [`DataKey`] that
/// opens keys; to change the vault, use a [`VaultWriter`]. A writer waits for readers, this
/// process's included: drop a `Vault` before opening a `VaultWriter` on the same directory,
/// and read through [`VaultWriter::vault`] while writing.
#[derive(Debug)]
pub struct Vault {
    pub(crate) layout: Layout,
    pub(crate) config: Config,
    pub(crate) records: BTreeMap<Mac, Record>,
    /// What was read, for checking against the authenticated head when the vault is unlocked.
    pub(crate) found: Found,
    /// Which phone and generation each KeyDesc names, made at the first lookup and dropped
    /// when the records change: `status` looks up one KeyDesc per phone, and a search of
    /// 100,000 records for each took 8 s (docs/PERFORMANCE.md, "Rollout").
    pub(crate) key_descs: std::sync::OnceLock<std::collections::HashMap<KeyDesc, (Mac, u32)>>,
    // Held for its Drop: releases the lock when the vault is dropped.
    _lock: Option<VaultLock>,
}

/// The files as a [`Vault`] read them: what [`Head::differences`] compares.
#[derive(Clone, Debug, Default)]
pub(crate) struct Found {
    /// `head.json` as read, if there is one.
    pub(crate) head: Option<String>,
    /// The SHA-256 of `vault.toml` and of every bucket file, by path from the vault root.
    pub(crate) files: BTreeMap<String, FileDigest>,
}

/// A key opened from the vault, with where it belongs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OpenedKey {
    /// The phone.
    pub mac: Mac,
    /// The generation.
    pub generation: u32,
    /// Its state when it was opened.
    pub state: KeyState,
    /// KeyDesc and key, as phones receive them. `Display` and `Debug` do not show the key.
    pub key: KeyString,
}

impl Vault {
    /// Opens the vault in `dir` for reading, waiting up to [`DEFAULT_LOCK_WAIT`] for a writer
    /// to finish.
    ///
    /// A transaction left unfinished by a crashed writer is completed first (this needs write
    /// access to the directory).
    pub fn open(dir: &Path) -> Result<Vault, Error> {
        Vault::open_with_wait(dir, DEFAULT_LOCK_WAIT)
    }

    /// [`Vault::open`], waiting up to `max_wait` for a writer.
    pub fn open_with_wait(dir: &Path, max_wait: Duration) -> Result<Vault, Error> {
        let layout = Layout::new(dir);
        let lock = VaultLock::shared(layout.root(), &layout.lock(), max_wait)?;
        if !layout.journal().exists() {
            return Vault::load(layout, lock);
        }
        // A writer died mid-transaction. Completing it takes the writer's lock.
        drop(lock);
        match VaultWriter::open_with_wait(dir, max_wait) {
            Ok(_completed) => {}
            // Another writer got there first and completes it.
            Err(Error::Locked { .. }) => {}
            Err(error) => {
                return Err(Error::UnfinishedTransaction {
                    journal: layout.journal(),
                    source: Box::new(error),
                });
            }
        }
        let lock = VaultLock::shared(layout.root(), &layout.lock(), max_wait)?;
        Vault::load(layout, lock)
    }

    /// Reads `vault.toml` and every bucket file. The caller holds a lock and has applied any
    /// journal. A vault of an older format is [`Error::NeedsUpgrade`].
    pub(crate) fn load(layout: Layout, lock: Option<VaultLock>) -> Result<Vault, Error> {
        match Vault::load_any_format(layout, lock)? {
            (vault, FORMAT_VERSION) => Ok(vault),
            (vault, found) => Err(Error::NeedsUpgrade {
                dir: vault.layout.root().to_path_buf(),
                found,
            }),
        }
    }

    /// [`Vault::load`] of this build's format or an older one; returns the format too.
    pub(crate) fn load_any_format(
        layout: Layout,
        lock: Option<VaultLock>,
    ) -> Result<(Vault, u32), Error> {
        let config_path = layout.config();
        let config_text =
            durable::read_optional(&config_path)?.ok_or_else(|| Error::NotAVault {
                dir: layout.root().to_path_buf(),
            })?;
        let (config, format) = Config::parse(&config_path, &config_text)?;
        let (records, mut files) = load_records(&layout)?;
        files.insert(CONFIG_FILE.to_owned(), digest(config_text.as_bytes()));
        let found = Found {
            head: durable::read_optional(&layout.head())?,
            files,
        };
        let vault = Vault {
            layout,
            config,
            records,
            found,
            key_descs: std::sync::OnceLock::new(),
            _lock: lock,
        };
        Ok((vault, format))
    }

    /// The vault's directory.
    pub fn dir(&self) -> &Path {
        self.layout.root()
    }

    /// The vault's random id.
    pub fn id(&self) -> VaultId {
        self.config.vault_id
    }

    /// Who can open the vault.
    pub fn recipients(&self) -> &[Recipient] {
        &self.config.recipients
    }

    /// How new generations are named.
    pub fn key_desc_template(&self) -> &KeyDescTemplate {
        &self.config.key_desc_template
    }

    /// When the fleet's firmware applies a new key.
    pub fn key_timing(&self) -> KeyTiming {
        self.config.key_timing
    }

    /// The fleet's move onto encryption, if one was started and not forgotten
    /// (docs/ROLLOUT.md).
    pub fn rollout(&self) -> Option<&crate::Rollout> {
        self.config.rollout.as_ref()
    }

    /// True if `mac`'s per-phone files are served encrypted: always, but during a rollout
    /// only once a wave took the phone.
    pub fn encrypts_files_of(&self, mac: &polyseal_crypto::Mac) -> bool {
        self.rollout().is_none_or(|rollout| rollout.encrypts(mac))
    }

    /// The byte layout the fleet's encrypted files are written and read in.
    pub fn layout(&self) -> polyseal_crypto::Layout {
        self.config.layout
    }

    /// The cryptoperiod policy, if the vault has one.
    pub fn cryptoperiod(&self) -> Option<Cryptoperiod> {
        self.config.cryptoperiod
    }

    /// Every phone's record, in MAC order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = &Record> {
        self.records.values()
    }

    /// The record of `mac`.
    pub fn record(&self, mac: &Mac) -> Option<&Record> {
        self.records.get(mac)
    }

    /// The record and generation that carry `key_desc`, for telling which key sealed a file
    /// from its header. Needs no identity.
    pub fn find_key_desc(&self, key_desc: &KeyDesc) -> Option<(&Record, &Generation)> {
        let index = self.key_descs.get_or_init(|| {
            let mut index = std::collections::HashMap::new();
            for record in self.records.values() {
                for g in record.generations() {
                    // The first in MAC order, as a search would find it.
                    index
                        .entry(g.key_desc().clone())
                        .or_insert((record.mac(), g.number()));
                }
            }
            index
        });
        let (mac, number) = index.get(key_desc)?;
        let record = self.records.get(mac)?;
        let generation = record
            .generations()
            .iter()
            .find(|g| g.number() == *number)?;
        Some((record, generation))
    }

    /// Every event in the log, after checking its hash chain.
    pub fn events(&self) -> Result<Vec<Event>, Error> {
        read_log(&self.layout.events()).map(|(events, _)| events)
    }

    /// Checks the event log against a head recorded elsewhere (an earlier `log verify`'s
    /// `head SEQ HEX`, kept in a ticket, syslog or by a second custodian): the log must hold
    /// an event at `anchor.seq` whose line hashes to `anchor.hash`. An earlier head stays valid
    /// as events are appended; a log cut before it, rewritten and re-chained from there on,
    /// or restored from an older backup fails with [`Error::EventLog`]. The hash chain itself
    /// is [`Vault::verify`]'s to check.
    pub fn check_anchor(&self, anchor: &crate::LogHead) -> Result<(), Error> {
        use std::io::BufRead as _;
        let path = self.layout.events();
        let fail = |reason: String| Error::EventLog {
            path: path.clone(),
            line: anchor.seq,
            reason,
        };
        if anchor.seq == 0 {
            return Err(fail("sequence 0 is before the first event".to_owned()));
        }
        let file = durable::open_regular(&path)?
            .ok_or_else(|| Error::MissingFile { path: path.clone() })?;
        let mut lines = std::io::BufReader::new(file).split(b'\n');
        let index = usize::try_from(anchor.seq - 1).unwrap_or(usize::MAX);
        let Some(line) = lines.nth(index) else {
            return Err(Error::EventLog {
                path: path.clone(),
                line: 0,
                reason: format!(
                    "ends before event {}, the anchored head: cut, or restored from before it",
                    anchor.seq
                ),
            });
        };
        let line = line.map_err(|e| Error::io(&path, "read", e))?;
        let hash: [u8; 32] = sha2::Sha256::digest(&line).into();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&hash[..], &anchor.hash[..])) {
            return Err(fail(format!(
                "event {} hashes to {}, not the anchored {}: the log was rewritten from there on",
                anchor.seq,
                hex::encode(hash),
                anchor.hash_hex()
            )));
        }
        Ok(())
    }

    /// Checks the event log's hash chain and that the records and `vault.toml` say what the
    /// log says. Returns the log's head (give its hash to an auditor to keep elsewhere), or
    /// [`Error::VerifyFailed`] listing every disagreement. Needs no identity.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        verify(self)
    }

    /// Opens `data-key.age` with `identities`: one age unwrap (one X25519 operation, one
    /// passphrase or one hardware-key touch) for the whole command. Then checks, with a key
    /// derived from the data key, that every file of the vault is as polyseal last wrote it
    /// ([`Error::NotAuthentic`] names each one that is not), so nothing is ever sealed to a
    /// recipient, or served in a state, that someone wrote into the files by hand.
    pub fn unlock(&self, identities: &Identities) -> Result<DataKey, Error> {
        let (data_key, data_key_file) = self.unwrap_data_key(identities)?;
        self.authenticate(&data_key, &data_key_file)?;
        Ok(data_key)
    }

    /// Opens `data-key.age`, without checking the vault's head: for [`Vault::unlock`] and
    /// the upgrade of a vault that has none yet. Returns the file's bytes too.
    pub(crate) fn unwrap_data_key(
        &self,
        identities: &Identities,
    ) -> Result<(DataKey, Vec<u8>), Error> {
        let path = self.layout.data_key();
        let armored = durable::read_bytes(&path)?
            .ok_or_else(|| Error::MissingDataKey { path: path.clone() })?;
        let transit = self.transit_opener(identities);
        let openers: Vec<&dyn age::Identity> = identities.as_age().collect();
        // Last, so that identity files that open the vault are used without a call.
        let unwrapped = DataKey::unwrap(
            &armored,
            &openers,
            transit.as_ref().map(|t| t as &dyn age::Identity),
            self.config.vault_id,
        );
        let transit_failure = transit.as_ref().and_then(TransitOpener::take_failure);
        let labels = |indexes: &[usize]| -> Vec<String> {
            indexes
                .iter()
                .filter_map(|&i| self.config.recipients.get(i))
                .map(|r| r.label().to_owned())
                .collect()
        };
        let data_key = unwrapped.map_err(|e| match e {
            UnwrapError::Age(age::DecryptError::NoMatchingKeys) => {
                transit_failure.unwrap_or_else(|| Error::NoMatchingIdentity {
                    data_key_file: path.clone(),
                    origin: identities.origin().to_owned(),
                    recipients: self.recipient_labels(),
                })
            }
            UnwrapError::TooFewShares {
                needed,
                opened,
                missing,
            } => transit_failure.unwrap_or_else(|| Error::ThresholdNotMet {
                needed,
                opened: labels(&opened),
                could_give: labels(&missing),
                origin: identities.origin().to_owned(),
            }),
            UnwrapError::Age(age::DecryptError::KeyDecryptionFailed) => Error::IdentityLocked {
                origin: identities.origin().to_owned(),
            },
            UnwrapError::Age(
                e @ (age::DecryptError::Plugin(_) | age::DecryptError::PluginResolve(_)),
            ) => Error::Plugin {
                reason: e.to_string(),
            },
            UnwrapError::Age(e) => Error::corrupt(&path, e),
            UnwrapError::MalformedShares(reason) => Error::corrupt(&path, reason),
            UnwrapError::Malformed => Error::corrupt(
                &path,
                "opens, but not to 64 lowercase hex digits and a newline (and, since \
                 format 2, the line `polyseal vault format 2`), nor to shares that combine",
            ),
        })?;
        if !data_key.matches_check(&self.config.data_key_check) {
            return Err(Error::DataKeyMismatch { path });
        }
        let mut data_key = data_key;
        data_key.set_transit(identities.transit().cloned());
        Ok((data_key, armored))
    }

    /// What opens the vault's transit recipients with the token of `identities`: `None` when
    /// it has none, or no token was given.
    pub(crate) fn transit_opener(&self, identities: &Identities) -> Option<TransitOpener> {
        let keys: Vec<_> = self
            .config
            .recipients
            .iter()
            .filter_map(Recipient::transit_key)
            .cloned()
            .collect();
        if keys.is_empty() {
            return None;
        }
        identities.transit().map(|client| TransitOpener {
            keys,
            client: client.clone(),
            failure: std::sync::Mutex::new(None),
        })
    }

    /// How many recipients must take part to open the data key (1: any one).
    pub fn threshold(&self) -> usize {
        self.config.threshold
    }

    /// Whether a recipient is a transit key, so that a token in the environment can open the
    /// vault without an identity file.
    pub fn has_transit_recipient(&self) -> bool {
        self.config
            .recipients
            .iter()
            .any(|r| r.transit_key().is_some())
    }

    /// Checks every file this vault read, `data_key_file` (the bytes of `data-key.age`) and
    /// the event log's end against the authenticated head; returns the head.
    pub(crate) fn authenticate(
        &self,
        data_key: &DataKey,
        data_key_file: &[u8],
    ) -> Result<(Head, LogDigest), Error> {
        let not_authentic = |findings| Error::NotAuthentic {
            dir: self.layout.root().to_path_buf(),
            findings,
        };
        let Some(text) = &self.found.head else {
            return Err(not_authentic(vec![format!(
                "{HEAD_FILE} is missing, so nothing in the vault can be authenticated (deleted, \
                 or the vault was copied without it)"
            )]));
        };
        let head = Head::open(&self.layout.head(), text, data_key)?;
        let mut files = self.found.files.clone();
        files.insert(DATA_KEY_FILE.to_owned(), digest(data_key_file));
        let (log_head, len) = read_head(&self.layout.events())?;
        let log_digest = LogDigest::of_file(&self.layout.events())?;
        let findings = head.differences(
            &files,
            LogEnd {
                head: log_head,
                len,
                sha256: log_digest.value(),
            },
        );
        if findings.is_empty() {
            Ok((head, log_digest))
        } else {
            Err(not_authentic(findings))
        }
    }

    /// How many transactions the vault's head counts, as `head.json` says (authenticated only
    /// once [`Vault::unlock`] has succeeded); `None` if it has no head.
    pub fn head_counter(&self) -> Option<u64> {
        #[derive(serde::Deserialize)]
        struct Counter {
            counter: u64,
        }
        let text = self.found.head.as_deref()?;
        serde_json::from_str::<Counter>(text)
            .ok()
            .map(|c| c.counter)
    }

    /// Opens generation `generation` of `mac`'s key, or its active generation when `None`.
    pub fn open_key(
        &self,
        data_key: &DataKey,
        mac: &Mac,
        generation: Option<u32>,
    ) -> Result<OpenedKey, Error> {
        self.ensure_current(data_key)?;
        let record = self.record(mac).ok_or(Error::UnknownMac { mac: *mac })?;
        let chosen = match generation {
            Some(number) => record.generation(number).ok_or(Error::UnknownGeneration {
                mac: *mac,
                generation: number,
            })?,
            None => record.active().ok_or(Error::NoActiveKey { mac: *mac })?,
        };
        self.open_generation(data_key, record, chosen)
    }

    /// Opens the key that carries `key_desc`.
    pub fn open_key_by_desc(
        &self,
        data_key: &DataKey,
        key_desc: &KeyDesc,
    ) -> Result<OpenedKey, Error> {
        self.ensure_current(data_key)?;
        let (record, generation) =
            self.find_key_desc(key_desc)
                .ok_or_else(|| Error::UnknownKeyDesc {
                    key_desc: key_desc.to_string(),
                })?;
        self.open_generation(data_key, record, generation)
    }

    /// Opens every live (not destroyed) generation of every phone, in MAC order.
    pub fn open_live_keys(&self, data_key: &DataKey) -> Result<Vec<OpenedKey>, Error> {
        self.ensure_current(data_key)?;
        self.records
            .values()
            .flat_map(|record| {
                record
                    .generations()
                    .iter()
                    .filter(|g| g.state().is_live())
                    .map(move |g| (record, g))
            })
            .map(|(record, generation)| self.open_generation(data_key, record, generation))
            .collect()
    }

    /// Writes every live key to `out_dir` as a standard, ASCII-armored age file
    /// `<mac>-g<generation>.age` sealed to `recipients` (pass [`Vault::recipients`] for the
    /// vault's own). Each opens with `age -d -i IDENTITY FILE` to the key string
    /// `Crypt=1;KeyDesc=…;Key=…;` and a newline. Returns the files written.
    pub fn export_keys(
        &self,
        data_key: &DataKey,
        out_dir: &Path,
        recipients: &[Recipient],
    ) -> Result<Vec<PathBuf>, Error> {
        let keys = self.open_live_keys(data_key)?;
        durable::create_private_dir(out_dir)?;
        let mut written = Vec::with_capacity(keys.len());
        for opened in keys {
            // Sized up front: a String that grows leaves its old buffer behind, unzeroized.
            let key_string = opened.key.expose();
            let mut plaintext = Zeroizing::new(String::with_capacity(key_string.len() + 1));
            plaintext.push_str(&key_string);
            plaintext.push('\n');
            let sealed = seal_to_all(recipients, plaintext.as_bytes(), data_key.transit())?;
            let path = out_dir.join(format!("{}-g{}.age", opened.mac, opened.generation));
            durable::replace_file(&path, sealed.as_bytes())?;
            written.push(path);
        }
        durable::sync_dir(out_dir)?;
        Ok(written)
    }

    /// The recipients' labels, for messages.
    pub(crate) fn recipient_labels(&self) -> Vec<String> {
        self.config
            .recipients
            .iter()
            .map(|r| r.label().to_owned())
            .collect()
    }

    /// Refuses a data key from another vault or from before a data-key rotation.
    pub(crate) fn ensure_current(&self, data_key: &DataKey) -> Result<(), Error> {
        if data_key.vault_id() == self.config.vault_id
            && data_key.matches_check(&self.config.data_key_check)
        {
            Ok(())
        } else {
            Err(Error::StaleDataKey {
                dir: self.layout.root().to_path_buf(),
            })
        }
    }

    pub(crate) fn open_generation(
        &self,
        data_key: &DataKey,
        record: &Record,
        generation: &Generation,
    ) -> Result<OpenedKey, Error> {
        let mac = record.mac();
        let number = generation.number();
        let sealed = generation.sealed().ok_or(Error::KeyDestroyed {
            mac,
            generation: number,
        })?;
        let key = data_key
            .open(sealed, &mac, number, generation.key_desc())
            .ok_or_else(|| Error::SealBroken {
                path: self.layout.bucket(bucket_of(&mac)),
                mac,
                generation: number,
            })?;
        if key.fingerprint() != generation.fingerprint() {
            return Err(Error::FingerprintMismatch {
                path: self.layout.bucket(bucket_of(&mac)),
                mac,
                generation: number,
            });
        }
        Ok(OpenedKey {
            mac,
            generation: number,
            state: generation.state(),
            key: KeyString::new(generation.key_desc().clone(), key),
        })
    }
}

/// At most this many threads parse bucket files.
const MAX_LOAD_THREADS: usize = 4;

/// Every record by MAC, and every bucket file's SHA-256 by its path from the vault root.
type LoadedRecords = (BTreeMap<Mac, Record>, BTreeMap<String, FileDigest>);

/// A bucket file's path, the SHA-256 of its bytes and the records it holds.
type ParsedBucket = (PathBuf, u8, FileDigest, Vec<Record>);

/// Reads every bucket file in `keys/`. Parsing JSON is most of the cost of opening a large
/// vault, and buckets are independent, so they are parsed on every core (up to 4).
fn load_records(layout: &Layout) -> Result<LoadedRecords, Error> {
    let buckets = list_bucket_files(layout)?;
    let threads = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .clamp(1, MAX_LOAD_THREADS);
    let per_thread = buckets.len().div_ceil(threads).max(1);
    let parsed: Vec<Result<Vec<ParsedBucket>, Error>> = thread::scope(|scope| {
        let workers: Vec<_> = buckets
            .chunks(per_thread)
            .map(|share| scope.spawn(move || share.iter().map(read_bucket).collect()))
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or_else(|panic| resume_unwind(panic)))
            .collect()
    });
    let mut records = BTreeMap::new();
    let mut digests = BTreeMap::new();
    for share in parsed {
        for (path, bucket, file_digest, bucket_records) in share? {
            digests.insert(bucket_relative_path(bucket), file_digest);
            for record in bucket_records {
                let mac = record.mac();
                if records.insert(mac, record).is_some() {
                    return Err(Error::DuplicateRecord { path, mac });
                }
            }
        }
    }
    Ok((records, digests))
}

/// The bucket files in `keys/`, with their bucket numbers. Any other file is an error, but
/// for temporary files a crashed writer may have left.
fn list_bucket_files(layout: &Layout) -> Result<Vec<(u8, PathBuf)>, Error> {
    let dir = layout.keys_dir();
    durable::ensure_real_dir(&dir)?;
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&dir, "list", e)),
    };
    let mut buckets = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(durable::TEMP_SUFFIX) {
            continue;
        }
        let path = entry.path();
        let bucket = parse_bucket_file_name(&name)
            .ok_or_else(|| Error::corrupt(&path, "is not a bucket file (keys/<xx>.jsonl)"))?;
        buckets.push((bucket, path));
    }
    buckets.sort();
    Ok(buckets)
}

fn read_bucket((bucket, path): &(u8, PathBuf)) -> Result<ParsedBucket, Error> {
    let text =
        durable::read_optional(path)?.ok_or_else(|| Error::MissingFile { path: path.clone() })?;
    let records = bucket::parse(path, *bucket, &text)?;
    Ok((path.clone(), *bucket, digest(text.as_bytes()), records))
}
