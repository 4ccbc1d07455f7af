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
use crate::event::{Event, read_log};
use crate::layout::{Layout, bucket_of, parse_bucket_file_name};
use crate::lock::{DEFAULT_LOCK_WAIT, VaultLock};
use crate::recipient::seal_to_all;
use crate::record::{Generation, Record};
use crate::verify::{VerifyReport, verify};
use crate::{
    Cryptoperiod, Error, Identities, KeyState, KeyTiming, Recipient, VaultWriter, bucket, durable,
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
    // Held for its Drop: releases the lock when the vault is dropped.
    _lock: Option<VaultLock>,
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
    /// journal.
    pub(crate) fn load(layout: Layout, lock: Option<VaultLock>) -> Result<Vault, Error> {
        let config_path = layout.config();
        let config_text =
            durable::read_optional(&config_path)?.ok_or_else(|| Error::NotAVault {
                dir: layout.root().to_path_buf(),
            })?;
        let config = Config::parse(&config_path, &config_text)?;
        let records = load_records(&layout)?;
        Ok(Vault {
            layout,
            config,
            records,
            _lock: lock,
        })
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
        self.records.values().find_map(|record| {
            record
                .generations()
                .iter()
                .find(|g| g.key_desc() == key_desc)
                .map(|g| (record, g))
        })
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
        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, "read", e))?;
        let mut lines = std::io::BufReader::new(file).split(b'\n');
        let index = usize::try_from(anchor.seq - 1).unwrap_or(usize::MAX);
        let Some(line) = lines.nth(index) else {
            return Err(fail(format!(
                "the log ends before event {}: cut, or restored from before the anchored head",
                anchor.seq
            )));
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
    /// passphrase or one hardware-key touch) for the whole command.
    pub fn unlock(&self, identities: &Identities) -> Result<DataKey, Error> {
        let path = self.layout.data_key();
        let armored = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingDataKey { path });
            }
            Err(e) => return Err(Error::io(&path, "read", e)),
        };
        let data_key =
            DataKey::unwrap(&armored, identities, self.config.vault_id).map_err(|e| match e {
                UnwrapError::Age(age::DecryptError::NoMatchingKeys) => Error::NoMatchingIdentity {
                    data_key_file: path.clone(),
                    origin: identities.origin().to_owned(),
                    recipients: self.recipient_labels(),
                },
                UnwrapError::Age(age::DecryptError::KeyDecryptionFailed) => Error::IdentityLocked {
                    origin: identities.origin().to_owned(),
                },
                UnwrapError::Age(
                    e @ (age::DecryptError::Plugin(_) | age::DecryptError::PluginResolve(_)),
                ) => Error::Plugin {
                    reason: e.to_string(),
                },
                UnwrapError::Age(e) => Error::corrupt(&path, e),
                UnwrapError::Malformed => Error::corrupt(
                    &path,
                    "opens, but not to 64 lowercase hex digits and a newline",
                ),
            })?;
        if !data_key.matches_check(&self.config.data_key_check) {
            return Err(Error::DataKeyMismatch { path });
        }
        Ok(data_key)
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
            let sealed = seal_to_all(recipients, plaintext.as_bytes())?;
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

/// A bucket file's path and the records it holds.
type ParsedBucket = (PathBuf, Vec<Record>);

/// Reads every bucket file in `keys/`. Parsing JSON is most of the cost of opening a large
/// vault, and buckets are independent, so they are parsed on every core (up to 4).
fn load_records(layout: &Layout) -> Result<BTreeMap<Mac, Record>, Error> {
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
    for share in parsed {
        for (path, bucket_records) in share? {
            for record in bucket_records {
                let mac = record.mac();
                if records.insert(mac, record).is_some() {
                    return Err(Error::DuplicateRecord { path, mac });
                }
            }
        }
    }
    Ok(records)
}

/// The bucket files in `keys/`, with their bucket numbers. Any other file is an error, but
/// for temporary files a crashed writer may have left.
fn list_bucket_files(layout: &Layout) -> Result<Vec<(u8, PathBuf)>, Error> {
    let dir = layout.keys_dir();
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
    Ok((path.clone(), bucket::parse(path, *bucket, &text)?))
}
