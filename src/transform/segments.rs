//! `task_segments`: each capture segment with its task's attributes.
//!
//! A left join on `task_id` done with Arrow's `take`: the task columns are gathered by
//! index, never copied row by row. A segment whose task is unknown keeps null attributes
//! rather than being dropped.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::error::ArrowError;

use crate::schema::ts;

/// Segment columns kept, in order.
const SEGMENT_COLUMNS: [&str; 10] = [
    "capture_id",
    "task_id",
    "seq",
    "start_time",
    "stop_time",
    "duration_ms",
    "call_type",
    "agent_id",
    "audio_uri",
    "audio_status",
];

/// Task columns joined on, with their names in `task_segments`.
const TASK_COLUMNS: [(&str, &str); 10] = [
    ("created_time", "task_created_time"),
    ("status", "task_status"),
    ("channel_type", "channel_type"),
    ("direction", "direction"),
    ("origin", "ani"),
    ("destination", "dnis"),
    ("queue_id", "queue_id"),
    ("queue_name", "queue_name"),
    ("owner_id", "owner_id"),
    ("owner_name", "owner_name"),
];

pub fn task_segments_schema() -> SchemaRef {
    let seg = crate::source::webex::tables::segments_schema();
    let task = crate::source::webex::tables::tasks_schema();
    let mut fields: Vec<Field> = SEGMENT_COLUMNS
        .iter()
        .filter_map(|n| seg.field_with_name(n).ok().cloned())
        .collect();
    for (from, to) in TASK_COLUMNS {
        if let Ok(f) = task.field_with_name(from) {
            // Left join: every joined column can be null.
            fields.push(if from == "created_time" {
                ts(to, true)
            } else {
                f.clone().with_name(to).with_nullable(true)
            });
        }
    }
    Arc::new(Schema::new(fields))
}

fn column(batch: &RecordBatch, name: &str) -> Result<ArrayRef, ArrowError> {
    batch
        .column_by_name(name)
        .cloned()
        .ok_or_else(|| ArrowError::SchemaError(format!("missing column {name}")))
}

/// Joins `segments` (webex_segments) to `tasks` (webex_tasks).
pub fn join(segments: &RecordBatch, tasks: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let task_ids = column(tasks, "task_id")?;
    let task_ids = task_ids.as_string::<i32>();
    let index: HashMap<&str, u32, ahash::RandomState> = (0..task_ids.len())
        .map(|i| (task_ids.value(i), i as u32))
        .collect();
    let seg_task = column(segments, "task_id")?;
    let seg_task = seg_task.as_string::<i32>();
    let positions: UInt32Array = (0..seg_task.len())
        .map(|i| index.get(seg_task.value(i)).copied())
        .collect();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(SEGMENT_COLUMNS.len() + TASK_COLUMNS.len());
    for name in SEGMENT_COLUMNS {
        cols.push(column(segments, name)?);
    }
    for (from, _) in TASK_COLUMNS {
        cols.push(take(column(tasks, from)?.as_ref(), &positions, None)?);
    }
    RecordBatch::try_new(task_segments_schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::audio::AudioState;
    use crate::source::webex::model::{Recording, RecordingAttributes, Task};
    use crate::source::webex::tables::{segments_batch, tasks_batch, RecordingRow};

    fn task(id: &str, queue: &str) -> Task {
        serde_json::from_value(serde_json::json!({"id": id, "attributes": {
            "createdTime": 1_760_000_000_000i64, "queue": {"id": "q", "name": queue},
            "origin": "+1555", "direction": "inbound"}}))
        .unwrap()
    }

    fn seg(task: &str, id: &str, start: i64) -> RecordingRow {
        RecordingRow {
            task_id: task.into(),
            task_created_ms: 1_760_000_000_000,
            recording: Recording {
                id: id.into(),
                segment: true,
                attributes: RecordingAttributes {
                    file_name: None,
                    file_path: "x".into(),
                    start_time: Some(start),
                    stop_time: Some(start + 10),
                    participants: vec!["agent-1".into(), "+1555****".into()],
                    channel1: None,
                    channel2: None,
                    call_type: Some("main".into()),
                    sensitive: None,
                    extra: Default::default(),
                },
            },
            audio: AudioState {
                status: "stored",
                uri: Some("u".into()),
                bytes: None,
                sha256: None,
                error: None,
                reused: false,
            },
        }
    }

    #[test]
    fn joins_and_keeps_orphans() {
        let (tasks, _) = tasks_batch(&[task("t1", "Support"), task("t2", "Sales")], None);
        let (segs, _) = segments_batch(&[
            seg("t2", "s2", 5),
            seg("t1", "s1b", 9),
            seg("t1", "s1a", 1),
            seg("tx", "o", 1),
        ]);
        let out = join(&segs, &tasks).unwrap();
        assert_eq!(out.num_rows(), 4);
        let ids = out
            .column_by_name("capture_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let queues = out
            .column_by_name("queue_name")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let seq = out
            .column_by_name("seq")
            .unwrap()
            .as_primitive::<arrow::datatypes::Int32Type>()
            .clone();
        let agent = out
            .column_by_name("agent_id")
            .unwrap()
            .as_string::<i32>()
            .clone();
        let got: Vec<_> = (0..4)
            .map(|i| {
                (
                    ids.value(i),
                    queues.is_valid(i).then(|| queues.value(i)),
                    seq.value(i),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("s1a", Some("Support"), 1),
                ("s1b", Some("Support"), 2),
                ("s2", Some("Sales"), 1),
                ("o", None, 1)
            ]
        );
        assert_eq!(agent.value(0), "agent-1");
    }
}
