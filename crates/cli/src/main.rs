//! `polyseal`: the command-line front end. It parses arguments, calls the libraries
//! (`polyseal-fleet` for publish, rotate and audit; `polyseal-crypto`, `polyseal-provision`,
//! `polyseal-vault`) and renders their results; the logic lives in the libraries
//! (docs/ARCHITECTURE.md).
// Every crate forbids unsafe code; the binary denies it and allows it once, to take the
// secrets out of its environment before any thread exists (`take_secrets`).
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
use polyseal_vault::{IdentitySource, TransitToken};
use zeroize::Zeroizing;

use crate::cli::Cli;
use crate::failure::Failure;
use crate::session::Session;

fn main() -> ExitCode {
    let secrets = take_secrets();
    let cli = Cli::parse();
    configure_threads();
    let session = Session::new(cli.global.clone(), secrets);
    match commands::run(&session, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => report(&session, &failure),
    }
}

/// The secrets the environment held, taken out of it.
pub(crate) struct Secrets {
    /// `POLYSEAL_IDENTITY_DATA`.
    pub(crate) identity_data: Option<Zeroizing<String>>,
    /// `VAULT_TOKEN`, or else `BAO_TOKEN`; why it cannot be used, if so (the message names
    /// the variable, never the value).
    pub(crate) transit_token: Result<Option<TransitToken>, String>,
}

/// Takes `POLYSEAL_IDENTITY_DATA`, `VAULT_TOKEN` and `BAO_TOKEN` out of this process's
/// environment and returns them, so that no subprocess ever inherits them: age spawns plugins
/// (`age-plugin-*`, for plugin recipients and identities) with this process's environment
/// (docs/SECURITY.md). Only `POLYSEAL_IDENTITY_CMD`'s command gets the token back, on purpose.
#[allow(unsafe_code)]
fn take_secrets() -> Secrets {
    let mut taken = Vec::with_capacity(3);
    let names = [IdentitySource::DATA_VARIABLE]
        .into_iter()
        .chain(TransitToken::VARIABLES);
    for name in names {
        if std::env::var_os(name).is_none() {
            continue;
        }
        // Not UTF-8: kept as an empty value, to be refused by name where it is used.
        let value = Some(Zeroizing::new(
            std::env::var(name).unwrap_or_else(|_| "\u{fffd}".to_owned()),
        ));
        // SAFETY: `remove_var` requires that no other thread reads or writes the environment
        // at the same time. This runs first in `main`, before any thread exists (rayon's pool
        // is built after it, and no library is called before it).
        unsafe { std::env::remove_var(name) };
        if let Some(value) = value {
            taken.push((name, value));
        }
    }
    let mut identity_data = None;
    let mut transit_token = Ok(None);
    for (name, value) in taken {
        if name == IdentitySource::DATA_VARIABLE {
            identity_data = Some(value);
        } else if matches!(transit_token, Ok(None)) {
            transit_token = TransitToken::new(name, value).map_err(|e| e.to_string());
        }
    }
    Secrets {
        identity_data,
        transit_token,
    }
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
