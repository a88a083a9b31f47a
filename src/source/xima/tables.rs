//! Xima rows as Arrow: `xima_calls` and `xima_recordings` (with where the audio went).

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use chrono::NaiveDate;

use super::model::{Call, Recording};
use crate::schema::{day_of_ms, field, ts, utf8, TableDef};
use crate::sink::audio::{audio_columns, audio_fields, AudioState};

/// `xima_calls`.
pub static CALLS: TableDef = TableDef {
    name: "xima_calls",
    schema: calls_schema,
    unique_columns: &["call_key", "call_id", "start_time"],
    keys: &["call_key"],
    docs: "Xima call (expanded call info): ids, times, direction, caller id, dialed number, account codes, hold time, location, drop event, `recording_count`",
};

/// `xima_recordings`.
pub static RECORDINGS: TableDef = TableDef {
    name: "xima_recordings",
    schema: recordings_schema,
    unique_columns: &[
        "recording_key",
        "call_key",
        "start_time",
        "stop_time",
        "duration_ms",
        "event_id",
        "audio_uri",
        "audio_sha256",
    ],
    keys: &["recording_key", "call_key"],
    docs: "Xima recording with Xima's `status`, party names, skill, agent, size, and the audio columns",
};

/// The `xima_calls` schema: one row per call.
pub fn calls_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("call_key", false),
        utf8("call_id", true),
        field("short_id", DataType::Int64, true),
        utf8("tenant_name", true),
        ts("start_time", true),
        ts("end_time", true),
        utf8("direction", true),
        utf8("caller_id", true),
        utf8("dialed_party_number", true),
        utf8("account_codes", true),
        field("total_hold_duration_ms", DataType::Int64, true),
        utf8("location", true),
        utf8("drop_event_type", true),
        field("recording_count", DataType::Int64, false),
        utf8("extra", true),
    ]))
}

/// The `xima_recordings` schema: one row per recording.
pub fn recordings_schema() -> SchemaRef {
    let mut fields = vec![
        utf8("recording_key", false),
        utf8("call_key", false),
        utf8("tenant_name", true),
        ts("start_time", true),
        // start + duration, so the `recordings` view need not do time arithmetic.
        ts("stop_time", true),
        field("duration_ms", DataType::Int64, true),
        field("size_bytes", DataType::Int64, true),
        field("event_id", DataType::Int64, true),
        field("recording_system_id", DataType::Int64, true),
        utf8("status", true),
        utf8("calling_party", true),
        utf8("receiving_party", true),
        utf8("tag_data", true),
        utf8("call_direction", true),
        utf8("skill", true),
        utf8("agent", true),
    ];
    fields.extend(audio_fields());
    fields.push(utf8("extra", true));
    Arc::new(Schema::new(fields))
}

fn extra(m: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    (!m.is_empty()).then(|| serde_json::Value::Object(m.clone()).to_string())
}

fn ts_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

/// The partition date of a call: the day it started (the window start when unknown).
pub fn call_date(call: &Call, fallback_ms: i64) -> NaiveDate {
    day_of_ms(call.start_time.unwrap_or(fallback_ms))
}

/// A window's calls as a `xima_calls` batch.
pub fn calls_batch(calls: &[Call]) -> Result<RecordBatch, ArrowError> {
    let mut key = StringBuilder::new();
    let mut id = StringBuilder::new();
    let mut short = Int64Builder::new();
    let mut tenant = StringBuilder::new();
    let (mut start, mut end) = (ts_builder(), ts_builder());
    let mut direction = StringBuilder::new();
    let mut caller = StringBuilder::new();
    let mut dialed = StringBuilder::new();
    let mut codes = StringBuilder::new();
    let mut hold = Int64Builder::new();
    let mut location = StringBuilder::new();
    let mut drop = StringBuilder::new();
    let mut count = Int64Builder::new();
    let mut ex = StringBuilder::new();
    for c in calls {
        key.append_value(&c.call_key);
        id.append_option(c.call_id.as_deref());
        short.append_option(c.short_id);
        tenant.append_option(c.tenant_name.as_deref());
        start.append_option(c.start_time.map(|v| v * 1000));
        end.append_option(c.end_time.map(|v| v * 1000));
        direction.append_option(c.direction.as_deref());
        caller.append_option(c.caller_id.as_deref());
        dialed.append_option(c.dialed_party_number.as_deref());
        codes.append_option(
            (!c.account_codes.is_empty())
                .then(|| serde_json::Value::Array(c.account_codes.clone()).to_string()),
        );
        hold.append_option(c.total_hold_duration);
        location.append_option(c.location.as_deref());
        drop.append_option(c.drop_event_type.as_deref());
        count.append_value(c.recordings.len() as i64);
        ex.append_option(extra(&c.extra));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(id.finish()),
        Arc::new(short.finish()),
        Arc::new(tenant.finish()),
        Arc::new(start.finish()),
        Arc::new(end.finish()),
        Arc::new(direction.finish()),
        Arc::new(caller.finish()),
        Arc::new(dialed.finish()),
        Arc::new(codes.finish()),
        Arc::new(hold.finish()),
        Arc::new(location.finish()),
        Arc::new(drop.finish()),
        Arc::new(count.finish()),
        Arc::new(ex.finish()),
    ];
    RecordBatch::try_new(calls_schema(), columns)
}

/// A recording with its call and where its audio went.
#[derive(Debug, Clone)]
pub struct RecordingRow {
    /// The call it belongs to.
    pub call_key: String,
    /// Its partition date (the call's start).
    pub date: NaiveDate,
    /// The recording as Xima listed it.
    pub recording: Recording,
    /// Where its audio went.
    pub audio: AudioState,
}

/// A window's recordings as a `xima_recordings` batch.
pub fn recordings_batch(rows: &[RecordingRow]) -> Result<RecordBatch, ArrowError> {
    let mut key = StringBuilder::new();
    let mut call = StringBuilder::new();
    let mut tenant = StringBuilder::new();
    let (mut start, mut stop) = (ts_builder(), ts_builder());
    let mut duration = Int64Builder::new();
    let mut size = Int64Builder::new();
    let mut event = Int64Builder::new();
    let mut system = Int64Builder::new();
    let mut status = StringBuilder::new();
    let mut calling = StringBuilder::new();
    let mut receiving = StringBuilder::new();
    let mut tag = StringBuilder::new();
    let mut direction = StringBuilder::new();
    let mut skill = StringBuilder::new();
    let mut agent = StringBuilder::new();
    let mut ex = StringBuilder::new();
    for row in rows {
        let r = &row.recording;
        key.append_value(&r.recording_key);
        call.append_value(&row.call_key);
        tenant.append_option(r.tenant_name.as_deref());
        start.append_option(r.start_time.map(|v| v * 1000));
        stop.append_option(r.start_time.zip(r.duration).map(|(s, d)| (s + d) * 1000));
        duration.append_option(r.duration);
        size.append_option(r.size);
        event.append_option(r.event_id);
        system.append_option(r.recording_system_id);
        status.append_option(r.status.as_deref());
        calling.append_option(r.calling_party.as_deref());
        receiving.append_option(r.receiving_party.as_deref());
        tag.append_option(r.tag_data.as_deref());
        direction.append_option(r.call_direction.as_deref());
        skill.append_option(r.skill.as_deref());
        agent.append_option(r.agent.as_deref());
        ex.append_option(extra(&r.extra));
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(key.finish()),
        Arc::new(call.finish()),
        Arc::new(tenant.finish()),
        Arc::new(start.finish()),
        Arc::new(stop.finish()),
        Arc::new(duration.finish()),
        Arc::new(size.finish()),
        Arc::new(event.finish()),
        Arc::new(system.finish()),
        Arc::new(status.finish()),
        Arc::new(calling.finish()),
        Arc::new(receiving.finish()),
        Arc::new(tag.finish()),
        Arc::new(direction.finish()),
        Arc::new(skill.finish()),
        Arc::new(agent.finish()),
    ];
    columns.extend(audio_columns(rows.iter().map(|r| &r.audio)));
    columns.push(Arc::new(ex.finish()));
    RecordBatch::try_new(recordings_schema(), columns)
}
