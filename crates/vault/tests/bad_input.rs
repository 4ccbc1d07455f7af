//! Each kind of damaged vault, wrong identity or contention gives its own clear error, naming
//! the file or MAC at fault, in the right class for the front end's exit code.

mod common;

use std::fs;
use std::time::Duration;

use common::{TestVault, age_keygen, bucket_file, identities, mac, macs};
use polyseal_vault::{
    Error, ErrorKind, InitialState, KeyState, Recipient, StateChange, Vault, VaultSettings,
    VaultWriter,
};

/// A vault holding active keys for MACs 1..=n.
fn vault_with_keys(n: u32) -> TestVault {
    let vault = TestVault::new();
    vault.add(&macs(n), InitialState::Active);
    vault
}

fn edit(vault: &TestVault, relative: &str, from: &str, to: &str) {
    let path = vault.file(relative);
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{relative} holds {from:?}");
    fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

/// The value of the first `"name":"…"` in a vault file.
fn field(vault: &TestVault, relative: &str, name: &str) -> String {
    let text = fs::read_to_string(vault.file(relative)).expect("read");
    let start = text.find(&format!("\"{name}\":\"")).expect("field") + name.len() + 4;
    let len = text[start..].find('"').expect("closing quote");
    text[start..start + len].to_owned()
}

/// The data key, unlocked before a test edits the vault: the edit is refused at every later
/// unlock (the head no longer fits), and a test of the layers below authentication (the sealed
/// key's associated data, the fingerprint) needs the key all the same.
fn unlocked_before_the_edit(vault: &TestVault) -> polyseal_vault::DataKey {
    Vault::open(&vault.dir)
        .expect("open")
        .unlock(&vault.identities())
        .expect("unlock")
}

/// Unlocking `opened` is refused, naming `file` as not what polyseal wrote.
fn assert_not_authentic(opened: &Vault, vault: &TestVault, file: &str) {
    let error = opened
        .unlock(&vault.identities())
        .expect_err("an edited vault does not unlock");
    assert!(matches!(error, Error::NotAuthentic { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Integrity);
    assert!(error.to_string().contains(file), "{error}");
}

fn open_error(vault: &TestVault) -> Error {
    Vault::open(&vault.dir).expect_err("the damaged vault is refused")
}

#[test]
fn corrupt_record_is_refused_naming_the_file() {
    let vault = vault_with_keys(1);
    let bucket = bucket_file(&mac(1));
    fs::write(vault.file(&bucket), "format = 1\n[[phone]]\nmac = 12\n").expect("write");
    let error = open_error(&vault);
    assert!(matches!(error, Error::CorruptFile { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Integrity);
    assert!(error.to_string().contains(&bucket), "{error}");
}

#[test]
fn unknown_format_version_is_refused() {
    let vault = vault_with_keys(1);
    edit(&vault, "vault.toml", "format = 2", "format = 3");
    let error = open_error(&vault);
    assert!(
        matches!(
            error,
            Error::UnsupportedFormat {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Vault);
    assert!(error.to_string().contains("vault.toml"), "{error}");

    edit(&vault, "vault.toml", "format = 3", "format = 2");
    edit(
        &vault,
        &bucket_file(&mac(1)),
        "\"format\":1",
        "\"format\":7",
    );
    assert!(matches!(
        open_error(&vault),
        Error::UnsupportedFormat { found: 7, .. }
    ));
}

#[test]
fn missing_data_key_is_refused_but_the_inventory_still_lists() {
    let vault = vault_with_keys(2);
    fs::remove_file(vault.file("data-key.age")).expect("remove");
    let opened = Vault::open(&vault.dir).expect("metadata needs no data key");
    assert_eq!(opened.records().len(), 2);
    let error = opened.unlock(&vault.identities()).expect_err("no data key");
    assert!(matches!(error, Error::MissingDataKey { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Integrity);
    assert!(error.to_string().contains("data-key.age"), "{error}");
}

#[test]
fn bucket_file_renamed_to_another_bucket_is_refused() {
    let vault = vault_with_keys(1);
    let from = bucket_file(&mac(1));
    let to = bucket_file(&mac(2));
    fs::rename(vault.file(&from), vault.file(&to)).expect("rename");
    let error = open_error(&vault);
    assert!(
        matches!(error, Error::MisplacedRecord { mac: m, .. } if m == mac(1)),
        "{error:?}"
    );
    assert!(error.to_string().contains(&to), "{error}");
}

#[test]
fn record_moved_to_another_mac_does_not_open_and_fails_verify() {
    let vault = vault_with_keys(1);
    let data_key = unlocked_before_the_edit(&vault);
    // MAC ...000001 and ...000101 share bucket 01: the record now claims the other MAC.
    let (real, claimed) = (mac(1), mac(0x101));
    edit(
        &vault,
        &bucket_file(&real),
        &format!("\"mac\":\"{real}\""),
        &format!("\"mac\":\"{claimed}\""),
    );
    let opened = Vault::open(&vault.dir).expect("metadata parses");
    assert_not_authentic(&opened, &vault, &bucket_file(&real));
    let error = opened
        .open_key(&data_key, &claimed, None)
        .expect_err("AAD binds the MAC");
    assert!(matches!(error, Error::SealBroken { mac: m, generation: 1, .. } if m == claimed));
    assert_eq!(error.kind(), ErrorKind::Integrity);
    let failed = opened.verify().expect_err("log disagrees");
    let text = failed.to_string();
    assert!(
        text.contains(&real.to_string()) && text.contains(&claimed.to_string()),
        "{text}"
    );
}

#[test]
fn edited_sealed_key_or_key_desc_does_not_open() {
    let vault = vault_with_keys(1);
    let data_key = unlocked_before_the_edit(&vault);
    let bucket = bucket_file(&mac(1));
    let sealed = field(&vault, &bucket, "sealed");
    let flipped = format!(
        "{}{}",
        if sealed.starts_with('0') { '1' } else { '0' },
        &sealed[1..]
    );
    edit(&vault, &bucket, &sealed, &flipped);
    let opened = Vault::open(&vault.dir).expect("open");
    assert_not_authentic(&opened, &vault, &bucket);
    assert!(matches!(
        opened.open_key(&data_key, &mac(1), None),
        Err(Error::SealBroken { .. })
    ));
    drop(opened);

    let vault = vault_with_keys(1);
    let data_key = unlocked_before_the_edit(&vault);
    edit(&vault, &bucket, "-g1\"", "-g9\"");
    let opened = Vault::open(&vault.dir).expect("open");
    assert_not_authentic(&opened, &vault, &bucket);
    assert!(matches!(
        opened.open_live_keys(&data_key),
        Err(Error::SealBroken { .. })
    ));
}

#[test]
fn edited_fingerprint_is_caught_when_the_key_opens() {
    let vault = vault_with_keys(1);
    let data_key = unlocked_before_the_edit(&vault);
    let bucket = bucket_file(&mac(1));
    let fingerprint = field(&vault, &bucket, "fingerprint");
    edit(&vault, &bucket, &fingerprint, "sha256:0000000000000000");
    let opened = Vault::open(&vault.dir).expect("open");
    assert_not_authentic(&opened, &vault, &bucket);
    let error = opened
        .open_key(&data_key, &mac(1), None)
        .expect_err("mismatch");
    assert!(
        matches!(error, Error::FingerprintMismatch { .. }),
        "{error:?}"
    );
    assert!(opened.verify().is_err());
}

#[test]
fn edited_state_fails_verify_as_a_record_edit() {
    let vault = vault_with_keys(2);
    let bucket = bucket_file(&mac(2));
    // Pretend generation 1 was deactivated: the state and its timestamp, consistently.
    let activated = field(&vault, &bucket, "activated");
    edit(
        &vault,
        &bucket,
        "\"state\":\"active\"",
        "\"state\":\"deactivated\"",
    );
    edit(
        &vault,
        &bucket,
        &format!("\"activated\":\"{activated}\""),
        &format!("\"activated\":\"{activated}\",\"deactivated\":\"{activated}\""),
    );
    let opened = Vault::open(&vault.dir).expect("the record is well-formed");
    let error = opened.verify().expect_err("the log disagrees");
    assert_eq!(error.kind(), ErrorKind::Integrity);
    let Error::VerifyFailed { findings, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains(&mac(2).to_string()), "{findings:?}");
    assert!(findings[0].contains("record edited"), "{findings:?}");
}

#[test]
fn identity_that_matches_no_recipient_lists_the_vault_recipients() {
    let vault = vault_with_keys(1);
    let (stranger, _) = age_keygen(vault.tmp.path(), "stranger.key");
    let opened = Vault::open(&vault.dir).expect("open");
    let error = opened
        .unlock(&identities(&stranger))
        .expect_err("not a recipient");
    assert!(
        matches!(error, Error::NoMatchingIdentity { .. }),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Input);
    let text = error.to_string();
    assert!(
        text.contains("ops") && text.contains("stranger.key"),
        "{text}"
    );
}

#[test]
fn data_key_file_swapped_for_another_vaults_is_refused() {
    let vault = vault_with_keys(1);
    let other_dir = vault.tmp.path().join("other");
    let ops = Recipient::parse("ops", &vault.recipient).expect("recipient");
    VaultWriter::create(&other_dir, VaultSettings::new(vec![ops])).expect("other vault");
    fs::copy(other_dir.join("data-key.age"), vault.file("data-key.age")).expect("swap");
    let opened = Vault::open(&vault.dir).expect("open");
    let error = opened
        .unlock(&vault.identities())
        .expect_err("wrong data key");
    assert!(matches!(error, Error::DataKeyMismatch { .. }), "{error:?}");
}

#[test]
fn second_writer_gets_an_error_naming_the_lock_file_and_holder_pid() {
    let vault = vault_with_keys(1);
    let writer = vault.writer();
    let error = VaultWriter::open_with_wait(&vault.dir, Duration::ZERO).expect_err("locked");
    let pid = std::process::id();
    assert!(
        matches!(error, Error::Locked { holder: Some(p), .. } if p == pid),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Vault);
    let text = error.to_string();
    assert!(
        text.contains("vault.lock") && text.contains(&pid.to_string()),
        "{text}"
    );

    let reader = Vault::open_with_wait(&vault.dir, Duration::from_millis(50));
    assert!(matches!(
        reader,
        Err(Error::Locked {
            holder: Some(_),
            ..
        })
    ));
    drop(writer);
    let reader = Vault::open(&vault.dir).expect("free again");
    // Writers wait for readers (briefly) rather than fail at once.
    let blocked = VaultWriter::open_with_wait(&vault.dir, Duration::from_millis(50));
    assert!(
        matches!(blocked, Err(Error::Locked { holder: None, .. })),
        "{blocked:?}"
    );
    drop(reader);
    let (mut writer, data_key) = vault.unlocked_writer();
    writer
        .set_states(
            &data_key,
            &[StateChange {
                mac: mac(1),
                generation: 1,
                to: KeyState::Deactivated,
            }],
        )
        .expect("writes after the reader left");
}

#[test]
fn deleting_vault_lock_while_a_writer_holds_it_lets_no_second_writer_in() {
    let vault = vault_with_keys(1);
    let _writer = vault.writer();
    fs::remove_file(vault.file("vault.lock")).expect("delete the lock file");
    let second = VaultWriter::open_with_wait(&vault.dir, Duration::ZERO);
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
    let reader = Vault::open_with_wait(&vault.dir, Duration::ZERO);
    assert!(matches!(reader, Err(Error::Locked { .. })), "{reader:?}");
}

#[test]
fn a_vault_lock_that_is_a_symbolic_link_is_refused_not_followed() {
    let vault = vault_with_keys(1);
    let victim = vault.tmp.path().join("victim.txt");
    fs::write(&victim, "not polyseal's").expect("victim");
    fs::remove_file(vault.file("vault.lock")).expect("remove");
    std::os::unix::fs::symlink(&victim, vault.file("vault.lock")).expect("symlink");
    let error = VaultWriter::open(&vault.dir).expect_err("a symbolic link is refused");
    assert!(error.to_string().contains("vault.lock"), "{error}");
    assert_eq!(
        fs::read_to_string(&victim).expect("victim"),
        "not polyseal's",
        "the link's target is untouched"
    );
}

#[test]
fn lock_wait_waits_for_a_writer_too() {
    let vault = vault_with_keys(1);
    let writer = vault.writer();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(writer);
    });
    let second = VaultWriter::open_with_wait(&vault.dir, Duration::from_secs(10));
    assert!(second.is_ok(), "{second:?}");
    release.join().expect("thread");
}

#[test]
fn after_a_writer_is_killed_the_error_says_its_process_has_ended() {
    let vault = vault_with_keys(1);
    // A writer that died without clearing its pid: a process that has ended.
    let mut child = std::process::Command::new("true").spawn().expect("true");
    let dead = child.id();
    child.wait().expect("wait");
    fs::write(vault.file("vault.lock"), format!("{dead}\n")).expect("pid");
    let _reader = Vault::open(&vault.dir).expect("a reader holds the lock");
    let error = VaultWriter::open_with_wait(&vault.dir, Duration::ZERO).expect_err("locked");
    assert!(
        matches!(error, Error::Locked { holder: None, ended: Some(p), .. } if p == dead),
        "{error:?}"
    );
    assert!(error.to_string().contains("has ended"), "{error}");
}

#[test]
fn stray_file_in_keys_directory_is_refused() {
    let vault = vault_with_keys(1);
    fs::write(vault.file("keys/0004f2000001.toml"), "").expect("write");
    let error = open_error(&vault);
    assert!(matches!(error, Error::CorruptFile { .. }), "{error:?}");
    assert!(error.to_string().contains("0004f2000001.toml"), "{error}");
}

#[test]
fn incomplete_journal_is_never_applied() {
    let vault = vault_with_keys(1);
    let journal = vault.file("journal");
    fs::write(&journal, "{\"header\":{\"format\":2,\"log_len\":0}}\n").expect("write");
    let error = VaultWriter::open(&vault.dir).expect_err("incomplete journal");
    assert!(
        matches!(&error, Error::CorruptFile { path, .. } if path == &journal),
        "{error:?}"
    );
    let reader_error = open_error(&vault);
    assert!(
        matches!(reader_error, Error::UnfinishedTransaction { .. }),
        "{reader_error:?}"
    );
    assert!(
        reader_error.to_string().contains("journal"),
        "{reader_error}"
    );
}

#[test]
fn journal_whose_lengths_or_counts_lie_is_never_applied() {
    let header = "{\"header\":{\"format\":2,\"log_len\":0}}\n";
    let cases = [
        (
            "contents shorter than their length",
            format!(
                "{header}{{\"file\":{{\"path\":\"vault.toml\",\"bytes\":10}}}}\nabc\n\
                 {{\"end\":{{\"appends\":0,\"files\":1}}}}\n"
            ),
        ),
        (
            "contents longer than their length",
            format!(
                "{header}{{\"file\":{{\"path\":\"vault.toml\",\"bytes\":2}}}}\nabc\n\
                 {{\"end\":{{\"appends\":0,\"files\":1}}}}\n"
            ),
        ),
        (
            "end line counting a file that is not there",
            format!("{header}{{\"end\":{{\"appends\":0,\"files\":1}}}}\n"),
        ),
        (
            "cut inside the contents",
            format!("{header}{{\"file\":{{\"path\":\"vault.toml\",\"bytes\":100}}}}\nabc"),
        ),
    ];
    for (what, text) in cases {
        let vault = vault_with_keys(1);
        let config = fs::read(vault.file("vault.toml")).expect("vault.toml");
        let journal = vault.file("journal");
        fs::write(&journal, text).expect("write");
        let error = VaultWriter::open(&vault.dir).expect_err(what);
        assert!(
            matches!(&error, Error::CorruptFile { path, .. } if path == &journal),
            "{what}: {error:?}"
        );
        assert_eq!(
            fs::read(vault.file("vault.toml")).expect("vault.toml"),
            config,
            "{what}: vault.toml was changed"
        );
    }
}

#[test]
fn journal_of_the_first_format_is_refused_by_its_version() {
    // Format 1 escaped contents into JSON strings; this build reads format 2 only.
    let vault = vault_with_keys(1);
    let journal = vault.file("journal");
    fs::write(
        &journal,
        "{\"header\":{\"format\":1,\"log_len\":0}}\n{\"end\":{\"events\":0,\"files\":0}}\n",
    )
    .expect("write");
    let error = VaultWriter::open(&vault.dir).expect_err("old journal");
    assert!(
        matches!(&error, Error::UnsupportedFormat { path, found: 1, supported: 2 } if path == &journal),
        "{error:?}"
    );
}

#[test]
fn a_planted_journal_never_writes_through_a_symlinked_events_log() {
    let vault = vault_with_keys(1);
    let victim = vault.tmp.path().join("victim.txt");
    fs::write(&victim, "precious\n").expect("victim");
    fs::remove_file(vault.file("events.log")).expect("remove the log");
    std::os::unix::fs::symlink(&victim, vault.file("events.log")).expect("symlink");
    let payload = "attacker line\n";
    fs::write(
        vault.file("journal"),
        format!(
            "{{\"header\":{{\"format\":2,\"log_len\":9}}}}\n{{\"append\":{{\"bytes\":{}}}}}\n{payload}\n\
             {{\"end\":{{\"appends\":1,\"files\":0}}}}\n",
            payload.len()
        ),
    )
    .expect("plant a journal");
    let error = Vault::open(&vault.dir).expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Vault, "{error}");
    assert!(error.to_string().contains("symbolic link"), "{error}");
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
}

#[test]
fn vault_files_that_are_devices_pipes_or_directories_are_refused_at_once() {
    let vault = vault_with_keys(1);
    fs::remove_file(vault.file("head.json")).expect("remove");
    std::os::unix::fs::symlink("/dev/zero", vault.file("head.json")).expect("symlink");
    let error = open_error(&vault);
    assert_eq!(error.kind(), ErrorKind::Integrity, "{error}");
    assert!(error.to_string().contains("head.json"), "{error}");
    fs::remove_file(vault.file("head.json")).expect("remove");
    let made = std::process::Command::new("mkfifo")
        .arg(vault.file("head.json"))
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    let error = open_error(&vault);
    assert!(error.to_string().contains("not a regular file"), "{error}");
    fs::create_dir(vault.file("keys/fe.jsonl")).expect("a directory named like a bucket");
    fs::remove_file(vault.file("head.json")).expect("remove");
    let error = open_error(&vault);
    assert_eq!(error.kind(), ErrorKind::Integrity, "{error}");
    assert!(error.to_string().contains("fe.jsonl"), "{error}");
}

#[test]
fn a_symlinked_keys_directory_is_refused_and_nothing_outside_is_removed() {
    let vault = vault_with_keys(1);
    let outside = vault.tmp.path().join("outside");
    fs::rename(vault.file("keys"), &outside).expect("move keys out");
    std::os::unix::fs::symlink(&outside, vault.file("keys")).expect("symlink");
    fs::write(outside.join("important.tmp"), "precious").expect("a file outside");
    let error = VaultWriter::open(&vault.dir).expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::Integrity, "{error}");
    assert!(error.to_string().contains("keys"), "{error}");
    assert!(
        outside.join("important.tmp").exists(),
        "nothing removed outside the vault"
    );
    assert!(matches!(open_error(&vault), Error::CorruptFile { .. }));
}

#[test]
fn hard_links_to_files_outside_the_vault_are_never_written_through() {
    let vault = vault_with_keys(1);
    let victim = vault.tmp.path().join("victim.txt");
    fs::write(&victim, "important\n").expect("victim");
    let _ = fs::remove_file(vault.file("vault.lock"));
    fs::hard_link(&victim, vault.file("vault.lock")).expect("hard link the lock file");
    let error = VaultWriter::open(&vault.dir).expect_err("refused");
    assert!(error.to_string().contains("vault.lock"), "{error}");
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "important\n");
    fs::remove_file(vault.file("vault.lock")).expect("unlink");

    // The log hard-linked outside, and a journal planted to append to it.
    fs::copy(vault.file("events.log"), &victim).expect("victim is a copy of the log");
    let before = fs::read(&victim).expect("victim");
    fs::remove_file(vault.file("events.log")).expect("remove");
    fs::hard_link(&victim, vault.file("events.log")).expect("hard link the log");
    fs::write(
        vault.file("journal"),
        format!(
            "{{\"header\":{{\"format\":2,\"log_len\":{}}}}}\n{{\"append\":{{\"bytes\":6}}}}\nPWNED\n\n\
             {{\"end\":{{\"appends\":1,\"files\":0}}}}\n",
            before.len()
        ),
    )
    .expect("plant a journal");
    assert!(Vault::open(&vault.dir).is_err());
    assert_eq!(
        fs::read(&victim).expect("victim"),
        before,
        "not written through"
    );
}

#[test]
fn a_pipe_at_vault_lock_does_not_hang_a_command_that_waits_for_the_lock() {
    let vault = vault_with_keys(1);
    let writer = vault.writer();
    fs::remove_file(vault.file("vault.lock")).expect("unlink the lock file");
    let made = std::process::Command::new("mkfifo")
        .arg(vault.file("vault.lock"))
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    let dir = vault.dir.clone();
    let (sent, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sent.send(VaultWriter::open_with_wait(&dir, Duration::ZERO).map(drop));
    });
    let result = received
        .recv_timeout(Duration::from_secs(10))
        .expect("the command ends instead of waiting on the pipe");
    assert!(matches!(result, Err(Error::Locked { .. })), "{result:?}");
    drop(writer);
}
