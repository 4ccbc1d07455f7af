//! Phones and their keys: every served phone has a key, every live key a phone; makers' OUIs.

use std::collections::HashMap;

use polyseal_crypto::{KeyDesc, KeyString, Mac};
use polyseal_vault::{DataKey, RotationStep, Vault};
use rayon::prelude::*;

use super::Audit;
use super::describe::describe_generations;
use super::report::{Code, Finding};

impl<'a> Audit<'a> {
    pub(super) fn phones_and_keys(&self) -> Vec<Finding> {
        let mut findings = Vec::new();
        for mac in &self.served {
            if self.step(mac) != RotationStep::NoKey {
                continue;
            }
            // Where the phone was learnt from: its first file in the tree, or the phones list.
            let (file, known_from) = match self.tree_phones.get(mac).and_then(|f| f.first()) {
                Some(file) => (Some(self.tree.path_of(file)), "has files in the tree"),
                None => (
                    self.listed.as_ref().map(|(p, _)| p.to_path_buf()),
                    "is in the phones list",
                ),
            };
            let generations = self
                .vault
                .record(mac)
                .map(describe_generations)
                .map_or_else(String::new, |g| format!(" (its keys: {g})"));
            let mut finding = Finding::new(
                Code::PhoneWithoutKey,
                format!(
                    "the phone {known_from}, but the vault has no active key for it{generations}: \
                     it cannot read encrypted files"
                ),
                format!(
                    "{} (it makes the key and the bootstrap file), or polyseal keys add {mac}",
                    self.republish()
                ),
            )
            .mac(*mac);
            finding.file = file;
            findings.push(finding);
        }
        for record in self.vault.records() {
            let live = record.generations().iter().any(|g| g.state().is_live());
            if live && !self.served.contains(&record.mac()) {
                let mac = record.mac();
                let listed = if self.listed.is_some() {
                    "and not in the phones list"
                } else {
                    "(no phones list given with --phones)"
                };
                findings.push(
                    Finding::new(
                        Code::KeyWithoutPhone,
                        format!(
                            "the vault holds live keys ({}) for a phone with no files in the \
                             tree {listed}",
                            describe_generations(record)
                        ),
                        format!(
                            "if the phone is retired, polyseal keys state {mac} deactivated (then \
                             destroyed once no file needs it); otherwise publish its files or \
                             list it with --phones"
                        ),
                    )
                    .mac(mac),
                );
            }
        }
        findings
    }

    /// Served phones with a key but no key file in the tree.
    pub(super) fn missing_key_files(&self) -> Vec<Finding> {
        let pattern = self.tree.key_file_pattern();
        self.served
            .iter()
            .copied()
            .filter(|mac| self.step(mac) != RotationStep::NoKey)
            .filter_map(|mac| {
                let reference = pattern.reference(&mac);
                let relative = reference.tree_path()?;
                // A key file named after its phone is one of the phone's files; only other
                // names need the tree's slower lookup.
                let present =
                    self.owners.contains_key(relative.as_os_str()) || self.tree.contains(relative);
                (!present).then(|| {
                    Finding::new(
                        Code::KeyFileMissing,
                        "the phone's key file is missing: a phone that does not hold its key yet \
                         (new or factory-reset) cannot read its encrypted files and reboots",
                        self.republish(),
                    )
                    .mac(mac)
                    .file(self.tree.path_of(relative))
                })
            })
            .collect()
    }
}

/// Every live key of the vault by KeyDesc, and a finding for each that does not open.
pub(super) fn open_keys(
    vault: &Vault,
    data_key: &DataKey,
) -> (HashMap<KeyDesc, KeyString>, Vec<Finding>) {
    let generations: Vec<(Mac, u32)> = vault
        .records()
        .flat_map(|r| {
            r.generations()
                .iter()
                .filter(|g| g.state().is_live())
                .map(move |g| (r.mac(), g.number()))
        })
        .collect();
    let opened: Vec<_> = generations
        .par_iter()
        .map(|(mac, number)| (mac, number, vault.open_key(data_key, mac, Some(*number))))
        .collect();
    let mut ring = HashMap::new();
    let mut broken = Vec::new();
    for (mac, number, result) in opened {
        match result {
            Ok(opened) => {
                ring.insert(opened.key.key_desc().clone(), opened.key);
            }
            Err(error) => broken.push(
                Finding::new(
                    Code::VaultKeyBroken,
                    format!("generation {number} does not open: {error}"),
                    "restore the vault from a backup; if the key is lost, rotate the phone \
                     (polyseal rotate start) after re-bootstrapping it",
                )
                .mac(*mac),
            ),
        }
    }
    (ring, broken)
}
