//! Publishing: from a plaintext source tree and the vault to the tree the web server serves.
//!
//! The published tree is built whole in a staging directory beside `--out`, then swapped in,
//! so the web server never serves a half-published tree. Output that already matches (same
//! KeyDesc and Digest for encrypted files, same bytes otherwise) is reused, and a run that
//! would change nothing writes nothing. `publish`, `rotate start` and `rotate finish` all
//! publish through here, so every one honours each phone's rotation step.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use polyseal_crypto::{Header, KeyString, MAX_FILE_SIZE, Mac};
use polyseal_provision::{
    Exposure, FindingKind, KeyFilePattern, PhoneList, PlanIssue, SourceTree, bootstrap_file,
};
use polyseal_vault::{InitialState, Vault, VaultWriter};
use rayon::prelude::*;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::failure::{ExitClass, Failure};
use crate::manifest::{Entry, Kind, Manifest, Provenance, Stamp};
use crate::master_plans::plan_issues;
use crate::output_file::{PUBLIC_MODE, SECRET_MODE, create_new, sync_dir};
use crate::rotation::Step;
use crate::session::Session;
use crate::uploads::files_under;

/// What to publish.
pub(crate) struct PublishRequest<'a> {
    pub(crate) src: &'a Path,
    pub(crate) out: &'a Path,
    pub(crate) phones_file: Option<&'a Path>,
    pub(crate) dry_run: bool,
    pub(crate) allow_plaintext_secrets: bool,
    pub(crate) key_file: KeyFilePattern,
}

/// What a publish did, for the closing summary.
#[derive(Default)]
pub(crate) struct PublishSummary {
    pub(crate) phones: usize,
    pub(crate) keys_made: usize,
    pub(crate) encrypted: usize,
    pub(crate) key_files: usize,
    pub(crate) copied: usize,
    /// Per-phone files served in plaintext while their phones take a new key.
    pub(crate) plaintext: usize,
    pub(crate) reused: usize,
    /// Of the reused files, those the manifest proved unchanged without reading them.
    pub(crate) recorded: usize,
    pub(crate) removed: usize,
    pub(crate) changed: bool,
    pub(crate) warnings: Vec<String>,
}

/// One file of the published tree and where its content comes from. It borrows what it can
/// from the source tree and the opened keys: there are 200,000 of these for 100,000 phones.
struct Output<'a> {
    /// Path relative to the tree root.
    relative: Cow<'a, Path>,
    content: Content<'a>,
}

enum Content<'a> {
    /// A master or shared file, copied as it is.
    Copy { source: PathBuf },
    /// A per-phone file, encrypted with the phone's key (copied as it is if the source is
    /// already encrypted: `audit` reports under which key).
    Encrypt { source: PathBuf, key: &'a KeyString },
    /// The phone's plaintext bootstrap file.
    Bootstrap { key: &'a KeyString },
    /// A per-phone file served in plaintext, owner-only, while its phone takes a new key on a
    /// next-boot fleet ([`Step::serves_plaintext`]).
    Plaintext { source: PathBuf },
}

impl Output<'_> {
    fn mode(&self) -> u32 {
        match self.content {
            Content::Bootstrap { .. } | Content::Plaintext { .. } => SECRET_MODE,
            Content::Copy { .. } | Content::Encrypt { .. } => PUBLIC_MODE,
        }
    }

    /// What the manifest compares to know this output is already published.
    fn provenance(&self) -> Provenance<'_> {
        match &self.content {
            Content::Copy { source } => Provenance {
                kind: Kind::Copy,
                source: Some(source),
                key: None,
            },
            Content::Encrypt { source, key } => Provenance {
                kind: Kind::Encrypt,
                source: Some(source),
                key: Some(key.key().fingerprint()),
            },
            Content::Bootstrap { key } => Provenance {
                kind: Kind::Bootstrap,
                source: None,
                key: Some(key.key().fingerprint()),
            },
            Content::Plaintext { source } => Provenance {
                kind: Kind::Plaintext,
                source: Some(source),
                key: None,
            },
        }
    }
}

/// What the current published tree already holds of one output.
enum Existing {
    /// Nothing usable: the output must be written.
    Stale,
    /// Up to date, as the manifest's entry proves without reading anything.
    Recorded,
    /// Up to date, proved by reading and comparing; with the entry that proves it next time
    /// (none if its source changed too recently to be trusted).
    Verified(Option<Entry>),
}

impl Existing {
    fn is_fresh(&self) -> bool {
        !matches!(self, Existing::Stale)
    }
}

/// Publishes `request.src` into `request.out`. `writer` holds the vault's lock for the whole
/// run, so no other command changes keys under it.
pub(crate) fn publish(
    session: &Session,
    writer: &mut VaultWriter,
    request: &PublishRequest<'_>,
) -> Result<PublishSummary, Failure> {
    let tree = SourceTree::open(request.src)?.with_key_file_pattern(request.key_file.clone());
    let mut summary = PublishSummary::default();

    let macs = phone_macs(&tree, writer.vault(), request.phones_file)?;
    summary.phones = macs.len();

    check_plans(&tree, &macs, &request.key_file, &mut summary)?;
    check_secrets(&tree, request.allow_plaintext_secrets, &mut summary)?;

    let need_keys: Vec<Mac> = macs
        .iter()
        .copied()
        .filter(|mac| Step::of(writer.vault().record(mac)) == Step::NoKey)
        .collect();
    summary.keys_made = need_keys.len();
    if request.dry_run {
        print_plan(session, &tree, writer.vault(), &macs, &need_keys);
        return Ok(summary);
    }

    let data_key = session.unlock(writer.vault())?;
    // The keys already in the vault, opened, and the new ones as the transaction that adds
    // them returns them (opening those again would cost a pass over the whole vault).
    let mut keys: HashMap<(Mac, u32), KeyString> = writer
        .vault()
        .open_live_keys(&data_key)?
        .into_iter()
        .map(|k| ((k.mac, k.generation), k.key))
        .collect();
    if !need_keys.is_empty() {
        let added = writer.add_keys(&data_key, &need_keys, InitialState::Active)?;
        keys.extend(added.into_iter().map(|k| ((k.mac, k.generation), k.key)));
    }
    let vault = writer.vault();

    let outputs = plan_outputs(&tree, vault, &macs, &keys, &request.key_file)?;
    for output in &outputs {
        match output.content {
            Content::Copy { .. } => summary.copied += 1,
            Content::Plaintext { .. } => summary.plaintext += 1,
            Content::Encrypt { .. } => summary.encrypted += 1,
            Content::Bootstrap { .. } => summary.key_files += 1,
        }
    }
    if summary.plaintext > 0 {
        summary.warnings.push(format!(
            "{} per-phone files are served in plaintext (owner-only, behind the per-MAC TLS \
             rule) while their phones take a new key on this next-boot fleet; `polyseal rotate \
             confirm` then `finish` encrypts them again (docs/ROTATION.md)",
            summary.plaintext
        ));
    }
    write_tree(session, request.out, &outputs, &mut summary)?;
    Ok(summary)
}

/// Every phone to publish: those the tree names files after, those of the phones file and
/// those of the vault's inventory, in MAC order. The list itself (every phone's sources, a
/// copy of each file path) is dropped here: at 100,000 phones it holds 25 MB that the rest of
/// the run does not need.
fn phone_macs(
    tree: &SourceTree,
    vault: &Vault,
    phones_file: Option<&Path>,
) -> Result<Vec<Mac>, Failure> {
    let mut phones = PhoneList::new();
    phones.add_tree(tree);
    if let Some(path) = phones_file {
        phones.read_phones_file(path)?;
    }
    phones.add_inventory(vault.records().map(|r| r.mac()));
    Ok(phones.iter().map(|p| p.mac).collect())
}

/// Refuses trees that would brick phones; collects the warnings that would not.
fn check_plans(
    tree: &SourceTree,
    macs: &[Mac],
    key_file: &KeyFilePattern,
    summary: &mut PublishSummary,
) -> Result<(), Failure> {
    // One lookup per phone, on every core; the first phone in MAC order is the one named.
    let clash = macs.par_iter().find_map_first(|mac| {
        key_file
            .reference(mac)
            .tree_path()
            .filter(|path| tree.contains(path))
            .map(|path| (*mac, tree.path_of(path)))
    });
    if let Some((mac, path)) = clash {
        return Err(Failure::input(format!(
            "{}: the source tree has a key file for {mac}; polyseal writes key files itself",
            path.display()
        ))
        .with_hint("remove it from the source tree"));
    }
    let mut reported = BTreeSet::new();
    for (mac, issue) in plan_issues(tree, macs)? {
        match &issue {
            PlanIssue::NoMaster => {
                return Err(Failure::input(format!(
                    "{}: no master file (000000000000.cfg or {mac}.cfg): phones have nothing to boot from",
                    tree.root().display()
                )));
            }
            PlanIssue::MasterEncrypted { path, .. } => {
                return Err(Failure::input(format!(
                        "{}: master file is encrypted; phones cannot read an encrypted master and would reboot in a loop",
                        path.display()
                    ))
                    .with_hint("replace it with the plaintext master"));
            }
            other => {
                // The same master problem repeats for every phone: say it once.
                let text = match other {
                    PlanIssue::KeyFileNotListed {
                        master, attribute, ..
                    } => format!(
                        "{}: {attribute} does not list the key file ({}): phones will never fetch their key",
                        master.display(),
                        key_file.as_str()
                    ),
                    other => format!("{mac}: {other}"),
                };
                if reported.insert(text.clone()) {
                    summary.warnings.push(text);
                }
            }
        }
    }
    Ok(())
}

/// Refuses secrets that would be served in plaintext to every phone, unless allowed.
fn check_secrets(
    tree: &SourceTree,
    allow: bool,
    summary: &mut PublishSummary,
) -> Result<(), Failure> {
    // Per-phone files are scanned as they are encrypted (`render`), when they are read anyway.
    let scan = tree.scan_where(true, |exposure| exposure != Exposure::PerPhoneEncrypted);
    if let Some(error) = scan.errors.into_iter().next() {
        return Err(error.into());
    }
    let mut exposed = Vec::new();
    for finding in scan.findings {
        match finding.kind {
            FindingKind::SecretInMaster | FindingKind::SecretInSharedFile => exposed.push(finding),
            _ => summary
                .warnings
                .push(format!("{finding} ({})", finding.hint())),
        }
    }
    match exposed.first() {
        Some(first) if !allow => Err(Failure::input(format!(
            "{first}{}",
            if exposed.len() > 1 {
                format!(" (and {} more)", exposed.len() - 1)
            } else {
                String::new()
            }
        ))
        .with_hint(format!(
            "{}; or pass --allow-plaintext-secrets to publish it anyway",
            first.hint()
        ))),
        _ => {
            summary.warnings.extend(
                exposed
                    .iter()
                    .map(|f| format!("{f} (allowed by --allow-plaintext-secrets)")),
            );
            Ok(())
        }
    }
}

/// Every file of the published tree.
fn plan_outputs<'a>(
    tree: &'a SourceTree,
    vault: &Vault,
    macs: &[Mac],
    keys: &'a HashMap<(Mac, u32), KeyString>,
    key_file: &KeyFilePattern,
) -> Result<Vec<Output<'a>>, Failure> {
    let key_of = |mac: &Mac, generation: u32| {
        keys.get(&(*mac, generation)).ok_or_else(|| {
            Failure::new(
                ExitClass::Vault,
                format!("{mac}: generation {generation} has no key in the vault (destroyed?)"),
            )
        })
    };
    let steps: BTreeMap<Mac, Step> = macs
        .iter()
        .map(|m| (*m, Step::of(vault.record(m))))
        .collect();
    let owners: HashMap<&Path, Mac> = tree
        .phones()
        .into_iter()
        .flat_map(|(mac, files)| files.into_iter().map(move |f| (f, mac)))
        .collect();

    // Planned on every core, in the tree's order: first the tree's files, then the key files.
    let files: Vec<&Path> = tree.files().collect();
    let mut outputs = files
        .par_iter()
        .map(|&relative| {
            let source = tree.path_of(relative);
            let content = match (tree.exposure(relative, true), owners.get(relative)) {
                (Exposure::PerPhoneEncrypted, Some(mac))
                    if steps
                        .get(mac)
                        .is_some_and(|s| s.serves_plaintext(vault.key_timing())) =>
                {
                    Content::Plaintext { source }
                }
                (Exposure::PerPhoneEncrypted, Some(mac)) => {
                    let generation = steps
                        .get(mac)
                        .and_then(|s| s.files_generation())
                        .ok_or_else(|| {
                            Failure::new(ExitClass::Vault, format!("{mac} has no active key"))
                        })?;
                    Content::Encrypt {
                        source,
                        key: key_of(mac, generation)?,
                    }
                }
                _ => Content::Copy { source },
            };
            Ok(Output {
                relative: Cow::Borrowed(relative),
                content,
            })
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    let phones: Vec<(&Mac, &Step)> = steps.iter().collect();
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
        .collect::<Result<Vec<_>, Failure>>()?;
    outputs.extend(key_files);
    Ok(outputs)
}

/// Reads a file of at most [`MAX_FILE_SIZE`] bytes (configuration files are small; the cap
/// keeps a stray huge file out), with its stamp taken before the read, so a change during or
/// after the read shows in the next run's comparison.
fn read_stamped(path: &Path) -> Result<(Zeroizing<Vec<u8>>, fs::Metadata), Failure> {
    use std::io::Read;
    let too_large = || {
        Failure::input(format!(
            "{}: larger than the {MAX_FILE_SIZE}-byte limit",
            path.display()
        ))
    };
    let file = fs::File::open(path).map_err(|e| Failure::io(path, "read", &e))?;
    let metadata = file.metadata().map_err(|e| Failure::io(path, "read", &e))?;
    let size = usize::try_from(metadata.len()).map_err(|_| too_large())?;
    if size > MAX_FILE_SIZE {
        return Err(too_large());
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(size + 1));
    file.take(MAX_FILE_SIZE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::io(path, "read", &e))?;
    if bytes.len() > MAX_FILE_SIZE {
        return Err(too_large());
    }
    Ok((bytes, metadata))
}

/// Reads a source file and its stamp.
fn read_source(path: &Path) -> Result<(Zeroizing<Vec<u8>>, Option<Stamp>), Failure> {
    let (bytes, metadata) = read_stamped(path)?;
    Ok((bytes, Stamp::of(&metadata)))
}

/// What the published tree under `out` already holds of `output`: the manifest's entry
/// proves it by `stat` alone; otherwise the file is read and compared: same bytes for copies
/// and bootstrap files; for encrypted files (whose IVs differ on every run, so bytes never
/// match) a header naming the key's KeyDesc and the source's digest, and a body that the key
/// really decrypts (another vault's key may carry the same KeyDesc).
fn existing(out: &Path, output: &Output<'_>, manifest: &Manifest) -> Result<Existing, Failure> {
    let published = out.join(&output.relative);
    let provenance = output.provenance();
    if let Some(entry) = manifest.get(&output.relative) {
        if entry.proves(&provenance, &published) {
            return Ok(Existing::Recorded);
        }
    }
    // A published file that cannot be read (missing, too large) is simply rewritten.
    let Ok((current, metadata)) = read_stamped(&published) else {
        return Ok(Existing::Stale);
    };
    let out_stamp = Stamp::of(&metadata);
    if !has_mode(&metadata, output.mode()) {
        return Ok(Existing::Stale);
    }
    let (fresh, source_stamp) = match &output.content {
        Content::Copy { source } | Content::Plaintext { source } => {
            let (bytes, stamp) = read_source(source)?;
            (*bytes == *current, stamp)
        }
        Content::Encrypt { source, key } => {
            let (plaintext, stamp) = read_source(source)?;
            let fresh = if polyseal_crypto::is_encrypted(&plaintext) {
                *plaintext == *current
            } else {
                same_seal(&current, key, &plaintext)
            };
            (fresh, stamp)
        }
        Content::Bootstrap { key } => (bool::from(bootstrap_file(key).ct_eq(&current)), None),
    };
    Ok(if fresh {
        Existing::Verified(out_stamp.and_then(|o| Entry::new(&provenance, o, source_stamp)))
    } else {
        Existing::Stale
    })
}

/// True if `file` is `plaintext` sealed under `key`: its header names the key's KeyDesc and
/// carries the plaintext's digest, and the key decrypts it.
fn same_seal(file: &[u8], key: &KeyString, plaintext: &[u8]) -> bool {
    Header::parse(file)
        .is_ok_and(|h| h.key_desc() == Some(key.key_desc()) && h.matches_plaintext(plaintext))
        && polyseal_crypto::decrypt(file, key).is_ok()
}

#[cfg(unix)]
fn has_mode(metadata: &fs::Metadata, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777 == mode
}

#[cfg(not(unix))]
fn has_mode(_metadata: &fs::Metadata, _mode: u32) -> bool {
    true
}

/// An output's bytes, what reading a per-phone file's plaintext found, and the source's stamp.
struct Rendered {
    bytes: Zeroizing<Vec<u8>>,
    notes: Vec<String>,
    source: Option<Stamp>,
}

/// What `output` writes. Reading a per-phone file's plaintext also finds weak SIP passwords
/// (the header digest is unkeyed, see docs/FORMAT.md). Malformed XML is an error: a phone
/// could not read the file once decrypted.
fn render(output: &Output<'_>) -> Result<Rendered, Failure> {
    Ok(match &output.content {
        Content::Copy { source } => {
            let (bytes, source) = read_source(source)?;
            Rendered {
                bytes,
                notes: Vec::new(),
                source,
            }
        }
        Content::Encrypt { source: path, key } => {
            let (plaintext, source) = read_source(path)?;
            if polyseal_crypto::is_encrypted(&plaintext) {
                let note = format!(
                    "{}: already encrypted in the source tree; copied as it is",
                    path.display()
                );
                return Ok(Rendered {
                    bytes: plaintext,
                    notes: vec![note],
                    source,
                });
            }
            let notes = per_phone_notes(path, &plaintext)?;
            let sealed =
                polyseal_crypto::encrypt(&plaintext, key).map_err(|e| Failure::crypto(path, &e))?;
            Rendered {
                bytes: Zeroizing::new(sealed),
                notes,
                source,
            }
        }
        Content::Bootstrap { key } => Rendered {
            bytes: bootstrap_file(key),
            notes: Vec::new(),
            source: None,
        },
        Content::Plaintext { source: path } => {
            let (plaintext, source) = read_source(path)?;
            // Checked as it would be encrypted: the file is per-phone content; that it is
            // served in plaintext for now is said once, in the summary.
            let notes = if polyseal_crypto::is_encrypted(&plaintext) {
                Vec::new()
            } else {
                per_phone_notes(path, &plaintext)?
            };
            Rendered {
                bytes: plaintext,
                notes,
                source,
            }
        }
    })
}

/// What reading a per-phone file's plaintext finds (weak SIP passwords), as warnings; an
/// error for malformed XML.
fn per_phone_notes(path: &Path, plaintext: &[u8]) -> Result<Vec<String>, Failure> {
    Ok(
        polyseal_provision::scan(path, plaintext, Exposure::PerPhoneEncrypted)?
            .iter()
            .map(|f| format!("{f} ({})", f.hint()))
            .collect(),
    )
}

/// Writes the published tree: nothing if it is already up to date; otherwise a staging
/// directory (unchanged files hard-linked from the current tree) swapped in for `out`. Either
/// way the manifest beside the tree ends up describing it, so the next run can trust `stat`.
fn write_tree(
    session: &Session,
    out: &Path,
    outputs: &[Output<'_>],
    summary: &mut PublishSummary,
) -> Result<(), Failure> {
    let manifest_path = sibling(out, "manifest")?;
    let manifest = Manifest::load(&manifest_path);
    let existing: Vec<Existing> = if out.is_dir() {
        let progress = progress_bar(session, outputs.len() as u64);
        let existing = outputs
            .par_iter()
            .map(|o| {
                let existing = existing(out, o, &manifest);
                progress.inc(1);
                existing
            })
            .collect::<Result<_, _>>()?;
        progress.finish_and_clear();
        existing
    } else {
        // Publishing from nothing: 200,000 failed opens would only say so one by one.
        outputs.iter().map(|_| Existing::Stale).collect()
    };
    summary.reused = existing.iter().filter(|e| e.is_fresh()).count();
    summary.recorded = existing
        .iter()
        .filter(|e| matches!(e, Existing::Recorded))
        .count();
    let wanted: HashSet<&Path> = outputs.iter().map(|o| o.relative.as_ref()).collect();
    summary.removed = files_under(out)?
        .iter()
        .filter_map(|f| f.strip_prefix(out).ok())
        .filter(|f| !wanted.contains(f))
        .count();
    summary.changed = summary.reused < outputs.len() || summary.removed > 0 || !out.is_dir();
    if !summary.changed {
        // Files proved by reading get entries, so the next run does not read them again.
        if existing.iter().any(|e| matches!(e, Existing::Verified(_))) {
            let entries = outputs.iter().zip(&existing).filter_map(|(o, e)| {
                let entry = match e {
                    Existing::Recorded => manifest.get(&o.relative),
                    Existing::Verified(entry) => entry.as_ref(),
                    Existing::Stale => None,
                };
                Some((o.relative.as_ref(), entry?))
            });
            save_manifest(&manifest_path, entries, summary);
        }
        return Ok(());
    }

    let staging = sibling(out, "staging")?;
    let result = stage(
        session,
        out,
        &staging,
        outputs,
        existing,
        &manifest,
        &mut summary.warnings,
    )
    .and_then(|staged| {
        // The old manifest must not outlive the tree it describes.
        let _ = fs::remove_file(&manifest_path);
        swap(out, &staging)?;
        Ok(staged)
    });
    let staged = match result {
        Ok(staged) => staged,
        Err(failure) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(failure);
        }
    };
    // A reused file's change time moved twice, when it was linked into the staging tree and
    // when the old tree's link was removed: stamp it now that both are done.
    let entries: Vec<Option<Entry>> = outputs
        .par_iter()
        .zip(staged.into_par_iter())
        .map(|(output, staged)| match staged {
            Staged::Linked(entry) => entry
                .zip(Stamp::at(&out.join(&output.relative)))
                .map(|(e, s)| e.restamped(s)),
            Staged::Written(entry) => entry,
        })
        .collect();
    drop(manifest);
    let entries = outputs
        .iter()
        .zip(&entries)
        .filter_map(|(o, e)| Some((o.relative.as_ref(), e.as_ref()?)));
    save_manifest(&manifest_path, entries, summary);
    Ok(())
}

/// How one output got into the staging tree, with its manifest entry.
enum Staged {
    /// Hard-linked from the current tree; the entry's stamp is taken after the swap.
    Linked(Option<Entry>),
    /// Written; the entry is final.
    Written(Option<Entry>),
}

/// Writes the manifest; failing to is a warning, not a failure: the tree is published, and
/// the next run reads every file instead of trusting `stat`.
fn save_manifest<'a>(
    path: &Path,
    entries: impl Iterator<Item = (&'a Path, &'a Entry)>,
    summary: &mut PublishSummary,
) {
    if let Err(failure) = Manifest::save(path, entries) {
        summary.warnings.push(format!(
            "{failure}; the next publish will read every file to find what changed"
        ));
    }
}

/// Fills `staging` with every output; says how each got there.
fn stage(
    session: &Session,
    out: &Path,
    staging: &Path,
    outputs: &[Output<'_>],
    existing: Vec<Existing>,
    manifest: &Manifest,
    warnings: &mut Vec<String>,
) -> Result<Vec<Staged>, Failure> {
    if staging.exists() {
        fs::remove_dir_all(staging).map_err(|e| Failure::io(staging, "remove", &e))?;
    }
    fs::create_dir_all(staging).map_err(|e| Failure::io(staging, "create", &e))?;
    let dirs: BTreeSet<PathBuf> = outputs
        .iter()
        .filter_map(|o| o.relative.parent().map(|p| staging.join(p)))
        .collect();
    for dir in dirs {
        fs::create_dir_all(&dir).map_err(|e| Failure::io(&dir, "create", &e))?;
    }
    let progress = progress_bar(session, outputs.len() as u64);
    let stage_all = || -> Result<Vec<(Vec<String>, Staged)>, Failure> {
        outputs
            .par_iter()
            .zip(existing.into_par_iter())
            .map(|(output, existing)| {
                let target = staging.join(&output.relative);
                progress.inc(1);
                let recorded = match existing {
                    Existing::Recorded => Some(manifest.get(&output.relative).cloned()),
                    Existing::Verified(entry) => Some(entry),
                    Existing::Stale => None,
                };
                if let Some(entry) = recorded {
                    if fs::hard_link(out.join(&output.relative), &target).is_ok() {
                        return Ok((Vec::new(), Staged::Linked(entry)));
                    }
                }
                let rendered = render(output)?;
                let written = write_file(&target, &rendered.bytes, output.mode())?;
                let entry = Stamp::of(&written)
                    .and_then(|s| Entry::new(&output.provenance(), s, rendered.source));
                Ok((rendered.notes, Staged::Written(entry)))
            })
            .collect()
    };
    let staged = match staging_pool() {
        Some(pool) => pool.install(stage_all),
        None => stage_all(),
    }?;
    progress.finish_and_clear();
    let staged = staged
        .into_iter()
        .map(|(notes, staged)| {
            warnings.extend(notes);
            staged
        })
        .collect();
    sync_tree(staging)?;
    Ok(staged)
}

/// The threads that fill the staging tree: twice as many as the rest of the run uses (four
/// per core). Reading a source that is not in the page cache blocks its thread on the disk,
/// and creating files in one directory takes turns on its lock; more threads in flight keep
/// the disk's queue full and the cores busy (docs/PERFORMANCE.md: from nothing with a cold
/// page cache, 8.3-9.0 s with 8 threads against 9.7-10.8 s with 4). `None` if the threads
/// cannot be started: the shared pool serves then.
fn staging_pool() -> Option<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2 * rayon::current_num_threads())
        .build()
        .ok()
}

/// Creates `path` with `mode`, writes `bytes`, and returns the written file's metadata (its
/// stamp for the manifest). Not synced one by one: [`sync_tree`] makes the whole staging
/// directory durable with one call before the swap.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<fs::Metadata, Failure> {
    use std::io::Write;
    let mut file = create_new(path, mode)?;
    file.write_all(bytes)
        .and_then(|()| file.metadata())
        .map_err(|e| Failure::io(path, "write", &e))
}

/// Flushes everything written under `dir` to disk.
#[cfg(target_os = "linux")]
fn sync_tree(dir: &Path) -> Result<(), Failure> {
    let handle = fs::File::open(dir).map_err(|e| Failure::io(dir, "open", &e))?;
    rustix::fs::syncfs(&handle).map_err(|e| Failure::io(dir, "sync", &e.into()))
}

#[cfg(not(target_os = "linux"))]
fn sync_tree(dir: &Path) -> Result<(), Failure> {
    sync_dir(dir)
}

/// Puts `staging` in the place of `out`. Two renames: the old tree moves aside, the new one
/// moves in; then the old one is deleted. The web server sees the old tree or the new one.
fn swap(out: &Path, staging: &Path) -> Result<(), Failure> {
    let old = sibling(out, "old")?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| Failure::io(&old, "remove", &e))?;
    }
    let had_old = out.exists();
    if had_old {
        fs::rename(out, &old).map_err(|e| Failure::io(out, "move aside", &e))?;
    }
    if let Err(e) = fs::rename(staging, out) {
        if had_old {
            let _ = fs::rename(&old, out);
        }
        return Err(Failure::io(out, "replace", &e));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    if had_old {
        fs::remove_dir_all(&old).map_err(|e| Failure::io(&old, "remove", &e))?;
    }
    Ok(())
}

/// `<parent>/.<name>.polyseal-<what>`: a working directory next to `out`, on the same file
/// system so the swap is a rename.
fn sibling(out: &Path, what: &str) -> Result<PathBuf, Failure> {
    let name = out
        .file_name()
        .ok_or_else(|| Failure::input(format!("--out {}: not a directory name", out.display())))?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(Failure::input(format!(
            "--out {}: parent directory {} does not exist",
            out.display(),
            parent.display()
        )));
    }
    Ok(parent.join(format!(".{}.polyseal-{what}", name.to_string_lossy())))
}

/// A progress bar on a terminal, for long runs; hidden otherwise.
fn progress_bar(session: &Session, len: u64) -> ProgressBar {
    if session.quiet() || len < 1000 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} files ({eta} left)") {
        bar.set_style(style);
    }
    bar
}

/// `--dry-run`: what would be done, phone by phone.
fn print_plan(
    session: &Session,
    tree: &SourceTree,
    vault: &Vault,
    macs: &[Mac],
    need_keys: &[Mac],
) {
    let mut text = String::new();
    for mac in macs {
        let step = Step::of(vault.record(mac));
        let key = if need_keys.contains(mac) {
            "new key (g1 or next), bootstrap file".to_owned()
        } else {
            step.to_string()
        };
        text.push_str(&format!("{mac}: {key}\n"));
        if let Ok(plan) = tree.fetch_plan(mac, None) {
            for file in &plan.files {
                text.push_str(&format!("  {file}\n"));
            }
        }
    }
    let _ = crate::table::emit(&text);
    session.say(&format!(
        "dry run: {} phones, {} keys would be made; nothing written",
        macs.len(),
        need_keys.len()
    ));
}
