//! Publishing real provisioning trees and their slips (issue 12): what is refused before
//! anything is made, and what every published file and directory looks like whatever the
//! operator's environment.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::process::Command as StdCommand;

use crate::support::{Workspace, assert_failure, polyseal_bin};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_symlink_out_of_the_source_tree_refuses_publish_before_any_key_is_made() {
    let ws = Workspace::with_vault();
    symlink("../identity.txt", ws.path("src/logo.bmp")).expect("symlink");
    let output = ws.output(&["publish", "--src", "src", "--out", "out"]);
    assert_failure(&output, 3, "logo.bmp");
    assert!(!ws.path("out").exists(), "nothing is published");
    let keys = ws.output(&["keys", "list", "--format", "csv"]);
    assert_eq!(
        String::from_utf8_lossy(&keys.stdout).lines().count(),
        1,
        "no key is made (only the CSV header)"
    );
}

#[test]
fn published_files_and_directories_have_their_modes_under_umask_000_and_077() {
    for umask in ["000", "077"] {
        let ws = Workspace::with_vault();
        std::fs::create_dir(ws.path("src/sounds")).expect("dir");
        std::fs::write(ws.path("src/sounds/ring.wav"), b"RIFF").expect("file");
        let mut shell = StdCommand::new("bash");
        shell.arg("-c").arg(format!(
            "umask {umask}; exec '{}' -q publish --src src --out out",
            polyseal_bin().display()
        ));
        ws.set_up(&mut shell);
        let output = shell.output().expect("bash");
        assert!(
            output.status.success(),
            "umask {umask}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for (path, expected) in [
            ("out", 0o755),
            ("out/sounds", 0o755),
            ("out/sounds/ring.wav", 0o644),
            ("out/site.cfg", 0o644),
            ("out/0004f2a10001-sip.cfg", 0o644),
            ("out/0004f2a10001-key.cfg", 0o600),
        ] {
            assert_eq!(
                mode(&ws.path(path)),
                expected,
                "umask {umask}: {path} is {:o}",
                mode(&ws.path(path))
            );
        }
    }
}
