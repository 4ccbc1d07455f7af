//! `polyseal rollout` through `polyseal serve` (and nginx) with simulated fleets whose firmware
//! writes and reads one layout (docs/ROLLOUT.md): the layout is learned from a canary's upload,
//! waves go to 100 % only over phones that settled, and a wrong layout halts at the canary.

use std::path::PathBuf;

use polyseal_crypto::{Layout, Mac};
use polyseal_testbed::{
    BootEnd, BootReport, Got, KeyTiming, Nginx, Phone, Pki, RebootCause, Serve, ServeOptions,
    Server,
};

use crate::support::tree::{Backend, Provider};
use crate::support::{Workspace, assert_failure, polyseal_bin};

const DEFAULT: &str = "iv=prefix digest=sha256 padding=pkcs7 body=raw eol=lf";
const OTHER: &str = "iv=zero digest=sha1 padding=pkcs7 body=base64 eol=crlf";
/// `rollout start` with the example's first phone as the canary.
const START: [&str; 8] = [
    "rollout",
    "start",
    "--canary",
    "0004f2a10001",
    "--src",
    "src",
    "--out",
    "out",
];
/// `rollout learn` counting only the uploads the ledger received.
const LEARN_FROM_RECEIVED: [&str; 6] = [
    "rollout",
    "learn",
    "--uploads",
    "up",
    "--ledger",
    "ledger.jsonl",
];
const WRONG: &str = "iv=header digest=md5 padding=zero body=raw eol=crlf";

/// The example's fleet served by `polyseal serve` (or nginx) from `out/` after `rollout
/// start`, its phones running firmware that writes `firmware`.
struct Fleet {
    ws: Workspace,
    pki: Pki,
    provider: Provider,
    server: Server,
    phones: Vec<Phone>,
    /// Every boot report of every phone, to check nothing was ever undecryptable.
    reports: Vec<(Mac, BootReport)>,
    /// `--loop-boots` of every `rollout` command.
    loop_boots: &'static str,
}

impl Fleet {
    fn start(firmware: &str) -> Fleet {
        Fleet::on(Backend::Serve, firmware)
    }

    fn on(backend: Backend, firmware: &str) -> Fleet {
        let ws = Workspace::with_vault();
        let started = ws.output(&START);
        assert!(started.status.success(), "{started:?}");
        std::fs::create_dir(ws.path("up")).expect("uploads");
        let pki = Pki::new();
        let (provider, server) = match backend {
            Backend::Serve => {
                let options = ServeOptions {
                    uploads: Some(ws.path("up")),
                    ledger: Some(ws.path("ledger.jsonl")),
                    ..ServeOptions::default()
                };
                let serve = Serve::start(polyseal_bin(), &ws.path("out"), &pki, &options);
                let server = serve.server(&pki);
                (Provider::Serve(serve), server)
            }
            Backend::Nginx => {
                let mut config = pki.nginx_config(&ws.path("out"));
                config.uploads = Some(ws.path("up"));
                config.access_log = Some(ws.path("access.log"));
                let nginx = Nginx::start(&config);
                let server = nginx.server(&pki);
                (Provider::Nginx(nginx), server)
            }
        };
        let layout: Layout = firmware.parse().expect("a layout");
        let phones = crate::support::PHONES
            .iter()
            .map(|mac| {
                let mac: Mac = mac.parse().expect("mac");
                Phone::new(mac, pki.client_cert(&mac), KeyTiming::Immediate).with_layout(layout)
            })
            .collect();
        Fleet {
            ws,
            pki,
            provider,
            server,
            phones,
            reports: Vec::new(),
            loop_boots: "5",
        }
    }

    /// Boots phone `index` (a poll, or a restart) and returns whether it ended up running.
    fn boot(&mut self, index: usize) -> bool {
        let report = self.phones[index].boot(&self.server);
        let running = report.is_running();
        self.reports.push((*self.phones[index].mac(), report));
        running
    }

    /// One boot of phone `index`, even if it ends in a restart.
    fn boot_once(&mut self, index: usize) {
        let report = self.phones[index].boot_once(&self.server);
        self.reports.push((*self.phones[index].mac(), report));
    }

    /// The fleet with a loop rule for a test whose canary boots five times within seconds, on
    /// purpose.
    fn booting_often(mut self) -> Fleet {
        self.loop_boots = "8";
        self
    }

    /// `polyseal rollout ARGS` reading the server's record of requests (`--ledger
    /// ledger.jsonl`, or `--nginx-log access.log` with the tree nginx serves), with a loop
    /// rule that the test's phones, booting several times within seconds on purpose, meet only
    /// when they loop (the simulator gives up after 5 boots in a loop).
    fn rollout(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["rollout"];
        all.extend_from_slice(args);
        match self.provider {
            Provider::Serve(_) => all.extend_from_slice(&["--ledger", "ledger.jsonl"]),
            Provider::Nginx(_) => {
                all.extend_from_slice(&["--nginx-log", "access.log"]);
                if !args.contains(&"--out") {
                    all.extend_from_slice(&["--out", "out"]);
                }
            }
        }
        all.extend_from_slice(&["--loop-boots", self.loop_boots]);
        self.ws.output(&all)
    }

    /// `rollout advance --wave 50`, republishing; once it is done, the next second has begun
    /// (the gate counts only reads from the second after the tree was published).
    fn advance(&self) -> std::process::Output {
        self.advance_by(50)
    }

    fn advance_by(&self, percent: u8) -> std::process::Output {
        let percent = percent.to_string();
        let output = self.rollout(&[
            "advance", "--wave", &percent, "--src", "src", "--out", "out",
        ]);
        into_the_next_second();
        output
    }

    /// `polyseal publish` of the tree the fleet is served, then into the next second.
    fn publish(&self) {
        self.ws.run(&["publish", "--src", "src", "--out", "out"]);
        into_the_next_second();
    }

    /// The files polyseal encrypted that phone `index` was ever served (not its override
    /// file, which it encrypted itself).
    fn encrypted_files_served(&self, index: usize) -> usize {
        let mac = self.phones[index].mac();
        self.reports
            .iter()
            .filter(|(m, _)| m == mac)
            .flat_map(|(_, r)| &r.boots)
            .flat_map(|b| &b.fetched)
            .filter(|f| matches!(f.got, Got::Decrypted(_) | Got::Undecryptable(_)))
            .filter(|f| !f.path.ends_with("-phone.cfg"))
            .count()
    }

    /// The phones that were ever served a file they could not decrypt.
    fn undecryptable(&self) -> Vec<String> {
        self.reports
            .iter()
            .filter(|(_, r)| {
                r.boots
                    .iter()
                    .any(|b| matches!(b.end, BootEnd::Rebooted(RebootCause::CannotDecrypt { .. })))
            })
            .map(|(mac, _)| mac.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn status_json(&self) -> serde_json::Value {
        let output = self.rollout(&["status", "--format", "json"]);
        assert!(output.status.success(), "{output:?}");
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    fn layout_shown(&self) -> String {
        let output = self.ws.output(&["format", "show"]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// `fleet` once its canary showed the layout (`rollout learn`), was encrypted in wave 1 and
/// settled on it: read its files, then polled.
fn with_the_canary_settled(mut fleet: Fleet) -> Fleet {
    boot_on_plaintext_and_let_the_canary_upload(&mut fleet);
    fleet.ws.run(&["rollout", "learn", "--uploads", "up"]);
    assert!(fleet.advance().status.success());
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    fleet
}

/// Sleeps into the next second of the wall clock: ledger and vault times are whole seconds.
fn into_the_next_second() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    let rest = std::time::Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
    std::thread::sleep(rest + std::time::Duration::from_millis(20));
}

/// Boots every phone once after start: each reads its key and runs on plaintext files; the
/// canary uploads its override file, encrypted by its firmware.
fn boot_on_plaintext_and_let_the_canary_upload(fleet: &mut Fleet) {
    for index in 0..fleet.phones.len() {
        assert!(fleet.boot(index), "{:#?}", fleet.reports.last());
        assert_eq!(fleet.encrypted_files_served(index), 0);
        assert!(
            fleet.phones[index].key().is_some(),
            "the key file gave it its key"
        );
    }
    let uploaded = fleet.phones[0]
        .upload_override(&fleet.server, b"<PHONE_CONFIG up.backlight=\"3\"/>\n")
        .expect("upload");
    assert!(uploaded.status < 300, "{uploaded:?}");
}

#[test]
fn a_fleet_whose_firmware_writes_another_layout_is_learned_and_rolled_out_to_every_phone() {
    let mut fleet = Fleet::start(OTHER);
    // Before any phone showed the layout, nothing is encrypted: advancing is refused.
    let early = fleet.advance();
    assert_failure(&early, 3, "no layout is confirmed");
    boot_on_plaintext_and_let_the_canary_upload(&mut fleet);
    // Mid-rollout, plaintext per-phone files are expected (owner-only): info, not a problem.
    let audit = fleet.ws.output(&["audit", "--tree", "out", "--strict"]);
    assert!(audit.status.success(), "{audit:?}");
    assert!(String::from_utf8_lossy(&audit.stdout).contains("plaintext-during-rollout"));

    let learned = fleet.ws.output(&LEARN_FROM_RECEIVED);
    assert!(learned.status.success(), "{learned:?}");
    assert_eq!(String::from_utf8_lossy(&learned.stdout).trim(), OTHER);
    assert_eq!(fleet.layout_shown(), OTHER);

    // Wave 1: the canary alone.
    let wave = fleet.advance();
    assert!(wave.status.success(), "{wave:?}");
    assert_failure(&fleet.advance(), 3, "wave 1 has not settled");
    assert!(fleet.boot(0), "the canary reads its files in its layout");
    assert!(fleet.encrypted_files_served(0) > 0);
    assert_eq!(fleet.encrypted_files_served(1), 0);
    assert_failure(
        &fleet.advance(),
        3,
        "has not polled again after reading them",
    );
    assert!(fleet.boot(0), "{:#?}", fleet.reports.last());

    // Wave 2 (50 % of 3 phones: 2, which is every phone left): the rest.
    let wave = fleet.advance();
    assert!(wave.status.success(), "{wave:?}");
    for index in 1..3 {
        assert!(fleet.boot(index), "{:#?}", fleet.reports.last());
        assert!(fleet.encrypted_files_served(index) > 0);
        assert!(fleet.boot(index), "{:#?}", fleet.reports.last());
    }
    let status = fleet.status_json();
    assert_eq!(status["complete"], true, "{status:#}");
    assert_eq!(status["plaintext_phones"], 0, "{status:#}");
    for wave in status["waves"].as_array().expect("waves") {
        for phone in wave["phones"].as_array().expect("phones") {
            assert_eq!(phone["health"], "ok", "{status:#}");
            assert_eq!(phone["settled"], "polled-again", "{status:#}");
        }
    }
    assert_failure(&fleet.advance(), 3, "complete");
    assert!(
        fleet.undecryptable().is_empty(),
        "{:?}",
        fleet.undecryptable()
    );
    fleet.ws.run(&["audit", "--tree", "out", "--strict"]);
    fleet.ws.run(&["log", "verify"]);
}

#[test]
fn a_forced_wrong_layout_loops_the_canary_halts_the_rollout_and_abort_brings_it_back() {
    let mut fleet = Fleet::start(DEFAULT);
    boot_on_plaintext_and_let_the_canary_upload(&mut fleet);
    let forced = fleet
        .ws
        .output(&["format", "set", "--i-accept-the-risk", WRONG]);
    assert!(forced.status.success(), "{forced:?}");
    assert!(fleet.advance().status.success());

    // The canary cannot read its files in that layout. One restart, then its master again, is
    // no poll: not yet a loop for `status`, and no reason to go on.
    fleet.boot_once(0);
    fleet.boot_once(0);
    assert_failure(
        &fleet.advance(),
        3,
        "has not polled again after reading them",
    );
    // It loops.
    assert!(!fleet.boot(0), "{:#?}", fleet.reports.last());
    assert_eq!(fleet.undecryptable(), vec!["0004f2a10001".to_owned()]);
    let status = fleet
        .ws
        .output(&["status", "--ledger", "ledger.jsonl", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    let canary = status["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .find(|p| p["mac"] == "0004f2a10001")
        .expect("the canary");
    assert_eq!(canary["health"], "reboot-loop", "{canary:#}");
    assert!(
        canary["detail"]
            .as_str()
            .is_some_and(|d| d.contains("0004f2a10001-sip.cfg")),
        "{canary:#}"
    );
    let halted = fleet.advance();
    assert_failure(&halted, 4, "halted: 0004f2a10001 is in a reboot loop");

    let aborted = fleet
        .ws
        .output(&["rollout", "abort", "--src", "src", "--out", "out"]);
    assert!(aborted.status.success(), "{aborted:?}");
    assert!(fleet.boot(0), "the canary runs on plaintext again");
    assert_eq!(
        fleet.phones[0].param("reg.1.address"),
        Some("101"),
        "its own file, read"
    );
    for index in 1..3 {
        assert!(fleet.boot(index), "{:#?}", fleet.reports.last());
        assert_eq!(
            fleet.encrypted_files_served(index),
            0,
            "never served encrypted"
        );
    }
    assert_eq!(fleet.undecryptable(), vec!["0004f2a10001".to_owned()]);
    // The wave aborted is evidence against the layout: advancing again in it at once would
    // loop the canary again.
    assert!(
        String::from_utf8_lossy(&aborted.stderr).contains("no longer confirmed"),
        "{aborted:?}"
    );
    assert_failure(&fleet.advance(), 3, "no layout is confirmed");
    // Vouching for it again is allowed, with a warning (also after the canaries are chosen
    // again); learning it from any upload is for `rollout learn` alone.
    assert!(fleet.ws.output(&START).status.success());
    let again = fleet
        .ws
        .output(&["format", "set", "--i-accept-the-risk", WRONG]);
    assert!(
        String::from_utf8_lossy(&again.stderr)
            .contains("was the rollout's layout when its last wave was aborted"),
        "{again:?}"
    );
    assert_failure(
        &fleet
            .ws
            .output(&["format", "learn", "--uploads", "up", "--set"]),
        3,
        "format learn --set during a rollout",
    );
    fleet.ws.run(&["log", "verify"]);
}

#[test]
fn a_fleet_whose_firmware_writes_the_default_layout_goes_straight_through() {
    straight_through(Fleet::start(DEFAULT));
}

/// nginx's log names no KeyDesc: which files were encrypted is read from the tree it serves.
/// What a phone read before the tree showed its wave proves nothing, though nginx's log
/// names the file the tree now holds encrypted.
#[test]
fn with_nginx_reads_before_the_wave_was_published_do_not_settle_it() {
    let mut fleet = Fleet::on(Backend::Nginx, DEFAULT).booting_often();
    boot_on_plaintext_and_let_the_canary_upload(&mut fleet);
    fleet.ws.run(&["rollout", "learn", "--uploads", "up"]);
    std::fs::write(fleet.ws.path("empty.jsonl"), "").expect("an empty ledger");
    fleet
        .ws
        .run(&["rollout", "advance", "--ledger", "empty.jsonl"]);
    into_the_next_second();
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    assert_eq!(
        fleet.encrypted_files_served(0),
        0,
        "the tree was not published"
    );
    fleet.publish();
    assert_failure(
        &fleet.advance(),
        3,
        "has not been served its encrypted files since the tree was published",
    );
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    // A file put into the tree by hand in another layout (a backup restored) is nothing the
    // vault's layout shows, whoever reads it: until publish writes it again.
    let key = crate::format::key_of(&fleet.ws, "0004f2a10001");
    let wrong: Layout = WRONG.parse().expect("layout");
    let plaintext = std::fs::read(fleet.ws.path("src/0004f2a10001-sip.cfg")).expect("source");
    let restored = polyseal_crypto::encrypt_with(&plaintext, &key, &wrong).expect("seal");
    std::fs::write(fleet.ws.path("out/0004f2a10001-sip.cfg"), restored).expect("restore");
    assert_eq!(
        fleet.status_json()["waves"][0]["phones"][0]["settled"],
        "not-served"
    );
    assert_failure(
        &fleet.advance(),
        3,
        "has not been served its encrypted files since the tree was published",
    );
    fleet.publish();
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    let advanced = fleet.advance();
    assert!(advanced.status.success(), "{advanced:?}");
}

#[test]
fn a_fleet_served_by_nginx_is_rolled_out_from_its_access_log_and_the_published_tree() {
    let fleet = Fleet::on(Backend::Nginx, DEFAULT);
    let other_tree = fleet.ws.output(&[
        "rollout",
        "status",
        "--nginx-log",
        "access.log",
        "--out",
        "src",
    ]);
    assert_failure(&other_tree, 3, "is not the rollout's tree");
    straight_through(fleet);
}

/// The canary, then the rest, each booted twice (read, then poll) after its wave.
fn straight_through(mut fleet: Fleet) {
    boot_on_plaintext_and_let_the_canary_upload(&mut fleet);
    let learned = fleet.ws.output(&["rollout", "learn", "--uploads", "up"]);
    assert_eq!(String::from_utf8_lossy(&learned.stdout).trim(), DEFAULT);
    assert_eq!(fleet.layout_shown(), DEFAULT);
    for wave in [vec![0], vec![1, 2]] {
        assert!(fleet.advance().status.success());
        for index in wave {
            assert!(fleet.boot(index), "{:#?}", fleet.reports.last());
            assert!(fleet.boot(index), "{:#?}", fleet.reports.last());
        }
    }
    assert_eq!(fleet.status_json()["complete"], true);
    assert!(fleet.undecryptable().is_empty());
    for index in 0..3 {
        assert!(fleet.encrypted_files_served(index) > 0, "phone {index}");
    }
}

#[test]
fn a_fleet_that_never_uploads_makes_learn_say_what_to_change_on_one_phone() {
    let mut fleet = Fleet::start(OTHER);
    for index in 0..3 {
        assert!(fleet.boot(index), "{:#?}", fleet.reports.last());
    }
    let output = fleet.ws.output(&["rollout", "learn", "--uploads", "up"]);
    assert_failure(&output, 3, "no phone has uploaded");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sec.encryption.upload.overrides=\"1\"") && stderr.contains("reboot it"),
        "{stderr}"
    );
    assert_eq!(fleet.layout_shown(), DEFAULT);
    // A file put into the uploads directory by hand is no phone's upload: with the ledger,
    // learn does not take it for one.
    let key = crate::format::key_of(&fleet.ws, "0004f2a10001");
    let other: Layout = OTHER.parse().expect("layout");
    let planted = polyseal_crypto::encrypt_with(b"<PHONE_CONFIG/>\n", &key, &other).expect("seal");
    std::fs::write(fleet.ws.path("up/0004f2a10001-phone.cfg"), planted).expect("plant");
    let with_ledger = fleet.ws.output(&LEARN_FROM_RECEIVED);
    assert_failure(&with_ledger, 3, "no phone has uploaded");
    assert_eq!(fleet.layout_shown(), DEFAULT);
    let _ = &fleet.pki;
}

#[test]
fn start_refuses_a_tree_whose_phones_would_not_upload_encrypted_and_names_the_line() {
    let ws = Workspace::with_vault();
    let site = ws.path("src/site.cfg");
    let text = std::fs::read_to_string(&site).expect("site.cfg");
    std::fs::write(
        &site,
        text.replace(
            "sec.encryption.upload.overrides=\"1\"",
            "sec.encryption.upload.overrides=\"0\"",
        ),
    )
    .expect("edit");
    let output = ws.output(&START);
    assert_failure(&output, 3, "sets sec.encryption.upload.overrides to \"0\"");
    assert!(String::from_utf8_lossy(&output.stderr).contains("site.cfg"));
    // Validate first: no key made, nothing written.
    assert!(!ws.path("out").exists());
    let keys = ws.output(&["keys", "list", "--format", "json"]);
    assert!(!String::from_utf8_lossy(&keys.stdout).contains("0004f2a10001"));
    let _: PathBuf = site;
}

#[test]
fn format_set_of_the_vaults_own_layout_during_a_rollout_vouches_for_it() {
    let ws = Workspace::with_vault();
    assert!(ws.output(&START).status.success());
    std::fs::write(ws.path("ledger.jsonl"), "").expect("an empty ledger");
    let advance = ["rollout", "advance", "--ledger", "ledger.jsonl"];
    assert_failure(&ws.output(&advance), 3, "no layout is confirmed");
    // Without the risk flag, nothing is vouched for.
    assert_failure(
        &ws.output(&["format", "set", DEFAULT]),
        3,
        "has not been shown",
    );
    assert_failure(&ws.output(&advance), 3, "no layout is confirmed");
    let set = ws.output(&["format", "set", "--i-accept-the-risk", DEFAULT]);
    assert!(
        String::from_utf8_lossy(&set.stderr).contains("confirmed for the rollout"),
        "{set:?}"
    );
    let advanced = ws.output(&advance);
    assert!(advanced.status.success(), "{advanced:?}");
    ws.run(&["log", "verify"]);
}

#[test]
fn canaries_can_be_chosen_again_until_a_wave_is_advanced_keeping_the_confirmed_layout() {
    let ws = Workspace::with_vault();
    assert!(ws.output(&START).status.success());
    ws.run(&["format", "set", "--i-accept-the-risk", DEFAULT]);
    let again = ws.output(&[
        "rollout",
        "start",
        "--canary",
        "64167fa10003",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("started again with 1 canary phone: 64167fa10003")
            && said.contains(&format!("the layout {DEFAULT} stays confirmed")),
        "{again:?}"
    );
    std::fs::write(ws.path("ledger.jsonl"), "").expect("an empty ledger");
    ws.run(&["rollout", "advance", "--ledger", "ledger.jsonl"]);
    let status = ws.output(&[
        "rollout",
        "status",
        "--ledger",
        "ledger.jsonl",
        "--format",
        "json",
    ]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("JSON");
    assert_eq!(
        status["waves"][0]["phones"][0]["mac"], "64167fa10003",
        "{status:#}"
    );
    assert_failure(
        &ws.output(&START),
        3,
        "a rollout is under way (1 wave advanced)",
    );
    ws.run(&["log", "verify"]);
}

/// `rollout advance` with an empty ledger, so that only the gate's own rules decide.
const ADVANCE_ON_EMPTY_LEDGER: [&str; 4] = ["rollout", "advance", "--ledger", "ledger.jsonl"];

/// A workspace after `rollout start` and `format set` of the default, its ledger empty.
fn started_and_confirmed() -> Workspace {
    let ws = Workspace::with_vault();
    assert!(ws.output(&START).status.success());
    ws.run(&["format", "set", "--i-accept-the-risk", DEFAULT]);
    std::fs::write(ws.path("ledger.jsonl"), "").expect("an empty ledger");
    ws
}

/// A wave is gated on the tree: advancing without republishing leaves the phones on the files
/// of before, and what they read then proves nothing.
#[test]
fn a_wave_not_yet_in_the_published_tree_cannot_settle() {
    let ws = started_and_confirmed();
    ws.run(&ADVANCE_ON_EMPTY_LEDGER);
    assert_failure(
        &ws.output(&ADVANCE_ON_EMPTY_LEDGER),
        3,
        "wave 1 is not in the published tree",
    );
    ws.run(&["publish", "--src", "src", "--out", "out"]);
    assert_failure(
        &ws.output(&ADVANCE_ON_EMPTY_LEDGER),
        3,
        "wave 1 has not settled",
    );
    let status = ws.output(&["rollout", "status", "--ledger", "ledger.jsonl"]);
    assert!(
        String::from_utf8_lossy(&status.stderr).contains("tree published"),
        "{status:?}"
    );
}

#[test]
fn a_phone_of_the_last_wave_never_heard_from_can_be_waived_once_another_proved_the_layout() {
    let mut fleet = Fleet::on(Backend::Serve, DEFAULT).booting_often();
    boot_on_plaintext_and_let_the_canary_upload(&mut fleet);
    fleet.ws.run(&["rollout", "learn", "--uploads", "up"]);
    // Wave 1, the canary, is never heard from again: waiving it would leave the layout
    // unproven.
    assert!(fleet.advance().status.success());
    let waiting = fleet.advance();
    assert_failure(&waiting, 3, "wave 1 has not settled");
    assert!(String::from_utf8_lossy(&waiting.stderr).contains("--waive MAC"));
    let waive_canary = fleet.rollout(&[
        "advance",
        "--waive",
        "0004f2a10001",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    assert_failure(
        &waive_canary,
        3,
        "0004f2a10001 cannot be waived: no phone has settled",
    );
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    // A settled phone, or one not of the last wave, is not waived.
    for (mac, why) in [
        ("0004f2a10001", "it has settled on its files"),
        ("0004f2a10002", "it is not a phone of wave 1"),
    ] {
        let output = fleet.rollout(&["advance", "--waive", mac, "--src", "src", "--out", "out"]);
        assert_failure(&output, 3, why);
    }
    // Wave 2 (33 %: one phone), which is then unplugged.
    assert!(fleet.advance_by(33).status.success());
    assert_failure(&fleet.advance(), 3, "wave 2 has not settled");
    // The canary polls on: it proves the layout of the tree as published now.
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    let waived = fleet.rollout(&[
        "advance",
        "--waive",
        "0004f2a10002",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    assert!(waived.status.success(), "{waived:?}");
    assert!(
        String::from_utf8_lossy(&waived.stderr)
            .contains("wave 3 advanced: every phone left (0004f2a10002 of wave 2 waived)"),
        "{waived:?}"
    );
    let log = fleet.ws.output(&["log", "show"]);
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("0004f2a10002 of wave 2 waived"),
        "the waiver is in the vault's events: {log:?}"
    );
    fleet.ws.run(&["log", "verify"]);
}

/// A layout changed after a wave settled is proven again before the next wave: the last
/// wave must read the files of the new layout.
#[test]
fn a_layout_changed_after_a_wave_settled_must_be_read_by_that_wave_again() {
    let mut fleet = with_the_canary_settled(Fleet::start(DEFAULT));
    fleet
        .ws
        .run(&["format", "set", "--i-accept-the-risk", WRONG]);
    assert_failure(&fleet.advance(), 3, "wave 1 is not in the published tree");
    fleet.publish();
    assert_failure(
        &fleet.advance(),
        3,
        "has not been served its encrypted files since the tree was published",
    );
    assert!(!fleet.boot(0), "the canary loops on the new layout");
    assert_failure(
        &fleet.advance(),
        4,
        "halted: 0004f2a10001 is in a reboot loop",
    );
    for index in 1..3 {
        assert_eq!(fleet.encrypted_files_served(index), 0);
    }
}

/// A phone no wave took would loop on an encrypted file: publish serves it decrypted, and
/// audit reports one left encrypted (here by an abort that did not republish).
#[test]
fn a_phone_no_wave_took_is_never_served_an_encrypted_file_and_audit_names_one_left() {
    let ws = started_and_confirmed();
    let source = ws.path("src/0004f2a10002-sip.cfg");
    let plaintext = std::fs::read(&source).expect("source");
    ws.run(&[
        "encrypt",
        "--mac",
        "0004f2a10002",
        "src/0004f2a10002-sip.cfg",
        "-o",
        "sealed.cfg",
    ]);
    std::fs::rename(ws.path("sealed.cfg"), &source).expect("replace the source");
    ws.run(&["publish", "--src", "src", "--out", "out"]);
    let published = ws.path("out/0004f2a10002-sip.cfg");
    assert_eq!(std::fs::read(&published).expect("published"), plaintext);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&published)
        .expect("mode")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // Run again, it is proved unchanged rather than rewritten.
    let again = ws.output(&["publish", "--src", "src", "--out", "out"]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("up to date"),
        "{again:?}"
    );
    ws.run(&["audit", "--tree", "out", "--strict"]);

    ws.run(&ADVANCE_ON_EMPTY_LEDGER);
    ws.run(&["publish", "--src", "src", "--out", "out"]);
    ws.run(&["rollout", "abort"]);
    let audit = ws.output(&["audit", "--tree", "out", "--format", "json", "--strict"]);
    assert_eq!(audit.status.code(), Some(1), "{audit:?}");
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).expect("JSON");
    let found: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "encrypted-before-wave")
        .collect();
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["mac"], "0004f2a10001", "{report:#}");
    ws.run(&["publish", "--src", "src", "--out", "out"]);
    ws.run(&["audit", "--tree", "out", "--strict"]);
}

/// Phones encrypt their uploads in their firmware's layout: before one is confirmed, polyseal
/// cannot read them, and must not rewrite them in a guess.
#[test]
fn rotate_with_uploads_is_refused_until_the_rollout_has_a_confirmed_layout() {
    let ws = Workspace::with_vault();
    assert!(ws.output(&START).status.success());
    std::fs::create_dir(ws.path("up")).expect("uploads");
    let key = crate::format::key_of(&ws, "0004f2a10001");
    let other: Layout = OTHER.parse().expect("layout");
    let upload = polyseal_crypto::encrypt_with(b"<PHONE_CONFIG/>\n", &key, &other).expect("seal");
    std::fs::write(ws.path("up/0004f2a10001-phone.cfg"), &upload).expect("upload");
    let keys_before = ws.output(&["keys", "list", "--format", "json"]).stdout;
    let refused = ws.output(&[
        "rotate",
        "start",
        "0004f2a10001",
        "--uploads",
        "up",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    assert_failure(&refused, 3, "the phones' uploads cannot be read yet");
    assert_eq!(
        ws.output(&["keys", "list", "--format", "json"]).stdout,
        keys_before,
        "no key made"
    );
    assert_eq!(
        std::fs::read(ws.path("up/0004f2a10001-phone.cfg")).expect("upload"),
        upload
    );
}

/// Every file under `dir` and its bytes.
fn snapshot(dir: &std::path::Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    walkdir(dir)
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("read");
            (path, bytes)
        })
        .collect()
}

fn walkdir(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walkdir(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// `advance` changes the vault, then publishes: a source file the publish would fail on is
/// found first, and nothing changes.
#[test]
fn advance_refuses_an_encrypted_source_its_key_does_not_open_before_changing_anything() {
    let ws = started_and_confirmed();
    ws.run(&[
        "encrypt",
        "--mac",
        "0004f2a10001",
        "src/0004f2a10001-sip.cfg",
        "-o",
        "sealed.cfg",
    ]);
    std::fs::rename(ws.path("sealed.cfg"), ws.path("src/0004f2a10001-sip.cfg")).expect("move");
    // Sealed in the default layout, which the vault then leaves.
    ws.run(&["format", "set", "--i-accept-the-risk", OTHER]);
    let vault = snapshot(&ws.path("vault"));
    let out = snapshot(&ws.path("out"));
    let mut advance = ADVANCE_ON_EMPTY_LEDGER.to_vec();
    advance.extend(["--src", "src", "--out", "out"]);
    assert_failure(
        &ws.output(&advance),
        3,
        "does not open it in the vault's layout",
    );
    assert_eq!(snapshot(&ws.path("vault")), vault, "the vault is unchanged");
    assert_eq!(snapshot(&ws.path("out")), out, "the tree is unchanged");
}

/// A per-phone file already encrypted in the source is read as its phone will read it: a
/// setting that keeps its uploads plaintext is found there too.
#[test]
fn start_reads_an_encrypted_source_for_the_setting_that_keeps_uploads_plaintext() {
    let ws = Workspace::with_vault();
    assert!(ws.output(&START).status.success());
    let source = ws.path("src/0004f2a10002-sip.cfg");
    let text = std::fs::read_to_string(&source).expect("source");
    std::fs::write(
        ws.path("plain.cfg"),
        text.replace(
            "</polycomConfig>",
            "  <sec sec.encryption.upload.overrides=\"0\"/>\n</polycomConfig>",
        ),
    )
    .expect("edit");
    ws.run(&[
        "encrypt",
        "--mac",
        "0004f2a10002",
        "plain.cfg",
        "-o",
        "src/0004f2a10002-sip.cfg",
    ]);
    let vault = snapshot(&ws.path("vault"));
    let refused = ws.output(&START);
    assert_failure(
        &refused,
        3,
        "0004f2a10002-sip.cfg:6:8 sets sec.encryption.upload.overrides to \"0\"",
    );
    assert_eq!(snapshot(&ws.path("vault")), vault, "the vault is unchanged");
}

/// Only the tree the phones are served stands for what they read: a publish elsewhere (a
/// staging copy) leaves the wave waiting, and advance republishes nowhere else.
#[test]
fn a_publish_to_another_tree_does_not_stand_for_the_one_the_phones_are_served() {
    let mut fleet = with_the_canary_settled(Fleet::on(Backend::Serve, DEFAULT).booting_often());
    fleet
        .ws
        .run(&["format", "set", "--i-accept-the-risk", WRONG]);
    fleet
        .ws
        .run(&["publish", "--src", "src", "--out", "staging"]);
    into_the_next_second();
    // The canary still reads the served tree, in the old layout.
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    assert_failure(
        &fleet.rollout(&["advance", "--wave", "100"]),
        3,
        "wave 1 is not in the published tree",
    );
    let elsewhere = fleet.rollout(&["advance", "--src", "src", "--out", "staging"]);
    assert_failure(&elsewhere, 3, "staging: is not the rollout's tree");
}

/// A key change in the last wave (next-boot: its files in plaintext while it takes the key)
/// changes what its phones read: the wave is read again before the next one goes.
#[test]
fn a_key_change_in_the_last_wave_reopens_it() {
    let fleet = with_the_canary_settled(Fleet::start(DEFAULT));
    fleet.ws.run(&["key-timing", "next-boot"]);
    let rotated = fleet.ws.output(&[
        "rotate",
        "start",
        "0004f2a10001",
        "--src",
        "src",
        "--out",
        "out",
    ]);
    assert!(rotated.status.success(), "{rotated:?}");
    let said = String::from_utf8_lossy(&rotated.stderr);
    assert!(
        said.contains(
            "1 per-phone file is served in plaintext (owner-only, behind the per-MAC TLS rule) \
             while their phones take a new key"
        ) && said.contains(
            "2 per-phone files are served in plaintext (owner-only, behind the \
             per-MAC TLS rule) until a wave"
        ),
        "{said}"
    );
    into_the_next_second();
    assert_failure(
        &fleet.advance(),
        3,
        "has not been served its encrypted files since the tree was published",
    );
}

/// serve's ledger names the KeyDesc of what it served, not the layout: a file put back by hand
/// in the old layout after the layout changed is read by the canary, and proves nothing.
#[test]
fn a_file_restored_by_hand_in_another_layout_does_not_settle_a_wave() {
    let mut fleet = Fleet::on(Backend::Serve, DEFAULT).booting_often();
    boot_on_plaintext_and_let_the_canary_upload(&mut fleet);
    fleet.ws.run(&["rollout", "learn", "--uploads", "up"]);
    assert!(fleet.advance().status.success());
    let sip = fleet.ws.path("out/0004f2a10001-sip.cfg");
    let backup = std::fs::read(&sip).expect("backup");
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    fleet
        .ws
        .run(&["format", "set", "--i-accept-the-risk", WRONG]);
    fleet.publish();
    std::fs::write(&sip, &backup).expect("restore the backup");
    assert!(
        fleet.boot(0) && fleet.boot(0),
        "{:#?}",
        fleet.reports.last()
    );
    assert_failure(
        &fleet.rollout(&["advance", "--wave", "100"]),
        3,
        "has not been served its encrypted files since the tree was published",
    );
}

/// A shared file regenerated and published (from cron, say) changes no phone's file: the
/// wave's reads still count.
#[test]
fn a_publish_that_changes_no_phones_file_keeps_the_wave_settled() {
    let fleet = with_the_canary_settled(Fleet::start(DEFAULT));
    let published = fleet.status_json()["published"].clone();
    let site = fleet.ws.path("src/site.cfg");
    let text = std::fs::read_to_string(&site).expect("site.cfg");
    std::fs::write(&site, format!("{text}<!-- regenerated -->\n")).expect("edit");
    fleet.publish();
    let status = fleet.status_json();
    assert_eq!(status["published"], published, "{status:#}");
    assert_eq!(status["waves"][0]["phones"][0]["settled"], "polled-again");
    assert!(fleet.advance().status.success());
}
