//! `--dry-run`: what a publish would do, phone by phone, without doing it.

use std::path::PathBuf;

use polyseal_crypto::Mac;
use polyseal_provision::PlannedFile;
use polyseal_vault::{RotationStep, Vault};

use super::CheckedPublish;

/// One phone of a dry run.
#[derive(Debug)]
#[non_exhaustive]
pub struct PlannedPhone {
    /// The phone.
    pub mac: Mac,
    /// Where it stands now.
    pub step: RotationStep,
    /// True if publish would make it a key (and bootstrap file): it has no active one.
    pub new_key: bool,
    /// The generation that key would be (1 for a new phone), when it would make one.
    pub new_generation: Option<u32>,
    /// What it would fetch, in order (empty if its plan cannot be made).
    pub files: Vec<PlannedFile>,
}

impl CheckedPublish {
    /// What would be done for every phone, in MAC order.
    pub fn dry_run(&self, vault: &Vault) -> Vec<PlannedPhone> {
        // A set: a fleet of 100,000 phones would compare every MAC with every other.
        let need_keys: std::collections::HashSet<Mac> =
            super::need_keys(vault, &self.macs).into_iter().collect();
        self.macs
            .iter()
            .map(|mac| PlannedPhone {
                mac: *mac,
                step: RotationStep::of(vault.record(mac)),
                new_key: need_keys.contains(mac),
                new_generation: need_keys
                    .contains(mac)
                    .then(|| vault.record(mac).map_or(Some(1), |r| r.next_number()))
                    .flatten(),
                files: self
                    .tree
                    .fetch_plan(mac, None)
                    .map(|plan| plan.files)
                    .unwrap_or_default(),
            })
            .collect()
    }
}

/// What a publish would do to the files under `--out`, each list sorted.
#[derive(Debug)]
#[non_exhaustive]
pub struct OutChanges<'a> {
    /// Paths the new tree adds.
    pub added: &'a [PathBuf],
    /// Files polyseal wrote that the new tree no longer has: removed.
    pub removed: &'a [PathBuf],
    /// Files polyseal did not write: kept at their paths, as they are.
    pub kept: &'a [PathBuf],
    /// Files polyseal did not write at paths the new tree writes (`adopt_out`): replaced.
    pub replaced: &'a [PathBuf],
    /// Files polyseal wrote that the new tree has too: rewritten only if they changed.
    pub compared: usize,
}

impl CheckedPublish {
    /// What the publish would add, remove, keep and replace under `--out`.
    pub fn out_changes(&self) -> OutChanges<'_> {
        OutChanges {
            added: &self.out_files.added,
            removed: &self.out_files.removed,
            kept: &self.out_files.kept,
            replaced: &self.out_files.adopted,
            compared: self.out_files.ours,
        }
    }
}
