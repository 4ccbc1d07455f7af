//! The fetch-plan issues of a fleet, from as few plans as give all of them.
//!
//! A phone's plan depends on the phone only through `[PHONE_MAC_ADDRESS]`, except where a
//! `CONFIG_FILES` entry spells a MAC out. So plans are made for two phones of each master (an
//! entry naming one of them is another phone's file in the other's plan) and for every phone
//! an entry names, rather than for every phone: 100,000 plans would read 200,000 files to say
//! the same thing 100,000 times. `publish` and `audit` both read the issues from here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use polyseal_crypto::Mac;

use crate::{Error, PlanIssue, SourceTree};

impl SourceTree {
    /// Every distinct plan issue of `phones` (in MAC order), each with a phone whose plan has
    /// it. A phone with no master at all gets [`PlanIssue::NoMaster`].
    pub fn plan_issues(&self, phones: &[Mac]) -> Result<Vec<(Mac, PlanIssue)>, Error> {
        let mut by_master: BTreeMap<&Path, Vec<Mac>> = BTreeMap::new();
        let mut issues = Vec::new();
        for mac in phones {
            match self.master_for(mac) {
                Some(master) => by_master.entry(master.path()).or_default().push(*mac),
                None => issues.push((*mac, PlanIssue::NoMaster)),
            }
        }
        for group in by_master.values_mut() {
            group.sort();
            let mut planned = BTreeSet::new();
            let mut pending: Vec<Mac> = group.iter().take(2).copied().collect();
            while let Some(mac) = pending.pop() {
                if !planned.insert(mac) {
                    continue;
                }
                for plan in self.fetch_plans(&mac)? {
                    for issue in plan.issues {
                        if let PlanIssue::OtherPhonesFile { owner, .. } = &issue {
                            if group.binary_search(owner).is_ok() {
                                pending.push(*owner);
                            }
                        }
                        issues.push((mac, issue));
                    }
                }
            }
        }
        Ok(issues)
    }
}
