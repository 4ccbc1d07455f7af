//! `polyseal init`: create a vault.

use polyseal_crypto::KeyDescTemplate;
use polyseal_vault::{Cryptoperiod, VaultSettings, VaultWriter};

use crate::cli::InitArgs;
use crate::failure::Failure;
use crate::session::Session;

pub(crate) fn run(session: &Session, args: &InitArgs) -> Result<(), Failure> {
    let recipient = polyseal_vault::Recipient::from_key_or_file(&args.label, &args.recipient)?;
    let mut settings = VaultSettings::new(vec![recipient.clone()]);
    settings.key_desc_template = KeyDescTemplate::parse(&args.key_desc_template)
        .map_err(|e| Failure::input(format!("--key-desc-template: {e}")))?;
    settings.cryptoperiod = args
        .cryptoperiod_days
        .map(|days| {
            Cryptoperiod::from_days(days).ok_or_else(|| {
                Failure::input(format!("--cryptoperiod-days {days}: must be at least 1"))
            })
        })
        .transpose()?;
    settings.key_timing = args.key_timing.into();
    VaultWriter::create(session.vault_dir(), settings)?;
    session.say(&format!(
        "created a vault at {}, sealed to {recipient}",
        session.vault_dir().display()
    ));
    Ok(())
}
