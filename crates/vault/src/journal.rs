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
//! Format: JSON lines, `{"header":{"format":1,"log_len":N}}`, then `{"event":"<log line>"}`
//! for each new log line, then `{"file":{"path":"keys/ef.jsonl","contents":"…"}}` for each
//! file, then `{"end":{"events":E,"files":F}}`. A journal without its `end` line, or whose
//! counts disagree, is never applied.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::durable::{self, TEMP_SUFFIX};
use crate::layout::Layout;
use crate::{Error, FORMAT_VERSION};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    Header { format: u32, log_len: u64 },
    Event(String),
    File { path: String, contents: String },
    End { events: u64, files: u64 },
}

/// Writes a journal. Nothing is committed until [`JournalWriter::commit`] returns.
pub(crate) struct JournalWriter {
    out: BufWriter<File>,
    temp: PathBuf,
    path: PathBuf,
    events: u64,
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
            events: 0,
            files: 0,
        };
        journal.entry(&Entry::Header {
            format: FORMAT_VERSION,
            log_len,
        })?;
        Ok(journal)
    }

    /// Adds a line to append to `events.log` (without its newline).
    pub(crate) fn event(&mut self, line: String) -> Result<(), Error> {
        self.events += 1;
        self.entry(&Entry::Event(line))
    }

    /// Adds a file to replace; `relative` is its path from the vault root.
    pub(crate) fn file(&mut self, relative: String, contents: String) -> Result<(), Error> {
        self.files += 1;
        self.entry(&Entry::File {
            path: relative,
            contents,
        })
    }

    /// Makes the journal durable under its real name: the transaction is committed.
    pub(crate) fn commit(mut self) -> Result<(), Error> {
        let end = Entry::End {
            events: self.events,
            files: self.files,
        };
        self.entry(&end)?;
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

    fn entry(&mut self, entry: &Entry) -> Result<(), Error> {
        serde_json::to_writer(&mut self.out, entry)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"))
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
    let mut log_len = None;
    let (mut events, mut files) = (0u64, 0u64);
    let mut complete = false;
    for entry in entries(path)? {
        match entry? {
            Entry::Header {
                format,
                log_len: len,
            } if log_len.is_none() => {
                if format != FORMAT_VERSION {
                    return Err(Error::UnsupportedFormat {
                        path: path.to_path_buf(),
                        found: i64::from(format),
                        supported: FORMAT_VERSION,
                    });
                }
                log_len = Some(len);
            }
            Entry::Event(_) if log_len.is_some() => events += 1,
            Entry::File { .. } if log_len.is_some() => files += 1,
            Entry::End {
                events: e,
                files: f,
            } if log_len.is_some() && !complete => {
                complete = e == events && f == files;
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
    let log_path = layout.events();
    let mut log = open_log_at(&log_path, log_len)?;
    // Directories whose entries changed; appending to events.log changes none.
    let mut dirs_to_sync: Vec<PathBuf> = Vec::new();
    for entry in entries(path)? {
        match entry? {
            Entry::Event(line) => log
                .write_all(line.as_bytes())
                .and_then(|()| log.write_all(b"\n"))
                .map_err(|e| Error::io(&log_path, "append to", e))?,
            Entry::File {
                path: relative,
                contents,
            } => {
                let target = layout.resolve_journal_path(&relative).ok_or_else(|| {
                    Error::corrupt(path, format!("names a file it may not write: {relative:?}"))
                })?;
                let dir = parent(&target).to_path_buf();
                if !dirs_to_sync.contains(&dir) {
                    // keys/ of a vault whose first transaction was cut short may not exist.
                    durable::create_private_dir(&dir)?;
                    dirs_to_sync.push(dir);
                }
                durable::replace_file(&target, contents.as_bytes())?;
            }
            Entry::Header { .. } | Entry::End { .. } => {}
        }
    }
    let log = log
        .into_inner()
        .map_err(|e| Error::io(&log_path, "append to", e.into_error()))?;
    log.sync_all()
        .map_err(|e| Error::io(&log_path, "append to", e))?;
    for dir in &dirs_to_sync {
        durable::sync_dir(dir)?;
    }
    Ok(())
}

/// Opens `events.log` for appending at `log_len`, cutting off whatever an interrupted apply
/// of this same journal appended before.
fn open_log_at(path: &Path, log_len: u64) -> Result<BufWriter<File>, Error> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| Error::io(path, "open", e))?;
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

fn entries(path: &Path) -> Result<impl Iterator<Item = Result<Entry, Error>> + '_, Error> {
    let file = File::open(path).map_err(|e| Error::io(path, "read", e))?;
    Ok(BufReader::new(file).lines().map(move |line| {
        let line = line.map_err(|e| Error::io(path, "read", e))?;
        serde_json::from_str(&line).map_err(|e| Error::corrupt(path, e))
    }))
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_with(layout: &Layout, log_len: u64) -> Vec<u8> {
        let mut journal = JournalWriter::create(layout, log_len).expect("create");
        journal.event("{\"seq\":2}".to_owned()).expect("event");
        journal
            .file("keys/ef.jsonl".to_owned(), "{\"format\":1}\n".to_owned())
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
        journal
            .file("../escaped".to_owned(), "x".to_owned())
            .expect("file");
        journal.commit().expect("commit");
        let error = recover(&layout).expect_err("refused");
        assert!(error.to_string().contains("may not write"), "{error}");
        assert!(!dir.path().join("escaped").exists());
    }
}
