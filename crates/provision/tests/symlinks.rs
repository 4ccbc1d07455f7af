//! Symbolic links in a source tree: followed inside it, refused when they lead out of it.

use std::os::unix::fs::symlink;

use polyseal_provision::{Error, SourceTree};

const MASTER: &str = r#"<?xml version="1.0" standalone="yes"?>
<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg"/>
"#;

fn tree_with_master() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("src")).expect("src");
    std::fs::write(dir.path().join("src/000000000000.cfg"), MASTER).expect("master");
    dir
}

#[test]
fn a_symlink_out_of_the_source_tree_is_refused_naming_the_link() {
    // The review's case: logo.bmp -> ../identity.txt published the vault's identity.
    let dir = tree_with_master();
    std::fs::write(dir.path().join("identity.txt"), "AGE-SECRET-KEY-1…").expect("identity");
    symlink("../identity.txt", dir.path().join("src/logo.bmp")).expect("symlink");
    let error = SourceTree::open(dir.path().join("src")).expect_err("refused");
    assert!(
        matches!(&error, Error::SymlinkOutsideTree { link, .. } if link.ends_with("logo.bmp")),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("logo.bmp"), "{message}");
    assert!(message.contains("outside the source tree"), "{message}");
    assert!(!error.is_io(), "bad input, not an I/O failure");
}

#[test]
fn a_symlink_to_a_directory_out_of_the_tree_is_refused_too() {
    let dir = tree_with_master();
    std::fs::create_dir(dir.path().join("elsewhere")).expect("dir");
    symlink("../elsewhere", dir.path().join("src/firmware")).expect("symlink");
    let error = SourceTree::open(dir.path().join("src")).expect_err("refused");
    assert!(
        matches!(error, Error::SymlinkOutsideTree { .. }),
        "{error:?}"
    );
}

#[test]
fn a_symlink_inside_the_tree_is_followed() {
    let dir = tree_with_master();
    std::fs::write(dir.path().join("src/site.cfg"), "<polycomConfig/>").expect("site");
    std::fs::create_dir(dir.path().join("src/shared")).expect("dir");
    symlink("../site.cfg", dir.path().join("src/shared/site-link.cfg")).expect("symlink");
    let tree = SourceTree::open(dir.path().join("src")).expect("opens");
    assert!(tree.contains("shared/site-link.cfg".as_ref()));
}

#[test]
fn a_symlink_to_a_hidden_file_inside_the_tree_is_refused() {
    // Hidden files are not served content: a link must not serve one under another name.
    let dir = tree_with_master();
    std::fs::create_dir(dir.path().join("src/.private")).expect("dir");
    std::fs::write(
        dir.path().join("src/.private/identity.txt"),
        "AGE-SECRET-KEY-1…",
    )
    .expect("identity");
    symlink(".private/identity.txt", dir.path().join("src/logo.bmp")).expect("symlink");
    let error = SourceTree::open(dir.path().join("src")).expect_err("refused");
    assert!(
        matches!(error, Error::SymlinkOutsideTree { .. }),
        "{error:?}"
    );
}

#[test]
fn a_symlink_to_a_directory_inside_the_tree_is_followed_but_not_into_a_cycle() {
    let dir = tree_with_master();
    std::fs::create_dir_all(dir.path().join("src/phones/0004f2a10001")).expect("dir");
    std::fs::write(
        dir.path().join("src/phones/0004f2a10001/reg.cfg"),
        "<polycomConfig/>",
    )
    .expect("reg");
    symlink("0004f2a10001", dir.path().join("src/phones/0004f2a10002")).expect("symlink");
    // A link to the directory above: listing through it would never end.
    symlink("..", dir.path().join("src/phones/up")).expect("cycle");
    let tree = SourceTree::open(dir.path().join("src")).expect("opens");
    assert!(tree.contains("phones/0004f2a10002/reg.cfg".as_ref()));
    assert!(!tree.files().any(|f| f.starts_with("phones/up")));
}
