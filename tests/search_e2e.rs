//! Search discovery end to end: tasks found through the simulated GraphQL Search API, with
//! and without filters, compared with the simulator's truth filtered here independently.

mod common;

use ccetl::sim::faults;
use common::*;

fn search_config() -> ccetl::sim::SimConfig {
    // More telephony calls a day than a search page holds, so days take several pages.
    SimConfig {
        calls_per_day: 260,
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
    // The Search API's extra CSR fields are kept.
    let ended = env.count(
        "SELECT count(*) FROM webex_tasks WHERE json_extract(extra, '$.endedTime') IS NOT NULL \
         AND json_extract_string(extra, '$.terminationType') IS NOT NULL",
    );
    assert!(ended > 0, "endedTime and terminationType land in extra");
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

    // Only the matching tasks had their captures asked for: at most ten per request.
    let recorded = want
        .tasks
        .iter()
        .filter(|t| !t.recordings.is_empty())
        .count() as u64;
    let captures = env.stats().get("captures").copied().unwrap_or(0);
    assert!(
        captures <= recorded.div_ceil(10) + 4,
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
