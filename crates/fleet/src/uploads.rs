//! The override and directory files phones upload: which phone uploaded each, and under
//! which key.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use polyseal_crypto::{Error as CryptoError, Header, KeyDesc, Mac};

use crate::Error;
use crate::files::files_under;

/// The override (`<mac>-phone.cfg`) and directory (`<mac>-directory.xml`) files phones
/// uploaded under `dir`, each with its phone, in path order.
pub fn uploads_in(dir: &Path) -> Result<Vec<(Mac, PathBuf)>, Error> {
    if !dir.is_dir() {
        return Err(Error::UploadsNotADirectory {
            dir: dir.to_owned(),
        });
    }
    let mut uploads: Vec<(Mac, PathBuf)> = files_under(dir)?
        .into_iter()
        .filter_map(|path| Some((uploader(&path)?, path)))
        .collect();
    uploads.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(uploads)
}

/// The phone that uploaded `path`: its name is `<mac>-phone.cfg` or `<mac>-directory.xml`,
/// with the MAC in lowercase, as phones request and upload files.
fn uploader(path: &Path) -> Option<Mac> {
    let name = path.file_name()?.to_str()?;
    let mac = name
        .strip_suffix("-phone.cfg")
        .or_else(|| name.strip_suffix("-directory.xml"))?;
    let canonical = mac.len() == 12 && mac.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    canonical.then(|| Mac::parse(mac).ok()).flatten()
}

/// What an uploaded file shows about the key its phone holds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Held {
    /// Encrypted under this KeyDesc.
    Desc(KeyDesc),
    /// Not encrypted: the phone has no key.
    Plaintext,
}

/// One uploaded file of a phone, with what its header shows.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Upload {
    /// The phone that uploaded it.
    pub mac: Mac,
    /// Its path under the uploads directory.
    pub file: PathBuf,
    /// What it shows about the phone's key.
    pub holds: Held,
}

/// The override and directory files phones uploaded under `dir`, with what each shows; files
/// whose header cannot be read, or names no KeyDesc, are left out.
pub fn read_uploads(dir: &Path) -> Result<Vec<Upload>, Error> {
    let mut uploads = Vec::new();
    for (mac, path) in uploads_in(dir)? {
        let mut head = Vec::new();
        fs::File::open(&path)
            .and_then(|f| f.take(1024).read_to_end(&mut head))
            .map_err(|e| Error::io(&path, "read", e))?;
        let holds = match Header::parse(&head) {
            Ok(header) => match header.key_desc() {
                Some(desc) => Held::Desc(desc.clone()),
                None => continue,
            },
            Err(CryptoError::NotEncrypted) => Held::Plaintext,
            Err(_) => continue,
        };
        let file = path.strip_prefix(dir).unwrap_or(&path).to_owned();
        uploads.push(Upload { mac, file, holds });
    }
    Ok(uploads)
}
