//! Encrypt→decrypt round trips: property tests over plaintext sizes, every length around the
//! block boundary, the real Polycom corpus, and IV freshness.

use std::path::Path;

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, decrypt, encrypt, inspect};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn key(desc: &str) -> KeyString {
    KeyString::new(
        KeyDesc::new(desc).expect("valid KeyDesc"),
        ConfigKey::generate(),
    )
}

fn round_trip(plaintext: &[u8], key: &KeyString) {
    let file = encrypt(plaintext, key).expect("encrypt");
    let back = decrypt(&file, key).expect("decrypt");
    assert_eq!(&back[..], plaintext);
}

#[test]
fn every_length_around_the_block_boundary_round_trips() {
    let key = key("boundary");
    let data: Vec<u8> = (0..=255u8).cycle().take(4 * 16 + 1).collect();
    for len in 0..=data.len() {
        round_trip(&data[..len], &key);
    }
    for len in [
        1024 * 1024 - 17,
        1024 * 1024 - 16,
        1024 * 1024 - 1,
        1024 * 1024,
    ] {
        round_trip(&vec![0xa5; len], &key);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // Content from a seeded generator rather than a proptest byte vector: generating and
    // shrinking a megabyte element by element would take minutes and buy nothing.
    #[test]
    fn random_plaintexts_up_to_1_mib_round_trip(len in 0..=1024 * 1024usize, seed: u64) {
        let mut plaintext = vec![0u8; len];
        StdRng::seed_from_u64(seed).fill_bytes(&mut plaintext);
        round_trip(&plaintext, &key("prop"));
    }

    #[test]
    fn small_random_plaintexts_round_trip(plaintext in prop::collection::vec(any::<u8>(), 0..200)) {
        round_trip(&plaintext, &key("small"));
    }
}

#[test]
fn two_encryptions_of_the_same_plaintext_differ() {
    let key = key("iv");
    let a = encrypt(b"reg.1.auth.password=\"x\"", &key).expect("encrypt");
    let b = encrypt(b"reg.1.auth.password=\"x\"", &key).expect("encrypt");
    let body = inspect(&a).expect("header").body_offset();
    // Same header (same plaintext digest), different IV and so different ciphertext.
    assert_eq!(a[..body], b[..body]);
    assert_ne!(a[body..body + 16], b[body..body + 16], "IV reused");
    assert_ne!(a[body + 16..], b[body + 16..]);
    assert_ne!(&a[body..body + 16], &[0u8; 16], "zero IV");
}

#[test]
fn every_corpus_file_round_trips_byte_exact() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/polycom");
    let key = key("corpus");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "cfg" || e == "xml") {
            let plaintext = std::fs::read(&path).expect("read fixture");
            round_trip(&plaintext, &key);
            count += 1;
        }
    }
    // The six corpus files, the malformed one included.
    assert_eq!(count, 6);
}

/// Regression: a one-line plaintext bootstrap file carries `Crypt=1;KeyDesc=…` on its first
/// line and was taken for an encrypted file's header.
#[test]
fn one_line_xml_carrying_a_key_string_is_not_encrypted() {
    let xml = b"<?xml version=\"1.0\"?><polycomConfig><device device.sec.configEncryption.key=\"Crypt=1;KeyDesc=k;Key=06a9214036b8a15b512e03d534120006;\"/></polycomConfig>\n";
    assert!(!polyseal_crypto::is_encrypted(xml));
    assert!(!polyseal_crypto::is_encrypted(
        &[b"\n  ".as_slice(), xml].concat()
    ));
    assert_eq!(inspect(xml), Err(polyseal_crypto::Error::NotEncrypted));
}
