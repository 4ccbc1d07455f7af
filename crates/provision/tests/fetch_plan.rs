//! Fetch plans built from real trees on disk: what each phone requests, in order, and the
//! issues that would keep it from its key or brick it.

use std::path::{Path, PathBuf};

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac, encrypt};
use polyseal_provision::{
    Error, FetchPlan, FileReference, FileState, KeyFilePattern, Master, PlanIssue, Position, Role,
    SourceTree,
};
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A tree on disk made of `(relative path, content)` pairs.
fn tree(files: &[(&str, &[u8])]) -> Result<(TempDir, SourceTree), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    for (name, content) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, content)?;
    }
    let tree = SourceTree::open(dir.path())?;
    Ok((dir, tree))
}

fn master(config_files: &str) -> Vec<u8> {
    format!("<APPLICATION CONFIG_FILES=\"{config_files}\" CONTACTS_DIRECTORY=\"\" OVERRIDES_DIRECTORY=\"\"/>")
        .into_bytes()
}

fn mac() -> Mac {
    Mac::parse("0004f2abcdef").expect("a valid MAC")
}

fn key(generation: u32) -> KeyString {
    KeyString::new(
        KeyDesc::for_generation(&mac(), generation),
        ConfigKey::generate(),
    )
}

/// The plan's files as `(role, reference)`, for compact assertions.
fn files(plan: &FetchPlan) -> Vec<(Role, String)> {
    plan.files
        .iter()
        .map(|f| (f.role, f.reference.to_string()))
        .collect()
}

fn in_tree(path: &str) -> FileReference {
    FileReference::InTree(PathBuf::from(path))
}

#[test]
fn config_files_spellings_resolve_to_the_same_requests() -> TestResult {
    let expected_key_and_site = [
        (Role::KeyFile, "0004f2abcdef-key.cfg".to_owned()),
        (Role::SharedConfig, "site.cfg".to_owned()),
    ];
    let cases = [
        "[PHONE_MAC_ADDRESS]-key.cfg,site.cfg",
        "[PHONE_MAC_ADDRESS]-key.cfg, site.cfg",
        "  [PHONE_MAC_ADDRESS]-key.cfg ,\tsite.cfg  ",
        "[PHONE_MAC_ADDRESS]-key.cfg,, site.cfg,",
        "./[PHONE_MAC_ADDRESS]-key.cfg, ./site.cfg",
        "/[PHONE_MAC_ADDRESS]-key.cfg, configs/../site.cfg",
    ];
    for config_files in cases {
        let (_dir, tree) = tree(&[("000000000000.cfg", &master(config_files))])?;
        let plan = tree.fetch_plan(&mac(), None)?;
        let listed = files(&plan);
        assert_eq!(listed[1..3], expected_key_and_site, "{config_files:?}");
        assert_eq!(plan.issues, [], "{config_files:?}");
    }
    Ok(())
}

#[test]
fn config_files_order_roles_and_directories_follow_the_phone() -> TestResult {
    let master = br#"<APPLICATION APP_FILE_PATH="sip.ld"
        CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, configs/[PHONE_MAC_ADDRESS]-sip.cfg, 0004F2ABCDEF-extra.cfg, site.cfg, configs/common.cfg"
        CONTACTS_DIRECTORY="./contacts/" OVERRIDES_DIRECTORY="/overrides"/>"#;
    let (_dir, tree) = tree(&[("000000000000.cfg", master)])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    let expected = [
        (Role::Master, "000000000000.cfg"),
        (Role::KeyFile, "0004f2abcdef-key.cfg"),
        (Role::PerPhoneConfig, "configs/0004f2abcdef-sip.cfg"),
        // A MAC typed by hand in upper case still names this phone's file...
        (Role::PerPhoneConfig, "0004F2ABCDEF-extra.cfg"),
        (Role::SharedConfig, "site.cfg"),
        (Role::SharedConfig, "configs/common.cfg"),
        (Role::Contacts, "contacts/0004f2abcdef-directory.xml"),
        (Role::Override, "overrides/0004f2abcdef-phone.cfg"),
    ];
    let expected: Vec<(Role, String)> = expected
        .iter()
        .map(|(r, p)| (*r, (*p).to_owned()))
        .collect();
    assert_eq!(files(&plan), expected);
    assert_eq!(plan.model, None);
    // ...which 000000000000.cfg, every phone's master, cannot list: the next phone to boot
    // would fetch it too.
    assert_eq!(
        plan.issues,
        [PlanIssue::OtherPhonesFile {
            attribute: "CONFIG_FILES".into(),
            reference: FileReference::parse("0004F2ABCDEF-extra.cfg"),
            owner: mac(),
        }]
    );
    Ok(())
}

#[test]
fn a_phones_own_master_may_list_its_files_by_its_mac_in_either_case() -> TestResult {
    let master = br#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, 0004F2ABCDEF-extra.cfg, 0004f2abcdef-sip.cfg, site.cfg"/>"#;
    let (_dir, tree) = tree(&[("0004f2abcdef.cfg", master)])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    let roles: Vec<(Role, String)> = files(&plan)[2..4].to_vec();
    assert_eq!(
        roles,
        [
            (Role::PerPhoneConfig, "0004F2ABCDEF-extra.cfg".to_owned()),
            (Role::PerPhoneConfig, "0004f2abcdef-sip.cfg".to_owned()),
        ]
    );
    assert_eq!(plan.issues, []);
    Ok(())
}

#[test]
fn urls_with_credentials_are_redacted_and_reported_as_not_in_the_tree() -> TestResult {
    let (_dir, tree) = tree(&[(
        "000000000000.cfg",
        &master(
            "[PHONE_MAC_ADDRESS]-key.cfg, https://prov:S3cretPass@cfg.example/[PHONE_MAC_ADDRESS]-sip.cfg",
        ),
    )])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    let url = FileReference::Url("https://prov:<redacted>@cfg.example/0004f2abcdef-sip.cfg".into());
    assert_eq!(plan.files[2].reference, url);
    assert_eq!(plan.files[2].role, Role::PerPhoneConfig);
    assert_eq!(plan.files[2].state, FileState::NotInTree);
    assert_eq!(plan.files[2].path(), None);
    assert_eq!(
        plan.issues,
        [PlanIssue::NotInTree {
            attribute: "CONFIG_FILES".into(),
            reference: url
        }]
    );
    let shown = format!("{plan:?} {}", plan.issues[0]);
    assert!(!shown.contains("S3cretPass"), "{shown}");
    Ok(())
}

#[test]
fn relative_paths_that_leave_the_tree_are_reported() -> TestResult {
    let (_dir, tree) = tree(&[(
        "000000000000.cfg",
        &master("[PHONE_MAC_ADDRESS]-key.cfg, ../shared/site.cfg"),
    )])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    let outside = FileReference::OutsideTree("../shared/site.cfg".into());
    assert_eq!(plan.files[2].reference, outside);
    assert_eq!(
        plan.issues,
        [PlanIssue::NotInTree {
            attribute: "CONFIG_FILES".into(),
            reference: outside
        }]
    );
    Ok(())
}

#[test]
fn a_master_that_does_not_list_the_key_file_is_reported_precisely() -> TestResult {
    let master = b"<?xml version=\"1.0\"?>\n<APPLICATION\n  APP_FILE_PATH=\"sip.ld\"\n  CONFIG_FILES=\"[PHONE_MAC_ADDRESS]-sip.cfg, site.cfg\"/>\n";
    let (dir, tree) = tree(&[("000000000000.cfg", master)])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    let issue = PlanIssue::KeyFileNotListed {
        master: dir.path().join("000000000000.cfg"),
        attribute: "CONFIG_FILES".into(),
        position: Position { line: 4, column: 3 },
        key_file: "0004f2abcdef-key.cfg".into(),
    };
    assert_eq!(plan.issues, [issue]);
    assert_eq!(plan.key_file(), None);
    assert_eq!(
        plan.issues[0].to_string(),
        format!(
            "{}:4:3: CONFIG_FILES does not list the key file 0004f2abcdef-key.cfg: the phone will \
             never fetch its key; add it to CONFIG_FILES",
            dir.path().join("000000000000.cfg").display()
        )
    );
    Ok(())
}

#[test]
fn a_master_without_config_files_points_at_its_application_element() -> TestResult {
    let (_dir, tree) = tree(&[(
        "000000000000.cfg",
        b"\n\n  <APPLICATION APP_FILE_PATH=\"sip.ld\"/>",
    )])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    assert!(matches!(
        &plan.issues[..],
        [PlanIssue::KeyFileNotListed { attribute, position: Position { line: 3, column: 4 }, .. }]
            if attribute == "CONFIG_FILES"
    ));
    Ok(())
}

#[test]
fn a_configured_key_file_pattern_is_the_one_looked_for() -> TestResult {
    let (_dir, tree) = tree(&[(
        "000000000000.cfg",
        &master("keys/[PHONE_MAC_ADDRESS].key.cfg, site.cfg"),
    )])?;
    let default_plan = tree.fetch_plan(&mac(), None)?;
    assert!(
        matches!(&default_plan.issues[..], [PlanIssue::KeyFileNotListed { key_file, .. }] if key_file == "0004f2abcdef-key.cfg")
    );
    let tree =
        tree.with_key_file_pattern(KeyFilePattern::parse("keys/[PHONE_MAC_ADDRESS].key.cfg")?);
    let plan = tree.fetch_plan(&mac(), None)?;
    assert_eq!(plan.issues, []);
    assert_eq!(
        plan.key_file().map(|f| f.reference.clone()),
        Some(in_tree("keys/0004f2abcdef.key.cfg"))
    );
    Ok(())
}

#[test]
fn per_model_lists_give_one_plan_per_model() -> TestResult {
    let master = br#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg" CONTACTS_DIRECTORY="contacts">
  <APPLICATION_VVX500 APP_FILE_PATH_VVX500="vvx.ld" CONFIG_FILES_VVX500="[PHONE_MAC_ADDRESS]-key.cfg, vvx.cfg, site.cfg"/>
  <APPLICATION_SPIP300 CONFIG_FILES_SPIP300="[PHONE_MAC_ADDRESS]_reg.cfg, sip_213.cfg" CONTACTS_DIRECTORY_SPIP300="old-contacts"/>
  <APPLICATION_SPIP320 CONFIG_FILES_SPIP501="sip_317.cfg"/>
</APPLICATION>"#;
    let (dir, tree) = tree(&[("000000000000.cfg", master)])?;
    let plans = tree.fetch_plans(&mac())?;
    let summary: Vec<(Option<&str>, Vec<String>)> = plans
        .iter()
        .map(|p| {
            (
                p.model.as_deref(),
                p.files[1..]
                    .iter()
                    .map(|f| f.reference.to_string())
                    .collect(),
            )
        })
        .collect();
    let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        summary,
        [
            (
                None,
                names(&[
                    "0004f2abcdef-key.cfg",
                    "site.cfg",
                    "contacts/0004f2abcdef-directory.xml",
                    "0004f2abcdef-phone.cfg"
                ])
            ),
            (
                Some("VVX500"),
                names(&[
                    "0004f2abcdef-key.cfg",
                    "vvx.cfg",
                    "site.cfg",
                    "contacts/0004f2abcdef-directory.xml",
                    "0004f2abcdef-phone.cfg"
                ])
            ),
            (
                Some("SPIP300"),
                names(&[
                    "0004f2abcdef_reg.cfg",
                    "sip_213.cfg",
                    "old-contacts/0004f2abcdef-directory.xml",
                    "0004f2abcdef-phone.cfg"
                ])
            ),
            // CONFIG_FILES_SPIP501 on the SPIP320 element is not SPIP320's: generic list.
            (
                Some("SPIP320"),
                names(&[
                    "0004f2abcdef-key.cfg",
                    "site.cfg",
                    "contacts/0004f2abcdef-directory.xml",
                    "0004f2abcdef-phone.cfg"
                ])
            ),
        ]
    );
    // Only the SPIP300 list misses the key file, and the issue says which attribute and line.
    let missing: Vec<(Option<&str>, &PlanIssue)> = plans
        .iter()
        .flat_map(|p| p.issues.iter().map(move |i| (p.model.as_deref(), i)))
        .collect();
    assert_eq!(
        missing,
        [(
            Some("SPIP300"),
            &PlanIssue::KeyFileNotListed {
                master: dir.path().join("000000000000.cfg"),
                attribute: "CONFIG_FILES_SPIP300".into(),
                position: Position {
                    line: 3,
                    column: 24
                },
                key_file: "0004f2abcdef-key.cfg".into(),
            }
        )]
    );
    Ok(())
}

#[test]
fn the_corpus_master_template_gives_a_plan_per_model_and_misses_the_key_file() -> TestResult {
    let template = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/polycom/000000000000-template.cfg"),
    )?;
    let (_dir, tree) = tree(&[("000000000000.cfg", &template)])?;
    let plans = tree.fetch_plans(&mac())?;
    assert_eq!(plans.len(), 10);
    for plan in &plans {
        assert_eq!(plan.files[0].role, Role::Master);
        assert_eq!(plan.files[1].reference, in_tree("0004f2abcdef_reg.cfg"));
        assert_eq!(plan.files[1].role, Role::PerPhoneConfig);
        assert_eq!(plan.files[1].state, FileState::Missing);
        assert!(
            matches!(&plan.issues[..], [PlanIssue::KeyFileNotListed { .. }]),
            "{plan:?}"
        );
    }
    let last = &plans[0].files;
    assert_eq!(
        last[last.len() - 2].reference,
        in_tree("contacts/0004f2abcdef-directory.xml")
    );
    assert_eq!(
        last[last.len() - 1].reference,
        in_tree("overrides/0004f2abcdef-phone.cfg")
    );
    Ok(())
}

#[test]
fn file_states_tell_missing_plaintext_and_encrypted_with_their_key_desc() -> TestResult {
    let g1 = key(1);
    let sealed = encrypt(b"<polycomConfig/>", &g1)?;
    let (_dir, tree) = tree(&[
        (
            "000000000000.cfg",
            &master("[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"),
        ),
        ("0004f2abcdef-sip.cfg", &sealed),
        ("site.cfg", b"<polycomConfig/>"),
        (
            "0004f2abcdef-directory.xml",
            b"Crypt=1;KeyDesc=x;Digest=zz;\n",
        ),
    ])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    let states: Vec<(String, FileState)> = plan
        .files
        .iter()
        .map(|f| (f.reference.to_string(), f.state.clone()))
        .collect();
    assert_eq!(
        states[0],
        ("000000000000.cfg".to_owned(), FileState::Plaintext)
    );
    assert_eq!(
        states[1],
        ("0004f2abcdef-key.cfg".to_owned(), FileState::Missing)
    );
    assert_eq!(
        states[2],
        (
            "0004f2abcdef-sip.cfg".to_owned(),
            FileState::Encrypted {
                key_desc: Some(g1.key_desc().clone())
            }
        )
    );
    assert_eq!(states[3], ("site.cfg".to_owned(), FileState::Plaintext));
    assert!(
        matches!(states[4].1, FileState::BadHeader(_)),
        "{:?}",
        states[4]
    );
    assert!(plan.files[2].exists() && !plan.files[1].exists());
    assert_eq!(
        plan.files[2].to_string(),
        "0004f2abcdef-sip.cfg (per-phone config, encrypted (0004f2abcdef-g1))"
    );
    Ok(())
}

#[test]
fn an_encrypted_master_is_reported_precisely() -> TestResult {
    let g1 = key(1);
    let sealed = encrypt(&master("[PHONE_MAC_ADDRESS]-key.cfg"), &g1)?;
    let (dir, tree) = tree(&[("000000000000.cfg", &sealed)])?;
    assert!(matches!(
        tree.default_master(),
        Some(Master::Encrypted { .. })
    ));
    let plan = tree.fetch_plan(&mac(), None)?;
    assert_eq!(
        files(&plan),
        [(Role::Master, "000000000000.cfg".to_owned())]
    );
    assert_eq!(
        plan.files[0].state,
        FileState::Encrypted {
            key_desc: Some(g1.key_desc().clone())
        }
    );
    let path = dir.path().join("000000000000.cfg");
    assert_eq!(
        plan.issues,
        [PlanIssue::MasterEncrypted {
            path: path.clone(),
            key_desc: Some(g1.key_desc().clone())
        }]
    );
    assert_eq!(
        plan.issues[0].to_string(),
        format!(
            "{}: the master file is encrypted (KeyDesc 0004f2abcdef-g1); phones cannot read an \
             encrypted master and reboot again and again: replace it with the plaintext file",
            path.display()
        )
    );
    Ok(())
}

#[test]
fn an_encrypted_phone_master_is_reported_and_not_bypassed() -> TestResult {
    let sealed = encrypt(&master("x.cfg"), &key(1))?;
    let (dir, tree) = tree(&[
        ("000000000000.cfg", &master("[PHONE_MAC_ADDRESS]-key.cfg")),
        ("0004f2abcdef.cfg", &sealed),
    ])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    assert_eq!(
        files(&plan),
        [(Role::Master, "0004f2abcdef.cfg".to_owned())]
    );
    assert!(
        matches!(&plan.issues[..], [PlanIssue::MasterEncrypted { path, .. }] if *path == dir.path().join("0004f2abcdef.cfg"))
    );
    Ok(())
}

#[test]
fn a_phones_own_master_wins_and_a_plain_mac_cfg_is_not_a_master() -> TestResult {
    let other: Mac = "64167f000001".parse()?;
    let (dir, tree) = tree(&[
        (
            "000000000000.cfg",
            &master("[PHONE_MAC_ADDRESS]-key.cfg, site.cfg"),
        ),
        (
            "0004f2abcdef.cfg",
            &master("[PHONE_MAC_ADDRESS]-key.cfg, special.cfg"),
        ),
        (
            "64167f000001.cfg",
            b"<polycomConfig reg.1.address=\"1001\"/>",
        ),
    ])?;
    let own = tree.fetch_plan(&mac(), None)?;
    assert_eq!(own.files[0].reference, in_tree("0004f2abcdef.cfg"));
    assert_eq!(own.files[2].reference, in_tree("special.cfg"));
    assert_eq!(own.issues, []);

    let fallback = tree.fetch_plan(&other, None)?;
    assert_eq!(fallback.files[0].reference, in_tree("000000000000.cfg"));
    assert_eq!(fallback.files[2].reference, in_tree("site.cfg"));
    assert!(tree.has_phone_file_not_master(&other));
    assert_eq!(
        fallback.issues,
        [PlanIssue::PhoneFileNotMaster {
            path: dir.path().join("64167f000001.cfg")
        }]
    );
    assert_eq!(tree.phone_masters().count(), 1);
    Ok(())
}

#[test]
fn another_phones_file_in_a_list_is_reported() -> TestResult {
    let (_dir, tree) = tree(&[(
        "000000000000.cfg",
        &master("[PHONE_MAC_ADDRESS]-key.cfg, 64167f000001-sip.cfg"),
    )])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    assert_eq!(plan.files[2].role, Role::SharedConfig);
    assert_eq!(
        plan.issues,
        [PlanIssue::OtherPhonesFile {
            attribute: "CONFIG_FILES".into(),
            reference: in_tree("64167f000001-sip.cfg"),
            owner: "64167f000001".parse()?,
        }]
    );
    Ok(())
}

#[test]
fn a_tree_without_master_gives_an_empty_plan_with_the_reason() -> TestResult {
    let (_dir, tree) = tree(&[("site.cfg", b"<polycomConfig/>")])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    assert_eq!(plan.files, []);
    assert_eq!(plan.issues, [PlanIssue::NoMaster]);
    Ok(())
}

#[test]
fn a_malformed_or_wrong_master_stops_opening_the_tree_with_its_position() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("000000000000.cfg"),
        "<APPLICATION>\n  <x></y>\n</APPLICATION>",
    )?;
    match SourceTree::open(dir.path()) {
        Err(Error::Xml { path, position, .. }) => {
            assert_eq!(path, dir.path().join("000000000000.cfg"));
            assert_eq!(position, Position { line: 2, column: 6 });
        }
        other => panic!("expected an XML error, got {other:?}"),
    }
    std::fs::write(dir.path().join("000000000000.cfg"), "<polycomConfig/>")?;
    let error = SourceTree::open(dir.path()).expect_err("not a master");
    assert_eq!(
        error.to_string(),
        format!(
            "{}:1:2: not a master file: the root element is <polycomConfig>, a master's is <APPLICATION>",
            dir.path().join("000000000000.cfg").display()
        )
    );
    Ok(())
}

#[test]
fn opening_a_missing_directory_is_bad_input_naming_it() {
    let error = SourceTree::open("/nonexistent/polyseal-tree").expect_err("no such directory");
    assert!(
        matches!(error, polyseal_provision::Error::MissingTree { .. }),
        "{error:?}"
    );
    assert!(
        !error.is_io(),
        "a missing tree is the caller's input, not an I/O failure"
    );
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/polyseal-tree: "),
        "{error}"
    );
}

#[test]
fn the_tree_lists_files_in_subdirectories_but_not_hidden_ones() -> TestResult {
    let (_dir, tree) = tree(&[
        ("000000000000.cfg", &master("")),
        ("contacts/0004f2abcdef-directory.xml", b"<directory/>"),
        (".git/config", b"x"),
        ("logs/.0004f2abcdef-app.log.swp", b"x"),
    ])?;
    let listed: Vec<&Path> = tree.files().collect();
    assert_eq!(
        listed,
        [
            Path::new("000000000000.cfg"),
            Path::new("contacts/0004f2abcdef-directory.xml")
        ]
    );
    Ok(())
}

#[test]
fn a_one_line_plaintext_key_file_is_plaintext_though_its_first_line_holds_crypt() -> TestResult {
    // polyseal-crypto's is_encrypted looks for `Crypt=` in the first line; an XML file (it
    // starts with `<`) is never taken for encrypted.
    let one_line = br#"<polycomConfig><device device.set="1" device.sec.configEncryption.key.set="1" device.sec.configEncryption.key="Crypt=1;KeyDesc=k;Key=00112233445566778899aabbccddeeff;"/></polycomConfig>"#;
    let (_dir, tree) = tree(&[
        ("000000000000.cfg", &master("[PHONE_MAC_ADDRESS]-key.cfg")),
        ("0004f2abcdef-key.cfg", one_line),
    ])?;
    let plan = tree.fetch_plan(&mac(), None)?;
    assert_eq!(
        plan.key_file().map(|f| &f.state),
        Some(&FileState::Plaintext)
    );
    let kind = polyseal_provision::classify(Path::new("k.cfg"), one_line)?;
    assert_eq!(kind.to_string(), "configuration file (<polycomConfig>)");
    Ok(())
}

#[test]
fn a_key_file_listed_after_a_per_phone_file_is_reported_with_that_file() -> TestResult {
    let (dir, late) = tree(&[(
        "000000000000.cfg",
        &master("site.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, [PHONE_MAC_ADDRESS]-key.cfg"),
    )])?;
    let plan = late.fetch_plan(&mac(), None)?;
    let [
        PlanIssue::KeyFileListedLate {
            master: listed_in,
            first,
            key_file,
            ..
        },
    ] = &plan.issues[..]
    else {
        panic!("{:?}", plan.issues);
    };
    assert_eq!(listed_in, &dir.path().join("000000000000.cfg"));
    assert_eq!(first, "0004f2abcdef-sip.cfg");
    assert_eq!(key_file, "0004f2abcdef-key.cfg");
    // A shared file before the key file is fine: it is not encrypted.
    let (_dir, in_order) = tree(&[(
        "000000000000.cfg",
        &master("site.cfg, [PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg"),
    )])?;
    assert!(in_order.fetch_plan(&mac(), None)?.issues.is_empty());
    Ok(())
}
