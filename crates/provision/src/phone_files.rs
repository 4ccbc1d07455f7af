//! Which phone each per-phone file of a tree belongs to, read from the masters' lists.
//!
//! A phone requests the files its master lists, with `[PHONE_MAC_ADDRESS]` replaced by its MAC
//! in lower case, wherever the variable stands (`sip-[PHONE_MAC_ADDRESS].cfg`,
//! `phones/[PHONE_MAC_ADDRESS]/reg.cfg`). So the masters, not the file names, say whose a file
//! is: a file named with a MAC that no master lists for that phone is one no phone ever
//! requests, and publishing it would only serve a phone's settings in plaintext to whoever asks
//! (docs/PROVISIONING.md, "Whose file is it").

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use polyseal_crypto::Mac;

use crate::mac_names::{PHONE_MAC_ADDRESS, macs_in_name, names_phone};
use crate::{FileReference, Master, MasterAttribute, MasterConfig, SourceTree, split_file_list};

/// The per-phone files of a tree, as the masters' lists assign them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhoneFiles<'t> {
    /// Every phone some master provisions with a file of the tree, with those files (its own
    /// `<mac>.cfg` master among them), in MAC order.
    pub by_phone: BTreeMap<Mac, Vec<&'t Path>>,
    /// Files whose path holds a phone's MAC but that no master lists for that phone, in tree
    /// order: no phone requests them.
    pub unlisted: Vec<UnlistedFile<'t>>,
    /// Files that the lists give to more than one phone, with those phones: no one key can
    /// serve them all.
    pub contested: Vec<(&'t Path, Vec<Mac>)>,
}

/// A file named with a phone's MAC that no master lists for that phone.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnlistedFile<'t> {
    /// The file, relative to the tree root.
    pub path: &'t Path,
    /// The phone its path names (the first, if several).
    pub mac: Mac,
    /// The path phones do request, when this one differs from it only in the case of the MAC
    /// (`0004F2A10001-sip.cfg` where phones request `0004f2a10001-sip.cfg`).
    pub requested: Option<PathBuf>,
}

/// A list entry of a master with `[PHONE_MAC_ADDRESS]` in it, resolved in the tree and split
/// at the variable: `phones/[PHONE_MAC_ADDRESS]/reg.cfg` is `["phones/", "/reg.cfg"]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Template(Vec<String>);

impl Template {
    /// The template of a list entry, or `None` if it has no variable or is not in the tree.
    fn of(reference: &FileReference) -> Option<Template> {
        let text = reference.tree_path()?.to_str()?;
        text.contains(PHONE_MAC_ADDRESS)
            .then(|| Template(text.split(PHONE_MAC_ADDRESS).map(str::to_owned).collect()))
    }

    /// The phone that requests `name` by this template: the same MAC, in lower case as phones
    /// write it, at every place of the variable.
    fn phone_of(&self, name: &str) -> Option<Mac> {
        let (first, rest) = self.0.split_first()?;
        let mut remaining = name.strip_prefix(first.as_str())?;
        let mut mac: Option<&str> = None;
        for part in rest {
            let (hex, after) = remaining.split_at_checked(12)?;
            let lower_hex = hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !lower_hex || mac.is_some_and(|seen| seen != hex) {
                return None;
            }
            mac = Some(hex);
            remaining = after.strip_prefix(part.as_str())?;
        }
        if !remaining.is_empty() {
            return None;
        }
        Mac::parse(mac?).ok()
    }
}

/// The list entries of `master` that name a phone's own files, for every model: the
/// `CONFIG_FILES` entries, the contact directory and the override file.
fn listed_entries(master: &MasterConfig) -> Vec<FileReference> {
    let models = std::iter::once(None).chain(master.models.iter().map(|m| Some(m.model.as_str())));
    let mut entries = Vec::new();
    for model in models {
        let config_files = master.setting(MasterAttribute::ConfigFiles, model);
        entries.extend(
            split_file_list(config_files.map_or("", |s| s.value.as_str()))
                .map(FileReference::parse),
        );
        for (directory, file_name) in [
            (MasterAttribute::ContactsDirectory, "-directory.xml"),
            (MasterAttribute::OverridesDirectory, "-phone.cfg"),
        ] {
            let value = master
                .setting(directory, model)
                .map_or("", |s| s.value.as_str());
            entries.push(FileReference::in_directory(
                value,
                &format!("{PHONE_MAC_ADDRESS}{file_name}"),
            ));
        }
    }
    entries
}

impl SourceTree {
    /// Which phone each file named with a MAC belongs to, by the masters' lists: a phone's own
    /// `<mac>.cfg` master, every file its master lists with `[PHONE_MAC_ADDRESS]` (in any
    /// position or directory) or with its MAC written out (in either case), its contact
    /// directory and its override file. Files named with a MAC that no master lists for that
    /// phone are [`PhoneFiles::unlisted`].
    pub fn phone_files(&self) -> PhoneFiles<'_> {
        // Entries written out in full: files the lists name as they are, for every phone.
        let mut shared: HashSet<String> = HashSet::new();
        // One that names a phone's MAC is not shared: the plan checks refuse it, for its phone.
        let mut literal = |entry: &FileReference| {
            if let Some(path) = entry.tree_path().and_then(Path::to_str) {
                if !path.contains(PHONE_MAC_ADDRESS)
                    && !macs_in_name(path).any(|mac| self.is_phone_mac(&mac))
                {
                    shared.insert(path.to_owned());
                }
            }
        };
        let mut templates: Vec<Template> = match self.default_master() {
            Some(Master::Plain(master)) => {
                let entries = listed_entries(master);
                entries.iter().for_each(&mut literal);
                entries.iter().filter_map(Template::of).collect()
            }
            _ => Vec::new(),
        };
        templates.sort();
        templates.dedup();
        // A phone with a master of its own reads that master's list only, expanded with its MAC.
        // Keyed by the path's text: hashing a `Path` goes component by component.
        let mut exact: HashMap<String, Mac> = HashMap::new();
        for (mac, master) in self.phone_masters() {
            exact.insert(format!("{mac}.cfg"), *mac);
            let Master::Plain(master) = master else {
                continue;
            };
            for entry in listed_entries(master) {
                let expanded = match Template::of(&entry) {
                    Some(template) => template.0.join(&mac.to_string()),
                    None => match entry.tree_path().and_then(Path::to_str) {
                        Some(path) if names_phone(path, mac) => path.to_owned(),
                        _ => {
                            literal(&entry);
                            continue;
                        }
                    },
                };
                exact.insert(expanded, *mac);
            }
        }
        // Every phone that requests `name`: one, as a rule; two when the lists are contrived
        // enough (`0004f2[PHONE_MAC_ADDRESS].cfg` and `[PHONE_MAC_ADDRESS]a10001.cfg`).
        let owners = |name: &str| -> Vec<Mac> {
            let mut macs: Vec<Mac> = exact.get(name).copied().into_iter().collect();
            macs.extend(
                templates
                    .iter()
                    .filter_map(|template| template.phone_of(name))
                    .filter(|mac| self.phone_master(mac).is_none()),
            );
            macs.sort_unstable();
            macs.dedup();
            macs
        };
        let owner = |name: &str| owners(name).first().copied();
        let mut files = PhoneFiles::default();
        for path in self.files() {
            let Some(name) = path.to_str() else {
                continue;
            };
            // The lists first: `abc[PHONE_MAC_ADDRESS].cfg` names a phone in a run of 15 hex
            // digits, which no reading of the name alone would take for a MAC.
            match owners(name).as_slice() {
                [] => {}
                [mac] => {
                    files.by_phone.entry(*mac).or_default().push(path);
                    continue;
                }
                several => {
                    files.contested.push((path, several.to_vec()));
                    continue;
                }
            }
            // Listed as it is: a shared file (a list naming one phone's file so is refused by
            // the plan checks), whatever runs of hex digits its name holds.
            if shared.contains(name) {
                continue;
            }
            let Some(named) = macs_in_name(name).next() else {
                continue;
            };
            let lowered = lower_case_macs(name);
            let requested = (lowered != name && owner(&lowered).is_some()).then(|| lowered.into());
            files.unlisted.push(UnlistedFile {
                path,
                mac: named,
                requested,
            });
        }
        files
    }
}

/// `name` with every MAC in it written in lower case, as phones write theirs.
fn lower_case_macs(name: &str) -> String {
    let mut lowered = String::with_capacity(name.len());
    let mut run = String::new();
    for c in name.chars().chain(std::iter::once('\0')) {
        if c.is_ascii_hexdigit() {
            run.push(c);
            continue;
        }
        if run.len() == 12 && Mac::parse(&run).is_ok() {
            run.make_ascii_lowercase();
        }
        lowered.push_str(&run);
        run.clear();
        if c != '\0' {
            lowered.push(c);
        }
    }
    lowered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_matches_the_same_lower_case_mac_at_every_place() {
        let template = Template::of(&FileReference::parse(
            "./phones/[PHONE_MAC_ADDRESS]/[PHONE_MAC_ADDRESS]-reg.cfg",
        ))
        .expect("a template");
        let phone = |name: &str| template.phone_of(name).map(|m| m.to_string());
        assert_eq!(
            phone("phones/0004f2a10001/0004f2a10001-reg.cfg").as_deref(),
            Some("0004f2a10001")
        );
        assert_eq!(phone("phones/0004f2a10001/0004f2a10002-reg.cfg"), None);
        assert_eq!(phone("phones/0004F2A10001/0004F2A10001-reg.cfg"), None);
        assert_eq!(phone("phones/0004f2a10001/0004f2a10001-reg.cfg.bak"), None);
    }

    #[test]
    fn macs_are_lowered_and_nothing_else() {
        assert_eq!(
            lower_case_macs("Phones/0004F2A10001-Sip.CFG"),
            "Phones/0004f2a10001-Sip.CFG"
        );
        assert_eq!(
            lower_case_macs("ABCDEF0123456789.cfg"),
            "ABCDEF0123456789.cfg"
        );
    }
}
