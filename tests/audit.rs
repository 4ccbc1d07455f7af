//! `polyseal audit` on the real binary and a real vault (identity made by the real
//! `age-keygen`): each finding class made on purpose and found with its code, phone and file;
//! a clean tree without errors or warnings; the JSON schema pinned by a golden file; `--strict`
//! exit codes; bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is the failure report.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::support::{PHONES, Workspace, assert_failure};

/// The golden JSON report; `POLYSEAL_UPDATE_GOLDEN=1` rewrites it from the current output.
const GOLDEN: &str = "tests/fixtures/audit/report.json";

/// `polyseal audit --tree out --format json ARGS`, which must succeed; its report.
fn report(ws: &Workspace, args: &[&str]) -> Value {
    let out = ws
        .polyseal()
        .args(["audit", "--tree", "out", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The same, without any identity.
fn report_without_identity(ws: &Workspace, args: &[&str]) -> Value {
    let out = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .args(["audit", "--tree", "out", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn findings<'r>(report: &'r Value, code: &str) -> Vec<&'r Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == code)
        .collect()
}

/// Asserts a finding of `code` about phone `mac` (or none) and a file ending in `file` (or
/// none); returns it.
fn finding<'r>(report: &'r Value, code: &str, mac: Option<&str>, file: Option<&str>) -> &'r Value {
    let matches = |f: &&Value| {
        let file_matches = match (file, f["file"].as_str()) {
            (None, None) => true,
            (Some(want), Some(got)) => Path::new(got).ends_with(want),
            _ => false,
        };
        f["mac"].as_str() == mac && file_matches
    };
    findings(report, code)
        .into_iter()
        .find(matches)
        .unwrap_or_else(|| {
            panic!(
                "no {code} finding for {mac:?} {file:?} in {:#}",
                report["findings"]
            )
        })
}

/// Errors and warnings (what `--strict` fails on).
fn serious(report: &Value) -> Vec<&Value> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .collect()
}

fn checks(report: &Value, list: &str) -> Vec<String> {
    report["checks"][list]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c.as_str()
                .unwrap_or_else(|| c["check"].as_str().unwrap())
                .to_owned()
        })
        .collect()
}

fn published() -> Workspace {
    let ws = Workspace::with_vault();
    ws.publish();
    ws
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// `polyseal encrypt --mac MAC IN -o OUT` in the workspace.
fn encrypt(ws: &Workspace, mac: &str, input: &str, output: &str) {
    ws.run(&["encrypt", "--mac", mac, input, "-o", output]);
}

/// Asserts that a finding's message mentions every one of `words`.
fn assert_mentions(finding: &Value, words: &[&str]) {
    let text = finding["message"].as_str().unwrap();
    for word in words {
        assert!(text.contains(word), "{word:?} not in {text:?}");
    }
}

#[test]
fn a_freshly_published_tree_has_no_error_or_warning_with_or_without_identity() {
    let ws = published();
    let with = report(&ws, &[]);
    assert_eq!(with["schema"], "polyseal-audit/1");
    assert!(serious(&with).is_empty(), "{:#}", with["findings"]);
    assert!(checks(&with, "run").contains(&"decrypted-contents".to_owned()));
    assert_eq!(checks(&with, "skipped"), ["cryptoperiod", "uploads"]);
    assert_eq!(with["summary"]["phones"], 3);
    assert_eq!(with["summary"]["files"], 8);

    let without = report_without_identity(&ws, &[]);
    assert!(serious(&without).is_empty(), "{:#}", without["findings"]);
    assert_eq!(
        checks(&without, "skipped"),
        ["cryptoperiod", "uploads", "decrypted-contents"]
    );
    let reason = &without["checks"]["skipped"][2]["reason"];
    assert!(reason.as_str().unwrap().contains("identity"), "{reason}");

    // The table for people ends with the summary line.
    let table = ws.output(&["audit", "--tree", "out", "--strict"]);
    assert!(table.status.success(), "{table:?}");
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("no findings"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("3 phones, 8 files checked: 0 errors, 0 warnings, 0 info"),
        "{text}"
    );
}

#[test]
fn a_phone_without_a_key_in_the_tree_or_in_the_phones_list() {
    let ws = published();
    fs::copy(
        ws.path("src/0004f2a10001-sip.cfg"),
        ws.path("out/0004f2a10004-sip.cfg"),
    )
    .unwrap();
    fs::write(ws.path("phones.txt"), "0004f2a10001\n0004f2a10009\n").unwrap();
    let report = report(&ws, &["--phones", "phones.txt"]);
    finding(
        &report,
        "phone-without-key",
        Some("0004f2a10004"),
        Some("out/0004f2a10004-sip.cfg"),
    );
    finding(
        &report,
        "phone-without-key",
        Some("0004f2a10009"),
        Some("phones.txt"),
    );
    assert_eq!(findings(&report, "phone-without-key").len(), 2);
}

#[test]
fn a_key_without_a_phone_unless_the_phones_list_names_it() {
    let ws = published();
    ws.run(&["keys", "add", "0004f2a10005"]);
    let report = report_without_identity(&ws, &[]);
    let found = finding(&report, "key-without-phone", Some("0004f2a10005"), None);
    assert_eq!(found["severity"], "warning");
    assert_eq!(findings(&report, "key-without-phone").len(), 1);

    fs::write(ws.path("phones.txt"), "0004f2a10005\n").unwrap();
    let listed = report_without_identity(&ws, &["--phones", "phones.txt"]);
    assert!(findings(&listed, "key-without-phone").is_empty());
}

#[test]
fn a_file_encrypted_under_another_phones_key() {
    let ws = published();
    encrypt(
        &ws,
        "0004f2a10002",
        "src/0004f2a10001-sip.cfg",
        "out/0004f2a10001-sip.cfg",
    );
    let report = report_without_identity(&ws, &[]);
    let found = finding(
        &report,
        "file-other-phones-key",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-sip.cfg"),
    );
    assert_eq!(found["severity"], "error");
    assert_mentions(found, &["0004f2a10002-g1"]);
    assert_eq!(serious(&report).len(), 1, "{:#}", report["findings"]);
}

#[test]
fn a_file_encrypted_under_a_key_the_vault_does_not_know() {
    let ws = published();
    // A second vault whose KeyDescs no phone of the first one has.
    let other = ws.path("other-vault");
    let in_other = |args: &[&str]| {
        ws.polyseal()
            .env("POLYSEAL_VAULT", &other)
            .args(args)
            .assert()
            .success();
    };
    let identity = ws.path("identity.txt");
    in_other(&[
        "init",
        "--recipient",
        identity.to_str().unwrap(),
        "--key-desc-template",
        "elsewhere-{mac}-{generation}",
    ]);
    in_other(&["keys", "add", "0004f2a10001"]);
    in_other(&[
        "encrypt",
        "--mac",
        "0004f2a10001",
        "src/0004f2a10001-sip.cfg",
        "-o",
        "out/0004f2a10001-sip.cfg",
    ]);
    let report = report_without_identity(&ws, &[]);
    let found = finding(
        &report,
        "file-unknown-key",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-sip.cfg"),
    );
    assert_mentions(found, &["elsewhere-0004f2a10001-1"]);
}

#[test]
fn files_left_under_an_old_generation_and_a_stale_bootstrap_file() {
    let ws = published();
    // Retire generation 1 and make generation 2 without republishing: the tree still serves
    // generation 1, in the sip file and in the bootstrap file.
    ws.run(&["keys", "state", "0004f2a10001", "deactivated"]);
    ws.run(&["keys", "add", "0004f2a10001"]);
    let report = report_without_identity(&ws, &[]);
    let found = finding(
        &report,
        "file-wrong-generation",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-sip.cfg"),
    );
    assert_mentions(found, &["0004f2a10001-g1", "generation 2"]);
    // The bootstrap file is checked by KeyDesc and fingerprint, without any identity.
    finding(
        &report,
        "key-file-wrong-key",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-key.cfg"),
    );

    // Republishing fixes both.
    ws.publish();
    let fixed = report_without_identity(&ws, &[]);
    assert!(serious(&fixed).is_empty(), "{:#}", fixed["findings"]);
}

#[test]
fn a_per_phone_file_served_in_plaintext_names_its_secrets_not_their_values() {
    let ws = published();
    fs::copy(
        ws.path("src/0004f2a10002-sip.cfg"),
        ws.path("out/0004f2a10002-sip.cfg"),
    )
    .unwrap();
    let report = report_without_identity(&ws, &[]);
    finding(
        &report,
        "per-phone-file-plaintext",
        Some("0004f2a10002"),
        Some("out/0004f2a10002-sip.cfg"),
    );
    let secret = finding(
        &report,
        "secret-in-plaintext-file",
        Some("0004f2a10002"),
        Some("out/0004f2a10002-sip.cfg"),
    );
    assert_mentions(secret, &["reg.1.auth.password"]);
    assert!(!report.to_string().contains("demo-Only-Passw0rd-2"));
}

#[test]
fn a_key_file_carrying_more_than_the_key() {
    let ws = published();
    edit(
        &ws.path("out/0004f2a10001-key.cfg"),
        "<device ",
        r#"<reg reg.1.auth.password="Extra-Passw0rd-Here"/><device "#,
    );
    let report = report_without_identity(&ws, &[]);
    let secret = finding(
        &report,
        "secret-in-plaintext-file",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-key.cfg"),
    );
    assert_mentions(secret, &["reg.1.auth.password"]);
    // The key it hands the phone is still the right one.
    assert!(findings(&report, "key-file-wrong-key").is_empty());
    assert!(!report.to_string().contains("Extra-Passw0rd-Here"));
}

#[test]
fn secrets_in_shared_and_master_files_and_weak_passwords_never_show_their_values() {
    let ws = published();
    edit(
        &ws.path("out/site.cfg"),
        r#"voIpProt.server.1.transport="TLS""#,
        r#"voIpProt.server.1.transport="TLS" reg.1.auth.password="98765""#,
    );
    edit(
        &ws.path("out/000000000000.cfg"),
        r#"APP_FILE_PATH="""#,
        r#"APP_FILE_PATH="https://prov:Hunter2Hunter2@fw.example.net/sip.ld""#,
    );
    let report = report_without_identity(&ws, &[]);
    let shared = finding(&report, "secret-in-shared-file", None, Some("out/site.cfg"));
    assert_mentions(shared, &["reg.1.auth.password"]);
    let weak = finding(&report, "weak-sip-password", None, Some("out/site.cfg"));
    assert_eq!(weak["severity"], "warning");
    finding(
        &report,
        "secret-in-master",
        None,
        Some("out/000000000000.cfg"),
    );

    let table = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .args(["audit", "--tree", "out"])
        .output()
        .unwrap();
    for output in [report.to_string(), String::from_utf8(table.stdout).unwrap()] {
        assert!(output.contains("reg.1.auth.password"));
        assert!(!output.contains("98765"), "{output}");
        assert!(!output.contains("Hunter2"), "{output}");
    }
}

#[test]
fn a_weak_password_in_an_encrypted_file_is_found_only_with_an_identity() {
    let ws = published();
    edit(
        &ws.path("src/0004f2a10001-sip.cfg"),
        "demo-Only-Passw0rd-1",
        "short1",
    );
    encrypt(
        &ws,
        "0004f2a10001",
        "src/0004f2a10001-sip.cfg",
        "out/0004f2a10001-sip.cfg",
    );
    let with = report(&ws, &[]);
    let weak = finding(
        &with,
        "weak-sip-password",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-sip.cfg"),
    );
    assert_mentions(weak, &["reg.1.auth.password"]);
    assert!(!with.to_string().contains("short1"));

    let without = report_without_identity(&ws, &[]);
    assert!(findings(&without, "weak-sip-password").is_empty());
    assert!(checks(&without, "skipped").contains(&"decrypted-contents".to_owned()));
}

#[test]
fn an_encrypted_file_that_does_not_decrypt_is_found_with_an_identity() {
    let ws = published();
    let path = ws.path("out/64167fa10003-sip.cfg");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let report = report(&ws, &[]);
    finding(
        &report,
        "file-does-not-decrypt",
        Some("64167fa10003"),
        Some("out/64167fa10003-sip.cfg"),
    );
}

#[test]
fn master_file_encrypted_missing_or_not_listing_the_key_file() {
    let ws = published();
    encrypt(
        &ws,
        "0004f2a10001",
        "out/000000000000.cfg",
        "out/000000000000.cfg",
    );
    let encrypted = report_without_identity(&ws, &[]);
    let found = finding(
        &encrypted,
        "master-encrypted",
        None,
        Some("out/000000000000.cfg"),
    );
    assert_eq!(found["severity"], "error");
    assert_eq!(
        findings(&encrypted, "master-encrypted").len(),
        1,
        "said once"
    );

    fs::remove_file(ws.path("out/000000000000.cfg")).unwrap();
    let missing = report_without_identity(&ws, &[]);
    finding(
        &missing,
        "master-missing",
        None,
        Some("out/000000000000.cfg"),
    );

    fs::copy(
        ws.path("src/000000000000.cfg"),
        ws.path("out/000000000000.cfg"),
    )
    .unwrap();
    edit(
        &ws.path("out/000000000000.cfg"),
        "[PHONE_MAC_ADDRESS]-key.cfg, ",
        "",
    );
    let unlisted = report_without_identity(&ws, &[]);
    let found = finding(
        &unlisted,
        "key-file-not-listed",
        None,
        Some("out/000000000000.cfg"),
    );
    assert_mentions(found, &["CONFIG_FILES"]);
    assert_eq!(
        findings(&unlisted, "key-file-not-listed").len(),
        1,
        "said once"
    );
}

#[test]
fn master_files_that_name_files_of_one_phone_or_outside_the_tree_said_once() {
    let ws = published();
    edit(
        &ws.path("out/000000000000.cfg"),
        "site.cfg",
        "site.cfg, 0004f2a10002-extra.cfg, https://cfg.example.net/[PHONE_MAC_ADDRESS]-remote.cfg",
    );
    fs::write(ws.path("out/0004f2a10001.cfg"), "<polycomConfig/>\n").unwrap();
    let report = report_without_identity(&ws, &[]);
    let other = finding(
        &report,
        "listed-file-of-other-phone",
        Some("0004f2a10002"),
        Some("out/000000000000.cfg"),
    );
    assert_mentions(other, &["0004f2a10002-extra.cfg"]);
    assert_eq!(findings(&report, "listed-file-of-other-phone").len(), 1);
    let outside = finding(
        &report,
        "listed-file-not-in-tree",
        None,
        Some("out/000000000000.cfg"),
    );
    assert_eq!(outside["severity"], "info");
    assert_mentions(outside, &["[PHONE_MAC_ADDRESS]-remote.cfg"]);
    assert_eq!(findings(&report, "listed-file-not-in-tree").len(), 1);
    finding(
        &report,
        "phone-file-not-master",
        Some("0004f2a10001"),
        Some("out/0004f2a10001.cfg"),
    );
}

#[test]
fn a_malformed_shared_file_and_an_unreadable_header_do_not_stop_the_audit() {
    let ws = published();
    fs::write(ws.path("out/extra.cfg"), "<polycomConfig>\n<reg\n").unwrap();
    fs::write(
        ws.path("out/0004f2a10001-sip.cfg"),
        "Crypt=2;KeyDesc=0004f2a10001-g1;Digest=00;\nbody",
    )
    .unwrap();
    let report = report_without_identity(&ws, &[]);
    let malformed = finding(&report, "file-malformed", None, Some("out/extra.cfg"));
    assert_mentions(malformed, &["XML"]);
    finding(
        &report,
        "file-bad-header",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-sip.cfg"),
    );
}

#[test]
fn a_sealed_key_edited_in_the_vault_is_refused_by_an_audit_with_the_identity() {
    let ws = published();
    // Change one hex digit of a sealed key: the record still agrees with the event log.
    let bucket = fs::read_dir(ws.path("vault/keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::read_to_string(p).unwrap().contains("0004f2a10002"))
        .unwrap();
    let text = fs::read_to_string(&bucket).unwrap();
    let at = text.find("\"sealed\":\"").unwrap() + "\"sealed\":\"".len();
    let digit = if &text[at..=at] == "0" { "1" } else { "0" };
    fs::write(
        &bucket,
        format!("{}{digit}{}", &text[..at], &text[at + 1..]),
    )
    .unwrap();

    // The vault's authenticated head no longer fits: refused, naming the file, exit 4.
    let with = ws
        .polyseal()
        .args(["audit", "--tree", "out", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(with.status.code(), Some(4), "{with:?}");
    let stderr = String::from_utf8_lossy(&with.stderr);
    let name = bucket.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        stderr.contains(&format!("keys/{name} is not as polyseal last wrote it")),
        "{stderr}"
    );
    assert!(with.stdout.is_empty(), "no report of an altered vault");
    // Without an identity the edit cannot be seen, and the audit says it did not check.
    let out = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .args(["audit", "--tree", "out", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not checked against its authenticated head"),
        "{out:?}"
    );
    let without: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(serious(&without).is_empty(), "{:#}", without["findings"]);

    // An identity that does not open the vault is refused: the operator asked for the checks
    // that need one (and a replaced data-key.age looks just like it).
    let stranger = ws.keygen("stranger.txt");
    let out = ws
        .polyseal()
        .env("POLYSEAL_IDENTITY", &stranger)
        .args(["audit", "--tree", "out", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(out.stdout.is_empty(), "no report");
}

#[test]
fn an_encrypted_shared_file_or_key_file() {
    let ws = published();
    encrypt(&ws, "0004f2a10001", "out/site.cfg", "out/site.cfg");
    encrypt(
        &ws,
        "0004f2a10002",
        "out/0004f2a10002-key.cfg",
        "out/0004f2a10002-key.cfg",
    );
    chmod(&ws.path("out/0004f2a10002-key.cfg"), 0o600);
    let report = report_without_identity(&ws, &[]);
    finding(&report, "shared-file-encrypted", None, Some("out/site.cfg"));
    // A phone that lost its key could never read its key file again.
    let found = finding(
        &report,
        "key-file-wrong-key",
        Some("0004f2a10002"),
        Some("out/0004f2a10002-key.cfg"),
    );
    assert_mentions(found, &["encrypted", "plaintext bootstrap"]);
}

#[test]
fn key_files_missing_invalid_or_carrying_another_phones_key() {
    let ws = published();
    fs::remove_file(ws.path("out/0004f2a10001-key.cfg")).unwrap();
    fs::copy(
        ws.path("out/64167fa10003-key.cfg"),
        ws.path("out/0004f2a10002-key.cfg"),
    )
    .unwrap();
    fs::write(ws.path("out/64167fa10003-key.cfg"), "<polycomConfig/>\n").unwrap();
    chmod(&ws.path("out/64167fa10003-key.cfg"), 0o600);
    let report = report_without_identity(&ws, &[]);
    finding(
        &report,
        "key-file-missing",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-key.cfg"),
    );
    let wrong = finding(
        &report,
        "key-file-wrong-key",
        Some("0004f2a10002"),
        Some("out/0004f2a10002-key.cfg"),
    );
    assert_mentions(wrong, &["64167fa10003-g1", "fingerprint sha256:"]);
    finding(
        &report,
        "key-file-invalid",
        Some("64167fa10003"),
        Some("out/64167fa10003-key.cfg"),
    );
    // The key itself is never printed.
    assert!(!report.to_string().contains("Key="), "{report:#}");
}

#[test]
fn a_rotating_phone_is_served_the_next_generation_and_may_upload_under_either() {
    let ws = published();
    let g1_sip = fs::read(ws.path("out/0004f2a10001-sip.cfg")).unwrap();
    let g1_key_file = fs::read(ws.path("out/0004f2a10001-key.cfg")).unwrap();
    fs::create_dir_all(ws.path("uploads")).unwrap();
    fs::write(ws.path("uploads/0004f2a10001-phone.cfg"), &g1_sip).unwrap();
    ws.run(&[
        "rotate",
        "start",
        "0004f2a10001",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    // The phone has not rebooted yet (upload under g1) or has (upload under g2): both fine.
    fs::copy(
        ws.path("out/0004f2a10001-sip.cfg"),
        ws.path("uploads/0004f2a10001-directory.xml"),
    )
    .unwrap();
    let rotating = report(&ws, &["--uploads", "uploads"]);
    assert!(serious(&rotating).is_empty(), "{:#}", rotating["findings"]);

    // Files left under g1 while the phone is served g2.
    fs::write(ws.path("out/0004f2a10001-sip.cfg"), &g1_sip).unwrap();
    fs::write(ws.path("out/0004f2a10001-key.cfg"), &g1_key_file).unwrap();
    let stale = report_without_identity(&ws, &[]);
    let found = finding(
        &stale,
        "file-wrong-generation",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-sip.cfg"),
    );
    assert_mentions(found, &["0004f2a10001-g1", "generation 2"]);
    let found = finding(
        &stale,
        "key-file-wrong-key",
        Some("0004f2a10001"),
        Some("out/0004f2a10001-key.cfg"),
    );
    assert_mentions(found, &["0004f2a10001-g1", "0004f2a10001-g2"]);

    // Once the rotation is finished, an upload under g1 shows a phone on a retired key.
    ws.run(&["rotate", "confirm", "0004f2a10001"]);
    ws.run(&[
        "rotate",
        "finish",
        "0004f2a10001",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    let finished = report_without_identity(&ws, &["--uploads", "uploads"]);
    let found = finding(
        &finished,
        "upload-wrong-key",
        Some("0004f2a10001"),
        Some("uploads/0004f2a10001-phone.cfg"),
    );
    assert_mentions(found, &["0004f2a10001-g1", "deactivated"]);
    assert_eq!(serious(&finished).len(), 1, "{:#}", finished["findings"]);
}

#[test]
fn an_active_key_past_the_cryptoperiod() {
    let ws = Workspace::new();
    ws.polyseal()
        .args(["init", "--cryptoperiod-days", "1", "--recipient"])
        .arg(ws.path("identity.txt"))
        .assert()
        .success();
    ws.publish();
    // Keys made now are within a 1-day cryptoperiod…
    let now = report_without_identity(&ws, &[]);
    assert!(checks(&now, "run").contains(&"cryptoperiod".to_owned()));
    assert!(findings(&now, "key-past-cryptoperiod").is_empty());
    // …and past it when judged later: --as-of is the audit's clock.
    let later = report_without_identity(&ws, &["--as-of", "2099-01-01T00:00:00Z"]);
    assert_eq!(later["as_of"], "2099-01-01T00:00:00Z");
    for mac in PHONES {
        let found = finding(&later, "key-past-cryptoperiod", Some(mac), None);
        assert_eq!(found["severity"], "warning");
        assert_mentions(found, &["1-day"]);
    }
}

#[test]
fn a_mac_outside_the_polycom_ouis_is_info_and_does_not_fail_strict() {
    let ws = Workspace::with_vault();
    fs::write(ws.path("phones.txt"), "00:11:22:33:44:55\n").unwrap();
    ws.run(&[
        "publish",
        "--src",
        "src",
        "--out",
        "out",
        "--phones",
        "phones.txt",
    ]);
    let report = report_without_identity(&ws, &["--phones", "phones.txt", "--strict"]);
    let found = finding(&report, "non-polycom-oui", Some("001122334455"), None);
    assert_eq!(found["severity"], "info");
    assert!(serious(&report).is_empty(), "{:#}", report["findings"]);
}

#[test]
fn key_material_readable_by_group_or_others() {
    let ws = published();
    chmod(&ws.path("out/0004f2a10002-key.cfg"), 0o644);
    chmod(&ws.path("vault/data-key.age"), 0o640);
    let bucket = fs::read_dir(ws.path("vault/keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    chmod(&bucket, 0o604);
    let report = report_without_identity(&ws, &[]);
    let found = finding(
        &report,
        "key-file-readable",
        Some("0004f2a10002"),
        Some("out/0004f2a10002-key.cfg"),
    );
    assert_mentions(found, &["0644"]);
    finding(
        &report,
        "vault-file-readable",
        None,
        Some("vault/data-key.age"),
    );
    let bucket_name = bucket.strip_prefix(ws.path("")).unwrap();
    finding(
        &report,
        "vault-file-readable",
        None,
        Some(bucket_name.to_str().unwrap()),
    );
    assert_eq!(findings(&report, "vault-file-readable").len(), 2);
}

#[test]
fn an_event_log_that_does_not_verify() {
    let ws = published();
    let log = fs::read_to_string(ws.path("vault/events.log")).unwrap();
    fs::write(
        ws.path("vault/events.log"),
        log.replacen("0004f2a10001", "0004f2a10009", 1),
    )
    .unwrap();
    let report = report_without_identity(&ws, &[]);
    let found = finding(
        &report,
        "event-log-unverified",
        None,
        Some("vault/events.log"),
    );
    assert_eq!(found["severity"], "error");
}

#[test]
fn uploads_show_the_key_each_phone_really_holds() {
    let ws = published();
    fs::create_dir_all(ws.path("uploads/overrides")).unwrap();
    // 0001 uploads under 0002's key; 0002 uploads in plaintext; 0003 under its own key.
    encrypt(
        &ws,
        "0004f2a10002",
        "src/site.cfg",
        "uploads/overrides/0004f2a10001-phone.cfg",
    );
    fs::write(
        ws.path("uploads/0004f2a10002-directory.xml"),
        "<directory/>\n",
    )
    .unwrap();
    encrypt(
        &ws,
        "64167fa10003",
        "src/site.cfg",
        "uploads/64167fa10003-phone.cfg",
    );
    fs::write(
        ws.path("uploads/64167fa10003-app.log"),
        "not an upload we read",
    )
    .unwrap();
    let report = report_without_identity(&ws, &["--uploads", "uploads"]);
    assert_eq!(report["summary"]["uploads"], 3);
    assert!(checks(&report, "run").contains(&"uploads".to_owned()));
    let wrong = finding(
        &report,
        "upload-wrong-key",
        Some("0004f2a10001"),
        Some("uploads/overrides/0004f2a10001-phone.cfg"),
    );
    assert_mentions(wrong, &["0004f2a10002-g1"]);
    finding(
        &report,
        "upload-plaintext",
        Some("0004f2a10002"),
        Some("uploads/0004f2a10002-directory.xml"),
    );
    assert_eq!(serious(&report).len(), 2, "{:#}", report["findings"]);
}

#[test]
fn strict_exits_1_on_errors_and_warnings_and_prints_the_report_first() {
    let ws = published();
    ws.run(&["keys", "add", "0004f2a10005"]);
    let lenient = ws.output(&["audit", "--tree", "out"]);
    assert_eq!(lenient.status.code(), Some(0), "{lenient:?}");

    let strict = ws.output(&["audit", "--tree", "out", "--strict"]);
    assert_failure(&strict, 1, "1 finding");
    let table = String::from_utf8(strict.stdout).unwrap();
    assert!(table.contains("key-without-phone"), "{table}");
    assert!(table.contains("0 errors, 1 warning, 0 info"), "{table}");
}

#[test]
fn bad_input_is_one_line_naming_it_with_its_exit_code() {
    let ws = published();
    fs::write(ws.path("a-file"), "").unwrap();
    let cases: [(&[&str], i32, &str); 6] = [
        (&["--tree", "nosuch"], 3, "nosuch"),
        (&["--tree", "a-file"], 3, "a-file"),
        (&["--tree", "out", "--uploads", "nouploads"], 3, "nouploads"),
        (
            &["--tree", "out", "--phones", "nophones.txt"],
            3,
            "nophones.txt",
        ),
        (&["--tree", "out", "--as-of", "next week"], 3, "next week"),
        (
            &["--tree", "out", "--key-file", "site-key.cfg"],
            3,
            "--key-file",
        ),
    ];
    for (args, code, names) in cases {
        let out = ws.polyseal().arg("audit").args(args).output().unwrap();
        assert_failure(&out, code, names);
        assert!(out.stdout.is_empty(), "no report on bad input: {out:?}");
    }

    fs::write(ws.path("bad-phones.txt"), "0004f2a1000g\n").unwrap();
    let out = ws.output(&["audit", "--tree", "out", "--phones", "bad-phones.txt"]);
    assert_failure(&out, 3, "bad-phones.txt:1");

    fs::write(
        ws.path("out/000000000000.cfg"),
        "<APPLICATION CONFIG_FILES=\"a.cfg\"\n",
    )
    .unwrap();
    let out = ws.output(&["audit", "--tree", "out"]);
    assert_failure(&out, 3, "000000000000.cfg");

    let out = ws
        .polyseal()
        .env("POLYSEAL_VAULT", ws.path("novault"))
        .args(["audit", "--tree", "src"])
        .output()
        .unwrap();
    assert_failure(&out, 5, "novault");
}

/// The JSON layout is a contract (docs/AUDIT.md): a fixed tree and vault with a known set of
/// problems, audited without identity, must print exactly the golden report once the temporary
/// directory and the clock are taken out.
#[test]
fn the_json_report_matches_the_golden_file() {
    let ws = Workspace::with_vault();
    // A tree of its own, so that changes to the example do not move the golden file.
    fs::create_dir_all(ws.path("golden-src")).unwrap();
    fs::write(
        ws.path("golden-src/000000000000.cfg"),
        concat!(
            r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, "#,
            r#"[PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"/>"#
        ),
    )
    .unwrap();
    fs::write(
        ws.path("golden-src/site.cfg"),
        r#"<polycomConfig><voIpProt voIpProt.server.1.address="sip.example.net"/></polycomConfig>"#,
    )
    .unwrap();
    for (mac, password) in [
        ("0004f2b20001", "Golden-Passw0rd-One"),
        ("0004f2b20002", "Golden-Passw0rd-Two"),
    ] {
        fs::write(
            ws.path(&format!("golden-src/{mac}-sip.cfg")),
            format!(r#"<polycomConfig><reg reg.1.auth.password="{password}"/></polycomConfig>"#),
        )
        .unwrap();
    }
    ws.run(&["publish", "--src", "golden-src", "--out", "out"]);
    // The problems: a file under another phone's key, a weak password in a shared file, a
    // readable key file, a key without a phone, a listed phone without a key (outside the
    // Polycom OUIs).
    encrypt(
        &ws,
        "0004f2b20002",
        "golden-src/0004f2b20001-sip.cfg",
        "out/0004f2b20001-sip.cfg",
    );
    edit(
        &ws.path("out/site.cfg"),
        "<voIpProt ",
        r#"<reg reg.1.auth.password="1234"/><voIpProt "#,
    );
    chmod(&ws.path("out/0004f2b20002-key.cfg"), 0o644);
    ws.run(&["keys", "add", "0004f2b20009"]);
    fs::write(ws.path("phones.txt"), "001122334455\n").unwrap();

    let out = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .args([
            "audit",
            "--tree",
            "out",
            "--phones",
            "phones.txt",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The text as printed: the golden file pins field order and layout too.
    let text = String::from_utf8(out.stdout).unwrap();
    let workspace = ws.path("").display().to_string();
    let normalised: String = text
        .replace(workspace.trim_end_matches('/'), "<workspace>")
        .lines()
        .map(|line| match line.split_once(": ") {
            Some((field @ ("  \"generated_at\"" | "  \"as_of\""), _)) => {
                format!("{field}: \"<time>\",\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();

    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("POLYSEAL_UPDATE_GOLDEN").is_some() {
        fs::create_dir_all(golden.parent().unwrap()).unwrap();
        fs::write(&golden, &normalised).unwrap();
    }
    let expected = fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with POLYSEAL_UPDATE_GOLDEN=1 to write it",
            golden.display()
        )
    });
    assert_eq!(
        normalised, expected,
        "the JSON report changed; if on purpose, update docs/AUDIT.md (and the schema number \
         if readers could break), then rerun with POLYSEAL_UPDATE_GOLDEN=1"
    );
}

#[test]
fn a_bootstrap_file_still_handing_out_a_destroyed_key_is_found() {
    let ws = published();
    ws.run(&["keys", "state", "0004f2a10002", "compromised"]);
    ws.run(&["keys", "state", "0004f2a10002", "destroyed"]);
    let report = report_without_identity(&ws, &[]);
    let found = finding(
        &report,
        "key-file-wrong-key",
        Some("0004f2a10002"),
        Some("out/0004f2a10002-key.cfg"),
    );
    let message = found["message"].as_str().unwrap();
    assert!(
        message.contains("which the vault marked destroyed"),
        "{message}"
    );
    assert!(
        message.contains("whoever fetches this file gets that key"),
        "{message}"
    );
}
