//! Key strings and KeyDescs: parsing in every accepted form, precise errors, canonical output.

use polyseal_crypto::{ConfigKey, Error, KeyDesc, KeyDescTemplate, KeyString, Mac};

const CANONICAL: &str = "Crypt=1;KeyDesc=companyNameKey1;Key=06a9214036b8a15b512e03d534120006;";

#[test]
fn key_strings_parse_in_any_field_order_and_hex_case() {
    for input in [
        CANONICAL,
        "Crypt=1;KeyDesc=companyNameKey1;Key=06a9214036b8a15b512e03d534120006",
        "Key=06A9214036B8A15B512E03D534120006;KeyDesc=companyNameKey1;Crypt=1;",
        "KeyDesc=companyNameKey1;Crypt=1;Key=06a9214036B8A15B512e03d534120006",
        "  Crypt=1;KeyDesc=companyNameKey1;Key=06a9214036b8a15b512e03d534120006;\n",
    ] {
        let ks = KeyString::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(&*ks.expose(), CANONICAL, "{input:?}");
    }
}

#[test]
fn bad_key_strings_say_which_field_and_never_echo_the_key() {
    let secret = "06a9214036b8a15b512e03d534120006";
    let cases: &[(String, &str)] = &[
        (
            format!("Crypt=2;KeyDesc=k;Key={secret};"),
            "Crypt other than 1",
        ),
        // Typed wrong: the key inside the value of Crypt or KeyDesc is never echoed.
        (
            format!("Crypt=1,KeyDesc=k,Key={secret}"),
            "Crypt other than 1",
        ),
        (
            format!("Crypt=1;KeyDesc=k Key={secret}"),
            "KeyDesc that is not",
        ),
        (format!("KeyDesc=k;Key={secret};"), "no Crypt"),
        (format!("Crypt=1;Key={secret};"), "no KeyDesc"),
        ("Crypt=1;KeyDesc=k;".to_owned(), "no Key"),
        (format!("Crypt=1;KeyDesc=k;Key={secret}00;"), "32 hex"),
        (
            format!("Crypt=1;KeyDesc=k;Key={}zz;", &secret[..30]),
            "32 hex",
        ),
        (
            format!("Crypt=1;KeyDesc=k;Key={secret};Key={secret}"),
            "repeats",
        ),
        (
            format!("Crypt=1;KeyDesc=k;Key={secret};Extra=1"),
            "other than",
        ),
        (format!("Crypt=1;KeyDesc=k;{secret}"), "without '='"),
        (
            format!("Crypt=1;KeyDesc=;Key={secret}"),
            "KeyDesc that is not",
        ),
    ];
    for (input, part) in cases {
        let err = KeyString::parse(input).expect_err(input);
        let message = err.to_string();
        assert!(message.contains(part), "{input:?}: {message}");
        assert!(!message.contains(&secret[..8]), "key leaked: {message}");
        assert!(
            !format!("{err:?}").contains(&secret[..8]),
            "key leaked in Debug"
        );
    }
    assert!(matches!(
        KeyString::parse(&format!("Crypt=2;KeyDesc=k;Key={secret}")),
        Err(Error::KeyString { .. })
    ));
}

#[test]
fn key_desc_rules() {
    for ok in [
        "a",
        "companyNameKey1",
        "0004f2abcdef-g1",
        &"x".repeat(64),
        "with space inside",
    ] {
        KeyDesc::new(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    for bad in [
        "",
        &"x".repeat(65),
        "a;b",
        "a=b",
        "a\"b",
        "tab\there",
        "é",
        " lead",
        "trail ",
    ] {
        let err = KeyDesc::new(bad).expect_err(bad);
        assert!(err.to_string().starts_with("KeyDesc "), "{err}");
    }
}

#[test]
fn key_desc_templates() {
    let mac = Mac::parse("0004f2abcdef").expect("mac");
    assert_eq!(KeyDesc::for_generation(&mac, 1).as_str(), "0004f2abcdef-g1");
    let t = KeyDescTemplate::parse("site7-{mac}-{generation}").expect("template");
    assert_eq!(t.render(&mac, 12).as_str(), "site7-0004f2abcdef-12");
    for (bad, part) in [
        ("{generation}", "{mac}"),
        ("{mac}", "{generation}"),
        ("{mac}-{gen}-{generation}", "placeholder"),
        ("{mac};{generation}", "invalid KeyDesc"),
        (
            &format!("{}{{mac}}{{generation}}", "x".repeat(50)),
            "invalid KeyDesc",
        ),
    ] {
        let err = KeyDescTemplate::parse(bad).expect_err(bad);
        assert!(err.to_string().contains(part), "{bad}: {err}");
    }
}

#[test]
fn config_keys_compare_by_value_and_fingerprints_are_stable() {
    let a = ConfigKey::from_hex("06a9214036b8a15b512e03d534120006").expect("hex");
    let b = ConfigKey::from_hex("06A9214036B8A15B512E03D534120006").expect("hex");
    assert_eq!(a, b);
    assert_ne!(a, ConfigKey::generate());
    assert_ne!(ConfigKey::generate(), ConfigKey::generate());
    let fp = a.fingerprint().to_string();
    assert_eq!(fp.len(), "sha256:".len() + 16);
    assert_eq!(
        polyseal_crypto::Fingerprint::parse(&fp),
        Some(a.fingerprint())
    );
    assert!(ConfigKey::from_hex("06a9").is_err());
}
