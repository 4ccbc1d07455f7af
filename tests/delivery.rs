//! Issue 6's five scenarios end to end, each under both key timings: the real `polyseal`
//! binary publishes, rotates and audits a tree; a real nginx on 127.0.0.1 serves it with the
//! configuration the real `polyseal nginx-config` prints (client certificates of the test
//! device CA, uploads); simulated Polycom phones (`polyseal-testbed`) boot from it.
//! docs/DELIVERY.md ("End-to-end scenarios") lists what each test proves.
//!
//! nginx and `age-keygen` are required: a missing one fails the tests, never skips them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests: a panic is the failure report.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;

use polyseal_crypto::{KeyString, Mac, inspect};
use polyseal_testbed::{
    BootEnd, BootReport, Client, Got, KeyTiming, Nginx, Phone, Pki, RebootCause, Running, Server,
    plain_http_get, sip_config,
};
use serde_json::Value;

use crate::support::Workspace;

/// The source master: the key file first, then the phone's own file, then the shared one;
/// uploads go to `overrides/`, the directory comes from `contacts/`.
const MASTER: &str = r#"<?xml version="1.0" standalone="yes"?>
<APPLICATION APP_FILE_PATH="sip.ld"
             CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"
             CONTACTS_DIRECTORY="contacts" OVERRIDES_DIRECTORY="overrides"
             LOG_FILE_DIRECTORY="logs"/>
"#;

/// The shared file: no secret, a display name each phone's own file overrides, and encrypted
/// uploads (the evidence `rotate confirm` reads).
const SITE: &str = r#"<?xml version="1.0" standalone="yes"?>
<polycomConfig>
  <reg reg.1.displayName="site default" reg.1.server.1.address="pbx.example.com"/>
  <sec sec.encryption.upload.overrides="1"/>
</polycomConfig>
"#;

/// An override file a phone uploads after a setting is changed on it.
const OVERRIDE: &[u8] =
    br#"<polycomConfig><reg reg.1.displayName="Set on the phone"/></polycomConfig>"#;

/// A phone's SIP password in its own file: unique, and long enough that `audit` does not call
/// it weak.
fn password(mac: &Mac) -> String {
    format!("Sip-{mac}-Pw")
}

/// A phone's display name in its own file (it wins over `site.cfg`'s, listed after it).
fn display_name(mac: &Mac) -> String {
    format!("Desk {mac}")
}

/// A fleet's source tree published by `polyseal publish` into `out/`, served by a private
/// nginx configured by `polyseal nginx-config`, with phones' uploads in `uploads/`.
struct Fleet {
    // Declared first so that nginx stops before its directories are removed.
    nginx: Running,
    server: Server,
    pki: Pki,
    ws: Workspace,
    macs: Vec<Mac>,
}

impl Fleet {
    /// `count` phones `0004f2e60001`, `0004f2e60002`…, no key yet: `publish` makes them. The
    /// vault's key timing is the phones' firmware's, as `polyseal key-timing` sets it.
    fn published(count: u16, timing: KeyTiming) -> Fleet {
        let ws = Workspace::with_vault();
        if timing == KeyTiming::NextBoot {
            run_ok(&ws, &["key-timing", "next-boot"]);
        }
        let macs: Vec<Mac> = (1..=count)
            .map(|n| Mac::parse(&format!("0004f2e6{n:04x}")).unwrap())
            .collect();
        let src = ws.path("src");
        // The workspace comes with the example tree; this fleet has its own.
        fs::remove_dir_all(&src).unwrap();
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("000000000000.cfg"), MASTER).unwrap();
        fs::write(src.join("site.cfg"), SITE).unwrap();
        for mac in &macs {
            let sip = sip_config(mac, &password(mac), &display_name(mac));
            fs::write(src.join(format!("{mac}-sip.cfg")), sip).unwrap();
        }
        fs::create_dir(ws.path("uploads")).unwrap();
        run_ok(&ws, &["publish", "--src", "src", "--out", "out"]);

        let pki = Pki::new();
        let nginx = Nginx::new().serve_rendered(|addr| nginx_config(&ws, &pki, addr));
        let server = nginx.server(&pki);
        Fleet {
            nginx,
            server,
            pki,
            ws,
            macs,
        }
    }

    /// Runs `polyseal args…` in the workspace and returns its standard output; fails the
    /// test with standard error unless it succeeds.
    fn polyseal(&self, args: &[&str]) -> String {
        run_ok(&self.ws, args)
    }

    /// `polyseal rotate start|finish MAC…|--all --src src --out out`.
    fn rotate(&self, step: &str, macs: Option<&[Mac]>) {
        let named: Vec<String> = macs
            .unwrap_or_default()
            .iter()
            .map(Mac::to_string)
            .collect();
        let mut args = vec!["rotate", step];
        if macs.is_none() {
            args.push("--all");
        }
        args.extend(named.iter().map(String::as_str));
        args.extend(["--src", "src", "--out", "out"]);
        if step == "start" {
            // As docs/ROTATION.md says: phones read back what they uploaded under the old key.
            args.extend(["--uploads", "uploads"]);
        }
        self.polyseal(&args);
    }

    /// The key of `mac`'s `generation` from the vault, by `polyseal keys show --reveal`.
    fn vault_key(&self, mac: &Mac, generation: u32) -> KeyString {
        let shown = self.polyseal(&[
            "keys",
            "show",
            &mac.to_string(),
            "--reveal",
            "--generation",
            &generation.to_string(),
        ]);
        KeyString::parse(&shown).unwrap()
    }

    /// Each key generation's state, by `polyseal keys list --format json`: (mac, gen) → state.
    fn key_states(&self) -> BTreeMap<(String, u64), String> {
        let list: Value =
            serde_json::from_str(&self.polyseal(&["keys", "list", "--format", "json"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let mac = row["mac"].as_str().unwrap().to_owned();
                let generation = row["generation"].as_u64().unwrap();
                ((mac, generation), row["state"].as_str().unwrap().to_owned())
            })
            .collect()
    }

    /// Each phone's row of `polyseal rotate status --format json`, by MAC.
    fn rotate_status(&self) -> BTreeMap<String, Value> {
        let rows: Value =
            serde_json::from_str(&self.polyseal(&["rotate", "status", "--format", "json"]))
                .unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|row| (row["mac"].as_str().unwrap().to_owned(), row.clone()))
            .collect()
    }

    /// Phone `index`, factory-fresh, presenting its own certificate.
    fn phone(&self, index: usize, timing: KeyTiming) -> Phone {
        let mac = self.macs[index];
        Phone::new(mac, self.pki.client_cert(&mac), timing)
    }

    /// Boots `phone` until it runs; fails the test (with the report and nginx's log) if it
    /// does not, which is also how a reboot loop shows.
    fn boot(&self, phone: &mut Phone) -> BootReport {
        let report = phone.boot(&self.server);
        assert!(
            report.is_running(),
            "{} did not come up: {report:#?}\n{}",
            phone.mac(),
            self.nginx.error_log()
        );
        report
    }

    /// The phone uploads its override file, encrypted with the key it holds.
    fn upload_override(&self, phone: &Phone) {
        let response = phone
            .upload_override(&self.server, OVERRIDE)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.nginx.error_log()));
        assert!(
            matches!(response.status, 201 | 204),
            "{}: {response:?}",
            phone.mac()
        );
    }

    /// The uploaded override of `mac`, as stored by nginx.
    fn uploaded_override(&self, mac: &Mac) -> PathBuf {
        self.ws.path(&format!("uploads/overrides/{mac}-phone.cfg"))
    }
}

/// Runs `polyseal args…` in `ws`, failing the test with its standard error unless it succeeds.
fn run_ok(ws: &Workspace, args: &[&str]) -> String {
    let output = ws.polyseal().args(args).output().unwrap();
    assert!(
        output.status.success(),
        "polyseal {}: {:?}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// What `polyseal nginx-config` prints for the fleet's tree, the PKI's files and `addr`.
fn nginx_config(ws: &Workspace, pki: &Pki, addr: SocketAddr) -> String {
    let path = |p: PathBuf| p.to_str().unwrap().to_owned();
    run_ok(
        ws,
        &[
            "nginx-config",
            "--tree",
            &path(ws.path("out")),
            "--cert",
            &path(pki.server_cert_path()),
            "--key",
            &path(pki.server_key_path()),
            "--client-ca",
            &path(pki.device_ca_path()),
            "--uploads",
            &path(ws.path("uploads")),
            "--listen",
            &addr.to_string(),
        ],
    )
}

/// The files a boot could not decrypt, across every boot of `report`.
fn undecryptable(report: &BootReport) -> Vec<&str> {
    report
        .boots
        .iter()
        .filter_map(|boot| match &boot.end {
            BootEnd::Rebooted(RebootCause::CannotDecrypt { path, .. }) => Some(path.as_str()),
            _ => None,
        })
        .collect()
}

/// Asserts how a phone took a key it did not hold (a first bootstrap, a factory reset, a
/// rotation's switch): its key file is read in the first boot. `Immediate` uses the key for the
/// next file, so nothing is undecryptable and there is no reboot. `NextBoot` still holds the old
/// key (or none) when its own `-sip.cfg`, under the new key, comes next: exactly that one file
/// is undecryptable, one reboot, and the next boot runs.
fn assert_took_key(report: &BootReport, timing: KeyTiming, key: &KeyString) {
    // The KeyDesc template is polyseal's default, `{mac}-g{generation}`.
    let mac = &key.key_desc().as_str()[..12];
    assert_eq!(
        report.boots[0].key_read.as_ref(),
        Some(key.key_desc()),
        "{timing:?}: {report:#?}"
    );
    let expected: &[String] = match timing {
        KeyTiming::Immediate => &[],
        KeyTiming::NextBoot => &[format!("{mac}-sip.cfg")],
    };
    assert_eq!(undecryptable(report), expected, "{timing:?}: {report:#?}");
    assert_eq!(report.reboots(), expected.len(), "{timing:?}: {report:#?}");
}

/// Boots a phone whose rotation has started (or that lost its key mid-rotation) until it
/// holds the rotation's `key`. The tree serves it so that no file fails it under the fleet's
/// key timing: under `Immediate` its files are under the new key, which it uses at once; under
/// `NextBoot` they are in plaintext while it still uses the old key (or none), and it restarts
/// to apply the new one (the one reboot a next-boot firmware takes for any new key).
fn boot_onto_new_key(
    fleet: &Fleet,
    phone: &mut Phone,
    timing: KeyTiming,
    key: &KeyString,
) -> BootReport {
    let report = fleet.boot(phone);
    let first = &report.boots[0];
    assert_eq!(
        first.key_read.as_ref(),
        Some(key.key_desc()),
        "{timing:?}: {report:#?}"
    );
    assert!(undecryptable(&report).is_empty(), "{timing:?}: {report:#?}");
    match timing {
        KeyTiming::Immediate => assert_eq!(report.reboots(), 0, "{report:#?}"),
        KeyTiming::NextBoot => {
            let sip = format!("{}-sip.cfg", phone.mac());
            let fetched = first.fetched.iter().find(|f| f.path == sip).unwrap();
            assert_eq!(fetched.got, Got::Plaintext, "{report:#?}");
            assert_eq!(
                first.end,
                BootEnd::Rebooted(RebootCause::NewKey(key.key_desc().clone())),
                "{report:#?}"
            );
            assert_eq!(report.reboots(), 1, "{report:#?}");
        }
    }
    assert_eq!(phone.key(), Some(key), "{timing:?}");
    report
}

/// The phone holds exactly `key` (nothing pending) and runs with the values of its own
/// encrypted file, its display name `display` (its file's, or one set on the phone).
fn assert_provisioned(phone: &Phone, key: &KeyString, display: &str) {
    let mac = phone.mac();
    assert_eq!(phone.key(), Some(key), "{mac}");
    assert_eq!(phone.pending_key(), None, "{mac}");
    assert_eq!(
        phone.param("reg.1.auth.password"),
        Some(password(mac).as_str()),
        "{mac}"
    );
    assert_eq!(phone.param("reg.1.displayName"), Some(display), "{mac}");
    assert_eq!(
        phone.param("reg.1.server.1.address"),
        Some("pbx.example.com"),
        "{mac}: site.cfg"
    );
}

/// Boots every phone of `fleet` from factory-fresh to running on generation 1.
fn provision(fleet: &Fleet, timing: KeyTiming) -> Vec<Phone> {
    (0..fleet.macs.len())
        .map(|index| {
            let mut phone = fleet.phone(index, timing);
            let report = fleet.boot(&mut phone);
            let key = fleet.vault_key(phone.mac(), 1);
            assert_eq!(key.key_desc().as_str(), format!("{}-g1", phone.mac()));
            assert_took_key(&report, timing, &key);
            assert_provisioned(&phone, &key, &display_name(phone.mac()));
            phone
        })
        .collect()
}

/// Scenario 1.
#[test]
fn a_fresh_fleet_of_20_goes_from_no_key_to_its_own_keys_and_values() {
    for timing in KeyTiming::ALL {
        let fleet = Fleet::published(20, timing);
        let phones = provision(&fleet, timing);
        for mut phone in phones {
            let mac = *phone.mac();
            let report = fleet.boot(&mut phone);
            // The last boot read the phone's own file, decrypted with its own key.
            let last = report.boots.last().unwrap();
            let sip = last
                .fetched
                .iter()
                .find(|f| f.path == format!("{mac}-sip.cfg"))
                .unwrap();
            let key = fleet.vault_key(&mac, 1);
            assert_eq!(sip.got, Got::Decrypted(Some(key.key_desc().clone())));
            // Once provisioned, a boot costs no reboot under either timing.
            assert_eq!(report.reboots(), 0, "{timing:?} {mac}: {report:#?}");
            assert_provisioned(&phone, &key, &display_name(&mac));
        }
    }
}

/// Scenario 2.
#[test]
fn only_phone_x_gets_xs_files_from_the_tree_and_config_the_cli_made() {
    for timing in KeyTiming::ALL {
        let fleet = Fleet::published(2, timing);
        let (a, b) = (fleet.macs[0], fleet.macs[1]);
        let mut phones = provision(&fleet, timing);
        // B's override is on the server, so a refusal of it is a 403, not a 404.
        fleet.upload_override(&phones[1]);
        let phone_a = &mut phones[0];

        // A's certificate: 403 for every file of B's.
        let client_a = Client::new(&fleet.server, Some(&fleet.pki.client_cert(&a)));
        for path in [
            format!("{b}-key.cfg"),
            format!("{b}-sip.cfg"),
            format!("overrides/{b}-phone.cfg"),
        ] {
            assert_eq!(client_a.get(&path).unwrap().status, 403, "{path}");
        }
        // A phone presenting A's certificate as B gets none of B's files: no key, no password.
        let mut impostor = Phone::new(b, fleet.pki.client_cert(&a), timing);
        let report = impostor.boot(&fleet.server);
        assert_eq!(impostor.key(), None, "{report:#?}");
        assert_eq!(impostor.param("reg.1.auth.password"), None);
        for fetch in report.boots.iter().flat_map(|boot| &boot.fetched) {
            if fetch.path.contains(&b.to_string()) {
                assert_eq!(fetch.got, Got::Status(403), "{fetch:?}");
            }
        }

        // No certificate, or one from another CA: nothing at all, not even the master.
        for mut refused in [
            Phone::without_certificate(a, timing),
            Phone::new(a, fleet.pki.foreign_client_cert(&a), timing),
        ] {
            let report = refused.boot(&fleet.server);
            assert!(
                matches!(report.end(), BootEnd::NoMaster | BootEnd::Unreachable(_)),
                "{report:#?}"
            );
            assert!(refused.key().is_none() && refused.applied().is_empty());
        }
        // Plain HTTP on the TLS port: nginx's 400, no file.
        let answer = plain_http_get(fleet.nginx.addr(), &format!("{a}-key.cfg"));
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(!answer.contains("configEncryption"), "{answer}");

        // And A itself still boots with its own key.
        assert_eq!(fleet.boot(phone_a).reboots(), 0);
    }
}

/// Scenario 3.
#[test]
fn the_whole_fleet_rotates_on_evidence_without_a_reboot_loop() {
    for timing in KeyTiming::ALL {
        let fleet = Fleet::published(20, timing);
        let mut phones = provision(&fleet, timing);

        fleet.rotate("start", None);
        // The audit passes --strict mid-rotation. On a next-boot fleet it reports each phone's
        // -sip.cfg served in plaintext, owner-only, as expected while the phone changes keys.
        let audit: Value = serde_json::from_str(
            &fleet.polyseal(&["audit", "--tree", "out", "--strict", "--format", "json"]),
        )
        .unwrap();
        let codes: Vec<&str> = audit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        let expected = match timing {
            KeyTiming::Immediate => 0,
            KeyTiming::NextBoot => fleet.macs.len(),
        };
        assert_eq!(
            codes,
            vec!["plaintext-during-key-change"; expected],
            "{audit:#}"
        );
        for mac in &fleet.macs {
            let sip = fs::metadata(fleet.ws.path(&format!("out/{mac}-sip.cfg"))).unwrap();
            let mode = std::os::unix::fs::PermissionsExt::mode(&sip.permissions()) & 0o777;
            let wanted = if expected == 0 { 0o644 } else { 0o600 };
            assert_eq!(mode, wanted, "{timing:?} {mac}");
        }
        let step = fleet.rotate_status()[&fleet.macs[0].to_string()]["step"].to_string();
        assert_eq!(
            step.contains("plaintext until it is confirmed"),
            timing == KeyTiming::NextBoot,
            "{step}"
        );
        // Every boot from here to the end of the rotation, per phone.
        let mut rotation_boots: Vec<Vec<BootReport>> = vec![Vec::new(); phones.len()];
        for (phone, boots) in phones.iter_mut().zip(&mut rotation_boots) {
            let g2 = fleet.vault_key(phone.mac(), 2);
            assert_eq!(g2.key_desc().as_str(), format!("{}-g2", phone.mac()));
            boots.push(boot_onto_new_key(&fleet, phone, timing, &g2));
            assert_provisioned(phone, &g2, &display_name(phone.mac()));
            // The phone's upload is sealed with the key it holds: the evidence.
            fleet.upload_override(phone);
            let upload = fs::read(fleet.uploaded_override(phone.mac())).unwrap();
            assert_eq!(inspect(&upload).unwrap().key_desc(), Some(g2.key_desc()));
        }

        fleet.polyseal(&["rotate", "confirm", "--uploads", "uploads"]);
        let status = fleet.rotate_status();
        for mac in &fleet.macs {
            let row = &status[&mac.to_string()];
            assert_eq!(row["active"], 1, "{row}");
            assert_eq!(row["next"], 2, "{row}");
            assert!(row["step"].as_str().unwrap().contains("confirmed"), "{row}");
            assert_eq!(
                row["evidence"],
                format!("upload overrides/{mac}-phone.cfg"),
                "{row}"
            );
        }
        // Confirmed but not finished: still served g2, still no reboot.
        for (phone, boots) in phones.iter_mut().zip(&mut rotation_boots) {
            boots.push(fleet.boot(phone));
        }

        fleet.rotate("finish", None);
        let states = fleet.key_states();
        assert_eq!(states.len(), 2 * fleet.macs.len(), "{states:?}");
        for (phone, boots) in phones.iter_mut().zip(&mut rotation_boots) {
            let mac = phone.mac().to_string();
            assert_eq!(states[&(mac.clone(), 1)], "deactivated", "{mac}");
            assert_eq!(states[&(mac.clone(), 2)], "active", "{mac}");
            let report = fleet.boot(phone);
            let g2 = fleet.vault_key(phone.mac(), 2);
            assert_provisioned(phone, &g2, "Set on the phone");
            boots.push(report);
        }
        assert_eq!(
            fleet.rotate_status()[&fleet.macs[0].to_string()]["next"],
            Value::Null
        );

        // No phone was ever served a file it could not decrypt, under either timing; the only
        // reboot is the one a next-boot firmware takes to apply a new key.
        for (mac, boots) in fleet.macs.iter().zip(&rotation_boots) {
            let failed: Vec<&str> = boots.iter().flat_map(undecryptable).collect();
            assert!(failed.is_empty(), "{timing:?} {mac}: {boots:#?}");
            let reboots: usize = boots.iter().map(BootReport::reboots).sum();
            let expected = usize::from(timing == KeyTiming::NextBoot);
            assert_eq!(reboots, expected, "{timing:?} {mac}");
        }
    }
}

/// Scenario 4.
#[test]
fn a_factory_reset_phone_is_bootstrapped_again_steady_and_mid_rotation() {
    for timing in KeyTiming::ALL {
        let fleet = Fleet::published(3, timing);
        let mut phones = provision(&fleet, timing);
        let g1 = fleet.vault_key(&fleet.macs[0], 1);

        // Steady state: phone 0 has its override on the server when it loses its key.
        fleet.upload_override(&phones[0]);
        phones[0].factory_reset();
        let report = fleet.boot(&mut phones[0]);
        assert_took_key(&report, timing, &g1);
        assert_provisioned(&phones[0], &g1, "Set on the phone");

        // Mid-rotation (phones 1 and 2; phone 0 stays on g1): phone 1 is reset after it
        // took g2 and uploaded under it, phone 2 right after `start`, before booting on g2.
        let rotating = &fleet.macs[1..];
        fleet.rotate("start", Some(rotating));
        let g2 = [1, 2].map(|index| fleet.vault_key(&fleet.macs[index], 2));
        boot_onto_new_key(&fleet, &mut phones[1], timing, &g2[0]);
        fleet.upload_override(&phones[1]);
        for phone in &mut phones[1..] {
            phone.factory_reset();
        }
        // Phone 1 lost its key after uploading under g2. Under NextBoot, as in any first
        // bootstrap, the boot that brings the key cannot read what is under it: here only its
        // own override (its -sip.cfg is served in plaintext until it is confirmed).
        let report = fleet.boot(&mut phones[1]);
        let expected = match timing {
            KeyTiming::Immediate => vec![],
            KeyTiming::NextBoot => vec![format!("overrides/{}-phone.cfg", fleet.macs[1])],
        };
        assert_eq!(undecryptable(&report), expected, "{timing:?}: {report:#?}");
        assert_eq!(report.reboots(), expected.len(), "{timing:?}: {report:#?}");
        assert_eq!(phones[1].key(), Some(&g2[0]));
        // Phone 2 lost its key before taking g2: nothing on the server is under a key yet.
        boot_onto_new_key(&fleet, &mut phones[2], timing, &g2[1]);
        for phone in &phones[1..] {
            fleet.upload_override(phone);
        }
        assert_provisioned(&phones[1], &g2[0], "Set on the phone");

        fleet.polyseal(&["rotate", "confirm", "--uploads", "uploads"]);
        fleet.rotate("finish", None);
        let states = fleet.key_states();
        for (phone, g2) in phones[1..].iter_mut().zip(&g2) {
            assert_eq!(states[&(phone.mac().to_string(), 2)], "active");
            let report = fleet.boot(phone);
            assert_eq!(report.reboots(), 0, "{timing:?}: {report:#?}");
            assert_provisioned(phone, g2, "Set on the phone");
        }
        // The phone left out of the rotation is untouched.
        assert_eq!(states[&(fleet.macs[0].to_string(), 1)], "active");
        assert_eq!(fleet.boot(&mut phones[0]).reboots(), 0);
        assert_provisioned(&phones[0], &g1, "Set on the phone");
    }
}

/// Scenario 5.
#[test]
fn audit_catches_a_file_reencrypted_under_another_phones_key_before_any_phone_boots() {
    for timing in KeyTiming::ALL {
        let fleet = Fleet::published(2, timing);
        let (a, b) = (fleet.macs[0].to_string(), fleet.macs[1].to_string());
        let file = format!("out/{a}-sip.cfg");
        // The operator error: A's file re-encrypted by hand with B's key, over the published one.
        fleet.polyseal(&[
            "encrypt",
            "--mac",
            &b,
            &format!("src/{a}-sip.cfg"),
            "-o",
            &file,
        ]);

        let audit = |expect: i32| -> Value {
            let output = fleet
                .ws
                .polyseal()
                .args(["audit", "--tree", "out", "--strict", "--format", "json"])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(expect), "{stderr}");
            serde_json::from_slice(&output.stdout).unwrap()
        };
        let report = audit(1);
        let findings = report["findings"].as_array().unwrap();
        assert_eq!(report["summary"]["findings"]["error"], 1, "{report:#}");
        assert_eq!(findings[0]["code"], "file-other-phones-key", "{report:#}");
        assert_eq!(findings[0]["mac"], a.as_str(), "{report:#}");
        assert_eq!(findings[0]["file"], file.as_str(), "{report:#}");

        // What the audit prevented: phone A would reboot on that file again and again.
        let mut phone = fleet.phone(0, timing).with_max_boots(3);
        let looping = phone.boot(&fleet.server);
        assert_eq!(looping.reboots(), 3, "{timing:?}: {looping:#?}");
        assert_eq!(undecryptable(&looping), vec![format!("{a}-sip.cfg"); 3]);

        // Republishing repairs the tree; the audit passes and the phone comes up.
        fleet.polyseal(&["publish", "--src", "src", "--out", "out"]);
        assert_eq!(audit(0)["summary"]["findings"]["error"], 0);
        let report = fleet.boot(&mut phone);
        assert_eq!(report.reboots(), 0, "{timing:?}: {report:#?}");
        assert_provisioned(
            &phone,
            &fleet.vault_key(phone.mac(), 1),
            &display_name(phone.mac()),
        );
    }
}

/// Regression: a phone that uploaded its override under g1 before `rotate start` was switched
/// to g2, read that upload back at boot, could not decrypt it, and rebooted again and again under
/// either timing, never uploading the evidence. `rotate start --uploads` now re-encrypts it
/// (or, on a next-boot fleet, decrypts it).
#[test]
fn an_override_uploaded_before_start_is_resealed_so_the_phone_never_loops() {
    for timing in KeyTiming::ALL {
        let fleet = Fleet::published(1, timing);
        let mut phones = provision(&fleet, timing);
        let phone = &mut phones[0];
        let mac = *phone.mac();
        fleet.upload_override(phone);
        fleet.rotate("start", None);

        // Nothing fails, the override included: re-encrypted under g2 (Immediate), or
        // decrypted (NextBoot: the phone reads it back under g1, then under g2).
        boot_onto_new_key(&fleet, phone, timing, &fleet.vault_key(&mac, 2));
        // Its override, uploaded under g1, was read back and wins.
        assert_provisioned(phone, &fleet.vault_key(&mac, 2), "Set on the phone");
        fleet.upload_override(phone);
        fleet.polyseal(&["rotate", "confirm", "--uploads", "uploads"]);
        assert_eq!(
            fleet.rotate_status()[&mac.to_string()]["evidence"],
            format!("upload overrides/{mac}-phone.cfg")
        );
    }
}

/// The same fleet served by `polyseal serve` (with uploads and a ledger) instead of nginx.
fn serve_fleet(fleet: &Fleet) -> (polyseal_testbed::Serve, Server) {
    let options = polyseal_testbed::ServeOptions {
        uploads: Some(fleet.ws.path("uploads")),
        ledger: Some(fleet.ws.path("ledger.jsonl")),
        ..polyseal_testbed::ServeOptions::default()
    };
    let serve = polyseal_testbed::Serve::start(
        crate::support::polyseal_bin(),
        &fleet.ws.path("out"),
        &fleet.pki,
        &options,
    );
    let server = serve.server(&fleet.pki);
    (serve, server)
}

#[test]
fn the_ledger_confirms_an_upload_a_phone_made_and_a_planted_one_proves_nothing() {
    let fleet = Fleet::published(2, KeyTiming::Immediate);
    let (_serve, server) = serve_fleet(&fleet);
    let mut phones: Vec<Phone> = (0..2)
        .map(|i| fleet.phone(i, KeyTiming::Immediate))
        .collect();
    for phone in &mut phones {
        assert!(phone.boot(&server).is_running());
    }
    fleet.rotate("start", None);
    for phone in &mut phones {
        assert!(phone.boot(&server).is_running());
    }
    // Phone 0 uploads its override under its new key, over its own certificate.
    let response = phones[0]
        .upload_override(&server, OVERRIDE)
        .expect("an answer");
    assert!(matches!(response.status, 201 | 204), "{response:?}");
    // Phone 1's "upload" is planted in the directory by someone else: sealed under the right
    // new key (an operator's copy), but the server never received it from phone 1.
    let (a, b) = (fleet.macs[0], fleet.macs[1]);
    let key = fleet.vault_key(&b, 2);
    let planted = polyseal_crypto::encrypt(OVERRIDE, &key).expect("encrypt");
    fs::create_dir_all(fleet.ws.path("uploads/overrides")).expect("dir");
    fs::write(
        fleet.ws.path(&format!("uploads/overrides/{b}-phone.cfg")),
        planted,
    )
    .expect("plant");

    let out = fleet
        .ws
        .polyseal()
        .args([
            "rotate",
            "confirm",
            "--all",
            "--uploads",
            "uploads",
            "--ledger",
            "ledger.jsonl",
        ])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("confirmed 1 phone"), "{stderr}");
    assert!(
        stderr.contains(&format!("{b}-phone.cfg: not in the ledger")),
        "{stderr}"
    );
    let status = fleet.rotate_status();
    assert!(
        status[&a.to_string()]["evidence"].as_str().is_some(),
        "{:#}",
        status[&a.to_string()]
    );
    assert!(
        status[&b.to_string()]["evidence"].is_null(),
        "{:#}",
        status[&b.to_string()]
    );
    // rotate status --ledger shows the ledger's view beside the vault's.
    let shown: Value = serde_json::from_str(&fleet.polyseal(&[
        "rotate",
        "status",
        "--format",
        "json",
        "--ledger",
        "ledger.jsonl",
    ]))
    .expect("JSON");
    let row = shown
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["mac"] == a.to_string())
        .expect("phone a");
    assert_eq!(row["ledger"]["served_generation"], 2, "{row:#}");
    assert_eq!(row["ledger"]["upload_generation"], 2, "{row:#}");
    assert_eq!(row["ledger"]["health"], "ok", "{row:#}");
}
