//! Task discovery through the Search API: `POST /search` with a GraphQL `taskDetails` query
//! carrying the source's filters, paged by cursor. Only matching tasks are listed, so only
//! they have their captures asked for; the CSR fields `/v1/tasks` lacks (end time,
//! durations, team, site, wrap-up code, global variables) land in `webex_tasks.extra`.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::{Discovery, SearchConfig};
use super::model::{Task, TaskAttributes};
use super::{WebexClient, WebexError};
use crate::http::pagination;
use crate::window;

const ENDPOINT: &str = "POST /search";
/// The longest `to - from` the Search API accepts.
const MAX_RANGE_DAYS: i64 = 365;
/// Each query asks one millisecond either side of its range: the API does not say whether
/// `from` and `to` are inclusive, and a task created exactly at a bound must land once, in
/// the range that starts there. What comes back outside `[from, to)` is dropped.
const MARGIN_MS: i64 = 1;

/// The CSR fields asked for: what `webex_tasks` holds, plus the Search API's extras.
const FIELDS: &str = "id status channelType createdTime endedTime origin destination direction \
    terminationType captureRequested owner { id name } lastQueue { id name } \
    lastTeam { id name } lastSite { id name } lastEntryPoint { id name } \
    totalDuration connectedDuration queueDuration lastWrapupCodeName";

#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    data: Option<Map<String, Value>>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Debug, Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskDetails {
    #[serde(default)]
    tasks: Vec<Map<String, Value>>,
    page_info: PageInfo,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PageInfo {
    #[serde(default)]
    has_next_page: bool,
    #[serde(default)]
    end_cursor: Option<String>,
}

/// The tasks created in `[start, end)` that pass the filters, in creation order.
pub async fn list_tasks(
    client: &WebexClient,
    filters: &SearchConfig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Task>, WebexError> {
    let filter = filter_literal(&client.config().channel_types, filters);
    find(client, filter, filters, start, end).await
}

/// The tasks among `ids` created in `[start, end)` that pass the source's filters (the
/// tasks events announced): one query for them all.
pub async fn tasks_by_id(
    client: &WebexClient,
    ids: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Task>, WebexError> {
    let none = SearchConfig::default();
    let filters = match &client.config().discovery {
        Discovery::Search(f) => f.as_ref(),
        Discovery::Tasks => &none,
    };
    let wanted = filter_literal(&client.config().channel_types, filters);
    let ids = any_of(
        ids.iter()
            .map(|id| format!("{{ id: {{ equals: {} }} }}", lit(id))),
    );
    let filter = all_of(wanted.into_iter().chain(ids).collect());
    find(client, filter, filters, start, end).await
}

/// The matching tasks of `[start, end)`: one query per 365 days at most, and none whose
/// listing can reach the record cap (paging stops there, silently): a range that reaches it
/// is halved and asked again ([`window::read_below_cap`]).
async fn find(
    client: &WebexClient,
    filter: Option<String>,
    filters: &SearchConfig,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Task>, WebexError> {
    let client = &client.for_search();
    let org = client.org_id().await?;
    let (org, filter, variables) = (org.as_deref(), filter.as_deref(), &filters.variables);
    let cap = filters.record_cap();
    let mut out = Vec::new();
    let longest =
        chrono::Duration::days(MAX_RANGE_DAYS) - chrono::Duration::milliseconds(2 * MARGIN_MS);
    for range in window::split(start, end, longest) {
        let read = |s: DateTime<Utc>, e: DateTime<Utc>| async move {
            let (from, to) = (s.timestamp_millis(), e.timestamp_millis());
            let mut tasks = pagination::by_cursor("0", |cursor| {
                let query = query(from - MARGIN_MS, to + MARGIN_MS, filter, &cursor, variables);
                page(client, org, query, (from, to), variables)
            })
            .await?;
            // Counted before the margins are dropped: the cap cuts what the API listed.
            let n = tasks.len();
            tasks.retain(|t| (from..to).contains(&t.attributes.created_time));
            Ok::<_, WebexError>((tasks, n))
        };
        let too_dense = |at: DateTime<Utc>| WebexError::Decode {
            endpoint: ENDPOINT.to_string(),
            message: format!(
                "{cap} or more tasks were created at {at}, in one millisecond: \
                 more than one Search query can list"
            ),
        };
        out.extend(
            window::read_below_cap(range, cap, read, too_dense)
                .await?
                .into_iter()
                .flatten(),
        );
    }
    out.sort_by(|a, b| (a.attributes.created_time, &a.id).cmp(&(b.attributes.created_time, &b.id)));
    out.dedup_by(|a, b| a.id == b.id);
    Ok(out)
}

async fn page(
    client: &WebexClient,
    org: Option<&str>,
    query: String,
    (from, to): (i64, i64),
    variables: &[String],
) -> Result<(Vec<Task>, Option<String>), WebexError> {
    let mut url = client.url("/search");
    if let Some(o) = org {
        url.query_pairs_mut().append_pair("orgId", o);
    }
    let body = serde_json::json!({ "query": query });
    let decode = |message: String| WebexError::Decode {
        endpoint: ENDPOINT.to_string(),
        message,
    };
    let details: TaskDetails = client
        .json(
            ENDPOINT,
            || {
                let (name, value) = crate::http::fetch::ACCEPT_GZIP;
                client
                    .http
                    .reqwest()
                    .post(url.clone())
                    .json(&body)
                    .header(name, value)
            },
            |_: &Response| Ok(()),
        )
        .await
        .and_then(|r| details(r).map_err(|e| decode(e.to_string())))?;
    let next = match (
        details.page_info.has_next_page,
        details.page_info.end_cursor,
    ) {
        (false, _) => None,
        (true, Some(c)) => Some(c),
        (true, None) => return Err(decode("pageInfo.hasNextPage without an endCursor".into())),
    };
    let tasks = details
        .tasks
        .into_iter()
        .enumerate()
        .map(|(i, r)| to_task(r, variables).map_err(|m| decode(format!("tasks[{i}]: {m}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let (asked_from, asked_to) = (from - MARGIN_MS, to + MARGIN_MS);
    if let Some(t) = tasks.iter().find(|t| {
        let at = t.attributes.created_time;
        at < asked_from || at > asked_to
    }) {
        return Err(decode(format!(
            "task {} was created at {}, outside the requested from={asked_from} to={asked_to}",
            t.id, t.attributes.created_time
        )));
    }
    Ok((tasks, next))
}

/// What in a Search API answer cannot be used.
#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error("the Search API refused the query: {0} (check the source's [source.search] filters)")]
    Refused(String),
    #[error("the answer holds no data.taskDetails")]
    NoDetails,
    #[error("data.taskDetails: {0}")]
    Details(serde_json::Error),
    #[error("missing field `id`")]
    NoId,
    #[error(transparent)]
    Attributes(serde_json::Error),
}

/// The `taskDetails` (or older `task`) part of an answer; GraphQL errors name the filters.
fn details(r: Response) -> Result<TaskDetails, AnswerError> {
    if let Some(e) = r.errors.first() {
        return Err(AnswerError::Refused(e.message.clone()));
    }
    let mut data = r.data.unwrap_or_default();
    let root = data
        .remove("taskDetails")
        .or_else(|| data.remove("task"))
        .ok_or(AnswerError::NoDetails)?;
    serde_json::from_value(root).map_err(AnswerError::Details)
}

/// A search record as a task: `lastQueue` is the queue `/v1/tasks` calls `queue`, global
/// variables are gathered under `globalVariables`, and everything else the model does not
/// name goes to `extra`.
fn to_task(mut r: Map<String, Value>, variables: &[String]) -> Result<Task, AnswerError> {
    let Some(Value::String(id)) = r.remove("id") else {
        return Err(AnswerError::NoId);
    };
    if let Some(q) = r.remove("lastQueue") {
        r.insert("queue".into(), q);
    }
    let mut globals = Map::new();
    for (i, name) in variables.iter().enumerate() {
        let value = r.remove(&alias(i)).and_then(|v| v.get("value").cloned());
        if let Some(v) = value.filter(|v| !v.is_null()) {
            globals.insert(name.clone(), v);
        }
    }
    if !globals.is_empty() {
        r.insert("globalVariables".into(), Value::Object(globals));
    }
    r.retain(|_, v| !v.is_null());
    let attributes: TaskAttributes =
        serde_json::from_value(Value::Object(r)).map_err(AnswerError::Attributes)?;
    Ok(Task { id, attributes })
}

fn alias(i: usize) -> String {
    format!("gv_{i}")
}

/// A GraphQL string literal (JSON's escaping is GraphQL's).
fn lit(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The query for one page.
fn query(from: i64, to: i64, filter: Option<&str>, cursor: &str, variables: &[String]) -> String {
    let mut fields = FIELDS.to_string();
    for (i, name) in variables.iter().enumerate() {
        fields += &format!(
            " {}: stringGlobalVariables(name: {}) {{ name value }}",
            alias(i),
            lit(name)
        );
    }
    let filter = filter.map(|f| format!(" filter: {f}")).unwrap_or_default();
    format!(
        "{{ taskDetails(from: {from} to: {to}{filter} pagination: {{ cursor: {} }}) \
         {{ tasks {{ {fields} }} pageInfo {{ hasNextPage endCursor }} }} }}",
        lit(cursor)
    )
}

/// True for an id (a UUID) rather than a name.
fn is_id(v: &str) -> bool {
    v.len() == 36 && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The `filter` argument: the configured conditions, all of which must hold.
///
/// `channelType` is a GraphQL enum in a `taskDetails` filter and goes bare (every Cisco
/// sample: `{channelType: {equals: telephony}}`; a quoted value is a validation error); the
/// config only admits the API's channel names. The other fields are strings, quoted.
pub fn filter_literal(channel_types: &[String], s: &SearchConfig) -> Option<String> {
    let scalar = |field: &str, values: &[String]| {
        any_of(
            values
                .iter()
                .map(|v| format!("{{ {field}: {{ equals: {} }} }}", lit(v))),
        )
    };
    let channels = any_of(
        channel_types
            .iter()
            .filter(|c| super::config::CHANNEL_TYPES.contains(&c.as_str()))
            .map(|c| format!("{{ channelType: {{ equals: {c} }} }}"))
            .collect::<Vec<_>>()
            .into_iter(),
    );
    // Queues, teams, sites and agents are objects: a value is matched as their id when it is
    // one, else as their name.
    let object = |field: &str, values: &[String]| {
        any_of(values.iter().map(|v| {
            let key = if is_id(v) { "id" } else { "name" };
            format!("{{ {field}: {{ {key}: {{ equals: {} }} }} }}", lit(v))
        }))
    };
    let clauses: Vec<String> = [
        channels,
        object("lastQueue", &s.queues),
        object("lastTeam", &s.teams),
        object("lastSite", &s.sites),
        object("lastAgent", &s.agents),
        scalar("direction", &s.directions),
        scalar("terminationType", &s.termination_types),
        s.min_duration
            .map(|d| format!("{{ totalDuration: {{ gte: {} }} }}", d.as_millis())),
        s.ani
            .as_ref()
            .map(|p| format!("{{ origin: {{ match: {} }} }}", lit(p))),
        s.dnis
            .as_ref()
            .map(|p| format!("{{ destination: {{ match: {} }} }}", lit(p))),
    ]
    .into_iter()
    .flatten()
    .collect();
    all_of(clauses)
}

fn all_of(clauses: Vec<String>) -> Option<String> {
    match clauses.len() {
        0 => None,
        1 => clauses.into_iter().next(),
        _ => Some(format!("{{ and: [ {} ] }}", clauses.join(" "))),
    }
}

fn any_of(mut alternatives: impl ExactSizeIterator<Item = String>) -> Option<String> {
    match alternatives.len() {
        0 => None,
        1 => alternatives.next(),
        _ => Some(format!(
            "{{ or: [ {} ] }}",
            alternatives.collect::<Vec<_>>().join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::graphql;

    #[test]
    fn the_query_parses_and_carries_every_filter() {
        let s = SearchConfig {
            queues: vec![
                "Support_Q".into(),
                "77f0e1d2-aaaa-4bbb-8ccc-000000000001".into(),
            ],
            sites: vec!["Dublin".into()],
            min_duration: Some(std::time::Duration::from_secs(60)),
            ani: Some(r#"\+1555"quoted".*"#.into()),
            variables: vec!["CustomerTier".into()],
            ..Default::default()
        };
        let f = filter_literal(&["telephony".into()], &s);
        let q = query(1, 2, f.as_deref(), "0", &s.variables);
        let parsed = graphql::parse(&q, &Map::new()).unwrap();
        let filter = &parsed[0].args["filter"];
        assert_eq!(
            filter,
            &serde_json::json!({ "and": [
                { "channelType": { "equals": "telephony" } },
                { "or": [
                    { "lastQueue": { "name": { "equals": "Support_Q" } } },
                    { "lastQueue": { "id": { "equals": "77f0e1d2-aaaa-4bbb-8ccc-000000000001" } } },
                ] },
                { "lastSite": { "name": { "equals": "Dublin" } } },
                { "totalDuration": { "gte": 60000 } },
                { "origin": { "match": r#"\+1555"quoted".*"# } },
            ] })
        );
        let tasks = &parsed[0].selection[0];
        assert!(tasks.selection.iter().any(|f| f.key == "gv_0"));
        assert_eq!(filter_literal(&[], &SearchConfig::default()), None);
    }

    #[test]
    fn graphql_errors_and_the_older_root_name() {
        let r: Response = serde_json::from_str(
            r#"{"data":null,"errors":[{"message":"Validation error: Field 'lastTeamX' is undefined"}]}"#,
        )
        .unwrap();
        let e = details(r).unwrap_err().to_string();
        assert!(
            e.contains("lastTeamX") && e.contains("[source.search]"),
            "{e}"
        );
        let r: Response = serde_json::from_str(
            r#"{"data":{"task":{"tasks":[],"pageInfo":{"hasNextPage":false,"endCursor":null}}}}"#,
        )
        .unwrap();
        assert!(details(r).unwrap().tasks.is_empty());
        let r: Response = serde_json::from_str(r#"{"data":{}}"#).unwrap();
        let e = details(r).unwrap_err().to_string();
        assert!(e.contains("no data.taskDetails"), "{e}");
    }

    #[test]
    fn a_record_becomes_a_task_with_extras() {
        let r = serde_json::json!({
            "id": "t1", "createdTime": 5, "lastQueue": {"id": "q", "name": "Support_Q"},
            "endedTime": 9, "lastWrapupCodeName": null,
            "gv_0": {"name": "CustomerTier", "value": "gold"},
        });
        let t = to_task(r.as_object().unwrap().clone(), &["CustomerTier".into()]).unwrap();
        assert_eq!(t.id, "t1");
        assert_eq!(
            t.attributes.queue.unwrap().name.as_deref(),
            Some("Support_Q")
        );
        assert_eq!(t.attributes.ended_time, Some(9), "endedTime is the end");
        assert!(!t.attributes.extra.contains_key("endedTime"));
        assert_eq!(
            t.attributes.extra["globalVariables"]["CustomerTier"],
            "gold"
        );
        assert!(!t.attributes.extra.contains_key("lastWrapupCodeName"));
        let bad = serde_json::json!({"id": "t2"});
        assert!(to_task(bad.as_object().unwrap().clone(), &[])
            .unwrap_err()
            .to_string()
            .contains("createdTime"));
    }
}
