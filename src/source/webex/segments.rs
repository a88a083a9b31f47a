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

use crate::schema::{ts, TableDef};

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

/// `task_segments`.
pub static TASK_SEGMENTS: TableDef = TableDef {
    name: "task_segments",
    schema: task_segments_schema,
    unique_columns: &[
        "capture_id",
        "task_id",
        "start_time",
        "stop_time",
        "duration_ms",
        "audio_uri",
        "task_created_time",
    ],
    keys: &["capture_id", "task_id"],
    docs: "segment joined to its task's queue, agent, direction, ANI/DNIS, times",
};

/// The `webex_task_segments` schema: each segment joined to its task.
pub fn task_segments_schema() -> SchemaRef {
    let seg = super::tables::segments_schema();
    let task = super::tables::tasks_schema();
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
    use crate::source::webex::captures::{page_batch, segments_table};
    use crate::source::webex::model::Task;
    use crate::source::webex::tables::tasks_batch;
    use crate::source::webex::WindowCaptures;

    fn task(id: &str, queue: &str) -> Task {
        serde_json::from_value(serde_json::json!({"id": id, "attributes": {
            "createdTime": 1_760_000_000_000i64, "queue": {"id": "q", "name": queue},
            "origin": "+1555", "direction": "inbound"}}))
        .unwrap()
    }

    /// A captures response holding segments `(task, recording, start)`.
    fn page(segs: &[(&str, &str, i64)]) -> arrow::array::RecordBatch {
        let data: Vec<_> = segs
            .iter()
            .map(|(task, id, start)| {
                serde_json::json!({"taskId": task, "recording": [{"id": id, "segment": true,
                "attributes": {"filePath": "https://x/y", "startTime": start, "stopTime": start + 10,
                "participants": ["+1555****", "agent-1"], "callType": "main"}}]})
            })
            .collect();
        let body = serde_json::json!({ "data": data }).to_string();
        page_batch(serde_json::from_str(&body).unwrap(), false).unwrap()
    }

    /// The segments of `pages`, joined into one window, every recording stored.
    fn segments_of(pages: &[arrow::array::RecordBatch]) -> RecordBatch {
        let created = [("t1", 1_760_000_000_000), ("t2", 1_760_000_000_000)]
            .into_iter()
            .collect();
        let window = WindowCaptures::new(pages, &created).unwrap();
        let stored = AudioState {
            status: crate::state::AudioStatus::Stored,
            uri: Some("u".into()),
            bytes: None,
            sha256: None,
            error: None,
            reused: false,
        };
        let (captures, dates) = window.captures_table(&vec![stored; window.len()]).unwrap();
        let (segs, seg_dates) = segments_table(&captures, &dates).unwrap();
        assert_eq!(seg_dates.len(), segs.num_rows());
        segs
    }

    #[test]
    fn joins_and_keeps_orphans() {
        let (tasks, _) = tasks_batch(&[task("t1", "Support"), task("t2", "Sales")], None).unwrap();
        // Pages out of (task, recording) order: the window sorts them.
        let segs = segments_of(&[
            page(&[("t2", "s2", 5), ("tx", "o", 1)]),
            page(&[("t1", "s1b", 9), ("t1", "s1a", 1)]),
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
