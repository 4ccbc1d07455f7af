//! When the fleet's firmware applies a new configuration key: the vault's policy that decides
//! how a rotation serves a phone between `rotate start` and the proof that it holds the new
//! key (docs/ROTATION.md).

use std::fmt;
use std::str::FromStr;

/// When a phone starts using a key it has just read from `device.sec.configEncryption.key`.
///
/// ```
/// use polyseal_vault::KeyTiming;
/// assert_eq!("next-boot".parse::<KeyTiming>(), Ok(KeyTiming::NextBoot));
/// assert_eq!(KeyTiming::default().to_string(), "immediate");
/// ```
///
/// Exhaustive on purpose: a new timing must make every match on it (publish's plaintext
/// window, the phone simulator) fail to compile until it is handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyTiming {
    /// At once, for the files it fetches after the key file in the same boot. A rotating
    /// phone is served its files under the new key from `rotate start`.
    #[default]
    Immediate,
    /// From its next boot. A rotating phone is served its per-phone files in plaintext
    /// (owner-only on disk, behind the per-MAC TLS rule, as its key file is) until it proves
    /// it holds the new key: files under either key would fail one of its two boots.
    NextBoot,
}

impl KeyTiming {
    /// Every timing, in the order they are listed in help texts.
    pub const ALL: [KeyTiming; 2] = [KeyTiming::Immediate, KeyTiming::NextBoot];

    /// The name used in `vault.toml`, the event log and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyTiming::Immediate => "immediate",
            KeyTiming::NextBoot => "next-boot",
        }
    }
}

impl fmt::Display for KeyTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`KeyTiming`]: the text is neither `immediate` nor `next-boot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownKeyTiming(pub String);

impl fmt::Display for UnknownKeyTiming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown key timing {:?}: expected immediate or next-boot",
            self.0
        )
    }
}

impl std::error::Error for UnknownKeyTiming {}

impl FromStr for KeyTiming {
    type Err = UnknownKeyTiming;

    fn from_str(s: &str) -> Result<KeyTiming, UnknownKeyTiming> {
        KeyTiming::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownKeyTiming(s.to_owned()))
    }
}
