//! Rate use, measured (issue 26): Webex allows 300 API requests a minute per client ID, so a
//! day of calls is bound by that, not by CPU. Time is scaled 1:10 (300 requests per 6 s,
//! i.e. 3,000 a minute); request counts are real.
//!
//! - Figure 6: a day of recorded calls with the source budgeted at the limit, against each
//!   way the limit may count (token bucket, sliding window, fixed windows). Sustained
//!   accepted requests/s over the allowed rate (goal ≥ 0.95), 429s (goal ≤ 1%). Beside it,
//!   an unpaced client making the same requests (ccetl's HTTP client and retry policy, no
//!   budget). Then the limit 4x lower than configured (goal ≤ 5% 429s, the warehouse
//!   complete).
//! - Figure 7: two orgs on one client ID (two sources, one budget): their sum stays under the
//!   limit, each gets its share (goal: within 20% of half).
//! - Figure 9: 4% of requests refused at random (`Retry-After: 1`) under a limit far above
//!   the budget: accepted rate over the budget's (goal ≥ 0.8).
//! - Figure 10: the limit drops to a quarter for two (scaled) minutes, then returns: the
//!   accepted rate in the window 120 (scaled) seconds after the return, over the budget's
//!   (goal ≥ 0.9); 429s overall (goal ≤ 5%).
//!
//! `cargo bench --bench rate [-- CALLS_PER_DAY]` (default 6,500: over 5,000 recorded; `make bench`).

mod common;

use std::time::{Duration, Instant};

use ccetl::config::PipelineConfig;
use ccetl::http::{HttpClient, HttpError, RetryConfig};
use ccetl::pipeline::{self, RunOptions, RunReport};
use ccetl::sim::ratelimit::{RateDrop, RateFaults, RateLimit, Shape};
use ccetl::sim::{self, SimConfig, SimHandle};
use futures::StreamExt;
use serde_json::json;

const WINDOW: Duration = Duration::from_secs(6);
const LIMIT: u32 = 300;
const CONCURRENCY: usize = 8;

fn sim_config(calls: u32, limit: RateLimit) -> SimConfig {
    SimConfig {
        seed: 21,
        days: 1,
        calls_per_day: calls,
        audio_rate: 200,
        clock_start_ms: Some(1_767_996_000_000), // 2026-01-09T22:00Z: the day's calls ended
        clock_frozen: true,
        rate_limit: Some(limit),
        ..SimConfig::default()
    }
}

fn source(name: &str, base: &str, token: &str, budget: u32) -> String {
    format!(
        "\n[[source]]\nkind = \"webex\"\nname = \"{name}\"\nbase_url = \"{base}\"\ntoken_url = \"{base}/v1/access_token\"\nclient_id = \"sim-client-id\"\nclient_secret = \"sim-client-secret\"\nrefresh_token = \"{token}\"\naudio = false\ntranscripts = false\nchannel_types = [\"telephony\"]\nrequests_per_minute = {budget}\nrate_window = \"{}s\"\n",
        WINDOW.as_secs()
    )
}

/// One run of `sources` over the simulated day, in a fresh directory.
fn run(rt: &tokio::runtime::Runtime, handle: &SimHandle, sources: &str) -> (RunReport, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipeline.toml");
    std::fs::write(
        &path,
        format!(
            "[pipeline]\nname = \"rate\"\nwarehouse = \"warehouse\"\nstate = \"state.duckdb\"\nwindow = \"1d\"\nconcurrency = {CONCURRENCY}\nstart = \"2026-01-09\"\n{sources}"
        ),
    )
    .expect("write pipeline");
    let cfg = PipelineConfig::load(&path).expect("pipeline");
    let now = chrono::DateTime::from_timestamp_millis(handle.sim.now_ms()).expect("now");
    let opts = RunOptions {
        now: Some(now),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let (report, result) = rt.block_on(pipeline::run(&cfg, &opts));
    let secs = started.elapsed().as_secs_f64();
    if let Err(e) = result {
        panic!("run failed: {e}");
    }
    (report, secs)
}

/// The accepted requests' rate, first to last, over the limit's (`limit` per `WINDOW`).
/// 1.0 is a perfect client; a burst that a window-counting limit accepts at the start is
/// not counted as rate (a token bucket takes none of it).
fn use_of_limit(handle: &SimHandle, limit: u32) -> (f64, u64) {
    let span = handle.sim.limiter.span().expect("requests were accepted");
    let took = (span.last - span.first).as_secs_f64();
    let rate = span.accepted.saturating_sub(1) as f64 / took.max(1e-9);
    (
        rate / (f64::from(limit) / WINDOW.as_secs_f64()),
        span.accepted,
    )
}

fn refused(handle: &SimHandle) -> u64 {
    handle.sim.stats().get("rate_limited").copied().unwrap_or(0)
}

/// The telephony tasks of the windows a run read, and how many of them have recordings.
fn truth(handle: &SimHandle, report: &RunReport) -> (u64, u64) {
    let windows = &report.sources[0].windows;
    let from = windows.iter().map(|w| w.start).min().expect("a window");
    let to = windows.iter().map(|w| w.end).max().expect("a window");
    let mut t = handle
        .sim
        .truth(from.timestamp_millis(), to.timestamp_millis());
    t.tasks.retain(|t| t.channel_type == "telephony");
    let recorded = t.tasks.iter().filter(|t| !t.recordings.is_empty()).count() as u64;
    (t.tasks.len() as u64, recorded)
}

/// A refresh token of its own, by the authorization-code flow (an org consenting to the
/// integration): two sources on one client ID each have their own token chain.
fn consent(rt: &tokio::runtime::Runtime, base: &str) -> String {
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let redirect = "http://127.0.0.1:9/callback";
        let r = http
            .get(format!("{base}/v1/authorize"))
            .query(&[
                ("client_id", "sim-client-id"),
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("scope", "cjp:config_read"),
                ("state", "bench"),
            ])
            .send()
            .await
            .expect("authorize");
        let to = url::Url::parse(r.headers()["location"].to_str().expect("location"))
            .expect("redirect url");
        let code = to
            .query_pairs()
            .find(|(k, _)| k == "code")
            .expect("code")
            .1
            .to_string();
        let tokens = common::token(
            base,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
            ],
        )
        .await;
        tokens["refresh_token"]
            .as_str()
            .expect("refresh token")
            .to_string()
    })
}

/// Today's client without a budget: the same requests as a run (task pages, then two
/// captures queries per ten recorded tasks, `CONCURRENCY` in flight) through ccetl's HTTP
/// client and retry policy, which honour `Retry-After`. Requests, 429s, failed, seconds.
fn unpaced(rt: &tokio::runtime::Runtime, handle: &SimHandle) -> (u64, u64, u64, f64) {
    let base = handle.base_url();
    rt.block_on(async {
        let http = HttpClient::new(RetryConfig::default(), Duration::from_secs(60)).expect("http");
        let token = common::access_token(&base).await;
        let started = Instant::now();
        let now = handle.sim.now_ms();
        let (from, to) = (now - now.rem_euclid(86_400_000), now);
        let mut ids = Vec::new();
        let mut at = from;
        loop {
            let url = format!(
                "{base}/v1/tasks?from={at}&to={to}&pageSize=1000&channelTypes=telephony"
            );
            let page: serde_json::Value = http
                .send("GET /v1/tasks", || async {
                    Ok::<_, HttpError>(http.reqwest().get(&url).bearer_auth(&token))
                })
                .await
                .expect("tasks page")
                .json()
                .await
                .expect("page json");
            let data = page["data"].as_array().cloned().unwrap_or_default();
            for t in &data {
                if t["attributes"]["captureRequested"] != json!(false) {
                    ids.push(t["id"].as_str().unwrap_or_default().to_string());
                }
            }
            if data.len() < 1000 {
                break;
            }
            at = data
                .last()
                .and_then(|t| t["attributes"]["createdTime"].as_i64())
                .unwrap_or(to)
                + 1;
        }
        let queries: Vec<(Vec<String>, bool)> = ids
            .chunks(10)
            .flat_map(|c| [(c.to_vec(), false), (c.to_vec(), true)])
            .collect();
        let failed = futures::stream::iter(queries)
            .map(|(ids, segments)| {
                let (http, token, url) = (&http, &token, format!("{base}/v1/captures/query"));
                async move {
                    let body = json!({ "query": { "taskIds": ids, "urlExpiration": 30, "includeSegments": segments }});
                    http.send("POST /v1/captures/query", || async {
                        Ok::<_, HttpError>(
                            http.reqwest().post(&url).bearer_auth(token).json(&body),
                        )
                    })
                    .await
                    .is_err()
                }
            })
            .buffer_unordered(CONCURRENCY)
            .filter(|f| futures::future::ready(*f))
            .count()
            .await as u64;
        let s = http.stats().snapshot();
        (
            s.requests,
            s.throttled_429,
            failed,
            started.elapsed().as_secs_f64(),
        )
    })
}

fn webex(limit: u32) -> RateLimit {
    RateLimit::bucket(limit, WINDOW)
}

/// Figure 6 against one shape of the limit: use of it, 429s, requests, seconds.
fn paced_at_the_limit(
    server: &tokio::runtime::Runtime,
    client: &tokio::runtime::Runtime,
    calls: u32,
    shape: Shape,
) -> (f64, u64, u64, f64, RunReport, (u64, u64)) {
    let handle = server
        .block_on(sim::start(sim_config(calls, webex(LIMIT).shaped(shape)), 0))
        .expect("sim");
    let (report, secs) = run(
        client,
        &handle,
        &source("wx", &handle.base_url(), "sim-refresh-token-0", LIMIT),
    );
    let truth = truth(&handle, &report);
    let wx = &report.sources[0];
    let listed: u64 = wx.windows.iter().map(|w| w.counts.get("tasks")).sum();
    assert_eq!(listed, truth.0, "every task of the windows read listed");
    let (sustained, useful) = use_of_limit(&handle, LIMIT);
    let throttled = refused(&handle);
    server.block_on(handle.stop());
    (sustained, throttled, useful, secs, report, truth)
}

fn main() {
    let calls = common::size_arg(6_500);
    let (server, client) = common::runtimes();
    println!("rate: {calls} calls in a day; limit {LIMIT} requests per {WINDOW:?} per client ID (300/min scaled 1:10)");

    // Figure 6a: paced at the limit, however the limit counts.
    let mut shapes = serde_json::Map::new();
    let bucket = webex(LIMIT).shape;
    let mut first = None;
    for (name, shape) in [
        ("token bucket", bucket),
        ("sliding window", Shape::Sliding),
        ("fixed windows", Shape::Fixed),
    ] {
        let (sustained, throttled, useful, secs, report, (tasks, recorded)) =
            paced_at_the_limit(&server, &client, calls, shape);
        let paced = report.sources[0].http.paced_requests;
        let per_task = useful as f64 / recorded as f64;
        println!(
            "figure 6 (rate use, {name}): accepted requests at {sustained:.3} of the allowed rate (goal >= 0.95); 429s {throttled} of {paced} ({:.2}%, goal <= 1%); {useful} requests for {tasks} tasks ({recorded} recorded): {per_task:.3} per recorded task; {secs:.1}s",
            100.0 * throttled as f64 / paced as f64
        );
        shapes.insert(
            name.into(),
            json!({ "sustained_over_allowed": sustained, "throttled": throttled, "requests": paced,
                "seconds": secs, "requests_per_recorded_task": per_task }),
        );
        first.get_or_insert((secs, tasks));
    }
    let (secs, tasks) = first.expect("a shape ran");

    // Figure 6b: the same requests from a client without a budget.
    let handle = server
        .block_on(sim::start(sim_config(calls, webex(LIMIT)), 0))
        .expect("sim");
    let (u_requests, u_throttled, u_failed, u_secs) = unpaced(&client, &handle);
    println!(
        "figure 6 (unpaced, today's client): {u_throttled} of {u_requests} requests refused (429, {:.1}%); {u_failed} queries failed after retries; {u_secs:.1}s ({:.2}x the paced run's time)",
        100.0 * u_throttled as f64 / u_requests as f64,
        u_secs / secs
    );
    server.block_on(handle.stop());

    // Figure 6c: the API allows a quarter of what the source is configured for.
    let handle = server
        .block_on(sim::start(sim_config(calls, webex(LIMIT / 4)), 0))
        .expect("sim");
    let (report, a_secs) = run(
        &client,
        &handle,
        &source("wx", &handle.base_url(), "sim-refresh-token-0", LIMIT),
    );
    let wx = &report.sources[0];
    let a_listed: u64 = wx.windows.iter().map(|w| w.counts.get("tasks")).sum();
    let a_recordings: u64 = wx
        .windows
        .iter()
        .map(|w| w.recordings + w.counts.get("segments"))
        .sum();
    let a_paced = wx.http.paced_requests;
    let a_throttled = refused(&handle);
    let rate = wx.rate.expect("rate report");
    let (a_sustained, _) = use_of_limit(&handle, LIMIT / 4);
    println!(
        "figure 6 (limit 4x lower than configured): 429s {a_throttled} of {a_paced} ({:.2}%, goal <= 5%); {} ceilings met, {:.1}s paused by them; allowance down to {:.0}/min at least (the API's: {}/min); sustained rate {a_sustained:.2} of the API's; {a_listed} of {tasks} tasks, {a_recordings} recordings; complete: {}; {a_secs:.1}s",
        100.0 * a_throttled as f64 / a_paced as f64,
        rate.cuts,
        rate.paused_s,
        rate.lowest_per_minute,
        LIMIT / 4 * 10,
        wx.windows.iter().all(|w| w.complete) && a_listed == tasks,
    );
    server.block_on(handle.stop());

    // Figure 7: two orgs on one client ID.
    let handle = server
        .block_on(sim::start(sim_config(calls, webex(LIMIT)), 0))
        .expect("sim");
    let base = handle.base_url();
    let token_b = consent(&client, &base);
    let sources = source("org-a", &base, "sim-refresh-token-0", LIMIT)
        + &source("org-b", &base, &token_b, LIMIT);
    let (report, t_secs) = run(&client, &handle, &sources);
    let rates: Vec<(u64, f64)> = report
        .sources
        .iter()
        .map(|s| (s.http.paced_requests, s.duration_ms as f64 / 1000.0))
        .collect();
    let per_s: Vec<f64> = rates.iter().map(|(r, d)| *r as f64 / d).collect();
    let share = per_s[0] / (per_s[0] + per_s[1]);
    let t_refused = refused(&handle);
    let (sum_sustained, _) = use_of_limit(&handle, LIMIT);
    println!(
        "figure 7 (two orgs, one client ID): both together at {sum_sustained:.3} of the limit, 429s {t_refused} (goal: 0); org-a's share {share:.3} (goal 0.4..0.6); requests {} + {}; {t_secs:.1}s",
        rates[0].0, rates[1].0
    );
    server.block_on(handle.stop());

    // Figure 9: random 429s under a limit far above the budget.
    let handle = server
        .block_on(sim::start(
            SimConfig {
                rate_faults: RateFaults {
                    noise: 0.04,
                    drop: None,
                },
                ..sim_config(calls, webex(LIMIT * 10))
            },
            0,
        ))
        .expect("sim");
    let (report, n_secs) = run(
        &client,
        &handle,
        &source("wx", &handle.base_url(), "sim-refresh-token-0", LIMIT),
    );
    let wx = &report.sources[0];
    let n_rate = wx.rate.expect("rate report");
    let (n_achieved, _) = use_of_limit(&handle, LIMIT);
    let (n_throttled, n_requests) = (wx.http.throttled_429, wx.http.requests);
    println!(
        "figure 9 (4% random 429s, Retry-After 1 s, limit 10x the budget): accepted at {n_achieved:.3} of the budget's rate (goal >= 0.8); 429s {n_throttled} of {} requests, {:.1}s of retries waiting them out, {} ceilings met, {:.1}s paused; {n_secs:.1}s",
        n_requests,
        wx.http.throttle_wait_ms as f64 / 1000.0,
        n_rate.cuts,
        n_rate.paused_s
    );
    server.block_on(handle.stop());

    // Figure 10: the limit drops to a quarter for 12 s (two minutes at 1:10), then returns.
    let drop_after = Duration::from_secs(3);
    let drop_lasts = WINDOW * 2;
    let handle = server
        .block_on(sim::start(
            SimConfig {
                rate_faults: RateFaults {
                    noise: 0.0,
                    drop: Some(RateDrop {
                        after: drop_after,
                        lasts: drop_lasts,
                        requests: LIMIT / 4,
                    }),
                },
                ..sim_config(calls * 2, webex(LIMIT))
            },
            0,
        ))
        .expect("sim");
    let (report, d_secs) = run(
        &client,
        &handle,
        &source("wx", &handle.base_url(), "sim-refresh-token-0", LIMIT),
    );
    let wx = &report.sources[0];
    let d_rate = wx.rate.expect("rate report");
    let back = handle.sim.limiter.origin().expect("requests came") + drop_after + drop_lasts;
    let per_window = |from: Duration| {
        handle
            .sim
            .limiter
            .accepted_between(back + from, back + from + WINDOW) as f64
            / f64::from(LIMIT)
    };
    let (d_first, d_second) = (per_window(Duration::ZERO), per_window(WINDOW * 2));
    let d_throttled = refused(&handle);
    let d_share = d_throttled as f64 / wx.http.requests as f64;
    let ended = handle.sim.limiter.span().expect("accepted").last;
    assert!(ended > back + WINDOW * 3, "the run outlasted the measure");
    println!(
        "figure 10 (limit a quarter for two scaled minutes, then back): accepted in the window 120 scaled s after the return at {d_second:.3} of the budget (goal >= 0.9; first window after it {d_first:.3}); 429s {d_throttled} of {} ({:.2}%, goal <= 5%); {} ceilings met, lowest {:.0}/min; {d_secs:.1}s",
        wx.http.requests,
        100.0 * d_share,
        d_rate.cuts,
        d_rate.lowest_per_minute
    );
    server.block_on(handle.stop());

    common::record(
        "rate",
        json!({
            "calls": calls,
            "limit": format!("{LIMIT} per {}s", WINDOW.as_secs()),
            "figure_6": {
                "shapes": shapes,
                "unpaced": { "requests": u_requests, "throttled": u_throttled, "failed": u_failed, "seconds": u_secs },
                "quarter_limit": { "requests": a_paced, "throttled": a_throttled, "cuts": rate.cuts,
                    "lowest_per_minute": rate.lowest_per_minute, "seconds": a_secs, "tasks": a_listed },
            },
            "figure_7": { "sum_sustained_over_limit": sum_sustained, "share_a": share,
                "throttled": t_refused, "requests": [rates[0].0, rates[1].0], "seconds": t_secs },
            "figure_9": { "achieved_over_budget": n_achieved, "throttled": n_throttled,
                "requests": n_requests, "cuts": n_rate.cuts, "seconds": n_secs },
            "figure_10": { "second_window_after_return": d_second, "first_window_after_return": d_first,
                "throttled": d_throttled, "share": d_share, "cuts": d_rate.cuts,
                "lowest_per_minute": d_rate.lowest_per_minute, "seconds": d_secs },
        }),
    );
}
