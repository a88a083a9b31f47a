//! Column conventions and the registry of output tables.
//!
//! Timestamps are `Timestamp(Microsecond, UTC)`, durations are ms in Int64, names are
//! snake_case. `schemas/{table}.json` holds each table's schema as data; `tests/schemas.rs`
//! fails when the code and the files differ (regenerate with `UPDATE_SCHEMAS=1`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use chrono::{NaiveDate, TimeZone, Utc};

pub fn field(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

pub fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

pub fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, ts_type(), nullable)
}

pub fn list_utf8(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
}

/// The UTC date of an epoch-ms time: the Hive `date=` partition of a row.
pub fn day_of_ms(ms: i64) -> NaiveDate {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Every table ccetl writes, with its schema.
pub fn tables() -> Vec<(&'static str, SchemaRef)> {
    use crate::source::legacy::tables as legacy;
    use crate::source::webex::tables as wx;
    use crate::source::xima::tables as xima;
    vec![
        ("webex_tasks", wx::tasks_schema()),
        ("webex_captures", wx::captures_schema()),
        ("webex_segments", wx::segments_schema()),
        (
            "task_segments",
            crate::transform::segments::task_segments_schema(),
        ),
        ("legacy_csr", legacy::CSR.schema()),
        ("legacy_car", legacy::CAR.schema()),
        (
            "activity_chains",
            crate::transform::chains::activity_chains_schema(),
        ),
        ("xima_calls", xima::calls_schema()),
        ("xima_recordings", xima::recordings_schema()),
    ]
}

#[derive(serde::Serialize)]
struct SchemaDoc<'a> {
    table: &'a str,
    partitioning: [&'a str; 2],
    columns: Vec<ColumnDoc>,
}

#[derive(serde::Serialize)]
struct ColumnDoc {
    name: String,
    #[serde(rename = "type")]
    data_type: String,
    nullable: bool,
}

/// A schema as stable, reviewable JSON: `{"table", "partitioning", "columns": [{"name","type","nullable"}]}`.
pub fn to_json(table: &str, schema: &SchemaRef) -> String {
    let doc = SchemaDoc {
        table,
        partitioning: ["source", "date"],
        columns: schema
            .fields()
            .iter()
            .map(|f| ColumnDoc {
                name: f.name().clone(),
                data_type: type_name(f.data_type()),
                nullable: f.is_nullable(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::Utf8 => "utf8".into(),
        DataType::Boolean => "bool".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => format!("timestamp[us, {tz}]"),
        DataType::List(f) => format!("list<{}>", type_name(f.data_type())),
        other => format!("{other}"),
    }
}
