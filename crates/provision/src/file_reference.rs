//! The entries of master-file lists (`CONFIG_FILES="a.cfg, b.cfg"`) and directories, as the
//! phone resolves them: a path on the provisioning server, or a URL of another server.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::url::redact_url_passwords;

/// One file a master file points the phone to, after `[PHONE_MAC_ADDRESS]` expansion.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileReference {
    /// A path on the provisioning server, relative to the tree root: `site.cfg`,
    /// `./configs/site.cfg` and `/configs/site.cfg` all name `configs/site.cfg`.
    InTree(PathBuf),
    /// An absolute URL (`https://…`, `ftp://…`): another server, which polyseal can neither
    /// see nor encrypt. Kept with any password replaced by `<redacted>`.
    Url(String),
    /// A relative path that climbs out of the tree with `..`. Kept as written.
    OutsideTree(String),
}

impl FileReference {
    /// Resolves one list entry. Surrounding whitespace is ignored.
    ///
    /// ```
    /// use polyseal_provision::FileReference;
    /// use std::path::PathBuf;
    /// assert_eq!(FileReference::parse(" ./configs/site.cfg"), FileReference::InTree(PathBuf::from("configs/site.cfg")));
    /// assert_eq!(
    ///     FileReference::parse("ftp://polycom:secret@10.0.0.1/a.cfg"),
    ///     FileReference::Url("ftp://polycom:<redacted>@10.0.0.1/a.cfg".into())
    /// );
    /// ```
    pub fn parse(entry: &str) -> FileReference {
        let entry = entry.trim();
        if is_url(entry) {
            return FileReference::Url(redact_url_passwords(entry));
        }
        let mut path = PathBuf::new();
        for component in entry.split('/') {
            match component {
                "" | "." => {}
                ".." if !path.pop() => return FileReference::OutsideTree(entry.to_owned()),
                ".." => {}
                name => path.push(name),
            }
        }
        FileReference::InTree(path)
    }

    /// Resolves `file_name` inside a master-file directory value such as
    /// `CONTACTS_DIRECTORY="./contacts"`; an empty directory is the tree root.
    pub fn in_directory(directory: &str, file_name: &str) -> FileReference {
        let directory = directory.trim().trim_end_matches('/');
        if directory.is_empty() {
            FileReference::parse(file_name)
        } else {
            FileReference::parse(&format!("{directory}/{file_name}"))
        }
    }

    /// The path relative to the tree root, for a file on the provisioning server.
    pub fn tree_path(&self) -> Option<&Path> {
        match self {
            FileReference::InTree(path) => Some(path),
            FileReference::Url(_) | FileReference::OutsideTree(_) => None,
        }
    }
}

impl fmt::Display for FileReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileReference::InTree(path) => write!(f, "{}", path.display()),
            FileReference::Url(url) => f.write_str(url),
            FileReference::OutsideTree(entry) => f.write_str(entry),
        }
    }
}

/// The entries of a comma-separated master-file list, in order: whitespace around entries is
/// ignored and empty entries (`a.cfg,,b.cfg`, a trailing comma) are skipped.
///
/// ```
/// let entries: Vec<&str> = polyseal_provision::split_file_list(" a.cfg,b.cfg , ,c.cfg,").collect();
/// assert_eq!(entries, ["a.cfg", "b.cfg", "c.cfg"]);
/// ```
pub fn split_file_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

/// `scheme://…` with a scheme as RFC 3986 spells it.
fn is_url(entry: &str) -> bool {
    entry.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_resolved_inside_the_tree() {
        let in_tree = |p: &str| FileReference::InTree(PathBuf::from(p));
        let cases = [
            ("site.cfg", in_tree("site.cfg")),
            ("./site.cfg", in_tree("site.cfg")),
            ("/site.cfg", in_tree("site.cfg")),
            ("configs//./site.cfg", in_tree("configs/site.cfg")),
            ("configs/../site.cfg", in_tree("site.cfg")),
            (
                "../site.cfg",
                FileReference::OutsideTree("../site.cfg".into()),
            ),
            (
                "a/../../site.cfg",
                FileReference::OutsideTree("a/../../site.cfg".into()),
            ),
            (
                "HTTPS://h/x.cfg",
                FileReference::Url("HTTPS://h/x.cfg".into()),
            ),
            ("c:/x://y", in_tree("c:/x:/y")),
        ];
        for (entry, expected) in cases {
            assert_eq!(FileReference::parse(entry), expected, "{entry}");
        }
    }

    #[test]
    fn directories_join_their_file() {
        let in_tree = |p: &str| FileReference::InTree(PathBuf::from(p));
        assert_eq!(FileReference::in_directory("", "a.xml"), in_tree("a.xml"));
        assert_eq!(
            FileReference::in_directory("./contacts/", "a.xml"),
            in_tree("contacts/a.xml")
        );
        assert_eq!(
            FileReference::in_directory("https://u:p@h/dir", "a.xml"),
            FileReference::Url("https://u:<redacted>@h/dir/a.xml".into())
        );
    }
}
