//! Words shared by several findings.

use std::path::Path;

use polyseal_crypto::{Error as CryptoError, KeyDesc, Mac};
use polyseal_vault::{Record, RotationStep};

use super::report::{Code, Finding};

/// A per-phone or uploaded file of `mac` in plaintext while the phone, at `step`, takes a new
/// key on a next-boot fleet: expected, and said so.
pub(super) fn key_change_finding(step: RotationStep, mac: Option<Mac>, path: &Path) -> Finding {
    let next = step.next_generation().unwrap_or_default();
    Finding::new(
        Code::PlaintextDuringKeyChange,
        format!(
            "in plaintext while the phone takes g{next}: under either key it would fail one of \
             the phone's two boots (key timing next-boot)"
        ),
        format!(
            "confirm the phone (polyseal rotate confirm --uploads DIR) and finish the rotation: \
             its files are then encrypted under g{next}"
        ),
    )
    .mac(mac)
    .file(path)
}

/// A library message about `path` without the leading path: the finding names the file.
pub(super) fn without_path(message: &str, path: &Path) -> String {
    let prefix = path.display().to_string();
    message
        .strip_prefix(&prefix)
        .map(|rest| rest.trim_start_matches([':', ' ']))
        .unwrap_or(message)
        .to_owned()
}

pub(super) fn describe_key_desc(key_desc: Option<&KeyDesc>) -> String {
    key_desc.map_or_else(
        || "its header names no KeyDesc".to_owned(),
        |d| format!("KeyDesc {d}"),
    )
}

/// `g1 deactivated, g2 active`.
pub(super) fn describe_generations(record: &Record) -> String {
    let generations: Vec<String> = record
        .generations()
        .iter()
        .map(|g| format!("g{} {}", g.number(), g.state()))
        .collect();
    generations.join(", ")
}

pub(super) fn bad_header(path: &Path, mac: Option<Mac>, error: &CryptoError) -> Finding {
    Finding::new(
        Code::FileBadHeader,
        format!("starts like an encrypted file, but its header is refused: {error}"),
        "replace it with a file polyseal encrypted (polyseal publish or polyseal encrypt)",
    )
    .mac(mac)
    .file(path)
}
