//! `polyseal`: the command-line front end. It parses arguments, calls the libraries
//! (`polyseal-fleet` for publish, rotate and audit; `polyseal-crypto`, `polyseal-provision`,
//! `polyseal-vault`) and renders their results; the logic lives in the libraries
//! (docs/ARCHITECTURE.md).
// Every crate forbids unsafe code; the binary denies it and allows it once, to take the
// identity out of its environment before any thread exists (`take_identity_data`).
#![deny(unsafe_code)]

mod audit_table;
mod cli;
mod commands;
mod count;
mod exit_code;
mod failure;
mod output;
mod phones;
mod progress;
mod session;
mod table;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use polyseal_vault::IdentitySource;
use zeroize::Zeroizing;

use crate::cli::Cli;
use crate::failure::Failure;
use crate::session::Session;

fn main() -> ExitCode {
    let identity_data = take_identity_data();
    let cli = Cli::parse();
    configure_threads();
    let session = Session::new(cli.global.clone(), identity_data);
    match commands::run(&session, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&session, &failure),
    }
}

/// Takes `POLYSEAL_IDENTITY_DATA` out of this process's environment and returns it, so that no
/// subprocess ever inherits the identity: age spawns plugins (`age-plugin-*`, for plugin
/// recipients and identities) with this process's environment (docs/SECURITY.md).
#[allow(unsafe_code)]
fn take_identity_data() -> Option<Zeroizing<String>> {
    let name = IdentitySource::DATA_VARIABLE;
    std::env::var_os(name)?;
    let value = std::env::var(name).ok().map(Zeroizing::new);
    // SAFETY: `remove_var` requires that no other thread reads or writes the environment at
    // the same time. This runs first in `main`, before any thread exists (rayon's pool is
    // built after it, and no library is called before it).
    unsafe { std::env::remove_var(name) };
    value
}

/// Sizes the thread pool that publish and audit spread file work over: two threads per core.
/// They open, read and create hundreds of thousands of small files, and a thread waiting for
/// the disk leaves its core idle; a second thread per core keeps it busy (CHANGELOG.md's
/// performance history measures both). `RAYON_NUM_THREADS`, when set, decides instead.
fn configure_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // Fails only if a pool was already built, and then that pool serves.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2 * cores)
        .build_global();
}

/// Prints `failure` as one line (plus a hint line) on standard error; returns its exit code.
fn report(session: &Session, failure: &Failure) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let (red, bold, reset) = if session.color() {
        ("\x1b[31m", "\x1b[1m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    // Findings were already reported in full by `audit`; the line only says why the code is 1.
    for failure in std::iter::once(failure).chain(failure.also()) {
        let _ = writeln!(err, "{red}{bold}error:{reset} {failure}");
        if let Some(hint) = failure.hint() {
            let _ = writeln!(err, "  hint: {hint}");
        }
    }
    ExitCode::from(failure.class.code())
}
