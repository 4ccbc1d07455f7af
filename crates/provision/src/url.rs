//! Passwords written inside URLs (`ftp://user:password@host/…`), which Polycom parameters and
//! master-file lists accept wherever they take a server address.

use std::ops::Range;

/// Characters that end a URL's authority (`user:password@host:port`) inside a value: the path,
/// query or fragment that follows, or the comma and space that separate list entries.
const AUTHORITY_END: [char; 6] = ['/', '?', '#', ',', ' ', '\t'];

/// The byte ranges of the passwords of every `scheme://user:password@host` in `value`.
/// A user name without a password is not a secret.
pub(crate) fn url_passwords(value: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    value.match_indices("://").filter_map(|(at, _)| {
        let start = at + 3;
        let authority = &value[start..];
        let authority = &authority[..authority.find(AUTHORITY_END).unwrap_or(authority.len())];
        let user_info = &authority[..authority.rfind('@')?];
        let colon = user_info.find(':')?;
        (colon + 1 < user_info.len()).then(|| start + colon + 1..start + user_info.len())
    })
}

/// True if `value` holds a URL with a password.
pub(crate) fn has_url_password(value: &str) -> bool {
    url_passwords(value).next().is_some()
}

/// `value` with every URL password replaced by `<redacted>`, fit to show.
pub(crate) fn redact_url_passwords(value: &str) -> String {
    let mut shown = String::with_capacity(value.len());
    let mut copied = 0;
    for password in url_passwords(value) {
        shown.push_str(&value[copied..password.start]);
        shown.push_str("<redacted>");
        copied = password.end;
    }
    shown.push_str(&value[copied..]);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_found_and_redacted() {
        let cases = [
            (
                "ftp://polycom:s3cret@10.0.0.1/cfg",
                true,
                "ftp://polycom:<redacted>@10.0.0.1/cfg",
            ),
            ("https://u:p@h", true, "https://u:<redacted>@h"),
            ("http://user@host/a.cfg", false, "http://user@host/a.cfg"),
            ("http://user:@host/a.cfg", false, "http://user:@host/a.cfg"),
            (
                "http://host:8080/a@b.cfg",
                false,
                "http://host:8080/a@b.cfg",
            ),
            ("site.cfg", false, "site.cfg"),
            (
                "a.cfg, http://x:y@h/b.cfg, tftp://q:r@h2/c.cfg",
                true,
                "a.cfg, http://x:<redacted>@h/b.cfg, tftp://q:<redacted>@h2/c.cfg",
            ),
            ("http://u:p@ss@h/x", true, "http://u:<redacted>@h/x"),
        ];
        for (value, has, redacted) in cases {
            assert_eq!(has_url_password(value), has, "{value}");
            assert_eq!(redact_url_passwords(value), redacted, "{value}");
        }
    }
}
