//! Runs under Webex's per-client-ID rate limit (the simulator's, scaled in time): paced to
//! the budget, a run sends no request the API refuses and loads the truth, however the limit
//! counts (token bucket, sliding window, fixed windows); with a limit lower than configured,
//! it learns the limit from a few 429s and still loads the truth; random 429s cost their
//! `Retry-After`, not the pace; a limit that drops and returns is followed down and back up.

mod common;

use std::time::{Duration, Instant};

use ccetl::sim::ratelimit::{RateDrop, RateFaults, RateLimit, Shape};
use ccetl::sim::SimConfig;
use common::*;

/// The documented 300 a minute, scaled 1:30 in time: 300 per 2 s.
const SCALED: RateLimit = RateLimit::bucket(300, Duration::from_secs(2));

fn config(limit: RateLimit) -> SimConfig {
    SimConfig {
        calls_per_day: 200,
        rate_limit: Some(limit),
        ..sim_config()
    }
}

/// The source's budget: `requests` per `window`.
fn budget(requests: u32, window: Duration) -> String {
    format!(
        "requests_per_minute = {requests}\nrate_window = \"{}ms\"\n",
        window.as_millis()
    )
}

fn rate_limited(env: &Env) -> u64 {
    env.stats().get("rate_limited").copied().unwrap_or(0)
}

/// A run paced at the limit, counted as `shape` says: nothing refused, the truth loaded.
async fn paced_to_the_limit_nothing_is_refused(shape: Shape) {
    // A fifteenth of the scaled limit, so the run spans several windows.
    let limit = RateLimit {
        requests: 20,
        ..SCALED
    }
    .shaped(shape);
    let env = env_with(config(limit), &budget(20, limit.window)).await;
    let started = Instant::now();
    let report = env.run_ok().await;
    let took = started.elapsed();
    assert_matches_truth(&env);
    let wx = &report.sources[0];
    assert_eq!(
        rate_limited(&env),
        0,
        "{shape:?}: no request refused: {:?}",
        wx.http
    );
    assert_eq!(wx.http.throttled_429, 0);
    assert!(report.sources[0].windows.iter().all(|w| w.complete));
    // The run needed several windows' worth of requests, and took about that long.
    let windows = wx.http.paced_requests as f64 / 20.0;
    assert!(windows > 3.0, "{:?}", wx.http);
    assert!(
        took.as_secs_f64() >= (windows.ceil() - 1.0) * limit.window.as_secs_f64(),
        "took {took:?} for {windows} windows"
    );
    let rate = wx.rate.expect("a paced source reports its budget");
    assert_eq!(rate.budget_per_minute, 20.0 * 30.0);
    assert_eq!(
        rate.lowest_per_minute, rate.budget_per_minute,
        "never lowered"
    );
    // A rerun asks nothing it asked before but the window's listing and the lookback.
    let again = env.run_ok().await;
    assert!(
        again.sources[0].http.paced_requests < wx.http.paced_requests / 2,
        "{:?}",
        again.sources[0].http
    );
    assert_eq!(rate_limited(&env), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_to_a_token_bucket_nothing_is_refused() {
    // A bucket holding five, as Webex's real one would (a second's worth): a burst of six
    // at any point is refused.
    paced_to_the_limit_nothing_is_refused(Shape::Bucket { burst: 5 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_to_a_sliding_window_nothing_is_refused() {
    paced_to_the_limit_nothing_is_refused(Shape::Sliding).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_to_fixed_windows_nothing_is_refused() {
    paced_to_the_limit_nothing_is_refused(Shape::Fixed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_limit_than_configured_is_learned_from_few_429s() {
    // The API allows a quarter of what the source is configured for.
    let limit = RateLimit {
        requests: 20,
        ..SCALED
    };
    let env = env_with(config(limit), &budget(80, limit.window)).await;
    let report = env.run_ok().await;
    assert_matches_truth(&env);
    let wx = &report.sources[0];
    let refused = rate_limited(&env);
    assert!(refused > 0, "the limit was reached: {:?}", wx.http);
    assert_eq!(wx.http.throttled_429, refused);
    let rate = wx.rate.expect("rate report");
    assert!(
        rate.cuts >= 1 && rate.lowest_per_minute <= 20.0 * 30.0,
        "{rate:?}"
    );
    // Few 429s: the first congestion (the requests in flight) and an occasional probe.
    let share = refused as f64 / wx.http.requests as f64;
    assert!(share <= 0.10, "{refused} of {} refused", wx.http.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_refuses_past_the_limit_with_retry_after() {
    let env = env(config(
        RateLimit::bucket(3, Duration::from_secs(5)).shaped(Shape::Sliding),
    ))
    .await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/tasks?from=0&to=1", env.sim.base_url());
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let r = client.get(&url).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if let Some(v) = r.headers().get("retry-after") {
            retry_after = Some(v.to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    // Counted before authentication (401s), refused past three.
    assert_eq!(statuses, [401, 401, 401, 429]);
    assert!(matches!(retry_after, Some(1..=5)), "{retry_after:?}");
    // Token, storage and legacy routes are not the WxCC API's limit.
    let token = client
        .post(format!("{}/v1/access_token", env.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_ne!(token.status().as_u16(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_429s_cost_their_retry_after_not_the_pace() {
    // The limit far above the budget; 4% of API requests refused anyway (Retry-After: 1, or
    // an HTTP-date).
    let env = env_with(
        SimConfig {
            rate_faults: RateFaults {
                noise: 0.04,
                drop: None,
            },
            ..config(SCALED)
        },
        &budget(60, Duration::from_secs(1)),
    )
    .await;
    let report = env.run_ok().await;
    assert_matches_truth(&env);
    let wx = &report.sources[0];
    let noise = env.stats().get("rate_noise").copied().unwrap_or(0);
    assert!(noise > 0, "{:?}", env.stats());
    assert_eq!(wx.http.throttled_429, noise);
    assert!(
        wx.http.throttle_wait_ms >= 1000 * noise / 2,
        "{:?}",
        wx.http
    );
    // Lone 429s: the refused request waited, the pace did not change.
    let rate = wx.rate.expect("rate report");
    assert_eq!((rate.cuts, rate.paused_s), (0, 0.0), "{rate:?}");
    assert_eq!(rate.lowest_per_minute, rate.budget_per_minute);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_that_drops_and_returns_is_followed_down_and_back() {
    // Budgeted at the limit, 40 per second; after half a second the API takes a quarter of
    // it for two seconds, then all of it again.
    let limit = RateLimit::bucket(40, Duration::from_secs(1));
    let env = env_with(
        SimConfig {
            calls_per_day: 400,
            rate_faults: RateFaults {
                noise: 0.0,
                drop: Some(RateDrop {
                    after: Duration::from_millis(500),
                    lasts: Duration::from_secs(2),
                    requests: 10,
                }),
            },
            ..config(limit)
        },
        &budget(40, limit.window),
    )
    .await;
    let report = env.run_ok().await;
    assert_matches_truth(&env);
    let wx = &report.sources[0];
    let rate = wx.rate.expect("rate report");
    assert!(rate.cuts >= 1, "the drop was met: {rate:?}");
    assert!(
        rate.lowest_per_minute <= 0.7 * rate.budget_per_minute,
        "{rate:?}"
    );
    let refused = rate_limited(&env);
    assert!(
        refused as f64 <= 0.15 * wx.http.requests as f64,
        "{refused} of {} refused",
        wx.http.requests
    );
}
