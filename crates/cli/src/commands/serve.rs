//! `polyseal serve`: the HTTPS provisioning server (polyseal-fleet's `serve`).

use polyseal_fleet::serve::{ClientAuth, ServeConfig, Server};

use crate::cli::ServeArgs;
use crate::exit_code::ExitClass;
use crate::failure::Failure;
use crate::session::Session;

pub(crate) fn run(session: &Session, args: &ServeArgs) -> Result<(), Failure> {
    let mut config = ServeConfig::new(
        args.served.tree.clone(),
        args.served.cert.clone(),
        args.served.key.clone(),
        args.listen,
    );
    if args.insecure_no_client_cert {
        config.client_auth = ClientAuth::None;
    } else if let Some(ca) = &args.served.client_ca {
        let pem = std::fs::read(ca).map_err(|e| Failure::io(ca, "read the client CA", &e))?;
        config.client_auth = ClientAuth::Ca {
            pem,
            origin: ca.display().to_string(),
        };
    }
    let who = match &config.client_auth {
        ClientAuth::Ca { origin, .. } => format!("client certificates from {origin}"),
        _ => "NO client certificates".to_owned(),
    };
    config.uploads = args.served.uploads.clone();
    config.warn = session.warner();
    config.ledger = args.ledger.clone();
    let server = Server::bind(config).map_err(failure)?;
    let addr = server.local_addr().unwrap_or(args.listen);
    if args.insecure_no_client_cert {
        session.warn(
            "serving WITHOUT client certificates (--insecure-no-client-cert): anyone who can \
             reach this server gets every phone's key file and every file of the tree",
        );
    }
    session.say(&format!(
        "serving {} on https://{addr}; {who}; uploads {}; ledger {}; stop with SIGTERM or Ctrl-C",
        args.served.tree.display(),
        args.served
            .uploads
            .as_deref()
            .map_or("refused".to_owned(), |d| format!("into {}", d.display())),
        args.ledger
            .as_deref()
            .map_or("off".to_owned(), |l| l.display().to_string()),
    ));
    let shutdown = server.run_until_signalled().map_err(failure)?;
    match shutdown.unfinished {
        0 => session.say("stopped: requests in flight were finished"),
        n => session.warn(&format!(
            "stopped: {n} connection(s) still busy after the drain timeout were cut"
        )),
    }
    Ok(())
}

/// The exit class of a server that could not start.
fn failure(error: polyseal_fleet::serve::Error) -> Failure {
    use polyseal_fleet::serve::Error as E;
    let class = match &error {
        E::Io { .. } | E::Listen { .. } | E::Ledger(_) => ExitClass::Io,
        _ => ExitClass::Input,
    };
    Failure::new(class, error.to_string())
}
