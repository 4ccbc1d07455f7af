//! k-of-n custody through the public API: a vault whose data key is split among its
//! recipients opens only with enough of their identities, and every change of custodians keeps
//! the data key and the phone keys (docs/VAULT.md, "Threshold").

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use polyseal_vault::{
    Error, Identities, IdentitySource, InitialState, NoPrompt, Recipient, Vault, VaultSettings,
    VaultWriter,
};
use tempfile::TempDir;

use common::{age_keygen, macs};

/// A 2-of-3 vault of alice, bob and carol, with 3 phones; the identities in that order.
fn two_of_three(tmp: &TempDir) -> (PathBuf, Vec<PathBuf>) {
    let mut recipients = Vec::new();
    let mut ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (path, public) = age_keygen(tmp.path(), &format!("{name}.key"));
        recipients.push(Recipient::parse(name, &public).expect("recipient"));
        ids.push(path);
    }
    let dir = tmp.path().join("vault");
    let mut settings = VaultSettings::new(recipients);
    settings.threshold = 2;
    let mut writer = VaultWriter::create(&dir, settings).expect("create");
    let data_key = writer
        .vault()
        .unlock(&together(&ids, &[0, 1]))
        .expect("two of three open it");
    writer
        .add_keys(&data_key, &macs(3), InitialState::Active)
        .expect("add");
    (dir, ids)
}

/// The identities of the custodians at `which`, as one set (as `-i A -i B` gives).
fn together(ids: &[PathBuf], which: &[usize]) -> Identities {
    let files = which.iter().map(|&i| ids[i].clone()).collect();
    Identities::load(&IdentitySource::Files(files), Arc::new(NoPrompt), None).expect("load")
}

#[test]
fn any_two_of_three_custodians_open_the_vault_and_one_learns_who_else_can() {
    let tmp = TempDir::new().expect("tmp");
    let (dir, ids) = two_of_three(&tmp);
    let vault = Vault::open(&dir).expect("open");
    assert_eq!(vault.threshold(), 2);
    let mut opened = Vec::new();
    for pair in [[0, 1], [1, 2], [0, 2]] {
        let data_key = vault
            .unlock(&together(&ids, &pair))
            .expect("a pair opens it");
        let keys = vault.open_live_keys(&data_key).expect("keys");
        opened.push(
            keys.iter()
                .map(|k| k.key.expose().to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        opened.windows(2).all(|w| w[0] == w[1]),
        "every pair opens the same keys"
    );
    match vault.unlock(&together(&ids, &[1])) {
        Err(Error::ThresholdNotMet {
            needed,
            opened,
            could_give,
            ..
        }) => {
            assert_eq!(needed, 2);
            assert_eq!(opened, ["bob"]);
            assert_eq!(could_give, ["alice", "carol"]);
        }
        other => panic!("one custodian alone: {other:?}"),
    }
}

#[test]
fn a_change_that_takes_away_a_power_to_open_replaces_the_data_key_and_others_keep_it() {
    let tmp = TempDir::new().expect("tmp");
    let (dir, ids) = two_of_three(&tmp);
    let bucket_bytes = |dir: &std::path::Path| {
        let mut all: Vec<_> = std::fs::read_dir(dir.join("keys"))
            .expect("keys")
            .flatten()
            .map(|e| std::fs::read(e.path()).expect("bucket"))
            .collect();
        all.sort();
        all
    };
    let before = bucket_bytes(&dir);
    let mut writer = VaultWriter::open(&dir).expect("writer");
    let data_key = writer
        .vault()
        .unlock(&together(&ids, &[0, 2]))
        .expect("open");
    let check = data_key.check();
    assert!(matches!(
        writer.set_threshold(&data_key, 4),
        Err(Error::InvalidThreshold {
            threshold: 4,
            recipients: 3,
            ..
        })
    ));
    assert!(
        !writer.check_threshold(2).expect("valid"),
        "2 is the threshold already"
    );
    // Lowering gives no one a power they lacked to take: the same key, split anew.
    assert!(
        writer
            .set_threshold(&data_key, 1)
            .expect("1 of 3")
            .is_none()
    );
    assert_eq!(bucket_bytes(&dir), before, "no record re-sealed");
    // Raising takes power from any one custodian, who held the whole key a moment ago.
    let raised = writer
        .set_threshold(&data_key, 3)
        .expect("3 of 3")
        .expect("a new data key");
    assert_ne!(raised.check(), check);
    assert_ne!(bucket_bytes(&dir), before, "every record re-sealed");
    assert!(matches!(
        writer.check_removal("carol"),
        Err(Error::InvalidThreshold { .. })
    ));
    assert!(writer.set_threshold(&raised, 2).expect("2 of 3").is_none());
    // Removing carol takes her share's power: a new key again.
    let after_removal = writer.remove_recipient(&raised, "carol").expect("remove");
    assert_ne!(after_removal.check(), raised.check());
    drop(writer);
    let vault = Vault::open(&dir).expect("open");
    assert!(matches!(
        vault.unlock(&together(&ids, &[0, 2])),
        Err(Error::ThresholdNotMet { .. })
    ));
    let reopened = vault
        .unlock(&together(&ids, &[0, 1]))
        .expect("alice and bob");
    assert_eq!(reopened.check(), after_removal.check());
    vault.verify().expect("the log agrees with vault.toml");
}

#[test]
fn a_threshold_the_recipients_cannot_meet_creates_no_vault() {
    let tmp = TempDir::new().expect("tmp");
    let (_, public) = age_keygen(tmp.path(), "ops.key");
    let dir = tmp.path().join("vault");
    let mut settings = VaultSettings::new(vec![Recipient::parse("ops", &public).expect("r")]);
    settings.threshold = 2;
    assert!(matches!(
        VaultWriter::create(&dir, settings),
        Err(Error::InvalidThreshold {
            threshold: 2,
            recipients: 1,
            ..
        })
    ));
    assert!(!dir.exists(), "nothing written");
}
