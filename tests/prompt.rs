//! The passphrase prompt of the CLI, on a real terminal: a pseudo-terminal that the command has
//! as its controlling terminal, as a person at a keyboard has. The identity is an SSH ed25519
//! key made by the real `ssh-keygen` with a passphrase, so this also runs an SSH recipient
//! through the CLI from `init` on.
//!
//! The prompt reads `/dev/tty`, not standard input: these tests type into the terminal and
//! check that nothing of the passphrase shows on it.

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};

use crate::support::{self, Workspace, polyseal_bin};

const PASSPHRASE: &str = "correct horse battery staple";
const MAC: &str = "0004f2a10001";
/// Long enough for a debug build on a loaded CI machine; a hang fails the test.
const TIMEOUT_MS: u64 = 60_000;

/// A workspace whose vault is sealed to a passphrase-protected SSH key, `ssh.key`, with a key
/// for [`MAC`]; returns the key's path.
fn vault_sealed_to_ssh_key(ws: &Workspace) -> PathBuf {
    let key = ws.path("ssh.key");
    let made = StdCommand::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-C", "", "-N", PASSPHRASE, "-f"])
        .arg(&key)
        .output()
        .unwrap_or_else(|e| panic!("`ssh-keygen` (Debian package `openssh-client`): {e}"));
    assert!(made.status.success(), "ssh-keygen failed: {made:?}");
    ws.polyseal()
        .args(["init", "--recipient"])
        .arg(key.with_extension("key.pub"))
        .assert()
        .success();
    key
}

/// `polyseal --identity KEY ARGS` as `program` runs it (polyseal itself, or a launcher given
/// polyseal as its last argument), with the workspace's vault and no other identity.
fn with_key(ws: &Workspace, program: &mut StdCommand, key: &Path, args: &[&str]) {
    ws.set_up(program);
    program
        .env_remove("POLYSEAL_IDENTITY")
        .arg("--identity")
        .arg(key)
        .args(args);
}

/// `polyseal --identity KEY ARGS` on a new pseudo-terminal.
fn on_terminal(ws: &Workspace, key: &Path, args: &[&str]) -> PtySession {
    let mut command = StdCommand::new(polyseal_bin());
    with_key(ws, &mut command, key, args);
    spawn_command(command, Some(TIMEOUT_MS)).expect("start polyseal on a pseudo-terminal")
}

/// Waits for the prompt naming the key file, types `passphrase`, and returns everything the
/// terminal showed from then to the end, and how the command ended.
fn answer_prompt(mut session: PtySession, passphrase: &str) -> (String, WaitStatus) {
    session
        .exp_string("Passphrase for")
        .expect("a passphrase prompt");
    session
        .exp_string("ssh.key")
        .expect("the prompt names the key file");
    session.send_line(passphrase).expect("type the passphrase");
    let shown = session.exp_eof().expect("the command ends");
    let status = session.process().wait().expect("exit status");
    (shown, status)
}

#[test]
fn keys_add_and_show_unlock_with_the_passphrase_typed_at_the_prompt() {
    let ws = Workspace::new();
    let key = vault_sealed_to_ssh_key(&ws);

    let added = on_terminal(&ws, &key, &["keys", "add", MAC]);
    let (shown, status) = answer_prompt(added, PASSPHRASE);
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}: {shown}"
    );
    assert!(!shown.contains(PASSPHRASE), "the passphrase is not echoed");

    let revealed = on_terminal(&ws, &key, &["keys", "show", MAC, "--reveal"]);
    let (shown, status) = answer_prompt(revealed, PASSPHRASE);
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}: {shown}"
    );
    assert!(!shown.contains(PASSPHRASE), "the passphrase is not echoed");
    // The key string as `keys show` prints it: `Crypt=1;KeyDesc=<mac>-g1;Key=<32 hex digits>;`.
    let key_string = shown
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("Crypt=1;"))
        .unwrap_or_else(|| panic!("a key string in {shown:?}"));
    assert!(
        key_string.contains(&format!("KeyDesc={MAC}-g1;")),
        "{key_string}"
    );
    let hex = key_string
        .split(';')
        .find_map(|field| field.strip_prefix("Key="))
        .unwrap_or_default();
    assert_eq!(hex.len(), 32, "{key_string}");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{key_string}");
}

#[test]
fn a_wrong_passphrase_is_one_line_naming_the_identity_and_changes_nothing() {
    let ws = Workspace::new();
    let key = vault_sealed_to_ssh_key(&ws);
    let before = ws.files_under("vault");

    let added = on_terminal(&ws, &key, &["keys", "add", MAC]);
    let (shown, status) = answer_prompt(added, "not the passphrase");
    let WaitStatus::Exited(_, code) = status else {
        panic!("{status:?}: {shown}");
    };
    assert_eq!(
        code, 3,
        "a wrong identity is bad input, as in the other tests: {shown}"
    );
    let errors: Vec<&str> = shown.lines().filter(|l| l.contains("error:")).collect();
    assert_eq!(errors.len(), 1, "{shown}");
    assert!(errors[0].contains("ssh.key"), "names the identity: {shown}");
    assert!(shown.contains("hint: type the passphrase again"), "{shown}");
    assert!(!shown.contains("not the passphrase"), "{shown}");
    assert_eq!(ws.files_under("vault"), before, "the vault is untouched");
    let listed = ws.output(&["keys", "list", "--format", "csv"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(MAC),
        "no key was added"
    );
}

/// Without a terminal (cron, CI) there is no one to ask: the command fails at once instead of
/// waiting, and says which identity needed a passphrase.
#[test]
fn without_a_terminal_a_protected_identity_fails_at_once() {
    let ws = Workspace::new();
    let key = vault_sealed_to_ssh_key(&ws);
    // `setsid` starts the command in a new session, which has no controlling terminal, so the
    // test means the same when run from a developer's terminal.
    let mut setsid = StdCommand::new("setsid");
    setsid.arg("-w").arg(polyseal_bin());
    with_key(&ws, &mut setsid, &key, &["keys", "add", MAC]);
    let output = setsid
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("`setsid` (Debian package `util-linux`): {e}"));
    support::assert_failure(&output, 3, "ssh.key");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("an identity without a passphrase"),
        "{stderr}"
    );
}
