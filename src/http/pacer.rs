//! Request pacing: at most so many requests in any window, per API and credential, shared by
//! every client in the process, and lowered when the API says it is less.
//!
//! Two APIs need it. Webex Contact Center allows 300 requests a minute per client ID (every
//! org an integration serves shares them); Xima one request every 3 s and never more than 3
//! in any 10 s per tenant. One [`Pacer`] per key ([`Pacer::shared`]) is used by every request
//! to that API under that credential, so sources that share a credential share its budget.
//!
//! A request takes its slot before it is sent: the later of `last + min_interval`, the
//! `limit`-th last `+ window` (plus a margin for transit jitter) and the end of a pause. The
//! allowance is adaptive (AIMD): a 429 pauses every request for its `Retry-After` and lowers
//! the allowance under what the API just accepted (once a tenth of it was sent; by a fifth
//! before), cutting once per congestion (further refusals in flight only bring it down to
//! what was accepted, never by another 20%); each window spent at the allowance without a
//! 429 raises it by 2% of the rule's maximum, so a limit lower than configured (another app
//! on the same client ID, a busier org) costs a 429 every few windows, not a storm.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// The rule a credential's requests must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceRule {
    /// The shortest gap between two requests (Xima: 3 s; Webex: none).
    pub min_interval: Duration,
    /// The most requests in any `burst_window`.
    pub burst_max: usize,
    /// The window `burst_max` is counted over.
    pub burst_window: Duration,
}

impl PaceRule {
    /// `requests` in any `window`, sent as soon as the window allows.
    pub fn per_window(requests: usize, window: Duration) -> Self {
        PaceRule {
            min_interval: Duration::ZERO,
            burst_max: requests.max(1),
            burst_window: window,
        }
    }

    /// The rule's rate, in requests per minute.
    pub fn per_minute(&self) -> f64 {
        let by_window = self.burst_max as f64 * 60.0 / self.burst_window.as_secs_f64();
        if self.min_interval.is_zero() {
            by_window
        } else {
            by_window.min(60.0 / self.min_interval.as_secs_f64())
        }
    }

    /// Slack added to the window: requests arrive a little later than they leave, and not
    /// always by the same delay (2%, at least 25 ms: a scaled-down test limit on a loaded
    /// machine saw a 429 with 10 ms).
    fn margin(&self) -> Duration {
        (self.burst_window / 50).max(Duration::from_millis(25))
    }

    /// How much a quiet window at the allowance raises it: 2% of the maximum, at least one.
    fn step(&self) -> usize {
        (self.burst_max / 50).max(1)
    }
}

/// What a pacer has seen, for the run report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceCounts {
    /// The allowance now, in requests per window.
    pub limit: usize,
    /// The lowest the allowance fell to.
    pub lowest: usize,
    /// 429s reported.
    pub refused: u64,
    /// How many 429s lowered the allowance.
    pub cuts: u64,
}

/// Spaces requests to a rate rule shared by every client with the same key (a client ID,
/// a tenant), and lowers its allowance when the server answers 429.
#[derive(Debug)]
pub struct Pacer {
    key: String,
    rule: PaceRule,
    /// Taken for the whole wait, so requests get their slots in the order they asked.
    queue: tokio::sync::Mutex<()>,
    clock: Mutex<Clock>,
}

#[derive(Debug)]
struct Clock {
    /// Send times of the last `rule.burst_max` requests.
    sent: VecDeque<Instant>,
    /// 429s in the last window: what the API accepted is `sent` minus these.
    refused: VecDeque<Instant>,
    limit: usize,
    paused_until: Option<Instant>,
    /// When the allowance was last lowered: 429s for requests sent before it are the same
    /// congestion.
    last_cut: Option<Instant>,
    /// The start of the window over which growth is judged, and whether a request had to
    /// wait for the allowance in it (an idle client learns nothing about the limit).
    period_start: Instant,
    crowded: bool,
    counts: PaceCounts,
}

impl Pacer {
    /// A pacer of its own, not shared (tests and benches; sources use `shared`).
    pub fn new(key: &str, rule: PaceRule) -> Self {
        Pacer {
            key: key.to_string(),
            rule,
            queue: tokio::sync::Mutex::new(()),
            clock: Mutex::new(Clock {
                sent: VecDeque::new(),
                refused: VecDeque::new(),
                limit: rule.burst_max,
                paused_until: None,
                last_cut: None,
                period_start: Instant::now(),
                crowded: false,
                counts: PaceCounts {
                    limit: rule.burst_max,
                    lowest: rule.burst_max,
                    refused: 0,
                    cuts: 0,
                },
            }),
        }
    }

    /// The process-wide pacer for `key` (API host and credential). The first caller's rule
    /// holds: sources sharing a credential share one budget, whatever each one configured.
    pub fn shared(key: &str, rule: PaceRule) -> Arc<Pacer> {
        static PACERS: OnceLock<Mutex<HashMap<String, Arc<Pacer>>>> = OnceLock::new();
        let mut all = PACERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pacer = all
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Pacer::new(key, rule)))
            .clone();
        if pacer.rule != rule {
            tracing::warn!(key = pacer.key, "Two sources share a rate budget but configure it differently; the first one's holds.");
        }
        pacer
    }

    /// The rule it started with.
    pub fn rule(&self) -> PaceRule {
        self.rule
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What it has seen so far.
    pub fn counts(&self) -> PaceCounts {
        self.clock().counts
    }

    /// Waits for this request's slot and returns when it was taken.
    pub async fn wait(&self) -> Instant {
        let _turn = self.queue.lock().await;
        loop {
            let now = Instant::now();
            let at = self.clock().next_slot(&self.rule, now);
            if at <= now {
                let mut clock = self.clock();
                clock.sent.push_back(now);
                while clock.sent.len() > self.rule.burst_max {
                    clock.sent.pop_front();
                }
                return now;
            }
            // Asked again after the sleep: a 429 meanwhile may have paused or cut the budget.
            tokio::time::sleep_until(at).await;
        }
    }

    /// A request sent at `sent_at` was refused with 429: pause everyone for `retry_after`
    /// (or a twelfth of the window without one), and lower the allowance unless this
    /// congestion lowered it already.
    pub fn refused(&self, sent_at: Instant, retry_after: Option<Duration>) {
        let now = Instant::now();
        let window = self.rule.burst_window;
        let mut clock = self.clock();
        clock.counts.refused += 1;
        clock.refused.push_back(now);
        let pause = retry_after.unwrap_or(window / 12).min(window);
        clock.paused_until = clock.paused_until.max(Some(now + pause));
        let accepted = clock.in_window(now, window);
        // What the API took tells its limit only when we sent a real share of ours (a
        // tenth): a 429 after a handful of requests is a blip or another client's traffic,
        // and cutting to the handful would starve the run for many windows.
        let under_accepted = if accepted * 10 >= clock.limit {
            ((accepted as f64 * 0.9) as usize).max(1)
        } else {
            clock.limit
        };
        if clock.last_cut.is_some_and(|cut| sent_at <= cut) {
            // The same congestion: each refusal in flight shows the API took one fewer.
            if under_accepted < clock.limit {
                clock.limit = under_accepted;
                clock.counts.limit = under_accepted;
                clock.counts.lowest = clock.counts.lowest.min(under_accepted);
            }
            return;
        }
        let cut = under_accepted.min(((clock.limit as f64 * 0.8) as usize).max(1));
        clock.limit = cut;
        clock.last_cut = Some(now);
        clock.period_start = now;
        clock.crowded = false;
        clock.counts.cuts += 1;
        clock.counts.limit = cut;
        clock.counts.lowest = clock.counts.lowest.min(cut);
        tracing::info!(
            key = self.key,
            accepted,
            allowance = cut,
            window_ms = window.as_millis() as u64,
            pause_ms = pause.as_millis() as u64,
            "Rate limited (429): lowering the request allowance."
        );
    }
}

impl Clock {
    /// Requests the API accepted in the window before `now`.
    fn in_window(&mut self, now: Instant, window: Duration) -> usize {
        let since = now.checked_sub(window);
        let recent = |t: &Instant| since.is_none_or(|s| *t > s);
        while self.refused.front().is_some_and(|t| !recent(t)) {
            self.refused.pop_front();
        }
        let sent = self.sent.iter().filter(|t| recent(t)).count();
        sent.saturating_sub(self.refused.len())
    }

    /// The earliest instant the next request may leave.
    fn next_slot(&mut self, rule: &PaceRule, now: Instant) -> Instant {
        self.grow(rule, now);
        let mut at = now.max(self.paused_until.unwrap_or(now));
        if let Some(last) = self.sent.back() {
            at = at.max(*last + rule.min_interval);
        }
        if self.sent.len() >= self.limit {
            let nth = self.sent[self.sent.len() - self.limit];
            let free = nth + rule.burst_window + rule.margin();
            if free > now {
                self.crowded = true;
            }
            at = at.max(free);
        }
        at
    }

    /// Additive increase: a window spent at the allowance without a 429 raises it.
    fn grow(&mut self, rule: &PaceRule, now: Instant) {
        if now.duration_since(self.period_start) < rule.burst_window {
            return;
        }
        if self.crowded && self.limit < rule.burst_max {
            self.limit = (self.limit + rule.step()).min(rule.burst_max);
            self.counts.limit = self.limit;
        }
        self.period_start = now;
        self.crowded = false;
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
        let p = Pacer::new("t", rule);
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

    #[tokio::test]
    async fn a_window_budget_sends_its_allowance_at_once_then_waits() {
        let rule = PaceRule::per_window(20, Duration::from_millis(200));
        let p = Pacer::new("t", rule);
        let start = Instant::now();
        for _ in 0..20 {
            p.wait().await;
        }
        assert!(start.elapsed() < Duration::from_millis(50));
        p.wait().await;
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_429_pauses_and_cuts_once_per_congestion() {
        let rule = PaceRule::per_window(100, Duration::from_millis(400));
        let p = Pacer::new("t", rule);
        let mut sent = Vec::new();
        for _ in 0..40 {
            sent.push(p.wait().await);
        }
        // The API took 40 and refused the last 5 in flight.
        for at in &sent[35..] {
            p.refused(*at, Some(Duration::from_millis(100)));
        }
        let c = p.counts();
        assert_eq!((c.refused, c.cuts), (5, 1), "{c:?}");
        // Under what was accepted (35, learnt refusal by refusal), and under 80% of the allowance.
        assert_eq!(c.limit, (35.0 * 0.9) as usize);
        assert_eq!(c.lowest, c.limit);
        let before = Instant::now();
        p.wait().await;
        assert!(before.elapsed() >= Duration::from_millis(90), "paused");
        // A 429 for a request sent after the cut is a new congestion.
        let late = p.wait().await;
        p.refused(late, None);
        assert_eq!(p.counts().cuts, 2);
    }

    #[tokio::test]
    async fn the_allowance_grows_back_while_it_is_used() {
        let rule = PaceRule::per_window(100, Duration::from_millis(100));
        let p = Pacer::new("t", rule);
        let mut last = p.wait().await;
        for _ in 0..19 {
            last = p.wait().await;
        }
        p.refused(last, Some(Duration::from_millis(1)));
        assert_eq!(p.counts().limit, 17, "under the 19 accepted");
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(900) {
            p.wait().await;
        }
        let c = p.counts();
        assert!(c.limit > 17 && c.limit < 100, "{c:?}");
        assert_eq!(c.lowest, 17);
    }

    #[tokio::test]
    async fn a_429_among_the_first_requests_cuts_by_a_fifth_not_to_them() {
        let p = Pacer::new("t", PaceRule::per_window(300, Duration::from_secs(3)));
        let first = p.wait().await;
        p.refused(first, Some(Duration::from_millis(1)));
        assert_eq!(p.counts().limit, 240);
    }
}
