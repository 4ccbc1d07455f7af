//! `polyseal log`: the vault's event log.

use crate::cli::{LogCommand, LogShowArgs};
use crate::failure::Failure;
use crate::session::Session;
use crate::table::emit;

pub(crate) fn run(session: &Session, command: LogCommand) -> Result<(), Failure> {
    match command {
        LogCommand::Show(args) => show(session, &args),
        LogCommand::Verify => {
            let vault = session.vault()?;
            let report = vault.verify()?;
            emit(&format!(
                "event log verified: {} events, {} phones, {} key generations\nhead {} {}\n",
                report.head.seq,
                report.phones,
                report.generations,
                report.head.seq,
                report.head.hash_hex()
            ))
        }
    }
}

fn show(session: &Session, args: &LogShowArgs) -> Result<(), Failure> {
    let vault = session.vault()?;
    if args.json {
        let path = session.vault_dir().join("events.log");
        let text = std::fs::read_to_string(&path).map_err(|e| Failure::io(&path, "read", &e))?;
        return emit(&text);
    }
    let mut text = String::new();
    for event in vault.events()? {
        text.push_str(&format!(
            "{:>6}  {}  {:?}\n",
            event.seq, event.time, event.kind
        ));
    }
    emit(&text)
}
