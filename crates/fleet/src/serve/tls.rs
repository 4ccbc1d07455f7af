//! The TLS side of `polyseal serve`: rustls with the server's certificate, and client
//! certificates verified against the device CA chain; the MAC a verified certificate names.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use super::{ClientAuth, Error};

/// The rustls server configuration: TLS 1.2 and 1.3, HTTP/1.1, client certificates required
/// when `client_auth` names a CA.
pub(super) fn server_config(
    cert: &Path,
    key: &Path,
    client_auth: &ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let bad = |path: &Path, reason: String| Error::BadPem {
        path: path.to_owned(),
        reason,
    };
    let cert_pem = read(cert, "read the certificate")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(bad(cert, "holds no PEM certificate".to_owned()));
    }
    let key_pem = read(key, "read the private key")?;
    let private_key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad(key, format!("not a PEM private key ({e})")))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            reason: e.to_string(),
        })?;
    let builder = match client_auth {
        ClientAuth::Ca { pem, origin } => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| Error::BadPem {
                    path: origin.into(),
                    reason: format!("not a PEM certificate ({e})"),
                })?;
                roots.add(cert).map_err(|e| Error::BadPem {
                    path: origin.into(),
                    reason: format!("a certificate rustls cannot use as a CA ({e})"),
                })?;
            }
            if roots.is_empty() {
                return Err(Error::BadPem {
                    path: origin.into(),
                    reason: "holds no PEM certificate".to_owned(),
                });
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| Error::Tls {
                    reason: format!("client CA {origin}: {e}"),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        ClientAuth::None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, private_key)
        .map_err(|e| bad(key, format!("does not fit the certificate ({e})")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Tickets would let a stolen ticket key decrypt past sessions (as nginx-config).
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Who the client is, by its verified certificate: the MAC its subject names, or why none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Client {
    /// A certificate whose subject names this MAC (12 lower-case hex digits).
    Phone(String),
    /// A verified certificate whose subject names no MAC (the subject, for the ledger).
    Unnamed(String),
    /// No certificate (only with `--insecure-no-client-cert`).
    Anonymous,
}

impl Client {
    /// Names this client in `entry`: its MAC, or who it is when it names none.
    pub(super) fn name(&self, entry: &mut crate::ledger::Entry) {
        match self {
            Client::Phone(mac) => entry.mac = Some(mac.clone()),
            Client::Unnamed(subject) => entry.client = Some(subject.clone()),
            Client::Anonymous => entry.client = Some("none".to_owned()),
        }
    }
}

/// Why a TLS handshake failed, when TLS refused it (a certificate from another CA, none, a
/// protocol no phone speaks); `None` when the client just went away (a port probe).
pub(super) fn refusal(error: &std::io::Error) -> Option<String> {
    let tls = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(tls.to_string())
}

/// The client of a connection whose handshake verified `certificates` (the leaf first).
pub(super) fn client_of(certificates: Option<&[CertificateDer<'_>]>) -> Client {
    let Some(leaf) = certificates.and_then(<[_]>::first) else {
        return Client::Anonymous;
    };
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Client::Unnamed("an unparsable certificate".to_owned());
    };
    let subject = parsed.subject();
    let rdns: Vec<Vec<(String, String)>> = subject
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let kind = x509_parser::objects::oid2abbrev(
                        attribute.attr_type(),
                        x509_parser::objects::oid_registry(),
                    )
                    .map_or_else(|_| attribute.attr_type().to_id_string(), str::to_owned);
                    // A value that is not a string can be no MAC.
                    let value =
                        text_of(attribute.attr_value()).unwrap_or_else(|| "\u{fffd}".to_owned());
                    (kind, value)
                })
                .collect()
        })
        .collect();
    let borrowed: Vec<Vec<(&str, &str)>> = rdns
        .iter()
        .map(|rdn| rdn.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect())
        .collect();
    match polyseal_delivery::client_mac_of_subject(&borrowed) {
        Some(mac) => Client::Phone(mac),
        None => Client::Unnamed(subject.to_string()),
    }
}

/// The text of a directory string, whatever its ASN.1 string type, as OpenSSL converts it to
/// UTF-8 for nginx's `$ssl_client_s_dn` (`ASN1_STRFLGS_UTF8_CONVERT`): BMPString as UTF-16BE,
/// UniversalString as UTF-32BE, T61String and VisibleString byte for byte (Latin-1). So both
/// servers read the same MAC from the same certificate (docs/DELIVERY.md, "The per-MAC rule").
fn text_of(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> Option<String> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let data = value.data;
    match value.tag() {
        Tag::NumericString | Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
            std::str::from_utf8(data).ok().map(str::to_owned)
        }
        Tag::BmpString if data.len() % 2 == 0 => char::decode_utf16(
            data.chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]])),
        )
        .collect::<Result<String, _>>()
        .ok(),
        Tag::UniversalString if data.len() % 4 == 0 => data
            .chunks_exact(4)
            .map(|quad| char::from_u32(u32::from_be_bytes([quad[0], quad[1], quad[2], quad[3]])))
            .collect(),
        Tag::T61String | Tag::VisibleString => Some(data.iter().map(|&b| char::from(b)).collect()),
        _ => None,
    }
}

fn read(path: &Path, action: &'static str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action,
        source,
    })
}
