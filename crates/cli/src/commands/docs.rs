//! Shell completions and the manual page, generated from the clap definitions.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::failure::Failure;
use crate::output::Destination;

/// Prints a completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "polyseal", &mut script);
    Destination::Stdout.write(&script, 0)
}

/// Prints the manual page in roff.
pub(crate) fn man() -> Result<(), Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Failure::io(std::path::Path::new("standard output"), "write", &e))?;
    Destination::Stdout.write(&page, 0)
}
