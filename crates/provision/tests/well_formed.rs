//! Well-formed as xmllint judges it: every configuration file polyseal reads is refused where
//! libxml2 (the parser `xmllint` runs) refuses it, and read where it reads it (issue 12,
//! point 3). The fixtures are the slips seen in real trees; `xmllint` itself confirms each
//! one's class, so a fixture in the wrong directory fails too.

use std::path::{Path, PathBuf};
use std::process::Command;

use polyseal_provision::{Error, Exposure, scan};

fn fixtures(class: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xml")
        .join(class);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// `xmllint --noout` on the file. xmllint must be installed (scripts/install-test-tools.sh):
/// without it this test fails, it never skips.
fn xmllint(path: &Path) -> std::process::Output {
    Command::new("xmllint")
        .arg("--noout")
        .arg(path)
        .output()
        .expect("xmllint must be installed (apt-get install libxml2-utils)")
}

/// Whether xmllint accepts the file with no error at all.
fn xmllint_accepts(path: &Path) -> bool {
    let output = xmllint(path);
    output.status.success() && output.stderr.is_empty()
}

/// Refused by polyseal: not well-formed, with a position.
fn refused(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).expect("fixture");
    match scan(path, &bytes, Exposure::Shared) {
        Err(Error::Xml { .. } | Error::NotUtf8 { .. }) => Ok(()),
        other => Err(format!("{}: {other:?}", path.display())),
    }
}

#[test]
fn files_xmllint_refuses_are_refused_with_their_position() {
    let mut accepted = Vec::new();
    for path in fixtures("ill-formed") {
        assert!(
            !xmllint(&path).status.success(),
            "{}: xmllint accepts it",
            path.display()
        );
        accepted.extend(refused(&path).err());
    }
    assert!(
        accepted.is_empty(),
        "read though ill-formed:\n{}",
        accepted.join("\n")
    );
}

#[test]
fn files_xmllint_reads_are_read() {
    for path in fixtures("well-formed") {
        assert!(
            xmllint_accepts(&path),
            "{}: xmllint refuses it",
            path.display()
        );
        let bytes = std::fs::read(&path).expect("fixture");
        if let Err(error) = scan(&path, &bytes, Exposure::Shared) {
            panic!("{}: {error}", path.display());
        }
    }
}

#[test]
fn files_polyseal_is_stricter_about_than_xmllint_are_refused() {
    // xmllint reads these (a namespace prefix never declared, a DOCTYPE, entities and default
    // attributes from one): polyseal refuses them, as docs/PROVISIONING.md §7 says. A DTD can
    // hide a secret in a default attribute that a scan of the elements would not see.
    for path in fixtures("stricter") {
        assert!(
            xmllint(&path).status.success(),
            "{}: xmllint refuses it: it belongs in ill-formed/",
            path.display()
        );
        if let Err(read) = refused(&path) {
            panic!("read though polyseal is stricter: {read}");
        }
    }
}
