//! `ccetl status`: each source's standing from its state and from the warehouse's run
//! history (`ccetl_runs`, which a worker with a new disk still has), as a table or JSON, and
//! exit 1 when one is staler than `--stale` (for a monitor's alert).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::usage;
use crate::config::PipelineConfig;
use crate::pipeline;
use crate::sink::Warehouse;
use crate::state::SourceStatus;

/// One source's line of `ccetl status`.
#[derive(Debug, Serialize)]
struct Line<'a> {
    source: &'a str,
    kind: &'a str,
    /// Seconds from the watermark to now; `None` before a first complete window.
    lag_s: Option<i64>,
    stale: bool,
    #[serde(flatten)]
    status: SourceStatus,
    #[serde(flatten)]
    history: History,
}

/// What the warehouse's `ccetl_runs` says of a source.
#[derive(Debug, Clone, Default, Serialize)]
struct History {
    /// When its last run started, and how it ended (`succeeded`, `partial`, `failed`).
    last_run: Option<DateTime<Utc>>,
    last_status: Option<String>,
    /// Its last run's error line, when that run did not succeed.
    last_error: Option<String>,
    /// When its last successful run ended.
    last_success: Option<DateTime<Utc>>,
    /// The furthest watermark its runs left (a shard knows only its own range): what a
    /// local warehouse whose state is gone goes by.
    #[serde(skip)]
    watermark: Option<DateTime<Utc>>,
}

/// `ccetl status PIPELINE [--stale D] [--json]`.
pub async fn run(path: &Path, stale: Option<&str>, json: bool) -> anyhow::Result<()> {
    let stale = stale
        .map(|s| crate::units::parse_duration(s).map_err(|m| usage("--stale", m)))
        .transpose()?;
    let cfg = PipelineConfig::load(path)?;
    // A state file that is not there is not made: a run would then take it for a state
    // that lost nothing.
    let present: Vec<&str> = cfg
        .sources
        .iter()
        .map(|s| s.name())
        .filter(|n| cfg.state_path(Some(n)).exists())
        .collect();
    let states = pipeline::open_states(&cfg, &present)?;
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let mut history = read_history(&wh).await?;
    let now = Utc::now();
    let limit = stale.map(|d| d.as_secs() as i64);
    let mut lines = Vec::new();
    for src in &cfg.sources {
        let history = history.remove(src.name()).unwrap_or_default();
        let mut status = match states.get(src.name()) {
            Some(state) => state.status(src.name(), pipeline::stream_of(src))?,
            None => SourceStatus::default(),
        };
        status.high_water = watermark(&wh, src, status.high_water, &history).await?;
        let lag_s = status.high_water.map(|h| (now - h).num_seconds());
        let is_stale = limit.is_some_and(|l| lag_s.is_none_or(|lag| lag > l));
        lines.push(Line {
            source: src.name(),
            kind: src.kind(),
            lag_s,
            stale: is_stale,
            status,
            history,
        });
    }
    if json {
        for l in &lines {
            println!("{}", serde_json::to_string(l)?);
        }
    } else {
        print_table(&lines);
    }
    let stale: Vec<&str> = lines.iter().filter(|l| l.stale).map(|l| l.source).collect();
    if !stale.is_empty() {
        anyhow::bail!(
            "stale: {} (watermark older than --stale, or none yet); `ccetl run` brings them up to date",
            stale.join(", ")
        );
    }
    Ok(())
}

/// How far `src`'s data reaches. A shared warehouse's checkpoint is the truth there (where
/// the next run resumes: a failed shard's gap holds it back, whatever later shards did);
/// else the local state's watermark; a state that is gone, the furthest its runs left.
async fn watermark(
    wh: &Warehouse,
    src: &crate::config::SourceConfig,
    local: Option<DateTime<Utc>>,
    history: &History,
) -> anyhow::Result<Option<DateTime<Utc>>> {
    if wh.is_shared() {
        let path = crate::sink::checkpoint::path_of(wh, src.name(), pipeline::stream_of(src));
        let cp = crate::sink::checkpoint::read(wh.store().as_ref(), &path)
            .await
            .with_context(|| format!("reading {path}"))?;
        if let Some(at) = cp.and_then(|c| c.resume_at()) {
            return Ok(DateTime::<Utc>::from_timestamp_millis(at));
        }
    }
    Ok(local.or(history.watermark))
}

/// Each source's history from `ccetl_runs` (nothing for a warehouse no run has written).
async fn read_history(wh: &Warehouse) -> anyhow::Result<HashMap<String, History>> {
    let conn = crate::query::open_only(wh, &[crate::history::RUNS.name])
        .await
        .context("reading ccetl_runs")?;
    let sql = "SELECT source, \
           arg_max(epoch_ms(started_at), started_at), \
           arg_max(status, started_at), \
           arg_max(error, started_at), \
           max(epoch_ms(finished_at)) FILTER (WHERE status = 'succeeded'), \
           max(epoch_ms(watermark)) \
         FROM ccetl_runs GROUP BY source";
    let mut st = conn.prepare(sql).context("reading ccetl_runs")?;
    let time = |ms: Option<i64>| ms.and_then(DateTime::<Utc>::from_timestamp_millis);
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            History {
                last_run: time(r.get(1)?),
                last_status: r.get(2)?,
                last_error: r.get(3)?,
                last_success: time(r.get(4)?),
                watermark: time(r.get(5)?),
            },
        ))
    });
    let rows = rows.context("reading ccetl_runs")?;
    rows.collect::<Result<_, _>>().context("reading ccetl_runs")
}

fn print_table(lines: &[Line<'_>]) {
    println!(
        "{:<20} {:<13} {:<21} {:>7} {:>8} {:>5} {:<21} {:<31} {:<30} refresh token expires",
        "source",
        "kind",
        "watermark",
        "lag",
        "windows",
        "open",
        "last success",
        "last run",
        "objects"
    );
    let time = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or("-".to_string(), |t| {
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
        })
    };
    for l in lines {
        let s = &l.status;
        let lag = l.lag_s.map_or("-".to_string(), human);
        let objects: Vec<String> = s.objects.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let objects = if objects.is_empty() {
            "-".to_string()
        } else {
            objects.join(", ")
        };
        let h = &l.history;
        let last_run = match (&h.last_run, &h.last_status) {
            (Some(t), Some(status)) => format!("{} {status}", time(Some(*t))),
            _ => "-".to_string(),
        };
        println!(
            "{:<20} {:<13} {:<21} {:>7} {:>8} {:>5} {:<21} {:<31} {:<30} {}",
            l.source,
            l.kind,
            time(s.high_water),
            lag,
            s.windows,
            s.open_windows,
            time(h.last_success),
            last_run,
            objects,
            time(s.refresh_expires),
        );
    }
}

/// A lag as people read it: `3d4h`, `2h15m`, `12m`.
fn human(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match (d, h) {
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}
