//! The text of the configuration: a comment saying what it does, the per-MAC `map` blocks
//! and the `server` block.

use std::fmt::Write as _;

use crate::access::{self, MAX_UPLOAD_BYTES, PATH_ALLOWED};
use crate::config::Checked;
use crate::{Error, NginxConfig};

/// Width that warning comments are wrapped at.
const COMMENT_WIDTH: usize = 96;

/// TLS 1.2 suites: ECDHE key exchange and AEAD ciphers only (TLS 1.3 suites are all modern
/// and are not configured by `ssl_ciphers`).
const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// How deep a client certificate chain may be: the Polycom device CA issues factory
/// certificates through an intermediate CA.
const CLIENT_VERIFY_DEPTH: u32 = 3;

impl NginxConfig {
    /// The nginx configuration: the per-MAC `map` blocks (with a client CA) and one `server`
    /// block, to be placed inside nginx's `http { }` block (for example as
    /// `/etc/nginx/conf.d/polyseal.conf`).
    ///
    /// It serves the tree over TLS 1.2 and 1.3 only, with no plain-HTTP listener and no
    /// directory listings; hidden files (`.name`) are never served. With a client CA, a
    /// client must present a certificate it issued, and may fetch only the files of the MAC
    /// its certificate names, plus files that name no MAC (see [`crate::access`] for the rule).
    /// With an uploads directory, phones may PUT their own uploads (see
    /// [`crate::UPLOAD_SUFFIXES`]) there, under the same rule, and GET them back; every other
    /// PUT is refused.
    ///
    /// Errors: any input [`NginxConfig`] refuses (see [`Error`]).
    pub fn render(&self) -> Result<String, Error> {
        let checked = self.check()?;
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write(&checked, &mut out);
        Ok(out)
    }

    fn write(&self, c: &Checked<'_>, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "# nginx configuration written by polyseal {} (polyseal nginx-config).",
            env!("CARGO_PKG_VERSION")
        )?;
        writeln!(
            out,
            "# It serves the published tree \"{}\" over TLS only. Put this file inside nginx's",
            c.tree
        )?;
        writeln!(
            out,
            "# http {{ }} block (for example as /etc/nginx/conf.d/polyseal.conf) and run nginx -t.\n\
             # docs/DELIVERY.md explains it."
        )?;
        for warning in self.warnings() {
            writeln!(out, "#")?;
            write_comment(out, &format!("WARNING: {warning}"));
        }
        writeln!(out)?;
        if c.client_ca.is_some() {
            access::write_maps(out);
        }
        if c.access_log.is_some() {
            writeln!(
                out,
                "# Every request, one JSON line, for `polyseal status --nginx-log`.\n{}\n",
                crate::access_log::log_format(c.client_ca.is_some())
            )?;
        }

        writeln!(out, "server {{")?;
        match c.listen {
            Some(addr) => writeln!(out, "    listen {addr} ssl;")?,
            None => writeln!(out, "    listen 443 ssl;\n    listen [::]:443 ssl;")?,
        }
        if let Some(name) = c.server_name {
            writeln!(out, "    server_name {name};")?;
        }
        writeln!(
            out,
            r#"
    ssl_certificate "{cert}";
    ssl_certificate_key "{key}";
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers "{TLS12_CIPHERS}";
    ssl_prefer_server_ciphers off;
    # Tickets would let a stolen ticket key decrypt past sessions.
    ssl_session_tickets off;"#,
            cert = c.cert,
            key = c.key,
        )?;
        if let Some(ca) = c.client_ca {
            writeln!(
                out,
                r#"
    # Every client must present a certificate issued by this CA (the Polycom device CA).
    ssl_client_certificate "{ca}";
    ssl_verify_client on;
    ssl_verify_depth {CLIENT_VERIFY_DEPTH};

    # The per-MAC rule: a path naming another phone's MAC is refused, whatever the method.
    if ({PATH_ALLOWED} = 0) {{
        return 403;
    }}"#
            )?;
        }
        writeln!(
            out,
            r#"
    root "{tree}";
    autoindex off;
    server_tokens off;{access_log}
    default_type application/octet-stream;

    # The published tree is read-only: GET and HEAD, nothing else.
    location / {{
        limit_except GET {{
            deny all;
        }}
    }}

    # Hidden files (state, editor and lock files) are never served.
    location ~ "/\." {{
        return 404;
    }}"#,
            tree = c.tree,
            access_log = c.access_log.map_or(String::new(), |log| format!(
                "\n    access_log \"{log}\" {};",
                crate::access_log::LOG_FORMAT_NAME
            )),
        )?;
        if let Some(uploads) = c.uploads {
            writeln!(
                out,
                r#"
    # Phones upload their override file, contact directory and logs here (HTTP PUT), and read
    # them back with GET; a file not uploaded yet is looked up in the published tree.
    location ~ "{location}" {{
        root "{uploads}";
        dav_methods PUT;
        create_full_put_path on;
        dav_access user:rw group:r;
        client_max_body_size {max_kib}k;
        limit_except GET PUT {{
            deny all;
        }}
        error_page 404 = @published;
    }}

    location @published {{
        limit_except GET {{
            deny all;
        }}
    }}"#,
                location = access::upload_location(),
                max_kib = MAX_UPLOAD_BYTES / 1024,
            )?;
        }
        writeln!(out, "}}")
    }
}

/// Writes `text` as `#` comment lines of at most [`COMMENT_WIDTH`] characters.
fn write_comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > COMMENT_WIDTH && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line.truncate(1);
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}
