//! Every command on the real binary: what it does, and what it does with bad input — exit code,
//! a one-line message naming the input, and no partial output left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is the failure report.

use std::os::unix::fs::PermissionsExt;

use predicates::prelude::*;

use crate::support::{PHONES, Workspace, assert_failure};

#[test]
fn init_creates_a_vault_that_the_age_cli_recognises_and_refuses_a_second_time() {
    let ws = Workspace::with_vault();
    assert!(ws.path("vault/vault.toml").is_file());
    let again = ws
        .polyseal()
        .args(["init", "--recipient"])
        .arg(ws.path("identity.txt"))
        .output()
        .unwrap();
    assert_failure(&again, 5, "vault");
}

#[test]
fn init_rejects_a_bad_recipient_and_writes_nothing() {
    let ws = Workspace::new();
    let out = ws.output(&["init", "--recipient", "age1notakey"]);
    assert_failure(&out, 3, "age1notakey");
    assert!(!ws.path("vault/vault.toml").exists());
}

#[test]
fn publish_or_audit_of_a_tree_that_does_not_exist_names_it_as_bad_input() {
    let ws = Workspace::with_vault();
    let publish = ws.output(&["publish", "--src", "nosuch", "--out", "out"]);
    assert_failure(&publish, 3, "nosuch: no such directory");
    assert!(!ws.path("out").exists(), "nothing written");
    assert!(
        ws.output(&["keys", "list", "--format", "json"])
            .stdout
            .starts_with(b"[]")
    );
    let audit = ws.output(&["audit", "--tree", "nosuch"]);
    assert_failure(&audit, 3, "nosuch: no such directory");
}

#[test]
fn keys_add_list_show_and_state() {
    let ws = Workspace::with_vault();
    ws.polyseal()
        .args(["keys", "add", "00:04:F2:A1:00:01", "0004.f2a1.0002"])
        .assert()
        .success()
        .stderr(predicate::str::contains("made 2 active keys"));
    // A second add for the same phone makes nothing.
    ws.polyseal()
        .args(["keys", "add", "0004f2a10001"])
        .assert()
        .success()
        .stderr(predicate::str::contains("no keys made"));

    let list = ws
        .polyseal()
        .args(["keys", "list", "--format", "csv"])
        .env_remove("POLYSEAL_IDENTITY")
        .output()
        .unwrap();
    assert!(list.status.success(), "list needs no identity");
    let csv = String::from_utf8(list.stdout).unwrap();
    assert!(csv.starts_with("mac,gen,key_desc,state,"));
    assert!(csv.contains("0004f2a10001,1,0004f2a10001-g1,active,"));

    let hidden = ws.output(&["keys", "show", "0004f2a10001"]);
    assert_failure(&hidden, 3, "--reveal");
    assert!(hidden.stdout.is_empty());
    ws.polyseal()
        .args(["keys", "show", "0004f2a10001", "--reveal"])
        .assert()
        .success()
        .stdout(
            predicate::str::is_match("^Crypt=1;KeyDesc=0004f2a10001-g1;Key=[0-9a-f]{32};\n$")
                .unwrap(),
        );

    ws.run(&["keys", "state", "0004f2a10002", "compromised"]);
    let illegal = ws.output(&["keys", "state", "0004f2a10002", "active"]);
    assert_failure(&illegal, 3, "0004f2a10002");
}

#[test]
fn keys_add_from_a_phones_file_and_stdin() {
    let ws = Workspace::with_vault();
    std::fs::write(
        ws.path("phones.csv"),
        "mac,label\n0004f2a10001,Reception\n# spare\n0004f2a10002\n",
    )
    .unwrap();
    ws.run(&["keys", "add", "--from", "phones.csv"]);
    ws.polyseal()
        .args(["keys", "add", "--from", "-"])
        .write_stdin("64167fa10003\n")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "made 1 active key (0 phones already had one)",
        ));
}

#[test]
fn malformed_mac_is_named_with_exit_3() {
    let ws = Workspace::with_vault();
    for (args, bad) in [
        (vec!["keys", "add", "0004f2a1000"], "0004f2a1000"),
        (vec!["keys", "add", "000000000000"], "000000000000"),
        (
            vec!["keys", "show", "01:00:5e:00:00:01", "--reveal"],
            "010005e0000",
        ),
        (
            vec!["bootstrap", "zz04f2a10001", "--out", "boot"],
            "zz04f2a10001",
        ),
        (vec!["encrypt", "--mac", "0004f2", "src/site.cfg"], "0004f2"),
    ] {
        let out = ws.output(&args);
        let bad = if bad == "010005e0000" {
            "01005e000001"
        } else {
            bad
        };
        assert_failure(&out, 3, bad);
    }
    assert!(!ws.path("boot").exists());
}

#[test]
fn a_bad_line_in_a_phones_file_names_file_and_line_and_adds_nothing() {
    let ws = Workspace::with_vault();
    std::fs::write(ws.path("phones.txt"), "0004f2a10001\nnot-a-mac\n").unwrap();
    let out = ws.output(&["keys", "add", "--from", "phones.txt"]);
    assert_failure(&out, 3, "phones.txt");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(":2"),
        "names the line"
    );
    let list = ws.output(&["keys", "list", "--format", "csv"]);
    assert_eq!(
        String::from_utf8(list.stdout).unwrap().lines().count(),
        1,
        "nothing added"
    );
}

#[test]
fn missing_vault_is_exit_5_with_a_hint() {
    let ws = Workspace::new();
    for args in [
        vec!["keys", "list"],
        vec!["keys", "add", "0004f2a10001"],
        vec!["publish", "--src", "src", "--out", "out"],
    ] {
        let out = ws.output(&args);
        assert_failure(&out, 5, "vault");
        assert!(String::from_utf8_lossy(&out.stderr).contains("polyseal init"));
    }
    assert!(!ws.path("out").exists());
}

#[test]
fn wrong_identity_is_refused_naming_the_recipients_and_nothing_is_written() {
    let ws = Workspace::with_vault();
    ws.keygen("other.txt");
    let out = ws
        .polyseal()
        .env("POLYSEAL_IDENTITY", ws.path("other.txt"))
        .args(["publish", "--src", "src", "--out", "out"])
        .output()
        .unwrap();
    assert_failure(&out, 3, "admin");
    assert!(!ws.path("out").exists());
    let list = ws.output(&["keys", "list", "--format", "csv"]);
    assert_eq!(
        String::from_utf8(list.stdout).unwrap().lines().count(),
        1,
        "no key made"
    );

    let none = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .args(["keys", "add", "0004f2a10001"])
        .output()
        .unwrap();
    assert_failure(&none, 3, "identity");
}

#[test]
fn identity_text_in_the_environment_works() {
    let ws = Workspace::with_vault();
    let identity = std::fs::read_to_string(ws.path("identity.txt")).unwrap();
    ws.polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .env("POLYSEAL_IDENTITY_DATA", identity)
        .args(["keys", "add", "0004f2a10001"])
        .assert()
        .success();
}

#[test]
fn a_locked_vault_is_exit_5_naming_the_lock_file_and_holder() {
    let ws = Workspace::with_vault();
    let _writer = polyseal_vault::VaultWriter::open(&ws.path("vault")).expect("take the lock");
    let out = ws.output(&["keys", "add", "0004f2a10001"]);
    assert_failure(&out, 5, "vault.lock");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&std::process::id().to_string()));
}

#[test]
fn publish_encrypts_per_phone_files_writes_bootstrap_files_and_is_idempotent() {
    let ws = Workspace::with_vault();
    ws.polyseal()
        .args(["publish", "--src", "src", "--out", "out"])
        .assert()
        .success()
        .stderr(predicate::str::contains("3 phones, 3 keys made"));
    let files = ws.files_under("out");
    assert_eq!(files.len(), 8, "{files:?}");
    for mac in PHONES {
        let key_file = ws.path(&format!("out/{mac}-key.cfg"));
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "bootstrap file is owner-only");
        let sip = std::fs::read(ws.path(&format!("out/{mac}-sip.cfg"))).unwrap();
        assert!(sip.starts_with(format!("Crypt=1;KeyDesc={mac}-g1;Digest=").as_bytes()));
        let plain = ws.output(&["decrypt", &format!("out/{mac}-sip.cfg")]);
        assert_eq!(
            plain.stdout,
            std::fs::read(ws.path(&format!("src/{mac}-sip.cfg"))).unwrap()
        );
    }
    assert_eq!(
        std::fs::read(ws.path("out/site.cfg")).unwrap(),
        std::fs::read(ws.path("src/site.cfg")).unwrap(),
        "shared file copied as it is"
    );
    let before = std::fs::metadata(ws.path("out/0004f2a10001-sip.cfg"))
        .unwrap()
        .modified()
        .unwrap();
    ws.polyseal()
        .args(["publish", "--src", "src", "--out", "out"])
        .assert()
        .success()
        .stderr(predicate::str::contains("nothing changed"));
    let after = std::fs::metadata(ws.path("out/0004f2a10001-sip.cfg"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "second run rewrote nothing");
    assert!(
        ws.files_under(".")
            .iter()
            .all(|f| !f.contains(".polyseal-") || f == ".out.polyseal-manifest"),
        "no staging left"
    );
}

#[test]
fn publish_dry_run_writes_nothing_and_makes_no_key() {
    let ws = Workspace::with_vault();
    ws.polyseal()
        .args(["publish", "--src", "src", "--out", "out", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "0004f2a10001: new key g1, bootstrap file",
        ));
    assert!(!ws.path("out").exists());
    let list = ws.output(&["keys", "list", "--format", "csv"]);
    assert_eq!(String::from_utf8(list.stdout).unwrap().lines().count(), 1);
    // A phone whose only key was destroyed gets its next generation, named.
    ws.publish();
    ws.run(&["keys", "state", "0004f2a10002", "compromised"]);
    ws.polyseal()
        .args(["publish", "--src", "src", "--out", "out", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "0004f2a10002: new key g2, bootstrap file",
        ));
}

#[test]
fn publish_refuses_a_secret_in_a_shared_file_unless_allowed() {
    let ws = Workspace::with_vault();
    std::fs::write(
        ws.path("src/site.cfg"),
        "<polycomConfig>\n<reg reg.1.auth.password=\"shared-secret-123\"/>\n</polycomConfig>\n",
    )
    .unwrap();
    let out = ws.try_publish();
    assert_failure(&out, 3, "site.cfg");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("shared-secret-123"),
        "no secret printed"
    );
    assert!(!ws.path("out").exists());
    ws.run(&[
        "publish",
        "--src",
        "src",
        "--out",
        "out",
        "--allow-plaintext-secrets",
    ]);
}

#[test]
fn publish_refuses_malformed_xml_naming_file_line_and_column() {
    let ws = Workspace::with_vault();
    std::fs::write(
        ws.path("src/0004f2a10001-sip.cfg"),
        "<polycomConfig>\n<reg a=\"1\">\n</polycomConfig>\n",
    )
    .unwrap();
    let out = ws.try_publish();
    assert_failure(&out, 3, "0004f2a10001-sip.cfg:3");
    assert!(!ws.path("out").exists());
}

#[test]
fn publish_refuses_an_encrypted_master() {
    let ws = Workspace::with_vault();
    ws.run(&["keys", "add", "0004f2a10001"]);
    let encrypted = ws.output(&["encrypt", "--mac", "0004f2a10001", "src/000000000000.cfg"]);
    std::fs::write(ws.path("src/000000000000.cfg"), encrypted.stdout).unwrap();
    let out = ws.try_publish();
    assert_failure(&out, 3, "000000000000.cfg");
    assert!(!ws.path("out").exists());
}

#[test]
fn publish_into_an_unwritable_directory_fails_with_exit_6_and_leaves_nothing() {
    let ws = Workspace::with_vault();
    // /proc refuses new directories even to root, which ignores file modes (CI runs as root).
    let target = format!("/proc/polyseal-test-{}", std::process::id());
    let out = ws.output(&["publish", "--src", "src", "--out", &target]);
    assert_failure(&out, 6, "/proc/");
    assert!(!std::path::Path::new(&target).exists());
    let out = ws.output(&["bootstrap", "--all", "--out", &target]);
    assert_failure(&out, 6, "/proc/");
}

#[test]
fn publish_of_a_missing_source_tree_is_exit_6_or_3_naming_it() {
    let ws = Workspace::with_vault();
    let out = ws.output(&["publish", "--src", "nosuch", "--out", "out"]);
    let code = out.status.code().unwrap();
    assert!(code == 3 || code == 6, "{out:?}");
    assert_failure(&out, code, "nosuch");
    assert!(!ws.path("out").exists());
}

#[test]
fn corrupt_encrypted_file_is_exit_4_and_writes_no_output() {
    let ws = Workspace::with_vault();
    ws.publish();
    let mut file = std::fs::read(ws.path("out/0004f2a10001-sip.cfg")).unwrap();
    let last = file.len() - 20;
    file[last] ^= 0x40;
    std::fs::write(ws.path("corrupt.cfg"), &file).unwrap();
    let out = ws.output(&["decrypt", "corrupt.cfg", "-o", "plain.cfg"]);
    assert_failure(&out, 4, "corrupt.cfg");
    assert!(!ws.path("plain.cfg").exists(), "no partial output");

    file.truncate(last);
    std::fs::write(ws.path("short.cfg"), &file).unwrap();
    let out = ws.output(&["decrypt", "short.cfg"]);
    assert_failure(&out, 4, "short.cfg");
    assert!(out.stdout.is_empty());
}

#[test]
fn decrypt_finds_the_phone_from_the_keydesc_and_refuses_another_phones_mac() {
    let ws = Workspace::with_vault();
    ws.publish();
    ws.run(&["decrypt", "out/0004f2a10002-sip.cfg", "-o", "plain.cfg"]);
    let mode = std::fs::metadata(ws.path("plain.cfg"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "decrypted configuration is owner-only");
    let out = ws.output(&[
        "decrypt",
        "--mac",
        "0004f2a10001",
        "out/0004f2a10002-sip.cfg",
    ]);
    assert_failure(&out, 4, "0004f2a10001");
}

/// A file sealed under a key this vault does not hold (another vault's, another site's) cannot
/// be opened by any key of ours: an integrity failure, found before any identity is asked for.
#[test]
fn decrypt_of_a_keydesc_the_vault_does_not_hold_is_exit_4_without_an_identity() {
    let ws = Workspace::with_vault();
    ws.publish();
    // The same file, its header naming a phone this vault has never seen (same length, so
    // only the KeyDesc differs; the body stays byte for byte).
    let mut foreign = std::fs::read(ws.path("out/0004f2a10002-sip.cfg")).unwrap();
    let (ours, theirs) = (b"KeyDesc=0004f2a10002-g1;", b"KeyDesc=0004f2a1ffff-g1;");
    let at = foreign
        .windows(ours.len())
        .position(|w| w == ours)
        .expect("the header names the phone's KeyDesc");
    foreign[at..at + ours.len()].copy_from_slice(theirs);
    std::fs::write(ws.path("foreign.cfg"), &foreign).unwrap();
    let out = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .args(["decrypt", "foreign.cfg", "-o", "plain.cfg"])
        .output()
        .unwrap();
    assert_failure(&out, 4, "foreign.cfg");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0004f2a1ffff-g1"),
        "names the KeyDesc"
    );
    assert!(!ws.path("plain.cfg").exists());
}

#[test]
fn encrypt_for_an_unknown_phone_is_exit_3() {
    let ws = Workspace::with_vault();
    let out = ws.output(&[
        "encrypt",
        "--mac",
        "0004f2ffffff",
        "src/site.cfg",
        "-o",
        "x.cfg",
    ]);
    assert_failure(&out, 3, "0004f2ffffff");
    assert!(!ws.path("x.cfg").exists());
}

#[test]
fn encrypt_and_decrypt_round_trip_through_stdin_and_stdout() {
    let ws = Workspace::with_vault();
    ws.run(&["keys", "add", "0004f2a10001"]);
    let sealed = ws
        .polyseal()
        .args(["encrypt", "--mac", "0004f2a10001", "-"])
        .write_stdin("<polycomConfig/>\n")
        .output()
        .unwrap();
    assert!(sealed.status.success());
    ws.polyseal()
        .args(["decrypt", "-"])
        .write_stdin(sealed.stdout)
        .assert()
        .success()
        .stdout("<polycomConfig/>\n");
}

#[test]
fn inspect_needs_no_identity_and_reports_plaintext_and_bad_headers() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::write(ws.path("crypt2.cfg"), "Crypt=2;KeyDesc=x;Digest=00;\nxxxx").unwrap();
    let out = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .args([
            "inspect",
            "out/0004f2a10001-sip.cfg",
            "out/site.cfg",
            "crypt2.cfg",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            "out/0004f2a10001-sip.cfg: encrypted KeyDesc=0004f2a10001-g1 digest=SHA-256:"
        )
    );
    assert!(text.contains("phone=0004f2a10001 generation=1 state=active"));
    assert!(text.contains("out/site.cfg: plaintext"));
    assert!(text.contains("crypt2.cfg: error:") && text.contains("Crypt=2"));
}

#[test]
fn bootstrap_writes_owner_only_files_and_refuses_a_phone_without_a_key() {
    let ws = Workspace::with_vault();
    ws.run(&["keys", "add", "0004f2a10001"]);
    let out = ws.output(&["bootstrap", "0004f2a10001", "0004f2a10009", "--out", "boot"]);
    assert_failure(&out, 3, "0004f2a10009");
    assert!(
        !ws.path("boot").exists(),
        "nothing written when one phone is bad"
    );
    ws.run(&["bootstrap", "--all", "--out", "boot"]);
    let file = ws.path("boot/0004f2a10001-key.cfg");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(xml.contains("device.sec.configEncryption.key=\"Crypt=1;KeyDesc=0004f2a10001-g1;Key="));
}

#[test]
fn recipients_add_list_remove() {
    let ws = Workspace::with_vault();
    ws.publish();
    ws.keygen("second.txt");
    ws.polyseal()
        .args(["recipients", "add", "--label", "backup"])
        .arg(ws.path("second.txt"))
        .assert()
        .success();
    ws.polyseal()
        .args(["recipients", "list"])
        .env_remove("POLYSEAL_IDENTITY")
        .assert()
        .success()
        .stdout(predicate::str::contains("backup").and(predicate::str::contains("admin")));
    // The second identity opens the vault too; after removing the first, only it does.
    ws.polyseal()
        .env("POLYSEAL_IDENTITY", ws.path("second.txt"))
        .args(["recipients", "remove", "admin"])
        .assert()
        .success();
    let out = ws.output(&["keys", "show", "0004f2a10001", "--reveal"]);
    assert_failure(&out, 3, "backup");
    ws.polyseal()
        .env("POLYSEAL_IDENTITY", ws.path("second.txt"))
        .args(["keys", "show", "0004f2a10001", "--reveal"])
        .assert()
        .success();
}

#[test]
fn recipients_remove_warns_that_the_removed_custodian_may_hold_every_key_and_can_rotate_them() {
    let ws = Workspace::with_vault();
    ws.publish();
    ws.keygen("second.txt");
    let add = |ws: &Workspace| {
        ws.polyseal()
            .args(["recipients", "add", "--label", "backup"])
            .arg(ws.path("second.txt"))
            .assert()
            .success();
    };
    add(&ws);
    let out = ws.output(&["recipients", "remove", "backup"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("may already hold every phone key")
            && stderr.contains("rotate start --all")
            && stderr.contains("--rotate-keys"),
        "{stderr}"
    );
    add(&ws);
    let out = ws.output(&["recipients", "remove", "backup", "--rotate-keys"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("started rotation of 3 phones"),
        "{out:?}"
    );
    let keys = ws.output(&["keys", "list", "--format", "json"]);
    let listed = String::from_utf8_lossy(&keys.stdout);
    assert_eq!(listed.matches("pre-active").count(), 3, "{listed}");
}

#[test]
fn log_show_and_verify_and_a_tampered_log_is_exit_4() {
    let ws = Workspace::with_vault();
    ws.publish();
    ws.polyseal()
        .args(["log", "verify"])
        .env_remove("POLYSEAL_IDENTITY")
        .assert()
        .success()
        .stdout(predicate::str::is_match("head [0-9]+ [0-9a-f]{64}").unwrap());
    ws.polyseal()
        .args(["log", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("0004f2a10001"));
    let log = std::fs::read_to_string(ws.path("vault/events.log")).unwrap();
    std::fs::write(
        ws.path("vault/events.log"),
        log.replacen("0004f2a10001", "0004f2a10009", 1),
    )
    .unwrap();
    let out = ws.output(&["log", "verify"]);
    assert_failure(&out, 4, "events.log");
}

#[test]
fn rotation_moves_a_phone_to_a_new_generation_and_refuses_out_of_order_steps() {
    let ws = Workspace::with_vault();
    ws.publish();
    let early = ws.output(&["rotate", "finish", "0004f2a10001"]);
    assert_failure(&early, 3, "0004f2a10001");
    ws.run(&[
        "rotate",
        "start",
        "0004f2a10001",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    // From start on, the phone is served g2 whatever its key timing: the bootstrap of g2 and
    // its files under g2 (docs/ROTATION.md); the vault keeps g1 active until finish.
    let key_file = std::fs::read_to_string(ws.path("out/0004f2a10001-key.cfg")).unwrap();
    assert!(
        key_file.contains("KeyDesc=0004f2a10001-g2;"),
        "bootstrap of g2"
    );
    let sip = std::fs::read(ws.path("out/0004f2a10001-sip.cfg")).unwrap();
    assert!(
        sip.starts_with(b"Crypt=1;KeyDesc=0004f2a10001-g2;"),
        "files under g2"
    );
    let other = std::fs::read(ws.path("out/0004f2a10002-sip.cfg")).unwrap();
    assert!(
        other.starts_with(b"Crypt=1;KeyDesc=0004f2a10002-g1;"),
        "other phones untouched"
    );
    ws.polyseal()
        .args(["keys", "list", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "0004f2a10001,1,0004f2a10001-g1,active,",
        ))
        .stdout(predicate::str::contains(
            "0004f2a10001,2,0004f2a10001-g2,pre-active,",
        ));
    let again = ws.output(&["rotate", "start", "0004f2a10001"]);
    assert_failure(&again, 3, "0004f2a10001");
    ws.run(&["rotate", "confirm", "0004f2a10001"]);
    ws.polyseal()
        .args(["rotate", "status", "--format", "json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"evidence\": \"operator\""));
    ws.run(&["rotate", "finish", "--all", "--src", "src", "--out", "out"]);
    ws.polyseal()
        .args(["keys", "list", "--format", "csv"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "0004f2a10001,1,0004f2a10001-g1,deactivated,",
        ))
        .stdout(predicate::str::contains(
            "0004f2a10001,2,0004f2a10001-g2,active,",
        ));
    let sip = std::fs::read(ws.path("out/0004f2a10001-sip.cfg")).unwrap();
    assert!(
        sip.starts_with(b"Crypt=1;KeyDesc=0004f2a10001-g2;"),
        "still under g2"
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    let ws = Workspace::new();
    ws.polyseal()
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("polyseal"));
    ws.polyseal()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH polyseal"));
    ws.polyseal()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
}

#[test]
fn usage_errors_are_exit_2() {
    let ws = Workspace::new();
    ws.polyseal().args(["keys", "frobnicate"]).assert().code(2);
    ws.polyseal()
        .args(["publish", "--src", "src"])
        .assert()
        .code(2);
}

#[test]
fn nginx_config_prints_a_tls_only_per_mac_server_block_and_names_bad_input() {
    let ws = Workspace::new();
    let out = ws
        .polyseal()
        .args([
            "nginx-config",
            "--tree",
            "out",
            "--cert",
            "/etc/ssl/p.pem",
            "--key",
            "/etc/ssl/p.key",
        ])
        .args([
            "--client-ca",
            "/etc/polyseal/device-ca.pem",
            "--uploads",
            "uploads",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ssl_verify_client on;"));
    assert!(
        text.contains(&format!("root \"{}\"", ws.path("out").display())),
        "relative paths made absolute"
    );
    assert!(!text.contains("listen 80"));

    let open = ws.output(&[
        "nginx-config",
        "--tree",
        "out",
        "--cert",
        "/etc/ssl/p.pem",
        "--key",
        "/etc/ssl/p.key",
        "--no-client-cert",
    ]);
    assert!(open.status.success());
    assert!(
        String::from_utf8_lossy(&open.stderr).contains("warning:"),
        "no client CA is warned about"
    );
    assert!(!String::from_utf8_lossy(&open.stdout).contains("ssl_verify_client"));

    let bad = ws
        .polyseal()
        .args([
            "nginx-config",
            "--tree",
            "out",
            "--cert",
            "/etc/ssl/p.pem",
            "--key",
            "/etc/ssl/p.key",
        ])
        .args(["--server-name", "prov;evil"])
        .output()
        .unwrap();
    assert_failure(&bad, 3, "--server-name");
    assert!(bad.stdout.is_empty());
}

#[test]
fn key_timing_is_set_at_init_shown_changed_and_logged() {
    let ws = Workspace::new();
    ws.run(&[
        "init",
        "--recipient",
        "identity.txt",
        "--key-timing",
        "next-boot",
    ]);
    ws.polyseal()
        .arg("key-timing")
        .assert()
        .success()
        .stdout("next-boot\n");
    ws.polyseal()
        .args(["key-timing", "immediate"])
        .assert()
        .success()
        .stderr(predicate::str::contains("now immediate (was next-boot)"));
    ws.polyseal()
        .arg("key-timing")
        .assert()
        .success()
        .stdout("immediate\n");
    ws.polyseal()
        .args(["log", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("key timing set to immediate"));
    ws.run(&["log", "verify"]);
    let output = ws.output(&["key-timing", "someday"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("someday"));
}

#[test]
fn nginx_config_without_a_client_ca_uses_the_bundled_polycom_device_ca_chain() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("tls")).unwrap();
    let args = [
        "nginx-config",
        "--tree",
        "out",
        "--cert",
        "tls/server.pem",
        "--key",
        "tls/server.key",
    ];
    let out = ws.output(&args);
    assert!(out.status.success(), "{out:?}");
    let bundle = ws.path("tls/polycom-device-ca.pem");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!("ssl_client_certificate \"{}\";", bundle.display())),
        "{text}"
    );
    assert!(text.contains("ssl_verify_depth 3;"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning:"));
    let written = std::fs::read_to_string(&bundle).unwrap();
    assert_eq!(written, polyseal_delivery::POLYCOM_DEVICE_CA_PEM);
    assert_eq!(written.matches("BEGIN CERTIFICATE").count(), 4);
    // Run again: the same file is used as it is.
    assert!(ws.output(&args).status.success());
    // Another file at that path is never replaced.
    std::fs::write(&bundle, "my own CA").unwrap();
    let other = ws.output(&args);
    assert_failure(&other, 3, "polycom-device-ca.pem: exists");
    assert!(other.stdout.is_empty());
    assert_eq!(std::fs::read_to_string(&bundle).unwrap(), "my own CA");
    // --client-ca and --no-client-cert cannot be given together.
    let both = ws.output(&[
        "nginx-config",
        "--tree",
        "out",
        "--cert",
        "tls/server.pem",
        "--key",
        "tls/server.key",
        "--client-ca",
        "ca.pem",
        "--no-client-cert",
    ]);
    assert_eq!(both.status.code(), Some(2));
}

/// `bytes` with the header line's KeyDesc generation `from` written as `to`: a forged header.
fn forge_generation(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let end = bytes
        .iter()
        .position(|b| *b == b'\n')
        .expect("a header line");
    let header = String::from_utf8_lossy(&bytes[..end]).replace(from, to);
    [header.as_bytes(), &bytes[end..]].concat()
}

#[test]
fn a_forged_header_over_a_body_that_does_not_decrypt_is_no_evidence() {
    let ws = Workspace::with_vault();
    ws.publish();
    ws.run(&["rotate", "start", "0004f2a10001"]);
    std::fs::create_dir(ws.path("uploads")).unwrap();
    // The phone's g1 file, its header edited to name g2: anyone can write a header.
    let g1 = std::fs::read(ws.path("out/0004f2a10001-sip.cfg")).unwrap();
    std::fs::write(
        ws.path("uploads/0004f2a10001-phone.cfg"),
        forge_generation(&g1, "0004f2a10001-g1;", "0004f2a10001-g2;"),
    )
    .unwrap();
    let out = ws.output(&["rotate", "confirm", "--uploads", "uploads"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0004f2a10001-phone.cfg")
            && stderr.contains("does not decrypt")
            && stderr.contains("not counted as evidence"),
        "{stderr}"
    );
    assert!(stderr.contains("confirmed 0 phones"), "{stderr}");
    // Unconfirmed, the rotation cannot finish: the old key is not retired.
    let finish = ws.output(&["rotate", "finish", "0004f2a10001"]);
    assert_failure(&finish, 3, "0004f2a10001");
}

#[test]
fn one_bad_upload_does_not_hold_up_rotate_start_for_the_fleet() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::create_dir(ws.path("uploads")).unwrap();
    for mac in ["0004f2a10001", "0004f2a10002"] {
        ws.run(&[
            "encrypt",
            "--mac",
            mac,
            "src/site.cfg",
            "--output",
            &format!("uploads/{mac}-phone.cfg"),
        ]);
    }
    // Damage the second upload's last block.
    let path = ws.path("uploads/0004f2a10002-phone.cfg");
    let mut damaged = std::fs::read(&path).unwrap();
    let last = damaged.len() - 2;
    damaged[last] ^= 0x55;
    std::fs::write(&path, &damaged).unwrap();
    let out = ws.output(&["rotate", "start", "--all", "--uploads", "uploads"]);
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0004f2a10002-phone.cfg") && stderr.contains("left as it is"),
        "{stderr}"
    );
    let good = std::fs::read(ws.path("uploads/0004f2a10001-phone.cfg")).unwrap();
    assert!(
        good.starts_with(b"Crypt=1;KeyDesc=0004f2a10001-g2;"),
        "the good upload is re-sealed under the new key"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        damaged,
        "the bad one is left as it is"
    );
}

#[test]
fn an_identity_file_readable_by_others_is_warned_about_and_refused_with_strict_perms() {
    let ws = Workspace::with_vault();
    let identity = ws.path("identity.txt");
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = ws.output(&["keys", "add", "0004f2a10001"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mode 0666, readable by group or others"),
        "{out:?}"
    );
    let before = std::fs::read(ws.path("vault/events.log")).unwrap();
    let strict = ws.output(&["--strict-perms", "keys", "add", "0004f2a10002"]);
    assert_failure(&strict, 3, "identity.txt: mode 0666");
    assert_eq!(std::fs::read(ws.path("vault/events.log")).unwrap(), before);
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    let quiet = ws.output(&["--strict-perms", "keys", "add", "0004f2a10002"]);
    assert!(quiet.status.success(), "{quiet:?}");
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("readable by group"));
}

/// The `head SEQ HEX` line of `log verify`, as `SEQ:HEX`.
fn log_head(ws: &Workspace) -> String {
    let out = ws.output(&["log", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("head "))
        .expect("a head line");
    line.replacen(' ', ":", 1)
}

#[test]
fn a_vault_restored_from_before_an_anchored_head_fails_log_verify_expect_head() {
    let ws = Workspace::with_vault();
    ws.publish();
    let earlier = log_head(&ws);
    crate::support::copy_dir(&ws.path("vault"), &ws.path("vault-backup"));
    ws.run(&["keys", "add", "0004f2a10009"]);
    let later = log_head(&ws);
    // An earlier head stays valid as events are appended; the line as `log verify` printed
    // it is a head too.
    ws.run(&["log", "verify", "--expect-head", &earlier]);
    ws.run(&[
        "log",
        "verify",
        "--expect-head",
        &format!("head {}", earlier.replacen(':', " ", 1)),
    ]);
    ws.run(&["log", "verify", "--expect-head", &later]);
    // The backup is a consistent vault of its own: only the anchor tells it is older.
    std::fs::remove_dir_all(ws.path("vault")).unwrap();
    std::fs::rename(ws.path("vault-backup"), ws.path("vault")).unwrap();
    ws.run(&["log", "verify"]);
    let restored = ws.output(&["log", "verify", "--expect-head", &later]);
    assert_failure(&restored, 4, "events.log: ends before event");
    // A head whose hash the log does not hold at that place: rewritten.
    let (seq, _) = earlier.split_once(':').unwrap();
    let forged = format!("{seq}:{}", "00".repeat(32));
    let rewritten = ws.output(&["log", "verify", "--expect-head", &forged]);
    assert_failure(&rewritten, 4, "not the anchored");
    let bad = ws.output(&["log", "verify", "--expect-head", "12"]);
    assert_failure(&bad, 3, "--expect-head");
}

#[test]
fn a_bucket_saved_before_a_key_was_destroyed_no_longer_opens_it() {
    let ws = Workspace::with_vault();
    ws.run(&["keys", "add", "0004f2a10001"]);
    crate::support::copy_dir(&ws.path("vault/keys"), &ws.path("keys-backup"));
    ws.run(&["keys", "state", "0004f2a10001", "deactivated"]);
    let out = ws.output(&["keys", "state", "0004f2a10001", "destroyed"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the data key was replaced"),
        "{out:?}"
    );
    // The attack: the bucket file as it was before, back in place.
    std::fs::remove_dir_all(ws.path("vault/keys")).unwrap();
    std::fs::rename(ws.path("keys-backup"), ws.path("vault/keys")).unwrap();
    let reveal = ws.output(&["keys", "show", "0004f2a10001", "--reveal"]);
    assert!(!reveal.status.success(), "{reveal:?}");
    assert!(
        !String::from_utf8_lossy(&reveal.stdout).contains("Key="),
        "the destroyed key is not printed"
    );
}
