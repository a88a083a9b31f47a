//! `ccetl describe`: what a pipeline reads and writes, for the tools around it: an
//! orchestrator's pools, its lineage (each source's API and endpoints as inputs, each table
//! as an output) and the assets downstream jobs wait on. From the pipeline file alone: no
//! request, no state, no secret (an unset `${VAR}` is not an error here).

use std::path::Path;

use serde::Serialize;

use crate::config::PipelineConfig;
use crate::pipeline::shards::pool_of;

/// The pipeline as `ccetl describe --json` prints it.
#[derive(Debug, Serialize)]
struct Described<'a> {
    pipeline: &'a str,
    /// The warehouse URL as configured (credentials are in `storage_options`, not here).
    warehouse: &'a str,
    table_format: crate::sink::table::TableFormat,
    /// The run history every run appends to.
    history: &'static str,
    sources: Vec<SourceLine<'a>>,
}

/// One source: where it reads, what it writes, the pool its budget is.
#[derive(Debug, Serialize)]
struct SourceLine<'a> {
    source: &'a str,
    kind: &'static str,
    /// The API's base URL.
    api: Option<String>,
    /// The endpoints a run reads, relative to `api`.
    reads: &'static [&'static str],
    /// The tables it writes.
    tables: Vec<&'static str>,
    /// The views of `ccetl query` its tables feed.
    views: Vec<&'static str>,
    pool: String,
    pool_slots: usize,
}

/// `ccetl describe PIPELINE [--json]`.
pub fn run(path: &Path, json: bool) -> anyhow::Result<()> {
    let cfg = PipelineConfig::load_without_secrets(path)?;
    let sources = cfg
        .sources
        .iter()
        .map(|src| {
            let kind = src.source_kind();
            let (pool, pool_slots) = pool_of(&cfg, src);
            let mut views: Vec<&'static str> = Vec::new();
            if kind.calls.is_some() {
                views.push("calls");
            }
            if kind.recordings.is_some() {
                views.push("recordings");
            }
            views.extend(kind.views.iter().map(|v| v.name));
            SourceLine {
                source: src.name(),
                kind: kind.name,
                api: src.api().map(|a| a.trim_end_matches('/').to_string()),
                reads: kind.reads,
                tables: kind.tables.iter().map(|t| t.name).collect(),
                views,
                pool,
                pool_slots,
            }
        })
        .collect();
    let d = Described {
        pipeline: &cfg.name,
        warehouse: &cfg.warehouse,
        table_format: cfg.table_format,
        history: crate::history::RUNS.name,
        sources,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    println!(
        "pipeline {} → {} ({:?} tables; history in {})",
        d.pipeline, d.warehouse, d.table_format, d.history
    );
    for s in &d.sources {
        println!(
            "{} ({}) reads {} [{}]\n  writes {}\n  feeds {}\n  pool {} ({} at once)",
            s.source,
            s.kind,
            s.api.as_deref().unwrap_or("-"),
            s.reads.join(", "),
            s.tables.join(", "),
            if s.views.is_empty() {
                "-".to_string()
            } else {
                s.views.join(", ")
            },
            s.pool,
            s.pool_slots
        );
    }
    Ok(())
}
