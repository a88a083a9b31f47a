//! The legacy tables: `legacy_csr` (one row per contact session) and `legacy_car` (one row
//! per activity in a session). Each is decoded from CSV by the spec below, so the spec *is*
//! the schema (`schemas/*.json`). API names become snake_case; durations are `*_ms`.

use super::csv::{ColKind, ColSpec, TableSpec};

const fn col(header: &'static str, name: &'static str, kind: ColKind, required: bool) -> ColSpec {
    ColSpec {
        header,
        name,
        kind,
        required,
    }
}

use ColKind::{EpochMs, Int, Text};

pub const CSR: TableSpec = TableSpec {
    table: "legacy_csr",
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

pub const CAR: TableSpec = TableSpec {
    table: "legacy_car",
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
