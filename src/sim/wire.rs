//! Faults on the wire: what a flaky network or a misbehaving proxy does to a good answer.
//! A middleware, so every route gets them without its handler knowing (see [`super::faults`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;

use super::faults::FaultKind;
use super::Sim;

/// How long a `stall` or `hang` keeps the client waiting: longer than any test's read timeout.
const SILENCE: Duration = Duration::from_secs(20);

/// The fault route a request path belongs to.
fn route_of(path: &str) -> Option<&'static str> {
    Some(match path {
        "/v1/access_token" => "token",
        "/v1/tasks" | "/v1/contactCenter/tasks" => "tasks",
        "/v1/captures/query" | "/v1/contactCenter/captures/query" => "captures",
        "/search" => "search",
        p if p.starts_with("/v2/subscriptions") || p == "/v2/event-types" => "subscriptions",
        p if p.starts_with("/_storage/") => "audio",
        p if p.starts_with("/_transcripts/") => "transcripts",
        p if p.starts_with("/aws/api/csrs") => "csrs",
        p if p.starts_with("/aws/api/cars") => "cars",
        p if p.starts_with("/rest/api/v2/recordings/") && p.ends_with("/audio") => "xima_audio",
        "/rest/api/v2/recordings" | "/rest/api/v2/call-recording-info" => "xima",
        _ => return None,
    })
}

pub(super) async fn inject(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let Some(route) = route_of(req.uri().path()) else {
        return next.run(req).await;
    };
    if sim
        .faults
        .take_wire(route, |k| *k == FaultKind::Stall)
        .is_some()
    {
        sim.count("faults");
        tokio::time::sleep(SILENCE).await;
    }
    let resp = next.run(req).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    if !sim.faults.pending_wire(route) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    // A repeat needs an earlier page, a big field a task to put it in: an empty page gains
    // nothing from either (and an empty page repeated is indistinguishable from an empty
    // range, so it is not the fault this simulates).
    let items = has_items(&bytes);
    let last = sim
        .last_page
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(route)
        .cloned();
    let kind = sim.faults.take_wire(route, |k| match k {
        FaultKind::Stall => false,
        FaultKind::Repeat => last.is_some(),
        FaultKind::BigField | FaultKind::NoField | FaultKind::BadType => items,
        _ => true,
    });
    let Some(kind) = kind else {
        // Remembered as served: a repeated page is not itself "the previous page".
        if items {
            sim.last_page
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(route, bytes.clone());
        }
        return Response::from_parts(parts, Body::from(bytes));
    };
    sim.count("faults");
    let half = bytes.slice(..bytes.len() / 2);
    let full_length = header::HeaderValue::from(bytes.len());
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match kind {
        FaultKind::Truncate => Body::from(half),
        FaultKind::Reset => {
            parts.headers.insert(header::CONTENT_LENGTH, full_length);
            // A moment between the half and the reset, so the half is on the wire first.
            let cut = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                ))
            });
            Body::from_stream(futures::stream::iter([Ok(half)]).chain(cut))
        }
        FaultKind::Hang => {
            parts.headers.insert(header::CONTENT_LENGTH, full_length);
            let silence = futures::stream::once(async {
                tokio::time::sleep(SILENCE).await;
                Err(std::io::Error::other("injected hang"))
            });
            Body::from_stream(futures::stream::iter([Ok(half)]).chain(silence))
        }
        FaultKind::Repeat => Body::from(last.unwrap_or(bytes)),
        FaultKind::Huge => {
            let spaces = Bytes::from(vec![b' '; 1 << 20]);
            let padding = (crate::http::fetch::MAX_PAGE_BYTES >> 20) + 1;
            let chunks = std::iter::repeat_n(spaces, padding).chain([bytes]);
            Body::from_stream(futures::stream::iter(chunks.map(Ok::<_, std::io::Error>)))
        }
        FaultKind::BigField => Body::from(with_big_field(&bytes).unwrap_or(bytes)),
        FaultKind::NoField | FaultKind::BadType => {
            Body::from(without_field(route, &bytes, kind == FaultKind::BadType).unwrap_or(bytes))
        }
        _ => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

/// The page with a 10 MB `notes` attribute on its first task.
fn with_big_field(page: &[u8]) -> Option<Bytes> {
    let mut v: serde_json::Value = serde_json::from_slice(page).ok()?;
    let attrs = v.pointer_mut("/data/0/attributes")?.as_object_mut()?;
    attrs.insert("notes".into(), "x".repeat(10 << 20).into());
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// The page with its first item's required field removed, or (`bad_type`) made an object.
fn without_field(route: &str, page: &[u8], bad_type: bool) -> Option<Bytes> {
    let (item, field) = match route {
        "tasks" => ("/data/0/attributes", "createdTime"),
        "captures" => ("/data/0", "taskId"),
        "xima" => ("/0", "callKey"),
        _ => return None,
    };
    let mut v: serde_json::Value = serde_json::from_slice(page).ok()?;
    let obj = v.pointer_mut(item)?.as_object_mut()?;
    if bad_type {
        obj.insert(field.into(), serde_json::json!({ "unexpected": true }));
    } else {
        obj.remove(field);
    }
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// Whether a JSON page (`{"data": [...]}` or a bare array) lists anything.
fn has_items(page: &[u8]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(page) {
        Ok(serde_json::Value::Array(a)) => !a.is_empty(),
        Ok(v) => v
            .get("data")
            .and_then(|d| d.as_array())
            .is_some_and(|d| !d.is_empty()),
        Err(_) => false,
    }
}
