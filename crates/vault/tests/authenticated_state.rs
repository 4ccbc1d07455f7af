//! Authenticated vault state (`head.json`): every attack on the files that the event log alone
//! cannot see is refused when the vault is unlocked, naming what does not match, before
//! anything is sealed to anyone. Each test is named after the attack it pins.

mod common;

use std::fs;

use common::{TestVault, bucket_file, log_lines, mac, macs, rechain, write_log};
use polyseal_vault::{
    Error, ErrorKind, InitialState, KeyState, LogHead, Recipient, StateChange, Vault,
};

/// A vault with phones 1..=3 active and phone 3 then compromised.
fn vault_with_a_compromised_key() -> TestVault {
    let vault = TestVault::new();
    vault.add(&macs(3), InitialState::Active);
    vault.change_state(mac(3), 1, KeyState::Compromised);
    vault
}

/// Unlocking is refused with [`Error::NotAuthentic`]; returns its message.
fn refused_at_unlock(vault: &TestVault) -> String {
    let opened = Vault::open(&vault.dir).expect("needs no identity to open");
    let error = opened
        .unlock(&vault.identities())
        .expect_err("the altered vault is refused");
    assert!(matches!(error, Error::NotAuthentic { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Integrity);
    error.to_string()
}

#[test]
fn a_recipient_injected_into_vault_toml_with_a_chained_log_line_is_never_sealed_to() {
    let vault = vault_with_a_compromised_key();
    let (_, intruder) = common::age_keygen(vault.tmp.path(), "intruder.key");
    // What the attacker needs no key for: the recipient, and a log line chained to the last.
    common::append_recipient_by_hand(&vault.file("vault.toml"), "intruder", &intruder);
    let mut lines = log_lines(&vault);
    let last: serde_json::Value =
        serde_json::from_str(lines.last().expect("a line")).expect("JSON");
    let seq = last["seq"].as_u64().expect("seq") + 1;
    lines.push(format!(
        "{{\"seq\":{seq},\"time\":\"2026-12-04T09:00:00Z\",\"action\":\"recipient-add\",\
         \"label\":\"intruder\",\"recipient\":\"{intruder}\",\"prev\":\"{}\"}}",
        common::sha256_hex(lines.last().expect("a line"))
    ));
    write_log(&vault, &lines);
    Vault::open(&vault.dir)
        .expect("open")
        .verify()
        .expect("the log alone cannot tell: it is a consistent history");
    let data_key_file = fs::read(vault.file("data-key.age")).expect("data-key.age");

    let message = refused_at_unlock(&vault);
    assert!(
        message.contains("vault.toml is not as polyseal last wrote it"),
        "{message}"
    );
    assert!(
        message.contains("events.log goes on past event"),
        "{message}"
    );
    // The operator's next ordinary change (adding a recipient of their own) never gets the
    // data key, so nothing is sealed to the intruder.
    let (_, backup) = common::age_keygen(vault.tmp.path(), "backup.key");
    let writer = vault.writer();
    assert!(writer.vault().unlock(&vault.identities()).is_err());
    drop(writer);
    let _ = Recipient::parse("backup", &backup).expect("a recipient");
    assert_eq!(
        fs::read(vault.file("data-key.age")).expect("data-key.age"),
        data_key_file,
        "the data key was sealed to nobody new"
    );
}

#[test]
fn a_compromised_key_edited_back_to_active_is_refused_before_it_is_served() {
    let vault = vault_with_a_compromised_key();
    let bucket = bucket_file(&mac(3));
    let text = fs::read_to_string(vault.file(&bucket)).expect("bucket");
    let edited = text.replace("\"state\":\"compromised\"", "\"state\":\"active\"");
    assert_ne!(edited, text);
    fs::write(vault.file(&bucket), edited).expect("write");
    let message = refused_at_unlock(&vault);
    assert!(
        message.contains(&format!("{bucket} is not as polyseal last wrote it")),
        "{message}"
    );
}

#[test]
fn a_bucket_restored_from_before_a_destroy_is_refused() {
    let vault = TestVault::new();
    vault.add(&macs(2), InitialState::Active);
    let bucket = bucket_file(&mac(1));
    let saved = fs::read(vault.file(&bucket)).expect("backup of the bucket");
    vault.change_state(mac(1), 1, KeyState::Compromised);
    fs::write(vault.file(&bucket), saved).expect("restore the backup");
    let message = refused_at_unlock(&vault);
    assert!(message.contains(&bucket), "{message}");
    assert!(message.contains("restored from an older copy"), "{message}");
}

#[test]
fn a_log_cut_at_its_end_is_refused() {
    let vault = vault_with_a_compromised_key();
    let mut lines = log_lines(&vault);
    let events = lines.len();
    lines.truncate(events - 2);
    write_log(&vault, &lines);
    let message = refused_at_unlock(&vault);
    assert!(
        message.contains(&format!(
            "events.log ends at event {}, before event {events}",
            events - 2
        )),
        "{message}"
    );
}

#[test]
fn a_log_rechained_after_a_deleted_event_is_refused() {
    let vault = vault_with_a_compromised_key();
    let mut lines = log_lines(&vault);
    // The attacker removes the compromise of phone 3 (its data-key rotation stays) and
    // re-chains everything after it: the chain verifies, the head no longer fits.
    let compromise = lines
        .iter()
        .position(|l| l.contains("\"compromised\""))
        .expect("the compromise event");
    lines.remove(compromise);
    lines.push(lines.last().expect("a line").clone());
    write_log(&vault, &rechain(lines));
    let message = refused_at_unlock(&vault);
    assert!(message.contains("events.log's event"), "{message}");
    assert!(message.contains("rewritten"), "{message}");
}

#[test]
fn a_forged_or_deleted_head_is_refused() {
    let vault = vault_with_a_compromised_key();
    let head = vault.file("head.json");
    let text = fs::read_to_string(&head).expect("head.json");
    let counter: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let counter = counter["counter"].as_u64().expect("counter");
    fs::write(
        &head,
        text.replace(
            &format!("\"counter\":{counter}"),
            &format!("\"counter\":{}", counter + 1),
        ),
    )
    .expect("write");
    let message = refused_at_unlock(&vault);
    assert!(
        message.contains("head.json was not made with this vault's data key"),
        "{message}"
    );

    fs::remove_file(&head).expect("delete head.json");
    let message = refused_at_unlock(&vault);
    assert!(message.contains("head.json is missing"), "{message}");
    // Reading needs no identity and still works: the inventory is there to see.
    assert_eq!(Vault::open(&vault.dir).expect("open").records().len(), 3);
}

#[test]
fn a_head_from_another_vault_does_not_fit() {
    let vault = vault_with_a_compromised_key();
    let other = TestVault::new();
    other.add(&macs(3), InitialState::Active);
    fs::copy(other.file("head.json"), vault.file("head.json")).expect("copy head");
    let message = refused_at_unlock(&vault);
    assert!(
        message.contains("head.json was not made with this vault's data key"),
        "{message}"
    );
}

#[test]
fn every_change_moves_the_head_counter_and_an_unaltered_vault_unlocks() {
    let vault = TestVault::new();
    let counter = || Vault::open(&vault.dir).expect("open").head_counter();
    assert_eq!(counter(), Some(1), "creation is the first transaction");
    vault.add(&macs(2), InitialState::Active);
    assert_eq!(counter(), Some(2));
    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .set_key_timing(&data_key, polyseal_vault::KeyTiming::NextBoot)
        .expect("timing");
    let data_key = writer
        .set_states(
            &data_key,
            &[StateChange {
                mac: mac(1),
                generation: 1,
                to: KeyState::Compromised,
            }],
        )
        .expect("compromise")
        .expect("a new data key");
    writer
        .add_keys(&data_key, &[mac(3)], InitialState::Active)
        .expect("add under the new data key");
    drop(writer);
    assert_eq!(counter(), Some(5));
    let opened = Vault::open(&vault.dir).expect("open");
    opened.unlock(&vault.identities()).expect("authentic");
}

#[test]
fn a_whole_vault_restored_from_an_older_copy_is_caught_by_an_anchored_head() {
    let vault = TestVault::new();
    vault.add(&macs(2), InitialState::Active);
    let copy = vault.tmp.path().join("backup");
    common::copy_dir(&vault.dir, &copy);
    vault.change_state(mac(2), 1, KeyState::Compromised);
    let anchored: LogHead = Vault::open(&vault.dir)
        .expect("open")
        .verify()
        .expect("verify")
        .head;
    fs::remove_dir_all(&vault.dir).expect("remove");
    common::copy_dir(&copy, &vault.dir);

    // A consistent older vault authenticates: its head was true once (docs/SECURITY.md).
    let restored = Vault::open(&vault.dir).expect("open");
    restored
        .unlock(&vault.identities())
        .expect("an older state that was authentic");
    // The head recorded elsewhere after the compromise is what tells.
    let error = restored.check_anchor(&anchored).expect_err("rolled back");
    assert!(error.to_string().contains("ends before event"), "{error}");
}

#[test]
fn an_edit_made_while_a_writer_holds_the_lock_is_never_blessed_into_the_head() {
    let vault = vault_with_a_compromised_key();
    let (mut writer, data_key) = vault.unlocked_writer();
    // Edited behind the lock, after this writer read the vault: its commit records what it
    // read and wrote, never what it did not, so the next unlock still names the edit.
    let bucket = bucket_file(&mac(3));
    let text = fs::read_to_string(vault.file(&bucket)).expect("bucket");
    fs::write(
        vault.file(&bucket),
        text.replace("\"state\":\"compromised\"", "\"state\":\"active\""),
    )
    .expect("write");
    writer
        .add_keys(&data_key, &[mac(9)], InitialState::Active)
        .expect("a change to another bucket");
    drop(writer);
    let message = refused_at_unlock(&vault);
    assert!(message.contains(&bucket), "{message}");
    assert!(!message.contains(&bucket_file(&mac(9))), "{message}");
}

#[test]
fn an_event_edited_in_place_before_the_log_end_is_refused() {
    let vault = TestVault::new();
    vault.add(&macs(2), InitialState::Active);
    vault.change_state(mac(1), 1, KeyState::Deactivated);
    vault.add(&[mac(5)], InitialState::Active);
    // Same length, same last line: only the whole log's digest tells.
    let log = fs::read_to_string(vault.file("events.log")).expect("log");
    let edited = log.replacen("\"state\":\"deactivated\"", "\"state\":\"compromised\"", 1);
    assert_eq!(edited.len(), log.len());
    assert_ne!(edited, log);
    fs::write(vault.file("events.log"), edited).expect("write");
    let message = refused_at_unlock(&vault);
    assert!(
        message.contains("events.log was edited before its last event"),
        "{message}"
    );
}
