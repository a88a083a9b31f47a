//! A year of daily windows in one Delta table (issue 44): does loading a snapshot stay flat?
//!
//! Commits 365 daily windows (one file each) to a `webex_tasks` table as a run does, and
//! times loading its snapshot and file list (what every commit and `ccetl query` do) after
//! 30, 120 and 365 commits: with checkpoints (every 10 commits, the default) and, as the
//! baseline, the same log at 365 with its checkpoints removed (every commit replayed).
//! Also the time of a window's commit at the start and at the end of the year.
//!
//! `cargo bench --bench delta_log [-- WINDOWS]` (default 365).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::RecordBatch;
use ccetl::sink::parquet::{write_table, TableRows};
use ccetl::sink::table::{commit, delta, TableFormat, WindowFiles};

/// `rows` rows of `webex_tasks`: ids set, nullable columns null, the rest one value.
fn batch(rows: usize, day: i64) -> RecordBatch {
    use arrow::array::*;
    use arrow::datatypes::{DataType, TimeUnit};
    let def = table();
    let schema = (def.schema)();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.data_type() {
                DataType::Utf8 => Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("task-{day}-{i}")),
                )),
                DataType::Int64 => Arc::new(Int64Array::from(vec![1; rows])),
                DataType::Int32 => Arc::new(Int32Array::from(vec![1; rows])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![true; rows])),
                DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
                    TimestampMicrosecondArray::from(vec![1_767_967_200_000_000; rows])
                        .with_timezone_opt(tz.clone()),
                ),
                other => new_null_array(other, rows),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("batch")
}

fn table() -> &'static ccetl::schema::TableDef {
    ccetl::source::tables()
        .find(|t| t.name == "webex_tasks")
        .expect("webex_tasks")
}

/// Commits day `day`'s window; returns the seconds the commit took (write excluded).
async fn commit_day(wh: &ccetl::sink::Warehouse, day: i64) -> f64 {
    let start = chrono::DateTime::from_timestamp(1_735_689_600, 0).expect("2025-01-01")
        + chrono::Duration::days(day);
    let rows = TableRows {
        table: table(),
        batch: batch(20, day),
        dates: vec![start.date_naive(); 20],
    };
    let files = write_table(
        wh,
        "wx",
        start,
        rows,
        &Default::default(),
        TableFormat::Delta,
    )
    .await
    .expect("write");
    let w = WindowFiles {
        table: table(),
        source: "wx",
        stream: "tasks",
        window: (start, start + chrono::Duration::days(1)),
        run_id: day,
        files,
        previous: Vec::new(),
    };
    let t = Instant::now();
    commit(TableFormat::Delta, wh, w).await.expect("commit");
    t.elapsed().as_secs_f64()
}

/// Median milliseconds of loading `dir`'s snapshot and file list, over 15 loads.
fn load_ms(dir: &Path) -> (f64, usize) {
    let mut files = 0;
    let mut t: Vec<f64> = (0..15)
        .map(|_| {
            let s = Instant::now();
            let (_, f) = delta::live_files(dir, "webex_tasks")
                .expect("load")
                .expect("a table");
            files = f.len();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[7], files)
}

/// Bytes of the log's commits, of its checkpoints, and of its newest checkpoint.
fn log_bytes(dir: &Path) -> (u64, u64, u64) {
    let (mut commits, mut checkpoints, mut newest) = (0, 0, (String::new(), 0));
    for e in std::fs::read_dir(dir.join("_delta_log"))
        .expect("log")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        let len = e.metadata().map_or(0, |m| m.len());
        if name.ends_with(".json") {
            commits += len;
        } else if name.contains(".checkpoint.") {
            checkpoints += len;
            if name > newest.0 {
                newest = (name, len);
            }
        }
    }
    (commits, checkpoints, newest.1)
}

fn main() {
    let windows = i64::from(common::size_arg(365));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = url::Url::from_directory_path(dir.path()).expect("url");
    let wh = ccetl::sink::Warehouse::open(url.as_str().trim_end_matches('/'), &Default::default())
        .expect("warehouse");
    let table_dir = dir.path().join("webex_tasks");
    let mut loads = serde_json::Map::new();
    let mut commits = Vec::new();
    for day in 0..windows {
        commits.push(rt.block_on(commit_day(&wh, day)));
        let version = day + 1;
        if [30, 120, windows].contains(&version) {
            let (ms, files) = rt.block_on(async { load_ms(&table_dir) });
            println!(
                "after {version:>3} commits: snapshot + file list {ms:6.1} ms ({files} files)"
            );
            loads.insert(version.to_string(), serde_json::json!(ms));
        }
    }
    let first = median_ms(&commits[..10.min(commits.len())]);
    let last = median_ms(&commits[commits.len().saturating_sub(10)..]);
    let with_log = log_bytes(&table_dir);

    // The baseline: the same log with its checkpoints gone, so every commit is replayed.
    for e in std::fs::read_dir(table_dir.join("_delta_log"))
        .expect("log")
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        if name.contains(".checkpoint.") || name == "_last_checkpoint" {
            std::fs::remove_file(e.path()).expect("remove checkpoint");
        }
    }
    let (no_checkpoints, _) = rt.block_on(async { load_ms(&table_dir) });
    let at_end = loads[&windows.to_string()].as_f64().unwrap_or(f64::NAN);
    let at_30 = loads
        .get("30")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(f64::NAN);
    println!("after {windows} commits without checkpoints: {no_checkpoints:6.1} ms (baseline)");
    println!(
        "load at {windows} / load at 30: {:.2} ({:.0}x the commits and files); without checkpoints / with: {:.2}",
        at_end / at_30,
        windows as f64 / 30.0,
        no_checkpoints / at_end
    );
    println!(
        "commit: median {first:.1} ms of the first 10, {last:.1} ms of the last 10 ({:.2})",
        last / first
    );
    let (commit_bytes, checkpoint_bytes, newest) = with_log;
    println!(
        "log: commits {:.0} KiB ({:.1} KiB each), checkpoints {:.0} KiB (newest {:.0} KiB)",
        commit_bytes as f64 / 1024.0,
        commit_bytes as f64 / 1024.0 / windows as f64,
        checkpoint_bytes as f64 / 1024.0,
        newest as f64 / 1024.0
    );
    common::record(
        "delta_log",
        serde_json::json!({
            "windows": windows,
            "load_ms": loads,
            "load_ms_without_checkpoints": no_checkpoints,
            "flat_ratio": at_end / at_30,
            "checkpoint_gain": no_checkpoints / at_end,
            "commit_ms_first10": first,
            "commit_ms_last10": last,
            "log_commit_bytes": commit_bytes,
            "log_checkpoint_bytes": checkpoint_bytes,
            "newest_checkpoint_bytes": newest,
        }),
    );
}

fn median_ms(s: &[f64]) -> f64 {
    let mut v = s.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN) * 1e3
}
