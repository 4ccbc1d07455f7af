//! `polyseal recipients`: who can open the vault.

use std::path::Path;

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
            let recipient = recipient_from_arg(&args.label, &args.recipient)?;
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

/// A recipient from the command line: a public key as text, or a file holding one (a
/// `.pub` file, or an age identity file whose `# public key: age1…` comment names it).
pub(crate) fn recipient_from_arg(label: &str, arg: &str) -> Result<Recipient, Failure> {
    let looks_like_key = ["age1", "ssh-", "ecdsa-"]
        .iter()
        .any(|p| arg.starts_with(p));
    let text = if !looks_like_key && Path::new(arg).is_file() {
        let path = Path::new(arg);
        let content = std::fs::read_to_string(path).map_err(|e| Failure::io(path, "read", &e))?;
        public_key_in(&content).ok_or_else(|| {
            Failure::input(format!(
                "{arg}: holds no public key (an age1… or ssh-… line, or a `# public key:` comment)"
            ))
        })?
    } else {
        arg.trim().to_owned()
    };
    Ok(Recipient::parse(label, &text)?)
}

/// The first public key in a file's text: a line starting with `age1` or `ssh-`, or the
/// `# public key: age1…` comment that age-keygen writes into identity files.
fn public_key_in(content: &str) -> Option<String> {
    content.lines().map(str::trim).find_map(|line| {
        let line = line.strip_prefix("# public key:").map_or(line, str::trim);
        (line.starts_with("age1") || line.starts_with("ssh-") || line.starts_with("ecdsa-"))
            .then(|| line.to_owned())
    })
}
