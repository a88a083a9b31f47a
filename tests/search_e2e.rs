//! Search discovery end to end: tasks found through the simulated GraphQL Search API, with
//! and without filters, compared with the simulator's truth filtered here independently.

mod common;

use ccetl::sim::faults;
use common::*;

fn search_config() -> ccetl::sim::SimConfig {
    // More telephony calls a day than a search page holds, so days take several pages.
    SimConfig {
        calls_per_day: 600,
        ..sim_config()
    }
}

use ccetl::sim::SimConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_without_filters_lands_what_tasks_discovery_lands() {
    let env = env_with(search_config(), "discovery = \"search\"\n").await;
    let report = env.run_ok().await;
    assert_matches_truth(&env);
    let stats = env.stats();
    assert_eq!(stats.get("tasks"), None, "no /v1/tasks request");
    let days = report.sources[0].windows.len() as u64;
    let searches = stats.get("search").copied().unwrap_or(0);
    assert!(
        searches > days,
        "a day of {} calls takes several pages: {searches} requests for {days} windows",
        search_config().calls_per_day
    );
    // The Search API's extra CSR fields are kept; its endedTime is the call's end.
    let ended = env.count(
        "SELECT count(*) FROM webex_tasks WHERE ended_time IS NOT NULL \
         AND json_extract_string(extra, '$.terminationType') IS NOT NULL",
    );
    assert!(ended > 0, "endedTime and terminationType are kept");
    let truth = env.truth();
    let ends = env.strings(
        "SELECT call_id || '=' || CAST(epoch_ms(end_time) AS VARCHAR) FROM calls \
         WHERE end_time IS NOT NULL ORDER BY 1",
    );
    let mut want: Vec<String> = truth
        .tasks
        .iter()
        .filter_map(|t| t.ended_ms.map(|e| format!("{}={e}", t.id)))
        .collect();
    want.sort();
    assert_eq!(ends, want, "calls.end_time is the Search API's endedTime");
}

/// Paging one Search query stops at the record cap (100,000 for taskDetails), silently: a
/// range whose listing reaches it is split and asked again, so nothing is lost. Scaled here
/// to a cap of 100 on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_reaches_the_record_cap_is_split_not_cut() {
    let cfg = SimConfig {
        search_record_cap: 100,
        ..search_config()
    };
    let env = env_with(
        cfg,
        "discovery = \"search\"\n[source.search]\nrecord_cap = 100\n",
    )
    .await;
    let report = env.run_ok().await;
    assert_matches_truth(&env);
    let busiest =
        env.count("SELECT max(n) FROM (SELECT count(*) AS n FROM webex_tasks GROUP BY date)");
    println!(
        "record cap 100: busiest day {busiest} tasks, {} search requests for {} windows",
        env.stats().get("search").copied().unwrap_or(0),
        report.sources[0].windows.len()
    );
    assert!(busiest > 100, "a day holds more than one query may list");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_filters_land_exactly_the_filtered_truth() {
    let filters = r#"discovery = "search"
[source.search]
queues = ["Support_Q", "Billing_Q"]
sites = ["Austin"]
directions = ["inbound"]
min_duration = "2m"
ani = "\\+1555[0-4].*"
variables = ["CustomerTier"]
"#;
    let env = env_with(search_config(), filters).await;
    env.run_ok().await;

    // The filters, applied to the truth by this test, not by the simulator's evaluator.
    let all = env.truth();
    let mut want = all.clone();
    want.tasks.retain(|t| {
        matches!(t.queue.as_deref(), Some("Support_Q" | "Billing_Q"))
            && t.site.as_deref() == Some("Austin")
            && t.direction == "inbound"
            && t.ended_ms.is_some_and(|e| e - t.created_ms >= 120_000)
            && t.origin.starts_with("+1555")
            && ('0'..='4').contains(&t.origin.chars().nth(5).unwrap_or('x'))
    });
    assert!(
        !want.tasks.is_empty() && want.tasks.len() * 4 < all.tasks.len(),
        "the filters keep some calls and drop most: {} of {}",
        want.tasks.len(),
        all.tasks.len()
    );
    assert_matches(&env, &want);
    eprintln!(
        "filters kept {} of {} telephony tasks; {} search and {} captures requests",
        want.tasks.len(),
        all.tasks.len(),
        env.stats().get("search").copied().unwrap_or(0),
        env.stats().get("captures").copied().unwrap_or(0)
    );

    // Global variables (CAD) come along in extra.
    let tiers = env.strings(
        "SELECT task_id || '=' || json_extract_string(extra, '$.globalVariables.CustomerTier') \
         FROM webex_tasks ORDER BY 1",
    );
    let mut want_tiers: Vec<String> = want
        .tasks
        .iter()
        .map(|t| format!("{}={}", t.id, t.customer_tier))
        .collect();
    want_tiers.sort();
    assert_eq!(tiers, want_tiers);

    // Only the matching tasks had their captures asked for: at most ten per request, each
    // ten asked twice (stitched recordings, then segments).
    let recorded = want
        .tasks
        .iter()
        .filter(|t| !t.recordings.is_empty())
        .count() as u64;
    let captures = env.stats().get("captures").copied().unwrap_or(0);
    assert!(
        captures <= 2 * recorded.div_ceil(10) + 4,
        "{captures} captures requests for {recorded} recorded tasks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_survive_faults_and_a_rerun_adds_nothing() {
    let cfg = SimConfig {
        faults: faults::parse("search:503,search:reset,search:truncate").unwrap(),
        ..search_config()
    };
    let env = env_with(cfg, "discovery = \"search\"\n").await;
    let report = env.run_ok().await;
    assert_matches_truth(&env);
    let http = &report.sources[0].http;
    assert!(http.retries >= 3 && http.body_restarts >= 2, "{http:?}");
    let files = env.files();
    env.run_ok().await;
    assert_matches_truth(&env);
    assert_eq!(
        env.files().keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
}

/// A task created exactly on a window's edge (the simulator puts one call a day at noon, and
/// answers Search queries inclusive of both bounds): with hourly windows it lands once, in
/// the window that starts there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_on_a_window_edge_lands_exactly_once() {
    let env = env_with(sim_config(), "discovery = \"search\"\n").await;
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    std::fs::write(
        &env.pipeline,
        text.replace("window = \"1d\"", "window = \"1h\""),
    )
    .unwrap();
    env.run_ok().await;
    let truth = env.truth();
    let on_edge: Vec<&str> = truth
        .tasks
        .iter()
        .filter(|t| t.created_ms % 3_600_000 == 0)
        .map(|t| t.id.as_str())
        .collect();
    assert!(!on_edge.is_empty(), "calls on an hour's edge");
    assert_matches_truth(&env);
    for id in on_edge {
        let windows = env.strings(&format!(
            "SELECT DISTINCT filename FROM read_parquet('{}/webex_tasks/source=*/*/*.parquet', filename = true) \
             WHERE task_id = '{id}'",
            env.warehouse_dir().display()
        ));
        assert_eq!(
            windows.len(),
            1,
            "task {id} in one window's file: {windows:?}"
        );
    }
}
