//! Times the three fleet-sized operations on a vault of N phones and reports peak memory:
//! `cargo run --release -p polyseal-vault --example fleet -- [N] [DIR]`.
//!
//! The criterion bench (`benches/fleet.rs`) gives the statistically sound timings; this
//! program exists to measure peak resident memory of one process doing all three, which
//! criterion cannot. Run it under `/usr/bin/time -v` to cross-check `VmHWM`.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use polyseal_crypto::Mac;
use polyseal_vault::{
    Identities, InitialState, KeyState, NoPrompt, Recipient, StateChange, Vault, VaultSettings,
    VaultWriter,
};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let phones: u32 = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("polyseal-fleet-example"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let identity = age::x25519::Identity::generate();
    let identity_text = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
    let recipient = Recipient::parse("bench", &identity.to_public().to_string())?;
    let identities = Identities::from_text(&identity_text, "generated", Arc::new(NoPrompt))?;
    let macs: Vec<Mac> = (1..=phones)
        .map(|i| Mac::from_octets([0x00, 0x04, 0xf2, (i >> 16) as u8, (i >> 8) as u8, i as u8]))
        .collect::<Result<_, _>>()?;

    let mut writer = VaultWriter::create(&dir, VaultSettings::new(vec![recipient]))?;
    let data_key = writer.vault().unlock(&identities)?;
    let start = Instant::now();
    let added = writer.add_keys(&data_key, &macs, InitialState::Active)?;
    println!(
        "add {phones} keys, one transaction: {:?} ({} returned)",
        start.elapsed(),
        added.len()
    );
    drop(added);
    drop(writer);
    println!("peak RSS so far: {} kB", peak_rss_kb());

    let start = Instant::now();
    let vault = Vault::open(&dir)?;
    let listed = vault.records().count();
    println!("open + list inventory of {listed}: {:?}", start.elapsed());

    let start = Instant::now();
    let data_key = vault.unlock(&identities)?;
    let keys = vault.open_live_keys(&data_key)?;
    println!(
        "unlock + open all {} keys: {:?}",
        keys.len(),
        start.elapsed()
    );

    let start = Instant::now();
    vault.verify()?;
    println!("verify: {:?}", start.elapsed());
    drop((keys, vault));

    // The common small write on a big vault: one phone's state change.
    let start = Instant::now();
    let mut writer = VaultWriter::open(&dir)?;
    let data_key = writer.vault().unlock(&identities)?;
    let opened = start.elapsed();
    writer.set_states(
        &data_key,
        &[StateChange {
            mac: macs[0],
            generation: 1,
            to: KeyState::Deactivated,
        }],
    )?;
    println!(
        "open for writing {opened:?}, then one state change: {:?}",
        start.elapsed() - opened
    );
    println!("peak RSS: {} kB", peak_rss_kb());
    Ok(())
}

/// `VmHWM` from /proc/self/status: the peak resident set size (0 where there is no /proc).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
