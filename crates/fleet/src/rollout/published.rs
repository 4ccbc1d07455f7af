//! Which files a phone was served encrypted, when the record of its requests does not say:
//! nginx's access log carries no KeyDesc (docs/ROLLOUT.md, "With nginx").

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use polyseal_vault::{Timestamp, Vault};

/// The header line of an encrypted file fits well within this many bytes (docs/FORMAT.md: a
/// KeyDesc, a digest in hex and an IV at most).
const HEADER_BYTES: u64 = 4096;

/// The published tree a server serves, read to tell an encrypted file from a plaintext one.
/// Read as it is now, which is what phones were served since the tree was last published in
/// the rollout's state (the gate counts no read before): a file changed since then (its change
/// time, which no one can set back, is later) is not counted.
pub(crate) struct PublishedTree {
    root: PathBuf,
    /// When publish last wrote the tree in the rollout's state.
    published: Option<Timestamp>,
    /// Each path judged once: a wave of 25,000 phones asks for the same few names each.
    seen: HashMap<String, bool>,
}

impl PublishedTree {
    /// The tree under `root` (publish's `--out`), last published at `published`.
    pub(crate) fn new(root: &Path, published: Option<Timestamp>) -> PublishedTree {
        PublishedTree {
            root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned()),
            published,
            seen: HashMap::new(),
        }
    }

    /// True if `path`, as a request named it, is a file of phone `mac` (its name holds the MAC:
    /// the per-MAC rule, docs/DELIVERY.md) that the tree holds encrypted under a key of that
    /// phone in `vault`, unchanged since the tree was published. A path that climbs out of the
    /// tree, passes through a symbolic link (publish writes none), or names no regular file
    /// (a FIFO would block the read) is not.
    pub(crate) fn is_encrypted(&mut self, vault: &Vault, mac: &str, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        if !name.to_ascii_lowercase().contains(mac) {
            return false;
        }
        if let Some(&known) = self.seen.get(path) {
            return known;
        }
        let relative = Path::new(path.trim_start_matches('/'));
        let inside = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        let encrypted = inside && self.sealed_for(vault, mac, &self.root.join(relative));
        self.seen.insert(path.to_owned(), encrypted);
        encrypted
    }

    fn sealed_for(&self, vault: &Vault, mac: &str, path: &Path) -> bool {
        // The real path is the path itself only when no part of it is a link.
        if !std::fs::canonicalize(path).is_ok_and(|real| real == path) {
            return false;
        }
        let Ok(metadata) = std::fs::symlink_metadata(path) else {
            return false;
        };
        if !metadata.is_file() || !self.unchanged_since_published(&metadata) {
            return false;
        }
        let mut head = Vec::new();
        if std::fs::File::open(path)
            .and_then(|file| file.take(HEADER_BYTES).read_to_end(&mut head))
            .is_err()
        {
            return false;
        }
        polyseal_crypto::inspect(&head)
            .ok()
            .and_then(|header| header.key_desc().cloned())
            .and_then(|desc| vault.find_key_desc(&desc).map(|(record, _)| record.mac()))
            .is_some_and(|owner| owner.to_string() == mac)
    }

    #[cfg(unix)]
    fn unchanged_since_published(&self, metadata: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.published
            .is_some_and(|at| u64::try_from(metadata.ctime()).is_ok_and(|c| c <= at.unix_seconds()))
    }

    #[cfg(not(unix))]
    fn unchanged_since_published(&self, _metadata: &std::fs::Metadata) -> bool {
        self.published.is_some()
    }
}
