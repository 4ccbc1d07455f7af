//! `polyseal recipients`: who can open the vault.

use polyseal_vault::Recipient;

use crate::cli::RecipientsCommand;
use crate::failure::Failure;
use crate::session::Session;
use crate::table::print_listing;

pub(crate) fn run(session: &Session, command: RecipientsCommand) -> Result<(), Failure> {
    match command {
        RecipientsCommand::List(args) => {
            let vault = session.vault()?;
            let rows: Vec<RecipientRow> = vault
                .recipients()
                .iter()
                .map(|r| RecipientRow {
                    label: r.label().to_owned(),
                    recipient: r.public_key(),
                })
                .collect();
            print_listing(&rows, args.format.into(), &["label", "recipient"], |row| {
                vec![row.label.clone(), row.recipient.clone()]
            })
        }
        RecipientsCommand::Add(args) => {
            let recipient = Recipient::from_key_or_file(&args.label, &args.recipient)?;
            let mut writer = session.writer()?;
            let data_key = session.unlock(writer.vault())?;
            writer.add_recipient(&data_key, recipient.clone())?;
            session.say(&format!("added recipient {recipient}"));
            Ok(())
        }
        RecipientsCommand::Remove(args) => {
            let mut writer = session.writer()?;
            let data_key = session.unlock(writer.vault())?;
            writer.remove_recipient(&data_key, &args.label)?;
            session.say(&format!(
                "removed recipient {:?}; the data key was rotated and every record re-sealed",
                args.label
            ));
            Ok(())
        }
    }
}

/// One line of `recipients list`.
#[derive(serde::Serialize)]
struct RecipientRow {
    label: String,
    recipient: String,
}
