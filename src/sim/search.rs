//! Simulated Search API: `POST /search` answering GraphQL `taskDetails` (or its older name
//! `task`) over the same calls `/v1/tasks` lists, with CSR fields, the documented filter
//! operators, cursor pages and GraphQL-style errors (HTTP 200 with `{"errors": …}`).
//!
//! As strict as the real service where ccetl relies on it: every query is validated against
//! a typed schema ([`super::graphql`]; a quoted enum is an error), pages hold 250 records and
//! paging one query stops, silently, at the record cap (100,000; `search_record_cap`), and
//! `from` and `to` are both inclusive (the API does not say; a client must cope with either).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::data::{site_of, SimTask, DAY_MS};
use super::graphql::{self, Field};
use super::Sim;

/// Tasks per page: fixed by the server (Cisco's graphql-sample README: 250 for taskDetails).
pub const PAGE_SIZE: usize = 250;
/// The longest `to - from` the Search API accepts.
pub const MAX_RANGE_MS: i64 = 365 * DAY_MS;

/// A GraphQL error answer: HTTP 200 with `errors`, as a GraphQL server answers a query it
/// refuses.
fn graphql_error(messages: &[String]) -> Response {
    let errors: Vec<Value> = messages.iter().map(|m| json!({ "message": m })).collect();
    Json(json!({ "errors": errors, "data": null })).into_response()
}

/// The CSR record of a call.
pub fn record(t: &SimTask, now: i64) -> Value {
    let named = |p: &Option<(String, String)>| {
        p.as_ref()
            .map(|(id, name)| json!({ "id": id, "name": name }))
    };
    let ended = t.ended_ms <= now;
    let mut r = json!({
        "id": t.id,
        "status": if ended { t.status } else { "connected" },
        "channelType": t.channel_type,
        "createdTime": t.created_ms,
        "origin": t.origin,
        "destination": t.destination,
        "direction": t.direction,
        "isActive": !ended,
        "captureRequested": t.capture_requested,
        "lastEntryPoint": { "id": format!("ep-{}", t.entrypoint.len()), "name": t.entrypoint },
        "recordingCount": t.recordings.len(),
        "stringGlobalVariables": [ { "name": "CustomerTier", "value": t.customer_tier() } ],
    });
    let obj = r.as_object_mut();
    let Some(obj) = obj else { return r };
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            obj.insert(k.to_string(), v);
        }
    };
    put("owner", named(&t.owner));
    put("lastAgent", named(&t.owner));
    put("lastQueue", named(&t.queue));
    if let Some(team) = t.team() {
        put(
            "lastTeam",
            Some(json!({ "id": format!("team-{team}"), "name": team })),
        );
        let site = site_of(team);
        put(
            "lastSite",
            Some(json!({ "id": format!("site-{site}"), "name": site })),
        );
    }
    if ended {
        put("endedTime", Some(json!(t.ended_ms)));
        put("terminationType", Some(json!(t.termination_type())));
        put("totalDuration", Some(json!(t.ended_ms - t.created_ms)));
        let connected = t.answered_ms.map_or(0, |a| t.ended_ms - a);
        put("connectedDuration", Some(json!(connected)));
    }
    put(
        "queueDuration",
        t.answered_ms.map(|a| json!(a - t.created_ms)),
    );
    put("lastWrapupCodeName", t.wrapup_code().map(|c| json!(c)));
    r
}

/// `POST /search?orgId=…` with `{"query": "…", "variables": {…}}`.
pub async fn search(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
    body: Bytes,
) -> Response {
    sim.count("search");
    super::webex::latency(&sim).await;
    if let Some(r) = super::webex::reject_unauthorized(&sim, &headers) {
        return r;
    }
    if let Some(r) = super::webex::fault(&sim, "search").await {
        return r;
    }
    if let Some(r) = super::webex::reject_other_org(&sim, q.get("orgId")) {
        return r;
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return super::webex::bad_request(&format!("body is not JSON: {e}")),
    };
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return super::webex::bad_request("query is required");
    };
    let vars = request
        .get("variables")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match answer(&sim, query, &vars) {
        Ok(data) => Json(json!({ "data": data })).into_response(),
        Err(errors) => graphql_error(&errors),
    }
}

fn answer(sim: &Sim, query: &str, vars: &Map<String, Value>) -> Result<Value, Vec<String>> {
    let fields = graphql::parse_all(query, vars)?;
    let mut data = Map::new();
    for root in &fields {
        // The schema has no other root field: validation refused anything else.
        data.insert(
            root.key.clone(),
            task_details(sim, root).map_err(|e| vec![e])?,
        );
    }
    Ok(Value::Object(data))
}

fn task_details(sim: &Sim, root: &Field) -> Result<Value, String> {
    let arg = |k: &str| {
        root.args
            .get(k)
            .and_then(Value::as_i64)
            .ok_or_else(|| format!("argument '{k}' (Long, epoch ms) is required"))
    };
    let (from, to) = (arg("from")?, arg("to")?);
    if to < from {
        return Err("'to' must not be before 'from'".into());
    }
    if to - from > MAX_RANGE_MS {
        return Err("the time range must not exceed 365 days".into());
    }
    let cursor = match root.args.get("pagination").and_then(|p| p.get("cursor")) {
        None | Some(Value::Null) => 0,
        Some(Value::String(c)) if c == "0" || c == "NA" => 0,
        Some(Value::String(c)) => c
            .strip_prefix("c")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| format!("invalid cursor '{c}'"))?,
        Some(other) => return Err(format!("invalid cursor {other}")),
    };
    let filter = root.args.get("filter").filter(|f| !f.is_null());
    let now = sim.now_ms();
    let mut matched = Vec::new();
    let mut error = None;
    // Both ends inclusive: the stricter reading of an unstated bound (a task created exactly
    // at one window's `to` is listed by both windows' queries).
    sim.visit(sim.cfg.seed, from, to.saturating_add(1), |t| {
        let r = record(t, now);
        match filter.map_or(Ok(true), |f| matches(&r, f)) {
            Ok(true) => matched.push(r),
            Ok(false) => {}
            Err(e) => error = Some(e),
        }
        error.is_none() && matched.len() <= cursor + PAGE_SIZE
    });
    if let Some(e) = error {
        return Err(e);
    }
    // Paging stops at the record cap, silently (100,000 for taskDetails).
    let cap = sim.cfg.search_record_cap;
    let more = matched.len() > cursor + PAGE_SIZE && cursor + PAGE_SIZE < cap;
    let take = PAGE_SIZE.min(cap.saturating_sub(cursor));
    let page: Vec<Value> = matched.into_iter().skip(cursor).take(take).collect();
    let mut out = Map::new();
    for f in &root.selection {
        let v = match f.name.as_str() {
            "tasks" => Value::Array(
                page.iter()
                    .map(|r| project(r, &f.selection))
                    .collect::<Result<_, _>>()?,
            ),
            "pageInfo" => {
                let info = json!({
                    "hasNextPage": more,
                    "endCursor": format!("c{}", cursor + PAGE_SIZE),
                });
                project(&info, &f.selection)?
            }
            other => {
                return Err(format!(
                    "Field '{other}' in type 'TaskDetails' is undefined"
                ))
            }
        };
        out.insert(f.key.clone(), v);
    }
    Ok(Value::Object(out))
}

/// The record cut down to what the query selected.
fn project(value: &Value, selection: &[Field]) -> Result<Value, String> {
    if selection.is_empty() {
        return Ok(value.clone());
    }
    match value {
        Value::Array(items) => items
            .iter()
            .map(|i| project(i, selection))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        Value::Object(obj) => {
            let mut out = Map::new();
            for f in selection {
                let mut v = obj.get(&f.name).cloned().unwrap_or(Value::Null);
                if let (Some(name), Value::Array(vars)) = (f.args.get("name"), &v) {
                    // `stringGlobalVariables(name: "X")`: that one variable, or null.
                    v = vars
                        .iter()
                        .find(|g| g.get("name") == Some(name))
                        .cloned()
                        .unwrap_or(Value::Null);
                }
                out.insert(f.key.clone(), project(&v, &f.selection)?);
            }
            Ok(Value::Object(out))
        }
        _ => Ok(value.clone()),
    }
}

const OPERATORS: &[&str] = &[
    "equals",
    "notequals",
    "gt",
    "gte",
    "lt",
    "lte",
    "match",
    "contains",
];

/// Whether a record passes a filter: `and`/`or`/`not`, `field: {operator: value}`, and
/// nested objects (`lastQueue: {name: {equals: …}}`); a list field passes when one of its
/// items does (global variables).
pub fn matches(record: &Value, filter: &Value) -> Result<bool, String> {
    let Some(spec) = filter.as_object() else {
        return Err(format!("a filter must be an object, not {filter}"));
    };
    for (k, v) in spec {
        let ok = match k.as_str() {
            "and" => all_of(record, v)?,
            "or" => any_of(record, v)?,
            "not" => !matches(record, v)?,
            field => condition(record.get(field), v)?,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn list(v: &Value) -> Result<&Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("and/or take a list, not {v}"))
}

fn all_of(record: &Value, v: &Value) -> Result<bool, String> {
    for f in list(v)? {
        if !matches(record, f)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn any_of(record: &Value, v: &Value) -> Result<bool, String> {
    for f in list(v)? {
        if matches(record, f)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn condition(value: Option<&Value>, spec: &Value) -> Result<bool, String> {
    let Some(ops) = spec.as_object() else {
        return Err(format!("a field filter must be an object, not {spec}"));
    };
    if !ops.keys().any(|k| OPERATORS.contains(&k.as_str())) {
        return match value {
            Some(Value::Array(items)) => {
                for item in items {
                    if matches(item, spec)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Some(v @ Value::Object(_)) => matches(v, spec),
            _ => Ok(false),
        };
    }
    for (op, operand) in ops {
        if !operator(op, value.filter(|v| !v.is_null()), operand)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn operator(op: &str, value: Option<&Value>, operand: &Value) -> Result<bool, String> {
    // An object compared whole (`owner: {equals: {id: "…"}}`, `{notequals: {id: null}}`):
    // every named field must match, a null one being absent.
    if let Value::Object(want) = operand {
        let same = want.iter().all(|(k, w)| {
            let got = value.and_then(|v| v.get(k)).filter(|g| !g.is_null());
            got == Some(w).filter(|w| !w.is_null())
        });
        return match op {
            "equals" => Ok(same),
            "notequals" => Ok(!same),
            other => Err(format!("'{other}' does not compare objects")),
        };
    }
    let Some(value) = value else {
        return Ok(op == "notequals");
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let num = |v: &Value| {
        v.as_f64()
            .ok_or_else(|| format!("'{op}' compares numbers, not {v}"))
    };
    Ok(match op {
        "equals" => text(value) == text(operand),
        "notequals" => text(value) != text(operand),
        "gt" => num(value)? > num(operand)?,
        "gte" => num(value)? >= num(operand)?,
        "lt" => num(value)? < num(operand)?,
        "lte" => num(value)? <= num(operand)?,
        "contains" => text(value).contains(&text(operand)),
        "match" => {
            let pattern = text(operand);
            regex::Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("invalid pattern '{pattern}': {e}"))?
                .is_match(&text(value))
        }
        other => return Err(format!("unknown operator '{other}'")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_the_documented_operators() {
        let r = json!({
            "origin": "+15551234567", "totalDuration": 90000, "channelType": "telephony",
            "lastQueue": {"id": "q1", "name": "Support_Q"},
            "stringGlobalVariables": [{"name": "CustomerTier", "value": "gold"}],
        });
        let yes = |f: Value| matches(&r, &f).unwrap();
        assert!(yes(json!({"channelType": {"equals": "telephony"}})));
        assert!(!yes(json!({"channelType": {"notequals": "telephony"}})));
        assert!(yes(
            json!({"and": [{"totalDuration": {"gte": 60000}}, {"totalDuration": {"lte": 120000}}]})
        ));
        assert!(!yes(json!({"totalDuration": {"gt": 90000}})));
        assert!(yes(json!({"origin": {"match": "\\+1555.*"}})));
        assert!(
            !yes(json!({"origin": {"match": "555"}})),
            "a match is anchored"
        );
        assert!(yes(json!({"lastQueue": {"name": {"contains": "Support"}}})));
        assert!(yes(
            json!({"or": [{"lastQueue": {"id": {"equals": "x"}}}, {"lastQueue": {"id": {"equals": "q1"}}}]})
        ));
        assert!(yes(json!({"stringGlobalVariables": {
            "name": {"equals": "CustomerTier"}, "value": {"equals": "gold"}}})));
        assert!(!yes(
            json!({"not": {"lastQueue": {"name": {"equals": "Support_Q"}}}})
        ));
        assert!(!yes(json!({"lastTeam": {"name": {"equals": "Team Red"}}})));
        assert!(matches(&r, &json!({"origin": {"match": "("}})).is_err());
        assert!(yes(json!({"lastQueue": {"equals": {"id": "q1"}}})));
        assert!(yes(json!({"lastQueue": {"notequals": {"id": null}}})));
        assert!(
            !yes(json!({"owner": {"notequals": {"id": null}}})),
            "no owner"
        );
    }
}
