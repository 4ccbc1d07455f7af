//! The publish manifest: what each file of a published tree was made from, so that a rerun
//! proves an unchanged tree by `stat` instead of reading every file, as rsync and make do.
//!
//! It lives beside the tree (`.<out>.polyseal-manifest`), never in it, so the web server does
//! not serve it. It is a cache, not a record: a missing, unreadable or foreign manifest only
//! makes the next run read and compare every file (the slow path, which is always correct).
//! An entry is trusted only while both the published file and its source keep the inode,
//! size, modification time, change time and mode they had when the entry was written. The
//! change time cannot be set from user space, so an edit, a `touch -d`, a `chmod` or a
//! replaced file all send that one file back to the slow path. CHANGELOG.md's
//! performance history (0.1.0) has the numbers this bought: a rerun 5.6 s -> 2.5 s.
//!
//! Memory matters at 100,000 phones (200,000 files): an entry keeps 64-bit digests of the
//! stamps, not the stamps, and the table is keyed by a hash of the path. Two paths with the
//! same hash cannot mislead: an entry also names its file's inode (in the stamp), so it proves
//! nothing about another file.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::BufRead;
use std::path::Path;
use std::time::{Duration, SystemTime};

use polyseal_crypto::{Fingerprint, Layout};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::OutputKind;
use crate::Error;
use crate::write::{SECRET_MODE, write_atomic_with};

/// The manifest's first line (followed by a tab and the vault's layout when it is not the
/// default: entries of encrypted files made in another layout prove nothing, docs/FORMAT.md,
/// "Layouts"); a manifest that starts otherwise is ignored. One line per file
/// polyseal wrote follows: kind, stamp digest of the file, of its source (`-` for none), its
/// key's fingerprint (`-` for none) and its path, separated by tabs; or, for a file with
/// nothing to prove it unchanged, `written`, three `-` and its path.
const FORMAT: &str = "polyseal-manifest/2";

/// The first line of manifests written before they listed every file polyseal wrote: their
/// entries still prove and own their files.
const FORMAT_1: &str = "polyseal-manifest/1";

/// The kind field of a line that says polyseal wrote the file, with nothing to prove it
/// unchanged (its source changed too recently, or it was staged before the swap).
const WRITTEN: &str = "written";

/// A source changed less than this long before its entry is written is not recorded: file
/// times are kept at the kernel's clock tick, so a write in the same tick as our read could
/// leave every stamp equal (git's "racy clean" problem). Such a file takes the slow path once.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// The identity of one version of a file: inode, size, modification time, change time and
/// mode bits, reduced to a 64-bit digest; and when it last changed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    digest: u64,
    changed: SystemTime,
}

impl Stamp {
    /// The stamp of a file whose metadata is `metadata`.
    #[cfg(unix)]
    pub(crate) fn of(metadata: &fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let mut hash = Sha256::new();
        for field in [
            metadata.ino(),
            metadata.size(),
            metadata.mtime() as u64,
            metadata.mtime_nsec() as u64,
            metadata.ctime() as u64,
            metadata.ctime_nsec() as u64,
            u64::from(metadata.mode()),
        ] {
            hash.update(field.to_le_bytes());
        }
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let changed = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(metadata.ctime()).unwrap_or(0))
            + Duration::from_nanos(u64::try_from(metadata.ctime_nsec()).unwrap_or(0));
        Some(Stamp {
            digest: u64::from_le_bytes(first),
            changed,
        })
    }

    /// Without inodes and change times a stamp proves nothing: every file takes the slow path.
    #[cfg(not(unix))]
    pub(crate) fn of(_metadata: &fs::Metadata) -> Option<Stamp> {
        None
    }

    /// The stamp of the file at `path` (not following a symbolic link), if it exists.
    pub(crate) fn at(path: &Path) -> Option<Stamp> {
        Stamp::of(&fs::symlink_metadata(path).ok()?)
    }

    /// True if the file changed within [`RACY_WINDOW`] of `now`.
    fn is_recent(&self, now: SystemTime) -> bool {
        now.duration_since(self.changed)
            .is_ok_and(|age| age < RACY_WINDOW)
    }
}

/// True if `stamp` is the one whose digest was recorded.
fn same_stamp(recorded: u64, stamp: Option<Stamp>) -> bool {
    stamp.is_some_and(|s| bool::from(s.digest.ct_eq(&recorded)))
}

/// Where a published file comes from: what a manifest entry is compared with.
pub(crate) struct Provenance<'a> {
    pub(crate) kind: OutputKind,
    /// The source file, for copies and encrypted files.
    pub(crate) source: Option<&'a Path>,
    /// The key that seals or is delivered, for encrypted and bootstrap files.
    pub(crate) key: Option<Fingerprint>,
}

/// One published file as it was written or last proved up to date: its kind, the digests of
/// its stamp and its source's stamp, and its key's fingerprint.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    kind: OutputKind,
    out: u64,
    source: Option<u64>,
    key: Option<Fingerprint>,
}

impl Entry {
    /// The entry for a published file stamped `out`, made as `provenance` says from a source
    /// stamped `source` (taken before the source was read). `None` when the source changed
    /// too recently before `now` to be trusted.
    pub(crate) fn new(
        provenance: &Provenance<'_>,
        out: Stamp,
        source: Option<Stamp>,
        now: SystemTime,
    ) -> Option<Entry> {
        if provenance.source.is_some() && source.is_none_or(|s| s.is_recent(now)) {
            return None;
        }
        Some(Entry {
            kind: provenance.kind,
            out: out.digest,
            source: source.map(|s| s.digest),
            key: provenance.key,
        })
    }

    /// The same entry for the published file after it got the stamp `out` (a hard link
    /// changes the change time).
    pub(crate) fn restamped(&self, out: Stamp) -> Entry {
        Entry {
            out: out.digest,
            ..self.clone()
        }
    }

    /// True if the file at `published`, as it is now, is still what `provenance` makes: same
    /// kind, same key, and neither it nor its source touched since the entry was written.
    pub(crate) fn proves(&self, provenance: &Provenance<'_>, published: &Path) -> bool {
        self.kind == provenance.kind
            && self.key == provenance.key
            && same_stamp(self.out, Stamp::at(published))
            && match (provenance.source, self.source) {
                (Some(source), Some(recorded)) => same_stamp(recorded, Stamp::at(source)),
                (Some(_), None) => false,
                (None, _) => true,
            }
    }

    /// True if the entry records a source and the file at `source` is still that version.
    pub(crate) fn source_unchanged(&self, source: &Path) -> bool {
        self.source
            .is_some_and(|recorded| same_stamp(recorded, Stamp::at(source)))
    }

    /// The entry's manifest line, without the path.
    fn render(&self) -> String {
        let digest = |d: Option<u64>| d.map_or("-".to_owned(), |d| format!("{d:016x}"));
        format!(
            "{}\t{}\t{}\t{}",
            self.kind.name(),
            digest(Some(self.out)),
            digest(self.source),
            self.key.map_or("-".to_owned(), |k| k.to_string())
        )
    }

    /// Parses a manifest line into the entry and its path.
    fn parse(line: &str) -> Option<(&str, Entry)> {
        let mut fields = line.splitn(5, '\t');
        let kind = OutputKind::from_name(fields.next()?)?;
        let digest = |field: &str| u64::from_str_radix(field, 16).ok();
        let out = digest(fields.next()?)?;
        let source = match fields.next()? {
            "-" => None,
            field => Some(digest(field)?),
        };
        let key = match fields.next()? {
            "-" => None,
            field => Some(Fingerprint::parse(field)?),
        };
        let entry = Entry {
            kind,
            out,
            source,
            key,
        };
        Some((fields.next()?, entry))
    }
}

/// Every published file's entry, by a hash of its path relative to the tree, and every file
/// polyseal wrote (the files beside them are not polyseal's: docs/CLI.md).
pub(crate) struct Manifest {
    files: HashMap<u64, Entry>,
    written: HashSet<u64>,
    /// Written by polyseal 0.1.0 (format 1), which listed only the files it could prove.
    legacy: bool,
}

impl Manifest {
    /// The manifest at `path`; empty if there is none or it cannot be used. Entries of
    /// encrypted files are dropped when the manifest was written for another `layout` than
    /// this one (those files are checked and sealed again).
    pub(crate) fn load(path: &Path, layout: &Layout) -> Manifest {
        let mut files = HashMap::new();
        let mut written = HashSet::new();
        let mut legacy = false;
        if let Ok(file) = fs::File::open(path) {
            let mut lines = std::io::BufReader::new(file).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            legacy = first == FORMAT_1;
            let (format, recorded) = match first.split_once('\t') {
                Some((format, text)) => (format, text.parse::<Layout>().ok()),
                None => (first.as_str(), Some(Layout::DEFAULT)),
            };
            let same_layout = recorded.as_ref() == Some(layout);
            if format == FORMAT || format == FORMAT_1 {
                for line in lines {
                    let Ok(line) = line else { break };
                    if let Some(relative) = line
                        .strip_prefix(WRITTEN)
                        .and_then(|rest| rest.strip_prefix("\t-\t-\t-\t"))
                    {
                        written.insert(path_hash(relative));
                        continue;
                    }
                    let Some((relative, entry)) = Entry::parse(&line) else {
                        break;
                    };
                    written.insert(path_hash(relative));
                    if same_layout || entry.kind != OutputKind::Encrypt {
                        files.insert(path_hash(relative), entry);
                    }
                }
            }
        }
        Manifest {
            files,
            written,
            legacy,
        }
    }

    /// True for a manifest of polyseal 0.1.0, which did not list every file it wrote.
    pub(crate) fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// True if polyseal wrote the file `relative` of the published tree.
    pub(crate) fn owns(&self, relative: &Path) -> bool {
        relative
            .to_str()
            .is_some_and(|r| self.written.contains(&path_hash(r)))
    }

    /// True if the manifest names no file (there is none, or it cannot be used).
    pub(crate) fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// The entry of the published file `relative`.
    pub(crate) fn get(&self, relative: &Path) -> Option<&Entry> {
        self.files.get(&path_hash(relative.to_str()?))
    }

    /// Writes a manifest of every file polyseal wrote to `path` whole (owner-only: it lists
    /// every phone's key fingerprint and the tree's layout), each with the entry that proves it
    /// unchanged, if any. Paths that are not UTF-8 or hold a line break are left out: such a
    /// file is not polyseal's on the next run, which keeps it.
    pub(crate) fn save<'a>(
        path: &Path,
        layout: &Layout,
        entries: impl Iterator<Item = (&'a Path, Option<&'a Entry>)>,
    ) -> Result<(), Error> {
        write_atomic_with(path, SECRET_MODE, |out| {
            if *layout == Layout::DEFAULT {
                writeln!(out, "{FORMAT}")?;
            } else {
                writeln!(out, "{FORMAT}\t{layout}")?;
            }
            for (relative, entry) in entries {
                let Some(relative) = relative.to_str().filter(|r| !r.contains(['\n', '\r'])) else {
                    continue;
                };
                match entry {
                    Some(entry) => writeln!(out, "{}\t{relative}", entry.render())?,
                    None => writeln!(out, "{WRITTEN}\t-\t-\t-\t{relative}")?,
                }
            }
            Ok(())
        })
    }
}

/// The table key of a relative path (in-process only, so the std hasher does).
fn path_hash(relative: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    relative.hash(&mut hasher);
    hasher.finish()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A source file just written, in a directory that lives as long as the result.
    fn source_file() -> (tempfile::TempDir, std::path::PathBuf, Stamp) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("site.cfg");
        fs::write(&path, "<x/>").expect("write");
        let stamp = Stamp::at(&path).expect("stamp");
        (dir, path, stamp)
    }

    fn provenance(source: &Path) -> Provenance<'_> {
        Provenance {
            kind: OutputKind::Copy,
            source: Some(source),
            key: None,
        }
    }

    #[test]
    fn a_source_changed_within_the_racy_window_of_now_gets_no_entry() {
        let (_dir, path, stamp) = source_file();
        let provenance = provenance(&path);
        let inside = stamp.changed + RACY_WINDOW - Duration::from_millis(1);
        assert!(Entry::new(&provenance, stamp, Some(stamp), inside).is_none());
        let outside = stamp.changed + RACY_WINDOW;
        let entry = Entry::new(&provenance, stamp, Some(stamp), outside).expect("an entry");
        assert!(
            entry.proves(&provenance, &path),
            "an untouched file is proved"
        );
    }

    #[test]
    fn an_entry_does_not_prove_a_file_changed_after_it() {
        let (_dir, path, stamp) = source_file();
        let provenance = provenance(&path);
        let later = stamp.changed + Duration::from_secs(60);
        let entry = Entry::new(&provenance, stamp, Some(stamp), later).expect("an entry");
        fs::write(&path, "<y/>").expect("rewrite");
        assert!(!entry.proves(&provenance, &path));
    }

    #[test]
    fn a_saved_manifest_loads_with_the_same_entries() {
        let (dir, path, stamp) = source_file();
        let provenance = provenance(&path);
        let later = stamp.changed + Duration::from_secs(60);
        let entry = Entry::new(&provenance, stamp, Some(stamp), later).expect("an entry");
        let manifest_path = dir.path().join("manifest");
        Manifest::save(
            &manifest_path,
            &Layout::DEFAULT,
            [(Path::new("site.cfg"), Some(&entry))].into_iter(),
        )
        .expect("save");
        let loaded = Manifest::load(&manifest_path, &Layout::DEFAULT);
        let got = loaded.get(Path::new("site.cfg")).expect("entry loaded");
        assert!(got.proves(&provenance, &path));
        assert!(loaded.get(Path::new("other.cfg")).is_none());
    }

    #[test]
    fn a_file_written_without_a_proof_is_still_owned() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("manifest");
        Manifest::save(
            &path,
            &Layout::DEFAULT,
            [(Path::new("racy.cfg"), None)].into_iter(),
        )
        .expect("save");
        let loaded = Manifest::load(&path, &Layout::DEFAULT);
        assert!(loaded.owns(Path::new("racy.cfg")));
        assert!(
            loaded.get(Path::new("racy.cfg")).is_none(),
            "nothing proves it unchanged"
        );
        assert!(!loaded.owns(Path::new("other.cfg")));
        assert!(!loaded.is_empty());
    }

    #[test]
    fn a_format_1_manifest_owns_the_files_its_entries_name() {
        let (dir, path, stamp) = source_file();
        let provenance = provenance(&path);
        let entry = Entry::new(&provenance, stamp, Some(stamp), stamp.changed + RACY_WINDOW)
            .expect("an entry");
        let manifest = dir.path().join("manifest");
        fs::write(
            &manifest,
            format!("{FORMAT_1}\n{}\tsite.cfg\n", entry.render()),
        )
        .expect("write");
        assert!(Manifest::load(&manifest, &Layout::DEFAULT).owns(Path::new("site.cfg")));
        fs::write(&manifest, "polyseal-manifest/0\n").expect("write");
        assert!(
            Manifest::load(&manifest, &Layout::DEFAULT).is_empty(),
            "an unknown format owns nothing"
        );
    }
}
