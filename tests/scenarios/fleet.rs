//! Scenarios 1 (in miniature) and 4 of issue 6 under both key-timing variants, and the phone
//! simulator's reboot rules, against a real nginx on 127.0.0.1 and `polyseal serve` (the same
//! scenarios for both) serving a tree made by hand.

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, inspect};
use polyseal_testbed::{BootEnd, BootReport, Got, KeyTiming, Phone, RebootCause};

use crate::support::tree::{BACKENDS, Setup, TreePhone, republish, sealed, write};

/// Reboots a factory-fresh phone makes on the way to running: [`KeyTiming::Immediate`] reads
/// its `-sip.cfg` with the key it got two files earlier; [`KeyTiming::NextBoot`] cannot, and
/// reboots once to use the key.
fn fresh_reboots(timing: KeyTiming) -> usize {
    match timing {
        KeyTiming::Immediate => 0,
        KeyTiming::NextBoot => 1,
    }
}

/// The tree's phone `index`, factory-fresh, with its certificate.
fn fresh_phone(s: &Setup, index: usize, timing: KeyTiming) -> Phone {
    let mac = s.tree.phones[index].mac;
    Phone::new(mac, s.pki.client_cert(&mac), timing)
}

/// Boots `phone`, failing the test with the report and nginx's log unless it comes up.
fn boot(s: &Setup, phone: &mut Phone) -> BootReport {
    let report = phone.boot(&s.server);
    assert!(
        report.is_running(),
        "{} did not come up: {report:#?}\n{}",
        phone.mac(),
        s.log()
    );
    report
}
/// The phone holds its own key and runs with the values of its encrypted file.
fn assert_provisioned(phone: &Phone, expected: &TreePhone) {
    assert_eq!(phone.key(), Some(&expected.key), "{}", phone.mac());
    assert_eq!(phone.pending_key(), None);
    assert_eq!(
        phone.param("reg.1.auth.password"),
        Some(expected.password.as_str())
    );
    // The per-phone file comes before site.cfg, so its value wins.
    assert_eq!(
        phone.param("reg.1.displayName"),
        Some(expected.display_name.as_str())
    );
    assert_eq!(
        phone.param("reg.1.server.1.address"),
        Some("pbx.example.com")
    );
}

#[test]
fn a_fresh_fleet_is_provisioned_under_both_timings() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 4);
        for timing in KeyTiming::ALL {
            for (index, expected) in s.tree.phones.iter().enumerate() {
                let mut phone = fresh_phone(&s, index, timing);
                let report = boot(&s, &mut phone);
                assert_provisioned(&phone, expected);
                assert_eq!(
                    report.reboots(),
                    fresh_reboots(timing),
                    "{timing:?}: {report:#?}"
                );
                let mac = expected.mac;
                assert_eq!(
                    report.fetched(),
                    [
                        format!("{mac}.cfg"),
                        "000000000000.cfg".to_owned(),
                        format!("{mac}-key.cfg"),
                        format!("{mac}-sip.cfg"),
                        "site.cfg".to_owned(),
                        format!("contacts/{mac}-directory.xml"),
                        format!("overrides/{mac}-phone.cfg"),
                    ]
                );
                let last = report.boots.last().expect("a boot");
                assert_eq!(last.fetched[0].got, Got::Status(404), "no <mac>.cfg master");
                assert_eq!(
                    last.fetched[3].got,
                    Got::Decrypted(Some(expected.key.key_desc().clone()))
                );
                assert_eq!(last.key_read.as_ref(), Some(expected.key.key_desc()));

                // Booting again changes nothing and costs no reboot.
                let again = boot(&s, &mut phone);
                assert_eq!(again.reboots(), 0, "{timing:?}: {again:#?}");
                assert_provisioned(&phone, expected);
            }
        }
    }
}

#[test]
fn the_uploaded_override_shows_the_key_and_is_read_back() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 1);
        let expected = &s.tree.phones[0];
        for timing in KeyTiming::ALL {
            let mut phone = fresh_phone(&s, 0, timing);
            boot(&s, &mut phone);
            let override_file =
                br#"<polycomConfig><reg reg.1.displayName="Set on the phone"/></polycomConfig>"#;
            let response = phone
                .upload_override(&s.server, override_file)
                .expect("an answer");
            assert!(matches!(response.status, 201 | 204), "{response:?}");

            // site.cfg asks for encrypted uploads: the header names the key the phone holds.
            let stored = std::fs::read(
                s.tree
                    .uploads
                    .path()
                    .join(format!("overrides/{}-phone.cfg", expected.mac)),
            )
            .expect("the upload is stored");
            let header = inspect(&stored).expect("an encrypted upload");
            assert_eq!(header.key_desc(), Some(expected.key.key_desc()));

            // The next boot reads it back, and a setting made on the phone wins.
            let report = boot(&s, &mut phone);
            assert_eq!(report.reboots(), 0);
            assert_eq!(phone.param("reg.1.displayName"), Some("Set on the phone"));
            assert_eq!(
                phone.param("reg.1.auth.password"),
                Some(expected.password.as_str())
            );
        }
    }
}

#[test]
fn a_factory_reset_phone_is_bootstrapped_again() {
    let s = Setup::new(2);
    for timing in KeyTiming::ALL {
        let expected = &s.tree.phones[1];
        let mut phone = fresh_phone(&s, 1, timing);
        boot(&s, &mut phone);
        // Its override is on the server, encrypted with its key, when it loses that key.
        let override_file = br#"<polycomConfig><reg reg.1.displayName="Mine"/></polycomConfig>"#;
        phone
            .upload_override(&s.server, override_file)
            .expect("an answer");

        phone.factory_reset();
        assert_eq!(phone.key(), None);
        assert!(phone.applied().is_empty());

        let report = boot(&s, &mut phone);
        assert_eq!(
            report.reboots(),
            fresh_reboots(timing),
            "{timing:?}: {report:#?}"
        );
        assert_eq!(phone.key(), Some(&expected.key));
        assert_eq!(
            phone.param("reg.1.auth.password"),
            Some(expected.password.as_str())
        );
        assert_eq!(phone.param("reg.1.displayName"), Some("Mine"));
    }
}

#[test]
fn a_file_no_key_opens_makes_the_phone_reboot_until_it_gives_up() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 1);
        let mac = s.tree.phones[0].mac;
        // An operator error: the phone's file sealed with a key it is never given.
        let stray = KeyString::new(KeyDesc::for_generation(&mac, 9), ConfigKey::generate());
        write(
            s.tree.path(),
            &format!("{mac}-sip.cfg"),
            &sealed(b"<polycomConfig/>", &stray),
        );
        for timing in KeyTiming::ALL {
            let mut phone = fresh_phone(&s, 0, timing).with_max_boots(4);
            let report = phone.boot(&s.server);
            assert_eq!(report.boots.len(), 4, "{timing:?}: {report:#?}");
            assert_eq!(report.reboots(), 4);
            let BootEnd::Rebooted(RebootCause::CannotDecrypt { path, .. }) = report.end() else {
                panic!("{timing:?}: {report:#?}");
            };
            assert_eq!(path, &format!("{mac}-sip.cfg"));
            // It still got its key from the bootstrap file, and applied nothing.
            assert_eq!(phone.key(), Some(&s.tree.phones[0].key));
            assert!(phone.applied().is_empty());
        }
    }
}

#[test]
fn a_key_change_file_moves_a_phone_to_the_next_key() {
    for backend in BACKENDS {
        let s = Setup::on(backend, 1);
        let TreePhone { mac, key: g1, .. } = &s.tree.phones[0];
        let g2 = KeyString::new(KeyDesc::for_generation(mac, 2), ConfigKey::generate());
        for timing in KeyTiming::ALL {
            let mut phone = fresh_phone(&s, 0, timing);
            boot(&s, &mut phone);
            assert_eq!(phone.key(), Some(g1));

            // The key-change file, with the rest still under g1, as `rotate start` leaves it.
            let key_file = format!("{mac}-key.cfg");
            write(
                s.tree.path(),
                &key_file,
                &polyseal_provision::key_change_file(&g2, g1, &polyseal_crypto::Layout::DEFAULT),
            );
            let report = phone.boot_once(&s.server);
            let first = &report.boots[0];
            assert_eq!(first.key_read.as_ref(), Some(g2.key_desc()));
            match timing {
                // The new key is in use at once: the next file, still under g1, cannot be read.
                KeyTiming::Immediate => {
                    assert_eq!(phone.key(), Some(&g2));
                    assert!(
                        matches!(
                            report.end(),
                            BootEnd::Rebooted(RebootCause::CannotDecrypt { path, .. }) if *path == format!("{mac}-sip.cfg")
                        ),
                        "{report:#?}"
                    );
                }
                // The boot finishes under g1, then the phone reboots to use g2.
                KeyTiming::NextBoot => {
                    assert_eq!(phone.key(), Some(g1));
                    assert_eq!(phone.pending_key(), Some(&g2));
                    assert_eq!(
                        report.end(),
                        &BootEnd::Rebooted(RebootCause::NewKey(g2.key_desc().clone()))
                    );
                }
            }
            // What `rotate finish` does: every file of the phone under g2, its key file a
            // bootstrap file of g2. From then on the phone runs on g2 without a reboot.
            let plain_sip =
                r#"<polycomConfig><reg reg.1.auth.password="rotated"/></polycomConfig>"#;
            write(
                s.tree.path(),
                &format!("{mac}-sip.cfg"),
                &sealed(plain_sip.as_bytes(), &g2),
            );
            write(
                s.tree.path(),
                &key_file,
                &polyseal_provision::bootstrap_file(&g2),
            );
            let directory = format!("contacts/{mac}-directory.xml");
            write(s.tree.path(), &directory, &sealed(b"<directory/>", &g2));
            let report = boot(&s, &mut phone);
            assert_eq!(report.reboots(), 0, "{timing:?}: {report:#?}");
            assert_eq!(phone.key(), Some(&g2));
            assert_eq!(phone.param("reg.1.auth.password"), Some("rotated"));

            // Back to generation 1 for the other timing.
            republish(s.tree.path(), &s.tree.phones[0]);
        }
    }
}

#[test]
fn a_phone_without_a_certificate_gets_nothing() {
    let s = Setup::new(1);
    let mut phone = Phone::without_certificate(s.tree.phones[0].mac, KeyTiming::Immediate);
    let report = phone.boot(&s.server);
    // nginx answers 400 to every request without a certificate: no master, no key.
    assert_eq!(report.end(), &BootEnd::NoMaster, "{report:#?}");
    assert_eq!(phone.key(), None);
}
