//! Delta Lake tables, read by readers ccetl does not control: python `deltalake` (delta-rs)
//! and `polars` read every table of a run as DuckDB does through `ccetl query`, at the
//! protocol every engine reads; a rerun commits nothing; a replaced window is one commit
//! and the version before it still reads; a Hive warehouse converts in place. Checkpoints,
//! log cleanup and vacuum: `housekeeping`; writers racing on object stores: `races`.

mod atomic;
#[path = "../common/mod.rs"]
mod common;
mod evolution;
mod housekeeping;
mod races;

use std::collections::BTreeMap;

use arrow::array::AsArray;
use common::*;

/// Every Delta table under the local warehouse (the run history too): name → its directory.
pub(crate) fn delta_tables(env: &Env) -> BTreeMap<String, std::path::PathBuf> {
    ccetl::tables::all()
        .map(|t| (t.name.to_string(), env.warehouse_dir().join(t.name)))
        .filter(|(_, dir)| dir.join("_delta_log").is_dir())
        .collect()
}

/// What the independent readers see of each table.
pub(crate) fn read_with_python(tables: &BTreeMap<String, std::path::PathBuf>) -> serde_json::Value {
    let keys: BTreeMap<&str, &str> = ccetl::tables::all().map(|t| (t.name, t.keys[0])).collect();
    let uris: Vec<String> = tables.values().map(|d| d.display().to_string()).collect();
    let mut args = vec![serde_json::to_string(&keys).unwrap(), "{}".to_string()];
    args.extend(uris);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::readers::run(common::readers::READ_TABLES, &args, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltalake_and_polars_read_every_table_as_duckdb_does() {
    let env = env_with(sim_config(), LEGACY_SOURCE).await;
    env.run_ok().await;
    assert_matches_truth(&env);
    let tables = delta_tables(&env);
    for must in ["webex_tasks", "webex_captures", "legacy_csr", "legacy_car"] {
        assert!(
            tables.contains_key(must),
            "{must} is a Delta table: {tables:?}"
        );
    }
    let got = read_with_python(&tables);
    for name in tables.keys() {
        let t = &got[name.as_str()];
        let def = ccetl::tables::all().find(|d| d.name == name).unwrap();
        let duck = env.sql(&format!("SELECT count(*) FROM {name}"));
        let duck_rows = duck[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0);
        assert_eq!(t["rows"], duck_rows, "{name}: deltalake rows = DuckDB rows");
        assert_eq!(
            t["polars_rows"], duck_rows,
            "{name}: polars rows = DuckDB rows"
        );
        assert_eq!(
            t["protocol"],
            serde_json::json!([1, 2]),
            "{name}: reader 1, writer 2"
        );
        assert_eq!(
            t["partitions"],
            serde_json::json!(["source", "date"]),
            "{name}"
        );
        let key = def.keys[0];
        let mut want = env.strings(&format!(
            "SELECT CAST({key} AS VARCHAR) FROM {name} ORDER BY 1"
        ));
        want.sort();
        let keys: Vec<String> = t["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        if (def.schema)().field_with_name(key).unwrap().data_type()
            == &arrow::datatypes::DataType::Utf8
        {
            assert_eq!(keys, want, "{name}: the same {key}s");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_with_nothing_new_commits_nothing() {
    let env = env(sim_config()).await;
    env.run_ok().await;
    let logs = |env: &Env| -> Vec<String> {
        env.files()
            .into_keys()
            .filter(|k| k.contains("/_delta_log/"))
            .collect()
    };
    let before = logs(&env);
    assert!(!before.is_empty());
    // A new table's version 0 creates it empty; the first window is version 1, its own commit.
    let tasks_log = env.warehouse_dir().join("webex_tasks/_delta_log");
    let zero = std::fs::read_to_string(tasks_log.join(format!("{:020}.json", 0))).unwrap();
    assert!(
        zero.contains("\"CREATE TABLE\"") && !zero.contains("\"add\""),
        "{zero}"
    );
    let one = std::fs::read_to_string(tasks_log.join(format!("{:020}.json", 1))).unwrap();
    assert!(
        one.contains("\"WRITE\"") && one.contains("\"add\""),
        "{one}"
    );
    env.run_ok().await;
    assert_eq!(logs(&env), before, "no new log entries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_window_is_one_commit_and_the_version_before_still_reads() {
    let env = env(ccetl::sim::SimConfig {
        calls_per_day: 150,
        ..sim_config()
    })
    .await;
    env.run_ok().await;
    let tasks = env.warehouse_dir().join("webex_captures");
    let version_of = |dir: &std::path::Path| {
        ccetl::sink::table::delta::live_files(dir, "webex_captures")
            .unwrap()
            .unwrap()
    };
    let (v1, files1) = version_of(&tasks);
    let rows1 = env.strings("SELECT capture_id FROM webex_captures ORDER BY 1");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between = chrono::Utc::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Late recordings appear: the lookback window's captures are re-read and replaced.
    env.sim.sim.advance(5 * 3_600_000);
    env.run_ok().await;
    assert_matches_truth(&env);
    let (v2, files2) = version_of(&tasks);
    assert!(v2 > v1, "the window was committed again: {v1} -> {v2}");
    assert_ne!(files1, files2);
    // The files the new version dropped are still there: the old version reads whole.
    for f in files1.iter().filter(|f| !files2.contains(f)) {
        assert!(f.exists(), "{} kept for older versions", f.display());
    }
    let old = common::readers::run(
        r#"
import json, sys
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1], version=int(sys.argv[2]))
print(json.dumps(sorted(dt.to_pyarrow_table().column("capture_id").to_pylist())))
"#,
        &[&tasks.display().to_string(), &v1.to_string()],
        &[],
    );
    let old: Vec<String> = serde_json::from_value(old).unwrap();
    assert_eq!(old, rows1, "version {v1} reads as it did");
    // `ccetl query --as-of` reads every table as it was then; before the tables, empty.
    let pipeline = env.pipeline.display().to_string();
    let as_of = |t: &str, sql: &str| {
        let (code, out, err) = ccetl(&["query", &pipeline, sql, "--as-of", t, "--format", "csv"]);
        assert_eq!(code, 0, "{err}");
        out.lines().skip(1).map(str::to_string).collect::<Vec<_>>()
    };
    let sql = "SELECT capture_id FROM webex_captures ORDER BY 1";
    assert_eq!(
        as_of(&between.to_rfc3339(), sql),
        rows1,
        "as of between the runs"
    );
    assert_ne!(rows1, env.strings(sql), "the second run changed the table");
    assert_eq!(
        as_of("2020-01-01", "SELECT count(*) FROM webex_captures"),
        ["0"],
        "before the table was created"
    );
    // Each window's commit is one log entry per table: removes and adds together.
    let log = std::fs::read_to_string(tasks.join(format!("_delta_log/{v2:020}.json"))).unwrap();
    assert!(
        log.contains("\"remove\"") && log.contains("\"add\""),
        "{log}"
    );
    assert!(
        log.contains("\"windowStart\""),
        "commitInfo names the window: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hive_warehouse_converts_in_place() {
    let env = env(sim_config()).await;
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    let hive = text.replacen(
        "[pipeline]\n",
        "[pipeline]\ntable_format = \"parquet\"\n",
        1,
    );
    std::fs::write(&env.pipeline, &hive).unwrap();
    env.run_ok().await;
    assert_matches_truth(&env);
    assert!(delta_tables(&env).is_empty(), "Hive folders only");
    let hive_files: Vec<String> = env
        .files()
        .into_keys()
        .filter(|k| k.ends_with(".parquet"))
        .collect();

    std::fs::write(&env.pipeline, text).unwrap();
    env.sim.sim.advance(5 * 3_600_000);
    env.run_ok().await;
    assert_matches_truth(&env);
    let tables = delta_tables(&env);
    assert!(tables.contains_key("webex_tasks"), "{tables:?}");
    let zero =
        std::fs::read_to_string(tables["webex_tasks"].join("_delta_log/00000000000000000000.json"))
            .unwrap();
    assert!(zero.contains("\"CONVERT\""), "{zero}");
    // The files written before stay where they were: nothing was rewritten to convert.
    let converted = hive_files
        .iter()
        .filter(|k| zero.contains(k.split_once('/').unwrap().1))
        .count();
    assert!(converted > 0, "version 0 adds the Hive files in place");
}

/// The `webex_tasks` table, which the tests below commit to directly.
pub(crate) fn tasks_table() -> &'static ccetl::schema::TableDef {
    ccetl::tables::all()
        .find(|t| t.name == "webex_tasks")
        .unwrap()
}

/// Writes `rows` as `source`'s one-day window from `start` (stream `tasks`, run `run_id`)
/// and commits it to its Delta table, as a run's window is; returns the version and the
/// number of files written (a failed write panics; the commit's error is returned).
pub(crate) async fn commit_window(
    wh: &ccetl::sink::Warehouse,
    source: &str,
    start: chrono::DateTime<chrono::Utc>,
    rows: ccetl::sink::parquet::TableRows,
    run_id: i64,
) -> Result<(u64, usize), ccetl::sink::table::TableError> {
    use ccetl::sink::table::{commit, TableFormat, WindowFiles};
    let table = rows.table;
    let files = ccetl::sink::parquet::write_table(
        wh,
        source,
        start,
        rows,
        &Default::default(),
        TableFormat::Delta,
    )
    .await
    .unwrap();
    let written = files.len();
    let w = WindowFiles {
        table,
        source,
        stream: "tasks",
        window: (start, start + chrono::Duration::days(1)),
        run_id,
        files,
        previous: Vec::new(),
    };
    let version = commit(TableFormat::Delta, wh, w).await?;
    Ok((version.expect("a Delta commit has a version"), written))
}

/// One row of `schema` with a value in every column (nulls where a column allows them).
pub(crate) fn one_row(schema: &arrow::datatypes::SchemaRef, id: &str) -> arrow::array::RecordBatch {
    use arrow::array::*;
    use arrow::datatypes::{DataType, TimeUnit};
    use std::sync::Arc;
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.data_type() {
                DataType::Utf8 => Arc::new(StringArray::from(vec![id])),
                DataType::Int64 => Arc::new(Int64Array::from(vec![1])),
                DataType::Int32 => Arc::new(Int32Array::from(vec![1])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![true])),
                DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
                    TimestampMicrosecondArray::from(vec![1_767_967_200_000_000])
                        .with_timezone_opt(tz.clone()),
                ),
                other if f.is_nullable() => new_null_array(other, 1),
                other => panic!("{}: no test value for {other}", f.name()),
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_log_is_one_line_naming_the_table_and_nothing_is_committed_to_it() {
    let env = env(sim_config()).await;
    env.run_ok().await;
    let log = env.warehouse_dir().join("webex_tasks/_delta_log");
    let newest = std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .max()
        .unwrap();
    std::fs::write(&newest, "{not json\n").unwrap();
    let entries = |dir: &std::path::Path| std::fs::read_dir(dir).unwrap().count();
    let before = entries(&log);
    env.sim.sim.advance(5 * 3_600_000);
    let (_, result) = env.run().await;
    let e = result.expect_err("a corrupt log fails the run");
    let line = ccetl::error::one_line(&anyhow::Error::new(e));
    assert!(line.contains("Delta table webex_tasks"), "{line}");
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(
        entries(&log),
        before,
        "nothing committed to the corrupt table"
    );
}
