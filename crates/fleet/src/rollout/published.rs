//! Which files a phone was served encrypted in the rollout's layout. nginx's access log names
//! no KeyDesc, and serve's ledger names the KeyDesc but not the layout: both are judged
//! against the rollout's tree (docs/ROLLOUT.md, "The tree is part of the state").

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use polyseal_crypto::MAX_FILE_SIZE;
use polyseal_vault::{DataKey, Vault};

/// The rollout's published tree, read to tell a file polyseal encrypted for a phone in the
/// vault's layout from anything else. Read as it is now, which is what phones were served
/// since publish last wrote a phone's file there (the gate counts no read before). A file
/// changed by hand since (a backup restored in another layout) is judged by what it is.
pub(crate) struct PublishedTree<'k> {
    root: PathBuf,
    /// With the data key, a file counts only if the phone's key opens it in the vault's
    /// layout; without, only its header is checked (`rollout status` without an identity).
    data_key: Option<&'k DataKey>,
    /// Each path judged once: a wave of 25,000 phones asks for the same few names each.
    seen: HashMap<String, bool>,
}

impl<'k> PublishedTree<'k> {
    /// The tree under `root` (the rollout's `--out`).
    pub(crate) fn new(root: &Path, data_key: Option<&'k DataKey>) -> PublishedTree<'k> {
        PublishedTree {
            root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned()),
            data_key,
            seen: HashMap::new(),
        }
    }

    /// True if `path`, as a request named it, is a file of phone `mac` (its name holds the MAC:
    /// the per-MAC rule, docs/DELIVERY.md) that the tree holds encrypted under a key of that
    /// phone in `vault` (and, with the data key, that the key opens in the vault's layout). A
    /// path that climbs out of the tree, passes through a symbolic link (publish writes none),
    /// or names no regular file (a FIFO would block the read) is not.
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
        if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
            return false;
        }
        let mut bytes = Vec::new();
        let limit = u64::try_from(MAX_FILE_SIZE).unwrap_or(u64::MAX);
        if std::fs::File::open(path)
            .and_then(|file| file.take(limit).read_to_end(&mut bytes))
            .is_err()
        {
            return false;
        }
        let bytes = zeroize::Zeroizing::new(bytes);
        let Some(desc) = polyseal_crypto::inspect(&bytes)
            .ok()
            .and_then(|header| header.key_desc().cloned())
        else {
            return false;
        };
        let owner = vault.find_key_desc(&desc).map(|(record, _)| record.mac());
        if owner.is_none_or(|owner| owner.to_string() != mac) {
            return false;
        }
        self.data_key.is_none_or(|data_key| {
            vault.open_key_by_desc(data_key, &desc).is_ok_and(|key| {
                polyseal_crypto::decrypt_with(&bytes, &key.key, &vault.layout()).is_ok()
            })
        })
    }
}
