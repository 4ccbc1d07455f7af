//! Bootstrap and key-change files: byte-exact XML of docs/PROVISIONING.md §5, accepted by xmllint, and read
//! back to the exact key string.

use std::path::Path;
use std::process::Command;

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Layout, Mac};
use polyseal_provision::{
    Error, KeyFilePattern, bootstrap_file, key_change_file, read_bootstrap_file,
    read_key_change_file,
};
use proptest::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn key(desc: &str, hex: &str) -> KeyString {
    KeyString::new(
        KeyDesc::new(desc).expect("a valid KeyDesc"),
        ConfigKey::from_hex(hex).expect("32 hex digits"),
    )
}

/// Runs `xmllint --noout` on `bytes`: `Err` with xmllint's complaint if it rejects them. A
/// missing xmllint fails the test: it must never pass by skipping the check.
fn xmllint(bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("key.cfg");
    std::fs::write(&path, bytes).expect("write the file to check");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg(&path)
        .output()
        .expect("xmllint must be installed (Debian package libxml2-utils); this test never skips");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn the_bootstrap_file_is_exactly_the_design_xml() {
    let file = bootstrap_file(&key("0004f2abcdef-g1", "06a9214036b8a15b512e03d534120006"));
    let expected = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<polycomConfig>
  <device device.set="1"
          device.sec.configEncryption.key.set="1"
          device.sec.configEncryption.key="Crypt=1;KeyDesc=0004f2abcdef-g1;Key=06a9214036b8a15b512e03d534120006;"/>
</polycomConfig>
"#;
    assert_eq!(String::from_utf8_lossy(&file), expected);
}

/// KeyDescs that exercise escaping: every XML-special character a KeyDesc may hold.
const AWKWARD_KEY_DESCS: [&str; 4] = ["0004f2abcdef-g1", "a<b>&c'd", "&lt", "x > y & 'z'"];

#[test]
fn xmllint_accepts_every_bootstrap_file_and_it_reads_back_exactly() -> TestResult {
    for desc in AWKWARD_KEY_DESCS {
        let key = key(desc, "00112233445566778899aabbccddeeff");
        let file = bootstrap_file(&key);
        assert_eq!(xmllint(&file), Ok(()), "{desc}");
        let read = read_bootstrap_file(Path::new("k.cfg"), &file)?;
        assert_eq!(*read.expose(), *key.expose(), "{desc}");
        assert_eq!(read.key_desc().as_str(), desc);
    }
    Ok(())
}

#[test]
fn xmllint_accepts_every_decrypted_key_change_file_and_it_reads_back_exactly() -> TestResult {
    let mac: Mac = "0004f2abcdef".parse()?;
    for desc in AWKWARD_KEY_DESCS {
        let old = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
        let new = key(desc, "ffeeddccbbaa99887766554433221100");
        let file = key_change_file(&new, &old, &Layout::DEFAULT);
        let header = polyseal_crypto::inspect(&file)?;
        assert_eq!(
            header.key_desc(),
            Some(old.key_desc()),
            "sealed with the old key"
        );
        let plaintext = polyseal_crypto::decrypt(&file, &old)?;
        assert_eq!(
            &plaintext[..],
            &bootstrap_file(&new)[..],
            "the same XML as the bootstrap file"
        );
        assert_eq!(xmllint(&plaintext), Ok(()), "{desc}");
        let read = read_key_change_file(Path::new("k.cfg"), &file, &old, &Layout::DEFAULT)?;
        assert_eq!(*read.expose(), *new.expose(), "{desc}");
    }
    Ok(())
}

#[test]
fn a_key_change_file_refuses_a_key_other_than_the_old_one() -> TestResult {
    let mac: Mac = "0004f2abcdef".parse()?;
    let old = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
    let new = KeyString::new(KeyDesc::for_generation(&mac, 2), ConfigKey::generate());
    let file = key_change_file(&new, &old, &Layout::DEFAULT);
    let impostor = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
    let error = read_key_change_file(
        Path::new("0004f2abcdef-key.cfg"),
        &file,
        &impostor,
        &Layout::DEFAULT,
    )
    .expect_err("a different key cannot open it");
    assert!(error.is_integrity_failure(), "{error:?}");
    assert!(
        error.to_string().starts_with("0004f2abcdef-key.cfg: "),
        "{error}"
    );
    // And a bootstrap reader refuses the encrypted file outright, naming its KeyDesc.
    let error = read_bootstrap_file(Path::new("k.cfg"), &file).expect_err("encrypted");
    assert!(matches!(error, Error::Encrypted { key_desc: Some(ref d), .. } if d == old.key_desc()));
    Ok(())
}

#[test]
fn key_files_a_phone_would_not_apply_are_refused_with_the_reason() {
    let key_attr = r#"device.sec.configEncryption.key="Crypt=1;KeyDesc=k;Key=00112233445566778899aabbccddeeff;""#;
    let cases = [
        (
            format!(r#"<polycomConfig><device device.sec.configEncryption.key.set="1" {key_attr}/></polycomConfig>"#),
            "device.set is not \"1\"",
        ),
        (
            format!(r#"<polycomConfig><device device.set="1" device.sec.configEncryption.key.set="0" {key_attr}/></polycomConfig>"#),
            "device.sec.configEncryption.key.set is not \"1\"",
        ),
        (
            r#"<polycomConfig><device device.set="1" device.sec.configEncryption.key.set="1"/></polycomConfig>"#.to_owned(),
            "no device.sec.configEncryption.key",
        ),
        (
            r#"<polycomConfig><device device.set="1" device.sec.configEncryption.key.set="1" device.sec.configEncryption.key="Crypt=1;KeyDesc=k;Key=0011;"/></polycomConfig>"#.to_owned(),
            "key string has a Key that is not 32 hex digits",
        ),
    ];
    for (xml, reason) in cases {
        let error = read_bootstrap_file(Path::new("0004f2abcdef-key.cfg"), xml.as_bytes())
            .expect_err("not a usable key file");
        let shown = error.to_string();
        assert!(shown.starts_with("0004f2abcdef-key.cfg: "), "{shown}");
        assert!(shown.contains(reason), "{shown} / {reason}");
        assert!(!shown.contains("0011"), "no key material in {shown}");
    }
}

#[test]
fn key_file_patterns_must_name_one_phones_file_in_the_tree() {
    let cases = [
        ("[PHONE_MAC_ADDRESS]-key.cfg", None),
        ("keys/[PHONE_MAC_ADDRESS]-key.cfg", None),
        ("key-[PHONE_MAC_ADDRESS].cfg", None),
        ("site-key.cfg", Some("does not contain [PHONE_MAC_ADDRESS]")),
        (
            "[PHONE_MAC_ADDRESS]-key.cfg, site.cfg",
            Some("contains a comma"),
        ),
        (
            "../[PHONE_MAC_ADDRESS]-key.cfg",
            Some("not a path inside the provisioning tree"),
        ),
        (
            "https://h/[PHONE_MAC_ADDRESS]-key.cfg",
            Some("not a path inside the provisioning tree"),
        ),
        ("[PHONE_MAC_ADDRESS].cfg", Some("master file's name")),
    ];
    for (pattern, problem) in cases {
        match (KeyFilePattern::parse(pattern), problem) {
            (Ok(parsed), None) => assert_eq!(parsed.as_str(), pattern),
            (Err(error), Some(problem)) => {
                let shown = error.to_string();
                assert!(
                    shown.starts_with(&format!("key file name pattern {pattern:?} ")),
                    "{shown}"
                );
                assert!(shown.contains(problem), "{shown}");
            }
            (result, _) => panic!("{pattern}: unexpected {result:?}"),
        }
    }
    let mac: Mac = "0004f2abcdef".parse().expect("valid");
    assert_eq!(
        KeyFilePattern::default().file_name(&mac),
        "0004f2abcdef-key.cfg"
    );
}

#[test]
fn a_phones_key_file_is_recognised_under_every_pattern_shape_and_no_other_file_is() {
    let patterns = [
        "[PHONE_MAC_ADDRESS]-key.cfg",
        "keys/[PHONE_MAC_ADDRESS]-key.cfg",
        "key-[PHONE_MAC_ADDRESS].cfg",
        "./k//[PHONE_MAC_ADDRESS]/[PHONE_MAC_ADDRESS]_key.xml",
        "[PHONE_MAC_ADDRESS]",
    ];
    let macs: Vec<Mac> = ["0004f2abcdef", "64167f000001", "0004f2000001"]
        .iter()
        .map(|m| m.parse().expect("valid"))
        .collect();
    for pattern in patterns {
        let parsed = KeyFilePattern::parse(pattern).expect("valid pattern");
        for mac in &macs {
            let reference = parsed.reference(mac);
            let own = reference.tree_path().expect("in the tree");
            assert!(
                parsed.is_key_file_of(mac, own),
                "{pattern}: {}",
                own.display()
            );
            for other in &macs {
                assert_eq!(
                    parsed.is_key_file_of(other, own),
                    other == mac,
                    "{pattern}: {} as {other}'s",
                    own.display()
                );
            }
            let config = format!("{mac}-sip.cfg");
            assert!(!parsed.is_key_file_of(mac, Path::new(&config)), "{pattern}");
        }
    }
}

proptest! {
    #[test]
    fn every_valid_key_string_survives_a_bootstrap_round_trip(
        desc in "[!#-:<>-~]([ !#-:<>-~]{0,62}[!#-:<>-~])?",
        key_bytes in any::<[u8; 16]>(),
    ) {
        let key = KeyString::new(KeyDesc::new(&desc).expect("generated valid"), ConfigKey::from_bytes(key_bytes));
        let file = bootstrap_file(&key);
        let read = read_bootstrap_file(Path::new("k.cfg"), &file).expect("reads back");
        prop_assert_eq!(&*read.expose(), &*key.expose());
    }
}
