//! Whose file is it: the masters' lists, not the file names, say which phone requests each
//! file named with a MAC (issue 12, point 1).

use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;
use polyseal_provision::SourceTree;
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A tree on disk made of `(relative path, content)` pairs.
fn tree(files: &[(&str, &str)]) -> Result<(TempDir, SourceTree), Box<dyn std::error::Error>> {
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

fn mac(text: &str) -> Mac {
    Mac::parse(text).expect("a valid MAC")
}

const CONFIG: &str = "<polycomConfig/>";

#[test]
fn the_mac_may_stand_anywhere_in_a_listed_name_or_directory() -> TestResult {
    let master = r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, sip-[PHONE_MAC_ADDRESS].cfg, phones/[PHONE_MAC_ADDRESS]/reg.cfg, site.cfg" CONTACTS_DIRECTORY="contacts" OVERRIDES_DIRECTORY=""/>"#;
    let (_dir, tree) = tree(&[
        ("000000000000.cfg", master),
        ("site.cfg", CONFIG),
        ("sip-0004f2a10001.cfg", CONFIG),
        ("phones/0004f2a10001/reg.cfg", CONFIG),
        ("phones/64167fa10002/reg.cfg", CONFIG),
        ("contacts/64167fa10002-directory.xml", "<directory/>"),
    ])?;
    let files = tree.phone_files();
    let owned: Vec<(Mac, Vec<&Path>)> = files.by_phone.into_iter().collect();
    assert_eq!(
        owned,
        [
            (
                mac("0004f2a10001"),
                vec![
                    Path::new("phones/0004f2a10001/reg.cfg"),
                    Path::new("sip-0004f2a10001.cfg")
                ]
            ),
            (
                mac("64167fa10002"),
                vec![
                    Path::new("contacts/64167fa10002-directory.xml"),
                    Path::new("phones/64167fa10002/reg.cfg")
                ]
            ),
        ]
    );
    assert_eq!(files.unlisted, []);
    Ok(())
}

#[test]
fn files_named_with_a_mac_that_no_master_lists_are_unlisted() -> TestResult {
    let master = r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg" CONTACTS_DIRECTORY="" OVERRIDES_DIRECTORY=""/>"#;
    let (_dir, tree) = tree(&[
        ("000000000000.cfg", master),
        ("0004f2a10001-sip.cfg", CONFIG),
        // Not in any list.
        ("0004f2a10001-extra.cfg", CONFIG),
        // Listed, but phones request the MAC in lower case.
        ("0004F2A10002-sip.cfg", CONFIG),
        ("logs/0004f2a10001-app.log", "boot"),
    ])?;
    let files = tree.phone_files();
    assert_eq!(
        files.by_phone.keys().copied().collect::<Vec<_>>(),
        [mac("0004f2a10001")]
    );
    let unlisted: Vec<(&Path, Mac, Option<PathBuf>)> = files
        .unlisted
        .iter()
        .map(|f| (f.path, f.mac, f.requested.clone()))
        .collect();
    assert_eq!(
        unlisted,
        [
            (
                Path::new("0004F2A10002-sip.cfg"),
                mac("0004f2a10002"),
                Some(PathBuf::from("0004f2a10002-sip.cfg"))
            ),
            (
                Path::new("0004f2a10001-extra.cfg"),
                mac("0004f2a10001"),
                None
            ),
            (
                Path::new("logs/0004f2a10001-app.log"),
                mac("0004f2a10001"),
                None
            ),
        ]
    );
    Ok(())
}

#[test]
fn a_phone_with_a_master_of_its_own_reads_only_that_masters_list() -> TestResult {
    let shared = r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg" CONTACTS_DIRECTORY="" OVERRIDES_DIRECTORY=""/>"#;
    let own = r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, 0004F2A10001-lab.cfg" CONTACTS_DIRECTORY="" OVERRIDES_DIRECTORY=""/>"#;
    let (_dir, tree) = tree(&[
        ("000000000000.cfg", shared),
        ("0004f2a10001.cfg", own),
        ("0004F2A10001-lab.cfg", CONFIG),
        // Listed by 000000000000.cfg, which this phone does not read.
        ("0004f2a10001-sip.cfg", CONFIG),
    ])?;
    let files = tree.phone_files();
    assert_eq!(
        files.by_phone.get(&mac("0004f2a10001")),
        Some(&vec![
            Path::new("0004F2A10001-lab.cfg"),
            Path::new("0004f2a10001.cfg")
        ])
    );
    let unlisted: Vec<&Path> = files.unlisted.iter().map(|f| f.path).collect();
    assert_eq!(unlisted, [Path::new("0004f2a10001-sip.cfg")]);
    Ok(())
}

#[test]
fn a_mac_next_to_hex_letters_in_a_listed_name_is_still_the_phones() -> TestResult {
    let master = r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, abc[PHONE_MAC_ADDRESS].cfg, [PHONE_MAC_ADDRESS]a.cfg" CONTACTS_DIRECTORY="" OVERRIDES_DIRECTORY=""/>"#;
    let (_dir, tree) = tree(&[
        ("000000000000.cfg", master),
        ("abc0004f2a10001.cfg", CONFIG),
        ("0004f2a10001a.cfg", CONFIG),
    ])?;
    let files = tree.phone_files();
    assert_eq!(
        files.by_phone.get(&mac("0004f2a10001")),
        Some(&vec![
            Path::new("0004f2a10001a.cfg"),
            Path::new("abc0004f2a10001.cfg")
        ])
    );
    Ok(())
}

#[test]
fn a_file_two_phones_request_is_contested_not_given_to_one() -> TestResult {
    let master = r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, 0004f2[PHONE_MAC_ADDRESS].cfg, [PHONE_MAC_ADDRESS]a10001.cfg" CONTACTS_DIRECTORY="" OVERRIDES_DIRECTORY=""/>"#;
    let (_dir, tree) = tree(&[
        ("000000000000.cfg", master),
        ("0004f20004f2a10001.cfg", CONFIG),
    ])?;
    let files = tree.phone_files();
    assert_eq!(
        files.contested,
        [(
            Path::new("0004f20004f2a10001.cfg"),
            vec![mac("0004f20004f2"), mac("0004f2a10001")]
        )]
    );
    assert!(files.by_phone.is_empty());
    Ok(())
}
