//! Audio throughput and memory (issue 8, figure 2): a Webex run copying every recording into
//! a `file://` warehouse (with metadata, hashing, the ledger) versus a raw concurrent download
//! of the same pre-signed URLs straight to disk, with the same concurrency. Each side runs
//! against its own simulator with the same data; the peak RSS of each phase is read from
//! `VmHWM`, reset between phases (`/proc/self/clear_refs`).
//!
//! `cargo bench --bench audio [-- CALLS]` (default 50 calls of one day: ~2.2 GB of WAV, the
//! longest calls' files ~50 MB; `make bench`). Goals: ≥ 0.9 of the raw rate, peak RSS ≤ 150 MB.
//! Both sides run three times, alternating; the figures are each side's median.

mod common;

use std::time::Instant;

use ccetl::config::PipelineConfig;
use ccetl::pipeline::{self, RunOptions};
use ccetl::sim::{self, SimConfig, SimHandle};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// Bytes per second of call: a 15-minute call is a ~50 MB file.
const RATE: u32 = 56_000;
const CONCURRENCY: usize = 8;
/// 2026-01-10T06:00Z: the day before is over and all its recordings are available.
const NOW_MS: i64 = 1_768_024_800_000;
const DAY_MS: i64 = 86_400_000;

fn sim_config(calls: u32) -> SimConfig {
    SimConfig {
        seed: 9,
        days: 1,
        calls_per_day: calls,
        audio_rate: RATE,
        clock_start_ms: Some(NOW_MS),
        clock_frozen: true,
        // Figure 1 and the audio figures measure ccetl itself: no API limit (issue 26's
        // figures measure runs under it).
        rate_limit: None,
        ..SimConfig::default()
    }
}

/// Every recording's pre-signed URL for the day, as a client of the API would get them.
async fn urls(base: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let token = common::access_token(base).await;
    let from = (NOW_MS / DAY_MS - 1) * DAY_MS;
    let page: serde_json::Value = http
        .get(format!(
            "{base}/v1/tasks?from={from}&to={}&pageSize=1000",
            from + DAY_MS
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("tasks")
        .json()
        .await
        .expect("tasks body");
    let ids: Vec<String> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|t| t["attributes"]["captureRequested"] == true)
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    // Both kinds, as a run with segments on asks: includeSegments picks one (spec).
    for (batch, segments) in ids.chunks(10).flat_map(|c| [(c, false), (c, true)]) {
        let caps: serde_json::Value = http
            .post(format!("{base}/v1/captures/query"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "query": {
                "taskIds": batch, "urlExpiration": 60, "includeSegments": segments,
            }}))
            .send()
            .await
            .expect("captures")
            .json()
            .await
            .expect("captures body");
        for c in caps["data"].as_array().into_iter().flatten() {
            for r in c["recording"].as_array().into_iter().flatten() {
                if let Some(u) = r["attributes"]["filePath"].as_str() {
                    out.push(u.to_string());
                }
            }
        }
    }
    out
}

/// The baseline: the URLs downloaded to files, `CONCURRENCY` at a time, streamed.
async fn raw_download(urls: Vec<String>, dir: &std::path::Path) -> u64 {
    let http = reqwest::Client::new();
    let sizes: Vec<u64> = futures::stream::iter(urls.into_iter().enumerate())
        .map(|(i, url)| {
            let (http, path) = (http.clone(), dir.join(format!("{i}.wav")));
            async move {
                let resp = http.get(url).send().await.expect("download");
                let mut file = tokio::fs::File::create(&path).await.expect("file");
                let mut body = resp.bytes_stream();
                let mut n = 0u64;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.expect("chunk");
                    n += chunk.len() as u64;
                    file.write_all(&chunk).await.expect("write");
                }
                file.flush().await.expect("flush");
                n
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    sizes.iter().sum()
}

/// ccetl: the day's tasks, captures and audio into a local warehouse.
async fn ccetl_run(handle: &SimHandle, dir: &std::path::Path) -> (u64, u64) {
    let start =
        chrono::DateTime::from_timestamp_millis((NOW_MS / DAY_MS - 1) * DAY_MS).expect("start");
    let text = format!(
        "[pipeline]\nname = \"bench\"\nwarehouse = \"warehouse\"\nstate = \"state.duckdb\"\nconcurrency = {CONCURRENCY}\nstart = \"{}\"\n\n[[source]]\nkind = \"webex\"\nname = \"wx\"\nbase_url = \"{base}\"\ntoken_url = \"{base}/v1/access_token\"\nclient_id = \"sim-client-id\"\nclient_secret = \"sim-client-secret\"\nrefresh_token = \"sim-refresh-token-0\"\nrequests_per_minute = 1000000\ntranscripts = false\n",
        start.to_rfc3339(),
        base = handle.base_url(),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).expect("write pipeline");
    let config = PipelineConfig::load(&path).expect("pipeline parses");
    let opts = RunOptions {
        now: chrono::DateTime::from_timestamp_millis(NOW_MS),
        ..RunOptions::default()
    };
    let (report, result) = pipeline::run(&config, &opts).await;
    if let Err(e) = result {
        panic!("run failed: {e}");
    }
    let t = report.totals();
    assert_eq!(
        t.audio_pending + t.audio_missing,
        0,
        "every recording stored"
    );
    (t.audio_bytes, t.audio_stored)
}

fn largest_file(dir: &std::path::Path) -> u64 {
    let mut max = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(m) = e.metadata() {
                max = max.max(m.len());
            }
        }
    }
    max
}

/// Rounds of (raw, ccetl): the raw side swings with the page cache (0.8 to 2 GB/s between
/// runs minutes apart), so the sides alternate and each reports its median.
const ROUNDS: usize = 3;

/// One round's figures for one side.
struct Phase {
    bytes: u64,
    seconds: f64,
    /// CPU time of the whole process (simulator included), in seconds.
    cpu: f64,
    peak_mb: f64,
}

/// SHA-256's rate on one core, in MB/s: the floor of ccetl's extra CPU per byte.
fn sha256_rate() -> f64 {
    use sha2::Digest;
    let data = vec![0x5au8; 256 << 20];
    let started = Instant::now();
    let digest = sha2::Sha256::digest(&data);
    std::hint::black_box(digest);
    data.len() as f64 / 1e6 / started.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let calls = common::size_arg(50);
    let (server, client) = common::runtimes();
    let start_sim = || {
        server
            .block_on(sim::start(sim_config(calls), 0))
            .expect("simulator starts")
    };

    let (mut raws, mut runs) = (Vec::new(), Vec::new());
    let (mut files, mut largest) = (0, 0);
    for _ in 0..ROUNDS {
        let raw_sim = start_sim();
        let list = client.block_on(urls(&raw_sim.base_url()));
        files = list.len();
        let raw_dir = tempfile::tempdir().expect("tempdir");
        common::reset_peak();
        let (started, cpu) = (Instant::now(), common::cpu_seconds());
        let bytes = client.block_on(raw_download(list, raw_dir.path()));
        raws.push(Phase {
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            cpu: common::cpu_seconds() - cpu,
            peak_mb: common::peak_mb(),
        });
        largest = largest_file(raw_dir.path());
        drop(raw_dir);
        drop(raw_sim);

        let run_sim = start_sim();
        let dir = tempfile::tempdir().expect("tempdir");
        common::reset_peak();
        let (started, cpu) = (Instant::now(), common::cpu_seconds());
        let (bytes, stored) = client.block_on(ccetl_run(&run_sim, dir.path()));
        runs.push(Phase {
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            cpu: common::cpu_seconds() - cpu,
            peak_mb: common::peak_mb(),
        });
        assert_eq!(
            stored as usize, files,
            "both sides copy the same recordings"
        );
        assert_eq!(bytes, raws[0].bytes, "both sides copy the same bytes");
    }

    let mb = |b: u64| b as f64 / 1e6;
    let rate = |p: &Phase| mb(p.bytes) / p.seconds;
    let (raw_rate, run_rate) = (
        median(raws.iter().map(rate).collect()),
        median(runs.iter().map(rate).collect()),
    );
    let (raw_s, run_s) = (
        median(raws.iter().map(|p| p.seconds).collect()),
        median(runs.iter().map(|p| p.seconds).collect()),
    );
    let per_gb = |p: &Phase| p.cpu / (p.bytes as f64 / 1e9);
    let (raw_cpu, run_cpu) = (
        median(raws.iter().map(per_gb).collect()),
        median(runs.iter().map(per_gb).collect()),
    );
    let hash_rate = sha256_rate();
    // Memory from the first round, in a process nothing ran in before: later rounds start
    // with what earlier ones left in the allocator, which `VmHWM` counts.
    let (raw_peak, run_peak) = (raws[0].peak_mb, runs[0].peak_mb);
    let run_bytes = runs[0].bytes;
    let ratio = run_rate / raw_rate;
    let list = |v: &[Phase]| {
        v.iter()
            .map(|p| format!("{:.0}", rate(p)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "audio throughput: {ratio:.2} of a raw concurrent download (goal >= 0.90; medians of {ROUNDS} alternating rounds): ccetl {run_rate:.0} MB/s ({files} files, {:.0} MB, largest {:.1} MB, {run_s:.1} s, metadata included; rounds {} MB/s), raw {raw_rate:.0} MB/s ({raw_s:.1} s; rounds {} MB/s)",
        mb(run_bytes),
        mb(largest),
        list(&runs),
        list(&raws),
    );
    println!(
        "audio memory: peak RSS {run_peak:.0} MB during the first ccetl run (goal <= 150 MB; simulator included), {raw_peak:.0} MB during the first raw download"
    );
    println!(
        "audio CPU: ccetl {run_cpu:.2} core-s per GB, raw {raw_cpu:.2} (whole process, simulator included; {cores} cores); SHA-256 alone, which ccetl records for every object: {:.2} core-s per GB ({hash_rate:.0} MB/s a core)",
        1e3 / hash_rate,
        cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
    );
    common::record(
        "audio",
        serde_json::json!({
            "ratio": ratio,
            "goal": 0.9,
            "rounds": ROUNDS,
            "files": files,
            "bytes": run_bytes,
            "largest_file_bytes": largest,
            "ccetl": { "seconds": run_s, "mb_per_s": run_rate, "peak_rss_mb": run_peak, "cpu_s_per_gb": run_cpu },
            "raw": { "seconds": raw_s, "mb_per_s": raw_rate, "peak_rss_mb": raw_peak, "cpu_s_per_gb": raw_cpu },
            "sha256_mb_per_s": hash_rate,
            "rss_goal_mb": 150,
        }),
    );
}
