//! `polyseal serve` itself, the real binary on loopback: what it trusts and says at start, a
//! tree published anew served without a restart, SIGTERM with an upload in flight, the ledger,
//! requests meant to break it, and the starts it refuses. (The per-MAC rule and the phones'
//! boots run against it and nginx alike in `scenarios`.)

use std::fs;
use std::time::Duration;

use polyseal_testbed::{Client, Pki, Serve, ServeOptions, openssl_exchange};

use crate::support::tree::{Backend, Setup, Tree, write};
use crate::support::{assert_failure, polyseal_bin};

#[test]
fn without_a_client_ca_serve_trusts_the_bundled_polycom_chain_and_says_so() {
    let pki = Pki::new();
    let tree = Tree::publish(1);
    let options = ServeOptions {
        args: vec!["--insecure-no-client-cert".to_owned()],
        ..ServeOptions::default()
    };
    // Without --client-ca and without the insecure flag: the bundled chain. The test PKI's
    // phone does not chain to Polycom's CA, so it gets nothing.
    let bundled = ServeOptions {
        bundled_ca: true,
        ..ServeOptions::default()
    };
    let serve = Serve::start(polyseal_bin(), tree.path(), &pki, &bundled);
    assert!(
        serve
            .stderr()
            .contains("client certificates from the Polycom device CA chain bundled with polyseal"),
        "{}",
        serve.stderr()
    );
    let phone = pki.client_cert(&tree.phones[0].mac);
    let client = Client::new(&serve.server(&pki), Some(&phone));
    assert!(
        client.get("000000000000.cfg").is_err(),
        "refused in the handshake"
    );
    drop(serve);
    // Without client certificates only when told, with a warning; then anyone gets any key.
    let serve = Serve::start(polyseal_bin(), tree.path(), &pki, &options);
    assert!(
        serve.stderr().contains("WITHOUT client certificates"),
        "{}",
        serve.stderr()
    );
    let anyone = Client::new(&serve.server(&pki), None);
    let key_file = format!("{}-key.cfg", tree.phones[0].mac);
    assert_eq!(anyone.get(&key_file).expect("an answer").status, 200);
}

#[test]
fn a_tree_published_anew_is_served_without_a_restart() {
    let s = Setup::on(Backend::Serve, 1);
    let client = s.phone_client(0);
    let before = client.get("site.cfg").expect("an answer");
    assert_eq!(before.status, 200);
    // As publish swaps its tree in: a new directory renamed over the old path.
    let next = s.tree.path().with_extension("next");
    fs::create_dir(&next).expect("next tree");
    write(
        &next,
        "site.cfg",
        b"<polycomConfig>published anew</polycomConfig>",
    );
    let old = s.tree.path().with_extension("old");
    fs::rename(s.tree.path(), &old).expect("move old");
    fs::rename(&next, s.tree.path()).expect("swap in");
    let after = client.get("site.cfg").expect("an answer");
    assert_eq!(after.body, b"<polycomConfig>published anew</polycomConfig>");
    fs::remove_dir_all(&old).expect("clean up");
}

#[test]
fn sigterm_lets_the_response_in_flight_finish_and_exits_0_within_5_seconds() {
    let mut s = Setup::on(Backend::Serve, 1);
    // Larger than the socket buffers: the server is still sending when the signal comes.
    let firmware: Vec<u8> = (0..32 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    write(s.tree.path(), "sip.ld", &firmware);
    let client = s.phone_client(0);
    let crate::support::tree::Provider::Serve(serve) = &mut s.provider else {
        unreachable!("a serve setup")
    };
    let mut stopped = None;
    let answer = client
        .get_holding("sip.ld", || stopped = Some(serve.terminate_later()))
        .expect("an answer");
    let (took, status) = stopped.expect("headers came").join().expect("terminate");
    assert_eq!(answer.status, 200);
    assert!(
        answer.body == firmware,
        "the whole file, {} bytes",
        answer.body.len()
    );
    assert!(status.success(), "exit {status:?}: {}", s.log());
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(s.log().contains("stopped"), "{}", s.log());
}

#[test]
fn the_ledger_records_every_request_with_the_mac_and_the_key_desc_served() {
    let s = Setup::on(Backend::Serve, 2);
    let (a, b) = (s.tree.phones[0].mac, s.tree.phones[1].mac);
    let client = s.phone_client(0);
    for path in [
        "000000000000.cfg".to_owned(),
        format!("{a}-key.cfg"),
        format!("{a}-sip.cfg"),
        format!("{b}-sip.cfg"),
    ] {
        client.get(&path).expect("an answer");
    }
    client
        .put(&format!("overrides/{a}-phone.cfg"), b"<polycomConfig/>")
        .expect("an answer");
    let ledger = fs::read_to_string(s.ledger()).expect("the ledger");
    let lines: Vec<serde_json::Value> = ledger
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 5, "{ledger}");
    for line in &lines {
        assert_eq!(line["mac"], a.to_string(), "{line}");
    }
    let sip = &lines[2];
    assert_eq!(sip["path"], format!("/{a}-sip.cfg"));
    assert_eq!(sip["status"], 200);
    assert_eq!(sip["key_desc"], format!("{a}-g1"), "{sip}");
    assert_eq!(
        lines[3]["status"], 403,
        "another phone's file is refused and recorded"
    );
    assert_eq!(lines[4]["method"], "PUT");
    assert_eq!(lines[4]["status"], 201);
    // The ledger is outside the tree and the uploads, readable by the server's group.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(s.ledger()).expect("ledger").permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn no_request_however_malformed_stops_the_server() {
    let s = Setup::on(Backend::Serve, 1);
    let a = s.tree.phones[0].mac;
    let client = s.phone_client(0);
    let long = "a".repeat(20_000);
    for path in [
        "%".to_owned(),
        "%ff%fe".to_owned(),
        "..%2f..%2fetc%2fpasswd".to_owned(),
        "../../etc/passwd".to_owned(),
        "%00".to_owned(),
        format!("{a}-key.cfg%00.txt"),
        long,
        "contacts/".to_owned(),
        "".to_owned(),
    ] {
        // Any answer but a file, or a refused connection for a request too big to read.
        if let Ok(response) = client.get(&path) {
            assert!(response.status >= 400, "{path}: {}", response.status);
        }
    }
    let still = client.get("000000000000.cfg").expect("still serving");
    assert_eq!(still.status, 200, "{}", s.log());
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn a_start_that_cannot_serve_safely_is_refused_with_one_line() {
    let pki = Pki::new();
    let tree = Tree::publish(1);
    let run = |args: &[&str]| {
        std::process::Command::new(polyseal_bin())
            .arg("serve")
            .arg("--cert")
            .arg(pki.server_cert_path())
            .arg("--key")
            .arg(pki.server_key_path())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .expect("run serve")
    };
    let tree_path = tree.path().display().to_string();
    let nosuch = format!("{tree_path}/nosuch");
    assert_failure(&run(&["--tree", &nosuch]), 6, "nosuch");
    let inside = format!("{tree_path}/ledger.jsonl");
    assert_failure(
        &run(&["--tree", &tree_path, "--ledger", &inside]),
        3,
        "inside",
    );
    assert!(!tree.path().join("ledger.jsonl").exists());
    // The same, spelled through `..` or a symbolic link to the tree.
    let outside = tempfile::tempdir().expect("tmp");
    let link = outside.path().join("link");
    std::os::unix::fs::symlink(tree.path(), &link).expect("symlink");
    let name = tree.path().file_name().expect("name").to_string_lossy();
    for spelled in [
        format!("{}/ledger.jsonl", link.display()),
        format!("{tree_path}/../{name}/ledger.jsonl"),
    ] {
        assert_failure(
            &run(&["--tree", &tree_path, "--ledger", &spelled]),
            3,
            "inside",
        );
    }
    assert!(!tree.path().join("ledger.jsonl").exists());
    // A ledger with another name (a hard link) in the tree.
    let planted = outside.path().join("ledger.jsonl");
    fs::write(&planted, "").expect("ledger");
    fs::hard_link(&planted, tree.path().join("copy.jsonl")).expect("hard link");
    assert_failure(
        &run(&[
            "--tree",
            &tree_path,
            "--ledger",
            &planted.display().to_string(),
        ]),
        3,
        "hard links",
    );
    let uploads_inside = format!("{tree_path}/uploads");
    fs::create_dir(&uploads_inside).expect("dir");
    assert_failure(
        &run(&["--tree", &tree_path, "--uploads", &uploads_inside]),
        3,
        "overlaps the tree",
    );
    let not_pem = tree.path().join("site.cfg").display().to_string();
    assert_failure(
        &run(&["--tree", &tree_path, "--client-ca", &not_pem]),
        3,
        "site.cfg",
    );
}

#[test]
fn a_killed_server_loses_at_most_the_torn_last_ledger_line() {
    let mut s = Setup::on(Backend::Serve, 1);
    let a = s.tree.phones[0].mac;
    let client = s.phone_client(0);
    for path in [
        "000000000000.cfg".to_owned(),
        format!("{a}-key.cfg"),
        format!("{a}-sip.cfg"),
    ] {
        assert_eq!(client.get(&path).expect("an answer").status, 200);
    }
    let crate::support::tree::Provider::Serve(serve) = &mut s.provider else {
        unreachable!("a serve setup")
    };
    serve.kill();
    // Every answered request is in the ledger, whole: each line was written before its
    // response.
    let ledger = fs::read_to_string(s.ledger()).expect("ledger");
    assert_eq!(ledger.lines().count(), 3, "{ledger}");
    // A write cut by the kill can only tear the last line: status skips it and says so.
    fs::write(
        s.ledger(),
        format!("{ledger}{{\"time\":\"2026-12-04T12:00:0"),
    )
    .expect("tear");
    let output = std::process::Command::new(polyseal_bin())
        .args(["status", "--format", "json", "--ledger"])
        .arg(s.ledger())
        .env("POLYSEAL_VAULT", s.state.path().join("no-vault"))
        .output()
        .expect("status");
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("torn"));
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(status["requests"], 3);
    assert_eq!(status["torn_last_line"], true);
}

#[test]
fn clients_that_connect_and_say_nothing_hold_no_phone_back_and_are_dropped() {
    use std::io::Read as _;
    let s = Setup::on(Backend::Serve, 1);
    let silent: Vec<std::net::TcpStream> = (0..20)
        .map(|_| std::net::TcpStream::connect(s.addr()).expect("connect"))
        .collect();
    // A phone is still served at once.
    let client = s.phone_client(0);
    let started = std::time::Instant::now();
    assert_eq!(
        client.get("000000000000.cfg").expect("an answer").status,
        200
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A client that never completes its handshake is dropped within the handshake time
    // (10 s), not held.
    let mut first = &silent[0];
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let started = std::time::Instant::now();
    let mut byte = [0u8; 1];
    let read = first.read(&mut byte);
    assert!(
        matches!(read, Ok(0)) || read.is_err() && started.elapsed() < Duration::from_secs(15),
        "{read:?} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn an_upload_too_large_that_waits_for_100_continue_is_refused_before_any_body() {
    let s = Setup::on(Backend::Serve, 1);
    let a = s.tree.phones[0].mac;
    let request = format!(
        "PUT /{a}-app.log HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\
         Expect: 100-continue\r\n\r\n"
    );
    // Answered while the client still waits (the body timeout is 30 s), and never invited to
    // send the gigabyte.
    let answer = openssl_exchange(
        s.addr(),
        &s.pki.client_cert(&a),
        request.as_bytes(),
        Duration::from_secs(10),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    assert!(!answer.contains("100 Continue"), "{answer:?}");
}

#[test]
fn an_upload_cut_midway_leaves_nothing_in_the_uploads_directory() {
    let s = Setup::on(Backend::Serve, 1);
    let a = s.tree.phones[0].mac;
    let request =
        format!("PUT /{a}-app.log HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial");
    let answer = openssl_exchange(
        s.addr(),
        &s.pki.client_cert(&a),
        request.as_bytes(),
        Duration::from_secs(1),
    );
    assert!(answer.is_empty(), "{answer:?}");
    // The connection is gone; the server drops the request and its temporary file.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let left = || {
        fs::read_dir(s.tree.uploads.path())
            .expect("uploads")
            .map(|e| e.expect("entry").file_name())
            .collect::<Vec<_>>()
    };
    while !left().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(left(), Vec::<std::ffi::OsString>::new());
    // And the phone's next upload is whole.
    let client = s.phone_client(0);
    let put = client.put(&format!("{a}-app.log"), b"whole").expect("put");
    assert_eq!(put.status, 201);
    assert_eq!(
        fs::read(s.tree.uploads.path().join(format!("{a}-app.log"))).expect("stored"),
        b"whole"
    );
}

#[test]
fn handshakes_tls_refused_and_requests_hyper_could_not_parse_are_in_the_ledger() {
    let s = Setup::on(Backend::Serve, 1);
    let a = s.tree.phones[0].mac;
    let foreign = Client::new(&s.server, Some(&s.pki.foreign_client_cert(&a)));
    assert!(foreign.get("000000000000.cfg").is_err());
    // A connection that only opens and closes (a port probe) is not a request.
    drop(std::net::TcpStream::connect(s.addr()).expect("connect"));
    // Headers past the 16 KiB bound: answered 431 by hyper, before any handler.
    let request = format!(
        "GET /000000000000.cfg HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let answer = openssl_exchange(
        s.addr(),
        &s.pki.client_cert(&a),
        request.as_bytes(),
        Duration::from_secs(5),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
    let lines = s.ledger_lines(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let refused = lines
        .iter()
        .find(|l| l["status"] == 0)
        .expect("the refused handshake");
    let client = refused["client"].as_str().expect("client");
    assert!(
        client.starts_with("refused in the TLS handshake from 127.0.0.1: "),
        "{client}"
    );
    let too_large = lines.iter().find(|l| l["status"] == 431).expect("the 431");
    assert_eq!(too_large["mac"], a.to_string());
}
