//! The secret scanner: which secrets are findings where, reported precisely and never shown.

use std::path::{Path, PathBuf};

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac, encrypt};
use polyseal_provision::{
    Error, Exposure, Finding, FindingKind, Position, Role, SECRET_PARAMETERS, SecretKind,
    SourceTree, Weakness, bootstrap_file, scan, secret_kind,
};
use proptest::prelude::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn findings(xml: &str, exposure: Exposure) -> Vec<(String, SecretKind, FindingKind)> {
    scan(Path::new("t.cfg"), xml.as_bytes(), exposure)
        .expect("well-formed")
        .into_iter()
        .map(|f| (f.parameter, f.secret, f.kind))
        .collect()
}

const STRONG: &str = "n7-Kq2v!Zr9wLp";

#[test]
fn a_per_phone_secret_in_site_cfg_is_reported_precisely() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("000000000000.cfg"),
        r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg"/>"#,
    )?;
    let site = format!(
        "<polycomConfig>\n  <reg reg.1.address=\"1001\"\n       reg.1.auth.userId=\"1001\"\n       reg.1.auth.password=\"{STRONG}\"/>\n</polycomConfig>\n"
    );
    std::fs::write(dir.path().join("site.cfg"), &site)?;
    let tree = SourceTree::open(dir.path())?;

    // The plan says site.cfg is shared…
    let mac: Mac = "0004f2abcdef".parse()?;
    let plan = tree.fetch_plan(&mac, None)?;
    let site_cfg = &plan.files[2];
    assert_eq!(
        (site_cfg.role, site_cfg.path()),
        (Role::SharedConfig, Some(Path::new("site.cfg")))
    );
    assert_eq!(site_cfg.role.exposure(true), Exposure::Shared);

    // …and the scan, of the tree or of the file, finds the secret in it, where it is.
    let path = dir.path().join("site.cfg");
    let expected = scan(&path, site.as_bytes(), Exposure::Shared)?.remove(0);
    assert_eq!(
        (
            &expected.file,
            expected.parameter.as_str(),
            expected.position,
            expected.secret,
            expected.kind
        ),
        (
            &path,
            "reg.1.auth.password",
            Position { line: 4, column: 8 },
            SecretKind::SipPassword,
            FindingKind::SecretInSharedFile
        )
    );
    let tree_scan = tree.scan(true);
    assert_eq!(tree_scan.findings, std::slice::from_ref(&expected));
    assert!(tree_scan.errors.is_empty() && tree_scan.encrypted.is_empty());
    assert_eq!(
        expected.to_string(),
        format!(
            "{}:4:8: reg.1.auth.password (SIP password): secret in a shared file, which cannot \
             carry a per-phone key and is served in plaintext to every phone; fix: move the \
             parameter to a per-phone file listed in CONFIG_FILES (for example \
             [PHONE_MAC_ADDRESS]-sip.cfg) and encrypt that file with the phone's key",
            path.display()
        )
    );
    Ok(())
}

#[test]
fn old_nested_and_new_flat_schemas_are_scanned_alike() {
    let old = format!(r#"<sip><reg><line reg.1.auth.password="{STRONG}"/></reg></sip>"#);
    let flat = format!(r#"<polycomConfig reg.1.auth.password="{STRONG}"/>"#);
    let expected = [(
        "reg.1.auth.password".to_owned(),
        SecretKind::SipPassword,
        FindingKind::SecretInSharedFile,
    )];
    assert_eq!(findings(&old, Exposure::Shared), expected);
    assert_eq!(findings(&flat, Exposure::Shared), expected);
}

#[test]
fn what_is_a_finding_depends_on_who_can_read_the_file() {
    let xml = format!(
        r#"<polycomConfig><device device.set="1" device.prov.password="{STRONG}" device.sec.configEncryption.key.set="1" device.sec.configEncryption.key="Crypt=1;KeyDesc=k;Key=00112233445566778899aabbccddeeff;"/></polycomConfig>"#
    );
    let prov = |kind| {
        (
            "device.prov.password".to_owned(),
            SecretKind::ServicePassword,
            kind,
        )
    };
    let config_key = |kind| {
        (
            "device.sec.configEncryption.key".to_owned(),
            SecretKind::ConfigurationKey,
            kind,
        )
    };
    let cases = [
        (
            Exposure::Master,
            vec![
                prov(FindingKind::SecretInMaster),
                config_key(FindingKind::SecretInMaster),
            ],
        ),
        (
            Exposure::Shared,
            vec![
                prov(FindingKind::SecretInSharedFile),
                config_key(FindingKind::SecretInSharedFile),
            ],
        ),
        (
            Exposure::PerPhonePlaintext,
            vec![
                prov(FindingKind::SecretInPlaintextPerPhoneFile),
                config_key(FindingKind::SecretInPlaintextPerPhoneFile),
            ],
        ),
        (Exposure::PerPhoneEncrypted, vec![]),
        // The key file carries the key by design; anything else in it is a plaintext secret.
        (
            Exposure::KeyFile,
            vec![prov(FindingKind::SecretInPlaintextPerPhoneFile)],
        ),
    ];
    for (exposure, expected) in cases {
        assert_eq!(findings(&xml, exposure), expected, "{exposure:?}");
    }
}

#[test]
fn our_own_bootstrap_file_is_clean_as_a_key_file_and_a_finding_anywhere_else() -> TestResult {
    let mac: Mac = "0004f2abcdef".parse()?;
    let file = bootstrap_file(&KeyString::new(
        KeyDesc::for_generation(&mac, 1),
        ConfigKey::generate(),
    ));
    assert_eq!(scan(Path::new("k.cfg"), &file, Exposure::KeyFile)?, []);
    let shared = scan(Path::new("k.cfg"), &file, Exposure::Shared)?;
    assert_eq!(shared.len(), 1);
    assert_eq!(
        shared[0].position,
        Position {
            line: 5,
            column: 11
        }
    );
    Ok(())
}

#[test]
fn weak_sip_passwords_are_reported_even_in_encrypted_files() {
    let cases = [
        ("reg.1.auth.password", "1234", Some(Weakness::DigitsOnly)),
        (
            "reg.2.auth.password",
            "12345678901234567890",
            Some(Weakness::DigitsOnly),
        ),
        ("reg.3.auth.password", "abc-123", Some(Weakness::TooShort)),
        ("reg.4.auth.password", STRONG, None),
        (
            "voIpProt.SIP.outboundProxy.password",
            "secret",
            Some(Weakness::TooShort),
        ),
        // Not a SIP password: strength is not judged.
        ("device.auth.localAdminPassword", "456", None),
    ];
    for (parameter, value, weakness) in cases {
        let xml = format!(r#"<polycomConfig {parameter}="{value}"/>"#);
        let found = findings(&xml, Exposure::PerPhoneEncrypted);
        let expected: Vec<_> = weakness
            .map(|w| {
                (
                    parameter.to_owned(),
                    SecretKind::SipPassword,
                    FindingKind::WeakSipPassword(w),
                )
            })
            .into_iter()
            .collect();
        assert_eq!(found, expected, "{parameter}={value}");
    }
    let in_shared = findings(
        r#"<polycomConfig reg.1.auth.password="1234"/>"#,
        Exposure::Shared,
    );
    assert_eq!(in_shared.len(), 2, "exposed and weak: {in_shared:?}");
}

#[test]
fn empty_values_placeholders_and_set_companions_are_not_findings() {
    let xml = r#"<polycomConfig reg.1.auth.password="" reg.2.auth.password="{$pass}" reg.3.auth.password="{$pass|}"
        device.prov.password.set="1" dir.local.passwordProtected="1" sec.pwd.length.admin="8" reg.1.auth.userId="1001"/>"#;
    assert_eq!(findings(xml, Exposure::Master), []);
    // A placeholder's default is what gets rendered when no value is given.
    let with_default = r#"<polycomConfig reg.1.auth.password="{$pass|1234}"/>"#;
    assert_eq!(findings(with_default, Exposure::PerPhoneEncrypted).len(), 1);
}

#[test]
fn passwords_inside_urls_are_found_in_any_parameter_and_in_masters() {
    let master = r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, ftp://prov:pr0v-Pass@10.0.0.1/site.cfg" LOG_FILE_DIRECTORY="ftp://logs@10.0.0.1/logs"/>"#;
    assert_eq!(
        findings(master, Exposure::Master),
        [(
            "CONFIG_FILES".to_owned(),
            SecretKind::UrlPassword,
            FindingKind::SecretInMaster
        )]
    );
    let config = r#"<polycomConfig voIpProt.server.1.address="sip://u:p@pbx.example" device.prov.serverName="https://prov.example/"/>"#;
    assert_eq!(
        findings(config, Exposure::PerPhonePlaintext),
        [(
            "voIpProt.server.1.address".to_owned(),
            SecretKind::UrlPassword,
            FindingKind::SecretInPlaintextPerPhoneFile
        )]
    );
}

#[test]
fn escaped_secret_values_are_judged_on_their_real_value() {
    // 12 characters once unescaped (`&amp;` is one), so not too short.
    let xml = r#"<polycomConfig reg.1.auth.password="a&amp;b&lt;c&gt;d&quot;efgh"/>"#;
    assert_eq!(findings(xml, Exposure::PerPhoneEncrypted), []);
}

#[test]
fn the_secret_list_recognises_its_own_patterns() {
    for secret in SECRET_PARAMETERS {
        let example = secret.pattern.replace('#', "7").replace('*', "x.");
        assert_eq!(
            secret_kind(&example),
            Some(secret.kind),
            "{}",
            secret.pattern
        );
        assert_eq!(
            secret_kind(&format!("{example}.set")),
            None,
            "{}",
            secret.pattern
        );
    }
}

#[test]
fn a_tree_scan_classifies_every_file_and_goes_on_past_bad_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let write = |name: &str, content: &[u8]| -> std::io::Result<PathBuf> {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))?;
        std::fs::write(&path, content)?;
        Ok(path)
    };
    let secret = format!(r#"<polycomConfig device.auth.localAdminPassword="{STRONG}"/>"#);
    let mac: Mac = "0004f2abcdef".parse()?;
    let key = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
    write(
        "000000000000.cfg",
        br#"<APPLICATION CONFIG_FILES="x" device.prov.password="pr0v-Pass-word"/>"#,
    )?;
    write("0004f2abcdef-sip.cfg", secret.as_bytes())?;
    write("0004f2abcdef-key.cfg", &bootstrap_file(&key))?;
    write("overrides/64167f000001-phone.cfg", secret.as_bytes())?;
    write("site.cfg", secret.as_bytes())?;
    let sealed = write("64167f000001-sip.cfg", &encrypt(secret.as_bytes(), &key)?)?;
    let broken = write("broken.xml", b"<a><b></a>")?;
    write("sip.ld", secret.as_bytes())?;
    let tree = SourceTree::open(dir.path())?;

    let exposures: Vec<(&Path, Exposure)> =
        tree.files().map(|f| (f, tree.exposure(f, false))).collect();
    assert_eq!(
        exposures,
        [
            (Path::new("000000000000.cfg"), Exposure::Master),
            (Path::new("0004f2abcdef-key.cfg"), Exposure::KeyFile),
            (
                Path::new("0004f2abcdef-sip.cfg"),
                Exposure::PerPhonePlaintext
            ),
            (
                Path::new("64167f000001-sip.cfg"),
                Exposure::PerPhonePlaintext
            ),
            (Path::new("broken.xml"), Exposure::Shared),
            (
                Path::new("overrides/64167f000001-phone.cfg"),
                Exposure::PerPhonePlaintext
            ),
            (Path::new("sip.ld"), Exposure::Shared),
            (Path::new("site.cfg"), Exposure::Shared),
        ]
    );
    assert_eq!(tree.exposure(Path::new("site.cfg"), true), Exposure::Shared);
    assert_eq!(
        tree.exposure(Path::new("0004f2abcdef-sip.cfg"), true),
        Exposure::PerPhoneEncrypted
    );

    let result = tree.scan(false);
    let found: Vec<(PathBuf, FindingKind)> = result
        .findings
        .iter()
        .map(|f| {
            (
                f.file
                    .strip_prefix(dir.path())
                    .unwrap_or(&f.file)
                    .to_owned(),
                f.kind,
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                PathBuf::from("000000000000.cfg"),
                FindingKind::SecretInMaster
            ),
            (
                PathBuf::from("0004f2abcdef-sip.cfg"),
                FindingKind::SecretInPlaintextPerPhoneFile
            ),
            (
                PathBuf::from("overrides/64167f000001-phone.cfg"),
                FindingKind::SecretInPlaintextPerPhoneFile
            ),
            (PathBuf::from("site.cfg"), FindingKind::SecretInSharedFile),
        ]
    );
    assert_eq!(result.encrypted, [sealed]);
    assert!(matches!(&result.errors[..], [Error::Xml { path, .. }] if *path == broken));
    // Told that per-phone files will be encrypted, only the shared and master secrets remain.
    assert_eq!(tree.scan(true).findings.len(), 2);
    Ok(())
}

#[test]
fn scanning_an_encrypted_file_asks_for_it_to_be_decrypted_first() -> TestResult {
    let mac: Mac = "0004f2abcdef".parse()?;
    let key = KeyString::new(KeyDesc::for_generation(&mac, 3), ConfigKey::generate());
    let sealed = encrypt(b"<polycomConfig/>", &key)?;
    let error = scan(
        Path::new("0004f2abcdef-sip.cfg"),
        &sealed,
        Exposure::PerPhoneEncrypted,
    )
    .expect_err("encrypted");
    assert_eq!(
        error.to_string(),
        "0004f2abcdef-sip.cfg: is an encrypted configuration file (KeyDesc 0004f2abcdef-g3); decrypt it first to read it as XML"
    );
    assert!(!error.is_io());
    Ok(())
}

/// Every way a finding or an error can be shown.
fn shown(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("{f} {f:?} {}", f.hint()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn secrets_never_appear_in_findings_or_errors(
        secret in "Zq[A-Za-z0-9!#%()*+,./:?@^_~-]{4,30}",
        parameter in prop::sample::select(vec![
            "reg.1.auth.password", "voIpProt.SIP.outboundProxy.password", "device.prov.password",
            "device.auth.localAdminPassword", "dir.corp.password", "device.sec.configEncryption.key",
            "feature.x.password",
        ]),
    ) {
        let escaped = secret.replace('&', "&amp;").replace('<', "&lt;");
        let flat = format!("<polycomConfig>\n <x {parameter}=\"{escaped}\" url=\"ftp://u:{escaped}@h/\"/>\n</polycomConfig>");
        let exposures = [Exposure::Master, Exposure::Shared, Exposure::PerPhonePlaintext, Exposure::PerPhoneEncrypted, Exposure::KeyFile];
        for exposure in exposures {
            let found = scan(Path::new("t.cfg"), flat.as_bytes(), exposure).expect("well-formed");
            prop_assert!(!shown(&found).contains(&secret));
        }
        // Ill-formed XML around a secret: the error names tags and positions, not values.
        let duplicated = format!("<polycomConfig {parameter}=\"{escaped}\" {parameter}=\"{escaped}\"/>");
        let error = scan(Path::new("t.cfg"), duplicated.as_bytes(), Exposure::Shared).expect_err("duplicate attribute");
        let shown_error = format!("{error} {error:?}");
        prop_assert!(!shown_error.contains(&secret));
        let mismatched = format!("<a {parameter}=\"{escaped}\"></b>");
        let error = scan(Path::new("t.cfg"), mismatched.as_bytes(), Exposure::Shared).expect_err("mismatched tag");
        let shown_error = format!("{error} {error:?}");
        prop_assert!(!shown_error.contains(&secret));
    }
}

#[test]
fn the_documentation_lists_every_secret_parameter() -> TestResult {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/PROVISIONING.md"),
    )?;
    for secret in SECRET_PARAMETERS {
        let row = format!("| `{}` | {} |", secret.pattern, secret.kind);
        assert!(
            doc.contains(&row),
            "docs/PROVISIONING.md lacks the row {row}"
        );
    }
    Ok(())
}
