//! The polyseal fleet engine: what `polyseal publish`, `rotate`, `audit` and the commands
//! that follow them decide about phones, keys and files, as a library. The binary parses
//! arguments, asks for the identity, calls in here and renders what comes back
//! (docs/ARCHITECTURE.md).
//!
//! - [`publish`]: a source tree and the vault's keys to the tree the web server serves, built
//!   in a staging directory and swapped in whole; a manifest beside it lets a rerun prove
//!   unchanged files by `stat`.
//! - [`rotate`]: the steps of moving phones to a new key, and the evidence of their uploads.
//! - [`audit`]: a published tree and the vault checked against what every phone should be
//!   served; the report's JSON schema.
//! - [`write`](mod@write): files written whole or not at all, with their modes from the start.
//!
//! Time is read through a [`Clock`] and progress reported through a [`Progress`], so both
//! can be set by the caller.
#![forbid(unsafe_code)]

pub mod audit;
mod clock;
mod count;
mod error;
mod file_key;
mod files;
pub mod learn;
pub mod ledger;
mod progress;
pub mod publish;
pub mod report;
pub mod rollout;
pub mod rotate;
mod secret_io;
pub mod serve;
pub mod status;
pub mod uploads;
pub mod write;

pub use clock::{Clock, FixedClock, SystemClock};
pub use count::count;
pub use error::Error;
pub use file_key::key_for_file;
pub use files::files_under;
pub use progress::{NoProgress, Progress};
