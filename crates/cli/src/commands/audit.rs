//! `polyseal audit`: findings for the compliance officer.

use crate::cli::AuditArgs;
use crate::failure::{ExitClass, Failure};
use crate::session::Session;

pub(crate) fn run(_session: &Session, _args: &AuditArgs) -> Result<(), Failure> {
    Err(Failure::new(ExitClass::Findings, "audit is not implemented yet"))
}
