//! Runs every test vector in `tests/vectors/` (made by `make-vectors.sh` with the openssl CLI):
//! each file states the file to decrypt, the key to decrypt it with, and the expected outcome.

use std::path::Path;

use polyseal_crypto::{Error, KeyString, decrypt};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    description: String,
    key: String,
    header: String,
    body_hex: String,
    expect: String,
    plaintext_hex: Option<String>,
}

/// The kebab-case name a vector uses for an error.
fn error_name(error: &Error) -> &'static str {
    match error {
        Error::NotEncrypted => "not-encrypted",
        Error::MalformedHeader { .. } => "malformed-header",
        Error::UnsupportedCrypt { .. } => "unsupported-crypt",
        Error::UnsupportedDigest { .. } => "unsupported-digest",
        Error::KeyDescMismatch { .. } => "key-desc-mismatch",
        Error::TruncatedBody { .. } => "truncated-body",
        Error::BodyNotBlockAligned { .. } => "body-not-block-aligned",
        Error::BadPadding => "bad-padding",
        Error::DigestMismatch => "digest-mismatch",
        Error::TooLarge { .. } => "too-large",
        Error::LayoutMismatch { .. } => "layout-mismatch",
        other => panic!("a vector should not produce {other:?}"),
    }
}

/// Every case the crypto issue names must have a vector; deleting one fails this test.
const REQUIRED: &[&str] = &[
    "good",
    "wrong-key",
    "flipped-body-bit",
    "flipped-digest-bit",
    "truncated-body",
    "body-not-block-aligned",
    "bad-padding",
    "crypt-2",
    "md5-digest",
    "crlf-header",
    "fields-reordered",
    "empty-plaintext",
];

#[test]
fn every_vector_has_its_expected_outcome() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read vectors dir") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("read vector");
        let v: Vector = toml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let key = KeyString::parse(&v.key).unwrap_or_else(|e| panic!("{name}: key: {e}"));
        let mut file = v.header.into_bytes();
        file.extend(hex::decode(&v.body_hex).expect("body hex"));

        let outcome = decrypt(&file, &key);
        match (v.expect.as_str(), outcome) {
            ("ok", Ok(plaintext)) => {
                let want = hex::decode(v.plaintext_hex.expect("ok vectors give plaintext_hex"))
                    .expect("plaintext hex");
                assert_eq!(&plaintext[..], &want[..], "{name}: {}", v.description);
            }
            ("ok", Err(e)) => panic!("{name} ({}): expected ok, got {e}", v.description),
            (want, Ok(_)) => panic!("{name} ({}): expected {want}, got ok", v.description),
            (want, Err(e)) => assert_eq!(error_name(&e), want, "{name}: {}", v.description),
        }
        seen.push(name);
    }
    for required in REQUIRED {
        assert!(
            seen.iter().any(|s| s == required),
            "vector {required} is missing"
        );
    }
}

#[test]
fn padding_and_digest_failures_say_the_same_thing() {
    // Telling them apart would tell an attacker which of their edits reached the padding: a
    // padding oracle (issue 13).
    assert_eq!(
        polyseal_crypto::Error::BadPadding.to_string(),
        polyseal_crypto::Error::DigestMismatch.to_string()
    );
}
