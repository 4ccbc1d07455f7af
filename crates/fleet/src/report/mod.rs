//! The evidence pack an assessor files (PCI DSS v4 3.6–3.7 and 10.2–10.3, NIST SP 800-57 Pt1
//! §5.3 and §7): the vault's key inventory, custodians, changes and audit trail, computed from
//! the vault, its event log and, when given, the published tree, as one [`Report`] that renders
//! to `report.json`, `inventory.csv` and a self-contained `index.html` (docs/COMPLIANCE.md).
//!
//! Needs no identity. With the vault's data key (the caller unlocked it, which checked the
//! vault's authenticated head), the report also says that the vault's files are authentic and
//! every key opens; without it, its first screen names the checks that were not made.

mod build;
mod charts;
mod controls;
mod html;
mod inventory;
mod model;

use polyseal_provision::SourceTree;
use polyseal_vault::{DataKey, Timestamp, Vault};

pub use build::build;
pub use html::render_html;
pub use inventory::{INVENTORY_COLUMNS, inventory_csv, write_inventory_csv};
pub use model::{
    AgeBin, AuditTrail, Change, Charts, Checks, Component, Control, Custodian, Inventory, KeyRow,
    Report, ReportFinding, SCHEMA, TreeAudit, VaultSummary,
};

/// What to report on.
pub struct ReportRequest<'a> {
    /// The vault.
    pub vault: &'a Vault,
    /// The published tree to audit as well, if any.
    pub tree: Option<&'a SourceTree>,
    /// The vault's data key, or why there is none: without it the checks that need it are
    /// named as not made.
    pub data_key: Result<DataKey, String>,
    /// The time to judge at (the end of an audit period); now when `None`.
    pub as_of: Option<Timestamp>,
    /// The provisioning ledger of `polyseal serve` (read, with its path), for the fleet's
    /// health.
    pub ledger: Option<(&'a str, &'a crate::ledger::Ledger)>,
}
