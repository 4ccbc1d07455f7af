//! README's first command, run verbatim: the demo publishes the embedded example and audits it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is the failure report.

use std::process::Command;

use crate::support::{copy_dir, polyseal_bin, repo_root};

/// The first command of README's "Two commands" section.
fn readme_first_command() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Two commands").expect("section")..];
    let block = &section[section.find("```sh\n").expect("code block") + 6..];
    block.lines().next().expect("a command").to_owned()
}

#[test]
fn readme_first_command_publishes_the_example_and_audits_it() {
    let command = readme_first_command();
    assert_eq!(command, "bash scripts/demo.sh");
    // Run in a copy of what the demo touches, so the test never writes into the checkout.
    let root = repo_root();
    let copy = tempfile::tempdir().unwrap();
    for dir in ["scripts", "examples", "keys-example"] {
        copy_dir(&root.join(dir), &copy.path().join(dir));
    }
    let _ = std::fs::remove_file(copy.path().join("keys-example/vault/vault.lock"));
    let out = Command::new("bash")
        .args(["-c", &command])
        .current_dir(copy.path())
        .env("POLYSEAL_BIN", polyseal_bin())
        // Built by `cargo test` beside the binary (examples/boot_fleet.rs).
        .env(
            "BOOT_FLEET_BIN",
            polyseal_bin()
                .parent()
                .expect("target dir")
                .join("examples/boot_fleet"),
        )
        .env_remove("POLYSEAL_VAULT")
        .env_remove("POLYSEAL_IDENTITY")
        .env_remove("POLYSEAL_IDENTITY_DATA")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{stdout}\n{stderr}");
    assert!(stderr.contains("published out: 3 phones"), "{stderr}");
    for mac in ["0004f2a10001", "0004f2a10002", "64167fa10003"] {
        assert!(
            stdout.contains(&format!("out/{mac}-sip.cfg: encrypted KeyDesc={mac}-g1")),
            "{stdout}"
        );
        let key_file = copy.path().join(format!("out/{mac}-key.cfg"));
        assert!(key_file.is_file());
    }
    assert!(stdout.contains("out/site.cfg: plaintext"), "{stdout}");
    assert!(stdout.contains("== polyseal audit --tree out"), "{stdout}");
    // Served by polyseal serve to the three simulated phones: two run, one loops on the file
    // it cannot decrypt, and status names it.
    let status = &stdout[stdout.find("== polyseal status").expect("status section")..];
    for mac in ["0004f2a10001", "0004f2a10002"] {
        let row = status.lines().find(|l| l.starts_with(mac)).expect("a row");
        assert!(row.contains(" ok "), "{row}");
    }
    let looping = status
        .lines()
        .find(|l| l.starts_with("64167fa10003"))
        .expect("a row");
    assert!(looping.contains("reboot-loop"), "{looping}");
    assert!(looping.contains("/64167fa10003-sip.cfg"), "{looping}");
    assert!(
        stdout.contains("polyseal serve stopped (exit status: 0)"),
        "{stdout}"
    );
}
