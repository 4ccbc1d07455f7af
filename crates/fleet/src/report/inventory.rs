//! `inventory.csv`: one row per phone and generation (RFC 4180, with a header line).

use super::model::Report;

/// The columns of `inventory.csv`, in order (docs/COMPLIANCE.md).
pub const INVENTORY_COLUMNS: [&str; 16] = [
    "mac",
    "generation",
    "key_desc",
    "fingerprint",
    "state",
    "past_cryptoperiod",
    "created",
    "activated",
    "deactivated",
    "compromised",
    "destroyed",
    "confirmed",
    "confirmed_by",
    "age_days",
    "cryptoperiod_end",
    "cryptoperiod_remaining_days",
];

/// `inventory.csv` of `report`, in memory.
pub fn inventory_csv(report: &Report) -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing into memory fails only on a bug: the rows are all the same width.
    #[allow(clippy::expect_used)]
    write_inventory_csv(report, &mut bytes).expect("CSV in memory");
    bytes
}

/// Writes `inventory.csv` of `report` to `out`, row by row (200,000 rows at 100,000 phones
/// rotated once: never held whole in memory).
pub fn write_inventory_csv(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = csv::Writer::from_writer(out);
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    {
        out.write_record(INVENTORY_COLUMNS)?;
        for key in &report.keys {
            out.write_record([
                key.mac.clone(),
                key.generation.to_string(),
                key.key_desc.clone(),
                key.fingerprint.clone(),
                key.state.clone(),
                key.past_cryptoperiod.to_string(),
                key.created.clone(),
                text(&key.activated),
                text(&key.deactivated),
                text(&key.compromised),
                text(&key.destroyed),
                text(&key.confirmed),
                text(&key.confirmed_by),
                key.age_days.to_string(),
                text(&key.cryptoperiod_end),
                key.cryptoperiod_remaining_days
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            ])?;
        }
        out.flush()
    }
}
