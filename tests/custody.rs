//! Custodians beyond one identity file: a data key wrapped by a real OpenBao transit engine,
//! k-of-n threshold vaults opened by several custodians' identities, and the failures of each,
//! through the real binary (docs/VAULT.md, "Transit recipients" and "Threshold").

use std::path::Path;
use std::process::Output;

use polyseal_testbed::OpenBao;

use crate::support::{Workspace, assert_failure};

const MAC: &str = "0004f2a10001";
/// The line `keys show --reveal` prints the key on.
const KEY_LINE: &str = "Key=";

/// `polyseal ARGS` in `ws` with no identity file at all, and `env` set.
fn run_with(ws: &Workspace, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = ws.polyseal();
    cmd.env_remove("POLYSEAL_IDENTITY");
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.args(args).output().expect("run polyseal")
}

fn succeeded(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The revealed key string of [`MAC`], with the identities and environment given.
fn revealed(ws: &Workspace, env: &[(&str, &str)], identities: &[&str]) -> Output {
    let mut args = vec!["keys", "show", MAC, "--reveal"];
    for identity in identities {
        args.extend(["--identity", identity]);
    }
    run_with(ws, env, &args)
}

fn path(ws: &Workspace, name: &str) -> String {
    ws.path(name).display().to_string()
}

#[test]
fn a_vault_sealed_to_a_transit_key_opens_with_the_token_alone_and_the_audit_device_records_it() {
    let bao = OpenBao::start();
    bao.create_key("polyseal");
    let token = bao.token_for("polyseal");
    let env = [("BAO_TOKEN", token.as_str())];
    let ws = Workspace::new();
    let recipient = bao.recipient("polyseal");
    succeeded(&run_with(
        &ws,
        &env,
        &["init", "--recipient", &recipient, "--label", "bao"],
    ));
    succeeded(&run_with(&ws, &env, &["keys", "add", MAC]));
    let shown = succeeded(&revealed(&ws, &env, &[]));
    assert!(shown.contains(KEY_LINE), "{shown}");
    let stanza = std::fs::read_to_string(ws.path("vault/data-key.age")).expect("data key");
    assert!(stanza.contains("BEGIN AGE ENCRYPTED FILE"), "{stanza}");
    let listed = succeeded(&run_with(&ws, &[], &["recipients", "list"]));
    assert!(listed.contains("OpenBao/Vault transit"), "{listed}");
    // The custodian proves possession through the service too.
    succeeded(&run_with(
        &ws,
        &env,
        &["custodians", "acknowledge", "--label", "bao"],
    ));
    // Every unwrap is a decrypt request in the service's audit device.
    let audit = bao.audit_log();
    assert!(audit.contains("transit/decrypt/polyseal"), "{audit}");
    assert!(!audit.contains(&token), "the audit device hashes tokens");

    // Without a token, or with one the service refuses: bad input, like a wrong identity.
    let without = revealed(&ws, &[], &[]);
    assert_failure(&without, 3, "identity");
    let refused = revealed(&ws, &[("BAO_TOKEN", "s.not-a-token")], &[]);
    assert_failure(&refused, 3, &recipient);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused the token"));
    bao.bao_ok(&["token", "revoke", &token]);
    assert_failure(&revealed(&ws, &env, &[]), 3, "refused the token");
    // The token goes only to the address VAULT_ADDR names, when it names one.
    let root = [
        ("BAO_TOKEN", bao.root_token()),
        ("VAULT_ADDR", "https://bao.example:8200"),
    ];
    assert_failure(&revealed(&ws, &root, &[]), 3, "sent only to");
    // A sealed service is of the vault class.
    let root = [("BAO_TOKEN", bao.root_token())];
    succeeded(&revealed(&ws, &root, &[]));
    bao.bao_ok(&["operator", "seal"]);
    let sealed = revealed(&ws, &root, &[]);
    assert_failure(&sealed, 5, &recipient);
    assert!(String::from_utf8_lossy(&sealed.stderr).contains("sealed"));
}

#[test]
fn a_transit_recipient_that_cannot_be_used_is_refused_before_anything_is_written() {
    let bao = OpenBao::start();
    let ws = Workspace::new();
    let root = [("BAO_TOKEN", bao.root_token())];
    // No such key: the service would make one silently on encrypt; polyseal refuses.
    let missing = bao.recipient("nosuch");
    let output = run_with(&ws, &root, &["init", "--recipient", &missing]);
    assert_failure(&output, 5, "no such transit key");
    assert!(!ws.path("vault").exists(), "a refused init writes nothing");
    // Nobody listening.
    let nobody = "vault-transit:http://127.0.0.1:9/v1/transit/keys/polyseal";
    let output = run_with(&ws, &root, &["init", "--recipient", nobody]);
    assert_failure(&output, 5, "could not be reached");
    // No token.
    bao.create_key("polyseal");
    let output = run_with(
        &ws,
        &[],
        &["init", "--recipient", &bao.recipient("polyseal")],
    );
    assert_failure(&output, 3, "no token");
    // Plain http beyond loopback would carry the token and the key in the clear.
    let output = run_with(
        &ws,
        &root,
        &[
            "init",
            "--recipient",
            "vault-transit:http://bao.example:8200/v1/transit/keys/k",
        ],
    );
    assert_failure(&output, 3, "plain http");
    assert!(!ws.path("vault").exists(), "a refused init writes nothing");
}

#[test]
fn rewrap_seals_the_data_key_under_the_transit_keys_latest_version() {
    let bao = OpenBao::start();
    bao.create_key("polyseal");
    let ws = Workspace::new();
    let root = [("BAO_TOKEN", bao.root_token())];
    let identity = path(&ws, "identity.txt");
    succeeded(&run_with(
        &ws,
        &root,
        &[
            "init",
            "--recipient",
            &identity,
            "--label",
            "ops",
            "--recipient",
            &bao.recipient("polyseal"),
            "--label",
            "bao",
        ],
    ));
    succeeded(&run_with(
        &ws,
        &root,
        &["keys", "add", MAC, "-i", &identity],
    ));
    let before = succeeded(&revealed(&ws, &root, &[]));
    bao.bao_ok(&["write", "-f", "transit/keys/polyseal/rotate"]);
    succeeded(&run_with(&ws, &root, &["recipients", "rewrap"]));
    bao.bao_ok(&[
        "write",
        "transit/keys/polyseal/config",
        "min_decryption_version=2",
    ]);
    // Opened by the transit key's version 2 alone (the identity file is not given).
    assert_eq!(succeeded(&revealed(&ws, &root, &[])), before);
    let log = succeeded(&run_with(&ws, &[], &["log", "show", "--format", "json"]));
    assert!(log.contains("\"action\":\"data-key-rewrap\""), "{log}");
    succeeded(&run_with(&ws, &root, &["log", "verify"]));
}

#[test]
fn a_transit_service_over_https_is_trusted_through_its_ca_file_only() {
    let bao = OpenBao::start_tls();
    bao.create_key("polyseal");
    let ws = Workspace::new();
    let recipient = bao.recipient("polyseal");
    let ca = bao.ca_cert().display().to_string();
    let untrusted = run_with(
        &ws,
        &[("BAO_TOKEN", bao.root_token())],
        &["init", "--recipient", &recipient],
    );
    assert_failure(&untrusted, 5, &recipient);
    assert!(!ws.path("vault").exists());
    let trusted = [("BAO_TOKEN", bao.root_token()), ("BAO_CACERT", ca.as_str())];
    succeeded(&run_with(
        &ws,
        &trusted,
        &["init", "--recipient", &recipient],
    ));
    succeeded(&run_with(&ws, &trusted, &["keys", "add", MAC]));
    succeeded(&revealed(&ws, &trusted, &[]));
}

#[test]
fn a_transit_key_holds_one_share_and_counts_when_its_token_works() {
    let bao = OpenBao::start();
    bao.create_key("polyseal");
    let ws = Workspace::new();
    let token = bao.token_for("polyseal");
    let env = [("BAO_TOKEN", token.as_str())];
    let identity = path(&ws, "identity.txt");
    let recipient = bao.recipient("polyseal");
    succeeded(&run_with(
        &ws,
        &env,
        &[
            "init",
            "--threshold",
            "2",
            "--recipient",
            &identity,
            "--label",
            "ops",
            "--recipient",
            &recipient,
            "--label",
            "bao",
        ],
    ));
    succeeded(&run_with(&ws, &env, &["keys", "add", MAC, "-i", &identity]));
    // The token alone is one share of two; so is the identity alone.
    let alone = revealed(&ws, &env, &[]);
    assert_failure(&alone, 3, "1 more needed, from: ops");
    assert_failure(
        &revealed(&ws, &[], &[&identity]),
        3,
        "1 more needed, from: bao",
    );
    // A token the service refuses says so, rather than only counting the share missing.
    let refused = revealed(&ws, &[("BAO_TOKEN", "s.wrong")], &[&identity]);
    assert_failure(&refused, 3, "refused the token");
    succeeded(&revealed(&ws, &env, &[&identity]));
}

#[test]
fn enough_identity_files_open_a_threshold_vault_without_calling_the_service() {
    let bao = OpenBao::start();
    bao.create_key("polyseal");
    bao.create_key("other");
    let ws = Workspace::new();
    ws.keygen("bob.txt");
    let token = bao.root_token().to_owned();
    let root = [("BAO_TOKEN", token.as_str())];
    let (identity, bob) = (path(&ws, "identity.txt"), path(&ws, "bob.txt"));
    let recipient = bao.recipient("polyseal");
    // Two transit keys of one service would open with one token: refused under a threshold.
    let other = bao.recipient("other").replace("127.0.0.1", "localhost");
    let output = run_with(
        &ws,
        &root,
        &[
            "init",
            "--threshold",
            "2",
            "--recipient",
            &recipient,
            "--recipient",
            &other,
            "--recipient",
            &identity,
        ],
    );
    assert_failure(&output, 3, "one token opens both");
    assert!(!ws.path("vault").exists());
    succeeded(&run_with(
        &ws,
        &root,
        &[
            "init",
            "--threshold",
            "2",
            "--recipient",
            &identity,
            "--label",
            "ops",
            "--recipient",
            &bob,
            "--label",
            "bob",
            "--recipient",
            &recipient,
            "--label",
            "bao",
        ],
    ));
    succeeded(&run_with(
        &ws,
        &root,
        &["keys", "add", MAC, "-i", &identity, "-i", &bob],
    ));
    let calls = bao.audit_log().matches("transit/decrypt/polyseal").count();
    // The service gone, two identity files still open the vault, token or not, at once.
    drop(bao);
    let started = std::time::Instant::now();
    succeeded(&revealed(&ws, &root, &[&identity, &bob]));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(
        calls, 0,
        "no decrypt call while identity files met the threshold"
    );
    // A token no service issues is bad input naming its variable, never its value.
    let output = revealed(&ws, &[("BAO_TOKEN", "s.abc\u{1b}[2J")], &[&identity]);
    assert_failure(&output, 3, "BAO_TOKEN");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("s.abc"));
}

/// A workspace whose vault is sealed to alice, bob and carol (identities `NAME.txt`), with
/// `threshold` if given.
fn alice_bob_and_carol(threshold: Option<&str>) -> Workspace {
    let ws = Workspace::new();
    let mut args = vec!["init".to_owned()];
    if let Some(threshold) = threshold {
        args.extend(["--threshold".to_owned(), threshold.to_owned()]);
    }
    for name in ["alice", "bob", "carol"] {
        ws.keygen(&format!("{name}.txt"));
        args.extend([
            "--recipient".to_owned(),
            path(&ws, &format!("{name}.txt")),
            "--label".to_owned(),
            name.to_owned(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    succeeded(&run_with(&ws, &[], &args));
    ws
}

/// A workspace whose vault needs 2 of alice, bob and carol, with one phone.
fn two_of_three() -> Workspace {
    let ws = alice_bob_and_carol(Some("2"));
    let (alice, bob) = (path(&ws, "alice.txt"), path(&ws, "bob.txt"));
    succeeded(&run_with(
        &ws,
        &[],
        &["keys", "add", MAC, "-i", &alice, "-i", &bob],
    ));
    ws
}

#[test]
fn two_of_three_custodians_open_the_vault_and_one_alone_is_told_who_else_can() {
    let ws = two_of_three();
    let (alice, carol) = (path(&ws, "alice.txt"), path(&ws, "carol.txt"));
    let alone = revealed(&ws, &[], &[&alice]);
    assert_failure(&alone, 3, "needs 2 custodians");
    let said = String::from_utf8_lossy(&alone.stderr);
    assert!(said.contains("1 opened (alice)"), "{said}");
    assert!(said.contains("1 more needed, from: bob, carol"), "{said}");
    let key = succeeded(&revealed(&ws, &[], &[&alice, &carol]));
    assert!(key.contains(KEY_LINE), "{key}");
    // POLYSEAL_IDENTITY lists several files, `:`-separated.
    let listed = format!("{alice}:{carol}");
    assert_eq!(
        succeeded(&revealed(&ws, &[("POLYSEAL_IDENTITY", &listed)], &[])),
        key
    );
    let listing = succeeded(&run_with(&ws, &[], &["recipients", "threshold"]));
    assert_eq!(listing.trim(), "2 of 3 recipients");
    // Each share is a standard age file its custodian opens with the age CLI.
    let file = std::fs::read_to_string(ws.path("vault/data-key.age")).expect("data key");
    assert!(
        file.starts_with("polyseal data-key shares: 2 of 3\n"),
        "{file}"
    );
    let blocks = armored_blocks(&file);
    assert_eq!(blocks.len(), 3);
    let share = age_decrypt(&ws.path("carol.txt"), &blocks[2]);
    assert!(share.starts_with("share "), "{share}");
    assert!(
        share.ends_with("\nof 2 of 3\npolyseal vault format 2\n"),
        "{share}"
    );
    assert!(age_decrypt_fails(&ws.path("carol.txt"), &blocks[0]));
}

#[test]
fn removing_a_custodian_replaces_the_data_key_so_their_old_share_opens_nothing_new() {
    let ws = two_of_three();
    let (alice, bob, carol) = (
        path(&ws, "alice.txt"),
        path(&ws, "bob.txt"),
        path(&ws, "carol.txt"),
    );
    let key = succeeded(&revealed(&ws, &[], &[&alice, &bob]));
    let check_before = data_key_check(&ws);
    let buckets_before = bucket_files(&ws.path("vault/keys"));
    let old = std::fs::read_to_string(ws.path("vault/data-key.age")).expect("data key");
    succeeded(&run_with(
        &ws,
        &[],
        &["recipients", "remove", "carol", "-i", &alice, "-i", &bob],
    ));
    // A new data key: carol's old share, with alice's old one from a backup, makes the old
    // key, which opens nothing sealed from now on. The phone keys themselves are kept.
    assert_ne!(data_key_check(&ws), check_before);
    assert_ne!(bucket_files(&ws.path("vault/keys")), buckets_before);
    assert_eq!(succeeded(&revealed(&ws, &[], &[&alice, &bob])), key);
    // The old file put back opens (alice's and carol's old shares) to a key that is not the
    // vault's: refused.
    std::fs::write(ws.path("vault/data-key.age"), old).expect("restore");
    let output = revealed(&ws, &[], &[&alice, &carol]);
    assert_failure(&output, 4, "data-key.age");
}

#[test]
fn raising_the_threshold_replaces_the_data_key_that_any_one_custodian_held_whole() {
    let ws = alice_bob_and_carol(None);
    let (alice, bob) = (path(&ws, "alice.txt"), path(&ws, "bob.txt"));
    succeeded(&run_with(&ws, &[], &["keys", "add", MAC, "-i", &alice]));
    // Any one custodian can keep the whole data key from here (a copy of data-key.age).
    let old = std::fs::read_to_string(ws.path("vault/data-key.age")).expect("data key");
    let whole = age_decrypt(&ws.path("carol.txt"), &old);
    assert_eq!(check_of(&whole), data_key_check(&ws));
    let key = succeeded(&revealed(&ws, &[], &[&alice]));
    succeeded(&run_with(
        &ws,
        &[],
        &["recipients", "threshold", "2", "-i", &alice],
    ));
    // Carol's copy is no longer the vault's data key; the phone keys are unchanged.
    assert_ne!(check_of(&whole), data_key_check(&ws));
    assert_eq!(succeeded(&revealed(&ws, &[], &[&alice, &bob])), key);
    // Lowering it again keeps the key: no one gains a power to take away.
    let check = data_key_check(&ws);
    let buckets = bucket_files(&ws.path("vault/keys"));
    succeeded(&run_with(
        &ws,
        &[],
        &["recipients", "threshold", "1", "-i", &alice, "-i", &bob],
    ));
    assert_eq!(data_key_check(&ws), check);
    assert_eq!(bucket_files(&ws.path("vault/keys")), buckets);
}

#[test]
fn a_threshold_change_needs_the_custodians_and_is_checked_before_any_unlock() {
    let ws = two_of_three();
    let (alice, bob, carol) = (
        path(&ws, "alice.txt"),
        path(&ws, "bob.txt"),
        path(&ws, "carol.txt"),
    );
    assert_failure(
        &run_with(&ws, &[], &["recipients", "threshold", "3", "-i", &alice]),
        3,
        "needs 2 custodians",
    );
    // Out of range: refused as such, before an identity is even looked for.
    for (threshold, says) in [("4", "threshold 4 with 3 recipients"), ("0", "at least 1")] {
        assert_failure(
            &run_with(&ws, &[], &["recipients", "threshold", threshold]),
            3,
            says,
        );
    }
    let unchanged = succeeded(&run_with(&ws, &[], &["recipients", "threshold", "2"]));
    assert!(unchanged.is_empty(), "{unchanged}");
    succeeded(&run_with(
        &ws,
        &[],
        &["recipients", "threshold", "3", "-i", &alice, "-i", &bob],
    ));
    assert_failure(
        &revealed(&ws, &[], &[&alice, &bob]),
        3,
        "1 more needed, from: carol",
    );
    succeeded(&revealed(&ws, &[], &[&alice, &bob, &carol]));
    // Removing one of three would leave fewer recipients than the threshold.
    assert_failure(
        &run_with(&ws, &[], &["recipients", "remove", "bob"]),
        3,
        "lower it first",
    );
    let log = succeeded(&run_with(&ws, &[], &["log", "show"]));
    assert!(log.contains("threshold"), "{log}");
    succeeded(&run_with(
        &ws,
        &[],
        &["log", "verify", "-i", &alice, "-i", &bob, "-i", &carol],
    ));
}

/// `data_key_check` of the workspace's vault.
fn data_key_check(ws: &Workspace) -> String {
    let config = std::fs::read_to_string(ws.path("vault/vault.toml")).expect("vault.toml");
    config
        .lines()
        .find_map(|l| l.strip_prefix("data_key_check = "))
        .expect("data_key_check")
        .trim_matches('"')
        .to_owned()
}

/// The check value docs/VAULT.md defines, of the data key in a whole-key `data-key.age`'s
/// plaintext, computed apart from polyseal (Python's hashlib).
fn check_of(plaintext: &str) -> String {
    let hex = plaintext.lines().next().expect("the key line");
    let script = "import hashlib,sys; k=bytes.fromhex(sys.argv[1]); \
                  print('sha256:'+hashlib.sha256(b'polyseal vault data-key check v1\\0'+k).hexdigest()[:16])";
    let output = std::process::Command::new("python3")
        .args(["-c", script, hex])
        .output()
        .expect("python3");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .expect("text")
        .trim()
        .to_owned()
}

#[test]
fn init_refuses_a_threshold_its_recipients_cannot_meet_and_writes_nothing() {
    let ws = Workspace::new();
    ws.keygen("alice.txt");
    let alice = path(&ws, "alice.txt");
    let identity = path(&ws, "identity.txt");
    let output = run_with(
        &ws,
        &[],
        &[
            "init",
            "--threshold",
            "3",
            "--recipient",
            &alice,
            "--recipient",
            &identity,
        ],
    );
    assert_failure(&output, 3, "threshold 3 with 2 recipients");
    let output = run_with(
        &ws,
        &[],
        &[
            "init",
            "--recipient",
            &alice,
            "--label",
            "a",
            "--label",
            "b",
        ],
    );
    assert_failure(&output, 3, "--label");
    assert!(!ws.path("vault").exists(), "a refused init writes nothing");
    // Without labels, each recipient gets a distinct one.
    succeeded(&run_with(
        &ws,
        &[],
        &["init", "--recipient", &alice, "--recipient", &identity],
    ));
    let listed = succeeded(&run_with(&ws, &[], &["recipients", "list"]));
    assert!(listed.contains("admin-2"), "{listed}");
}

/// The ASCII-armored age files of a shares file, in order.
fn armored_blocks(file: &str) -> Vec<String> {
    const END: &str = "-----END AGE ENCRYPTED FILE-----\n";
    let body = file.split_once('\n').expect("header line").1;
    body.split_inclusive(END).map(str::to_owned).collect()
}

fn bucket_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("keys dir")
        .flatten()
        .map(|e| {
            let bytes = std::fs::read(e.path()).expect("bucket");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn age(identity: &Path, armored: &str) -> Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the age CLI (Debian package `age`) is required");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(armored.as_bytes())
        .expect("write");
    child.wait_with_output().expect("age")
}

fn age_decrypt(identity: &Path, armored: &str) -> String {
    let output = age(identity, armored);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("text")
}

fn age_decrypt_fails(identity: &Path, armored: &str) -> bool {
    !age(identity, armored).status.success()
}
