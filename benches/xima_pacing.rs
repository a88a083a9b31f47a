//! Xima pacing, measured: several tenants extracted against the simulator, which enforces
//! Xima's rule (3 requests per window per tenant, here scaled from 10 s to 1 s).
//!
//! Prints, for tenants run one at a time (the baseline) and all at once:
//! - 429s provoked (goal: 0),
//! - requests beyond one per window and one per saved recording (goal: 0),
//! - achieved request rate per tenant as a fraction of the allowed rate (goal: ≥ 0.95),
//! - the speed-up of running the tenants in parallel over one after another.
//!
//! `cargo bench --bench xima_pacing [-- TENANTS CALLS_PER_DAY]`

use std::time::Instant;

use ccetl::config::PipelineConfig;
use ccetl::pipeline::{self, RunOptions, RunReport};
use ccetl::sim::{self, SimConfig};

const INTERVAL_MS: u64 = 300;

fn pipeline(base: &str, tenants: &[String]) -> String {
    let mut s = String::from(
        "[pipeline]\nname = \"bench\"\nwarehouse = \"warehouse\"\nstate = \"state.duckdb\"\nwindow = \"1d\"\nsettle = \"15m\"\nstart = \"2026-01-08\"\n",
    );
    for t in tenants {
        s.push_str(&format!(
            "[[source]]\nkind = \"xima\"\nname = \"{t}\"\nbase_url = \"{base}\"\ntenant = \"{t}\"\napi_key = \"sim-xima-key-{t}\"\nmin_interval = \"{INTERVAL_MS}ms\"\n"
        ));
    }
    s
}

struct Figures {
    wall_s: f64,
    requests: u64,
    wasted: i64,
    throttled: u64,
    /// Achieved / allowed request rate, per tenant.
    fractions: Vec<f64>,
}

/// The simulator gets a runtime of its own, as a remote API would be: its clock for the
/// 3-per-window rule is not stalled by the connector's work.
fn extract(
    server: &tokio::runtime::Runtime,
    client: &tokio::runtime::Runtime,
    tenants: &[String],
    calls_per_day: u32,
    only: Option<&str>,
) -> Figures {
    let cfg = SimConfig {
        seed: 11,
        days: 1,
        calls_per_day,
        clock_start_ms: Some(1_767_967_200_000), // 2026-01-09T14:00Z
        clock_frozen: true,
        xima_tenants: tenants.to_vec(),
        xima_min_interval_ms: INTERVAL_MS,
        xima_audio_rate: 200,
        ..SimConfig::default()
    };
    let handle = server
        .block_on(sim::start(cfg, 0))
        .expect("simulator starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipeline.toml");
    std::fs::write(&path, pipeline(&handle.base_url(), tenants)).expect("write pipeline");
    let config = PipelineConfig::load(&path).expect("pipeline parses");
    let opts = RunOptions {
        now: chrono::DateTime::from_timestamp_millis(handle.sim.now_ms()),
        sources: only.map(|t| vec![t.to_string()]).unwrap_or_default(),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let (report, result): (RunReport, _) = client.block_on(pipeline::run(&config, &opts));
    let wall_s = started.elapsed().as_secs_f64();
    if let Err(e) = result {
        panic!("run failed: {e}");
    }
    // What the server allows: its burst per window (the interval allows slightly more).
    let window = ccetl::sim::xima::burst_window(std::time::Duration::from_millis(INTERVAL_MS));
    let allowed = ccetl::sim::xima::BURST_MAX as f64 / window.as_secs_f64();
    let mut f = Figures {
        wall_s,
        requests: 0,
        wasted: 0,
        throttled: handle.sim.stats().get("xima_429").copied().unwrap_or(0),
        fractions: Vec::new(),
    };
    for s in &report.sources {
        let needed: u64 = s.windows.iter().map(|w| 1 + w.audio_stored).sum();
        f.requests += s.http.requests;
        f.wasted += s.http.requests as i64 - needed as i64;
        // The rate the server saw, first request to last: n requests take n - 1 gaps.
        if let Some((n, span)) = handle.sim.xima_request_span(&s.name) {
            f.fractions
                .push(n.saturating_sub(1) as f64 / span.as_secs_f64() / allowed);
        }
    }
    server.block_on(handle.stop());
    f
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: usize = args.first().and_then(|v| v.parse().ok()).unwrap_or(4);
    let calls: u32 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(30);
    let tenants: Vec<String> = (1..=n).map(|i| format!("tenant-{i}")).collect();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime")
    };
    let (server, client) = (runtime(), runtime());

    println!(
        "xima pacing: {n} tenants, {calls} calls/day, min_interval {INTERVAL_MS} ms (Xima: 3000 ms), 3 requests per {} ms",
        ccetl::sim::xima::burst_window(std::time::Duration::from_millis(INTERVAL_MS)).as_millis()
    );
    let mut seq_wall = 0.0;
    let mut seq_fracs = Vec::new();
    let mut seq_429 = 0;
    let mut seq_waste = 0;
    for t in &tenants {
        let f = extract(&server, &client, &tenants, calls, Some(t));
        println!(
            "  sequential {t}: {} requests in {:.2}s, rate {:.3} of allowed, {} x 429, {} wasted",
            f.requests, f.wall_s, f.fractions[0], f.throttled, f.wasted
        );
        seq_wall += f.wall_s;
        seq_fracs.extend(f.fractions);
        seq_429 += f.throttled;
        seq_waste += f.wasted;
    }
    let par = extract(&server, &client, &tenants, calls, None);
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "  parallel: {} requests in {:.2}s, per-tenant rate {:.3}..{:.3} of allowed, {} x 429, {} wasted",
        par.requests,
        par.wall_s,
        min(&par.fractions),
        par.fractions.iter().copied().fold(0.0, f64::max),
        par.throttled,
        par.wasted
    );
    println!("results:");
    println!(
        "  429s provoked:                 {} (sequential {seq_429})",
        par.throttled
    );
    println!(
        "  wasted requests:               {} (sequential {seq_waste})",
        par.wasted
    );
    println!(
        "  rate / allowed, worst tenant:  {:.3} parallel, {:.3} sequential (goal >= 0.95)",
        min(&par.fractions),
        min(&seq_fracs)
    );
    println!(
        "  parallel speed-up:             {:.2}x ({:.2}s one after another / {:.2}s together, {n} tenants)",
        seq_wall / par.wall_s,
        seq_wall,
        par.wall_s
    );
}
