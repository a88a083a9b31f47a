//! One HTTP client for every source: retries with backoff, `Retry-After`, request counters
//! and errors that name the endpoint without leaking credentials or signed query strings.
//!
//! Sources build each attempt's request in a closure, so anything that can go stale during a
//! long back-off (an access token) is fetched again per attempt (Airbyte #13660).

pub mod backoff;
pub mod fetch;
pub mod pacer;
pub mod pagination;
pub mod retry;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Serialize;

use backoff::Backoff;
use pacer::Pacer;
pub use retry::RetryConfig;

/// A failed request, after retries where the failure was transient.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A status that is not success, after any retries it earned.
    #[error("{endpoint}: HTTP {status}: {message}")]
    #[allow(missing_docs)] // the message names them
    Status {
        endpoint: String,
        status: StatusCode,
        message: String,
        /// Seconds the server asked us to wait, when it said so.
        retry_after: Option<Duration>,
    },
    #[error(
        "{endpoint}: {} (after {attempts} attempts; check base_url and that the host is reachable)",
        causes(source)
    )]
    /// The request never got an answer.
    #[allow(missing_docs)] // the message names them
    Transport {
        endpoint: String,
        attempts: u32,
        source: reqwest::Error,
    },
    /// The body kept breaking off.
    #[error("{endpoint}: response body broke off {attempts} times: {message} (the connection is unstable or the server stalls; the run can be repeated)")]
    #[allow(missing_docs)] // the message names them
    Body {
        endpoint: String,
        attempts: u32,
        message: String,
    },
    /// The request could not be built (bad header or URL).
    #[error("{endpoint}: cannot build request: {message}")]
    #[allow(missing_docs)] // the message names them
    Request { endpoint: String, message: String },
}

impl HttpError {
    /// Rejected credentials are reported by the layer that knows them (each source maps
    /// its 401s); here a 4xx is the request's fault and the rest the network's or server's.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            HttpError::Status { status, .. }
                if status.is_client_error() && *status != StatusCode::TOO_MANY_REQUESTS =>
            {
                ErrorKind::Other
            }
            HttpError::Status { .. } | HttpError::Transport { .. } | HttpError::Body { .. } => {
                ErrorKind::Transient
            }
            HttpError::Request { .. } => ErrorKind::Other,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Request counters for the run report, one set per source.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Requests sent, retries included.
    pub requests: AtomicU64,
    /// Requests sent again after a transient failure.
    pub retries: AtomicU64,
    /// 429 answers.
    pub throttled: AtomicU64,
    /// 5xx answers.
    pub server_errors: AtomicU64,
    /// Requests without an answer (connect, timeout, reset).
    pub transport_errors: AtomicU64,
    /// Bodies that broke off or arrived malformed and were asked for again.
    pub body_restarts: AtomicU64,
    /// Body bytes received.
    pub bytes_in: AtomicU64,
    /// Requests that drew on a rate budget (API calls, not pre-signed downloads), and the
    /// time they spent waiting for it.
    pub paced: AtomicU64,
    /// Microseconds paced requests waited for their budget.
    pub pace_wait_us: AtomicU64,
    /// Microseconds requests slept after a 429 before asking again (its `Retry-After`).
    pub throttle_wait_us: AtomicU64,
}

/// A point-in-time copy of [`HttpStats`].
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct HttpCounts {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests sent again after a transient failure.
    pub retries: u64,
    /// 429 answers.
    pub throttled_429: u64,
    /// 5xx answers.
    pub server_errors_5xx: u64,
    /// Requests without an answer.
    pub transport_errors: u64,
    /// Bodies asked for again after breaking off or arriving malformed.
    pub body_restarts: u64,
    /// Body bytes received.
    pub bytes_in: u64,
    /// Requests counted against a rate budget (see [`pacer`]).
    pub paced_requests: u64,
    /// Milliseconds paced requests waited for their budget.
    pub pace_wait_ms: u64,
    /// Milliseconds requests slept after a 429 before asking again.
    pub throttle_wait_ms: u64,
}

impl HttpStats {
    /// The counters now.
    pub fn snapshot(&self) -> HttpCounts {
        HttpCounts {
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            throttled_429: self.throttled.load(Ordering::Relaxed),
            server_errors_5xx: self.server_errors.load(Ordering::Relaxed),
            transport_errors: self.transport_errors.load(Ordering::Relaxed),
            body_restarts: self.body_restarts.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            paced_requests: self.paced.load(Ordering::Relaxed),
            pace_wait_ms: self.pace_wait_us.load(Ordering::Relaxed) / 1000,
            throttle_wait_ms: self.throttle_wait_us.load(Ordering::Relaxed) / 1000,
        }
    }
    /// Counts body bytes read outside the request helpers (streamed audio).
    pub fn add_bytes(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }
}

/// The shared client: one connection pool, one retry policy, one set of counters, and the
/// rate budgets its requests draw on.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    retry: RetryConfig,
    stats: Arc<HttpStats>,
    pacers: Vec<Arc<Pacer>>,
}

impl HttpClient {
    /// A client whose reads give up after `read_timeout` without a byte (a stalled server),
    /// which the retry policy then treats like any transport error.
    pub fn new(retry: RetryConfig, read_timeout: Duration) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(read_timeout)
            .user_agent(concat!("ccetl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Request {
                endpoint: "client".into(),
                message: e.without_url().to_string(),
            })?;
        Ok(HttpClient {
            inner,
            retry,
            stats: Arc::new(HttpStats::default()),
            pacers: Vec::new(),
        })
    }

    /// This client (same pool and counters) with every request also waiting on `pacer`,
    /// and its 429s reported to it. Pre-signed downloads use the unpaced client: they do
    /// not count against an API's limit.
    pub fn paced(&self, pacer: Arc<Pacer>) -> HttpClient {
        let mut c = self.clone();
        c.pacers.push(pacer);
        c
    }

    /// The budgets this client draws on: the credential's own first, narrower ones (Search) after.
    pub fn pacers(&self) -> &[Arc<Pacer>] {
        &self.pacers
    }

    /// Waits for a slot in every budget; the instant the request may leave. The narrowest
    /// budget is asked first: its wait is the long one, and the wider budget's slot, taken
    /// last, is then the instant the request really leaves (a slot taken before a long wait
    /// elsewhere would let that budget's window end before the API's does).
    async fn take_slot(&self) -> tokio::time::Instant {
        let asked = tokio::time::Instant::now();
        let mut at = asked;
        for p in self.pacers.iter().rev() {
            at = p.wait().await;
        }
        if !self.pacers.is_empty() {
            self.stats.paced.fetch_add(1, Ordering::Relaxed);
            let waited = at.duration_since(asked).as_micros() as u64;
            self.stats.pace_wait_us.fetch_add(waited, Ordering::Relaxed);
        }
        at
    }

    /// The raw client, to build requests with.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// The counters this client (and its clones) add to.
    pub fn stats(&self) -> &Arc<HttpStats> {
        &self.stats
    }

    /// The retry policy, for callers that retry a body read that failed after the headers.
    pub fn retry(&self) -> &RetryConfig {
        &self.retry
    }

    /// Sends the request `make` builds, retrying transient failures. `endpoint` names the call
    /// in errors and logs (method and path, never a query string).
    pub async fn send<F, Fut, E>(&self, endpoint: &str, mut make: F) -> Result<Response, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<RequestBuilder, E>>,
        E: From<HttpError>,
    {
        let started = Instant::now();
        let mut backoff = Backoff::new(self.retry.backoff);
        let mut throttle = Backoff::new(self.retry.throttle);
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            // The slot first: a wait for it must not age the token `make` puts in.
            let sent_at = self.take_slot().await;
            let request = make().await?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = request.send().await;
            if let Ok(resp) = &outcome {
                if resp.status() != StatusCode::TOO_MANY_REQUESTS {
                    for p in &self.pacers {
                        p.answered(sent_at);
                    }
                }
            }
            let (wait_hint, failure) = match outcome {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                        for p in &self.pacers {
                            p.refused(sent_at, retry_after);
                        }
                    } else if status.is_server_error() {
                        self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    let body = resp.text().await.unwrap_or_default();
                    let err = HttpError::Status {
                        endpoint: endpoint.to_string(),
                        status,
                        message: api_message(&body),
                        retry_after,
                    };
                    if !retry::is_transient(status) {
                        return Err(err.into());
                    }
                    (retry_after, err)
                }
                Err(e) => {
                    self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                    if e.is_builder() {
                        return Err(HttpError::Request {
                            endpoint: endpoint.to_string(),
                            message: e.without_url().to_string(),
                        }
                        .into());
                    }
                    (
                        None,
                        HttpError::Transport {
                            endpoint: endpoint.to_string(),
                            attempts: attempt,
                            source: e.without_url(),
                        },
                    )
                }
            };
            let delay = match wait_hint {
                Some(hint) if hint > self.retry.max_retry_after => return Err(failure.into()),
                Some(hint) => hint,
                None if failure.status() == Some(StatusCode::TOO_MANY_REQUESTS) => {
                    throttle.next_delay()
                }
                None => backoff.next_delay(),
            };
            if attempt > self.retry.max_retries
                || started.elapsed() + delay > self.retry.retry_timeout
            {
                return Err(failure.into());
            }
            tracing::debug!(endpoint, attempt, delay_ms = delay.as_millis() as u64, error = %failure, "Retrying request.");
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            if failure.status() == Some(StatusCode::TOO_MANY_REQUESTS) {
                let us = delay.as_micros() as u64;
                self.stats.throttle_wait_us.fetch_add(us, Ordering::Relaxed);
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// An error and its causes on one line: "error sending request: tcp connect error: Connection refused".
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = c.source();
    }
    parts.join(": ")
}

/// Finds the human message in an API error body (WxCC `ApiErrorResponse`, Webex `Error`,
/// OAuth `error_description`), or a short prefix of the raw body.
pub fn api_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        let candidates = [
            v.pointer("/error/message/0/description"),
            v.pointer("/error_description"),
            v.pointer("/message"),
            v.pointer("/errors/0/description"),
            v.pointer("/error/message"),
            v.pointer("/error"),
        ];
        for c in candidates.into_iter().flatten() {
            if let Some(s) = c.as_str() {
                return s.to_string();
            }
        }
    }
    let trimmed: String = body.trim().chars().take(200).collect();
    if trimmed.is_empty() {
        "(no message in the response body)".into()
    } else {
        trimmed.replace(['\n', '\r'], " ")
    }
}

/// `base` with `path` appended to its path (a base URL may carry a prefix such as `/aws/api`).
pub fn join_path(base: &url::Url, path: &str) -> url::Url {
    let mut u = base.clone();
    let prefix = u.path().trim_end_matches('/').to_string();
    u.set_path(&format!("{prefix}/{}", path.trim_start_matches('/')));
    u
}

/// `scheme://host/path` of a URL, without query or credentials, for logs and errors.
pub fn redact_url(u: &url::Url) -> String {
    format!(
        "{}://{}{}",
        u.scheme(),
        u.host_str().unwrap_or(""),
        u.port().map(|p| format!(":{p}")).unwrap_or_default()
    ) + u.path()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_api_messages() {
        let wxcc = r#"{"trackingId":"t","error":{"key":"400","message":[{"description":"range too long"}]}}"#;
        assert_eq!(api_message(wxcc), "range too long");
        assert_eq!(
            api_message(r#"{"error":"invalid_grant","error_description":"bad refresh"}"#),
            "bad refresh"
        );
        assert_eq!(api_message("plain\ntext"), "plain text");
        assert_eq!(api_message(""), "(no message in the response body)");
    }

    #[test]
    fn redacts_query() {
        let u = url::Url::parse("https://u:p@h.example:8443/a/b.wav?X-Amz-Signature=abc").unwrap();
        assert_eq!(redact_url(&u), "https://h.example:8443/a/b.wav");
    }
}
