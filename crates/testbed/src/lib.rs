//! Test support for polyseal's delivery: certificates made at test time, a real nginx on
//! 127.0.0.1, and a simulated Polycom phone, so that a test proves end to end that a published
//! tree provisions a fleet and that only phone X can fetch X's key.
//!
//! - [`Pki`] makes a device CA standing in for Polycom's, phone certificates naming a MAC, a
//!   server certificate for 127.0.0.1, and an unrelated CA;
//! - [`Nginx`] starts a private nginx with a [`polyseal_delivery::NginxConfig`] (or any
//!   rendered server block) and [`Running`] stops it on drop; nginx is also killed when its
//!   lifetime runs out, so it never outlives a test;
//! - [`Phone`] boots like a Polycom phone, reboots on files it cannot decrypt, stores the keys
//!   it is given under either [`KeyTiming`], and uploads its override file;
//! - [`Client`] is a bare HTTPS client with an optional certificate, and [`plain_http_get`]
//!   probes the server without TLS.
//!
//! `docs/DELIVERY.md` documents the phone model and how the tests use all of it.
//!
//! ```no_run
//! use polyseal_testbed::{KeyTiming, Nginx, Phone, Pki};
//!
//! let pki = Pki::new();
//! let tree = tempfile::tempdir()?; // a published tree, made by the test
//! let mut config = pki.nginx_config(tree.path());
//! config.server_name = Some("localhost".into());
//! let nginx = Nginx::start(&config);
//! let server = nginx.server(&pki);
//!
//! let mac = "0004f2000001".parse()?;
//! let mut phone = Phone::new(mac, pki.client_cert(&mac), KeyTiming::Immediate);
//! let report = phone.boot(&server);
//! assert!(report.is_running(), "{report:#?}\n{}", nginx.error_log());
//! assert_eq!(report.reboots(), 0);
//! assert!(phone.key().is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod client;
mod nginx;
mod openbao;
mod params;
mod phone;
mod pki;
mod serve;
mod sip_config;

pub use client::{Client, ConnectionError, Response, Server, openssl_exchange, plain_http_get};
pub use nginx::{Nginx, Running};
pub use openbao::OpenBao;
pub use phone::{Boot, BootEnd, BootReport, Fetch, Got, KeyTiming, Phone, RebootCause};
pub use pki::{Identity, Pki};
/// The attribute types of a certificate subject, for [`Pki::client_cert_with_subject`].
pub use rcgen::{DnType, DnValue};
pub use serve::{Serve, ServeOptions};
pub use sip_config::sip_config;
