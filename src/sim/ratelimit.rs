//! Webex Contact Center's rate limit: "the current default rate limit for a given client ID
//! is 300 requests per minute"; every limited request gets 429 with `Retry-After` in seconds
//! (developer portal, "Rate Limiting").
//!
//! Webex documents the rate, not how it is counted, so the simulator counts it any of three
//! ways ([`Shape`]): a token bucket holding a second's worth (the default, and the
//! strictest on a burst), a sliding window, or fixed windows. Every WxCC API route counts
//! (tasks, captures, Search, subscriptions); OAuth (another host, `webexapis.com`),
//! pre-signed storage, the legacy API and Xima do not. Every token the simulator issues
//! belongs to its one client ID.
//!
//! Two faults shape it further ([`RateFaults`]): 429s at random whatever the limit (another
//! integration on the client ID for a moment, a gateway), and a limit that drops for a
//! while and returns.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Sim;

/// How a limit counts its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A bucket of `burst` tokens, refilled at `requests` per window; a request takes one.
    Bucket {
        /// Tokens the bucket holds: the longest burst it accepts.
        burst: u32,
    },
    /// At most `requests` in the window before each request.
    Sliding,
    /// At most `requests` in each window, windows counted from the first request.
    Fixed,
}

/// A limit: `requests` per `window`, counted as `shape` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
    /// How requests are counted.
    pub shape: Shape,
}

impl RateLimit {
    /// The documented default: 300 a minute, as a bucket of 5.
    pub const WEBEX: RateLimit = RateLimit::bucket(300, Duration::from_secs(60));

    /// `requests` per `window` as a token bucket holding a sixtieth of them (a second's
    /// worth at Webex's real window), at least 2.
    pub const fn bucket(requests: u32, window: Duration) -> Self {
        let burst = if requests / 60 > 2 { requests / 60 } else { 2 };
        RateLimit {
            requests,
            window,
            shape: Shape::Bucket { burst },
        }
    }

    /// The same rate counted another way.
    pub const fn shaped(self, shape: Shape) -> Self {
        RateLimit { shape, ..self }
    }

    /// Reads `300/60s` (a bucket), `300/60s bucket:5`, `300/60s sliding`, `300/60s fixed`,
    /// or `off` (no limit).
    pub fn parse(text: &str) -> Result<Option<RateLimit>, String> {
        if text == "off" {
            return Ok(None);
        }
        let (rate, shape) = text.trim().split_once(' ').unwrap_or((text, ""));
        let (n, w) = rate.split_once('/').ok_or_else(|| {
            format!("'{text}' is not a rate limit; write e.g. 300/60s, 300/60s sliding, or off")
        })?;
        let requests: u32 = n
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("'{n}' is not a positive number of requests"))?;
        let window = crate::units::parse_duration(w.trim()).map_err(|e| e.to_string())?;
        if window.is_zero() {
            return Err("the window must be longer than 0".into());
        }
        let limit = RateLimit::bucket(requests, window);
        let shape = match shape.trim() {
            "" | "bucket" => limit.shape,
            "sliding" => Shape::Sliding,
            "fixed" => Shape::Fixed,
            other => {
                let burst = other
                    .strip_prefix("bucket:")
                    .and_then(|b| b.parse().ok())
                    .filter(|b| *b > 0)
                    .ok_or_else(|| {
                        format!("'{other}' is not a limit's shape; write bucket, bucket:5, sliding or fixed")
                    })?;
                Shape::Bucket { burst }
            }
        };
        Ok(Some(limit.shaped(shape)))
    }

    /// How it reads in `ccetl sim`'s banner.
    pub fn describe(&self) -> String {
        let shape = match self.shape {
            Shape::Bucket { burst } => format!("token bucket of {burst}"),
            Shape::Sliding => "sliding window".into(),
            Shape::Fixed => "fixed windows".into(),
        };
        format!("{}/{}ms ({shape})", self.requests, self.window.as_millis())
    }
}

/// Faults of the limit itself, beside its counting.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RateFaults {
    /// The share of API requests answered 429 (`Retry-After: 1`, every other one as an
    /// HTTP-date) whatever the limit.
    pub noise: f64,
    /// A lower limit for a while.
    pub drop: Option<RateDrop>,
}

/// The limit falls to `requests` per window `after` the first request, for `lasts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDrop {
    /// When it falls, counted from the first API request.
    pub after: Duration,
    /// How long it stays down.
    pub lasts: Duration,
    /// Requests per window meanwhile.
    pub requests: u32,
}

impl RateDrop {
    /// Reads "75 after 2m for 2m".
    pub fn parse(text: &str) -> Result<RateDrop, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [requests, "after", after, "for", lasts] = words[..] else {
            return Err(format!(
                "'{text}' is not a drop; write REQUESTS after AFTER for LASTS, e.g. 75 after 2m for 2m"
            ));
        };
        let duration = |w: &str| crate::units::parse_duration(w).map_err(|e| e.to_string());
        Ok(RateDrop {
            requests: requests
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("'{requests}' is not a positive number of requests"))?,
            after: duration(after)?,
            lasts: duration(lasts)?,
        })
    }
}

/// The client ID's count (the simulator serves one).
#[derive(Debug, Default)]
pub struct Limiter {
    count: Mutex<Count>,
    /// When each accepted request came, for benchmarks' rates over time.
    accepted: Mutex<Vec<Instant>>,
}

#[derive(Debug, Default)]
struct Count {
    /// The first request: fixed windows and a drop are counted from it.
    origin: Option<Instant>,
    /// Requests seen, for the noise's draw.
    seen: u64,
    /// Sliding: the window's accepted requests.
    accepted: VecDeque<Instant>,
    /// Bucket: tokens and when they were last topped up.
    tokens: f64,
    topped: Option<Instant>,
    /// Fixed: the current window's index and its count.
    fixed: (u64, u32),
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

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Over the limit: come back after this.
    Limit(Duration),
    /// A random 429; `date` says the header is an HTTP-date.
    Noise { date: bool },
}

impl Limiter {
    /// Every request accepted so far, or `None` before the first.
    pub fn span(&self) -> Option<Span> {
        let accepted = self
            .accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(Span {
            accepted: accepted.len() as u64,
            first: *accepted.first()?,
            last: *accepted.last()?,
        })
    }

    /// How many requests were accepted from `from` until `to`.
    pub fn accepted_between(&self, from: Instant, to: Instant) -> usize {
        self.accepted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|t| **t >= from && **t < to)
            .count()
    }

    /// When the first API request came (a drop is counted from it).
    pub fn origin(&self) -> Option<Instant> {
        self.count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .origin
    }

    /// `None` when the request may go; else why not.
    fn admit(&self, limit: Option<RateLimit>, faults: &RateFaults) -> Option<Refusal> {
        let now = Instant::now();
        let refusal = {
            let mut count = self
                .count
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            count.admit(limit, faults, now)
        };
        if refusal.is_none() {
            self.accepted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(now);
        }
        refusal
    }
}

impl Count {
    fn admit(
        &mut self,
        limit: Option<RateLimit>,
        faults: &RateFaults,
        now: Instant,
    ) -> Option<Refusal> {
        let origin = *self.origin.get_or_insert(now);
        self.seen += 1;
        if faults.noise > 0.0 && noisy(self.seen, faults.noise) {
            return Some(Refusal::Noise {
                date: self.seen.is_multiple_of(2),
            });
        }
        let mut limit = limit?;
        if let Some(d) = faults.drop {
            let since = now.duration_since(origin);
            if since >= d.after && since < d.after + d.lasts {
                limit.requests = d.requests;
            }
        }
        let wait = match limit.shape {
            Shape::Sliding => self.sliding(limit, now),
            Shape::Fixed => self.fixed(limit, origin, now),
            Shape::Bucket { burst } => self.bucket(limit, burst, now),
        };
        wait.map(Refusal::Limit)
    }

    fn sliding(&mut self, limit: RateLimit, now: Instant) -> Option<Duration> {
        while self
            .accepted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            self.accepted.pop_front();
        }
        if self.accepted.len() < limit.requests as usize {
            self.accepted.push_back(now);
            return None;
        }
        let oldest = self.accepted.front().copied().unwrap_or(now);
        Some(limit.window.saturating_sub(now.duration_since(oldest)))
    }

    fn fixed(&mut self, limit: RateLimit, origin: Instant, now: Instant) -> Option<Duration> {
        let window = limit.window.as_nanos().max(1);
        let index = (now.duration_since(origin).as_nanos() / window) as u64;
        if self.fixed.0 != index {
            self.fixed = (index, 0);
        }
        if self.fixed.1 < limit.requests {
            self.fixed.1 += 1;
            return None;
        }
        let next = origin + Duration::from_nanos((window * u128::from(index + 1)) as u64);
        Some(next.duration_since(now))
    }

    fn bucket(&mut self, limit: RateLimit, burst: u32, now: Instant) -> Option<Duration> {
        let per_sec = f64::from(limit.requests) / limit.window.as_secs_f64();
        let burst = f64::from(burst);
        self.tokens = match self.topped {
            None => burst,
            Some(t) => (self.tokens + now.duration_since(t).as_secs_f64() * per_sec).min(burst),
        };
        self.topped = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return None;
        }
        Some(Duration::from_secs_f64((1.0 - self.tokens) / per_sec))
    }
}

/// Whether the `n`th request draws a random 429, at `share` of them (a hash: the same
/// requests each run).
fn noisy(n: u64, share: f64) -> bool {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    ((x >> 11) as f64 / (1u64 << 53) as f64) < share
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
    let faults = sim.cfg.rate_faults;
    if sim.cfg.rate_limit.is_none() && faults == RateFaults::default() {
        return next.run(req).await;
    }
    if !counted(req.uri().path()) {
        return next.run(req).await;
    }
    let retry_after = match sim.limiter.admit(sim.cfg.rate_limit, &faults) {
        None => return next.run(req).await,
        Some(Refusal::Limit(wait)) => {
            sim.count("rate_limited");
            // Whole seconds, rounded up: the header's unit (at least 1).
            wait.as_millis().div_ceil(1000).max(1).to_string()
        }
        Some(Refusal::Noise { date }) => {
            sim.count("rate_noise");
            if date {
                httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2))
            } else {
                "1".to_string()
            }
        }
    };
    let body = json!({
        "trackingId": "sim-0000",
        "error": { "key": "429", "message": [ { "description": "Too Many Requests: the client ID's rate limit is reached" } ] }
    });
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(RateLimit::parse("300/60s").unwrap(), Some(RateLimit::WEBEX));
        assert_eq!(
            RateLimit::WEBEX.shape,
            Shape::Bucket { burst: 5 },
            "a second's worth"
        );
        assert_eq!(
            RateLimit::parse("300/60s sliding").unwrap().unwrap().shape,
            Shape::Sliding
        );
        assert_eq!(
            RateLimit::parse("300/60s bucket:9").unwrap().unwrap().shape,
            Shape::Bucket { burst: 9 }
        );
        assert_eq!(RateLimit::parse("off").unwrap(), None);
        assert!(RateLimit::parse("300").is_err());
        assert!(RateLimit::parse("0/1s").is_err());
        assert!(RateLimit::parse("300/60s round").is_err());
        assert_eq!(
            RateDrop::parse("75 after 2m for 90s"),
            Ok(RateDrop {
                after: Duration::from_secs(120),
                lasts: Duration::from_secs(90),
                requests: 75
            })
        );
        assert!(RateDrop::parse("75 for 2m").is_err());
    }

    fn admit(l: &Limiter, limit: RateLimit) -> Option<Duration> {
        match l.admit(Some(limit), &RateFaults::default()) {
            None => None,
            Some(Refusal::Limit(wait)) => Some(wait),
            Some(r) => panic!("{r:?}"),
        }
    }

    #[test]
    fn each_shape_refuses_past_its_limit_and_says_until_when() {
        let limit = RateLimit {
            requests: 3,
            window: Duration::from_millis(300),
            shape: Shape::Sliding,
        };
        for shape in [Shape::Sliding, Shape::Fixed, Shape::Bucket { burst: 3 }] {
            let l = Limiter::default();
            let limit = limit.shaped(shape);
            for _ in 0..3 {
                assert_eq!(admit(&l, limit), None, "{shape:?}");
            }
            let wait = admit(&l, limit).expect("the fourth is refused");
            assert!(
                wait > Duration::from_millis(50) && wait <= limit.window,
                "{shape:?} {wait:?}"
            );
            std::thread::sleep(wait + Duration::from_millis(2));
            assert_eq!(admit(&l, limit), None, "{shape:?}");
        }
    }

    #[test]
    fn a_bucket_refuses_a_burst_a_window_accepts() {
        let limit = RateLimit::bucket(300, Duration::from_secs(60));
        let l = Limiter::default();
        let accepted = (0..20).filter(|_| admit(&l, limit).is_none()).count();
        assert_eq!(accepted, 5, "a bucket of 5 takes 5 of 20 sent at once");
        let l = Limiter::default();
        let sliding = limit.shaped(Shape::Sliding);
        assert!((0..20).all(|_| admit(&l, sliding).is_none()));
    }

    #[test]
    fn noise_refuses_its_share_whatever_the_limit() {
        let l = Limiter::default();
        let faults = RateFaults {
            noise: 0.04,
            drop: None,
        };
        let noisy = (0..10_000)
            .filter(|_| matches!(l.admit(None, &faults), Some(Refusal::Noise { .. })))
            .count();
        assert!((300..500).contains(&noisy), "{noisy}");
    }

    #[test]
    fn a_drop_lowers_the_limit_then_it_returns() {
        let l = Limiter::default();
        let limit = RateLimit {
            requests: 100,
            window: Duration::from_millis(200),
            shape: Shape::Fixed,
        };
        let faults = RateFaults {
            noise: 0.0,
            drop: Some(RateDrop {
                after: Duration::from_millis(200),
                lasts: Duration::from_millis(200),
                requests: 2,
            }),
        };
        let burst = |l: &Limiter| {
            (0..10)
                .filter(|_| l.admit(Some(limit), &faults).is_none())
                .count()
        };
        assert_eq!(burst(&l), 10);
        std::thread::sleep(Duration::from_millis(220));
        assert_eq!(burst(&l), 2, "dropped");
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(burst(&l), 10, "returned");
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
