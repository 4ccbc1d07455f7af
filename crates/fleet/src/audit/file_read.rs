//! Reading a file of the tree as the checks need it: its head, its mode, and its whole
//! content only when a check needs it.

use std::fs;
use std::io::Read;
use std::path::Path;

use polyseal_crypto::{Error as CryptoError, Header, MAX_FILE_SIZE};
use zeroize::Zeroizing;

use super::HEADER_WINDOW;
use crate::Error;

/// What a file's first bytes say it is.
pub(super) enum FileHead {
    Plaintext,
    Encrypted(Header),
    /// It starts like an encrypted file, but its header is refused.
    BadHeader(CryptoError),
}

impl FileHead {
    pub(super) fn is_plaintext(&self) -> bool {
        matches!(self, FileHead::Plaintext)
    }

    pub(super) fn of(bytes: &[u8]) -> FileHead {
        match Header::parse(bytes) {
            Ok(header) => FileHead::Encrypted(header),
            Err(CryptoError::NotEncrypted) => FileHead::Plaintext,
            Err(error) => FileHead::BadHeader(error),
        }
    }
}

/// A file as the checks see it.
pub(super) struct FileRead {
    /// Its first kilobyte, or all of it.
    pub(super) bytes: Zeroizing<Vec<u8>>,
    /// What its first bytes say it is.
    pub(super) content: FileHead,
    /// The file's metadata, for its mode.
    pub(super) metadata: fs::Metadata,
}

impl FileRead {
    /// The mode if group or others may read, write or run the file.
    pub(super) fn loose_mode(&self) -> Option<u32> {
        let mode = permission_bits(&self.metadata);
        (mode & 0o077 != 0).then_some(mode)
    }
}

/// Reads a file's first bytes, and on to the end (up to polyseal-crypto's size limit) when
/// `whole` says a check needs the content. Most files of a large tree need only their header:
/// one read of a kilobyte. The size comes first (the mode check needs the metadata anyway),
/// so a file shorter than the window takes one read, not a second one to find its end:
/// system calls are most of an audit's time on 200,000 files.
pub(super) fn read_file(
    path: &Path,
    whole: impl FnOnce(&FileHead) -> bool,
) -> Result<FileRead, Error> {
    let io = |e: std::io::Error| Error::io(path, "read", e);
    let mut file = fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let size = usize::try_from(metadata.len()).unwrap_or(usize::MAX);
    let mut head = Zeroizing::new([0; HEADER_WINDOW]);
    let wanted = size.min(HEADER_WINDOW);
    let mut filled = 0;
    while filled < wanted {
        match file.read(&mut head[filled..wanted]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    let content = FileHead::of(&head[..filled]);
    let bytes = if filled == HEADER_WINDOW && whole(&content) {
        // Sized for the whole file up front: a buffer that grows leaves copies of secrets in
        // freed memory.
        let len = size.min(MAX_FILE_SIZE);
        let mut bytes = Zeroizing::new(Vec::with_capacity(len + 1));
        bytes.extend_from_slice(&head[..]);
        (&mut file)
            .take((MAX_FILE_SIZE - HEADER_WINDOW) as u64)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        bytes
    } else {
        Zeroizing::new(head[..filled].to_vec())
    };
    Ok(FileRead {
        bytes,
        content,
        metadata,
    })
}

#[cfg(unix)]
pub(super) fn permission_bits(metadata: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777
}

/// Without Unix modes nothing is reported (the permissions check is listed as skipped).
#[cfg(not(unix))]
pub(super) fn permission_bits(_metadata: &fs::Metadata) -> u32 {
    0o600
}

/// Configuration files (`.cfg`, `.xml`), the only ones phones parse and the scanner reads.
pub(super) fn is_config(relative: &Path) -> bool {
    relative
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("cfg") || e.eq_ignore_ascii_case("xml"))
}
