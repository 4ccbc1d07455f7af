//! Scenario 2 of issue 6 and the upload rule, against a real nginx on 127.0.0.1 and against
//! `polyseal serve`, the same cases for both (the per-MAC rule is defined once,
//! polyseal-delivery's `access`): phone A's certificate gets its own files and the shared
//! ones, 403 for phone B's; no certificate, a certificate of another CA and plain HTTP get no
//! file; uploads go only to the phone's own names.

use std::fs;

use polyseal_delivery::MAX_UPLOAD_BYTES;
use polyseal_testbed::{Client, DnType, DnValue, Nginx, Pki, plain_http_get};

use crate::support::tree::{BACKENDS, Backend, Setup, Tree, write};

/// The status of a GET, failing the test with the server's log if there was no answer.
fn status(s: &Setup, client: &Client, path: &str) -> u16 {
    match client.get(path) {
        Ok(response) => response.status,
        Err(e) => panic!("GET {path}: {e}\n{}", s.log()),
    }
}
#[test]
fn a_phone_gets_its_own_files_the_masters_and_the_shared_files() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let a = &s.tree.phones[0].mac;
        let client = s.phone_client(0);
        for path in [
            format!("{a}-key.cfg"),
            format!("{a}-sip.cfg"),
            format!("contacts/{a}-directory.xml"),
            "000000000000.cfg".to_owned(),
            "site.cfg".to_owned(),
        ] {
            let response = client.get(&path).expect("an answer");
            assert_eq!(response.status, 200, "{path}\n{}", s.log());
            assert_eq!(
                response.body,
                fs::read(s.tree.path().join(&path)).expect("tree file")
            );
        }
        // A file the phone asks for that is not there is a plain 404, not a 403.
        assert_eq!(status(&s, &client, &format!("{a}.cfg")), 404);
    }
}

#[test]
fn a_phone_gets_403_for_every_file_of_another_phone() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let b = &s.tree.phones[1].mac;
        let upper = b.to_string().to_ascii_uppercase();
        let client = s.phone_client(0);
        for path in [
            format!("{b}-key.cfg"),
            format!("{b}-sip.cfg"),
            format!("contacts/{b}-directory.xml"),
            format!("{b}.cfg"),
            format!("overrides/{b}-phone.cfg"),
            // The same files spelled so that a naive rule would miss them.
            format!("{upper}-key.cfg"),
            format!("./{b}-key.cfg"),
            format!("contacts/../{b}-key.cfg"),
            format!(
                "%{:02X}{}-key.cfg",
                b.to_string().as_bytes()[0],
                &b.to_string()[1..]
            ),
            format!("x-{b}-key.cfg"),
        ] {
            assert_eq!(status(&s, &client, &path), 403, "{path}");
        }
        // A run of 13 hex digits is no MAC, and 000000000000 names no phone: shared names.
        assert_eq!(status(&s, &client, &format!("{b}0-key.cfg")), 404);
        assert_eq!(status(&s, &client, "000000000000-directory.xml"), 404);
    }
}

#[test]
fn the_subject_cn_names_the_phone_in_either_case_and_nothing_else_does() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let (a, b) = (&s.tree.phones[0].mac, &s.tree.phones[1].mac);
        let key_file = format!("{a}-key.cfg");

        let lowercase = s.pki.client_cert_with_cn(&a.to_string());
        let client = Client::new(&s.server, Some(&lowercase));
        assert_eq!(status(&s, &client, &key_file), 200);
        assert_eq!(status(&s, &client, &format!("{b}-key.cfg")), 403);

        // A certificate of the device CA whose CN is not a MAC gets nothing, shared files included.
        for cn in [
            "not-a-phone",
            &format!("{a}.phones.example.com"),
            &format!("{a}0"),
        ] {
            let client = Client::new(&s.server, Some(&s.pki.client_cert_with_cn(cn)));
            assert_eq!(status(&s, &client, &key_file), 403, "CN={cn}");
            assert_eq!(status(&s, &client, "site.cfg"), 403, "CN={cn}");
        }
    }
}

#[test]
fn a_mac_after_an_escaped_comma_or_in_a_crafted_subject_names_no_phone() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let (a, b) = (&s.tree.phones[0].mac, &s.tree.phones[1].mac);
        let b_upper = b.to_string().to_ascii_uppercase();
        let crafted = format!("x,CN={b_upper}");
        let in_other = format!("CN={b_upper}");
        let email = format!("{b_upper}@phones.example.com");
        let a_upper = a.to_string().to_ascii_uppercase();
        // Each subject, in the order the certificate encodes it (nginx prints the last first).
        let subjects: Vec<(&str, Vec<(DnType, &str)>)> = vec![
            // nginx: "CN=attacker,OU=x\,CN=<B>,O=Polycom Inc.": the review's attack.
            (
                "escaped comma",
                vec![
                    (DnType::OrganizationName, "Polycom Inc."),
                    (DnType::OrganizationalUnitName, crafted.as_str()),
                    (DnType::CommonName, "attacker"),
                ],
            ),
            (
                "CN text inside another attribute",
                vec![
                    (DnType::OrganizationName, "Polycom Inc."),
                    (DnType::OrganizationalUnitName, in_other.as_str()),
                ],
            ),
            (
                "email-style subject",
                vec![
                    (DnType::OrganizationName, "Polycom Inc."),
                    (
                        DnType::CustomDnType(vec![1, 2, 840, 113_549, 1, 9, 1]),
                        email.as_str(),
                    ),
                ],
            ),
        ];
        for (what, subject) in subjects {
            let client = Client::new(&s.server, Some(&s.pki.client_cert_with_subject(&subject)));
            for path in [format!("{b}-key.cfg"), format!("{a}-key.cfg")] {
                assert_eq!(status(&s, &client, &path), 403, "{what}: {path}");
            }
        }
        // Subjects rcgen cannot make, made by openssl: two CNs, a CN sharing its RDN.
        for subject in [
            format!("/O=Polycom Inc./CN={b_upper}/CN={a_upper}"),
            format!("/O=Polycom Inc./CN={a_upper}/CN={b_upper}"),
            format!("/O=Polycom Inc./OU=x+CN={b_upper}"),
            format!("/O=Polycom Inc./CN={b_upper}+OU=x"),
        ] {
            let client = Client::new(
                &s.server,
                Some(&s.pki.client_cert_with_openssl_subject(&subject)),
            );
            for path in [format!("{b}-key.cfg"), format!("{a}-key.cfg")] {
                assert_eq!(status(&s, &client, &path), 403, "{subject}: {path}");
            }
        }
        // The same helpers, with a factory-shaped subject, name the phone: the refusals above
        // are the rule's, not the helper's.
        let factory = s.pki.client_cert_with_subject(&[
            (DnType::OrganizationName, "Polycom Inc."),
            (DnType::CommonName, b_upper.as_str()),
        ]);
        let client = Client::new(&s.server, Some(&factory));
        assert_eq!(status(&s, &client, &format!("{b}-key.cfg")), 200);
        let factory = s
            .pki
            .client_cert_with_openssl_subject(&format!("/O=Polycom Inc./CN={b_upper}"));
        let client = Client::new(&s.server, Some(&factory));
        assert_eq!(status(&s, &client, &format!("{b}-key.cfg")), 200);
    }
}

#[test]
fn a_mac_in_a_bmp_teletex_or_universal_string_cn_names_the_phone_for_both_servers() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let (a, b) = (&s.tree.phones[0].mac, &s.tree.phones[1].mac);
        let b_upper = b.to_string().to_ascii_uppercase();
        let values = [
            (
                "BMPString",
                DnValue::BmpString(b_upper.as_str().try_into().expect("BMP")),
            ),
            (
                "TeletexString",
                DnValue::TeletexString(b_upper.as_str().try_into().expect("T61")),
            ),
            (
                "UniversalString",
                DnValue::UniversalString(b_upper.as_str().try_into().expect("universal")),
            ),
        ];
        for (what, value) in values {
            let client = Client::new(&s.server, Some(&s.pki.client_cert_with_cn_value(value)));
            assert_eq!(
                status(&s, &client, &format!("{b}-key.cfg")),
                200,
                "{backend:?}, {what}"
            );
            assert_eq!(
                status(&s, &client, &format!("{a}-key.cfg")),
                403,
                "{backend:?}, {what}"
            );
        }
    }
}

#[test]
fn no_certificate_and_another_cas_certificate_are_refused() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let a = &s.tree.phones[0].mac;
        let key_file = format!("{a}-key.cfg");
        let foreign = s.pki.foreign_client_cert(a);
        for (who, client) in [
            ("no certificate", Client::new(&s.server, None)),
            ("another CA", Client::new(&s.server, Some(&foreign))),
        ] {
            for path in [key_file.as_str(), "site.cfg", "000000000000.cfg"] {
                // nginx answers 400 after the handshake (TLS 1.3 asks for the certificate there);
                // a refused handshake would be no answer at all, which is a refusal too, and is
                // what polyseal serve does (rustls refuses in the handshake).
                if let Ok(response) = client.get(path) {
                    assert_eq!(backend, Backend::Nginx, "{who}: {path} answered");
                    assert_eq!(response.status, 400, "{who}: {path}");
                    assert!(!String::from_utf8_lossy(&response.body).contains("configEncryption"));
                }
            }
        }
        if backend == Backend::Nginx {
            let log = s.log();
            assert!(
                log.contains("client sent no required SSL certificate"),
                "{log}"
            );
            assert!(log.contains("client SSL certificate verify error"), "{log}");
        } else {
            // No request got through: the ledger holds the refused handshakes only, each with
            // its reason (one a request tried, six in all).
            // A refused handshake is recorded after the client saw the refusal.
            let lines = s.ledger_lines(6);
            let ledger = fs::read_to_string(s.ledger()).unwrap_or_default();
            assert_eq!(lines.len(), 6, "{ledger}");
            for line in &lines {
                assert_eq!(line["status"], 0, "{line}");
                assert_eq!(line["path"], "-", "{line}");
                assert!(line.get("mac").is_none(), "{line}");
            }
            for reason in ["peer sent no certificates", "UnknownIssuer"] {
                assert!(ledger.contains(reason), "{reason}: {ledger}");
            }
        }
    }
}

#[test]
fn hidden_files_are_never_served() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 1);
        write(s.tree.path(), ".polyseal/state.toml", b"internal");
        let client = s.phone_client(0);
        assert_eq!(status(&s, &client, ".polyseal/state.toml"), 404);
    }
}

#[test]
fn plain_http_serves_no_file() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let key_file = format!("{}-key.cfg", s.tree.phones[0].mac);
        let answer = plain_http_get(s.addr(), &key_file);
        // nginx answers 400; polyseal serve closes a connection that does not speak TLS.
        match backend {
            Backend::Nginx => assert!(answer.starts_with("HTTP/1.1 400"), "{answer}"),
            Backend::Serve => assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}"),
        }
        assert!(!answer.contains("configEncryption"), "{answer}");
    }
}

#[test]
fn uploads_go_to_the_phones_own_names_only() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 2);
        let (a, b) = (&s.tree.phones[0].mac, &s.tree.phones[1].mac);
        let client = s.phone_client(0);
        let put = |path: &str, body: &[u8]| match client.put(path, body) {
            Ok(response) => response.status,
            Err(e) => panic!("PUT {path}: {e}\n{}", s.log()),
        };

        for name in [
            format!("overrides/{a}-phone.cfg"),
            format!("contacts/{a}-directory.xml"),
            format!("logs/{a}-app.log"),
            format!("logs/{a}-boot.log"),
        ] {
            let body = format!("uploaded as {name}");
            assert_eq!(put(&name, body.as_bytes()), 201, "{name}\n{}", s.log());
            let stored = fs::read(s.tree.uploads.path().join(&name)).expect("the upload is stored");
            assert_eq!(stored, body.as_bytes());
            // The phone reads its upload back, from the uploads directory.
            let back = client.get(&name).expect("an answer");
            assert_eq!((back.status, back.body), (200, body.into_bytes()), "{name}");
        }
        // Overwriting is allowed: a phone uploads its overrides again and again.
        assert_eq!(put(&format!("overrides/{a}-phone.cfg"), b"again"), 204);

        for name in [
            format!("overrides/{b}-phone.cfg"),
            format!("contacts/{b}-directory.xml"),
            format!("{a}-key.cfg"),
            format!("{a}-sip.cfg"),
            format!("{a}-other.cfg"),
            "000000000000-directory.xml".to_owned(),
            "site.cfg".to_owned(),
        ] {
            assert_eq!(put(&name, b"<polycomConfig/>"), 403, "{name}");
            assert!(
                !s.tree.uploads.path().join(&name).exists(),
                "{name} was stored"
            );
        }
        let key_file = fs::read(s.tree.path().join(format!("{a}-key.cfg"))).expect("key file");
        assert!(String::from_utf8_lossy(&key_file).contains("configEncryption"));

        let too_big = vec![b'x'; usize::try_from(MAX_UPLOAD_BYTES).expect("fits") + 1];
        assert_eq!(put(&format!("logs/{a}-app.log"), &too_big), 413);
    }
}

#[test]
fn without_a_client_ca_any_client_gets_every_key_file() {
    let pki = Pki::new();
    let tree = Tree::publish(2);
    let mut config = pki.nginx_config(tree.path());
    config.client_ca = None;
    assert!(
        config
            .render()
            .expect("renders")
            .contains("WARNING: no --client-ca")
    );
    let nginx = Nginx::start(&config);
    let client = Client::new(&nginx.server(&pki), None);
    for phone in &tree.phones {
        let response = client
            .get(&format!("{}-key.cfg", phone.mac))
            .expect("an answer");
        assert_eq!(response.status, 200);
    }
}

#[test]
fn with_the_bundled_polycom_device_ca_nginx_starts_and_refuses_any_other_cas_phone() {
    let pki = Pki::new();
    let tree = Tree::publish(1);
    let bundle = tempfile::tempdir().expect("tempdir");
    let ca = bundle
        .path()
        .join(polyseal_delivery::POLYCOM_DEVICE_CA_FILE);
    fs::write(&ca, polyseal_delivery::POLYCOM_DEVICE_CA_PEM).expect("bundle");
    let mut config = pki.nginx_config(tree.path());
    config.client_ca = Some(ca);
    let nginx = Nginx::start(&config);
    // The test PKI's phone certificate does not chain to Polycom's CA: refused after the
    // handshake (400), or in it (no answer).
    let phone = pki.client_cert(&tree.phones[0].mac);
    let client = Client::new(&nginx.server(&pki), Some(&phone));
    if let Ok(response) = client.get(&format!("{}-key.cfg", tree.phones[0].mac)) {
        assert_eq!(response.status, 400);
    }
    assert!(
        nginx
            .error_log()
            .contains("client SSL certificate verify error"),
        "{}",
        nginx.error_log()
    );
}
