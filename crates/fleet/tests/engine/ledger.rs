//! The ledger through the public API: appended lines read back, a torn last line tolerated
//! and reported, damaged lines skipped and counted, and compaction keeping the size bounded
//! (under a flood too) and what `status` needs.

use std::time::Duration;

use polyseal_fleet::ledger::{Compaction, Entry, LedgerWriter, compact, read};
use polyseal_fleet::status::{StatusOptions, fleet_status};
use polyseal_vault::Timestamp;

/// 2026-12-01T00:00:00Z.
const START: u64 = 1_764_547_200;

fn request(phone: u32, seconds: u64, path: &str) -> Entry {
    let mac = format!("0004f2d{phone:05x}");
    let mut entry = Entry::now("GET", &path.replace("MAC", &mac), 200, 100);
    entry.time = Timestamp::from_unix_seconds(START + seconds).to_string();
    entry.mac = Some(mac.clone());
    if path.ends_with("-key.cfg") {
        entry.key_served = Some(format!("{mac}-g1"));
    }
    entry
}

#[test]
fn a_torn_last_line_is_skipped_and_reported_and_an_edited_line_is_skipped_and_counted() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.jsonl");
    let writer = LedgerWriter::open(&path, Compaction::default()).expect("open");
    for seconds in 0..3 {
        writer
            .append(&request(1, seconds, "/000000000000.cfg"))
            .expect("append");
    }
    drop(writer);
    let mut text = std::fs::read_to_string(&path).expect("ledger");
    text.push_str(r#"{"time":"2026-12-01T00:00:09Z","mac":"0004f2d0"#);
    std::fs::write(&path, &text).expect("tear");
    let ledger = read(&path).expect("read");
    assert_eq!(ledger.entries.len(), 3);
    assert!(ledger.torn_last_line);
    assert_eq!(ledger.skipped_lines, 0);
    // The same damage before the last line is not a torn write: skipped, counted, named; the
    // rest of the fleet is still read.
    let edited = text.replacen(r#""status":200"#, r#""status":"x""#, 1) + "\n{}\n";
    std::fs::write(&path, edited).expect("edit");
    let ledger = read(&path).expect("an edited line is skipped");
    assert_eq!(ledger.entries.len(), 2);
    // Line 1 (edited) and line 4 (the tear, now in the middle); `{}`, last, counts as torn.
    assert_eq!(ledger.skipped_lines, 2);
    assert_eq!(
        ledger.first_skipped.as_ref().map(|(line, _)| *line),
        Some(1)
    );
    assert!(ledger.torn_last_line);
}

#[test]
fn a_server_started_again_after_a_torn_write_keeps_every_later_entry() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.jsonl");
    let writer = LedgerWriter::open(&path, Compaction::default()).expect("open");
    writer
        .append(&request(1, 0, "/000000000000.cfg"))
        .expect("append");
    drop(writer);
    // A crash mid-write.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    std::io::Write::write_all(&mut file, br#"{"time":"2026-12-01T00:00:01Z","mac":"00"#)
        .expect("tear");
    drop(file);
    let writer = LedgerWriter::open(&path, Compaction::default()).expect("reopen");
    assert!(writer.found_torn_tail());
    for seconds in 2..5 {
        writer
            .append(&request(1, seconds, "/MAC-sip.cfg"))
            .expect("append after the tear");
    }
    drop(writer);
    let ledger = read(&path).expect("read");
    assert_eq!(ledger.entries.len(), 4, "every entry but the torn one");
    assert_eq!(ledger.skipped_lines, 1);
    assert!(!ledger.torn_last_line);
    let now = Timestamp::from_unix_seconds(START + 10);
    compact(&path, &Compaction::default(), now).expect("compaction reads past the damage");
    assert_eq!(read(&path).expect("read").entries.len(), 4);
}

/// A ledger in `dir` bounded at 256 KiB, and its writer.
fn small_ledger(dir: &std::path::Path) -> (std::path::PathBuf, LedgerWriter) {
    let path = dir.join("ledger.jsonl");
    let mut compaction = Compaction::default();
    compaction.max_bytes = 256 * 1024;
    let writer = LedgerWriter::open(&path, compaction).expect("open");
    (path, writer)
}

/// `entry` answered `seconds` after ten minutes ago: well within the window of the
/// compactions a writer runs now.
fn at(mut entry: Entry, seconds: u64) -> Entry {
    let base = Timestamp::now().unix_seconds() - 600;
    entry.time = Timestamp::from_unix_seconds(base + seconds).to_string();
    entry
}

#[test]
fn a_flood_of_refused_requests_is_folded_and_never_pushes_out_what_phones_did() {
    let dir = tempfile::tempdir().expect("tmp");
    let (path, writer) = small_ledger(dir.path());
    let phone = at(request(1, 0, "/000000000000.cfg"), 0);
    writer.append(&phone).expect("append");
    // Within the window: 20,000 requests of a certificate naming no phone, each with a path
    // at the bound of what hyper accepts (16 KiB), and a phone asking for another's file.
    let long = format!("/{}", "a".repeat(16 * 1024));
    for i in 0..20_000u64 {
        let mut noise = at(Entry::now("GET", &long, 403, 0), 1 + i / 100);
        if i % 2 == 0 {
            noise.client = Some("CN=attacker".to_owned());
        } else {
            noise.mac = Some("0004f2d00002".to_owned());
            noise.path = "/0004f2d00001-key.cfg".to_owned();
        }
        writer.append(&noise).expect("append");
    }
    let last = at(request(1, 0, "/MAC-sip.cfg"), 300);
    writer.append(&last).expect("append");
    drop(writer);
    let size = std::fs::metadata(&path).expect("ledger").len();
    assert!(size < 2 * 256 * 1024, "{size} bytes");
    let ledger = read(&path).expect("read");
    // The phone's own requests stay raw; the noise is counted, not lost.
    assert!(ledger.entries.contains(&phone) && ledger.entries.contains(&last));
    let unidentified = ledger
        .unidentified
        .expect("the folded requests of no phone");
    let raw_unidentified = ledger.entries.iter().filter(|e| e.mac.is_none()).count() as u64;
    assert_eq!(unidentified.requests + raw_unidentified, 10_000);
    let other = ledger
        .summaries
        .iter()
        .find(|s| s.mac == "0004f2d00002")
        .expect("the prying phone's summary");
    let raw_other = ledger
        .entries
        .iter()
        .filter(|e| e.mac.as_deref() == Some("0004f2d00002"))
        .count() as u64;
    assert_eq!(other.other_phone_requests + raw_other, 10_000);
    // No line is longer than the bound on what the network sends, and a few KiB.
    let text = std::fs::read_to_string(&path).expect("ledger");
    assert!(text.lines().all(|l| l.len() < 2 * 1024 + 512));
}

#[test]
fn compaction_bounds_the_ledger_and_keeps_what_status_needs() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.jsonl");
    let window = Duration::from_secs(2 * 86_400);
    // 200 phones polling daily for 30 days: 3 requests each poll.
    let writer = LedgerWriter::open(&path, Compaction::default()).expect("open");
    let mut all = Vec::new();
    for day in 0..30u64 {
        for phone in 0..200 {
            for (i, file) in ["/000000000000.cfg", "/MAC-key.cfg", "/MAC-sip.cfg"]
                .iter()
                .enumerate()
            {
                let entry = request(phone, day * 86_400 + u64::from(phone) * 10 + i as u64, file);
                writer.append(&entry).expect("append");
                all.push(entry);
            }
        }
    }
    drop(writer);
    let before = std::fs::metadata(&path).expect("ledger").len();
    let now = Timestamp::from_unix_seconds(START + 30 * 86_400);
    let mut compaction = Compaction::default();
    compaction.window = window;
    compact(&path, &compaction, now).expect("compact");
    let after = std::fs::metadata(&path).expect("ledger").len();
    // Two days of requests and one summary line a phone: about a tenth of thirty days.
    assert!(after * 8 < before, "{before} → {after} bytes");
    let ledger = read(&path).expect("read back");
    assert_eq!(ledger.summaries.len(), 200);
    assert_eq!(ledger.entries.len(), 2 * 200 * 3);
    // Compacting again changes nothing but folds what left the window.
    compact(&path, &compaction, now).expect("again");
    assert_eq!(read(&path).expect("read").entries.len(), 2 * 200 * 3);

    // status reads the same fleet from the compacted ledger as from the whole one.
    let options = StatusOptions::new(now);
    let whole = fleet_status(None, &all, &[], vec![], false, &options);
    let compacted = fleet_status(
        None,
        &ledger.entries,
        &ledger.summaries,
        vec![],
        false,
        &options,
    );
    let view = |s: &polyseal_fleet::status::FleetStatus| {
        s.phones
            .iter()
            .map(|p| {
                (
                    p.mac.clone(),
                    p.health,
                    p.last_seen.clone(),
                    p.served_key_desc.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(view(&whole), view(&compacted));
    // Folded requests still count.
    assert_eq!(compacted.requests, whole.requests);
    // A phone heard only before the window is still known, and silent.
    let old_only = fleet_status(
        None,
        &[],
        &ledger.summaries,
        vec![],
        false,
        &StatusOptions::new(Timestamp::from_unix_seconds(START + 90 * 86_400)),
    );
    assert!(
        old_only
            .phones
            .iter()
            .all(|p| p.health == polyseal_fleet::status::Health::Silent)
    );
}

#[test]
fn a_ledger_past_its_bound_compacts_itself_while_appending() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.jsonl");
    let mut compaction = Compaction::default();
    compaction.max_bytes = 64 * 1024;
    compaction.window = Duration::from_secs(3600);
    let writer = LedgerWriter::open(&path, compaction).expect("open");
    // Old requests (a year ago), far more than 64 KiB of them, then the present.
    for i in 0..2000u64 {
        writer
            .append(&request((i % 20) as u32, i, "/000000000000.cfg"))
            .expect("append");
    }
    let mut now = Entry::now("GET", "/000000000000.cfg", 200, 1);
    now.mac = Some("0004f2d00001".to_owned());
    writer.append(&now).expect("append now");
    drop(writer);
    let size = std::fs::metadata(&path).expect("ledger").len();
    assert!(size < 2 * 64 * 1024, "{size} bytes");
    let ledger = read(&path).expect("read");
    assert_eq!(ledger.summaries.len(), 20);
    assert_eq!(ledger.entries.last(), Some(&now));
}

#[test]
fn one_phone_flooding_its_own_paths_never_pushes_out_another_phones_requests() {
    let dir = tempfile::tempdir().expect("tmp");
    let (path, writer) = small_ledger(dir.path());
    // Phone 2 boots first; then phone 1, whose certificate is valid, asks for paths of its
    // own (answered 404: not noise) 20,000 times.
    let boot: Vec<Entry> = ["/000000000000.cfg", "/MAC-key.cfg", "/MAC-sip.cfg"]
        .iter()
        .enumerate()
        .map(|(i, file)| at(request(2, 0, file), i as u64))
        .collect();
    for entry in &boot {
        writer.append(entry).expect("append");
    }
    let long = format!("/{}", "a".repeat(1000));
    for i in 0..20_000u64 {
        let mut flood = at(Entry::now("GET", &long, 404, 0), 10 + i / 100);
        flood.mac = Some("0004f2d00001".to_owned());
        writer.append(&flood).expect("append");
    }
    drop(writer);
    let ledger = read(&path).expect("read");
    for entry in &boot {
        assert!(ledger.entries.contains(entry), "{entry:?} was folded");
    }
    let flooder = ledger
        .summaries
        .iter()
        .find(|s| s.mac == "0004f2d00001")
        .expect("the flooder's summary");
    let raw = ledger
        .entries
        .iter()
        .filter(|e| e.mac.as_deref() == Some("0004f2d00001"))
        .count() as u64;
    assert_eq!(flooder.requests + raw, 20_000);
    assert!(std::fs::metadata(&path).expect("ledger").len() < 2 * 256 * 1024);
}

#[test]
fn what_a_killed_compaction_left_beside_the_ledger_is_removed_at_the_next_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ledger.jsonl");
    let left = dir.path().join(".ledger.jsonl.polyseal-4242.tmp");
    let other = dir.path().join(".other.jsonl.polyseal-4242.tmp");
    std::fs::write(&left, "half a compaction").expect("left");
    std::fs::write(&other, "another ledger's").expect("other");
    drop(LedgerWriter::open(&path, Compaction::default()).expect("open"));
    assert!(!left.exists());
    assert!(other.exists(), "only this ledger's are removed");
}
