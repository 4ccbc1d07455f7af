//! nginx's access log in polyseal's format: one JSON object per request, what `polyseal status
//! --nginx-log` reads into the same model as the ledger of `polyseal serve`.

/// The name of the `log_format`.
pub const LOG_FORMAT_NAME: &str = "polyseal";

/// The `log_format` line (nginx's `http` context): the time in seconds since the epoch
/// (`$msec`), the MAC the per-MAC rule's own map takes from the client certificate (empty
/// without client certificates), the certificate's subject, the method, the normalised path
/// (`$uri`, as the rule judged it), the status and the bytes sent.
pub fn log_format(client_certificates: bool) -> String {
    let mac = if client_certificates {
        crate::access::CLIENT_MAC
    } else {
        ""
    };
    format!(
        r#"log_format {LOG_FORMAT_NAME} escape=json '{{"time":$msec,"mac":"{mac}","client":"$ssl_client_s_dn","method":"$request_method","path":"$uri","status":$status,"bytes":$body_bytes_sent}}';"#
    )
}
