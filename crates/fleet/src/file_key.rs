//! Which of the vault's keys opens one encrypted file: the one its header's KeyDesc names,
//! or, for a header that names none, the active key of the phone the operator names.

use std::path::Path;

use polyseal_crypto::{KeyDesc, Mac};
use polyseal_vault::Vault;

use crate::Error;

/// The phone and generation whose key opens the file `file` (named in errors) whose header
/// names `key_desc`; `mac`, when given, must be that phone (and names the phone when the
/// header names no KeyDesc; the generation is then its active one, `None`). Decided from the
/// vault's metadata, before any identity is asked for: a file no key of ours opens needs none.
pub fn key_for_file(
    vault: &Vault,
    file: &Path,
    key_desc: Option<&KeyDesc>,
    mac: Option<Mac>,
) -> Result<(Mac, Option<u32>), Error> {
    match (key_desc, mac) {
        (Some(desc), _) => {
            let (record, generation) =
                vault
                    .find_key_desc(desc)
                    .ok_or_else(|| Error::KeyDescNotInVault {
                        file: file.to_owned(),
                        key_desc: desc.clone(),
                    })?;
            if let Some(mac) = mac.filter(|m| *m != record.mac()) {
                return Err(Error::KeyOfAnotherPhone {
                    file: file.to_owned(),
                    key_desc: desc.clone(),
                    owner: record.mac(),
                    mac,
                });
            }
            Ok((record.mac(), Some(generation.number())))
        }
        (None, Some(mac)) => Ok((mac, None)),
        (None, None) => Err(Error::NoKeyDescNoMac {
            file: file.to_owned(),
        }),
    }
}
