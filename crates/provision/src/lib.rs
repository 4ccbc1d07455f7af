//! The Polycom provisioning tree as a phone sees it: master files, fetch plans, bootstrap and
//! key-change files, and a secret scanner.
//!
//! Encrypting the wrong file bricks phones (a master file can never be encrypted; a shared
//! file cannot carry a per-phone key), and a forgotten plaintext password is what an auditor
//! finds. This crate reads a source tree the way a Polycom phone does, so that the `polyseal`
//! command encrypts exactly the files each phone can decrypt:
//!
//! - [`SourceTree`] lists a tree and reads its master files ([`MasterConfig`]);
//! - [`PhoneList`] merges phones from phones files, the tree and the vault inventory;
//! - [`SourceTree::fetch_plan`] gives each phone's [`FetchPlan`]: the files it requests, in
//!   order, each with its [`Role`] and [`FileState`], and the [`PlanIssue`]s that would keep it
//!   from getting its key or would brick it;
//! - [`bootstrap_file`] and [`key_change_file`] write the file that hands a phone its key, and
//!   [`read_bootstrap_file`] / [`read_key_change_file`] read it back;
//! - [`scan`] and [`SourceTree::scan`] report secrets that would be served to the wrong eyes,
//!   and weak SIP passwords, as [`Finding`]s that never carry the secret.
//!
//! `docs/PROVISIONING.md` explains the phone's behaviour this follows and which parts of it are
//! documented by Polycom and which are inferred.
//!
//! ```
//! use polyseal_crypto::{ConfigKey, KeyDesc, KeyString};
//! use polyseal_provision::{bootstrap_file, PhoneList, PlanIssue, Role, SourceTree};
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(
//!     dir.path().join("000000000000.cfg"),
//!     r#"<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-sip.cfg, site.cfg" CONTACTS_DIRECTORY="contacts"/>"#,
//! )?;
//! std::fs::write(dir.path().join("0004f2abcdef-sip.cfg"), "<polycomConfig/>")?;
//! let tree = SourceTree::open(dir.path())?;
//!
//! let mut phones = PhoneList::new();
//! phones.add_tree(&tree);
//! for phone in phones.iter() {
//!     let plan = tree.fetch_plan(&phone.mac, None)?;
//!     // The master does not list 0004f2abcdef-key.cfg: the phone would never get its key.
//!     assert!(matches!(plan.issues[0], PlanIssue::KeyFileNotListed { .. }));
//!     for file in plan.files.iter().filter(|f| f.role == Role::PerPhoneConfig && f.exists()) {
//!         assert_eq!(file.path(), Some("0004f2abcdef-sip.cfg".as_ref()));
//!     }
//!     let key = KeyString::new(KeyDesc::for_generation(&phone.mac, 1), ConfigKey::generate());
//!     let bootstrap = bootstrap_file(&key);
//!     assert!(bootstrap.starts_with(b"<?xml"));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod applied;
mod error;
mod fetch_plan;
mod file_kind;
mod file_reference;
mod key_file;
mod mac_names;
mod master;
mod phone_files;
mod phones;
mod plan_issues;
mod position;
mod scan;
mod secrets;
mod tree;
mod url;
mod xml;

pub use applied::{AppliedSetting, OpenEncrypted};
pub use error::Error;
pub use fetch_plan::{FetchPlan, PlanIssue, PlannedFile, Role};
pub use file_kind::{FileKind, classify};
pub use file_reference::{FileReference, split_file_list};
pub use key_file::{
    KeyFilePattern, bootstrap_file, key_change_file, read_bootstrap_file, read_key_change_file,
    written_bootstrap_key,
};
pub use mac_names::{PHONE_MAC_ADDRESS, expand_mac};
pub use master::{
    MasterAttribute, MasterConfig, MasterWarning, ModelApplication, Setting, Settings,
};
pub use phone_files::{PhoneFiles, UnlistedFile};
pub use phones::{Phone, PhoneList, PhoneSource};
pub use position::Position;
pub use scan::{Exposure, FileScan, Finding, FindingKind, Placeholder, scan, scan_file};
pub use secrets::{
    MIN_SIP_PASSWORD_CHARS, SECRET_PARAMETERS, SecretKind, SecretParameter, Weakness, secret_kind,
};
pub use tree::{DEFAULT_MASTER, FileState, Master, SourceTree, TreeScan};
