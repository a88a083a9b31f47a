//! `ccetl plan`: a backfill cut into shards a scheduler can run on many workers (issue 28).
//!
//! Each shard is a run of consecutive grid-aligned windows of one source, so shards never
//! write the same files. Sources that share an API budget (one Webex client ID, one Xima
//! tenant) share a pool: the scheduler runs at most `pool_slots` of its shards at once, and
//! each may use that share of the budget. Pools cap concurrent tasks, not request rates, so
//! the share is what keeps the sum of the shards under the limit.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{plan_windows, RunOptions};
use crate::config::{PipelineConfig, SourceConfig};
use crate::sink::keys::window_stamp;

/// One shard: a source's consecutive windows, for one worker.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shard {
    /// `{source}-{first window's start}`: unique within the plan.
    pub id: String,
    /// The source's name.
    pub source: String,
    /// Its kind.
    pub kind: String,
    /// The first window's start.
    pub since: DateTime<Utc>,
    /// The last window's end.
    pub until: DateTime<Utc>,
    /// Windows in the shard.
    pub windows: usize,
    /// The scheduler pool of the source's budget (an Airflow pool name).
    pub pool: String,
    /// Shards of that pool that may run at once.
    pub pool_slots: usize,
    /// The requests a minute this shard may use: the budget divided among the pool's slots.
    pub requests_per_minute: Option<f64>,
    /// The share of the budget it may use (`--rate-share`), when its pool runs several at
    /// once.
    pub rate_share: Option<f64>,
    /// The command line that runs it (after `ccetl`).
    pub args: Vec<String>,
}

/// The shards of the windows `opts` plans (its `since`, `until` and sources), at most
/// `per_shard` windows each, in source then time order. `pipeline` is the file's path as the
/// workers will see it.
pub fn plan(
    cfg: &PipelineConfig,
    pipeline: &str,
    opts: &RunOptions,
    now: DateTime<Utc>,
    per_shard: usize,
) -> Vec<Shard> {
    let windows = plan_windows(cfg, opts, now, None);
    let mut out = Vec::new();
    for src in &cfg.sources {
        if !opts.sources.is_empty() && !opts.sources.iter().any(|s| s == src.name()) {
            continue;
        }
        let (pool, slots) = pool_of(cfg, src);
        let share = src.requests_per_minute().map(|r| r / slots as f64);
        for chunk in windows.chunks(per_shard.max(1)) {
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let (since, until) = (first.start.to_rfc3339(), last.end.to_rfc3339());
            out.push(Shard {
                id: format!("{}-{}", src.name(), window_stamp(first.start)),
                source: src.name().to_string(),
                kind: src.kind().to_string(),
                since: first.start,
                until: last.end,
                windows: chunk.len(),
                pool: pool.clone(),
                pool_slots: slots,
                requests_per_minute: share,
                rate_share: (slots > 1).then(|| 1.0 / slots as f64),
                args: run_args(pipeline, src.name(), &since, &until, slots),
            });
        }
    }
    out
}

/// The scheduler pool of `src`'s API budget and the shards of it that may run at once:
/// sources under one budget share a pool, with the fewest slots any of them allows. The
/// pool is named after the first source of the budget (`ccetl-webex-acme`), not after the
/// credential, so `ccetl describe` names it the same where the secrets are not set.
pub fn pool_of(cfg: &PipelineConfig, src: &SourceConfig) -> (String, usize) {
    let key = src.budget().key;
    let sharing: Vec<&SourceConfig> = cfg
        .sources
        .iter()
        .filter(|s| s.budget().key == key)
        .collect();
    let slots = sharing
        .iter()
        .map(|s| s.budget().shards_at_once.max(1))
        .min()
        .unwrap_or(1);
    let first = sharing.first().map_or(src.name(), |s| s.name());
    let name = first
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect::<String>();
    (format!("ccetl-{}-{name}", src.kind()), slots)
}

/// The `ccetl` arguments of a shard; a pool running several at once splits the budget.
fn run_args(pipeline: &str, source: &str, since: &str, until: &str, slots: usize) -> Vec<String> {
    let mut args = [
        "run", pipeline, "--source", source, "--since", since, "--until", until,
    ]
    .map(String::from)
    .to_vec();
    if slots > 1 {
        args.extend(["--rate-share".into(), format!("{}", 1.0 / slots as f64)]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPELINE: &str = r#"
[pipeline]
name = "p"
warehouse = "s3://bucket/wh"
state = "state.duckdb"
window = "1d"
settle = "15m"

[[source]]
kind = "webex"
name = "org-a"
base_url = "https://api.wxcc-us1.cisco.com"
client_id = "client-1"
client_secret = "s"
refresh_token = "r"

[[source]]
kind = "webex"
name = "org-b"
base_url = "https://api.wxcc-us1.cisco.com"
client_id = "client-1"
client_secret = "s"
refresh_token = "r"
audio = false

[[source]]
kind = "webex"
name = "org-c"
base_url = "https://api.wxcc-us1.cisco.com"
client_id = "client-2"
client_secret = "s"
refresh_token = "r"

[[source]]
kind = "xima"
name = "tenant-x"
base_url = "https://acme.ximasoftware.com"
tenant = "acme-main"
api_key = "k"
"#;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn shards_are_grid_windows_and_pools_follow_the_budgets() {
        let cfg =
            PipelineConfig::parse(std::path::Path::new("p.toml"), PIPELINE, &|_| None).unwrap();
        let opts = RunOptions {
            since: Some(at("2026-01-01T00:00:00Z")),
            until: Some(at("2026-01-11T06:00:00Z")),
            ..RunOptions::default()
        };
        let shards = plan(&cfg, "p.toml", &opts, at("2026-02-01T00:00:00Z"), 4);
        let of =
            |name: &str| -> Vec<&Shard> { shards.iter().filter(|s| s.source == name).collect() };

        // Ten whole days and a partial eleventh (the last window ends at `until`), cut four
        // at a time, disjoint and in order.
        let a = of("org-a");
        assert_eq!(a.iter().map(|s| s.windows).collect::<Vec<_>>(), [4, 4, 3]);
        assert_eq!(a[0].since, at("2026-01-01T00:00:00Z"));
        assert!(
            a.windows(2).all(|p| p[0].until == p[1].since),
            "no gap, no overlap"
        );
        assert_eq!(a[0].id, "org-a-20260101T000000Z");
        assert_eq!(
            a[0].args,
            [
                "run",
                "p.toml",
                "--source",
                "org-a",
                "--since",
                "2026-01-01T00:00:00+00:00",
                "--until",
                "2026-01-05T00:00:00+00:00"
            ]
        );

        // One client ID, one pool, whatever the org; another client ID, another pool.
        let (b, c, x) = (of("org-b"), of("org-c"), of("tenant-x"));
        assert_eq!(a[0].pool, b[0].pool);
        assert_ne!(a[0].pool, c[0].pool);
        assert!(a[0].pool.starts_with("ccetl-webex-"));
        // Audio makes parallel shards worth it; metadata alone gains nothing from them, and
        // a pool takes the fewest slots of its sources (org-b has audio off).
        assert_eq!(
            (a[0].pool_slots, b[0].pool_slots, c[0].pool_slots),
            (1, 1, 4)
        );
        assert_eq!(c[0].requests_per_minute, Some(75.0));
        assert_eq!(
            c[0].args[8..],
            ["--rate-share", "0.25"],
            "and runs with that share"
        );
        assert_eq!(a[0].args.len(), 8, "a pool of one uses the whole budget");
        // Xima's per-tenant pace does not divide: one shard at a time.
        assert_eq!(x[0].pool_slots, 1);
        assert!(x[0].pool.starts_with("ccetl-xima-"));

        let only = RunOptions {
            sources: vec!["tenant-x".into()],
            ..opts
        };
        let xs = plan(&cfg, "p.toml", &only, at("2026-02-01T00:00:00Z"), 100);
        assert_eq!(xs.len(), 1);
        assert_eq!(xs[0].source, "tenant-x");
    }
}
