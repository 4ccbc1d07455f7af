//! The vault's authenticated state through the binary: the attacks of the hardening review
//! that need no key (a recipient injected, a compromised key edited back to active, the log
//! cut) are refused with exit 4 by every command that unlocks, before anything is sealed or
//! served; commands without an identity say they could not check; a vault made by the
//! release before (format 1) is refused with the one-line upgrade, which keeps every key.

use std::fs;

use crate::support::{PHONES, Workspace, assert_failure, copy_dir, repo_root};

/// A workspace whose vault has published the example tree, phone 3 then compromised.
fn compromised() -> Workspace {
    let ws = Workspace::with_vault();
    ws.publish();
    ws.run(&["keys", "state", PHONES[2], "compromised"]);
    ws
}

/// The bucket file of `mac`, relative to the workspace.
fn bucket(mac: &str) -> String {
    format!("vault/keys/{}.jsonl", &mac[10..])
}

#[test]
fn recipients_add_after_a_recipient_was_injected_into_vault_toml_seals_nothing_to_it() {
    let ws = compromised();
    let intruder = ws.keygen("intruder.txt");
    let public = String::from_utf8(
        std::process::Command::new("age-keygen")
            .arg("-y")
            .arg(&intruder)
            .output()
            .expect("age-keygen")
            .stdout,
    )
    .expect("text");
    let mut config = fs::read_to_string(ws.path("vault/vault.toml")).expect("vault.toml");
    config.push_str(&format!(
        "\n[[recipient]]\nlabel = \"intruder\"\npublic_key = \"{}\"\n",
        public.trim()
    ));
    fs::write(ws.path("vault/vault.toml"), config).expect("write");
    let data_key = fs::read(ws.path("vault/data-key.age")).expect("data-key.age");

    let backup = ws.keygen("backup.txt");
    let output = ws
        .polyseal()
        .args(["recipients", "add", "--label", "backup"])
        .arg(&backup)
        .output()
        .expect("run");
    assert_failure(&output, 4, "vault.toml is not as polyseal last wrote it");
    assert_eq!(
        fs::read(ws.path("vault/data-key.age")).expect("data-key.age"),
        data_key,
        "the data key was sealed to no one new"
    );
    // The intruder's identity opens nothing.
    let intruder = intruder.display().to_string();
    let reveal = ws.output(&["-i", &intruder, "keys", "show", PHONES[0], "--reveal"]);
    assert_eq!(reveal.status.code(), Some(3), "{reveal:?}");
}

#[test]
fn publish_refuses_a_compromised_key_edited_back_to_active() {
    let ws = compromised();
    let path = ws.path(&bucket(PHONES[2]));
    let text = fs::read_to_string(&path).expect("bucket");
    fs::write(
        &path,
        text.replace("\"state\":\"compromised\"", "\"state\":\"active\""),
    )
    .expect("write");
    let before = ws.files_under("out");
    let output = ws.try_publish();
    assert_failure(&output, 4, &format!("keys/{}.jsonl", &PHONES[2][10..]));
    assert_eq!(ws.files_under("out"), before, "nothing published");
}

#[test]
fn a_change_cut_from_the_log_and_the_records_is_refused_by_log_verify_with_the_identity() {
    let ws = Workspace::with_vault();
    ws.publish();
    let record = ws.path(&bucket(PHONES[0]));
    let saved = fs::read(&record).expect("the record before");
    ws.run(&["keys", "state", PHONES[0], "deactivated"]);
    // Undone by hand: the record restored, the log's last line cut. The chain and the records
    // agree, so without an identity verify passes, and says what it could not check.
    fs::write(&record, saved).expect("restore");
    let log = fs::read_to_string(ws.path("vault/events.log")).expect("log");
    let mut lines: Vec<&str> = log.lines().collect();
    lines.pop();
    fs::write(ws.path("vault/events.log"), lines.join("\n") + "\n").expect("write");
    let unchecked = ws.output_without_identity(&["log", "verify"]);
    assert!(unchecked.status.success(), "{unchecked:?}");
    assert!(
        String::from_utf8_lossy(&unchecked.stderr)
            .contains("not checked against its authenticated head"),
        "{unchecked:?}"
    );
    let checked = ws.output(&["log", "verify"]);
    assert_failure(&checked, 4, "events.log ends at event");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(
        stderr.contains(&format!("keys/{}.jsonl", &PHONES[0][10..])),
        "{stderr}"
    );
}

#[test]
fn commands_without_an_identity_say_that_they_could_not_check_the_vault() {
    let ws = compromised();
    for args in [
        &["keys", "list"][..],
        &["recipients", "list"],
        &["rotate", "status"],
        &["log", "show"],
        &["key-timing"],
        &["publish", "--src", "src", "--out", "out", "--dry-run"],
    ] {
        let output = ws.output_without_identity(args);
        assert!(output.status.success(), "{args:?}: {output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains("not checked against its authenticated head"),
            "{args:?}: {output:?}"
        );
    }
    let checked = ws.output(&["log", "verify"]);
    assert!(
        String::from_utf8_lossy(&checked.stderr)
            .contains("every file of the vault is as polyseal last wrote it"),
        "{checked:?}"
    );
}

#[test]
fn writing_commands_need_the_identity_to_authenticate_their_change() {
    let ws = compromised();
    for args in [
        &["key-timing", "next-boot"][..],
        &["keys", "state", PHONES[0], "deactivated"],
    ] {
        let output = ws.output_without_identity(args);
        assert_failure(&output, 3, "identity");
    }
}

/// The vault made by the release before authenticated state, copied into a workspace with
/// its identity as `old.key`.
fn format_1_workspace() -> (Workspace, std::path::PathBuf) {
    let ws = Workspace::new();
    let fixture = repo_root().join("crates/vault/tests/fixtures/vault-format-1");
    copy_dir(&fixture.join("vault"), &ws.path("vault"));
    let key = ws.path("old.key");
    fs::copy(fixture.join("ops.key"), &key).expect("copy the identity");
    let mut permissions = fs::metadata(&key).expect("key").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    fs::set_permissions(&key, permissions).expect("chmod");
    (ws, fixture)
}

#[test]
fn a_vault_from_the_release_before_is_refused_with_the_upgrade_command_that_keeps_every_key() {
    let (ws, fixture) = format_1_workspace();
    let old = ws.path("old.key").display().to_string();
    let refused = ws.output(&["-i", &old, "keys", "list"]);
    assert_failure(&refused, 5, "format 1");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let vault = ws.path("vault").display().to_string();
    assert!(
        stderr.contains(&format!(
            "hint: upgrade it, keeping every key: polyseal upgrade --vault {vault} --identity FILE"
        )),
        "{stderr}"
    );

    let upgraded = ws.output(&["-i", &old, "upgrade"]);
    assert!(upgraded.status.success(), "{upgraded:?}");
    let said = String::from_utf8_lossy(&upgraded.stderr);
    assert!(
        said.contains("from format 1 to 2: 6 live keys kept"),
        "{said}"
    );

    let expected = fs::read_to_string(fixture.join("keys.txt")).expect("keys.txt");
    let mut revealed = String::new();
    for line in expected.lines() {
        // Crypt=1;KeyDesc=<mac>-g<n>;Key=…;
        let key_desc = line
            .split(';')
            .nth(1)
            .and_then(|f| f.strip_prefix("KeyDesc="));
        let (mac, generation) = key_desc
            .and_then(|d| d.split_once("-g"))
            .expect("a KeyDesc");
        let shown = ws.output(&[
            "-i",
            &old,
            "keys",
            "show",
            mac,
            "--generation",
            generation,
            "--reveal",
        ]);
        assert!(shown.status.success(), "{shown:?}");
        revealed.push_str(&String::from_utf8_lossy(&shown.stdout));
    }
    assert_eq!(revealed, expected, "every key as the release revealed it");
}
