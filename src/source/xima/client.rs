//! Requests to Xima CCaaS: calls with their recordings per window, and OPUS audio, every one
//! paced by the tenant's shared [`Pacer`] so the API's rate rule is never broken.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use object_store::path::Path;
use reqwest::StatusCode;

use super::config::XimaConfig;
use super::model::Call;
use super::XimaError;
use crate::http::pacer::Pacer;
use crate::http::{HttpClient, HttpError, RetryConfig};
use crate::sink::audio::{self, AudioError, Stored};
use crate::sink::Warehouse;

/// Xima's "rolling egress limit reached" status.
pub const BANDWIDTH_EXCEEDED: u16 = 509;

/// Why audio stopped for the rest of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// Xima answered 509 Bandwidth Limit Exceeded.
    Cap,
    /// The next download would pass the configured `egress_budget`.
    Budget,
}

/// A client of one Xima tenant: its pace (3 requests in 10 s), retries and bandwidth cap.
#[derive(Debug, Clone)]
pub struct XimaClient {
    pub(crate) http: HttpClient,
    cfg: XimaConfig,
    /// Set by the first 509 (or the budget): no more audio requests to this tenant this run.
    stopped: Arc<Mutex<Option<Quota>>>,
    /// Audio bytes downloaded in the rolling period, this run included.
    egress: Arc<AtomicU64>,
}

/// How far past a window a listing reaches for the recordings of its calls (calls longer
/// than this whose recordings begin only after it are a guess's blind spot).
pub const LOOKAHEAD: chrono::Duration = chrono::Duration::hours(12);

/// When a call started: its own time, else its first recording's.
fn call_start(c: &Call) -> Option<i64> {
    c.start_time
        .or_else(|| c.recordings.iter().filter_map(|r| r.start_time).min())
}

/// ISO 8601 with milliseconds and offset, as Xima's examples write it.
pub fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// The tenant's pacer key: Xima's limit is per tenant.
pub fn pacer_key(cfg: &XimaConfig) -> String {
    format!(
        "{}|{}",
        cfg.base_url.host_str().unwrap_or_default(),
        cfg.tenant
    )
}

impl XimaClient {
    /// Builds the HTTP client on the tenant's shared pacer; sends nothing.
    pub fn connect(cfg: &XimaConfig) -> Result<Self, XimaError> {
        let key = pacer_key(cfg);
        Ok(XimaClient {
            // Every request, audio included, keeps the tenant's pace.
            http: HttpClient::new(RetryConfig::default(), cfg.read_timeout)?
                .paced(Pacer::shared(&key, cfg.pace)),
            cfg: cfg.clone(),
            stopped: Arc::new(Mutex::new(None)),
            egress: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &XimaConfig {
        &self.cfg
    }

    /// The quota that stopped audio in this run, if any.
    pub fn stopped(&self) -> Option<Quota> {
        *self
            .stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn stop(&self, why: Quota) {
        self.stopped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_or_insert(why);
    }

    /// Starts the egress count at what earlier runs used in the rolling period.
    pub fn set_egress_used(&self, bytes: u64) {
        self.egress.store(bytes, Ordering::SeqCst);
    }

    /// Audio bytes downloaded in the rolling period, this run included.
    pub fn egress_used(&self) -> u64 {
        self.egress.load(Ordering::SeqCst)
    }

    /// Whether a download of `size` bytes (unknown: `None`) still fits the budget.
    fn within_budget(&self, size: Option<u64>) -> bool {
        self.cfg
            .egress_budget
            .is_none_or(|b| self.egress_used().saturating_add(size.unwrap_or(1)) <= b)
    }

    pub(super) fn auth_error(&self, e: HttpError) -> XimaError {
        match e.status() {
            Some(StatusCode::UNAUTHORIZED) => XimaError::Auth {
                message: "HTTP 401: the service user key was refused (revoked, or replaced by a Refresh in the portal); copy the current key from API Enablement > API Service Users into api_key".into(),
            },
            _ => XimaError::Http(e),
        }
    }

    /// Calls that started in `[start, end)`, with their recordings: one request per window.
    ///
    /// The request reaches [`LOOKAHEAD`] past `end`: Xima does not say whether it filters on
    /// the call's start or its recordings', and a call that starts in this window may record
    /// only in the next. Each call is kept by its own start, so it lands in one window only.
    pub async fn calls(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Call>, XimaError> {
        let url = crate::http::join_path(&self.cfg.base_url, "/rest/api/v2/call-recording-info");
        let endpoint = "GET /rest/api/v2/call-recording-info";
        let query = [("startTime", iso(start)), ("endTime", iso(end + LOOKAHEAD))];
        let decode_err = |message: String| XimaError::Decode {
            endpoint: endpoint.into(),
            message,
        };
        let send = || async {
            self.http
                .send(endpoint, || async {
                    Ok::<_, HttpError>(
                        self.http
                            .reqwest()
                            .get(url.clone())
                            .query(&query)
                            .bearer_auth(self.cfg.api_key.expose()),
                    )
                })
                .await
                .map_err(|e| self.auth_error(e))
        };
        let calls: Vec<Call> = self
            .http
            .fetch_page(
                endpoint,
                send,
                |body| {
                    if body.iter().all(u8::is_ascii_whitespace) {
                        return Ok(Vec::new()); // 204 No Content: no calls
                    }
                    crate::http::fetch::decode_json(body).map_err(|e| decode_err(e.to_string()))
                },
                |limit| {
                    decode_err(format!(
                        "response larger than {}; shorten the pipeline window",
                        crate::http::fetch::mib(limit)
                    ))
                },
            )
            .await?;
        let (lo, hi) = (start.timestamp_millis(), end.timestamp_millis());
        Ok(calls
            .into_iter()
            .filter(|c| call_start(c).is_none_or(|t| t >= lo && t < hi))
            .collect())
    }

    /// Streams one recording's audio (of `size` bytes, if known) into the warehouse, from
    /// `/recordings/{tenant}/{key}/audio` (`tenant`: the name the listing gave).
    /// `Ok(None)` when a quota stopped audio (now or earlier in this run): it is deferred.
    pub async fn copy_audio(
        &self,
        tenant: &str,
        recording_key: &str,
        size: Option<u64>,
        wh: &Warehouse,
        path: &Path,
    ) -> Result<Option<Stored>, AudioError> {
        if self.stopped().is_some() {
            return Ok(None);
        }
        if !self.within_budget(size) {
            tracing::info!(source = %self.cfg.name, used = self.egress_used(), "Egress budget reached; deferring the rest of the audio.");
            self.stop(Quota::Budget);
            return Ok(None);
        }
        let mut url = self.cfg.base_url.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend([
                "rest",
                "api",
                "v2",
                "recordings",
                tenant,
                recording_key,
                "audio",
            ]);
        }
        let endpoint = "GET /rest/api/v2/recordings/{tenant}/{key}/audio";
        let result = audio::copy_from(
            &self.http,
            endpoint,
            || async {
                Ok(self
                    .http
                    .reqwest()
                    .get(url.clone())
                    .bearer_auth(self.cfg.api_key.expose()))
            },
            wh,
            path,
        )
        .await;
        match result {
            Ok(stored) => {
                self.egress.fetch_add(stored.bytes, Ordering::Relaxed);
                Ok(Some(stored))
            }
            Err(AudioError::Http(e))
                if e.status().map(|s| s.as_u16()) == Some(BANDWIDTH_EXCEEDED) =>
            {
                tracing::info!(source = %self.cfg.name, tenant = %self.cfg.tenant, "Bandwidth limit reached (509); deferring the rest of the audio.");
                self.stop(Quota::Cap);
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}
