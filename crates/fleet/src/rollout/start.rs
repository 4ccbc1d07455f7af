//! `rollout start`: which phones are canaries, and the check that the phones will upload
//! encrypted, before anything changes.

use polyseal_crypto::Mac;
use polyseal_provision::SourceTree;
use std::path::Path;

use polyseal_vault::{DataKey, Rollout, Timestamp, Vault};
use zeroize::Zeroizing;

use crate::Error;
use crate::publish::tree_identity;

/// The parameter that makes a phone holding a key upload its override file encrypted: the
/// evidence `learn` reads.
pub const ENCRYPTED_UPLOADS: &str = "sec.encryption.upload.overrides";

/// Canaries chosen when none are named: one is evidence enough of a layout, and a second
/// model or firmware in the fleet is worth a canary of its own, named with `--canary`.
pub const DEFAULT_CANARY_COUNT: usize = 1;

/// Which phones go first.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Canaries {
    /// These.
    Named(Vec<Mac>),
    /// The first N of the fleet in MAC order.
    Count(usize),
}

/// Plans a rollout of `fleet` (the phones publish would serve from `tree`) at `now`, refused
/// while one is under way (a wave advanced and not all: one with no wave yet is replaced, so
/// canaries can be chosen again, keeping the layout confirmed for it: the evidence is the
/// fleet's firmware, whichever phone showed it), when a named canary is not of the fleet, or
/// when a phone would not upload encrypted (`UploadsNotEncrypted`: no file it reads sets
/// [`ENCRYPTED_UPLOADS`] to `1`; a file already encrypted in the tree is read with `data_key`'s
/// keys). A finished rollout is replaced: that is how a fleet moves onto a new layout.
pub fn start(
    vault: &Vault,
    data_key: &DataKey,
    tree: &SourceTree,
    out: &Path,
    fleet: &[Mac],
    canaries: Canaries,
    now: Timestamp,
) -> Result<Rollout, Error> {
    let unfinished = vault.rollout().filter(|r| !r.is_complete());
    if let Some(rollout) = unfinished.filter(|r| !r.waves().is_empty()) {
        return Err(Error::RolloutUnderWay {
            waves: rollout.waves().len(),
        });
    }
    let canaries = match canaries {
        Canaries::Named(macs) => {
            if let Some(mac) = macs.iter().find(|m| !fleet.contains(m)) {
                return Err(Error::CanaryNotInFleet { mac: *mac });
            }
            let mut unique = Vec::new();
            for mac in macs {
                if !unique.contains(&mac) {
                    unique.push(mac);
                }
            }
            unique
        }
        Canaries::Count(count) => {
            let mut sorted = fleet.to_vec();
            sorted.sort();
            if count > sorted.len() {
                return Err(Error::TooManyCanaries {
                    count,
                    fleet: sorted.len(),
                });
            }
            sorted.into_iter().take(count.max(1)).collect()
        }
    };
    if canaries.is_empty() {
        return Err(Error::NoPhoneToRollOut);
    }
    check_encrypted_uploads(vault, data_key, tree, fleet)?;
    let planned = Rollout::new(now, canaries).with_tree(&tree_identity(out)?);
    Ok(match unfinished {
        Some(previous) => planned.with_evidence_of(previous, vault.layout()),
        None => planned,
    })
}

/// Refuses the first phone of `fleet` whose configuration files do not set
/// [`ENCRYPTED_UPLOADS`] to `1` (or set it to something else first).
fn check_encrypted_uploads(
    vault: &Vault,
    data_key: &DataKey,
    tree: &SourceTree,
    fleet: &[Mac],
) -> Result<(), Error> {
    // A per-phone file already encrypted in the source is read as its phone will read it; one
    // its key does not open is refused by the publish check (`check_encrypted_sources`).
    let mut open = |_: &std::path::Path, bytes: &[u8]| -> Option<Zeroizing<Vec<u8>>> {
        let desc = polyseal_crypto::inspect(bytes).ok()?.key_desc()?.clone();
        let key = vault.open_key_by_desc(data_key, &desc).ok()?;
        polyseal_crypto::decrypt_with(bytes, &key.key, &vault.layout()).ok()
    };
    for mac in fleet {
        for plan in tree.fetch_plans(mac)? {
            let setting = tree.applied_setting(&plan, ENCRYPTED_UPLOADS, &mut open)?;
            if setting.as_ref().is_none_or(|s| s.value != "1") {
                let shared = plan
                    .files
                    .iter()
                    .find(|f| f.role == polyseal_provision::Role::SharedConfig)
                    .and_then(|f| f.path())
                    .map(|p| tree.path_of(p));
                return Err(Error::UploadsNotEncrypted {
                    mac: *mac,
                    set_in: setting.map(|s| (tree.path_of(&s.file), s.position, s.value)),
                    shared,
                });
            }
        }
    }
    Ok(())
}
