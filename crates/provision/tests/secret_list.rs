//! The list of secret parameters (`SECRET_PARAMETERS`): every entry is recognised and
//! reported, the credentials issue 12 named are caught in the shapes Polycom's own templates
//! give them, and the harmless look-alikes of the same templates raise nothing.
//!
//! Real names come from the stock UC Software 5.x templates committed in the public repository
//! github.com/openspork/pp (`configs/site.cfg`, `device.cfg`, `features.cfg`,
//! `reg-basic.cfg`, …), as each entry's `source` says.

use std::path::Path;

use polyseal_provision::{
    Exposure, Finding, FindingKind, Position, SECRET_PARAMETERS, SecretKind, scan, secret_kind,
};

const STRONG: &str = "n7-Kq2v!Zr9wLp";

/// A fake RSA private key in the shape the phone takes in `sec.TLS.customDeviceKey.#`: a PEM
/// block, line breaks included (split so no scanner mistakes this file for a leaked key).
const PEM_KEY_BODY: &str = "MIIEowIBAAKCAQEAtestTESTtestTESTnotArealKeyZq0123456789abcdefABCDEF";
fn pem_private_key() -> String {
    format!(
        "-----BEGIN RSA {kind}-----\n{PEM_KEY_BODY}\nc29tZSBtb3JlIGZha2UgYmFzZTY0IGxpbmVz\n-----END RSA {kind}-----",
        kind = "PRIVATE KEY"
    )
}

fn pem_certificate() -> String {
    "-----BEGIN CERTIFICATE-----\nMIIDXTCCAkWgAwIBAgIJAKfakefakefake\n-----END CERTIFICATE-----"
        .to_owned()
}

/// A shared file (`site.cfg`) holding the given attributes, one element each.
fn shared_file(attributes: &[(&str, &str)]) -> String {
    let mut xml = String::from("<polycomConfig>\n");
    for (name, value) in attributes {
        xml.push_str(&format!("  <x {name}=\"{value}\"/>\n"));
    }
    xml.push_str("</polycomConfig>\n");
    xml
}

fn scan_shared(xml: &str) -> Vec<Finding> {
    scan(Path::new("site.cfg"), xml.as_bytes(), Exposure::Shared).expect("well-formed")
}

fn summary(findings: &[Finding]) -> Vec<(&str, SecretKind, FindingKind)> {
    findings
        .iter()
        .map(|f| (f.parameter.as_str(), f.secret, f.kind))
        .collect()
}

#[test]
fn every_entry_is_recognised_and_reported_in_a_shared_file() {
    for secret in SECRET_PARAMETERS {
        // '#' as a registration or key number, '*' as a plausible run of name.
        let name = secret.pattern.replace('#', "1").replace('*', "example.");
        assert_eq!(secret_kind(&name), Some(secret.kind), "{}", secret.pattern);
        assert_eq!(
            secret_kind(&name.to_ascii_uppercase()),
            Some(secret.kind),
            "{} in capitals",
            secret.pattern
        );
        let findings = scan_shared(&shared_file(&[(&name, STRONG)]));
        assert_eq!(
            summary(&findings),
            [(name.as_str(), secret.kind, FindingKind::SecretInSharedFile)],
            "{}",
            secret.pattern
        );
        assert!(
            !secret.source.is_empty(),
            "{} has no source",
            secret.pattern
        );
    }
}

#[test]
fn real_template_names_get_their_kind() {
    // Names as the stock templates spell them, where the pattern leaves room (digits, runs).
    let cases = [
        ("reg.2.auth.password", SecretKind::SipPassword),
        ("device.wifi.wep.key4", SecretKind::NetworkSecret),
        (
            "device.prov.lyncDeviceUpdatePassword",
            SecretKind::ServicePassword,
        ),
        (
            "reg.2.server.2.pstnServerAuth.password",
            SecretKind::ServicePassword,
        ),
        ("reg.2.broadsoft.xsp.password", SecretKind::ServicePassword),
        ("xmpp.1.auth.password", SecretKind::ServicePassword),
        ("SCEP.challengePassword", SecretKind::ServicePassword),
        ("SCEP.http.password", SecretKind::ServicePassword),
        ("feature.E911.HELD.password", SecretKind::ServicePassword),
        (
            "feature.E911.HELD.secondary.password",
            SecretKind::ServicePassword,
        ),
        ("device.tr069.cpe.password", SecretKind::DevicePassword),
        ("prov.login.localPassword", SecretKind::DevicePassword),
        ("reg.2.pin", SecretKind::Pin),
        ("sec.TLS.customDeviceKey.2", SecretKind::PrivateKey),
    ];
    for (name, kind) in cases {
        assert_eq!(secret_kind(name), Some(kind), "{name}");
    }
}

// Issue 12, point 4: credentials that went through in shared files.

#[test]
fn a_custom_device_private_key_in_site_cfg_is_a_finding() {
    // As in the stock site.cfg: the key beside the certificate it goes with, each in its
    // own element under <sec.TLS>. The certificate is public; the key is not.
    let key = pem_private_key();
    let site = format!(
        "<polycomConfig>\n  <sec sec.tagSerialNo=\"0\">\n    <sec.TLS>\n      \
         <sec.TLS.customDeviceCert sec.TLS.customDeviceCert.1=\"{}\" sec.TLS.customDeviceCert.2=\"\">\n      \
         </sec.TLS.customDeviceCert>\n      \
         <sec.TLS.customDeviceKey sec.TLS.customDeviceKey.1=\"{key}\" sec.TLS.customDeviceKey.2=\"\">\n      \
         </sec.TLS.customDeviceKey>\n    </sec.TLS>\n  </sec>\n</polycomConfig>\n",
        pem_certificate()
    );
    let findings = scan_shared(&site);
    assert_eq!(
        summary(&findings),
        [(
            "sec.TLS.customDeviceKey.1",
            SecretKind::PrivateKey,
            FindingKind::SecretInSharedFile
        )]
    );
    assert_eq!(
        findings[0].position,
        Position {
            line: 8,
            column: 32
        }
    );
    let shown = format!("{} {:?}", findings[0], findings[0]);
    assert!(shown.contains("(private key)"), "{shown}");
    assert!(!shown.contains(PEM_KEY_BODY), "{shown}");
    // Served encrypted to its one phone, the key is where it belongs.
    let encrypted = scan(
        Path::new("0004f2abcdef-site.cfg"),
        site.as_bytes(),
        Exposure::PerPhoneEncrypted,
    )
    .expect("well-formed");
    assert_eq!(encrypted, []);
}

#[test]
fn the_login_credentials_pin_in_a_shared_file_is_a_finding() {
    // As in the stock device.cfg and features.cfg.
    let xml = "<polycomConfig>\n  <device.logincred device.logincred.domain=\"\" \
               device.logincred.extension=\"1001\" device.logincred.password=\"\" \
               device.logincred.pin=\"4711\" device.logincred.user=\"\">\n    \
               <device.logincred.pin device.logincred.pin.set=\"1\"/>\n  \
               </device.logincred>\n</polycomConfig>\n";
    assert_eq!(
        summary(&scan_shared(xml)),
        [(
            "device.logincred.pin",
            SecretKind::Pin,
            FindingKind::SecretInSharedFile
        )]
    );
}

#[test]
fn the_lync_device_update_pin_in_a_shared_file_is_a_finding() {
    let xml = shared_file(&[
        ("device.prov.lyncDeviceUpdateCredentialType", "PIN"),
        ("device.prov.lyncDeviceUpdateUser", "1001"),
        ("device.prov.lyncDeviceUpdatePin", "4711"),
        ("device.prov.lyncDeviceUpdatePin.set", "1"),
    ]);
    assert_eq!(
        summary(&scan_shared(&xml)),
        [(
            "device.prov.lyncDeviceUpdatePin",
            SecretKind::Pin,
            FindingKind::SecretInSharedFile
        )]
    );
}

#[test]
fn a_registration_pin_in_a_shared_file_is_a_finding() {
    // As in the stock reg-basic.cfg, beside the registration's extension and password.
    let xml = "<polycomConfig>\n  <reg reg.1.address=\"\" reg.1.auth.password=\"\" \
               reg.1.auth.userId=\"\" reg.1.extension=\"1001\" reg.1.pin=\"4711\"/>\n  \
               <reg.1.auth reg.1.auth.usePinCredentials=\"1\"/>\n</polycomConfig>\n";
    assert_eq!(
        summary(&scan_shared(xml)),
        [(
            "reg.1.pin",
            SecretKind::Pin,
            FindingKind::SecretInSharedFile
        )]
    );
    // A PIN is not a SIP password: it is not judged for strength.
    let encrypted = scan(
        Path::new("0004f2abcdef-reg.cfg"),
        xml.as_bytes(),
        Exposure::PerPhoneEncrypted,
    )
    .expect("well-formed");
    assert_eq!(encrypted, []);
}

#[test]
fn harmless_look_alikes_raise_nothing() {
    // Flags, policies, user names, certificates and other parameters whose names look like
    // secrets, all from the same templates, all given a value: nothing to report, even in a
    // master file (where every secret would be a finding).
    let cert = pem_certificate();
    let look_alikes: &[(&str, &str)] = &[
        ("prov.login.localPassword.hashed", "1"),
        ("dir.local.passwordProtected", "1"),
        ("device.prov.password.set", "1"),
        ("device.auth.localAdminPassword.set", "1"),
        ("device.logincred.password.set", "1"),
        ("device.logincred.pin.set", "1"),
        ("device.prov.lyncDeviceUpdatePin.set", "1"),
        ("device.prov.lyncDeviceUpdatePassword.set", "1"),
        ("device.prov.lyncDeviceUpdateCredentialType", "PIN"),
        ("device.sec.configEncryption.key.set", "1"),
        ("device.wifi.psk.key.set", "1"),
        ("device.wifi.psk.keyType", "0"),
        ("device.wifi.wep.defaultKey", "1"),
        ("device.wifi.wep.keyLength", "104"),
        ("device.tr069.acs.password.set", "1"),
        ("reg.1.auth.usePinCredentials", "1"),
        ("reg.1.auth.useLoginCredentials", "1"),
        ("reg.1.auth.loginCredentialType", "loginCredentialNone"),
        ("reg.1.broadsoft.useXspCredentials", "1"),
        ("dir.broadsoft.useXspCredentials", "1"),
        ("dir.corp.allowCredentialsFromUI.enabled", "1"),
        ("dir.corp.persistentCredentials", "1"),
        ("feature.exchangeVoiceMail.skipPin.enabled", "1"),
        ("sec.pwd.length.admin", "8"),
        ("sec.pwd.length.user", "6"),
        ("prov.login.password.encodingMode", "None"),
        ("prov.loginCredPwdFlushed.enabled", "1"),
        ("up.basicSettingsPasswordEnabled", "1"),
        ("up.echoPasswordDigits", "1"),
        ("tcpIpApp.ice.stun.passwordServer", "stun.example.net"),
        ("sec.TLS.customDeviceCert.1", &cert),
        ("sec.TLS.customCaCert.1", &cert),
        ("device.sec.TLS.customCaCert1", &cert),
        ("sec.uploadDevice.privateKey", "1"),
        ("sec.srtp.key.lifetime", "2^31"),
        ("sec.srtp.holdWithNewKey", "1"),
        ("call.internationalPrefix.key", "0"),
        ("log.level.change.key", "4"),
        ("reg.1.callsPerLineKey", "24"),
        ("reg.1.extension", "1001"),
        ("reg.1.auth.userId", "1001"),
        ("device.logincred.user", "alice"),
        ("device.logincred.extension", "1001"),
        ("device.prov.lyncDeviceUpdateUser", "alice"),
        ("device.tr069.acs.username", "acs"),
        ("feature.E911.HELD.username", "held"),
        ("phoneLock.authorized.1.value", "911"),
    ];
    for (name, _) in look_alikes {
        assert_eq!(secret_kind(name), None, "{name}");
    }
    let xml = shared_file(look_alikes);
    let found = scan(
        Path::new("000000000000.cfg"),
        xml.as_bytes(),
        Exposure::Master,
    )
    .expect("well-formed");
    assert_eq!(summary(&found), [], "look-alikes were reported");
}
