//! Simulated Xima CCaaS routes: `GET /rest/api/v2/recordings`, `GET
//! /rest/api/v2/call-recording-info` and `GET /rest/api/v2/recordings/{tenant}/{key}/audio`,
//! each tenant with its own calls, service-user key, request budget and bandwidth cap.
//!
//! The rules are Xima's: more than three requests in ten seconds from one tenant answer 429
//! (the window scales with `xima_min_interval`, so tests need not wait seconds), and audio past
//! the tenant's rolling five-day egress cap answers 509. Only `SAVED` recordings have audio.
//! The JSON's `tenantName` is not the configured tenant ([`site_name`]), and an audio path
//! must name the JSON's (Xima's guide: "the tenant-name as collected from the JSON").

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::audio::{self, AudioChunks};
use super::data::{self, SimRecording, SimTask, DAY_MS};
use super::webex::{fault, latency};
use super::Sim;

/// Requests one tenant may make in a burst window (Xima: 3 in 10 s).
pub const BURST_MAX: usize = 3;
/// Xima's bandwidth cap is over a rolling five days.
pub const ROLLING_MS: i64 = 5 * DAY_MS;

/// Per-tenant request and egress bookkeeping.
#[derive(Debug)]
pub struct XimaState {
    requests: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// First and last request and the count, per tenant: the rate the server saw.
    spans: Mutex<HashMap<String, (Instant, Instant, u64)>>,
    /// (simulator time, bytes) of every audio download, per tenant.
    egress: Mutex<HashMap<String, Vec<(i64, u64)>>>,
    cap: AtomicU64,
}

impl XimaState {
    /// A tenant set with a bandwidth cap of `cap` bytes per rolling five days (`u64::MAX`: none).
    pub fn new(cap: u64) -> Self {
        XimaState {
            requests: Mutex::new(HashMap::new()),
            spans: Mutex::new(HashMap::new()),
            egress: Mutex::new(HashMap::new()),
            cap: AtomicU64::new(cap),
        }
    }
}

/// The tenant name a tenant's JSON carries (`tenantName`) and its audio paths must use: not
/// the name a user configures (Xima's guide shows `acme-ns`; the host or account name need
/// not be it).
pub fn site_name(tenant: &str) -> String {
    format!("{tenant}-ns")
}

/// The service-user key the simulator accepts for `tenant`.
pub fn key_for(tenant: &str) -> String {
    format!("sim-xima-key-{tenant}")
}

/// The burst window matching a minimum interval (3 s ↔ 10 s).
pub fn burst_window(min_interval: Duration) -> Duration {
    min_interval * 10 / 3
}

fn tenant_seed(seed: u64, tenant: &str) -> u64 {
    data::audio_seed(seed, &format!("xima-tenant:{tenant}"))
}

/// The Xima call key of a simulated task.
pub fn call_key(t: &SimTask) -> String {
    format!("{}-{}-{}", t.id, t.created_ms, t.ended_ms)
}

/// The Xima recording key of a simulated recording.
pub fn recording_key(r: &SimRecording) -> String {
    format!("{}-{}", r.id, r.start_ms)
}

impl Sim {
    /// A tenant's phone calls that started in `[from, to)` and have ended by now.
    pub fn xima_calls(&self, tenant: &str, from: i64, to: i64) -> Vec<SimTask> {
        let now = self.now_ms();
        self.calls_between(tenant_seed(self.cfg.seed, tenant), from, to)
            .into_iter()
            .filter(|t| t.channel_type == "telephony" && t.ended_ms <= now)
            .collect()
    }

    /// What a listing for `[from, to)` answers: the ended calls with a recording that starts
    /// in the range, and those without recordings that start in it. Which time Xima filters
    /// on is not documented; this reading lists a call whose recordings straddle a window
    /// edge in both windows, and one that starts before a window and records in it only
    /// there, so a client that keeps each call in one window must ask around its range.
    pub fn xima_listed(&self, tenant: &str, from: i64, to: i64) -> Vec<SimTask> {
        self.xima_calls(tenant, from - DAY_MS, to)
            .into_iter()
            .filter(|t| {
                let mut starts = Self::xima_recordings(t).map(|r| r.start_ms).peekable();
                match starts.peek() {
                    None => (from..to).contains(&t.created_ms),
                    Some(_) => starts.any(|s| (from..to).contains(&s)),
                }
            })
            .collect()
    }

    /// Xima records each agent leg: the Webex segments, not the combined file.
    fn xima_recordings(t: &SimTask) -> impl Iterator<Item = &SimRecording> {
        t.recordings.iter().filter(|r| r.segment)
    }

    fn xima_status(&self, r: &SimRecording) -> &'static str {
        if r.available_ms <= self.now_ms() {
            "SAVED"
        } else {
            "PROCESSING"
        }
    }

    fn xima_audio_len(&self, r: &SimRecording) -> u64 {
        audio::opus_len(r.duration_secs(), self.cfg.xima_audio_rate)
    }

    fn xima_chunks(&self, tenant: &str, r: &SimRecording) -> AudioChunks {
        AudioChunks::opus(
            data::audio_seed(tenant_seed(self.cfg.seed, tenant), &r.id),
            r.duration_secs(),
            self.cfg.xima_audio_rate,
        )
    }

    fn xima_find(&self, tenant: &str, key: &str) -> Option<SimRecording> {
        // `<uuid>-<epochms>`: the uuid (36 characters) names the day.
        let id = key.get(..36)?;
        let day = data::day_of_task_id(id)?;
        let now = self.now_ms();
        self.day_of(tenant_seed(self.cfg.seed, tenant), day)
            .iter()
            .filter(|t| t.ended_ms <= now)
            .flat_map(Self::xima_recordings)
            .find(|r| recording_key(r) == key)
            .cloned()
    }

    /// Takes a request slot for `tenant`; false when it breaks the 3-in-a-window rule.
    fn xima_admit(&self, tenant: &str) -> bool {
        let window = burst_window(Duration::from_millis(self.cfg.xima_min_interval_ms));
        let now = Instant::now();
        let mut all = self
            .xima
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let q = all.entry(tenant.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        // Refused requests count too: hammering a limited API keeps it limited.
        q.push_back(now);
        let mut spans = self
            .xima
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let span = spans.entry(tenant.to_string()).or_insert((now, now, 0));
        span.1 = now;
        span.2 += 1;
        q.len() <= BURST_MAX
    }

    /// Sets every tenant's five-day cap (tests lift it to let a deferred run finish).
    pub fn set_xima_cap(&self, bytes: u64) {
        self.xima.cap.store(bytes, Ordering::SeqCst);
    }

    /// Requests `tenant` made and the time from its first to its last.
    pub fn xima_request_span(&self, tenant: &str) -> Option<(u64, Duration)> {
        let spans = self
            .xima
            .spans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        spans
            .get(tenant)
            .map(|(first, last, n)| (*n, *last - *first))
    }

    /// Bytes served to `tenant` in the last five (simulated) days.
    pub fn xima_egress(&self, tenant: &str) -> u64 {
        let since = self.now_ms() - ROLLING_MS;
        let all = self
            .xima
            .egress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.get(tenant).map_or(0, |v| {
            v.iter().filter(|(at, _)| *at > since).map(|(_, b)| b).sum()
        })
    }

    /// Records a download unless it would pass the cap.
    fn xima_spend(&self, tenant: &str, bytes: u64) -> bool {
        let used = self.xima_egress(tenant);
        if used.saturating_add(bytes) > self.xima.cap.load(Ordering::SeqCst) {
            return false;
        }
        let mut all = self
            .xima
            .egress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.entry(tenant.to_string())
            .or_default()
            .push((self.now_ms(), bytes));
        true
    }

    /// The ground truth of one tenant for `[from, to)`.
    pub fn xima_truth(&self, tenant: &str, from: i64, to: i64) -> XimaTruth {
        let calls = self
            .xima_calls(tenant, from, to)
            .iter()
            .map(|t| XimaTruthCall {
                call_key: call_key(t),
                start_ms: t.created_ms,
                recordings: Self::xima_recordings(t)
                    .map(|r| {
                        let (bytes, sha256) = audio::digest(self.xima_chunks(tenant, r));
                        XimaTruthRecording {
                            recording_key: recording_key(r),
                            start_ms: r.start_ms,
                            status: self.xima_status(r).into(),
                            bytes,
                            sha256,
                        }
                    })
                    .collect(),
            })
            .collect();
        XimaTruth {
            now_ms: self.now_ms(),
            egress_bytes: self.xima_egress(tenant),
            calls,
        }
    }
}

/// What a tenant's tables should hold.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct XimaTruth {
    /// The simulator's now (epoch ms).
    pub now_ms: i64,
    /// Audio bytes served to the tenant in the rolling five days.
    pub egress_bytes: u64,
    /// Every call started before now.
    pub calls: Vec<XimaTruthCall>,
}

/// A call as `xima_calls` should have it.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct XimaTruthCall {
    /// Call key.
    pub call_key: String,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// Its recordings.
    pub recordings: Vec<XimaTruthRecording>,
}

/// A recording as `xima_recordings` should have it.
#[derive(Debug, Serialize, Deserialize, Clone)]
pub struct XimaTruthRecording {
    /// Recording key.
    pub recording_key: String,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// Xima's status.
    pub status: String,
    /// Audio size.
    pub bytes: u64,
    /// Audio SHA-256, hex.
    pub sha256: String,
}

fn error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Json(json!({ "status": status.as_u16(), "message": msg })),
    )
        .into_response()
}

/// The tenant whose key the request carries, or the refusal to send: 401 for a wrong key,
/// 429 for a request past the tenant's rate.
fn admit(sim: &Sim, headers: &HeaderMap) -> Result<String, Box<Response>> {
    sim.count("xima_requests");
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(tenant) = sim
        .cfg
        .xima_tenants
        .iter()
        .find(|t| key == Some(key_for(t).as_str()))
    else {
        sim.count("unauthorized");
        return Err(Box::new(error(StatusCode::UNAUTHORIZED, "Unauthorized")));
    };
    if !sim.xima_admit(tenant) {
        sim.count("xima_429");
        return Err(Box::new(error(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests: at most one request every 3 seconds per tenant",
        )));
    }
    Ok(tenant.clone())
}

fn time_range(q: &HashMap<String, String>) -> Result<(i64, i64), Box<Response>> {
    let get = |k: &str| {
        q.get(k)
            .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.timestamp_millis())
            .ok_or_else(|| {
                Box::new(error(
                    StatusCode::BAD_REQUEST,
                    &format!("{k} is required, as ISO 8601 with an offset"),
                ))
            })
    };
    Ok((get("startTime")?, get("endTime")?))
}

fn recording_json(sim: &Sim, tenant: &str, t: &SimTask, r: &SimRecording) -> Value {
    let agent = t
        .agents
        .iter()
        .find(|a| r.participants.first() == Some(&a.0))
        .map(|a| {
            let ext = 200 + a.0.bytes().map(u32::from).sum::<u32>() % 100;
            format!("{}({ext})", a.1)
        })
        .unwrap_or_default();
    json!({
        "recordingKey": recording_key(r),
        "callKey": call_key(t),
        "startTime": r.start_ms,
        "duration": r.stop_ms - r.start_ms,
        "size": sim.xima_audio_len(r),
        "eventId": r.start_ms % 100_000,
        "recordingSystemId": 0,
        "status": sim.xima_status(r),
        "callingParty": t.origin,
        "receivingParty": agent,
        "tenantName": site_name(tenant),
        "tagData": "Default",
        "callDirection": t.direction.to_uppercase(),
        "skill": t.queue.as_ref().map(|q| q.1.clone()),
        "agent": agent,
    })
}

fn call_json(sim: &Sim, tenant: &str, t: &SimTask) -> Value {
    let recordings: Vec<Value> = Sim::xima_recordings(t)
        .map(|r| recording_json(sim, tenant, t, r))
        .collect();
    json!({
        "callId": t.id,
        "shortId": t.created_ms % 1_000_000,
        "callKey": call_key(t),
        "startTime": t.created_ms,
        "endTime": t.ended_ms,
        "direction": t.direction.to_uppercase(),
        "recordings": recordings,
        "callerId": t.origin,
        "dialedPartyNumber": t.destination,
        "accountCodes": [],
        "totalHoldDuration": (t.ended_ms - t.created_ms) / 20,
        "location": "HQ",
        "dropEventType": if t.agents.is_empty() { "ABANDONED" } else { "CALLER_HANGUP" },
        "tenantName": site_name(tenant),
    })
}

/// A JSON array, or 204 when there is nothing (as Xima answers an empty range).
fn array(items: Vec<Value>) -> Response {
    if items.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        Json(Value::Array(items)).into_response()
    }
}

/// What both listing routes share: the tenant's calls in `startTime..endTime`, once the
/// request passed the key, the rate rule and any injected fault.
async fn listing(
    sim: &Sim,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
) -> Result<(String, Vec<SimTask>), Box<Response>> {
    latency(sim).await;
    let tenant = admit(sim, headers)?;
    if let Some(r) = fault(sim, "xima").await {
        return Err(Box::new(r));
    }
    let (from, to) = time_range(q)?;
    let calls = sim.xima_listed(&tenant, from, to);
    Ok((tenant, calls))
}

/// Calls in the range, each with its recordings.
pub async fn call_info(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (tenant, calls) = match listing(&sim, &headers, &q).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    sim.count("xima_info");
    array(calls.iter().map(|t| call_json(&sim, &tenant, t)).collect())
}

/// Recordings of calls in the range, flat.
pub async fn recordings(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (tenant, calls) = match listing(&sim, &headers, &q).await {
        Ok(found) => found,
        Err(r) => return *r,
    };
    array(
        calls
            .iter()
            .flat_map(|t| Sim::xima_recordings(t).map(|r| recording_json(&sim, &tenant, t, r)))
            .collect(),
    )
}

/// One recording's OPUS audio.
pub async fn audio(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((tenant, key)): Path<(String, String)>,
) -> Response {
    let caller = match admit(&sim, &headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    // The path names the tenant as the listing's JSON does (seed 003), not as configured.
    if site_name(&caller) != tenant {
        return error(
            StatusCode::FORBIDDEN,
            "the key does not belong to this tenant",
        );
    }
    let tenant = caller;
    if let Some(r) = fault(&sim, "xima_audio").await {
        return r;
    }
    let Some(rec) = sim.xima_find(&tenant, &key) else {
        return error(StatusCode::NOT_FOUND, "recording_key not found");
    };
    if sim.xima_status(&rec) != "SAVED" {
        return error(StatusCode::NOT_FOUND, "recording_key is not saved yet");
    }
    let len = sim.xima_audio_len(&rec);
    if !sim.xima_spend(&tenant, len) {
        sim.count("xima_509");
        return error(
            StatusCode::from_u16(509).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "Bandwidth Limit Exceeded",
        );
    }
    sim.count("xima_audio");
    let stream = audio::paced(sim.xima_chunks(&tenant, &rec), sim.cfg.audio_stream_rate);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "audio/ogg")
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /_sim/xima/truth?tenant=&from=&to=`.
pub async fn truth(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<XimaTruth> {
    let tenant = q.get("tenant").cloned().unwrap_or_default();
    let num = |k: &str, d: i64| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    Json(sim.xima_truth(&tenant, num("from", i64::MIN / 2), num("to", i64::MAX / 2)))
}

/// `POST /_sim/xima/cap?bytes=N`: sets every tenant's five-day cap (tests lift it mid-way).
pub async fn set_cap(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    if let Some(b) = q.get("bytes").and_then(|v| v.parse().ok()) {
        sim.set_xima_cap(b);
    }
    Json(json!({ "cap_bytes": sim.xima.cap.load(Ordering::SeqCst) }))
}
