//! `polyseal bootstrap`: write plaintext bootstrap files.

use polyseal_provision::bootstrap_file;

use polyseal_fleet::write::{SECRET_MODE, write_atomic};

use crate::cli::BootstrapArgs;
use crate::count::count;
use crate::failure::Failure;
use crate::phones::key_file_pattern;
use crate::session::{Session, parse_macs};

pub(crate) fn run(session: &Session, args: &BootstrapArgs) -> Result<(), Failure> {
    let pattern = key_file_pattern(&args.key_file)?;
    let vault = session.vault()?;
    let macs = if args.all {
        vault
            .records()
            .filter(|r| r.active().is_some())
            .map(|r| r.mac())
            .collect()
    } else {
        parse_macs(&args.macs)?
    };
    // Every phone must have an active key before anything is written.
    for mac in &macs {
        if vault.record(mac).and_then(|r| r.active()).is_none() {
            return Err(Failure::input(format!("{mac} has no active key"))
                .with_hint("make one with `polyseal keys add MAC`"));
        }
    }
    let data_key = session.unlock(&vault)?;
    std::fs::create_dir_all(&args.out).map_err(|e| Failure::io(&args.out, "create", &e))?;
    for mac in &macs {
        let opened = vault.open_key(&data_key, mac, None)?;
        let path = args.out.join(pattern.file_name(mac));
        write_atomic(&path, &bootstrap_file(&opened.key), SECRET_MODE)?;
        session.detail(&format!("wrote {}", path.display()));
    }
    session.say(&format!(
        "wrote {} to {} (mode 0600: serve them over HTTPS only)",
        count(macs.len(), "bootstrap file"),
        args.out.display()
    ));
    Ok(())
}
