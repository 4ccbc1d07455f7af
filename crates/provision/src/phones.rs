//! The phone list: which phones polyseal provisions, and where each one was learnt from.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;

use crate::position::utf8_text;
use crate::{Error, PhoneFiles, SourceTree};

/// Where polyseal learnt of a phone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PhoneSource {
    /// A line of a phones file.
    PhonesFile {
        /// The phones file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
    },
    /// A file of the source tree named after the phone.
    TreeFile {
        /// The file, relative to the tree root.
        path: PathBuf,
    },
    /// The vault's inventory of phones with keys.
    Inventory,
}

impl fmt::Display for PhoneSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PhoneSource::PhonesFile { path, line } => write!(f, "{}:{line}", path.display()),
            PhoneSource::TreeFile { path } => write!(f, "tree file {}", path.display()),
            PhoneSource::Inventory => f.write_str("vault inventory"),
        }
    }
}

/// One phone of the list.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Phone {
    /// Its MAC.
    pub mac: Mac,
    /// The label a phones file gave it (the first one, if several did).
    pub label: Option<String>,
    /// Every place it was learnt from, in the order they were added.
    pub sources: Vec<PhoneSource>,
}

/// The phones polyseal provisions, merged from phones files, the source tree and the vault
/// inventory, in MAC order.
///
/// ```
/// use polyseal_provision::{PhoneList, PhoneSource};
/// let mut phones = PhoneList::new();
/// phones.add_phones_text(
///     "phones.csv".as_ref(),
///     "# mac,label\n00:04:F2:AB:CD:EF, Reception\n\n64167f000001\n",
/// )?;
/// phones.add_inventory(["0004f2abcdef".parse()?]);
/// let reception = phones.get(&"0004f2abcdef".parse()?).expect("listed");
/// assert_eq!(reception.label.as_deref(), Some("Reception"));
/// assert_eq!(reception.sources.len(), 2);
/// assert!(phones.add_phones_text("bad.csv".as_ref(), "0004f2abcdeg\n").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PhoneList {
    phones: BTreeMap<Mac, Phone>,
}

impl PhoneList {
    /// An empty list.
    pub fn new() -> PhoneList {
        PhoneList::default()
    }

    /// Reads a phones file from disk; see [`PhoneList::add_phones_text`].
    pub fn read_phones_file(&mut self, path: &Path) -> Result<(), Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = utf8_text(path, &bytes)?;
        self.add_phones_text(path, text)
    }

    /// Adds the phones of a phones file's text; `path` names it in sources and errors.
    ///
    /// One phone a line: a MAC in any spelling polyseal-crypto accepts, optionally followed
    /// by a comma and a label (CSV `mac,label`; a label in double quotes may hold commas, `""`
    /// is a quote). Blank lines and lines starting with `#` are ignored, and so is a first line
    /// whose first field is `mac` (a CSV header). A bad MAC, or a MAC listed twice, is an error
    /// naming the line; on error nothing is added.
    pub fn add_phones_text(&mut self, path: &Path, text: &str) -> Result<(), Error> {
        let mut seen: BTreeMap<Mac, usize> = BTreeMap::new();
        let mut parsed = Vec::new();
        let mut header_allowed = true;
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line = line.trim_start_matches('\u{feff}').trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (mac_field, label) = match line.split_once(',') {
                Some((mac, label)) => (mac.trim(), unquote(label.trim())),
                None => (line, None),
            };
            if std::mem::take(&mut header_allowed) && mac_field.eq_ignore_ascii_case("mac") {
                continue;
            }
            let mac = Mac::parse(mac_field).map_err(|source| Error::PhonesFileMac {
                path: path.to_owned(),
                line: line_number,
                source,
            })?;
            if let Some(&first_line) = seen.get(&mac) {
                return Err(Error::DuplicatePhone {
                    path: path.to_owned(),
                    line: line_number,
                    first_line,
                    mac,
                });
            }
            seen.insert(mac, line_number);
            parsed.push((mac, label, line_number));
        }
        for (mac, label, line) in parsed {
            let source = PhoneSource::PhonesFile {
                path: path.to_owned(),
                line,
            };
            self.add(mac, label, source);
        }
        Ok(())
    }

    /// Adds every phone the tree provisions with files of its own ([`SourceTree::phones`]:
    /// the files its master lists for it), one source per file.
    pub fn add_tree(&mut self, tree: &SourceTree) {
        self.add_phone_files(&tree.phone_files());
    }

    /// Adds every phone of `files` (a tree's [`SourceTree::phone_files`], made once by a
    /// caller that needs them for more), one source per file.
    pub fn add_phone_files(&mut self, files: &PhoneFiles<'_>) {
        for (mac, files) in &files.by_phone {
            for file in files {
                let source = PhoneSource::TreeFile {
                    path: file.to_path_buf(),
                };
                self.add(*mac, None, source);
            }
        }
    }

    /// Adds the phones of the vault inventory.
    pub fn add_inventory(&mut self, macs: impl IntoIterator<Item = Mac>) {
        for mac in macs {
            self.add(mac, None, PhoneSource::Inventory);
        }
    }

    fn add(&mut self, mac: Mac, label: Option<String>, source: PhoneSource) {
        match self.phones.entry(mac) {
            Entry::Vacant(entry) => {
                entry.insert(Phone {
                    mac,
                    label,
                    sources: vec![source],
                });
            }
            Entry::Occupied(mut entry) => {
                let phone = entry.get_mut();
                phone.label = phone.label.take().or(label);
                phone.sources.push(source);
            }
        }
    }

    /// The phone with `mac`, if listed.
    pub fn get(&self, mac: &Mac) -> Option<&Phone> {
        self.phones.get(mac)
    }

    /// Every phone, in MAC order.
    pub fn iter(&self) -> impl Iterator<Item = &Phone> {
        self.phones.values()
    }

    /// How many phones.
    pub fn len(&self) -> usize {
        self.phones.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.phones.is_empty()
    }
}

/// A CSV field's text: `"a ""b"", c"` → `a "b", c`; an empty field is no label.
fn unquote(field: &str) -> Option<String> {
    let text = match field
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_owned(),
    };
    (!text.is_empty()).then_some(text)
}
