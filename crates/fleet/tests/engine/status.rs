//! The fleet's status from a ledger, through the public API: each health, in its order, from
//! requests made up the way phones make them; and the JSON schema, pinned and documented.

use polyseal_crypto::Mac;
use polyseal_fleet::ledger::{Compaction, Entry, LedgerWriter, compact, read};
use polyseal_fleet::status::{Health, OPTIONAL_FILES, PhoneStatus, StatusOptions, fleet_status};
use polyseal_vault::{InitialState, Timestamp, Vault};

use crate::common::Fleet;
use crate::schema::assert_schema_pinned;

/// A request of phone `mac` at `seconds` past the start.
fn request(mac: &str, seconds: u64, method: &str, path: &str, status: u16) -> Entry {
    let mut entry = Entry::now(method, path, status, 100);
    entry.time = Timestamp::from_unix_seconds(START + seconds).to_string();
    entry.mac = Some(mac.to_owned());
    entry
}

/// 2026-12-01T00:00:00Z.
const START: u64 = 1_764_547_200;

/// A boot of `mac` at `seconds`: the master, its key file (serving `served`), its config.
fn boot(mac: &str, seconds: u64, served: &str) -> Vec<Entry> {
    let mut key_file = request(mac, seconds + 1, "GET", &format!("/{mac}-key.cfg"), 200);
    key_file.key_served = Some(served.to_owned());
    vec![
        request(mac, seconds, "GET", "/000000000000.cfg", 200),
        key_file,
        request(mac, seconds + 2, "GET", &format!("/{mac}-sip.cfg"), 200),
    ]
}

/// Phones a…f of a vault, one with a second (pre-active) generation.
fn fleet_of_six() -> (Fleet, Vec<String>) {
    let fleet = Fleet::new();
    let macs: Vec<Mac> = (1..=6)
        .map(|n| format!("0004f2c0000{n}").parse().expect("mac"))
        .collect();
    let (mut writer, data_key) = fleet.writer();
    writer
        .add_keys(&data_key, &macs, InitialState::Active)
        .expect("keys");
    writer
        .add_keys(&data_key, &macs[2..3], InitialState::PreActive)
        .expect("g2");
    (fleet, macs.iter().map(ToString::to_string).collect())
}

#[test]
fn each_phone_gets_the_first_health_that_applies() {
    let (fleet, m) = fleet_of_six();
    let vault = Vault::open(&fleet.path("vault")).expect("vault");
    let g = |mac: &str, n: u32| format!("{mac}-g{n}");
    let mut entries = Vec::new();
    // m[0]: boots three times in four minutes, each time after its -sip.cfg.
    for start in [0, 120, 240] {
        entries.extend(boot(&m[0], start, &g(&m[0], 1)));
    }
    // m[1]: its key file is missing (404 for a file of its own plan).
    entries.push(request(&m[1], 10, "GET", "/000000000000.cfg", 200));
    entries.push(request(
        &m[1],
        11,
        "GET",
        &format!("/{}-key.cfg", m[1]),
        404,
    ));
    // m[2]: served generation 2, still uploads under generation 1.
    entries.extend(boot(&m[2], 20, &g(&m[2], 2)));
    let mut upload = request(
        &m[2],
        30,
        "PUT",
        &format!("/overrides/{}-phone.cfg", m[2]),
        204,
    );
    upload.key_desc = Some(g(&m[2], 1));
    entries.push(upload);
    // m[3]: one normal boot three days before the judged moment.
    entries.extend(boot(&m[3], 0, &g(&m[3], 1)));
    // m[4]: never seen. m[5]: a normal boot, with 404s that are part of any boot, and a try at
    // a neighbour's key file.
    entries.push(request(
        &m[5],
        3 * 86_400 - 60,
        "GET",
        &format!("/{}.cfg", m[5]),
        404,
    ));
    entries.extend(boot(&m[5], 3 * 86_400 - 59, &g(&m[5], 1)));
    entries.push(request(
        &m[5],
        3 * 86_400 - 50,
        "GET",
        &format!("/overrides/{}-phone.cfg", m[5]),
        404,
    ));
    entries.push(request(
        &m[5],
        3 * 86_400 - 40,
        "GET",
        &format!("/{}-key.cfg", m[1]),
        403,
    ));
    entries.sort_by(|a, b| a.time.cmp(&b.time));

    let options = StatusOptions::new(Timestamp::from_unix_seconds(START + 3 * 86_400));
    let status = fleet_status(
        Some(&vault),
        &entries,
        &[],
        vec!["test".into()],
        false,
        &options,
    );
    let health = |mac: &str| {
        status
            .phones
            .iter()
            .find(|p| p.mac == mac)
            .unwrap_or_else(|| panic!("{mac}"))
    };
    let looping = health(&m[0]);
    assert_eq!(looping.health, Health::RebootLoop, "{looping:#?}");
    assert!(
        looping.detail.contains(&format!("/{}-sip.cfg", m[0])),
        "{}",
        looping.detail
    );
    assert_eq!(looping.restarts.len(), 2);
    assert_eq!(health(&m[1]).health, Health::Refused);
    assert!(health(&m[1]).detail.contains("-key.cfg answered 404"));
    let rotating = health(&m[2]);
    assert_eq!(rotating.health, Health::KeyNotTaken, "{rotating:#?}");
    assert_eq!(
        (rotating.served_generation, rotating.upload_generation),
        (Some(2), Some(1))
    );
    assert_eq!(health(&m[3]).health, Health::Silent);
    assert_eq!(health(&m[4]).health, Health::NeverSeen);
    let fine = health(&m[5]);
    assert_eq!(fine.health, Health::Ok, "{fine:#?}");
    assert_eq!(fine.other_phone_requests, 1);
    assert_eq!(
        fine.boots, 1,
        "a phone-specific master then the shared one is one boot"
    );
    for name in [
        "reboot-loop",
        "refused",
        "key-not-taken",
        "silent",
        "never-seen",
        "ok",
    ] {
        assert_eq!(status.summary[name], 1, "{name}: {:?}", status.summary);
    }

    // A looser rule: five boots in ten minutes. m[0] made three: no loop.
    let mut loose = options;
    loose.loop_boots = 5;
    let status = fleet_status(Some(&vault), &entries, &[], vec![], false, &loose);
    assert_ne!(
        status
            .phones
            .iter()
            .find(|p| p.mac == m[0])
            .map(|p| p.health),
        Some(Health::RebootLoop)
    );
}

#[test]
fn the_status_json_schema_is_pinned_and_documented() {
    let (fleet, m) = fleet_of_six();
    let vault = Vault::open(&fleet.path("vault")).expect("vault");
    let mut entries = boot(&m[0], 0, &format!("{}-g1", m[0]));
    entries.extend(boot(&m[0], 60, &format!("{}-g1", m[0])));
    let mut upload = request(
        &m[0],
        70,
        "PUT",
        &format!("/overrides/{}-phone.cfg", m[0]),
        201,
    );
    upload.key_desc = Some(format!("{}-g1", m[0]));
    entries.push(upload);
    entries.push(request(
        &m[0],
        80,
        "GET",
        &format!("/{}-key.cfg", m[1]),
        403,
    ));
    let options = StatusOptions::new(Timestamp::from_unix_seconds(START + 100));
    let status = fleet_status(
        Some(&vault),
        &entries,
        &[],
        vec!["ledger.jsonl".into()],
        false,
        &options,
    );
    let json = serde_json::to_value(&status).expect("serialises");
    assert_eq!(json["schema"], "polyseal-status/1");
    assert_schema_pinned(&json, "status-schema.txt", "docs/DELIVERY.md");
}

/// Phone `mac` as `entries` alone (no vault) show it, judged `as_of` seconds past the start.
fn judged(mac: &str, entries: &[Entry], as_of: u64) -> PhoneStatus {
    let options = StatusOptions::new(Timestamp::from_unix_seconds(START + as_of));
    fleet_status(None, entries, &[], vec![], false, &options)
        .phones
        .into_iter()
        .find(|p| p.mac == mac)
        .unwrap_or_else(|| panic!("{mac}"))
}

#[test]
fn a_loop_long_over_is_not_a_reboot_loop() {
    let mac = "0004f2c00011";
    // Three boots in four minutes, the last of which ran: an hour on, it uploads its log.
    let mut entries: Vec<Entry> = [0, 120, 240]
        .into_iter()
        .flat_map(|start| boot(mac, start, &format!("{mac}-g1")))
        .collect();
    let looping = judged(mac, &entries, 300);
    assert_eq!(looping.health, Health::RebootLoop, "{looping:#?}");
    entries.push(request(
        mac,
        3_600,
        "PUT",
        &format!("/logs/{mac}-app.log"),
        204,
    ));
    let recovered = judged(mac, &entries, 7_200);
    assert_eq!(recovered.health, Health::Ok, "{recovered:#?}");
    assert_eq!(recovered.boots, 3);
    // A phone last heard looping is still judged by its loop, however long ago.
    let quiet = judged(mac, &entries[..9], 3 * 86_400);
    assert_eq!(quiet.health, Health::RebootLoop, "{quiet:#?}");
}

#[test]
fn a_phone_restarting_on_its_master_alone_is_a_reboot_loop() {
    let mac = "0004f2c00012";
    // It reads its master (after its own `<mac>.cfg`, missing) and restarts, a minute a boot.
    let mut entries = Vec::new();
    for start in [0, 60, 120] {
        entries.push(request(mac, start, "GET", &format!("/{mac}.cfg"), 404));
        entries.push(request(mac, start, "GET", "/000000000000.cfg", 200));
    }
    let looping = judged(mac, &entries, 130);
    assert_eq!(looping.health, Health::RebootLoop, "{looping:#?}");
    assert_eq!(looping.boots, 3);
    assert!(
        looping.detail.contains("/000000000000.cfg"),
        "{}",
        looping.detail
    );
    // A HEAD then a GET of the master, and the master fetched again a second later (a retry),
    // are one boot.
    let calm = "0004f2c00013";
    let mut entries = vec![
        request(calm, 0, "HEAD", "/000000000000.cfg", 200),
        request(calm, 0, "GET", "/000000000000.cfg", 200),
        request(calm, 1, "GET", "/000000000000.cfg", 200),
    ];
    entries.extend(boot(calm, 2, &format!("{calm}-g1"))[1..].iter().cloned());
    let calm = judged(calm, &entries, 10);
    assert_eq!((calm.health, calm.boots), (Health::Ok, 1), "{calm:#?}");
}

#[test]
fn a_master_under_a_folder_starts_a_boot() {
    let shared = "0004f2c00014";
    let mut entries = Vec::new();
    for start in [0, 120, 240] {
        entries.push(request(
            shared,
            start,
            "GET",
            "/polycom/000000000000.cfg",
            200,
        ));
        entries.push(request(
            shared,
            start + 1,
            "GET",
            &format!("/polycom/{shared}-sip.cfg"),
            200,
        ));
    }
    let looping = judged(shared, &entries, 300);
    assert_eq!(looping.health, Health::RebootLoop, "{looping:#?}");
    assert_eq!(looping.boots, 3);
    let own = "0004f2c00015";
    let entries: Vec<Entry> = [0, 86_400]
        .into_iter()
        .flat_map(|start| {
            [
                request(own, start, "GET", &format!("/prov/{own}.cfg"), 200),
                request(own, start + 1, "GET", &format!("/prov/{own}-sip.cfg"), 200),
            ]
        })
        .collect();
    let booted = judged(own, &entries, 86_500);
    assert_eq!(
        (booted.health, booted.boots),
        (Health::Ok, 2),
        "{booted:#?}"
    );
    assert_eq!(booted.last_boot.len(), 2, "{booted:#?}");
}

#[test]
fn a_head_of_a_key_file_serves_no_key_in_the_ledger_or_its_summary() {
    let (fleet, m) = fleet_of_six();
    let vault = Vault::open(&fleet.path("vault")).expect("vault");
    let mac = &m[2];
    // It boots on g1; something asks for the size of its key file, now carrying g2 (HEAD);
    // the phone, served nothing new, uploads under g1.
    let mut entries = boot(mac, 0, &format!("{mac}-g1"));
    let mut head = request(mac, 10, "HEAD", &format!("/{mac}-key.cfg"), 200);
    head.key_served = Some(format!("{mac}-g2"));
    entries.push(head);
    let mut upload = request(mac, 20, "PUT", &format!("/overrides/{mac}-phone.cfg"), 204);
    upload.key_desc = Some(format!("{mac}-g1"));
    entries.push(upload);
    let options = StatusOptions::new(Timestamp::from_unix_seconds(START + 30));
    let status = fleet_status(Some(&vault), &entries, &[], vec![], false, &options);
    let phone = status.phones.iter().find(|p| &p.mac == mac).expect("phone");
    assert_eq!(phone.health, Health::Ok, "{phone:#?}");
    assert_eq!(
        phone.served_key_desc.as_deref(),
        Some(format!("{mac}-g1").as_str())
    );
    // The same requests folded into a summary by compaction.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.jsonl");
    let writer = LedgerWriter::open(&path, Compaction::default()).expect("open");
    for entry in &entries {
        writer.append(entry).expect("append");
    }
    drop(writer);
    compact(
        &path,
        &Compaction::default(),
        Timestamp::from_unix_seconds(START + 3 * 86_400),
    )
    .expect("compact");
    let ledger = read(&path).expect("read");
    assert!(ledger.entries.is_empty());
    let summary = ledger
        .summaries
        .iter()
        .find(|s| &s.mac == mac)
        .expect("summary");
    assert_eq!(
        summary.served_key_desc.as_deref(),
        Some(format!("{mac}-g1").as_str())
    );
}

#[test]
fn a_boot_missing_only_optional_files_is_ok_and_a_missing_config_file_is_refused() {
    let mac = "0004f2c00016";
    let mut entries = boot(mac, 0, &format!("{mac}-g1"));
    let optional = [
        format!("/{mac}-phone.cfg"),
        format!("/overrides/{mac}-web.cfg"),
        format!("/directory/{mac}-directory.xml"),
        format!("/{mac}-calls.xml"),
        format!("/{mac}-license.cfg"),
        format!("/{mac}-license.bin"),
        format!("/logs/{mac}-app.log"),
        format!("/logs/{mac}-boot.log"),
        "/000000000000-directory.xml".to_owned(),
        "/000000000000-license.cfg".to_owned(),
        "/languages/SoundPointIP-dictionary-fr.xml".to_owned(),
        "/tones/LoudRing.wav".to_owned(),
        "/3111-46135-002.sip.ld".to_owned(),
        "/bootrom.ld".to_owned(),
    ];
    for (n, path) in (3..).zip(&optional) {
        entries.push(request(mac, n, "GET", path, 404));
    }
    let fine = judged(mac, &entries, 60);
    assert_eq!(fine.health, Health::Ok, "{fine:#?}");
    for needed in [format!("/{mac}-sip.cfg"), "/site.cfg".to_owned()] {
        let mut entries = entries.clone();
        entries.push(request(mac, 30, "GET", &needed, 404));
        let refused = judged(mac, &entries, 60);
        assert_eq!(refused.health, Health::Refused, "{needed}: {refused:#?}");
        assert!(refused.detail.contains(&needed), "{}", refused.detail);
    }
}

#[test]
fn the_documentation_lists_every_file_a_normal_boot_may_miss() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/DELIVERY.md"),
    )
    .expect("docs/DELIVERY.md");
    let status = doc
        .split_once("## 9.")
        .map(|(_, section)| section)
        .expect("docs/DELIVERY.md has a section 9");
    for pattern in OPTIONAL_FILES {
        assert!(
            status.contains(&format!("`{pattern}`")),
            "docs/DELIVERY.md §9 lacks `{pattern}`"
        );
    }
    // What a phone uploads it reads back, and may miss.
    for suffix in polyseal_delivery::UPLOAD_SUFFIXES {
        assert!(
            OPTIONAL_FILES.contains(&format!("<mac>{suffix}").as_str()),
            "{suffix}"
        );
    }
}
