//! The vault's own files: their modes, and the event log's verification.

use std::fs;

use polyseal_vault::Vault;

use super::file_read::permission_bits;
use super::report::{Code, Finding};
use crate::Error;
use crate::files::files_under;

/// The vault's files that hold key material (`data-key.age`, `keys/*`) readable by group or
/// others. The identity file is the operator's, not the vault's.
pub(super) fn vault_modes(vault: &Vault) -> Result<Vec<Finding>, Error> {
    let mut files = vec![vault.dir().join("data-key.age")];
    let mut keys = files_under(&vault.dir().join("keys"))?;
    keys.sort();
    files.extend(keys);
    let mut findings = Vec::new();
    for path in files.iter().filter(|p| p.exists()) {
        let metadata = fs::metadata(path).map_err(|e| Error::io(path, "read", e))?;
        let mode = permission_bits(&metadata);
        if mode & 0o077 != 0 {
            findings.push(
                Finding::new(
                    Code::VaultFileReadable,
                    format!(
                        "mode {mode:04o}: readable by group or others, and it holds sealed key \
                         material"
                    ),
                    format!(
                        "chmod 600 {} (and chmod 700 the vault directory)",
                        path.display()
                    ),
                )
                .file(path),
            );
        }
    }
    Ok(findings)
}

/// The event log's verification, as `polyseal log verify` does it.
pub(super) fn event_log(vault: &Vault) -> Option<Finding> {
    let error = vault.verify().err()?;
    let message = match &error {
        polyseal_vault::Error::VerifyFailed { findings, .. } => {
            let first = findings.first().map_or("", String::as_str);
            match findings.len() {
                0 | 1 => format!("the event log does not verify: {first}"),
                n => format!(
                    "the event log does not verify: {first} (and {} more)",
                    n - 1
                ),
            }
        }
        other => format!("the event log cannot be verified: {other}"),
    };
    Some(
        Finding::new(
            Code::EventLogUnverified,
            message,
            "run polyseal log verify for every problem; restore the vault from a backup whose \
             log head matches the one on file, and find out who changed it",
        )
        .file(vault.dir().join("events.log")),
    )
}

// ---- small helpers -----------------------------------------------------------------------
