//! A source provisioning tree: the directory an admin writes, in plaintext, that polyseal reads
//! the way phones will.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use polyseal_crypto::{KeyDesc, Mac};
use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::file_kind::encrypted_header;
use crate::mac_names::{macs_in_name, phone_of_file_name};
use crate::{
    Error, Exposure, FileKind, FileScan, Finding, KeyFilePattern, MasterConfig, Placeholder,
    classify, scan_file,
};

/// The master file every phone falls back to when the server has no `<mac>.cfg`.
pub const DEFAULT_MASTER: &str = "000000000000.cfg";

/// An encrypted file's header line ends within this many bytes (polyseal-crypto's limit), so
/// this much of a file tells whether it is encrypted and under which KeyDesc.
const HEADER_WINDOW: u64 = 1024;

/// A master file found in the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Master {
    /// A readable master file (boxed: it is much larger than the other variant).
    Plain(Box<MasterConfig>),
    /// An encrypted master file. Phones cannot read it: they show an error and reboot, again
    /// and again, until it is replaced by a plaintext one.
    Encrypted {
        /// The file (tree root joined with its name).
        path: PathBuf,
        /// The KeyDesc in its header, if it names one.
        key_desc: Option<KeyDesc>,
    },
}

impl Master {
    /// The file (tree root joined with its name).
    pub fn path(&self) -> &Path {
        match self {
            Master::Plain(master) => &master.path,
            Master::Encrypted { path, .. } => path,
        }
    }
}

/// What is in the tree at a path, as far as the first bytes tell.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileState {
    /// No such file in the tree.
    Missing,
    /// Not on this server (a URL) or outside the tree: polyseal cannot look.
    NotInTree,
    /// A plaintext file.
    Plaintext,
    /// An encrypted file.
    Encrypted {
        /// The KeyDesc in its header, if it names one.
        key_desc: Option<KeyDesc>,
    },
    /// A file that starts like an encrypted file but whose header polyseal-crypto refuses
    /// (unsupported `Crypt` or digest, malformed field).
    BadHeader(polyseal_crypto::Error),
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileState::Missing => f.write_str("missing"),
            FileState::NotInTree => f.write_str("not in the tree"),
            FileState::Plaintext => f.write_str("plaintext"),
            FileState::Encrypted {
                key_desc: Some(desc),
            } => write!(f, "encrypted ({desc})"),
            FileState::Encrypted { key_desc: None } => f.write_str("encrypted (no KeyDesc)"),
            FileState::BadHeader(error) => write!(f, "unreadable encrypted header: {error}"),
        }
    }
}

/// The result of scanning every configuration file of a tree.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TreeScan {
    /// Every finding, file by file in path order.
    pub findings: Vec<Finding>,
    /// Every value holding an unrendered template placeholder, file by file in path order.
    pub placeholders: Vec<Placeholder>,
    /// Encrypted files, which cannot be scanned without their key.
    pub encrypted: Vec<PathBuf>,
    /// Files that could not be read or are not well-formed XML; the scan went on without them.
    pub errors: Vec<Error>,
}

/// A source provisioning tree, read like a phone reads it.
///
/// ```
/// use polyseal_crypto::Mac;
/// use polyseal_provision::{Role, SourceTree};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(
///     dir.path().join("000000000000.cfg"),
///     r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-key.cfg, [PHONE_MAC_ADDRESS]-sip.cfg, site.cfg"/>"#,
/// )?;
/// std::fs::write(dir.path().join("site.cfg"), "<polycomConfig/>")?;
/// let tree = SourceTree::open(dir.path())?;
/// let mac: Mac = "0004f2abcdef".parse()?;
/// let plan = tree.fetch_plan(&mac, None)?;
/// let roles: Vec<Role> = plan.files.iter().map(|f| f.role).collect();
/// assert_eq!(
///     roles,
///     [Role::Master, Role::KeyFile, Role::PerPhoneConfig, Role::SharedConfig, Role::Contacts, Role::Override]
/// );
/// assert!(plan.issues.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct SourceTree {
    root: PathBuf,
    files: BTreeSet<PathBuf>,
    default_master: Option<Master>,
    phone_masters: BTreeMap<Mac, Master>,
    phone_files_not_masters: BTreeSet<Mac>,
    key_file: KeyFilePattern,
    /// States of files that name no phone (masters, shared files): every phone's fetch plan
    /// asks for them, so a fleet of 100,000 would otherwise read each one 100,000 times.
    shared_states: Arc<Mutex<HashMap<PathBuf, FileState>>>,
    /// Symbolic links to files of the tree, each with the file it leads to (both relative).
    links: BTreeMap<PathBuf, PathBuf>,
}

impl SourceTree {
    /// Lists the tree under `root` (every file, in every directory but hidden ones such as
    /// `.git`) and reads its master files: `000000000000.cfg` and every `<mac>.cfg` at the root
    /// whose root element is `<APPLICATION>` (or that is encrypted: phones request it as their
    /// master all the same). The key file pattern is the default until
    /// [`SourceTree::with_key_file_pattern`] sets another.
    ///
    /// Errors: a file or directory that cannot be read; a master file that is not UTF-8, not
    /// well-formed XML, or (for `000000000000.cfg`) not rooted in `<APPLICATION>`.
    pub fn open(root: impl Into<PathBuf>) -> Result<SourceTree, Error> {
        let root = root.into();
        let mut listed = Vec::new();
        let resolved_root = match fs::canonicalize(&root) {
            Ok(resolved) if resolved.is_dir() => resolved,
            Ok(_) => return Err(Error::MissingTree { path: root }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingTree { path: root });
            }
            Err(e) => return Err(Error::io(&root, e)),
        };
        let mut links = BTreeMap::new();
        list_files(
            &root,
            &resolved_root,
            Path::new(""),
            &mut listed,
            &mut links,
        )?;
        // Sorted first with a cheap comparison, so building the set compares each path once
        // with its neighbour instead of ~17 times, component by component.
        listed.sort_unstable_by(|a, b| path_order(a, b));
        let mut tree = SourceTree {
            root,
            files: listed.into_iter().collect(),
            default_master: None,
            phone_masters: BTreeMap::new(),
            phone_files_not_masters: BTreeSet::new(),
            key_file: KeyFilePattern::default(),
            shared_states: Arc::default(),
            links,
        };
        if tree.contains(Path::new(DEFAULT_MASTER)) {
            let path = tree.path_of(Path::new(DEFAULT_MASTER));
            let bytes = read(&path)?;
            tree.default_master = Some(match classify(&path, &bytes)? {
                FileKind::Encrypted { key_desc } => Master::Encrypted { path, key_desc },
                _ => Master::Plain(Box::new(MasterConfig::parse(&path, &bytes)?)),
            });
        }
        let phone_file_macs: Vec<Mac> = tree
            .files
            .iter()
            .filter_map(|file| file.to_str())
            .filter_map(|name| phone_of_file_name(name).filter(|mac| name == format!("{mac}.cfg")))
            .collect();
        for mac in phone_file_macs {
            let path = tree.path_of(Path::new(&format!("{mac}.cfg")));
            let bytes = read(&path)?;
            match classify(&path, &bytes)? {
                FileKind::Encrypted { key_desc } => {
                    tree.phone_masters
                        .insert(mac, Master::Encrypted { path, key_desc });
                }
                FileKind::Master => {
                    let master = MasterConfig::parse(&path, &bytes)?;
                    tree.phone_masters
                        .insert(mac, Master::Plain(Box::new(master)));
                }
                FileKind::Config { .. } | FileKind::ContactDirectory => {
                    tree.phone_files_not_masters.insert(mac);
                }
            }
        }
        Ok(tree)
    }

    /// Uses `pattern` to name phones' key files instead of the default
    /// `[PHONE_MAC_ADDRESS]-key.cfg`.
    pub fn with_key_file_pattern(mut self, pattern: KeyFilePattern) -> SourceTree {
        self.key_file = pattern;
        self
    }

    /// The key file name pattern in use.
    pub fn key_file_pattern(&self) -> &KeyFilePattern {
        &self.key_file
    }

    /// The tree's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every file in the tree, as paths relative to the root, in order.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(PathBuf::as_path)
    }

    /// True if the tree holds a file at `relative` (a path relative to the root).
    pub fn contains(&self, relative: &Path) -> bool {
        self.files.contains(relative)
    }

    /// The root joined with `relative`, for opening the file and for messages.
    pub fn path_of(&self, relative: &Path) -> PathBuf {
        self.root.join(relative)
    }

    /// The symbolic links of the tree that lead to a file of it, each with that file (both
    /// relative to the root), in path order.
    pub fn links(&self) -> impl Iterator<Item = (&Path, &Path)> {
        self.links
            .iter()
            .map(|(link, target)| (link.as_path(), target.as_path()))
    }

    /// `000000000000.cfg`, if the tree has it.
    pub fn default_master(&self) -> Option<&Master> {
        self.default_master.as_ref()
    }

    /// The phones with a master file of their own (`<mac>.cfg`), and those files.
    pub fn phone_masters(&self) -> impl Iterator<Item = (&Mac, &Master)> {
        self.phone_masters.iter()
    }

    /// `mac`'s own master file, `<mac>.cfg`, if the tree has one.
    pub fn phone_master(&self, mac: &Mac) -> Option<&Master> {
        self.phone_masters.get(mac)
    }

    /// The master file `mac` boots from: its own `<mac>.cfg` master if the tree has one,
    /// `000000000000.cfg` otherwise.
    pub fn master_for(&self, mac: &Mac) -> Option<&Master> {
        self.phone_masters.get(mac).or(self.default_master.as_ref())
    }

    /// True if the tree has a `<mac>.cfg` that is a configuration file, not a master. Phones
    /// request `<mac>.cfg` first, as their master file.
    pub fn has_phone_file_not_master(&self, mac: &Mac) -> bool {
        self.phone_files_not_masters.contains(mac)
    }

    /// The phones the tree provisions by their own files, each with those files: a phone's
    /// `<mac>.cfg` master and every file a master lists for it ([`SourceTree::phone_files`]).
    pub fn phones(&self) -> BTreeMap<Mac, Vec<&Path>> {
        self.phone_files().by_phone
    }

    /// Whether the file at `relative` exists, and if so whether it is plaintext or encrypted
    /// (and under which KeyDesc). Reads at most the first kilobyte.
    pub fn file_state(&self, relative: &Path) -> Result<FileState, Error> {
        if !self.contains(relative) {
            return Ok(FileState::Missing);
        }
        let shared = relative
            .to_str()
            .is_some_and(|name| macs_in_name(name).next().is_none());
        if !shared {
            return self.read_file_state(relative);
        }
        // A poisoned lock only means another thread panicked mid-insert: the map is still valid.
        let cached = self.shared_states.lock().map(|m| m.get(relative).cloned());
        if let Ok(Some(state)) = cached {
            return Ok(state);
        }
        let state = self.read_file_state(relative)?;
        if let Ok(mut map) = self.shared_states.lock() {
            map.insert(relative.to_owned(), state.clone());
        }
        Ok(state)
    }

    /// Reads the first kilobyte of the file at `relative` and tells its state.
    fn read_file_state(&self, relative: &Path) -> Result<FileState, Error> {
        let path = self.path_of(relative);
        let mut head = Vec::new();
        fs::File::open(&path)
            .and_then(|file| file.take(HEADER_WINDOW).read_to_end(&mut head))
            .map_err(|e| Error::io(&path, e))?;
        Ok(match encrypted_header(&head) {
            None => FileState::Plaintext,
            Some(Ok(header)) => FileState::Encrypted {
                key_desc: header.key_desc().cloned(),
            },
            Some(Err(error)) => FileState::BadHeader(error),
        })
    }

    /// Who can read the file at `relative` once served: a master file, one phone's key file, a
    /// per-phone file (its path holds a phone's MAC), or a shared file (everything else).
    /// `per_phone_encrypted` says whether per-phone files will be served encrypted.
    pub fn exposure(&self, relative: &Path, per_phone_encrypted: bool) -> Exposure {
        let is_phone_master = || {
            let name = relative.to_str()?;
            // `<12 hex digits>.cfg`: checked first, as most files are not masters.
            if name.len() != 16 || !name.ends_with(".cfg") {
                return None;
            }
            let mac = phone_of_file_name(name)?;
            (name == format!("{mac}.cfg")).then(|| self.phone_masters.contains_key(&mac))
        };
        let is_master = relative == Path::new(DEFAULT_MASTER) || is_phone_master().unwrap_or(false);
        let phone = relative.to_str().and_then(|name| macs_in_name(name).next());
        match phone {
            _ if is_master => Exposure::Master,
            Some(mac) if self.key_file.is_key_file_of(&mac, relative) => Exposure::KeyFile,
            Some(_) if per_phone_encrypted => Exposure::PerPhoneEncrypted,
            Some(_) => Exposure::PerPhonePlaintext,
            None => Exposure::Shared,
        }
    }

    /// Scans every `.cfg` and `.xml` file of the tree for secrets, each with its
    /// [`SourceTree::exposure`]. Encrypted files are listed, not scanned; files that cannot
    /// be read are listed with their error, and the scan goes on.
    pub fn scan(&self, per_phone_encrypted: bool) -> TreeScan {
        self.scan_where(per_phone_encrypted, |_| true)
    }

    /// Like [`SourceTree::scan`], but only the files whose exposure `wanted` accepts; e.g.
    /// `publish` checks masters and shared files before it writes anything, and per-phone files
    /// as it encrypts them. Files are read and scanned in parallel; results are in path order.
    pub fn scan_where(
        &self,
        per_phone_encrypted: bool,
        wanted: impl Fn(Exposure) -> bool + Sync,
    ) -> TreeScan {
        let config_like = |file: &&PathBuf| {
            file.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("cfg") || e.eq_ignore_ascii_case("xml"))
        };
        let candidates: Vec<(&PathBuf, Exposure)> = self
            .files
            .iter()
            .filter(config_like)
            .map(|relative| (relative, self.exposure(relative, per_phone_encrypted)))
            .filter(|(_, exposure)| wanted(*exposure))
            .collect();
        let outcomes: Vec<Result<FileScan, Error>> = candidates
            .par_iter()
            .map(|(relative, exposure)| {
                let path = self.path_of(relative);
                read(&path).and_then(|bytes| scan_file(&path, &bytes, *exposure))
            })
            .collect();
        let mut result = TreeScan::default();
        for outcome in outcomes {
            match outcome {
                Ok(scanned) => {
                    result.findings.extend(scanned.findings);
                    result.placeholders.extend(scanned.placeholders);
                }
                Err(Error::Encrypted { path, .. }) => result.encrypted.push(path),
                Err(error) => result.errors.push(error),
            }
        }
        result
    }
}

/// Reads a whole file into a buffer that is zeroized on drop (configuration files carry
/// passwords).
fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| Error::io(path, e))
}

/// Adds every file under `root/relative` to `files`, as paths relative to `root` (which
/// resolves to `resolved_root`). Hidden entries (`.git`, editor swap files) are not served
/// content and are skipped. A symbolic link that resolves outside the tree is refused: its
/// target would be published (a `logo.bmp` linked to `../identity.txt` would serve the
/// identity). Inside the tree, links to files count and links to directories are followed,
/// but for one to a directory above it (a cycle); a link to nothing is skipped, as it serves
/// nothing.
fn list_files(
    root: &Path,
    resolved_root: &Path,
    relative: &Path,
    files: &mut Vec<PathBuf>,
    links: &mut BTreeMap<PathBuf, PathBuf>,
) -> Result<(), Error> {
    // Joining an empty path would add a trailing `/` to messages about the root.
    let dir = if relative.as_os_str().is_empty() {
        root.to_owned()
    } else {
        root.join(relative)
    };
    let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let child = relative.join(&name);
        let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if file_type.is_dir() {
            list_files(root, resolved_root, &child, files, links)?;
        } else if file_type.is_file() {
            files.push(child);
        } else if file_type.is_symlink() {
            let Ok(target) = fs::canonicalize(entry.path()) else {
                continue;
            };
            // A hidden file is no served content, whether it lies outside the tree or in a
            // hidden directory of it (`logo.bmp -> .private/identity.txt`).
            let hidden = target.strip_prefix(resolved_root).map_or(true, |inside| {
                inside
                    .components()
                    .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
            });
            if hidden {
                return Err(Error::SymlinkOutsideTree {
                    link: entry.path(),
                    target,
                });
            }
            if target.is_file() {
                if let Ok(inside) = target.strip_prefix(resolved_root) {
                    links.insert(child.clone(), inside.to_owned());
                }
                files.push(child);
            } else if target.is_dir() {
                // Followed, as its files are served through it; a link to the directory it is
                // in, or to one above, would list the tree without end: not followed.
                let here = fs::canonicalize(&dir).map_err(|e| Error::io(&dir, e))?;
                if !here.starts_with(&target) {
                    list_files(root, resolved_root, &child, files, links)?;
                }
            }
        }
    }
    Ok(())
}

/// The order of [`Path`]'s `Ord` (component by component) for the paths [`list_files`] makes
/// (relative, no `.` or empty components), computed on bytes: a separator sorts before any
/// other byte, as the end of a component sorts before a longer component.
fn path_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    fn key(path: &Path) -> impl Iterator<Item = u8> + '_ {
        path.as_os_str().as_encoded_bytes().iter().map(|&byte| {
            if std::path::is_separator(byte.into()) {
                0
            } else {
                byte
            }
        })
    }
    key(a).cmp(key(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_order_is_the_order_of_paths() {
        let paths = [
            "a",
            "a.b",
            "a-b",
            "a/b",
            "a/b/c",
            "a/b.c",
            "ab",
            "ab/c",
            "b",
            "0004f2000001-sip.cfg",
            "0004f2000001.cfg",
            "contacts/0004f2000001-directory.xml",
            "contacts.xml",
            "z/a",
        ];
        for a in paths {
            for b in paths {
                let (a, b) = (Path::new(a), Path::new(b));
                assert_eq!(path_order(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }
}
