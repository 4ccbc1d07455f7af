//! `polyseal encrypt`, `decrypt` and `inspect`: one file at a time.

use std::path::Path;

use polyseal_crypto::{
    Error as CryptoError, Layout, MAX_FILE_SIZE, decrypt_with as open, encrypt_with as seal,
    inspect as read_header,
};
use polyseal_fleet::key_for_file;
use polyseal_fleet::write::{PUBLIC_MODE, SECRET_MODE};
use polyseal_vault::{OpenedKey, Vault};

use crate::cli::{DecryptArgs, EncryptArgs, InspectArgs, ListFormat, TableFormat};
use crate::failure::Failure;
use crate::output::{Destination, read_input};
use crate::session::{Session, parse_mac};
use crate::table::{emit, print_listing};

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
    let plaintext = read_input(&args.input, MAX_FILE_SIZE)?;
    if polyseal_crypto::is_encrypted(&plaintext) {
        return Err(Failure::input(format!(
            "{}: is already encrypted",
            input_name(&args.input).display()
        )));
    }
    let data_key = session.unlock(&vault)?;
    let opened = vault.open_key(&data_key, &mac, None)?;
    let file = seal(&plaintext, &opened.key, &vault.layout())
        .map_err(|e| Failure::crypto(input_name(&args.input), &e))?;
    let destination = Destination::from_arg(args.output.as_deref());
    destination.write(&file, PUBLIC_MODE)?;
    if let Some(path) = destination.file() {
        session.detail(&format!("wrote {}", path.display()));
    }
    session.detail(&format!("encrypted under {}", opened.key.key_desc()));
    Ok(())
}

pub(crate) fn decrypt(session: &Session, args: &DecryptArgs) -> Result<(), Failure> {
    let name = input_name(&args.input);
    let file = read_input(&args.input, MAX_FILE_SIZE)?;
    let header = read_header(&file).map_err(|e| Failure::crypto(name, &e))?;
    let vault = session.vault()?;
    let mac = args.mac.as_deref().map(parse_mac).transpose()?;
    // Found before unlocking: a file we hold no key for needs no identity.
    let generation = key_for_file(&vault, name, header.key_desc(), mac)?;
    let data_key = session.unlock(&vault)?;
    let opened: OpenedKey = vault.open_key(&data_key, &generation.0, generation.1)?;
    let plaintext =
        open(&file, &opened.key, &vault.layout()).map_err(|e| Failure::crypto(name, &e))?;
    let destination = Destination::from_arg(args.output.as_deref());
    destination.write(&plaintext, SECRET_MODE)?;
    if let Some(path) = destination.file() {
        session.detail(&format!("wrote {}", path.display()));
    }
    session.detail(&format!("decrypted with {}", opened.key.key_desc()));
    Ok(())
}

pub(crate) fn inspect(session: &Session, args: &InspectArgs) -> Result<(), Failure> {
    // The vault is optional here: it only adds which phone and state a KeyDesc belongs to.
    let vault = Vault::open(session.vault_dir()).ok();
    if vault.is_some() {
        session.note_unchecked();
    }
    let mut rows = Vec::new();
    let mut first_failure = None;
    for path in &args.files {
        let row = inspect_one(path, vault.as_ref()).unwrap_or_else(|failure| {
            let row = Inspected::failed(path, &failure);
            first_failure.get_or_insert(failure);
            row
        });
        rows.push(row);
    }
    match args.format {
        TableFormat::Json => print_listing(&rows, ListFormat::Json, &[], |_| Vec::new())?,
        TableFormat::Table => emit(&rows.iter().map(Inspected::line).collect::<String>())?,
    }
    first_failure.map_or(Ok(()), Err)
}

/// What `inspect` found of one file.
#[derive(serde::Serialize)]
struct Inspected {
    file: String,
    encrypted: bool,
    key_desc: Option<String>,
    digest_algorithm: Option<String>,
    digest: Option<String>,
    /// Whether the digest is of the vault's layout's algorithm (the default layout's,
    /// SHA-256, without a vault): a file of another is not read in that layout.
    digest_supported: Option<bool>,
    phone: Option<String>,
    generation: Option<u32>,
    state: Option<String>,
    error: Option<String>,
}

impl Inspected {
    fn failed(path: &Path, failure: &Failure) -> Inspected {
        Inspected {
            error: Some(failure.to_string()),
            ..Inspected::plaintext(path)
        }
    }

    fn plaintext(path: &Path) -> Inspected {
        Inspected {
            file: path.display().to_string(),
            encrypted: false,
            key_desc: None,
            digest_algorithm: None,
            digest: None,
            digest_supported: None,
            phone: None,
            generation: None,
            state: None,
            error: None,
        }
    }

    /// The table form: one line.
    fn line(&self) -> String {
        if let Some(error) = &self.error {
            return format!("{}: error: {error}\n", self.file);
        }
        if !self.encrypted {
            return format!("{}: plaintext\n", self.file);
        }
        let owner = match (&self.phone, self.generation, &self.state) {
            (Some(phone), Some(generation), Some(state)) => {
                format!(" phone={phone} generation={generation} state={state}")
            }
            _ => String::new(),
        };
        let verified = if self.digest_supported == Some(false) {
            " (not the layout's digest: `polyseal format show`, `format probe`)"
        } else {
            ""
        };
        format!(
            "{}: encrypted KeyDesc={} digest={}:{}{verified}{owner}\n",
            self.file,
            self.key_desc.as_deref().unwrap_or("(none)"),
            self.digest_algorithm.as_deref().unwrap_or_default(),
            self.digest.as_deref().unwrap_or_default(),
        )
    }
}

/// What `path`'s header says.
fn inspect_one(path: &Path, vault: Option<&Vault>) -> Result<Inspected, Failure> {
    let bytes = read_input(path, MAX_FILE_SIZE)?;
    let header = match read_header(&bytes) {
        Ok(header) => header,
        Err(CryptoError::NotEncrypted) => return Ok(Inspected::plaintext(path)),
        Err(e) => return Err(Failure::crypto(path, &e)),
    };
    let owner = header
        .key_desc()
        .and_then(|desc| vault?.find_key_desc(desc));
    Ok(Inspected {
        encrypted: true,
        key_desc: header.key_desc().map(ToString::to_string),
        digest_algorithm: Some(header.digest_algorithm().to_string()),
        digest: Some(header.digest_hex()),
        digest_supported: Some(
            header.digest_algorithm() == vault.map_or(Layout::DEFAULT, Vault::layout).digest,
        ),
        phone: owner.map(|(record, _)| record.mac().to_string()),
        generation: owner.map(|(_, g)| g.number()),
        state: owner.map(|(_, g)| g.state().to_string()),
        ..Inspected::plaintext(path)
    })
}
