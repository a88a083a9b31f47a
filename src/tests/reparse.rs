//! `ccetl reparse` on a warehouse an older reader wrote: Webex's transcripts committed as a
//! ccetl before formats were told by content left them (digital and legacy voice ones
//! `unparsed`, without messages), then re-derived from the stored objects: every transcript
//! the truth can read gains its messages, with no API request and no duplicate row, and a
//! second pass rewrites nothing. Here, not in `tests/`, because writing the older rows takes
//! the source's window reader with another reading rule.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use chrono::{TimeZone, Utc};

use crate::config::PipelineConfig;
use crate::extract::SourceRun;
use crate::pipeline::{self, RunOptions};
use crate::sim::{self, SimConfig};
use crate::sink::{manifest, Warehouse};
use crate::source::webex::reparse;
use crate::source::webex::transcripts::{Listed, Parsed};
use crate::window::Window;

/// What a ccetl before this change made of a transcript: only a voice vCon split.
fn as_before(t: &Listed, body: &[u8]) -> Parsed {
    if !t.is_voice() {
        return Parsed::Unparsed("digital transcript: kept as an object, not split".into());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) if v.get("dialog").is_some() => Parsed::of(t, body),
        Ok(_) => Parsed::Unparsed("transcript JSON: no `dialog` array".into()),
        Err(e) => Parsed::Unparsed(format!("transcript JSON: not JSON ({e})")),
    }
}

fn count(conn: &duckdb::Connection, sql: &str) -> i64 {
    let b = crate::query::run(conn, sql).unwrap();
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reparse_gives_an_older_warehouse_its_messages_without_an_api_request() {
    let clock = Utc.with_ymd_and_hms(2026, 1, 9, 14, 0, 0).unwrap();
    let handle = sim::start(
        SimConfig {
            seed: 7,
            days: 2,
            calls_per_day: 60,
            audio_rate: 200,
            clock_start_ms: Some(clock.timestamp_millis()),
            clock_frozen: true,
            rate_limit: None,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let base = handle.base_url();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    let text = format!(
        r#"
[pipeline]
name = "p"
warehouse = "warehouse"
state = "state.duckdb"
window = "1d"
start = "2026-01-06"

[[source]]
kind = "webex"
name = "wx"
base_url = "{base}"
token_url = "{base}/v1/access_token"
client_id = "sim-client-id"
client_secret = "sim-client-secret"
refresh_token = "sim-refresh-token-0"
channel_types = []
requests_per_minute = 300
rate_window = "3s"
"#
    );
    std::fs::write(&path, &text).unwrap();
    let cfg = PipelineConfig::load(&path).unwrap();
    let opts = RunOptions {
        now: Some(clock),
        ..Default::default()
    };
    let (_, result) = pipeline::run(&cfg, &opts).await;
    result.unwrap();

    // The same windows as an older ccetl would have committed them.
    let wh = Warehouse::open(&cfg.warehouse, &cfg.storage_options).unwrap();
    let src = &cfg.sources[0];
    let state = pipeline::open_states(&cfg, &["wx"]).unwrap()["wx"].clone();
    let settings = pipeline::settings(&cfg, &opts, clock, None);
    let run_id = state.begin_run("p").unwrap();
    let run = SourceRun::new(
        &settings,
        src.source_kind(),
        "wx",
        &state,
        &wh,
        run_id,
        None,
    );
    for m in manifest::list(&wh, "wx", "tasks").await.unwrap() {
        let w = Window {
            start: m.window_start,
            end: m.window_end,
        };
        let out = reparse::window(&run, w, as_before).await.unwrap().unwrap();
        run.commit(w, out).await.unwrap();
    }

    let truth = handle.sim.truth(i64::MIN / 2, clock.timestamp_millis());
    let transcripts = truth.tasks.iter().flat_map(|t| &t.transcripts);
    let stored: Vec<_> = transcripts.filter(|t| t.available).collect();
    let broken = stored.iter().filter(|t| !t.parseable).count() as i64;
    let messages: i64 = stored
        .iter()
        .filter(|t| t.parseable)
        .map(|t| t.messages.len() as i64)
        .sum();
    let unread = |c: &duckdb::Connection| {
        count(
            c,
            "SELECT count(*) FROM webex_transcripts WHERE status = 'unparsed'",
        )
    };
    let conn = crate::query::open(&wh).await.unwrap();
    let before = unread(&conn);
    assert!(
        before > broken + 3,
        "digital and legacy transcripts unread before: {before}"
    );
    let written = count(&conn, "SELECT count(*) FROM webex_transcript_messages");
    assert!(
        written < messages,
        "{written} of {messages} messages before"
    );
    drop(conn);

    let requests = handle.sim.stats().values().sum::<u64>();
    let reports = pipeline::reparse::reparse(&cfg, None, (None, None))
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].windows.iter().any(|w| w.files > 0));
    assert_eq!(
        handle.sim.stats().values().sum::<u64>(),
        requests,
        "no request reached the API"
    );
    assert_eq!(reports[0].http.requests, 0);

    let conn = crate::query::open(&wh).await.unwrap();
    assert_eq!(
        unread(&conn),
        broken,
        "only what no reader can read stays unparsed"
    );
    assert_eq!(
        count(&conn, "SELECT count(*) FROM webex_transcript_messages"),
        messages
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM (SELECT task_id, transcript_id, file_name, seq FROM webex_transcript_messages GROUP BY ALL HAVING count(*) > 1)"
        ),
        0,
        "no duplicate message"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM webex_transcripts WHERE format = 'digital'"
        ),
        stored.iter().filter(|t| t.format == "digital").count() as i64
    );
    let tasks = count(&conn, "SELECT count(*) FROM webex_tasks");
    drop(conn);

    // Again: nothing changes, nothing is rewritten.
    let reports = pipeline::reparse::reparse(&cfg, Some("wx"), (None, None))
        .await
        .unwrap();
    let rewritten: u64 = reports[0].windows.iter().map(|w| w.files).sum();
    assert_eq!(rewritten, 0, "a second pass rewrites no file");
    let conn = crate::query::open(&wh).await.unwrap();
    assert_eq!(count(&conn, "SELECT count(*) FROM webex_tasks"), tasks);
    handle.stop().await;
}
