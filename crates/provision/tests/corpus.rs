//! Every real Polycom file of the corpus (tests/fixtures/polycom: unmodified files of the
//! public provisioner.net library) is classified, parsed and scanned.

use std::path::{Path, PathBuf};

use polyseal_provision::{
    Error, Exposure, FindingKind, MasterAttribute, MasterConfig, MasterWarning, Position,
    SecretKind, classify, scan,
};

fn corpus(name: &str) -> (PathBuf, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/polycom")
        .join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, bytes)
}

/// Each corpus file, what it is, and whether it is well-formed.
const CORPUS: [(&str, &str, bool); 6] = [
    ("000000000000-template.cfg", "master file", true),
    ("000000000000-directory.xml", "contact directory", true),
    ("features.cfg", "configuration file (<polycomConfig>)", true),
    (
        "sip-small.cfg",
        "configuration file (<polycomConfig>)",
        true,
    ),
    ("sip-3.2.7.cfg", "configuration file (<sip>)", true),
    (
        "malformed-sip-3.3.3.cfg",
        "configuration file (<polycomConfig>)",
        false,
    ),
];

#[test]
fn every_corpus_file_is_classified() -> Result<(), Error> {
    for (name, kind, _) in CORPUS {
        let (path, bytes) = corpus(name);
        assert_eq!(classify(&path, &bytes)?.to_string(), kind, "{name}");
    }
    Ok(())
}

#[test]
fn every_well_formed_corpus_file_scans_clean_under_every_exposure() -> Result<(), Error> {
    // The corpus is templates: every secret parameter in it is empty or a {$placeholder},
    // and empty values are not findings.
    let exposures = [
        Exposure::Master,
        Exposure::Shared,
        Exposure::PerPhonePlaintext,
        Exposure::PerPhoneEncrypted,
        Exposure::KeyFile,
    ];
    for (name, _, _) in CORPUS.into_iter().filter(|c| c.2) {
        let (path, bytes) = corpus(name);
        for exposure in exposures {
            assert_eq!(scan(&path, &bytes, exposure)?, [], "{name} as {exposure:?}");
        }
    }
    Ok(())
}

#[test]
fn the_malformed_corpus_file_is_an_error_naming_file_line_and_column() {
    let (path, bytes) = corpus("malformed-sip-3.3.3.cfg");
    let error = scan(&path, &bytes, Exposure::Shared).expect_err("the file is malformed");
    match &error {
        Error::Xml {
            path: at,
            position,
            reason,
        } => {
            assert_eq!(at, &path);
            // xmllint: "malformed-sip-3.3.3.cfg:86: parser error : Opening and ending tag
            // mismatch: voIpProt line 21 and SIP", under `     </SIP>`.
            assert_eq!(
                *position,
                Position {
                    line: 86,
                    column: 6
                }
            );
            assert!(
                reason.contains("'voIpProt'") && reason.contains("'SIP'"),
                "{reason}"
            );
        }
        other => panic!("expected an XML error, got {other:?}"),
    }
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!("{}:86:6: not well-formed XML", path.display())),
        "{shown}"
    );
}

#[test]
fn the_corpus_master_template_is_parsed_with_its_per_model_lists() -> Result<(), Error> {
    let (path, bytes) = corpus("000000000000-template.cfg");
    let master = MasterConfig::parse(&path, &bytes)?;
    let value = |attribute, model| master.setting(attribute, model).map(|s| s.value.as_str());
    assert_eq!(
        value(MasterAttribute::ConfigFiles, None),
        Some("[PHONE_MAC_ADDRESS]_reg.cfg, sip.cfg")
    );
    assert_eq!(value(MasterAttribute::AppFilePath, None), Some("sip.ld"));
    assert_eq!(value(MasterAttribute::MiscFiles, None), Some(""));
    assert_eq!(
        value(MasterAttribute::LogFileDirectory, None),
        Some("./logs")
    );
    assert_eq!(
        value(MasterAttribute::OverridesDirectory, None),
        Some("./overrides")
    );
    assert_eq!(
        value(MasterAttribute::ContactsDirectory, None),
        Some("./contacts")
    );
    assert_eq!(
        value(MasterAttribute::LicenseDirectory, None),
        Some("./licenses")
    );
    let models: Vec<&str> = master.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(
        models,
        [
            "SPIP300", "SPIP500", "SPIP301", "SPIP501", "SPIP320", "SPIP600", "SPIP601",
            "SPIP4000", "SPIP430"
        ]
    );
    assert_eq!(
        value(MasterAttribute::ConfigFiles, Some("SPIP300")),
        Some("[PHONE_MAC_ADDRESS]_reg.cfg, server_213.cfg, phone1_213.cfg, sip_213.cfg")
    );
    // The template's own slip: <APPLICATION_SPIP320 … CONFIG_FILES_SPIP501="…"/>. SPIP320
    // phones look for CONFIG_FILES_SPIP320, so they use the generic list; the slip is reported.
    assert_eq!(
        value(MasterAttribute::ConfigFiles, Some("SPIP320")),
        Some("[PHONE_MAC_ADDRESS]_reg.cfg, sip.cfg")
    );
    // Line 25 starts with a tab; columns count characters, a tab is one.
    let setting = master.setting(MasterAttribute::ConfigFiles, Some("SPIP300"));
    assert_eq!(
        setting.map(|s| s.position),
        Some(Position {
            line: 25,
            column: 58
        })
    );
    assert_eq!(master.warnings.len(), 2);
    for (warning, attribute) in master
        .warnings
        .iter()
        .zip(["APP_FILE_PATH_SPIP501", "CONFIG_FILES_SPIP501"])
    {
        let MasterWarning::ForeignModelAttribute {
            model,
            attribute: found,
            position,
            ..
        } = warning
        else {
            panic!("unexpected warning {warning:?}");
        };
        assert_eq!(
            (model.as_str(), found.as_str(), position.line),
            ("SPIP320", attribute, 29)
        );
    }
    Ok(())
}

#[test]
fn corpus_configuration_files_are_not_masters() {
    for name in [
        "sip-small.cfg",
        "sip-3.2.7.cfg",
        "features.cfg",
        "000000000000-directory.xml",
    ] {
        let (path, bytes) = corpus(name);
        assert!(
            matches!(
                MasterConfig::parse(&path, &bytes),
                Err(Error::NotAMaster { .. })
            ),
            "{name}"
        );
    }
}

/// The corpus file with one empty attribute given a value, as an admin would fill it in.
fn filled(name: &str, empty_attribute: &str, value: &str) -> (PathBuf, Vec<u8>) {
    let (path, bytes) = corpus(name);
    let text = String::from_utf8(bytes).expect("corpus files are UTF-8");
    let empty = format!("{empty_attribute}=\"\"");
    assert!(text.contains(&empty), "{name} has {empty}");
    (
        path,
        text.replacen(&empty, &format!("{empty_attribute}=\"{value}\""), 1)
            .into_bytes(),
    )
}

#[test]
fn filled_in_secrets_of_both_schemas_are_found_at_their_line() -> Result<(), Error> {
    let cases = [
        // Old nested schema (UC Software 3.2.7 sip.cfg).
        (
            "sip-3.2.7.cfg",
            "apps.push.password",
            716,
            SecretKind::ServicePassword,
        ),
        (
            "sip-3.2.7.cfg",
            "dir.corp.password",
            295,
            SecretKind::ServicePassword,
        ),
        // Newer flat schema.
        (
            "features.cfg",
            "device.logincred.password",
            91,
            SecretKind::ServicePassword,
        ),
        (
            "features.cfg",
            "dir.corp.password",
            101,
            SecretKind::ServicePassword,
        ),
    ];
    for (name, parameter, line, secret) in cases {
        let (path, bytes) = filled(name, parameter, "a-long-Secret-value");
        let findings = scan(&path, &bytes, Exposure::Shared)?;
        assert_eq!(findings.len(), 1, "{name} {parameter}: {findings:?}");
        let finding = &findings[0];
        assert_eq!(
            (
                finding.parameter.as_str(),
                finding.position.line,
                finding.secret,
                finding.kind
            ),
            (parameter, line, secret, FindingKind::SecretInSharedFile)
        );
        assert_eq!(scan(&path, &bytes, Exposure::PerPhoneEncrypted)?, []);
    }
    Ok(())
}

#[test]
fn placeholders_in_secret_parameters_are_not_findings() -> Result<(), Error> {
    let (path, bytes) = filled(
        "features.cfg",
        "device.logincred.password",
        "{$logincred_password}",
    );
    assert_eq!(scan(&path, &bytes, Exposure::Shared)?, []);
    Ok(())
}

#[test]
fn corpus_urls_without_passwords_are_not_findings() -> Result<(), Error> {
    let (path, bytes) = filled(
        "sip-3.2.7.cfg",
        "apps.push.serverRootURL",
        "http://push.example/root",
    );
    assert_eq!(scan(&path, &bytes, Exposure::Master)?, []);
    let (path, bytes) = filled(
        "sip-3.2.7.cfg",
        "apps.push.serverRootURL",
        "http://push:Pa55word@push.example/root",
    );
    let findings = scan(&path, &bytes, Exposure::Master)?;
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].secret, SecretKind::UrlPassword);
    assert_eq!(findings[0].kind, FindingKind::SecretInMaster);
    assert_eq!(findings[0].parameter, "apps.push.serverRootURL");
    Ok(())
}

#[test]
fn corpus_files_are_also_well_formed_for_xmllint() {
    // Cross-check of the parser against libxml2: the same files are good and bad for both.
    for (name, _, well_formed) in CORPUS {
        let (path, _) = corpus(name);
        let status = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("xmllint must be installed (Debian package libxml2-utils)");
        assert_eq!(status.success(), well_formed, "{name}");
    }
}
