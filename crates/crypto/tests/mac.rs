//! Table test of MAC spellings, accepted and rejected.

use polyseal_crypto::{Error, Mac};

#[test]
fn accepted_spellings_have_one_canonical_form() {
    let accepted = [
        ("0004F2ABCDEF", "0004f2abcdef"),
        ("0004f2abcdef", "0004f2abcdef"),
        ("00:04:f2:ab:cd:ef", "0004f2abcdef"),
        ("00:04:F2:AB:CD:EF", "0004f2abcdef"),
        ("00-04-F2-AB-CD-EF", "0004f2abcdef"),
        ("0004.f2ab.cdef", "0004f2abcdef"),
        ("  0004F2ABCDEF\n", "0004f2abcdef"),
        ("\t64:16:7f:01:02:03 ", "64167f010203"),
        ("482567000001", "482567000001"),
        ("020000000001", "020000000001"), // locally administered, unicast: allowed
    ];
    for (input, canonical) in accepted {
        let mac = Mac::parse(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
        assert_eq!(mac.to_string(), canonical, "{input:?}");
    }
}

/// Whether an error is the variant a case expects.
type ErrorCheck = fn(&Error) -> bool;

#[test]
fn rejected_spellings_name_the_input_and_the_reason() {
    let rejected: &[(&str, ErrorCheck, &str)] = &[
        (
            "0004f2abcde",
            |e| matches!(e, Error::MacLength { digits: 11, .. }),
            "11 hex digits",
        ),
        (
            "0004f2abcdef0",
            |e| matches!(e, Error::MacLength { digits: 13, .. }),
            "13 hex digits",
        ),
        (
            "",
            |e| matches!(e, Error::MacLength { digits: 0, .. }),
            "0 hex digits",
        ),
        (
            "00:04:f2:ab:cd",
            |e| matches!(e, Error::MacLength { .. }),
            "10 hex digits",
        ),
        (
            "0004f2abcdeg",
            |e| matches!(e, Error::MacSyntax { .. }),
            "not 12 hex digits",
        ),
        (
            "00:04:f2-ab:cd:ef",
            |e| matches!(e, Error::MacSyntax { .. }),
            "not 12 hex",
        ),
        (
            "000:4f2:ab:cd:ef",
            |e| matches!(e, Error::MacSyntax { .. }),
            "not 12 hex",
        ),
        (
            "0004:f2ab:cdef",
            |e| matches!(e, Error::MacSyntax { .. }),
            "not 12 hex",
        ),
        (
            "00 04 f2 ab cd ef",
            |e| matches!(e, Error::MacSyntax { .. }),
            "not 12 hex",
        ),
        (
            "000000000000",
            |e| matches!(e, Error::MacAllZero),
            "master file",
        ),
        (
            "00:00:00:00:00:00",
            |e| matches!(e, Error::MacAllZero),
            "master file",
        ),
        (
            "ffffffffffff",
            |e| matches!(e, Error::MacBroadcast),
            "broadcast",
        ),
        (
            "FF-FF-FF-FF-FF-FF",
            |e| matches!(e, Error::MacBroadcast),
            "broadcast",
        ),
        (
            "0104f2abcdef",
            |e| matches!(e, Error::MacMulticast { .. }),
            "multicast",
        ),
        (
            "01:00:5e:00:00:01",
            |e| matches!(e, Error::MacMulticast { .. }),
            "multicast",
        ),
    ];
    for (input, is_expected, message_part) in rejected {
        let err = Mac::parse(input).expect_err(input);
        assert!(is_expected(&err), "{input:?} gave {err:?}");
        let message = err.to_string();
        assert!(message.contains(message_part), "{input:?}: {message}");
        assert!(!message.contains('\n'), "one line: {message:?}");
        if !matches!(
            err,
            Error::MacAllZero | Error::MacBroadcast | Error::MacMulticast { .. }
        ) {
            assert!(
                message.contains(&format!("{input:?}")),
                "names input: {message}"
            );
        }
    }
}

#[test]
fn polycom_ouis_are_recognised() {
    for (mac, polycom) in [
        ("0004f2000001", true),
        ("64167f000001", true),
        ("482567000001", true),
        ("001122334455", false),
    ] {
        assert_eq!(
            Mac::parse(mac).expect("mac").is_polycom_oui(),
            polycom,
            "{mac}"
        );
    }
}
