//! Publishing: from a plaintext source tree and the vault to the tree the web server serves.
//!
//! The published tree is built whole in a staging directory beside `--out`, then swapped in,
//! so the web server never serves a half-published tree. Output that already matches (same
//! KeyDesc and Digest for encrypted files, same bytes otherwise) is reused, and a run that
//! would change nothing writes nothing. `publish`, `rotate start` and `rotate finish` all
//! publish through here, so every one honours each phone's rotation step.
//!
//! A publish runs in two steps: [`check`] validates the tree against the vault and needs no
//! identity; [`CheckedPublish::run`] makes the keys and writes the tree. A refused tree never
//! reaches the second step, so it makes no key and writes no file.

mod checks;
mod dry_run;
mod existing;
mod manifest;
mod output;
mod ownership;
mod per_phone;
mod render;
mod shared;
mod stage;
mod swap;
mod warnings;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use polyseal_crypto::{KeyString, Mac};
use polyseal_provision::{KeyFilePattern, PhoneFiles, PhoneList, SourceTree};
use polyseal_vault::{DataKey, InitialState, RotationStep, Timestamp, Vault, VaultWriter};

use crate::{Clock, Error, Progress};

pub use dry_run::{OutChanges, PlannedPhone};
pub use output::OutputKind;
pub use swap::tree_identity;

/// What to publish.
#[derive(Debug)]
#[non_exhaustive]
pub struct PublishRequest<'a> {
    /// The plaintext source tree.
    pub src: &'a Path,
    /// The published tree, replaced whole (a symbolic link stays; the tree it resolves to is
    /// replaced).
    pub out: &'a Path,
    /// A list of phones to provision besides those the tree and the vault name.
    pub phones_file: Option<&'a Path>,
    /// Publish secrets found in shared files and masters (served to every phone) anyway.
    pub allow_plaintext_secrets: bool,
    /// Publish into an `--out` that holds files polyseal did not write: they stay (or, at a
    /// path the new tree uses, are replaced), and the directory is polyseal's from then on.
    pub adopt_out: bool,
    /// Where each phone's key file is.
    pub key_file: KeyFilePattern,
    /// Phones that the caller gives a new key between the check and the run (`rotate start`):
    /// they are served a key that does not exist yet, so no file of theirs can already be
    /// encrypted under it.
    pub rotating: &'a [Mac],
}

impl<'a> PublishRequest<'a> {
    /// A request to publish `src` into `out`, with the default key file and no exceptions.
    pub fn new(src: &'a Path, out: &'a Path, key_file: KeyFilePattern) -> PublishRequest<'a> {
        PublishRequest {
            src,
            out,
            phones_file: None,
            allow_plaintext_secrets: false,
            adopt_out: false,
            key_file,
            rotating: &[],
        }
    }
}

/// What a publish did, for the closing summary.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PublishSummary {
    /// Phones published.
    pub phones: usize,
    /// Keys made for phones that had none.
    pub keys_made: usize,
    /// Per-phone files encrypted.
    pub encrypted: usize,
    /// Key (bootstrap) files.
    pub key_files: usize,
    /// Masters and shared files copied.
    pub copied: usize,
    /// Per-phone files served in plaintext while their phones take a new key, or until a
    /// rollout's wave takes them.
    pub plaintext: usize,
    /// Of those, the files served in plaintext until a rollout's wave takes their phones.
    pub plaintext_until_wave: usize,
    /// Per-phone and key files written (not already published as they are).
    pub phone_files_written: usize,
    /// Files already published and kept.
    pub reused: usize,
    /// Of the reused files, those the manifest proved unchanged without reading them.
    pub recorded: usize,
    /// Files polyseal wrote that the new tree no longer has.
    pub removed: usize,
    /// Files under `--out` that polyseal did not write, kept at their paths.
    pub kept: usize,
    /// False if the published tree was already up to date and nothing was written.
    pub changed: bool,
    /// What the operator should know, one line each.
    pub warnings: Vec<String>,
}

/// A source tree checked against the vault, ready to publish.
#[derive(Debug)]
pub struct CheckedPublish {
    tree: SourceTree,
    out: PathBuf,
    key_file: KeyFilePattern,
    macs: Vec<Mac>,
    out_files: ownership::OutFiles,
    summary: PublishSummary,
    /// Per-phone sources already encrypted (among those read).
    encrypted_sources: Vec<PathBuf>,
}

/// Checks `request` against `vault` without changing anything: refuses trees that would brick
/// phones or serve secrets in plaintext and an `--out` that cannot be published to, and
/// collects the warnings that would not. Which phones need a key is decided when it runs, so
/// a command may change the vault between the two (`rotate start` adds keys).
pub fn check(vault: &Vault, request: &PublishRequest<'_>) -> Result<CheckedPublish, Error> {
    swap::check_out(request.out)?;
    let out = swap::resolve_out(request.out)?;
    swap::check_apart(request.src, &out)?;
    let tree = SourceTree::open(request.src)?.with_key_file_pattern(request.key_file.clone());
    checks::check_names(&tree)?;
    let mut summary = PublishSummary::default();

    // Which phone each file belongs to, read once: at 100,000 phones it matches 200,000
    // paths against the masters' lists.
    let phone_files = tree.phone_files();
    let macs = phone_macs(&phone_files, request.phones_file)?;
    summary.phones = macs.len();

    // A file named after a phone that no master lists is not published, but its phone is
    // still one whose plan is checked: a master it cannot read (encrypted, or listing the
    // file by its MAC) is what keeps the list from naming it, and must be refused.
    let mut checked = macs.clone();
    checked.extend(phone_files.unlisted.iter().map(|file| file.mac));
    // 000000000000.cfg is every new phone's master: its lists are checked even when no phone
    // the tree names boots from it (each has a master of its own, or none is named yet), as
    // the next phone to boot would (a MAC no tree names: issue 12, second review).
    if tree.default_master().is_some() && checked.iter().all(|m| tree.phone_master(m).is_some()) {
        checked.extend(Mac::parse(NEXT_PHONE).ok());
    }
    checked.sort_unstable();
    checked.dedup();
    // Every kind of refusal is said in one run, so a tree is mended in one go (issue 12,
    // point 10): plans, listed files, masters and shared files, per-phone files.
    let mut refusals: Vec<Error> = Vec::new();
    refusals.extend(checks::check_plans(&tree, &checked, &request.key_file, &mut summary).err());
    let (listed, listed_files) = checks::check_listed_files(&tree, &checked);
    refusals.extend(listed_files.err());
    let mut placeholders = Vec::new();
    refusals.extend(shared::check_shared_files(
        &tree,
        &phone_files,
        &listed,
        request.allow_plaintext_secrets,
        &mut summary,
        &mut placeholders,
    ));
    checks::master_warnings(&tree, &mut summary);
    checks::master_paths(&tree, &out, &mut summary);
    summary
        .warnings
        .extend(checks::unlisted_warning(&phone_files.unlisted));
    let unlisted: BTreeSet<&Path> = phone_files.unlisted.iter().map(|f| f.path).collect();

    summary.keys_made = need_keys(vault, &macs).len();
    let key_files = ownership::key_file_paths(&macs, &request.key_file);
    let wanted = tree
        .files()
        .filter(|file| !unlisted.contains(*file))
        .chain(key_files.iter().map(PathBuf::as_path))
        .collect();
    let manifest = manifest::Manifest::load(&swap::sibling(&out, "manifest")?, &vault.layout());
    let encrypted_sources = per_phone::check_per_phone_files(
        &tree,
        &phone_files,
        vault,
        request.rotating,
        &manifest,
        &mut summary,
        &mut placeholders,
    )
    .unwrap_or_else(|refusal| {
        refusals.push(refusal);
        Vec::new()
    });
    Error::refusals(refusals)?;
    summary
        .warnings
        .extend(checks::placeholder_warning(&placeholders));
    let out_files = ownership::OutFiles::sort(&out, &manifest, &wanted, request.adopt_out)?;
    summary.removed = out_files.removed.len();
    summary.kept = out_files.kept.len();
    Ok(CheckedPublish {
        tree,
        out,
        key_file: request.key_file.clone(),
        macs,
        out_files,
        summary,
        encrypted_sources,
    })
}

/// The MAC the default master's lists are checked for when no phone the tree names boots from
/// it: a Polycom OUI and a serial no factory gives.
const NEXT_PHONE: &str = "0004f2000000";

/// The phones of `macs` that have no active key in `vault`: publish makes one for each.
fn need_keys(vault: &Vault, macs: &[Mac]) -> Vec<Mac> {
    macs.iter()
        .copied()
        .filter(|mac| RotationStep::of(vault.record(mac)) == RotationStep::NoKey)
        .collect()
}

impl CheckedPublish {
    /// Refuses a per-phone source already encrypted that the key its header names does not
    /// open in the vault's layout. `check` compares KeyDescs only (it has no key); a command
    /// that changes the vault and then publishes (`rollout advance`, `abort`) calls this once
    /// unlocked, before its change, so that the file does not fail the publish half-way.
    pub fn check_encrypted_sources(&self, vault: &Vault, data_key: &DataKey) -> Result<(), Error> {
        for path in &self.encrypted_sources {
            let (bytes, _) = existing::read_source(path)?;
            let desc = polyseal_crypto::inspect(&bytes)
                .ok()
                .and_then(|header| header.key_desc().cloned());
            let opens = desc.as_ref().is_some_and(|desc| {
                vault.open_key_by_desc(data_key, desc).is_ok_and(|key| {
                    polyseal_crypto::decrypt_with(&bytes, &key.key, &vault.layout()).is_ok()
                })
            });
            if !opens {
                return Err(Error::EncryptedSourceDoesNotOpen {
                    path: path.clone(),
                    key_desc: desc.map_or_else(|| "no KeyDesc".to_owned(), |d| d.to_string()),
                });
            }
        }
        Ok(())
    }

    /// The phones it publishes.
    pub fn phones(&self) -> &[Mac] {
        &self.macs
    }

    /// The source tree.
    pub fn tree(&self) -> &SourceTree {
        &self.tree
    }

    /// What was found so far: phone and key counts, warnings.
    pub fn summary(&self) -> &PublishSummary {
        &self.summary
    }

    /// Makes the keys phones lack and publishes the tree. `writer` holds the vault's lock
    /// for the whole run, so no other command changes keys under it; it must be the vault the
    /// tree was checked against.
    pub fn run(
        self,
        writer: &mut VaultWriter,
        data_key: &DataKey,
        clock: &dyn Clock,
        progress: &dyn Progress,
    ) -> Result<PublishSummary, Error> {
        let CheckedPublish {
            tree,
            out,
            key_file,
            macs,
            out_files,
            mut summary,
            encrypted_sources: _,
        } = self;
        let need_keys = need_keys(writer.vault(), &macs);
        summary.keys_made = need_keys.len();
        // The keys already in the vault, opened, and the new ones made in memory: they are
        // written to the vault only once the new tree is staged, so a tree refused while
        // staging (a per-phone file that is not well-formed XML) leaves no key behind.
        let mut keys: HashMap<(Mac, u32), KeyString> = writer
            .vault()
            .open_live_keys(data_key)?
            .into_iter()
            .map(|k| ((k.mac, k.generation), k.key))
            .collect();
        let mut prepared = if need_keys.is_empty() {
            None
        } else {
            Some(writer.prepare_keys(data_key, &need_keys, InitialState::Active)?)
        };
        let new_keys: HashMap<Mac, u32> = prepared
            .iter()
            .flat_map(|p| p.keys())
            .map(|k| (k.mac, k.generation))
            .collect();
        if let Some(prepared) = &prepared {
            keys.extend(
                prepared
                    .keys()
                    .iter()
                    .map(|k| ((k.mac, k.generation), k.key.clone())),
            );
        }

        let outputs =
            output::plan_outputs(&tree, writer.vault(), &macs, &new_keys, &keys, &key_file)?;
        for output in &outputs {
            match output.content.kind() {
                OutputKind::Copy => summary.copied += 1,
                OutputKind::Plaintext => {
                    summary.plaintext += 1;
                    if output.content.until_wave() {
                        summary.plaintext_until_wave += 1;
                    }
                }
                OutputKind::Encrypt => summary.encrypted += 1,
                OutputKind::Bootstrap => summary.key_files += 1,
            }
        }
        let served = |n: usize| match n {
            1 => "1 per-phone file is".to_owned(),
            n => format!("{n} per-phone files are"),
        };
        let until_wave = summary.plaintext_until_wave;
        let key_change = summary.plaintext - until_wave;
        if until_wave > 0 {
            summary.warnings.push(format!(
                "{} served in plaintext (owner-only, behind the per-MAC TLS rule) until a wave \
                 of the rollout takes their phones (polyseal rollout status, docs/ROLLOUT.md)",
                served(until_wave)
            ));
        }
        if key_change > 0 {
            summary.warnings.push(format!(
                "{} served in plaintext (owner-only, behind the per-MAC TLS rule) while their \
                 phones take a new key on this next-boot fleet; `polyseal rotate confirm` then \
                 `finish` encrypts them again (docs/ROTATION.md)",
                served(key_change)
            ));
        }
        let context = stage::RunContext {
            clock,
            progress,
            layout: writer.vault().layout(),
        };
        let mut commit_keys = || match prepared.take() {
            Some(prepared) => writer
                .commit_keys(data_key, prepared)
                .map(|_| ())
                .map_err(Error::from),
            None => Ok(()),
        };
        stage::write_tree(
            &out,
            &outputs,
            &out_files,
            &mut summary,
            context,
            &mut commit_keys,
        )?;
        let touched = summary.phone_files_written > 0;
        mark_published(writer, data_key, &out, touched)?;
        Ok(summary)
    }
}

/// During a rollout, records that the rollout's tree (`out`) now shows its waves in the
/// vault's layout: the gate counts only what phones read after this moment (docs/ROLLOUT.md,
/// "3."). Taken after the tree was swapped in, in whole seconds; the gate counts from the next
/// second. Moved on by every publish there that `touched` a phone's file (wrote a per-phone or
/// key file: a key changed, a phone served in plaintext while it rotates, a file found changed
/// by hand): what phones read before proves nothing of the files they are served now. A
/// rerun that changes no phone's file keeps it (phones poll daily: a shared file regenerated
/// from cron must not keep the gate shut). A publish elsewhere (a staging copy) changes
/// nothing phones read.
fn mark_published(
    writer: &mut VaultWriter,
    data_key: &DataKey,
    out: &Path,
    touched: bool,
) -> Result<(), Error> {
    let Some(rollout) = writer
        .vault()
        .rollout()
        .filter(|r| r.published().is_none() || touched)
        .cloned()
    else {
        return Ok(());
    };
    // A rollout recorded without its tree (before it was recorded) takes any publish.
    if rollout
        .tree()
        .is_some_and(|tree| tree != tree_identity(out).unwrap_or_default())
    {
        return Ok(());
    }
    let published = rollout.with_tree_published(Timestamp::now());
    writer.set_rollout(data_key, Some(published), "tree published")?;
    Ok(())
}

/// Every phone to publish: those the masters list files of the tree for and those of the
/// phones file, in MAC order. A phone the vault holds a key for but neither names gets no key file: the tree
/// does not provision it, and its key is served to no one (`audit` reports the key as
/// `key-without-phone`). The list itself (every phone's sources, a copy of each file path) is
/// dropped here: at 100,000 phones it holds 25 MB that the rest of the run does not need.
fn phone_macs(files: &PhoneFiles<'_>, phones_file: Option<&Path>) -> Result<Vec<Mac>, Error> {
    let mut phones = PhoneList::new();
    phones.add_phone_files(files);
    if let Some(path) = phones_file {
        phones.read_phones_file(path).map_err(|error| match error {
            polyseal_provision::Error::Io { source, .. } => {
                Error::io(path, "read the --phones file", source)
            }
            other => other.into(),
        })?;
    }
    Ok(phones.iter().map(|p| p.mac).collect())
}
