//! The vault's parsers on arbitrary bytes: a bucket file of records, the event log, a journal,
//! `vault.toml` and the authenticated head `head.json`, each in turn replaced by the input in a
//! copy of a real vault. Opening, verifying, listing and unlocking never panic.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use polyseal_vault::{Identities, NoPrompt, Recipient, Vault, VaultSettings, VaultWriter};

/// The identity of the template vault: the example in polyseal-vault's documentation, public,
/// protecting nothing.
const IDENTITY: &str = "AGE-SECRET-KEY-1K5GLS3ZY7H4C09CZZUTUM4S5QS8DPM3KJU3DPGGWX9RJ8085M56SF6V0E2";

/// A vault made once per run, with one key, to copy for every input.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, dir) = TEMPLATE.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("vault");
        let recipient = Recipient::parse(
            "fuzz",
            "age1y605jvun0aa3svvyf60lxdteud9wumq5rv2dv59v0e63wc0rv38qs3mm26",
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
    let target = match which % 5 {
        0 => "keys/00.jsonl",
        1 => "events.log",
        2 => "journal",
        3 => "head.json",
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
            let identities =
                Identities::from_text(IDENTITY, "fuzz", std::sync::Arc::new(NoPrompt)).expect("id");
            let _ = vault.unlock(&identities).map_err(|e| e.to_string());
            for record in vault.records() {
                let _ = format!("{record:?}");
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
