//! Compressed answers, as the WxCC spec describes them for `/v1/tasks` and `/search`: gzip
//! only when the request's `Accept-Encoding` lists it *and* the answer is larger than 1 MB;
//! otherwise plain. A middleware outside the wire faults, so what it compresses is what the
//! client would have received.

use std::io::Write;
use std::sync::Arc;

use axum::body::HttpBody as _;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::Sim;

/// Answers at most this large go uncompressed whatever was asked (spec: "only if its size
/// exceeds 1 MB").
pub(super) const THRESHOLD: u64 = 1_000_000;

fn asks_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.split(';').next().is_some_and(|e| e.trim() == "gzip"))
}

pub(super) async fn compress(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let compressible = matches!(path, "/v1/tasks" | "/search") && asks_gzip(&req);
    let resp = next.run(req).await;
    // Only whole answers of a known size: a body a wire fault breaks or stalls goes as it is.
    let size = resp.body().size_hint().exact();
    if !compressible || resp.status() != StatusCode::OK || size.is_none_or(|n| n <= THRESHOLD) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let packed = gz.write_all(&bytes).and_then(|()| gz.finish());
    let Ok(packed) = packed else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    sim.count("gzipped");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    Response::from_parts(parts, Body::from(packed))
}
