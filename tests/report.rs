//! `polyseal report` on the real binary: three files an assessor files, a page that a real
//! headless Chromium renders and prints to PDF (whose pages `pdftoppm` renders), nothing
//! fetched from anywhere, and an honest first screen.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{PHONES, Workspace, assert_failure};

/// A workspace whose example tree is published, phone 2 then compromised.
fn published() -> Workspace {
    let ws = Workspace::with_vault();
    ws.publish();
    ws.run(&["keys", "state", PHONES[1], "compromised"]);
    ws
}

/// Runs a real tool, failing loudly (naming its Debian package) when it is missing.
fn tool(program: &str, package: &str, args: &[&str], dir: &Path) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .output()
        .unwrap_or_else(|e| panic!("`{program}` (Debian package `{package}`) is required: {e}"))
}

/// Chromium, headless, with a profile of its own in `dir`.
fn chromium(dir: &Path, args: &[&str]) -> Output {
    let profile = format!("--user-data-dir={}", dir.join("chromium-profile").display());
    let mut all = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        profile.as_str(),
    ];
    all.extend_from_slice(args);
    let output = tool("chromium", "chromium", &all, dir);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The share of pixels that are not near-white in RGB or RGBA `pixels` with `channels`
/// bytes each.
fn ink(pixels: &[u8], channels: usize) -> f64 {
    let total = pixels.len() / channels;
    let inked = pixels
        .chunks(channels)
        .filter(|p| p[..3].iter().any(|&c| c < 200))
        .count();
    inked as f64 / total.max(1) as f64
}

#[test]
fn report_writes_the_page_the_json_and_the_csv_which_fetch_nothing() {
    let ws = published();
    let output = ws.output(&["report", "--out", "evidence", "--tree", "out"]);
    assert!(output.status.success(), "{output:?}");
    let json: Value =
        serde_json::from_slice(&fs::read(ws.path("evidence/report.json")).expect("report.json"))
            .expect("JSON");
    assert_eq!(json["schema"], "polyseal-report/1");
    assert_eq!(json["inventory"]["phones"], 3);
    assert_eq!(json["inventory"]["by_state"]["compromised"], 1);
    assert_eq!(
        json["checks"]["authenticity_checked"], true,
        "an identity was given"
    );
    assert!(json["tree_audit"]["tree"].is_string());
    let csv = fs::read_to_string(ws.path("evidence/inventory.csv")).expect("inventory.csv");
    assert_eq!(csv.lines().count(), 1 + 3);
    assert!(csv.starts_with("mac,generation,key_desc,"));

    let html = fs::read_to_string(ws.path("evidence/index.html")).expect("index.html");
    assert!(!html.contains("<script"), "no script");
    for reference in ["src=", "url(", "@import", "<link", "https:"] {
        assert!(
            !html.contains(reference),
            "no external reference: {reference}"
        );
    }
    // The only http: is the SVG namespace name, which nothing fetches.
    assert_eq!(
        html.matches("http:").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(
        html.matches("href=\"").count() == html.matches("href=\"#").count(),
        "links only within the page"
    );
    let mode = fs::metadata(ws.path("evidence/index.html")).expect("meta");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o644
    );
}

#[test]
fn the_page_renders_in_headless_chromium_and_prints_to_pdf_pages() {
    let ws = published();
    ws.run(&["report", "--out", "evidence"]);
    let page = format!("file://{}", ws.path("evidence/index.html").display());
    let dir = ws.dir.path();

    let dom = chromium(dir, &["--dump-dom", &page]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom_text.matches("<svg").count(),
        3,
        "the three charts are in the rendered page"
    );
    for title in [
        "Active keys by age",
        "Key generations per state",
        "Rotations per month",
    ] {
        assert!(dom_text.contains(&format!(">{title}</title>")), "{title}");
    }
    assert!(
        !String::from_utf8_lossy(&dom.stderr).contains(":CONSOLE"),
        "no console message: {}",
        String::from_utf8_lossy(&dom.stderr)
    );

    chromium(
        dir,
        &["--screenshot=shot.png", "--window-size=1200,1600", &page],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        fs::File::open(ws.path("shot.png")).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    let channels = info.color_type.samples();
    let covered = ink(&pixels[..info.buffer_size()], channels);
    assert!(
        covered > 0.01,
        "the screenshot is not blank ({covered:.4} inked)"
    );

    chromium(
        dir,
        &["--no-pdf-header-footer", "--print-to-pdf=report.pdf", &page],
    );
    let pdf = fs::read(ws.path("report.pdf")).expect("report.pdf");
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    let rendered = tool(
        "pdftoppm",
        "poppler-utils",
        &["-r", "40", "report.pdf", "page"],
        dir,
    );
    assert!(rendered.status.success(), "{rendered:?}");
    let mut pages: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("page") && n.ends_with(".ppm"))
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "pdftoppm rendered pages");
    let first = fs::read(ws.path(&pages[0])).expect("page");
    // Binary PPM: "P6", width, height, 255, each followed by one whitespace, then RGB bytes.
    let header_end = first
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_ascii_whitespace())
        .nth(3)
        .map(|(i, _)| i + 1)
        .expect("a PPM header");
    assert!(first.starts_with(b"P6"));
    let covered = ink(&first[header_end..], 3);
    assert!(
        covered > 0.01,
        "the first PDF page is not blank ({covered:.4} inked)"
    );
}

#[test]
fn report_refuses_an_out_directory_of_other_files_and_writes_nothing() {
    let ws = published();
    fs::create_dir(ws.path("evidence")).expect("mkdir");
    fs::write(ws.path("evidence/notes.txt"), "mine").expect("write");
    let output = ws.output(&["report", "--out", "evidence"]);
    assert_failure(&output, 3, "holds notes.txt");
    assert_eq!(
        fs::read_dir(ws.path("evidence")).expect("list").count(),
        1,
        "nothing written"
    );
    // An earlier report is replaced.
    ws.run(&["report", "--out", "again"]);
    ws.run(&["report", "--out", "again"]);
}

#[test]
fn without_an_identity_the_first_screen_names_the_checks_not_made() {
    let ws = published();
    let output = ws.output_without_identity(&["report", "--out", "evidence"]);
    assert!(output.status.success(), "{output:?}");
    let html = fs::read_to_string(ws.path("evidence/index.html")).expect("index.html");
    let status = &html[html.find("id=\"status\"").expect("status")
        ..html.find("id=\"architecture\"").expect("architecture")];
    assert!(status.contains("Not checked"), "{status}");
    assert!(status.contains("authenticated head"), "{status}");
}

#[test]
fn a_vault_that_does_not_verify_gets_a_report_that_says_so_first_and_exit_4() {
    let ws = published();
    let bucket = ws.path(&format!("vault/keys/{}.jsonl", &PHONES[1][10..]));
    let text = fs::read_to_string(&bucket).expect("bucket");
    fs::write(
        &bucket,
        text.replace("\"state\":\"compromised\"", "\"state\":\"active\""),
    )
    .expect("write");
    let output = ws.output_without_identity(&["report", "--out", "evidence"]);
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let html = fs::read_to_string(ws.path("evidence/index.html")).expect("index.html");
    let status = &html[html.find("id=\"status\"").expect("status")
        ..html.find("id=\"architecture\"").expect("architecture")];
    assert!(status.contains("THE VAULT DOES NOT VERIFY"), "{status}");
    assert!(status.contains(PHONES[1]), "{status}");
    // With the identity, the altered vault is refused outright.
    let refused = ws.output(&["report", "--out", "evidence2"]);
    assert_failure(&refused, 4, "is not as polyseal last wrote it");
    assert!(!ws.path("evidence2").exists());
}

#[test]
fn a_custodian_acknowledgement_is_proven_logged_and_reported() {
    let ws = published();
    let stranger = ws.keygen("stranger.txt");
    let backup = ws.keygen("backup.txt");
    ws.polyseal()
        .args(["recipients", "add", "--label", "backup"])
        .arg(&backup)
        .assert()
        .success();
    ws.run(&["custodians", "acknowledge", "--label", "admin"]);
    // The admin identity is not backup's; a stranger's opens nothing.
    let refused = ws.output(&["custodians", "acknowledge", "--label", "backup"]);
    assert_failure(&refused, 3, "is not recipient \"backup\"'s");
    let stranger = stranger.display().to_string();
    let refused = ws.output(&[
        "-i",
        &stranger,
        "custodians",
        "acknowledge",
        "--label",
        "admin",
    ]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");

    ws.run(&["report", "--out", "evidence"]);
    let json: Value =
        serde_json::from_slice(&fs::read(ws.path("evidence/report.json")).expect("report.json"))
            .expect("JSON");
    let custodians = json["custodians"].as_array().expect("custodians");
    let acknowledged = |label: &str| {
        custodians
            .iter()
            .find(|c| c["label"] == label)
            .map(|c| c["acknowledged"].clone())
            .expect("listed")
    };
    assert!(acknowledged("admin").is_string());
    assert!(acknowledged("backup").is_null());
    let log = ws.output(&["log", "show"]);
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("custodian \"admin\""),
        "{log:?}"
    );
}

#[test]
fn a_tree_serving_a_compromised_key_turns_the_first_screen_red() {
    let ws = published();
    ws.run(&["report", "--out", "evidence", "--tree", "out"]);
    let json: Value =
        serde_json::from_slice(&fs::read(ws.path("evidence/report.json")).expect("report.json"))
            .expect("JSON");
    let findings = json["findings"].as_array().expect("findings");
    assert!(
        findings.iter().any(|f| f["code"] == "key-file-wrong-key"
            && f["mac"] == PHONES[1]
            && f["severity"] == "error"),
        "{findings:?}"
    );
    let html = fs::read_to_string(ws.path("evidence/index.html")).expect("index.html");
    assert!(
        html.contains("<section id=\"status\" class=\"status bad\">"),
        "the first screen is red"
    );
}

#[test]
fn report_refuses_an_as_of_before_the_vault_and_an_out_inside_the_vault_or_tree() {
    let ws = published();
    let before = ws.output(&["report", "--out", "e1", "--as-of", "2020-01-01T00:00:00Z"]);
    assert_failure(
        &before,
        3,
        "--as-of 2020-01-01T00:00:00Z: before the vault existed",
    );
    assert!(!ws.path("e1").exists());
    let in_vault = ws.output(&["report", "--out", "vault/evidence"]);
    assert_failure(&in_vault, 3, "inside --vault");
    assert!(!ws.path("vault/evidence").exists());
    let in_tree = ws.output(&["report", "--out", "out/evidence", "--tree", "out"]);
    assert_failure(&in_tree, 3, "inside --tree");
    assert!(!ws.path("out/evidence").exists());
    ws.run(&["keys", "list"]);
}

#[test]
fn report_refuses_an_out_whose_report_names_are_not_regular_files() {
    let ws = published();
    fs::create_dir_all(ws.path("evidence/index.html")).expect("a directory named index.html");
    let output = ws.output(&["report", "--out", "evidence"]);
    assert_failure(&output, 3, "index.html (not a regular file)");
    assert!(!ws.path("evidence/report.json").exists(), "nothing written");
    fs::create_dir(ws.path("piped")).expect("mkdir");
    let made = Command::new("mkfifo")
        .arg(ws.path("piped/report.json"))
        .status()
        .expect("mkfifo (coreutils)");
    assert!(made.success());
    let output = ws.output(&["report", "--out", "piped"]);
    assert_failure(&output, 3, "report.json (not a regular file)");
}

#[test]
fn with_a_ledger_the_report_shows_the_fleets_health_and_a_missing_ledger_writes_nothing() {
    let ws = published();
    let ledger = ws.path("ledger.jsonl");
    let start = polyseal_vault::Timestamp::now().unix_seconds() - 300;
    let line = |seconds: u64, path: &str| {
        let time = polyseal_vault::Timestamp::from_unix_seconds(start + seconds);
        format!(
            "{{\"time\":\"{time}\",\"mac\":\"0004f2a10001\",\"method\":\"GET\",\"path\":\"{path}\",\"status\":200,\"bytes\":1}}\n"
        )
    };
    let mut text = String::new();
    for boot in 0..3 {
        text.push_str(&line(boot * 60, "/000000000000.cfg"));
        text.push_str(&line(boot * 60 + 1, "/0004f2a10001-sip.cfg"));
    }
    std::fs::write(&ledger, text).expect("ledger");
    let missing = ws.output(&["report", "--out", "evidence", "--ledger", "nosuch.jsonl"]);
    assert_failure(&missing, 6, "nosuch.jsonl");
    assert!(
        !ws.path("evidence").exists(),
        "a refused report writes nothing"
    );
    let out = ws.output(&["report", "--out", "evidence", "--ledger", "ledger.jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.path("evidence/report.json")).expect("report.json"),
    )
    .expect("JSON");
    assert_eq!(
        report["ledger"]["by_health"]["reboot-loop"], 1,
        "{:#}",
        report["ledger"]
    );
    let page = std::fs::read_to_string(ws.path("evidence/index.html")).expect("page");
    assert!(page.contains("Provisioning ledger"), "the page shows it");
}
