//! Reading and writing bytes that may be secret (decrypted files, key files) so that no copy
//! is left behind in freed memory: a `Vec` that grows copies its contents and frees the old
//! allocation unwiped, and `BufWriter`'s buffer is never wiped (issue 13, point 8).

use std::io::{self, Read, Write};

use zeroize::{Zeroize, Zeroizing};

/// How much is read or buffered at a time.
const CHUNK: usize = 64 * 1024;

/// Reads all of `reader`, up to `limit + 1` bytes, into a buffer zeroized on drop; `expected`
/// sizes it (a file's length), and growing beyond it moves the bytes into a larger zeroized
/// buffer and wipes the old one.
pub(crate) fn read_zeroizing(
    mut reader: impl Read,
    limit: usize,
    expected: usize,
) -> io::Result<Zeroizing<Vec<u8>>> {
    let cap = limit.saturating_add(1);
    let mut bytes = Zeroizing::new(Vec::with_capacity(expected.saturating_add(1).min(cap)));
    let mut chunk = Zeroizing::new([0u8; CHUNK]);
    loop {
        let room = cap - bytes.len();
        if room == 0 {
            break;
        }
        let want = room.min(CHUNK);
        let read = match reader.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        if bytes.len() + read > bytes.capacity() {
            let wanted = (bytes.capacity() * 2).max(bytes.len() + read).min(cap);
            let mut larger = Zeroizing::new(Vec::with_capacity(wanted));
            larger.extend_from_slice(&bytes);
            // The old buffer is wiped as it is dropped here.
            bytes = larger;
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    Ok(bytes)
}

/// A buffered writer whose buffer never grows and is wiped when dropped.
pub(crate) struct ZeroizingWriter<W: Write> {
    inner: W,
    buffer: Zeroizing<Vec<u8>>,
}

impl<W: Write> ZeroizingWriter<W> {
    pub(crate) fn new(inner: W) -> ZeroizingWriter<W> {
        ZeroizingWriter {
            inner,
            buffer: Zeroizing::new(Vec::with_capacity(CHUNK)),
        }
    }

    /// Writes out what is buffered and returns the inner writer.
    pub(crate) fn into_inner(mut self) -> io::Result<W> {
        self.flush_buffer()?;
        let ZeroizingWriter { inner, .. } = self;
        Ok(inner)
    }

    fn flush_buffer(&mut self) -> io::Result<()> {
        self.inner.write_all(&self.buffer)?;
        self.buffer.zeroize();
        Ok(())
    }
}

impl<W: Write> Write for ZeroizingWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.buffer.len() + bytes.len() > CHUNK {
            self.flush_buffer()?;
        }
        if bytes.len() >= CHUNK {
            return self.inner.write(bytes);
        }
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buffer()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_larger_than_expected_grows_by_moving_into_zeroized_buffers() {
        let source: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let read = read_zeroizing(source.as_slice(), 1 << 20, 10).expect("read");
        assert_eq!(&*read, &source);
        let capped = read_zeroizing(source.as_slice(), 1000, 0).expect("read");
        assert_eq!(
            capped.len(),
            1001,
            "at most limit + 1 bytes, to tell it was over"
        );
    }

    #[test]
    fn the_write_buffer_never_grows_beyond_its_first_allocation() {
        let mut writer = ZeroizingWriter::new(Vec::new());
        let capacity = writer.buffer.capacity();
        for piece in 0..10_000u32 {
            writer.write_all(&piece.to_le_bytes()).expect("write");
            assert_eq!(writer.buffer.capacity(), capacity);
        }
        let written = writer.into_inner().expect("flush");
        assert_eq!(written.len(), 40_000);
    }
}
