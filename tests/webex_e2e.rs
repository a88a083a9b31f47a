//! End to end against the simulator: full run, incremental rerun, lookback, token refresh,
//! retries and expired pre-signed URLs, each ending with the warehouse equal to the truth.

mod common;

use arrow::array::AsArray;
use ccetl::sim::faults;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_equals_truth_and_rerun_adds_nothing() {
    let env = env(sim_config()).await;
    let first = env.run_ok().await;
    assert_matches_truth(&env);
    let t = first.totals();
    assert!(t.audio_stored > 0 && t.audio_reused == 0, "{t:?}");
    assert_eq!(
        env.stats().get("storage_auth_header"),
        None,
        "no Authorization header to storage"
    );

    // The documented schema is what DuckDB reads (plus the Hive partition columns).
    for def in ccetl::tables::all() {
        let (table, schema) = (def.name, (def.schema)());
        let got: Vec<String> = env
            .sql(&format!(
                "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {table})"
            ))
            .iter()
            .flat_map(|b| {
                let (n, t) = (
                    b.column(0).as_string::<i32>().clone(),
                    b.column(1).as_string::<i32>().clone(),
                );
                (0..b.num_rows()).map(move |i| format!("{} {}", n.value(i), t.value(i)))
            })
            .collect();
        let mut want: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| format!("{} {}", f.name(), ccetl::query::duck_type(f.data_type())))
            .collect();
        want.extend(["source VARCHAR".to_string(), "date DATE".to_string()]);
        assert_eq!(got, want, "{table} columns and types");
        // What a row is travels with the view.
        let comment = env.sql(&format!(
            "SELECT comment FROM duckdb_views() WHERE view_name = '{table}'"
        ));
        assert_eq!(
            comment[0].column(0).as_string::<i32>().value(0),
            def.docs,
            "{table} view comment"
        );
    }
    for (view, row) in [("calls", "call,"), ("recordings", "recording of")] {
        let comment = env.sql(&format!(
            "SELECT comment FROM duckdb_views() WHERE view_name = '{view}'"
        ));
        let text = comment[0].column(0).as_string::<i32>().value(0);
        assert!(text.starts_with(row), "{view}: {text:?}");
    }

    // Second run, nothing new: no new files, no audio downloaded, few requests.
    let files_before = env.files();
    let modified_before = env.modified();
    let audio_requests = env.stats().get("audio").copied().unwrap_or(0);
    let captures_before = env.stats()["captures"];
    let second = env.run_ok().await;
    // The re-read window asks captures only for its tasks whose recordings are not all
    // stored (the late ones), or that have no transcript yet (one may come later); the
    // others keep the rows the window's files hold.
    assert_reread_asked_only_open(&env, &second, captures_before, |t| {
        !t.recordings.is_empty()
            && (t.recordings.iter().any(|r| !r.available)
                || !t.transcripts.iter().any(|tr| tr.available)
                || t.transcripts.iter().any(|tr| !tr.available))
    });
    let t2 = second.totals();
    assert_eq!(t2.audio_stored, 0, "{t2:?}");
    assert_eq!(
        env.stats().get("audio").copied().unwrap_or(0),
        audio_requests,
        "no audio re-downloaded"
    );
    let files_after = env.files();
    let changed: Vec<&String> = files_after
        .keys()
        .chain(files_before.keys())
        .filter(|k| files_after.get(*k) != files_before.get(*k))
        .collect();
    assert!(
        changed.is_empty(),
        "a rerun with no new data writes nothing: {changed:?}"
    );
    let modified = env.modified();
    let rewritten: Vec<&String> = modified
        .keys()
        .filter(|k| modified.get(*k) != modified_before.get(*k))
        .collect();
    assert!(
        rewritten.is_empty(),
        "not even an identical rewrite: {rewritten:?}"
    );
    assert_eq!(t2.files, 0, "{t2:?}");
    assert!(t2.files_unchanged > 0, "{t2:?}");
    // Only the lookback window is re-read: one window, far fewer requests than the first run.
    assert_eq!(
        second.sources[0].windows.len(),
        1,
        "{:?}",
        second.sources[0].windows
    );
    assert!(
        second.requests() * 3 < first.requests(),
        "{} vs {}",
        second.requests(),
        first.requests()
    );
    assert_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_windows_listed_by_their_own_read_land_the_same() {
    // Every window with a task counts as large: none is listed beside the previous
    // window's read; each is listed at the start of its own (the path one-day windows of a
    // busy center take, to hold two windows rather than three).
    let env = env(sim_config()).await;
    let opts = ccetl::pipeline::RunOptions {
        now: Some(env.now()),
        list_ahead_max_tasks: Some(0),
        ..Default::default()
    };
    let (report, result) = ccetl::pipeline::run(&env.config(), &opts).await;
    result.expect("the run succeeds");
    let windows = &report.sources[0].windows;
    assert!(windows.len() >= 2, "{} windows", windows.len());
    assert!(
        windows.windows(2).all(|p| p[0].start < p[1].start),
        "committed in window order"
    );
    assert_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookback_picks_up_late_recordings_without_duplicates() {
    let env = env(ccetl::sim::SimConfig {
        calls_per_day: 150,
        ..sim_config()
    })
    .await;
    env.run_ok().await;
    let before = env.truth();
    let late: Vec<String> = before
        .tasks
        .iter()
        .flat_map(|t| t.recordings.iter())
        .filter(|r| !r.available)
        .map(|r| r.id.clone())
        .collect();
    assert!(
        !late.is_empty(),
        "some recordings are not yet available at the first run"
    );
    // Five hours pass: late recordings appear, and new calls arrive.
    env.sim.sim.advance(5 * 3_600_000);
    let report = env.run_ok().await;
    assert!(report.totals().audio_stored > 0);
    assert_matches_truth(&env);
    let stored: Vec<String> = env.strings("SELECT capture_id FROM webex_captures");
    let after = env.truth();
    let now_available: Vec<&String> = after
        .tasks
        .iter()
        .flat_map(|t| t.recordings.iter())
        .filter(|r| r.available && late.contains(&r.id))
        .map(|r| &r.id)
        .collect();
    assert!(
        !now_available.is_empty(),
        "some late recordings became available"
    );
    for id in now_available {
        assert!(stored.contains(id), "late recording {id} picked up");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_expiring_mid_run_is_refreshed_before_use() {
    // A running clock (tokens must expire in real time), at a quiet hour.
    let env = env(ccetl::sim::SimConfig {
        token_ttl_secs: 2,
        latency_ms: 500,
        clock_start_ms: Some(QUIET_START_MS),
        clock_frozen: false,
        ..sim_config()
    })
    .await;
    let report = env.run_ok().await;
    assert!(
        report.duration_ms > 2_000,
        "the run outlives several tokens ({} ms)",
        report.duration_ms
    );
    let stats = env.stats();
    assert!(stats["refreshes"] >= 2, "refreshed mid-run: {stats:?}");
    assert_eq!(
        stats.get("unauthorized"),
        None,
        "refreshed before expiry, never after: {stats:?}"
    );
    assert_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_error_bursts_are_retried() {
    let env = env(ccetl::sim::SimConfig {
        faults: faults::parse(
            "tasks:429x2,tasks:429datex1,captures:503x3,audio:500x2,token:502x1,tasks:401x1",
        )
        .unwrap(),
        ..sim_config()
    })
    .await;
    let report = env.run_ok().await;
    let http = report.sources[0].http;
    assert_eq!(env.stats()["faults"], 10, "every fault was injected");
    assert!(http.retries >= 9, "{http:?}");
    assert!(http.throttled_429 >= 3, "{http:?}");
    assert_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_presigned_url_is_renewed() {
    let env = env(ccetl::sim::SimConfig {
        // Three expiries, possibly all for one recording (its fresh URLs expiring too).
        faults: faults::parse("audio:expirex3").unwrap(),
        ..sim_config()
    })
    .await;
    env.run_ok().await;
    assert_eq!(env.stats()["faults"], 3);
    assert_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_pages_lose_no_task_sharing_a_timestamp() {
    let env = env_with(sim_config(), "page_size = 3\nmax_range = \"6h\"").await;
    let truth = env.truth();
    let mut times: Vec<i64> = truth.tasks.iter().map(|t| t.created_ms).collect();
    let n = times.len();
    times.dedup();
    assert!(
        times.len() < n,
        "the simulator produces tasks sharing a createdTime"
    );
    let report = env.run_ok().await;
    assert!(
        report.sources[0].http.requests > (n / 3) as u64,
        "paged in pages of 3"
    );
    assert_matches_truth(&env);
}

/// The task ids and stored recordings of one source, read back from the warehouse.
fn landed(env: &Env, source: &str) -> (Vec<String>, i64) {
    let tasks = env.strings(&format!(
        "SELECT task_id FROM webex_tasks WHERE source = '{source}' ORDER BY 1"
    ));
    let stored = env.count(&format!(
        "SELECT count(*) FROM webex_captures WHERE source = '{source}' AND audio_status = 'stored'"
    ));
    (tasks, stored)
}

fn truth_of(truth: &ccetl::sim::Truth, settled: i64) -> (Vec<String>, i64) {
    let tasks: Vec<&ccetl::sim::TruthTask> = truth
        .tasks
        .iter()
        .filter(|t| t.channel_type == "telephony" && t.created_ms < settled)
        .collect();
    let mut ids: Vec<String> = tasks.iter().map(|t| t.id.clone()).collect();
    ids.sort();
    let recordings = tasks
        .iter()
        .flat_map(|t| &t.recordings)
        .filter(|r| r.available)
        .count() as i64;
    (ids, recordings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_orgs_run_side_by_side_and_one_refused_token_stops_only_its_org() {
    // A second org: its own simulator (own data, org id, token endpoint and quota).
    let org_b = ccetl::sim::SimConfig {
        seed: 8,
        org_id: "5e5e5e5e-bbbb-4c4c-9999-444455556666".into(),
        ..sim_config()
    };
    let sim_b = ccetl::sim::start(org_b, 0).await.unwrap();
    let source_b = |token: &str| {
        format!(
            "\n[[source]]\nkind = \"webex\"\nname = \"org-b\"\nbase_url = \"{b}\"\n\
             token_url = \"{b}/v1/access_token\"\nclient_id = \"sim-client-id\"\n\
             client_secret = \"sim-client-secret\"\nrefresh_token = \"{token}\"\n",
            b = sim_b.base_url()
        )
    };
    let env = env_with(
        sim_config(),
        &source_b("a-refresh-token-org-b-never-issued"),
    )
    .await;
    let (report, result) = env.run().await;
    let err = result.expect_err("org-b's token is refused");
    assert!(err.is_auth(), "exit code 3: {err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("1 of 2 sources failed") && msg.contains("org-b"),
        "{msg}"
    );
    let b = report.sources.iter().find(|s| s.name == "org-b").unwrap();
    assert!(
        b.error.as_deref().unwrap_or("").contains("re-authorize"),
        "{b:?}"
    );
    let a = report.sources.iter().find(|s| s.name == "wx").unwrap();
    assert!(a.error.is_none() && !a.windows.is_empty(), "{a:?}");

    // The healthy org is complete; the refused one wrote nothing.
    let settled = env.sim.sim.now_ms() - 15 * 60_000;
    assert_eq!(landed(&env, "wx"), truth_of(&env.truth(), settled));
    assert_eq!(landed(&env, "org-b"), (vec![], 0));

    // Once org-b is authorised again, the next run completes it and leaves org A as it was.
    let files_a: Vec<String> = env
        .files()
        .into_keys()
        .filter(|k| k.contains("source=wx") || k.contains("/wx/"))
        .collect();
    let text = std::fs::read_to_string(&env.pipeline).unwrap().replace(
        "a-refresh-token-org-b-never-issued",
        &sim_b.sim.cfg.initial_refresh_token,
    );
    std::fs::write(&env.pipeline, text).unwrap();
    env.run_ok().await;
    let truth_b = sim_b.sim.truth(i64::MIN / 2, i64::MAX / 2);
    let (ids_b, recs_b) = truth_of(&truth_b, settled);
    assert!(!ids_b.is_empty());
    assert_eq!(landed(&env, "org-b"), (ids_b.clone(), recs_b));
    assert_eq!(landed(&env, "wx"), truth_of(&env.truth(), settled));
    let ids_a = landed(&env, "wx").0;
    assert!(
        ids_a.iter().all(|id| !ids_b.contains(id)),
        "two orgs, two call sets"
    );
    let files_a_after: Vec<String> = env
        .files()
        .into_keys()
        .filter(|k| k.contains("source=wx") || k.contains("/wx/"))
        .collect();
    assert_eq!(
        files_a_after, files_a,
        "org A untouched by org B's catch-up"
    );
    sim_b.stop().await;
}

/// Audio switched off after a run that stored it: a window read again from scratch (its
/// tables dropped, the state reset, the audio objects and their ledger kept) reports the
/// stored objects as stored, where they are, rather than "disabled" — and downloads nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_off_after_audio_on_still_reports_stored_objects() {
    let env = env(sim_config()).await;
    let first = env.run_ok().await;
    assert!(first.totals().audio_stored > 0);
    let stored_before = env.strings(
        "SELECT capture_id || ' ' || audio_uri FROM webex_captures WHERE audio_status = 'stored' ORDER BY 1",
    );
    assert!(!stored_before.is_empty());

    tables_dropped_and_audio_off(&env, "channel_types = [\"telephony\"]\n");

    let audio_requests = env.stats().get("audio").copied().unwrap_or(0);
    env.run_ok().await;
    assert_eq!(
        env.stats().get("audio").copied().unwrap_or(0),
        audio_requests,
        "audio off downloads nothing"
    );
    let stored_after = env.strings(
        "SELECT capture_id || ' ' || audio_uri FROM webex_captures WHERE audio_status = 'stored' ORDER BY 1",
    );
    assert_eq!(
        stored_after.len(),
        stored_before.len(),
        "stored objects still reported as stored"
    );
    assert!(stored_after == stored_before, "at the same URIs");
    let disabled = env.count("SELECT count(*) FROM webex_captures WHERE audio_status = 'disabled'");
    let not_stored =
        env.count("SELECT count(*) FROM webex_captures WHERE audio_status <> 'stored'");
    assert_eq!(disabled, not_stored, "what was not stored reads 'disabled'");
}

/// `calls.end_time` is a real end or null, never `lastUpdatedTime`, which the simulator (as
/// the spec warns) moves minutes to hours past the end for answered calls: with
/// `/v1/tasks` it is the stitched recording's last stop, and a call without one has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_end_is_its_real_end_not_its_last_update() {
    let env = env(sim_config()).await;
    env.run_ok().await;
    let truth = env.truth();
    let ends: std::collections::BTreeMap<String, String> = env
        .strings(
            "SELECT call_id || '=' || coalesce(CAST(epoch_ms(end_time) AS VARCHAR), 'null') \
             FROM calls WHERE systems = 'webex'",
        )
        .into_iter()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    let updated_later = env.count(
        "SELECT count(*) FROM webex_tasks t JOIN webex_captures c ON c.task_id = t.task_id \
         AND NOT c.segment WHERE t.last_updated_time > c.stop_time",
    );
    assert!(
        updated_later > 0,
        "the simulator updates tasks after closure"
    );
    let (mut with_end, mut without) = (0, 0);
    for t in &truth.tasks {
        let got = ends
            .get(&t.id)
            .unwrap_or_else(|| panic!("call {} missing", t.id));
        let stitched = t.recordings.iter().any(|r| !r.segment && r.available);
        if stitched {
            assert_eq!(got, &t.ended_ms.unwrap().to_string(), "call {}", t.id);
            with_end += 1;
        } else {
            assert_eq!(got, "null", "call {} has no recorded end", t.id);
            without += 1;
        }
    }
    println!("calls.end_time: {with_end} from recordings, {without} null; {updated_later} tasks updated after their end");
    assert!(with_end > 0 && without > 0);
}

/// A recording the captures API lists while still processing has no `filePath` (the spec
/// requires no attribute of a recording): it becomes `pending`, its window stays open, and
/// the run after the audio is ready stores it. The page it came in is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_listed_without_a_file_path_are_pending_then_stored() {
    let cfg = ccetl::sim::SimConfig {
        processing_ms: 24 * 3_600_000,
        ..sim_config()
    };
    let env = env(cfg).await;
    let first = env.run_ok().await;
    let pending = env.count(
        "SELECT count(*) FROM webex_captures WHERE audio_status = 'pending' AND audio_uri IS NULL",
    );
    println!(
        "first run: {:?}; {pending} recordings pending",
        first.totals()
    );
    assert!(pending > 0, "recordings listed before their audio is ready");
    assert_eq!(first.totals().audio_pending, pending as u64);
    // 02:00 the next day: every call of the day has its audio, none of the next has begun.
    env.sim.sim.advance(12 * 3_600_000);
    env.run_ok().await;
    assert_matches_truth(&env);
}

/// `/v1/tasks` answers gzip when asked and over 1 MB (spec): ccetl asks, and a page that
/// large (a 10 MB attribute here; a 1,000-task page is ~400 KB and never is) comes
/// compressed and lands as it would plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_over_a_megabyte_comes_gzipped_and_lands_the_same() {
    let cfg = ccetl::sim::SimConfig {
        faults: faults::parse("tasks:bigfield").unwrap(),
        ..sim_config()
    };
    // Audio off: the bytes read are the API's answers alone.
    let env = env_with(cfg, "audio = false\n").await;
    let report = env.run_ok().await;
    assert_eq!(env.stats().get("gzipped"), Some(&1), "{:?}", env.stats());
    let longest = env.count("SELECT max(length(extra)) FROM webex_tasks");
    assert!(
        longest >= 10 << 20,
        "the 10 MB attribute arrived whole: {longest}"
    );
    let wire = report.sources[0].http.bytes_in;
    println!("a 10 MB page gzipped: {wire} bytes read in all");
    assert!(
        wire < 5 << 20,
        "the big page crossed the wire compressed: {wire} bytes"
    );
}

/// A dry run's estimate comes from the runs before it, through the figure the kind marks as
/// what a window lists (Webex's tasks): requests per task and tasks a day, at the source's
/// budget. A kind that lists nothing it counts (the legacy API) gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_estimates_from_the_runs_before_it() {
    let env = env_with(sim_config(), LEGACY_SOURCE).await;
    let first = env.run_ok().await;
    let wx = first.sources.iter().find(|s| s.kind == "webex").unwrap();
    let tasks: u64 = wx.windows.iter().map(|w| w.counts.get("tasks")).sum();
    let days: f64 = wx
        .windows
        .iter()
        .map(|w| (w.end - w.start).num_milliseconds() as f64 / 86_400_000.0)
        .sum();
    assert!(tasks > 0 && days > 0.0);

    let opts = ccetl::pipeline::RunOptions {
        now: Some(env.now()),
        since: Some(env.now() - chrono::Duration::days(2)),
        dry_run: true,
        ..Default::default()
    };
    let (report, result) = ccetl::pipeline::run(&env.config(), &opts).await;
    result.unwrap();
    let dry = |kind: &str| report.sources.iter().find(|s| s.kind == kind).unwrap();
    let e = dry("webex")
        .estimate
        .expect("an estimate from the first run");
    println!("{e:?}");
    assert_eq!(e.runs, 1);
    assert!(
        (e.tasks_per_day - tasks as f64 / days).abs() < 1e-6,
        "{e:?}"
    );
    let per_task = wx.http.paced_requests as f64 / tasks as f64;
    assert!((e.requests_per_task - per_task).abs() < 1e-9, "{e:?}");
    assert!(e.requests > 0);
    assert!(dry("webex_legacy").estimate.is_none());
}
