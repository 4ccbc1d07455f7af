//! `head.json`, the authenticated vault head: what every file of the vault held after its last
//! transaction, a counter of transactions, and where the event log ended, with a tag made from
//! the data key. Whoever can write the vault's files but cannot open `data-key.age` cannot
//! make a head that fits an edit, so every command that unlocks the vault can tell that its
//! files are the ones polyseal wrote (docs/VAULT.md, "Authenticated state").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::data_key::{DataKey, VaultId};
use crate::event::LogHead;

/// The format of `head.json` itself.
const HEAD_FORMAT: u32 = 1;

/// Domain separation for the message the tag covers.
const HEAD_DOMAIN: &[u8] = b"polyseal vault head v1\0";

/// At most this many differences are named, then a count.
const MAX_FINDINGS: usize = 20;

/// SHA-256 of a file's bytes.
pub(crate) type FileDigest = [u8; 32];

/// SHA-256 of `bytes`, as a head records a file.
pub(crate) fn digest(bytes: &[u8]) -> FileDigest {
    Sha256::digest(bytes).into()
}

/// Where the event log ended after a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogEnd {
    /// Its last event.
    pub(crate) head: LogHead,
    /// Its length in bytes.
    pub(crate) len: u64,
    /// SHA-256 of the whole log: an edit before the last line that keeps the length (a state
    /// name changed for another of the same length) changes it.
    pub(crate) sha256: [u8; 32],
}

/// SHA-256 of the whole event log, extended as lines are appended, so a writer need not read
/// the log again after the check that read it.
#[derive(Clone)]
pub(crate) struct LogDigest(Sha256);

impl LogDigest {
    /// The digest of an empty log.
    pub(crate) fn empty() -> LogDigest {
        LogDigest(Sha256::new())
    }

    /// The digest of the log at `path`, read once.
    pub(crate) fn of_file(path: &Path) -> Result<LogDigest, Error> {
        use std::io::Read as _;
        let mut hasher = Sha256::new();
        let mut file = crate::durable::open_regular(path)?.ok_or_else(|| Error::MissingFile {
            path: path.to_path_buf(),
        })?;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = file
                .read(&mut buffer)
                .map_err(|e| Error::io(path, "read", e))?;
            if read == 0 {
                return Ok(LogDigest(hasher));
            }
            hasher.update(&buffer[..read]);
        }
    }

    /// Appends `bytes` to the digested log.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The digest so far.
    pub(crate) fn value(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }
}

/// The vault head: the state of every file after the last transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Transactions applied since the vault was made (or upgraded to format 2): 1, 2, 3, …
    pub(crate) counter: u64,
    /// Where the event log ended.
    pub(crate) log: LogEnd,
    /// Every file of the vault but the log and this one, by path from the vault root
    /// (`vault.toml`, `data-key.age`, `keys/<xx>.jsonl`), with the SHA-256 of its bytes.
    pub(crate) files: BTreeMap<String, FileDigest>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadFile {
    format: u32,
    counter: u64,
    log: LogFile,
    files: BTreeMap<String, String>,
    tag: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    seq: u64,
    len: u64,
    hash: String,
    sha256: String,
}

impl Head {
    /// The head after a transaction on the vault whose head was `previous` (`None` for a new
    /// vault): the counter one more, the log ending at `log`, `written` files replaced.
    pub(crate) fn after(
        previous: Option<&Head>,
        log: LogEnd,
        written: impl IntoIterator<Item = (String, FileDigest)>,
    ) -> Head {
        let mut files = previous.map(|h| h.files.clone()).unwrap_or_default();
        files.extend(written);
        Head {
            counter: previous.map_or(0, |h| h.counter).saturating_add(1),
            log,
            files,
        }
    }

    /// The bytes the tag covers: `"polyseal vault head v1\0"` ‖ vault id (16) ‖ counter,
    /// log sequence number and log length (8 each, big-endian) ‖ log head hash (32) ‖ the
    /// number of files (4, big-endian) ‖ per file in path order: the path's length (2,
    /// big-endian), the path, its SHA-256 (32). Fixed widths and length prefixes, so no two
    /// heads share a message.
    fn message(&self, vault_id: VaultId) -> Vec<u8> {
        let mut message = Vec::with_capacity(128 + self.files.len() * 64);
        message.extend_from_slice(HEAD_DOMAIN);
        message.extend_from_slice(vault_id.as_bytes());
        message.extend_from_slice(&self.counter.to_be_bytes());
        message.extend_from_slice(&self.log.head.seq.to_be_bytes());
        message.extend_from_slice(&self.log.len.to_be_bytes());
        message.extend_from_slice(&self.log.head.hash);
        message.extend_from_slice(&self.log.sha256);
        message.extend_from_slice(&(self.files.len() as u32).to_be_bytes());
        for (path, digest) in &self.files {
            message.extend_from_slice(&(path.len() as u16).to_be_bytes());
            message.extend_from_slice(path.as_bytes());
            message.extend_from_slice(digest);
        }
        message
    }

    /// `head.json`: one JSON line with the tag made with `data_key`.
    pub(crate) fn render(&self, data_key: &DataKey) -> String {
        let tag = data_key.head_tag(&self.message(data_key.vault_id()));
        let file = HeadFile {
            format: HEAD_FORMAT,
            counter: self.counter,
            log: LogFile {
                seq: self.log.head.seq,
                len: self.log.len,
                hash: hex::encode(self.log.head.hash),
                sha256: hex::encode(self.log.sha256),
            },
            files: self
                .files
                .iter()
                .map(|(path, digest)| (path.clone(), hex::encode(digest)))
                .collect(),
            tag: hex::encode(tag),
        };
        // Strings, integers and a map of strings always serialize; a failure is a bug, and
        // panicking before the journal is written leaves the vault untouched.
        #[allow(clippy::expect_used)]
        let mut line = serde_json::to_string(&file).expect("head.json serializes");
        line.push('\n');
        line
    }

    /// Reads `head.json` (from `path`, for messages) and checks its tag with `data_key`.
    pub(crate) fn open(path: &Path, text: &str, data_key: &DataKey) -> Result<Head, Error> {
        let file: HeadFile =
            serde_json::from_str(text).map_err(|e| Error::corrupt(path, e.to_string()))?;
        // Only polyseal writes this file, and this build writes format 1: another is damage.
        if file.format != HEAD_FORMAT {
            return Err(Error::corrupt(
                path,
                format!("says format {}, which polyseal never wrote", file.format),
            ));
        }
        let bad = |what: &str| Error::corrupt(path, format!("{what} is not 64 hex digits"));
        let mut files = BTreeMap::new();
        for (name, hex_digest) in &file.files {
            files.insert(
                name.clone(),
                parse_hash(hex_digest).ok_or_else(|| bad(name))?,
            );
        }
        let head = Head {
            counter: file.counter,
            log: LogEnd {
                head: LogHead {
                    seq: file.log.seq,
                    hash: parse_hash(&file.log.hash).ok_or_else(|| bad("log.hash"))?,
                },
                len: file.log.len,
                sha256: parse_hash(&file.log.sha256).ok_or_else(|| bad("log.sha256"))?,
            },
            files,
        };
        let tag = parse_hash(&file.tag).ok_or_else(|| bad("tag"))?;
        if !data_key.head_tag_matches(&head.message(data_key.vault_id()), &tag) {
            return Err(Error::NotAuthentic {
                dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                findings: vec![format!(
                    "{} was not made with this vault's data key: edited, copied from another \
                     vault, or restored from before the data key was replaced",
                    path.display()
                )],
            });
        }
        Ok(head)
    }

    /// What in the vault as found differs from this head: `found` holds every file's digest
    /// (the log excepted), `log` where the log ends. One sentence per difference, naming the
    /// file; empty when everything matches.
    pub(crate) fn differences(
        &self,
        found: &BTreeMap<String, FileDigest>,
        log: LogEnd,
    ) -> Vec<String> {
        let mut findings = Vec::new();
        for (path, digest) in &self.files {
            match found.get(path) {
                None => findings.push(format!("{path} is missing")),
                Some(found) if found != digest => findings.push(format!(
                    "{path} is not as polyseal last wrote it: changed outside polyseal, or \
                     restored from an older copy"
                )),
                Some(_) => {}
            }
        }
        for path in found.keys().filter(|p| !self.files.contains_key(*p)) {
            findings.push(format!("{path} was added outside polyseal"));
        }
        if log != self.log {
            findings.push(log_difference(log, self.log));
        }
        // Enough to act on; a vault flooded with planted files gets a count, not a page.
        if findings.len() > MAX_FINDINGS {
            let more = findings.len() - MAX_FINDINGS;
            findings.truncate(MAX_FINDINGS);
            findings.push(format!("and {more} more"));
        }
        findings
    }
}

/// Why the log found (`found`) is not the one the head records (`recorded`).
fn log_difference(found: LogEnd, recorded: LogEnd) -> String {
    let (at, want) = (found.head.seq, recorded.head.seq);
    if at < want {
        format!(
            "events.log ends at event {at}, before event {want} where polyseal last left it: cut, \
             or restored from an older copy"
        )
    } else if at > want {
        format!(
            "events.log goes on past event {want}, where polyseal last left it, to event {at}: \
             events were appended outside polyseal"
        )
    } else if found.head.hash != recorded.head.hash || found.len != recorded.len {
        format!("events.log's event {want} is not the one polyseal wrote: the log was rewritten")
    } else {
        format!(
            "events.log was edited before its last event {want}: its lines no longer hash to \
             what polyseal wrote (`polyseal log verify` names the line)"
        )
    }
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    let canonical = !text.bytes().any(|b| b.is_ascii_uppercase());
    hex::decode_to_slice(text, &mut bytes).ok()?;
    canonical.then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> Head {
        Head::after(
            None,
            LogEnd {
                head: LogHead {
                    seq: 3,
                    hash: [7; 32],
                },
                len: 600,
                sha256: [9; 32],
            },
            [
                ("vault.toml".to_owned(), digest(b"a")),
                ("keys/01.jsonl".to_owned(), digest(b"b")),
            ],
        )
    }

    #[test]
    fn a_head_reads_back_only_with_its_data_key() {
        let data_key = DataKey::generate(VaultId::generate());
        let text = head().render(&data_key);
        let path = Path::new("v/head.json");
        assert_eq!(Head::open(path, &text, &data_key).expect("opens"), head());
        let other = DataKey::generate(data_key.vault_id());
        let error = Head::open(path, &text, &other).expect_err("another key");
        assert!(matches!(error, Error::NotAuthentic { .. }), "{error}");
        let edited = text.replace("\"counter\":1", "\"counter\":2");
        assert_ne!(edited, text);
        assert!(Head::open(path, &edited, &data_key).is_err());
    }

    #[test]
    fn every_difference_is_named() {
        let recorded = head();
        let mut found = recorded.files.clone();
        found.insert("keys/01.jsonl".to_owned(), digest(b"older"));
        found.remove("vault.toml");
        found.insert("keys/02.jsonl".to_owned(), digest(b"new"));
        let cut = LogEnd {
            head: LogHead {
                seq: 2,
                hash: [1; 32],
            },
            len: 400,
            sha256: [2; 32],
        };
        let findings = recorded.differences(&found, cut);
        assert_eq!(findings.len(), 4, "{findings:?}");
        assert!(findings[0].starts_with("keys/01.jsonl is not as polyseal last wrote it"));
        assert!(findings[1].starts_with("vault.toml is missing"));
        assert!(findings[2].starts_with("keys/02.jsonl was added"));
        assert!(findings[3].contains("ends at event 2, before event 3"));
        assert!(
            recorded
                .differences(&recorded.files, recorded.log)
                .is_empty()
        );
    }
}
