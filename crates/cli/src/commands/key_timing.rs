//! `polyseal key-timing`: show or set when the fleet's firmware applies a new key.

use crate::cli::KeyTimingArgs;
use crate::failure::Failure;
use crate::session::Session;

pub(crate) fn run(session: &Session, args: &KeyTimingArgs) -> Result<(), Failure> {
    let Some(timing) = args.timing else {
        let vault = session.vault_unchecked()?;
        crate::table::emit(&format!("{}\n", vault.key_timing()))?;
        return Ok(());
    };
    let timing = timing.into();
    let mut writer = session.writer()?;
    let before = writer.vault().key_timing();
    // Every change is authenticated with the data key (docs/VAULT.md, "Authenticated state").
    let data_key = session.unlock(writer.vault())?;
    writer.set_key_timing(&data_key, timing)?;
    session.say(&if before == timing {
        format!("key timing is already {timing}")
    } else {
        format!(
            "key timing is now {timing} (was {before}); phones already rotating are served the \
             new way at the next publish"
        )
    });
    Ok(())
}
