//! Which Polycom parameters hold secrets, recognised by name, and what counts as a value.
//!
//! [`SECRET_PARAMETERS`] is the one list. To recognise another parameter, add a line to it:
//! the scanner, the documentation (`docs/PROVISIONING.md`) and the tests all read it.

use std::fmt;
use std::sync::OnceLock;

/// What a secret parameter protects; it decides the hint a finding gives and whether the
/// weak-password check applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecretKind {
    /// A SIP registration password (digest authentication). Checked for strength.
    SipPassword,
    /// A password of the phone's own interfaces: web and menu, user login, TR-069 connection
    /// requests.
    DevicePassword,
    /// A password the phone presents to another service: provisioning server, directory,
    /// push or polling client, login credentials, BroadSoft XSP, XMPP, TR-069 ACS, SCEP,
    /// ICE/TURN, web proxy, E911 location server.
    ServicePassword,
    /// A PIN that signs the phone or its user in to a service (Skype for Business / Lync PIN
    /// authentication), in the list by name or named `…pin`.
    Pin,
    /// A network access secret: 802.1X, Wi-Fi.
    NetworkSecret,
    /// The configuration encryption key itself (`device.sec.configEncryption.key`).
    ConfigurationKey,
    /// The private key of the phone's TLS device certificate (`sec.TLS.customDeviceKey.#`):
    /// whoever holds it can pose as the phone to every server that trusts the certificate.
    PrivateKey,
    /// A parameter not in the list by name whose name ends in `password`.
    OtherPassword,
    /// A URL carrying a password (`ftp://user:password@host/`), in any parameter.
    UrlPassword,
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::SipPassword => "SIP password",
            SecretKind::DevicePassword => "device password",
            SecretKind::ServicePassword => "service password",
            SecretKind::Pin => "PIN",
            SecretKind::NetworkSecret => "network secret",
            SecretKind::ConfigurationKey => "configuration encryption key",
            SecretKind::PrivateKey => "private key",
            SecretKind::OtherPassword => "password",
            SecretKind::UrlPassword => "password inside a URL",
        })
    }
}

/// One entry of the list of secret-bearing parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretParameter {
    /// The parameter name, where `#` stands for a number (`reg.#.auth.password` matches
    /// `reg.1.auth.password`) and `*` for any run of characters. Compared ignoring ASCII case.
    pub pattern: &'static str,
    /// What it protects.
    pub kind: SecretKind,
    /// Where the name comes from, for the documentation.
    pub source: &'static str,
}

const fn secret(pattern: &'static str, kind: SecretKind, source: &'static str) -> SecretParameter {
    SecretParameter {
        pattern,
        kind,
        source,
    }
}

/// Every parameter the scanner treats as a secret, first match wins. The same names are
/// recognised in the old nested schema (`<reg reg.1.auth.password="…"/>`) and the new flat one,
/// because both spell the full parameter name in the attribute. `.set` companions
/// (`device.prov.password.set`) are flags, not secrets, and match nothing here; nor do the
/// other harmless look-alikes of the same templates (`prov.login.localPassword.hashed`,
/// `dir.local.passwordProtected`, `reg.1.auth.usePinCredentials`, `sec.TLS.customDeviceCert.1`,
/// `sec.uploadDevice.privateKey`, …).
///
/// Sources: "openspork/pp configs/…" is the set of stock UC Software 5.x configuration
/// templates (`site.cfg`, `device.cfg`, `features.cfg`, `reg-basic.cfg`, …, every parameter
/// with its default) committed in the public repository github.com/openspork/pp; "corpus …"
/// is a file of `tests/fixtures/polycom` (provisioner.net library).
pub const SECRET_PARAMETERS: &[SecretParameter] = &[
    secret(
        "reg.#.auth.password",
        SecretKind::SipPassword,
        "Polycom admin guides (line registration); openspork/pp configs/reg-basic.cfg; \
         provisioner/Provisioner endpoint/polycom/firmware325/phone1_327.cfg (SIP 3.2.7)",
    ),
    secret(
        "voIpProt.SIP.*password",
        SecretKind::SipPassword,
        "polyseal's starting list (no such parameter seen in the public templates)",
    ),
    secret(
        "device.auth.localAdminPassword",
        SecretKind::DevicePassword,
        "Polycom admin guides; openspork/pp configs/device.cfg",
    ),
    secret(
        "device.auth.localUserPassword",
        SecretKind::DevicePassword,
        "Polycom admin guides; openspork/pp configs/device.cfg",
    ),
    secret(
        "device.prov.password",
        SecretKind::ServicePassword,
        "Polycom admin guides (provisioning server); openspork/pp configs/device.cfg",
    ),
    secret(
        "device.logincred.password",
        SecretKind::ServicePassword,
        "corpus features.cfg; openspork/pp configs/device.cfg",
    ),
    secret(
        "dir.corp.password",
        SecretKind::ServicePassword,
        "corpus features.cfg and sip-3.2.7.cfg; openspork/pp configs/features.cfg",
    ),
    secret(
        "apps.push.password",
        SecretKind::ServicePassword,
        "corpus sip-3.2.7.cfg; openspork/pp configs/applications.cfg",
    ),
    secret(
        "apps.statePolling.password",
        SecretKind::ServicePassword,
        "corpus sip-3.2.7.cfg; openspork/pp configs/applications.cfg",
    ),
    secret(
        "device.net.dot1x.password",
        SecretKind::NetworkSecret,
        "Polycom admin guides (802.1X); openspork/pp configs/device.cfg",
    ),
    secret(
        "device.wifi.psk.key",
        SecretKind::NetworkSecret,
        "Polycom admin guides (Wi-Fi); openspork/pp configs/device.cfg",
    ),
    secret(
        "device.wifi.wep.key#",
        SecretKind::NetworkSecret,
        "Polycom admin guides (Wi-Fi); openspork/pp configs/device.cfg (key1 to key4)",
    ),
    secret(
        "device.wifi.wpa2Ent.password",
        SecretKind::NetworkSecret,
        "Polycom admin guides (Wi-Fi); openspork/pp configs/device.cfg",
    ),
    secret(
        "device.pacfile.password",
        SecretKind::NetworkSecret,
        "Polycom admin guides (EAP-FAST PAC file); openspork/pp configs/device.cfg",
    ),
    secret(
        "device.sec.configEncryption.key",
        SecretKind::ConfigurationKey,
        "SoundPoint IP Admin Guide SIP 2.2/3.1, appendix C; openspork/pp configs/device.cfg",
    ),
    secret(
        "device.prov.lyncDeviceUpdatePassword",
        SecretKind::ServicePassword,
        "openspork/pp configs/device.cfg and features.cfg; left out of a UC Software 5.4.2 \
         phone export as a secret (pastebin.com/f4RiASq9)",
    ),
    secret(
        "reg.#.server.#.pstnServerAuth.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/reg-basic.cfg",
    ),
    secret(
        "reg.#.broadsoft.xsp.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/features.cfg",
    ),
    secret(
        "dir.broadsoft.xsp.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/features.cfg",
    ),
    secret(
        "dir.corp.alt.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/features.cfg",
    ),
    secret(
        "xmpp.#.auth.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/features.cfg",
    ),
    secret(
        "SCEP.*password",
        SecretKind::ServicePassword,
        "openspork/pp configs/features.cfg (SCEP.challengePassword, SCEP.http.password)",
    ),
    secret(
        "tcpIpApp.ice.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/firewall-nat.cfg",
    ),
    secret(
        "feature.wpad.proxy.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/features.cfg",
    ),
    secret(
        "feature.E911.HELD.*password",
        SecretKind::ServicePassword,
        "openspork/pp configs/site.cfg (feature.E911.HELD.password, \
         feature.E911.HELD.secondary.password)",
    ),
    secret(
        "device.tr069.acs.password",
        SecretKind::ServicePassword,
        "openspork/pp configs/device.cfg and tr069.cfg",
    ),
    secret(
        "device.tr069.cpe.password",
        SecretKind::DevicePassword,
        "openspork/pp configs/device.cfg and tr069.cfg",
    ),
    secret(
        "prov.login.localPassword",
        SecretKind::DevicePassword,
        "openspork/pp configs/site.cfg (user login; the template ships it set to 123)",
    ),
    secret(
        "prov.login.defaultPassword",
        SecretKind::DevicePassword,
        "openspork/pp configs/site.cfg (user login)",
    ),
    secret(
        "reg.#.pin",
        SecretKind::Pin,
        "openspork/pp configs/reg-basic.cfg (beside reg.1.extension; PIN authentication)",
    ),
    secret(
        "device.logincred.pin",
        SecretKind::Pin,
        "openspork/pp configs/device.cfg and features.cfg; a UC Software 5.4.2 phone export \
         (pastebin.com/f4RiASq9)",
    ),
    secret(
        "device.prov.lyncDeviceUpdatePin",
        SecretKind::Pin,
        "openspork/pp configs/device.cfg and features.cfg",
    ),
    secret(
        "sec.TLS.customDeviceKey.#",
        SecretKind::PrivateKey,
        "openspork/pp configs/site.cfg (beside sec.TLS.customDeviceCert.#, the certificate \
         it goes with)",
    ),
    secret(
        "*pin",
        SecretKind::Pin,
        "catch-all: any other parameter named …pin or …Pin",
    ),
    secret(
        "*password",
        SecretKind::OtherPassword,
        "catch-all: any other parameter named …password (feature.*, exchange.*, …)",
    ),
];

/// The kind of secret `parameter` holds, or `None` if its name is not in
/// [`SECRET_PARAMETERS`].
///
/// ```
/// use polyseal_provision::{secret_kind, SecretKind};
/// assert_eq!(secret_kind("reg.12.auth.password"), Some(SecretKind::SipPassword));
/// assert_eq!(secret_kind("reg.1.auth.userId"), None);
/// assert_eq!(secret_kind("device.prov.password.set"), None);
/// assert_eq!(secret_kind("feature.acme.adminPassword"), Some(SecretKind::OtherPassword));
/// ```
pub fn secret_kind(parameter: &str) -> Option<SecretKind> {
    let name = parameter.as_bytes();
    if !distinct_endings()
        .iter()
        .any(|ending| ends_alike(ending, name))
    {
        return None;
    }
    SECRET_PARAMETERS
        .iter()
        .find(|secret| {
            let pattern = secret.pattern.as_bytes();
            ends_alike(pattern, name) && matches_pattern(pattern, name)
        })
        .map(|secret| secret.kind)
}

/// The ways a secret parameter's name can end, fewest first: each pattern's ending (its
/// literal tail, with the wildcard before it) unless a shorter ending of another pattern
/// already admits every name it admits. Thirty-five patterns come down to five (`#`, `*pin`,
/// `*password`, `device.wifi.psk.key`, `device.sec.configEncryption.key`; a test keeps the
/// count), so most names are turned away in five short comparisons instead of thirty-five.
fn distinct_endings() -> &'static [&'static [u8]] {
    static ENDINGS: OnceLock<Vec<&'static [u8]>> = OnceLock::new();
    ENDINGS.get_or_init(|| {
        let mut endings: Vec<&'static [u8]> = SECRET_PARAMETERS
            .iter()
            .map(|secret| ending(secret.pattern.as_bytes()))
            .collect();
        endings.sort_by_key(|e| e.len());
        let mut distinct: Vec<&'static [u8]> = Vec::new();
        for candidate in endings {
            if !distinct.iter().any(|kept| covers(kept, candidate)) {
                distinct.push(candidate);
            }
        }
        distinct
    })
}

/// A pattern's ending: from its last wildcard (`*`, or `#` as the whole ending when it is the
/// last byte) to its end; the whole pattern if it has no wildcard.
fn ending(pattern: &[u8]) -> &[u8] {
    if pattern.last() == Some(&b'#') {
        return &pattern[pattern.len() - 1..];
    }
    match pattern.iter().rposition(|&b| b == b'*' || b == b'#') {
        Some(wildcard) => &pattern[wildcard..],
        None => pattern,
    }
}

/// True if every name that `candidate` admits under [`ends_alike`] is admitted by `kept`: the
/// same ending, or `kept` is a `*` and a literal that ends `candidate`'s literal part.
fn covers(kept: &[u8], candidate: &[u8]) -> bool {
    let literal = candidate
        .strip_prefix(b"*")
        .or_else(|| candidate.strip_prefix(b"#"))
        .unwrap_or(candidate);
    kept == candidate
        || (kept.first() == Some(&b'*')
            && !literal.iter().any(|&b| b == b'*' || b == b'#')
            && ends_alike(kept, literal))
}

/// A necessary condition of [`matches_pattern`] that costs one short comparison: the name ends
/// with the pattern's literal tail (what follows its last `*` or `#`), and in a digit where
/// the pattern ends in `#`. Most attributes of a configuration file match no pattern, and
/// this turns them away before the matcher walks them (the scan of every per-phone file is a
/// large part of a publish or an audit of 100,000 phones).
fn ends_alike(pattern: &[u8], name: &[u8]) -> bool {
    // Walked from the end, so a name that matches nothing is usually turned away at its last
    // byte.
    let mut name = name.iter().rev();
    for &expected in pattern.iter().rev() {
        match expected {
            b'*' => return true,
            b'#' => return name.next().is_some_and(u8::is_ascii_digit),
            _ => {
                if !name
                    .next()
                    .is_some_and(|b| b.eq_ignore_ascii_case(&expected))
                {
                    return false;
                }
            }
        }
    }
    true
}

/// Pattern matching for [`SecretParameter::pattern`]: `#` is one or more digits, `*` any run of
/// bytes, everything else one byte compared ignoring ASCII case.
fn matches_pattern(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| matches_pattern(rest, &name[skip..])),
        Some((b'#', rest)) => {
            let digits = name.iter().take_while(|b| b.is_ascii_digit()).count();
            (1..=digits).any(|take| matches_pattern(rest, &name[take..]))
        }
        Some((&expected, rest)) => name.split_first().is_some_and(|(&actual, name)| {
            actual.eq_ignore_ascii_case(&expected) && matches_pattern(rest, name)
        }),
    }
}

/// The value a phone would end up with, as far as the scanner can tell: `None` for an empty
/// value and for a lone template placeholder `{$name}` (a template engine fills it in later,
/// so the file as scanned holds no secret; scan the rendered files), the default of a
/// placeholder with one (`{$name|default}`), and the value itself otherwise (text mixing
/// placeholders and literal characters counts as literal).
pub(crate) fn effective_value(value: &str) -> Option<&str> {
    let placeholder = value
        .strip_prefix("{$")
        .and_then(|inner| inner.strip_suffix('}'))
        .filter(|inner| !inner.contains(['{', '}']));
    match placeholder {
        Some(inner) => inner.split_once('|').map(|(_, default)| default),
        None => Some(value),
    }
    .filter(|value| !value.is_empty())
}

/// SIP passwords shorter than this many characters are reported as weak.
pub const MIN_SIP_PASSWORD_CHARS: usize = 12;

/// Why a SIP password is weak. The encrypted file's header carries an unkeyed digest of the
/// plaintext, so anyone holding the file can test guesses of a weak password offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Weakness {
    /// Fewer than [`MIN_SIP_PASSWORD_CHARS`] characters.
    TooShort,
    /// Only decimal digits, however long.
    DigitsOnly,
}

impl fmt::Display for Weakness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Weakness::TooShort => write!(f, "shorter than {MIN_SIP_PASSWORD_CHARS} characters"),
            Weakness::DigitsOnly => f.write_str("digits only"),
        }
    }
}

/// Why `password` is weak, or `None`. Digits-only is reported before length.
pub(crate) fn weakness(password: &str) -> Option<Weakness> {
    if password.bytes().all(|b| b.is_ascii_digit()) {
        Some(Weakness::DigitsOnly)
    } else if password.chars().count() < MIN_SIP_PASSWORD_CHARS {
        Some(Weakness::TooShort)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_match_the_list() {
        let cases = [
            ("reg.1.auth.password", Some(SecretKind::SipPassword)),
            ("REG.34.AUTH.PASSWORD", Some(SecretKind::SipPassword)),
            ("reg.x.auth.password", Some(SecretKind::OtherPassword)),
            ("reg.1.auth.userId", None),
            (
                "voIpProt.SIP.outboundProxy.password",
                Some(SecretKind::SipPassword),
            ),
            (
                "device.auth.localAdminPassword",
                Some(SecretKind::DevicePassword),
            ),
            ("device.auth.localAdminPassword.set", None),
            ("device.wifi.wep.key3", Some(SecretKind::NetworkSecret)),
            ("device.wifi.wep.key", None),
            (
                "device.sec.configEncryption.key",
                Some(SecretKind::ConfigurationKey),
            ),
            ("device.sec.configEncryption.key.set", None),
            ("dir.local.passwordProtected", None),
            ("sec.pwd.length.admin", None),
            ("apps.push.password", Some(SecretKind::ServicePassword)),
            ("feature.x.password", Some(SecretKind::OtherPassword)),
            ("reg.12.pin", Some(SecretKind::Pin)),
            ("reg.x.pin", Some(SecretKind::Pin)),
            ("device.logincred.pin.set", None),
            ("sec.TLS.customDeviceKey.2", Some(SecretKind::PrivateKey)),
            ("sec.TLS.customDeviceKey", None),
            ("sec.TLS.customDeviceCert.1", None),
            ("SCEP.challengePassword", Some(SecretKind::ServicePassword)),
        ];
        for (name, kind) in cases {
            assert_eq!(secret_kind(name), kind, "{name}");
        }
    }

    #[test]
    fn the_tail_check_never_turns_away_a_match() {
        // Every pattern instantiated ('#' as digits, '*' as text or nothing), in both cases,
        // against every pattern.
        let mut names = Vec::new();
        for secret in SECRET_PARAMETERS {
            for (digits, run) in [("1", ""), ("12", "x.y"), ("7", "Password")] {
                let name = secret.pattern.replace('#', digits).replace('*', run);
                names.push(name.to_ascii_uppercase());
                names.push(name);
            }
        }
        for secret in SECRET_PARAMETERS {
            for name in &names {
                let (pattern, name) = (secret.pattern.as_bytes(), name.as_bytes());
                if matches_pattern(pattern, name) {
                    assert!(ends_alike(pattern, name), "{}", secret.pattern);
                }
            }
        }
    }

    #[test]
    fn the_distinct_endings_admit_every_name_a_pattern_matches() {
        assert_eq!(distinct_endings().len(), 5, "{:?}", distinct_endings());
        for secret in SECRET_PARAMETERS {
            for (digits, run) in [("1", ""), ("12", "x.y"), ("7", "Password")] {
                let name = secret.pattern.replace('#', digits).replace('*', run);
                for name in [name.to_ascii_uppercase(), name] {
                    assert!(
                        distinct_endings()
                            .iter()
                            .any(|e| ends_alike(e, name.as_bytes())),
                        "{name} ({})",
                        secret.pattern
                    );
                }
            }
        }
    }

    #[test]
    fn no_entry_is_shadowed_by_an_earlier_one() {
        // First match wins, so an entry that an earlier one always matches first would be
        // dead: its kind never reported, its line in the documentation a lie.
        for (index, secret) in SECRET_PARAMETERS.iter().enumerate() {
            let name = secret.pattern.replace('#', "1").replace('*', "example.");
            let first = SECRET_PARAMETERS
                .iter()
                .position(|s| matches_pattern(s.pattern.as_bytes(), name.as_bytes()));
            assert_eq!(first, Some(index), "{name} ({})", secret.pattern);
        }
    }

    #[test]
    fn placeholders_and_empty_values_hold_no_secret() {
        let cases = [
            ("", None),
            ("{$pass}", None),
            ("{$pass|}", None),
            ("{$pass|1234}", Some("1234")),
            ("x{$pass}", Some("x{$pass}")),
            ("{$a}{$b}", Some("{$a}{$b}")),
            ("hunter2", Some("hunter2")),
        ];
        for (value, expected) in cases {
            assert_eq!(effective_value(value), expected, "{value}");
        }
    }

    #[test]
    fn weak_sip_passwords() {
        assert_eq!(weakness("12345678901234"), Some(Weakness::DigitsOnly));
        assert_eq!(weakness("short"), Some(Weakness::TooShort));
        assert_eq!(weakness("élan-vital-é"), None);
        assert_eq!(weakness("élan-vital"), Some(Weakness::TooShort));
        assert_eq!(weakness("correct-horse"), None);
    }
}
