//! The simulated legacy 1.0 reporting API (`/aws/api/csrs`, `/aws/api/cars`): the same calls
//! as the v1 API, as contact session records and activity chains, in CSV.
//!
//! Requests must carry `From` and the HMAC-SHA1 signature. A query returns at most
//! `min(numberOfRecords, legacy_record_cap)` rows, silently, as the real API does. Records
//! exist only once their time has come: a running session has no `cetts` and no `ended`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::data::{team_of, SimTask, DAY_MS};
use super::faults::FaultKind;
use super::{webex, Sim};

/// One activity of a simulated session.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct SimCar {
    /// Activity id.
    pub id: String,
    /// Its session (the task id).
    pub session: String,
    /// The event that started it.
    pub event: String,
    /// The state it was in (`IVR`, `queued`, `connected`, …).
    pub state: String,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// End (epoch ms); `None` while running.
    pub end_ms: Option<i64>,
    /// The agent (id, name).
    pub agent: Option<(String, String)>,
    /// The queue (id, name).
    pub queue: Option<(String, String)>,
    /// The entry point.
    pub entrypoint: String,
}

/// Longest a simulated session runs (bounds the search for activities in a range).
const MAX_SESSION_MS: i64 = 2 * DAY_MS;

struct Step {
    event: &'static str,
    state: &'static str,
    start: i64,
    end: i64,
    agent: Option<(String, String)>,
}

/// The session's activities visible at `now`, in order.
pub fn cars(t: &SimTask, now: i64) -> Vec<SimCar> {
    let c = t.created_ms;
    let pre = t.answered_ms.unwrap_or(t.ended_ms) - c;
    let new_len = (pre / 10).min(1000);
    let ivr_end = if t.queue.is_none() {
        t.ended_ms
    } else {
        c + new_len + (pre - new_len) * 2 / 5
    };
    let step = |event, state, start, end, agent| Step {
        event,
        state,
        start,
        end,
        agent,
    };
    let mut steps = vec![
        step("new", "new", c, c + new_len, None),
        step("ivr-connected", "ivr", c + new_len, ivr_end, None),
    ];
    if t.queue.is_some() {
        let park_end = t.answered_ms.unwrap_or(t.ended_ms);
        steps.push(step("parked", "queued", ivr_end, park_end, None));
    }
    if let Some(a) = t.answered_ms {
        let legs = t.agents.len().max(1) as i64;
        let leg = (t.ended_ms - a) / legs;
        for (i, agent) in t.agents.iter().enumerate() {
            let s = a + leg * i as i64;
            let e = if i as i64 == legs - 1 {
                t.ended_ms
            } else {
                s + leg
            };
            steps.push(step("connected", "talking", s, e, Some(agent.clone())));
        }
    }
    steps.push(step("ended", "ended", t.ended_ms, t.ended_ms, None));
    steps
        .into_iter()
        .filter(|s| s.start <= now)
        .map(|s| SimCar {
            id: format!("{}-{}-{}", t.id, s.start, s.event),
            session: t.id.clone(),
            event: s.event.into(),
            state: s.state.into(),
            start_ms: s.start,
            end_ms: (s.end <= now).then_some(s.end),
            queue: if s.event == "new" || s.event == "ivr-connected" {
                None
            } else {
                t.queue.clone()
            },
            agent: s.agent,
            entrypoint: t.entrypoint.into(),
        })
        .collect()
}

/// The CSR CSV header the simulator writes.
pub const CSR_HEADER: [&str; 19] = [
    "sid",
    "cstts",
    "cetts",
    "channelType",
    "direction",
    "ani",
    "dnis",
    "entrypointName",
    "queueId",
    "queueName",
    "agentId",
    "agentName",
    "teamName",
    "terminationType",
    "duration",
    "ivrDuration",
    "queueDuration",
    "connectedDuration",
    "transferCount",
];

/// The CAR CSV header.
pub const CAR_HEADER: [&str; 13] = [
    "id",
    "session",
    "event",
    "state",
    "cstts",
    "cetts",
    "duration",
    "agentId",
    "agentName",
    "queueId",
    "queueName",
    "teamName",
    "entrypointName",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// The session record at `now`, in `CSR_HEADER` order.
pub fn csr_row(t: &SimTask, now: i64) -> Vec<String> {
    let chain = cars(t, now);
    let ended = t.ended_ms <= now;
    let span = |event: &str| -> Option<i64> {
        let v: Vec<i64> = chain
            .iter()
            .filter(|c| c.event == event)
            .filter_map(|c| c.end_ms.map(|e| e - c.start_ms))
            .collect();
        (ended && !v.is_empty()).then(|| v.iter().sum())
    };
    let termination = match (t.answered_ms, &t.queue) {
        (Some(_), _) => "normal",
        (None, Some(_)) => "abandoned",
        (None, None) => "ivr",
    };
    let owner = t.owner.clone();
    vec![
        t.id.clone(),
        t.created_ms.to_string(),
        opt(ended.then_some(t.ended_ms)),
        t.channel_type.into(),
        t.direction.into(),
        t.origin.clone(),
        t.destination.clone(),
        t.entrypoint.into(),
        opt(t.queue.as_ref().map(|q| &q.0)),
        opt(t.queue.as_ref().map(|q| &q.1)),
        opt(owner.as_ref().map(|o| &o.0)),
        opt(owner.as_ref().map(|o| &o.1)),
        opt(owner.as_ref().map(|o| team_of(&o.0))),
        opt(ended.then_some(termination)),
        opt(ended.then_some(t.ended_ms - t.created_ms)),
        opt(span("ivr-connected")),
        opt(span("parked")),
        opt(span("connected")),
        opt(ended.then_some(t.agents.len().saturating_sub(1))),
    ]
}

/// A CAR as CSV fields, in [`CAR_HEADER`] order.
pub fn car_row(c: &SimCar) -> Vec<String> {
    vec![
        c.id.clone(),
        c.session.clone(),
        c.event.clone(),
        c.state.clone(),
        c.start_ms.to_string(),
        opt(c.end_ms),
        opt(c.end_ms.map(|e| e - c.start_ms)),
        opt(c.agent.as_ref().map(|a| &a.0)),
        opt(c.agent.as_ref().map(|a| &a.1)),
        opt(c.queue.as_ref().map(|q| &q.0)),
        opt(c.queue.as_ref().map(|q| &q.1)),
        opt(c.agent.as_ref().map(|a| team_of(&a.0))),
        c.entrypoint.clone(),
    ]
}

/// RFC 4180: quote a field holding a comma, quote or line break; double inner quotes.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Renders rows as CSV (CRLF, as RFC 4180 has it), with an awkward case when asked.
fn render(header: &[&str], mut rows: Vec<Vec<String>>, quirk: Option<&FaultKind>) -> Vec<u8> {
    let mut header: Vec<String> = header
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    match quirk {
        Some(FaultKind::NewColumn) => {
            header.push("wrapUpCode".into());
            for (i, r) in rows.iter_mut().enumerate() {
                r.push(format!("WRAP-{}", i % 7));
            }
        }
        Some(q @ (FaultKind::DropColumn | FaultKind::NoEvent)) => {
            let name = if *q == FaultKind::NoEvent {
                "event"
            } else {
                "teamName"
            };
            if let Some(k) = header.iter().position(|h| h == name) {
                header.remove(k);
                for r in &mut rows {
                    r.remove(k);
                }
            }
        }
        Some(FaultKind::BadValue) => {
            let k = rows.len().min(2).saturating_sub(1);
            if let Some(r) = rows.get_mut(k) {
                r[header.iter().position(|h| h == "cstts").unwrap_or(0)] = "17x0".into();
            }
        }
        _ => {}
    }
    let line = |fields: &[String]| {
        fields
            .iter()
            .map(|f| quote(f))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = String::new();
    if quirk == Some(&FaultKind::Bom) {
        out.push('\u{feff}');
    }
    out.push_str(&line(&header));
    out.push_str("\r\n");
    let mut last_row_at = out.len();
    for r in &rows {
        last_row_at = out.len();
        out.push_str(&line(r));
        out.push_str("\r\n");
    }
    let mut bytes = out.into_bytes();
    match quirk {
        Some(FaultKind::Truncate) if !rows.is_empty() => {
            // Cut the last row after its third field, as a connection closed early would.
            let commas = bytes[last_row_at..]
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b',')
                .map(|(i, _)| i)
                .nth(2)
                .unwrap_or(0);
            bytes.truncate(last_row_at + commas);
        }
        Some(FaultKind::BadUtf8) if !rows.is_empty() => {
            let at = bytes.len() - 3;
            bytes[at] = 0xff;
        }
        _ => {}
    }
    bytes
}

fn csv_response(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

fn error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        Json(json!({ "status": status.as_u16(), "message": msg })),
    )
        .into_response()
}

/// Whether `signature` is base64(HMAC-SHA1(API key, `From`)), the 1.0 API's scheme: checked
/// here on its own, not with the client's signing (`auth::hmac`), so a client bug there fails.
fn signed_by(key: &str, from: &str, signature: &str) -> bool {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(from.as_bytes());
    mac.verify_slice(&sig).is_ok()
}

/// `None` when `From` and the signature match the simulator's legacy user.
fn reject(sim: &Sim, headers: &HeaderMap) -> Option<Response> {
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let from = get(header::FROM).unwrap_or_default();
    if from != sim.cfg.legacy_user_id {
        sim.count("legacy_unauthorized");
        return Some(error(StatusCode::FORBIDDEN, "user is not permitted"));
    }
    let signature = get(header::AUTHORIZATION)
        .and_then(|v| v.split(';').next())
        .unwrap_or_default();
    if !signed_by(&sim.cfg.legacy_api_key, from, signature) {
        sim.count("legacy_unauthorized");
        return Some(error(StatusCode::UNAUTHORIZED, "invalid authorization"));
    }
    None
}

/// Common front of every legacy route: record type, latency, auth, injected faults. `Err` is
/// the response to send; `Ok` says whether CSRs are asked for, and carries a CSV quirk to
/// apply if one was injected.
async fn front(
    sim: &Sim,
    route: &str,
    headers: &HeaderMap,
) -> Result<(bool, Option<FaultKind>), Response> {
    let csr = match route {
        "csrs" => true,
        "cars" => false,
        _ => return Err(error(StatusCode::NOT_FOUND, "unknown record type")),
    };
    webex::latency(sim).await;
    if let Some(r) = reject(sim, headers) {
        return Err(r);
    }
    sim.count(route);
    match sim.faults.take(route) {
        Some(k) if k.is_csv_quirk() => {
            sim.count("faults");
            Ok((csr, Some(k)))
        }
        Some(k) => Err(webex::fault_response(sim, k)),
        None => Ok((csr, None)),
    }
}

/// `GET /aws/api/{csrs|cars}?q=<json>`.
pub async fn query(
    State(sim): State<Arc<Sim>>,
    Path(record): Path<String>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let (csr, quirk) = match front(&sim, &record, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(q) = params
        .get("q")
        .and_then(|q| serde_json::from_str::<serde_json::Value>(q).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "q must be a URL-encoded JSON query",
        );
    };
    let first = |k: &str| {
        q.get(k)
            .and_then(|v| v.get(0))
            .and_then(serde_json::Value::as_i64)
    };
    let (Some(begin), Some(end), Some(limit)) = (
        first("dateBegin"),
        first("dateEnd"),
        q.get("numberOfRecords").and_then(serde_json::Value::as_u64),
    ) else {
        return error(
            StatusCode::BAD_REQUEST,
            "the query needs dateBegin, dateEnd and numberOfRecords",
        );
    };
    let cap = (limit as usize).min(sim.cfg.legacy_record_cap);
    let now = sim.now_ms();
    let body = if csr {
        let rows: Vec<Vec<String>> = sim
            .tasks_between(begin, end)
            .iter()
            .take(cap)
            .map(|t| csr_row(t, now))
            .collect();
        render(&CSR_HEADER, rows, quirk.as_ref())
    } else {
        let mut all: Vec<SimCar> = sim
            .tasks_between(begin - MAX_SESSION_MS, end)
            .iter()
            .flat_map(|t| cars(t, now))
            .filter(|c| c.start_ms >= begin && c.start_ms < end)
            .collect();
        all.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
        let rows = all.iter().take(cap).map(car_row).collect();
        render(&CAR_HEADER, rows, quirk.as_ref())
    };
    csv_response(body)
}

/// `GET /aws/api/csrs/{sid}` and `GET /aws/api/cars/{sid}-{cstts}-{event}`.
pub async fn record(
    State(sim): State<Arc<Sim>>,
    Path((record, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (csr, quirk) = match front(&sim, &record, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let now = sim.now_ms();
    let session = id.get(..36).unwrap_or(&id);
    let Some(t) = sim.find_task(session) else {
        return error(StatusCode::NOT_FOUND, "no such record");
    };
    let body = if csr {
        if t.id != id {
            return error(StatusCode::NOT_FOUND, "no such record");
        }
        render(&CSR_HEADER, vec![csr_row(&t, now)], quirk.as_ref())
    } else {
        match cars(&t, now).iter().find(|c| c.id == id) {
            Some(c) => render(&CAR_HEADER, vec![car_row(c)], quirk.as_ref()),
            None => return error(StatusCode::NOT_FOUND, "no such record"),
        }
    };
    csv_response(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::data;

    #[test]
    fn chains_are_contiguous_and_complete() {
        let p = data::people(7);
        let now = i64::MAX / 4;
        for t in data::day_tasks(7, 20_000, 200, &p) {
            let c = cars(&t, now);
            assert_eq!(c.first().map(|c| c.event.as_str()), Some("new"));
            assert_eq!(c.last().map(|c| c.event.as_str()), Some("ended"));
            for w in c.windows(2) {
                assert_eq!(w[0].end_ms, Some(w[1].start_ms), "{:?}", c);
            }
            let ids: std::collections::HashSet<_> = c.iter().map(|c| &c.id).collect();
            assert_eq!(ids.len(), c.len(), "CAR ids are unique");
        }
    }

    #[test]
    fn quirks_render_as_described() {
        let rows = vec![
            vec!["a".to_string(), "1, \"x\"".into()],
            vec!["b".to_string(), "2".into()],
        ];
        let h = ["sid", "cstts"];
        let plain = String::from_utf8(render(&h, rows.clone(), None)).unwrap();
        assert_eq!(plain, "sid,cstts\r\na,\"1, \"\"x\"\"\"\r\nb,2\r\n");
        let bad = String::from_utf8(render(&h, rows.clone(), Some(&FaultKind::BadValue))).unwrap();
        assert!(bad.contains("b,17x0"), "{bad}");
        let bom = render(&h, rows, Some(&FaultKind::Bom));
        assert!(bom.starts_with(b"\xEF\xBB\xBF"));
    }
}
