//! A table's Delta schema and a file's column statistics.

use arrow::array::{RecordBatch, StructArray};
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::expressions::ColumnName;
use delta_kernel::schema::{DataType, StructField, StructType};
use delta_kernel_default_engine::stats::collect_stats;

use super::{without_backtrace, DeltaError};
use crate::schema::TableDef;

/// The partition columns every table has, in this order (Hive: `source=…/date=…`).
pub(super) const PARTITION_COLUMNS: [&str; 2] = ["source", "date"];

/// Delta writers keep statistics for the first 32 columns unless told otherwise
/// (`delta.dataSkippingNumIndexedCols`).
const STATS_COLUMNS: usize = 32;

/// The table's Delta schema: its Arrow columns, then `source` (string) and `date` (date).
pub(super) fn table_schema(def: &TableDef) -> Result<StructType, DeltaError> {
    let data = StructType::try_from_arrow((def.schema)().as_ref())
        .map_err(|e| DeltaError::kernel(def.name)(e.into()))?;
    let partitions = [
        StructField::nullable(PARTITION_COLUMNS[0], DataType::STRING),
        StructField::nullable(PARTITION_COLUMNS[1], DataType::DATE),
    ];
    StructType::try_new(data.fields().cloned().chain(partitions))
        .map_err(DeltaError::kernel(def.name))
}

/// `batch`'s statistics in the layout of an `add` action's `stats`: `numRecords`, and the
/// null count, minimum and maximum of each of its first 32 primitive columns.
pub fn file_stats(batch: &RecordBatch) -> Result<StructArray, DeltaError> {
    let schema = StructType::try_from_arrow(batch.schema().as_ref())
        .map_err(|e| DeltaError::Stats(Box::new(without_backtrace(e.into()))))?;
    let columns: Vec<ColumnName> = schema
        .fields()
        .filter(|f| matches!(f.data_type(), DataType::Primitive(_)))
        .take(STATS_COLUMNS)
        .map(|f| ColumnName::new([f.name().clone()]))
        .collect();
    collect_stats(batch, &columns, &schema)
        .map_err(|e| DeltaError::Stats(Box::new(without_backtrace(e))))
}
