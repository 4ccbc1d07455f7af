//! The evidence pack: every figure computed from a vault built here (keys rotated, compromised,
//! destroyed, past their cryptoperiod), its schema pinned and documented, and a vault that does
//! not verify reported as such.

use std::time::{Duration, SystemTime};

use polyseal_crypto::Mac;
use polyseal_fleet::report::{INVENTORY_COLUMNS, ReportRequest, SCHEMA, build, inventory_csv};
use polyseal_fleet::{FixedClock, NoProgress};
use polyseal_provision::SourceTree;
use polyseal_vault::{Confirmation, InitialState, KeyState, StateChange, Timestamp, Vault};
use serde_json::Value;

use crate::common::{Fleet, PHONES, later};
use crate::schema::assert_schema_pinned;

/// A fleet of the example's 3 phones and one more, with a 30-day cryptoperiod: phone 1 rotated
/// to generation 2 (confirmed by its operator), phone 2 compromised, the extra phone
/// deactivated then destroyed, phone 3 untouched.
fn history() -> Fleet {
    let fleet = Fleet::with_cryptoperiod(Some(30));
    fleet.publish_at(later(), &NoProgress).expect("publish");
    let (mut writer, data_key) = fleet.writer();
    let mac = |text: &str| Mac::parse(text).expect("mac");
    let extra = mac("0004f2a10009");
    writer
        .add_keys(&data_key, &[extra], InitialState::Active)
        .expect("extra phone");
    writer
        .add_keys(&data_key, &[mac(PHONES[0])], InitialState::PreActive)
        .expect("rotation");
    writer
        .confirm(
            &data_key,
            &[Confirmation {
                mac: mac(PHONES[0]),
                generation: 2,
                evidence: "operator".to_owned(),
            }],
        )
        .expect("confirm");
    let change = |text: &str, generation, to| StateChange {
        mac: mac(text),
        generation,
        to,
    };
    writer
        .set_states(
            &data_key,
            &[
                change(PHONES[0], 1, KeyState::Deactivated),
                change(PHONES[0], 2, KeyState::Active),
            ],
        )
        .expect("finish");
    let data_key = writer
        .set_states(&data_key, &[change(PHONES[1], 1, KeyState::Compromised)])
        .expect("compromise")
        .expect("a new data key");
    writer
        .set_states(
            &data_key,
            &[
                change("0004f2a10009", 1, KeyState::Deactivated),
                change("0004f2a10009", 1, KeyState::Destroyed),
            ],
        )
        .expect("destroy");
    fleet
}

fn report_at(fleet: &Fleet, as_of: Option<SystemTime>, with_tree: bool) -> Value {
    report_with(fleet, as_of, with_tree, None)
}

/// [`report_at`], with a provisioning ledger.
fn report_with(
    fleet: &Fleet,
    as_of: Option<SystemTime>,
    with_tree: bool,
    ledger: Option<&polyseal_fleet::ledger::Ledger>,
) -> Value {
    let vault = Vault::open(&fleet.path("vault")).expect("open");
    let tree = with_tree.then(|| SourceTree::open(fleet.path("out")).expect("tree"));
    let report = build(
        ReportRequest {
            vault: &vault,
            tree: tree.as_ref(),
            data_key: Err("no identity in this test".to_owned()),
            as_of: as_of.map(Timestamp::from_system_time),
            ledger: ledger.map(|ledger| ("ledger.jsonl", ledger)),
        },
        &FixedClock(SystemTime::now()),
    )
    .expect("report");
    serde_json::to_value(&report).expect("JSON")
}

#[test]
fn every_count_comes_from_the_vault_and_its_log() {
    let fleet = history();
    let report = report_at(&fleet, None, false);
    assert_eq!(report["schema"], SCHEMA);
    let inventory = &report["inventory"];
    assert_eq!(inventory["phones"], 4);
    assert_eq!(inventory["generations"], 5);
    let states = &inventory["by_state"];
    assert_eq!(states["pre-active"], 0);
    assert_eq!(states["active"], 2, "phone 1 g2 and phone 3");
    assert_eq!(states["deactivated"], 1);
    assert_eq!(states["compromised"], 1);
    assert_eq!(states["destroyed"], 1);
    assert_eq!(inventory["by_generation"]["2"], 1);
    assert_eq!(inventory["past_cryptoperiod"], 0);
    let rotations: u64 = report["charts"]["rotations_per_month"]
        .as_object()
        .expect("months")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(rotations, 1, "phone 1's finish");
    let changes = report["changes"].as_array().expect("changes");
    assert!(
        changes.iter().any(|c| c["action"] == "confirm"
            && c["evidence"] == "operator"
            && c["mac"] == PHONES[0])
    );
    assert!(
        changes
            .iter()
            .any(|c| c["to"] == "compromised" && c["mac"] == PHONES[1])
    );
    let custodians = report["custodians"].as_array().expect("custodians");
    assert_eq!(custodians.len(), 1);
    assert_eq!(custodians[0]["label"], "ops");
    assert_eq!(custodians[0]["kind"], "age X25519");
    assert!(custodians[0]["added"].is_string());
    assert_eq!(report["checks"]["log_verified"], true);
    assert_eq!(report["checks"]["authenticity_checked"], false);
    assert!(
        report["checks"]["not_made"][0]
            .as_str()
            .expect("a check not made")
            .contains("no identity in this test")
    );
    let head = report["audit_trail"]["head"].as_str().expect("head");
    assert!(head.starts_with("head "), "{head}");
}

#[test]
fn keys_past_their_cryptoperiod_are_findings_as_of_the_period_end() {
    let fleet = history();
    let as_of = SystemTime::now() + Duration::from_secs(40 * 86_400);
    let report = report_at(&fleet, Some(as_of), false);
    assert_eq!(report["inventory"]["past_cryptoperiod"], 2);
    let findings: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["code"] == "key-past-cryptoperiod")
        .collect();
    let macs: Vec<&str> = findings.iter().filter_map(|f| f["mac"].as_str()).collect();
    assert_eq!(macs, [PHONES[0], PHONES[2]]);
    assert!(
        findings[0]["fix"]
            .as_str()
            .expect("fix")
            .contains("rotate start")
    );
    let row = report["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["mac"] == PHONES[2])
        .expect("phone 3");
    assert_eq!(
        row["state"], "active",
        "a key past its cryptoperiod keeps its state"
    );
    assert_eq!(row["past_cryptoperiod"], true);
    assert!(row["cryptoperiod_remaining_days"].as_i64().expect("days") < 0);
}

#[test]
fn the_inventory_csv_has_a_row_per_generation_with_the_documented_columns() {
    let fleet = history();
    let vault = Vault::open(&fleet.path("vault")).expect("open");
    let report = build(
        ReportRequest {
            vault: &vault,
            tree: None,
            data_key: Err("none".to_owned()),
            as_of: None,
            ledger: None,
        },
        &FixedClock(SystemTime::now()),
    )
    .expect("report");
    let csv = String::from_utf8(inventory_csv(&report)).expect("UTF-8");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(INVENTORY_COLUMNS.join(",").as_str()));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter()
            .all(|r| r.split(',').count() == INVENTORY_COLUMNS.len())
    );
    assert!(rows[0].starts_with(&format!("{},1,{}-g1,", PHONES[0], PHONES[0])));
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/COMPLIANCE.md"),
    )
    .expect("docs/COMPLIANCE.md");
    for column in INVENTORY_COLUMNS {
        assert!(
            docs.contains(&format!("`{column}`")),
            "docs/COMPLIANCE.md names {column}"
        );
    }
}

#[test]
fn the_report_json_schema_is_pinned_and_documented() {
    let fleet = history();
    let ledger = looping_ledger();
    let report = report_with(
        &fleet,
        Some(SystemTime::now() + Duration::from_secs(40 * 86_400)),
        true,
        Some(&ledger),
    );
    assert_schema_pinned(&report, "report-schema.txt", "docs/COMPLIANCE.md");
}

/// A ledger in which phone 0 boots three times in three minutes, each time after its
/// `-sip.cfg`: a reboot loop.
fn looping_ledger() -> polyseal_fleet::ledger::Ledger {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.jsonl");
    let writer =
        polyseal_fleet::ledger::LedgerWriter::open(&path, Default::default()).expect("ledger");
    let now = Timestamp::now().unix_seconds();
    for boot in 0..3u64 {
        for (i, file) in [
            "/000000000000.cfg".to_owned(),
            format!("/{}-sip.cfg", PHONES[0]),
        ]
        .iter()
        .enumerate()
        {
            let mut entry = polyseal_fleet::ledger::Entry::now("GET", file, 200, 10);
            entry.time = Timestamp::from_unix_seconds(now - 300 + boot * 60 + i as u64).to_string();
            entry.mac = Some(PHONES[0].to_owned());
            writer.append(&entry).expect("append");
        }
    }
    polyseal_fleet::ledger::read(&path).expect("read")
}

#[test]
fn a_ledger_puts_the_fleets_health_in_the_trail_and_a_reboot_loop_in_the_findings() {
    let fleet = history();
    let ledger = looping_ledger();
    let report = report_with(&fleet, None, false, Some(&ledger));
    assert_eq!(
        report["ledger"]["by_health"]["reboot-loop"], 1,
        "{:#}",
        report["ledger"]
    );
    assert_eq!(report["ledger"]["requests"], 6);
    let finding = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["code"] == "reboot-loop")
        .expect("a reboot-loop finding");
    assert_eq!(finding["mac"], PHONES[0]);
    assert_eq!(finding["severity"], "error");
    assert!(
        finding["message"]
            .as_str()
            .expect("text")
            .contains("-sip.cfg")
    );
    // Without a ledger, the report says nothing of it.
    assert!(report_at(&fleet, None, false)["ledger"].is_null());
}

#[test]
fn a_vault_whose_log_does_not_verify_says_so_first() {
    let fleet = history();
    // A record edited behind the log's back.
    let bucket = fleet.path(&format!("vault/keys/{}.jsonl", &PHONES[1][10..]));
    let text = std::fs::read_to_string(&bucket).expect("bucket");
    std::fs::write(
        &bucket,
        text.replace("\"state\":\"compromised\"", "\"state\":\"active\""),
    )
    .expect("write");
    let report = report_at(&fleet, None, false);
    assert_eq!(report["checks"]["log_verified"], false);
    assert!(
        report["checks"]["log_problems"][0]
            .as_str()
            .expect("problem")
            .contains(PHONES[1])
    );
    assert_eq!(report["findings"][0]["code"], "event-log-unverified");
    assert!(report["audit_trail"]["head"].is_null());
}
