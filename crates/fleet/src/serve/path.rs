//! A request path as nginx's `$uri` has it: percent-decoded, `.` and `..` resolved, slashes
//! merged; the per-MAC rule and the file lookup both use this form, so no spelling of a path
//! reaches a file the rule did not judge (docs/DELIVERY.md).

/// A request path, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RequestPath {
    /// `/a/b.cfg`: absolute, no `.`, `..` or empty segment.
    pub(super) path: String,
    /// Whether the request named a directory (a trailing `/`, or the root).
    pub(super) directory: bool,
}

impl RequestPath {
    /// Normalises the path of a request target; `None` for one that is not a path (no leading
    /// `/`), is not UTF-8 once decoded, holds a NUL, or climbs above the root.
    pub(super) fn parse(raw: &str) -> Option<RequestPath> {
        if !raw.starts_with('/') {
            return None;
        }
        let decoded = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .ok()?;
        if decoded.contains('\0') {
            return None;
        }
        let mut segments: Vec<&str> = Vec::new();
        for segment in decoded.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop()?;
                }
                name => segments.push(name),
            }
        }
        let last = decoded.rsplit('/').next().unwrap_or_default();
        Some(RequestPath {
            directory: segments.is_empty() || matches!(last, "" | "." | ".."),
            path: format!("/{}", segments.join("/")),
        })
    }

    /// The path relative to a served directory (`a/b.cfg`).
    pub(super) fn relative(&self) -> &str {
        &self.path[1..]
    }

    /// Whether a segment is hidden (starts with `.`): state, editor and lock files.
    pub(super) fn is_hidden(&self) -> bool {
        self.path.split('/').any(|segment| segment.starts_with('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::RequestPath;

    #[test]
    fn spellings_of_one_file_normalise_to_one_path() {
        for raw in [
            "/0004f2abcdef-key.cfg",
            "//0004f2abcdef-key.cfg",
            "/./0004f2abcdef-key.cfg",
            "/contacts/../0004f2abcdef-key.cfg",
            "/%30004f2abcdef-key.cfg",
        ] {
            let parsed = RequestPath::parse(raw).expect("a path");
            assert_eq!(parsed.path, "/0004f2abcdef-key.cfg", "{raw}");
            assert!(!parsed.directory);
        }
        assert!(RequestPath::parse("/../etc/passwd").is_none());
        assert!(RequestPath::parse("/a%00b").is_none());
        assert!(RequestPath::parse("/%ff").is_none());
        assert!(RequestPath::parse("relative").is_none());
        assert!(RequestPath::parse("/contacts/").expect("dir").directory);
        assert!(
            RequestPath::parse("/.polyseal/state")
                .expect("p")
                .is_hidden()
        );
    }
}
