//! The CLI's side of the API: one HTTP/1.1 request over the unix socket.

use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// Sends one request and returns the status and body. `body` is (content type, bytes).
pub async fn request(socket: &Path, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<(StatusCode, Bytes), String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("cannot reach sluice at {}: {e} (is it running? --socket)", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", "sluice");
    let bytes = match body {
        Some((ct, b)) => {
            req = req.header("content-type", ct);
            b
        }
        None => Vec::new(),
    };
    let req = req.body(Full::new(Bytes::from(bytes))).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}

/// Runs `request` on a small runtime of its own (for the synchronous CLI).
pub fn call(socket: &Path, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<(StatusCode, Bytes), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(request(socket, method, path, body))
}
