//! `polyseal format`: the layout of the fleet's encrypted files shown, set (only with the risk
//! accepted, authenticated, each change an event), followed by publish and audit; and `format
//! probe` naming each layout of the openssl-made vectors (docs/FORMAT.md, "Layouts").

use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;

use crate::support::{Workspace, assert_failure, polyseal_bin, repo_root};

const DEFAULT: &str = "iv=prefix digest=sha256 padding=pkcs7 body=raw eol=lf";
const OTHER: &str = "iv=zero digest=sha1 padding=pkcs7 body=base64 eol=crlf";

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The codes of the findings of `audit --tree out`.
fn audit_codes(ws: &Workspace) -> Vec<String> {
    let report: serde_json::Value = serde_json::from_str(&stdout(
        &ws.output(&["audit", "--tree", "out", "--format", "json"]),
    ))
    .expect("JSON");
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["code"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_layout_set_with_the_risk_accepted_is_authenticated_published_and_audited() {
    let ws = Workspace::with_vault();
    ws.publish();
    assert_eq!(
        stdout(&ws.output(&["format", "show"])),
        format!("{DEFAULT}\n")
    );
    // Refused without the risk accepted: nothing changes, no event.
    let refused = ws.output(&[
        "format",
        "set",
        "iv=zero",
        "digest=sha1",
        "body=base64",
        "eol=crlf",
    ]);
    assert_failure(&refused, 3, "--i-accept-the-risk");
    assert_eq!(
        stdout(&ws.output(&["format", "show"])),
        format!("{DEFAULT}\n")
    );
    assert!(!stdout(&ws.output(&["log", "show"])).contains("layout"));
    // A bad assignment names what is wrong.
    assert_failure(
        &ws.output(&["format", "set", "--i-accept-the-risk", "iv=middle"]),
        3,
        "iv=\"middle\"",
    );
    ws.run(&[
        "format",
        "set",
        "--i-accept-the-risk",
        "iv=zero",
        "digest=sha1",
        "body=base64",
        "eol=crlf",
    ]);
    assert_eq!(
        stdout(&ws.output(&["format", "show"])),
        format!("{OTHER}\n")
    );
    assert!(stdout(&ws.output(&["log", "show"])).contains(&format!("set to {OTHER}")));
    ws.run(&["log", "verify"]);
    // The files published before are in the old layout: audit says so, publish re-encrypts.
    assert!(audit_codes(&ws).contains(&"file-other-layout".to_owned()));
    ws.publish();
    assert!(!audit_codes(&ws).contains(&"file-other-layout".to_owned()));
    let probed = ws.output(&[
        "format",
        "probe",
        "out/0004f2a10001-sip.cfg",
        "--mac",
        "0004f2a10001",
    ]);
    assert_eq!(stdout(&probed), format!("{OTHER}\n"));
    let decrypted = ws.output(&["decrypt", "out/0004f2a10001-sip.cfg"]);
    assert_eq!(
        stdout(&decrypted),
        std::fs::read_to_string(ws.path("src/0004f2a10001-sip.cfg")).expect("source")
    );
    // vault.toml is authenticated: a layout edited in by hand is caught.
    let config = ws.path("vault/vault.toml");
    let text = std::fs::read_to_string(&config).expect("vault.toml");
    std::fs::write(&config, text.replace(OTHER, DEFAULT)).expect("edit");
    let verify = ws.output(&["log", "verify"]);
    assert!(!verify.status.success(), "{verify:?}");
}

/// `format probe FILE --key-string -` with the key on standard input.
fn probe(file: &Path, key: &str) -> std::process::Output {
    let mut child = std::process::Command::new(polyseal_bin())
        .args(["format", "probe"])
        .arg(file)
        .args(["--key-string", "-"])
        .env("POLYSEAL_VAULT", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run polyseal");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(key.as_bytes())
        .expect("key");
    child.wait_with_output().expect("wait")
}

#[test]
fn probe_names_the_layout_of_every_openssl_vector_and_says_how_far_a_damaged_file_got() {
    let dir = repo_root().join("crates/crypto/tests/vectors/layouts");
    let work = tempfile::tempdir().expect("tmp");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("vectors") {
        let vector: toml::Table =
            toml::from_str(&std::fs::read_to_string(entry.expect("entry").path()).expect("read"))
                .expect("TOML");
        let text = |name: &str| vector[name].as_str().expect(name).to_owned();
        let file = work.path().join("upload.cfg");
        std::fs::write(&file, hex::decode(text("file_hex")).expect("hex")).expect("write");
        let output = probe(&file, &text("key"));
        assert_eq!(stdout(&output), format!("{}\n", text("layout")));
        seen += 1;
        if seen == 1 {
            // The same file with one byte of its body changed: no layout fits (exit 4), and
            // each dimension says how far its values got.
            let mut bytes = std::fs::read(&file).expect("read");
            let at = bytes.len() - 3;
            bytes[at] ^= 0x41;
            std::fs::write(&file, bytes).expect("write");
            let output = probe(&file, &text("key"));
            assert_failure(&output, 4, "no layout fits; furthest per dimension: iv=");
            let stderr = String::from_utf8_lossy(&output.stderr);
            for dimension in [" digest=", " padding=", " body=", " eol="] {
                assert!(stderr.contains(dimension), "{dimension}: {stderr}");
            }
            assert!(output.stdout.is_empty());
            // A key string that is not one: exit 3, and the key is never printed.
            let output = probe(&file, "Crypt=1;KeyDesc=vec-k1;Key=0123456789abcdef;");
            assert_failure(&output, 3, "--key-string");
            assert!(!String::from_utf8_lossy(&output.stderr).contains("0123456789abcdef"));
        }
    }
    assert_eq!(seen, 72);
}

/// The key string of `mac` as `keys show --reveal` prints it.
pub(crate) fn key_of(ws: &Workspace, mac: &str) -> polyseal_crypto::KeyString {
    let shown = stdout(&ws.output(&["keys", "show", "--reveal", mac]));
    let line = shown
        .lines()
        .find(|l| l.contains("Crypt=1;"))
        .unwrap_or_else(|| panic!("no key string in {shown}"));
    let start = line.find("Crypt=1;").expect("key string");
    polyseal_crypto::KeyString::parse(line[start..].trim()).expect("a key string")
}

#[test]
fn learn_takes_the_layout_from_the_phones_own_uploads_or_says_what_to_change_on_a_phone() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::create_dir(ws.path("up")).expect("uploads");
    // Nothing uploaded, then a plaintext upload only: nothing shows the layout.
    for _ in 0..2 {
        let output = ws.output(&["format", "learn", "--uploads", "up"]);
        assert_failure(&output, 3, "no phone has uploaded");
        assert!(
            String::from_utf8_lossy(&output.stderr)
                .contains("sec.encryption.upload.overrides=\"1\""),
            "{output:?}"
        );
        std::fs::write(ws.path("up/0004f2a10002-phone.cfg"), "<PHONE_CONFIG/>").expect("upload");
    }
    // A phone whose firmware writes another layout uploads its override file.
    let other: polyseal_crypto::Layout = OTHER.parse().expect("layout");
    let key = key_of(&ws, "0004f2a10001");
    let upload =
        polyseal_crypto::encrypt_with(b"<PHONE_CONFIG a=\"1\"/>\n", &key, &other).expect("seal");
    std::fs::write(ws.path("up/0004f2a10001-phone.cfg"), &upload).expect("upload");
    let learned = ws.output(&["format", "learn", "--uploads", "up"]);
    assert_eq!(stdout(&learned), format!("{OTHER}\n"));
    assert_eq!(
        stdout(&ws.output(&["format", "show"])),
        format!("{DEFAULT}\n")
    );
    let set = ws.output(&["format", "learn", "--uploads", "up", "--set"]);
    assert_eq!(stdout(&set), format!("{OTHER}\n"));
    assert_eq!(
        stdout(&ws.output(&["format", "show"])),
        format!("{OTHER}\n")
    );
    ws.run(&["log", "verify"]);
    // Another phone whose upload is in the default layout: no one layout fits both.
    let key = key_of(&ws, "64167fa10003");
    let upload = polyseal_crypto::encrypt(b"<PHONE_CONFIG/>\n", &key).expect("seal");
    std::fs::write(ws.path("up/64167fa10003-phone.cfg"), &upload).expect("upload");
    assert_failure(
        &ws.output(&["format", "learn", "--uploads", "up"]),
        4,
        "different layouts",
    );
    // Each phone on its own still shows its firmware's.
    let alone = ws.output(&[
        "format",
        "learn",
        "--uploads",
        "up",
        "--mac",
        "64167fa10003",
    ]);
    assert_eq!(stdout(&alone), format!("{DEFAULT}\n"));
}
