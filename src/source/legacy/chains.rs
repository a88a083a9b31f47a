//! `activity_chains`: each session's activities (CARs) in order, with where they came from
//! and where they went.
//!
//! A chain should start with `new`, end with `ended`, and each activity should begin where
//! the previous one ended. Real data breaks these rules (lost events, clock skew, sessions
//! still running), so breaks are flagged in `anomaly` and the rows are always kept.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int32Builder, Int64Builder, RecordBatch, StringArray, StringBuilder,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Schema, SchemaRef, TimestampMicrosecondType};
use arrow::error::ArrowError;

use crate::schema::{field, ts, utf8, TableDef};

/// CAR columns copied into the chain as they are (after sorting).
const COPIED: [&str; 6] = [
    "agent_id",
    "agent_name",
    "queue_id",
    "queue_name",
    "team_name",
    "entrypoint_name",
];

/// `activity_chains`.
pub static ACTIVITY_CHAINS: TableDef = TableDef {
    name: "activity_chains",
    schema: activity_chains_schema,
    unique_columns: &["car_id", "start_time", "duration_ms"],
    keys: &["session_id", "seq", "event"],
    docs: "activity in its session's chain: `seq` from 1, `prev_state`/`next_state`, `anomaly`",
};

/// The `legacy_activity_chains` schema: one row per session, its activities in order.
pub fn activity_chains_schema() -> SchemaRef {
    let mut fields = vec![
        utf8("session_id", false),
        field("seq", DataType::Int32, false),
        utf8("car_id", false),
        utf8("event", false),
        utf8("state", true),
        ts("start_time", false),
        ts("end_time", true),
        field("duration_ms", DataType::Int64, true),
    ];
    fields.extend(COPIED.iter().map(|c| utf8(c, true)));
    fields.extend([
        utf8("prev_state", true),
        utf8("next_state", true),
        utf8("anomaly", true),
    ]);
    Arc::new(Schema::new(fields))
}

fn rank(event: &str) -> u8 {
    match event {
        "new" => 0,
        "ended" => 2,
        _ => 1,
    }
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, ArrowError> {
    Ok(b.column(b.schema().index_of(name)?))
}

/// Builds the chains from a `legacy_car` batch.
pub fn build(cars: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let sorted = sort(cars)?;
    let n = sorted.num_rows();
    let session = col(&sorted, "session_id")?.as_string::<i32>();
    let event = col(&sorted, "event")?.as_string::<i32>();
    let state = col(&sorted, "state")?.as_string::<i32>();
    let start = col(&sorted, "cstts")?.as_primitive::<TimestampMicrosecondType>();
    let end = col(&sorted, "cetts")?.as_primitive::<TimestampMicrosecondType>();
    let given = col(&sorted, "duration_ms")?.as_primitive::<arrow::datatypes::Int64Type>();

    // A state is what the API calls it, or the event's name when the state is missing.
    let state_of = |i: usize| -> &str {
        if state.is_null(i) {
            event.value(i)
        } else {
            state.value(i)
        }
    };
    let mut seq = Int32Builder::with_capacity(n);
    let mut duration = Int64Builder::with_capacity(n);
    let mut prev = StringBuilder::new();
    let mut next = StringBuilder::new();
    let mut anomaly = StringBuilder::new();
    let mut k = 0;
    for i in 0..n {
        let first = i == 0 || session.value(i) != session.value(i - 1);
        let last = i + 1 == n || session.value(i) != session.value(i + 1);
        k = if first { 1 } else { k + 1 };
        seq.append_value(k);
        duration.append_option(if given.is_null(i) {
            (!end.is_null(i)).then(|| (end.value(i) - start.value(i)) / 1000)
        } else {
            Some(given.value(i))
        });
        prev.append_option((!first).then(|| state_of(i - 1)));
        next.append_option((!last).then(|| state_of(i + 1)));
        let mut flags: Vec<&str> = Vec::new();
        if first && event.value(i) != "new" {
            flags.push("no_new_start");
        }
        if !first {
            if end.is_null(i - 1) {
                flags.push("gap");
            } else if start.value(i) < end.value(i - 1) {
                flags.push("overlap");
            } else if start.value(i) > end.value(i - 1) {
                flags.push("gap");
            }
        }
        if last && event.value(i) != "ended" {
            flags.push("no_ended");
        }
        anomaly.append_option((!flags.is_empty()).then(|| flags.join(",")));
    }

    let mut columns: Vec<ArrayRef> = vec![
        col(&sorted, "session_id")?.clone(),
        Arc::new(seq.finish()),
        col(&sorted, "car_id")?.clone(),
        col(&sorted, "event")?.clone(),
        Arc::new(StringArray::from_iter((0..n).map(|i| Some(state_of(i))))),
        col(&sorted, "cstts")?.clone(),
        col(&sorted, "cetts")?.clone(),
        Arc::new(duration.finish()),
    ];
    for c in COPIED {
        columns.push(col(&sorted, c)?.clone());
    }
    columns.extend([
        Arc::new(prev.finish()) as ArrayRef,
        Arc::new(next.finish()),
        Arc::new(anomaly.finish()),
    ]);
    RecordBatch::try_new(activity_chains_schema(), columns)
}

/// CARs ordered by session, start time, then `new` first and `ended` last at equal times.
fn sort(cars: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let session = col(cars, "session_id")?.as_string::<i32>();
    let event = col(cars, "event")?.as_string::<i32>();
    let id = col(cars, "car_id")?.as_string::<i32>();
    let start: &TimestampMicrosecondArray = col(cars, "cstts")?.as_primitive();
    let mut idx: Vec<u32> = (0..cars.num_rows() as u32).collect();
    idx.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        (
            session.value(a),
            start.value(a),
            rank(event.value(a)),
            id.value(a),
        )
            .cmp(&(
                session.value(b),
                start.value(b),
                rank(event.value(b)),
                id.value(b),
            ))
    });
    take_record_batch(cars, &UInt32Array::from(idx))
}

/// Rows with at least one anomaly flagged.
pub fn anomalies(chains: &RecordBatch) -> u64 {
    chains
        .column(chains.num_columns() - 1)
        .as_string::<i32>()
        .iter()
        .flatten()
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::legacy::csv::CsvDecoder;
    use crate::source::legacy::tables::CAR;

    fn cars(csv: &str) -> RecordBatch {
        let mut d = CsvDecoder::new(&CAR);
        d.feed(csv.as_bytes()).unwrap();
        d.finish().unwrap()
    }

    #[test]
    fn orders_links_and_flags() {
        // Session s1 is complete but listed out of order; s2 lacks `new`, has a gap and is open.
        let b = cars(
            "id,session,event,state,cstts,cetts,agentName\n\
             s1-30-ended,s1,ended,ended,30,30,\n\
             s1-0-new,s1,new,new,0,10,\n\
             s1-10-connected,s1,connected,talking,10,30,Jane\n\
             s2-5-parked,s2,parked,queued,5,8,\n\
             s2-9-connected,s2,connected,talking,9,,Omar\n",
        );
        let c = build(&b).unwrap();
        let s = |name: &str| {
            let a = c
                .column(c.schema().index_of(name).unwrap())
                .as_string::<i32>();
            (0..c.num_rows())
                .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            s("event").iter().flatten().cloned().collect::<Vec<_>>(),
            ["new", "connected", "ended", "parked", "connected"]
        );
        let seq = c.column(1).as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!(seq.values().to_vec(), [1, 2, 3, 1, 2]);
        assert_eq!(s("prev_state")[1].as_deref(), Some("new"));
        assert_eq!(s("next_state")[1].as_deref(), Some("ended"));
        assert_eq!(s("next_state")[2], None);
        assert_eq!(
            s("anomaly"),
            [
                None,
                None,
                None,
                Some("no_new_start".into()),
                Some("gap,no_ended".into())
            ]
        );
        assert_eq!(anomalies(&c), 2);
        let d = c.column(7).as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(d.value(1), 20, "no duration column: end - start, in ms");
    }
}
