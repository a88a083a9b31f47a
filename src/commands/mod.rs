//! The subcommands: the CLI edge, where typed errors meet `anyhow` and exit codes.

pub mod auth;
pub mod describe;
mod exit;
pub mod status;
pub mod vacuum;
pub mod webhooks;

use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::auth::shared::SharedTokens;
use crate::cli::{RunArgs, SimulateArgs, StateAction};
use crate::config::{ConfigError, PipelineConfig, SourceConfig};
use crate::extract::SourceFailure;
use crate::extract::{CheckContext, Checked, SourceKind};
use crate::pipeline::{self, RunOptions, RunReport};
use crate::query::{self, Format};
use crate::sim::{self, SimConfig};
use crate::sink::Warehouse;

pub use exit::exit_code;

/// The pipeline's source named by `--source`.
pub(crate) fn source_named<'a>(
    path: &Path,
    cfg: &'a PipelineConfig,
    name: &str,
) -> Result<&'a SourceConfig, ConfigError> {
    cfg.sources
        .iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| ConfigError::Invalid {
            path: path.to_path_buf(),
            key: "--source".into(),
            message: format!("no source named '{name}' in the pipeline"),
        })
}

fn parse_time_arg(
    flag: &str,
    v: &Option<String>,
) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    v.as_deref()
        .map(|s| crate::units::parse_time(s).map_err(|e| usage(flag, e)))
        .transpose()
}

/// `ccetl run`: plans and runs every selected source, prints the summary, writes the report.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut cfg = PipelineConfig::load(&args.range.pipeline)?;
    if let Some(state) = &args.state {
        cfg.state.clone_from(state);
    }
    if let Some(f) = args.rate_share.filter(|f| !(*f > 0.0 && *f <= 1.0)) {
        anyhow::bail!(
            "--rate-share {f}: give a share of the budget above 0 and at most 1 (0.25: a quarter)"
        );
    }
    let opts = RunOptions {
        dry_run: args.dry_run,
        rate_share: args.rate_share,
        now: parse_time_arg("--now", &args.now)?,
        ..range_options(&args.range)?
    };
    let (report, result) = pipeline::run(&cfg, &opts).await;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report).context("encoding the run report")?;
        std::fs::write(path, json)
            .with_context(|| format!("writing the run report to {}", path.display()))?;
    }
    print_summary(&report);
    result.map_err(anyhow::Error::new)
}

/// The run options `--since`, `--until` and `--source` give.
fn range_options(r: &crate::cli::RangeArgs) -> anyhow::Result<RunOptions> {
    Ok(RunOptions {
        since: parse_time_arg("--since", &r.since)?,
        until: parse_time_arg("--until", &r.until)?,
        sources: r.sources.clone(),
        ..RunOptions::default()
    })
}

/// `ccetl plan`: the shards of a backfill, as JSON for a scheduler or as a table.
pub fn plan(args: &crate::cli::PlanArgs) -> anyhow::Result<()> {
    let cfg = PipelineConfig::load(&args.range.pipeline)?;
    for s in &args.range.sources {
        if !cfg.sources.iter().any(|c| c.name() == s) {
            return Err(usage("--source", format!("no source is named '{s}'")));
        }
    }
    let opts = range_options(&args.range)?;
    let path = args.range.pipeline.display().to_string();
    let shards = pipeline::shards::plan(
        &cfg,
        &path,
        &opts,
        chrono::Utc::now(),
        args.windows_per_shard,
    );
    if args.json {
        println!("{}", serde_json::to_string_pretty(&shards)?);
        return Ok(());
    }
    for s in &shards {
        let rate = s
            .requests_per_minute
            .map(|r| format!(", {r:.0} requests/min"))
            .unwrap_or_default();
        println!(
            "{}  {} .. {}  {} windows  pool {} ({} at once{rate})",
            s.id,
            s.since.to_rfc3339(),
            s.until.to_rfc3339(),
            s.windows,
            s.pool,
            s.pool_slots
        );
    }
    Ok(())
}

/// `ccetl finalize`: fails (naming the gaps and the runs that fill them) unless every
/// source's range is whole.
pub async fn finalize(args: &crate::cli::FinalizeArgs) -> anyhow::Result<()> {
    let cfg = PipelineConfig::load(&args.range.pipeline)?;
    let opts = range_options(&args.range)?;
    let found = pipeline::finalize::finalize(&cfg, &opts, chrono::Utc::now()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        for f in &found {
            println!(
                "{}: {} windows ({} open); {} table files ({}) present at the sizes their manifests record; {} audio objects stored (as counted when copied, not read again)",
                f.source,
                f.windows,
                f.open,
                f.files,
                crate::units::format_bytes(f.bytes),
                f.audio_objects
            );
        }
    }
    let pipeline = args.range.pipeline.display();
    let mut problems = Vec::new();
    for f in found.iter().filter(|f| !f.whole()) {
        for (s, e) in &f.gaps {
            problems.push(format!(
                "source '{}': {} .. {} not committed (run `ccetl run {pipeline} --source {} --since {} --until {}`)",
                f.source,
                s.to_rfc3339(),
                e.to_rfc3339(),
                f.source,
                s.to_rfc3339(),
                e.to_rfc3339()
            ));
        }
        for b in &f.bad_files {
            problems.push(format!("source '{}': {b}", f.source));
        }
    }
    match problems.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!(
            "finalize: {first}{}",
            match problems.len() {
                1 => String::new(),
                n => format!(" (and {} more; --json lists them)", n - 1),
            }
        ),
    }
}

fn print_summary(r: &RunReport) {
    if r.dry_run {
        for s in &r.sources {
            println!("{}: {} windows planned", s.name, s.windows.len());
            for w in &s.windows {
                println!("  {} .. {}", w.start.to_rfc3339(), w.end.to_rfc3339());
            }
            match &s.estimate {
                Some(e) => println!(
                    "  estimate: about {} API requests ({:.0} tasks a day x {:.2} requests a task, from the last {} runs): {} at {:.0} requests/min",
                    e.requests, e.tasks_per_day, e.requests_per_task, e.runs, minutes(e.minutes), e.budget_per_minute
                ),
                None if s.windows.is_empty() => {}
                None => println!("  estimate: no earlier run listed tasks; see the README's capacity table for requests per call"),
            }
        }
        return;
    }
    let t = r.totals();
    let retries: u64 = r.sources.iter().map(|s| s.http.retries).sum();
    println!(
        "{} run #{} {} in {:.1}s: {} recordings, audio {} stored ({:.1} MB) + {} already stored, {} pending, {} deferred, {} missing; {} files written, {} unchanged; {} requests, {} retries",
        r.pipeline,
        r.run_id.unwrap_or(0),
        r.status,
        r.duration_ms as f64 / 1000.0,
        t.recordings,
        t.audio_stored,
        t.audio_bytes as f64 / 1e6,
        t.audio_reused,
        t.audio_pending,
        t.audio_deferred,
        t.audio_missing,
        t.files,
        t.files_unchanged,
        r.requests(),
        retries
    );
    for kind in crate::source::KINDS {
        if r.sources.iter().any(|s| s.kind == kind.name) {
            println!(
                "  {}",
                kind_line(kind, &r.totals_of(|s| s.kind == kind.name))
            );
        }
    }
    for s in &r.sources {
        if let Some(rate) = &s.rate {
            println!("  {}", rate_line(s, rate));
        }
    }
    for s in &r.sources {
        if let Some(e) = &s.egress {
            let budget = e.budget_bytes.map_or("no budget set".to_string(), |b| {
                format!("budget {:.1} MB", b as f64 / 1e6)
            });
            println!(
                "  {}: audio egress {:.1} MB in the last {} days ({budget}); {} requests, {} throttled (429)",
                s.name,
                e.used_bytes as f64 / 1e6,
                e.period_days,
                s.http.requests,
                s.http.throttled_429
            );
        }
    }
}

/// What a kind's sources counted in the run, as its `counters` name it: the first always,
/// the others when not zero, and objects still pending.
fn kind_line(kind: &SourceKind, t: &crate::report::WindowReport) -> String {
    let mut parts: Vec<String> = kind
        .counters
        .iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || t.counts.get(c.key) > 0)
        .map(|(_, c)| format!("{} {}", t.counts.get(c.key), c.label))
        .collect();
    if t.objects_pending > 0 {
        parts.push(format!("{} other objects pending", t.objects_pending));
    }
    format!("{}: {}", kind.name, parts.join(", "))
}

/// A duration in minutes, readably.
fn minutes(m: f64) -> String {
    if m < 1.0 {
        format!("{:.0} s", m * 60.0)
    } else if m < 120.0 {
        format!("{m:.1} min")
    } else {
        format!("{:.1} h", m / 60.0)
    }
}

/// A source's use of its rate budget, and what the same calls cost at its API's documented
/// default (the demo runs Webex with a scaled-up budget).
fn rate_line(s: &crate::report::SourceReport, rate: &crate::report::RateReport) -> String {
    let mut line = format!(
        "{}: {} API requests at {:.0}/min (budget {:.0}/min), {:.1}s waiting for the budget; {} refused (429)",
        s.name,
        s.http.paced_requests,
        rate.achieved_per_minute,
        rate.budget_per_minute,
        s.http.pace_wait_ms as f64 / 1000.0,
        s.http.throttled_429,
    );
    if s.http.throttled_429 > 0 {
        line += &format!(
            ", {:.1}s retrying after them, {:.1}s paused by them",
            s.http.throttle_wait_ms as f64 / 1000.0,
            rate.paused_s
        );
    }
    if rate.lowest_per_minute < rate.budget_per_minute {
        line += &format!(
            "; the allowance fell to {:.0}/min at lowest ({} ceilings met), now {:.0}/min",
            rate.lowest_per_minute, rate.cuts, rate.allowance_per_minute
        );
    }
    let kind = crate::source::KINDS.iter().find(|k| k.name == s.kind);
    if let Some(default) = kind.and_then(|k| k.default_rate).map(f64::from) {
        if rate.budget_per_minute > default {
            line += &format!(
                "; at the API's default {default:.0}/min these requests need at least {}",
                minutes(s.http.paced_requests as f64 / default)
            );
        }
    }
    line
}

/// Some of `ccetl check`'s lines failed; each was printed. Its kind is the worst of theirs.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} checks failed (each is named above)")]
pub struct CheckFailed {
    /// Lines that failed.
    pub failed: usize,
    /// Lines checked.
    pub total: usize,
    /// The worst kind among the failures: the exit code.
    pub kind: crate::error::ErrorKind,
}

/// Checks the config, then the warehouse and every source, each on its own line, so one
/// failure does not hide another; exits with the worst failure's code.
pub async fn check(path: &Path) -> anyhow::Result<()> {
    let cfg = PipelineConfig::load(path)?;
    println!(
        "ok   config {} ({} sources)",
        path.display(),
        cfg.sources.len()
    );
    if let Some(w) = crate::config::exposure::warning(path) {
        println!("warn {w}");
    }
    let names: Vec<&str> = cfg.sources.iter().map(|s| s.name()).collect();
    let states = pipeline::open_states(&cfg, &names)?;
    let token_store = pipeline::token_store(&cfg)?;
    pipeline::pull_shared_tokens(token_store.as_ref(), &states).await?;
    let mut outcome = CheckOutcome::default();
    outcome.record("warehouse", check_warehouse(&cfg).await.map(Checked::from));
    // At once: an unreachable host costs its retries (~20 s) once, not once per source.
    let checks = cfg
        .sources
        .iter()
        .map(|src| check_source(path, src, &states[src.name()], token_store.as_ref()));
    let results = futures::future::join_all(checks).await;
    for (src, result) in cfg.sources.iter().zip(results) {
        let what = format!("source '{}' ({})", src.name(), src.kind());
        outcome.record(&what, result.map_err(anyhow::Error::from));
    }
    let CheckOutcome {
        total,
        failed,
        worst,
    } = outcome;
    match worst {
        None => Ok(()),
        Some(kind) => Err(CheckFailed {
            failed,
            total,
            kind,
        }
        .into()),
    }
}

/// `ccetl check`'s lines so far: each printed as it is known.
#[derive(Default)]
struct CheckOutcome {
    total: usize,
    failed: usize,
    worst: Option<crate::error::ErrorKind>,
}

impl CheckOutcome {
    fn record(&mut self, what: &str, result: anyhow::Result<Checked>) {
        self.total += 1;
        match result {
            Ok(Checked { line, warnings }) => {
                println!("ok   {line}");
                for w in warnings {
                    println!("{w}");
                }
            }
            Err(e) => {
                self.failed += 1;
                let kind = exit::kind_of(&e);
                if self.worst.is_none_or(|w| kind.severity() > w.severity()) {
                    self.worst = Some(kind);
                }
                eprintln!("error: {what}: {}", crate::error::one_line(&e));
            }
        }
    }
}

/// Writes and deletes a probe object: the warehouse is reachable and writable.
async fn check_warehouse(cfg: &PipelineConfig) -> anyhow::Result<String> {
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let probe = format!("_ccetl/probe-{}", std::process::id());
    wh.put(&probe, bytes::Bytes::from_static(b"ccetl write probe"))
        .await
        .with_context(|| {
            format!(
                "{} is not writable; check the path or the credentials",
                wh.url()
            )
        })?;
    let _ = wh.delete(&probe).await;
    if cfg.table_format == crate::sink::table::TableFormat::Delta {
        crate::sink::table::delta::probe_conditional_create(&wh).await?;
        return Ok(format!(
            "warehouse {} is writable, with the conditional creates Delta commits need",
            wh.url()
        ));
    }
    Ok(format!("warehouse {} is writable", wh.url()))
}

/// One cheap request proving the source's credentials and API work (Webex: after its
/// tokens are checked). Its failure is a [`SourceFailure`], whose kind the exit code reads,
/// whichever the source.
async fn check_source(
    path: &Path,
    src: &SourceConfig,
    state: &Arc<crate::state::State>,
    token_store: Option<&SharedTokens>,
) -> Result<Checked, SourceFailure> {
    let ctx = CheckContext {
        pipeline: path,
        state,
        token_store,
        now: chrono::Utc::now(),
    };
    src.check(&ctx).await
}

/// `ccetl state show|reset|rebuild`.
pub async fn state(action: StateAction) -> anyhow::Result<()> {
    let (path, source) = match &action {
        StateAction::Show { pipeline } => (pipeline, None),
        StateAction::Reset { pipeline, source } => (pipeline, source.clone()),
        StateAction::Rebuild { pipeline, source } => {
            return rebuild(pipeline, source.as_deref()).await
        }
    };
    let cfg = PipelineConfig::load(path)?;
    let names: Vec<&str> = cfg.sources.iter().map(|s| s.name()).collect();
    let states = pipeline::open_states(&cfg, &names)?;
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let st = &states[name];
        if !seen.insert(st.path().to_path_buf()) {
            continue;
        }
        match &action {
            StateAction::Show { .. } => {
                println!("state {}", st.path().display());
                print!("{}", st.summary()?);
            }
            StateAction::Reset { .. } => {
                st.reset(source.as_deref())?;
                println!("reset watermarks and windows in {}", st.path().display());
            }
            StateAction::Rebuild { .. } => {}
        }
    }
    Ok(())
}

async fn rebuild(path: &Path, source: Option<&str>) -> anyhow::Result<()> {
    let cfg = PipelineConfig::load(path)?;
    // Rebuilding under a running pipeline would race its commits.
    let names: Vec<&str> = cfg.sources.iter().map(|s| s.name()).collect();
    let _locks = pipeline::lock_states(&cfg, &names)?;
    for r in pipeline::rebuild::rebuild(&cfg, source).await? {
        println!(
            "{}: {} windows from manifests, watermark {}, {} stored audio objects in the ledger",
            r.source,
            r.windows,
            r.high_water.map_or("none".to_string(), |h| h.to_rfc3339()),
            r.audio_objects
        );
    }
    for s in cfg.sources.iter().filter(|s| s.login().is_some()) {
        println!("{}: tokens are not in the warehouse: if its refresh token lived only in the state, run `ccetl auth login {} --source {}` (or `auth import`) again", s.name(), path.display(), s.name());
    }
    Ok(())
}

/// `ccetl reparse`: derives the rows made of stored objects again, window by window.
pub async fn reparse(
    path: &Path,
    source: Option<&str>,
    since: Option<String>,
    until: Option<String>,
) -> anyhow::Result<()> {
    let range = (
        parse_time_arg("--since", &since)?,
        parse_time_arg("--until", &until)?,
    );
    let cfg = PipelineConfig::load(path)?;
    let reports = pipeline::reparse::reparse(&cfg, source, range).await?;
    if reports.is_empty() {
        println!("no source derives rows from stored objects; nothing to do");
    }
    for r in reports {
        let rewritten: u64 = r.windows.iter().map(|w| w.files).sum();
        let same: u64 = r.windows.iter().map(|w| w.files_unchanged).sum();
        println!(
            "{}: {} windows read again, {rewritten} files rewritten, {same} unchanged, {} API requests",
            r.name,
            r.windows.len(),
            r.http.requests
        );
    }
    Ok(())
}

/// The sample query the demo prints: calls with the paths of their recordings.
pub const SAMPLE_SQL: &str =
    "SELECT c.call_id, c.start_time, c.queue_name, c.agent_name, r.audio_uri
FROM calls c JOIN recordings r ON r.call_id = c.call_id AND NOT r.segment
WHERE r.audio_status = 'stored'
ORDER BY c.start_time DESC LIMIT 10";

/// The demo's third query: contacts by channel and by the systems that saw them.
pub const CHANNELS_SQL: &str =
    "SELECT channel_type, systems, count(*) AS contacts FROM calls GROUP BY ALL ORDER BY ALL";

/// The demo's second query: the latest transcribed call, message by message.
pub const TRANSCRIPT_SQL: &str =
    "SELECT call_id, language_code, seq, party_role, party_name, text FROM transcripts
WHERE call_id = (SELECT max(call_id) FROM transcripts WHERE seq > 4)
ORDER BY seq";

/// `ccetl query`: SQL over the warehouse's views.
pub async fn query(
    path: &Path,
    sql: Option<&str>,
    format: Format,
    as_of: Option<&str>,
) -> anyhow::Result<()> {
    let as_of = as_of
        .map(|t| crate::units::parse_time(t).map_err(|e| usage("--as-of", e)))
        .transpose()?;
    let cfg = PipelineConfig::load(path)?;
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let view = as_of.map_or(query::View::Completed, query::View::AsOf);
    let conn = query::open_view(&wh, view).await?;
    let batches = query::run(&conn, sql.unwrap_or(SAMPLE_SQL))?;
    print!("{}", query::render(&batches, format)?);
    if format == Format::Table {
        println!();
    }
    Ok(())
}

/// The pipeline the demo runs, pointed at the in-process simulator.
pub fn demo_pipeline(base_url: &str, refresh_token: &str) -> String {
    include_str!("../../pipelines/demo.toml")
        .replace("http://127.0.0.1:8799", base_url)
        .replace("sim-refresh-token-0", refresh_token)
}

/// Webex's limit in the demo: 300 requests per 3 s, the real 300 a minute scaled 1:20
/// (pipelines/demo.toml's `rate_window` says the same), so the demo takes seconds and its
/// summary says what the real limit would cost.
/// A token bucket holding 20: 200 ms of the scaled rate, as the real one's 5 hold a second.
pub const DEMO_RATE_LIMIT: sim::ratelimit::RateLimit =
    sim::ratelimit::RateLimit::bucket(300, std::time::Duration::from_secs(3))
        .shaped(sim::ratelimit::Shape::Bucket { burst: 20 });

/// `ccetl demo`: the simulator, a pipeline run into `dir`, a summary and a query.
pub async fn demo(dir: &Path, days: u32, calls_per_day: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let handle = sim::start(
        SimConfig {
            days,
            calls_per_day,
            // 1/10 of real 8 kHz audio keeps the demo small; lengths still follow call durations.
            audio_rate: 800,
            // Xima's pace scaled 1:100 (pipelines/demo.toml says the same), so the demo is quick.
            xima_min_interval_ms: 30,
            rate_limit: Some(DEMO_RATE_LIMIT),
            ..SimConfig::default()
        },
        0,
    )
    .await
    .context("starting the simulator on 127.0.0.1")?;
    println!(
        "simulator: {} ({} days x {} calls)",
        handle.base_url(),
        days + 1,
        calls_per_day
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(
        &path,
        demo_pipeline(&handle.base_url(), &handle.sim.cfg.initial_refresh_token),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    let outcome = run(RunArgs {
        range: crate::cli::RangeArgs {
            pipeline: path.clone(),
            since: None,
            until: None,
            sources: Vec::new(),
        },
        dry_run: false,
        rate_share: None,
        state: None,
        report: Some(dir.join("last-run.json")),
        now: None,
    })
    .await;
    handle.stop().await;
    outcome?;
    println!(
        "\ncalls with audio ({}):",
        SAMPLE_SQL.lines().next().unwrap_or("")
    );
    query(&path, None, Format::Table, None).await?;
    println!("a call's transcript, message by message (the `transcripts` view):");
    query(&path, Some(TRANSCRIPT_SQL), Format::Table, None).await?;
    println!("contacts by channel (chats too, beside the calls):");
    query(&path, Some(CHANNELS_SQL), Format::Table, None).await?;
    println!(
        "warehouse: {}\nnext: ccetl query {} \"SELECT queue_name, count(*) FROM calls GROUP BY 1\"",
        dir.join("warehouse").display(),
        path.display()
    );
    Ok(())
}

/// A bad command-line value, reported like a config error (exit 2).
pub(crate) fn usage(key: &str, message: impl ToString) -> anyhow::Error {
    ConfigError::Invalid {
        path: PathBuf::from("(command line)"),
        key: key.into(),
        message: message.to_string(),
    }
    .into()
}

/// `ccetl simulate`: serves the simulated APIs until interrupted.
pub async fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let faults = sim::faults::parse(&args.faults).map_err(|m| usage("--faults", m))?;
    let cfg = SimConfig {
        seed: args.seed,
        days: args.days,
        calls_per_day: args.calls_per_day,
        faults,
        token_ttl_secs: args.token_ttl,
        audio_rate: args.audio_rate,
        legacy_record_cap: args.legacy_record_cap,
        xima_tenants: args
            .xima_tenants
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect(),
        xima_min_interval_ms: crate::units::parse_duration(&args.xima_min_interval)
            .map_err(|m| usage("--xima-min-interval", m))?
            .as_millis()
            .max(1) as u64,
        xima_bandwidth_cap: match &args.xima_bandwidth_cap {
            Some(v) => {
                crate::units::parse_bytes(v).map_err(|m| usage("--xima-bandwidth-cap", m))?
            }
            None => u64::MAX,
        },
        rate_limit: sim::ratelimit::RateLimit::parse(&args.rate_limit)
            .map_err(|m| usage("--rate-limit", m))?,
        rate_faults: sim::ratelimit::RateFaults {
            noise: Some(args.rate_noise)
                .filter(|n| (0.0..1.0).contains(n))
                .ok_or_else(|| usage("--rate-noise", "give a share from 0 up to 1, e.g. 0.04"))?,
            drop: args
                .rate_drop
                .as_deref()
                .map(sim::ratelimit::RateDrop::parse)
                .transpose()
                .map_err(|m| usage("--rate-drop", m))?,
        },
        audio_stream_rate: args
            .audio_stream_rate
            .as_deref()
            .map(crate::units::parse_bytes)
            .transpose()
            .map_err(|m| usage("--audio-stream-rate", m))?,
        ..SimConfig::default()
    };
    let port = args.port;
    let handle = sim::start(cfg, port)
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let c = &handle.sim.cfg;
    println!(
        "simulator on {}\n  client_id = \"{}\"\n  client_secret = \"{}\"\n  refresh_token = \"{}\"\n  org_id = \"{}\"\n  rate limit: {}\nlegacy: {}/aws/api\n  user_id = \"{}\"\n  api_key = \"{}\"\nxima: {}  tenants {} (api_key = \"sim-xima-key-<tenant>\", min_interval = \"{}ms\")\ntruth: {}/_sim/truth  (Ctrl-C to stop)",
        handle.base_url(),
        c.client_id,
        c.client_secret,
        c.initial_refresh_token,
        c.org_id,
        c.rate_limit.map_or("off".to_string(), |l| format!(
            "{} per client ID (requests_per_minute = {}, rate_window = \"{:?}\")",
            l.describe(),
            l.requests,
            l.window
        )),
        handle.base_url(),
        c.legacy_user_id,
        c.legacy_api_key,
        handle.base_url(),
        c.xima_tenants.join(", "),
        c.xima_min_interval_ms,
        handle.base_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    handle.stop().await;
    Ok(())
}
