//! `polyseal upgrade`: a vault of an older format brought to this build's, every key kept.

use polyseal_vault::VaultWriter;

use crate::cli::UpgradeArgs;
use crate::commands::log::parse_expect_head;
use crate::count::count;
use crate::failure::Failure;
use crate::session::Session;

pub(crate) fn run(session: &Session, args: &UpgradeArgs) -> Result<(), Failure> {
    let expect_head = parse_expect_head(args.expect_head.as_deref())?;
    let identities = session.identities()?;
    let (_writer, upgraded) = VaultWriter::upgrade(
        session.vault_dir(),
        session.lock_wait(),
        &identities,
        expect_head.as_ref(),
    )?;
    let dir = session.vault_dir().display();
    if upgraded.from == upgraded.to {
        session.say(&format!(
            "vault {dir} is already format {}: nothing to upgrade",
            upgraded.to
        ));
        return Ok(());
    }
    session.say(&format!(
        "upgraded vault {dir} from format {} to {}: {} kept, a new data key sealed to {} \
         ({}), every file now authenticated; record the new head (docs/VAULT.md, \"Anchoring \
         heads\"): head {} {}",
        upgraded.from,
        upgraded.to,
        count(upgraded.live_keys, "live key"),
        count(upgraded.recipients.len(), "recipient"),
        upgraded.recipients.join(", "),
        upgraded.head.seq,
        upgraded.head.hash_hex()
    ));
    Ok(())
}
