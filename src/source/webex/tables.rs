//! Webex tables' schemas, and `webex_tasks` as Arrow (captures and segments: [`super::captures`]).
//!
//! The schemas here are the contract in `schemas/*.json`; a test fails when they drift.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use chrono::NaiveDate;

use super::model::Task;
use crate::schema::{day_of_ms, field, list_utf8, ts, utf8, TableDef};
use crate::sink::audio::audio_fields;

/// `webex_tasks`.
pub static TASKS: TableDef = TableDef {
    name: "webex_tasks",
    schema: tasks_schema,
    unique_columns: &["task_id", "created_time", "last_updated_time", "ended_time"],
    keys: &["task_id"],
    docs: "task (call)",
};

/// `webex_captures`.
pub static CAPTURES: TableDef = TableDef {
    name: "webex_captures",
    schema: captures_schema,
    unique_columns: &[
        "capture_id",
        "task_id",
        "file_name",
        "start_time",
        "stop_time",
        "duration_ms",
        "audio_uri",
        "audio_sha256",
    ],
    keys: &["capture_id", "task_id", "segment"],
    docs: "recording (stitched and segments), with audio columns",
};

/// `webex_segments`.
pub static SEGMENTS: TableDef = TableDef {
    name: "webex_segments",
    schema: segments_schema,
    unique_columns: &[
        "capture_id",
        "task_id",
        "start_time",
        "stop_time",
        "duration_ms",
        "audio_uri",
    ],
    keys: &["capture_id", "task_id", "seq"],
    docs: "segment recording, numbered `seq` in time order, with its agent",
};

/// The `webex_tasks` schema: one row per task.
pub fn tasks_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("task_id", false),
        utf8("org_id", true),
        utf8("channel_type", true),
        utf8("status", true),
        ts("created_time", false),
        ts("last_updated_time", true),
        ts("ended_time", true),
        field("capture_requested", DataType::Boolean, true),
        utf8("origin", true),
        utf8("destination", true),
        utf8("direction", true),
        utf8("reason_code", true),
        utf8("owner_id", true),
        utf8("owner_name", true),
        utf8("queue_id", true),
        utf8("queue_name", true),
        utf8("extra", true),
    ]))
}

/// The `webex_captures` schema: one row per recording, stitched or segment.
pub fn captures_schema() -> SchemaRef {
    let mut fields = vec![
        utf8("capture_id", false),
        utf8("task_id", false),
        field("segment", DataType::Boolean, false),
        utf8("call_type", true),
        utf8("file_name", true),
        ts("start_time", true),
        ts("stop_time", true),
        field("duration_ms", DataType::Int64, true),
        utf8("channel1", true),
        utf8("channel2", true),
        list_utf8("participants"),
        field("sensitive", DataType::Boolean, true),
    ];
    fields.extend(audio_fields());
    fields.push(utf8("extra", true));
    Arc::new(Schema::new(fields))
}

/// The `webex_segments` schema.
pub fn segments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("capture_id", false),
        utf8("task_id", false),
        field("seq", DataType::Int32, false),
        ts("start_time", true),
        ts("stop_time", true),
        field("duration_ms", DataType::Int64, true),
        utf8("call_type", true),
        utf8("channel1", true),
        utf8("channel2", true),
        utf8("agent_id", true),
        utf8("audio_uri", true),
        utf8("audio_status", false),
    ]))
}

fn json_or_null(m: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    (!m.is_empty()).then(|| serde_json::Value::Object(m.clone()).to_string())
}

/// The builders produce exactly the schema's columns; a mismatch (a bug the tests catch) is
/// the window's error, never a panic.
fn build(schema: SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(schema, columns)
}

/// A builder of UTC microsecond timestamps, the type every time column has.
pub(super) fn ts_builder(cap: usize) -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC")
}

/// `webex_tasks` rows and their partition dates.
pub fn tasks_batch(
    tasks: &[Task],
    org_id: Option<&str>,
) -> Result<(RecordBatch, Vec<NaiveDate>), ArrowError> {
    let n = tasks.len();
    let mut id = StringBuilder::new();
    let mut org = StringBuilder::new();
    let mut channel = StringBuilder::new();
    let mut status = StringBuilder::new();
    let mut created = ts_builder(n);
    let mut updated = ts_builder(n);
    let mut ended = ts_builder(n);
    let mut capture = BooleanBuilder::with_capacity(n);
    let mut origin = StringBuilder::new();
    let mut dest = StringBuilder::new();
    let mut direction = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut owner_id = StringBuilder::new();
    let mut owner_name = StringBuilder::new();
    let mut queue_id = StringBuilder::new();
    let mut queue_name = StringBuilder::new();
    let mut extra = StringBuilder::new();
    let mut dates = Vec::with_capacity(n);
    for t in tasks {
        let a = &t.attributes;
        id.append_value(&t.id);
        org.append_option(org_id);
        channel.append_option(a.channel_type.as_deref());
        status.append_option(a.status.as_deref());
        created.append_value(a.created_time * 1000);
        updated.append_option(a.last_updated_time.map(|v| v * 1000));
        ended.append_option(a.ended_time.map(|v| v * 1000));
        capture.append_option(a.capture_requested);
        origin.append_option(a.origin.as_deref());
        dest.append_option(a.destination.as_deref());
        direction.append_option(a.direction.as_deref());
        reason.append_option(a.reason_code.as_deref());
        owner_id.append_option(a.owner.as_ref().and_then(|o| o.id.as_deref()));
        owner_name.append_option(a.owner.as_ref().and_then(|o| o.name.as_deref()));
        queue_id.append_option(a.queue.as_ref().and_then(|o| o.id.as_deref()));
        queue_name.append_option(a.queue.as_ref().and_then(|o| o.name.as_deref()));
        extra.append_option(json_or_null(&a.extra));
        dates.push(day_of_ms(a.created_time));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(org.finish()),
        Arc::new(channel.finish()),
        Arc::new(status.finish()),
        Arc::new(created.finish()),
        Arc::new(updated.finish()),
        Arc::new(ended.finish()),
        Arc::new(capture.finish()),
        Arc::new(origin.finish()),
        Arc::new(dest.finish()),
        Arc::new(direction.finish()),
        Arc::new(reason.finish()),
        Arc::new(owner_id.finish()),
        Arc::new(owner_name.finish()),
        Arc::new(queue_id.finish()),
        Arc::new(queue_name.finish()),
        Arc::new(extra.finish()),
    ];
    Ok((build(tasks_schema(), cols)?, dates))
}
