//! One module per command; each takes the session and its arguments.

pub(crate) mod audit;
mod bootstrap;
mod crypt;
mod custodians;
mod docs;
pub(crate) mod format;
mod init;
mod key_timing;
mod keys;
pub(crate) mod log;
mod nginx;
mod publish;
mod recipients;
mod report;
mod rollout;
mod rotate;
mod serve;
mod status;
mod upgrade;

use crate::cli::Command;
use crate::failure::Failure;
use crate::session::Session;

/// Runs one command.
pub(crate) fn run(session: &Session, command: Command) -> Result<(), Failure> {
    match command {
        Command::Init(args) => init::run(session, &args),
        Command::Keys(command) => keys::run(session, command),
        Command::Bootstrap(args) => bootstrap::run(session, &args),
        Command::Encrypt(args) => crypt::encrypt(session, &args),
        Command::Decrypt(args) => crypt::decrypt(session, &args),
        Command::Inspect(args) => crypt::inspect(session, &args),
        Command::Publish(args) => publish::run(session, &args),
        Command::Rotate(command) => rotate::run(session, command),
        Command::Audit(args) => audit::run(session, &args),
        Command::Report(args) => report::run(session, &args),
        Command::Custodians(command) => custodians::run(session, command),
        Command::Recipients(command) => recipients::run(session, command),
        Command::Log(command) => log::run(session, command),
        Command::NginxConfig(args) => nginx::config(session, &args),
        Command::Serve(args) => serve::run(session, &args),
        Command::Status(args) => status::run(session, &args),
        Command::KeyTiming(args) => key_timing::run(session, &args),
        Command::Format(command) => format::run(session, command),
        Command::Rollout(command) => rollout::run(session, command),
        Command::Upgrade(args) => upgrade::run(session, &args),
        Command::Completions(args) => docs::completions(args.shell),
        Command::Man(args) => docs::man(session, args.out.as_deref()),
    }
}
