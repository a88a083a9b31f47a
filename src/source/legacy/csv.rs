//! Streaming CSV → Arrow for the legacy reporting API.
//!
//! Bytes go in as they arrive from the network (`feed`), records come out of `csv_core`
//! straight into Arrow builders: no whole-body buffer, no per-row structs. Each response
//! carries its own header, so columns may appear or disappear between responses: known
//! columns are matched by name (case-insensitive), missing ones become nulls and unknown ones
//! are kept as a JSON object in `extra`. RFC 4180 quoting, CRLF and a UTF-8 BOM are accepted;
//! anything else that cannot be read names its row, line and column.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use csv_core::{ReadRecordResult, Reader};

use crate::schema::{field, ts, utf8};

/// No single record may be longer than this (a runaway quote or an absurd field).
pub const MAX_RECORD_BYTES: usize = 4 << 20;
/// Latest epoch-ms value accepted (year 3000): larger numbers are not timestamps.
const MAX_EPOCH_MS: i64 = 32_503_680_000_000;

/// How a column's text is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColKind {
    /// Kept as text.
    Text,
    /// Epoch milliseconds → `Timestamp(µs, UTC)`.
    EpochMs,
    /// A whole number (durations in ms, counts) → Int64.
    Int,
}

/// One known column: its CSV header, its table column, its type.
#[derive(Debug, Clone, Copy)]
pub struct ColSpec {
    /// The header as the API writes it.
    pub header: &'static str,
    /// The column name in the table.
    pub name: &'static str,
    /// How its values decode.
    pub kind: ColKind,
    /// A row without it is refused (and the column is not nullable).
    pub required: bool,
}

/// A table decoded from CSV: known columns in order, then `extra`.
#[derive(Debug)]
pub struct TableSpec {
    /// The table it becomes.
    pub table: &'static str,
    /// Its known columns, in table order.
    pub columns: &'static [ColSpec],
    /// Columns a row can do without, because they are derived from confirmed ones.
    pub derive: Option<Derive>,
}

/// Required columns whose names are guesses, and how a row missing them gets their values
/// from the columns it has (run before the required values are checked).
#[derive(Debug)]
pub struct Derive {
    /// The CSV headers `fill` can supply: their absence from a header is not an error.
    pub headers: &'static [&'static str],
    /// Fills the derived columns of a row from the columns it has.
    pub fill: fn(&mut [Option<Value>]),
}

impl TableSpec {
    /// The Arrow schema: the known columns, then `extra`.
    pub fn schema(&self) -> SchemaRef {
        let mut fields: Vec<_> = self
            .columns
            .iter()
            .map(|c| match c.kind {
                ColKind::Text => utf8(c.name, !c.required),
                ColKind::EpochMs => ts(c.name, !c.required),
                ColKind::Int => field(c.name, DataType::Int64, !c.required),
            })
            .collect();
        fields.push(utf8("extra", true));
        Arc::new(Schema::new(fields))
    }

    /// The position of a column by table name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// Why a CSV body was refused; rows and lines are 1-based, for the user to find them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsvError {
    /// The header row is missing a required column or repeats one.
    #[error("CSV header: {0}")]
    Header(String),
    /// A value does not decode as its column's kind.
    #[error("CSV row {row} (line {line}), column '{column}': {message}")]
    #[allow(missing_docs)] // the message names them
    Value {
        row: u64,
        line: u64,
        column: String,
        message: String,
    },
    /// A row has a stray quote, too many fields or is too long.
    #[error("CSV row {row} (line {line}): {message}")]
    #[allow(missing_docs)] // the message names them
    Shape {
        row: u64,
        line: u64,
        message: String,
    },
}

enum Slot {
    Known(usize),
    Extra(String),
}

enum Builder {
    Text(StringBuilder),
    Ts(TimestampMicrosecondBuilder),
    Int(Int64Builder),
}

/// Incremental decoder for one response body.
pub struct CsvDecoder<'a> {
    spec: &'a TableSpec,
    reader: Reader,
    out: Vec<u8>,
    outlen: usize,
    ends: Vec<usize>,
    endlen: usize,
    /// Bytes held back until we know whether the body starts with a BOM.
    head: Vec<u8>,
    started: bool,
    slots: Option<Vec<Slot>>,
    builders: Vec<Builder>,
    extra: StringBuilder,
    rows: u64,
    line: u64,
    done: bool,
}

impl<'a> CsvDecoder<'a> {
    /// A decoder for one table's CSV.
    pub fn new(spec: &'a TableSpec) -> Self {
        let builders = spec
            .columns
            .iter()
            .map(|c| match c.kind {
                ColKind::Text => Builder::Text(StringBuilder::new()),
                ColKind::EpochMs => {
                    Builder::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
                }
                ColKind::Int => Builder::Int(Int64Builder::new()),
            })
            .collect();
        CsvDecoder {
            spec,
            reader: Reader::new(),
            out: vec![0; 4096],
            outlen: 0,
            ends: vec![0; 64],
            endlen: 0,
            head: Vec::new(),
            started: false,
            slots: None,
            builders,
            extra: StringBuilder::new(),
            rows: 0,
            line: 1,
            done: false,
        }
    }

    /// Data rows decoded so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Decodes the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), CsvError> {
        if chunk.is_empty() {
            return Ok(()); // an empty chunk is not the end of the body
        }
        if !self.started {
            self.head.extend_from_slice(chunk);
            if self.head.len() < 3 {
                return Ok(());
            }
            return self.start();
        }
        self.parse(chunk)
    }

    fn start(&mut self) -> Result<(), CsvError> {
        self.started = true;
        let head = std::mem::take(&mut self.head);
        let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
        if body.is_empty() {
            return Ok(()); // an empty input would mean the end of the body
        }
        self.parse(body)
    }

    /// Ends the body and returns the rows as one batch.
    pub fn finish(mut self) -> Result<RecordBatch, CsvError> {
        if !self.started {
            self.start()?;
        }
        self.parse(&[])?;
        if self.slots.is_none() {
            return Err(CsvError::Header(
                "the response is empty (no header row); expected CSV with a header".into(),
            ));
        }
        let schema = self.spec.schema();
        let mut cols: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    Builder::Text(b) => Arc::new(b.finish()),
                    Builder::Ts(b) => Arc::new(b.finish()),
                    Builder::Int(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        cols.push(Arc::new(self.extra.finish()));
        RecordBatch::try_new(schema, cols).map_err(|e| CsvError::Header(e.to_string()))
    }

    /// Runs the parser over `input`; an empty input marks the end of the body.
    fn parse(&mut self, mut input: &[u8]) -> Result<(), CsvError> {
        let eof = input.is_empty();
        loop {
            // csv_core reads an empty input as the end of the body: only pass one at the end.
            if self.done || (input.is_empty() && !eof) {
                return Ok(());
            }
            let (res, nin, nout, nend) = self.reader.read_record(
                input,
                &mut self.out[self.outlen..],
                &mut self.ends[self.endlen..],
            );
            // Whether this call ended on a `\n` that csv_core has already counted.
            let ended_on_lf = nin > 0 && input[nin - 1] == b'\n';
            input = &input[nin..];
            // csv_core keeps its place within a record across calls: the ends it writes are
            // already offsets from the record's start.
            self.outlen += nout;
            self.endlen += nend;
            match res {
                ReadRecordResult::InputEmpty => {
                    if !eof {
                        return Ok(());
                    }
                }
                ReadRecordResult::OutputFull => {
                    if self.out.len() >= MAX_RECORD_BYTES {
                        return Err(self.shape(format!(
                            "a record longer than {} MiB (an unterminated quote, or an absurd field)",
                            MAX_RECORD_BYTES >> 20
                        )));
                    }
                    let n = self.out.len() * 2;
                    self.out.resize(n, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let n = self.ends.len() * 2;
                    self.ends.resize(n, 0);
                }
                ReadRecordResult::Record => {
                    self.record(ended_on_lf)?;
                    self.outlen = 0;
                    self.endlen = 0;
                }
                ReadRecordResult::End => {
                    self.done = true;
                    return Ok(());
                }
            }
        }
    }

    fn shape(&self, message: String) -> CsvError {
        CsvError::Shape {
            row: self.rows + 1,
            line: self.line,
            message,
        }
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.out[start..self.ends[i]]
    }

    fn record(&mut self, ended_on_lf: bool) -> Result<(), CsvError> {
        // The line the record starts on: csv_core counts every `\n` read so far, including
        // those inside quoted fields and (with LF endings) this record's terminator.
        let embedded = self.out[..self.outlen]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        self.line = self
            .reader
            .line()
            .saturating_sub(embedded + u64::from(ended_on_lf))
            .max(1);
        if self.endlen == 1 && self.ends[0] == 0 {
            Ok(()) // a blank line
        } else if self.slots.is_none() {
            self.header()
        } else {
            self.row()
        }
    }

    fn header(&mut self) -> Result<(), CsvError> {
        let mut slots = Vec::with_capacity(self.endlen);
        let mut seen = vec![false; self.spec.columns.len()];
        for i in 0..self.endlen {
            let name = std::str::from_utf8(self.field(i))
                .map_err(|_| CsvError::Header(format!("column {} is not valid UTF-8", i + 1)))?
                .trim()
                .to_string();
            match self
                .spec
                .columns
                .iter()
                .position(|c| c.header.eq_ignore_ascii_case(&name))
            {
                Some(k) if seen[k] => {
                    return Err(CsvError::Header(format!("column '{name}' appears twice")))
                }
                Some(k) => {
                    seen[k] = true;
                    slots.push(Slot::Known(k));
                }
                None => slots.push(Slot::Extra(name)),
            }
        }
        if let Some(c) = self
            .spec
            .columns
            .iter()
            .zip(&seen)
            .filter(|(c, _)| {
                let derived = self.spec.derive.as_ref().map_or(&[][..], |d| d.headers);
                !derived.contains(&c.header)
            })
            .find(|(c, s)| c.required && !**s)
        {
            return Err(CsvError::Header(format!(
                "required column '{}' is missing (is this a {} response?)",
                c.0.header, self.spec.table
            )));
        }
        self.slots = Some(slots);
        Ok(())
    }

    fn row(&mut self) -> Result<(), CsvError> {
        let slots = self.slots.take().unwrap_or_default();
        let result = self.row_with(&slots);
        self.slots = Some(slots);
        result?;
        self.rows += 1;
        Ok(())
    }

    fn row_with(&mut self, slots: &[Slot]) -> Result<(), CsvError> {
        if self.endlen != slots.len() {
            return Err(self.shape(format!(
                "{} fields where the header has {} (a truncated or malformed row)",
                self.endlen,
                slots.len()
            )));
        }
        // Parse every field before appending any, so a bad row leaves the builders aligned.
        let mut values: Vec<Option<Value>> = (0..self.spec.columns.len()).map(|_| None).collect();
        let mut extra = serde_json::Map::new();
        for (i, slot) in slots.iter().enumerate() {
            let raw = self.field(i);
            let column = match slot {
                Slot::Known(k) => self.spec.columns[*k].header,
                Slot::Extra(name) => name.as_str(),
            };
            let text = std::str::from_utf8(raw)
                .map_err(|_| self.value_error(column, "is not valid UTF-8".into()))?;
            match slot {
                Slot::Extra(name) if !text.is_empty() => {
                    extra.insert(name.clone(), text.into());
                }
                Slot::Extra(_) => {}
                Slot::Known(k) => {
                    let spec = &self.spec.columns[*k];
                    values[*k] = parse_value(spec.kind, text)
                        .map_err(|e| self.value_error(column, e.to_string()))?;
                }
            }
        }
        if let Some(derive) = &self.spec.derive {
            (derive.fill)(&mut values);
        }
        for (spec, v) in self.spec.columns.iter().zip(&values) {
            if spec.required && v.is_none() {
                return Err(self.value_error(spec.header, "is empty but required".into()));
            }
        }
        for (b, v) in self.builders.iter_mut().zip(values) {
            match (b, v) {
                (Builder::Text(b), Some(Value::Text(s))) => b.append_value(s),
                (Builder::Ts(b), Some(Value::Int(ms))) => b.append_value(ms * 1000),
                (Builder::Int(b), Some(Value::Int(n))) => b.append_value(n),
                (Builder::Text(b), _) => b.append_null(),
                (Builder::Ts(b), _) => b.append_null(),
                (Builder::Int(b), _) => b.append_null(),
            }
        }
        if extra.is_empty() {
            self.extra.append_null();
        } else {
            self.extra
                .append_value(serde_json::Value::Object(extra).to_string());
        }
        Ok(())
    }

    fn value_error(&self, column: &str, message: String) -> CsvError {
        CsvError::Value {
            row: self.rows + 1,
            line: self.line,
            column: column.to_string(),
            message,
        }
    }
}

/// A decoded value (epoch ms and whole numbers are both `Int`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A text value.
    Text(String),
    /// An epoch-ms time or a whole number.
    Int(i64),
}

/// Why a cell is not a value of its column's kind; `'…'` shows it escaped and cut short.
#[derive(Debug, thiserror::Error)]
enum BadValue {
    #[error("'{0}' is not a whole number")]
    NotWhole(String),
    #[error("'{0}' is not epoch milliseconds")]
    NotEpochMs(String),
    #[error("{0} is out of range for epoch milliseconds")]
    EpochOutOfRange(i64),
}

fn parse_value(kind: ColKind, text: &str) -> Result<Option<Value>, BadValue> {
    if text.is_empty() {
        return Ok(None);
    }
    // Quoted cells may hold line breaks: shown escaped, so an error stays on one line.
    let short: String = text
        .chars()
        .take(40)
        .flat_map(char::escape_default)
        .collect();
    match kind {
        ColKind::Text => Ok(Some(Value::Text(text.to_string()))),
        ColKind::Int => text
            .trim()
            .parse::<i64>()
            .map(|n| Some(Value::Int(n)))
            .map_err(|_| BadValue::NotWhole(short)),
        ColKind::EpochMs => {
            let n = text
                .trim()
                .parse::<i64>()
                .map_err(|_| BadValue::NotEpochMs(short))?;
            if !(0..=MAX_EPOCH_MS).contains(&n) {
                return Err(BadValue::EpochOutOfRange(n));
            }
            Ok(Some(Value::Int(n)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int64Type, TimestampMicrosecondType};

    const COLS: &[ColSpec] = &[
        ColSpec {
            header: "sid",
            name: "sid",
            kind: ColKind::Text,
            required: true,
        },
        ColSpec {
            header: "cstts",
            name: "cstts",
            kind: ColKind::EpochMs,
            required: true,
        },
        ColSpec {
            header: "queueName",
            name: "queue_name",
            kind: ColKind::Text,
            required: false,
        },
        ColSpec {
            header: "duration",
            name: "duration_ms",
            kind: ColKind::Int,
            required: false,
        },
    ];
    const SPEC: TableSpec = TableSpec {
        table: "t",
        columns: COLS,
        derive: None,
    };

    /// Decodes `body` fed in chunks of `step` bytes.
    fn decode(body: &[u8], step: usize) -> Result<RecordBatch, CsvError> {
        let mut d = CsvDecoder::new(&SPEC);
        for c in body.chunks(step.max(1)) {
            d.feed(c)?;
        }
        d.finish()
    }

    #[test]
    fn quoting_bom_crlf_extra_and_missing_columns() {
        let body = "\u{feff}sid,cstts,wrapUp,queueName\r\n\
                    a,1000,\"x, \"\"y\"\"\",\"Main,\nline\"\r\n\
                    b,2000,,\r\n";
        for step in [1, 2, 3, 7, 1000] {
            let b = decode(body.as_bytes(), step).unwrap();
            assert_eq!(b.num_rows(), 2);
            let q = b.column(2).as_string::<i32>();
            assert_eq!(q.value(0), "Main,\nline");
            assert!(q.is_null(1));
            assert!(b.column(3).is_null(0), "duration absent → null");
            let extra = b.column(4).as_string::<i32>();
            assert_eq!(extra.value(0), r#"{"wrapUp":"x, \"y\""}"#);
            assert!(extra.is_null(1));
            let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
            assert_eq!(ts.value(1), 2_000_000);
        }
    }

    #[test]
    fn errors_name_row_line_and_column() {
        let e = decode(b"sid,cstts,duration\na,1,5\nb,17x,5\n", 4).unwrap_err();
        assert_eq!(
            e,
            CsvError::Value {
                row: 2,
                line: 3,
                column: "cstts".into(),
                message: "'17x' is not epoch milliseconds".into()
            }
        );
        let e = decode(b"sid,cstts,duration\na,1,\"two\nlines\"\n", 5).unwrap_err();
        assert!(
            matches!(e, CsvError::Value { row: 1, line: 2, ref column, .. } if column == "duration"),
            "{e}"
        );
        for step in [1, 2, 5, 100] {
            let e = decode(b"sid,cstts\r\na,1\r\n\"b\r\nc\",x\r\n", step).unwrap_err();
            assert!(
                matches!(
                    e,
                    CsvError::Value {
                        row: 2,
                        line: 3,
                        ..
                    }
                ),
                "CRLF, step {step}: {e}"
            );
        }
        let e = decode(b"sid,cstts\na,1\nb", 3).unwrap_err();
        assert!(
            matches!(
                e,
                CsvError::Shape {
                    row: 2,
                    line: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = decode(b"sid,queueName\na,q\n", 3).unwrap_err();
        assert!(e.to_string().contains("'cstts' is missing"), "{e}");
        let e = decode(b"sid,cstts\n\xff\xfe,1\n", 3).unwrap_err();
        assert!(e.to_string().contains("not valid UTF-8"), "{e}");
        let e = decode(b"sid,cstts\na,\n", 3).unwrap_err();
        assert!(e.to_string().contains("empty but required"), "{e}");
        assert!(decode(b"", 3).is_err());
    }

    #[test]
    fn header_only_is_empty_batch_and_runaway_quote_is_bounded() {
        let b = decode(b"sid,cstts,duration", 2).unwrap();
        assert_eq!(b.num_rows(), 0);
        let mut body = b"sid,cstts\na,\"".to_vec();
        body.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        let e = decode(&body, 1 << 16).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        let b = decode(b"sid,cstts,duration\na,5,-3\n", 1).unwrap();
        assert_eq!(b.column(3).as_primitive::<Int64Type>().value(0), -3);
    }
}
