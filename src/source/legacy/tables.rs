//! The legacy tables: `legacy_csr` (one row per contact session) and `legacy_car` (one row
//! per activity in a session). Each is decoded from CSV by the spec below, so the spec *is*
//! the schema (`schemas/*.json`). API names become snake_case; durations are `*_ms`.
//!
//! Which CSV names are confirmed (the 2021/2023 WxCC lab; `docs/FIDELITY.md`): `sid`, `cstts`,
//! `cetts`, a CAR's `session`, and the CAR id's form `{sid}-{cstts}-{event}`. Every other
//! header is a guess, modelled on the Search API's field names; all of them are optional but
//! the CAR's `id` and `event`, and `event` is derived from the id when a CSV lacks it. An
//! unknown column lands in `extra`, so a guessed name that is wrong loses nothing.

use super::csv::{ColKind, ColSpec, Derive, TableSpec, Value};
use crate::schema::TableDef;

const fn col(header: &'static str, name: &'static str, kind: ColKind, required: bool) -> ColSpec {
    ColSpec {
        header,
        name,
        kind,
        required,
    }
}

use ColKind::{EpochMs, Int, Text};

/// `legacy_csr`, decoded by [`CSR`].
pub static CSR_TABLE: TableDef = TableDef {
    name: CSR.table,
    schema: || CSR.schema(),
    unique_columns: &["duration_ms"],
    keys: &["sid"],
    docs: "contact session (CSR): times, channel, direction, ANI/DNIS, entry point, queue, agent, team, termination, IVR/queue/talk durations",
};

/// `legacy_car`, decoded by [`CAR`].
pub static CAR_TABLE: TableDef = TableDef {
    name: CAR.table,
    schema: || CAR.schema(),
    unique_columns: &["car_id", "duration_ms"],
    keys: &["car_id", "session_id", "event"],
    docs: "activity (CAR) of a session: event, state, times, agent, queue, team",
};

/// Contact session records (`legacy_csr`): one row per session.
pub const CSR: TableSpec = TableSpec {
    table: "legacy_csr",
    derive: None,
    columns: &[
        col("sid", "sid", Text, true),
        col("cstts", "cstts", EpochMs, true),
        col("cetts", "cetts", EpochMs, false),
        col("channelType", "channel_type", Text, false),
        col("direction", "direction", Text, false),
        col("ani", "ani", Text, false),
        col("dnis", "dnis", Text, false),
        col("entrypointName", "entrypoint_name", Text, false),
        col("queueId", "queue_id", Text, false),
        col("queueName", "queue_name", Text, false),
        col("agentId", "agent_id", Text, false),
        col("agentName", "agent_name", Text, false),
        col("teamName", "team_name", Text, false),
        col("terminationType", "termination_type", Text, false),
        col("duration", "duration_ms", Int, false),
        col("ivrDuration", "ivr_duration_ms", Int, false),
        col("queueDuration", "queue_duration_ms", Int, false),
        col("connectedDuration", "connected_duration_ms", Int, false),
        col("transferCount", "transfer_count", Int, false),
    ],
};

/// Contact activity records (`legacy_car`): one row per step of a session.
pub const CAR: TableSpec = TableSpec {
    table: "legacy_car",
    derive: Some(Derive {
        headers: &["event"],
        fill: car_event_from_id,
    }),
    columns: &[
        col("id", "car_id", Text, true),
        col("session", "session_id", Text, true),
        col("event", "event", Text, true),
        col("state", "state", Text, false),
        col("cstts", "cstts", EpochMs, true),
        col("cetts", "cetts", EpochMs, false),
        col("duration", "duration_ms", Int, false),
        col("agentId", "agent_id", Text, false),
        col("agentName", "agent_name", Text, false),
        col("queueId", "queue_id", Text, false),
        col("queueName", "queue_name", Text, false),
        col("teamName", "team_name", Text, false),
        col("entrypointName", "entrypoint_name", Text, false),
    ],
};

/// A CAR's `event` from its id, `{sid}-{cstts}-{event}` (confirmed), when the row has none:
/// the id must start with the row's session and a run of digits (the start, in ms).
fn car_event_from_id(values: &mut [Option<Value>]) {
    // The CAR columns' positions: id, session, event.
    let (id, session, event) = (0, 1, 2);
    if values.get(event).is_some_and(Option::is_some) {
        return;
    }
    let derived = match (&values[id], &values[session]) {
        (Some(Value::Text(id)), Some(Value::Text(sid))) => id
            .strip_prefix(sid.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split_once('-'))
            .filter(|(ms, e)| {
                !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()) && !e.is_empty()
            })
            .map(|(_, e)| e.to_string()),
        _ => None,
    };
    if let Some(e) = derived {
        values[event] = Some(Value::Text(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn car_columns_sit_where_the_derivation_reads_them() {
        assert_eq!(
            (
                CAR.index_of("car_id"),
                CAR.index_of("session_id"),
                CAR.index_of("event")
            ),
            (Some(0), Some(1), Some(2))
        );
    }

    #[test]
    fn a_cars_event_comes_from_its_id() {
        let text = |s: &str| Some(Value::Text(s.into()));
        let sid = "74d98c29-0000-4e1e-81fa-0ce0ae5a0000";
        let mut row = vec![
            text(&format!("{sid}-1612238769933-ivr-connected")),
            text(sid),
            None,
        ];
        car_event_from_id(&mut row);
        assert_eq!(row[2], text("ivr-connected"));
        // A given event is kept; an id of another form derives nothing.
        let mut row = vec![text(&format!("{sid}-1-new")), text(sid), text("parked")];
        car_event_from_id(&mut row);
        assert_eq!(row[2], text("parked"));
        let (x, empty) = (format!("{sid}-x1-new"), format!("{sid}-123-"));
        for id in ["other-id", x.as_str(), empty.as_str()] {
            let mut row = vec![text(id), text(sid), None];
            car_event_from_id(&mut row);
            assert_eq!(row[2], None, "{id}");
        }
    }
}
