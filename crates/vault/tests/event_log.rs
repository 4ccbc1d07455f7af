//! `events.log`: JSON lines chained by SHA-256, never a key; `verify` catches every kind of
//! tampering with it and every disagreement between it and the records.

mod common;

use std::fs;

use common::{TestVault, log_lines, mac, macs, rechain, sha256_hex, write_log};
use polyseal_vault::{
    Confirmation, Error, EventKind, InitialState, KeyState, KeyTiming, StateChange, Vault,
};

/// A vault with a history: 3 phones added active, phone 1 rotated to generation 2 with a
/// confirmation, phone 3 compromised.
fn vault_with_history() -> TestVault {
    let vault = TestVault::new();
    vault.add(&macs(3), InitialState::Active);
    vault.add(&[mac(1)], InitialState::PreActive);
    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .confirm(
            &data_key,
            &[Confirmation {
                mac: mac(1),
                generation: 2,
                evidence: "operator".to_owned(),
            }],
        )
        .expect("confirm");
    let change = |n, generation, to| StateChange {
        mac: mac(n),
        generation,
        to,
    };
    writer
        .set_states(
            &data_key,
            &[
                change(1, 1, KeyState::Deactivated),
                change(1, 2, KeyState::Active),
                change(3, 1, KeyState::Compromised),
            ],
        )
        .expect("states");
    vault
}

fn verify_findings(vault: &TestVault) -> Vec<String> {
    match Vault::open(&vault.dir).expect("open").verify() {
        Err(Error::VerifyFailed { findings, .. }) => findings,
        other => panic!("verify should fail: {other:?}"),
    }
}

#[test]
fn every_line_is_json_chained_to_the_line_before() {
    let vault = vault_with_history();
    let lines = log_lines(&vault);
    // create, recipient, 3 adds, add, confirm, the data key rotated by a compromise, 3 state
    // changes
    assert_eq!(lines.len(), 11);
    let mut prev = "0".repeat(64);
    for (i, line) in lines.iter().enumerate() {
        let event: serde_json::Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(event["seq"], i as u64 + 1);
        assert!(
            event["time"].as_str().expect("time").ends_with('Z'),
            "UTC: {line}"
        );
        assert!(event["action"].is_string());
        assert_eq!(event["prev"], prev.as_str(), "line {}", i + 1);
        if ["add", "state", "confirm"].contains(&event["action"].as_str().expect("action")) {
            for field in ["mac", "generation", "key_desc", "fingerprint"] {
                assert!(!event[field].is_null(), "{field} in {line}");
            }
        }
        prev = sha256_hex(line);
    }
    let report = Vault::open(&vault.dir)
        .expect("open")
        .verify()
        .expect("verify");
    assert_eq!(report.head.seq, 11);
    assert_eq!(
        report.head.hash_hex(),
        prev,
        "head hash is the last line's SHA-256"
    );
    assert_eq!((report.phones, report.generations), (3, 4));
}

#[test]
fn no_key_ever_reaches_the_log_or_the_metadata() {
    let vault = vault_with_history();
    let opened = Vault::open(&vault.dir).expect("open");
    let data_key = opened.unlock(&vault.identities()).expect("unlock");
    let keys = opened.open_live_keys(&data_key).expect("keys");
    let mut plaintext_files = vec!["events.log".to_owned(), "vault.toml".to_owned()];
    plaintext_files.extend(macs(3).iter().map(common::bucket_file));
    for file in plaintext_files {
        let text = fs::read_to_string(vault.file(&file)).expect("read");
        for key in &keys {
            let hex = key.key.key().expose_hex();
            assert!(
                !text.to_lowercase().contains(hex.as_str()),
                "a key in {file}"
            );
        }
    }
}

#[test]
fn the_events_api_returns_the_history_typed() {
    let vault = vault_with_history();
    let events = Vault::open(&vault.dir)
        .expect("open")
        .events()
        .expect("events");
    assert!(matches!(events[0].kind, EventKind::Created { .. }));
    assert!(matches!(&events[1].kind, EventKind::RecipientAdded { label, .. } if label == "ops"));
    let last = events.last().expect("last");
    assert!(matches!(
        &last.kind,
        EventKind::StateChanged { key, from: KeyState::Active, to: KeyState::Compromised }
            if key.mac == mac(3) && key.generation == 1
    ));
}

#[test]
fn verify_detects_an_edited_line() {
    let vault = vault_with_history();
    let mut lines = log_lines(&vault);
    lines[6] = lines[6].replace("operator", "operator (edited)");
    write_log(&vault, &lines);
    let findings = verify_findings(&vault);
    assert!(findings[0].contains("line 8"), "{findings:?}");
}

#[test]
fn verify_detects_a_deleted_line() {
    let vault = vault_with_history();
    let mut lines = log_lines(&vault);
    lines.remove(4);
    write_log(&vault, &lines);
    let findings = verify_findings(&vault);
    assert!(findings[0].contains("line 5"), "{findings:?}");
}

#[test]
fn verify_detects_an_inserted_line() {
    let vault = vault_with_history();
    let mut lines = log_lines(&vault);
    let copy = lines[3].clone();
    lines.insert(4, copy);
    write_log(&vault, &lines);
    let findings = verify_findings(&vault);
    assert!(findings[0].contains("line 5"), "{findings:?}");
}

#[test]
fn verify_detects_reordered_lines() {
    let vault = vault_with_history();
    let mut lines = log_lines(&vault);
    lines.swap(7, 8);
    write_log(&vault, &lines);
    let findings = verify_findings(&vault);
    assert!(findings[0].contains("line 8"), "{findings:?}");
}

#[test]
fn verify_detects_a_log_cut_short_by_its_records() {
    let vault = vault_with_history();
    let mut lines = log_lines(&vault);
    lines.pop();
    write_log(&vault, &lines);
    let findings = verify_findings(&vault);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains(&mac(3).to_string()), "{findings:?}");
}

#[test]
fn verify_lists_every_record_missing_from_a_deleted_bucket() {
    let vault = vault_with_history();
    fs::remove_file(vault.file(&common::bucket_file(&mac(2)))).expect("delete bucket");
    let findings = verify_findings(&vault);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("record deleted"), "{findings:?}");
}

#[test]
fn a_rewritten_chain_verifies_but_changes_the_anchored_head() {
    let vault = vault_with_history();
    let anchored = Vault::open(&vault.dir)
        .expect("open")
        .verify()
        .expect("verify")
        .head;

    // The attacker drops the compromise of phone 3, re-chains the log and edits the record
    // to match: only the head hash kept elsewhere shows it.
    let mut lines = log_lines(&vault);
    lines.pop();
    write_log(&vault, &rechain(lines));
    let bucket = vault.file(&common::bucket_file(&mac(3)));
    let record = fs::read_to_string(&bucket).expect("bucket");
    let compromised_at = record
        .split("\"compromised\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("compromised time");
    let record = record
        .replace("\"state\":\"compromised\"", "\"state\":\"active\"")
        .replace(&format!(",\"compromised\":\"{compromised_at}\""), "");
    fs::write(&bucket, record).expect("write");

    let head = Vault::open(&vault.dir)
        .expect("open")
        .verify()
        .expect("consistent forgery")
        .head;
    assert_ne!(head.hash, anchored.hash);
    assert_eq!(head.seq, anchored.seq - 1);
}

#[test]
fn verify_detects_a_recipient_added_behind_the_logs_back() {
    let vault = vault_with_history();
    let (_, intruder) = common::age_keygen(vault.tmp.path(), "intruder.key");
    common::append_recipient_by_hand(&vault.file("vault.toml"), "intruder", &intruder);
    let findings = verify_findings(&vault);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("intruder"), "{findings:?}");
}

#[test]
fn key_timing_is_logged_kept_in_vault_toml_and_checked_against_the_log() {
    let vault = vault_with_history();
    assert_eq!(vault.writer().vault().key_timing(), KeyTiming::Immediate);

    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .set_key_timing(&data_key, KeyTiming::NextBoot)
        .expect("set");
    drop(writer);
    let reopened = Vault::open(&vault.dir).expect("open");
    assert_eq!(reopened.key_timing(), KeyTiming::NextBoot);
    let text = fs::read_to_string(vault.file("vault.toml")).expect("vault.toml");
    assert!(text.contains("key_timing = \"next-boot\""), "{text}");
    assert!(reopened.events().expect("events").iter().any(|e| e.kind
        == EventKind::KeyTimingSet {
            timing: KeyTiming::NextBoot
        }));
    reopened.verify().expect("the log agrees with vault.toml");

    // Changed behind the log's back: verify names the field.
    fs::write(
        vault.file("vault.toml"),
        text.replace("key_timing = \"next-boot\"\n", ""),
    )
    .expect("write");
    let findings = verify_findings(&vault);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("key_timing"), "{findings:?}");
}

#[test]
fn an_unknown_key_timing_in_vault_toml_is_refused_naming_it() {
    let vault = vault_with_history();
    let config = vault.file("vault.toml");
    let text = fs::read_to_string(&config).expect("vault.toml");
    fs::write(
        &config,
        text.replacen(
            "data_key_check",
            "key_timing = \"someday\"\ndata_key_check",
            1,
        ),
    )
    .expect("write");
    let error = Vault::open(&vault.dir).expect_err("refused");
    assert!(error.to_string().contains("someday"), "{error}");
}
