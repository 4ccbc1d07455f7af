//! `polyseal keys`: make, list, show and change phones' keys.

use polyseal_crypto::Mac;
use polyseal_vault::{InitialState, KeyState, Record, StateChange, Vault};

use crate::cli::{
    KeysAddArgs, KeysCommand, KeysListArgs, KeysShowArgs, KeysStateArgs, TargetState,
};
use crate::count::count;
use crate::failure::Failure;
use crate::phones::read_mac_list;
use crate::session::{Session, parse_mac, parse_macs};
use crate::table::{emit, print_listing};

pub(crate) fn run(session: &Session, command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Add(args) => add(session, &args),
        KeysCommand::List(args) => list(session, &args),
        KeysCommand::Show(args) => show(session, &args),
        KeysCommand::State(args) => state(session, &args),
    }
}

fn add(session: &Session, args: &KeysAddArgs) -> Result<(), Failure> {
    let macs = match &args.from {
        Some(path) => read_mac_list(path)?,
        None => parse_macs(&args.macs)?,
    };
    let mut writer = session.writer()?;
    let (have, need): (Vec<Mac>, Vec<Mac>) = macs.into_iter().partition(|mac| {
        writer
            .vault()
            .record(mac)
            .is_some_and(|r| r.active().is_some())
    });
    for mac in &have {
        session.detail(&format!("{mac}: already has an active key"));
    }
    if need.is_empty() {
        session.say(&format!(
            "no keys made: {} already {} an active key",
            count(have.len(), "phone"),
            if have.len() == 1 { "has" } else { "have" }
        ));
        return Ok(());
    }
    let data_key = session.unlock(writer.vault())?;
    let added = writer.add_keys(&data_key, &need, InitialState::Active)?;
    for key in &added {
        session.detail(&format!("{}: made {}", key.mac, key.key));
    }
    session.say(&format!(
        "made {} ({} already had one)",
        count(added.len(), "active key"),
        count(have.len(), "phone")
    ));
    Ok(())
}

/// One line of the inventory.
#[derive(serde::Serialize)]
struct InventoryRow {
    mac: String,
    generation: u32,
    key_desc: String,
    state: String,
    state_since: String,
    created: String,
    fingerprint: String,
    confirmed: Option<String>,
    polycom_oui: bool,
}

fn inventory(vault: &Vault) -> Vec<InventoryRow> {
    vault
        .records()
        .flat_map(|record: &Record| {
            let mac = record.mac();
            record.generations().iter().map(move |g| InventoryRow {
                mac: mac.to_string(),
                generation: g.number(),
                key_desc: g.key_desc().to_string(),
                state: g.state().to_string(),
                state_since: g.state_since().to_string(),
                created: g.created().to_string(),
                fingerprint: g.fingerprint().to_string(),
                confirmed: g.confirmed().map(|c| format!("{} ({})", c.at, c.evidence)),
                polycom_oui: mac.is_polycom_oui(),
            })
        })
        .collect()
}

fn list(session: &Session, args: &KeysListArgs) -> Result<(), Failure> {
    let vault = session.vault_unchecked()?;
    let rows = inventory(&vault);
    print_listing(
        &rows,
        args.format,
        &[
            "mac",
            "gen",
            "key_desc",
            "state",
            "since",
            "created",
            "fingerprint",
            "confirmed",
        ],
        |row| {
            vec![
                row.mac.clone(),
                row.generation.to_string(),
                row.key_desc.clone(),
                row.state.clone(),
                row.state_since.clone(),
                row.created.clone(),
                row.fingerprint.clone(),
                row.confirmed.clone().unwrap_or_default(),
            ]
        },
    )
}

fn show(session: &Session, args: &KeysShowArgs) -> Result<(), Failure> {
    let mac = parse_mac(&args.mac)?;
    if !args.reveal {
        return Err(Failure::input(format!(
            "refusing to print the key of {mac} without --reveal (it is a secret)"
        ))
        .with_hint("add --reveal if you really need the key string; `polyseal keys list` shows fingerprints"));
    }
    let vault = session.vault()?;
    let data_key = session.unlock(&vault)?;
    let opened = vault.open_key(&data_key, &mac, args.generation)?;
    emit(&format!("{}\n", &*opened.key.expose()))
}

fn state(session: &Session, args: &KeysStateArgs) -> Result<(), Failure> {
    let mac = parse_mac(&args.mac)?;
    let to = match args.state {
        TargetState::Active => KeyState::Active,
        TargetState::Deactivated => KeyState::Deactivated,
        TargetState::Compromised => KeyState::Compromised,
        TargetState::Destroyed => KeyState::Destroyed,
    };
    let mut writer = session.writer()?;
    let record = writer
        .vault()
        .record(&mac)
        .ok_or_else(|| Failure::input(format!("{mac} has no keys in the vault")))?;
    let generation = match args.generation {
        Some(n) => n,
        None => record
            .active()
            .or_else(|| record.latest())
            .map(|g| g.number())
            .ok_or_else(|| Failure::input(format!("{mac} has no keys in the vault")))?,
    };
    let change = StateChange {
        mac,
        generation,
        to,
    };
    let data_key = session.unlock(writer.vault())?;
    // Destroying or compromising a key replaces the data key, so a copy of the record saved
    // before no longer opens through this vault (docs/VAULT.md, crypto-shredding).
    match writer.set_states(&data_key, &[change])? {
        Some(_) => session.say(&format!(
            "{mac} generation {generation} is now {to}; the data key was replaced and every \
             other key re-sealed under it"
        )),
        None => session.say(&format!("{mac} generation {generation} is now {to}")),
    }
    Ok(())
}
