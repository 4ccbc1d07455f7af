//! Shell completions and the manual page, generated from the clap definitions.

use std::path::Path;

use clap::CommandFactory;
use polyseal_fleet::write::{PUBLIC_MODE, write_atomic};

use crate::cli::Cli;
use crate::count::count;
use crate::failure::Failure;
use crate::output::Destination;
use crate::session::Session;

/// Prints a completion script for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "polyseal", &mut script);
    Destination::Stdout.write(&script, 0)
}

/// Prints the main manual page in roff, or with `out` writes one page per command there.
pub(crate) fn man(session: &Session, out: Option<&Path>) -> Result<(), Failure> {
    let Some(dir) = out else {
        return Destination::Stdout.write(&render(Cli::command())?, 0);
    };
    check_out_dir(dir)?;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = 0;
    write_pages(session, command, dir, &mut written)?;
    session.say(&format!(
        "wrote {} to {}",
        count(written, "manual page"),
        dir.display()
    ));
    Ok(())
}

/// Refuses a `man --out` that is not a directory or whose parent does not exist (as
/// `publish --out`); creates the directory itself.
fn check_out_dir(dir: &Path) -> Result<(), Failure> {
    match std::fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Failure::input(format!(
                "--out {}: not a directory",
                dir.display()
            )));
        }
        Err(_) => {}
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Failure::input(format!(
            "--out {}: parent directory {} does not exist",
            dir.display(),
            parent.display()
        )));
    }
    std::fs::create_dir(dir).map_err(|e| Failure::io(dir, "create", &e))
}

/// Writes the page of `command` and of each of its subcommands, named as `man` looks them up
/// (`polyseal-keys-add.1`).
fn write_pages(
    session: &Session,
    command: clap::Command,
    dir: &Path,
    written: &mut usize,
) -> Result<(), Failure> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(session, sub.clone(), dir, written)?;
    }
    let path = dir.join(clap_mangen::Man::new(command.clone()).get_filename());
    // An error names the directory given, not the temporary file beside the page.
    write_atomic(&path, &render(command)?, PUBLIC_MODE).map_err(|e| match e {
        polyseal_fleet::Error::Io { source, .. } => Failure::io(dir, "write a page into", &source),
        other => other.into(),
    })?;
    session.detail(&format!("wrote {}", path.display()));
    *written += 1;
    Ok(())
}

/// One page in roff.
fn render(command: clap::Command) -> Result<Vec<u8>, Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| Failure::io(Path::new("the manual page"), "render", &e))?;
    Ok(page)
}
