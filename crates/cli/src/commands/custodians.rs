//! `polyseal custodians`: key custodians' acknowledgements (PCI DSS v4 3.7.8).

use crate::cli::CustodiansCommand;
use crate::failure::Failure;
use crate::session::Session;

pub(crate) fn run(session: &Session, command: CustodiansCommand) -> Result<(), Failure> {
    match command {
        CustodiansCommand::Acknowledge(args) => {
            let mut writer = session.writer()?;
            // Loaded once: it opens the vault and proves it is LABEL's (one passphrase).
            let identities = session.identities()?;
            let data_key = writer.vault().unlock(&identities)?;
            writer.acknowledge(&data_key, &args.label, &identities)?;
            session.say(&format!(
                "recorded that custodian {:?} acknowledged their responsibilities; `polyseal \
                 report` lists it",
                args.label
            ));
            Ok(())
        }
    }
}
