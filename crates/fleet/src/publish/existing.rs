//! What the current published tree already holds of each output: proved by the manifest,
//! by reading and comparing, or stale.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use polyseal_crypto::{Header, KeyString, Layout, MAX_FILE_SIZE};
use polyseal_provision::bootstrap_file;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::manifest::{Entry, Manifest, Provenance, Stamp};
use super::output::{Content, Output};
use crate::Error;

/// What the current published tree already holds of one output.
pub(super) enum Existing {
    /// Nothing usable: the output must be written.
    Stale,
    /// Up to date, as the manifest's entry proves without reading anything.
    Recorded,
    /// Up to date, proved by reading and comparing; with the entry that proves it next time
    /// (none if its source changed too recently to be trusted).
    Verified(Option<Entry>),
}

impl Existing {
    pub(super) fn is_fresh(&self) -> bool {
        !matches!(self, Existing::Stale)
    }
}

/// Reads a file of at most [`MAX_FILE_SIZE`] bytes (configuration files are small; the cap
/// keeps a stray huge file out), with its stamp taken before the read, so a change during or
/// after the read shows in the next run's comparison.
fn read_stamped(path: &Path) -> Result<(Zeroizing<Vec<u8>>, fs::Metadata), Error> {
    use std::io::Read;
    let too_large = || Error::TooLarge {
        path: path.to_owned(),
        limit: MAX_FILE_SIZE,
    };
    let file = fs::File::open(path).map_err(|e| Error::io(path, "read", e))?;
    let metadata = file.metadata().map_err(|e| Error::io(path, "read", e))?;
    let size = usize::try_from(metadata.len()).map_err(|_| too_large())?;
    if size > MAX_FILE_SIZE {
        return Err(too_large());
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(size + 1));
    file.take(MAX_FILE_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, "read", e))?;
    if bytes.len() > MAX_FILE_SIZE {
        return Err(too_large());
    }
    Ok((bytes, metadata))
}

/// Reads a source file and its stamp.
pub(super) fn read_source(path: &Path) -> Result<(Zeroizing<Vec<u8>>, Option<Stamp>), Error> {
    let (bytes, metadata) = read_stamped(path)?;
    Ok((bytes, Stamp::of(&metadata)))
}

/// What the published tree under `out` already holds of `output`: the manifest's entry
/// proves it by `stat` alone; otherwise the file is read and compared: same bytes for copies
/// and bootstrap files; for encrypted files (whose IVs differ on every run, so bytes never
/// match) a header naming the key's KeyDesc and the source's digest, and a body that the key
/// really decrypts (another vault's key may carry the same KeyDesc).
pub(super) fn existing(
    out: &Path,
    output: &Output<'_>,
    manifest: &Manifest,
    now: SystemTime,
) -> Result<Existing, Error> {
    let published = out.join(&output.relative);
    let provenance = output.provenance();
    if let Some(entry) = manifest.get(&output.relative) {
        if entry.proves(&provenance, &published) {
            return Ok(Existing::Recorded);
        }
    }
    if let Content::Copy { source } = &output.content {
        return existing_copy(&published, source, output.mode(), &provenance, now);
    }
    // A published file that cannot be read (missing, too large) is simply rewritten.
    let Ok((current, metadata)) = read_stamped(&published) else {
        return Ok(Existing::Stale);
    };
    let out_stamp = Stamp::of(&metadata);
    if !has_mode(&metadata, output.mode()) {
        return Ok(Existing::Stale);
    }
    let (fresh, source_stamp) = match &output.content {
        Content::Plaintext {
            source,
            key,
            layout,
            ..
        } => {
            let (bytes, stamp) = super::render::plaintext_source(source, *key, layout)?;
            (bool::from(bytes.ct_eq(&current)), stamp)
        }
        // Compared block by block by existing_copy, above.
        Content::Copy { .. } => (false, None),
        Content::Encrypt {
            source,
            key,
            layout,
        } => {
            let (plaintext, stamp) = read_source(source)?;
            let fresh = if polyseal_crypto::is_encrypted(&plaintext) {
                *plaintext == *current
            } else {
                same_seal(&current, key, layout, &plaintext)
            };
            (fresh, stamp)
        }
        Content::Bootstrap { key } => (bool::from(bootstrap_file(key).ct_eq(&current)), None),
    };
    Ok(if fresh {
        Existing::Verified(out_stamp.and_then(|o| Entry::new(&provenance, o, source_stamp, now)))
    } else {
        Existing::Stale
    })
}

/// True if `file` is `plaintext` sealed under `key` in `layout`: its header names the key's
/// KeyDesc and carries the plaintext's digest, and the key decrypts it in the layout (a file
/// of another layout is sealed again: `format set` changes what every file must be).
fn same_seal(file: &[u8], key: &KeyString, layout: &Layout, plaintext: &[u8]) -> bool {
    Header::parse(file)
        .is_ok_and(|h| h.key_desc() == Some(key.key_desc()) && h.matches_plaintext(plaintext))
        && polyseal_crypto::decrypt_with(file, key, layout).is_ok()
}

#[cfg(unix)]
fn has_mode(metadata: &fs::Metadata, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777 == mode
}

#[cfg(not(unix))]
fn has_mode(_metadata: &fs::Metadata, _mode: u32) -> bool {
    true
}

/// [`existing`] for a copied file, of any size: same mode, same length and the same bytes,
/// compared a block at a time (a firmware image is never read whole).
fn existing_copy(
    published: &Path,
    source: &Path,
    mode: u32,
    provenance: &Provenance<'_>,
    now: SystemTime,
) -> Result<Existing, Error> {
    let Ok(mut current) = fs::File::open(published) else {
        return Ok(Existing::Stale);
    };
    let Ok(metadata) = current.metadata() else {
        return Ok(Existing::Stale);
    };
    if !has_mode(&metadata, mode) {
        return Ok(Existing::Stale);
    }
    let mut original = fs::File::open(source).map_err(|e| Error::io(source, "read", e))?;
    let source_metadata = original
        .metadata()
        .map_err(|e| Error::io(source, "read", e))?;
    let fresh = source_metadata.len() == metadata.len()
        && same_bytes(&mut original, &mut current).map_err(|e| Error::io(source, "read", e))?;
    Ok(if fresh {
        Existing::Verified(
            Stamp::of(&metadata)
                .and_then(|o| Entry::new(provenance, o, Stamp::of(&source_metadata), now)),
        )
    } else {
        Existing::Stale
    })
}

/// True if `a` and `b` hold the same bytes from where they are to their ends.
fn same_bytes(a: &mut fs::File, b: &mut fs::File) -> std::io::Result<bool> {
    use std::io::Read;
    const BLOCK: usize = 64 * 1024;
    let (mut left, mut right) = (vec![0; BLOCK], vec![0; BLOCK]);
    loop {
        let n = fill(a, &mut left)?;
        let m = fill(b, &mut right)?;
        if n != m || left[..n] != right[..m] {
            return Ok(false);
        }
        if n < BLOCK {
            return Ok(true);
        }
    }

    /// Reads until `buffer` is full or the file ends; how many bytes it holds.
    fn fill(file: &mut fs::File, buffer: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buffer.len() {
            match file.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }
}
