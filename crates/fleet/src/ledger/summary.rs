//! A phone's requests before the ledger's window, folded into one line when the ledger is
//! compacted: what `status` needs of them (when it was seen, the keys it was served and
//! uploaded under, its requests for other phones' files), and nothing of a boot's details.

use serde::{Deserialize, Serialize};

use super::Entry;

/// The requests of one phone before the ledger's window of raw entries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PhoneSummary {
    /// 12 lower-case hex digits.
    pub mac: String,
    /// Its first request (RFC 3339).
    pub first_seen: String,
    /// Its last request folded in.
    pub last_seen: String,
    /// Requests folded in.
    pub requests: u64,
    /// The KeyDesc of the last key file served to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_key_desc: Option<String>,
    /// The KeyDesc of its last encrypted upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_key_desc: Option<String>,
    /// Requests for other phones' files.
    #[serde(default)]
    pub other_phone_requests: u64,
    /// The last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_other_phone_request: Option<String>,
}

impl PhoneSummary {
    /// Folds `entry` (of this phone, later than what is folded already) in.
    pub(crate) fn fold(&mut self, entry: &Entry) {
        if self.requests == 0 {
            self.first_seen.clone_from(&entry.time);
        }
        self.requests += 1;
        self.last_seen.clone_from(&entry.time);
        if !polyseal_delivery::path_allowed(&self.mac, &entry.path) {
            self.other_phone_requests += 1;
            self.last_other_phone_request = Some(entry.path.clone());
            return;
        }
        if let Some(key_desc) = entry.served_key() {
            self.served_key_desc = Some(key_desc.to_owned());
        }
        if entry.method == "PUT"
            && (200..300).contains(&entry.status)
            && let Some(key_desc) = &entry.key_desc
        {
            self.upload_key_desc = Some(key_desc.clone());
        }
    }
}

/// The requests of no phone (no certificate, or one naming no MAC) folded by compaction: how
/// many, when, and the last client and path, for the auditor who asks what was refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UnidentifiedSummary {
    /// Requests folded in.
    pub requests: u64,
    /// The first of them (RFC 3339).
    pub first_seen: String,
    /// The last of them.
    pub last_seen: String,
    /// Who sent the last one (its certificate's subject, or `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_client: Option<String>,
    /// The path of the last one.
    #[serde(default)]
    pub last_path: String,
}

impl UnidentifiedSummary {
    /// Folds `entry` (of no phone, later than what is folded already) in.
    pub(crate) fn fold(&mut self, entry: &Entry) {
        if self.requests == 0 {
            self.first_seen.clone_from(&entry.time);
        }
        self.requests += 1;
        self.last_seen.clone_from(&entry.time);
        self.last_client.clone_from(&entry.client);
        self.last_path.clone_from(&entry.path);
    }

    /// Adds `other` (folded later) to this one.
    pub(crate) fn merge(&mut self, other: &UnidentifiedSummary) {
        if self.requests == 0 {
            self.first_seen.clone_from(&other.first_seen);
        }
        self.requests += other.requests;
        self.last_seen.clone_from(&other.last_seen);
        self.last_client.clone_from(&other.last_client);
        self.last_path.clone_from(&other.last_path);
    }
}
