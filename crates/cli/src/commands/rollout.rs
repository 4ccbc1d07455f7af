//! `polyseal rollout`: move a fleet onto encryption in waves (polyseal-fleet's `rollout`;
//! docs/ROLLOUT.md).

use std::path::Path;

use std::path::PathBuf;

use polyseal_fleet::publish::tree_identity;
use polyseal_fleet::rollout::{self, Canaries, Reads, RolloutView};
use polyseal_fleet::rotate;
use polyseal_vault::{Rollout, Timestamp, Vault, WavePhones};

use crate::cli::{
    RequestSourceArgs, RolloutAbortArgs, RolloutAdvanceArgs, RolloutCommand, RolloutLearnArgs,
    RolloutStartArgs, RolloutStatusArgs, TableFormat,
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
    // Unlocked before the checks end: a per-phone file already encrypted in the source is
    // read as its phone will read it.
    let data_key = session.unlock(writer.vault())?;
    let planned = rollout::start(
        writer.vault(),
        &data_key,
        checked.tree(),
        &out,
        checked.phones(),
        canaries,
        Timestamp::now(),
    )?;
    checked.check_encrypted_sources(writer.vault(), &data_key)?;
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
        count(planned.canaries().len(), "canary phone")
    );
    let kept = planned.layout();
    writer.set_rollout(&data_key, Some(planned), &change)?;
    session.say(&format!(
        "rollout {change}; every per-phone file is served in plaintext until a wave takes its \
         phone"
    ));
    if let Some(layout) = kept {
        session.say(&format!(
            "the layout {layout} stays confirmed for it (confirmed before the canaries were chosen again)"
        ));
    }
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
    let shown = learn_into(
        session,
        &mut writer,
        &args.uploads,
        Some(rollout.canaries()),
        received.as_ref(),
        true,
    )?;
    let silent: Vec<String> = rollout
        .canaries()
        .iter()
        .filter(|mac| !shown.contains(mac))
        .map(ToString::to_string)
        .collect();
    if !silent.is_empty() {
        session.warn(&format!(
            "no encrypted upload yet from {} ({}): the layout is not proven on {}; if they run \
             another model or firmware, wait for their uploads and run learn again",
            silent.join(", "),
            if silent.len() == 1 {
                "a canary"
            } else {
                "canaries"
            },
            if silent.len() == 1 { "it" } else { "them" },
        ));
    }
    session.say(if rollout.waves().is_empty() {
        "confirmed for the rollout; next: `polyseal rollout advance` encrypts the canaries' files"
    } else if writer
        .vault()
        .rollout()
        .is_some_and(|r| r.published().is_none())
    {
        "confirmed for the rollout; next: `polyseal publish --src SRC --out OUT` serves the \
         waves' files in it, and the last wave's phones must read them before `advance`"
    } else {
        "confirmed for the rollout; next: `polyseal rollout advance` when the last wave is ok"
    });
    Ok(())
}

/// The vault's rollout.
fn current(vault: &Vault) -> Result<Rollout, Failure> {
    Ok(vault
        .rollout()
        .cloned()
        .ok_or(polyseal_fleet::Error::NoRollout)?)
}

/// The rollout's tree, to judge what phones read by (docs/ROLLOUT.md, "The tree is part of
/// the state"): `out`, or the one `rollout start --out` recorded. nginx's log names no KeyDesc,
/// so with it the tree is needed; with the ledger it is read when it is here (`needed`: always
/// for `advance`, the gate). A rollout reads one server's record: both are refused.
fn judging_tree(
    rollout: &Rollout,
    sources: &RequestSourceArgs,
    out: Option<&Path>,
    needed: bool,
) -> Result<Option<PathBuf>, Failure> {
    if sources.ledger.is_some() && sources.nginx_log.is_some() {
        return Err(Failure::input(
            "--ledger and --nginx-log together: a rollout reads the record of the one server \
             that serves its tree",
        ));
    }
    let needed = needed || sources.nginx_log.is_some();
    let root = match (out, rollout.tree()) {
        (Some(out), _) => out.to_owned(),
        (None, Some(tree)) if needed || Path::new(tree).is_dir() => PathBuf::from(tree),
        (None, _) if !needed => return Ok(None),
        (None, _) => {
            return Err(Failure::input(
                "this rollout records no tree: give --out OUT, the tree its phones are served, \
                 to judge what they read",
            ));
        }
    };
    if !root.is_dir() {
        return Err(Failure::input(format!(
            "{}: is not a directory: the rollout's tree, which its phones are served, must be \
             here to judge what they read",
            root.display()
        ))
        .with_hint(
            "a tree moved away: move it back (or abort every wave and start the rollout again)",
        ));
    }
    check_rollout_tree(rollout, &root)?;
    Ok(Some(root))
}

/// Where the requests come from, judged by `tree`.
fn reads<'a>(sources: &RequestSourceArgs, tree: Option<&'a Path>) -> Reads<'a> {
    match (sources.nginx_log.is_some(), tree) {
        (true, Some(tree)) => Reads::Nginx(tree),
        _ => Reads::Ledger(tree),
    }
}

/// Refuses `out` when it is not the tree the rollout serves the phones from (`rollout start
/// --out`): what phones read there is not what this tree holds.
fn check_rollout_tree(rollout: &Rollout, out: &Path) -> Result<(), Failure> {
    let Some(tree) = rollout.tree() else {
        return Ok(());
    };
    if tree_identity(out)? == tree {
        return Ok(());
    }
    Err(Failure::input(format!(
        "{}: is not the rollout's tree, {tree}, which its phones are served",
        out.display()
    ))
    .with_hint("give that --out; a fleet moved to another tree starts its rollout again"))
}

fn advance(session: &Session, args: &RolloutAdvanceArgs) -> Result<(), Failure> {
    let waived = parse_macs(&args.waived)?;
    let mut writer = session.writer()?;
    let current = current(writer.vault())?;
    let out = args.republish.out.as_deref();
    if let Some(out) = out {
        check_rollout_tree(&current, out)?;
    }
    let tree = judging_tree(&current, &args.sources, out, true)?;
    let observed = observe(session, Some(writer.vault()), &args.sources, &args.rules)?;
    // Unlocked before the gate: a file counts only if its phone's key opens it in the
    // vault's layout.
    let data_key = session.unlock(writer.vault())?;
    let view = rollout::view(
        writer.vault(),
        &current,
        &observed.status,
        &observed.entries,
        reads(&args.sources, tree.as_deref()),
        Some(&data_key),
    );
    let wave = rollout::next_wave(
        writer.vault(),
        &current,
        &view,
        args.wave,
        &waived,
        Timestamp::now(),
    )?;
    let planned = check_republish(writer.vault(), &args.republish, &[])?;
    if let Some((checked, _)) = &planned {
        checked.check_encrypted_sources(writer.vault(), &data_key)?;
    }
    let number = current.waves().len() + 1;
    let mut change = match wave.phones() {
        WavePhones::Listed(macs) => {
            format!("wave {number} advanced: {}", count(macs.len(), "phone"))
        }
        _ => format!("wave {number} advanced: every phone left"),
    };
    if !waived.is_empty() {
        let names: Vec<String> = waived.iter().map(ToString::to_string).collect();
        change.push_str(&format!(
            " ({} of wave {} waived)",
            names.join(", "),
            number - 1
        ));
    }
    writer.set_rollout(&data_key, Some(current.advanced(wave)), &change)?;
    session.say(&format!(
        "{change}; their per-phone files are {}",
        if planned.is_some() {
            "encrypted"
        } else {
            "to be encrypted"
        }
    ));
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
    let confirmed = current.layout().is_some();
    let (before, wave) = current.aborted();
    if wave.is_none() {
        return Err(polyseal_fleet::Error::NothingToAbort.into());
    }
    if let Some(out) = &args.republish.out {
        check_rollout_tree(&before, out)?;
    }
    let planned = check_republish(writer.vault(), &args.republish, &[])?;
    let data_key = session.unlock(writer.vault())?;
    if let Some((checked, _)) = &planned {
        checked.check_encrypted_sources(writer.vault(), &data_key)?;
    }
    let change = format!("wave {number} aborted");
    writer.set_rollout(&data_key, Some(before), &change)?;
    session.say(&format!(
        "{change}: its phones' per-phone files are {} in plaintext again",
        if planned.is_some() {
            "served"
        } else {
            "to be served"
        }
    ));
    if confirmed {
        session.say(&format!(
            "the layout {} is no longer confirmed for the rollout: find why the wave failed, \
             then `polyseal rollout learn` or `polyseal format set` before advancing again",
            writer.vault().layout()
        ));
    }
    republish(
        session,
        &mut writer,
        planned,
        &data_key,
        "wave's files in plaintext",
    )
}

fn status(session: &Session, args: &RolloutStatusArgs) -> Result<(), Failure> {
    let vault = session.vault()?;
    let Some(current) = vault.rollout() else {
        return Err(polyseal_fleet::Error::NoRollout.into());
    };
    let tree = judging_tree(current, &args.status.sources, args.out.as_deref(), false)?;
    // Asked once the arguments are known good: a refusal is one line. Without an identity
    // the files are judged by their headers.
    let data_key = session.unlock_if_given(&vault)?.ok();
    if tree.is_none() {
        session.say(
            "note: the rollout's tree is not here: the ledger's KeyDescs alone say which files \
             were encrypted",
        );
    }
    let args = &args.status;
    let observed = observe(session, Some(&vault), &args.sources, &args.rules)?;
    let view = rollout::view(
        &vault,
        current,
        &observed.status,
        &observed.entries,
        reads(&args.sources, tree.as_deref()),
        data_key.as_ref(),
    );
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
    let tree = match &view.published {
        Some(time) => format!("tree published {time}"),
        None if view.waves.is_empty() => "no wave yet".to_owned(),
        None => "tree NOT published since the last change: `polyseal publish` first".to_owned(),
    };
    session.say(&format!(
        "rollout started {} with canaries {}: {state}; {layout}; {tree}",
        view.started,
        view.canaries.join(", ")
    ));
    Ok(())
}
