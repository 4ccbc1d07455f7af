//! `polyseal rollout`: move a fleet onto encryption in waves (polyseal-fleet's `rollout`;
//! docs/ROLLOUT.md).

use polyseal_fleet::rollout::{self, Canaries, RolloutView};
use polyseal_fleet::rotate;
use polyseal_vault::{Rollout, Timestamp, Vault, WavePhones};

use crate::cli::{
    RolloutAbortArgs, RolloutAdvanceArgs, RolloutCommand, RolloutLearnArgs, RolloutStartArgs,
    StatusArgs, TableFormat,
};
use crate::commands::format::learn_into;
use crate::commands::publish::run_checked;
use crate::commands::rotate::{check_republish, republish};
use crate::commands::status::{observe, read_ledger};
use crate::count::count;
use crate::failure::Failure;
use crate::session::{Session, parse_macs};
use crate::table::{Table, emit};

pub(crate) fn run(session: &Session, command: RolloutCommand) -> Result<(), Failure> {
    match command {
        RolloutCommand::Start(args) => start(session, &args),
        RolloutCommand::Learn(args) => learn(session, &args),
        RolloutCommand::Advance(args) => advance(session, &args),
        RolloutCommand::Abort(args) => abort(session, &args),
        RolloutCommand::Status(args) => status(session, &args),
    }
}

fn start(session: &Session, args: &RolloutStartArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let canaries = if args.canaries.is_empty() {
        let count = args
            .canary_count
            .map_or(rollout::DEFAULT_CANARY_COUNT, |n| n as usize);
        Canaries::Count(count)
    } else {
        Canaries::Named(parse_macs(&args.canaries)?)
    };
    // The tree is checked first: its phones are the fleet, and its files must make every
    // phone upload encrypted.
    let Some((checked, out)) = check_republish(writer.vault(), &args.republish, &[])? else {
        return Err(Failure::input(
            "rollout start needs --src SRC --out OUT: it publishes the fleet's key files and \
             its per-phone files in plaintext",
        ));
    };
    let planned = rollout::start(
        writer.vault(),
        checked.tree(),
        checked.phones(),
        canaries,
        Timestamp::now(),
    )?;
    let data_key = session.unlock(writer.vault())?;
    let canary_list = planned
        .canaries()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let again = writer.vault().rollout().is_some_and(|r| !r.is_complete());
    let change = format!(
        "started{} with {}: {canary_list}",
        if again { " again" } else { "" },
        count(planned.canaries().len(), "canary")
    );
    writer.set_rollout(&data_key, Some(planned), &change)?;
    session.say(&format!(
        "rollout {change}; every per-phone file is served in plaintext until a wave takes its \
         phone"
    ));
    run_checked(session, &mut writer, checked, &data_key, &out)?;
    session.say(
        "next: reboot the canaries so they read their keys, change a setting on each so it \
         uploads its override file, then `polyseal rollout learn --uploads DIR`",
    );
    Ok(())
}

fn learn(session: &Session, args: &RolloutLearnArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let rollout = current(writer.vault())?;
    if rollout.is_complete() {
        return Err(polyseal_fleet::Error::RolloutComplete.into());
    }
    let received = match &args.ledger {
        Some(path) => Some(rotate::received_uploads(
            &read_ledger(session, path)?.entries,
        )),
        None => None,
    };
    learn_into(
        session,
        &mut writer,
        &args.uploads,
        Some(rollout.canaries()),
        received.as_ref(),
        true,
    )?;
    session.say(
        "confirmed for the rollout; next: `polyseal rollout advance` encrypts the canaries' files",
    );
    Ok(())
}

/// The vault's rollout.
fn current(vault: &Vault) -> Result<Rollout, Failure> {
    Ok(vault
        .rollout()
        .cloned()
        .ok_or(polyseal_fleet::Error::NoRollout)?)
}

fn advance(session: &Session, args: &RolloutAdvanceArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let current = current(writer.vault())?;
    let observed = observe(session, Some(writer.vault()), &args.sources, &args.rules)?;
    let view = rollout::view(
        writer.vault(),
        &current,
        &observed.status,
        &observed.entries,
    );
    let wave = rollout::next_wave(writer.vault(), &current, &view, args.wave, Timestamp::now())?;
    let planned = check_republish(writer.vault(), &args.republish, &[])?;
    let data_key = session.unlock(writer.vault())?;
    let number = current.waves().len() + 1;
    let change = match wave.phones() {
        WavePhones::Listed(macs) => {
            format!("wave {number} advanced: {}", count(macs.len(), "phone"))
        }
        _ => format!("wave {number} advanced: every phone left"),
    };
    writer.set_rollout(&data_key, Some(current.advanced(wave)), &change)?;
    session.say(&format!("{change}; their per-phone files are encrypted"));
    republish(
        session,
        &mut writer,
        planned,
        &data_key,
        "wave's encrypted files",
    )
}

fn abort(session: &Session, args: &RolloutAbortArgs) -> Result<(), Failure> {
    let mut writer = session.writer()?;
    let current = current(writer.vault())?;
    let number = current.waves().len();
    let (before, wave) = current.aborted();
    if wave.is_none() {
        return Err(polyseal_fleet::Error::NothingToAbort.into());
    }
    let planned = check_republish(writer.vault(), &args.republish, &[])?;
    let data_key = session.unlock(writer.vault())?;
    let change = format!("wave {number} aborted");
    writer.set_rollout(&data_key, Some(before), &change)?;
    session.say(&format!(
        "{change}: its phones' per-phone files are served in plaintext again"
    ));
    republish(
        session,
        &mut writer,
        planned,
        &data_key,
        "wave's files in plaintext",
    )
}

fn status(session: &Session, args: &StatusArgs) -> Result<(), Failure> {
    let vault = session.vault()?;
    let Some(current) = vault.rollout() else {
        return Err(polyseal_fleet::Error::NoRollout.into());
    };
    let observed = observe(session, Some(&vault), &args.sources, &args.rules)?;
    let view = rollout::view(&vault, current, &observed.status, &observed.entries);
    match args.format {
        TableFormat::Json => {
            let json =
                serde_json::to_string_pretty(&view).map_err(|e| Failure::input(e.to_string()))?;
            emit(&format!("{json}\n"))
        }
        TableFormat::Table => print_view(session, &vault, &view),
    }
}

fn print_view(session: &Session, vault: &Vault, view: &RolloutView) -> Result<(), Failure> {
    let mut table = Table::new(&["wave", "mac", "files", "health", "detail"]);
    for wave in &view.waves {
        for phone in &wave.phones {
            table.row(vec![
                wave.number.to_string(),
                phone.mac.clone(),
                phone.settled.as_str().to_owned(),
                phone.health.as_str().to_owned(),
                phone.detail.clone(),
            ]);
        }
    }
    table.print()?;
    let state = if view.complete {
        "complete".to_owned()
    } else {
        format!(
            "{} advanced, {} still in plaintext",
            count(view.waves.len(), "wave"),
            count(view.plaintext_phones, "phone")
        )
    };
    let layout = if view.layout_confirmed {
        format!("layout {} (confirmed)", view.layout)
    } else {
        format!(
            "layout {} NOT confirmed: `polyseal rollout learn` first",
            vault.layout()
        )
    };
    session.say(&format!(
        "rollout started {} with canaries {}: {state}; {layout}",
        view.started,
        view.canaries.join(", ")
    ));
    Ok(())
}
