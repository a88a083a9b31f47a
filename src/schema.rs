//! Column conventions and the registry of output tables.
//!
//! Timestamps are `Timestamp(Microsecond, UTC)`, durations are ms in Int64, names are
//! snake_case. `schemas/{table}.json` holds each table's schema as data; `tests/schemas.rs`
//! fails when the code and the files differ (regenerate with `UPDATE_SCHEMAS=1`).

use std::sync::Arc;

use arrow::array::{new_null_array, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use chrono::{NaiveDate, TimeZone, Utc};

/// A field of any type.
pub fn field(name: &str, dt: DataType, nullable: bool) -> Field {
    Field::new(name, dt, nullable)
}

/// A UTF-8 field.
pub fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// The timestamp type of every table: microseconds, UTC.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

/// A timestamp field.
pub fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, ts_type(), nullable)
}

/// A nullable list of strings.
pub fn list_utf8(name: &str) -> Field {
    Field::new(
        name,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        true,
    )
}

/// `batch`, written under an older version of its table's schema, in the table's current
/// `schema`: columns found by name, columns added since as nulls (a column is only ever
/// added, nullable, and never changes type). Rows read back from a window's files are
/// merged with new ones this way.
pub fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => Ok(c.clone()),
            None if f.is_nullable() => Ok(new_null_array(f.data_type(), batch.num_rows())),
            None => Err(ArrowError::SchemaError(format!(
                "column {} is missing and may not be null",
                f.name()
            ))),
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// The UTC date of an epoch-ms time: the Hive `date=` partition of a row.
pub fn day_of_ms(ms: i64) -> NaiveDate {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// A table a source writes, declared once: the Parquet writer, `schemas/`, `ccetl query`'s
/// views and `state rebuild` all read it, so a new table is one definition.
#[derive(Debug)]
pub struct TableDef {
    /// The table's name: its directory in the warehouse and its view in `ccetl query`.
    pub name: &'static str,
    /// Its Arrow schema (the partition columns `source` and `date` are not in it).
    pub schema: fn() -> SchemaRef,
    /// Columns whose values (nearly) every row has its own of — ids, file names, object
    /// URIs and hashes, times and durations — which the writer encodes without a
    /// dictionary: a dictionary of values that do not repeat is a hash table built to be
    /// thrown away (the metadata bench's warehouse is 44.0 MB instead of 49.9 without it,
    /// for ~1.5% less CPU).
    pub unique_columns: &'static [&'static str],
    /// The columns that together name a row.
    pub keys: &'static [&'static str],
    /// One line for analysts: what a row is.
    pub docs: &'static str,
}

#[derive(serde::Serialize)]
struct SchemaDoc<'a> {
    table: &'a str,
    description: &'a str,
    key: &'a [&'a str],
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

/// A table's schema as stable, reviewable JSON:
/// `{"table", "description", "partitioning", "columns": [{"name","type","nullable"}]}`.
pub fn to_json(table: &TableDef) -> String {
    let schema = (table.schema)();
    let doc = SchemaDoc {
        table: table.name,
        description: table.docs,
        key: table.keys,
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

#[cfg(test)]
mod conform_tests {
    use super::*;
    use arrow::array::{Array, AsArray, StringArray};
    use arrow::datatypes::Schema;

    #[test]
    fn rows_of_an_older_schema_gain_the_columns_added_since_as_nulls() {
        let old = Arc::new(Schema::new(vec![
            utf8("task_id", false),
            utf8("text", false),
        ]));
        let batch = RecordBatch::try_new(
            old,
            vec![
                Arc::new(StringArray::from(vec!["t1"])),
                Arc::new(StringArray::from(vec!["hi"])),
            ],
        )
        .unwrap();
        let now = Arc::new(Schema::new(vec![
            utf8("task_id", false),
            utf8("text", false),
            utf8("direction", true),
            list_utf8("attachments"),
        ]));
        let got = conform(&batch, &now).unwrap();
        assert_eq!(got.schema(), now);
        assert_eq!(got.column(1).as_string::<i32>().value(0), "hi");
        assert!(got.column(2).is_null(0) && got.column(3).is_null(0));
        let strict = Arc::new(Schema::new(vec![
            utf8("task_id", false),
            utf8("seq", false),
        ]));
        assert!(
            conform(&batch, &strict).is_err(),
            "a required column is not made up"
        );
    }
}
