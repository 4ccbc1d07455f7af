//! `polyseal nginx-config`: the web server configuration for a published tree.

use std::path::{Path, PathBuf};

use polyseal_delivery::NginxConfig;

use crate::cli::NginxConfigArgs;
use crate::failure::Failure;
use crate::session::Session;
use crate::table::emit;

pub(crate) fn config(session: &Session, args: &NginxConfigArgs) -> Result<(), Failure> {
    // nginx resolves relative paths against its own prefix, not the current directory:
    // make them absolute here, where the user meant them.
    let mut config = NginxConfig::new(
        absolute(&args.tree)?,
        absolute(&args.cert)?,
        absolute(&args.key)?,
    );
    config.server_name = args.server_name.clone();
    config.client_ca = args.client_ca.as_deref().map(absolute).transpose()?;
    config.uploads = args.uploads.as_deref().map(absolute).transpose()?;
    config.listen = args.listen;
    let text = config.render().map_err(|e| Failure::input(e.to_string()))?;
    for warning in config.warnings() {
        session.warn(&warning.to_string());
    }
    emit(&text)
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| Failure::io(path, "resolve", &e))
}
