//! One phone's health, the first that applies in this order: `reboot-loop`, `refused`,
//! `key-not-taken`, `silent`, `never-seen`, `ok`.

use serde::Serialize;

use super::StatusOptions;
use super::model::{FetchedFile, PhoneStatus, Restart};
use crate::ledger::{Entry, PhoneSummary};

/// A phone's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Health {
    /// Its last boots came faster than a phone that boots once and runs, and it has not run
    /// since: it restarts on a file it cannot use.
    RebootLoop,
    /// A file of its own was refused in its last boot.
    Refused,
    /// It was served a new key, and still uploads under the old one.
    KeyNotTaken,
    /// Unheard for more than twice the poll interval.
    Silent,
    /// Never seen.
    NeverSeen,
    /// None of the above.
    Ok,
}

impl Health {
    /// Every health, in the order they are judged.
    pub const ALL: [Health; 6] = [
        Health::RebootLoop,
        Health::Refused,
        Health::KeyNotTaken,
        Health::Silent,
        Health::NeverSeen,
        Health::Ok,
    ];

    /// Its name in the JSON and the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::RebootLoop => "reboot-loop",
            Health::Refused => "refused",
            Health::KeyNotTaken => "key-not-taken",
            Health::Silent => "silent",
            Health::NeverSeen => "never-seen",
            Health::Ok => "ok",
        }
    }
}

/// A GET of the master at least this many seconds after a GET of the master, with nothing
/// between, starts a boot (docs/DELIVERY.md §9): a phone re-reads its master only by
/// restarting, which takes a real phone tens of seconds, while one boot may fetch it twice
/// within a second or two (a HEAD then a GET, a retry after a dropped connection, its own
/// `<mac>.cfg` then the shared one).
const MASTER_REREAD_SECONDS: u64 = 5;

/// Whether `path` is a master file phone `mac` boots from, in whatever folder the tree is
/// served from (`/polycom/000000000000.cfg`).
pub(crate) fn is_master(mac: &str, path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "000000000000.cfg" || name.eq_ignore_ascii_case(&format!("{mac}.cfg"))
}

/// The files a normal boot may miss, so that a 404 for one is not `refused`; any other file
/// of its own a phone asks for (its `CONFIG_FILES`: `<mac>-sip.cfg`, `site.cfg`) it needs.
/// `<mac>` is the phone's MAC, `*` any run of characters; a pattern is matched against the
/// path's last segment, in any folder, and `languages/*` against a file under a folder
/// `languages`; ASCII case is ignored. docs/DELIVERY.md §9 lists them (a test checks it).
pub const OPTIONAL_FILES: [&str; 13] = [
    // Its own master: most trees have only the shared one.
    "<mac>.cfg",
    // What it uploads and reads back: the override files, its directory, call lists, logs.
    "<mac>-phone.cfg",
    "<mac>-web.cfg",
    "<mac>-directory.xml",
    "<mac>-calls.xml",
    "<mac>-app.log",
    "<mac>-boot.log",
    // Licences, of its own and shared; the shared directory.
    "<mac>-license.*",
    "000000000000-license.cfg",
    "000000000000-directory.xml",
    // Language (dictionary) files, ring tones, firmware images (`*.sip.ld` too).
    "languages/*",
    "*.wav",
    "*.ld",
];

/// Whether a 404 for `path` is part of a normal boot of phone `mac` ([`OPTIONAL_FILES`]).
fn missing_is_normal(mac: &str, path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    let (folders, name) = path.rsplit_once('/').unwrap_or(("", &path));
    OPTIONAL_FILES.iter().any(|pattern| {
        let pattern = pattern.replace("<mac>", &mac.to_ascii_lowercase());
        let (folder, pattern) = match pattern.rsplit_once('/') {
            Some((folder, pattern)) => (Some(folder), pattern),
            None => (None, pattern.as_str()),
        };
        let in_folder = folder.is_none_or(|folder| folders.split('/').any(|f| f == folder));
        let named = match pattern.split_once('*') {
            Some((prefix, suffix)) => {
                name.len() >= prefix.len() + suffix.len()
                    && name.starts_with(prefix)
                    && name.ends_with(suffix)
            }
            None => name == pattern,
        };
        in_folder && named
    })
}

/// Judges phone `mac` by its requests, in order.
pub(super) fn judge(
    mac: &str,
    in_vault: bool,
    entries: &[&Entry],
    summary: Option<&PhoneSummary>,
    generation_of: &dyn Fn(&str) -> Option<u32>,
    options: &StatusOptions,
) -> PhoneStatus {
    let mut status = PhoneStatus {
        mac: mac.to_owned(),
        health: Health::Ok,
        detail: String::new(),
        in_vault,
        last_seen: entries
            .last()
            .map(|e| e.time.clone())
            .or_else(|| summary.map(|s| s.last_seen.clone())),
        boots: 0,
        last_boot: Vec::new(),
        restarts: Vec::new(),
        served_generation: None,
        served_key_desc: summary.and_then(|s| s.served_key_desc.clone()),
        upload_generation: None,
        upload_key_desc: summary.and_then(|s| s.upload_key_desc.clone()),
        other_phone_requests: summary.map_or(0, |s| s.other_phone_requests),
        last_other_phone_request: summary.and_then(|s| s.last_other_phone_request.clone()),
    };
    let Some(last) = entries.last() else {
        status.served_generation = status.served_key_desc.as_deref().and_then(generation_of);
        status.upload_generation = status.upload_key_desc.as_deref().and_then(generation_of);
        let quiet = status
            .last_seen
            .as_deref()
            .and_then(polyseal_vault::Timestamp::parse);
        match quiet {
            Some(seen) => {
                // Seen only before the ledger's window: silent, by the same rule.
                let quiet = options
                    .as_of
                    .unix_seconds()
                    .saturating_sub(seen.unix_seconds());
                if quiet > 2 * options.poll_interval.as_secs() {
                    status.health = Health::Silent;
                    status.detail = format!("no request for {} hours", quiet / 3600);
                } else {
                    status.detail = "seen only in the ledger's folded history (older than its \
                                     window, or folded to keep it bounded)"
                        .to_owned();
                }
            }
            None => {
                status.health = Health::NeverSeen;
                status.detail = "no request from it in the sources".to_owned();
            }
        }
        return status;
    };
    // Boot sequences, restarts and the last boot's files.
    let mut boot_starts = Vec::new();
    let mut all_restarts = Vec::new();
    let mut plan_started = false;
    // Its previous request of its own files.
    let mut previous: Option<&Entry> = None;
    let mut served_at = None;
    let mut uploaded_at = None;
    let seconds = |time: &str| polyseal_vault::Timestamp::parse(time).map(|t| t.unix_seconds());
    for (index, &entry) in entries.iter().enumerate() {
        if !polyseal_delivery::path_allowed(mac, &entry.path) {
            status.other_phone_requests += 1;
            status.last_other_phone_request = Some(entry.path.clone());
            continue;
        }
        if is_master(mac, &entry.path) && entry.method != "PUT" {
            // The master fetched again with nothing between: a phone re-reads it only by
            // restarting.
            let reread = entry.method == "GET"
                && previous.is_some_and(|p| {
                    p.method == "GET"
                        && is_master(mac, &p.path)
                        && matches!(
                            (seconds(&p.time), seconds(&entry.time)),
                            (Some(before), Some(now)) if now.saturating_sub(before) >= MASTER_REREAD_SECONDS
                        )
                });
            if plan_started || reread || boot_starts.is_empty() {
                if plan_started || reread {
                    all_restarts.push(Restart {
                        time: entry.time.clone(),
                        after: previous.map(|p| p.path.clone()),
                    });
                }
                boot_starts.push(entry.time.clone());
                status.last_boot.clear();
            }
            plan_started = false;
        } else {
            plan_started = true;
        }
        previous = Some(entry);
        status.last_boot.push(FetchedFile {
            time: entry.time.clone(),
            method: entry.method.clone(),
            path: entry.path.clone(),
            status: entry.status,
        });
        if let Some(key_desc) = entry.served_key() {
            status.served_key_desc = Some(key_desc.to_owned());
            served_at = Some(index);
        }
        if entry.method == "PUT"
            && (200..300).contains(&entry.status)
            && let Some(key_desc) = &entry.key_desc
        {
            status.upload_key_desc = Some(key_desc.clone());
            uploaded_at = Some(index);
        }
    }
    status.boots = boot_starts.len();
    status.served_generation = status.served_key_desc.as_deref().and_then(generation_of);
    status.upload_generation = status.upload_key_desc.as_deref().and_then(generation_of);

    // reboot-loop: the last N boot starts within the window, and the last of them within the
    // window of its last request. A phone whose last boot ran on longer than that (an upload,
    // a request an hour later) is judged on that run, however many restarts led to it; one
    // last heard looping is still looping as far as the ledger knows.
    let window = options.loop_window.as_secs();
    let last_seconds = seconds(&last.time).unwrap_or(0);
    let looping = boot_starts.len() >= options.loop_boots.max(2)
        && match (
            seconds(&boot_starts[boot_starts.len() - options.loop_boots.max(2)]),
            boot_starts.last().and_then(|t| seconds(t)),
        ) {
            (Some(first), Some(last_start)) => {
                last_start.saturating_sub(first) <= window
                    && last_seconds.saturating_sub(last_start) <= window
            }
            _ => false,
        };
    status.restarts = all_restarts
        .into_iter()
        .filter(|r| seconds(&r.time).is_some_and(|t| last_seconds.saturating_sub(t) <= window))
        .collect();
    if looping {
        let culprit = status
            .restarts
            .last()
            .and_then(|r| r.after.clone())
            .unwrap_or_else(|| "(none)".to_owned());
        status.health = Health::RebootLoop;
        status.detail = format!(
            "{} boots within {} minutes; last file before each restart: {culprit}",
            status.restarts.len() + 1,
            window / 60
        );
        return status;
    }
    // refused: a file of its own, in its last boot.
    if let Some(file) = status.last_boot.iter().find(|f| {
        f.status == 403 || f.status >= 500 || (f.status == 404 && !missing_is_normal(mac, &f.path))
    }) {
        status.health = Health::Refused;
        status.detail = format!("{} {} answered {}", file.method, file.path, file.status);
        return status;
    }
    // key-not-taken: a new key served, an upload since still under an older one.
    if let (Some(served), Some(uploaded)) = (status.served_generation, status.upload_generation)
        && uploaded < served
        && uploaded_at > served_at
    {
        status.health = Health::KeyNotTaken;
        status.detail =
            format!("served generation {served}, still uploading under generation {uploaded}");
        return status;
    }
    // silent: unheard for more than twice the poll interval.
    let quiet = options.as_of.unix_seconds().saturating_sub(last_seconds);
    if quiet > 2 * options.poll_interval.as_secs() {
        status.health = Health::Silent;
        status.detail = format!("no request for {} hours", quiet / 3600);
        return status;
    }
    let plural = |n: usize, noun: &str| {
        if n == 1 {
            format!("1 {noun}")
        } else {
            format!("{n} {noun}s")
        }
    };
    status.detail = format!(
        "{}; the last one {}",
        plural(status.boots, "boot"),
        plural(status.last_boot.len(), "request")
    );
    status
}
