//! Helpers shared by the integration tests: real tools, fresh vaults, test MACs.
//!
//! A test that needs a tool which is not installed fails with a message naming the Debian
//! package; none is skipped.
// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use polyseal_crypto::Mac;
use polyseal_vault::{
    DataKey, Identities, InitialState, NoPrompt, OpenedKey, Recipient, VaultSettings, VaultWriter,
};
use tempfile::TempDir;

/// Runs a real tool and returns its output, failing the test loudly if the tool is missing
/// or exits non-zero.
pub(crate) fn run(command: &mut Command) -> Output {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{program}` ({e}): the tests need the real tool; install it \
             (Debian packages: age for age/age-keygen, openssh-client for ssh-keygen)"
        )
    });
    assert!(
        output.status.success(),
        "`{program}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// An age identity made by the real `age-keygen`: the identity file and its recipient.
pub(crate) fn age_keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    run(Command::new("age-keygen").arg("-o").arg(&path));
    let public = run(Command::new("age-keygen").arg("-y").arg(&path));
    let recipient = String::from_utf8(public.stdout)
        .expect("age-keygen prints text")
        .trim()
        .to_owned();
    (path, recipient)
}

/// Loads an identity file with no prompt.
pub(crate) fn identities(path: &Path) -> Identities {
    Identities::from_file(path, Arc::new(NoPrompt)).expect("identity file loads")
}

/// A new vault with one recipient, `ops`, made by `age-keygen`.
pub(crate) struct TestVault {
    /// Keeps the directory alive.
    pub(crate) tmp: TempDir,
    /// The vault directory.
    pub(crate) dir: PathBuf,
    /// The `ops` identity file.
    pub(crate) identity: PathBuf,
    /// The `ops` recipient.
    pub(crate) recipient: String,
}

impl TestVault {
    pub(crate) fn new() -> TestVault {
        let tmp = TempDir::new().expect("temp dir");
        let (identity, recipient) = age_keygen(tmp.path(), "ops.key");
        let dir = tmp.path().join("vault");
        let ops = Recipient::parse("ops", &recipient).expect("age-keygen recipient parses");
        VaultWriter::create(&dir, VaultSettings::new(vec![ops])).expect("vault is created");
        TestVault {
            tmp,
            dir,
            identity,
            recipient,
        }
    }

    pub(crate) fn writer(&self) -> VaultWriter {
        VaultWriter::open(&self.dir).expect("vault opens for writing")
    }

    /// The vault open for writing and unlocked with the `ops` identity.
    pub(crate) fn unlocked_writer(&self) -> (VaultWriter, DataKey) {
        let writer = self.writer();
        let data_key = writer.vault().unlock(&self.identities()).expect("unlock");
        (writer, data_key)
    }

    /// Adds a generation for each of `macs`, in one transaction.
    pub(crate) fn add(&self, macs: &[Mac], state: InitialState) -> Vec<OpenedKey> {
        let (mut writer, data_key) = self.unlocked_writer();
        writer.add_keys(&data_key, macs, state).expect("add keys")
    }

    pub(crate) fn identities(&self) -> Identities {
        identities(&self.identity)
    }

    /// The path of a file inside the vault.
    pub(crate) fn file(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

/// The `n`-th test MAC, in the Polycom OUI 00-04-F2.
pub(crate) fn mac(n: u32) -> Mac {
    let [_, b3, b4, b5] = n.to_be_bytes();
    Mac::from_octets([0x00, 0x04, 0xf2, b3, b4, b5]).expect("a unicast test MAC")
}

/// MACs 1..=n.
pub(crate) fn macs(n: u32) -> Vec<Mac> {
    (1..=n).map(mac).collect()
}

/// The bucket file (relative to the vault) that holds `mac`'s record.
pub(crate) fn bucket_file(mac: &Mac) -> String {
    format!("keys/{:02x}.jsonl", mac.octets()[5])
}

/// The lines of the vault's event log.
pub(crate) fn log_lines(vault: &TestVault) -> Vec<String> {
    std::fs::read_to_string(vault.file("events.log"))
        .expect("log")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Replaces the vault's event log with `lines`.
pub(crate) fn write_log(vault: &TestVault, lines: &[String]) {
    std::fs::write(vault.file("events.log"), lines.join("\n") + "\n").expect("write log");
}

/// SHA-256 of a log line, as `prev` and the head carry it.
pub(crate) fn sha256_hex(line: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(line.as_bytes()))
}

/// `lines` with every `prev` recomputed, as an attacker who edited the log would: a chain
/// that verifies, without any key.
pub(crate) fn rechain(mut lines: Vec<String>) -> Vec<String> {
    let mut prev = "0".repeat(64);
    for (seq, line) in lines.iter_mut().enumerate() {
        let mut event: serde_json::Value = serde_json::from_str(line).expect("JSON");
        event["seq"] = serde_json::Value::from(seq + 1);
        event["prev"] = serde_json::Value::String(prev.clone());
        *line = serde_json::to_string(&event).expect("JSON");
        prev = sha256_hex(line);
    }
    lines
}

/// Copies the directory tree `from` to `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

impl TestVault {
    /// Moves generation `generation` of `mac` to `to`, in one transaction; returns the new
    /// data key when the change replaced it.
    pub(crate) fn change_state(
        &self,
        mac: Mac,
        generation: u32,
        to: polyseal_vault::KeyState,
    ) -> Option<DataKey> {
        let (mut writer, data_key) = self.unlocked_writer();
        writer
            .set_states(
                &data_key,
                &[polyseal_vault::StateChange {
                    mac,
                    generation,
                    to,
                }],
            )
            .expect("state change")
    }
}

/// Appends a recipient `label` with `public_key` to the vault's `vault.toml` by hand, as
/// someone who can write the file but holds no identity would.
pub(crate) fn append_recipient_by_hand(vault_toml: &Path, label: &str, public_key: &str) {
    let mut text = std::fs::read_to_string(vault_toml).expect("vault.toml");
    text.push_str(&format!(
        "\n[[recipient]]\nlabel = \"{label}\"\npublic_key = \"{public_key}\"\n"
    ));
    std::fs::write(vault_toml, text).expect("write vault.toml");
}
