//! `polyseal serve`: an HTTPS provisioning server for the published tree, with the per-MAC
//! rule of `nginx-config` (polyseal-delivery's `access`), uploads, and the ledger
//! (docs/DELIVERY.md, "polyseal serve").
//!
//! rustls verifies client certificates against the device CA chain; hyper serves HTTP/1.1
//! with keep-alive. The tree is opened anew for every request, so a tree `publish` swapped in
//! is served at once. Connections, header size and idle time are bounded ([`Limits`]), and
//! SIGTERM or SIGINT stops accepting, lets requests in flight finish (5 seconds at most) and
//! returns.

mod error;
mod files;
mod handler;
mod path;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

pub use error::Error;

use crate::ledger::{Entry, LedgerWriter};

/// Who may connect.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Clients must present a certificate issued under these CA certificates (PEM), and get
    /// only what the per-MAC rule allows the MAC its subject names.
    Ca {
        /// The CA certificates, PEM.
        pem: Vec<u8>,
        /// Where they came from, for messages (a file, or the bundled chain).
        origin: String,
    },
    /// No client certificate is asked for: every file is served to anyone (the per-MAC rule
    /// cannot apply). Only on explicit request.
    None,
}

/// The bounds that keep a slow or hostile client from holding the server.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time for a TLS handshake.
    pub handshake_timeout: Duration,
    /// Time for a request's headers to arrive, and for the next request on an idle
    /// keep-alive connection.
    pub header_timeout: Duration,
    /// Time for an upload's body to arrive.
    pub body_timeout: Duration,
    /// Time a response (or any write) may wait for a client that does not read it.
    pub write_timeout: Duration,
    /// The most bytes of a request's headers.
    pub max_header_bytes: usize,
    /// How long requests in flight may take to finish at shutdown.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    /// 1,024 connections (a boot storm of a large fleet queues, a slow client holds one slot);
    /// 10 s for a handshake and for headers, 30 s for an upload body (4 MiB at the slowest
    /// phone link); 60 s for a write the client does not read (nginx's `send_timeout`);
    /// 16 KiB of headers (nginx's default large buffers are 8 KiB × 4); 5 s to drain at
    /// shutdown.
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What to serve, where, to whom.
#[derive(Clone)]
#[non_exhaustive]
pub struct ServeConfig {
    /// The published tree (`publish --out`).
    pub tree: PathBuf,
    /// Where phones' uploads are stored and read back from; `None` refuses uploads.
    pub uploads: Option<PathBuf>,
    /// The server's certificate chain, PEM.
    pub cert: PathBuf,
    /// The server's private key, PEM.
    pub key: PathBuf,
    /// Who may connect.
    pub client_auth: ClientAuth,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// The ledger file, if requests are to be recorded.
    pub ledger: Option<PathBuf>,
    /// When the ledger is compacted.
    pub compaction: crate::ledger::Compaction,
    /// The bounds.
    pub limits: Limits,
    /// Told what went wrong while serving that no response shows (a ledger line that could
    /// not be written); by default, nothing.
    pub warn: Warn,
}

/// A receiver of the server's warnings.
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

impl ServeConfig {
    /// Serving `tree` with `cert` and `key` on `listen`, to phones whose certificates chain to
    /// the bundled Polycom device CA chain; no uploads, no ledger, the default limits.
    pub fn new(tree: PathBuf, cert: PathBuf, key: PathBuf, listen: SocketAddr) -> ServeConfig {
        ServeConfig {
            tree,
            uploads: None,
            cert,
            key,
            client_auth: ClientAuth::Ca {
                pem: polyseal_delivery::POLYCOM_DEVICE_CA_PEM.as_bytes().to_vec(),
                origin: "the Polycom device CA chain bundled with polyseal".to_owned(),
            },
            listen,
            ledger: None,
            compaction: crate::ledger::Compaction::default(),
            limits: Limits::default(),
            warn: Arc::new(|_| {}),
        }
    }
}

/// Bytes of a connection's send buffer: 256 KiB drain in under 7 s at 40 KB/s, and keep a
/// 100 ms path busy at 2.5 MB/s.
const SEND_BUFFER: usize = 256 * 1024;

/// What every request needs.
pub(crate) struct State {
    tree: PathBuf,
    uploads: Option<PathBuf>,
    client_certificates: bool,
    ledger: Option<Arc<LedgerWriter>>,
    limits: Limits,
    warn: Warn,
}

/// A server bound to its address, ready to run.
pub struct Server {
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
}

impl Server {
    /// Checks everything (the directories, the certificate and key, the client CA, the ledger
    /// outside what is served) and binds the address; serves nothing yet.
    pub fn bind(config: ServeConfig) -> Result<Server, Error> {
        let tree = existing_dir(&config.tree, "open the tree")?;
        let uploads = config
            .uploads
            .as_deref()
            .map(|dir| existing_dir(dir, "open the uploads directory"))
            .transpose()?;
        // Compared as the file system resolves them (`..`, symbolic links), while the tree is
        // served by the name given (a link an operator swaps keeps working).
        let real_tree = real_path(&tree)?;
        let real_uploads = uploads.as_deref().map(real_path).transpose()?;
        if let (Some(uploads), Some(real)) = (&uploads, &real_uploads)
            && (real.starts_with(&real_tree) || real_tree.starts_with(real))
        {
            return Err(Error::BadDirectory {
                path: uploads.clone(),
                reason: format!(
                    "overlaps the tree {}: uploads are never written into the tree",
                    tree.display()
                ),
            });
        }
        let ledger = match &config.ledger {
            None => None,
            Some(path) => {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
                let parent = real_path(&existing_dir(
                    parent.unwrap_or(Path::new(".")),
                    "open the ledger's directory",
                )?)?;
                if let Some(served) = [Some(&real_tree), real_uploads.as_ref()]
                    .into_iter()
                    .flatten()
                    .find(|served| parent.starts_with(served))
                {
                    return Err(Error::LedgerServed {
                        ledger: path.clone(),
                        served: served.clone(),
                    });
                }
                let writer = LedgerWriter::open(path, config.compaction)?;
                let links = writer.links();
                if links > 1 {
                    return Err(Error::LedgerLinked {
                        ledger: path.clone(),
                        links,
                    });
                }
                if writer.found_torn_tail() {
                    (config.warn)(&format!(
                        "{}: ends with a torn line (the server stopped mid-write); it is kept, \
                         ended with a newline, and skipped by status",
                        path.display()
                    ));
                }
                Some(Arc::new(writer))
            }
        };
        if let Some(uploads) = &uploads {
            let removed = files::remove_stale_uploads(uploads);
            if removed > 0 {
                (config.warn)(&format!(
                    "{}: removed {removed} unfinished upload(s) a stopped server left",
                    uploads.display()
                ));
            }
        }
        let tls = tls::server_config(&config.cert, &config.key, &config.client_auth)?;
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        Ok(Server {
            listener,
            tls,
            state: Arc::new(State {
                tree,
                uploads,
                client_certificates: matches!(config.client_auth, ClientAuth::Ca { .. }),
                ledger,
                limits: config.limits,
                warn: config.warn,
            }),
        })
    }

    /// The address it listens on (the port chosen, for `:0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting, lets requests in flight finish
    /// (at most the drain timeout) and returns how it stopped.
    pub fn run_until_signalled(self) -> Result<Shutdown, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Io {
                path: PathBuf::from("."),
                action: "start the server's threads",
                source,
            })?;
        let drain = self.state.limits.drain_timeout;
        let served = runtime.block_on(async move {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let mut interrupt =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            let stop = async move {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            };
            self.serve(stop).await
        });
        runtime.shutdown_timeout(drain);
        served.map_err(|source| Error::Io {
            path: PathBuf::from("."),
            action: "serve",
            source,
        })
    }

    /// Accepts and serves connections until `stop` completes, then drains.
    async fn serve(self, stop: impl std::future::Future<Output = ()>) -> std::io::Result<Shutdown> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls);
        let limits = self.state.limits;
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(stop);
        loop {
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = &mut stop => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    // Out of file descriptors and the like: wait, never spin.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            // Responses go out at once: with Nagle's algorithm, a response written in two
            // pieces waits for the client's delayed ACK, 40 ms a request (docs/PERFORMANCE.md,
            // "serve and status").
            let _ = tcp.set_nodelay(true);
            // A send buffer of its own size, not the kernel's autotuned megabytes: a slow but
            // steady reader then makes the socket writable again every few seconds, and the
            // write timeout cuts only a client that stops reading (at 40 KB/s, 4 MiB of
            // buffer took longer to drain than the timeout: docs/DELIVERY.md, "Bounds").
            #[cfg(target_os = "linux")]
            let _ = rustix::net::sockopt::set_socket_send_buffer_size(&tcp, SEND_BUFFER);
            let acceptor = acceptor.clone();
            let state = self.state.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                // A client that stops reading (pipelined requests whose responses it never
                // takes) is cut once a write has waited this long; reads are bounded by the
                // handshake, header and body timeouts.
                let mut tcp = tokio_io_timeout::TimeoutStream::new(tcp);
                tcp.set_write_timeout(Some(limits.write_timeout));
                let tcp = Box::pin(tcp);
                let stream = match tokio::time::timeout(
                    limits.handshake_timeout,
                    acceptor.accept(tcp),
                )
                .await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        // A phone refused in the handshake (its certificate from a CA not
                        // given) is in the ledger; a probe that only connects is not.
                        if let Some(reason) = tls::refusal(&e) {
                            let mut entry = Entry::now("-", "-", 0, 0);
                            entry.client = Some(format!(
                                "refused in the TLS handshake from {}: {reason}",
                                peer.ip()
                            ));
                            handler::record(&state, entry).await;
                        }
                        return;
                    }
                    Err(_) => return,
                };
                let client = Arc::new(tls::client_of(stream.get_ref().1.peer_certificates()));
                let service = {
                    let (state, client) = (state.clone(), client.clone());
                    service_fn(move |request| {
                        handler::handle(state.clone(), client.clone(), request)
                    })
                };
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .max_buf_size(limits.max_header_bytes.max(8192))
                    .keep_alive(true);
                let connection = http.serve_connection(TokioIo::new(stream), service);
                // hyper answers a request it cannot parse itself (400, or 431 for headers past
                // the bound) and closes: in the ledger too, as the request it was.
                if let Err(e) = watcher.watch(connection).await
                    && e.is_parse()
                {
                    let code = if e.is_parse_too_large() { 431 } else { 400 };
                    let mut entry = Entry::now("-", "-", code, 0);
                    client.name(&mut entry);
                    handler::record(&state, entry).await;
                }
            });
        }
        drop(listener);
        let drained = tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await;
        // Connections still open hold a slot each.
        let unfinished = match drained {
            Ok(()) => 0,
            Err(_) => limits
                .max_connections
                .saturating_sub(slots.available_permits()),
        };
        Ok(Shutdown { unfinished })
    }
}

/// How the server stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shutdown {
    /// Connections still busy when the drain timeout ran out, cut.
    pub unfinished: usize,
}

/// `path` as the file system resolves it (no `..`, no symbolic links).
fn real_path(path: &Path) -> Result<PathBuf, Error> {
    std::fs::canonicalize(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        action: "resolve",
        source,
    })
}

/// `dir` made absolute, if it is a directory.
fn existing_dir(dir: &Path, action: &'static str) -> Result<PathBuf, Error> {
    let absolute = std::path::absolute(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        action,
        source,
    })?;
    match std::fs::metadata(&absolute) {
        Ok(meta) if meta.is_dir() => Ok(absolute),
        Ok(_) => Err(Error::BadDirectory {
            path: dir.to_owned(),
            reason: "is not a directory".to_owned(),
        }),
        Err(source) => Err(Error::Io {
            path: dir.to_owned(),
            action,
            source,
        }),
    }
}
