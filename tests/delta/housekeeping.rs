//! Keeping a Delta table small to load and cheap to store: a checkpoint every ten commits,
//! expired log entries deleted after one, and `ccetl vacuum` deleting the files no version
//! within the retention reads (replaced windows', a killed run's), never a younger one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ccetl::sink::parquet::TableRows;

use crate::common::*;

/// Sets every file under `dir` (but `except`) `age` into the past, as if written then.
fn age(dir: &Path, age: Duration, except: &[PathBuf]) {
    let when = SystemTime::now() - age;
    for entry in walk(dir) {
        if !except.contains(&entry) {
            let f = std::fs::File::options().append(true).open(&entry).unwrap();
            f.set_modified(when).unwrap();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Commits day `i`'s window (one task row) to a `webex_tasks` table under `wh`.
pub(crate) async fn commit_day(wh: &ccetl::sink::Warehouse, i: i64) -> u64 {
    try_commit_day(wh, i).await.unwrap()
}

/// [`commit_day`], its error returned.
pub(crate) async fn try_commit_day(
    wh: &ccetl::sink::Warehouse,
    i: i64,
) -> Result<u64, ccetl::sink::table::TableError> {
    let def = crate::tasks_table();
    let start = chrono::DateTime::from_timestamp(1_767_916_800, 0).unwrap() // 2026-01-09
        + chrono::Duration::days(i);
    let rows = TableRows {
        table: def,
        batch: crate::one_row(&(def.schema)(), &format!("task-{i:03}")),
        dates: vec![start.date_naive()],
    };
    Ok(crate::commit_window(wh, "wx", start, rows, i).await?.0)
}

fn log_entry(log: &Path, version: u64, suffix: &str) -> PathBuf {
    log.join(format!("{version:020}.{suffix}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_every_ten_commits_and_expired_log_entries_go_after_one() {
    if let Ok(filter) = std::env::var("CCETL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let wh = ccetl::sink::Warehouse::open(url.as_str().trim_end_matches('/'), &Default::default())
        .unwrap();
    for i in 0..12 {
        assert_eq!(commit_day(&wh, i).await, i as u64 + 1);
    }
    let table = dir.path().join("webex_tasks");
    let log = table.join("_delta_log");
    assert!(
        log_entry(&log, 10, "checkpoint.parquet").exists(),
        "a checkpoint at 10"
    );
    assert!(!log_entry(&log, 11, "checkpoint.parquet").exists());
    let hint = std::fs::read_to_string(log.join("_last_checkpoint")).unwrap();
    assert!(hint.contains("\"version\":10"), "{hint}");
    assert!(log_entry(&log, 0, "json").exists(), "nothing expired yet");

    // A month and more later: the entries so far are past the 30-day log retention.
    age(&log, Duration::from_secs(40 * 86_400), &[]);
    for i in 12..22 {
        commit_day(&wh, i).await;
    }
    assert!(
        log_entry(&log, 20, "checkpoint.parquet").exists(),
        "a checkpoint at 20"
    );
    for v in 0..10 {
        assert!(
            !log_entry(&log, v, "json").exists(),
            "{v}.json expired: the checkpoint at 10 holds it: {:?}",
            walk(&log)
        );
    }
    // Version 13, the first committed within the retention, must still read: from the
    // checkpoint at 10 and the commits after it.
    assert!(log_entry(&log, 10, "checkpoint.parquet").exists());
    for v in 10..=22 {
        assert!(log_entry(&log, v, "json").exists(), "{v}.json kept");
    }

    let got = crate::common::readers::run(
        r#"
import json, sys
import polars as pl
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
out = {"version": dt.version(), "ids": sorted(dt.to_pyarrow_table().column("task_id").to_pylist()),
       "polars": pl.read_delta(sys.argv[1]).height,
       "v13": DeltaTable(sys.argv[1], version=13).to_pyarrow_table().num_rows}
try:
    DeltaTable(sys.argv[1], version=5)
    out["v5"] = "readable"
except Exception as e:
    out["v5"] = "gone"
print(json.dumps(out))
"#,
        &[&table.display().to_string()],
        &[],
    );
    let ids: Vec<String> = (0..22).map(|i| format!("task-{i:03}")).collect();
    assert_eq!(got["version"], 22, "{got}");
    assert_eq!(
        got["ids"],
        serde_json::json!(ids),
        "every window's row, once"
    );
    assert_eq!(got["polars"], 22, "{got}");
    assert_eq!(got["v13"], 13, "{got}");
    assert_eq!(got["v5"], "gone", "its log entries expired: {got}");
    let (v, files) = ccetl::sink::table::delta::live_files(&table, "webex_tasks")
        .unwrap()
        .unwrap();
    assert_eq!(
        (v, files.len()),
        (22, 22),
        "ccetl query reads the same snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vacuum_deletes_replaced_and_orphaned_files_older_than_the_retention_only() {
    let env = env(ccetl::sim::SimConfig {
        calls_per_day: 150,
        ..sim_config()
    })
    .await;
    env.run_ok().await;
    // Late recordings: the lookback's windows are committed again, their old files removed
    // from the snapshot but kept for the versions before.
    env.sim.sim.advance(5 * 3_600_000);
    env.run_ok().await;
    let wh = env.warehouse_dir();
    let tables = crate::delta_tables(&env);
    let mut live = Vec::new();
    for (name, dir) in &tables {
        let (_, files) = ccetl::sink::table::delta::live_files(dir, name)
            .unwrap()
            .unwrap();
        live.extend(files);
    }
    let parquet = |dir: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = walk(dir)
            .into_iter()
            .filter(|p| {
                p.extension().is_some_and(|x| x == "parquet")
                    && !p.to_string_lossy().contains("/_delta_log/")
            })
            .collect();
        v.sort();
        v
    };
    let replaced: Vec<PathBuf> = parquet(&wh)
        .into_iter()
        .filter(|p| !live.contains(p))
        .collect();
    assert!(!replaced.is_empty(), "the second run replaced some files");
    // Files a killed run wrote and never committed: one old, one from a run still going.
    let partition = live[0].parent().unwrap().to_path_buf();
    let orphan = partition.join("part-20260101T000000Z-00000000deadbeef.parquet");
    let young = partition.join("part-20260101T000000Z-00000000feedface.parquet");
    std::fs::copy(&live[0], &orphan).unwrap();
    std::fs::copy(&live[0], &young).unwrap();
    age(
        &wh,
        Duration::from_secs(8 * 86_400),
        std::slice::from_ref(&young),
    );
    let before = parquet(&wh);
    let pipeline = env.pipeline.display().to_string();

    let (code, out, err) = ccetl(&["vacuum", &pipeline, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(parquet(&wh), before, "a dry run deletes nothing");
    for f in replaced.iter().chain([&orphan]) {
        let rel = f.strip_prefix(&wh).unwrap().to_string_lossy().to_string();
        let rel = rel.split_once('/').unwrap().1;
        assert!(out.contains(rel), "{rel} listed: {out}");
    }
    assert!(!out.contains("feedface"), "{out}");

    let (code, out, err) = ccetl(&["vacuum", &pipeline, "--json"]);
    assert_eq!(code, 0, "{err}");
    let deleted: usize = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["deleted"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(deleted, replaced.len() + 1, "{out}");
    let mut want = live.clone();
    want.push(young.clone());
    want.sort();
    assert_eq!(
        parquet(&wh),
        want,
        "what the snapshots read stays, and the young orphan"
    );
    assert_matches_truth(&env);
    let got = crate::read_with_python(&tables);
    for name in tables.keys() {
        let rows = env.count(&format!("SELECT count(*) FROM {name}"));
        assert_eq!(
            got[name.as_str()]["rows"],
            rows,
            "{name} reads whole after vacuum"
        );
    }
    let (code, _, _) = ccetl(&["vacuum", &pipeline]);
    assert_eq!(code, 0);
    assert_eq!(parquet(&wh), want, "a second vacuum finds nothing");

    let (code, _, err) = ccetl(&["vacuum", &pipeline, "--retain", "10m"]);
    assert_eq!(code, 2, "{err}");
    let line = one_error_line(&err);
    assert!(
        line.contains("--retain") && line.contains("at least 1h"),
        "{line}"
    );
}
