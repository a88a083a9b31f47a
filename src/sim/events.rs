//! Simulated subscriptions and webhooks: `GET /v2/event-types`, `/v2/subscriptions` (list,
//! register, get, update, delete) with the spec's validation, and a sender that posts signed
//! `capture:available` events (CloudEvents envelope, `X-WebexCC-Signature` = hex HMAC-SHA256
//! of the raw body with the subscription's secret) to every active subscription, on request
//! (`POST /_sim/webhooks/deliver`), with duplicate, forged and stale deliveries mixed in.
//!
//! Webex may set a subscription inactive when its endpoint fails or answers non-2xx (Cisco's
//! sample answers 200 even to a bad signature for that reason; the threshold is not
//! published). The simulator does so after [`DEACTIVATE_AFTER`] such answers in a row, and
//! then delivers nothing more to it until it is updated back to active.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::Mac;
use serde_json::{json, Value};

use super::{HmacSha256, Sim};

/// Non-2xx or failed deliveries in a row that set a subscription inactive.
pub const DEACTIVATE_AFTER: u32 = 3;

/// The one resource this simulator publishes events for, and its version.
pub const RESOURCE_VERSION: &str = "capture:1.0.0";
/// The event type of a capture becoming available.
pub const CAPTURE_AVAILABLE: &str = "capture:available";

/// A registered subscription (the secret is never returned by the API).
#[derive(Debug, Clone)]
pub struct SimSubscription {
    /// The subscription as the API shows it.
    pub data: Value,
    /// The secret deliveries are signed with.
    pub secret: Option<String>,
    /// Non-2xx or failed deliveries since the last 2xx.
    pub failures: u32,
}

fn error(status: StatusCode, msg: &str) -> Response {
    // The subscriptions API's ErrorResult.
    let body = json!({ "trackingId": "sim-0000", "error": { "key": status.as_u16(), "message": [ { "description": msg } ] } });
    (status, Json(body)).into_response()
}

async fn authorised(sim: &Sim, headers: &HeaderMap, route: &str) -> Option<Response> {
    sim.count(route);
    super::webex::latency(sim).await;
    if let Some(r) = super::webex::reject_unauthorized(sim, headers) {
        return Some(r);
    }
    super::webex::fault(sim, "subscriptions").await
}

/// [`authorised`], and the token must hold `cjp:config_write` (spec: subscription create,
/// update and delete).
async fn authorised_to_write(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    if let Some(r) = authorised(sim, headers, "subscriptions").await {
        return Some(r);
    }
    let refused = super::webex::reject_without_write_scope(headers);
    if refused.is_some() {
        sim.count("forbidden");
    }
    refused
}

/// `GET /v2/event-types`.
pub async fn event_types(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Some(r) = authorised(&sim, &headers, "event_types").await {
        return r;
    }
    Json(json!({
        "data": [
            { "name": CAPTURE_AVAILABLE, "resource": "capture", "action": "available" },
            { "name": "agent:login", "resource": "agent", "action": "login" },
        ],
        "meta": { "orgId": sim.cfg.org_id, "resourceVersionList": [
            { "resource": "capture", "version": "1.0.0" },
            { "resource": "agent", "version": "1.0.0" },
        ] }
    }))
    .into_response()
}

/// The spec's rules for a destination: HTTPS with a path, no query, fragment, user info or
/// port other than 443. Plain `http://127.0.0.1` is accepted too: a simulator's receiver.
fn check_destination(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("destinationUrl is not a URL: {e}"))?;
    let loopback = u.scheme() == "http" && u.host_str() == Some("127.0.0.1");
    if u.scheme() != "https" && !loopback {
        return Err("destinationUrl must be HTTPS".into());
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        return Err(
            "destinationUrl must not have query parameters, a fragment or user info".into(),
        );
    }
    if !loopback && u.port().is_some_and(|p| p != 443) {
        return Err("destinationUrl must not use a port other than 443".into());
    }
    Ok(())
}

/// Checks a register/update body; `full` when registering (every required field).
fn check_body(b: &Value, full: bool) -> Result<(), String> {
    let s = |k: &str| b.get(k).and_then(Value::as_str);
    if full || b.get("name").is_some() {
        let n = s("name").unwrap_or_default().chars().count();
        if !(4..=64).contains(&n) {
            return Err("name must be 4 to 64 characters".into());
        }
    }
    if full || b.get("eventTypes").is_some() {
        let types = b.get("eventTypes").and_then(Value::as_array);
        match types {
            Some(t) if !t.is_empty() && t.len() <= 32 => {
                if let Some(bad) = t
                    .iter()
                    .find(|e| !matches!(e.as_str(), Some(CAPTURE_AVAILABLE | "agent:login")))
                {
                    return Err(format!("unknown event type {bad}"));
                }
            }
            _ => return Err("eventTypes must list 1 to 32 event types".into()),
        }
    }
    if full || b.get("destinationUrl").is_some() {
        check_destination(s("destinationUrl").unwrap_or_default())?;
    }
    if let Some(secret) = b.get("secret") {
        let n = secret.as_str().map_or(0, |v| v.chars().count());
        if !(32..=256).contains(&n) {
            return Err("secret must be 32 to 256 characters".into());
        }
    }
    match s("resourceVersion") {
        Some(RESOURCE_VERSION | "agent:1.0.0") => {}
        Some(v) => return Err(format!("resourceVersion '{v}' is not available")),
        None => return Err("resourceVersion is required".into()),
    }
    if let Some(st) = b.get("status") {
        if !matches!(st.as_str(), Some("active" | "inactive")) {
            return Err("status must be active or inactive".into());
        }
    }
    Ok(())
}

/// `GET /v2/subscriptions` and `POST /v2/subscriptions`.
pub async fn list(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Some(r) = authorised(&sim, &headers, "subscriptions").await {
        return r;
    }
    let data: Vec<Value> = sim.subscriptions().iter().map(|s| s.data.clone()).collect();
    Json(json!({ "data": data, "meta": { "orgId": sim.cfg.org_id } })).into_response()
}

/// `POST /v1/event-subscriptions`: registers a subscription.
pub async fn register(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Json(b): Json<Value>,
) -> Response {
    if let Some(r) = authorised_to_write(&sim, &headers).await {
        return r;
    }
    if let Err(e) = check_body(&b, true) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    let now = sim.now_ms();
    let id = format!(
        "5b5c0000-0000-4000-8000-{:012x}",
        rand::random::<u64>() >> 16
    );
    let mut data = json!({
        "id": id, "status": "active", "createdTime": now, "lastUpdatedTime": now,
        "createdBy": "sim-admin", "lastUpdatedBy": "sim-admin",
    });
    for k in [
        "name",
        "description",
        "eventTypes",
        "destinationUrl",
        "resourceVersion",
    ] {
        if let Some(v) = b.get(k) {
            data[k] = v.clone();
        }
    }
    let secret = b.get("secret").and_then(Value::as_str).map(str::to_string);
    sim.subscriptions_mut().push(SimSubscription {
        data: data.clone(),
        secret,
        failures: 0,
    });
    (
        StatusCode::CREATED,
        Json(json!({ "meta": { "orgId": sim.cfg.org_id }, "data": data })),
    )
        .into_response()
}

/// `GET`, `PATCH` and `DELETE /v2/subscriptions/{id}`.
pub async fn get_one(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = authorised(&sim, &headers, "subscriptions").await {
        return r;
    }
    match sim
        .subscriptions()
        .iter()
        .find(|s| s.data["id"] == id.as_str())
    {
        Some(s) => {
            Json(json!({ "meta": { "orgId": sim.cfg.org_id }, "data": s.data })).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "subscription not found"),
    }
}

/// `PUT /v1/event-subscriptions/{id}`: updates one.
pub async fn update(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<Value>,
) -> Response {
    if let Some(r) = authorised_to_write(&sim, &headers).await {
        return r;
    }
    if let Err(e) = check_body(&b, false) {
        return error(StatusCode::BAD_REQUEST, &e);
    }
    let now = sim.now_ms();
    let mut subs = sim.subscriptions_mut();
    let Some(s) = subs.iter_mut().find(|s| s.data["id"] == id.as_str()) else {
        return error(StatusCode::NOT_FOUND, "subscription not found");
    };
    for k in [
        "description",
        "eventTypes",
        "destinationUrl",
        "resourceVersion",
        "status",
    ] {
        if let Some(v) = b.get(k) {
            s.data[k] = v.clone();
        }
    }
    if let Some(secret) = b.get("secret").and_then(Value::as_str) {
        s.secret = Some(secret.to_string());
    }
    if s.data["status"] == "active" {
        s.failures = 0;
    }
    s.data["lastUpdatedTime"] = json!(now);
    Json(json!({ "meta": { "orgId": sim.cfg.org_id }, "data": s.data })).into_response()
}

/// `DELETE /v1/event-subscriptions/{id}`.
pub async fn delete(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = authorised_to_write(&sim, &headers).await {
        return r;
    }
    let mut subs = sim.subscriptions_mut();
    let before = subs.len();
    subs.retain(|s| s.data["id"] != id.as_str());
    if subs.len() == before {
        return error(StatusCode::NOT_FOUND, "subscription not found");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// hex(HMAC-SHA256(secret, body)).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret.as_bytes()) else {
        return String::new(); // HMAC takes keys of any length
    };
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// What a delivery round did.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize, Clone, Copy, PartialEq)]
pub struct Delivered {
    /// Genuine events, one per task with a recording available.
    pub events: u64,
    /// POSTs made (duplicates, forged and stale ones included).
    pub posts: u64,
    /// Answered 2xx.
    pub accepted: u64,
    /// Answered 4xx.
    pub rejected: u64,
    /// Not answered (connection refused, timeout).
    pub failed: u64,
    /// Subscriptions set inactive by this round (their remaining posts were not sent).
    pub deactivated: u64,
}

/// Counts a delivery's outcome on its subscription; `false` once that set it inactive.
fn note_delivery(sim: &Sim, sub: &SimSubscription, ok: bool) -> bool {
    let mut subs = sim.subscriptions_mut();
    let Some(s) = subs.iter_mut().find(|s| s.data["id"] == sub.data["id"]) else {
        return false;
    };
    s.failures = if ok { 0 } else { s.failures + 1 };
    if s.failures >= DEACTIVATE_AFTER {
        s.data["status"] = json!("inactive");
        sim.count("deactivated");
        return false;
    }
    true
}

/// `POST /_sim/webhooks/deliver?from=&to=[&duplicate=N][&forged=N][&stale=N]`: posts a
/// `capture:available` event for each task created in `[from, to)` whose recording is
/// available, to every active subscription. `duplicate` sends the first N twice; `forged`
/// adds N events for tasks before `from` signed with the wrong secret; `stale` adds N
/// correctly signed events for such tasks, timestamped ten minutes ago.
pub async fn deliver(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Delivered> {
    let n = |k: &str| q.get(k).and_then(|v| v.parse::<i64>().ok());
    let (from, to) = (n("from").unwrap_or(0), n("to").unwrap_or(i64::MAX / 2));
    let (dup, forged, stale) = (
        n("duplicate").unwrap_or(0),
        n("forged").unwrap_or(0),
        n("stale").unwrap_or(0),
    );
    let now = sim.now_ms();
    let due: Vec<_> = sim
        .tasks_between(from, to)
        .into_iter()
        .filter_map(|t| {
            t.recordings
                .into_iter()
                .find(|r| !r.segment && r.available_ms <= now)
        })
        .collect();
    // Decoys: tasks of the day before, which a receiver must never act on.
    let decoys: Vec<_> = sim
        .tasks_between(from - super::data::DAY_MS, from)
        .into_iter()
        .filter_map(|t| t.recordings.into_iter().find(|r| !r.segment))
        .collect();
    let subs: Vec<SimSubscription> = sim
        .subscriptions()
        .iter()
        .filter(|s| {
            s.data["status"] == "active"
                && s.data["eventTypes"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|e| e == CAPTURE_AVAILABLE))
        })
        .cloned()
        .collect();
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let mut out = Delivered {
        events: due.len() as u64,
        ..Default::default()
    };
    for sub in &subs {
        let url = sub.data["destinationUrl"].as_str().unwrap_or_default();
        let secret = sub.secret.clone().unwrap_or_default();
        let mut posts: Vec<(Value, String, i64)> = Vec::new();
        let wall = chrono::Utc::now().timestamp_millis();
        for (i, r) in due.iter().enumerate() {
            let e = envelope(&sim, sub, r, wall);
            let copies = if (i as i64) < dup { 2 } else { 1 };
            for _ in 0..copies {
                posts.push((e.clone(), secret.clone(), wall));
            }
        }
        for r in decoys.iter().take(forged.max(0) as usize) {
            let e = envelope(&sim, sub, r, wall);
            posts.push((e, format!("{secret}-forged"), wall));
        }
        for r in decoys
            .iter()
            .skip(forged.max(0) as usize)
            .take(stale.max(0) as usize)
        {
            let old = wall - 10 * 60_000;
            posts.push((envelope(&sim, sub, r, old), secret.clone(), old));
        }
        for (event, key, at) in posts {
            let body = event.to_string();
            let mut req = client
                .post(url)
                .header("content-type", "application/json")
                .header("X-WebExCC-Timestamp", at.to_string())
                .header("X-WebexCC-Webhook-Version", RESOURCE_VERSION);
            if sub.secret.is_some() {
                req = req.header("X-WebexCC-Signature", signature(&key, body.as_bytes()));
            }
            out.posts += 1;
            let ok = match req.body(body).send().await {
                Ok(r) if r.status().is_success() => {
                    out.accepted += 1;
                    true
                }
                Ok(r) if r.status().is_client_error() => {
                    out.rejected += 1;
                    false
                }
                _ => {
                    out.failed += 1;
                    false
                }
            };
            if !note_delivery(&sim, sub, ok) {
                out.deactivated += 1;
                break;
            }
        }
    }
    sim.count("webhook_posts");
    Json(out)
}

fn envelope(sim: &Sim, sub: &SimSubscription, r: &super::data::SimRecording, at: i64) -> Value {
    let file = super::webex::presigned_url(sim, r, sim.now_ms(), 30);
    json!({
        "id": format!("evt-{}-{at}", r.task_id),
        "specversion": "1.0",
        "type": CAPTURE_AVAILABLE,
        "source": format!("/com/cisco/wxcc/{}", sub.data["id"].as_str().unwrap_or_default()),
        "comciscoorgid": sim.cfg.org_id,
        "datacontenttype": "application/json",
        "comciscotimestamp": at,
        "data": { "taskId": r.task_id, "filePath": file, "createdTime": r.available_ms },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_follow_the_spec() {
        assert!(check_destination("https://hooks.acme.example/wxcc").is_ok());
        assert!(check_destination("http://127.0.0.1:8088/webhooks/wxcc").is_ok());
        assert!(check_destination("http://hooks.acme.example/wxcc").is_err());
        assert!(check_destination("https://hooks.acme.example/wxcc?token=x").is_err());
        assert!(check_destination("https://hooks.acme.example:8443/wxcc").is_err());
    }

    #[test]
    fn signature_is_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
