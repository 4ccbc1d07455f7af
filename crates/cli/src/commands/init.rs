//! `polyseal init`: create a vault.

use polyseal_crypto::KeyDescTemplate;
use polyseal_vault::{Cryptoperiod, VaultSettings, VaultWriter};

use crate::cli::InitArgs;
use crate::failure::Failure;
use crate::session::Session;

pub(crate) fn run(session: &Session, args: &InitArgs) -> Result<(), Failure> {
    if args.label.len() > args.recipient.len() {
        return Err(Failure::input(format!(
            "--label: {} for {}; give one --label per --recipient, in order",
            crate::count::count(args.label.len(), "label"),
            crate::count::count(args.recipient.len(), "recipient")
        )));
    }
    let recipients = args
        .recipient
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let label = match args.label.get(i) {
                Some(label) => label.clone(),
                None if i == 0 => "admin".to_owned(),
                None => format!("admin-{}", i + 1),
            };
            polyseal_vault::Recipient::from_key_or_file(&label, key)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut settings = VaultSettings::new(recipients.clone());
    settings.threshold = args.threshold;
    settings.transit_token = session.transit_token()?;
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
    let sealed_to: Vec<String> = recipients.iter().map(ToString::to_string).collect();
    let needs = if args.threshold > 1 {
        format!(
            "; opening it needs {} of these {} custodians",
            args.threshold,
            recipients.len()
        )
    } else {
        String::new()
    };
    session.say(&format!(
        "created a vault at {}, sealed to {}{needs}",
        session.vault_dir().display(),
        sealed_to.join(", ")
    ));
    Ok(())
}
