//! `polyseal status` on what really happened: simulated phones boot against `polyseal serve`
//! (its ledger) and against nginx (its access log in polyseal's format), one of them served a
//! file it cannot decrypt; the same healths come out of both.

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString};
use polyseal_testbed::{KeyTiming, Phone};
use serde_json::Value;

use crate::support::polyseal_bin;
use crate::support::tree::{BACKENDS, Backend, Setup, sealed, write};

/// `polyseal status SOURCE --format json` (no vault), parsed.
fn status_json(s: &Setup, extra: &[&str]) -> Value {
    let output = std::process::Command::new(polyseal_bin())
        .arg("status")
        .args(s.status_source())
        .args(["--format", "json"])
        .args(extra)
        .env("POLYSEAL_VAULT", s.state.path().join("no-vault"))
        .output()
        .expect("run status");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

fn row_of<'a>(status: &'a Value, mac: &str) -> &'a Value {
    status["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .find(|p| p["mac"] == mac)
        .unwrap_or_else(|| panic!("{mac} in {status:#}"))
}

#[test]
fn a_phone_looping_on_a_file_it_cannot_decrypt_is_a_reboot_loop_naming_the_file() {
    let mut seen = Vec::new();
    for backend in BACKENDS {
        let s = Setup::on(backend, 3);
        let looping = s.tree.phones[1].mac;
        let stray = KeyString::new(KeyDesc::for_generation(&looping, 9), ConfigKey::generate());
        write(
            s.tree.path(),
            &format!("{looping}-sip.cfg"),
            &sealed(b"<polycomConfig/>", &stray),
        );
        for (index, tree_phone) in s.tree.phones.iter().enumerate() {
            let mac = tree_phone.mac;
            let mut phone =
                Phone::new(mac, s.pki.client_cert(&mac), KeyTiming::Immediate).with_max_boots(4);
            let report = phone.boot(&s.server);
            assert_eq!(report.is_running(), index != 1, "{mac}: {report:#?}");
        }
        // A phone that asks for its neighbour's key is a signal, not a health.
        let nosy = s.phone_client(2);
        let _ = nosy.get(&format!("{looping}-key.cfg"));

        let status = status_json(&s, &[]);
        assert_eq!(status["schema"], "polyseal-status/1");
        let looping_row = row_of(&status, &looping.to_string());
        assert_eq!(
            looping_row["health"], "reboot-loop",
            "{backend:?}: {looping_row:#}"
        );
        let detail = looping_row["detail"].as_str().expect("detail");
        assert!(detail.contains(&format!("/{looping}-sip.cfg")), "{detail}");
        let restarts = looping_row["restarts"].as_array().expect("restarts");
        assert!(restarts.len() >= 2, "{looping_row:#}");
        for neighbour in [s.tree.phones[0].mac, s.tree.phones[2].mac] {
            let row = row_of(&status, &neighbour.to_string());
            assert_eq!(row["health"], "ok", "{backend:?}: {row:#}");
        }
        let nosy_row = row_of(&status, &s.tree.phones[2].mac.to_string());
        assert_eq!(nosy_row["other_phone_requests"], 1, "{nosy_row:#}");
        assert_eq!(status["summary"]["reboot-loop"], 1);
        assert_eq!(status["summary"]["ok"], 2);
        // A looser rule does not call it a loop: 5 boots needed, it made 4.
        let loose = status_json(&s, &["--loop-boots", "5"]);
        assert_ne!(
            row_of(&loose, &looping.to_string())["health"],
            "reboot-loop"
        );
        seen.push(
            status["phones"]
                .as_array()
                .expect("phones")
                .iter()
                .map(|p| (p["mac"].clone(), p["health"].clone()))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(seen[0], seen[1], "nginx and serve give the same healths");
    let _ = Backend::Serve;
}

#[test]
fn the_ledger_shows_the_key_served_the_uploads_generation_and_a_silent_phone() {
    let s = Setup::on(Backend::Serve, 1);
    let mac = s.tree.phones[0].mac;
    let mut phone = Phone::new(mac, s.pki.client_cert(&mac), KeyTiming::Immediate);
    assert!(phone.boot(&s.server).is_running());
    // The phone uploads its overrides under the key it holds (g1)…
    let client = s.phone_client(0);
    let g1 = &s.tree.phones[0].key;
    let put = client
        .put(
            &format!("overrides/{mac}-phone.cfg"),
            &sealed(b"<polycomConfig/>", g1),
        )
        .expect("an answer");
    assert_eq!(put.status, 201);
    let status = status_json(&s, &[]);
    let row = row_of(&status, &mac.to_string());
    assert_eq!(row["served_key_desc"], format!("{mac}-g1"), "{row:#}");
    assert_eq!(row["upload_key_desc"], format!("{mac}-g1"), "{row:#}");
    assert_eq!(row["health"], "ok", "{row:#}");
    // A silent phone: judged two days on.
    let later = status_json(&s, &["--as-of", "2099-01-01T00:00:00Z"]);
    assert_eq!(row_of(&later, &mac.to_string())["health"], "silent");
}

#[test]
fn control_characters_from_the_network_are_escaped_in_the_table() {
    let dir = tempfile::tempdir().expect("tmp");
    let ledger = dir.path().join("ledger.jsonl");
    // A request whose path would recolour the terminal, forge a row and clear the screen.
    let line = r#"{"time":"2026-12-01T00:00:00Z","mac":"0004f2c00001","method":"GET","path":"/\u001b[31mx\nforged  ok\r\u007f\u009b2J.cfg","status":404,"bytes":0}"#;
    std::fs::write(&ledger, format!("{line}\n")).expect("ledger");
    let output = std::process::Command::new(polyseal_bin())
        .args(["status", "--format", "table", "--ledger"])
        .arg(&ledger)
        .args(["--as-of", "2026-12-01T00:01:00Z"])
        .env("POLYSEAL_VAULT", dir.path().join("no-vault"))
        .output()
        .expect("run status");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let table = String::from_utf8(output.stdout).expect("UTF-8");
    let raw = |c: char| c.is_control() && c != '\n';
    assert!(!table.contains(raw), "{table:?}");
    assert_eq!(table.lines().count(), 2, "a header and one row: {table}");
    assert!(
        table.contains(r"/\x1b[31mx\nforged  ok\r\x7f\u{9b}2J.cfg answered 404"),
        "{table}"
    );
}
