//! How long runs report their progress: the engine counts and names the files it writes and
//! removes; the caller draws (the binary's progress bar and `-v` lines, or nothing).

use std::path::Path;

/// Receives a long step's progress. Called from many threads at once.
pub trait Progress: Sync {
    /// A step of `total` items begins.
    fn start(&self, total: u64);
    /// One more item is done.
    fn advance(&self);
    /// The step is over.
    fn finish(&self);
    /// The file at `path` (in the published tree, as it is served once the run ends) was
    /// written.
    fn wrote(&self, _path: &Path) {}
    /// The file at `path` (in the published tree) was removed: the new tree has none there.
    fn removed(&self, _path: &Path) {}
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64) {}
    fn advance(&self) {}
    fn finish(&self) {}
}
