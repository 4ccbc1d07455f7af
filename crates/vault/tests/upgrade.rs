//! A vault of format 1, made by polyseal's release before authenticated vault state
//! (`tests/fixtures/vault-format-1`), is refused by every command but the upgrade, which keeps
//! every key and refuses to bless a vault its own log contradicts.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use polyseal_vault::{Error, ErrorKind, EventKind, KeyTiming, Vault, VaultWriter};

/// A copy of the format-1 fixture, and its `ops` identity.
struct OldVault {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    fixture: PathBuf,
}

impl OldVault {
    fn new() -> OldVault {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault-format-1");
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("vault");
        common::copy_dir(&fixture.join("vault"), &dir);
        OldVault {
            _tmp: tmp,
            dir,
            fixture,
        }
    }

    fn identities(&self) -> polyseal_vault::Identities {
        common::identities(&self.fixture.join("ops.key"))
    }

    /// Waits a little for the lock: another test of this binary that runs `age-keygen` forks
    /// while this one holds it, and the child keeps the lock's descriptor until it execs (a
    /// clean-clone run on 2026-12-04 saw `Locked` with no holder).
    fn upgrade(&self) -> Result<polyseal_vault::Upgraded, Error> {
        VaultWriter::upgrade(&self.dir, Duration::from_secs(5), &self.identities(), None)
            .map(|(_, u)| u)
    }

    /// Every key the release revealed before the upgrade, as `keys show --reveal` printed it.
    fn revealed_keys(&self) -> Vec<String> {
        fs::read_to_string(self.fixture.join("keys.txt"))
            .expect("keys.txt")
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[test]
fn a_format_1_vault_is_refused_until_it_is_upgraded() {
    let old = OldVault::new();
    let error = Vault::open(&old.dir).expect_err("format 1 is refused");
    assert!(
        matches!(error, Error::NeedsUpgrade { found: 1, .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Vault);
    assert!(
        matches!(VaultWriter::open(&old.dir), Err(Error::NeedsUpgrade { .. })),
        "writers too"
    );
}

#[test]
fn the_upgrade_of_a_vault_from_todays_release_keeps_every_key() {
    let old = OldVault::new();
    let upgraded = old.upgrade().expect("upgrade");
    assert_eq!((upgraded.from, upgraded.to), (1, 2));
    assert_eq!(upgraded.live_keys, 6);
    assert_eq!(
        upgraded.head.seq, 21,
        "19 events, then the upgrade and its data-key replacement"
    );

    let vault = Vault::open(&old.dir).expect("opens as format 2");
    let data_key = vault.unlock(&old.identities()).expect("authentic");
    let keys: Vec<String> = vault
        .open_live_keys(&data_key)
        .expect("every live key opens")
        .iter()
        .map(|k| k.key.expose().to_string())
        .collect();
    assert_eq!(keys, old.revealed_keys(), "every key kept, byte for byte");
    assert_eq!(vault.key_timing(), KeyTiming::NextBoot);
    assert_eq!(vault.recipients().len(), 2);
    vault.verify().expect("the log still verifies");
    let events = vault.events().expect("events");
    assert_eq!(
        events[19].kind,
        EventKind::FormatUpgraded { from: 1, to: 2 }
    );
    assert!(matches!(events[20].kind, EventKind::DataKeyRotated { .. }));
    let config = fs::read_to_string(old.dir.join("vault.toml")).expect("vault.toml");
    assert!(config.starts_with("format = 2\n"), "{config}");
    drop(vault);

    let again = old.upgrade().expect("a second upgrade");
    assert_eq!(
        (again.from, again.to),
        (2, 2),
        "already current: nothing done"
    );
    assert_eq!(again.head.seq, 21);
}

#[test]
fn a_format_2_vault_edited_back_to_format_1_is_never_upgraded() {
    let old = OldVault::new();
    old.upgrade().expect("upgrade");
    let config = old.dir.join("vault.toml");
    let text = fs::read_to_string(&config).expect("vault.toml");
    fs::write(&config, text.replacen("format = 2", "format = 1", 1)).expect("edit back");
    let error = old.upgrade().expect_err("refused");
    assert!(matches!(error, Error::NotAuthentic { .. }), "{error:?}");
    assert!(error.to_string().contains("head.json is there"), "{error}");

    // Without its head it still cannot pass: data-key.age says format 2 inside.
    fs::remove_file(old.dir.join("head.json")).expect("remove head.json");
    let error = old.upgrade().expect_err("refused");
    assert!(matches!(error, Error::NotAuthentic { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("data-key.age was sealed for a format-2 vault"),
        "{error}"
    );
    assert!(!old.dir.join("head.json").exists(), "nothing written");
}

#[test]
fn a_copy_of_the_vault_from_before_its_upgrade_opens_nothing_in_it() {
    let old = OldVault::new();
    let before = fs::read(old.dir.join("data-key.age")).expect("data-key.age");
    old.upgrade().expect("upgrade");
    assert_ne!(
        fs::read(old.dir.join("data-key.age")).expect("data-key.age"),
        before,
        "the upgrade replaced the data key"
    );
    // The old data-key.age put back opens to the old data key, which no record is sealed
    // under any more: refused at unlock.
    fs::write(old.dir.join("data-key.age"), before).expect("restore");
    let vault = Vault::open(&old.dir).expect("open");
    assert!(vault.unlock(&old.identities()).is_err());
}

#[test]
fn an_upgrade_refuses_a_vault_its_own_log_contradicts_and_writes_nothing() {
    let old = OldVault::new();
    // Edited before the upgrade: a compromised key made active again.
    let bucket = old.dir.join("keys/05.jsonl");
    let text = fs::read_to_string(&bucket).expect("bucket");
    let edited = text.replace("\"state\":\"compromised\"", "\"state\":\"active\"");
    assert_ne!(edited, text);
    fs::write(&bucket, edited).expect("write");
    let log = fs::read(old.dir.join("events.log")).expect("log");

    let error = old.upgrade().expect_err("not blessed");
    assert!(matches!(error, Error::VerifyFailed { .. }), "{error:?}");
    assert!(error.to_string().contains("0004f2a10005"), "{error}");
    assert_eq!(fs::read(old.dir.join("events.log")).expect("log"), log);
    assert!(!old.dir.join("head.json").exists());
}

#[test]
fn an_upgrade_needs_an_identity_of_the_vault() {
    let old = OldVault::new();
    let tmp = tempfile::tempdir().expect("tmp");
    let (stranger, _) = common::age_keygen(tmp.path(), "stranger.key");
    let error = VaultWriter::upgrade(
        &old.dir,
        Duration::from_secs(5),
        &common::identities(&stranger),
        None,
    )
    .map(|_| ())
    .expect_err("a stranger cannot upgrade");
    assert!(
        matches!(error, Error::NoMatchingIdentity { .. }),
        "{error:?}"
    );
    assert!(!old.dir.join("head.json").exists());
}

#[test]
fn an_upgrade_refuses_a_recipient_added_to_a_format_1_vault_toml_by_hand() {
    let old = OldVault::new();
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, intruder) = common::age_keygen(tmp.path(), "intruder.key");
    common::append_recipient_by_hand(&old.dir.join("vault.toml"), "intruder", &intruder);
    // With a correctly chained log line, so the log agrees with vault.toml.
    let log_path = old.dir.join("events.log");
    let log = fs::read_to_string(&log_path).expect("log");
    let last = log.lines().last().expect("a line");
    let seq = log.lines().count() + 1;
    let line = format!(
        "{{\"seq\":{seq},\"time\":\"2026-12-04T09:00:00Z\",\"action\":\"recipient-add\",\
         \"label\":\"intruder\",\"recipient\":\"{intruder}\",\"prev\":\"{}\"}}",
        common::sha256_hex(last)
    );
    fs::write(&log_path, format!("{log}{line}\n")).expect("append");
    let data_key = fs::read(old.dir.join("data-key.age")).expect("data-key.age");

    let error = old.upgrade().expect_err("refused");
    assert!(matches!(error, Error::NotAuthentic { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("vault.toml lists 3 recipients, but data-key.age is sealed to 2"),
        "{error}"
    );
    assert_eq!(
        fs::read(old.dir.join("data-key.age")).expect("data-key.age"),
        data_key,
        "nothing sealed to the intruder"
    );
}
