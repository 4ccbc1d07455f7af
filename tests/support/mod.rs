//! Shared set-up for the end-to-end tests: a temporary workspace with a real age identity (made
//! by the real `age-keygen`), a vault, and the example provisioning tree; [`tree`], a published
//! tree made by hand with the libraries for the `scenarios`.

pub(crate) mod tree;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;

/// The example tree's phones.
pub(crate) const PHONES: [&str; 3] = ["0004f2a10001", "0004f2a10002", "64167fa10003"];

/// A temporary directory with `identity.txt`, `vault/` (after [`Workspace::init`]) and `src/`
/// (a copy of `examples/provisioning`).
pub(crate) struct Workspace {
    pub(crate) dir: tempfile::TempDir,
}

impl Workspace {
    /// A workspace with an identity and a source tree; no vault yet.
    pub(crate) fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let identity = dir.path().join("identity.txt");
        let status = StdCommand::new("age-keygen")
            .arg("-o")
            .arg(&identity)
            .output()
            .unwrap_or_else(|e| panic!("`age-keygen` (Debian package `age`) is required: {e}"));
        assert!(status.status.success(), "age-keygen failed");
        copy_dir(
            &repo_root().join("examples/provisioning"),
            &dir.path().join("src"),
        );
        Workspace { dir }
    }

    /// A workspace with a vault sealed to its identity.
    pub(crate) fn with_vault() -> Workspace {
        let ws = Workspace::new();
        ws.polyseal()
            .args(["init", "--recipient"])
            .arg(ws.path("identity.txt"))
            .assert()
            .success();
        ws
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// A new age identity at `name` in the workspace, made by the real `age-keygen`.
    pub(crate) fn keygen(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let made = StdCommand::new("age-keygen")
            .arg("-o")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("`age-keygen` (Debian package `age`) is required: {e}"));
        assert!(made.status.success(), "age-keygen failed");
        path
    }

    /// Runs `polyseal ARGS` in the workspace and returns what it did.
    pub(crate) fn output(&self, args: &[&str]) -> std::process::Output {
        self.polyseal().args(args).output().expect("run polyseal")
    }

    /// Runs `polyseal ARGS` in the workspace without any identity, and returns what it did.
    pub(crate) fn output_without_identity(&self, args: &[&str]) -> std::process::Output {
        self.polyseal()
            .env_remove("POLYSEAL_IDENTITY")
            .args(args)
            .output()
            .expect("run polyseal")
    }

    /// Runs `polyseal ARGS` in the workspace, which must succeed.
    pub(crate) fn run(&self, args: &[&str]) {
        self.polyseal().args(args).assert().success();
    }

    /// `polyseal` with this workspace's vault and identity, run in the workspace.
    pub(crate) fn polyseal(&self) -> Command {
        let mut cmd = StdCommand::new(polyseal_bin());
        self.set_up(&mut cmd);
        Command::from_std(cmd)
    }

    /// Runs `cmd` in the workspace with its vault and identity in the environment; for
    /// commands that start polyseal otherwise than [`Workspace::polyseal`] does (on a terminal,
    /// in a new session).
    pub(crate) fn set_up(&self, cmd: &mut StdCommand) {
        cmd.current_dir(self.dir.path())
            .env_remove("POLYSEAL_IDENTITY_DATA")
            .env_remove("NO_COLOR")
            // Transit tests set their own; a token from the machine must never reach a test.
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_ADDR")
            .env_remove("BAO_ADDR")
            .env_remove("VAULT_CACERT")
            .env_remove("BAO_CACERT")
            .env("POLYSEAL_VAULT", self.path("vault"))
            .env("POLYSEAL_IDENTITY", self.path("identity.txt"))
            .env("POLYSEAL_LOCK_WAIT", "0");
    }

    /// Publishes `src` into `out`.
    pub(crate) fn publish(&self) {
        self.run(&["publish", "--src", "src", "--out", "out"]);
    }

    /// Runs `publish --src src --out out` and returns what it did, success or not.
    pub(crate) fn try_publish(&self) -> std::process::Output {
        self.output(&["publish", "--src", "src", "--out", "out"])
    }

    /// Every file under `relative`, relative to the workspace, sorted.
    pub(crate) fn files_under(&self, relative: &str) -> Vec<String> {
        let mut files = Vec::new();
        list(self.dir.path(), &self.path(relative), &mut files);
        files.sort();
        files
    }
}

fn list(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            list(root, &path, out);
        } else {
            out.push(
                path.strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string(),
            );
        }
    }
}

/// The `polyseal` binary Cargo built for these tests: the one way every test finds it.
pub(crate) fn polyseal_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_polyseal"))
}

/// The repository's root directory.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Asserts a failed run: exit `code`, and standard error is one `error:` line naming `names`
/// (plus at most a `hint:` line).
pub(crate) fn assert_failure(output: &std::process::Output, code: i32, names: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        !lines.is_empty() && lines.len() <= 2,
        "one error line (and a hint): {stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(names), "error names {names:?}: {stderr}");
    if let Some(hint) = lines.get(1) {
        assert!(hint.starts_with("  hint: "), "{stderr}");
    }
}
