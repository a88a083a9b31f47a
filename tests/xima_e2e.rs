//! The Xima source end to end against the simulator, which enforces Xima's rules: three
//! requests per (scaled) ten seconds per tenant, a rolling bandwidth cap (509), audio only for
//! `SAVED` recordings. The warehouse must equal the truth without provoking a single 429, a
//! 509 must leave a partial run that the next run completes without downloading anything
//! twice, and recordings still processing must be picked up once saved.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use common::*;

/// `(audio_status, sha256, bytes)` per recording key, from the warehouse; checks that each
/// stored object exists with its recorded size and hash, and that no key appears twice.
fn warehouse_recordings(env: &Env) -> BTreeMap<String, (String, Option<String>, Option<i64>)> {
    let mut out = BTreeMap::new();
    for b in env.sql(
        "SELECT recording_key, audio_status, audio_sha256, audio_bytes, audio_uri FROM xima_recordings",
    ) {
        let key = b.column(0).as_string::<i32>();
        let status = b.column(1).as_string::<i32>();
        let sha = b.column(2).as_string::<i32>();
        let bytes = b.column(3).as_primitive::<Int64Type>();
        let uri = b.column(4).as_string::<i32>();
        for i in 0..b.num_rows() {
            if uri.is_valid(i) {
                let path = uri.value(i).strip_prefix("file://").expect("file uri");
                let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
                assert_eq!(data.len() as i64, bytes.value(i));
                assert_eq!(&data[..4], b"OggS", "OPUS in Ogg");
                use sha2::Digest;
                assert_eq!(hex::encode(sha2::Sha256::digest(&data)), sha.value(i));
            }
            let row = (
                status.value(i).to_string(),
                sha.is_valid(i).then(|| sha.value(i).to_string()),
                bytes.is_valid(i).then(|| bytes.value(i)),
            );
            assert!(
                out.insert(key.value(i).to_string(), row).is_none(),
                "duplicate recording {}",
                key.value(i)
            );
        }
    }
    out
}

/// Calls equal the truth; SAVED recordings are stored with the truth's bytes, the others
/// are `pending` (or, when `deferred` is allowed, waiting for the next run).
fn assert_xima_matches_truth(env: &Env, allow_deferred: bool) -> (usize, usize) {
    let truth = env.xima_truth("acme-main");
    assert!(truth.calls.len() > 30, "a sizeable truth");
    let want_calls: Vec<String> = {
        let mut v: Vec<String> = truth.calls.iter().map(|c| c.call_key.clone()).collect();
        v.sort();
        v
    };
    let got_calls = env.strings("SELECT call_key FROM xima_calls ORDER BY 1");
    assert_eq!(
        got_calls, want_calls,
        "xima_calls equals the truth, no duplicates"
    );

    let got = warehouse_recordings(env);
    let want: Vec<_> = truth.calls.iter().flat_map(|c| &c.recordings).collect();
    assert_eq!(got.len(), want.len(), "every recording listed once");
    let (mut pending, mut deferred) = (0, 0);
    for r in want {
        let (status, sha, bytes) = &got[&r.recording_key];
        match (r.status.as_str(), status.as_str()) {
            ("SAVED", "stored") => {
                assert_eq!(sha.as_deref(), Some(r.sha256.as_str()));
                assert_eq!(*bytes, Some(r.bytes as i64));
            }
            ("SAVED", "deferred") if allow_deferred => deferred += 1,
            (s, "pending") if s != "SAVED" => pending += 1,
            (s, g) => panic!(
                "recording {} is {s} at the source but {g} here",
                r.recording_key
            ),
        }
    }
    (pending, deferred)
}

fn xima(report: &ccetl::pipeline::RunReport) -> &ccetl::pipeline::SourceReport {
    report
        .sources
        .iter()
        .find(|s| s.name == "xima")
        .expect("xima source ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_equals_truth_without_a_429_and_picks_up_recordings_once_saved() {
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    let (report, result) = env.run_sources(&["xima"]).await;
    result.expect("run succeeds");
    let (pending, _) = assert_xima_matches_truth(&env, false);
    assert!(
        pending > 0,
        "some recordings are still processing at the source"
    );

    // Not one 429, and not one wasted request: one call-info request per window, one
    // audio request per SAVED recording.
    let src = xima(&report);
    let t = report.totals();
    let stats = env.stats();
    assert_eq!(src.http.throttled_429, 0, "{:?}", src.http);
    assert_eq!(stats.get("xima_429"), None, "{stats:?}");
    assert_eq!(src.http.retries, 0);
    assert_eq!(
        src.http.requests,
        src.windows.len() as u64 + t.audio_stored,
        "requests = windows + audio downloads"
    );
    assert_eq!(t.audio_pending as usize, pending);
    let egress = src.egress.as_ref().expect("egress reported");
    assert_eq!(egress.used_bytes, t.audio_bytes);
    let stored_first = t.audio_stored;

    // Six hours later every recording is saved: the next run downloads exactly those that
    // were pending (plus the new calls'), nothing twice.
    env.sim.sim.advance(6 * 3_600_000);
    let (report, result) = env.run_sources(&["xima"]).await;
    result.expect("second run succeeds");
    let (pending_now, _) = assert_xima_matches_truth(&env, false);
    assert_eq!(pending_now, 0, "all saved by now");
    let stats = env.stats();
    let saved: usize = env
        .xima_truth("acme-main")
        .calls
        .iter()
        .flat_map(|c| &c.recordings)
        .count();
    assert_eq!(
        stats["xima_audio"] as usize, saved,
        "each recording's audio downloaded exactly once over both runs"
    );
    assert!(xima(&report).windows.iter().any(|w| w.audio_reused > 0));
    assert!(stats["xima_audio"] > stored_first);
    assert_eq!(stats.get("xima_429"), None, "{stats:?}");
    assert!(
        xima(&report).egress.as_ref().unwrap().used_bytes > egress.used_bytes,
        "egress accumulates over the rolling period"
    );

    // A rerun with nothing new makes no audio request and rewrites nothing.
    let before = env.modified();
    let audio_before = env.stats()["xima_audio"];
    env.run_sources(&["xima"]).await.1.expect("rerun");
    assert_eq!(env.stats()["xima_audio"], audio_before);
    assert_eq!(env.modified(), before, "nothing rewritten");

    // Both unified views carry the Xima rows.
    assert_eq!(
        env.count("SELECT count(*) FROM calls WHERE systems = 'xima'"),
        env.xima_truth("acme-main").calls.len() as i64
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM recordings r JOIN calls c ON c.call_id = r.call_id
             WHERE r.system = 'xima' AND r.audio_status = 'stored' AND r.audio_uri LIKE '%.opus'"
        ),
        saved as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_is_exit_4_then_the_next_run_completes_without_duplicates() {
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    let saved_bytes = env.xima_saved_bytes("acme-main");
    env.sim.sim.set_xima_cap(saved_bytes * 2 / 5);

    // The binary, as cron runs it: exit 4 and one line saying what happened and what to do.
    let now = env.now().to_rfc3339();
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ccetl"))
            .args(["run", &pipeline, "--source", "xima", "--now", &now])
            .env("CCETL_LOG", "ccetl=error")
            .output()
            .expect("ccetl runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "partial: {stderr}");
    assert!(
        stderr.contains("bandwidth limit (HTTP 509)") && stderr.contains("deferred"),
        "{stderr}"
    );
    let stats = env.stats();
    assert_eq!(
        stats["xima_509"], 1,
        "audio stops at the first 509: {stats:?}"
    );

    // Metadata is complete; the rest of the audio is deferred, nothing is half there.
    let (_, deferred) = assert_xima_matches_truth(&env, true);
    assert!(deferred > 0);
    let stored_first = stats["xima_audio"];

    // The limit rolls over: the next run downloads the deferred audio and only that.
    env.sim.sim.set_xima_cap(u64::MAX);
    let (report, result) = env.run_sources(&["xima"]).await;
    result.expect("the next run completes");
    assert_eq!(report.status, "succeeded");
    let (_, deferred_now) = assert_xima_matches_truth(&env, false);
    assert_eq!(deferred_now, 0);
    let stats = env.stats();
    assert_eq!(
        stats["xima_audio"] - stored_first,
        deferred as u64,
        "only the deferred audio was downloaded"
    );
    let opus = env.files().keys().filter(|k| k.ends_with(".opus")).count();
    assert_eq!(opus as u64, stats["xima_audio"], "one object per recording");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_egress_budget_stops_before_the_cap_and_counts_across_runs() {
    // A third of what the tenant has, from a twin simulator (same seed, same clock).
    let twin = ccetl::sim::Sim::new(xima_sim_config());
    let total: u64 = twin
        .xima_truth("acme-main", i64::MIN / 2, i64::MAX / 2)
        .calls
        .iter()
        .flat_map(|c| &c.recordings)
        .map(|r| r.bytes)
        .sum();
    let budget = total / 3;
    let env = env_with(
        xima_sim_config(),
        &format!("{XIMA_SOURCE}egress_budget = \"{budget}\"\n"),
    )
    .await;
    let (report, result) = env.run_sources(&["xima"]).await;
    let err = result.expect_err("the budget stops audio");
    assert!(err.is_partial(), "{err}");
    assert!(err.to_string().contains("egress_budget"), "{err}");
    assert_eq!(report.status, "partial");
    let src = xima(&report);
    let egress = src.egress.as_ref().unwrap();
    assert!(
        egress.used_bytes <= budget && egress.used_bytes > budget / 2,
        "{egress:?}"
    );
    assert_eq!(egress.budget_bytes, Some(budget));
    assert_eq!(
        env.stats().get("xima_509"),
        None,
        "never reached Xima's cap"
    );
    let (_, deferred) = assert_xima_matches_truth(&env, true);
    assert!(deferred > 0);

    // The budget is over five days, kept in the state: the next run downloads nothing more.
    let audio = env.stats()["xima_audio"];
    let (report, result) = env.run_sources(&["xima"]).await;
    assert!(result.expect_err("still over budget").is_partial());
    assert_eq!(
        env.stats()["xima_audio"],
        audio,
        "no request past the budget"
    );
    assert_eq!(
        xima(&report).egress.as_ref().unwrap().used_bytes,
        egress.used_bytes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_an_auth_error_and_commits_nothing() {
    let source = XIMA_SOURCE.replace("sim-xima-key-acme-main", "sim-xima-key-wrong");
    let env = env_with(xima_sim_config(), &source).await;
    let (_, result) = env.run_sources(&["xima"]).await;
    let err = result.expect_err("refused");
    assert!(err.is_auth(), "{err}");
    assert!(err.to_string().contains("API Service Users"), "{err}");
    assert!(
        !err.to_string().contains("sim-xima-key"),
        "no key in messages: {err}"
    );
    assert!(env.files().is_empty(), "nothing written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_anyway_is_honoured_and_counted() {
    let cfg = ccetl::sim::SimConfig {
        faults: ccetl::sim::faults::parse("xima:429x1,xima_audio:429x1").unwrap(),
        ..xima_sim_config()
    };
    let env = env_with(cfg, XIMA_SOURCE).await;
    let (report, result) = env.run_sources(&["xima"]).await;
    result.expect("retried to completion");
    let src = xima(&report);
    assert_eq!(src.http.throttled_429, 2, "{:?}", src.http);
    assert_eq!(src.http.retries, 2);
    assert_xima_matches_truth(&env, false);
    assert_eq!(
        env.stats().get("xima_429"),
        None,
        "the pacer itself provoked none"
    );
}

/// Audio switched off after a run that stored it: the tables rebuilt from scratch (dropped,
/// the state reset, audio objects and ledger kept) report the stored objects as stored, at
/// the same URIs, rather than "disabled" — and nothing is downloaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_off_after_audio_on_still_reports_stored_objects() {
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    env.run_sources(&["xima"]).await.1.expect("first run");
    let stored = "SELECT recording_key || ' ' || audio_uri FROM xima_recordings
                  WHERE audio_status = 'stored' ORDER BY 1";
    let stored_before = env.strings(stored);
    assert!(!stored_before.is_empty());

    tables_dropped_and_audio_off(&env, "min_interval = \"30ms\"\n");

    let audio_requests = env.stats()["xima_audio"];
    env.run_sources(&["xima"]).await.1.expect("second run");
    assert_eq!(
        env.stats()["xima_audio"],
        audio_requests,
        "nothing downloaded"
    );
    let stored_after = env.strings(stored);
    assert_eq!(
        stored_after.len(),
        stored_before.len(),
        "still reported as stored"
    );
    assert!(stored_after == stored_before, "at the same URIs");
}

/// A call whose recordings start after the hour it started in (the simulator lists calls by
/// their recordings' start, one reading of Xima's undocumented filter) lands once, in its
/// own window; audio paths name the tenant as the JSON does (`acme-main-ns`), not as
/// configured (`acme-main`), as Xima's guide says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_straddling_a_window_edge_land_once_and_audio_uses_the_jsons_tenant() {
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    std::fs::write(
        &env.pipeline,
        text.replace("window = \"1d\"", "window = \"1h\""),
    )
    .unwrap();
    let (report, result) = env.run_sources(&["xima"]).await;
    result.expect("run succeeds");
    let truth = env.xima_truth("acme-main");
    let hour = |ms: i64| ms.div_euclid(3_600_000);
    let straddling = truth
        .calls
        .iter()
        .filter(|c| {
            c.recordings
                .iter()
                .any(|r| hour(r.start_ms) != hour(c.start_ms))
        })
        .count();
    println!(
        "{straddling} calls record after the hour they start in; {} windows",
        xima(&report).windows.len()
    );
    assert!(straddling > 0, "calls that straddle an hour's edge");
    assert_xima_matches_truth(&env, false);
    let tenants = env.strings("SELECT DISTINCT tenant_name FROM xima_recordings");
    assert_eq!(tenants, ["acme-main-ns"]);
    assert!(
        report.totals().audio_stored > 0,
        "audio fetched at the JSON's tenant"
    );
}
