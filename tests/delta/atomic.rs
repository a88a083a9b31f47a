//! What a window's commit looks like to a reader ccetl does not control, reading while it
//! happens: each replaced window wholly before or wholly after, never a mix of its files.

use std::time::Duration;

use ccetl::sink::parquet::TableRows;

/// A python reader that loads the table again and again until `stop` exists, and reports
/// every read that is not one whole commit (one generation of ids, all 50 rows).
const READ_IN_A_LOOP: &str = r#"
import json, os, sys
from deltalake import DeltaTable
uri, ready, stop = sys.argv[1], sys.argv[2], sys.argv[3]
reads, bad, versions = 0, [], set()
while True:
    done = os.path.exists(stop)
    dt = DeltaTable(uri)
    ids = dt.to_pyarrow_table().column("task_id").to_pylist()
    dt_version = dt.version()
    groups = sorted({i.split("-")[0] for i in ids})
    reads += 1
    versions.add(dt_version)
    if len(groups) != 1 or len(ids) != 50:
        bad.append({"groups": groups, "rows": len(ids)})
    if reads == 1:
        open(ready, "w").close()
    if done:
        break
print(json.dumps({"reads": reads, "versions": len(versions), "bad": bad[:5]}))
import os as _os, sys as _sys
_sys.stdout.flush()
_os._exit(0)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_in_a_loop_sees_each_replaced_window_whole_never_a_mix() {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path()).unwrap();
    let wh = ccetl::sink::Warehouse::open(url.as_str().trim_end_matches('/'), &Default::default())
        .unwrap();
    let def = crate::tasks_table();
    let start = chrono::DateTime::from_timestamp(1_767_916_800, 0).unwrap(); // 2026-01-09
    let schema = (def.schema)();
    // One window, re-read again and again: each generation's 50 rows in two date partitions,
    // so two files replaced by two in every commit.
    let generation = |g: usize| {
        let rows: Vec<_> = (0..50)
            .map(|j| crate::one_row(&schema, &format!("g{g:03}-{j}")))
            .collect();
        let dates = (0..50)
            .map(|j| (start + chrono::Duration::days(j / 25)).date_naive())
            .collect();
        TableRows {
            table: def,
            batch: arrow::compute::concat_batches(&schema, &rows).unwrap(),
            dates,
        }
    };
    let commit_generation = |g: usize| {
        let wh = wh.clone();
        let rows = generation(g);
        async move {
            let (version, files) = crate::commit_window(&wh, "wx", start, rows, g as i64)
                .await
                .unwrap();
            assert_eq!(files, 2);
            version
        }
    };
    commit_generation(0).await;
    let table = dir.path().join("webex_tasks");
    let (ready, stop) = (dir.path().join("ready"), dir.path().join("stop"));
    let reader = std::process::Command::new(crate::common::readers::python())
        .arg("-c")
        .arg(READ_IN_A_LOOP)
        .args([&table, &ready, &stop])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !ready.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut last = 0;
    for g in 1..=30 {
        last = commit_generation(g).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    std::fs::write(&stop, b"").unwrap();
    let out = reader.wait_with_output().unwrap();
    assert!(out.status.success());
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(last, 31, "one version per generation");
    assert_eq!(
        got["bad"],
        serde_json::json!([]),
        "every read one whole commit: {got}"
    );
    assert!(
        got["versions"].as_u64().unwrap() >= 5,
        "the reads spanned many commits: {got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccetl_query_reads_completed_windows_only_and_never_hides_another_engines_commit() {
    let env = crate::common::env(crate::common::sim_config()).await;
    env.run_ok().await;
    let pipeline = env.pipeline.display().to_string();
    let query_count = || {
        let (code, out, err) = crate::common::ccetl(&[
            "query",
            &pipeline,
            "SELECT count(*) FROM webex_tasks",
            "--format",
            "csv",
        ]);
        assert_eq!(code, 0, "{err}");
        out.lines().nth(1).unwrap().parse::<i64>().unwrap()
    };
    let before = query_count();
    assert_eq!(before, env.count("SELECT count(*) FROM webex_tasks"));

    // A window whose tables are being committed: this table has it, its manifest is not
    // written yet. `ccetl query` does not show it; the table's newest version does.
    let wh = env.open_warehouse();
    let def = crate::tasks_table();
    let start = chrono::DateTime::from_timestamp(1_767_916_800, 0).unwrap();
    let rows = TableRows {
        table: def,
        batch: crate::one_row(&(def.schema)(), "in-flight"),
        dates: vec![start.date_naive()],
    };
    let (v, _) = crate::commit_window(&wh, "other", start, rows, 99)
        .await
        .unwrap();
    assert_eq!(
        query_count(),
        before,
        "a window still committing is not read"
    );
    assert_eq!(env.count("SELECT count(*) FROM webex_tasks"), before + 1);

    // Another engine's commit (an erasure, a compaction) is never hidden.
    let entry = env
        .warehouse_dir()
        .join(format!("webex_tasks/_delta_log/{v:020}.json"));
    let text = std::fs::read_to_string(&entry).unwrap();
    assert!(text.contains("\"engineInfo\":\"ccetl/"), "{text}");
    let foreign = text.replace(
        "\"engineInfo\":\"ccetl/",
        "\"engineInfo\":\"Apache-Spark/3.5.1 Delta-Lake/3.2.0 was-ccetl/",
    );
    std::fs::write(&entry, foreign).unwrap();
    assert_eq!(query_count(), before + 1, "another engine's commit is read");
}
