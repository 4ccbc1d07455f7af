//! `polyseal rotate`: move phones to a new key generation without bricking them.
//! docs/ROTATION.md describes the steps; [`crate::rotation::Step`] reads them from the vault.

use crate::cli::RotateCommand;
use crate::failure::Failure;
use crate::session::Session;

pub(crate) fn run(session: &Session, _command: RotateCommand) -> Result<(), Failure> {
    let vault = session.vault()?;
    let step = crate::rotation::Step::of(vault.records().next());
    Err(Failure::input(format!(
        "rotate is not implemented yet ({step}, {:?} {:?})",
        step.next_generation(),
        step.since(vault.records().next())
    )))
}
