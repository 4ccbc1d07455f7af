//! Makes a vault of N phones with a year's history for `bench/report.sh`: every phone added,
//! rotated once (a pre-active generation, an operator's confirmation, the finish), and one in a
//! hundred compromised, about 5N events in all. Writes the vault to DIR and its identity to
//! DIR.identity: `cargo run --release -p polyseal-fleet --example report_fleet -- N DIR`.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use polyseal_crypto::Mac;
use polyseal_vault::{
    Confirmation, Cryptoperiod, Identities, InitialState, KeyState, NoPrompt, Recipient,
    StateChange, VaultSettings, VaultWriter,
};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let phones: u32 = args
        .next()
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100_000);
    let dir = PathBuf::from(args.next().ok_or("usage: report_fleet N DIR")?);
    let identity = age::x25519::Identity::generate();
    let identity_text = age::secrecy::ExposeSecret::expose_secret(&identity.to_string()).to_owned();
    let mut identity_path = dir.clone().into_os_string();
    identity_path.push(".identity");
    std::fs::write(&identity_path, format!("{identity_text}\n"))?;
    let recipient = Recipient::parse("bench", &identity.to_public().to_string())?;
    let identities = Identities::from_text(&identity_text, "generated", Arc::new(NoPrompt))?;
    let macs: Vec<Mac> = (1..=phones)
        .map(|i| Mac::from_octets([0x00, 0x04, 0xf2, (i >> 16) as u8, (i >> 8) as u8, i as u8]))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    let mut settings = VaultSettings::new(vec![recipient]);
    settings.cryptoperiod = Cryptoperiod::from_days(365);
    let mut writer = VaultWriter::create(&dir, settings)?;
    let data_key = writer.vault().unlock(&identities)?;
    drop(writer.add_keys(&data_key, &macs, InitialState::Active)?);
    drop(writer.add_keys(&data_key, &macs, InitialState::PreActive)?);
    let confirmations: Vec<Confirmation> = macs
        .iter()
        .map(|&mac| Confirmation {
            mac,
            generation: 2,
            evidence: "operator".to_owned(),
        })
        .collect();
    writer.confirm(&data_key, &confirmations)?;
    let finish: Vec<StateChange> = macs
        .iter()
        .flat_map(|&mac| {
            [
                StateChange {
                    mac,
                    generation: 1,
                    to: KeyState::Deactivated,
                },
                StateChange {
                    mac,
                    generation: 2,
                    to: KeyState::Active,
                },
            ]
        })
        .collect();
    writer.set_states(&data_key, &finish)?;
    let compromised: Vec<StateChange> = macs
        .iter()
        .step_by(100)
        .map(|&mac| StateChange {
            mac,
            generation: 2,
            to: KeyState::Compromised,
        })
        .collect();
    writer.set_states(&data_key, &compromised)?;
    let events = writer.vault().events()?.len();
    println!(
        "made a vault of {phones} phones with {events} events in {:?}",
        start.elapsed()
    );
    Ok(())
}
