//! polyseal-fleet's public API: publish (check, then run, with an injected clock and
//! progress), the rotation steps, and the evidence pack (report).

mod common;
mod publish;
mod report;
mod rotate;
