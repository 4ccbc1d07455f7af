//! `polyseal encrypt`, `decrypt` and `inspect`: one file at a time.

use std::path::Path;

use polyseal_crypto::{
    DigestAlgorithm, Error as CryptoError, MAX_FILE_SIZE, decrypt as open, encrypt as seal,
    inspect as read_header,
};
use polyseal_vault::{OpenedKey, Vault};

use crate::cli::{DecryptArgs, EncryptArgs, InspectArgs};
use crate::failure::{ExitClass, Failure};
use polyseal_fleet::write::{PUBLIC_MODE, SECRET_MODE};

use crate::output::{Destination, read_input};
use crate::session::{Session, parse_mac};
use crate::table::emit;

/// The name of an input for messages.
fn input_name(path: &Path) -> &Path {
    if path == Path::new("-") {
        Path::new("standard input")
    } else {
        path
    }
}

pub(crate) fn encrypt(session: &Session, args: &EncryptArgs) -> Result<(), Failure> {
    let mac = parse_mac(&args.mac)?;
    let vault = session.vault()?;
    if vault.record(&mac).and_then(|r| r.active()).is_none() {
        return Err(Failure::input(format!("{mac} has no active key"))
            .with_hint("make one with `polyseal keys add MAC` or `polyseal publish`"));
    }
    let plaintext = zeroize::Zeroizing::new(read_input(&args.input, MAX_FILE_SIZE)?);
    if polyseal_crypto::is_encrypted(&plaintext) {
        return Err(Failure::input(format!(
            "{}: is already encrypted",
            input_name(&args.input).display()
        )));
    }
    let data_key = session.unlock(&vault)?;
    let opened = vault.open_key(&data_key, &mac, None)?;
    let file =
        seal(&plaintext, &opened.key).map_err(|e| Failure::crypto(input_name(&args.input), &e))?;
    Destination::from_arg(args.output.as_deref()).write(&file, PUBLIC_MODE)?;
    session.detail(&format!("encrypted under {}", opened.key.key_desc()));
    Ok(())
}

pub(crate) fn decrypt(session: &Session, args: &DecryptArgs) -> Result<(), Failure> {
    let name = input_name(&args.input);
    let file = read_input(&args.input, MAX_FILE_SIZE)?;
    let header = read_header(&file).map_err(|e| Failure::crypto(name, &e))?;
    let vault = session.vault()?;
    let mac = args.mac.as_deref().map(parse_mac).transpose()?;
    // Find the generation before unlocking: a file we hold no key for needs no identity.
    let generation = match (header.key_desc(), mac) {
        (Some(desc), _) => {
            let (record, generation) = vault.find_key_desc(desc).ok_or_else(|| {
                Failure::new(
                    ExitClass::Integrity,
                    format!(
                        "{}: encrypted under KeyDesc {desc:?}, which is not in the vault",
                        name.display()
                    ),
                )
            })?;
            if let Some(mac) = mac.filter(|m| *m != record.mac()) {
                return Err(Failure::new(
                    ExitClass::Integrity,
                    format!(
                        "{}: encrypted under {desc} (phone {}), not a key of {mac}",
                        name.display(),
                        record.mac()
                    ),
                ));
            }
            (record.mac(), Some(generation.number()))
        }
        (None, Some(mac)) => (mac, None),
        (None, None) => {
            return Err(Failure::input(format!(
                "{}: header names no KeyDesc; say which phone's key with --mac",
                name.display()
            )));
        }
    };
    let data_key = session.unlock(&vault)?;
    let opened: OpenedKey = vault.open_key(&data_key, &generation.0, generation.1)?;
    let plaintext = open(&file, &opened.key).map_err(|e| Failure::crypto(name, &e))?;
    Destination::from_arg(args.output.as_deref()).write(&plaintext, SECRET_MODE)?;
    session.detail(&format!("decrypted with {}", opened.key.key_desc()));
    Ok(())
}

pub(crate) fn inspect(session: &Session, args: &InspectArgs) -> Result<(), Failure> {
    // The vault is optional here: it only adds which phone and state a KeyDesc belongs to.
    let vault = Vault::open(session.vault_dir()).ok();
    let mut text = String::new();
    let mut first_failure = None;
    for path in &args.files {
        match inspect_one(path, vault.as_ref()) {
            Ok(line) => text.push_str(&line),
            Err(failure) => {
                text.push_str(&format!("{}: error: {failure}\n", path.display()));
                first_failure.get_or_insert(failure);
            }
        }
    }
    emit(&text)?;
    first_failure.map_or(Ok(()), Err)
}

/// One line describing `path`'s header.
fn inspect_one(path: &Path, vault: Option<&Vault>) -> Result<String, Failure> {
    let bytes = read_input(path, MAX_FILE_SIZE)?;
    let header = match read_header(&bytes) {
        Ok(header) => header,
        Err(CryptoError::NotEncrypted) => return Ok(format!("{}: plaintext\n", path.display())),
        Err(e) => return Err(Failure::crypto(path, &e)),
    };
    let key_desc = header
        .key_desc()
        .map_or("(none)".to_owned(), |d| d.to_string());
    let owner = header
        .key_desc()
        .and_then(|desc| vault?.find_key_desc(desc))
        .map(|(record, g)| {
            format!(
                " phone={} generation={} state={}",
                record.mac(),
                g.number(),
                g.state()
            )
        })
        .unwrap_or_default();
    let verified = match header.digest_algorithm() {
        DigestAlgorithm::Sha256 => "",
        _ => " (unsupported: polyseal verifies SHA-256 only)",
    };
    Ok(format!(
        "{}: encrypted KeyDesc={key_desc} digest={}:{}{verified}{owner}\n",
        path.display(),
        header.digest_algorithm(),
        header.digest_hex()
    ))
}
