//! `polyseal nginx-config`: the web server configuration for a published tree.

use std::path::{Path, PathBuf};

use polyseal_delivery::{NginxConfig, POLYCOM_DEVICE_CA_FILE, POLYCOM_DEVICE_CA_PEM};

use crate::cli::NginxConfigArgs;
use crate::failure::Failure;
use crate::session::Session;
use crate::table::emit;

pub(crate) fn config(session: &Session, args: &NginxConfigArgs) -> Result<(), Failure> {
    // nginx resolves relative paths against its own prefix, not the current directory:
    // make them absolute here, where the user meant them.
    let mut config = NginxConfig::new(
        absolute(&args.served.tree)?,
        absolute(&args.served.cert)?,
        absolute(&args.served.key)?,
    );
    config.server_name = args.server_name.clone();
    // Without --client-ca, the Polycom device CA chain bundled with polyseal, beside --cert.
    let bundled = match (&args.served.client_ca, args.no_client_cert) {
        (_, true) => None,
        (Some(_), false) => None,
        (None, false) => Some(
            config
                .cert
                .parent()
                .unwrap_or(Path::new("/"))
                .join(POLYCOM_DEVICE_CA_FILE),
        ),
    };
    config.client_ca = match &args.served.client_ca {
        Some(path) => Some(absolute(path)?),
        None => bundled.clone(),
    };
    config.uploads = args.served.uploads.as_deref().map(absolute).transpose()?;
    config.listen = args.listen;
    config.access_log = args.access_log.as_deref().map(absolute).transpose()?;
    let text = config.render().map_err(|e| Failure::input(e.to_string()))?;
    if let Some(path) = &bundled {
        write_bundled_ca(session, path)?;
    }
    for warning in config.warnings() {
        session.warn(&warning.to_string());
    }
    emit(&text)
}

/// Writes the bundled Polycom device CA chain to `path`, unless it is there already; refuses
/// to replace another file.
fn write_bundled_ca(session: &Session, path: &Path) -> Result<(), Failure> {
    match std::fs::read(path) {
        Ok(existing) if existing == POLYCOM_DEVICE_CA_PEM.as_bytes() => {}
        Ok(_) => {
            return Err(Failure::input(format!(
                "{}: exists and is not the Polycom device CA chain bundled with polyseal; pass \
                 it as --client-ca FILE if it is the CA your phones' certificates come from, or \
                 move it away",
                path.display()
            )));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .and_then(|mut file| {
                    std::io::Write::write_all(&mut file, POLYCOM_DEVICE_CA_PEM.as_bytes())
                })
                .map_err(|e| Failure::io(path, "write", &e))?;
            session.detail(&format!("wrote {}", path.display()));
        }
        Err(error) => return Err(Failure::io(path, "read", &error)),
    }
    session.say(&format!(
        "client certificates: the Polycom device CA chain bundled with polyseal (Root CA, \
         Equipment Policy CA, Equipment Issuing CA 1 and 2), in {}",
        path.display()
    ));
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|e| Failure::io(path, "resolve", &e))
}
