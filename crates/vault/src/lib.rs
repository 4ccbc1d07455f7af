//! The polyseal key vault: every phone's configuration keys sealed with age, their NIST SP
//! 800-57 states, and a tamper-evident event log.
//!
//! A vault is a directory (its byte-level format is in `docs/VAULT.md`):
//!
//! ```text
//! vault.toml       format version, vault id, recipients with labels, KeyDesc template,
//!                  cryptoperiod, data-key check value
//! data-key.age     the 256-bit vault data key, a standard age file sealed to every recipient
//! keys/<xx>.jsonl  the records of the phones whose MAC ends in octet xx, one per line: every
//!                  generation's KeyDesc, state, timestamps, fingerprint, and the key sealed
//!                  with AES-256-GCM under the data key
//! events.log       JSON lines, each carrying the SHA-256 of the line before it
//! vault.lock       the lock file
//! ```
//!
//! - Reading needs no identity: [`Vault::open`] gives the inventory ([`Vault::records`]),
//!   the event log ([`Vault::events`]) and [`Vault::verify`].
//! - Keys need one unlock: [`Vault::unlock`] opens `data-key.age` with [`Identities`] once,
//!   and the [`DataKey`] opens any number of keys ([`Vault::open_key`],
//!   [`Vault::open_key_by_desc`], [`Vault::open_live_keys`], [`Vault::export_keys`]).
//! - Changes go through a [`VaultWriter`]: one writer at a time, every change one durable,
//!   all-or-nothing transaction, logged.
//!
//! ```
//! use std::sync::Arc;
//! use polyseal_crypto::Mac;
//! use polyseal_vault::{Identities, InitialState, NoPrompt, Recipient, Vault, VaultSettings, VaultWriter};
//!
//! # let tmp = tempfile::tempdir()?;
//! # let dir = tmp.path().join("vault");
//! // Example identity only: never use a key published in documentation.
//! let identity = "AGE-SECRET-KEY-1K5GLS3ZY7H4C09CZZUTUM4S5QS8DPM3KJU3DPGGWX9RJ8085M56SF6V0E2";
//! let ops = Recipient::parse("ops", "age1y605jvun0aa3svvyf60lxdteud9wumq5rv2dv59v0e63wc0rv38qs3mm26")?;
//! let identities = Identities::from_text(identity, "example", Arc::new(NoPrompt))?;
//!
//! let mut writer = VaultWriter::create(&dir, VaultSettings::new(vec![ops]))?;
//! let data_key = writer.vault().unlock(&identities)?;
//! let macs: Vec<Mac> = ["0004f2000001", "0004f2000002"].iter().map(|m| m.parse()).collect::<Result<_, _>>()?;
//! writer.add_keys(&data_key, &macs, InitialState::Active)?;
//! drop(writer);
//!
//! // Anyone can list the inventory; opening keys takes one unlock.
//! let vault = Vault::open(&dir)?;
//! assert_eq!(vault.records().len(), 2);
//! let data_key = vault.unlock(&identities)?;
//! let keys = vault.open_live_keys(&data_key)?;
//! assert_eq!(keys[1].key.key_desc().as_str(), "0004f2000002-g1");
//! println!("head {}", vault.verify()?.head.hash_hex());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod bucket;
mod config;
mod custodian;
mod data_key;
mod durable;
mod error;
mod event;
mod head;
mod identity;
mod journal;
mod key_timing;
mod layout;
mod lock;
mod recipient;
mod record;
mod rollout;
mod rotation_step;
mod state;
mod threshold;
mod time;
mod transit;
mod upgrade;
mod vault;
mod verify;
mod writer;

pub use data_key::{DataKey, VaultId};
pub use error::{Error, ErrorKind};
pub use event::{Event, EventKind, KeyRef, LogHead};
pub use identity::{Identities, IdentitySource, NoPrompt, Prompt};
pub use key_timing::{KeyTiming, UnknownKeyTiming};
pub use lock::DEFAULT_LOCK_WAIT;
pub use recipient::Recipient;
pub use record::{Confirmed, Generation, Record};
pub use rollout::{Rollout, Wave, WavePhones};
pub use rotation_step::RotationStep;
pub use state::{InitialState, KeyState};
pub use time::{Cryptoperiod, Timestamp};
pub use transit::TransitToken;
pub use upgrade::Upgraded;
pub use vault::{OpenedKey, Vault};
pub use verify::VerifyReport;
pub use writer::{Confirmation, PreparedKeys, StateChange, VaultSettings, VaultWriter};

/// The vault format this build writes and reads: `format = 2` in `vault.toml`. Format 1
/// (before authenticated vault state) is read only by [`VaultWriter::upgrade`].
pub const FORMAT_VERSION: u32 = 2;
