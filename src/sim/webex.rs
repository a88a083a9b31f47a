//! Simulated WxCC routes: `POST /v1/access_token`, `GET /v1/tasks`,
//! `POST /v1/captures/query` and the pre-signed storage downloads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::audio::{wav_len, AudioChunks};
use super::data::{self, SimTask};
use super::faults::FaultKind;
use super::{transcripts, va, Sim};

// The spec's values, kept apart from the client's (`source::webex::config`) so that a change
// there cannot loosen the simulator.
/// `/v1/tasks` `channelTypes`: the spec's enum.
const CHANNEL_TYPES: [&str; 4] = ["telephony", "chat", "email", "social"];
/// `urlExpiration`'s maximum, in minutes.
const MAX_URL_EXPIRATION_MINUTES: i64 = 60;

fn api_error(status: StatusCode, msg: &str) -> Response {
    let body = json!({
        "trackingId": "sim-0000",
        "error": { "key": status.as_u16().to_string(), "message": [ { "description": msg } ] }
    });
    (status, Json(body)).into_response()
}

/// Simulated transit and queueing time, spent before the request is checked: a token that
/// expires while its request is on the way is refused, as a real API would.
pub(super) async fn latency(sim: &Sim) {
    if sim.cfg.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sim.cfg.latency_ms)).await;
    }
}

/// Applies a pending fault for `route`, if any, or the throttle window a `429bare` opened.
pub(super) async fn fault(sim: &Sim, route: &str) -> Option<Response> {
    if sim.faults.throttled(route) {
        sim.count("throttled");
        return Some(api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests",
        ));
    }
    let kind = sim.faults.take(route)?;
    if kind == FaultKind::ThrottleBare {
        sim.faults.throttle(route);
        sim.count("throttled");
    }
    Some(fault_response(sim, kind))
}

/// The response an injected fault gives.
pub(super) fn fault_response(sim: &Sim, kind: FaultKind) -> Response {
    sim.count("faults");
    match kind {
        FaultKind::Status(429) => {
            let mut r = api_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        }
        FaultKind::ThrottleBare => api_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
        FaultKind::ThrottleDate => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
            let mut r = api_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            if let Ok(v) = header::HeaderValue::from_str(&at) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        FaultKind::Status(s) => api_error(
            StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "injected fault",
        ),
        FaultKind::Expire => (
            StatusCode::FORBIDDEN,
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
        )
            .into_response(),
        FaultKind::Revoked => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "invalid_grant",
                "error_description": "The refresh token has been revoked",
            })),
        )
            .into_response(),
        // CSV quirks only mean something on the legacy routes.
        _ => api_error(StatusCode::INTERNAL_SERVER_ERROR, "injected fault"),
    }
}

pub(super) fn bad_request(msg: &str) -> Response {
    api_error(StatusCode::BAD_REQUEST, msg)
}

/// A request naming another org than the token's is refused (403).
pub(super) fn reject_other_org(sim: &Sim, org: Option<&String>) -> Option<Response> {
    org.filter(|o| **o != sim.cfg.org_id).map(|_| {
        api_error(
            StatusCode::FORBIDDEN,
            "orgId does not match the token's organization",
        )
    })
}

/// The scope code (`r`, `rw`) of a well-formed bearer token, whether or not it is valid.
fn token_scopes(headers: &HeaderMap) -> Option<&str> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    token.split('_').next()?.split('.').nth(2)
}

/// A request whose (valid) token lacks `cjp:config_write` is refused (403), as the spec's
/// subscription create/update/delete are.
pub(super) fn reject_without_write_scope(headers: &HeaderMap) -> Option<Response> {
    (token_scopes(headers) != Some("rw")).then(|| {
        api_error(
            StatusCode::FORBIDDEN,
            "Forbidden: this operation requires the cjp:config_write scope",
        )
    })
}

/// Checks `Authorization: Bearer sat.{expiry}.{scopes}.{sig}_P0A1_{org}`.
/// `None` when the request is authorised, else the 401 to send.
pub(super) fn reject_unauthorized(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let unauthorized = |msg: &str| {
        sim.count("unauthorized");
        Some(api_error(StatusCode::UNAUTHORIZED, msg))
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return unauthorized("missing bearer token");
    };
    let head = token.split('_').next().unwrap_or("");
    let parts: Vec<&str> = head.split('.').collect();
    let [tag, exp, scopes, sig] = parts.as_slice() else {
        return unauthorized("invalid access token");
    };
    if *tag != "sat" || sim.sign(&format!("at|{exp}|{scopes}")) != *sig {
        return unauthorized("invalid access token");
    }
    match exp.parse::<i64>() {
        Ok(e) if e > sim.now_ms() => None,
        _ => unauthorized("access token expired"),
    }
}

fn task_json(t: &SimTask, now: i64) -> Value {
    let named = |p: &Option<(String, String)>| {
        p.as_ref()
            .map(|(id, name)| json!({ "id": id, "name": name }))
    };
    let mut attrs = json!({
        "channelType": t.channel_type,
        "status": t.status,
        "createdTime": t.created_ms,
        "lastUpdatedTime": t.last_updated_ms(now),
        "captureRequested": t.capture_requested,
        "origin": t.origin,
        "destination": t.destination,
        "direction": t.direction,
    });
    if let Some(o) = named(&t.owner) {
        attrs["owner"] = o;
    }
    if let Some(q) = named(&t.queue) {
        attrs["queue"] = q;
    }
    json!({ "id": t.id, "attributes": attrs })
}

pub(super) async fn tasks(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    sim.count("tasks");
    latency(&sim).await;
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = fault(&sim, "tasks").await {
        return r;
    }
    let num = |k: &str| q.get(k).map(|v| v.parse::<i64>());
    let from = match num("from") {
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            return api_error(StatusCode::BAD_REQUEST, "from must be epoch milliseconds")
        }
        None => return api_error(StatusCode::BAD_REQUEST, "from is required"),
    };
    let to = match num("to") {
        Some(Ok(v)) => v,
        Some(Err(_)) => return api_error(StatusCode::BAD_REQUEST, "to must be epoch milliseconds"),
        None => sim.now_ms(),
    };
    if to < from {
        return api_error(StatusCode::BAD_REQUEST, "to must not be before from");
    }
    if to - from > sim.cfg.max_range_ms {
        return api_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "time range exceeds the maximum of {} ms",
                sim.cfg.max_range_ms
            ),
        );
    }
    let page_size = match num("pageSize") {
        None => 100,
        Some(Ok(v)) if (1..=1000).contains(&v) => v as usize,
        Some(_) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "pageSize must be between 1 and 1000",
            )
        }
    };
    if let Some(r) = reject_other_org(&sim, q.get("orgId")) {
        return r;
    }
    let now = sim.now_ms();
    let channels: Option<Vec<&str>> = q.get("channelTypes").map(|c| c.split(',').collect());
    if let Some(bad) = channels
        .iter()
        .flatten()
        .find(|c| !CHANNEL_TYPES.contains(c))
    {
        // The spec's enum, lowercase.
        return api_error(
            StatusCode::BAD_REQUEST,
            &format!("channelTypes: '{bad}' is not one of email, chat, telephony, social"),
        );
    }
    // `from` is inclusive here; the connector must work whichever way the real API treats it.
    let data: Vec<Value> = sim
        .tasks_page(from, to, page_size, |t| {
            channels
                .as_ref()
                .is_none_or(|c| c.contains(&t.channel_type))
        })
        .iter()
        .map(|t| task_json(t, now))
        .collect();
    Json(json!({ "meta": { "orgId": sim.cfg.org_id }, "data": data })).into_response()
}

pub(super) async fn captures(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    sim.count("captures");
    latency(&sim).await;
    if let Some(r) = reject_unauthorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = fault(&sim, "captures").await {
        return r;
    }
    // The current API wraps the fields in "query"; the 2021 form was flat.
    let q = body.get("query").unwrap_or(&body);
    let Some(ids) = q.get("taskIds").and_then(Value::as_array) else {
        return api_error(StatusCode::BAD_REQUEST, "taskIds is required");
    };
    if ids.len() > 10 {
        return api_error(
            StatusCode::BAD_REQUEST,
            "taskIds must contain at most 10 ids",
        );
    }
    let expiration = q.get("urlExpiration").and_then(Value::as_i64).unwrap_or(30);
    if expiration <= 0 {
        return api_error(
            StatusCode::BAD_REQUEST,
            "urlExpiration should be greater than 0",
        );
    }
    if expiration > MAX_URL_EXPIRATION_MINUTES {
        return api_error(
            StatusCode::BAD_REQUEST,
            "urlExpiration must not be greater than 60",
        );
    }
    if let Some(org) = q.get("orgId").and_then(Value::as_str) {
        if org != sim.cfg.org_id {
            return api_error(
                StatusCode::FORBIDDEN,
                "orgId does not match the token's organization",
            );
        }
    }
    let segments = q
        .get("includeSegments")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Spec: "The default value is false."
    let with_va = q
        .get("includeVARecordings")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = sim.now_ms();
    let issued = now;
    let data: Vec<Value> = ids
        .iter()
        .filter_map(Value::as_str)
        .map(|id| {
            let task = sim.find_task(id);
            // Spec `TranscriptMulti`: capitalised `Source`/`Provider`, times as strings.
            let transcripts: Vec<Value> = task
                .iter()
                .flat_map(|t| {
                    transcripts::of_task(&sim.cfg, t)
                        .into_iter()
                        .filter(|tr| tr.create_ms <= now)
                        .map(|tr| {
                            let url =
                                presigned(&sim, &transcript_path(&t.id, &tr), issued, expiration);
                            json!({ "id": tr.id, "Source": tr.source, "Provider": "CISCO",
                                    "fileName": tr.file_name, "filePath": url,
                                    "startTime": tr.start_ms.to_string(),
                                    "languageCode": tr.language,
                                    "createTime": tr.create_ms.to_string() })
                        })
                })
                .collect();
            let va: Vec<va::SimVaRecording> = match (&task, with_va && !segments) {
                (Some(t), true) => va::of_task(sim.cfg.seed, t),
                _ => Vec::new(),
            };
            let recs: Vec<Value> = task
                .map(|t| t.recordings)
                .unwrap_or_default()
                .into_iter()
                .map(|r| (r, None))
                .chain(
                    va.into_iter()
                        .map(|v| (v.rec, Some((v.sensitive, v.call_type)))),
                )
                // Spec: true returns the individual segments, false the stitched recording.
                .filter(|(r, _)| {
                    r.available_ms - sim.cfg.processing_ms <= now && segments == r.segment
                })
                .map(|(r, va)| {
                    let mut rec = json!({ "id": r.id, "segment": r.segment, "attributes": {
                        "fileName": r.file_name,
                        "startTime": r.start_ms, "stopTime": r.stop_ms,
                        "participants": r.participants,
                        "channel1": "Caller", "channel2": "Agent", "callType": "main",
                    }});
                    if let Some((sensitive, call_type)) = va {
                        // Spec: "VA - channel contains virtual agent audio only"; channel2
                        // is "Agent if callType is consult".
                        let (one, two) = match call_type {
                            "va-consult" => ("VA", "Agent"),
                            _ => ("Caller", "VA"),
                        };
                        rec["attributes"]["channel1"] = json!(one);
                        rec["attributes"]["channel2"] = json!(two);
                        rec["attributes"]["callType"] = json!(call_type);
                        rec["attributes"]["sensitive"] = json!(sensitive);
                    }
                    // Still processing: listed, but no file to download yet.
                    if r.available_ms <= now {
                        rec["attributes"]["filePath"] =
                            json!(presigned_url(&sim, &r, issued, expiration));
                    }
                    rec
                })
                .collect();
            json!({ "taskId": id, "recording": recs, "transcription": transcripts })
        })
        .collect();
    Json(json!({ "meta": { "orgId": sim.cfg.org_id, "urlExpiration": expiration }, "data": data }))
        .into_response()
}

/// A pre-signed download URL for a recording, valid `minutes` from `issued` (epoch ms).
pub(super) fn presigned_url(
    sim: &Sim,
    r: &data::SimRecording,
    issued: i64,
    minutes: i64,
) -> String {
    presigned(
        sim,
        &format!("/_storage/{}/{}.wav", r.task_id, r.id),
        issued,
        minutes,
    )
}

/// Where the simulator serves a transcript.
fn transcript_path(task_id: &str, t: &transcripts::SimTranscript) -> String {
    format!("/_transcripts/{task_id}/{}", t.file_name)
}

/// `path` on the simulator, pre-signed for `minutes` from `issued` (epoch ms).
fn presigned(sim: &Sim, path: &str, issued: i64, minutes: i64) -> String {
    let expires = minutes * 60;
    let sig = sim.sign(&format!("{path}|{issued}|{expires}"));
    format!(
        "{}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={issued}&X-Amz-Expires={expires}&X-Amz-Signature={sig}",
        sim.base_url()
    )
}

/// What S3 checks of a pre-signed GET: no second auth mechanism, a signature over the path
/// and its times, and an expiry not passed. `Some`: the refusal to answer.
fn check_presigned(
    sim: &Sim,
    headers: &HeaderMap,
    path: &str,
    q: &HashMap<String, String>,
) -> Option<Response> {
    if headers.contains_key(header::AUTHORIZATION) {
        sim.count("storage_auth_header");
        return Some(s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed",
        ));
    }
    let (Some(issued), Some(expires), Some(sig)) = (
        q.get("X-Amz-Date"),
        q.get("X-Amz-Expires"),
        q.get("X-Amz-Signature"),
    ) else {
        return Some(s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires a signature",
        ));
    };
    if sim.sign(&format!("{path}|{issued}|{expires}")) != *sig {
        return Some(s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature does not match",
        ));
    }
    let (Ok(issued), Ok(expires)) = (issued.parse::<i64>(), expires.parse::<i64>()) else {
        return Some(s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "bad X-Amz-Date or X-Amz-Expires",
        ));
    };
    if sim.now_ms() > issued + expires * 1000 {
        sim.count("expired_urls");
        return Some(s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Request has expired",
        ));
    }
    None
}

/// What every pre-signed GET goes through: counted under `route`, S3's checks, then a fault
/// injected for `route`. `Some`: the answer instead of the object.
async fn admit(
    sim: &Sim,
    route: &str,
    headers: &HeaderMap,
    path: &str,
    q: &HashMap<String, String>,
) -> Option<Response> {
    sim.count(route);
    if let Some(refused) = check_presigned(sim, headers, path, q) {
        return Some(refused);
    }
    fault(sim, route).await
}

/// A transcript's JSON at its pre-signed URL.
pub(super) async fn transcript(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((task_id, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/_transcripts/{task_id}/{file}");
    if let Some(refused) = admit(&sim, "transcripts", &headers, &path, &q).await {
        return refused;
    }
    let now = sim.now_ms();
    let found = sim.find_task(&task_id).and_then(|t| {
        transcripts::of_task(&sim.cfg, &t)
            .into_iter()
            .find(|tr| tr.file_name == file && tr.create_ms <= now)
    });
    let Some(tr) = found else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(transcripts::body(&tr, &task_id)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn s3_error(status: StatusCode, code: &str, msg: &str) -> Response {
    (
        status,
        format!("<Error><Code>{code}</Code><Message>{msg}</Message></Error>"),
    )
        .into_response()
}

pub(super) async fn storage(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((task_id, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/_storage/{task_id}/{file}");
    if let Some(refused) = admit(&sim, "audio", &headers, &path, &q).await {
        return refused;
    }
    let rec_id = file.trim_end_matches(".wav");
    let Some(rec) = sim.find_task(&task_id).and_then(|t| {
        let va = va::of_task(sim.cfg.seed, &t).into_iter().map(|v| v.rec);
        t.recordings.into_iter().chain(va).find(|r| r.id == rec_id)
    }) else {
        return s3_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let rate = sim.cfg.audio_rate;
    let len = wav_len(rec.duration_secs(), rate);
    let chunks = AudioChunks::new(
        data::audio_seed(sim.cfg.seed, &rec.id),
        rec.duration_secs(),
        rate,
    );
    let stream = super::audio::paced(chunks, sim.cfg.audio_stream_rate);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "audio/wav")
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
