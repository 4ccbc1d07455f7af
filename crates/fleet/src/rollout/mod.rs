//! `polyseal rollout`: moving a fleet onto encryption (from plaintext, or onto a new layout)
//! in waves the operator can see and undo (docs/ROLLOUT.md).
//!
//! `start` gives every phone its key and keeps every per-phone file in plaintext (owner-only,
//! behind the per-MAC rule): nothing a phone reads changes but its key file. The canaries'
//! firmware then uploads its override file encrypted under that key, which shows the layout
//! (`learn`). `advance` encrypts one wave more, canaries first, only when every phone of the
//! last wave read its encrypted files and came back `ok`; a `reboot-loop` halts it, and `abort`
//! serves the last wave in plaintext again.

mod published;
mod start;
mod view;
mod wave;

pub use start::{Canaries, DEFAULT_CANARY_COUNT, ENCRYPTED_UPLOADS, start};
pub use view::{PhoneInWave, Reads, RolloutView, Settled, WaveView, view};
pub use wave::{DEFAULT_WAVE_PERCENT, next_wave};
