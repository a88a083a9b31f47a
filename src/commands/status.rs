//! `ccetl status`: each source's standing from its state, as a table or JSON, and exit 1
//! when one is staler than `--stale` (for a monitor's alert).

use std::path::Path;

use chrono::Utc;
use serde::Serialize;

use super::usage;
use crate::config::PipelineConfig;
use crate::pipeline;
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
}

/// `ccetl status PIPELINE [--stale D] [--json]`.
pub fn run(path: &Path, stale: Option<&str>, json: bool) -> anyhow::Result<()> {
    let stale = stale
        .map(|s| crate::units::parse_duration(s).map_err(|m| usage("--stale", m)))
        .transpose()?;
    let cfg = PipelineConfig::load(path)?;
    let names: Vec<&str> = cfg.sources.iter().map(|s| s.name()).collect();
    let states = pipeline::open_states(&cfg, &names)?;
    let now = Utc::now();
    let limit = stale.map(|d| d.as_secs() as i64);
    let mut lines = Vec::new();
    for src in &cfg.sources {
        let status = states[src.name()].status(src.name(), pipeline::stream_of(src))?;
        let lag_s = status.high_water.map(|h| (now - h).num_seconds());
        let is_stale = limit.is_some_and(|l| lag_s.is_none_or(|lag| lag > l));
        lines.push(Line {
            source: src.name(),
            kind: src.kind(),
            lag_s,
            stale: is_stale,
            status,
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

fn print_table(lines: &[Line<'_>]) {
    println!(
        "{:<20} {:<13} {:<26} {:>10} {:>8} {:>5} {:<26} {:<30} refresh token expires",
        "source", "kind", "watermark", "lag", "windows", "open", "last commit", "objects"
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
        println!(
            "{:<20} {:<13} {:<26} {:>10} {:>8} {:>5} {:<26} {:<30} {}",
            l.source,
            l.kind,
            time(s.high_water),
            lag,
            s.windows,
            s.open_windows,
            time(s.last_commit),
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
