//! Secrets stay in polyseal: an age plugin it runs never inherits the identity or a transit
//! token, and the one `unsafe` block that makes it so is the only one in the code.

use std::fs;
use std::path::Path;

use crate::support::{Workspace, repo_root};

/// The stand-in age plugin (`crates/vault/tests/fixtures/plugin`), and its recipient.
const PLUGIN_RECIPIENT: &str =
    "age1polysealtest1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0jq0arevz";

/// Runs `polyseal` (with its identity set by the caller, not POLYSEAL_IDENTITY) adding the
/// stand-in plugin's recipient, which runs the plugin; returns the names of the variables the
/// plugin saw, one a line.
fn plugin_environment(ws: &Workspace, mut polyseal: assert_cmd::Command) -> String {
    let dump = ws.path("plugin-environment.txt");
    let plugins = repo_root().join("crates/vault/tests/fixtures/plugin");
    let path = format!(
        "{}:{}",
        plugins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = polyseal
        .env_remove("POLYSEAL_IDENTITY")
        .env("PATH", path)
        .env("POLYSEALTEST_ENV_DUMP", &dump)
        .args(["recipients", "add", "--label", "hardware", PLUGIN_RECIPIENT])
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
    fs::read_to_string(&dump).expect("the plugin ran and wrote its environment")
}

#[test]
fn an_age_plugin_never_sees_polyseal_identity_data_in_its_environment() {
    let ws = Workspace::with_vault();
    let identity = fs::read_to_string(ws.path("identity.txt")).expect("identity");
    // Adding a plugin recipient runs the plugin to seal the data key to it.
    let mut polyseal = ws.polyseal();
    polyseal.env("POLYSEAL_IDENTITY_DATA", &identity);
    let seen = plugin_environment(&ws, polyseal);
    assert!(seen.lines().any(|name| name == "PATH"), "{seen}");
    assert!(
        !seen.lines().any(|name| name == "POLYSEAL_IDENTITY_DATA"),
        "the identity reached the plugin: {seen}"
    );
}

#[test]
fn an_age_plugin_never_sees_a_transit_token_and_the_identity_command_does() {
    let ws = Workspace::with_vault();
    let identity = fs::read_to_string(ws.path("identity.txt")).expect("identity");
    let mut polyseal = ws.polyseal();
    polyseal
        .env("POLYSEAL_IDENTITY_DATA", &identity)
        .env("VAULT_TOKEN", "s.vault-token-for-this-test")
        .env("BAO_TOKEN", "s.bao-token-for-this-test")
        .env("VAULT_ADDR", "https://bao.example:8200");
    let seen = plugin_environment(&ws, polyseal);
    assert!(seen.lines().any(|name| name == "VAULT_ADDR"), "{seen}");
    for token in ["VAULT_TOKEN", "BAO_TOKEN"] {
        assert!(
            !seen.lines().any(|name| name == token),
            "{token} reached the plugin: {seen}"
        );
    }
    // A secret store's client run by POLYSEAL_IDENTITY_CMD may need the token: it gets it.
    let output = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .env("VAULT_TOKEN", "s.vault-token-for-this-test")
        .env(
            "POLYSEAL_IDENTITY_CMD",
            "test \"$VAULT_TOKEN\" = s.vault-token-for-this-test && cat identity.txt",
        )
        .args(["keys", "add", "0004f2a10001"])
        .output()
        .expect("run");
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn the_only_unsafe_block_takes_the_identity_out_of_the_environment() {
    let mut blocks = Vec::new();
    for crate_dir in fs::read_dir(repo_root().join("crates"))
        .expect("crates")
        .flatten()
    {
        let src = crate_dir.path().join("src");
        if src.join("lib.rs").exists() {
            let lib = fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
            assert!(
                lib.contains("#![forbid(unsafe_code)]"),
                "{} does not forbid unsafe code",
                src.display()
            );
        }
        collect_unsafe(&src, &mut blocks);
    }
    assert_eq!(
        blocks,
        vec!["crates/cli/src/main.rs: unsafe { std::env::remove_var(name) };".to_owned()],
    );
}

fn collect_unsafe(dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_unsafe(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).expect("source");
            for line in text.lines().filter(|l| l.contains("unsafe {")) {
                let relative = path.strip_prefix(repo_root()).expect("in the repo");
                found.push(format!("{}: {}", relative.display(), line.trim()));
            }
        }
    }
}

#[test]
fn polyseal_identity_cmd_prints_the_identity_which_is_never_shown_or_inherited() {
    let ws = Workspace::with_vault();
    ws.publish();
    let identity = fs::read_to_string(ws.path("identity.txt")).expect("identity");
    let secret = identity
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .expect("a secret key line")
        .to_owned();
    // A CI secret store's client, as a command: here `cat` of a file only it reads.
    let command = format!("cat '{}'", ws.path("identity.txt").display());
    let shown = ws
        .polyseal()
        .env_remove("POLYSEAL_IDENTITY")
        .env("POLYSEAL_IDENTITY_CMD", &command)
        .args(["keys", "show", "0004f2a10001", "--reveal"])
        .output()
        .expect("run");
    assert!(shown.status.success(), "{shown:?}");

    // A command that fails or prints no identity is bad input naming the variable, and no
    // output of it appears in the message.
    for (failing, names) in [
        ("exit 7", "the command failed"),
        (
            &*format!("echo nonsense; echo '{secret}' >&2; exit 0"),
            "POLYSEAL_IDENTITY_CMD",
        ),
    ] {
        let output = ws
            .polyseal()
            .env_remove("POLYSEAL_IDENTITY")
            .env("POLYSEAL_IDENTITY_CMD", failing)
            .args(["keys", "show", "0004f2a10001", "--reveal"])
            .output()
            .expect("run");
        assert_eq!(output.status.code(), Some(3), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let error_line = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .expect("an error line");
        assert!(error_line.contains("POLYSEAL_IDENTITY_CMD"), "{error_line}");
        assert!(error_line.contains(names), "{error_line}");
        assert!(!error_line.contains(&secret), "{error_line}");
        assert!(!error_line.contains("nonsense"), "{error_line}");
    }

    // A plugin run while the vault is opened this way gets the command, never its output.
    let mut polyseal = ws.polyseal();
    polyseal.env("POLYSEAL_IDENTITY_CMD", &command);
    let seen = plugin_environment(&ws, polyseal);
    assert!(!seen.contains("POLYSEAL_IDENTITY_DATA"), "{seen}");
}
