//! The CLI conventions users of sops, age and ripgrep expect (docs/CLI.md): listings in JSON
//! on request, options a command does not use refused, `-v` naming every file written and
//! removed, a closed pipe ending quietly, one manual page per command, README's commands
//! working as written.

use std::process::Command as StdCommand;

use crate::support::{PHONES, Workspace, assert_failure, polyseal_bin, repo_root};

/// Parses standard output as one JSON document.
fn json(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON document ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// `polyseal ARGS | READER` in bash; polyseal's exit status is the last line of standard
/// error, as `status=N`.
fn piped(ws: &Workspace, args: &str, reader: &str) -> std::process::Output {
    let mut shell = StdCommand::new("bash");
    shell.arg("-c").arg(format!(
        "'{}' {args} | {reader}; echo \"status=${{PIPESTATUS[0]}}\" >&2",
        polyseal_bin().display()
    ));
    ws.set_up(&mut shell);
    shell.output().expect("bash")
}

#[test]
fn every_listing_prints_json_on_request() {
    let ws = Workspace::with_vault();
    ws.publish();
    let keys = json(&ws.output(&["keys", "list", "--format", "json"]));
    assert_eq!(keys.as_array().map(Vec::len), Some(3), "{keys}");
    let status = json(&ws.output(&["rotate", "status", "--format", "json"]));
    assert_eq!(status[0]["mac"], PHONES[0], "{status}");
    let recipients = json(&ws.output(&["recipients", "list", "--format", "json"]));
    assert_eq!(recipients[0]["label"], "admin", "{recipients}");
    assert!(
        recipients[0]["recipient"]
            .as_str()
            .is_some_and(|r| r.starts_with("age1")),
        "{recipients}"
    );
    let inspected = json(&ws.output(&[
        "inspect",
        "--format",
        "json",
        "out/0004f2a10001-sip.cfg",
        "out/site.cfg",
    ]));
    assert_eq!(inspected[0]["encrypted"], true, "{inspected}");
    assert_eq!(inspected[0]["key_desc"], "0004f2a10001-g1", "{inspected}");
    assert_eq!(inspected[0]["phone"], "0004f2a10001", "{inspected}");
    assert_eq!(inspected[1]["encrypted"], false, "{inspected}");

    let log = ws.output(&["log", "show", "--format", "json"]);
    let lines = String::from_utf8_lossy(&log.stdout).into_owned();
    assert!(log.status.success());
    for line in lines.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("each log line is a JSON event ({e}): {line}"));
    }
    assert_eq!(
        lines,
        std::fs::read_to_string(ws.path("vault/events.log")).expect("log"),
        "the log's own lines, as they are hash-chained"
    );
    let old_flag = ws.output(&["log", "show", "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&old_flag.stdout),
        lines,
        "--json still works"
    );
}

#[test]
fn audit_prints_its_findings_as_csv_with_a_header() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::remove_file(ws.path("out/0004f2a10002-key.cfg")).expect("remove a key file");
    let output = ws.output(&["audit", "--tree", "out", "--format", "csv"]);
    assert!(output.status.success());
    let csv = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("severity,code,mac,file,message,fix"));
    assert!(
        lines.any(|l| l.starts_with("error,key-file-missing,0004f2a10002,")),
        "{csv}"
    );
}

#[test]
fn a_closed_pipe_ends_a_listing_quietly_with_exit_0() {
    let ws = Workspace::with_vault();
    // More rows than a pipe holds (64 KiB), so polyseal is still writing when `head` exits.
    let macs: String = (0..2000).map(|n| format!("0004f2{n:06x}\n")).collect();
    std::fs::write(ws.path("many.txt"), macs).expect("write");
    ws.run(&["keys", "add", "--from", "many.txt"]);
    // --quiet: the note that the listing was read without an identity is not the point here.
    let output = piped(&ws, "--quiet keys list", "head -1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "status=0",
        "polyseal says nothing and exits 0 when its reader goes away"
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("mac "));
}

#[test]
fn rotate_steps_refuse_options_they_do_not_use() {
    let ws = Workspace::with_vault();
    ws.publish();
    // Before, `confirm` took and ignored these, and succeeded.
    for args in [
        &[
            "rotate", "confirm", "--src", "src", "--out", "out", PHONES[0],
        ][..],
        &["rotate", "confirm", "--phones", "/nonexistent", PHONES[0]][..],
        &["rotate", "finish", "--uploads", "out", PHONES[0]][..],
        &["rotate", "start", "--phones", "phones.csv", PHONES[0]][..],
        &[
            "rotate",
            "finish",
            "--key-file",
            "x-[PHONE_MAC_ADDRESS].cfg",
            PHONES[0],
        ][..],
    ] {
        let output = ws.output(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let status = ws.output(&["rotate", "status", "--format", "json"]);
    assert_eq!(
        json(&status)[0]["next"],
        serde_json::Value::Null,
        "nothing changed"
    );
}

#[test]
fn verbose_publish_names_each_file_written_and_removed() {
    let ws = Workspace::with_vault();
    let first = ws.output(&["-v", "publish", "--src", "src", "--out", "out"]);
    let stderr = String::from_utf8_lossy(&first.stderr).into_owned();
    for file in ["0004f2a10001-key.cfg", "0004f2a10001-sip.cfg", "site.cfg"] {
        let line = format!("wrote out/{file}");
        assert!(stderr.lines().any(|l| l == line), "{line:?} in:\n{stderr}");
    }
    std::fs::remove_file(ws.path("src/0004f2a10002-sip.cfg")).expect("remove a source");
    let second = ws.output(&["-v", "publish", "--src", "src", "--out", "out"]);
    let stderr = String::from_utf8_lossy(&second.stderr).into_owned();
    let removed = "removed out/0004f2a10002-sip.cfg";
    assert!(
        stderr.lines().any(|l| l == removed),
        "{removed:?} in:\n{stderr}"
    );
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("wrote") && l.ends_with("site.cfg")),
        "an unchanged file is not written again:\n{stderr}"
    );
}

#[test]
fn counts_read_right_in_singular() {
    let ws = Workspace::with_vault();
    let output = ws.output(&["keys", "add", PHONES[0]]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("made 1 active key (0 phones already had one)"),
        "{stderr}"
    );
    let again = ws.output(&["keys", "add", PHONES[0]]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("no keys made: 1 phone already has an active key"),
        "{stderr}"
    );
}

#[test]
fn man_out_writes_one_page_per_command() {
    let ws = Workspace::new();
    let output = ws.output(&["man", "--out", "man1"]);
    assert!(output.status.success());
    let pages = ws.files_under("man1");
    for page in [
        "man1/polyseal.1",
        "man1/polyseal-publish.1",
        "man1/polyseal-keys-add.1",
        "man1/polyseal-rotate-confirm.1",
        "man1/polyseal-recipients-list.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} in {pages:?}");
    }
    let publish = std::fs::read_to_string(ws.path("man1/polyseal-publish.1")).expect("page");
    // roff escapes each hyphen.
    assert!(
        publish.contains(r"\-\-dry\-run"),
        "the page documents the command's options"
    );
}

#[test]
fn a_missing_vault_says_it_does_not_exist_and_how_to_make_one() {
    let ws = Workspace::new();
    let output = ws.output(&["keys", "list"]);
    assert_failure(&output, 5, "no vault here (the directory does not exist)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("hint: create one with `polyseal init"),
        "{stderr}"
    );
}

#[test]
fn readme_using_it_commands_work_as_written_on_a_fresh_home() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README");
    let section = readme
        .split("## Using it")
        .nth(1)
        .expect("README has a Using it section");
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|block| block.split("```").next())
        .expect("a sh block");
    let ws = Workspace::new();
    crate::support::copy_dir(
        &repo_root().join("examples/provisioning"),
        &ws.path("provisioning"),
    );
    // The one change: /srv/polycom becomes a directory of the test's own.
    std::fs::create_dir(ws.path("srv")).expect("srv");
    let script = script.replace(
        "/srv/polycom/",
        &format!("{}/", ws.path("srv/polycom").display()),
    );
    let bin_dir = polyseal_bin().parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = StdCommand::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(ws.dir.path())
        .env_clear()
        .env("HOME", ws.path("home"))
        .env("PATH", path)
        .output()
        .expect("bash");
    assert!(
        output.status.success(),
        "README's commands failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(ws.path("home/.config/polyseal/identity.txt").is_file());
    assert!(ws.path("srv/polycom/0004f2a10001-key.cfg").is_file());
    assert!(ws.path("evidence/index.html").is_file());
}

#[test]
fn a_closed_pipe_keeps_the_exit_code_of_a_strict_audit() {
    let ws = Workspace::with_vault();
    ws.publish();
    std::fs::remove_file(ws.path("out/0004f2a10002-key.cfg")).expect("remove a key file");
    let output = piped(&ws, "audit --tree out --strict", "(exec 0<&-; true)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.trim_end().ends_with("status=1"),
        "findings still exit 1 when nobody reads the report:\n{stderr}"
    );
}
