//! `ccetl serve`: receives the webhooks of one source whose system pushes events (Webex's
//! `capture:available`) and lands the recordings they announce.
//!
//! Two halves joined by a durable queue. The receiver (`POST` on the source's
//! [`Webhooks::path`]) has the source verify a delivery, appends it to the queue and syncs
//! it to disk, then answers 200, so an event acknowledged is never lost, even to a kill the
//! next instant. The worker takes queued events in batches and commits them through the
//! source ([`pipeline::commit_events`]: for Webex, Search API lookup by id, captures, audio,
//! tables merged into the task's window) under the state's run lock; a batch that fails
//! stays queued and is tried again. On SIGTERM the receiver stops accepting, the worker
//! drains the queue, and the process exits.

pub mod queue;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use serde_json::json;
use tokio::sync::Notify;

use crate::config::{PipelineConfig, SourceConfig};
use crate::extract::webhooks::Verdict;
use crate::extract::Webhooks;
use crate::pipeline;
use queue::EventQueue;

/// How long before its capture became available a task may have been created (a call of
/// up to a day, then hours until the recording is ready): the Search API's lookup range.
const TASK_AGE_MS: i64 = 2 * 86_400_000;
/// Batches an id may go unfound in (filtered out, or not searchable yet) before it is
/// dropped; the next scheduled run reconciles it.
const LOOKUPS: u32 = 3;

/// Knobs of one `ccetl serve`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The address to listen on.
    pub listen: SocketAddr,
    /// Events are gathered this long before a batch is committed.
    pub batch_wait: Duration,
    /// The most events one batch commits.
    pub max_batch: usize,
}

/// Why `ccetl serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The source has no `webhook_secret`, so deliveries could not be verified.
    #[error("source '{0}': webhook_secret is required to serve: it checks that events come from the source's system; set webhook_secret = \"${{WEBHOOK_SECRET}}\", the secret `ccetl subscribe` registered")]
    NoSecret(String),
    /// The source's system does not push events.
    #[error("source '{name}' is a {kind} source, whose system pushes no events; serve a source that has webhooks")]
    #[allow(missing_docs)] // the message names them
    NoWebhooks { name: String, kind: &'static str },
    /// The address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}; pick another --listen address")]
    #[allow(missing_docs)] // the message names them
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// The on-disk event queue could not be opened.
    #[error("event queue {path}: {source}")]
    #[allow(missing_docs)] // the message names them
    Queue {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Counters for `/healthz` and the final summary.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events acknowledged and queued.
    pub accepted: AtomicU64,
    /// Events already queued or landed (Webex retries deliveries).
    pub duplicates: AtomicU64,
    /// Deliveries refused (bad signature, stale, malformed).
    pub rejected: AtomicU64,
    /// Events whose recordings landed.
    pub committed: AtomicU64,
    /// Events given up on (the next scheduled run reconciles them).
    pub dropped: AtomicU64,
    /// Batches that failed and were retried.
    pub batches_failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    /// The last batch failure, for `/healthz`.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn json(&self, queue: &EventQueue) -> serde_json::Value {
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "status": "ok",
            "pending": queue.len(),
            "accepted": n(&self.accepted),
            "duplicates": n(&self.duplicates),
            "rejected": n(&self.rejected),
            "committed": n(&self.committed),
            "dropped": n(&self.dropped),
            "batches_failed": n(&self.batches_failed),
            "last_error": self.last_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
        })
    }
}

struct Shared {
    queue: EventQueue,
    stats: Arc<Stats>,
    wake: Notify,
    source: SourceConfig,
}

impl Shared {
    /// The source's webhooks ([`serve`] checked that it has them).
    fn hooks(&self) -> Option<&dyn Webhooks> {
        self.source.webhooks()
    }
}

/// Where a source's event queue lives: beside its state file.
pub fn queue_path(cfg: &PipelineConfig, source: &str) -> PathBuf {
    let state = cfg.state_path(Some(source));
    PathBuf::from(format!("{}.{source}.events", state.display()))
}

/// Serves until `shutdown` resolves, then drains the queue. `bound` learns the address.
pub async fn serve(
    cfg: PipelineConfig,
    source: SourceConfig,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<Arc<Stats>, ServeError> {
    let hooks = source.webhooks().ok_or_else(|| ServeError::NoWebhooks {
        name: source.name().to_string(),
        kind: source.kind(),
    })?;
    if hooks.secret().is_none() {
        return Err(ServeError::NoSecret(source.name().to_string()));
    }
    let (route, event_type) = (hooks.path(), hooks.event_type());
    let path = queue_path(&cfg, source.name());
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let queue = EventQueue::open(&path).map_err(|e| ServeError::Queue {
        path: path.clone(),
        source: e,
    })?;
    let shared = Arc::new(Shared {
        queue,
        stats: Arc::new(Stats::default()),
        wake: Notify::new(),
        source: source.clone(),
    });
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ServeError::Listen {
            addr: opts.listen,
            source: e,
        })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Listen {
        addr: opts.listen,
        source: e,
    })?;
    tracing::info!(%addr, source = %source.name(), route, event_type, pending = shared.queue.len(), "Listening for webhooks.");
    if let Some(tx) = bound {
        let _ = tx.send(addr);
    }
    let app = Router::new()
        .route(route, post(receive))
        .route("/healthz", get(health))
        .with_state(shared.clone());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(work(cfg, opts.clone(), shared.clone(), stop_rx));
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    if let Err(e) = server.await {
        tracing::warn!(error = %e, "The webhook listener stopped.");
    }
    // Stop accepting first, then let the worker finish what was acknowledged.
    let _ = stop_tx.send(true);
    shared.wake.notify_one();
    if let Err(e) = worker.await {
        tracing::warn!(error = %e, "The event worker ended abnormally.");
    }
    Ok(shared.stats.clone())
}

async fn health(State(s): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(s.stats.json(&s.queue))
}

async fn receive(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let now = Utc::now().timestamp_millis();
    let Some(hooks) = s.hooks() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let event = match hooks.verify(&headers, &body, now) {
        Ok(Verdict::Ready(e)) => e,
        Ok(Verdict::Ignored(kind)) => {
            let wanted = hooks.event_type();
            tracing::info!(kind, wanted, "Ignored an event of another type.");
            return (StatusCode::OK, Json(json!({ "status": "ignored" }))).into_response();
        }
        Err(why) => {
            s.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = %s.source.name(), reason = %why, "Refused a webhook delivery (answered 200, nothing queued).");
            // 200, as Cisco's sample answers a bad signature: non-2xx answers can get the
            // subscription set inactive, so a burst of forged or stale posts would otherwise
            // switch real deliveries off. The log and `rejected` say why; the sender learns
            // nothing, the answer being the one an ignored event gets.
            return (StatusCode::OK, Json(json!({ "status": "ignored" }))).into_response();
        }
    };
    // Synced to disk before the answer: an acknowledged event survives a crash.
    let shared = s.clone();
    let pushed = tokio::task::spawn_blocking(move || shared.queue.push(&event)).await;
    match pushed {
        Ok(Ok(true)) => {
            s.stats.accepted.fetch_add(1, Ordering::Relaxed);
            s.wake.notify_one();
            (StatusCode::OK, Json(json!({ "status": "queued" }))).into_response()
        }
        Ok(Ok(false)) => {
            s.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, Json(json!({ "status": "duplicate" }))).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "Cannot record an event; answering 503 so it is delivered again.");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "Recording an event failed.");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// The worker: batches of queued events, committed one batch at a time.
async fn work(
    cfg: PipelineConfig,
    opts: ServeOptions,
    s: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut misses: std::collections::HashMap<String, u32> = Default::default();
    let mut failures = 0u32;
    loop {
        let stopping = *stop.borrow();
        if s.queue.is_empty() {
            if stopping {
                return;
            }
            tokio::select! {
                () = s.wake.notified() => {}
                _ = stop.changed() => {}
            }
            // Let a burst of deliveries gather into one batch (a shutdown cuts the wait short).
            if !*stop.borrow() {
                tokio::select! {
                    () = tokio::time::sleep(opts.batch_wait) => {}
                    _ = stop.changed() => {}
                }
            }
            continue;
        }
        crate::failpoint::hit("serve-batch");
        let batch = s.queue.peek(opts.max_batch);
        let ids: Vec<String> = batch.iter().map(|e| e.task_id.clone()).collect();
        let oldest = batch.iter().map(|e| e.created_ms).min().unwrap_or_default();
        let range = (
            Utc.timestamp_millis_opt(oldest - TASK_AGE_MS)
                .single()
                .unwrap_or_else(Utc::now),
            Utc::now(),
        );
        let (report, result) = pipeline::commit_events(&cfg, s.source.name(), &ids, range).await;
        match result {
            Ok(committed) => {
                failures = 0;
                let mut done = committed.clone();
                for id in ids.iter().filter(|id| !committed.contains(id)) {
                    let n = misses.entry(id.clone()).or_default();
                    *n += 1;
                    if *n >= LOOKUPS {
                        tracing::warn!(task = %id, "Contact not found by the source's API after {LOOKUPS} tries (filtered out, or not searchable yet); dropped: the next scheduled run reconciles it.");
                        s.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        misses.remove(id);
                        done.push(id.clone());
                    }
                }
                s.stats
                    .committed
                    .fetch_add(committed.len() as u64, Ordering::Relaxed);
                tracing::info!(
                    events = ids.len(),
                    committed = committed.len(),
                    windows = report.windows.len(),
                    "Committed a batch of events."
                );
                if let Err(e) = s.queue.done(&done) {
                    tracing::error!(error = %e, "Cannot mark events done; they will be committed again (harmlessly).");
                }
                if done.len() < ids.len() {
                    if stopping {
                        // Left queued for the next start rather than looked up in a hurry.
                        return;
                    }
                    // Some tasks are not searchable yet: give the index time.
                    tokio::time::sleep(opts.batch_wait.max(Duration::from_secs(1))).await;
                }
            }
            Err(e) => {
                failures += 1;
                s.stats.batches_failed.fetch_add(1, Ordering::Relaxed);
                *s.stats
                    .last_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.to_string());
                tracing::warn!(error = %e, pending = s.queue.len(), "A batch of events failed; it stays queued and is tried again.");
                if stopping && failures >= 3 {
                    tracing::warn!(
                        pending = s.queue.len(),
                        "Stopping with events queued; the next start commits them."
                    );
                    return;
                }
                let delay = Duration::from_secs(1 << failures.min(6));
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}
