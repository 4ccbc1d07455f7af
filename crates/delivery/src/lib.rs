//! Delivering a published tree to phones: the nginx configuration `polyseal nginx-config`
//! prints.
//!
//! A phone's key file is the crown jewel, and MAC addresses are guessable (a Polycom OUI and
//! a serial), so HTTPS alone lets anyone who reaches the server download every phone's key.
//! The configuration this crate writes serves the tree over TLS only and, given the CA that
//! issues the phones' client certificates (the Polycom device CA), lets each certificate fetch
//! only the files of the MAC its subject names, plus the masters and shared files:
//!
//! - [`NginxConfig`] holds the inputs, [`NginxConfig::render`] checks them and writes the
//!   configuration, [`NginxConfig::warnings`] says what is unsafe about it;
//! - [`access`] is the per-MAC rule: which MAC a certificate names, which a path names, which
//!   uploads phones make;
//! - [`Error`] names the input that would make a wrong or unsafe configuration.
//!
//! `docs/DELIVERY.md` explains how to run it in production and how the tests prove it
//! against a real nginx.
//!
//! ```
//! use polyseal_delivery::NginxConfig;
//!
//! let mut config = NginxConfig::new("/srv/polyseal/published", "/etc/ssl/prov.pem",
//!                                   "/etc/ssl/private/prov.key");
//! config.client_ca = Some("/etc/polyseal/polycom-device-ca.pem".into());
//! let text = config.render()?;
//! assert!(text.contains("ssl_verify_client on;"));
//! assert!(text.contains("map $ssl_client_s_dn $polyseal_client_mac"));
//! assert!(!text.contains("listen 80"));
//!
//! config.tree = "published".into();
//! assert_eq!(
//!     config.render().unwrap_err().to_string(),
//!     "--tree \"published\" is a relative path; give an absolute path (nginx would resolve \
//!      it against its own prefix)"
//! );
//! # Ok::<(), polyseal_delivery::Error>(())
//! ```
#![forbid(unsafe_code)]

pub mod access;
pub mod access_log;
mod config;
mod error;
mod render;
mod warning;

pub use access::{
    CLIENT_MAC_PATTERN, MAX_UPLOAD_BYTES, UPLOAD_SUFFIXES, client_mac_of_subject, is_upload_path,
    path_allowed,
};
pub use config::NginxConfig;
pub use error::{Error, Setting};
pub use warning::Warning;

/// The Polycom device CA chain, PEM, bundled with polyseal: Polycom Root CA, Equipment Policy
/// CA, Equipment Issuing CA 1 and 2 (`crates/delivery/ca/README.md` gives their fingerprints
/// and source). The default client CA of `polyseal nginx-config`: every Polycom phone's factory
/// certificate chains to it.
pub const POLYCOM_DEVICE_CA_PEM: &str = concat!(
    include_str!("../ca/Polycom_Root_CA.pem"),
    include_str!("../ca/Polycom_Equipment_Policy_CA.pem"),
    include_str!("../ca/Polycom_Equipment_Issuing_CA_1.pem"),
    include_str!("../ca/Polycom_Equipment_Issuing_CA_2.pem"),
);

/// The file name `polyseal nginx-config` writes [`POLYCOM_DEVICE_CA_PEM`] under, beside the
/// server certificate, when no client CA is given.
pub const POLYCOM_DEVICE_CA_FILE: &str = "polycom-device-ca.pem";
