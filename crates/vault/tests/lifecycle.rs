//! The vault's operations, end to end through the public API: create, add, states, rotation
//! confirmation, lookups, recipients, export, file permissions.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{TestVault, age_keygen, identities, mac, macs};
use polyseal_crypto::{KeyDesc, KeyDescTemplate};
use polyseal_vault::{
    Confirmation, Cryptoperiod, Error, ErrorKind, EventKind, InitialState, KeyState, Recipient,
    StateChange, Timestamp, Vault, VaultSettings, VaultWriter,
};

fn change(n: u32, generation: u32, to: KeyState) -> StateChange {
    StateChange {
        mac: mac(n),
        generation,
        to,
    }
}

#[test]
fn inventory_lists_without_any_identity() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    let before = Timestamp::now();
    let added = writer
        .add_keys(&data_key, &macs(3), InitialState::Active)
        .expect("add");
    drop(writer);

    let opened = Vault::open(&vault.dir).expect("open without identity");
    let records: Vec<_> = opened.records().collect();
    assert_eq!(records.len(), 3);
    for (record, key) in records.iter().zip(&added) {
        let generation = record.active().expect("active generation");
        assert_eq!(record.mac(), key.mac);
        assert_eq!(generation.number(), 1);
        assert_eq!(generation.key_desc(), key.key.key_desc());
        assert_eq!(generation.fingerprint(), key.key.key().fingerprint());
        assert!(generation.since(KeyState::Active).expect("activated") >= before);
    }
    assert_eq!(opened.recipients()[0].label(), "ops");
    assert_eq!(opened.recipients()[0].public_key(), vault.recipient);
}

#[test]
fn generations_count_up_and_follow_the_key_desc_template() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (identity, recipient) = age_keygen(tmp.path(), "id");
    let mut settings = VaultSettings::new(vec![Recipient::parse("ops", &recipient).expect("r")]);
    settings.key_desc_template =
        KeyDescTemplate::parse("acme-{mac}-{generation}").expect("template");
    settings.cryptoperiod = Cryptoperiod::from_days(365);
    let dir = tmp.path().join("v");
    let mut writer = VaultWriter::create(&dir, settings).expect("create");
    let data_key = writer
        .vault()
        .unlock(&identities(&identity))
        .expect("unlock");

    writer
        .add_keys(&data_key, &[mac(1)], InitialState::Active)
        .expect("g1");
    let second = writer
        .add_keys(&data_key, &[mac(1), mac(2)], InitialState::PreActive)
        .expect("g2");
    assert_eq!(second[0].generation, 2);
    assert_eq!(second[0].key.key_desc().as_str(), "acme-0004f2000001-2");
    assert_eq!(second[1].generation, 1);
    assert_eq!(second[1].state, KeyState::PreActive);
    assert_eq!(
        writer.vault().cryptoperiod().map(Cryptoperiod::days),
        Some(365)
    );
    let g1 = writer
        .vault()
        .record(&mac(1))
        .expect("record")
        .generation(1)
        .expect("g1");
    let end = Cryptoperiod::from_days(365)
        .expect("period")
        .end(g1.since(KeyState::Active).expect("active"));
    assert_eq!(end.duration_since(g1.created()).as_secs(), 365 * 86_400);
}

#[test]
fn batch_with_a_duplicate_mac_adds_nothing() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    let error = writer
        .add_keys(
            &data_key,
            &[mac(1), mac(2), mac(1)],
            InitialState::PreActive,
        )
        .expect_err("duplicate");
    assert!(matches!(error, Error::DuplicateMac { mac: m } if m == mac(1)));
    assert_eq!(writer.vault().records().len(), 0);
    drop(writer);
    assert_eq!(Vault::open(&vault.dir).expect("open").records().len(), 0);
}

#[test]
fn adding_active_to_a_phone_that_has_an_active_key_is_refused() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .add_keys(&data_key, &[mac(1)], InitialState::Active)
        .expect("first");
    let error = writer
        .add_keys(&data_key, &[mac(2), mac(1)], InitialState::Active)
        .expect_err("second active");
    assert!(matches!(error, Error::AlreadyActive { active: 1, .. }));
    assert_eq!(error.kind(), ErrorKind::Input);
    assert!(
        writer.vault().record(&mac(2)).is_none(),
        "batch is all or nothing"
    );
}

#[test]
fn rotation_finish_deactivates_then_activates_in_one_batch() {
    let vault = TestVault::new();
    vault.add(&[mac(1)], InitialState::Active);
    vault.add(&[mac(1)], InitialState::PreActive);
    let (mut writer, data_key) = vault.unlocked_writer();

    let wrong_order = writer
        .set_states(
            &data_key,
            &[
                change(1, 2, KeyState::Active),
                change(1, 1, KeyState::Deactivated),
            ],
        )
        .expect_err("two active at once");
    assert!(matches!(
        wrong_order,
        Error::AlreadyActive { active: 1, .. }
    ));
    let record = writer.vault().record(&mac(1)).expect("record");
    assert_eq!(
        record.active().map(|g| g.number()),
        Some(1),
        "nothing applied"
    );

    writer
        .set_states(
            &data_key,
            &[
                change(1, 1, KeyState::Deactivated),
                change(1, 2, KeyState::Active),
            ],
        )
        .expect("finish");
    let record = writer.vault().record(&mac(1)).expect("record");
    assert_eq!(record.active().map(|g| g.number()), Some(2));
    let old = record.generation(1).expect("g1");
    assert_eq!(old.state(), KeyState::Deactivated);
    assert!(old.since(KeyState::Active) <= old.since(KeyState::Deactivated));
    assert_eq!(
        old.state_since(),
        old.since(KeyState::Deactivated).expect("since")
    );
    // A deactivated key still decrypts old files.
    let opened = writer
        .vault()
        .open_key(&data_key, &mac(1), Some(1))
        .expect("deactivated key opens");
    assert_eq!(opened.state, KeyState::Deactivated);
}

#[test]
fn illegal_transitions_are_errors_that_change_nothing() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .add_keys(&data_key, &macs(2), InitialState::PreActive)
        .expect("add");
    writer
        .set_states(
            &data_key,
            &[
                change(1, 1, KeyState::Active),
                change(1, 1, KeyState::Deactivated),
            ],
        )
        .expect("legal path");
    for (from_mac, to) in [
        (1, KeyState::Active),
        (1, KeyState::PreActive),
        (2, KeyState::Deactivated),
    ] {
        let error = writer
            .set_states(
                &data_key,
                &[change(2, 1, KeyState::Compromised), change(from_mac, 1, to)],
            )
            .expect_err("illegal");
        assert!(
            matches!(error, Error::IllegalTransition { to: t, .. } if t == to),
            "{error}"
        );
        assert!(error.to_string().contains(&mac(from_mac).to_string()));
    }
    assert_eq!(
        writer
            .vault()
            .record(&mac(2))
            .expect("r")
            .generation(1)
            .expect("g")
            .state(),
        KeyState::PreActive,
        "the compromise in the failed batches was not applied"
    );
    let unknown = writer
        .set_states(&data_key, &[change(3, 1, KeyState::Active)])
        .expect_err("unknown MAC");
    assert!(matches!(unknown, Error::UnknownMac { .. }));
    let no_generation = writer
        .set_states(&data_key, &[change(1, 7, KeyState::Active)])
        .expect_err("unknown generation");
    assert!(matches!(
        no_generation,
        Error::UnknownGeneration { generation: 7, .. }
    ));
}

#[test]
fn destroying_erases_the_sealed_key_and_keeps_metadata() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    let added = writer
        .add_keys(&data_key, &[mac(1)], InitialState::Active)
        .expect("add");
    let replaced = writer
        .set_states(
            &data_key,
            &[
                change(1, 1, KeyState::Compromised),
                change(1, 1, KeyState::Destroyed),
            ],
        )
        .expect("compromise, destroy");
    assert!(replaced.is_some(), "destroying replaces the data key");
    drop(writer);

    let bucket =
        std::fs::read_to_string(vault.file(&common::bucket_file(&mac(1)))).expect("bucket");
    assert!(!bucket.contains("sealed"), "sealed bytes erased:\n{bucket}");
    assert!(bucket.contains(&added[0].key.key().fingerprint().to_string()));
    let opened = Vault::open(&vault.dir).expect("open");
    let generation = opened
        .record(&mac(1))
        .expect("record")
        .generation(1)
        .expect("g1");
    assert_eq!(generation.state(), KeyState::Destroyed);
    assert!(generation.since(KeyState::Compromised).is_some());
    let data_key = opened.unlock(&vault.identities()).expect("unlock");
    assert!(matches!(
        opened.open_key(&data_key, &mac(1), Some(1)),
        Err(Error::KeyDestroyed { generation: 1, .. })
    ));
    assert!(
        opened
            .open_live_keys(&data_key)
            .expect("live keys")
            .is_empty()
    );
    assert!(opened.verify().is_ok());
}

#[test]
fn confirmation_marks_a_pre_active_generation_and_is_logged() {
    let vault = TestVault::new();
    vault.add(&[mac(1)], InitialState::Active);
    vault.add(&[mac(1)], InitialState::PreActive);
    let (mut writer, data_key) = vault.unlocked_writer();
    let confirm = |generation: u32, evidence: &str| Confirmation {
        mac: mac(1),
        generation,
        evidence: evidence.to_owned(),
    };
    let evidence = "upload 0004f2000001-phone.cfg";
    writer
        .confirm(&data_key, &[confirm(2, evidence)])
        .expect("confirm");

    let generation = writer
        .vault()
        .record(&mac(1))
        .expect("r")
        .generation(2)
        .expect("g2");
    let confirmed = generation.confirmed().expect("confirmed");
    assert_eq!(confirmed.evidence, evidence);
    assert!(confirmed.at >= generation.created());
    assert!(matches!(
        writer.confirm(&data_key, &[confirm(2, "operator")]),
        Err(Error::AlreadyConfirmed { generation: 2, .. })
    ));
    assert!(matches!(
        writer.confirm(&data_key, &[confirm(1, "operator")]),
        Err(Error::NotPreActive {
            state: KeyState::Active,
            ..
        })
    ));
    for bad in ["", "  ", "line\nbreak", &"x".repeat(257)] {
        assert!(matches!(
            writer.confirm(&data_key, &[confirm(2, bad)]),
            Err(Error::InvalidEvidence { .. })
        ));
    }
    let events = writer.vault().events().expect("events");
    let logged = events.iter().find_map(|e| match &e.kind {
        EventKind::Confirmed { key, evidence } => Some((key.generation, evidence.clone())),
        _ => None,
    });
    assert_eq!(logged, Some((2, evidence.to_owned())));
}

#[test]
fn a_key_desc_added_after_a_lookup_is_found_by_the_same_writer() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    let g1 = writer
        .add_keys(&data_key, &[mac(1)], InitialState::Active)
        .expect("g1");
    assert!(writer.vault().find_key_desc(g1[0].key.key_desc()).is_some());
    let g2 = writer
        .add_keys(&data_key, &[mac(1)], InitialState::PreActive)
        .expect("g2");
    let (record, generation) = writer
        .vault()
        .find_key_desc(g2[0].key.key_desc())
        .expect("the index made before g2 was dropped with the change");
    assert_eq!((record.mac(), generation.number()), (mac(1), 2));
}

#[test]
fn keys_are_found_by_mac_generation_and_key_desc() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    let g1 = writer
        .add_keys(&data_key, &macs(2), InitialState::Active)
        .expect("g1");
    let g2 = writer
        .add_keys(&data_key, &[mac(2)], InitialState::PreActive)
        .expect("g2");
    drop(writer);

    let opened = Vault::open(&vault.dir).expect("open");
    let data_key = opened.unlock(&vault.identities()).expect("unlock");
    let active = opened.open_key(&data_key, &mac(2), None).expect("active");
    assert_eq!(active.key, g1[1].key);
    let pre_active = opened.open_key(&data_key, &mac(2), Some(2)).expect("g2");
    assert_eq!(pre_active.key, g2[0].key);
    let by_desc = opened
        .open_key_by_desc(&data_key, g2[0].key.key_desc())
        .expect("by KeyDesc");
    assert_eq!((by_desc.mac, by_desc.generation), (mac(2), 2));
    assert_eq!(by_desc.key, g2[0].key);
    let (record, generation) = opened
        .find_key_desc(g1[0].key.key_desc())
        .expect("metadata lookup");
    assert_eq!((record.mac(), generation.number()), (mac(1), 1));

    let all = opened.open_live_keys(&data_key).expect("all");
    assert_eq!(all.len(), 3);
    let unknown = KeyDesc::new("nobody-g1").expect("desc");
    assert!(matches!(
        opened.open_key_by_desc(&data_key, &unknown),
        Err(Error::UnknownKeyDesc { .. })
    ));
    assert!(matches!(
        opened.open_key(&data_key, &mac(9), None),
        Err(Error::UnknownMac { .. })
    ));
    assert!(matches!(
        opened.open_key(&data_key, &mac(1), Some(2)),
        Err(Error::UnknownGeneration { .. })
    ));
}

#[test]
fn removing_a_recipient_rotates_the_data_key_and_reseals_every_key() {
    let vault = TestVault::new();
    let (backup_identity, backup_recipient) = age_keygen(vault.tmp.path(), "backup.key");
    let (mut writer, data_key) = vault.unlocked_writer();
    let added = writer
        .add_keys(&data_key, &macs(20), InitialState::Active)
        .expect("add");
    let backup = Recipient::parse("backup", &backup_recipient).expect("recipient");
    writer
        .add_recipient(&data_key, backup.clone())
        .expect("add recipient");
    assert!(matches!(
        writer.add_recipient(&data_key, backup),
        Err(Error::DuplicateRecipient { .. })
    ));
    let backup_key = writer
        .vault()
        .unlock(&identities(&backup_identity))
        .expect("the new recipient can unlock");
    assert_eq!(
        backup_key.check(),
        data_key.check(),
        "adding does not rotate"
    );

    let bucket = common::bucket_file(&mac(1));
    let sealed_before = std::fs::read_to_string(vault.file(&bucket)).expect("bucket");
    let new_key = writer
        .remove_recipient(&data_key, "ops")
        .expect("remove recipient");
    assert_ne!(new_key.check(), data_key.check());
    assert_ne!(
        std::fs::read_to_string(vault.file(&bucket)).expect("bucket"),
        sealed_before
    );
    assert!(matches!(
        writer.vault().open_live_keys(&data_key),
        Err(Error::StaleDataKey { .. })
    ));
    assert!(matches!(
        writer.remove_recipient(&new_key, "backup"),
        Err(Error::LastRecipient { .. })
    ));
    let unknown = writer
        .remove_recipient(&new_key, "nobody")
        .expect_err("unknown label");
    assert!(unknown.to_string().contains("backup"), "{unknown}");
    drop(writer);

    let opened = Vault::open(&vault.dir).expect("open");
    let refused = opened
        .unlock(&vault.identities())
        .expect_err("removed recipient");
    assert!(
        matches!(&refused, Error::NoMatchingIdentity { recipients, .. } if recipients == &["backup"])
    );
    let new_key = opened
        .unlock(&identities(&backup_identity))
        .expect("backup unlocks");
    let keys = opened
        .open_live_keys(&new_key)
        .expect("every key re-sealed");
    let before: Vec<_> = added.iter().map(|k| k.key.expose()).collect();
    let after: Vec<_> = keys.iter().map(|k| k.key.expose()).collect();
    assert_eq!(before, after, "the phones' keys themselves do not change");
    opened.verify().expect("verifies after rotation");
}

#[test]
fn creating_needs_an_empty_directory_and_distinct_recipients() {
    let vault = TestVault::new();
    let ops = Recipient::parse("ops", &vault.recipient).expect("r");
    let again = VaultWriter::create(&vault.dir, VaultSettings::new(vec![ops.clone()]));
    assert!(matches!(again, Err(Error::DirectoryNotEmpty { .. })));
    let twice = VaultWriter::create(
        &vault.tmp.path().join("other"),
        VaultSettings::new(vec![ops.clone(), ops.clone()]),
    );
    assert!(matches!(twice, Err(Error::DuplicateRecipient { .. })));
    let none = VaultWriter::create(&vault.tmp.path().join("none"), VaultSettings::new(vec![]));
    assert!(matches!(none, Err(Error::NoRecipients)));
    // An existing empty directory is fine, and becomes private.
    let empty = vault.tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    VaultWriter::create(&empty, VaultSettings::new(vec![ops])).expect("create in empty dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&empty)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}

#[test]
fn opening_a_directory_that_is_no_vault_leaves_it_untouched() {
    let tmp = tempfile::tempdir().expect("tmp");
    assert!(matches!(
        Vault::open(tmp.path()),
        Err(Error::NotAVault { .. })
    ));
    assert!(matches!(
        VaultWriter::open(tmp.path()),
        Err(Error::NotAVault { .. })
    ));
    assert_eq!(std::fs::read_dir(tmp.path()).expect("list").count(), 0);
}

#[cfg(unix)]
#[test]
fn every_vault_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .add_keys(&data_key, &macs(3), InitialState::Active)
        .expect("add");
    let exported = vault.tmp.path().join("exported");
    writer
        .vault()
        .export_keys(&data_key, &exported, writer.vault().recipients())
        .expect("export");
    drop(writer);
    let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    let mut checked = BTreeSet::new();
    for dir in [vault.dir.clone(), vault.file("keys"), exported] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).expect("list") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                checked.insert(
                    path.file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    for name in ["vault.toml", "data-key.age", "events.log", "vault.lock"] {
        assert!(checked.contains(name), "{name} checked");
    }
}

#[test]
fn debug_and_display_never_show_a_key() {
    let vault = TestVault::new();
    let (mut writer, data_key) = vault.unlocked_writer();
    let added = writer
        .add_keys(&data_key, &macs(2), InitialState::Active)
        .expect("add");
    let shown = format!("{added:?} {data_key:?} {writer:?} {}", added[0].key);
    for key in &added {
        let hex = key.key.key().expose_hex();
        assert!(!shown.contains(hex.as_str()), "key hex in {shown}");
    }
    assert!(shown.contains(&data_key.check()));
}

#[test]
fn prepared_keys_enter_the_vault_only_when_committed() {
    let v = TestVault::new();
    let (mut writer, data_key) = v.unlocked_writer();
    let log = std::fs::read_to_string(v.file("events.log")).expect("log");
    let prepared = writer
        .prepare_keys(&data_key, &macs(2), InitialState::Active)
        .expect("prepare");
    assert_eq!(prepared.keys().len(), 2);
    assert!(
        !format!("{prepared:?}").contains("Key="),
        "Debug shows no key"
    );
    drop(prepared);
    assert_eq!(
        std::fs::read_to_string(v.file("events.log")).expect("log"),
        log,
        "dropped: nothing written"
    );
    assert_eq!(writer.vault().records().count(), 0);

    let prepared = writer
        .prepare_keys(&data_key, &macs(2), InitialState::Active)
        .expect("prepare");
    let keys = prepared.keys().to_vec();
    let committed = writer.commit_keys(&data_key, prepared).expect("commit");
    assert_eq!(committed.len(), 2);
    let opened = writer
        .vault()
        .open_key(&data_key, &keys[0].mac, None)
        .expect("the committed key opens");
    assert_eq!(
        opened.key, keys[0].key,
        "the key used before the commit is the one stored"
    );
}

#[test]
fn prepared_keys_are_refused_if_the_vault_changed_before_the_commit() {
    let v = TestVault::new();
    let (mut writer, data_key) = v.unlocked_writer();
    let prepared = writer
        .prepare_keys(&data_key, &[mac(1)], InitialState::Active)
        .expect("prepare");
    writer
        .add_keys(&data_key, &[mac(2)], InitialState::Active)
        .expect("another change");
    let error = writer.commit_keys(&data_key, prepared).expect_err("stale");
    assert!(
        matches!(error, Error::ChangedSincePrepared { .. }),
        "{error:?}"
    );
    assert!(writer.vault().record(&mac(1)).is_none());
}

#[test]
fn a_custodian_acknowledges_only_with_their_own_identity() {
    let vault = TestVault::new();
    let (backup_identity, backup) = common::age_keygen(vault.tmp.path(), "backup.key");
    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .add_recipient(
            &data_key,
            polyseal_vault::Recipient::parse("backup", &backup).expect("recipient"),
        )
        .expect("add backup");
    writer
        .acknowledge(&data_key, "ops", &vault.identities())
        .expect("ops acknowledges with the ops identity");
    // The ops identity opens the vault, but is not backup's: it cannot speak for backup.
    let error = writer
        .acknowledge(&data_key, "backup", &vault.identities())
        .expect_err("not backup's identity");
    assert!(
        matches!(&error, Error::NotTheCustodian { label, .. } if label == "backup"),
        "{error:?}"
    );
    writer
        .acknowledge(&data_key, "backup", &common::identities(&backup_identity))
        .expect("backup acknowledges with its own");
    assert!(matches!(
        writer.acknowledge(&data_key, "nobody", &vault.identities()),
        Err(Error::UnknownRecipient { .. })
    ));
    let events = writer.vault().events().expect("events");
    let acknowledged: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.kind {
            polyseal_vault::EventKind::Acknowledged { label, .. } => Some(label.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(acknowledged, ["ops", "backup"]);
    writer.vault().verify().expect("the log replays");
}
