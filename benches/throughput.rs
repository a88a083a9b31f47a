//! Metadata throughput, measured against the limit: a full Webex run (tasks, captures with
//! segments, the segment join, Parquet, state; audio and transcripts off) versus a fetch-only baseline that
//! makes the same HTTP requests with the same concurrency and throws the bodies away.
//! Both run against the simulator on loopback, each against a fresh one with the same data.
//!
//! Prints one line per figure (the ratio, then the absolute numbers) and writes
//! `bench/results.json`. Goal (issue 8): ccetl ≥ 0.8 of the baseline's tasks/s.
//!
//! `cargo bench --bench throughput [-- TASKS]` (default 220000, which lands ~212,000 in the listed range; `make bench`).

mod common;

use std::time::Instant;

use ccetl::config::PipelineConfig;
use ccetl::http::pagination::{self, PageSizes};
use ccetl::pipeline::{self, RunOptions};
use ccetl::sim::{self, SimConfig, SimHandle};
use futures::StreamExt;
use serde::Deserialize;

const DAYS: u32 = 10;
const CONCURRENCY: usize = 8;
const PAGE_SIZE: u32 = 1000;
const DAY_MS: i64 = 86_400_000;

fn sim_config(tasks: u32) -> SimConfig {
    SimConfig {
        seed: 5,
        days: DAYS,
        calls_per_day: tasks / DAYS,
        audio_rate: 200,
        clock_start_ms: Some(1_767_967_200_000), // 2026-01-09T14:00Z
        clock_frozen: true,
        // Figure 1 and the audio figures measure ccetl itself: no API limit (issue 26's
        // figures measure runs under it).
        rate_limit: None,
        ..SimConfig::default()
    }
}

/// The first and last window (UTC days) the simulated data spans, as epoch ms.
fn span(handle: &SimHandle) -> (i64, i64) {
    let now = handle.sim.now_ms();
    let first = (now.div_euclid(DAY_MS) - i64::from(DAYS)) * DAY_MS;
    (first, now - 15 * 60_000)
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Item>,
}
#[derive(Deserialize)]
struct Item {
    id: String,
    attributes: Times,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Times {
    created_time: i64,
    capture_requested: Option<bool>,
}

/// The same requests as a run, bodies discarded: per day, the task pages (paged the same
/// way), then the captures of its tasks in batches of ten, `CONCURRENCY` at a time.
async fn fetch_only(handle: &SimHandle) -> (u64, u64) {
    let base = handle.base_url();
    let http = reqwest::Client::new();
    let token = common::access_token(&base).await;
    let (first, end) = span(handle);
    let (mut tasks, mut requests) = (0u64, 0u64);
    let mut day = first;
    while day < end {
        let range = (day, (day + DAY_MS).min(end));
        let mut pages = 0;
        let items: Vec<Item> = pagination::by_time(
            range,
            PageSizes {
                normal: PAGE_SIZE,
                max: PAGE_SIZE,
            },
            |from, to, size| {
                pages += 1;
                let req = http
                    .get(format!("{base}/v1/tasks"))
                    .query(&[
                        ("from", from.to_string()),
                        ("to", to.to_string()),
                        ("pageSize", size.to_string()),
                        ("channelTypes", "telephony".into()),
                    ])
                    .bearer_auth(&token);
                async move {
                    let body = req
                        .send()
                        .await
                        .expect("tasks")
                        .bytes()
                        .await
                        .expect("body");
                    let page: Page = serde_json::from_slice(&body).expect("tasks page");
                    Ok::<_, pagination::PageLoop>((page.data, size))
                }
            },
            |i: &Item| (i.attributes.created_time, i.id.as_str()),
        )
        .await
        .expect("paging");
        requests += pages;
        tasks += items.len() as u64;

        // As a run does: no captures query for tasks that will never have one.
        let ids: Vec<String> = items
            .into_iter()
            .filter(|i| i.attributes.capture_requested != Some(false))
            .map(|i| i.id)
            .collect();
        // Both kinds, as a run with segments on asks: includeSegments picks one (spec).
        let batches: Vec<(Vec<String>, bool)> = ids
            .chunks(10)
            .flat_map(|c| [(c.to_vec(), false), (c.to_vec(), true)])
            .collect();
        requests += batches.len() as u64;
        futures::stream::iter(batches)
            .map(|(batch, segments)| {
                let req = http
                    .post(format!("{base}/v1/captures/query"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "query": {
                        "taskIds": batch, "urlExpiration": 30, "includeSegments": segments,
                    }}));
                async move {
                    let body = req.send().await.expect("captures").bytes().await;
                    body.expect("captures body").len()
                }
            })
            .buffer_unordered(CONCURRENCY)
            .for_each(|_| async {})
            .await;
        day += DAY_MS;
    }
    (tasks, requests)
}

/// A run of the Webex source with audio off into a local warehouse (the first one reads
/// everything; a second one, with no new data, only the lookback).
async fn ccetl_run(handle: &SimHandle, dir: &std::path::Path) -> pipeline::RunReport {
    let (first, _) = span(handle);
    let start = chrono::DateTime::from_timestamp_millis(first).expect("start");
    // `CCETL_BENCH_TABLE_FORMAT=parquet` measures the Hive folders against Delta (default).
    let format = std::env::var("CCETL_BENCH_TABLE_FORMAT").unwrap_or_else(|_| "delta".into());
    let text = format!(
        "[pipeline]\nname = \"bench\"\nwarehouse = \"warehouse\"\nstate = \"state.duckdb\"\nwindow = \"1d\"\nconcurrency = {CONCURRENCY}\nstart = \"{}\"\ntable_format = \"{format}\"\n\n[[source]]\nkind = \"webex\"\nname = \"wx\"\nbase_url = \"{base}\"\ntoken_url = \"{base}/v1/access_token\"\nclient_id = \"sim-client-id\"\nclient_secret = \"sim-client-secret\"\nrefresh_token = \"sim-refresh-token-0\"\nrequests_per_minute = 1000000\naudio = false\ntranscripts = false\npage_size = {PAGE_SIZE}\n",
        start.to_rfc3339(),
        base = handle.base_url(),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).expect("write pipeline");
    let config = PipelineConfig::load(&path).expect("pipeline parses");
    let opts = RunOptions {
        now: chrono::DateTime::from_timestamp_millis(handle.sim.now_ms()),
        ..RunOptions::default()
    };
    let (report, result) = pipeline::run(&config, &opts).await;
    if let Err(e) = result {
        panic!("run failed: {e}");
    }
    report
}

fn main() {
    // CCETL_LOG=ccetl=debug shows the run's phases.
    if let Ok(filter) = std::env::var("CCETL_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .init();
    }
    let tasks = common::size_arg(220_000);
    let (server, client) = common::runtimes();
    let start_sim = || {
        let h = server
            .block_on(sim::start(sim_config(tasks), 0))
            .expect("simulator starts");
        // Generate the days up front, so neither side pays for the simulator's data.
        let (first, end) = span(&h);
        let _ = h.sim.tasks_between(first, end);
        h
    };

    let baseline_sim = start_sim();
    let (started, cpu) = (Instant::now(), common::cpu_seconds());
    let sched = common::simulator_schedstat();
    let (base_tasks, base_requests) = client.block_on(fetch_only(&baseline_sim));
    let base_s = started.elapsed().as_secs_f64();
    let base_cpu = common::cpu_seconds() - cpu;
    let base_sim = common::simulator_share(sched, common::simulator_schedstat(), base_s);
    // Kept until the end: freeing its millions of small allocations here would leave glibc's
    // malloc to consolidate them inside the timed run (~0.35 s, first seen in `toml`'s lexer).
    let _baseline_sim = baseline_sim;

    let ccetl_sim = start_sim();
    let dir = tempfile::tempdir().expect("tempdir");
    let (started, cpu) = (Instant::now(), common::cpu_seconds());
    let sched = common::simulator_schedstat();
    let first = client.block_on(ccetl_run(&ccetl_sim, dir.path()));
    let run_s = started.elapsed().as_secs_f64();
    let run_cpu = common::cpu_seconds() - cpu;
    let run_sim = common::simulator_share(sched, common::simulator_schedstat(), run_s);
    let (run_tasks, run_requests) = (first.totals().counts.get("tasks"), first.requests());
    assert_eq!(run_tasks, base_tasks, "both sides read the same tasks");
    // The token request is the run's one extra.
    assert_eq!(
        run_requests,
        base_requests + 1,
        "both sides make the same requests"
    );

    let (base_rate, run_rate) = (base_tasks as f64 / base_s, run_tasks as f64 / run_s);
    let ratio = run_rate / base_rate;
    println!(
        "metadata throughput: {ratio:.2} of the fetch-only baseline (goal >= 0.80): ccetl {run_rate:.0} tasks/s ({run_tasks} tasks, {run_requests} requests, {run_s:.1} s), baseline {base_rate:.0} tasks/s ({base_requests} requests, {base_s:.1} s)"
    );
    // CPU per 100,000 tasks, simulator included: the cores each side keeps busy.
    let per_100k = |cpu: f64, tasks: u64| cpu / (tasks as f64 / 1e5);
    let (run_cpu, base_cpu) = (per_100k(run_cpu, run_tasks), per_100k(base_cpu, base_tasks));
    println!(
        "metadata CPU: ccetl {run_cpu:.2} core-s per 100,000 tasks, baseline {base_cpu:.2} (whole process, simulator included; {} cores)",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    );
    println!("metadata simulator thread: during ccetl's run {run_sim}; during the baseline {base_sim} (the rest of the time it had no request to answer)");

    // Figure 4: the next run with no new data re-reads only the lookback window.
    let started = Instant::now();
    let noop = client.block_on(ccetl_run(&ccetl_sim, dir.path()));
    let noop_s = started.elapsed().as_secs_f64();
    let windows = noop.sources[0].windows.len() as u64;
    let noop_tasks = noop.totals().counts.get("tasks");
    let noop_requests = noop.requests();
    let pages = noop_tasks.div_ceil(u64::from(PAGE_SIZE)).max(1);
    println!(
        "incremental no-op: {noop_requests} requests for {windows} window(s) re-read for the lookback ({noop_tasks} tasks: {pages} task page(s) at least; captures asked only for tasks without stored recordings), {noop_s:.2} s; a full read of that window would take {} requests; {} files written",
        pages + noop_tasks.div_ceil(10),
        noop.totals().files
    );
    common::record(
        "metadata",
        serde_json::json!({
            "tasks": run_tasks,
            "ratio": ratio,
            "goal": 0.8,
            "ccetl": { "seconds": run_s, "tasks_per_s": run_rate, "requests": run_requests, "cpu_s_per_100k_tasks": run_cpu, "simulator": run_sim },
            "baseline": { "seconds": base_s, "tasks_per_s": base_rate, "requests": base_requests, "cpu_s_per_100k_tasks": base_cpu, "simulator": base_sim },
        }),
    );
    common::record(
        "incremental_noop",
        serde_json::json!({
            "requests": noop_requests,
            "windows": windows,
            "tasks_reread": noop_tasks,
            "seconds": noop_s,
            "files_written": noop.totals().files,
        }),
    );
}
