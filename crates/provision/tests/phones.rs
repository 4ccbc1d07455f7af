//! The phone list: phones files, MAC-named tree files and the vault inventory, merged, each
//! phone with where it came from.

use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;
use polyseal_provision::{Error, PhoneList, PhoneSource, SourceTree};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn mac(s: &str) -> Mac {
    Mac::parse(s).expect("a valid MAC")
}

fn from_file(path: &str, line: usize) -> PhoneSource {
    PhoneSource::PhonesFile {
        path: PathBuf::from(path),
        line,
    }
}

#[test]
fn phones_files_accept_csv_plain_lists_comments_and_any_mac_spelling() -> TestResult {
    let text = "\u{feff}mac,label\r\n\
                # reception and lobby\r\n\
                00:04:F2:AB:CD:EF, Reception desk \r\n\
                \r\n\
                64-16-7F-00-00-01,\"Smith, John \"\"JS\"\"\"\r\n\
                0004.f2ab.0002\r\n\
                \t482567000003 ,\r\n";
    let mut phones = PhoneList::new();
    phones.add_phones_text(Path::new("phones.csv"), text)?;
    let listed: Vec<(String, Option<&str>, &[PhoneSource])> = phones
        .iter()
        .map(|p| (p.mac.to_string(), p.label.as_deref(), &p.sources[..]))
        .collect();
    assert_eq!(
        listed,
        [
            (
                "0004f2ab0002".to_owned(),
                None,
                &[from_file("phones.csv", 6)][..]
            ),
            (
                "0004f2abcdef".to_owned(),
                Some("Reception desk"),
                &[from_file("phones.csv", 3)][..]
            ),
            (
                "482567000003".to_owned(),
                None,
                &[from_file("phones.csv", 7)][..]
            ),
            (
                "64167f000001".to_owned(),
                Some("Smith, John \"JS\""),
                &[from_file("phones.csv", 5)][..]
            ),
        ]
    );
    Ok(())
}

#[test]
fn a_bad_mac_is_an_error_naming_file_and_line_and_adds_nothing() {
    let cases = [
        (
            "0004f2abcdef\n0004f2abcdeg\n",
            2,
            "MAC address \"0004f2abcdeg\" is not 12 hex digits",
        ),
        ("# header\n\n0004f2abcd\n", 3, "has 10 hex digits"),
        ("000000000000,template\n", 1, "names the shared master file"),
        ("01:00:5e:00:00:01\n", 1, "multicast"),
        ("0004f2abcdef Reception\n", 1, "MAC address"),
    ];
    for (text, line, problem) in cases {
        let mut phones = PhoneList::new();
        let error = phones
            .add_phones_text(Path::new("site/phones.csv"), text)
            .expect_err(text);
        assert!(
            matches!(error, Error::PhonesFileMac { line: l, .. } if l == line),
            "{error:?}"
        );
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("site/phones.csv:{line}: ")),
            "{shown}"
        );
        assert!(shown.contains(problem), "{shown}");
        assert!(phones.is_empty(), "nothing added from a bad file");
    }
}

#[test]
fn a_phone_listed_twice_in_one_file_is_an_error_naming_both_lines() {
    let mut phones = PhoneList::new();
    let error = phones
        .add_phones_text(
            Path::new("phones.txt"),
            "0004f2abcdef\n64167f000001\n00:04:f2:ab:cd:ef,again\n",
        )
        .expect_err("duplicate");
    assert_eq!(
        error.to_string(),
        "phones.txt:3: phone 0004f2abcdef is already listed on line 1"
    );
}

#[test]
fn phones_files_are_read_from_disk_and_must_be_utf8() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("phones.txt");
    std::fs::write(&path, "0004f2abcdef\n")?;
    let mut phones = PhoneList::new();
    phones.read_phones_file(&path)?;
    assert_eq!(phones.len(), 1);
    std::fs::write(&path, b"0004f2abcdef\n\xff\n")?;
    let error = phones.read_phones_file(&path).expect_err("not UTF-8");
    assert_eq!(
        error.to_string(),
        format!("{}:2:1: not valid UTF-8 text", path.display())
    );
    let error = phones
        .read_phones_file(&dir.path().join("missing.txt"))
        .expect_err("missing");
    assert!(error.is_io());
    Ok(())
}

#[test]
fn phones_come_from_the_files_masters_list_too_and_sources_are_merged() -> TestResult {
    let dir = tempfile::tempdir()?;
    for name in [
        "000000000000.cfg",
        "000000000000-directory.xml",
        "0004f2abcdef-sip.cfg",
        "0004f2abcdef_reg.cfg",
        "contacts/0004f2abcdef-directory.xml",
        "64167f000001.cfg",
        "logs/482567000003-app.log",
        "site.cfg",
        "0004F2ABCDEF-upper.cfg",
    ] {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(dir.path()))?;
        let content = if name == "000000000000.cfg" {
            r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, [PHONE_MAC_ADDRESS]_reg.cfg" CONTACTS_DIRECTORY="contacts"/>"#
        } else if name == "64167f000001.cfg" {
            "<APPLICATION/>"
        } else {
            "<polycomConfig/>"
        };
        std::fs::write(path, content)?;
    }
    let tree = SourceTree::open(dir.path())?;
    let mut phones = PhoneList::new();
    phones.add_phones_text(Path::new("phones.csv"), "0004f2abcdef,Reception\n")?;
    phones.add_tree(&tree);
    phones.add_inventory([mac("0004f2abcdef"), mac("0004f2000009")]);

    let tree_file = |p: &str| PhoneSource::TreeFile {
        path: PathBuf::from(p),
    };
    let reception = phones.get(&mac("0004f2abcdef")).expect("listed");
    assert_eq!(reception.label.as_deref(), Some("Reception"));
    assert_eq!(
        reception.sources,
        [
            from_file("phones.csv", 1),
            tree_file("0004f2abcdef-sip.cfg"),
            tree_file("0004f2abcdef_reg.cfg"),
            tree_file("contacts/0004f2abcdef-directory.xml"),
            PhoneSource::Inventory,
        ]
    );
    let macs: Vec<String> = phones.iter().map(|p| p.mac.to_string()).collect();
    assert_eq!(
        macs,
        // A log file, or a MAC in upper case, is listed by no master: no phone of its own.
        ["0004f2000009", "0004f2abcdef", "64167f000001"]
    );
    assert_eq!(
        phones.get(&mac("64167f000001")).map(|p| &p.sources[..]),
        Some(&[tree_file("64167f000001.cfg")][..])
    );
    assert_eq!(
        phones.get(&mac("0004f2000009")).map(|p| &p.sources[..]),
        Some(&[PhoneSource::Inventory][..])
    );
    assert_eq!(reception.sources[0].to_string(), "phones.csv:1");
    Ok(())
}
