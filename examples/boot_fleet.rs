//! The demo's second half (scripts/demo.sh): serve a published tree with `polyseal serve` on
//! loopback, under a throwaway test PKI made on the fly, boot every phone of the tree with the
//! project's phone simulator (one of them given a file it cannot decrypt), then show what
//! `polyseal status` makes of the ledger, and stop the server.
//!
//! ```text
//! boot_fleet POLYSEAL TREE VAULT BROKEN_MAC
//! ```
//!
//! TREE is copied first: the published tree itself is left as it is.
// A demo program: what it prints is its purpose.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use polyseal_crypto::{ConfigKey, KeyDesc, KeyString, Mac, encrypt};
use polyseal_testbed::{KeyTiming, Phone, Pki, Serve, ServeOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [polyseal, tree, vault, broken] = args.as_slice() else {
        eprintln!("usage: boot_fleet POLYSEAL TREE VAULT BROKEN_MAC");
        std::process::exit(2);
    };
    let broken: Mac = broken
        .parse()
        .unwrap_or_else(|e| fail(&format!("{broken}: {e}")));
    let work = tempfile::tempdir().unwrap_or_else(|e| fail(&e.to_string()));
    let served = work.path().join("tree");
    copy_dir(Path::new(tree), &served);
    // An operator's slip: the phone's file sealed under a key it is never given.
    let stray = KeyString::new(KeyDesc::for_generation(&broken, 9), ConfigKey::generate());
    let sealed = encrypt(b"<polycomConfig/>", &stray).unwrap_or_else(|e| fail(&e.to_string()));
    write(&served.join(format!("{broken}-sip.cfg")), &sealed);

    let pki = Pki::new();
    let ledger = work.path().join("ledger.jsonl");
    let options = ServeOptions {
        ledger: Some(ledger.clone()),
        ..ServeOptions::default()
    };
    let mut serve = Serve::start(Path::new(polyseal), &served, &pki, &options);
    println!(
        "polyseal serve on https://{} (test PKI made just now)",
        serve.addr()
    );
    let server = serve.server(&pki);
    for mac in phones_of(&served) {
        let mut phone =
            Phone::new(mac, pki.client_cert(&mac), KeyTiming::Immediate).with_max_boots(4);
        let report = phone.boot(&server);
        let outcome = if report.is_running() {
            "running".to_owned()
        } else {
            format!(
                "gave up after {} boots ({:?})",
                report.boots.len(),
                report.end()
            )
        };
        println!("phone {mac}: {outcome}");
    }
    let (_, stopped) = serve.terminate();
    println!("polyseal serve stopped ({stopped})");
    println!();
    println!("== polyseal status --ledger LEDGER");
    let status = Command::new(polyseal)
        .arg("status")
        .arg("--ledger")
        .arg(&ledger)
        .env("POLYSEAL_VAULT", vault)
        .status()
        .unwrap_or_else(|e| fail(&format!("{polyseal}: {e}")));
    if !status.success() {
        fail("polyseal status failed");
    }
}

/// The phones of a published tree: one per key file.
fn phones_of(tree: &Path) -> Vec<Mac> {
    let mut macs: Vec<Mac> = std::fs::read_dir(tree)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", tree.display())))
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix("-key.cfg")
                .and_then(|mac| mac.parse().ok())
        })
        .collect();
    macs.sort();
    macs
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| fail(&e.to_string()));
    for entry in std::fs::read_dir(from)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", from.display())))
        .flatten()
    {
        let target: PathBuf = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| fail(&e.to_string()));
        }
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
}

fn fail(message: &str) -> ! {
    eprintln!("boot_fleet: {message}");
    std::process::exit(1)
}
