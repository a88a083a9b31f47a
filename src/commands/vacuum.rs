//! `ccetl vacuum`: deletes the data files of a warehouse's Delta tables that no version
//! within the retention reads.

use std::path::Path;

use anyhow::Context;

use super::usage;
use crate::config::PipelineConfig;
use crate::sink::table::delta::{self, Vacuumed, MIN_RETENTION};
use crate::sink::table::TableFormat;
use crate::sink::Warehouse;
use crate::units::{format_duration, parse_duration};

/// `ccetl vacuum PIPELINE [--retain D] [--dry-run] [--json]`.
pub async fn run(
    path: &Path,
    retain: Option<&str>,
    dry_run: bool,
    json: bool,
) -> anyhow::Result<()> {
    let cfg = PipelineConfig::load(path)?;
    if cfg.table_format != TableFormat::Delta {
        return Err(usage(
            "pipeline.table_format",
            "vacuum needs Delta tables, whose log says which files a version reads; a \"parquet\" warehouse deletes a window's stale files at its commit",
        ));
    }
    let retain = match retain {
        Some(s) => parse_duration(s).map_err(|e| usage("--retain", e))?,
        None => cfg.retention,
    };
    if retain < MIN_RETENTION {
        return Err(usage(
            "--retain",
            format!(
                "must be at least {}: a window's files are written before its commit, and vacuum must not delete them",
                format_duration(MIN_RETENTION)
            ),
        ));
    }
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options)?;
    let mut reports = Vec::new();
    for def in crate::tables::all() {
        let report = delta::vacuum(&wh, def.name, retain, dry_run)
            .await
            .with_context(|| format!("vacuuming {}", def.name))?;
        if report.version.is_some() {
            reports.push(report);
        }
    }
    if json {
        for r in &reports {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", summary(&reports, retain, dry_run));
    }
    Ok(())
}

/// One line per table, then the files when it was a dry run.
fn summary(reports: &[Vacuumed], retain: std::time::Duration, dry_run: bool) -> String {
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut out = format!(
        "Vacuum (retention {}{}):\n",
        format_duration(retain),
        if dry_run { ", dry run" } else { "" }
    );
    for r in reports {
        out.push_str(&format!(
            "  {:<26} v{:<6} {verb} {} files ({}), {} unreferenced younger than the retention kept\n",
            r.table,
            r.version.unwrap_or(0),
            r.deleted.len(),
            crate::units::format_bytes(r.bytes),
            r.young,
        ));
        if dry_run {
            for f in &r.deleted {
                out.push_str(&format!("      {f}\n"));
            }
        }
    }
    if reports.is_empty() {
        out.push_str("  no Delta tables in the warehouse yet\n");
    }
    out
}
