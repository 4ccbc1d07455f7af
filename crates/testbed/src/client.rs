//! An HTTPS client as a phone is one: it trusts the test server CA, presents a client
//! certificate or none, and sees every status code; and a plain-HTTP probe.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ureq::Agent;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use crate::Identity;

/// How long one request may take; loopback answers in milliseconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a response body a test reads (a phone's files are far smaller).
const MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// A provisioning server as clients reach it: its base URL and the CA certificate its
/// server certificate is checked against.
#[derive(Clone, Debug)]
pub struct Server {
    base_url: String,
    trust_pem: String,
}

impl Server {
    /// The server at `base_url` (`https://127.0.0.1:8443`, no trailing slash), whose
    /// certificate chains to `trust_pem`.
    pub fn new(base_url: impl Into<String>, trust_pem: impl Into<String>) -> Server {
        Server {
            base_url: base_url.into(),
            trust_pem: trust_pem.into(),
        }
    }

    /// The URL of `path` (relative to the tree root, with or without a leading `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }
}

/// What the server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// A request that got no HTTP answer: connection refused, TLS handshake failed, timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionError {
    /// The URL requested.
    pub url: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.reason)
    }
}

impl std::error::Error for ConnectionError {}

/// An HTTPS client with an optional client certificate.
pub struct Client {
    agent: Agent,
    server: Server,
}

impl Client {
    /// A client of `server` presenting `identity`, or no certificate.
    ///
    /// # Panics
    /// If the server CA or the identity is not valid PEM (they come from [`crate::Pki`]).
    pub fn new(server: &Server, identity: Option<&Identity>) -> Client {
        let trust = Certificate::from_pem(server.trust_pem.as_bytes())
            .unwrap_or_else(|e| panic!("the server CA is not a PEM certificate: {e}"));
        let client_cert = identity.map(|identity| {
            let chain = ureq::tls::parse_pem(identity.chain_pem().as_bytes())
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect::<Vec<_>>();
            let key = PrivateKey::from_pem(identity.key_pem().as_bytes())
                .unwrap_or_else(|e| panic!("the client key is not PEM: {e}"));
            ClientCert::new_with_certs(&chain, key)
        });
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&[trust]))
            .client_cert(client_cert)
            .build();
        let agent = Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .new_agent();
        Client {
            agent,
            server: server.clone(),
        }
    }

    /// GET `path` (relative to the tree root).
    pub fn get(&self, path: &str) -> Result<Response, ConnectionError> {
        let url = self.server.url(path);
        let result = self.agent.get(&url).call();
        read_response(url, result)
    }

    /// PUT `body` at `path`, as a phone uploads.
    pub fn put(&self, path: &str, body: &[u8]) -> Result<Response, ConnectionError> {
        let url = self.server.url(path);
        let result = self.agent.put(&url).send(body);
        read_response(url, result)
    }
}

impl Client {
    /// GET `path`, calling `between` once the response's headers are in and before its body
    /// is read (a test that holds a response in flight).
    pub fn get_holding(
        &self,
        path: &str,
        between: impl FnOnce(),
    ) -> Result<Response, ConnectionError> {
        let url = self.server.url(path);
        let result = self.agent.get(&url).call();
        if result.is_ok() {
            between();
        }
        read_response(url, result)
    }
}

fn read_response(
    url: String,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Response, ConnectionError> {
    let failed = |e: ureq::Error, url: String| ConnectionError {
        url,
        reason: e.to_string(),
    };
    let mut response = result.map_err(|e| failed(e, url.clone()))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()
        .map_err(|e| failed(e, url))?;
    Ok(Response { status, body })
}

/// Sends a plain-HTTP (no TLS) GET for `path` to `addr` and returns the raw answer, headers
/// included, as text; an empty string if the server closed the connection without one.
///
/// # Panics
/// If nothing listens at `addr`.
pub fn plain_http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr)
        .unwrap_or_else(|e| panic!("cannot connect to {addr} for a plain-HTTP request: {e}"));
    let request = format!(
        "GET /{} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        path.trim_start_matches('/')
    );
    let mut answer = Vec::new();
    // A server may answer garbage with a reset; what was read until then is the answer.
    let _ = stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .and_then(|()| stream.read_to_end(&mut answer));
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends the raw bytes `request` over TLS to `addr` with the real `openssl s_client`,
/// presenting `identity`, keeps the connection open (sending nothing more), and returns what
/// the server answered within `within`, or until it closed: requests no HTTP library sends,
/// such as headers announcing a body that never comes.
///
/// # Panics
/// If `openssl` is missing.
pub fn openssl_exchange(
    addr: SocketAddr,
    identity: &Identity,
    request: &[u8],
    within: Duration,
) -> String {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("a temporary directory: {e}"));
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    for (path, pem) in [(&cert, identity.chain_pem()), (&key, identity.key_pem())] {
        std::fs::write(path, pem).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &addr.to_string()])
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl must be installed for raw TLS requests: {e}"));
    let mut stdin = child.stdin.take();
    if let Some(stdin) = stdin.as_mut() {
        let _ = stdin.write_all(request);
        let _ = stdin.flush();
    }
    let mut stdout = child
        .stdout
        .take()
        .unwrap_or_else(|| panic!("openssl's stdout"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 || sender.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + within;
    let mut answer = Vec::new();
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match receiver.recv_timeout(left) {
            Ok(chunk) => answer.extend_from_slice(&chunk),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    drop(stdin);
    String::from_utf8_lossy(&answer).into_owned()
}
