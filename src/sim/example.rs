//! The test-only example source's API: a clock whose ticks each carry a recording.
//! `GET /example/ticks?from=MS&to=MS&every=S` lists the ticks in `[from, to)`, one every
//! `every` seconds from the epoch; `GET /example/audio/{id}` serves a tick's recording.
//! Strict as a real API would be: a missing or malformed parameter is a 400, an unknown
//! recording a 404.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::Sim;

/// How long each tick's recording lasts.
pub const TICK_MS: i64 = 30_000;

/// A tick's id: its start, in seconds since the epoch.
fn tick_id(at_ms: i64) -> String {
    format!("tick-{}", at_ms / 1000)
}

/// A tick's recording: a few KiB that name it, so a copy of the wrong one is caught.
pub fn tick_audio(id: &str) -> Vec<u8> {
    format!("example recording of {id}\n")
        .repeat(128)
        .into_bytes()
}

/// Its routes, merged into the simulator's router.
pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/example/ticks", get(ticks))
        .route("/example/audio/{id}", get(audio))
}

fn bad(message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// `GET /example/ticks`.
pub async fn ticks(
    State(sim): State<Arc<Sim>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let number = |key: &str| q.get(key).and_then(|v| v.parse::<i64>().ok());
    let (Some(from), Some(to), Some(every)) = (number("from"), number("to"), number("every"))
    else {
        return bad("from, to (epoch ms) and every (seconds) are required integers");
    };
    if every <= 0 || to < from {
        return bad("every must be positive and to not before from");
    }
    sim.count("example_ticks");
    let step = every * 1000;
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    let base = sim.base_url();
    let rows: Vec<_> = (0..)
        .map(|i| first + i * step)
        .take_while(|at| *at < to)
        .map(|at| {
            let id = tick_id(at);
            json!({
                "id": id,
                "at": at,
                "duration_ms": TICK_MS,
                "recording": format!("{base}/example/audio/{id}"),
            })
        })
        .collect();
    Json(json!({ "ticks": rows })).into_response()
}

/// `GET /example/audio/{id}`.
pub async fn audio(State(sim): State<Arc<Sim>>, Path(id): Path<String>) -> Response {
    let known = id
        .strip_prefix("tick-")
        .and_then(|s| s.parse::<i64>().ok())
        .is_some();
    if !known {
        return (StatusCode::NOT_FOUND, "no such recording").into_response();
    }
    sim.count("example_audio");
    tick_audio(&id).into_response()
}
