//! No secret-bearing type shows its key through `{:?}` or `{}`.

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, decrypt, encrypt};

const KEY: &str = "06a9214036b8a15b512e03d534120006";

/// The key in every spelling a formatter might produce: lower and upper hex, and the byte
/// list `Debug` of an array would print.
fn leaks(text: &str) -> bool {
    let bytes = hex::decode(KEY).expect("hex");
    let byte_list = format!("{:?}", bytes);
    text.contains(KEY)
        || text.contains(&KEY.to_uppercase())
        || text.contains(&byte_list[1..byte_list.len() - 1])
        || text.contains(&format!("{:?}", &bytes[..4])[1..8])
}

#[test]
fn secret_bearing_types_never_format_their_key() {
    let key = ConfigKey::from_hex(KEY).expect("key");
    let ks = KeyString::new(KeyDesc::new("desc").expect("desc"), key.clone());
    let parsed = KeyString::parse(&format!("Crypt=1;KeyDesc=x;Key={KEY}")).expect("parse");
    let rendered = [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{ks}"),
        format!("{ks:?}"),
        format!("{ks:#?}"),
        format!("{parsed}"),
        format!("{parsed:?}"),
        format!("{:?}", key.fingerprint()),
        format!("{}", key.fingerprint()),
    ];
    for text in &rendered {
        assert!(!leaks(text), "key leaked: {text}");
    }
    // The explicit method does show it: that is its purpose, and proves `leaks` works.
    assert!(leaks(&ks.expose()));
}

#[test]
fn errors_from_decrypting_with_a_wrong_key_never_show_either_key() {
    let right = KeyString::new(
        KeyDesc::new("d").expect("desc"),
        ConfigKey::from_hex(KEY).expect("key"),
    );
    let wrong = KeyString::new(KeyDesc::new("d").expect("desc"), ConfigKey::generate());
    let file = encrypt(b"<polycomConfig reg.1.auth.password=\"hunter2\"/>", &right).expect("enc");
    let err = decrypt(&file, &wrong).expect_err("wrong key");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(
            !leaks(&text) && !text.contains(&*wrong.key().expose_hex()),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "plaintext leaked: {text}");
    }
}
