//! The files of a published tree: what each is made from, planned from the source tree, the
//! vault's rotation steps and the opened keys.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use polyseal_crypto::{KeyString, Layout, Mac};
use polyseal_provision::{KeyFilePattern, SourceTree};
use polyseal_vault::{RotationStep, Vault};
use rayon::prelude::*;

use super::manifest::Provenance;
use crate::Error;
use crate::write::{PUBLIC_MODE, SECRET_MODE};

/// One file of the published tree and where its content comes from. It borrows what it can
/// from the source tree and the opened keys: there are 200,000 of these for 100,000 phones.
pub(super) struct Output<'a> {
    /// Path relative to the tree root.
    pub(super) relative: Cow<'a, Path>,
    pub(super) content: Content<'a>,
}

/// What a published file is made of: the kind of a planned output's content, as the summary
/// counts it and the manifest records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputKind {
    /// A master or shared file, copied.
    Copy,
    /// A per-phone file, encrypted with a phone's key.
    Encrypt,
    /// A phone's bootstrap file.
    Bootstrap,
    /// A per-phone file served in plaintext while its phone takes a new key, or until a
    /// rollout's wave takes it.
    Plaintext,
}

impl OutputKind {
    /// Every kind.
    pub const ALL: [OutputKind; 4] = [
        OutputKind::Copy,
        OutputKind::Encrypt,
        OutputKind::Bootstrap,
        OutputKind::Plaintext,
    ];

    /// Its name in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Copy => "copy",
            OutputKind::Encrypt => "encrypt",
            OutputKind::Bootstrap => "bootstrap",
            OutputKind::Plaintext => "plaintext",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<OutputKind> {
        OutputKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Where an output's bytes come from.
pub(super) enum Content<'a> {
    /// A master or shared file, copied as it is.
    Copy { source: PathBuf },
    /// A per-phone file, encrypted with the phone's key (copied as it is if the source is
    /// already encrypted: `audit` reports under which key).
    Encrypt {
        source: PathBuf,
        key: &'a KeyString,
        /// The vault's layout (docs/FORMAT.md, "Layouts").
        layout: Layout,
    },
    /// The phone's plaintext bootstrap file.
    Bootstrap { key: &'a KeyString },
    /// A per-phone file served in plaintext, owner-only, while its phone takes a new key on a
    /// next-boot fleet ([`RotationStep::serves_plaintext`]) or until a rollout's wave takes it
    /// ([`Vault::encrypts_files_of`], docs/ROLLOUT.md). A source already encrypted is
    /// decrypted with `key`, the phone's (`check` compared its KeyDesc), in `layout`: the
    /// phone would loop on it as it is.
    Plaintext {
        source: PathBuf,
        key: Option<&'a KeyString>,
        layout: Layout,
        /// True if it is plaintext because no rollout wave took its phone yet (else: its
        /// phone takes a new key).
        until_wave: bool,
    },
}

impl Content<'_> {
    /// Its kind.
    pub(super) fn kind(&self) -> OutputKind {
        match self {
            Content::Copy { .. } => OutputKind::Copy,
            Content::Encrypt { .. } => OutputKind::Encrypt,
            Content::Bootstrap { .. } => OutputKind::Bootstrap,
            Content::Plaintext { .. } => OutputKind::Plaintext,
        }
    }

    /// True for a per-phone file in plaintext until a rollout's wave takes its phone.
    pub(super) fn until_wave(&self) -> bool {
        matches!(
            self,
            Content::Plaintext {
                until_wave: true,
                ..
            }
        )
    }

    /// The source file, for all but bootstrap files.
    fn source(&self) -> Option<&Path> {
        match self {
            Content::Copy { source }
            | Content::Encrypt { source, .. }
            | Content::Plaintext { source, .. } => Some(source),
            Content::Bootstrap { .. } => None,
        }
    }

    /// The key that seals or is delivered.
    fn key(&self) -> Option<&KeyString> {
        match self {
            Content::Encrypt { key, .. } | Content::Bootstrap { key } => Some(key),
            Content::Copy { .. } | Content::Plaintext { .. } => None,
        }
    }
}

impl Output<'_> {
    /// The file mode it is published with.
    pub(super) fn mode(&self) -> u32 {
        match self.content.kind() {
            OutputKind::Bootstrap | OutputKind::Plaintext => SECRET_MODE,
            OutputKind::Copy | OutputKind::Encrypt => PUBLIC_MODE,
        }
    }

    /// What the manifest compares to know this output is already published.
    pub(super) fn provenance(&self) -> Provenance<'_> {
        Provenance {
            kind: self.content.kind(),
            source: self.content.source(),
            key: self.content.key().map(|k| k.key().fingerprint()),
        }
    }
}

/// Every file of the published tree; `new_keys` are the generations this run makes (not in
/// the vault yet).
pub(super) fn plan_outputs<'a>(
    tree: &'a SourceTree,
    vault: &Vault,
    macs: &[Mac],
    new_keys: &HashMap<Mac, u32>,
    keys: &'a HashMap<(Mac, u32), KeyString>,
    key_file: &KeyFilePattern,
) -> Result<Vec<Output<'a>>, Error> {
    let key_of = |mac: &Mac, generation: u32| {
        keys.get(&(*mac, generation)).ok_or(Error::KeyMissing {
            mac: *mac,
            generation,
        })
    };
    let steps: BTreeMap<Mac, RotationStep> = macs
        .iter()
        .map(|m| {
            // A phone whose first key is made by this run is served it, as if steady on it.
            let step = match new_keys.get(m) {
                Some(&active) => RotationStep::Steady { active },
                None => RotationStep::of(vault.record(m)),
            };
            (*m, step)
        })
        .collect();
    let phone_files = tree.phone_files();
    let owners: HashMap<&Path, Mac> = phone_files
        .by_phone
        .into_iter()
        .flat_map(|(mac, files)| files.into_iter().map(move |f| (f, mac)))
        .collect();
    // Named with a MAC, listed for that phone by no master: no phone requests them, and no
    // key could be chosen for them; `check` has said so.
    let unlisted: HashSet<&Path> = phone_files.unlisted.iter().map(|f| f.path).collect();

    // Planned on every core, in the tree's order: first the tree's files, then the key files.
    let files: Vec<&Path> = tree.files().filter(|f| !unlisted.contains(f)).collect();
    let mut outputs = files
        .par_iter()
        .map(|&relative| {
            let source = tree.path_of(relative);
            // The masters' lists say whose a file is (`SourceTree::phone_files`), not its
            // name: a phone's file is encrypted for it, every other file is copied.
            let owner = owners
                .get(relative)
                .filter(|mac| !is_phone_master(tree, mac, relative));
            let content = match owner {
                Some(mac)
                    if !vault.encrypts_files_of(mac)
                        || steps
                            .get(mac)
                            .is_some_and(|s| s.serves_plaintext(vault.key_timing())) =>
                {
                    Content::Plaintext {
                        source,
                        until_wave: !vault.encrypts_files_of(mac),
                        key: steps
                            .get(mac)
                            .and_then(|s| s.files_generation())
                            .and_then(|generation| keys.get(&(*mac, generation))),
                        layout: vault.layout(),
                    }
                }
                Some(mac) => {
                    let generation = steps
                        .get(mac)
                        .and_then(|s| s.files_generation())
                        .ok_or(Error::NoActiveKey { mac: *mac })?;
                    Content::Encrypt {
                        source,
                        key: key_of(mac, generation)?,
                        layout: vault.layout(),
                    }
                }
                None => Content::Copy { source },
            };
            Ok(Output {
                relative: Cow::Borrowed(relative),
                content,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let phones: Vec<(&Mac, &RotationStep)> = steps.iter().collect();
    let key_files = phones
        .par_iter()
        .filter_map(|&(mac, step)| {
            let relative = key_file.reference(mac).tree_path().map(Path::to_owned)?;
            // The key file always carries the generation the phone is served
            // (docs/ROTATION.md).
            let generation = step.files_generation()?;
            Some(key_of(mac, generation).map(|key| Output {
                relative: Cow::Owned(relative),
                content: Content::Bootstrap { key },
            }))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    outputs.extend(key_files);
    Ok(outputs)
}

/// True if `relative` is `mac`'s own master file, `<mac>.cfg`: the phone's, but never
/// encrypted (phones cannot read an encrypted master).
pub(super) fn is_phone_master(tree: &SourceTree, mac: &Mac, relative: &Path) -> bool {
    tree.phone_master(mac).is_some_and(|master| {
        master
            .path()
            .strip_prefix(tree.root())
            .is_ok_and(|path| path == relative)
    })
}
