//! Benchmarks of issue 15 (docs/PERFORMANCE.md, "serve and status"); run by `bench/serve.sh`.
//!
//! ```text
//! boot_storm storm POLYSEAL PHONES THREADS   # a boot storm against serve and nginx, side by side
//! boot_storm status PHONES DAYS              # a ledger of PHONES polling daily for DAYS, then status
//! ```
//!
//! The storm: every phone makes a mutual-TLS handshake with its own device certificate (ECDSA
//! P-256, made by the test PKI), then fetches the master, its key file and its config and
//! uploads its override, on a connection of its own; THREADS phones at a time. The same tree,
//! the same certificates and the same client are used against `polyseal serve` and against
//! nginx configured by `nginx-config`, one after the other in one run.
// A benchmark program: what it prints is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use polyseal_crypto::Mac;
use polyseal_fleet::ledger::{Compaction, Entry, LedgerWriter, read};
use polyseal_fleet::status::{StatusOptions, fleet_status};
use polyseal_testbed::{Client, Identity, Nginx, Pki, Serve, ServeOptions, Server};
use polyseal_vault::Timestamp;

const MASTER: &str = r#"<?xml version="1.0" standalone="yes"?>
<APPLICATION APP_FILE_PATH="sip.ld" CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg" OVERRIDES_DIRECTORY="overrides"/>
"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["storm", polyseal, phones, threads] => {
            storm(Path::new(polyseal), number(phones), number(threads))
        }
        ["status", phones, days] => status(number(phones), number(days)),
        _ => {
            eprintln!("usage: boot_storm storm POLYSEAL PHONES THREADS | status PHONES DAYS");
            std::process::exit(2);
        }
    }
}

fn number(text: &str) -> usize {
    text.parse()
        .unwrap_or_else(|_| fail(&format!("{text}: not a number")))
}

fn mac(n: usize) -> Mac {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    let [_, b3, b4, b5] = n.to_be_bytes();
    Mac::from_octets([0x00, 0x04, 0xf2, b3, b4, b5]).unwrap_or_else(|e| fail(&e.to_string()))
}

fn storm(polyseal: &Path, phones: usize, threads: usize) {
    let work = tempfile::tempdir().unwrap_or_else(|e| fail(&e.to_string()));
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap_or_else(|e| fail(&e.to_string()));
    write(&tree.join("000000000000.cfg"), MASTER.as_bytes());
    let config = vec![b'x'; 2048];
    for n in 0..phones {
        let mac = mac(n);
        write(
            &tree.join(format!("{mac}-key.cfg")),
            format!("<polycomConfig device.sec.configEncryption.key=\"Crypt=1;KeyDesc={mac}-g1;Key=00000000000000000000000000000000;\"/>").as_bytes(),
        );
        write(&tree.join(format!("{mac}-sip.cfg")), &config);
    }
    let pki = Pki::new();
    let started = Instant::now();
    let identities: Vec<Identity> = (0..phones).map(|n| pki.client_cert(&mac(n))).collect();
    eprintln!(
        "{phones} device certificates (ECDSA P-256) made in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("| server | phones | requests | wall time | requests/s | p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|---|");

    let serve_uploads = work.path().join("serve-uploads");
    std::fs::create_dir(&serve_uploads).unwrap_or_else(|e| fail(&e.to_string()));
    let options = ServeOptions {
        uploads: Some(serve_uploads),
        ledger: Some(work.path().join("ledger.jsonl")),
        ..ServeOptions::default()
    };
    let serve = Serve::start(polyseal, &tree, &pki, &options);
    run_storm("polyseal serve", &serve.server(&pki), &identities, threads);
    drop(serve);

    let nginx_uploads = work.path().join("nginx-uploads");
    std::fs::create_dir(&nginx_uploads).unwrap_or_else(|e| fail(&e.to_string()));
    let mut config = pki.nginx_config(&tree);
    config.uploads = Some(nginx_uploads);
    let nginx = Nginx::new()
        .with_lifetime(Duration::from_secs(3600))
        .serve(&config);
    run_storm(
        "nginx (nginx-config)",
        &nginx.server(&pki),
        &identities,
        threads,
    );
}

fn run_storm(name: &str, server: &Server, identities: &[Identity], threads: usize) {
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(identities.len() * 4));
    let failures = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(identity) = identities.get(n) else {
                        break;
                    };
                    let mac = mac(n);
                    // A connection of its own: the handshake is part of the phone's first request.
                    let client = Client::new(server, Some(identity));
                    for (put, path) in [
                        (false, "000000000000.cfg".to_owned()),
                        (false, format!("{mac}-key.cfg")),
                        (false, format!("{mac}-sip.cfg")),
                        (true, format!("overrides/{mac}-phone.cfg")),
                    ] {
                        let at = Instant::now();
                        let answer = if put {
                            client.put(&path, b"<polycomConfig/>")
                        } else {
                            client.get(&path)
                        };
                        mine.push(at.elapsed());
                        if !answer.is_ok_and(|a| a.status < 300) {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(mine);
            });
        }
    });
    let wall = started.elapsed();
    let mut latencies = latencies
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        latencies
            .get(index)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "| {name} | {} | {} | {:.1} s | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms |",
        identities.len(),
        latencies.len(),
        wall.as_secs_f64(),
        latencies.len() as f64 / wall.as_secs_f64(),
        at(0.5),
        at(0.99),
        at(1.0),
    );
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        eprintln!("{name}: {failed} requests failed or were refused");
    }
}

/// A ledger of `phones` polling daily for `days` (three requests a poll), written through the
/// ledger's own writer (compacting as it goes), then `status` over it.
fn status(phones: usize, days: usize) {
    let work = tempfile::tempdir().unwrap_or_else(|e| fail(&e.to_string()));
    let path = work.path().join("ledger.jsonl");
    let writer =
        LedgerWriter::open(&path, Compaction::default()).unwrap_or_else(|e| fail(&e.to_string()));
    let now = Timestamp::now().unix_seconds();
    let start = now - days as u64 * 86_400;
    let started = Instant::now();
    let mut requests = 0u64;
    for day in 0..days as u64 {
        for n in 0..phones {
            let mac = mac(n).to_string();
            let at = start + day * 86_400 + (n as u64 * 86_400 / phones as u64);
            for (i, path) in [
                "/000000000000.cfg".to_owned(),
                format!("/{mac}-key.cfg"),
                format!("/{mac}-sip.cfg"),
            ]
            .iter()
            .enumerate()
            {
                let mut entry = Entry::now("GET", path, 200, 2048);
                entry.time = Timestamp::from_unix_seconds(at + i as u64).to_string();
                entry.mac = Some(mac.clone());
                if i == 1 {
                    entry.key_served = Some(format!("{mac}-g1"));
                }
                writer
                    .append(&entry)
                    .unwrap_or_else(|e| fail(&e.to_string()));
                requests += 1;
            }
        }
    }
    drop(writer);
    let written = started.elapsed();
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let started = Instant::now();
    let ledger = read(&path).unwrap_or_else(|e| fail(&e.to_string()));
    let status = fleet_status(
        None,
        &ledger.entries,
        &ledger.summaries,
        vec![],
        false,
        &StatusOptions::new(Timestamp::from_unix_seconds(now)),
    );
    let judged = started.elapsed();
    println!(
        "{phones} phones, {days} days, {requests} requests appended in {:.1} s; ledger {:.1} MB \
         ({} summaries, {} requests kept); status read and judged it in {:.2} s: {:?}",
        written.as_secs_f64(),
        size as f64 / 1e6,
        ledger.summaries.len(),
        ledger.entries.len(),
        judged.as_secs_f64(),
        status.summary
    );
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

fn fail(message: &str) -> ! {
    eprintln!("boot_storm: {message}");
    std::process::exit(1)
}
