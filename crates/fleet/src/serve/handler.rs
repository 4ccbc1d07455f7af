//! One request: the per-MAC rule, then the file (or the upload), then the ledger line, then
//! the response. Every path through here answers; nothing a client sends can panic it.

use std::convert::Infallible;
use std::io::Read as _;

use std::sync::Arc;
use tokio::io::AsyncWriteExt as _;

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use polyseal_delivery::{MAX_UPLOAD_BYTES, is_upload_path, path_allowed};

use super::State;
use super::files::{self, Staged};
use super::path::RequestPath;
use super::tls::Client;
use crate::ledger::Entry;

/// The first bytes of a file read for its KeyDesc: the header line of an encrypted file, or
/// the `configEncryption.key` of a key file, comes well before.
const HEAD_BYTES: usize = 1024;

/// A response body: a file streamed, or a few bytes.
pub(super) type Body = BoxBody<Bytes, std::io::Error>;

/// Answers `request` from `client`, after appending its ledger line.
pub(super) async fn handle(
    state: Arc<State>,
    client: Arc<Client>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = request.method().clone();
    let raw_path = request.uri().path().to_owned();
    let (response, mut entry) = match RequestPath::parse(&raw_path) {
        None => (
            status(StatusCode::BAD_REQUEST),
            Entry::now(method.as_str(), &raw_path, 400, 0),
        ),
        Some(path) => answer(&state, &client, request, &path).await,
    };
    client.name(&mut entry);
    record(&state, entry).await;
    Ok(response)
}

/// Appends `entry` to the ledger, if there is one. Written before the response is sent; a
/// ledger that cannot be written is reported (ServeConfig::warn) for each request it misses,
/// and the phone is still answered.
pub(super) async fn record(state: &State, entry: Entry) {
    if let Some(ledger) = &state.ledger {
        let ledger = ledger.clone();
        let written = tokio::task::spawn_blocking(move || ledger.append(&entry)).await;
        if let Ok(Err(e)) = written {
            (state.warn)(&e.to_string());
        }
    }
}

/// The response to a well-formed path, and its ledger entry (without the client).
async fn answer(
    state: &State,
    client: &Client,
    request: Request<Incoming>,
    path: &RequestPath,
) -> (Response<Body>, Entry) {
    let method = request.method().clone();
    let refuse = |code: StatusCode| {
        (
            status(code),
            Entry::now(method.as_str(), &path.path, code.as_u16(), 0),
        )
    };
    if state.client_certificates {
        let allowed = match client {
            Client::Phone(mac) => path_allowed(mac, &path.path),
            Client::Unnamed(_) | Client::Anonymous => false,
        };
        if !allowed {
            return refuse(StatusCode::FORBIDDEN);
        }
    }
    if path.is_hidden() {
        return refuse(StatusCode::NOT_FOUND);
    }
    let upload = state.uploads.is_some() && is_upload_path(&path.path);
    match method {
        Method::GET | Method::HEAD => serve_file(state, path, upload, method == Method::HEAD).await,
        Method::PUT if upload => store_upload(state, request, path).await,
        _ => refuse(StatusCode::FORBIDDEN),
    }
}

/// GET or HEAD of a file: from the uploads directory first for an upload name, then the tree.
async fn serve_file(
    state: &State,
    path: &RequestPath,
    upload: bool,
    head: bool,
) -> (Response<Body>, Entry) {
    let method = if head { "HEAD" } else { "GET" };
    let not_found = || {
        (
            status(StatusCode::NOT_FOUND),
            Entry::now(method, &path.path, 404, 0),
        )
    };
    if path.directory {
        return not_found();
    }
    let roots: Vec<std::path::PathBuf> = state
        .uploads
        .iter()
        .filter(|_| upload)
        .chain(std::iter::once(&state.tree))
        .cloned()
        .collect();
    let relative = path.relative().to_owned();
    let opened = tokio::task::spawn_blocking(move || {
        for root in &roots {
            if let Ok(mut file) = files::open_beneath(root, &relative) {
                let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                let mut head = vec![0u8; HEAD_BYTES];
                let read = file.read(&mut head).unwrap_or(0);
                head.truncate(read);
                // Back to the start: the body is the whole file.
                let rewound = std::io::Seek::rewind(&mut file).is_ok();
                return rewound.then_some((file, len, head));
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some((file, len, first)) = opened else {
        return not_found();
    };
    let mut entry = Entry::now(method, &path.path, 200, if head { 0 } else { len });
    entry.key_desc = key_desc_of(&first);
    // A HEAD serves no key: only a GET hands the phone the file.
    if entry.key_desc.is_none() && !head {
        entry.key_served = key_served_by(&first);
    }
    let body = if head {
        empty()
    } else {
        let stream =
            tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)).map_ok(Frame::data);
        BodyExt::boxed(StreamBody::new(stream))
    };
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .body(body);
    (
        response.unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR)),
        entry,
    )
}

/// PUT of an upload: at most [`MAX_UPLOAD_BYTES`], read within the body timeout, written whole
/// into the uploads directory (never the tree).
async fn store_upload(
    state: &State,
    request: Request<Incoming>,
    path: &RequestPath,
) -> (Response<Body>, Entry) {
    let refuse = |code: StatusCode| {
        (
            status(code),
            Entry::now("PUT", &path.path, code.as_u16(), 0),
        )
    };
    let Some(uploads) = state.uploads.clone() else {
        return refuse(StatusCode::FORBIDDEN);
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A client that waits for `100 Continue` has sent no body yet: a refusal needs none read.
    let waits = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut body = request.into_body();
    let timeout = state.limits.body_timeout;
    let refuse_unread = |body: Incoming, code: StatusCode| async move {
        if !waits {
            // Read and dropped (within the body timeout, and no more than an upload's
            // bound) so that the client, still sending, reads the answer rather than a reset
            // connection (as nginx's lingering close).
            drain(body, timeout).await;
        }
        refuse(code)
    };
    if declared.is_some_and(|len| len > MAX_UPLOAD_BYTES) {
        return refuse_unread(body, StatusCode::PAYLOAD_TOO_LARGE).await;
    }
    let relative = path.relative().to_owned();
    let staged = tokio::task::spawn_blocking(move || Staged::beneath(&uploads, &relative)).await;
    let (staged, file) = match staged {
        Ok(Ok(staged)) => staged,
        // A directory of the name is a file already (the phone's own upload): a conflict
        // of names, not a server error.
        Ok(Err(e)) if e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error()) => {
            return refuse_unread(body, StatusCode::CONFLICT).await;
        }
        _ => return refuse_unread(body, StatusCode::INTERNAL_SERVER_ERROR).await,
    };
    // Streamed to the temporary file as it arrives: an upload holds a frame in memory, never
    // its whole body (1,024 connections × 4 MiB would be 4 GiB).
    let mut file = tokio::fs::File::from_std(file);
    let mut first = Vec::new();
    let mut received = 0u64;
    let collected = tokio::time::timeout(timeout, async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| StatusCode::BAD_REQUEST)?;
            if let Some(data) = frame.data_ref() {
                received += data.len() as u64;
                if received > MAX_UPLOAD_BYTES {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                let wanted = HEAD_BYTES.saturating_sub(first.len()).min(data.len());
                first.extend_from_slice(&data[..wanted]);
                file.write_all(data)
                    .await
                    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
            }
        }
        file.flush()
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)
    })
    .await;
    match collected {
        Ok(Ok(())) => {}
        Ok(Err(code)) => return refuse_unread(body, code).await,
        Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT),
    }
    let file = file.into_std().await;
    let stored = tokio::task::spawn_blocking(move || staged.commit(file)).await;
    let code = match stored {
        Ok(Ok(true)) => StatusCode::CREATED,
        Ok(Ok(false)) => StatusCode::NO_CONTENT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let mut entry = Entry::now("PUT", &path.path, code.as_u16(), received);
    entry.key_desc = key_desc_of(&first);
    (status(code), entry)
}

/// The KeyDesc of the key a key file (a plaintext bootstrap or key-change file) carries, from
/// its first bytes: the `KeyDesc=` of its key string, never the key.
fn key_served_by(first: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(first).ok()?;
    if !text.contains("configEncryption.key") {
        return None;
    }
    let after = text.split_once("KeyDesc=")?.1;
    let key_desc: String = after
        .chars()
        .take_while(|c| !matches!(c, ';' | '"' | '\'' | '<' | '\n'))
        .collect();
    polyseal_crypto::KeyDesc::new(&key_desc)
        .ok()
        .map(|d| d.as_str().to_owned())
}

/// Reads and drops what is left of `body`, for at most `timeout` and an upload's bound of
/// bytes; the connection is closed after (hyper closes one whose body was not read whole).
async fn drain(mut body: Incoming, timeout: std::time::Duration) {
    let _ = tokio::time::timeout(timeout, async {
        let mut dropped = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            dropped += frame.data_ref().map_or(0, |d| d.len() as u64);
            if dropped > MAX_UPLOAD_BYTES {
                break;
            }
        }
    })
    .await;
}

/// The KeyDesc in the header of an encrypted file whose first bytes are `first`.
fn key_desc_of(first: &[u8]) -> Option<String> {
    polyseal_crypto::Header::parse(first)
        .ok()
        .and_then(|header| header.key_desc().map(|d| d.as_str().to_owned()))
}

fn empty() -> Body {
    BodyExt::boxed(Full::new(Bytes::new()).map_err(|never| match never {}))
}

/// A response with no body but its status.
fn status(code: StatusCode) -> Response<Body> {
    let mut response = Response::new(empty());
    *response.status_mut() = code;
    response
}
