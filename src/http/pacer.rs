//! Request pacing for APIs with a strict per-tenant rate (Xima: one request every 3 s, and
//! never more than 3 in any 10 s).
//!
//! One [`Pacer`] per tenant is shared by every request to that tenant in the process
//! ([`Pacer::shared`]), so list, info and audio requests queue on the same clock and no 429
//! is ever provoked; tenants have their own pacers and proceed in parallel. A request takes
//! its slot before it is sent: the next slot is the later of `last + min_interval` and
//! `burst_max`-th last `+ burst_window` (plus a small margin for transit jitter).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// The rule a tenant's requests must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceRule {
    pub min_interval: Duration,
    pub burst_max: usize,
    pub burst_window: Duration,
}

impl PaceRule {
    /// Slack added to the window: requests arrive a little later than they leave, and not
    /// always by the same delay (2%, at least 10 ms for scaled-down test limits).
    fn margin(&self) -> Duration {
        (self.burst_window / 50).max(Duration::from_millis(10))
    }
}

#[derive(Debug)]
pub struct Pacer {
    rule: PaceRule,
    sent: tokio::sync::Mutex<VecDeque<Instant>>,
}

impl Pacer {
    pub fn new(rule: PaceRule) -> Self {
        Pacer {
            rule,
            sent: tokio::sync::Mutex::new(VecDeque::new()),
        }
    }

    /// The process-wide pacer for `key` (e.g. host and tenant).
    pub fn shared(key: &str, rule: PaceRule) -> Arc<Pacer> {
        static PACERS: OnceLock<Mutex<HashMap<String, Arc<Pacer>>>> = OnceLock::new();
        let mut all = PACERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        all.entry(key.to_string())
            .or_insert_with(|| Arc::new(Pacer::new(rule)))
            .clone()
    }

    /// Waits for this request's slot. Holding the lock while sleeping queues callers in order.
    pub async fn wait(&self) {
        let mut sent = self.sent.lock().await;
        let now = Instant::now();
        let mut at = now;
        if let Some(last) = sent.back() {
            at = at.max(*last + self.rule.min_interval);
        }
        if sent.len() >= self.rule.burst_max {
            let oldest = sent[sent.len() - self.rule.burst_max];
            at = at.max(oldest + self.rule.burst_window + self.rule.margin());
        }
        if at > now {
            tokio::time::sleep_until(at).await;
        }
        sent.push_back(at.max(Instant::now()));
        while sent.len() > self.rule.burst_max {
            sent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_more_than_burst_max_in_a_window() {
        let rule = PaceRule {
            min_interval: Duration::from_millis(30),
            burst_max: 3,
            burst_window: Duration::from_millis(100),
        };
        let p = Pacer::new(rule);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..12 {
            p.wait().await;
            times.push(Instant::now() - start);
        }
        for w in times.windows(2) {
            assert!(w[1] - w[0] >= rule.min_interval, "{times:?}");
        }
        for w in times.windows(4) {
            assert!(
                w[3] - w[0] > rule.burst_window,
                "4 within a window: {times:?}"
            );
        }
        // And no slower than needed: 12 requests in about 4 windows.
        assert!(times[11] < Duration::from_millis(4 * 110 + 60), "{times:?}");
    }
}
