//! The built-in simulator: the Webex Contact Center v1 API (token, tasks, captures and
//! pre-signed audio storage) and its legacy 1.0 reporting API (CSR/CAR in CSV) over the same
//! deterministic calls, plus Xima CCaaS tenants with calls of their own, with fault injection
//! and truth endpoints, served by axum on 127.0.0.1.
//!
//! It enforces the real API's rules, so the connector is tested against them: bearer tokens
//! that expire, refresh tokens that rotate (a used one is revoked), at most ten task ids per
//! captures query, a maximum time range on `/v1/tasks`, pre-signed URLs that expire and
//! refuse an `Authorization` header, and recordings that only appear some time after a call.

pub mod audio;
pub mod data;
pub mod events;
#[cfg(test)]
pub mod example;
pub mod faults;
pub mod graphql;
mod gzip;
pub mod legacy;
mod oauth;
pub mod ratelimit;
pub mod search;
pub mod transcripts;
pub mod va;
mod webex;
mod wire;
pub mod xima;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use data::{People, SimTask, DAY_MS};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seed of everything generated: the same seed serves the same data.
    pub seed: u64,
    /// Days of history before today.
    pub days: u32,
    /// Calls per day.
    pub calls_per_day: u32,
    /// Access-token lifetime.
    pub token_ttl_secs: u64,
    /// Lifetime of refresh tokens (`refresh_token_expires_in`; Webex: 90 days).
    pub refresh_ttl_secs: u64,
    /// Longest `to - from` that `/v1/tasks` accepts.
    pub max_range_ms: i64,
    /// Audio bytes per second of call (8000 = real 8 kHz µ-law).
    pub audio_rate: u32,
    /// The integration's client ID.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// The org it serves.
    pub org_id: String,
    /// The refresh token a new integration starts with (valid once per simulator process;
    /// the rotated tokens it hands out stay valid across restarts with the same seed).
    pub initial_refresh_token: String,
    /// The scopes the initial refresh token was consented with (space-separated).
    pub initial_scopes: String,
    /// Faults to inject.
    pub faults: Vec<faults::Fault>,
    /// Start the clock at this epoch-ms instant instead of now (deterministic tests).
    pub clock_start_ms: Option<i64>,
    /// Stop the clock: it then moves only when told (`advance`), so tests are exact.
    pub clock_frozen: bool,
    /// Added to every API response (not downloads), to make runs long enough for token expiry.
    pub latency_ms: u64,
    /// The legacy API's user (`From`) and the API key its signature is made with.
    pub legacy_user_id: String,
    /// The legacy API key.
    pub legacy_api_key: String,
    /// The most rows one legacy query returns, whatever `numberOfRecords` asks.
    pub legacy_record_cap: usize,
    /// Xima tenants (each with its own calls and key, see [`xima::key_for`]).
    pub xima_tenants: Vec<String>,
    /// Xima's documented pace (3000 ms); its 3-requests burst window scales with it.
    pub xima_min_interval_ms: u64,
    /// Audio bytes a Xima tenant may download in a rolling five days before 509.
    pub xima_bandwidth_cap: u64,
    /// OPUS bytes per second of call (2000 ≈ 16 kbit/s voice).
    pub xima_audio_rate: u32,
    /// How long before its audio is ready a recording is already listed by the captures API,
    /// without `filePath` (still processing; the spec requires no attribute). 0: listed only
    /// once ready.
    pub processing_ms: i64,
    /// The most records one Search API query pages through (taskDetails: 100,000).
    pub search_record_cap: usize,
    /// The client ID's rate limit on the WxCC API routes (default: the documented 300 a
    /// minute); `None` lifts it. Tests and benches that need more raise it explicitly.
    pub rate_limit: Option<ratelimit::RateLimit>,
    /// Random 429s and a limit that drops for a while (none by default).
    pub rate_faults: ratelimit::RateFaults,
    /// Whether the org has AI Assistant: voice transcripts on a share of its calls. Digital
    /// tasks' transcripts (the conversation itself) come without it.
    pub ai_transcripts: bool,
    /// Bytes per second one audio download streams at (a pre-signed URL's object storage
    /// serves each connection at a finite rate); `None`: as fast as it is generated.
    pub audio_stream_rate: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 42,
            days: 3,
            calls_per_day: 200,
            token_ttl_secs: 3600,
            refresh_ttl_secs: 7_776_000,
            max_range_ms: 7 * DAY_MS,
            audio_rate: 8000,
            client_id: "sim-client-id".into(),
            client_secret: "sim-client-secret".into(),
            org_id: "0b6f1d2e-aaaa-4c4c-9999-111122223333".into(),
            initial_refresh_token: "sim-refresh-token-0".into(),
            initial_scopes: "cjp:config_read cjp:config_write".into(),
            faults: Vec::new(),
            clock_start_ms: None,
            clock_frozen: false,
            latency_ms: 0,
            legacy_user_id: "reports@sim.example".into(),
            legacy_api_key: "sim-legacy-api-key".into(),
            legacy_record_cap: 100_000,
            xima_tenants: vec!["acme-main".into()],
            xima_min_interval_ms: 3000,
            xima_bandwidth_cap: u64::MAX,
            xima_audio_rate: 2000,
            processing_ms: 0,
            search_record_cap: 100_000,
            rate_limit: Some(ratelimit::RateLimit::WEBEX),
            rate_faults: ratelimit::RateFaults::default(),
            ai_transcripts: true,
            audio_stream_rate: None,
        }
    }
}

/// Shared simulator state.
pub struct Sim {
    /// What it simulates.
    pub cfg: SimConfig,
    people: People,
    first_day: i64,
    /// Generated days by (seed, day): the Webex org's calls and each Xima tenant's.
    days: Mutex<DayCache>,
    /// Position of each task id in its day, per day (captures queries look tasks up by id).
    ids: Mutex<HashMap<i64, Arc<HashMap<String, usize>>>>,
    offset_ms: AtomicI64,
    /// Faults still to inject.
    pub faults: faults::Faults,
    /// The last page served per route, on routes with a wire fault to come (for `repeat`).
    last_page: Mutex<HashMap<&'static str, bytes::Bytes>>,
    stats: Mutex<BTreeMap<String, u64>>,
    revoked: Mutex<HashSet<String>>,
    /// Authorization codes not yet exchanged, with the redirect URI each was issued for and
    /// the scope code consented to.
    codes: Mutex<HashMap<String, (String, &'static str)>>,
    key: Vec<u8>,
    base_url: OnceLock<String>,
    xima: xima::XimaState,
    subscriptions: Mutex<Vec<events::SimSubscription>>,
    /// Webex's per-client-ID rate limit, and what it accepted.
    pub limiter: ratelimit::Limiter,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = Hmac<Sha256>;
type DayCache = HashMap<(u64, i64), Arc<Vec<SimTask>>>;

impl Sim {
    /// A simulator for `cfg`; nothing listens until [`start`] or [`router`] serves it.
    pub fn new(cfg: SimConfig) -> Arc<Self> {
        let key = {
            use sha2::Digest;
            Sha256::digest(format!("ccetl-sim-{}", cfg.seed)).to_vec()
        };
        let real = chrono::Utc::now().timestamp_millis();
        let start = cfg.clock_start_ms.unwrap_or(real);
        // A frozen clock keeps the absolute time in `offset_ms`; a running one the offset.
        let offset = if cfg.clock_frozen {
            start
        } else {
            start - real
        };
        let today = start.div_euclid(DAY_MS);
        Arc::new(Sim {
            people: data::people(cfg.seed),
            first_day: today - i64::from(cfg.days),
            faults: faults::Faults::new(cfg.faults.clone()),
            last_page: Mutex::new(HashMap::new()),
            days: Mutex::new(HashMap::new()),
            ids: Mutex::new(HashMap::new()),
            offset_ms: AtomicI64::new(offset),
            stats: Mutex::new(BTreeMap::new()),
            revoked: Mutex::new(HashSet::new()),
            codes: Mutex::new(HashMap::new()),
            key,
            base_url: OnceLock::new(),
            xima: xima::XimaState::new(cfg.xima_bandwidth_cap),
            subscriptions: Mutex::new(Vec::new()),
            limiter: ratelimit::Limiter::default(),
            cfg,
        })
    }

    /// The simulator's clock: real time plus an offset tests can move.
    pub fn now_ms(&self) -> i64 {
        let offset = self.offset_ms.load(Ordering::SeqCst);
        if self.cfg.clock_frozen {
            offset
        } else {
            chrono::Utc::now().timestamp_millis() + offset
        }
    }

    /// Moves the clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub(crate) fn sign(&self, msg: &str) -> String {
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            return String::new(); // HMAC takes keys of any length
        };
        mac.update(msg.as_bytes());
        hex::encode(mac.finalize().into_bytes())[..32].to_string()
    }

    pub(crate) fn count(&self, key: &str) {
        *self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.to_string())
            .or_default() += 1;
    }

    /// Requests served, by route (and by fault injected).
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The registered subscriptions (`/v2/subscriptions`).
    pub fn subscriptions(&self) -> std::sync::MutexGuard<'_, Vec<events::SimSubscription>> {
        self.subscriptions_mut()
    }

    fn subscriptions_mut(&self) -> std::sync::MutexGuard<'_, Vec<events::SimSubscription>> {
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn revoke(&self, token: &str) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.to_string())
    }

    pub(crate) fn base_url(&self) -> String {
        self.base_url.get().cloned().unwrap_or_default()
    }

    /// Calls of one day (generated once, then cached).
    pub fn day(&self, day: i64) -> Arc<Vec<SimTask>> {
        self.day_of(self.cfg.seed, day)
    }

    /// Calls of one day of the call stream that `seed` generates.
    fn day_of(&self, seed: u64, day: i64) -> Arc<Vec<SimTask>> {
        if day < self.first_day {
            return Arc::new(Vec::new());
        }
        let mut days = self
            .days
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        days.entry((seed, day))
            .or_insert_with(|| {
                Arc::new(data::day_tasks(
                    seed,
                    day,
                    self.cfg.calls_per_day,
                    &self.people,
                ))
            })
            .clone()
    }

    /// Tasks created in `[from, to)` that exist by now, in creation order.
    pub fn tasks_between(&self, from: i64, to: i64) -> Vec<SimTask> {
        self.calls_between(self.cfg.seed, from, to)
    }

    fn calls_between(&self, seed: u64, from: i64, to: i64) -> Vec<SimTask> {
        let mut out = Vec::new();
        self.visit(seed, from, to, |t| {
            out.push(t.clone());
            true
        });
        out
    }

    /// At most `limit` tasks created in `[from, to)` that exist by now and pass `keep`, in
    /// creation order: a page of a big day costs the page, not the day.
    pub fn tasks_page(
        &self,
        from: i64,
        to: i64,
        limit: usize,
        keep: impl Fn(&SimTask) -> bool,
    ) -> Vec<SimTask> {
        let mut out = Vec::new();
        self.visit(self.cfg.seed, from, to, |t| {
            if keep(t) {
                out.push(t.clone());
            }
            out.len() < limit
        });
        out
    }

    /// Calls `f` on the calls of `seed` created in `[from, to)` that exist by now, in
    /// creation order, until it returns false (days are sorted: found by binary search).
    fn visit(&self, seed: u64, from: i64, to: i64, mut f: impl FnMut(&SimTask) -> bool) {
        let to = to.min(self.now_ms() + 1);
        let from = from.max(self.first_day * DAY_MS);
        if to <= from {
            return;
        }
        for day in from.div_euclid(DAY_MS)..=(to - 1).div_euclid(DAY_MS) {
            let tasks = self.day_of(seed, day);
            let first = tasks.partition_point(|t| t.created_ms < from);
            for t in tasks[first..].iter().take_while(|t| t.created_ms < to) {
                if !f(t) {
                    return;
                }
            }
        }
    }

    /// A task by id, on whichever day it is.
    pub fn find_task(&self, id: &str) -> Option<SimTask> {
        let day = data::day_of_task_id(id)?;
        let tasks = self.day(day);
        let index = {
            let mut ids = self
                .ids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ids.entry(day)
                .or_insert_with(|| {
                    Arc::new(
                        tasks
                            .iter()
                            .enumerate()
                            .map(|(i, t)| (t.id.clone(), i))
                            .collect(),
                    )
                })
                .clone()
        };
        let t = tasks.get(*index.get(id)?)?.clone();
        (t.created_ms <= self.now_ms()).then_some(t)
    }

    fn truth_recording(
        &self,
        r: &data::SimRecording,
        va: Option<&va::SimVaRecording>,
        now: i64,
    ) -> TruthRecording {
        let (bytes, sha256) = audio::wav_digest(
            data::audio_seed(self.cfg.seed, &r.id),
            r.duration_secs(),
            self.cfg.audio_rate,
        );
        TruthRecording {
            id: r.id.clone(),
            segment: r.segment,
            sensitive: va.is_some_and(|v| v.sensitive),
            call_type: va.map_or("main", |v| v.call_type).into(),
            available: r.available_ms <= now,
            bytes,
            sha256,
        }
    }

    /// The ground truth for `[from, to)`.
    pub fn truth(&self, from: i64, to: i64) -> Truth {
        let now = self.now_ms();
        let tasks = self
            .tasks_between(from, to)
            .into_iter()
            .map(|t| {
                let va_recs = va::of_task(self.cfg.seed, &t);
                TruthTask {
                    recordings: t
                        .recordings
                        .iter()
                        .map(|r| self.truth_recording(r, None, now))
                        .collect(),
                    va_recordings: va_recs
                        .iter()
                        .map(|v| self.truth_recording(&v.rec, Some(v), now))
                        .collect(),
                    transcripts: transcripts::of_task(&self.cfg, &t)
                        .into_iter()
                        .map(|tr| {
                            let (bytes, sha256) = transcripts::digest(&tr, &t.id);
                            TruthTranscript {
                                available: tr.create_ms <= now,
                                id: tr.id,
                                file_name: tr.file_name,
                                language: tr.language,
                                source: tr.source,
                                format: tr.shape.format().to_string(),
                                parseable: tr.parseable,
                                bytes,
                                sha256,
                                messages: tr.messages,
                            }
                        })
                        .collect(),
                    ended_ms: (t.ended_ms <= now).then_some(t.ended_ms),
                    team: t.team().map(str::to_string),
                    site: t.team().map(|team| data::site_of(team).to_string()),
                    termination_type: t.termination_type().to_string(),
                    customer_tier: t.customer_tier().to_string(),
                    entrypoint: t.entrypoint.to_string(),
                    chain: legacy::cars(&t, now),
                    id: t.id,
                    created_ms: t.created_ms,
                    channel_type: t.channel_type.to_string(),
                    queue: t.queue.map(|q| q.1),
                    owner: t.owner.map(|o| o.1),
                    direction: t.direction.to_string(),
                    origin: t.origin,
                }
            })
            .collect();
        Truth { now_ms: now, tasks }
    }
}

/// What the warehouse should hold: every task as the simulator knows it.
#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct Truth {
    /// The simulator's now (epoch ms).
    pub now_ms: i64,
    /// Every task created before now.
    pub tasks: Vec<TruthTask>,
}

/// A task as the warehouse should have it.
#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct TruthTask {
    /// Task id.
    pub id: String,
    /// Created (epoch ms).
    pub created_ms: i64,
    /// Channel type.
    pub channel_type: String,
    /// Queue id.
    pub queue: Option<String>,
    /// Agent id.
    pub owner: Option<String>,
    /// Direction.
    pub direction: String,
    /// Caller.
    pub origin: String,
    /// Its recordings, listed or not yet.
    pub recordings: Vec<TruthRecording>,
    /// Its virtual agent's recordings (listed only with `includeVARecordings`).
    #[serde(default)]
    pub va_recordings: Vec<TruthRecording>,
    /// Its transcripts, listed or not yet.
    #[serde(default)]
    pub transcripts: Vec<TruthTranscript>,
    /// `None` while the call is still running.
    pub ended_ms: Option<i64>,
    /// Entry point.
    pub entrypoint: String,
    /// The last agent's team and its site (business unit); `None` when no agent took it.
    pub team: Option<String>,
    /// The site (business unit) of the last agent's team.
    pub site: Option<String>,
    /// How the call ended.
    pub termination_type: String,
    /// The `CustomerTier` global variable the flow set.
    pub customer_tier: String,
    /// The legacy API's activities (CARs) of this call, in order.
    pub chain: Vec<legacy::SimCar>,
}

/// A recording as the warehouse should have it.
#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct TruthRecording {
    /// Capture id.
    pub id: String,
    /// A segment rather than the stitched call.
    pub segment: bool,
    /// Whether the captures API lists it yet.
    pub available: bool,
    /// Flagged `sensitive` (VA recordings only).
    #[serde(default)]
    pub sensitive: bool,
    /// `callType`: `main`, or `va-main`/`va-consult` for a virtual agent's recording.
    #[serde(default)]
    pub call_type: String,
    /// Audio size.
    pub bytes: u64,
    /// Audio SHA-256, hex.
    pub sha256: String,
}

/// A transcript as the warehouse should have it.
#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct TruthTranscript {
    /// `id` (the org's CCAI config id for voice).
    pub id: String,
    /// `fileName`.
    pub file_name: String,
    /// `languageCode`.
    pub language: String,
    /// Whether the captures API lists it yet.
    pub available: bool,
    /// `Source`.
    pub source: String,
    /// Its `webex_transcripts.format` (when parseable).
    pub format: String,
    /// Whether its body is well formed (else its row is `unparsed`).
    pub parseable: bool,
    /// Object size.
    pub bytes: u64,
    /// Object SHA-256, hex.
    pub sha256: String,
    /// Its messages, in order.
    pub messages: Vec<transcripts::SimMessage>,
}

async fn truth(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Truth> {
    let from = q
        .get("from")
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MIN / 2);
    let to = q
        .get("to")
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MAX / 2);
    Json(sim.truth(from, to))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<BTreeMap<String, u64>> {
    Json(sim.stats())
}

async fn clock(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<serde_json::Value> {
    if let Some(ms) = q.get("advance_ms").and_then(|v| v.parse().ok()) {
        sim.advance(ms);
    }
    Json(serde_json::json!({ "now_ms": sim.now_ms() }))
}

/// The HTTP routes of every simulated API.
pub fn router(sim: Arc<Sim>) -> Router {
    let routes = Router::new()
        .route("/v1/authorize", get(oauth::authorize))
        .route("/v1/access_token", post(oauth::token))
        .route("/v1/tasks", get(webex::tasks))
        .route("/v1/contactCenter/tasks", get(webex::tasks))
        .route("/v1/captures/query", post(webex::captures))
        .route("/v1/contactCenter/captures/query", post(webex::captures))
        .route("/search", post(search::search))
        .route("/v2/event-types", get(events::event_types))
        .route(
            "/v2/subscriptions",
            get(events::list).post(events::register),
        )
        .route(
            "/v2/subscriptions/{id}",
            get(events::get_one)
                .patch(events::update)
                .delete(events::delete),
        )
        .route("/_sim/webhooks/deliver", post(events::deliver))
        .route("/_storage/{task_id}/{file}", get(webex::storage))
        .route("/_transcripts/{task_id}/{file}", get(webex::transcript))
        .route("/aws/api/{record}", get(legacy::query))
        .route("/aws/api/{record}/{id}", get(legacy::record))
        .route("/rest/api/v2/recordings", get(xima::recordings))
        .route("/rest/api/v2/call-recording-info", get(xima::call_info))
        .route(
            "/rest/api/v2/recordings/{tenant}/{key}/audio",
            get(xima::audio),
        )
        .route("/_sim/xima/truth", get(xima::truth))
        .route("/_sim/xima/cap", post(xima::set_cap))
        .route("/_sim/truth", get(truth))
        .route("/_sim/stats", get(stats))
        .route("/_sim/clock", post(clock));
    #[cfg(test)]
    let routes = routes.merge(example::routes());
    routes
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            wire::inject,
        ))
        // Outside the wire faults: compresses what the client would have received.
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            gzip::compress,
        ))
        // Outermost: a request over the client ID's limit is refused before anything else.
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            ratelimit::limit,
        ))
        .with_state(sim)
}

/// A running simulator.
#[derive(Debug)]
pub struct SimHandle {
    /// The address it listens on (127.0.0.1).
    pub addr: SocketAddr,
    /// The simulator behind it.
    pub sim: Arc<Sim>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops listening and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Serves the simulator on `127.0.0.1:port` (0 picks a free port).
pub async fn start(cfg: SimConfig, port: u16) -> std::io::Result<SimHandle> {
    let sim = Sim::new(cfg);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let _ = sim.base_url.set(format!("http://{addr}"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(sim.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(SimHandle {
        addr,
        sim,
        shutdown: Some(tx),
        task: Some(task),
    })
}
