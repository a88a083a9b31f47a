//! Scaling out (issue 28, figure 8): an audio-heavy Webex backfill as one `ccetl run` against
//! the same range cut by `ccetl plan` into shards, each its own process with its own state
//! file (as on separate workers), a pool's slots at once, each with its `--rate-share`.
//!
//! Both sides write to the same S3 server (moto on 127.0.0.1, each side its own prefix) with
//! the token store the shards need (one org's refresh token, rotated on use). The simulator
//! (`ccetl simulate`, its own process) holds the client ID to Webex's limit
//! scaled 1:20 (300 requests per 3 s) and streams each download at a fixed rate, as object
//! storage serves one connection: audio is then bound by streams in flight, metadata by the
//! request budget, which sharding only divides. Figures: wall time of each side and their
//! ratio, the API requests each made and the 429s they met, downloads, bytes.
//!
//! `cargo bench --bench scaleout [-- CALLS_PER_DAY]` (default 20 over 8 days).
//! One host runs both sides, so the ratio shows what the shards overlap (downloads in more
//! streams, one shard's audio beside another's metadata), not a second machine's network.

mod common;

use common::Simulator;

// moto, as the tests start it: the shared warehouse and token store of the shards.
#[allow(dead_code)]
#[path = "../tests/common/cloud.rs"]
mod cloud;
#[allow(dead_code)]
#[path = "../tests/common/s3.rs"]
mod s3;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const DAYS: u32 = 8;
const STREAM_RATE: &str = "1MB";
/// Downloads (and captures queries) in flight per process.
const CONCURRENCY: usize = 4;

/// The simulator, as its own process: the limit scaled 1:20, downloads paced.
fn simulator(calls_per_day: u32) -> Simulator {
    let args = [
        "--seed",
        "7",
        "--days",
        &(DAYS + 1).to_string(),
        "--calls-per-day",
        &calls_per_day.to_string(),
        "--audio-stream-rate",
        STREAM_RATE,
        "--token-ttl",
        "86400",
        "--rate-limit",
        "300/3s",
    ]
    .map(String::from);
    Simulator::start(&args)
}

/// A pipeline reading the simulator into the bucket's `prefix`, tokens in the shared store.
fn pipeline(dir: &Path, port: u16, s3: &s3::S3, prefix: &str, concurrency: usize) -> String {
    let base = format!("http://127.0.0.1:{port}");
    let text = format!(
        "[pipeline]\nname = \"scaleout\"\n{}token_store = \"{}\"\nstate = \"state.duckdb\"\nconcurrency = {concurrency}\n\n[[source]]\nkind = \"webex\"\nname = \"wx\"\nbase_url = \"{base}\"\ntoken_url = \"{base}/v1/access_token\"\nclient_id = \"sim-client-id\"\nclient_secret = \"sim-client-secret\"\nrefresh_token = \"sim-refresh-token-0\"\nrequests_per_minute = 300\nrate_window = \"3s\"\ntranscripts = false\n",
        s3.warehouse_toml(prefix),
        s3.url("tokens"),
    );
    std::fs::create_dir_all(dir).expect("dir");
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).expect("write pipeline");
    path.display().to_string()
}

/// `ccetl` with its report discarded (errors still shown).
fn ccetl(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_ccetl"))
        .args(args)
        .env("CCETL_LOG", "ccetl=error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ccetl runs")
}

fn wait_ok(mut child: Child, what: &str) {
    assert!(child.wait().expect("ccetl ends").success(), "{what} failed");
}

/// `ccetl`'s stdout.
fn ccetl_output(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ccetl"))
        .args(args)
        .output()
        .expect("ccetl runs");
    assert!(
        out.status.success(),
        "ccetl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One side's figures: seconds, requests, 429s, downloads, bytes stored.
struct Side {
    seconds: f64,
    requests: u64,
    throttled: u64,
    downloads: u64,
}

impl Side {
    fn line(&self) -> String {
        format!(
            "{:.1} s, {} API requests, {} x 429, {} downloads",
            self.seconds, self.requests, self.throttled, self.downloads
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "seconds": self.seconds, "requests": self.requests,
            "throttled": self.throttled, "downloads": self.downloads,
        })
    }
}

fn measured(sim: &Simulator, run: impl FnOnce()) -> Side {
    let before = sim.stats();
    let started = Instant::now();
    run();
    let seconds = started.elapsed().as_secs_f64();
    let after = sim.stats();
    let delta = |k: &str| after[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
    Side {
        seconds,
        requests: delta("tasks") + delta("captures"),
        throttled: delta("rate_limited"),
        downloads: delta("audio"),
    }
}

/// The audio objects' bytes under the warehouse of `pipeline`.
fn audio_bytes(rt: &tokio::runtime::Runtime, pipeline: &str) -> u64 {
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let cfg = ccetl::config::PipelineConfig::load(Path::new(pipeline)).expect("pipeline");
    let wh = ccetl::sink::Warehouse::open(&cfg.warehouse, &cfg.storage_options).expect("open");
    let prefix = wh.path(&["audio"]);
    rt.block_on(async {
        wh.store()
            .list(Some(&prefix))
            .try_fold(0, |n, m| async move { Ok(n + m.size) })
            .await
    })
    .expect("listing")
}

fn main() {
    let calls = common::size_arg(20);
    let sim = simulator(calls);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let s3 = rt.block_on(s3::S3::start());
    let tmp = tempfile::tempdir().expect("temp dir");
    let today = chrono::Utc::now().date_naive();
    let since = (today - chrono::Days::new(u64::from(DAYS))).to_string();
    let until = today.to_string();

    // One machine: the whole range in one run.
    let one_dir = tmp.path().join("one");
    let one_pipeline = pipeline(&one_dir, sim.port, &s3, "one", CONCURRENCY);
    let one = measured(&sim, || {
        wait_ok(
            ccetl(&["run", &one_pipeline, "--since", &since, "--until", &until]),
            "one machine",
        );
    });

    // Shards: the plan's, each pool's slots at once, each on its own state file.
    let sharded_dir = tmp.path().join("sharded");
    let sharded_pipeline = pipeline(&sharded_dir, sim.port, &s3, "sharded", CONCURRENCY);
    let plan: Vec<serde_json::Value> = serde_json::from_str(&ccetl_output(&[
        "plan",
        &sharded_pipeline,
        "--since",
        &since,
        "--until",
        &until,
        "--windows-per-shard",
        "2",
        "--json",
    ]))
    .expect("plan JSON");
    let slots = plan[0]["pool_slots"].as_u64().unwrap_or(1) as usize;
    let sharded = measured(&sim, || {
        let mut queue = plan.iter().enumerate();
        let mut running: Vec<Child> = Vec::new();
        loop {
            while running.len() < slots {
                let Some((i, shard)) = queue.next() else {
                    break;
                };
                let state = sharded_dir.join(format!("shard-{i}.duckdb"));
                let mut args: Vec<String> = shard["args"]
                    .as_array()
                    .expect("args")
                    .iter()
                    .map(|a| a.as_str().unwrap_or_default().to_string())
                    .collect();
                args.extend(["--state".into(), state.display().to_string()]);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                running.push(ccetl(&args));
            }
            if running.is_empty() {
                break;
            }
            // The first shard to end frees its slot.
            let done = loop {
                if let Some(i) = running
                    .iter_mut()
                    .position(|c| c.try_wait().ok().flatten().is_some())
                {
                    break i;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            wait_ok(running.remove(done), "a shard");
        }
    });

    // One machine again, with as many downloads in flight as the shards had together: what
    // sharding adds on one host, rather than across machines.
    let wide_dir = tmp.path().join("wide");
    let wide_pipeline = pipeline(&wide_dir, sim.port, &s3, "wide", CONCURRENCY * slots);
    let wide = measured(&sim, || {
        wait_ok(
            ccetl(&["run", &wide_pipeline, "--since", &since, "--until", &until]),
            "one wide machine",
        );
    });

    let bytes = audio_bytes(&rt, &one_pipeline);
    assert_eq!(
        bytes,
        audio_bytes(&rt, &sharded_pipeline),
        "both sides store the same audio"
    );
    let ratio = sharded.seconds / one.seconds;
    let wide_ratio = sharded.seconds / wide.seconds;
    println!(
        "scale-out, {DAYS} days x {calls} calls, {:.0} MB of audio streamed at {STREAM_RATE}/s per download, 300 requests/3 s:",
        bytes as f64 / 1e6
    );
    println!("  one machine ({CONCURRENCY} in flight): {}", one.line());
    println!(
        "  {} shards ({slots} at once, {CONCURRENCY} in flight each, --rate-share 1/{slots}): {}",
        plan.len(),
        sharded.line()
    );
    println!(
        "  one machine ({} in flight): {}",
        CONCURRENCY * slots,
        wide.line()
    );
    println!(
        "  wall time sharded / one machine: {ratio:.2}; sharded / one machine as wide: {wide_ratio:.2}"
    );
    common::record(
        "scaleout",
        serde_json::json!({
            "days": DAYS, "calls_per_day": calls, "stream_rate": STREAM_RATE,
            "audio_bytes": bytes, "shards": plan.len(), "at_once": slots,
            "one_machine": one.json(),
            "sharded": sharded.json(),
            "one_machine_as_wide": wide.json(),
            "ratio": ratio,
            "ratio_to_as_wide": wide_ratio,
        }),
    );
}
