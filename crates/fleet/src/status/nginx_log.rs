//! nginx's access log in polyseal's format: the same requests the ledger of `polyseal serve`
//! records (without the KeyDesc of what was served), so that `status` works for nginx users.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use polyseal_vault::Timestamp;
use serde::Deserialize;

use crate::ledger::{Entry, Error};

/// One line of the log.
#[derive(Deserialize)]
struct Line {
    time: f64,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    client: String,
    method: String,
    path: String,
    status: u16,
    bytes: u64,
}

/// Reads an access log written with polyseal's `log_format`
/// ([`polyseal_delivery::access_log::log_format`]); a torn last line is skipped and reported
/// (the `bool`).
pub fn read_nginx_log(path: &Path) -> Result<(Vec<Entry>, bool), Error> {
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "read the nginx access log",
        source,
    })?;
    let mut entries = Vec::new();
    let mut torn = false;
    let mut pending: Option<(u64, String)> = None;
    for (number, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(|source| Error::Io {
            path: path.to_owned(),
            action: "read the nginx access log",
            source,
        })?;
        if let Some((at, reason)) = pending.take() {
            return Err(Error::BadLine {
                path: path.to_owned(),
                line: at,
                reason,
            });
        }
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<Line>(&line) {
            Ok(line) => entries.push(entry_of(line)),
            Err(e) => pending = Some((number as u64 + 1, e.to_string())),
        }
    }
    if pending.is_some() {
        torn = true;
    }
    Ok((entries, torn))
}

fn entry_of(line: Line) -> Entry {
    let seconds = if line.time.is_finite() && line.time > 0.0 {
        line.time as u64
    } else {
        0
    };
    let mut entry = Entry::now(&line.method, &line.path, line.status, line.bytes);
    entry.time = Timestamp::from_unix_seconds(seconds).to_string();
    if line.mac.is_empty() {
        entry.client = Some(if line.client.is_empty() {
            "none".to_owned()
        } else {
            line.client
        });
    } else {
        entry.mac = Some(line.mac.to_ascii_lowercase());
    }
    entry
}
