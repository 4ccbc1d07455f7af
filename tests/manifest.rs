//! The publish manifest (`.<out>.polyseal-manifest`): a rerun trusts it only for files that
//! neither it nor their sources changed since, and is right without it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is the failure report.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use predicates::prelude::*;

use crate::support::{PHONES, Workspace};

/// A workspace whose source tree is older than the manifest's racy window (2 s): a file
/// changed in the same clock tick as it was read could keep its stamp, so the manifest does
/// not vouch for sources that changed in the last two seconds.
fn settled_workspace() -> Workspace {
    let ws = Workspace::with_vault();
    std::thread::sleep(Duration::from_millis(2100));
    ws
}

/// The `-v` line that says how the reused files were proved unchanged.
fn proved(ws: &Workspace) -> String {
    proved_with(ws, &[])
}

/// [`proved`], with more options for publish.
fn proved_with(ws: &Workspace, options: &[&str]) -> String {
    let mut args = vec!["-v", "publish", "--src", "src", "--out", "out"];
    args.extend_from_slice(options);
    let output = ws.output(&args);
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    stderr
        .lines()
        .find(|l| l.contains("files already published"))
        .unwrap_or_else(|| panic!("no proof line in {stderr}"))
        .to_owned()
}

/// The decrypted content of a published per-phone file.
fn decrypted(ws: &Workspace, relative: &str) -> Vec<u8> {
    let output = ws.output(&["decrypt", relative]);
    assert!(output.status.success(), "{output:?}");
    output.stdout
}

#[test]
fn a_rerun_proves_every_file_by_the_manifest_and_the_manifest_is_owner_only_beside_the_tree() {
    let ws = settled_workspace();
    ws.publish();
    let manifest = ws.path(".out.polyseal-manifest");
    let mode = fs::metadata(&manifest).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        ws.files_under("out")
            .iter()
            .all(|f| !f.contains("manifest")),
        "the web server must not serve the manifest"
    );
    let text = fs::read_to_string(&manifest).unwrap();
    assert_eq!(text.lines().next(), Some("polyseal-manifest/2"));
    assert_eq!(text.lines().count() - 1, ws.files_under("out").len());

    assert_eq!(
        proved(&ws),
        "8 files already published: 8 proved unchanged by the manifest (stat only), 0 by reading them"
    );
}

/// The manifest also says which files under --out are polyseal's: without a usable one, a
/// tree polyseal cannot tell from another's is refused (docs/CLI.md), and `--adopt-out` says
/// it is polyseal's.
#[test]
fn without_a_usable_manifest_a_rerun_reads_every_file_and_writes_a_new_manifest() {
    let ws = settled_workspace();
    ws.publish();
    let manifest = ws.path(".out.polyseal-manifest");
    for broken in [
        "",
        "polyseal-manifest/0\n",
        "polyseal-manifest/1\nnot an entry\n",
    ] {
        fs::write(&manifest, broken).unwrap();
        let refused = ws.try_publish();
        assert_eq!(refused.status.code(), Some(3), "manifest {broken:?}");
        assert_eq!(
            proved_with(&ws, &["--adopt-out"]),
            "8 files already published: 0 proved unchanged by the manifest (stat only), 8 by reading them",
            "manifest {broken:?}"
        );
        assert_eq!(
            proved(&ws),
            "8 files already published: 8 proved unchanged by the manifest (stat only), 0 by reading them",
            "the slow path wrote a new manifest"
        );
    }
    fs::remove_file(&manifest).unwrap();
    ws.polyseal()
        .args(["publish", "--src", "src", "--out", "out", "--adopt-out"])
        .assert()
        .success()
        .stderr(predicate::str::contains("nothing changed"));
}

#[test]
fn a_source_edited_after_publishing_is_encrypted_again_even_at_the_same_size() {
    let ws = settled_workspace();
    ws.publish();
    let mac = PHONES[0];
    let source = ws.path(&format!("src/{mac}-sip.cfg"));
    let before = fs::read(&source).unwrap();
    // Same length, one byte different: only the stamps can tell.
    let edited = String::from_utf8(before.clone())
        .unwrap()
        .replacen("<polycomConfig", "<polycomconfig", 1)
        .replacen("</polycomConfig", "</polycomconfig", 1);
    assert_eq!(edited.len(), before.len());
    fs::write(&source, &edited).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    ws.publish();
    assert_eq!(
        decrypted(&ws, &format!("out/{mac}-sip.cfg")),
        edited.as_bytes()
    );
    // The other seven files were hard-linked into the new tree, which changed their change
    // times; their entries were stamped again after the swap, so the manifest still proves
    // every file.
    assert_eq!(
        proved(&ws),
        "8 files already published: 8 proved unchanged by the manifest (stat only), 0 by reading them"
    );
}

#[test]
fn a_published_file_changed_on_the_server_is_written_again() {
    let ws = settled_workspace();
    ws.publish();
    let mac = PHONES[1];
    let published = ws.path(&format!("out/{mac}-sip.cfg"));
    let mut bytes = fs::read(&published).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&published, &bytes).unwrap();
    let key_file = ws.path(&format!("out/{mac}-key.cfg"));
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o644)).unwrap();

    ws.publish();
    assert_eq!(
        decrypted(&ws, &format!("out/{mac}-sip.cfg")),
        fs::read(ws.path(&format!("src/{mac}-sip.cfg"))).unwrap()
    );
    let mode = fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is owner-only again");
}

/// Regression: KeyDescs name a phone and a generation (`<mac>-g1`), so a vault made anew
/// gives every phone a new key under the same KeyDesc. Comparing header KeyDescs and digests
/// called the old files up to date: phones bootstrapped with the new key would then fetch
/// files they cannot decrypt, and reboot in a loop.
#[test]
fn publish_after_the_vault_is_made_anew_reencrypts_files_sealed_under_the_old_keys() {
    for keep_manifest in [true, false] {
        let ws = settled_workspace();
        ws.publish();
        fs::remove_dir_all(ws.path("vault")).unwrap();
        ws.run(&["init", "--recipient", "identity.txt"]);
        if !keep_manifest {
            fs::remove_file(ws.path(".out.polyseal-manifest")).unwrap();
        }
        ws.run(&["publish", "--src", "src", "--out", "out", "--adopt-out"]);
        for mac in PHONES {
            assert_eq!(
                decrypted(&ws, &format!("out/{mac}-sip.cfg")),
                fs::read(ws.path(&format!("src/{mac}-sip.cfg"))).unwrap(),
                "manifest kept: {keep_manifest}"
            );
        }
    }
}
