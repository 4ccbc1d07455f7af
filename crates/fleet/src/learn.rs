//! Learning the layout of the fleet's encrypted files from the phones themselves: a phone that
//! holds a key polyseal gave it and is told `sec.encryption.upload.overrides="1"` uploads its
//! override file encrypted by its own firmware, under a key the vault holds
//! (docs/FORMAT.md, "Learning the layout from the fleet").

use std::path::{Path, PathBuf};

use polyseal_crypto::{Layout, MAX_FILE_SIZE, Mac, probe};
use polyseal_vault::{DataKey, Vault};

use crate::Error;
use crate::uploads::{Held, read_uploads};
use crate::write::read_capped;

/// What the phones' uploads showed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Learned {
    /// The one layout every encrypted upload fits.
    pub layout: Layout,
    /// The uploads that showed it, each with its phone.
    pub evidence: Vec<(Mac, PathBuf)>,
}

/// Probes every encrypted upload under `uploads` (of the phones `macs`, or of every phone; with
/// `received`, only those a ledger recorded as received over the phone's own certificate,
/// [`received_uploads`](crate::rotate::received_uploads)) with the key of the vault its header
/// names, and returns the one layout they all fit. Refused when
/// no phone uploaded an encrypted file under a key of its own (`NoEncryptedUpload`), when no
/// layout fits them all (`NoLayoutFits`), or when several do (`SeveralLayoutsFit`).
pub fn learn_layout(
    vault: &Vault,
    data_key: &DataKey,
    uploads: &Path,
    macs: Option<&[Mac]>,
    received: Option<&std::collections::BTreeSet<(Mac, String)>>,
) -> Result<Learned, Error> {
    let mut plaintext = 0;
    let mut evidence = Vec::new();
    let mut fitting: Option<Vec<Layout>> = None;
    for upload in read_uploads(uploads)? {
        if macs.is_some_and(|macs| !macs.contains(&upload.mac)) {
            continue;
        }
        // A file put into the directory by anyone but the phone shows nothing of its firmware.
        let served_path = format!("/{}", upload.file.display());
        if received.is_some_and(|r| !r.contains(&(upload.mac, served_path))) {
            continue;
        }
        let desc = match &upload.holds {
            Held::Desc(desc) => desc,
            _ => {
                plaintext += 1;
                continue;
            }
        };
        // Only the phone's own key: a file under another phone's key shows nothing of this
        // phone's firmware.
        let Some((record, generation)) = vault.find_key_desc(desc) else {
            continue;
        };
        if record.mac() != upload.mac {
            continue;
        }
        let key = vault.open_key(data_key, &upload.mac, Some(generation.number()))?;
        let path = uploads.join(&upload.file);
        let bytes = read_capped(&path, MAX_FILE_SIZE)?;
        let fits = probe(&[&bytes], &key.key, None)
            .map_err(|source| Error::Crypto {
                path: path.clone(),
                source,
            })?
            .fits;
        if fits.is_empty() {
            return Err(Error::NoLayoutFits { file: path });
        }
        let together: Vec<Layout> = match fitting {
            None => fits,
            Some(before) => before.into_iter().filter(|l| fits.contains(l)).collect(),
        };
        if together.is_empty() {
            // Not empty: `fits` is not, so an upload before this one narrowed the layouts.
            let first = evidence
                .first()
                .map_or_else(PathBuf::new, |(_, f)| uploads.join(f));
            return Err(Error::UploadsDisagree { first, other: path });
        }
        fitting = Some(together);
        evidence.push((upload.mac, upload.file));
    }
    let Some(fitting) = fitting else {
        return Err(Error::NoEncryptedUpload {
            dir: uploads.to_owned(),
            plaintext,
        });
    };
    match fitting.as_slice() {
        [layout] => Ok(Learned {
            layout: *layout,
            evidence,
        }),
        several => Err(Error::SeveralLayoutsFit {
            layouts: several.to_vec(),
        }),
    }
}
