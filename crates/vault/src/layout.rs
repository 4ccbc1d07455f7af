//! Where each file of a vault lives. Every path the crate touches is built here.

use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;

/// `vault.toml`: format version, vault id, recipients, KeyDesc template, cryptoperiod.
pub(crate) const CONFIG_FILE: &str = "vault.toml";
/// `data-key.age`: the vault data key, sealed with age to every recipient.
pub(crate) const DATA_KEY_FILE: &str = "data-key.age";
/// `head.json`: the authenticated vault head (what every file holds, where the log ends).
pub(crate) const HEAD_FILE: &str = "head.json";
/// `events.log`: the hash-chained event log.
pub(crate) const EVENTS_FILE: &str = "events.log";
/// `vault.lock`: the pid of the writer holding the lock (the lock is on the vault directory).
pub(crate) const LOCK_FILE: &str = "vault.lock";
/// `journal`: present only while a transaction is being applied.
pub(crate) const JOURNAL_FILE: &str = "journal";
/// `keys/`: the bucket files holding the phones' records.
pub(crate) const KEYS_DIR: &str = "keys";

/// The bucket a MAC's record lives in: its last octet. Phones of one model line have
/// consecutive serial numbers, so the last octet spreads a fleet evenly over 256 files.
pub(crate) fn bucket_of(mac: &Mac) -> u8 {
    mac.octets()[5]
}

/// The paths of one vault's files.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    pub(crate) fn data_key(&self) -> PathBuf {
        self.root.join(DATA_KEY_FILE)
    }

    pub(crate) fn head(&self) -> PathBuf {
        self.root.join(HEAD_FILE)
    }

    pub(crate) fn events(&self) -> PathBuf {
        self.root.join(EVENTS_FILE)
    }

    pub(crate) fn lock(&self) -> PathBuf {
        self.root.join(LOCK_FILE)
    }

    pub(crate) fn journal(&self) -> PathBuf {
        self.root.join(JOURNAL_FILE)
    }

    pub(crate) fn keys_dir(&self) -> PathBuf {
        self.root.join(KEYS_DIR)
    }

    pub(crate) fn bucket(&self, bucket: u8) -> PathBuf {
        self.root.join(bucket_relative_path(bucket))
    }

    /// Resolves a path named in a journal, accepting only the files a transaction may
    /// replace, so a damaged or planted journal cannot write outside the vault.
    pub(crate) fn resolve_journal_path(&self, relative: &str) -> Option<PathBuf> {
        let allowed = relative == CONFIG_FILE
            || relative == DATA_KEY_FILE
            || relative == HEAD_FILE
            || parse_bucket_relative_path(relative).is_some();
        allowed.then(|| self.root.join(relative))
    }
}

/// Where a file a journal names is written: in the vault's root or in `keys/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JournalDir {
    /// The vault's root: `vault.toml`, `data-key.age`, `head.json`.
    Root,
    /// `keys/`: the bucket files.
    Keys,
}

impl Layout {
    /// The directory and name of a file a journal names, accepting only the files a
    /// transaction may replace ([`Layout::resolve_journal_path`]).
    pub(crate) fn journal_target<'r>(&self, relative: &'r str) -> Option<(JournalDir, &'r str)> {
        self.resolve_journal_path(relative)?;
        Some(
            match relative
                .strip_prefix(KEYS_DIR)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(name) => (JournalDir::Keys, name),
                None => (JournalDir::Root, relative),
            },
        )
    }
}

/// `keys/<xx>.jsonl`, relative to the vault root: the form journals use.
pub(crate) fn bucket_relative_path(bucket: u8) -> String {
    format!("{KEYS_DIR}/{}", bucket_file_name(bucket))
}

/// `<xx>.jsonl`: two lowercase hex digits.
pub(crate) fn bucket_file_name(bucket: u8) -> String {
    format!("{bucket:02x}.jsonl")
}

/// The bucket number of a file name in `keys/`, if it is a bucket file's name.
pub(crate) fn parse_bucket_file_name(name: &str) -> Option<u8> {
    let digits = name.strip_suffix(".jsonl")?;
    let is_canonical = digits.len() == 2
        && digits
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    is_canonical
        .then(|| u8::from_str_radix(digits, 16).ok())
        .flatten()
}

fn parse_bucket_relative_path(relative: &str) -> Option<u8> {
    parse_bucket_file_name(relative.strip_prefix(KEYS_DIR)?.strip_prefix('/')?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_file_names_are_two_lowercase_hex_digits() {
        assert_eq!(bucket_file_name(0xef), "ef.jsonl");
        assert_eq!(bucket_relative_path(0x01), "keys/01.jsonl");
        assert_eq!(parse_bucket_file_name("ef.jsonl"), Some(0xef));
        for name in [
            "EF.jsonl",
            "e.jsonl",
            "eff.jsonl",
            "0g.jsonl",
            "ef.jsonl.tmp",
            "ef",
        ] {
            assert_eq!(parse_bucket_file_name(name), None, "{name}");
        }
        let mac = Mac::parse("0004f2abcdef").expect("mac");
        assert_eq!(bucket_of(&mac), 0xef);
    }

    #[test]
    fn journal_paths_cannot_leave_the_vault() {
        let layout = Layout::new(Path::new("/v"));
        assert_eq!(
            layout.resolve_journal_path("keys/ef.jsonl"),
            Some(PathBuf::from("/v/keys/ef.jsonl"))
        );
        assert!(layout.resolve_journal_path("vault.toml").is_some());
        assert!(layout.resolve_journal_path("data-key.age").is_some());
        assert!(layout.resolve_journal_path("head.json").is_some());
        for path in [
            "../x",
            "keys/../vault.toml",
            "/etc/passwd",
            "events.log",
            "keys/ef.jsonl/..",
        ] {
            assert_eq!(layout.resolve_journal_path(path), None, "{path}");
        }
    }
}
