//! Every identity kind unlocks a vault sealed to the matching recipient: age identity files
//! (plain and passphrase-protected), SSH ed25519 and RSA keys made by `ssh-keygen` (plain and
//! passphrase-protected); and the order in which a front end finds the identity.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::{age_keygen, run};
use polyseal_vault::{
    Error, ErrorKind, Identities, IdentitySource, NoPrompt, Prompt, Recipient, VaultSettings,
    VaultWriter,
};
use zeroize::Zeroizing;

/// A prompt that answers every passphrase request with one passphrase.
struct Passphrase(&'static str);

impl Prompt for Passphrase {
    fn message(&self, _text: &str) {}

    fn passphrase(&self, _description: &str) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(self.0.to_owned()))
    }
}

/// Creates a vault sealed to `public_key` and unlocks it with `identities`.
fn unlock_vault_sealed_to(
    dir: &Path,
    public_key: &str,
    identities: &Identities,
) -> Result<(), Error> {
    let recipient = Recipient::parse("under-test", public_key)?;
    let writer = VaultWriter::create(&dir.join("vault"), VaultSettings::new(vec![recipient]))?;
    writer.vault().unlock(identities).map(drop)
}

/// `ssh-keygen -t <kind>`, optionally with a passphrase; returns the private key path and
/// the public key line (with its comment).
fn ssh_keygen(dir: &Path, kind: &str, passphrase: &str) -> (PathBuf, String) {
    let path = dir.join(format!("id_{kind}"));
    let mut command = Command::new("ssh-keygen");
    command
        .args([
            "-q",
            "-t",
            kind,
            "-N",
            passphrase,
            "-C",
            "ops@polyseal-test",
            "-f",
        ])
        .arg(&path);
    if kind == "rsa" {
        command.args(["-b", "3072"]);
    }
    run(&mut command);
    let public = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    (path, public.trim().to_owned())
}

#[test]
fn age_keygen_identity_file_unlocks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (identity, recipient) = age_keygen(tmp.path(), "id.txt");
    let identities = Identities::from_file(&identity, Arc::new(NoPrompt)).expect("loads");
    assert_eq!(identities.origin(), identity.display().to_string());
    unlock_vault_sealed_to(tmp.path(), &recipient, &identities).expect("unlocks");
}

#[test]
fn identity_text_from_a_variable_unlocks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (identity, recipient) = age_keygen(tmp.path(), "id.txt");
    let text = std::fs::read_to_string(&identity).expect("read");
    let identities =
        Identities::from_text(&text, IdentitySource::DATA_VARIABLE, Arc::new(NoPrompt))
            .expect("loads");
    unlock_vault_sealed_to(tmp.path(), &recipient, &identities).expect("unlocks");
}

/// An age identity file encrypted with a passphrase, as `age-keygen | age -p -a` makes it
/// (`age -p` reads passphrases only from a terminal, so the age library writes it here).
fn passphrase_protected_identity(dir: &Path, armored: bool) -> (PathBuf, String) {
    let identity = age::x25519::Identity::generate();
    let text = format!(
        "# created by polyseal tests\n{}\n",
        age::secrecy::ExposeSecret::expose_secret(&identity.to_string())
    );
    let encryptor = age::Encryptor::with_user_passphrase("correct horse".to_owned().into());
    let mut sealed = Vec::new();
    if armored {
        let armor =
            age::armor::ArmoredWriter::wrap_output(&mut sealed, age::armor::Format::AsciiArmor)
                .expect("armor");
        let mut writer = encryptor.wrap_output(armor).expect("wrap");
        std::io::Write::write_all(&mut writer, text.as_bytes()).expect("write");
        writer
            .finish()
            .and_then(|armor| armor.finish())
            .expect("finish");
    } else {
        let mut writer = encryptor.wrap_output(&mut sealed).expect("wrap");
        std::io::Write::write_all(&mut writer, text.as_bytes()).expect("write");
        writer.finish().expect("finish");
    }
    let path = dir.join(if armored { "id.age.asc" } else { "id.age" });
    std::fs::write(&path, sealed).expect("write");
    (path, identity.to_public().to_string())
}

#[test]
fn passphrase_protected_age_identity_unlocks_with_the_prompted_passphrase() {
    for armored in [false, true] {
        let tmp = tempfile::tempdir().expect("tmp");
        let (path, recipient) = passphrase_protected_identity(tmp.path(), armored);
        let identities = Identities::from_file(&path, Arc::new(Passphrase("correct horse")))
            .expect("decrypts with the passphrase");
        unlock_vault_sealed_to(tmp.path(), &recipient, &identities).expect("unlocks");

        let wrong = Identities::from_file(&path, Arc::new(Passphrase("wrong")));
        assert!(
            matches!(wrong, Err(Error::IdentityLocked { .. })),
            "armored={armored}"
        );
        let unattended = Identities::from_file(&path, Arc::new(NoPrompt));
        let error = unattended.expect_err("no passphrase available");
        assert!(matches!(error, Error::IdentityLocked { .. }), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::Input);
    }
}

#[test]
fn ssh_ed25519_key_made_by_ssh_keygen_unlocks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (private, public) = ssh_keygen(tmp.path(), "ed25519", "");
    assert!(public.starts_with("ssh-ed25519 ") && public.ends_with("ops@polyseal-test"));
    let identities = Identities::from_file(&private, Arc::new(NoPrompt)).expect("loads");
    unlock_vault_sealed_to(tmp.path(), &public, &identities).expect("unlocks");
}

#[test]
fn ssh_rsa_key_made_by_ssh_keygen_unlocks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (private, public) = ssh_keygen(tmp.path(), "rsa", "");
    let identities = Identities::from_file(&private, Arc::new(NoPrompt)).expect("loads");
    unlock_vault_sealed_to(tmp.path(), &public, &identities).expect("unlocks");
}

#[test]
fn passphrase_protected_ssh_key_asks_the_prompt() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (private, public) = ssh_keygen(tmp.path(), "ed25519", "s3cret phrase");
    let identities =
        Identities::from_file(&private, Arc::new(Passphrase("s3cret phrase"))).expect("decrypts");
    unlock_vault_sealed_to(tmp.path(), &public, &identities).expect("unlocks");
    assert!(matches!(
        Identities::from_file(&private, Arc::new(NoPrompt)),
        Err(Error::IdentityLocked { .. })
    ));
    assert!(matches!(
        Identities::from_file(&private, Arc::new(Passphrase("wrong"))),
        Err(Error::IdentityLocked { .. })
    ));
}

#[test]
fn identity_text_that_is_no_identity_is_refused_without_echoing_it() {
    let secret_looking = "not-an-identity-but-maybe-a-secret";
    let error = Identities::from_text(secret_looking, "POLYSEAL_IDENTITY_DATA", Arc::new(NoPrompt))
        .expect_err("refused");
    assert!(matches!(error, Error::InvalidIdentity { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("POLYSEAL_IDENTITY_DATA") && !text.contains(secret_looking),
        "{text}"
    );
    assert!(matches!(
        Identities::from_text("# only a comment\n", "x", Arc::new(NoPrompt)),
        Err(Error::InvalidIdentity { .. })
    ));
    assert!(matches!(
        Identities::from_file(Path::new("/nonexistent/identity"), Arc::new(NoPrompt)),
        Err(Error::Io { .. })
    ));
}

#[test]
fn identity_source_prefers_flag_then_path_variable_then_data_variable() {
    let chosen = |flag: Option<&str>, path: Option<&str>, data: Option<&str>| {
        let flags: Vec<PathBuf> = flag.map(PathBuf::from).into_iter().collect();
        IdentitySource::choose(&flags, path.map(Into::into), None, data.map(str::to_owned))
    };
    // The command variable comes after the path variable and before the data variable.
    assert!(matches!(
        IdentitySource::choose(&[], None, Some("cat id".into()), Some("AGE-SECRET-KEY-1".into())),
        Ok(IdentitySource::Command(c)) if c == "cat id"
    ));
    assert!(matches!(
        IdentitySource::choose(&[], Some("/env".into()), Some("cat id".into()), None),
        Ok(IdentitySource::Files(_))
    ));
    assert!(matches!(
        chosen(Some("/flag"), Some("/env"), Some("AGE-SECRET-KEY-1")),
        Ok(IdentitySource::Files(p)) if p == [Path::new("/flag")]
    ));
    assert!(matches!(
        chosen(None, Some("/env"), Some("AGE-SECRET-KEY-1")),
        Ok(IdentitySource::Files(p)) if p == [Path::new("/env")]
    ));
    assert!(matches!(
        chosen(Some(""), Some(""), Some("AGE-SECRET-KEY-1")),
        Ok(IdentitySource::Data {
            variable: "POLYSEAL_IDENTITY_DATA",
            ..
        })
    ));
    // POLYSEAL_IDENTITY lists several custodians' files, `:`-separated.
    assert!(matches!(
        chosen(None, Some("/a.txt::/b.txt"), None),
        Ok(IdentitySource::Files(p)) if p == [Path::new("/a.txt"), Path::new("/b.txt")]
    ));
    let none = chosen(None, None, Some("  ")).expect_err("nothing given");
    assert!(matches!(none, Error::NoIdentity));
    assert!(none.to_string().contains("POLYSEAL_IDENTITY"), "{none}");
}

/// Set in the child processes that the tests below start (this test binary, re-executed),
/// where the environment can be chosen: a test cannot change its own process's environment.
const CHILD: &str = "POLYSEAL_TEST_CHILD";

/// Runs test `name` of this binary in a child process with `env` added; fails unless it passes.
fn run_in_child(name: &str, env: &[(&str, OsString)]) {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", name, "--nocapture"])
        .env(CHILD, "1")
        .env_remove(IdentitySource::PATH_VARIABLE)
        .env_remove(IdentitySource::DATA_VARIABLE);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn in_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

#[test]
fn child_reads_the_identity_source_from_the_environment() {
    if !in_child() {
        return;
    }
    let source = IdentitySource::from_flag_or_env(&[]).expect("from environment");
    assert!(
        matches!(source, IdentitySource::Data { text, .. } if text.starts_with("AGE-SECRET-KEY-1"))
    );
}

#[test]
fn identity_source_reads_polyseal_identity_data_from_the_environment() {
    run_in_child(
        "child_reads_the_identity_source_from_the_environment",
        &[(
            IdentitySource::DATA_VARIABLE,
            "AGE-SECRET-KEY-1EXAMPLE".into(),
        )],
    );
}

const PLUGIN_RECIPIENT: &str =
    "age1polysealtest1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnzs23v9ccrydpk8qarc0jq0arevz";
const PLUGIN_IDENTITY: &str =
    "AGE-PLUGIN-POLYSEALTEST-1QQQSYQCYQ5RQWZQFPG9SCRGWPUGPZYSNZS23V9CCRYDPK8QARC0SKDWFAJ";

/// A prompt that keeps the messages plugins show.
#[derive(Default)]
struct RecordingPrompt(Mutex<Vec<String>>);

impl Prompt for RecordingPrompt {
    fn message(&self, text: &str) {
        self.0.lock().expect("lock").push(text.to_owned());
    }

    fn passphrase(&self, _description: &str) -> Option<Zeroizing<String>> {
        None
    }
}

#[test]
fn child_unlocks_through_an_age_plugin() {
    if !in_child() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let (_, ops) = age_keygen(tmp.path(), "ops.key");
    let recipients = vec![
        Recipient::parse("ops", &ops).expect("age recipient"),
        Recipient::parse("hardware", PLUGIN_RECIPIENT).expect("plugin recipient"),
    ];
    let dir = tmp.path().join("vault");
    let mut writer =
        VaultWriter::create(&dir, VaultSettings::new(recipients)).expect("sealed via plugin");
    let prompt = Arc::new(RecordingPrompt::default());
    let identities =
        Identities::from_text(PLUGIN_IDENTITY, "hardware.txt", prompt.clone()).expect("loads");
    let data_key = writer
        .vault()
        .unlock(&identities)
        .expect("unlocked via plugin");
    let mac = "0004f2abcdef".parse().expect("MAC");
    writer
        .add_keys(&data_key, &[mac], polyseal_vault::InitialState::Active)
        .expect("the data key the plugin opened seals keys");
    let messages = prompt.0.lock().expect("lock").clone();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("touch the pretend hardware key")),
        "{messages:?}"
    );

    // The stock age CLI opens the same data key through the same plugin.
    let identity_file = tmp.path().join("hardware.txt");
    std::fs::write(&identity_file, format!("{PLUGIN_IDENTITY}\n")).expect("identity file");
    let output = run(Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&identity_file)
        .arg(dir.join("data-key.age")));
    assert_eq!(
        output.stdout.len(),
        65 + "polyseal vault format 2\n".len(),
        "64 hex digits and a newline, then the format line"
    );
}

/// A vault sealed to an age plugin recipient unlocks with the plugin's identity, through the
/// age plugin protocol, showing the plugin's messages through the `Prompt`. The plugin is a
/// stand-in (`tests/fixtures/plugin/age-plugin-polysealtest`, Python), as no real plugin or
/// hardware key exists on the test machine.
#[test]
fn plugin_identity_unlocks_a_vault_sealed_to_its_plugin_recipient() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plugin");
    let mut path = OsString::from(&fixtures);
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    run_in_child("child_unlocks_through_an_age_plugin", &[("PATH", path)]);
}

/// `age1<name>1…` plugin recipients and `AGE-PLUGIN-<NAME>-1…` identities go through the age
/// plugin protocol; with the plugin binary missing, both name it.
#[test]
fn plugin_recipient_and_identity_need_their_plugin_binary() {
    let (recipient, identity) = (PLUGIN_RECIPIENT, PLUGIN_IDENTITY);
    let parsed = Recipient::parse("hardware", recipient).expect("a plugin recipient parses");
    assert_eq!(parsed.public_key(), recipient);
    let tmp = tempfile::tempdir().expect("tmp");
    let error = VaultWriter::create(&tmp.path().join("v"), VaultSettings::new(vec![parsed]))
        .expect_err("no plugin binary");
    assert!(matches!(error, Error::Plugin { .. }), "{error:?}");
    assert!(
        error.to_string().contains("age-plugin-polysealtest"),
        "{error}"
    );
    assert!(
        !tmp.path().join("v").exists(),
        "a refused create writes nothing"
    );

    let error =
        Identities::from_text(identity, "x", Arc::new(NoPrompt)).expect_err("no plugin binary");
    assert!(matches!(error, Error::Plugin { .. }), "{error:?}");
}

#[test]
fn identities_and_their_source_never_show_the_identity_in_debug() {
    let secret = "AGE-SECRET-KEY-1K5GLS3ZY7H4C09CZZUTUM4S5QS8DPM3KJU3DPGGWX9RJ8085M56SF6V0E2";
    let source = IdentitySource::choose(&[], None, None, Some(secret.to_owned())).expect("source");
    let identities = Identities::load(&source, Arc::new(NoPrompt), None).expect("loads");
    let shown = format!("{source:?} {identities:?}");
    assert!(!shown.contains("AGE-SECRET-KEY"), "{shown}");
    assert!(shown.contains(IdentitySource::DATA_VARIABLE), "{shown}");
}
