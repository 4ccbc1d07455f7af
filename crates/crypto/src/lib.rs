//! Per-MAC keys and the Polycom encrypted configuration file format.
//!
//! This crate is bytes in, bytes out: it reads no files and asks no clock. It defines
//!
//! - [`Mac`]: a phone's MAC address, accepted in every common spelling, shown canonically;
//! - [`ConfigKey`]: a phone's AES-128 configuration key, zeroized on drop, never printed;
//! - [`KeyDesc`] and [`KeyString`]: the `Crypt=1;KeyDesc=…;Key=…;` value that phones
//!   receive in `device.sec.configEncryption.key`;
//! - [`encrypt`], [`decrypt`], [`Header`]: the encrypted configuration file itself.
//!
//! The byte layout is documented in `docs/FORMAT.md`, which also lists which parts are
//! confirmed by public Polycom documentation and which are this project's choice.
//!
//! ```
//! use polyseal_crypto::{decrypt, encrypt, ConfigKey, KeyDesc, KeyString, Mac};
//!
//! let mac: Mac = "00:04:F2:AB:CD:EF".parse()?;
//! let key = KeyString::new(KeyDesc::for_generation(&mac, 1), ConfigKey::generate());
//! let file = encrypt(b"<polycomConfig/>", &key)?;
//! assert!(polyseal_crypto::is_encrypted(&file));
//! assert_eq!(&decrypt(&file, &key)?[..], b"<polycomConfig/>");
//! # Ok::<(), polyseal_crypto::Error>(())
//! ```
#![forbid(unsafe_code)]

mod error;
mod file;
mod key;
mod key_desc;
mod key_string;
mod layout;
mod mac;
mod probe;

pub use error::Error;
pub use file::{
    DigestAlgorithm, Header, MAX_FILE_SIZE, decrypt, decrypt_with, encrypt, encrypt_with, inspect,
    is_encrypted,
};
pub use key::{ConfigKey, Fingerprint};
pub use key_desc::{KeyDesc, KeyDescTemplate};
pub use key_string::KeyString;
pub use layout::{Body, Eol, Iv, Layout, Padding};
pub use mac::Mac;
pub use probe::{Probe, Stage, probe};
