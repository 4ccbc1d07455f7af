//! The master files and the fetch plans they give every phone.

use std::collections::BTreeSet;
use std::path::Path;

use polyseal_crypto::Mac;
use polyseal_provision::{DEFAULT_MASTER, FileReference, PHONE_MAC_ADDRESS, PlanIssue};

use super::Audit;
use super::describe::describe_key_desc;
use super::report::{Code, Finding};
use crate::Error;

impl<'a> Audit<'a> {
    /// The master-file problems of the served phones' fetch plans, each said once
    /// ([`plan_issues`] makes only as many plans as that takes).
    pub(super) fn masters(&self) -> Result<Vec<Finding>, Error> {
        let phones: Vec<Mac> = self.served.iter().copied().collect();
        let mut findings = BTreeSet::new();
        for (mac, issue) in self.tree.plan_issues(&phones)? {
            // A phone without any master is reported once, below, as the missing master.
            if !matches!(issue, PlanIssue::NoMaster) {
                findings.extend(self.plan_issue(&mac, &issue));
            }
        }
        for mac in phones
            .iter()
            .filter(|m| self.tree.has_phone_file_not_master(m))
        {
            findings.insert(
                Finding::new(
                    Code::PhoneFileNotMaster,
                    "phones request <mac>.cfg first, as their master file, but this one is a \
                     configuration file",
                    "rename it (for example to <mac>-sip.cfg) and list it in CONFIG_FILES",
                )
                .mac(*mac)
                .file(self.tree.path_of(Path::new(&format!("{mac}.cfg")))),
            );
        }
        let without_own_master = phones.iter().any(|m| self.tree.phone_master(m).is_none());
        if self.tree.default_master().is_none() && (phones.is_empty() || without_own_master) {
            findings.insert(
                Finding::new(
                    Code::MasterMissing,
                    format!(
                        "the tree has no {DEFAULT_MASTER}: phones without a <mac>.cfg master of \
                         their own have nothing to boot from"
                    ),
                    format!("add the master file {DEFAULT_MASTER} (never encrypted)"),
                )
                .file(self.tree.path_of(Path::new(DEFAULT_MASTER))),
            );
        }
        Ok(findings.into_iter().collect())
    }

    /// The finding for one issue of `mac`'s plan, worded for every phone of its master.
    pub(super) fn plan_issue(&self, mac: &Mac, issue: &PlanIssue) -> Option<Finding> {
        let master = || self.tree.master_for(mac).map(|m| m.path().to_owned());
        let own_master = self.tree.phone_master(mac).map(|_| *mac);
        // The entry as the master spells it, not as this phone requests it.
        let unexpanded = |reference: &FileReference| {
            reference
                .to_string()
                .replace(&mac.to_string(), PHONE_MAC_ADDRESS)
        };
        Some(match issue {
            PlanIssue::MasterEncrypted { path, key_desc } => Finding::new(
                Code::MasterEncrypted,
                format!(
                    "the master file is encrypted ({}): phones cannot read an encrypted master \
                     and reboot again and again",
                    describe_key_desc(key_desc.as_ref())
                ),
                "replace it with the plaintext master file; a master is never encrypted",
            )
            .mac(own_master)
            .file(path),
            PlanIssue::KeyFileNotListed {
                master,
                attribute,
                position,
                ..
            } => {
                let pattern = self.tree.key_file_pattern().as_str();
                Finding::new(
                    Code::KeyFileNotListed,
                    format!(
                        "{attribute} at {position} does not list the key file {pattern}: phones \
                         never fetch their key and cannot read their encrypted files"
                    ),
                    format!("add {pattern} to {attribute}, first in the list"),
                )
                .mac(own_master)
                .file(master)
            }
            PlanIssue::KeyFileListedLate {
                master,
                attribute,
                position,
                key_file,
                first,
            } => Finding::new(
                Code::KeyFileNotListed,
                format!(
                    "{attribute} at {position} lists {} before the key file {}: a phone without \
                     its key fetches it first, cannot decrypt it and reboots",
                    first.replace(&mac.to_string(), PHONE_MAC_ADDRESS),
                    key_file.replace(&mac.to_string(), PHONE_MAC_ADDRESS)
                ),
                format!(
                    "move {} first in {attribute}",
                    self.tree.key_file_pattern().as_str()
                ),
            )
            .mac(own_master)
            .file(master),
            PlanIssue::OtherPhonesFile {
                attribute,
                reference,
                owner,
            } => Finding::new(
                Code::ListedFileOfOtherPhone,
                format!(
                    "{attribute} lists {}, named after phone {owner}: every phone of this master \
                     fetches it, and only {owner} can read it once encrypted",
                    // Written out in 000000000000.cfg, the phone's own MAC is not expanded.
                    if owner == mac {
                        reference.to_string()
                    } else {
                        unexpanded(reference)
                    }
                ),
                format!(
                    "write [PHONE_MAC_ADDRESS] instead of the MAC, or give {owner} a master of \
                     its own"
                ),
            )
            .mac(*owner)
            .file(master()?),
            PlanIssue::NotInTree {
                attribute,
                reference,
            } => Finding::new(
                Code::ListedFileNotInTree,
                format!(
                    "{attribute} lists {}, which is not in the tree: polyseal can neither check \
                     nor encrypt it",
                    unexpanded(reference)
                ),
                "make sure the server it comes from protects any secret in it",
            )
            .file(master()?),
            // `NoMaster` and `PhoneFileNotMaster` are reported by `masters` for every phone;
            // issues added to the library later get a code of their own before they are.
            _ => return None,
        })
    }
}
