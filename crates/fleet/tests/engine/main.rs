//! polyseal-fleet's public API: publish (check, then run, with an injected clock and
//! progress) and the rotation steps.

mod common;
mod publish;
mod rotate;
