//! The steps of a key rotation (docs/ROTATION.md): which phones each step applies to, what
//! it changes in the vault, and what phones' uploads prove. [`RotationStep`] reads where each
//! phone stands; the binary asks for the identity, commits the changes and republishes.

use std::fs;
use std::path::{Path, PathBuf};

use polyseal_crypto::{MAX_FILE_SIZE, Mac, decrypt_with as open, encrypt_with as seal};
use polyseal_vault::{Confirmation, DataKey, KeyState, RotationStep, StateChange, Vault};

use crate::Error;
use crate::uploads::{Held, read_uploads};
use crate::write::{PUBLIC_MODE, read_capped, write_atomic};

/// Which phones a step applies to.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// Every phone of the vault at the step the command acts on.
    All,
    /// These phones, each of which must be at that step.
    Named(&'a [Mac]),
}

/// The phones `rotate start` moves to a new key: every steady phone for [`Targets::All`];
/// refuses a named phone with no key or already rotating.
pub fn start_targets(vault: &Vault, targets: Targets<'_>) -> Result<Vec<Mac>, Error> {
    let macs = select(vault, targets, |s| matches!(s, RotationStep::Steady { .. }));
    for mac in &macs {
        match RotationStep::of(vault.record(mac)) {
            RotationStep::Steady { .. } => {}
            RotationStep::NoKey => return Err(Error::NothingToRotate { mac: *mac }),
            step => return Err(Error::RotationUnderWay { mac: *mac, step }),
        }
    }
    Ok(macs)
}

/// The state changes of `rotate finish`: for each confirmed phone the old generation is
/// deactivated and the new one activated; refuses a named phone that is not confirmed.
pub fn finish_changes(vault: &Vault, targets: Targets<'_>) -> Result<Vec<StateChange>, Error> {
    let macs = select(vault, targets, |s| {
        matches!(s, RotationStep::Confirmed { .. })
    });
    let mut changes = Vec::new();
    for mac in &macs {
        match RotationStep::of(vault.record(mac)) {
            RotationStep::Confirmed { active, next } => changes.extend([
                StateChange {
                    mac: *mac,
                    generation: active,
                    to: KeyState::Deactivated,
                },
                StateChange {
                    mac: *mac,
                    generation: next,
                    to: KeyState::Active,
                },
            ]),
            step => return Err(Error::CannotFinish { mac: *mac, step }),
        }
    }
    Ok(changes)
}

/// The phones named, or for [`Targets::All`] every phone whose step `wanted` accepts.
fn select(vault: &Vault, targets: Targets<'_>, wanted: fn(RotationStep) -> bool) -> Vec<Mac> {
    match targets {
        Targets::Named(macs) => macs.to_vec(),
        Targets::All => vault
            .records()
            .filter(|r| wanted(RotationStep::of(Some(r))))
            .map(|r| r.mac())
            .collect(),
    }
}

/// A line about evidence that does not confirm a phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Nothing wrong, nothing proved yet (shown with `-v`).
    Detail(String),
    /// Something the operator should look at.
    Warning(String),
}

/// The confirmations an uploads directory proves: a rotating phone whose upload is sealed
/// under its new generation holds that key. `named`, when given, limits them to those phones.
fn confirm_from_uploads(
    vault: &Vault,
    data_key: &DataKey,
    dir: &Path,
    named: Option<&[Mac]>,
    received: Option<&std::collections::BTreeSet<(Mac, String)>>,
    note: &mut dyn FnMut(Note),
) -> Result<Vec<Confirmation>, Error> {
    let mut confirmations: Vec<Confirmation> = Vec::new();
    for evidence in read_uploads(dir)? {
        if named.is_some_and(|n| !n.contains(&evidence.mac)) {
            continue;
        }
        let path = format!("/{}", evidence.file.display());
        if received.is_some_and(|r| !r.contains(&(evidence.mac, path.clone()))) {
            note(Note::Warning(format!(
                "{}: not in the ledger as uploaded over {}'s own certificate: not counted as \
                 evidence",
                evidence.file.display(),
                evidence.mac
            )));
            continue;
        }
        let step = RotationStep::of(vault.record(&evidence.mac));
        match (&evidence.holds, step) {
            (Held::Desc(desc), RotationStep::Started { next, .. }) => {
                let shown = vault
                    .find_key_desc(desc)
                    .filter(|(r, _)| r.mac() == evidence.mac);
                match shown {
                    Some((_, g)) if g.number() == next => {
                        // A header proves nothing: anyone can write one. Evidence is a file
                        // that decrypts under the key it names, digest and all (issue 13).
                        let path = dir.join(&evidence.file);
                        if let Err(reason) =
                            decrypts_under(vault, data_key, &evidence.mac, next, &path)
                        {
                            note(Note::Warning(format!(
                                "{}: {path}: names {desc} but {reason}: not counted as evidence",
                                evidence.mac,
                                path = evidence.file.display()
                            )));
                            continue;
                        }
                        if !confirmations.iter().any(|c| c.mac == evidence.mac) {
                            confirmations.push(Confirmation {
                                mac: evidence.mac,
                                generation: next,
                                evidence: format!("upload {}", evidence.file.display()),
                            });
                        }
                    }
                    Some((_, g)) => note(Note::Detail(format!(
                        "{}: {} shows generation {} (not yet g{next})",
                        evidence.mac,
                        evidence.file.display(),
                        g.number()
                    ))),
                    None => note(Note::Warning(format!(
                        "{}: encrypted under {desc}, which is not one of this phone's keys",
                        evidence.file.display()
                    ))),
                }
            }
            (Held::Plaintext, RotationStep::Started { .. } | RotationStep::Confirmed { .. }) => {
                note(Note::Warning(format!(
                    "{}: uploaded in plaintext: the phone holds no key (factory reset?); see docs/ROTATION.md",
                    evidence.file.display()
                )))
            }
            _ => {}
        }
    }
    Ok(confirmations)
}

/// `Ok` if the file at `path` decrypts under `mac`'s generation `generation`, padding and
/// digest checked; the reason otherwise, in words (one for a wrong key or an altered file).
fn decrypts_under(
    vault: &Vault,
    data_key: &DataKey,
    mac: &Mac,
    generation: u32,
    path: &Path,
) -> Result<(), String> {
    let key = vault
        .open_key(data_key, mac, Some(generation))
        .map_err(|e| e.to_string())?;
    let sealed = read_capped(path, MAX_FILE_SIZE).map_err(|e| e.to_string())?;
    open(&sealed, &key.key, &vault.layout())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The confirmations the operator gives for `macs`: each must be rotating.
fn confirm_named(
    vault: &Vault,
    macs: &[Mac],
    note: &mut dyn FnMut(Note),
) -> Result<Vec<Confirmation>, Error> {
    let mut confirmations = Vec::new();
    for mac in macs {
        match RotationStep::of(vault.record(mac)) {
            RotationStep::Started { next, .. } => confirmations.push(Confirmation {
                mac: *mac,
                generation: next,
                evidence: "operator".to_owned(),
            }),
            RotationStep::Confirmed { .. } => {
                note(Note::Detail(format!("{mac}: already confirmed")));
            }
            step => return Err(Error::NothingToConfirm { mac: *mac, step }),
        }
    }
    Ok(confirmations)
}

/// Phones still waiting for evidence that they hold their new key.
pub fn waiting(vault: &Vault) -> usize {
    vault
        .records()
        .filter(|r| matches!(RotationStep::of(Some(r)), RotationStep::Started { .. }))
        .count()
}

/// Refuses to read the phones' uploads while a rollout has no layout confirmed: the phones
/// encrypt them in their firmware's layout, which the vault's may not be, so every upload
/// would look sealed under a wrong key (and be rewritten in a layout the phone cannot read).
pub fn check_uploads_readable(vault: &Vault) -> Result<(), Error> {
    match vault.rollout() {
        Some(rollout) if !rollout.is_complete() && rollout.layout() != Some(vault.layout()) => {
            Err(Error::UploadsLayoutUnconfirmed {
                layout: vault.layout(),
            })
        }
        _ => Ok(()),
    }
}

/// Re-encrypts, under the new generation, every override and directory file that a rotating
/// phone uploaded under its old one: the phone reads them back at boot, and from `start` on it
/// holds only the new key. On a next-boot fleet a phone that has not yet proved it holds the
/// new key reads them back under the old key in one boot and the new one in the next, so they
/// are decrypted instead, as its per-phone files are served
/// ([`RotationStep::serves_plaintext`]); the file keeps its mode. Idempotent: files already as
/// they should be are left alone, so `rotate start --all --uploads DIR` can be run again after
/// an interruption. Returns the files it rewrote.
pub fn reseal_uploads(
    vault: &Vault,
    data_key: &DataKey,
    dir: &Path,
    note: &mut dyn FnMut(Note),
) -> Result<Vec<PathBuf>, Error> {
    check_uploads_readable(vault)?;
    let mut resealed = Vec::new();
    for upload in read_uploads(dir)? {
        let Held::Desc(desc) = &upload.holds else {
            continue;
        };
        let step = RotationStep::of(vault.record(&upload.mac));
        let (RotationStep::Started { active, next } | RotationStep::Confirmed { active, next }) =
            step
        else {
            continue;
        };
        let old = vault.open_key(data_key, &upload.mac, Some(active))?;
        if desc != old.key.key_desc() {
            continue;
        }
        let path = dir.join(&upload.file);
        let sealed = read_capped(&path, MAX_FILE_SIZE)?;
        // One bad upload does not hold up the fleet: it is said, left as it is, and the others
        // are re-sealed (issue 13).
        let plaintext = match open(&sealed, &old.key, &vault.layout()) {
            Ok(plaintext) => plaintext,
            Err(error) => {
                note(Note::Warning(format!(
                    "{}: {}: names {desc} but {error}: left as it is",
                    upload.mac,
                    path.display()
                )));
                continue;
            }
        };
        let mode = file_mode(&path);
        if step.serves_plaintext(vault.key_timing()) {
            write_atomic(&path, &plaintext, mode)?;
        } else {
            let new = vault.open_key(data_key, &upload.mac, Some(next))?;
            let resealed_file =
                seal(&plaintext, &new.key, &vault.layout()).map_err(|e| Error::crypto(&path, e))?;
            write_atomic(&path, &resealed_file, mode)?;
        }
        resealed.push(path);
    }
    Ok(resealed)
}

/// The permission bits of `path`, to keep them when the file is replaced.
#[cfg(unix)]
fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).map_or(PUBLIC_MODE, |m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> u32 {
    PUBLIC_MODE
}

/// What `rotate confirm` commits: the evidence of `uploads` when given (for the `named`
/// phones only, if some are named), otherwise the operator's word for the `named` phones. An
/// upload is evidence only when it decrypts under the generation its header names, so
/// `uploads` comes with the vault's data key.
/// What proves nothing is told to `note` as it is found, so it is said even when a later
/// phone is refused.
pub fn confirm(
    vault: &Vault,
    named: Option<&[Mac]>,
    uploads: Option<(&Path, &DataKey)>,
    note: &mut dyn FnMut(Note),
) -> Result<Vec<Confirmation>, Error> {
    confirm_received(vault, named, uploads, None, note)
}

/// [`confirm`], counting only the uploads `received` lists: the phones' uploads a server
/// recorded as received over that phone's own client certificate (the ledger of `polyseal
/// serve`, [`received_uploads`]), so that a file put into the uploads directory by anyone
/// else proves nothing.
pub fn confirm_received(
    vault: &Vault,
    named: Option<&[Mac]>,
    uploads: Option<(&Path, &DataKey)>,
    received: Option<&std::collections::BTreeSet<(Mac, String)>>,
    note: &mut dyn FnMut(Note),
) -> Result<Vec<Confirmation>, Error> {
    match (uploads, named) {
        (Some((dir, data_key)), named) => {
            confirm_from_uploads(vault, data_key, dir, named, received, note)
        }
        (None, Some(macs)) => confirm_named(vault, macs, note),
        (None, None) => Err(Error::NothingNamedToConfirm),
    }
}

/// The uploads a ledger recorded as received (a `PUT` answered 2xx) over the uploading
/// phone's own client certificate: `(phone, path)`, the path as served (`/overrides/…`).
pub fn received_uploads(
    entries: &[crate::ledger::Entry],
) -> std::collections::BTreeSet<(Mac, String)> {
    entries
        .iter()
        .filter(|e| e.method == "PUT" && (200..300).contains(&e.status))
        .filter_map(|e| Some((e.mac.as_deref()?.parse().ok()?, e.path.clone())))
        .collect()
}
