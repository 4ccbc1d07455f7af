//! nginx's access log in polyseal's format: the same requests the ledger of `polyseal serve`
//! records (without the KeyDesc of what was served), so that `status` works for nginx users.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use polyseal_vault::Timestamp;
use serde::Deserialize;

use crate::ledger::{Entry, Error, Ledger, Scanned, scan_json};

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
/// ([`polyseal_delivery::access_log::log_format`]) as a [`Ledger`] of its requests. Bytes that
/// are not UTF-8 (nginx's `escape=json` passes them as they came) are read as U+FFFD; a torn
/// last line is skipped and reported, any other line that is not polyseal's format skipped and
/// counted, as in the ledger.
pub fn read_nginx_log(path: &Path) -> Result<Ledger, Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        action: "read the nginx access log",
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut log = Ledger::default();
    scan_json::<Line>(
        BufReader::with_capacity(256 * 1024, file),
        |line| match line {
            Scanned::Line(_, line) => log.entries.push(entry_of(line)),
            Scanned::Torn => log.torn_last_line = true,
            Scanned::Bad { number, reason } => log.skip(number, reason),
        },
    )
    .map_err(io)?;
    Ok(log)
}

fn entry_of(line: Line) -> Entry {
    let seconds = if line.time.is_finite() && line.time > 0.0 {
        line.time as u64
    } else {
        0
    };
    let (mac, client) = match (line.mac.is_empty(), line.client.is_empty()) {
        (false, _) => (Some(line.mac.to_ascii_lowercase()), None),
        (true, true) => (None, Some("none".to_owned())),
        (true, false) => (None, Some(line.client)),
    };
    Entry {
        time: Timestamp::from_unix_seconds(seconds).to_string(),
        mac,
        client,
        method: line.method,
        path: line.path,
        status: line.status,
        bytes: line.bytes,
        key_desc: None,
        key_served: None,
    }
}
