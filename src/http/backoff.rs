//! Exponential backoff with jitter, pure and deterministic under a seeded RNG.
//!
//! Jitter spreads the retries of many concurrent requests that failed together (a 503 burst
//! hits every in-flight request at once); without it they would all come back at the same
//! instant and fail again.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Shape of the backoff curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// Delay before the first retry (upper bound, before jitter).
    pub init: Duration,
    /// No delay is longer than this.
    pub max: Duration,
    /// Growth per attempt.
    pub base: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            init: Duration::from_millis(100),
            max: Duration::from_secs(15),
            base: 2.0,
        }
    }
}

/// The delays for one request's retries.
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    /// Seeded at the first retry: every request makes a backoff, few ever retry, and
    /// seeding from the OS is a system call.
    rng: Option<StdRng>,
}

impl Backoff {
    /// A backoff that starts at `config.initial`.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            attempt: 0,
            rng: None,
        }
    }

    /// A backoff whose jitter is reproducible, for tests.
    pub fn with_rng(config: BackoffConfig, rng: StdRng) -> Self {
        Backoff {
            config,
            attempt: 0,
            rng: Some(rng),
        }
    }

    /// The next delay: uniformly in `[cap/2, cap]` where `cap = init * base^attempt`, bounded by `max`.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.config.base.powi(self.attempt.min(30) as i32);
        let cap = (self.config.init.as_secs_f64() * exp).min(self.config.max.as_secs_f64());
        self.attempt += 1;
        let secs = self
            .rng
            .get_or_insert_with(StdRng::from_os_rng)
            .random_range(cap / 2.0..=cap.max(f64::MIN_POSITIVE));
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_bounded() {
        let cfg = BackoffConfig {
            init: Duration::from_millis(100),
            max: Duration::from_secs(1),
            base: 2.0,
        };
        let mut b = Backoff::with_rng(cfg, StdRng::seed_from_u64(7));
        let delays: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] <= Duration::from_millis(100));
        assert!(delays[3] >= Duration::from_millis(400));
        for d in &delays {
            assert!(*d <= Duration::from_secs(1), "{d:?}");
        }
        assert!(delays[7] >= Duration::from_millis(500));
    }

    #[test]
    fn same_seed_same_delays() {
        let cfg = BackoffConfig::default();
        let a: Vec<_> = {
            let mut b = Backoff::with_rng(cfg, StdRng::seed_from_u64(1));
            (0..5).map(|_| b.next_delay()).collect()
        };
        let mut b = Backoff::with_rng(cfg, StdRng::seed_from_u64(1));
        let c: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(a, c);
    }
}
