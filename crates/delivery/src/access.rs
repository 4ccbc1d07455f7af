//! The per-MAC rule: which phone a client certificate names, which phone a request path
//! names, and which uploads phones make. Every regular expression of the rule is here.
//!
//! A phone is named by its MAC as a run of **exactly 12 hex digits**, in either case, the
//! way `polyseal-provision` finds phones in file names: `0004f2abcdef-key.cfg`,
//! `contacts/0004f2abcdef-directory.xml`, `0004F2ABCDEF.cfg`. `000000000000` names no phone
//! (it is the default master's name), so files carrying it are shared.
//!
//! - The client's MAC is the **subject CN** of its certificate when that CN is 12 hex digits:
//!   Polycom factory device certificates carry the phone's MAC there, uppercase
//!   (`CN=0004F28B54F4, O=Polycom Inc.` as observed on a phone; the admin guides say only that
//!   the certificate is "unique to a device (based on the MAC address)"). Only a real CN
//!   attribute counts: nginx writes the subject as RFC 2253 text, where a comma inside a value
//!   is escaped (`OU=x\,CN=0004F2000002` is one attribute, an OU), so the rule reads the text
//!   attribute by attribute, escapes included. A subject with more than one CN, or whose CN
//!   shares its RDN with another attribute (`CN=…+OU=…`), names no phone.
//! - A request is allowed when every MAC its path names is the client's own (compared without
//!   regard to case) or `000000000000`: the phone's own files, the masters and the shared files.
//!   Anything else gets 403, and so does every request of a certificate whose subject names
//!   no MAC.
//!
//! nginx does both with `map` blocks (on `$ssl_client_s_dn`, then on the client's MAC and
//! `$uri`, the decoded and normalised path), so the rule depends on the certificate nginx
//! verified, never on the client's address.

use std::fmt::Write as _;

/// The variable holding the MAC the client certificate names, empty when it names none.
pub(crate) const CLIENT_MAC: &str = "$polyseal_client_mac";
/// The variable that is `1` when the request path names no MAC but the client's.
pub(crate) const PATH_ALLOWED: &str = "$polyseal_path_allowed";

/// The names phones upload under, after their MAC: override file, contact directory,
/// application log and boot log. Phones PUT them into the directories the master file names
/// (`OVERRIDES_DIRECTORY`, `CONTACTS_DIRECTORY`, `LOG_FILE_DIRECTORY`).
pub const UPLOAD_SUFFIXES: [&str; 4] = ["-phone.cfg", "-directory.xml", "-app.log", "-boot.log"];

/// The largest upload nginx accepts: a contact directory of a few thousand entries or a
/// phone's log fits; anything bigger is not a phone's upload.
pub const MAX_UPLOAD_BYTES: u64 = 4 * 1024 * 1024;

/// The regular expression (PCRE, as nginx runs it) that takes the client's MAC from nginx's
/// RFC 2253 `$ssl_client_s_dn`. A subject is attributes `type=value` joined by `,` (another
/// RDN) or `+` (the same RDN); in a value, `\` escapes the next character. It matches when
/// exactly one attribute is `CN=<12 hex digits>`, a whole RDN by itself: every other
/// attribute is read whole (escapes included) and may not be a CN.
pub const CLIENT_MAC_PATTERN: &str = concat!(
    // Attributes before the CN, each followed by its separator; none of them a CN.
    r"^(?:(?!CN=)(?:[^,+\\]|\\.)*[,+])*",
    // The CN, a whole RDN: at the start or after a ",", and followed by "," or the end.
    r"(?<=^|,)CN=([0-9A-Fa-f]{12})(?=,|$)",
    // Attributes after it, none of them a CN.
    r"(?:,(?!CN=)(?:[^,+\\]|\\.)*(?:\+(?!CN=)(?:[^,+\\]|\\.)*)*)*$",
);

/// Writes the two `map` blocks of the rule (they belong in nginx's `http` context).
pub(crate) fn write_maps(out: &mut String) {
    // nginx reads `\\` in a quoted string as one backslash.
    let client_mac_pattern = CLIENT_MAC_PATTERN.replace('\\', "\\\\");
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#"# The phone a client certificate names: its subject CN when that is a MAC, 12 hex digits
# in either case, as on Polycom factory device certificates ("CN=0004F28B54F4,O=Polycom Inc.").
# The subject is read attribute by attribute (a value may hold an escaped "\,"), and a subject
# with another CN, or a CN sharing its RDN ("+"), names no phone.
map $ssl_client_s_dn {CLIENT_MAC} {{
    default "";
    "~{client_mac_pattern}" $1;
}}

# 1 when every MAC the request path names (a run of exactly 12 hex digits, either case) is the
# client's own or 000000000000: the phone's own files, the masters and the shared files.
# A path naming another phone, or any path for a certificate that names no MAC, stays 0.
map "{CLIENT_MAC}:$uri" {PATH_ALLOWED} {{
    default 0;
    "~*^([0-9a-f]{{12}}):(?>[^0-9a-f]+|[0-9a-f]{{1,11}}(?![0-9a-f])|[0-9a-f]{{13,}}|\1(?![0-9a-f])|0{{12}}(?![0-9a-f]))*$" 1;
}}

"#
    );
}

/// The `location` regular expression of the uploads: a file under any directory whose name is
/// a phone's MAC in lowercase, as phones name their files, followed by one of
/// [`UPLOAD_SUFFIXES`]. `000000000000` is excluded: `000000000000-directory.xml` is the
/// directory every phone starts from, and no phone may replace it.
pub(crate) fn upload_location() -> String {
    let suffixes: Vec<String> = UPLOAD_SUFFIXES
        .iter()
        .map(|suffix| suffix.replace('.', r"\."))
        .collect();
    format!(
        "^/(?:[^/]+/)*(?!000000000000-)[0-9a-f]{{12}}(?:{})$",
        suffixes.join("|")
    )
}

/// The MAC a client certificate's subject names, by the rule nginx applies with
/// [`CLIENT_MAC_PATTERN`], for a server that reads the subject structurally (`polyseal
/// serve`): `rdns` is the subject's relative distinguished names in order, each a list of
/// `(attribute type, value)` with the type as OpenSSL's short name (`CN`, `O`, `OU`). It names
/// a phone when exactly one attribute is a `CN`, that CN is a whole RDN by itself, and its
/// value is 12 hex digits (returned in lower case).
///
/// ```
/// use polyseal_delivery::access::client_mac_of_subject;
/// let named = [vec![("CN", "0004F28B54F4")], vec![("O", "Polycom Inc.")]];
/// assert_eq!(client_mac_of_subject(&named).as_deref(), Some("0004f28b54f4"));
/// let escaped = [vec![("OU", "x,CN=0004F2000002")]];
/// assert_eq!(client_mac_of_subject(&escaped), None);
/// ```
pub fn client_mac_of_subject(rdns: &[Vec<(&str, &str)>]) -> Option<String> {
    let mut cns = rdns
        .iter()
        .flat_map(|rdn| rdn.iter().map(move |attribute| (rdn.len(), attribute)))
        .filter(|(_, (kind, _))| kind.eq_ignore_ascii_case("CN"));
    let (rdn_len, (_, value)) = cns.next()?;
    let alone = rdn_len == 1 && cns.next().is_none();
    (alone && value.len() == 12 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

/// Whether a request for `path` (decoded and normalised, as nginx's `$uri`) is allowed to the
/// client whose certificate names `client_mac` (12 lower-case hex digits): every run of exactly
/// 12 hex digits in the path, in either case, is that MAC or `000000000000`. The rule of
/// `nginx-config`'s second `map`.
///
/// ```
/// use polyseal_delivery::access::path_allowed;
/// assert!(path_allowed("0004f2abcdef", "/0004F2ABCDEF-key.cfg"));
/// assert!(path_allowed("0004f2abcdef", "/000000000000.cfg"));
/// assert!(!path_allowed("0004f2abcdef", "/contacts/0004f2abcdee-directory.xml"));
/// assert!(path_allowed("0004f2abcdef", "/sip-0004f2abcdef1.ld")); // 13 digits name no phone
/// ```
pub fn path_allowed(client_mac: &str, path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_hexdigit() {
            start += 1;
            continue;
        }
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_hexdigit())
            .map_or(bytes.len(), |run| start + run);
        let run = &path[start..end];
        if run.len() == 12 && !run.eq_ignore_ascii_case(client_mac) && run != "000000000000" {
            return false;
        }
        start = end;
    }
    true
}

/// Whether `path` (decoded and normalised) is a name phones upload under: a file under any
/// directory whose name is a phone's MAC in lower case followed by one of [`UPLOAD_SUFFIXES`],
/// and not `000000000000`'s. The `location` of `nginx-config`'s uploads.
///
/// ```
/// use polyseal_delivery::access::is_upload_path;
/// assert!(is_upload_path("/overrides/0004f2abcdef-phone.cfg"));
/// assert!(!is_upload_path("/000000000000-directory.xml"));
/// assert!(!is_upload_path("/0004f2abcdef-sip.cfg"));
/// ```
pub fn is_upload_path(path: &str) -> bool {
    let Some(relative) = path.strip_prefix('/') else {
        return false;
    };
    let mut segments: Vec<&str> = relative.split('/').collect();
    let name = segments.pop().unwrap_or_default();
    let Some((mac, suffix)) = name.split_at_checked(12) else {
        return false;
    };
    segments.iter().all(|directory| !directory.is_empty())
        && mac != "000000000000"
        && mac
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && UPLOAD_SUFFIXES.contains(&suffix)
}
