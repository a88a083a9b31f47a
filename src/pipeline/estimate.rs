//! What a dry run says a run will cost: the API requests its planned windows need, from the
//! requests per task and tasks per day of the source's recent runs, and the time they take
//! at the source's rate budget (the ceiling of a Webex org is its requests a minute, not CPU).

use serde_json::Value;

use crate::config::SourceConfig;
use crate::report::{Estimate, SourceReport};
use crate::state::{State, StateError};

/// How many recent runs the figures come from.
const RUNS: usize = 20;

/// The estimate for `report`'s planned windows; `None` for a source without a budget or
/// without an earlier run that listed tasks.
pub(super) fn estimate(
    src: &SourceConfig,
    state: &State,
    report: &SourceReport,
) -> Result<Option<Estimate>, StateError> {
    let Some(budget) = src.requests_per_minute() else {
        return Ok(None);
    };
    let Some(listed_key) = src
        .source_kind()
        .counters
        .iter()
        .find(|c| c.listed)
        .map(|c| c.key)
    else {
        return Ok(None);
    };
    let (mut runs, mut tasks, mut requests, mut days) = (0, 0u64, 0u64, 0f64);
    for json in state.recent_reports(RUNS)? {
        let Ok(run) = serde_json::from_str::<Value>(&json) else {
            continue;
        };
        let Some(source) = run["sources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == report.name))
        else {
            continue;
        };
        let windows = source["windows"].as_array().map_or(&[][..], Vec::as_slice);
        // What a window lists (Webex's tasks, Xima's calls), as the kind says.
        let listed: u64 = windows.iter().filter_map(|w| w[listed_key].as_u64()).sum();
        if listed == 0 {
            continue;
        }
        runs += 1;
        tasks += listed;
        requests += source["http"]["paced_requests"].as_u64().unwrap_or(0);
        days += windows.iter().map(span_days).sum::<f64>();
    }
    if runs == 0 || days <= 0.0 {
        return Ok(None);
    }
    let planned: f64 = report
        .windows
        .iter()
        .map(|w| (w.end - w.start).num_milliseconds() as f64 / 86_400_000.0)
        .sum();
    let requests_per_task = requests as f64 / tasks as f64;
    let tasks_per_day = tasks as f64 / days;
    let need = (planned * tasks_per_day * requests_per_task).ceil();
    Ok(Some(Estimate {
        runs,
        requests_per_task,
        tasks_per_day,
        requests: need as u64,
        budget_per_minute: budget,
        minutes: need / budget,
    }))
}

/// A reported window's length in days.
fn span_days(w: &Value) -> f64 {
    let at = |k: &str| {
        w[k].as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    match (at("start"), at("end")) {
        (Some(s), Some(e)) => (e - s).num_milliseconds().max(0) as f64 / 86_400_000.0,
        _ => 0.0,
    }
}
