//! Eight shards committing to one table at once, on every object store that has a local
//! server here: each commit's conditional create of the next log entry fails for all but
//! one writer, and the losers reload and retry, so every window lands once. GCS has none:
//! fake-gcs-server refuses the XML API's `PUT` that object_store's conditional create uses.

use std::collections::BTreeMap;

use ccetl::sink::parquet::TableRows;
use ccetl::sink::Warehouse;

use super::{commit_window, common, one_row, tasks_table};

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Eight writers (eight sources), one window each, all committing at once to a table none
/// of them has created yet; returns the versions they got, sorted.
async fn eight_writers(wh: &Warehouse) -> Vec<u64> {
    ccetl::sink::table::delta::probe_conditional_create(wh)
        .await
        .expect("the store refuses a second create");
    let def = tasks_table();
    let start = chrono::DateTime::from_timestamp(1_767_916_800, 0).unwrap(); // 2026-01-09
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let wh = wh.clone();
            tokio::spawn(async move {
                let source = format!("shard{i}");
                let rows = TableRows {
                    table: def,
                    batch: one_row(&(def.schema)(), &format!("task-{i}")),
                    dates: vec![start.date_naive()],
                };
                commit_window(&wh, &source, start, rows, i).await.unwrap().0
            })
        })
        .collect();
    let mut versions = Vec::new();
    for w in writers {
        versions.push(w.await.unwrap());
    }
    versions.sort_unstable();
    versions
}

/// What python `deltalake` reads of the table at `uri` with `storage_options`.
fn read_back(uri: &str, storage_options: &serde_json::Value) -> serde_json::Value {
    common::readers::run(
        r#"
import json, sys
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1], storage_options=json.loads(sys.argv[2]))
t = dt.to_pyarrow_table()
print(json.dumps({"version": dt.version(), "ids": sorted(t.column("task_id").to_pylist()),
                  "sources": sorted(set(t.column("source").to_pylist()))}))
"#,
        &[uri, &storage_options.to_string()],
        &[],
    )
}

fn assert_every_writer_once(versions: &[u64], got: &serde_json::Value) {
    assert_eq!(
        versions,
        (1..=8).collect::<Vec<u64>>(),
        "one version each, none lost"
    );
    assert_eq!(got["version"], 8, "{got}");
    let ids: Vec<String> = (0..8).map(|i| format!("task-{i}")).collect();
    assert_eq!(
        got["ids"],
        serde_json::json!(ids),
        "every writer's row, once"
    );
    assert_eq!(got["sources"].as_array().unwrap().len(), 8, "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_committing_to_one_table_at_once_on_s3_lose_nothing() {
    let s3 = common::s3::S3::start().await;
    let opts = options(&[
        ("aws_endpoint", &s3.endpoint),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
    ]);
    let wh = Warehouse::open(&s3.url("wh"), &opts).unwrap();
    let versions = eight_writers(&wh).await;
    let got = read_back(
        &format!("{}/webex_tasks", s3.url("wh")),
        &serde_json::to_value(&opts).unwrap(),
    );
    assert_every_writer_once(&versions, &got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_committing_to_one_table_at_once_on_azurite_lose_nothing() {
    let az = common::cloud::Emulator::azurite().await;
    let opts = options(&[
        ("azure_storage_account_name", common::cloud::AZURITE_ACCOUNT),
        ("azure_storage_account_key", common::cloud::AZURITE_KEY),
        ("azure_storage_endpoint", &az.endpoint),
        ("azure_allow_http", "true"),
    ]);
    let url = format!("az://{}/wh", az.bucket);
    let wh = Warehouse::open(&url, &opts).unwrap();
    let versions = eight_writers(&wh).await;
    let got = read_back(
        &format!("{url}/webex_tasks"),
        &serde_json::to_value(&opts).unwrap(),
    );
    assert_every_writer_once(&versions, &got);
}
