//! The test-only example source (`source/example/`, its API in `sim/example.rs`) run through
//! everything above it: config, windows, the audio copy and its ledger, tables, manifests,
//! state, the report, `ccetl plan`, `ccetl check` and `ccetl query`'s views. It lives here,
//! at the top of the crate, because it imports every layer it proves.

use std::path::Path;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use chrono::{TimeZone, Utc};

use crate::config::PipelineConfig;
use crate::extract::CheckContext;
use crate::pipeline::{self, RunOptions};
use crate::sink::Warehouse;
use crate::source::example::{ExampleConfig, KIND, TICKS};

fn pipeline(base_url: &str) -> String {
    format!(
        r#"
[pipeline]
name = "clock"
warehouse = "wh"
state = "state.duckdb"
window = "1d"

[[source]]
kind = "example"
name = "clock"
base_url = "{base_url}"
every = "6h"
"#
    )
}

fn counts(conn: &duckdb::Connection, sql: &str) -> Vec<i64> {
    let batches = crate::query::run(conn, sql).unwrap();
    let b = &batches[0];
    (0..b.num_columns())
        .map(|i| b.column(i).as_primitive::<Int64Type>().value(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_source_runs_end_to_end_from_its_directory_alone() {
    let sim = crate::sim::start(crate::sim::SimConfig::default(), 0)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clock.toml");
    let text = pipeline(&sim.base_url());
    let cfg = PipelineConfig::parse(&path, &text, &|_| None).unwrap();
    assert_eq!(cfg.sources[0].kind(), "example");
    assert!(cfg.sources[0].downcast::<ExampleConfig>().is_some());

    // Another kind's key is refused, naming the kind that takes it.
    let wrong = format!("{text}tenant = \"acme\"\n");
    let e = PipelineConfig::parse(&path, &wrong, &|_| None).unwrap_err();
    assert!(
        e.to_string().contains("tenant") && e.to_string().contains("xima"),
        "{e}"
    );

    // Three days, four ticks a day; then the same range again writes nothing.
    let opts = RunOptions {
        since: Some(Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()),
        until: Some(Utc.with_ymd_and_hms(2026, 3, 4, 0, 0, 0).unwrap()),
        now: Some(Utc.with_ymd_and_hms(2026, 3, 5, 0, 0, 0).unwrap()),
        ..Default::default()
    };
    let (report, result) = pipeline::run(&cfg, &opts).await;
    result.unwrap();
    let windows = &report.sources[0].windows;
    assert_eq!(windows.len(), 3);
    assert!(windows.iter().all(|w| w.complete && w.files == 1));
    // Its own figure, under the key its kind declares, and its recordings copied.
    assert_eq!(report.totals().counts.get("ticks"), 12);
    assert_eq!(sim.sim.stats().get("example_audio"), Some(&12));
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options).unwrap();
    let conn = crate::query::open(&wh).await.unwrap();
    assert_eq!(
        counts(
            &conn,
            "SELECT count(*), count(DISTINCT tick_id), count(DISTINCT date) FROM example_ticks"
        ),
        [12, 12, 3]
    );
    // Its calls, beside the other kinds', in the `calls` view.
    assert_eq!(
        counts(
            &conn,
            "SELECT count(*), count(DISTINCT call_id) FROM calls WHERE systems = 'example'"
        ),
        [12, 12]
    );
    // Its recordings, in the `recordings` view, each object stored where `audio_uri` says.
    assert_eq!(
        counts(
            &conn,
            "SELECT count(*), count(*) FILTER (audio_status = 'stored'), \
             count(DISTINCT audio_sha256) FROM recordings WHERE system = 'example'"
        ),
        [12, 12, 12]
    );
    let rows = crate::query::run(
        &conn,
        "SELECT r.recording_id, r.audio_uri, r.audio_bytes FROM recordings r \
         JOIN calls c USING (call_id) WHERE c.systems = 'example'",
    )
    .unwrap();
    for (b, i) in rows
        .iter()
        .flat_map(|b| (0..b.num_rows()).map(move |i| (b, i)))
    {
        let id = b.column(0).as_string::<i32>().value(i);
        let uri = b.column(1).as_string::<i32>().value(i);
        let stored = std::fs::read(uri.strip_prefix("file://").unwrap()).unwrap();
        assert_eq!(stored, crate::sim::example::tick_audio(id), "{uri}");
        let bytes = b.column(2).as_primitive::<Int64Type>().value(i);
        assert_eq!(bytes as usize, stored.len());
    }
    let comment = crate::query::run(
        &conn,
        "SELECT comment FROM duckdb_views() WHERE view_name = 'example_ticks'",
    )
    .unwrap();
    assert_eq!(comment[0].column(0).as_string::<i32>().value(0), TICKS.docs);

    let (report, result) = pipeline::run(&cfg, &opts).await;
    result.unwrap();
    let written: u64 = report.sources[0].windows.iter().map(|w| w.files).sum();
    assert_eq!(written, 0, "a rerun rewrites nothing");
    assert_eq!(
        sim.sim.stats().get("example_audio"),
        Some(&12),
        "nor downloads anything again"
    );
    let state = crate::state::State::open(&cfg.state_path(Some("clock"))).unwrap();
    let hw = state.high_water("clock", KIND.stream).unwrap();
    assert_eq!(hw, opts.until);

    // `ccetl plan`: its three days in shards of two windows, one pool for its budget, each
    // shard a command a worker runs.
    let shards = pipeline::shards::plan(&cfg, "clock.toml", &opts, opts.now.unwrap(), 2);
    assert_eq!(shards.iter().map(|s| s.windows).collect::<Vec<_>>(), [2, 1]);
    assert!(shards
        .iter()
        .all(|s| s.kind == "example" && s.pool_slots == 1));
    assert!(
        shards[0].args.contains(&"clock.toml".to_string()),
        "{:?}",
        shards[0].args
    );

    // `ccetl check` and `auth status` ask the source itself.
    let state = Arc::new(state);
    let ctx = CheckContext {
        pipeline: Path::new("clock.toml"),
        state: &state,
        token_store: None,
        now: Utc::now(),
    };
    assert!(cfg.sources[0]
        .check(&ctx)
        .await
        .unwrap()
        .line
        .contains("(example)"));
    assert!(cfg.sources[0]
        .credentials(&ctx)
        .unwrap()
        .starts_with("clock (example)"));

    // Its API is strict: a listing without its parameters is refused.
    let url = format!("{}/example/ticks?from=0&to=1", sim.base_url());
    assert_eq!(reqwest::get(url).await.unwrap().status(), 400);
    sim.stop().await;
}
