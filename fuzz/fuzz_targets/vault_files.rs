//! The vault's parsers on arbitrary bytes: a bucket file of records, the event log, a journal
//! and `vault.toml`, each in turn replaced by the input in a copy of a real vault. Opening,
//! verifying and listing never panic.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polyseal_vault::{Recipient, Vault, VaultSettings, VaultWriter};

/// A vault made once per run, with one key, to copy for every input.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = TEMPLATE.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("vault");
        // A public key only: no identity is needed to make or read a vault's metadata.
        let recipient = Recipient::parse(
            "fuzz",
            "age1fdvf6jwm80cl6y2e6yxs7x30044ej9c7u90nkwsqk8g8rruyaa7sn925wp",
        )
        .expect("recipient");
        VaultWriter::create(&dir, VaultSettings::new(vec![recipient])).expect("vault");
        (tmp, dir)
    });
    dir
}

/// The files of `from` copied into `to`.
fn copy_vault(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("keys")).expect("keys");
    for entry in walk(from) {
        let relative = entry.strip_prefix(from).expect("inside");
        if relative.file_name().is_some_and(|n| n == "vault.lock") {
            continue;
        }
        std::fs::copy(&entry, to.join(relative)).expect("copy");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let target = match which % 4 {
        0 => "keys/00.jsonl",
        1 => "events.log",
        2 => "journal",
        _ => "vault.toml",
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("vault");
    copy_vault(template(), &dir);
    std::fs::write(dir.join(target), bytes).expect("write");
    match Vault::open(&dir) {
        Ok(vault) => {
            let _ = vault.verify().map(|report| format!("{report:?}"));
            let _ = vault.events();
            for record in vault.records() {
                let _ = format!("{record:?}");
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
