//! The bundled Polycom device CA chain is the real one: the fingerprints its README gives, and
//! a chain the real `openssl` verifies (each issuing CA under the policy CA under the root).

use std::process::Command;

use polyseal_delivery::POLYCOM_DEVICE_CA_PEM;

/// The certificates of the bundle, PEM, in order.
fn certificates() -> Vec<String> {
    POLYCOM_DEVICE_CA_PEM
        .split_inclusive("-----END CERTIFICATE-----\n")
        .map(str::to_owned)
        .collect()
}

/// `openssl ARGS` with `input` on standard input; its standard output.
fn openssl(args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl must be installed (scripts/install-test-tools.sh)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("text")
}

#[test]
fn the_bundle_holds_the_four_polycom_ca_certificates_of_the_readme() {
    let readme = include_str!("../ca/README.md");
    let expected = [
        ("Polycom Root CA", "Polycom_Root_CA.pem"),
        (
            "Polycom Equipment Policy CA",
            "Polycom_Equipment_Policy_CA.pem",
        ),
        (
            "Polycom Equipment Issuing CA 1",
            "Polycom_Equipment_Issuing_CA_1.pem",
        ),
        (
            "Polycom Equipment Issuing CA 2",
            "Polycom_Equipment_Issuing_CA_2.pem",
        ),
    ];
    let certificates = certificates();
    assert_eq!(certificates.len(), expected.len());
    for (pem, (subject, file)) in certificates.iter().zip(expected) {
        let shown = openssl(
            &["x509", "-noout", "-subject", "-fingerprint", "-sha256"],
            pem,
        );
        assert!(shown.contains(&format!("CN = {subject}")), "{shown}");
        let fingerprint = shown
            .lines()
            .find_map(|l| l.strip_prefix("sha256 Fingerprint="))
            .expect("a fingerprint");
        let row = format!("| {file} | {fingerprint} |");
        assert!(readme.contains(&row), "README lacks {row}");
    }
}

#[test]
fn openssl_verifies_each_issuing_ca_under_the_policy_ca_and_the_root() {
    let certificates = certificates();
    let dir = tempfile::tempdir().expect("tempdir");
    let anchors = dir.path().join("root-and-policy.pem");
    std::fs::write(&anchors, format!("{}{}", certificates[0], certificates[1])).expect("write");
    for issuing in &certificates[2..] {
        let verified = openssl(
            &["verify", "-CAfile", anchors.to_str().expect("utf-8")],
            issuing,
        );
        assert!(verified.contains("OK"), "{verified}");
    }
}
