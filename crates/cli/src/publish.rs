//! Publishing: from a plaintext source tree and the vault to the tree the web server serves.
//!
//! The published tree is built whole in a staging directory beside `--out`, then swapped in,
//! so the web server never serves a half-published tree. Output that already matches (same
//! KeyDesc and Digest for encrypted files, same bytes otherwise) is reused, and a run that
//! would change nothing writes nothing. `publish`, `rotate start` and `rotate finish` all
//! publish through here, so every one honours each phone's rotation step.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    pub(crate) reused: usize,
    pub(crate) removed: usize,
    pub(crate) changed: bool,
    pub(crate) warnings: Vec<String>,
}

/// One file of the published tree and where its content comes from.
struct Output {
    /// Path relative to the tree root.
    relative: PathBuf,
    content: Content,
}

enum Content {
    /// A master or shared file, copied as it is.
    Copy { source: PathBuf },
    /// A per-phone file, encrypted with the phone's key (copied as it is if the source is
    /// already encrypted: `audit` reports under which key).
    Encrypt { source: PathBuf, key: KeyString },
    /// The phone's plaintext bootstrap file.
    Bootstrap { key: KeyString },
}

impl Output {
    fn mode(&self) -> u32 {
        match self.content {
            Content::Bootstrap { .. } => SECRET_MODE,
            _ => PUBLIC_MODE,
        }
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

    let mut phones = PhoneList::new();
    phones.add_tree(&tree);
    if let Some(path) = request.phones_file {
        phones.read_phones_file(path)?;
    }
    phones.add_inventory(writer.vault().records().map(|r| r.mac()));
    let macs: Vec<Mac> = phones.iter().map(|p| p.mac).collect();
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
    if !need_keys.is_empty() {
        writer.add_keys(&data_key, &need_keys, InitialState::Active)?;
    }
    let vault = writer.vault();
    let keys: HashMap<(Mac, u32), KeyString> = vault
        .open_live_keys(&data_key)?
        .into_iter()
        .map(|k| ((k.mac, k.generation), k.key))
        .collect();

    let outputs = plan_outputs(&tree, vault, &macs, &keys, &request.key_file)?;
    for output in &outputs {
        match output.content {
            Content::Copy { .. } => summary.copied += 1,
            Content::Encrypt { .. } => summary.encrypted += 1,
            Content::Bootstrap { .. } => summary.key_files += 1,
        }
    }
    write_tree(session, request.out, &outputs, &mut summary)?;
    Ok(summary)
}

/// Refuses trees that would brick phones; collects the warnings that would not.
fn check_plans(
    tree: &SourceTree,
    macs: &[Mac],
    key_file: &KeyFilePattern,
    summary: &mut PublishSummary,
) -> Result<(), Failure> {
    for mac in macs {
        if let Some(path) = key_file.reference(mac).tree_path() {
            if tree.contains(path) {
                return Err(Failure::input(format!(
                    "{}: the source tree has a key file for {mac}; polyseal writes key files itself",
                    tree.path_of(path).display()
                ))
                .with_hint("remove it from the source tree"));
            }
        }
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
fn plan_outputs(
    tree: &SourceTree,
    vault: &Vault,
    macs: &[Mac],
    keys: &HashMap<(Mac, u32), KeyString>,
    key_file: &KeyFilePattern,
) -> Result<Vec<Output>, Failure> {
    let key_of = |mac: &Mac, generation: u32| {
        keys.get(&(*mac, generation)).cloned().ok_or_else(|| {
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
    let owners: BTreeMap<&Path, Mac> = tree
        .phones()
        .into_iter()
        .flat_map(|(mac, files)| files.into_iter().map(move |f| (f, mac)))
        .collect();

    let mut outputs = Vec::new();
    for relative in tree.files() {
        let source = tree.path_of(relative);
        let content = match (tree.exposure(relative, true), owners.get(relative)) {
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
        outputs.push(Output {
            relative: relative.to_owned(),
            content,
        });
    }
    for (mac, step) in &steps {
        let Some(relative) = key_file.reference(mac).tree_path().map(Path::to_owned) else {
            continue;
        };
        // The key file always carries the generation the phone is served (docs/ROTATION.md).
        let Some(generation) = step.files_generation() else {
            continue;
        };
        let content = Content::Bootstrap {
            key: key_of(mac, generation)?,
        };
        outputs.push(Output { relative, content });
    }
    Ok(outputs)
}

/// Reads a source file (configuration files are small; the cap keeps a stray huge file out).
fn read_source(path: &Path) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let bytes = fs::read(path).map_err(|e| Failure::io(path, "read", &e))?;
    if bytes.len() > MAX_FILE_SIZE {
        return Err(Failure::input(format!(
            "{}: larger than the {MAX_FILE_SIZE}-byte limit",
            path.display()
        )));
    }
    Ok(Zeroizing::new(bytes))
}

/// True if `existing` (a file of the current published tree) already is what `output` would
/// write: same bytes for copies and bootstrap files, same KeyDesc and Digest for encrypted
/// files (their IVs differ on every run, so bytes never match).
fn up_to_date(existing: &Path, output: &Output) -> Result<bool, Failure> {
    let Ok(current) = fs::read(existing) else {
        return Ok(false);
    };
    let current = Zeroizing::new(current);
    if !has_mode(existing, output.mode()) {
        return Ok(false);
    }
    Ok(match &output.content {
        Content::Copy { source } => *read_source(source)? == *current,
        Content::Encrypt { source, key } => {
            let plaintext = read_source(source)?;
            if polyseal_crypto::is_encrypted(&plaintext) {
                *plaintext == *current
            } else {
                same_seal(&current, key, &plaintext)
            }
        }
        Content::Bootstrap { key } => bool::from(bootstrap_file(key).ct_eq(&current)),
    })
}

/// True if `file` is `plaintext` sealed under `key`: its header names the key's KeyDesc and
/// carries the plaintext's digest.
fn same_seal(file: &[u8], key: &KeyString, plaintext: &[u8]) -> bool {
    Header::parse(file)
        .is_ok_and(|h| h.key_desc() == Some(key.key_desc()) && h.matches_plaintext(plaintext))
}

#[cfg(unix)]
fn has_mode(path: &Path, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o777 == mode)
}

#[cfg(not(unix))]
fn has_mode(_path: &Path, _mode: u32) -> bool {
    true
}

/// The bytes `output` writes, and what reading a per-phone file's plaintext found: weak SIP
/// passwords (the header digest is unkeyed, see docs/FORMAT.md). Malformed XML is an error:
/// a phone could not read the file once decrypted.
fn render(output: &Output) -> Result<(Zeroizing<Vec<u8>>, Vec<String>), Failure> {
    Ok(match &output.content {
        Content::Copy { source } => (read_source(source)?, Vec::new()),
        Content::Encrypt { source, key } => {
            let plaintext = read_source(source)?;
            if polyseal_crypto::is_encrypted(&plaintext) {
                let note = format!(
                    "{}: already encrypted in the source tree; copied as it is",
                    source.display()
                );
                return Ok((plaintext, vec![note]));
            }
            let findings =
                polyseal_provision::scan(source, &plaintext, Exposure::PerPhoneEncrypted)?;
            let notes = findings
                .iter()
                .map(|f| format!("{f} ({})", f.hint()))
                .collect();
            let sealed = polyseal_crypto::encrypt(&plaintext, key)
                .map_err(|e| Failure::crypto(source, &e))?;
            (Zeroizing::new(sealed), notes)
        }
        Content::Bootstrap { key } => (bootstrap_file(key), Vec::new()),
    })
}

/// Writes the published tree: nothing if it is already up to date; otherwise a staging
/// directory (unchanged files hard-linked from the current tree) swapped in for `out`.
fn write_tree(
    session: &Session,
    out: &Path,
    outputs: &[Output],
    summary: &mut PublishSummary,
) -> Result<(), Failure> {
    let progress = progress_bar(session, outputs.len() as u64);
    let fresh: Vec<bool> = outputs
        .par_iter()
        .map(|o| {
            let fresh = up_to_date(&out.join(&o.relative), o);
            progress.inc(1);
            fresh
        })
        .collect::<Result<_, _>>()?;
    progress.finish_and_clear();
    summary.reused = fresh.iter().filter(|f| **f).count();
    let wanted: BTreeSet<&Path> = outputs.iter().map(|o| o.relative.as_path()).collect();
    summary.removed = files_under(out)?
        .iter()
        .filter_map(|f| f.strip_prefix(out).ok())
        .filter(|f| !wanted.contains(f))
        .count();
    summary.changed = summary.reused < outputs.len() || summary.removed > 0 || !out.is_dir();
    if !summary.changed {
        return Ok(());
    }

    let staging = sibling(out, "staging")?;
    let result = stage(
        session,
        out,
        &staging,
        outputs,
        &fresh,
        &mut summary.warnings,
    )
    .and_then(|()| swap(out, &staging));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Fills `staging` with every output.
fn stage(
    session: &Session,
    out: &Path,
    staging: &Path,
    outputs: &[Output],
    fresh: &[bool],
    warnings: &mut Vec<String>,
) -> Result<(), Failure> {
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
    let notes: Vec<Vec<String>> = outputs
        .par_iter()
        .zip(fresh.par_iter())
        .map(|(output, &fresh)| -> Result<Vec<String>, Failure> {
            let target = staging.join(&output.relative);
            progress.inc(1);
            if fresh && fs::hard_link(out.join(&output.relative), &target).is_ok() {
                return Ok(Vec::new());
            }
            let (bytes, notes) = render(output)?;
            write_file(&target, &bytes, output.mode())?;
            Ok(notes)
        })
        .collect::<Result<_, _>>()?;
    progress.finish_and_clear();
    warnings.extend(notes.into_iter().flatten());
    sync_tree(staging)
}

/// Creates `path` with `mode` and writes `bytes`. Not synced one by one: [`sync_tree`] makes
/// the whole staging directory durable with one call before the swap.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Failure> {
    use std::io::Write;
    create_new(path, mode)?
        .write_all(bytes)
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
