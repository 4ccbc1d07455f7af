//! What polyseal writes opens with other people's tools, following `docs/VAULT.md`: the stock
//! `age` CLI opens `data-key.age` and exported keys, and an independent AES-256-GCM
//! implementation (ring) opens a record's sealed key.

mod common;

use std::process::Command;

use common::{TestVault, bucket_file, mac, macs, run};
use polyseal_vault::{InitialState, Vault};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// `age -d -i IDENTITY FILE`, the plaintext as text.
fn age_decrypt(identity: &std::path::Path, file: &std::path::Path) -> String {
    let output = run(Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file));
    String::from_utf8(output.stdout).expect("text")
}

fn vault_with_keys() -> TestVault {
    let vault = TestVault::new();
    vault.add(&macs(3), InitialState::Active);
    vault.add(&[mac(2)], InitialState::PreActive);
    vault
}

#[test]
fn stock_age_opens_the_data_key_with_an_age_keygen_identity() {
    let vault = vault_with_keys();
    let plaintext = age_decrypt(&vault.identity, &vault.file("data-key.age"));
    // docs/VAULT.md: the key's 64 hex digits on the first line, then the format line.
    let hex_key = plaintext
        .strip_suffix("\npolyseal vault format 2\n")
        .expect("the key, then the format line");
    assert_eq!(hex_key.len(), 64);
    assert!(
        hex_key
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );

    // docs/VAULT.md: data_key_check = "sha256:" + first 8 bytes (16 hex) of
    // SHA-256("polyseal vault data-key check v1\0" || key).
    let key = hex::decode(hex_key).expect("hex");
    let digest = Sha256::new()
        .chain_update(b"polyseal vault data-key check v1\0")
        .chain_update(&key)
        .finalize();
    let config = std::fs::read_to_string(vault.file("vault.toml")).expect("vault.toml");
    let expected = format!("data_key_check = \"sha256:{}\"", hex::encode(&digest[..8]));
    assert!(config.contains(&expected), "{config}");
}

#[test]
fn independent_aes_gcm_recovers_a_key_from_its_record() {
    let vault = vault_with_keys();
    let data_key = hex::decode(
        age_decrypt(&vault.identity, &vault.file("data-key.age"))
            .lines()
            .next()
            .expect("the first line"),
    )
    .expect("hex");
    let config: toml::Table = std::fs::read_to_string(vault.file("vault.toml"))
        .expect("read")
        .parse()
        .expect("TOML");
    let vault_id = hex::decode(config["vault_id"].as_str().expect("vault_id")).expect("hex");

    let target = mac(2);
    // The bucket file: a header line, then one JSON object per phone.
    let bucket = std::fs::read_to_string(vault.file(&bucket_file(&target))).expect("read");
    let phone: serde_json::Value = bucket
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON"))
        .find(|p| p["mac"].as_str() == Some(&target.to_string()))
        .expect("record");
    let opened = Vault::open(&vault.dir).expect("open");
    let polyseal_key = opened.unlock(&vault.identities()).expect("unlock");
    for generation in phone["generations"].as_array().expect("generations") {
        let number = generation["number"].as_u64().expect("number") as u32;
        let key_desc = generation["key_desc"].as_str().expect("key_desc");
        // AAD per docs/VAULT.md.
        let mut aad = b"polyseal vault key v1\0".to_vec();
        aad.extend_from_slice(&vault_id);
        aad.extend_from_slice(&target.octets());
        aad.extend_from_slice(&number.to_be_bytes());
        aad.extend_from_slice(key_desc.as_bytes());
        let nonce = hex::decode(generation["nonce"].as_str().expect("nonce")).expect("hex");
        let mut sealed = hex::decode(generation["sealed"].as_str().expect("sealed")).expect("hex");

        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &data_key).expect("256-bit key"));
        let nonce = Nonce::try_assume_unique_for_key(&nonce).expect("96-bit nonce");
        let plain = key
            .open_in_place(nonce, Aad::from(&aad), &mut sealed)
            .expect("ring opens the record");
        let by_polyseal = opened
            .open_key(&polyseal_key, &target, Some(number))
            .expect("polyseal opens it too");
        assert_eq!(
            plain,
            by_polyseal.key.key().expose_bytes(),
            "generation {number}"
        );
    }
}

#[test]
fn exported_keys_open_with_stock_age() {
    let vault = vault_with_keys();
    let opened = Vault::open(&vault.dir).expect("open");
    let data_key = opened.unlock(&vault.identities()).expect("unlock");
    let out = vault.tmp.path().join("export");
    let files = opened
        .export_keys(&data_key, &out, opened.recipients())
        .expect("export");
    let keys = opened.open_live_keys(&data_key).expect("keys");
    assert_eq!(files.len(), keys.len());
    for (file, key) in files.iter().zip(&keys) {
        assert_eq!(
            file.file_name().expect("name").to_string_lossy(),
            format!("{}-g{}.age", key.mac, key.generation)
        );
        let text = age_decrypt(&vault.identity, file);
        assert_eq!(text, format!("{}\n", &*key.key.expose()));
    }
}

#[test]
fn stock_age_with_an_ssh_key_opens_a_data_key_sealed_to_it() {
    let vault = TestVault::new();
    let private = vault.tmp.path().join("id_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&private));
    let public = std::fs::read_to_string(private.with_extension("pub")).expect("pub");
    let (mut writer, data_key) = vault.unlocked_writer();
    let laptop = polyseal_vault::Recipient::parse("laptop", &public).expect("ssh recipient");
    writer.add_recipient(&data_key, laptop).expect("add");
    let by_ssh = age_decrypt(&private, &vault.file("data-key.age"));
    let by_age = age_decrypt(&vault.identity, &vault.file("data-key.age"));
    assert_eq!(by_ssh, by_age, "every recipient opens the same data key");
}

#[test]
fn the_documented_python_combines_two_custodians_shares_into_the_data_key() {
    let tmp = tempfile::TempDir::new().expect("tmp");
    let mut recipients = Vec::new();
    let mut keys = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (path, public) = common::age_keygen(tmp.path(), &format!("{name}.key"));
        recipients.push(polyseal_vault::Recipient::parse(name, &public).expect("recipient"));
        keys.push(path);
    }
    let dir = tmp.path().join("vault");
    let mut settings = polyseal_vault::VaultSettings::new(recipients);
    settings.threshold = 2;
    polyseal_vault::VaultWriter::create(&dir, settings).expect("create");
    // Cut data-key.age after its first line into its armored files, as docs/VAULT.md says.
    let file = std::fs::read_to_string(dir.join("data-key.age")).expect("data key");
    let (first, body) = file.split_once('\n').expect("the first line");
    assert_eq!(first, "polyseal data-key shares: 2 of 3");
    let blocks: Vec<&str> = body
        .split_inclusive("-----END AGE ENCRYPTED FILE-----\n")
        .collect();
    let mut shares = Vec::new();
    for (index, key) in [(0, &keys[0]), (2, &keys[2])] {
        let block = tmp.path().join(format!("share-{index}.age"));
        std::fs::write(&block, blocks[index]).expect("block");
        let plaintext = age_decrypt(key, &block);
        let share = plaintext
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("share "))
            .expect("a share line")
            .to_owned();
        shares.push(share);
    }
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/VAULT.md"))
        .expect("docs/VAULT.md");
    let section = docs
        .split_once("**A threshold vault**")
        .expect("the section")
        .1;
    let code = section
        .split_once("```python\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the python block")
        .0;
    let script = format!(
        "{code}\nimport sys\nkey = combine([bytes.fromhex(s) for s in sys.argv[1:]])\nprint(key.hex())\n"
    );
    let output = run(Command::new("python3").arg("-c").arg(&script).args(&shares));
    let key_hex = String::from_utf8(output.stdout)
        .expect("text")
        .trim()
        .to_owned();
    let key = hex::decode(&key_hex).expect("hex");
    let digest = Sha256::new()
        .chain_update(b"polyseal vault data-key check v1\0")
        .chain_update(&key)
        .finalize();
    let check = format!("sha256:{}", hex::encode(&digest[..8]));
    let config = std::fs::read_to_string(dir.join("vault.toml")).expect("vault.toml");
    assert!(
        config.contains(&format!("data_key_check = \"{check}\"")),
        "{check}\n{config}"
    );
}
