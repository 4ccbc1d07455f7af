//! `polyseal recipients`: who can open the vault.

use polyseal_fleet::rotate::{self, Targets};
use polyseal_vault::{InitialState, Recipient};

use crate::cli::RecipientsCommand;
use crate::count::count;
use crate::failure::Failure;
use crate::session::Session;
use crate::table::print_listing;

pub(crate) fn run(session: &Session, command: RecipientsCommand) -> Result<(), Failure> {
    match command {
        RecipientsCommand::List(args) => {
            let vault = session.vault_unchecked()?;
            let rows: Vec<RecipientRow> = vault
                .recipients()
                .iter()
                .map(|r| RecipientRow {
                    label: r.label().to_owned(),
                    kind: r.kind(),
                    recipient: r.public_key(),
                })
                .collect();
            if vault.threshold() > 1 {
                session.say(&format!(
                    "opening the vault needs {} of these {}",
                    vault.threshold(),
                    count(rows.len(), "recipient")
                ));
            }
            print_listing(
                &rows,
                args.format.into(),
                &["label", "kind", "recipient"],
                |row| vec![row.label.clone(), row.kind.clone(), row.recipient.clone()],
            )
        }
        RecipientsCommand::Add(args) => {
            let recipient = Recipient::from_key_or_file(&args.label, &args.recipient)?;
            let mut writer = session.writer()?;
            // Refused before the unlock: no YubiKey touch, no transit call, for nothing.
            writer.check_new_recipient(&recipient)?;
            let data_key = session.unlock(writer.vault())?;
            writer.add_recipient(&data_key, recipient.clone())?;
            session.say(&format!("added recipient {recipient}"));
            Ok(())
        }
        RecipientsCommand::Remove(args) => {
            let mut writer = session.writer()?;
            writer.check_removal(&args.label)?;
            // Which phones a rotation would start for is known before anything changes.
            let rotating = if args.rotate_keys {
                rotate::start_targets(writer.vault(), Targets::All)?
            } else {
                Vec::new()
            };
            let data_key = session.unlock(writer.vault())?;
            let data_key = writer.remove_recipient(&data_key, &args.label)?;
            session.say(&format!(
                "removed recipient {:?}; the data key was rotated and every record re-sealed",
                args.label
            ));
            if !args.rotate_keys {
                session.warn(&format!(
                    "{:?} could open this vault until now: whoever holds its identity may already \
                     hold every phone key (revealed, or from a copy of the vault); rotate them \
                     to make those copies useless: `polyseal rotate start --all`, or remove \
                     with --rotate-keys (docs/ROTATION.md)",
                    args.label
                ));
                return Ok(());
            }
            if rotating.is_empty() {
                session.say("no phone to rotate: every phone is already rotating or has no key");
                return Ok(());
            }
            writer.add_keys(&data_key, &rotating, InitialState::PreActive)?;
            session.say(&format!(
                "started rotation of {}: each has a new pre-active generation; publish the tree \
                 to serve it, then `rotate confirm` and `rotate finish` (docs/ROTATION.md)",
                count(rotating.len(), "phone")
            ));
            Ok(())
        }
        RecipientsCommand::Threshold(args) => {
            let Some(threshold) = args.threshold else {
                let vault = session.vault_unchecked()?;
                crate::output::write_stdout(
                    format!(
                        "{} of {}\n",
                        vault.threshold(),
                        count(vault.recipients().len(), "recipient")
                    )
                    .as_bytes(),
                )?;
                return Ok(());
            };
            let mut writer = session.writer()?;
            let recipients = count(writer.vault().recipients().len(), "recipient");
            if !writer.check_threshold(threshold)? {
                session.say(&format!(
                    "opening the vault already needs {threshold} of its {recipients}; nothing \
                     changed"
                ));
                return Ok(());
            }
            let data_key = session.unlock(writer.vault())?;
            let replaced = writer.set_threshold(&data_key, threshold)?;
            let how = if replaced.is_some() {
                "the data key was replaced and every record re-sealed, so no copy of the old \
                 key or of fewer old shares opens what is sealed from now on"
            } else {
                "the same data key was split anew"
            };
            session.say(&format!(
                "opening the vault now needs {threshold} of its {recipients}; {how}"
            ));
            Ok(())
        }
        RecipientsCommand::Rewrap => {
            let mut writer = session.writer()?;
            let data_key = session.unlock(writer.vault())?;
            writer.rewrap(&data_key)?;
            session.say(&format!(
                "sealed the data key anew to {} (transit keys at their latest version)",
                count(writer.vault().recipients().len(), "recipient")
            ));
            Ok(())
        }
    }
}

/// One line of `recipients list`.
#[derive(serde::Serialize)]
struct RecipientRow {
    label: String,
    kind: String,
    recipient: String,
}
