//! How long runs report their progress: the engine counts, the caller draws (the binary's
//! progress bar, or nothing).

/// Receives a long step's progress. Called from many threads at once.
pub trait Progress: Sync {
    /// A step of `total` items begins.
    fn start(&self, total: u64);
    /// One more item is done.
    fn advance(&self);
    /// The step is over.
    fn finish(&self);
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64) {}
    fn advance(&self) {}
    fn finish(&self) {}
}
