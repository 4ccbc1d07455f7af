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
    let output = ws.try_publish();
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

/// The vault's event log, to show that a refused command changed nothing.
fn events(ws: &Workspace) -> String {
    std::fs::read_to_string(ws.path("vault/events.log")).expect("events.log")
}

#[test]
fn publish_into_an_out_it_cannot_use_is_refused_before_any_key_is_made() {
    let ws = Workspace::with_vault();
    std::fs::write(ws.path("afile"), "x").expect("file");
    let before = events(&ws);
    for (out, names) in [
        ("missing/out", "parent directory missing does not exist"),
        ("afile", "--out afile: not a directory"),
    ] {
        let output = ws.output(&["publish", "--src", "src", "--out", out]);
        assert_failure(&output, 3, names);
        assert_eq!(events(&ws), before, "--out {out}: no key made");
    }
}

#[test]
fn a_rotation_whose_republish_would_be_refused_changes_nothing() {
    let ws = Workspace::with_vault();
    ws.publish();
    // A second source tree with a password in the shared file: its publish is refused.
    crate::support::copy_dir(&ws.path("src"), &ws.path("src-secret"));
    std::fs::write(
        ws.path("src-secret/site.cfg"),
        r#"<polycomConfig device.prov.password="hunter22"/>"#,
    )
    .expect("site.cfg");
    let before = events(&ws);
    let start = ws.output(&[
        "rotate",
        "start",
        "--all",
        "--src",
        "src-secret",
        "--out",
        "out",
    ]);
    assert_failure(&start, 3, "site.cfg");
    assert_eq!(events(&ws), before, "rotate start made no pre-active key");
    let uploads = ws.output(&[
        "rotate",
        "start",
        "--all",
        "--uploads",
        "nosuch",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    assert_failure(&uploads, 3, "nosuch");
    assert_eq!(events(&ws), before, "rotate start made no pre-active key");
    // A per-phone file a phone could not read once decrypted: refused before any key too.
    crate::support::copy_dir(&ws.path("src"), &ws.path("src-broken"));
    std::fs::write(
        ws.path("src-broken/0004f2a10002-sip.cfg"),
        "<polycomConfig>\n<reg b=\"2\"c=\"3\"/>\n</polycomConfig>\n",
    )
    .expect("broken");
    let broken = ws.output(&[
        "rotate",
        "start",
        "--all",
        "--src",
        "src-broken",
        "--out",
        "out",
    ]);
    assert_failure(&broken, 3, "0004f2a10002-sip.cfg:2:");
    assert_eq!(events(&ws), before, "rotate start made no pre-active key");

    ws.run(&["rotate", "start", "--all", "--src", "src", "--out", "out"]);
    ws.run(&["rotate", "confirm", "0004f2a10001"]);
    let before = events(&ws);
    let finish = ws.output(&[
        "rotate",
        "finish",
        "--all",
        "--src",
        "src-secret",
        "--out",
        "out",
    ]);
    assert_failure(&finish, 3, "site.cfg");
    assert_eq!(events(&ws), before, "rotate finish changed no key state");
}

#[test]
fn an_interrupted_rotate_start_run_again_finishes_its_republish() {
    // Killed after its keys were made and before the tree was republished: the rerun finds
    // no phone to rotate, and must still serve the new keys.
    let ws = Workspace::with_vault();
    ws.publish();
    ws.run(&["rotate", "start", "--all"]);
    let key_file = std::fs::read_to_string(ws.path("out/0004f2a10001-key.cfg")).expect("key");
    assert!(
        key_file.contains("0004f2a10001-g1"),
        "still g1: not republished"
    );
    let status = ws.output(&["rotate", "status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        !status.contains("serving g2"),
        "status claims a tree state the tree does not have:\n{status}"
    );
    ws.run(&["rotate", "start", "--all", "--src", "src", "--out", "out"]);
    let key_file = std::fs::read_to_string(ws.path("out/0004f2a10001-key.cfg")).expect("key");
    assert!(
        key_file.contains("0004f2a10001-g2"),
        "the rerun serves g2:\n{key_file}"
    );
}

#[test]
fn publish_writes_key_files_only_for_the_phones_the_tree_or_phones_file_names() {
    let ws = Workspace::with_vault();
    // A phone of the vault that the tree does not provision.
    ws.run(&["keys", "add", "0004f2a1ffff"]);
    ws.publish();
    assert!(ws.path("out/0004f2a10001-key.cfg").is_file());
    assert!(
        !ws.path("out/0004f2a1ffff-key.cfg").exists(),
        "no key file for a phone the tree does not name: its key would be served to no phone"
    );
    std::fs::write(ws.path("phones.txt"), "0004f2a1ffff\n").expect("phones");
    ws.run(&[
        "publish",
        "--src",
        "src",
        "--out",
        "out",
        "--phones",
        "phones.txt",
    ]);
    assert!(
        ws.path("out/0004f2a1ffff-key.cfg").is_file(),
        "named by --phones"
    );
}

/// `polyseal -q publish --src src --out out` under strace with these `-e` expressions (the
/// faults to inject), following its threads.
fn publish_under_strace(ws: &Workspace, expressions: &[String]) -> StdCommand {
    assert!(
        StdCommand::new("strace").arg("-V").output().is_ok(),
        "`strace` (Debian package `strace`) is required"
    );
    let mut strace = StdCommand::new("strace");
    strace.args(["-f", "-qq", "-o", "/dev/null"]);
    for expression in expressions {
        strace.arg("-e").arg(expression);
    }
    strace
        .arg(polyseal_bin())
        .args(["-q", "publish", "--src", "src", "--out", "out"]);
    ws.set_up(&mut strace);
    strace
}

/// The files of the published tree, sorted.
fn published(ws: &Workspace) -> Vec<String> {
    ws.files_under("out")
}

#[test]
fn publish_killed_at_any_file_system_step_leaves_out_a_whole_tree() {
    let ws = Workspace::with_vault();
    ws.publish();
    let old = published(&ws);
    std::fs::write(ws.path("src/extra.cfg"), "<polycomConfig/>").expect("a new shared file");
    let mut new = old.clone();
    new.push("out/extra.cfg".to_owned());
    new.sort();
    // Every rename, removal and flush of the run, one after the other, is where the process
    // is killed (strace's fault injection); after each, --out is the old tree or the new one.
    let steps = "renameat2,rename,renameat,unlinkat,unlink,rmdir,fsync,fdatasync,syncfs";
    let mut kills = 0;
    for n in 1..=200 {
        let output = publish_under_strace(
            &ws,
            &[
                format!("trace={steps}"),
                format!("inject={steps}:signal=KILL:when={n}"),
            ],
        )
        .output()
        .expect("strace");
        let now = published(&ws);
        assert!(
            now == old || now == new,
            "killed at step {n}, --out is neither tree: {now:?}"
        );
        if output.status.success() {
            break;
        }
        kills += 1;
    }
    assert!(kills >= 3, "the run was killed at only {kills} steps");
    assert_eq!(
        published(&ws),
        new,
        "the run that was not killed published the new tree"
    );
    let litter: Vec<String> = std::fs::read_dir(ws.dir.path())
        .expect("workspace")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("polyseal-staging") || name.contains("polyseal-old"))
        .collect();
    ws.publish();
    let after: Vec<String> = std::fs::read_dir(ws.dir.path())
        .expect("workspace")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("polyseal-staging") || name.contains("polyseal-old"))
        .collect();
    assert!(
        after.is_empty(),
        "a later publish clears {litter:?}: {after:?}"
    );
}

#[test]
fn publish_into_a_symlinked_out_keeps_the_link_and_replaces_the_tree_behind_it() {
    let ws = Workspace::with_vault();
    std::fs::create_dir(ws.path("releases")).expect("dir");
    std::fs::create_dir(ws.path("releases/current")).expect("dir");
    symlink("releases/current", ws.path("out")).expect("symlink");
    ws.publish();
    std::fs::write(ws.path("src/extra.cfg"), "<polycomConfig/>").expect("file");
    ws.publish();
    let link = std::fs::symlink_metadata(ws.path("out")).expect("out");
    assert!(
        link.file_type().is_symlink(),
        "--out is still the operator's link"
    );
    assert!(ws.path("releases/current/extra.cfg").is_file());
    assert!(ws.path("releases/current/0004f2a10001-key.cfg").is_file());
}

/// `polyseal publish --src src --out out` after `mount` (a shell command) in a mount namespace
/// of its own, so the mount is gone when it ends.
fn publish_with_mount(ws: &Workspace, mount: &str) -> std::process::Output {
    let mut unshare = StdCommand::new("unshare");
    unshare.arg("--mount").arg("sh").arg("-c").arg(format!(
        "{mount} && exec '{}' publish --src src --out out",
        polyseal_bin().display()
    ));
    ws.set_up(&mut unshare);
    unshare
        .output()
        .unwrap_or_else(|e| panic!("`unshare` (util-linux) is required: {e}"))
}

#[test]
fn a_mount_point_out_is_refused_up_front_with_what_to_do() {
    let ws = Workspace::with_vault();
    std::fs::create_dir(ws.path("out")).expect("dir");
    let before = events(&ws);
    let output = publish_with_mount(&ws, "mount -t tmpfs tmpfs out");
    assert_failure(&output, 3, "a mount point");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("publish into a directory inside it"),
        "{stderr}"
    );
    assert_eq!(events(&ws), before, "no key made");
}

#[test]
fn a_bind_mounted_out_is_refused_up_front_too() {
    // A bind mount of a directory of the same file system has the parent's device number.
    let ws = Workspace::with_vault();
    std::fs::create_dir(ws.path("out")).expect("dir");
    std::fs::create_dir(ws.path("elsewhere")).expect("dir");
    let before = events(&ws);
    let output = publish_with_mount(&ws, "mount --bind elsewhere out");
    assert_failure(&output, 3, "a mount point");
    assert_eq!(events(&ws), before, "no key made");
}

#[test]
fn an_out_whose_parent_the_operator_cannot_write_is_refused_up_front() {
    // /srv/polycom owned by root, publish run by an operator: tested as the user nobody.
    let ws = Workspace::with_vault();
    std::fs::create_dir(ws.path("srv")).expect("dir");
    chown(&ws, "nobody");
    let chown_srv = StdCommand::new("chown")
        .arg("root")
        .arg(ws.path("srv"))
        .status()
        .expect("chown");
    assert!(chown_srv.success());
    let before = events(&ws);
    let output = as_nobody(&ws, &["publish", "--src", "src", "--out", "srv/polycom"]);
    assert_failure(&output, 3, "cannot write in srv");
    assert_eq!(events(&ws), before, "no key made");
    assert!(!ws.path("srv/polycom").exists());
}

#[test]
fn a_firmware_image_larger_than_any_config_is_copied_streamed_with_its_mode() {
    // 64 MiB used to stop the whole publish; a VVX image is about 100 MB.
    let ws = Workspace::with_vault();
    let size = 150 * 1024 * 1024;
    {
        use std::io::Write;
        let mut image = std::fs::File::create(ws.path("src/sip.ld")).expect("image");
        let block: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
        for _ in 0..150 {
            image.write_all(&block).expect("write");
        }
    }
    let mut time = StdCommand::new("/usr/bin/time");
    time.args(["-f", "%M"])
        .arg(polyseal_bin())
        .args(["-q", "publish", "--src", "src", "--out", "out"]);
    ws.set_up(&mut time);
    let output = time
        .output()
        .unwrap_or_else(|e| panic!("`/usr/bin/time` (Debian package `time`) is required: {e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let peak_kib: u64 = stderr
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {stderr:?}"));
    assert!(
        peak_kib < 100 * 1024,
        "peak RSS {peak_kib} KiB: the 150 MiB image was read whole"
    );
    let published = std::fs::metadata(ws.path("out/sip.ld")).expect("published");
    assert_eq!(published.len(), size as u64);
    assert_eq!(mode(&ws.path("out/sip.ld")), 0o644);
    assert!(
        std::fs::read(ws.path("out/sip.ld")).expect("out")
            == std::fs::read(ws.path("src/sip.ld")).expect("src"),
        "byte for byte"
    );
    // Not a hard link: an edit of the source never changes the served file in place.
    use std::os::unix::fs::MetadataExt;
    let source = std::fs::metadata(ws.path("src/sip.ld")).expect("source");
    assert_ne!(source.ino(), published.ino());
    // A rerun proves it unchanged without rewriting it.
    let rerun = ws.try_publish();
    assert!(
        String::from_utf8_lossy(&rerun.stderr).contains("is up to date"),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
}

#[test]
fn publish_into_a_directory_polyseal_did_not_publish_is_refused_listing_what_is_there() {
    // README's own example: --out /srv/polycom, which already serves firmware and logs.
    let ws = Workspace::with_vault();
    std::fs::create_dir_all(ws.path("out/logs")).expect("dirs");
    std::fs::write(ws.path("out/sip.ld"), b"firmware").expect("firmware");
    std::fs::write(ws.path("out/logs/0004f2a10001-app.log"), b"log").expect("log");
    let before = events(&ws);
    let refused = ws.try_publish();
    assert_failure(&refused, 3, "holds files polyseal did not write");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("sip.ld") && stderr.contains("logs/0004f2a10001-app.log"),
        "{stderr}"
    );
    assert!(stderr.contains("--adopt-out"), "{stderr}");
    assert_eq!(events(&ws), before, "no key made");

    let dry = ws.output(&[
        "publish",
        "--src",
        "src",
        "--out",
        "out",
        "--dry-run",
        "--adopt-out",
    ]);
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(
        plan.lines().any(|l| l == "add 0004f2a10001-key.cfg"),
        "{plan}"
    );
    assert!(
        plan.lines()
            .any(|l| l == "keep (not written by polyseal) sip.ld"),
        "{plan}"
    );

    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(ws.path("out/sip.ld"))
        .expect("sip.ld")
        .ino();
    ws.run(&["publish", "--src", "src", "--out", "out", "--adopt-out"]);
    assert_eq!(
        std::fs::read(ws.path("out/sip.ld")).expect("kept"),
        b"firmware"
    );
    assert_eq!(
        std::fs::metadata(ws.path("out/sip.ld"))
            .expect("kept")
            .ino(),
        inode
    );
    assert!(ws.path("out/logs/0004f2a10001-app.log").is_file());
    assert!(ws.path("out/0004f2a10001-key.cfg").is_file());
    // From now on the directory is polyseal's: no --adopt-out needed.
    ws.publish();
}

#[test]
fn files_that_appear_under_out_between_publishes_stay_and_only_polyseals_are_removed() {
    let ws = Workspace::with_vault();
    ws.publish();
    // Phones upload overrides and logs into the served tree between publishes.
    std::fs::create_dir(ws.path("out/logs")).expect("dir");
    std::fs::write(ws.path("out/logs/0004f2a10002-boot.log"), b"boot").expect("log");
    std::fs::write(ws.path("out/0004f2a10002-phone.cfg"), b"<override/>").expect("upload");
    // The next publish drops a phone's file and changes another.
    std::fs::remove_file(ws.path("src/64167fa10003-sip.cfg")).expect("remove");
    std::fs::write(
        ws.path("src/site.cfg"),
        r#"<polycomConfig tcpIpApp.sntp.address="ntp2"/>"#,
    )
    .expect("site");
    let dry = ws.output(&["publish", "--src", "src", "--out", "out", "--dry-run"]);
    let plan = String::from_utf8_lossy(&dry.stdout);
    assert!(
        plan.lines().any(|l| l == "remove 64167fa10003-sip.cfg"),
        "{plan}"
    );
    assert!(
        plan.lines()
            .any(|l| l == "keep (not written by polyseal) 0004f2a10002-phone.cfg"),
        "{plan}"
    );
    ws.publish();
    assert_eq!(
        std::fs::read(ws.path("out/0004f2a10002-phone.cfg")).expect("upload"),
        b"<override/>"
    );
    assert!(ws.path("out/logs/0004f2a10002-boot.log").is_file());
    assert!(
        !ws.path("out/64167fa10003-sip.cfg").exists(),
        "polyseal's own file is removed"
    );
}

#[test]
fn publish_never_overwrites_a_file_it_did_not_write() {
    let ws = Workspace::with_vault();
    ws.publish();
    // Someone put a file at a path the next tree writes.
    std::fs::write(ws.path("out/extra.cfg"), b"theirs").expect("theirs");
    std::fs::write(ws.path("src/extra.cfg"), "<polycomConfig/>").expect("ours");
    let refused = ws.try_publish();
    assert_failure(
        &refused,
        3,
        "publishing would overwrite files polyseal did not write (extra.cfg)",
    );
    assert_eq!(
        std::fs::read(ws.path("out/extra.cfg")).expect("kept"),
        b"theirs"
    );
    ws.run(&["publish", "--src", "src", "--out", "out", "--adopt-out"]);
    assert_eq!(
        std::fs::read(ws.path("out/extra.cfg")).expect("replaced"),
        b"<polycomConfig/>"
    );
}

/// Writes the example tree's master: `lists` are its attributes and the rest of the element.
fn master_with(ws: &Workspace, lists: &str) {
    std::fs::write(
        ws.path("src/000000000000.cfg"),
        format!("<?xml version=\"1.0\" standalone=\"yes\"?>\n<APPLICATION APP_FILE_PATH=\"sip.ld\"\n  {lists}\n"),
    )
    .expect("master");
}

#[test]
fn a_master_whose_lists_do_not_give_the_key_first_is_refused_before_any_key_is_made() {
    for (lists, names) in [
        // Not listed at all: every phone would loop on reboot.
        (
            r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"/>"#,
            "CONFIG_FILES does not list the key file [PHONE_MAC_ADDRESS]-key.cfg",
        ),
        // Listed in the generic list only; a per-model list (Polycom's own templates have
        // them) does not: the model's phones would loop.
        (
            r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg">
  <APPLICATION_SPIP300 CONFIG_FILES_SPIP300="[PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"/>
</APPLICATION>"#,
            "CONFIG_FILES_SPIP300 does not list the key file",
        ),
        // Listed after the encrypted file: fetched too late.
        (
            r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-sip.cfg, [PHONE_MAC_ADDRESS]-key.cfg, site.cfg"/>"#,
            "lists [PHONE_MAC_ADDRESS]-sip.cfg before the key file",
        ),
    ] {
        let ws = Workspace::with_vault();
        master_with(&ws, lists);
        let before = events(&ws);
        let output = ws.try_publish();
        assert_failure(&output, 3, names);
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("000000000000.cfg"),
            "names the master"
        );
        assert_eq!(events(&ws), before, "{lists}: no key made");
        assert!(!ws.path("out").exists());
    }
}

#[test]
fn a_listed_config_file_that_is_missing_or_not_a_file_is_refused_before_any_key_is_made() {
    for (entry, names) in [
        ("sitee.cfg", "lists sitee.cfg"),
        ("/etc/passwd", "lists etc/passwd"),
        ("sounds", "lists sounds"),
    ] {
        let ws = Workspace::with_vault();
        std::fs::create_dir(ws.path("src/sounds")).expect("a directory");
        std::fs::write(ws.path("src/sounds/ring.wav"), b"RIFF").expect("file");
        master_with(
            &ws,
            &format!(
                r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, {entry}"/>"#
            ),
        );
        let before = events(&ws);
        let output = ws.try_publish();
        assert_failure(&output, 3, names);
        assert!(String::from_utf8_lossy(&output.stderr).contains("000000000000.cfg"));
        assert_eq!(events(&ws), before, "{entry}: no key made");
    }
}

#[test]
fn every_secret_of_a_tree_is_reported_in_one_run() {
    let ws = Workspace::with_vault();
    std::fs::write(
        ws.path("src/site.cfg"),
        "<polycomConfig device.prov.password=\"hunter22\"\n  device.logincred.pin=\"2468\"/>\n",
    )
    .expect("site.cfg");
    std::fs::write(
        ws.path("src/features.cfg"),
        "<polycomConfig dir.corp.password=\"ldap-secret\"/>\n",
    )
    .expect("features.cfg");
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg, features.cfg"/>"#,
    );
    let output = ws.try_publish();
    assert_failure(&output, 3, "and 2 more");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for parameter in [
        "device.prov.password",
        "device.logincred.pin",
        "dir.corp.password",
    ] {
        assert!(stderr.contains(parameter), "{parameter} in {stderr}");
    }
    for secret in ["hunter22", "2468", "ldap-secret"] {
        assert!(
            !stderr.contains(secret),
            "a secret's value is never printed"
        );
    }
}

#[test]
fn a_phones_file_listed_by_its_literal_mac_in_a_shared_list_is_refused() {
    // Lower case: it was encrypted with that one phone's key and served to every phone; upper
    // case: copied in plaintext, 0644, with its password.
    for entry in ["0004f2a10001-sip.cfg", "0004F2A10001-sip.cfg"] {
        let ws = Workspace::with_vault();
        master_with(
            &ws,
            &format!(r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg, {entry}"/>"#),
        );
        let before = events(&ws);
        let output = ws.try_publish();
        assert_failure(&output, 3, "the file of phone 0004f2a10001");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("[PHONE_MAC_ADDRESS]"),
            "says what to write instead"
        );
        assert_eq!(events(&ws), before, "{entry}: no key made");
    }
}

/// Runs `polyseal ARGS` in the workspace as the user nobody (the workspace made theirs).
fn as_nobody(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let mut setpriv = StdCommand::new("setpriv");
    setpriv
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(polyseal_bin())
        .args(args);
    ws.set_up(&mut setpriv);
    setpriv
        .output()
        .unwrap_or_else(|e| panic!("`setpriv` (util-linux) is required: {e}"))
}

/// Gives the workspace to `user`, so polyseal can run as them.
fn chown(ws: &Workspace, user: &str) {
    let status = StdCommand::new("chown")
        .args(["-R", user])
        .arg(ws.dir.path())
        .status()
        .expect("chown");
    assert!(status.success());
    std::fs::set_permissions(ws.dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn hidden_files_and_directories_under_out_are_kept_with_their_modes() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::write(ws.path("out/.htaccess"), b"deny").expect("file");
    std::fs::create_dir_all(ws.path("out/.well-known")).expect("dir");
    std::fs::write(ws.path("out/.well-known/acme"), b"token").expect("file");
    std::fs::create_dir(ws.path("out/private")).expect("dir");
    std::fs::set_permissions(
        ws.path("out/private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .expect("chmod");
    std::fs::write(ws.path("out/private/phone.log"), b"log").expect("file");
    std::fs::create_dir(ws.path("out/empty")).expect("an empty directory");
    std::fs::write(ws.path("src/site.cfg"), "<polycomConfig/>").expect("a change");
    ws.publish();
    assert_eq!(
        std::fs::read(ws.path("out/.htaccess")).expect("kept"),
        b"deny"
    );
    assert!(ws.path("out/.well-known/acme").is_file());
    assert!(ws.path("out/empty").is_dir());
    assert_eq!(
        mode(&ws.path("out/private")),
        0o700,
        "a private directory stays private"
    );
    assert!(ws.path("out/private/phone.log").is_file());
}

#[test]
fn an_out_with_only_hidden_files_or_empty_directories_is_not_publish_s_to_take() {
    let ws = Workspace::with_vault();
    std::fs::create_dir_all(ws.path("out/.git")).expect("dir");
    std::fs::create_dir_all(ws.path("out/logs")).expect("dir");
    let output = ws.try_publish();
    assert_failure(&output, 3, "holds files polyseal did not write");
}

#[test]
fn a_file_uploaded_while_publish_runs_is_kept() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::write(ws.path("src/site.cfg"), "<polycomConfig/>").expect("a change");
    // The run is held for three seconds as it flushes the staging tree; a phone uploads a
    // log meanwhile.
    let mut run = publish_under_strace(
        &ws,
        &[
            "trace=syncfs".to_owned(),
            "inject=syncfs:delay_enter=3000000".to_owned(),
        ],
    )
    .spawn()
    .expect("strace");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(ws.path("out/0004f2a10001-app.log"), b"uploaded").expect("upload");
    assert!(run.wait().expect("wait").success());
    assert_eq!(
        std::fs::read(ws.path("out/0004f2a10001-app.log")).expect("kept"),
        b"uploaded"
    );
}

#[test]
fn a_publish_killed_between_the_two_renames_of_the_fallback_swap_loses_no_foreign_file() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::write(ws.path("out/precious.log"), b"precious").expect("file");
    std::fs::write(ws.path("src/site.cfg"), "<polycomConfig/>").expect("a change");
    // No exchange (as on a file system without it), and killed at the second rename.
    for n in 1..=4 {
        let _ = publish_under_strace(
            &ws,
            &[
                "trace=renameat2,rename".to_owned(),
                "inject=renameat2:error=EINVAL".to_owned(),
                format!("inject=rename:signal=KILL:when={n}"),
            ],
        )
        .output()
        .expect("strace");
    }
    ws.publish();
    assert_eq!(
        std::fs::read(ws.path("out/precious.log")).expect("kept"),
        b"precious"
    );
}

#[test]
fn another_users_upload_is_kept_when_publish_runs_as_a_user_who_cannot_link_it() {
    let ws = Workspace::with_vault();
    chown(&ws, "nobody");
    assert!(
        as_nobody(&ws, &["publish", "--src", "src", "--out", "out"])
            .status
            .success()
    );
    // The web server's user wrote an upload; the kernel (protected_hardlinks) refuses nobody
    // a hard link to it.
    std::fs::write(ws.path("out/0004f2a10001-phone.cfg"), b"<override/>").expect("upload");
    let status = StdCommand::new("chown")
        .arg("daemon")
        .arg(ws.path("out/0004f2a10001-phone.cfg"))
        .status()
        .expect("chown");
    assert!(status.success());
    std::fs::write(ws.path("src/site.cfg"), "<polycomConfig/>").expect("a change");
    let output = as_nobody(&ws, &["publish", "--src", "src", "--out", "out"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read(ws.path("out/0004f2a10001-phone.cfg")).expect("kept"),
        b"<override/>"
    );
}

#[test]
fn a_tree_published_by_polyseal_0_1_0_is_polyseal_s_without_adopting_it() {
    // 0.1.0's manifest (format 1) listed only the files it could prove unchanged.
    let ws = Workspace::with_vault();
    ws.publish();
    let manifest = ws.path(".out.polyseal-manifest");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    let old: String = text
        .lines()
        .enumerate()
        .filter(|(i, line)| *i == 0 || !line.contains("site.cfg"))
        .map(|(i, line)| {
            if i == 0 {
                "polyseal-manifest/1\n".to_owned()
            } else {
                format!("{line}\n")
            }
        })
        .collect();
    std::fs::write(&manifest, old).expect("write");
    ws.publish();
}

#[test]
fn a_foreign_file_where_the_new_tree_needs_a_directory_is_refused_before_any_key() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::write(ws.path("out/sounds"), b"a file").expect("file");
    std::fs::create_dir(ws.path("src/sounds")).expect("dir");
    std::fs::write(ws.path("src/sounds/ring.wav"), b"RIFF").expect("file");
    let before = events(&ws);
    let output = ws.try_publish();
    assert_failure(&output, 3, "sounds");
    assert_eq!(events(&ws), before);
}

#[test]
fn a_symlinked_out_given_with_a_trailing_slash_keeps_its_link() {
    let ws = Workspace::with_vault();
    std::fs::create_dir(ws.path("real")).expect("dir");
    symlink("real", ws.path("out")).expect("symlink");
    ws.run(&["publish", "--src", "src", "--out", "out/"]);
    ws.run(&["publish", "--src", "src", "--out", "out/"]);
    assert!(
        std::fs::symlink_metadata(ws.path("out"))
            .expect("out")
            .file_type()
            .is_symlink()
    );
    assert!(ws.path("real/0004f2a10001-key.cfg").is_file());
}

#[test]
fn an_out_inside_the_source_tree_or_holding_it_is_refused() {
    let ws = Workspace::with_vault();
    let whole = ws.dir.path().display().to_string();
    for out in ["src", "src/pub", whole.as_str()] {
        let output = ws.output(&["publish", "--src", "src", "--out", out, "--adopt-out"]);
        assert_failure(&output, 3, "one holds the other");
    }
    assert!(ws.path("src/0004f2a10001-sip.cfg").is_file());
    let source = std::fs::read(ws.path("src/0004f2a10001-sip.cfg")).expect("source");
    assert!(
        !polyseal_crypto::is_encrypted(&source),
        "the source stays plaintext"
    );
}

#[test]
fn an_out_the_publishing_user_cannot_write_in_is_refused_up_front() {
    let ws = Workspace::with_vault();
    ws.publish();
    chown(&ws, "nobody");
    std::fs::set_permissions(ws.path("out"), std::fs::Permissions::from_mode(0o555))
        .expect("chmod");
    let before = events(&ws);
    let output = as_nobody(&ws, &["publish", "--src", "src", "--out", "out"]);
    assert_failure(&output, 3, "cannot write in it");
    assert_eq!(events(&ws), before);
}

#[test]
fn a_file_name_the_manifest_cannot_record_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let ws = Workspace::with_vault();
    let name = std::ffi::OsStr::from_bytes(b"ring\xe9.wav");
    std::fs::write(ws.path("src").join(name), b"RIFF").expect("file");
    let output = ws.try_publish();
    assert_failure(&output, 3, "not UTF-8");
}

#[test]
fn rotate_republishes_a_tree_published_with_allowed_plaintext_secrets() {
    let ws = Workspace::with_vault();
    std::fs::write(
        ws.path("src/site.cfg"),
        r#"<polycomConfig device.prov.password="hunter22"/>"#,
    )
    .expect("site");
    ws.run(&[
        "publish",
        "--src",
        "src",
        "--out",
        "out",
        "--allow-plaintext-secrets",
    ]);
    ws.run(&[
        "rotate",
        "start",
        "--all",
        "--src",
        "src",
        "--out",
        "out",
        "--allow-plaintext-secrets",
    ]);
}

#[test]
fn a_per_phone_file_that_is_not_well_formed_is_refused_and_no_key_stays_in_the_vault() {
    let ws = Workspace::with_vault();
    let path = ws.path("src/0004f2a10001-sip.cfg");
    let mut text = std::fs::read_to_string(&path).expect("source");
    text.push_str("<reg><bad");
    std::fs::write(&path, text).expect("write");
    let before = events(&ws);
    let output = ws.try_publish();
    assert_failure(&output, 3, "0004f2a10001-sip.cfg");
    assert_eq!(
        events(&ws),
        before,
        "the keys made for the run were never written"
    );
    assert!(!ws.path("out").exists(), "nothing is published");
    // Fixed, the tree publishes, with new keys.
    let fixed = std::fs::read_to_string(ws.path("src/0004f2a10002-sip.cfg")).expect("a good one");
    std::fs::write(&path, fixed).expect("write");
    ws.publish();
    assert!(ws.path("out/0004f2a10001-key.cfg").is_file());
}

/// The KeyDesc an encrypted file's header names, or `None` for a plaintext file.
fn key_desc_of(path: &std::path::Path) -> Option<String> {
    let bytes = std::fs::read(path).expect("published file");
    let header = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(header)
        .split(';')
        .find_map(|field| field.strip_prefix("KeyDesc="))
        .map(str::to_owned)
}

#[test]
fn per_phone_files_named_with_the_mac_anywhere_in_a_listed_path_are_encrypted_with_its_key() {
    let ws = Workspace::with_vault();
    std::fs::create_dir_all(ws.path("src/phones/0004f2a10001")).expect("dir");
    let sip = std::fs::read(ws.path("src/0004f2a10001-sip.cfg")).expect("example");
    std::fs::rename(
        ws.path("src/0004f2a10001-sip.cfg"),
        ws.path("src/sip-0004f2a10001.cfg"),
    )
    .expect("rename");
    std::fs::write(ws.path("src/phones/0004f2a10001/reg.cfg"), &sip).expect("reg.cfg");
    for other in ["0004f2a10002-sip.cfg", "64167fa10003-sip.cfg"] {
        std::fs::remove_file(ws.path(&format!("src/{other}"))).expect("one phone");
    }
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, sip-[PHONE_MAC_ADDRESS].cfg, phones/[PHONE_MAC_ADDRESS]/reg.cfg, site.cfg"/>"#,
    );
    ws.publish();
    for file in [
        "out/sip-0004f2a10001.cfg",
        "out/phones/0004f2a10001/reg.cfg",
    ] {
        assert_eq!(
            key_desc_of(&ws.path(file)).as_deref(),
            Some("0004f2a10001-g1"),
            "{file} is encrypted with its phone's key"
        );
        let decrypted = ws.path("decrypted.cfg");
        ws.run(&["decrypt", file, "--output", "decrypted.cfg"]);
        assert_eq!(std::fs::read(&decrypted).expect("decrypted"), sip);
        std::fs::remove_file(decrypted).expect("clean");
    }
    assert!(
        ws.path("out/0004f2a10001-key.cfg").is_file(),
        "the phone is found by its files"
    );
}

#[test]
fn a_file_named_with_a_mac_that_no_master_lists_is_reported_and_not_published() {
    let ws = Workspace::with_vault();
    // Upper case: phones request 0004f2a10002-sip.cfg, never this one.
    std::fs::rename(
        ws.path("src/0004f2a10002-sip.cfg"),
        ws.path("src/0004F2A10002-sip.cfg"),
    )
    .expect("rename");
    // In no list at all, with a password.
    std::fs::write(
        ws.path("src/0004F2A10001-extra.cfg"),
        "<polycomConfig reg.2.auth.password=\"extra-Passw0rd-xyz\"/>\n",
    )
    .expect("extra");
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("listed for that phone by no master"))
        .collect();
    assert_eq!(warnings.len(), 1, "one grouped warning: {stderr}");
    for said in [
        "2 files are",
        "0004F2A10001-extra.cfg",
        "0004F2A10002-sip.cfg (phones request 0004f2a10002-sip.cfg",
        "not published",
    ] {
        assert!(warnings[0].contains(said), "{said} in {}", warnings[0]);
    }
    assert!(!ws.path("out/0004F2A10001-extra.cfg").exists());
    assert!(!ws.path("out/0004F2A10002-sip.cfg").exists());
    assert!(ws.path("out/0004f2a10001-sip.cfg").is_file());
    // 0004f2a10002 is named by no file a master lists for it: no key file, no key.
    assert!(!ws.path("out/0004f2a10002-key.cfg").exists());
    let dry = ws.output(&["publish", "--src", "src", "--out", "out", "--dry-run"]);
    assert!(
        !String::from_utf8_lossy(&dry.stdout).contains("0004F2A1000"),
        "the dry run plans neither"
    );
}

#[test]
fn a_master_no_phone_can_read_is_refused_even_when_the_masters_lists_name_no_phone() {
    let ws = Workspace::with_vault();
    ws.run(&["keys", "add", "0004f2a10001"]);
    ws.run(&[
        "encrypt",
        "src/000000000000.cfg",
        "--mac",
        "0004f2a10001",
        "--output",
        "master.enc",
    ]);
    std::fs::rename(ws.path("master.enc"), ws.path("src/000000000000.cfg")).expect("swap");
    let output = ws.try_publish();
    assert_failure(&output, 3, "000000000000.cfg");
    assert!(!ws.path("out").exists(), "nothing is published");
}

#[test]
fn a_phones_file_listed_by_its_literal_mac_is_refused_in_a_fleet_of_one_phone() {
    let ws = Workspace::with_vault();
    for other in ["0004f2a10002-sip.cfg", "64167fa10003-sip.cfg"] {
        std::fs::remove_file(ws.path(&format!("src/{other}"))).expect("one phone");
    }
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg, 0004f2a10001-sip.cfg"/>"#,
    );
    let before = events(&ws);
    let output = ws.try_publish();
    assert_failure(&output, 3, "the file of phone 0004f2a10001");
    assert_eq!(events(&ws), before, "no key made");
}

#[test]
fn a_model_element_carrying_another_models_attribute_is_warned_about() {
    // Polycom's own UC template: <APPLICATION_SPIP320> carries CONFIG_FILES_SPIP501, which
    // SPIP320 phones ignore.
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg">
  <APPLICATION_SPIP320 APP_FILE_PATH_SPIP320="sip_320.ld" CONFIG_FILES_SPIP501="[PHONE_MAC_ADDRESS]-key.cfg, site.cfg"/>
</APPLICATION>"#,
    );
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("<APPLICATION_SPIP320> carries CONFIG_FILES_SPIP501"),
        "{stderr}"
    );
}

#[test]
fn a_weak_sip_password_in_many_phones_files_is_one_grouped_warning() {
    let ws = Workspace::with_vault();
    for n in 1..=8 {
        std::fs::write(
            ws.path(&format!("src/0004f2b0000{n}-sip.cfg")),
            "<polycomConfig reg.1.auth.password=\"1234\"/>\n",
        )
        .expect("weak");
    }
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let weak: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("weak SIP password"))
        .collect();
    assert_eq!(weak.len(), 1, "{stderr}");
    assert!(weak[0].contains("8 findings like this one"), "{}", weak[0]);
    assert!(
        weak[0].contains("0004f2b00001-sip.cfg"),
        "the first in full"
    );
    assert!(weak[0].contains(", and 2 more"), "{}", weak[0]);
    assert!(!stderr.contains("1234\""), "never the password");
}

#[test]
fn files_xmllint_refuses_are_refused_with_their_line_and_column_before_any_key() {
    for (slip, line) in [
        (
            "<polycomConfig>\n<reg reg.{$line}.auth.password=\"{$secret}\"/>\n</polycomConfig>\n",
            2,
        ),
        (
            "<polycomConfig>\n<reg b=\"2\"c=\"3\"/>\n</polycomConfig>\n",
            2,
        ),
        ("<polycomConfig>\n<reg a=\"x&y\"/>\n</polycomConfig>\n", 2),
        (
            "<polycomConfig>\n<!-- old -- value -->\n</polycomConfig>\n",
            2,
        ),
        (" <?xml version=\"1.0\"?>\n<polycomConfig/>\n", 1),
        ("\u{feff}\u{feff}<polycomConfig/>\n", 1),
    ] {
        let ws = Workspace::with_vault();
        let file = ws.path("slip.cfg");
        std::fs::write(&file, slip).expect("slip");
        let xmllint = StdCommand::new("xmllint")
            .arg("--noout")
            .arg(&file)
            .output()
            .expect("xmllint must be installed (scripts/install-test-tools.sh)");
        assert!(!xmllint.status.success(), "xmllint refuses {slip:?}");
        std::fs::rename(&file, ws.path("src/0004f2a10001-sip.cfg")).expect("into the tree");
        let before = events(&ws);
        let output = ws.try_publish();
        assert_failure(&output, 3, &format!("0004f2a10001-sip.cfg:{line}:"));
        assert_eq!(events(&ws), before, "{slip:?}: no key stays");
        assert!(!ws.path("out").exists(), "{slip:?}: nothing published");
    }
}

#[test]
fn a_contact_directory_declared_iso_8859_1_publishes_and_round_trips() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg" CONTACTS_DIRECTORY="contacts"/>"#,
    );
    std::fs::create_dir(ws.path("src/contacts")).expect("dir");
    // "Zoë Müller" in ISO-8859-1: one byte per letter, not UTF-8.
    let directory = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<directory><item_list>\n<item><fn>Zo\xeb</fn><ln>M\xfcller</ln><ct>1002</ct></item>\n</item_list></directory>\n";
    std::fs::write(
        ws.path("src/contacts/0004f2a10001-directory.xml"),
        directory,
    )
    .expect("directory");
    ws.publish();
    let published = ws.path("out/contacts/0004f2a10001-directory.xml");
    assert_eq!(key_desc_of(&published).as_deref(), Some("0004f2a10001-g1"));
    ws.run(&[
        "decrypt",
        "out/contacts/0004f2a10001-directory.xml",
        "--output",
        "directory.xml",
    ]);
    assert_eq!(
        std::fs::read(ws.path("directory.xml")).expect("decrypted"),
        directory,
        "byte for byte"
    );
}

#[test]
fn unrendered_template_placeholders_are_one_grouped_warning_and_no_secret() {
    let ws = Workspace::with_vault();
    // In a shared file, a lone placeholder is no secret; with a default, the default is
    // judged (a weak one is a weak password, not a refusal: it is per-phone).
    std::fs::write(
        ws.path("src/site.cfg"),
        "<polycomConfig device.prov.password=\"{$prov_password}\" voIpProt.server.1.address=\"{$sip_server}\"/>\n",
    )
    .expect("site.cfg");
    for n in 1..=7 {
        std::fs::write(
            ws.path(&format!("src/0004f2b0000{n}-sip.cfg")),
            format!("<polycomConfig reg.1.address=\"{{$ext{n}}}\" reg.1.auth.password=\"{{$secret|a-Long-Default-Passw0rd-{n}}}\"/>\n"),
        )
        .expect("per-phone");
    }
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("unrendered template placeholder"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    for part in [
        "16 values hold",
        "site.cfg:1:16: device.prov.password",
        ", and 11 more",
    ] {
        assert!(said[0].contains(part), "{part} in {}", said[0]);
    }
    assert!(
        !stderr.contains("weak SIP password"),
        "defaults are judged: {stderr}"
    );

    // A shared file's placeholder default is a secret served to every phone.
    std::fs::write(
        ws.path("src/site.cfg"),
        "<polycomConfig device.prov.password=\"{$prov_password|hunter2hunter2}\"/>\n",
    )
    .expect("site.cfg");
    let output = ws.try_publish();
    assert_failure(&output, 3, "device.prov.password");
}

#[test]
fn a_firmware_image_or_upload_directory_no_one_has_is_warned_about() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg" LOG_FILE_DIRECTORY="logs" OVERRIDES_DIRECTORY="overrides" CONTACTS_DIRECTORY="contacts"/>"#,
    );
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for attribute in [
        "APP_FILE_PATH names sip.ld",
        "LOG_FILE_DIRECTORY names logs",
        "OVERRIDES_DIRECTORY names overrides",
        "CONTACTS_DIRECTORY names contacts",
    ] {
        assert!(stderr.contains(attribute), "{attribute} in {stderr}");
    }
    // A split firmware image in the tree, and upload directories made under --out, are
    // what the master asks for: nothing to say.
    std::fs::write(ws.path("src/3111-40250-001.sip.ld"), b"image").expect("firmware");
    for dir in ["logs", "overrides", "contacts"] {
        std::fs::create_dir(ws.path(&format!("out/{dir}"))).expect("upload directory");
    }
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("neither the source tree nor --out"),
        "{stderr}"
    );
}

#[test]
fn a_master_problem_of_every_phone_is_said_once_for_the_master() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg, https://cfg.example.net/[PHONE_MAC_ADDRESS]-remote.cfg"/>"#,
    );
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("not in the provisioning tree"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("000000000000.cfg: CONFIG_FILES lists https://cfg.example.net/[PHONE_MAC_ADDRESS]-remote.cfg"),
        "{}",
        said[0]
    );
}

#[test]
fn a_phones_file_that_cannot_be_read_is_named_as_the_phones_file() {
    let ws = Workspace::with_vault();
    let output = ws.output(&[
        "publish",
        "--src",
        "src",
        "--out",
        "out",
        "--phones",
        "0004f2a10001",
    ]);
    assert_failure(
        &output,
        6,
        "cannot read the --phones file 0004f2a10001: No such file or directory",
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("os error"));
}

#[test]
fn a_shared_file_encrypted_in_the_source_tree_is_refused_before_any_key() {
    let ws = Workspace::with_vault();
    ws.run(&["keys", "add", "0004f2a10001"]);
    ws.run(&[
        "encrypt",
        "src/site.cfg",
        "--mac",
        "0004f2a10001",
        "--output",
        "site.enc",
    ]);
    std::fs::rename(ws.path("site.enc"), ws.path("src/site.cfg")).expect("swap");
    let before = events(&ws);
    let output = ws.try_publish();
    assert_failure(&output, 3, "site.cfg: a shared file");
    assert_eq!(events(&ws), before, "no key made");
    assert!(!ws.path("out").exists());
}

#[test]
fn a_per_phone_file_encrypted_in_the_source_under_another_phones_key_is_refused() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::copy(
        ws.path("out/0004f2a10002-sip.cfg"),
        ws.path("src/0004f2a10001-sip.cfg"),
    )
    .expect("another phone's file");
    let before = events(&ws);
    let output = ws.try_publish();
    assert_failure(
        &output,
        3,
        "0004f2a10001-sip.cfg: already encrypted in the source tree, under KeyDesc 0004f2a10002-g1",
    );
    assert_eq!(events(&ws), before);
}

#[test]
fn a_mac_cfg_that_is_no_master_listed_for_its_phone_is_refused_not_encrypted() {
    let ws = Workspace::with_vault();
    std::fs::rename(
        ws.path("src/0004f2a10001-sip.cfg"),
        ws.path("src/0004f2a10001.cfg"),
    )
    .expect("rename");
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS].cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"/>"#,
    );
    let output = ws.try_publish();
    assert_failure(
        &output,
        3,
        "0004f2a10001.cfg: phones request <mac>.cfg first",
    );
    assert!(!ws.path("out").exists());
}

#[test]
fn a_listed_shared_file_of_any_name_is_checked_and_an_unlisted_malformed_one_is_a_warning() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg, extra.conf"/>"#,
    );
    std::fs::write(
        ws.path("src/extra.conf"),
        "<polycomConfig device.logincred.password=\"Hunter2Hunter2\"/>\n",
    )
    .expect("extra");
    let output = ws.try_publish();
    assert_failure(&output, 3, "extra.conf:1:16: device.logincred.password");
    std::fs::write(ws.path("src/extra.conf"), "<p a=\"1\"b=\"2\"/>\n").expect("extra");
    let output = ws.try_publish();
    assert_failure(&output, 3, "extra.conf:1:");
    // A backup no master lists, not well-formed: it breaks no phone, and is said.
    std::fs::write(ws.path("src/extra.conf"), "<polycomConfig/>\n").expect("extra");
    std::fs::write(ws.path("src/old-site.cfg.bak"), "<p a=\"1\"b=\"2\"/>\n").expect("bak");
    let output = ws.try_publish();
    assert!(output.status.success(), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("old-site.cfg.bak:1:"),
        "{output:?}"
    );
    // With a secret, it is served to anyone who asks for it: refused.
    std::fs::write(
        ws.path("src/old-site.cfg.bak"),
        "<polycomConfig device.logincred.password=\"Hunter2Hunter2\"/>\n",
    )
    .expect("bak");
    let output = ws.try_publish();
    assert_failure(&output, 3, "old-site.cfg.bak");
}

#[test]
fn a_mac_next_to_hex_letters_in_a_listed_name_is_encrypted_and_a_date_is_no_mac() {
    let ws = Workspace::with_vault();
    std::fs::rename(
        ws.path("src/0004f2a10001-sip.cfg"),
        ws.path("src/abc0004f2a10001.cfg"),
    )
    .expect("rename");
    for other in ["0004f2a10002-sip.cfg", "64167fa10003-sip.cfg"] {
        std::fs::remove_file(ws.path(&format!("src/{other}"))).expect("one phone");
    }
    std::fs::write(ws.path("src/site-202401011200.cfg"), "<polycomConfig/>\n").expect("dated");
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, abc[PHONE_MAC_ADDRESS].cfg, site.cfg, site-202401011200.cfg"/>"#,
    );
    ws.publish();
    assert_eq!(
        key_desc_of(&ws.path("out/abc0004f2a10001.cfg")).as_deref(),
        Some("0004f2a10001-g1")
    );
    assert_eq!(key_desc_of(&ws.path("out/site-202401011200.cfg")), None);
}

#[test]
fn every_listed_file_missing_or_outside_the_tree_is_named_in_one_refusal() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg, m1.cfg, m2.cfg, ../identity.txt"/>"#,
    );
    let before = events(&ws);
    let output = ws.try_publish();
    assert_failure(&output, 3, "lists m1.cfg");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("and 2 more"), "{stderr}");
    assert!(
        stderr.contains("m2.cfg") && stderr.contains("../identity.txt"),
        "{stderr}"
    );
    assert_eq!(events(&ws), before);
}

#[test]
fn a_per_phone_file_encrypted_by_another_vault_under_the_same_keydesc_is_refused() {
    let other = Workspace::with_vault();
    other.publish();
    let ws = Workspace::with_vault();
    ws.run(&["keys", "add", "0004f2a10001"]);
    std::fs::copy(
        other.path("out/0004f2a10001-sip.cfg"),
        ws.path("src/0004f2a10001-sip.cfg"),
    )
    .expect("the other vault's file");
    let output = ws.try_publish();
    assert_failure(&output, 3, "this vault's key of that name does not open it");
    assert!(!ws.path("out").exists());
}

#[test]
fn rotate_start_refuses_a_per_phone_file_already_encrypted_under_the_old_key() {
    let ws = Workspace::with_vault();
    ws.publish();
    crate::support::copy_dir(&ws.path("src"), &ws.path("src-g1"));
    std::fs::copy(
        ws.path("out/0004f2a10001-sip.cfg"),
        ws.path("src-g1/0004f2a10001-sip.cfg"),
    )
    .expect("g1 file");
    let before = events(&ws);
    let output = ws.output(&[
        "rotate", "start", "--all", "--src", "src-g1", "--out", "out",
    ]);
    assert_failure(
        &output,
        3,
        "already encrypted in the source tree, under KeyDesc 0004f2a10001-g1",
    );
    assert_eq!(events(&ws), before, "no pre-active key");
}

#[test]
fn the_default_masters_lists_are_checked_when_every_phone_has_a_master_of_its_own() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, provdata"/>"#,
    );
    std::fs::write(
        ws.path("src/provdata"),
        "<polycomConfig reg.1.auth.password=\"Hunter2Hunter2\"/>\n",
    )
    .expect("provdata");
    for mac in ["0004f2a10001", "0004f2a10002", "64167fa10003"] {
        std::fs::write(
            ws.path(&format!("src/{mac}.cfg")),
            r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"/>"#,
        )
        .expect("own master");
    }
    let output = ws.try_publish();
    assert_failure(&output, 3, "provdata");
}

#[test]
fn a_symbolic_link_to_a_phones_file_under_another_name_is_refused() {
    let ws = Workspace::with_vault();
    symlink("0004f2a10001-sip.cfg", ws.path("src/logo.bmp")).expect("link");
    let output = ws.try_publish();
    assert_failure(
        &output,
        3,
        "logo.bmp: a symbolic link to 0004f2a10001-sip.cfg",
    );
    assert!(!ws.path("out").exists());
}

#[test]
fn an_encrypted_contact_directory_seed_is_refused_as_every_phone_reads_it() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg" CONTACTS_DIRECTORY="contacts"/>"#,
    );
    std::fs::create_dir(ws.path("src/contacts")).expect("dir");
    ws.run(&["keys", "add", "0004f2a10002"]);
    ws.run(&[
        "encrypt",
        "--mac",
        "0004f2a10002",
        "src/site.cfg",
        "--output",
        "src/contacts/000000000000-directory.xml",
    ]);
    let output = ws.try_publish();
    assert_failure(&output, 3, "000000000000-directory.xml: a shared file");
}

#[test]
fn a_file_the_lists_give_to_two_phones_is_refused() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, 0004f2[PHONE_MAC_ADDRESS].cfg, [PHONE_MAC_ADDRESS]a10001.cfg, site.cfg"/>"#,
    );
    std::fs::write(ws.path("src/0004f20004f2a10001.cfg"), "<polycomConfig/>\n").expect("file");
    let output = ws.try_publish();
    assert_failure(
        &output,
        3,
        "0004f20004f2a10001.cfg: the masters' lists give this file",
    );
}

#[test]
fn every_kind_of_refusal_of_a_tree_is_said_in_one_run() {
    let ws = Workspace::with_vault();
    master_with(
        &ws,
        r#"CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg, sitee.cfg"/>"#,
    );
    std::fs::write(
        ws.path("src/site.cfg"),
        "<polycomConfig device.prov.password=\"hunter22hunter22\"/>\n",
    )
    .expect("site.cfg");
    std::fs::write(
        ws.path("src/0004f2a10002-sip.cfg"),
        "<polycomConfig>\n<reg b=\"2\"c=\"3\"/>\n</polycomConfig>\n",
    )
    .expect("malformed");
    let before = events(&ws);
    let output = ws.try_publish();
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(errors[0].contains("lists sitee.cfg"), "{stderr}");
    assert!(errors[1].contains("device.prov.password"), "{stderr}");
    assert!(errors[2].contains("0004f2a10002-sip.cfg:2:"), "{stderr}");
    assert!(
        stderr
            .lines()
            .all(|l| l.starts_with("error: ") || l.starts_with("  hint: ")),
        "{stderr}"
    );
    assert_eq!(events(&ws), before, "no key made");
    assert!(!ws.path("out").exists());
}
