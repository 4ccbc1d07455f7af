//! How file names carry a phone's MAC address.
//!
//! Phones substitute `[PHONE_MAC_ADDRESS]` in master-file values with their MAC in lowercase
//! hex without separators, and request files by that name; so a file whose name contains a
//! phone's MAC is that phone's alone, and a file without it is shared by every phone.

use polyseal_crypto::Mac;

/// The variable phones replace with their own MAC in master-file values.
pub const PHONE_MAC_ADDRESS: &str = "[PHONE_MAC_ADDRESS]";

/// `value` with every `[PHONE_MAC_ADDRESS]` replaced by `mac` (12 lowercase hex digits), as
/// the phone does. Other bracketed words are left as they are.
///
/// ```
/// use polyseal_crypto::Mac;
/// let mac: Mac = "00:04:F2:AB:CD:EF".parse()?;
/// assert_eq!(
///     polyseal_provision::expand_mac("[PHONE_MAC_ADDRESS]-sip.cfg, site.cfg", &mac),
///     "0004f2abcdef-sip.cfg, site.cfg"
/// );
/// # Ok::<(), polyseal_crypto::Error>(())
/// ```
pub fn expand_mac(value: &str, mac: &Mac) -> String {
    value.replace(PHONE_MAC_ADDRESS, &mac.to_string())
}

/// True if `name` contains `mac`'s 12 hex digits (in either case): the file is that phone's own.
pub(crate) fn names_phone(name: &str, mac: &Mac) -> bool {
    name.to_ascii_lowercase().contains(&mac.to_string())
}

/// The phone MACs spelled as runs of exactly 12 hex digits in `name` (longer runs are hashes or
/// serials, not MACs; `000000000000` and other addresses that cannot be a phone are skipped).
pub(crate) fn macs_in_name(name: &str) -> impl Iterator<Item = Mac> + '_ {
    name.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|run| run.len() == 12)
        .filter_map(|run| Mac::parse(run).ok())
}

/// The phone a tree file belongs to by its name: `<mac>.cfg`, `<mac>-sip.cfg`,
/// `<mac>_reg.cfg`, `<mac>-directory.xml`, `<mac>-app.log`… The name must start with the
/// MAC in lowercase, as phones request it, followed by `.`, `-` or `_`.
pub(crate) fn phone_of_file_name(file_name: &str) -> Option<Mac> {
    let (head, rest) = file_name.split_at_checked(12)?;
    let canonical = head
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let separated = rest.starts_with(['.', '-', '_']);
    (canonical && separated)
        .then(|| Mac::parse(head).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_tell_their_phone() {
        let cases = [
            ("0004f2abcdef.cfg", Some("0004f2abcdef")),
            ("0004f2abcdef-sip.cfg", Some("0004f2abcdef")),
            ("0004f2abcdef_reg.cfg", Some("0004f2abcdef")),
            ("0004f2abcdef-directory.xml", Some("0004f2abcdef")),
            ("000000000000.cfg", None),
            ("000000000000-directory.xml", None),
            ("0004F2ABCDEF.cfg", None),
            ("0004f2abcdef0.cfg", None),
            ("site.cfg", None),
            ("0104f2abcdef.cfg", None),
        ];
        for (name, expected) in cases {
            assert_eq!(
                phone_of_file_name(name).map(|m| m.to_string()),
                expected.map(str::to_owned),
                "{name}"
            );
        }
    }

    #[test]
    fn macs_inside_names_are_runs_of_twelve_hex_digits() {
        let found: Vec<String> = macs_in_name("a-0004f2abcdef-b-64167F000001-0004f2abcdef00.cfg")
            .map(|m| m.to_string())
            .collect();
        assert_eq!(found, ["0004f2abcdef", "64167f000001"]);
    }
}
