//! Which failures are retried, and for how long.
//!
//! The table (object_store's, adapted): connection errors, timeouts, 408, 429 and 5xx are
//! transient; every other 4xx is permanent and reported at once with the API's message.
//! `Retry-After` is honoured when it is a real hint; `0`, negative or unparsable values mean
//! "no hint" (dlt #4036). A 429 without a hint waits on the throttle curve, which starts
//! seconds long and grows to a minute: the WxCC spec does not promise the header on tasks,
//! captures or search, its limits are per minute, and Cisco's own sample waits 60 s. The
//! normal curve (100 ms doubling) would spend every retry inside one rate window.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;

use super::backoff::BackoffConfig;

/// Retry policy shared by every source.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// The curve for transport errors and 5xx.
    pub backoff: BackoffConfig,
    /// The curve for a 429 that says nothing of when to come back.
    pub throttle: BackoffConfig,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Give up once this much time has passed since the first attempt.
    pub retry_timeout: Duration,
    /// The longest `Retry-After` that is waited for; longer hints fail the request.
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            backoff: BackoffConfig::default(),
            throttle: BackoffConfig {
                init: Duration::from_secs(5),
                max: Duration::from_secs(60),
                base: 2.0,
            },
            max_retries: 8,
            retry_timeout: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Whether a status is worth another attempt.
pub fn is_transient(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error() && status.as_u16() != 501 && status.as_u16() != 509
}

/// Reads a `Retry-After` value: delta-seconds or an HTTP-date. `None` means "no usable hint".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return (secs > 0).then(|| Duration::from_secs(secs as u64));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    at.duration_since(now).ok().filter(|d| !d.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&past, now), None);
    }

    #[test]
    fn classification() {
        assert!(is_transient(StatusCode::TOO_MANY_REQUESTS));
        assert!(is_transient(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!is_transient(StatusCode::BAD_REQUEST));
        assert!(!is_transient(StatusCode::UNAUTHORIZED));
        assert!(!is_transient(StatusCode::from_u16(509).unwrap()));
    }
}
