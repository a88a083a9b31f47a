//! A window's captures as Arrow columns, from the responses to the tables.
//!
//! Each captures response is decoded borrowing from its body and appended straight to
//! column builders ([`page_batch`]): a window holds tens of thousands of recordings, and
//! owned structs cost a string per field to allocate, move and free (issue 8: ~40% of the
//! captures' CPU, and pages of fresh memory faulted in per window). The pages, asked for in
//! task-id order, are joined into one [`WindowCaptures`]; the audio copy reads its id and URL
//! columns; `webex_captures` is those columns with the audio's outcome, and `webex_segments`
//! is taken from it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Builder,
    Int64Builder, ListArray, ListBuilder, RecordBatch, StringArray, StringBuilder, UInt32Array,
};
use arrow::compute::{concat_batches, lexsort_to_indices, take, take_record_batch, SortColumn};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, TimestampMicrosecondType};
use arrow::error::ArrowError;
use chrono::NaiveDate;

use super::model::{CapturePage, Recording};
use super::tables::{captures_schema, segments_schema, ts_builder};
use crate::schema::{day_of_ms, utf8};
use crate::sink::audio::{audio_columns, AudioState};

/// Where each column sits in [`page_schema`], looked up by name once: the schema is
/// defined in `tables.rs`, and its order may change there without breaking this file.
pub struct Cols {
    /// `capture_id`.
    pub id: usize,
    /// `task_id`.
    pub task: usize,
    /// `segment`.
    pub segment: usize,
    /// `file_name`.
    pub file_name: usize,
    /// `start_time`.
    pub start: usize,
    /// `extra`.
    pub extra: usize,
    /// `sensitive`.
    pub sensitive: usize,
    /// The pre-signed URL, which no table holds.
    pub url: usize,
    /// How many leading columns `webex_captures` takes as they are (those before the audio's).
    pub own: usize,
}

/// The column positions of [`page_schema`].
pub fn col() -> &'static Cols {
    static COLS: LazyLock<Cols> = LazyLock::new(|| {
        let schema = page_schema();
        // Both schemas are static and name every one of these (test `columns_are_found_by_name`).
        let at = |name: &str| {
            schema
                .index_of(name)
                .unwrap_or_else(|_| panic!("the captures page has no column {name}"))
        };
        Cols {
            id: at("capture_id"),
            task: at("task_id"),
            segment: at("segment"),
            file_name: at("file_name"),
            start: at("start_time"),
            extra: at("extra"),
            sensitive: at("sensitive"),
            url: at(URL_COLUMN),
            own: own_columns(),
        }
    });
    &COLS
}

/// The page column holding each recording's pre-signed URL.
const URL_COLUMN: &str = "file_path";

/// `webex_captures`' leading columns, up to its first audio column: the page has them as
/// they are, then `extra`, then the URL.
fn own_columns() -> usize {
    let table = captures_schema();
    table
        .fields()
        .iter()
        .position(|f| f.name() == "audio_uri")
        .unwrap_or(table.fields().len())
}

/// A captures response as columns: `webex_captures` without the audio columns, plus the
/// pre-signed URL (null with audio off), which no table holds.
pub fn page_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let table = captures_schema();
        let own = table.fields().iter().take(own_columns());
        let extra = table.fields().iter().filter(|f| f.name() == "extra");
        let url = Arc::new(utf8(URL_COLUMN, true));
        let fields: Vec<FieldRef> = own.chain(extra).cloned().chain([url]).collect();
        Arc::new(Schema::new(fields))
    });
    SCHEMA.clone()
}

/// One response's recordings as columns, in (task id, recording id) order; tasks without
/// recordings have no rows. `urls` keeps the pre-signed URLs (audio on).
pub fn page_batch(mut page: CapturePage<'_>, urls: bool) -> Result<RecordBatch, ArrowError> {
    for t in &mut page.data {
        t.recording.retain(|r| {
            if r.id.is_none() {
                tracing::warn!(task_id = &*t.task_id, "A recording without an id was left out (POST /v1/captures/query answered it so).");
            } else if r.attributes.start_time.is_none() {
                tracing::warn!(task_id = &*t.task_id, recording = r.id.as_deref(), "A recording without a startTime: kept, its start and duration null.");
            }
            r.id.is_some()
        });
    }
    page.data.retain(|t| !t.recording.is_empty());
    page.data.sort_unstable_by(|a, b| a.task_id.cmp(&b.task_id));
    let recordings = || page.data.iter().flat_map(|t| t.recording.iter());
    let n = recordings().count();
    // Sized exactly: a finished array keeps its builder's capacity until the window's pages
    // are joined, and a window holds thousands of pages.
    let size = |value: for<'r> fn(&'r Recording<'_>) -> Option<&'r str>| {
        (
            n,
            recordings().filter_map(value).map(str::len).sum::<usize>(),
        )
    };
    let builder = |(n, bytes): (usize, usize)| StringBuilder::with_capacity(n, bytes);
    let task_bytes = page
        .data
        .iter()
        .map(|t| t.task_id.len() * t.recording.len())
        .sum();
    let mut id = builder(size(|r| r.id.as_deref()));
    let mut task = builder((n, task_bytes));
    let mut segment = BooleanBuilder::with_capacity(n);
    let mut call_type = builder(size(|r| r.attributes.call_type.as_deref()));
    let mut file_name = builder(size(|r| r.attributes.file_name.as_deref()));
    let mut start = ts_builder(n);
    let mut stop = ts_builder(n);
    let mut duration = Int64Builder::with_capacity(n);
    let mut ch1 = builder(size(|r| r.attributes.channel1.as_deref()));
    let mut ch2 = builder(size(|r| r.attributes.channel2.as_deref()));
    let names = recordings().flat_map(|r| r.attributes.participants.iter());
    let (names, name_bytes) = names.fold((0, 0), |(n, b), p| (n + 1, b + p.len()));
    let mut participants = ListBuilder::with_capacity(builder((names, name_bytes)), n)
        .with_field(Arc::new(Field::new("item", DataType::Utf8, true)));
    let mut sensitive = BooleanBuilder::with_capacity(n);
    let mut extra = StringBuilder::new();
    let mut url = match urls {
        true => builder(size(|r| r.attributes.file_path.as_deref())),
        false => StringBuilder::new(),
    };
    for t in &mut page.data {
        t.recording.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        for Recording {
            id: rec_id,
            segment: is_segment,
            attributes: a,
        } in &t.recording
        {
            // Rows without an id were left out above.
            id.append_option(rec_id.as_deref());
            task.append_value(&*t.task_id);
            segment.append_value(*is_segment);
            call_type.append_option(a.call_type.as_deref());
            file_name.append_option(a.file_name.as_deref());
            start.append_option(a.start_time.map(|v| v * 1000));
            stop.append_option(a.stop_time.map(|v| v * 1000));
            duration.append_option(a.start_time.zip(a.stop_time).map(|(s, e)| e - s));
            ch1.append_option(a.channel1.as_deref());
            ch2.append_option(a.channel2.as_deref());
            for p in &a.participants {
                participants.values().append_value(&**p);
            }
            participants.append(true);
            sensitive.append_option(a.sensitive);
            extra.append_option(
                (!a.extra.is_empty()).then(|| serde_json::Value::from(a.extra.clone()).to_string()),
            );
            url.append_option(a.file_path.as_deref().filter(|_| urls));
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(task.finish()),
        Arc::new(segment.finish()),
        Arc::new(call_type.finish()),
        Arc::new(file_name.finish()),
        Arc::new(start.finish()),
        Arc::new(stop.finish()),
        Arc::new(duration.finish()),
        Arc::new(ch1.finish()),
        Arc::new(ch2.finish()),
        Arc::new(participants.finish()),
        Arc::new(sensitive.finish()),
        Arc::new(extra.finish()),
        Arc::new(url.finish()),
    ];
    // The builders above produce exactly the schema's columns; a mismatch is a bug caught by tests.
    RecordBatch::try_new(page_schema(), cols)
}

/// One page of both kinds (the stitched recordings and the segments of the same tasks), in
/// (task id, recording id) order. A segment whose id is its task's stitched recording's (a
/// one-leg call may answer so: the stitched id is the task id) is left out, so that no two
/// rows share a recording id, an audio object or a ledger entry.
pub fn join_kinds(
    stitched: &RecordBatch,
    segments: &RecordBatch,
) -> Result<RecordBatch, ArrowError> {
    let (ids, tasks) = (
        stitched.column(col().id).as_string::<i32>(),
        stitched.column(col().task).as_string::<i32>(),
    );
    let taken: std::collections::HashSet<(&str, &str), ahash::RandomState> = (0..stitched
        .num_rows())
        .map(|i| (tasks.value(i), ids.value(i)))
        .collect();
    let (seg_ids, seg_tasks) = (
        segments.column(col().id).as_string::<i32>(),
        segments.column(col().task).as_string::<i32>(),
    );
    let keep: BooleanArray = (0..segments.num_rows())
        .map(|i| {
            let clash = taken.contains(&(seg_tasks.value(i), seg_ids.value(i)));
            if clash {
                tracing::warn!(task_id = seg_tasks.value(i), recording = seg_ids.value(i), "A segment has its stitched recording's id; kept as the stitched recording only.");
            }
            Some(!clash)
        })
        .collect();
    let segments = arrow::compute::filter_record_batch(segments, &keep)?;
    let both = concat_batches(&page_schema(), [stitched, &segments])?;
    let sort = |i: usize| SortColumn {
        values: both.column(i).clone(),
        options: None,
    };
    let order = lexsort_to_indices(&[sort(col().task), sort(col().id)], None)?;
    take_record_batch(&both, &order)
}

/// Pages joined into one batch at a time: a page holds ~20 recordings, and each of its
/// fourteen arrays costs a few small buffers, so a one-day window's ten thousand pages held
/// apart took more memory than their data.
const PAGES_PER_CHUNK: usize = 128;

/// Joins a window's pages, which arrive in any order, in the order they were asked for,
/// `PAGES_PER_CHUNK` at a time.
#[derive(Debug, Default)]
pub struct PageJoiner {
    next: usize,
    early: BTreeMap<usize, RecordBatch>,
    run: Vec<RecordBatch>,
    chunks: Vec<RecordBatch>,
}

impl PageJoiner {
    /// Adds page number `i` (counting from 0, each number once).
    pub fn add(&mut self, i: usize, page: RecordBatch) -> Result<(), ArrowError> {
        self.early.insert(i, page);
        while let Some(page) = self.early.remove(&self.next) {
            self.next += 1;
            if page.num_rows() > 0 {
                self.run.push(page);
            }
        }
        if self.run.len() >= PAGES_PER_CHUNK {
            self.chunks.push(concat_batches(&page_schema(), &self.run)?);
            self.run.clear();
        }
        Ok(())
    }

    /// The window's recordings, with each task's `created` time.
    pub fn finish(
        mut self,
        created: &HashMap<&str, i64, ahash::RandomState>,
    ) -> Result<WindowCaptures, ArrowError> {
        // Every page has arrived, so none waits early (kept in order all the same).
        self.chunks.append(&mut self.run);
        self.chunks.extend(self.early.into_values());
        WindowCaptures::new(&self.chunks, created)
    }
}

/// A window's recordings, one row each in (task id, recording id) order, with the time
/// their task was created (the partition date, and part of the audio's object key).
#[derive(Debug)]
pub struct WindowCaptures {
    batch: RecordBatch,
    created_ms: Vec<i64>,
}

impl WindowCaptures {
    /// Joins the pages of a window. Pages asked for in task-id order arrive in order; an API
    /// that answers otherwise (a task not asked for) is sorted here, so files never depend on it.
    pub fn new(
        pages: &[RecordBatch],
        created: &HashMap<&str, i64, ahash::RandomState>,
    ) -> Result<Self, ArrowError> {
        let mut batch = concat_batches(&page_schema(), pages)?;
        if !in_order(&batch) {
            let sort = |i: usize| SortColumn {
                values: batch.column(i).clone(),
                options: None,
            };
            let order = lexsort_to_indices(&[sort(col().task), sort(col().id)], None)?;
            batch = take_record_batch(&batch, &order)?;
        }
        let tasks = batch.column(col().task).as_string::<i32>();
        let created_ms = tasks
            .iter()
            .map(|t| t.and_then(|t| created.get(t)).copied().unwrap_or_default())
            .collect();
        Ok(WindowCaptures { batch, created_ms })
    }

    /// Recordings in the window.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// Whether the window has no recordings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Capture ids, one per row.
    pub fn ids(&self) -> &StringArray {
        self.batch.column(col().id).as_string()
    }

    /// The task of each row.
    pub fn task_ids(&self) -> &StringArray {
        self.batch.column(col().task).as_string()
    }

    /// File names as the API reports them.
    pub fn file_names(&self) -> &StringArray {
        self.batch.column(col().file_name).as_string()
    }

    /// Pre-signed URLs: null with audio off.
    pub fn urls(&self) -> &StringArray {
        self.batch.column(col().url).as_string()
    }

    /// Drops the pre-signed URLs once the audio is copied: short-lived credentials no table
    /// holds (~250 bytes each, up to ~1.5 KB with an S3 session token), which would otherwise
    /// stay in memory until the window commits.
    pub fn forget_urls(&mut self) -> Result<(), ArrowError> {
        if self.urls().null_count() == self.len() {
            return Ok(());
        }
        let mut cols = self.batch.columns().to_vec();
        cols[col().url] = new_null_array(&DataType::Utf8, self.len());
        self.batch = RecordBatch::try_new(page_schema(), cols)?;
        Ok(())
    }

    /// Each row's task creation time (epoch ms): the partition date of the recording.
    pub fn created_ms(&self) -> &[i64] {
        &self.created_ms
    }

    /// Whether row `i` is a segment (else the stitched recording).
    pub fn is_segment(&self, i: usize) -> bool {
        self.batch.column(col().segment).as_boolean().value(i)
    }

    /// Whether the API flags row `i` sensitive (virtual-agent recordings may be).
    pub fn is_sensitive(&self, i: usize) -> bool {
        let flags = self.batch.column(col().sensitive).as_boolean();
        flags.is_valid(i) && flags.value(i)
    }

    /// How many rows are segments.
    pub fn segments(&self) -> usize {
        self.batch.column(col().segment).as_boolean().true_count()
    }

    /// `webex_captures` (every recording, stitched or segment), with each row's audio, and
    /// its partition dates (the task's day). The URLs are left out: no table holds them.
    pub fn captures_table(
        &self,
        audio: &[AudioState],
    ) -> Result<(RecordBatch, Vec<NaiveDate>), ArrowError> {
        let mut cols: Vec<ArrayRef> = self.batch.columns()[..col().own].to_vec();
        cols.extend(audio_columns(audio.iter()));
        cols.push(self.batch.column(col().extra).clone());
        // One audio state per row is the caller's contract; a mismatch is a bug caught by tests.
        let batch = RecordBatch::try_new(captures_schema(), cols)?;
        let dates = self.created_ms.iter().map(|&ms| day_of_ms(ms)).collect();
        Ok((batch, dates))
    }
}

/// Whether rows are in (task id, recording id) order already.
fn in_order(batch: &RecordBatch) -> bool {
    let (ids, tasks) = (
        batch.column(col().id).as_string::<i32>(),
        batch.column(col().task).as_string::<i32>(),
    );
    (1..batch.num_rows())
        .all(|i| (tasks.value(i - 1), ids.value(i - 1)) <= (tasks.value(i), ids.value(i)))
}

/// The agent of a segment: the participant that is not a phone number or address.
fn agent_of<'a>(participants: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    participants.into_iter().find(|p| {
        !p.starts_with('+')
            && !p.contains('@')
            && !p.chars().all(|c| c.is_ascii_digit() || c == '*')
    })
}

/// `webex_segments` from `webex_captures` (and its dates): the segment recordings of each
/// task, numbered in time order.
pub fn segments_table(
    captures: &RecordBatch,
    dates: &[NaiveDate],
) -> Result<(RecordBatch, Vec<NaiveDate>), ArrowError> {
    let column = |name: &str| {
        captures
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| ArrowError::SchemaError(format!("webex_captures has no {name}")))
    };
    let (ids, tasks) = (column("capture_id")?, column("task_id")?);
    let (ids, tasks) = (ids.as_string::<i32>(), tasks.as_string::<i32>());
    let is_segment = column("segment")?;
    let is_segment: &BooleanArray = is_segment.as_boolean();
    let start = column("start_time")?;
    let start = start.as_primitive::<TimestampMicrosecondType>();
    let mut rows: Vec<u32> = (0..captures.num_rows())
        .filter(|&i| is_segment.value(i))
        .map(|i| i as u32)
        .collect();
    let key = |i: u32| {
        let i = i as usize;
        let at = start.is_valid(i).then(|| start.value(i));
        (tasks.value(i), at, ids.value(i))
    };
    rows.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)));

    let n = rows.len();
    let mut seq = Int32Builder::with_capacity(n);
    let mut agent = StringBuilder::with_capacity(n, n * 16);
    let participants = column("participants")?;
    let participants: &ListArray = participants.as_list();
    let (offsets, names) = (
        participants.value_offsets(),
        participants.values().as_string::<i32>(),
    );
    let mut prev_task: Option<&str> = None;
    let mut i = 0;
    for &r in &rows {
        let r = r as usize;
        if prev_task != Some(tasks.value(r)) {
            i = 0;
            prev_task = Some(tasks.value(r));
        }
        i += 1;
        seq.append_value(i);
        let (from, to) = (offsets[r] as usize, offsets[r + 1] as usize);
        agent.append_option(agent_of((from..to).map(|j| names.value(j))));
    }
    let order = UInt32Array::from(rows);
    let picked =
        |name: &str| -> Result<ArrayRef, ArrowError> { take(&column(name)?, &order, None) };
    let cols: Vec<ArrayRef> = vec![
        picked("capture_id")?,
        picked("task_id")?,
        Arc::new(seq.finish()),
        picked("start_time")?,
        picked("stop_time")?,
        picked("duration_ms")?,
        picked("call_type")?,
        picked("channel1")?,
        picked("channel2")?,
        Arc::new(agent.finish()),
        picked("audio_uri")?,
        picked("audio_status")?,
    ];
    let dates = order.values().iter().map(|&r| dates[r as usize]).collect();
    Ok((RecordBatch::try_new(segments_schema(), cols)?, dates))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_name() {
        let page = page_schema();
        let c = col();
        let names = [
            (c.id, "capture_id"),
            (c.task, "task_id"),
            (c.segment, "segment"),
            (c.file_name, "file_name"),
            (c.start, "start_time"),
            (c.extra, "extra"),
            (c.url, URL_COLUMN),
        ];
        for (at, name) in names {
            assert_eq!(page.field(at).name(), name);
        }
        let table = captures_schema();
        for i in 0..c.own {
            assert_eq!(
                page.field(i),
                table.field(i),
                "the table's own columns lead the page"
            );
        }
        assert_eq!(table.field(c.own).name(), "audio_uri");
    }

    /// A captures response for `tasks` (id, recordings), each recording a segment or not.
    fn page(tasks: &[(&str, &[(&str, bool)])], urls: bool) -> RecordBatch {
        let data: Vec<_> = tasks
            .iter()
            .map(|(task, recs)| {
                let recs: Vec<_> = recs
                    .iter()
                    .map(|(id, segment)| {
                        serde_json::json!({"id": id, "segment": segment, "attributes": {
                            "filePath": format!("https://s3/{id}?sig"), "fileName": format!("{id}.wav"),
                            "startTime": 1_000, "stopTime": 3_500, "participants": ["+1", "agent"],
                            "callType": "main", "newKey": {"a": 1}}})
                    })
                    .collect();
                serde_json::json!({"taskId": task, "recording": recs})
            })
            .collect();
        let body = serde_json::json!({ "data": data }).to_string();
        page_batch(serde_json::from_str(&body).unwrap(), urls).unwrap()
    }

    fn strings(a: &StringArray) -> Vec<Option<&str>> {
        a.iter().collect()
    }

    #[test]
    fn both_kinds_join_in_order_and_never_share_an_id() {
        let stitched = page(&[("t2", &[("t2", false)]), ("t1", &[("t1", false)])], true);
        let segments = page(
            &[
                ("t1", &[("s9", true), ("s1", true)]),
                ("t2", &[("t2", true)]),
            ],
            true,
        );
        let both = join_kinds(&stitched, &segments).unwrap();
        let ids = both.column(col().id).as_string::<i32>();
        let segs = both.column(col().segment).as_boolean();
        let got: Vec<(&str, bool)> = (0..both.num_rows())
            .map(|i| (ids.value(i), segs.value(i)))
            .collect();
        assert_eq!(
            got,
            [("s1", true), ("s9", true), ("t1", false), ("t2", false)]
        );
    }

    #[test]
    fn a_recording_missing_attributes_costs_that_row_at_most() {
        let body = serde_json::json!({ "data": [ { "taskId": "t1", "recording": [
            { "id": "r1", "segment": false, "attributes": { "fileName": "a.wav", "startTime": 5 } },
            { "segment": false, "attributes": { "filePath": "https://s3/x?sig" } },
            { "id": "r3", "segment": true, "attributes": { "filePath": "https://s3/r3?sig" } },
            { "id": "r4" },
        ] } ] })
        .to_string();
        let p = page_batch(serde_json::from_str(&body).unwrap(), true).unwrap();
        let ids = p.column(col().id).as_string::<i32>();
        assert_eq!(
            strings(ids),
            [Some("r1"), Some("r3"), Some("r4")],
            "no id: left out"
        );
        let urls = p.column(col().url).as_string::<i32>();
        assert_eq!(
            strings(urls),
            [None, Some("https://s3/r3?sig"), None],
            "no filePath yet"
        );
        let start = p
            .column(col().start)
            .as_primitive::<TimestampMicrosecondType>();
        assert_eq!((start.is_valid(0), start.is_valid(1)), (true, false));
    }

    #[test]
    fn a_page_is_columns_in_task_and_recording_order() {
        let p = page(
            &[
                ("t2", &[("b", false), ("a", true)]),
                ("t0", &[]),
                ("t1", &[("c", true)]),
            ],
            true,
        );
        let ids: &StringArray = p.column(col().id).as_string();
        let tasks: &StringArray = p.column(col().task).as_string();
        assert_eq!(strings(ids), [Some("c"), Some("a"), Some("b")]);
        assert_eq!(strings(tasks), [Some("t1"), Some("t2"), Some("t2")]);
        let urls: &StringArray = p.column(col().url).as_string();
        assert_eq!(urls.value(0), "https://s3/c?sig");
        let duration = p.column(7).as_primitive::<arrow::datatypes::Int64Type>();
        assert_eq!(duration.value(0), 2_500);
        let extra: &StringArray = p.column(col().extra).as_string();
        assert_eq!(extra.value(0), r#"{"newKey":{"a":1}}"#);

        let mut window = PageJoiner::default();
        window.add(0, p).unwrap();
        let mut window = window.finish(&HashMap::default()).unwrap();
        assert_eq!(window.urls().null_count(), 0);
        window.forget_urls().unwrap();
        assert_eq!((window.len(), window.urls().null_count()), (3, 3));

        // Audio off: no URL is kept.
        let p = page(&[("t1", &[("c", true)])], false);
        assert_eq!(p.column(col().url).null_count(), 1);
    }

    #[test]
    fn pages_join_in_the_order_asked_whatever_order_they_arrive() {
        // 300 pages (over two chunks), arriving in reversed blocks of eight.
        let ids: Vec<String> = (0..300).map(|i| format!("t{i:03}")).collect();
        let mut order: Vec<usize> = (0..300).collect();
        order.chunks_mut(8).for_each(<[usize]>::reverse);
        let mut joiner = PageJoiner::default();
        for i in order {
            let recs: &[(&str, bool)] = if i % 3 == 0 {
                &[]
            } else {
                &[("r1", i % 2 == 0), ("r0", false)]
            };
            joiner.add(i, page(&[(&ids[i], recs)], false)).unwrap();
        }
        let created = ids.iter().map(|t| (t.as_str(), 86_400_000 * 3)).collect();
        let window = joiner.finish(&created).unwrap();
        assert_eq!(window.len(), 400);
        assert!(in_order(&window.batch));
        assert_eq!(window.task_ids().value(0), "t001");
        assert_eq!(window.ids().value(0), "r0");
        assert_eq!(window.segments(), 100);
        assert!(window.created_ms().iter().all(|&ms| ms == 86_400_000 * 3));

        let audio = vec![AudioState::none(crate::state::AudioStatus::Disabled, None); window.len()];
        let (captures, dates) = window.captures_table(&audio).unwrap();
        assert_eq!(captures.schema(), captures_schema());
        assert_eq!(dates[0], NaiveDate::from_ymd_opt(1970, 1, 4).unwrap());
        let (segments, seg_dates) = segments_table(&captures, &dates).unwrap();
        assert_eq!((segments.num_rows(), seg_dates.len()), (100, 100));
        let agents: &StringArray = segments.column(9).as_string();
        assert!(agents.iter().all(|a| a == Some("agent")));
    }
}
