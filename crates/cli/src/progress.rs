//! The progress bar of long runs, drawn for the engine's [`Progress`] reports.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::RwLock;

use indicatif::{ProgressBar, ProgressStyle};
use polyseal_fleet::Progress;

/// A progress bar on standard error, for runs of at least 1,000 files on a terminal, unless
/// `--quiet`; hidden otherwise.
/// With `--verbose`, each file written and removed is listed too.
pub(crate) struct FileProgress {
    /// The bar of the step under way; each step gets a new one.
    bar: RwLock<ProgressBar>,
    quiet: bool,
    verbose: bool,
}

impl FileProgress {
    /// A bar for a command run with `--quiet`, `--verbose` or neither.
    pub(crate) fn new(quiet: bool, verbose: bool) -> FileProgress {
        FileProgress {
            bar: RwLock::new(ProgressBar::hidden()),
            quiet,
            verbose,
        }
    }

    /// One `-v` line, above the bar if one is drawn.
    fn detail(&self, what: &str, path: &Path) {
        if self.verbose {
            self.bar().suspend(|| {
                let _ = writeln!(std::io::stderr(), "{what} {}", path.display());
            });
        }
    }
}

impl FileProgress {
    /// The current bar (a handle: the bar itself is shared).
    fn bar(&self) -> ProgressBar {
        self.bar
            .read()
            .map_or_else(|_| ProgressBar::hidden(), |bar| bar.clone())
    }
}

impl Progress for FileProgress {
    fn start(&self, total: u64) {
        if self.quiet || total < 1000 || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} files ({eta} left)") {
            bar.set_style(style);
        }
        if let Ok(mut current) = self.bar.write() {
            *current = bar;
        }
    }

    fn advance(&self) {
        self.bar().inc(1);
    }

    fn wrote(&self, path: &Path) {
        self.detail("wrote", path);
    }

    fn removed(&self, path: &Path) {
        self.detail("removed", path);
    }

    fn finish(&self) {
        self.bar().finish_and_clear();
    }
}
