//! Where the engine reads the time: the manifest's racy window and the audit's "now" read it
//! through a [`Clock`], so tests can set the time instead of sleeping.

use std::time::SystemTime;

/// A source of the current time.
pub trait Clock: Sync {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always says the same time (tests, reproducible reports).
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}
