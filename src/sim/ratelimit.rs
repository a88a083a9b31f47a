//! Webex Contact Center's rate limit: "the current default rate limit for a given client ID
//! is 300 requests per minute"; every limited request gets 429 with `Retry-After` in seconds
//! (developer portal, "Rate Limiting").
//!
//! Counted per client ID over a sliding window, strict: a request is refused when the
//! window before it already holds `requests` accepted ones, and told to come back when the
//! oldest of them leaves it. Every WxCC API route counts (tasks, captures, Search,
//! subscriptions); OAuth (another host, `webexapis.com`), pre-signed storage, the legacy
//! API and Xima do not. Every token the simulator issues belongs to its one client ID.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Sim;

/// A limit: at most `requests` in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window, sliding.
    pub window: Duration,
}

impl RateLimit {
    /// The documented default: 300 a minute.
    pub const WEBEX: RateLimit = RateLimit {
        requests: 300,
        window: Duration::from_secs(60),
    };

    /// Reads `300/60s`, `3000/1m` or `off` (no limit).
    pub fn parse(text: &str) -> Result<Option<RateLimit>, String> {
        if text == "off" {
            return Ok(None);
        }
        let (n, w) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not a rate limit; write e.g. 300/60s, or off"))?;
        let requests: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("'{n}' is not a positive number of requests"))?;
        let window = crate::config::parse_duration(w.trim()).map_err(|e| e.to_string())?;
        if window.is_zero() {
            return Err("the window must be longer than 0".into());
        }
        Ok(Some(RateLimit { requests, window }))
    }
}

/// The accepted requests of the window, per client ID (the simulator serves one).
#[derive(Debug, Default)]
pub struct Limiter {
    accepted: Mutex<VecDeque<Instant>>,
    span: Mutex<Option<Span>>,
}

/// Every request the limit accepted: how many, the first and the last (benchmarks compare
/// this with the least time the limit allows for as many).
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Requests accepted.
    pub accepted: u64,
    /// When the first was.
    pub first: Instant,
    /// When the last was.
    pub last: Instant,
}

impl Limiter {
    /// Every request accepted so far, or `None` before the first.
    pub fn span(&self) -> Option<Span> {
        *self
            .span
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `None` when the request may go; else how long until it would be accepted.
    fn admit(&self, limit: RateLimit) -> Option<Duration> {
        let wait = self.check(limit);
        if wait.is_none() {
            let now = Instant::now();
            let mut span = self
                .span
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let s = span.get_or_insert(Span {
                accepted: 0,
                first: now,
                last: now,
            });
            s.accepted += 1;
            s.last = now;
        }
        wait
    }

    fn check(&self, limit: RateLimit) -> Option<Duration> {
        let now = Instant::now();
        let mut accepted = self
            .accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            accepted.pop_front();
        }
        if accepted.len() < limit.requests as usize {
            accepted.push_back(now);
            return None;
        }
        let oldest = accepted.front().copied().unwrap_or(now);
        Some(limit.window.saturating_sub(now.duration_since(oldest)))
    }
}

/// Whether a path is a WxCC API route (counted against the client ID's limit).
fn counted(path: &str) -> bool {
    [
        "/v1/tasks",
        "/v1/contactCenter/",
        "/v1/captures/",
        "/search",
        "/v2/",
    ]
    .iter()
    .any(|p| path == *p || path.starts_with(p))
}

/// The middleware: counts, and refuses with 429 and `Retry-After` past the limit.
pub async fn limit(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let Some(rule) = sim.cfg.rate_limit else {
        return next.run(req).await;
    };
    if !counted(req.uri().path()) {
        return next.run(req).await;
    }
    match sim.limiter.admit(rule) {
        None => next.run(req).await,
        Some(wait) => {
            sim.count("rate_limited");
            // Whole seconds, rounded up: the header's unit (at least 1).
            let secs = wait.as_millis().div_ceil(1000).max(1);
            let body = json!({
                "trackingId": "sim-0000",
                "error": { "key": "429", "message": [ { "description": "Too Many Requests: the client ID's rate limit is reached" } ] }
            });
            let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(RateLimit::parse("300/60s").unwrap(), Some(RateLimit::WEBEX));
        assert_eq!(RateLimit::parse("off").unwrap(), None);
        assert!(RateLimit::parse("300").is_err());
        assert!(RateLimit::parse("0/1s").is_err());
    }

    #[test]
    fn refuses_past_the_window_and_says_until_when() {
        let l = Limiter::default();
        let rule = RateLimit {
            requests: 3,
            window: Duration::from_millis(300),
        };
        for _ in 0..3 {
            assert_eq!(l.admit(rule), None);
        }
        let wait = l.admit(rule).expect("the fourth is refused");
        assert!(wait > Duration::from_millis(200) && wait <= rule.window);
        std::thread::sleep(wait);
        assert_eq!(l.admit(rule), None);
    }

    #[test]
    fn counts_api_routes_only() {
        assert!(counted("/v1/tasks"));
        assert!(counted("/v1/captures/query"));
        assert!(counted("/search"));
        assert!(counted("/v2/subscriptions/abc"));
        assert!(!counted("/v1/access_token"));
        assert!(!counted("/_storage/t/a.wav"));
        assert!(!counted("/aws/api/csrs"));
        assert!(!counted("/_sim/stats"));
    }
}
