//! The redo journal that makes a transaction all-or-nothing across files.
//!
//! A transaction touches several files (bucket files, `events.log`, sometimes `vault.toml`
//! and `data-key.age`). Its writer first writes everything it will write into `journal`
//! (temporary name, fsync, rename, fsync the directory): from that moment the transaction is
//! committed. It then applies the journal: truncates `events.log` to its length before the
//! transaction and appends the new lines, replaces each file atomically, fsyncs, and removes
//! the journal. Whoever next takes the writer's lock after a crash applies a journal it finds
//! again, from the start: every step is idempotent. Without a journal on disk, every file is
//! in its state after the last complete transaction.
//!
//! Format: a JSON line per entry, `{"header":{"format":2,"log_len":N}}`, then
//! `{"append":{"bytes":B}}` for each run of new log lines and `{"file":{"path":"keys/ef.jsonl",
//! "bytes":B}}` for each file, each followed by its `B` bytes as they are and a newline, then
//! `{"end":{"appends":A,"files":F}}`. Contents are framed by length rather than escaped into
//! JSON strings: a batch of 100,000 keys writes tens of megabytes here, and escaping them and
//! parsing them back was a third of its time. A journal without its `end` line, whose counts
//! disagree, or whose contents are not followed by their newline, is never applied.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::durable::{self, TEMP_SUFFIX};
use crate::layout::{JournalDir, Layout};

/// The journal's format version. Version 1 escaped contents into JSON strings; a version-1
/// journal (left by an older polyseal that stopped mid-transaction) is refused by name, and
/// that polyseal applies it.
const JOURNAL_FORMAT: u32 = 2;

/// New log lines are gathered into runs of about this many bytes, one `append` entry each.
const APPEND_RUN: usize = 64 * 1024;

/// One entry's line. `Append` and `File` are followed by their `bytes` of content.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    Header { format: u32, log_len: u64 },
    Append { bytes: u64 },
    File { path: String, bytes: u64 },
    End { appends: u64, files: u64 },
}

/// Writes a journal. Nothing is committed until [`JournalWriter::commit`] returns.
pub(crate) struct JournalWriter {
    out: BufWriter<File>,
    temp: PathBuf,
    path: PathBuf,
    /// New log lines not yet written as an `append` entry.
    pending_lines: Vec<u8>,
    appends: u64,
    files: u64,
}

impl JournalWriter {
    /// Starts a journal for a transaction that appends to a log of `log_len` bytes.
    pub(crate) fn create(layout: &Layout, log_len: u64) -> Result<JournalWriter, Error> {
        let path = layout.journal();
        let mut temp = path.clone().into_os_string();
        temp.push(TEMP_SUFFIX);
        let temp = PathBuf::from(temp);
        let out = BufWriter::new(durable::create_private(&temp)?);
        let mut journal = JournalWriter {
            out,
            temp,
            path,
            pending_lines: Vec::new(),
            appends: 0,
            files: 0,
        };
        journal.entry(
            &Entry::Header {
                format: JOURNAL_FORMAT,
                log_len,
            },
            None,
        )?;
        Ok(journal)
    }

    /// Adds a line to append to `events.log` (without its newline).
    pub(crate) fn event(&mut self, line: &str) -> Result<(), Error> {
        self.pending_lines.extend_from_slice(line.as_bytes());
        self.pending_lines.push(b'\n');
        if self.pending_lines.len() >= APPEND_RUN {
            self.flush_lines()?;
        }
        Ok(())
    }

    /// Adds a file to replace; `relative` is its path from the vault root.
    pub(crate) fn file(&mut self, relative: String, contents: &[u8]) -> Result<(), Error> {
        self.flush_lines()?;
        self.files += 1;
        self.entry(
            &Entry::File {
                path: relative,
                bytes: contents.len() as u64,
            },
            Some(contents),
        )
    }

    /// Makes the journal durable under its real name: the transaction is committed.
    pub(crate) fn commit(mut self) -> Result<(), Error> {
        self.flush_lines()?;
        let end = Entry::End {
            appends: self.appends,
            files: self.files,
        };
        self.entry(&end, None)?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.temp, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io(&self.temp, "write", e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.path)
            .map_err(|e| Error::io(&self.path, "rename a temporary file to", e))?;
        durable::sync_dir(parent(&self.path))
    }

    /// Writes the gathered log lines as one `append` entry, if there are any.
    fn flush_lines(&mut self) -> Result<(), Error> {
        if self.pending_lines.is_empty() {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.pending_lines);
        self.appends += 1;
        self.entry(
            &Entry::Append {
                bytes: lines.len() as u64,
            },
            Some(&lines),
        )
    }

    /// Writes an entry's line, then its contents and their newline if it has any.
    fn entry(&mut self, entry: &Entry, contents: Option<&[u8]>) -> Result<(), Error> {
        serde_json::to_writer(&mut self.out, entry)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
            .and_then(|()| match contents {
                Some(contents) => self
                    .out
                    .write_all(contents)
                    .and_then(|()| self.out.write_all(b"\n")),
                None => Ok(()),
            })
            .map_err(|e| Error::io(&self.temp, "write", e))
    }
}

/// Applies the journal left in the vault, if there is one; returns whether there was.
/// The caller holds the writer's lock.
pub(crate) fn recover(layout: &Layout) -> Result<bool, Error> {
    let path = layout.journal();
    if !path.exists() {
        return Ok(false);
    }
    let log_len = check(&path)?;
    apply(layout, &path, log_len)?;
    durable::remove_if_present(&path)?;
    durable::sync_dir(layout.root())?;
    Ok(true)
}

/// Reads the whole journal without acting on it: it must be complete before any of it is
/// applied. Returns the log length it was written against.
fn check(path: &Path) -> Result<u64, Error> {
    let mut reader = JournalReader::open(path)?;
    let mut log_len = None;
    let (mut appends, mut files) = (0u64, 0u64);
    let mut complete = false;
    while let Some(entry) = reader.next_entry()? {
        match entry {
            Entry::Header {
                format,
                log_len: len,
            } if log_len.is_none() => {
                if format != JOURNAL_FORMAT {
                    return Err(Error::UnsupportedFormat {
                        path: path.to_path_buf(),
                        found: i64::from(format),
                        supported: JOURNAL_FORMAT,
                    });
                }
                log_len = Some(len);
            }
            Entry::Append { bytes } if log_len.is_some() && !complete => {
                reader.contents(bytes)?;
                appends += 1;
            }
            Entry::File { bytes, .. } if log_len.is_some() && !complete => {
                reader.contents(bytes)?;
                files += 1;
            }
            Entry::End {
                appends: a,
                files: f,
            } if log_len.is_some() && !complete => {
                complete = a == appends && f == files;
            }
            _ => return Err(Error::corrupt(path, "entries are out of order")),
        }
    }
    match log_len {
        Some(len) if complete => Ok(len),
        _ => Err(Error::corrupt(path, "is incomplete")),
    }
}

fn apply(layout: &Layout, path: &Path, log_len: u64) -> Result<(), Error> {
    durable::ensure_real_dir(&layout.keys_dir())?;
    // keys/ of a vault whose first transaction was cut short may not exist.
    durable::create_private_dir(&layout.keys_dir())?;
    // Each directory opened once, keys/ never through a link: the files land in the vault
    // even if a path is swapped for a link while the journal is applied.
    let root = durable::OpenDir::open(layout.root(), true)?;
    let keys = durable::OpenDir::open(&layout.keys_dir(), false)?;
    let log_path = layout.events();
    let mut log = open_log_at(&log_path, log_len)?;
    // Directories whose entries changed; appending to events.log changes none.
    let (mut root_changed, mut keys_changed) = (false, false);
    let mut reader = JournalReader::open(path)?;
    while let Some(entry) = reader.next_entry()? {
        match entry {
            Entry::Append { bytes } => {
                let lines = reader.contents(bytes)?;
                log.write_all(&lines)
                    .map_err(|e| Error::io(&log_path, "append to", e))?;
            }
            Entry::File {
                path: relative,
                bytes,
            } => {
                let (dir, name) = layout.journal_target(&relative).ok_or_else(|| {
                    Error::corrupt(path, format!("names a file it may not write: {relative:?}"))
                })?;
                let contents = reader.contents(bytes)?;
                match dir {
                    JournalDir::Root => {
                        root.replace_file(name, &contents)?;
                        root_changed = true;
                    }
                    JournalDir::Keys => {
                        keys.replace_file(name, &contents)?;
                        keys_changed = true;
                    }
                }
            }
            Entry::Header { .. } | Entry::End { .. } => {}
        }
    }
    let log = log
        .into_inner()
        .map_err(|e| Error::io(&log_path, "append to", e.into_error()))?;
    log.sync_all()
        .map_err(|e| Error::io(&log_path, "append to", e))?;
    if root_changed {
        root.sync()?;
    }
    if keys_changed {
        keys.sync()?;
    }
    Ok(())
}

/// Reads a journal entry by entry.
struct JournalReader<'p> {
    input: BufReader<File>,
    path: &'p Path,
    line: String,
}

impl<'p> JournalReader<'p> {
    fn open(path: &'p Path) -> Result<JournalReader<'p>, Error> {
        let file = durable::open_regular(path)?.ok_or_else(|| Error::MissingFile {
            path: path.to_path_buf(),
        })?;
        Ok(JournalReader {
            input: BufReader::new(file),
            path,
            line: String::new(),
        })
    }

    /// The next entry's line, or `None` at the end of the file.
    fn next_entry(&mut self) -> Result<Option<Entry>, Error> {
        self.line.clear();
        let read = self
            .input
            .read_line(&mut self.line)
            .map_err(|e| Error::io(self.path, "read", e))?;
        if read == 0 {
            return Ok(None);
        }
        serde_json::from_str(&self.line)
            .map(Some)
            .map_err(|e| Error::corrupt(self.path, e))
    }

    /// The `bytes` bytes of contents that follow an entry's line, checked to end where the
    /// entry said.
    fn contents(&mut self, bytes: u64) -> Result<Vec<u8>, Error> {
        let mut contents = Vec::new();
        (&mut self.input)
            .take(bytes)
            .read_to_end(&mut contents)
            .map_err(|e| Error::io(self.path, "read", e))?;
        if contents.len() as u64 != bytes {
            return Err(Error::corrupt(self.path, "ends inside an entry's contents"));
        }
        self.end_of_contents()?;
        Ok(contents)
    }

    /// The newline that closes an entry's contents: anything else means the lengths lie.
    fn end_of_contents(&mut self) -> Result<(), Error> {
        let mut newline = [0u8];
        match self.input.read_exact(&mut newline) {
            Ok(()) if newline == *b"\n" => Ok(()),
            _ => Err(Error::corrupt(
                self.path,
                "an entry's contents do not end where its length says",
            )),
        }
    }
}

/// Opens `events.log` for appending at `log_len`, cutting off whatever an interrupted apply
/// of this same journal appended before.
fn open_log_at(path: &Path, log_len: u64) -> Result<BufWriter<File>, Error> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        // Never through a symbolic link: a planted link would have the log's truncation and
        // appends land in whatever file it names.
        std::os::unix::fs::OpenOptionsExt::custom_flags(
            &mut options,
            (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
        );
    }
    let mut file = options.open(path).map_err(|e| match e.raw_os_error() {
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => Error::corrupt(
            path,
            "is a symbolic link: polyseal never puts one there, and writes through none",
        ),
        _ => Error::io(path, "open", e),
    })?;
    durable::ensure_own_file(&file, path)?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "read", e))?
        .len();
    if len < log_len {
        return Err(Error::EventLog {
            path: path.to_path_buf(),
            line: 0,
            reason: format!(
                "is {len} bytes, shorter than the {log_len} bytes the pending transaction \
                 was written against: lines were removed"
            ),
        });
    }
    file.set_len(log_len)
        .and_then(|()| file.seek(SeekFrom::End(0)).map(drop))
        .map_err(|e| Error::io(path, "truncate", e))?;
    Ok(BufWriter::new(file))
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_with(layout: &Layout, log_len: u64) -> Vec<u8> {
        let mut journal = JournalWriter::create(layout, log_len).expect("create");
        journal.event("{\"seq\":2}").expect("event");
        journal
            .file("keys/ef.jsonl".to_owned(), b"{\"format\":1}\n")
            .expect("file");
        journal.commit().expect("commit");
        std::fs::read(layout.journal()).expect("journal")
    }

    #[test]
    fn applying_a_journal_twice_gives_the_same_vault() {
        let dir = tempfile::tempdir().expect("tmp");
        let layout = Layout::new(dir.path());
        std::fs::write(layout.events(), "{\"seq\":1}\n").expect("log");
        let journal = journal_with(&layout, 10);
        assert!(recover(&layout).expect("first apply"));
        assert!(!layout.journal().exists());
        let log = std::fs::read_to_string(layout.events()).expect("log");
        assert_eq!(log, "{\"seq\":1}\n{\"seq\":2}\n");

        // A crash after step 2 leaves the journal: applying it again changes nothing.
        std::fs::write(layout.journal(), journal).expect("restore journal");
        assert!(recover(&layout).expect("second apply"));
        assert_eq!(std::fs::read_to_string(layout.events()).expect("log"), log);
        assert_eq!(
            std::fs::read_to_string(layout.bucket(0xef)).expect("bucket"),
            "{\"format\":1}\n"
        );
        assert!(!recover(&layout).expect("nothing to do"));
    }

    #[test]
    fn a_journal_naming_a_file_outside_the_vault_is_not_applied() {
        let dir = tempfile::tempdir().expect("tmp");
        let layout = Layout::new(&dir.path().join("vault"));
        durable::create_private_dir(layout.root()).expect("dir");
        let mut journal = JournalWriter::create(&layout, 0).expect("create");
        journal.file("../escaped".to_owned(), b"x").expect("file");
        journal.commit().expect("commit");
        let error = recover(&layout).expect_err("refused");
        assert!(error.to_string().contains("may not write"), "{error}");
        assert!(!dir.path().join("escaped").exists());
    }
}
