//! Cross-check against the `openssl` CLI: openssl decrypts our bodies, we decrypt openssl's,
//! and `sha256sum` agrees with our header's digest. These tests fail (never skip) when openssl
//! or sha256sum is missing: `.ci/run` installs them.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, decrypt, encrypt, inspect};

fn run(program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("`{program}` is required for this test and could not run: {e}"));
    // Feed stdin from another thread: a large input would otherwise fill the child's stdout
    // pipe while we are still writing, and both sides would wait forever.
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write stdin");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn cases() -> Vec<(KeyString, Vec<u8>)> {
    let fixture = |name: &str| {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/polycom")
                .join(name),
        )
        .expect("fixture")
    };
    let keys = [
        "06a9214036b8a15b512e03d534120006",
        "00000000000000000000000000000001",
        "ffffffffffffffffffffffffffffffff",
    ];
    let plaintexts = [
        Vec::new(),
        b"0123456789abcdef".to_vec(),
        fixture("sip-small.cfg"),
        fixture("sip-3.2.7.cfg"),
    ];
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let ks = KeyString::new(
            KeyDesc::new(&format!("openssl-{i}")).expect("desc"),
            ConfigKey::from_hex(k).expect("key"),
        );
        out.extend(plaintexts.iter().map(|p| (ks.clone(), p.clone())));
    }
    out.push((
        KeyString::new(KeyDesc::new("random").expect("desc"), ConfigKey::generate()),
        fixture("features.cfg"),
    ));
    out
}

#[test]
fn openssl_decrypts_what_we_encrypt() {
    for (key, plaintext) in cases() {
        let file = encrypt(&plaintext, &key).expect("encrypt");
        let header = inspect(&file).expect("header");
        let body = &file[header.body_offset()..];
        let iv = hex::encode(&body[..16]);
        let key_hex = key.key().expose_hex();
        let args = ["enc", "-d", "-aes-128-cbc", "-K", &key_hex, "-iv", &iv];
        let decrypted = run("openssl", &args, &body[16..]);
        assert_eq!(decrypted, plaintext, "openssl disagrees for {key}");

        let sha = run("sha256sum", &[], &plaintext);
        let sha = String::from_utf8(sha).expect("utf8");
        assert_eq!(sha.split_whitespace().next(), Some(&*header.digest_hex()));
    }
}

#[test]
fn we_decrypt_what_openssl_encrypts_under_our_header() {
    for (key, plaintext) in cases() {
        let iv = "0f0e0d0c0b0a09080706050403020100";
        let key_hex = key.key().expose_hex();
        let ciphertext = run(
            "openssl",
            &["enc", "-aes-128-cbc", "-K", &key_hex, "-iv", iv],
            &plaintext,
        );
        let sha = String::from_utf8(run("sha256sum", &[], &plaintext)).expect("utf8");
        let digest = sha.split_whitespace().next().expect("digest");
        let mut file =
            format!("Crypt=1;KeyDesc={};Digest={digest};\n", key.key_desc()).into_bytes();
        file.extend(hex::decode(iv).expect("iv"));
        file.extend(ciphertext);
        let back = decrypt(&file, &key).expect("our decrypt of openssl's file");
        assert_eq!(&back[..], &plaintext[..]);
    }
}
