//! `events.log`: one JSON object per line, each carrying the SHA-256 of the line before it.
//!
//! Editing, deleting, inserting or reordering a line breaks the chain at that point; rewriting
//! the whole chain changes the head hash, which an auditor keeps elsewhere. No line holds a
//! key: keys appear by fingerprint only.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use polyseal_crypto::{Fingerprint, KeyDesc, Layout, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data_key::VaultId;
use crate::{Error, KeyState, KeyTiming, Timestamp, UnknownKeyTiming};

/// One entry of the event log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Position in the log: 1, 2, 3, … without gaps.
    pub seq: u64,
    /// When it happened (UTC).
    pub time: Timestamp,
    /// What happened.
    pub kind: EventKind,
}

/// What an [`Event`] records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// The vault was created (always the first event).
    Created {
        /// The new vault's id.
        vault_id: VaultId,
        /// Its KeyDesc template.
        key_desc_template: String,
        /// Its cryptoperiod in days, if it has one.
        cryptoperiod_days: Option<u32>,
        /// The check value of its first data key.
        data_key_check: String,
    },
    /// A recipient can now open the vault.
    RecipientAdded {
        /// Its label.
        label: String,
        /// Its public key.
        public_key: String,
    },
    /// A recipient was removed, and the data key rotated so it cannot open new seals.
    RecipientRemoved {
        /// Its label.
        label: String,
        /// Its public key.
        public_key: String,
        /// The check value of the new data key.
        data_key_check: String,
    },
    /// The data key was replaced and every key re-sealed under the new one, because a key was
    /// destroyed or compromised (crypto-shredding: docs/VAULT.md).
    DataKeyRotated {
        /// The check value of the new data key.
        data_key_check: String,
    },
    /// The number of custodians needed to open the data key was set, and the same data key
    /// split anew among the recipients (docs/VAULT.md, "Threshold").
    ThresholdSet {
        /// How many recipients must take part (1: any one).
        threshold: u32,
    },
    /// The same data key was sealed anew to every recipient (after a transit key's rotation,
    /// so its stanza is under the key's latest version).
    DataKeyRewrapped {
        /// The check value of the data key (unchanged).
        data_key_check: String,
    },
    /// The vault was upgraded to a newer format by `VaultWriter::upgrade`, every key kept.
    FormatUpgraded {
        /// The format it had.
        from: u32,
        /// The format it has now.
        to: u32,
    },
    /// The custodian holding a recipient's identity acknowledged their responsibilities (PCI
    /// DSS v4 3.7.8), proven by opening a challenge sealed to that recipient alone.
    Acknowledged {
        /// The recipient's label.
        label: String,
        /// Its public key.
        public_key: String,
    },
    /// The fleet's key timing was set (absent from a log: `immediate`).
    KeyTimingSet {
        /// The new timing.
        timing: KeyTiming,
    },
    /// The layout of the fleet's encrypted files was set.
    LayoutSet {
        /// The new layout.
        layout: Layout,
    },
    /// The fleet's rollout onto encryption changed (docs/ROLLOUT.md).
    RolloutChanged {
        /// What changed, for a reader of the log ("wave 2 advanced: 10 phones").
        change: String,
        /// [`Rollout::digest`](crate::Rollout::digest) of the rollout after it; `None` once
        /// forgotten.
        digest: Option<String>,
    },
    /// A new key generation was made.
    KeyAdded {
        /// Which key.
        key: KeyRef,
        /// The state it started in.
        state: KeyState,
    },
    /// A key generation changed state.
    StateChanged {
        /// Which key.
        key: KeyRef,
        /// The state it left.
        from: KeyState,
        /// The state it entered.
        to: KeyState,
    },
    /// A phone was confirmed to hold a pre-active key generation.
    Confirmed {
        /// Which key.
        key: KeyRef,
        /// What showed it.
        evidence: String,
    },
}

/// Names one key generation in an event, without the key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyRef {
    /// The phone.
    pub mac: Mac,
    /// The generation number.
    pub generation: u32,
    /// Its KeyDesc.
    pub key_desc: KeyDesc,
    /// Its fingerprint.
    pub fingerprint: Fingerprint,
}

impl KeyRef {
    pub(crate) fn new(
        mac: Mac,
        generation: u32,
        key_desc: KeyDesc,
        fingerprint: Fingerprint,
    ) -> KeyRef {
        KeyRef {
            mac,
            generation,
            key_desc,
            fingerprint,
        }
    }
}

/// Where the log ends: the last line's sequence number and SHA-256. Give the hash to an
/// auditor to keep elsewhere; a log rewritten from the start cannot reproduce it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LogHead {
    /// The last line's sequence number (0 for an empty log).
    pub seq: u64,
    /// SHA-256 of the last line, without its newline (all zeros for an empty log).
    pub hash: [u8; 32],
}

impl LogHead {
    /// The head of an empty log; the first line's `prev` is its hash, 64 zeros.
    pub(crate) const EMPTY: LogHead = LogHead {
        seq: 0,
        hash: [0; 32],
    };

    /// Reads a head as `log verify` prints it and an operator records it: `head SEQ HEX`,
    /// `SEQ HEX` or `SEQ:HEX`, HEX the 64 hex digits of the event's line hash.
    ///
    /// ```
    /// let head = polyseal_vault::LogHead::parse(&format!("12:{}", "ab".repeat(32))).expect("a head");
    /// assert_eq!(head.seq, 12);
    /// assert!(polyseal_vault::LogHead::parse("12:abc").is_none());
    /// let line = format!("head 12 {}", "ab".repeat(32));
    /// assert_eq!(polyseal_vault::LogHead::parse(&line), Some(head));
    /// ```
    pub fn parse(text: &str) -> Option<LogHead> {
        let text = text.trim();
        // The whole line `log verify` prints, as an operator records it, is a head too.
        let text = text.strip_prefix("head ").unwrap_or(text);
        let (seq, hex) = text.trim().split_once([':', ' '])?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(hex.trim(), &mut hash).ok()?;
        Some(LogHead {
            seq: seq.trim().parse().ok()?,
            hash,
        })
    }

    /// The hash as 64 lowercase hex digits.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Renders `kind` at `time` as the line after this head (without the newline), and
    /// moves the head past it.
    pub(crate) fn append(&mut self, time: Timestamp, kind: &EventKind) -> String {
        let line = EventLine::from_event(self.seq + 1, time, kind, hex::encode(self.hash));
        // Strings, integers and options always serialize to JSON; a failure is a bug, and
        // panicking before the journal is written leaves the vault untouched.
        #[allow(clippy::expect_used)]
        let text = serde_json::to_string(&line).expect("event lines serialize to JSON");
        self.advance(text.as_bytes(), line.seq);
        text
    }

    fn advance(&mut self, line: &[u8], seq: u64) {
        self.seq = seq;
        self.hash = Sha256::digest(line).into();
    }
}

/// The JSON form of an event: `seq`, `time`, `action`, the fields of that action, `prev`.
#[derive(Serialize, Deserialize)]
struct EventLine {
    seq: u64,
    time: String,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vault_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_desc_template: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cryptoperiod_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipient: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generation: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_desc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    evidence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_key_check: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_timing: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_format: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    format: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    change: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout: Option<String>,
    prev: String,
}

const CREATE: &str = "create";
const RECIPIENT_ADD: &str = "recipient-add";
const RECIPIENT_REMOVE: &str = "recipient-remove";
const DATA_KEY_ROTATE: &str = "data-key-rotate";
const ADD: &str = "add";
const STATE: &str = "state";
const CONFIRM: &str = "confirm";
const KEY_TIMING: &str = "key-timing";
const LAYOUT: &str = "layout";
const ROLLOUT: &str = "rollout";
const UPGRADE: &str = "upgrade";
const ACKNOWLEDGE: &str = "acknowledge";
const THRESHOLD: &str = "threshold";
const DATA_KEY_REWRAP: &str = "data-key-rewrap";

impl EventKind {
    /// The `action` field `events.log` writes for this kind (docs/VAULT.md, "events.log").
    pub fn action(&self) -> &'static str {
        match self {
            EventKind::Created { .. } => CREATE,
            EventKind::RecipientAdded { .. } => RECIPIENT_ADD,
            EventKind::RecipientRemoved { .. } => RECIPIENT_REMOVE,
            EventKind::DataKeyRotated { .. } => DATA_KEY_ROTATE,
            EventKind::DataKeyRewrapped { .. } => DATA_KEY_REWRAP,
            EventKind::ThresholdSet { .. } => THRESHOLD,
            EventKind::FormatUpgraded { .. } => UPGRADE,
            EventKind::Acknowledged { .. } => ACKNOWLEDGE,
            EventKind::KeyTimingSet { .. } => KEY_TIMING,
            EventKind::LayoutSet { .. } => LAYOUT,
            EventKind::RolloutChanged { .. } => ROLLOUT,
            EventKind::KeyAdded { .. } => ADD,
            EventKind::StateChanged { .. } => STATE,
            EventKind::Confirmed { .. } => CONFIRM,
        }
    }
}

impl EventLine {
    fn bare(seq: u64, time: Timestamp, action: &str, prev: String) -> EventLine {
        EventLine {
            seq,
            time: time.to_string(),
            action: action.to_owned(),
            vault_id: None,
            key_desc_template: None,
            cryptoperiod_days: None,
            label: None,
            recipient: None,
            mac: None,
            generation: None,
            key_desc: None,
            fingerprint: None,
            from: None,
            state: None,
            evidence: None,
            data_key_check: None,
            key_timing: None,
            from_format: None,
            format: None,
            threshold: None,
            layout: None,
            change: None,
            rollout: None,
            prev,
        }
    }

    fn with_key(mut self, key: &KeyRef) -> EventLine {
        self.mac = Some(key.mac.to_string());
        self.generation = Some(key.generation);
        self.key_desc = Some(key.key_desc.to_string());
        self.fingerprint = Some(key.fingerprint.to_string());
        self
    }

    fn from_event(seq: u64, time: Timestamp, kind: &EventKind, prev: String) -> EventLine {
        match kind {
            EventKind::Created {
                vault_id,
                key_desc_template,
                cryptoperiod_days,
                data_key_check,
            } => EventLine {
                vault_id: Some(vault_id.to_string()),
                key_desc_template: Some(key_desc_template.clone()),
                cryptoperiod_days: *cryptoperiod_days,
                data_key_check: Some(data_key_check.clone()),
                ..EventLine::bare(seq, time, CREATE, prev)
            },
            EventKind::RecipientAdded { label, public_key } => EventLine {
                label: Some(label.clone()),
                recipient: Some(public_key.clone()),
                ..EventLine::bare(seq, time, RECIPIENT_ADD, prev)
            },
            EventKind::RecipientRemoved {
                label,
                public_key,
                data_key_check,
            } => EventLine {
                label: Some(label.clone()),
                recipient: Some(public_key.clone()),
                data_key_check: Some(data_key_check.clone()),
                ..EventLine::bare(seq, time, RECIPIENT_REMOVE, prev)
            },
            EventKind::DataKeyRotated { data_key_check } => EventLine {
                data_key_check: Some(data_key_check.clone()),
                ..EventLine::bare(seq, time, DATA_KEY_ROTATE, prev)
            },
            EventKind::Acknowledged { label, public_key } => EventLine {
                label: Some(label.clone()),
                recipient: Some(public_key.clone()),
                ..EventLine::bare(seq, time, ACKNOWLEDGE, prev)
            },
            EventKind::FormatUpgraded { from, to } => EventLine {
                from_format: Some(*from),
                format: Some(*to),
                ..EventLine::bare(seq, time, UPGRADE, prev)
            },
            EventKind::ThresholdSet { threshold } => EventLine {
                threshold: Some(*threshold),
                ..EventLine::bare(seq, time, THRESHOLD, prev)
            },
            EventKind::DataKeyRewrapped { data_key_check } => EventLine {
                data_key_check: Some(data_key_check.clone()),
                ..EventLine::bare(seq, time, DATA_KEY_REWRAP, prev)
            },
            EventKind::KeyTimingSet { timing } => EventLine {
                key_timing: Some(timing.to_string()),
                ..EventLine::bare(seq, time, KEY_TIMING, prev)
            },
            EventKind::LayoutSet { layout } => EventLine {
                layout: Some(layout.to_string()),
                ..EventLine::bare(seq, time, LAYOUT, prev)
            },
            EventKind::RolloutChanged { change, digest } => EventLine {
                change: Some(change.clone()),
                rollout: digest.clone(),
                ..EventLine::bare(seq, time, ROLLOUT, prev)
            },
            EventKind::KeyAdded { key, state } => EventLine {
                state: Some(state.to_string()),
                ..EventLine::bare(seq, time, ADD, prev).with_key(key)
            },
            EventKind::StateChanged { key, from, to } => EventLine {
                from: Some(from.to_string()),
                state: Some(to.to_string()),
                ..EventLine::bare(seq, time, STATE, prev).with_key(key)
            },
            EventKind::Confirmed { key, evidence } => EventLine {
                evidence: Some(evidence.clone()),
                ..EventLine::bare(seq, time, CONFIRM, prev).with_key(key)
            },
        }
    }

    fn into_event(self) -> Result<Event, String> {
        let time =
            Timestamp::parse(&self.time).ok_or_else(|| format!("bad time {:?}", self.time))?;
        let kind = match self.action.as_str() {
            CREATE => EventKind::Created {
                vault_id: required(self.vault_id, "vault_id").and_then(|id| {
                    VaultId::parse(&id).ok_or_else(|| format!("bad vault_id {id:?}"))
                })?,
                key_desc_template: required(self.key_desc_template, "key_desc_template")?,
                cryptoperiod_days: self.cryptoperiod_days,
                data_key_check: required(self.data_key_check, "data_key_check")?,
            },
            RECIPIENT_ADD => EventKind::RecipientAdded {
                label: required(self.label, "label")?,
                public_key: required(self.recipient, "recipient")?,
            },
            RECIPIENT_REMOVE => EventKind::RecipientRemoved {
                label: required(self.label, "label")?,
                public_key: required(self.recipient, "recipient")?,
                data_key_check: required(self.data_key_check, "data_key_check")?,
            },
            DATA_KEY_ROTATE => EventKind::DataKeyRotated {
                data_key_check: required(self.data_key_check, "data_key_check")?,
            },
            ACKNOWLEDGE => EventKind::Acknowledged {
                label: required(self.label, "label")?,
                public_key: required(self.recipient, "recipient")?,
            },
            UPGRADE => EventKind::FormatUpgraded {
                from: required(self.from_format, "from_format")?,
                to: required(self.format, "format")?,
            },
            THRESHOLD => EventKind::ThresholdSet {
                threshold: required(self.threshold, "threshold")?,
            },
            DATA_KEY_REWRAP => EventKind::DataKeyRewrapped {
                data_key_check: required(self.data_key_check, "data_key_check")?,
            },
            KEY_TIMING => EventKind::KeyTimingSet {
                timing: required(self.key_timing, "key_timing")?
                    .parse()
                    .map_err(|e: UnknownKeyTiming| e.to_string())?,
            },
            LAYOUT => EventKind::LayoutSet {
                layout: required(self.layout, "layout")?
                    .parse()
                    .map_err(|e: polyseal_crypto::Error| e.to_string())?,
            },
            ROLLOUT => EventKind::RolloutChanged {
                change: required(self.change, "change")?,
                digest: self.rollout,
            },
            ADD => EventKind::KeyAdded {
                state: parse_state(self.state.as_deref(), "state")?,
                key: self.key_ref()?,
            },
            STATE => EventKind::StateChanged {
                from: parse_state(self.from.as_deref(), "from")?,
                to: parse_state(self.state.as_deref(), "state")?,
                key: self.key_ref()?,
            },
            CONFIRM => EventKind::Confirmed {
                key: self.key_ref()?,
                evidence: required(self.evidence, "evidence")?,
            },
            other => return Err(format!("unknown action {other:?}")),
        };
        Ok(Event {
            seq: self.seq,
            time,
            kind,
        })
    }

    fn key_ref(&self) -> Result<KeyRef, String> {
        let mac = self.mac.as_deref().ok_or("no mac")?;
        let key_desc = self.key_desc.as_deref().ok_or("no key_desc")?;
        let fingerprint = self.fingerprint.as_deref().ok_or("no fingerprint")?;
        Ok(KeyRef {
            mac: Mac::parse(mac).map_err(|e| e.to_string())?,
            generation: self.generation.ok_or("no generation")?,
            key_desc: KeyDesc::new(key_desc).map_err(|e| e.to_string())?,
            fingerprint: Fingerprint::parse(fingerprint)
                .ok_or_else(|| format!("bad fingerprint {fingerprint:?}"))?,
        })
    }
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("no {field}"))
}

fn parse_state(value: Option<&str>, field: &str) -> Result<KeyState, String> {
    let name = value.ok_or_else(|| format!("no {field}"))?;
    KeyState::parse(name).ok_or_else(|| format!("unknown {field} {name:?}"))
}

/// Reads the whole log, checking that sequence numbers run 1, 2, 3, … and that each line's
/// `prev` is the SHA-256 of the line before. The first fault is an [`Error::EventLog`]
/// naming its line.
pub(crate) fn read_log(path: &Path) -> Result<(Vec<Event>, LogHead), Error> {
    let file = open_log(path)?;
    let mut reader = BufReader::new(file);
    let mut head = LogHead::EMPTY;
    let mut events = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(path, "read", e))?;
        if read == 0 {
            return Ok((events, head));
        }
        let number = head.seq + 1;
        let fault = |reason: String| Error::EventLog {
            path: path.to_path_buf(),
            line: number,
            reason,
        };
        let text = line
            .strip_suffix(b"\n")
            .ok_or_else(|| fault("is incomplete (no newline): a write was cut short".to_owned()))?;
        let parsed: EventLine = serde_json::from_slice(text)
            .map_err(|e| fault(format!("is not a valid event ({e})")))?;
        if parsed.seq != number {
            return Err(fault(format!(
                "has sequence number {} where {number} was expected: a line was deleted, \
                 inserted or moved",
                parsed.seq
            )));
        }
        if parsed.prev != hex::encode(head.hash) {
            return Err(fault(
                "does not carry the SHA-256 of the line before it: that line was edited, \
                 deleted, inserted or moved"
                    .to_owned(),
            ));
        }
        events.push(parsed.into_event().map_err(&fault)?);
        head.advance(text, number);
    }
}

/// The head of the log and its length in bytes, read from its end: the writer appends after
/// it without reading the whole log.
pub(crate) fn read_head(path: &Path) -> Result<(LogHead, u64), Error> {
    let mut file = open_log(path)?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "read", e))?
        .len();
    if len == 0 {
        return Ok((LogHead::EMPTY, 0));
    }
    let fault = |reason: &str| Error::EventLog {
        path: path.to_path_buf(),
        line: 0,
        reason: reason.to_owned(),
    };
    // Read ever larger tails until one holds the whole last line.
    let mut window: u64 = 4096;
    loop {
        let start = len.saturating_sub(window);
        let mut tail = Vec::new();
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_to_end(&mut tail))
            .map_err(|e| Error::io(path, "read", e))?;
        let body = tail
            .strip_suffix(b"\n")
            .ok_or_else(|| fault("the last line is incomplete (no newline)"))?;
        let line = match body.iter().rposition(|&b| b == b'\n') {
            Some(newline) => &body[newline + 1..],
            None if start == 0 => body,
            None => {
                window *= 4;
                continue;
            }
        };
        let seq = serde_json::from_slice::<SeqOnly>(line)
            .map_err(|_| fault("the last line is not a valid event"))?
            .seq;
        let mut head = LogHead::EMPTY;
        head.advance(line, seq);
        return Ok((head, len));
    }
}

#[derive(Deserialize)]
struct SeqOnly {
    seq: u64,
}

/// Opens `events.log`, a regular file (docs/VAULT.md).
fn open_log(path: &Path) -> Result<File, Error> {
    crate::durable::open_regular(path)?.ok_or_else(|| Error::MissingFile {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_found_past_a_line_longer_than_the_first_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("events.log");
        let mut head = LogHead::EMPTY;
        let time = Timestamp::from_unix_seconds(1_800_000_000);
        let key = KeyRef::new(
            Mac::parse("0004f2abcdef").expect("mac"),
            1,
            KeyDesc::new("d").expect("desc"),
            polyseal_crypto::ConfigKey::generate().fingerprint(),
        );
        let mut text = String::new();
        for evidence in ["short".to_owned(), "long ".repeat(3000)] {
            let kind = EventKind::Confirmed {
                key: key.clone(),
                evidence,
            };
            text.push_str(&head.append(time, &kind));
            text.push('\n');
        }
        std::fs::write(&path, &text).expect("write");
        let (from_tail, len) = read_head(&path).expect("head");
        let (events, from_start) = read_log(&path).expect("log");
        assert_eq!(from_tail, head);
        assert_eq!(from_start, head);
        assert_eq!(len, text.len() as u64);
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn a_log_cut_mid_line_is_reported() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("events.log");
        let mut head = LogHead::EMPTY;
        let line = head.append(
            Timestamp::from_unix_seconds(0),
            &EventKind::RecipientAdded {
                label: "ops".to_owned(),
                public_key: "age1…".to_owned(),
            },
        );
        std::fs::write(&path, &line).expect("write without newline");
        assert!(matches!(
            read_log(&path),
            Err(Error::EventLog { line: 1, .. })
        ));
        assert!(matches!(read_head(&path), Err(Error::EventLog { .. })));
    }
}
