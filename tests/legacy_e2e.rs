//! The legacy 1.0 reporting source end to end against the simulator: CSRs, CARs and chains
//! equal the truth, truncated responses are split, credentials and malformed CSV fail
//! clearly without touching what was committed, and `calls` joins both APIs.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use ccetl::sim::faults;
use common::*;

fn legacy_config(cap: usize) -> ccetl::sim::SimConfig {
    ccetl::sim::SimConfig {
        legacy_record_cap: cap,
        ..sim_config()
    }
}

/// `(sid, cstts ms, cetts ms, agent, queue, entrypoint)` per session.
type CsrRow = (i64, Option<i64>, Option<String>, Option<String>, String);

fn opt_str(a: &arrow::array::StringArray, i: usize) -> Option<String> {
    a.is_valid(i).then(|| a.value(i).to_string())
}

fn assert_legacy_matches_truth(env: &Env) {
    let truth = env.legacy_truth();
    assert!(truth.tasks.len() > 50, "a sizeable truth");
    let want: BTreeMap<String, CsrRow> = truth
        .tasks
        .iter()
        .map(|t| {
            (
                t.id.clone(),
                (
                    t.created_ms,
                    t.ended_ms,
                    t.owner.clone(),
                    t.queue.clone(),
                    t.entrypoint.clone(),
                ),
            )
        })
        .collect();
    let mut got = BTreeMap::new();
    for b in env.sql(
        "SELECT sid, epoch_ms(cstts), epoch_ms(cetts), agent_name, queue_name, entrypoint_name FROM legacy_csr",
    ) {
        let sid = b.column(0).as_string::<i32>();
        let s = b.column(1).as_primitive::<Int64Type>();
        let e = b.column(2).as_primitive::<Int64Type>();
        let (a, q, ep) = (
            b.column(3).as_string::<i32>(),
            b.column(4).as_string::<i32>(),
            b.column(5).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            let row = (
                s.value(i),
                e.is_valid(i).then(|| e.value(i)),
                opt_str(a, i),
                opt_str(q, i),
                ep.value(i).to_string(),
            );
            assert!(
                got.insert(sid.value(i).to_string(), row).is_none(),
                "duplicate session {}",
                sid.value(i)
            );
        }
    }
    assert_eq!(got.len(), want.len(), "sessions: none lost, none extra");
    assert_eq!(got, want, "legacy_csr equals the truth");

    // Every activity, once, with its times.
    let want_cars: BTreeSet<(String, i64, Option<i64>)> = truth
        .tasks
        .iter()
        .flat_map(|t| t.chain.iter())
        .map(|c| (c.id.clone(), c.start_ms, c.end_ms))
        .collect();
    let mut got_cars = BTreeSet::new();
    let mut n = 0;
    for b in env.sql("SELECT car_id, epoch_ms(cstts), epoch_ms(cetts) FROM legacy_car") {
        let id = b.column(0).as_string::<i32>();
        let s = b.column(1).as_primitive::<Int64Type>();
        let e = b.column(2).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            n += 1;
            got_cars.insert((
                id.value(i).to_string(),
                s.value(i),
                e.is_valid(i).then(|| e.value(i)),
            ));
        }
    }
    assert_eq!(n, got_cars.len(), "no duplicate activities");
    assert_eq!(got_cars, want_cars, "legacy_car equals the truth");

    // Chains: the truth's order, seq from 1, linked states; only running sessions flagged.
    let want_chains: BTreeMap<String, Vec<String>> = truth
        .tasks
        .iter()
        .map(|t| {
            (
                t.id.clone(),
                t.chain.iter().map(|c| c.event.clone()).collect(),
            )
        })
        .collect();
    let mut got_chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for b in env.sql("SELECT session_id, seq, event FROM activity_chains ORDER BY session_id, seq")
    {
        let sid = b.column(0).as_string::<i32>();
        let seq = b.column(1).as_primitive::<arrow::datatypes::Int32Type>();
        let ev = b.column(2).as_string::<i32>();
        for i in 0..b.num_rows() {
            let chain = got_chains.entry(sid.value(i).to_string()).or_default();
            assert_eq!(seq.value(i) as usize, chain.len() + 1, "seq counts from 1");
            chain.push(ev.value(i).to_string());
        }
    }
    assert_eq!(got_chains, want_chains, "activity chains equal the truth");
    let running = truth.tasks.iter().filter(|t| t.ended_ms.is_none()).count() as i64;
    assert_eq!(
        env.count("SELECT count(*) FROM activity_chains WHERE anomaly IS NOT NULL"),
        running,
        "only sessions still running are flagged"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM activity_chains WHERE anomaly IS NOT NULL AND anomaly <> 'no_ended'"),
        0
    );
    assert_eq!(
        env.count(
            "SELECT count(*) FROM activity_chains c JOIN activity_chains n
               ON n.session_id = c.session_id AND n.seq = c.seq + 1
             WHERE c.next_state IS DISTINCT FROM n.state OR n.prev_state IS DISTINCT FROM c.state"
        ),
        0,
        "prev/next states link the rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_equals_truth_splits_capped_windows_and_joins_calls() {
    // The API returns at most 40 rows per query, and says nothing when it stops there.
    let env = env_with(
        legacy_config(40),
        &format!("{LEGACY_SOURCE}record_cap = 40\n"),
    )
    .await;
    let report = env.run_ok().await;
    assert_legacy_matches_truth(&env);
    assert_matches_truth(&env);

    let legacy = report.sources.iter().find(|s| s.name == "legacy").unwrap();
    let windows = legacy.windows.len() as u64;
    let stats = env.stats();
    assert!(
        stats["csrs"] > windows && stats["cars"] > windows,
        "capped windows were split: {stats:?}, {windows} windows"
    );
    let t = report.totals();
    assert_eq!(
        t.counts.get("sessions"),
        env.legacy_truth().tasks.len() as u64
    );

    // One row per call: v1 tasks (telephony) and legacy sessions (all channels) by id.
    let truth = env.legacy_truth();
    let telephony = truth
        .tasks
        .iter()
        .filter(|t| t.channel_type == "telephony")
        .count() as i64;
    assert_eq!(
        env.count("SELECT count(*) FROM calls"),
        truth.tasks.len() as i64
    );
    assert_eq!(
        env.count("SELECT count(DISTINCT call_id) FROM calls"),
        truth.tasks.len() as i64
    );
    assert_eq!(
        env.count("SELECT count(*) FROM calls WHERE systems = 'webex+webex_legacy'"),
        telephony
    );
    assert_eq!(
        env.count("SELECT count(*) FROM calls WHERE systems = 'webex'"),
        0
    );
    // The chain and the recordings of a call are reachable from it.
    assert!(
        env.count(
            "SELECT count(*) FROM calls c
               JOIN activity_chains a ON a.session_id = c.call_id AND a.event = 'connected'
               JOIN recordings r ON r.call_id = c.call_id AND NOT r.segment
             WHERE r.audio_status = 'stored'"
        ) > 10
    );

    // Rerun: nothing new, nothing rewritten.
    let before = env.modified();
    env.run_ok().await;
    assert_eq!(env.modified(), before, "a no-op rerun writes nothing");
    assert_legacy_matches_truth(&env);

    // A day later: the new calls arrive, sessions that were running are completed.
    env.sim.sim.advance(24 * 3_600_000);
    env.run_ok().await;
    assert_legacy_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_but_valid_csv_is_read() {
    let env = env_with(legacy_config(100_000), LEGACY_SOURCE).await;
    // BOM, an unknown column and a missing column, each on one response.
    env.sim
        .sim
        .faults
        .add(faults::parse("csrs:bom,cars:bom,csrs:newcol,cars:dropcol").unwrap());
    let (_, result) = env.run_sources(&["legacy"]).await;
    result.unwrap();
    assert!(env.stats()["faults"] >= 4);
    assert!(
        env.count("SELECT count(*) FROM legacy_csr WHERE json_extract_string(extra, '$.wrapUpCode') LIKE 'WRAP-%'") > 0,
        "an unknown column is kept in extra"
    );
    assert!(
        env.count(
            "SELECT count(*) FROM legacy_car WHERE agent_name IS NOT NULL AND team_name IS NULL"
        ) > 0,
        "a column that disappeared reads as null"
    );
    // Entry point names with commas, quotes and line breaks came through intact.
    assert!(
        env.count(
            "SELECT count(*) FROM legacy_csr WHERE entrypoint_name = 'After hours\nOverflow'"
        ) > 0
    );
    assert!(
        env.count(
            "SELECT count(*) FROM legacy_csr WHERE entrypoint_name = 'Main line, \"Press 1\"'"
        ) > 0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_csv_fails_its_window_and_keeps_what_was_committed() {
    let env = env_with(legacy_config(100_000), LEGACY_SOURCE).await;
    env.run_sources(&["legacy"]).await.1.unwrap();
    env.sim.sim.advance(24 * 3_600_000);
    let state_path = env.dir.path().join("state.duckdb");
    let windows = || {
        let st = ccetl::state::State::open(&state_path).unwrap();
        (
            st.count("windows").unwrap(),
            st.high_water("legacy", "sessions").unwrap(),
        )
    };
    let cases = [
        // Three times: a malformed body is asked for twice more before the run gives up.
        ("csrs:badvaluex3", "column 'cstts'"),
        ("cars:badvaluex3", "column 'cstts'"),
        ("csrs:truncatex3", "a truncated or malformed row"),
        ("cars:badutf8x3", "not valid UTF-8"),
    ];
    for (fault, needle) in cases {
        let files = env.modified();
        let before = windows();
        env.sim.sim.faults.add(faults::parse(fault).unwrap());
        let (_, result) = env.run_sources(&["legacy"]).await;
        let msg = result.expect_err(fault).to_string();
        assert!(
            msg.contains(needle) && msg.contains("CSV row"),
            "{fault}: {msg}"
        );
        assert!(msg.contains("source 'legacy', window "), "{fault}: {msg}");
        assert_eq!(env.modified(), files, "{fault}: warehouse untouched");
        assert_eq!(windows(), before, "{fault}: state untouched");
    }
    // Without the fault, the rerun completes everything.
    env.run_sources(&["legacy"]).await.1.unwrap();
    assert_legacy_matches_truth(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_records_by_id() {
    use ccetl::source::legacy::config::LegacyConfig;
    use ccetl::source::legacy::{LegacyClient, RecordType};
    let env = env_with(legacy_config(100_000), LEGACY_SOURCE).await;
    let cfg = env.config();
    let found = cfg.sources.iter().find(|s| s.name() == "legacy");
    let Some(l) = found.and_then(|s| s.downcast::<LegacyConfig>()) else {
        panic!("legacy source")
    };
    let client = LegacyClient::connect(l).unwrap();
    let truth = env.legacy_truth();
    let t = truth.tasks.iter().find(|t| t.chain.len() >= 4).unwrap();
    let csr = client.get(RecordType::Csr, &t.id).await.unwrap().unwrap();
    assert_eq!(csr.num_rows(), 1);
    assert_eq!(csr.column(0).as_string::<i32>().value(0), t.id);
    let car = &t.chain[2];
    let got = client.get(RecordType::Car, &car.id).await.unwrap().unwrap();
    assert_eq!(got.column(0).as_string::<i32>().value(0), car.id);
    assert_eq!(got.column(2).as_string::<i32>().value(0), car.event);
    assert!(client
        .get(RecordType::Csr, "no-such-session")
        .await
        .unwrap()
        .is_none());
}
