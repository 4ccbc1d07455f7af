//! Which files a phone was served encrypted, when the record of its requests does not say:
//! nginx's access log carries no KeyDesc (docs/ROLLOUT.md, "With nginx").

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The header line of an encrypted file fits well within this many bytes (docs/FORMAT.md: a
/// KeyDesc, a digest in hex and an IV at most).
const HEADER_BYTES: u64 = 4096;

/// The published tree a server serves, read to tell an encrypted file from a plaintext one.
/// Read as it is now: since a wave was advanced, publish has kept its phones' files encrypted
/// (and `abort` takes the wave out of the view with them).
pub struct PublishedTree {
    root: PathBuf,
    /// Each path read once: a wave of 25,000 phones asks for the same few names each.
    seen: HashMap<String, bool>,
}

impl PublishedTree {
    /// The tree under `root` (publish's `--out`).
    pub fn new(root: &Path) -> PublishedTree {
        PublishedTree {
            root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned()),
            seen: HashMap::new(),
        }
    }

    /// True if `path`, as a request named it, is a file of phone `mac` (its name holds the MAC:
    /// the per-MAC rule, docs/DELIVERY.md) that the tree holds encrypted. A path that climbs
    /// out of the tree, passes through a symbolic link (publish writes none), or names no
    /// regular file (a FIFO would block the read) is not.
    pub fn is_encrypted(&mut self, mac: &str, path: &str) -> bool {
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
        let encrypted = inside && self.head_is_encrypted(&self.root.join(relative));
        self.seen.insert(path.to_owned(), encrypted);
        encrypted
    }
}

impl PublishedTree {
    fn head_is_encrypted(&self, path: &Path) -> bool {
        // The real path is the path itself only when no part of it is a link.
        let plain = std::fs::canonicalize(path).is_ok_and(|real| real == path);
        let regular = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
        let mut head = Vec::new();
        plain
            && regular
            && std::fs::File::open(path)
                .and_then(|file| file.take(HEADER_BYTES).read_to_end(&mut head))
                .is_ok_and(|read| read > 0 && polyseal_crypto::is_encrypted(&head))
    }
}
