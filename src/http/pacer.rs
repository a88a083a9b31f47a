//! Request pacing: a rate per API and credential, shared by every client in the process,
//! spread evenly, lowered when the API shows a lower ceiling and raised back once it lifts.
//!
//! Two APIs need it. Webex Contact Center allows 300 requests a minute per client ID (every
//! org an integration serves shares them) and documents the rate, not the algorithm: a
//! fixed window, a sliding window and a token bucket are all possible, so requests leave one
//! every `(window + margin) / allowance` (two back to back at most), which each of them
//! accepts. Xima allows one request every 3 s and never more than 3 in any
//! 10 s per tenant: its rule has an interval of its own and keeps it. One [`Pacer`] per key
//! ([`Pacer::shared`]) serves every request to that API under that credential.
//!
//! 429s are told apart. A lone one, or a few spread out, while no ceiling is known is noise
//! (a gateway, another integration for a moment): the refused request waits its
//! `Retry-After` and nothing else changes. A ceiling shows as requests refused one after
//! another after the API said 429, or as a tenth of a window's answers refused: then everyone
//! pauses for the `Retry-After` and the allowance drops to 0.7 of the rate accepted over the
//! last window. It comes back on a cubic curve (TCP CUBIC, AWS SDKs' adaptive retry):
//! quickly to just under where the ceiling was met, slowly past it, then faster again, so
//! the configured rate is back within two windows of a ceiling lifting. While it climbs, any
//! 429 for a request sent since the last cut is the probe finding the ceiling: 0.7 of the
//! pace it was sent at, without a pause, so a ceiling that stays costs about one 429 a cycle.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// Requests an even pace may send back to back after an idle spell: one slot of slack, so a
/// late timer costs no rate, and a bucket holding two accepts it.
const SPREAD_BURST: f64 = 2.0;
/// The least slack: timers wake a millisecond late or more, so a budget spaced finer than
/// that (a test's or benchmark's "no limit") would otherwise be held to one timer tick a slot.
const TIMER_SLACK: Duration = Duration::from_millis(5);
/// The allowance after a ceiling, as a share of the rate accepted when it was met.
const BETA: f64 = 0.7;
/// The cubic's steepness, per window cubed, as a share of the rule's rate: from a quarter of
/// it the full rate is back about 1.75 windows after the cut.
const CUBIC: f64 = 0.4;
/// Refusals in a row, each request sent after the API had refused one, that mean a ceiling
/// (noise at 4% does that once in 600 refusals).
const STREAK: u32 = 3;
/// The share of a window's answers refused that means a ceiling, and the fewest refusals.
const REFUSED_SHARE: f64 = 0.1;
const REFUSED_MIN: usize = 8;

/// The rule a credential's requests must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaceRule {
    /// The shortest gap between two requests (Xima: 3 s). Zero: requests are spread evenly
    /// over the window instead.
    pub min_interval: Duration,
    /// The most requests in any `burst_window`.
    pub burst_max: usize,
    /// The window `burst_max` is counted over.
    pub burst_window: Duration,
}

impl PaceRule {
    /// `requests` in any `window`, spread evenly over it.
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

    /// Whether requests are spread over the window (the rule has no interval of its own).
    fn spreads(&self) -> bool {
        self.min_interval.is_zero()
    }

    /// The gap between evenly paced requests at `allowance` requests per window.
    fn spacing(&self, allowance: f64) -> Duration {
        (self.burst_window + self.margin()).div_f64(allowance.max(1.0))
    }
}

/// What a pacer has seen, for the run report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaceCounts {
    /// The allowance now, in requests per window.
    pub allowance: f64,
    /// The lowest the allowance fell to.
    pub lowest: f64,
    /// 429s reported.
    pub refused: u64,
    /// Ceilings met: 429s that lowered the allowance (one per congestion).
    pub cuts: u64,
    /// Wall time every request was held back by a ceiling's `Retry-After`.
    pub paused: Duration,
}

/// Spaces requests to a rate rule shared by every client with the same key (a client ID,
/// a tenant), and lowers its allowance when the server shows a lower ceiling.
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
    /// Send times of the last `rule.burst_max` requests: no window ever holds more than the
    /// allowance, whatever the even pace allows.
    sent: VecDeque<Instant>,
    first_sent: Option<Instant>,
    /// The even pace's next slot (GCRA's theoretical arrival time).
    next_even: Option<Instant>,
    /// Requests per window now; at most `rule.burst_max`.
    allowance: f64,
    /// Answers in the last window, refused or not, by when they came.
    answers: VecDeque<(Instant, bool)>,
    /// When the latest 429 came, and how many in a row were refused since a request sent
    /// after an earlier one (accepted requests sent after it end the streak).
    last_refusal: Option<Instant>,
    streak: u32,
    paused_until: Option<Instant>,
    /// Pauses of the last window: what the API accepted is measured over the time it was asked.
    pauses: VecDeque<(Instant, Instant)>,
    /// The last ceiling met: the cubic recovery's origin.
    ceiling: Option<Ceiling>,
    counts: PaceCounts,
}

/// Where and when the API's ceiling was met.
#[derive(Debug, Clone, Copy)]
struct Ceiling {
    at: Instant,
    /// The rate accepted then, per window.
    rate: f64,
    /// Windows the cubic takes to climb back to `rate`.
    k: f64,
}

impl Pacer {
    /// A pacer of its own, not shared (tests and benches; sources use `shared`).
    pub fn new(key: &str, rule: PaceRule) -> Self {
        let full = rule.burst_max as f64;
        Pacer {
            key: key.to_string(),
            rule,
            queue: tokio::sync::Mutex::new(()),
            clock: Mutex::new(Clock {
                sent: VecDeque::new(),
                first_sent: None,
                next_even: None,
                allowance: full,
                answers: VecDeque::new(),
                last_refusal: None,
                streak: 0,
                paused_until: None,
                pauses: VecDeque::new(),
                ceiling: None,
                counts: PaceCounts {
                    allowance: full,
                    lowest: full,
                    refused: 0,
                    cuts: 0,
                    paused: Duration::ZERO,
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
        let mut clock = self.clock();
        clock.recover(&self.rule, Instant::now());
        PaceCounts {
            allowance: clock.allowance,
            ..clock.counts
        }
    }

    /// Waits for this request's slot and returns when it was taken.
    pub async fn wait(&self) -> Instant {
        let _turn = self.queue.lock().await;
        loop {
            let now = Instant::now();
            let at = self.clock().next_slot(&self.rule, now);
            if at <= now {
                self.clock().take(&self.rule, now);
                return now;
            }
            // Asked again after the sleep: a 429 meanwhile may have paused or cut the budget.
            tokio::time::sleep_until(at).await;
        }
    }

    /// A request sent at `sent_at` got an answer other than 429.
    pub fn answered(&self, sent_at: Instant) {
        let now = Instant::now();
        let mut clock = self.clock();
        clock.answer(now, false, self.rule.burst_window);
        if clock.last_refusal.is_some_and(|r| sent_at > r) {
            clock.streak = 0;
        }
    }

    /// A request sent at `sent_at` was refused with 429. It waits its `retry_after` (the
    /// caller's retry does); when the refusals show a ceiling, everyone pauses for it (a
    /// twelfth of the window without one) and the allowance drops, once per congestion.
    pub fn refused(&self, sent_at: Instant, retry_after: Option<Duration>) {
        let now = Instant::now();
        let window = self.rule.burst_window;
        let mut clock = self.clock();
        clock.counts.refused += 1;
        clock.answer(now, true, window);
        let after_a_refusal = clock.last_refusal.is_some_and(|r| sent_at > r);
        clock.streak = if after_a_refusal {
            clock.streak + 1
        } else {
            clock.streak.max(1)
        };
        clock.last_refusal = Some(now);
        // Refused at the pace set after a ceiling: the ceiling is lower still (a probe above
        // it found it), whether or not the refusals look like a burst.
        let probing = clock.ceiling.is_some_and(|c| sent_at > c.at);
        let shows = clock.ceiling_shows();
        if !probing && !shows {
            tracing::debug!(
                key = self.key,
                "A lone 429: the request waits its Retry-After; the pace stays."
            );
            return;
        }
        let pause = retry_after.unwrap_or(window / 12).min(window);
        if shows {
            clock.pause(now, pause);
        }
        if clock.ceiling.is_some_and(|c| sent_at <= c.at) {
            return; // the same congestion, already met
        }
        // A probe's refusal says the ceiling is under the pace it was sent at; a first
        // congestion measures what the API took.
        let rate = if probing {
            clock.allowance
        } else {
            clock.accepted_per_window(now, window)
        };
        clock.meet_ceiling(&self.rule, now, rate);
        tracing::info!(
            key = self.key,
            ceiling_per_window = rate as u64,
            allowance = clock.allowance as u64,
            window_ms = window.as_millis() as u64,
            pause_ms = if shows { pause.as_millis() as u64 } else { 0 },
            "Rate limited (429): lowering the request allowance."
        );
    }
}

impl Clock {
    /// The earliest instant the next request may leave.
    fn next_slot(&mut self, rule: &PaceRule, now: Instant) -> Instant {
        self.recover(rule, now);
        let mut at = now.max(self.paused_until.unwrap_or(now));
        if let Some(last) = self.sent.back() {
            at = at.max(*last + rule.min_interval);
        }
        let limit = (self.allowance as usize).clamp(1, rule.burst_max);
        if self.sent.len() >= limit {
            let nth = self.sent[self.sent.len() - limit];
            at = at.max(nth + rule.burst_window + rule.margin());
        }
        if let (true, Some(even)) = (rule.spreads(), self.next_even) {
            let slack = rule
                .spacing(self.allowance)
                .mul_f64(SPREAD_BURST - 1.0)
                .max(TIMER_SLACK);
            at = at.max(even.checked_sub(slack).unwrap_or(even));
        }
        at
    }

    /// Records a request leaving at `now`.
    fn take(&mut self, rule: &PaceRule, now: Instant) {
        self.sent.push_back(now);
        while self.sent.len() > rule.burst_max {
            self.sent.pop_front();
        }
        self.first_sent.get_or_insert(now);
        if rule.spreads() {
            let from = self.next_even.map_or(now, |e| e.max(now));
            self.next_even = Some(from + rule.spacing(self.allowance));
        }
    }

    fn answer(&mut self, now: Instant, refused: bool, window: Duration) {
        self.answers.push_back((now, refused));
        let since = now.checked_sub(window);
        while self
            .answers
            .front()
            .is_some_and(|(t, _)| since.is_some_and(|s| *t <= s))
        {
            self.answers.pop_front();
        }
    }

    /// Whether the refusals show a ceiling rather than noise: [`STREAK`] in a row after the
    /// API had refused, or [`REFUSED_SHARE`] of the window's answers.
    fn ceiling_shows(&self) -> bool {
        let refused = self.answers.iter().filter(|(_, r)| *r).count();
        self.streak >= STREAK
            || refused >= REFUSED_MIN && refused as f64 >= REFUSED_SHARE * self.answers.len() as f64
    }

    fn pause(&mut self, now: Instant, pause: Duration) {
        let until = now + pause;
        let from = self.paused_until.map_or(now, |p| p.max(now));
        if until > from {
            self.counts.paused += until - from;
            self.paused_until = Some(until);
            self.pauses.push_back((from, until));
        }
    }

    /// Requests the API accepted over the last window, as a rate per window of the time
    /// requests were sent in it (a run younger than a window, or paused, is scaled up).
    fn accepted_per_window(&mut self, now: Instant, window: Duration) -> f64 {
        let since = now.checked_sub(window);
        let sent = self
            .sent
            .iter()
            .filter(|t| since.is_none_or(|s| **t > s))
            .count();
        let refused = self.answers.iter().filter(|(_, r)| *r).count();
        let accepted = sent.saturating_sub(refused) as f64;
        let span = self
            .first_sent
            .map_or(window, |f| now.duration_since(f).min(window));
        let from = now.checked_sub(span).unwrap_or(now);
        while self.pauses.front().is_some_and(|(_, end)| *end <= from) {
            self.pauses.pop_front();
        }
        let paused: Duration = self
            .pauses
            .iter()
            .map(|(start, end)| {
                (*end)
                    .min(now)
                    .saturating_duration_since((*start).max(from))
            })
            .sum();
        let asked = span.saturating_sub(paused).max(window / 20);
        accepted * window.as_secs_f64() / asked.as_secs_f64()
    }

    /// The API refused at `accepted` requests per window: down to [`BETA`] of it (or of the
    /// allowance, if lower), and the cubic starts there.
    fn meet_ceiling(&mut self, rule: &PaceRule, now: Instant, accepted: f64) {
        let full = rule.burst_max as f64;
        let rate = accepted.min(self.allowance).max(1.0);
        self.allowance = (BETA * rate).max(1.0);
        let k = (rate * (1.0 - BETA) / (CUBIC * full)).cbrt();
        self.ceiling = Some(Ceiling { at: now, rate, k });
        self.streak = 0;
        self.counts.cuts += 1;
        self.counts.lowest = self.counts.lowest.min(self.allowance);
    }

    /// Raises the allowance on the cubic from the last ceiling, up to the rule's rate.
    fn recover(&mut self, rule: &PaceRule, now: Instant) {
        let Some(c) = self.ceiling else { return };
        let full = rule.burst_max as f64;
        let t = now.duration_since(c.at).as_secs_f64() / rule.burst_window.as_secs_f64();
        let cubic = c.rate + CUBIC * full * (t - c.k).powi(3);
        if cubic >= full {
            self.allowance = full;
            self.ceiling = None;
        } else {
            self.allowance = cubic.max(1.0);
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
    async fn a_window_budget_is_spread_evenly() {
        let rule = PaceRule::per_window(20, Duration::from_millis(400));
        let p = Pacer::new("t", rule);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..21 {
            p.wait().await;
            times.push(start.elapsed());
        }
        // Two back to back at most, then one every (400 + 25) / 20 ms.
        let spacing = rule.spacing(20.0);
        assert!(times[1] < Duration::from_millis(5), "{times:?}");
        assert!(times[2] >= spacing, "{times:?}");
        // On the even grid from there: a timer that wakes late (a loaded machine) may be
        // followed by one early, by at most the grid's one slot of slack, never by a burst.
        for (k, t) in times.iter().enumerate().skip(3) {
            let on_grid = times[2] + spacing * (k as u32 - 2);
            assert!(
                *t + spacing + Duration::from_millis(2) >= on_grid,
                "request {k} ahead of the grid: {times:?}"
            );
        }
        // No slower than the rate: 21 requests in about 20 spacings.
        assert!(
            times[20] <= spacing * 20 + Duration::from_millis(40),
            "{times:?}"
        );
    }

    #[tokio::test]
    async fn a_lone_429_neither_pauses_nor_cuts() {
        let p = Pacer::new("t", PaceRule::per_window(300, Duration::from_secs(3)));
        let first = p.wait().await;
        p.refused(first, Some(Duration::from_secs(1)));
        for _ in 0..5 {
            let at = p.wait().await;
            p.answered(at);
        }
        let c = p.counts();
        assert_eq!((c.refused, c.cuts), (1, 0), "{c:?}");
        assert_eq!(c.allowance, 300.0);
        assert_eq!(c.paused, Duration::ZERO);
    }

    #[tokio::test]
    async fn refusals_in_a_row_pause_cut_and_recover() {
        let window = Duration::from_millis(400);
        let rule = PaceRule::per_window(100, window);
        let p = Pacer::new("t", rule);
        // A full window accepted at the pace, then the API refuses what follows.
        let start = Instant::now();
        while start.elapsed() < window {
            let at = p.wait().await;
            p.answered(at);
        }
        for _ in 0..3 {
            let at = p.wait().await;
            p.refused(at, Some(Duration::from_millis(100)));
        }
        let c = p.counts();
        assert_eq!((c.refused, c.cuts), (3, 1), "{c:?}");
        // 0.7 of what was accepted over the window (about 96 of the 100 allowed).
        assert!(c.lowest > 60.0 && c.lowest < 70.0, "{c:?}");
        assert!(c.paused >= Duration::from_millis(90), "{c:?}");
        let before = Instant::now();
        p.wait().await;
        assert!(before.elapsed() >= Duration::from_millis(80), "paused");
        // Back at the full rate within two windows, without another 429.
        tokio::time::sleep(window * 2).await;
        assert_eq!(p.counts().allowance, 100.0);
    }

    #[tokio::test]
    async fn after_a_ceiling_one_429_is_the_probe_finding_it() {
        let window = Duration::from_millis(400);
        let p = Pacer::new("t", PaceRule::per_window(100, window));
        for _ in 0..20 {
            let at = p.wait().await;
            p.answered(at);
        }
        for _ in 0..3 {
            let at = p.wait().await;
            p.refused(at, Some(Duration::from_millis(50)));
        }
        let first = p.counts();
        assert_eq!(first.cuts, 1, "{first:?}");
        tokio::time::sleep(window / 2).await;
        // One 429 for a request sent since the cut: cut again, from the pace, no pause.
        let at = p.wait().await;
        let climbed = p.counts().allowance;
        assert!(climbed > first.lowest, "{climbed} after {first:?}");
        p.refused(at, Some(Duration::from_millis(50)));
        let c = p.counts();
        assert_eq!(c.cuts, 2, "{c:?}");
        assert!(
            (c.allowance - 0.7 * climbed).abs() < 2.0,
            "{c:?} from {climbed}"
        );
        assert_eq!(c.paused, first.paused, "no pause for a probe");
    }

    #[tokio::test]
    async fn a_refused_share_of_the_window_is_a_ceiling() {
        let rule = PaceRule::per_window(1000, Duration::from_secs(3));
        let p = Pacer::new("t", rule);
        // One in five refused, never two in a row: a bucket slightly below the pace.
        for i in 0..40 {
            let at = p.wait().await;
            if i % 5 == 4 {
                p.refused(at, Some(Duration::from_millis(1)));
            } else {
                p.answered(at);
            }
        }
        assert_eq!(p.counts().cuts, 1, "{:?}", p.counts());
    }
}
