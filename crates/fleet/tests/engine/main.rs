//! polyseal-fleet's public API: publish (check, then run, with an injected clock and
//! progress), the rotation steps, the evidence pack (report), and the fleet's status from a
//! ledger.

mod common;
mod ledger;
mod publish;
mod report;
mod rotate;
mod schema;
mod status;
