//! A window's transcripts: what the captures API lists in each task's `transcription[]`,
//! copied like audio (same copy, ledger and URL renewal), then read back and split into
//! messages, so that `webex_transcript_messages` is a table an analyst can search with SQL.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use chrono::NaiveDate;

use super::formats::{self, Message, Reading};
use super::model::TaskCaptures;
use super::tables::ts_builder;
use crate::schema::{day_of_ms, field, list_utf8, ts, utf8, TableDef};
use crate::sink::audio::AudioState;
use crate::state::AudioStatus;

/// `webex_transcripts`.
pub static TRANSCRIPTS: TableDef = TableDef {
    name: "webex_transcripts",
    schema: transcripts_schema,
    unique_columns: &[
        "task_id",
        "start_time",
        "create_time",
        "object_uri",
        "object_sha256",
    ],
    keys: &["task_id", "transcript_id", "file_name"],
    docs: "transcript (voice or digital), with its object in the warehouse",
};

/// `webex_transcript_messages`.
pub static MESSAGES: TableDef = TableDef {
    name: "webex_transcript_messages",
    schema: messages_schema,
    unique_columns: &["start_time", "text"],
    keys: &["task_id", "transcript_id", "file_name", "seq"],
    docs: "message of a transcript, numbered `seq` in the transcript's order, with its party",
};

/// The table status of a transcript stored but whose messages could not be read.
pub const UNPARSED: &str = "unparsed";

/// The `webex_transcripts` schema: one row per transcript of a task.
pub fn transcripts_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("task_id", false),
        utf8("transcript_id", false),
        utf8("file_name", false),
        // `Source`; `source` is the partition column naming the pipeline's source.
        utf8("transcript_source", true),
        utf8("provider", true),
        utf8("language_code", true),
        ts("start_time", true),
        ts("create_time", true),
        field("messages", DataType::Int32, true),
        utf8("object_uri", true),
        field("object_bytes", DataType::Int64, true),
        utf8("object_sha256", true),
        utf8("status", false),
        utf8("error", true),
        // Added after the first release: older files read it as null.
        utf8("format", true),
    ]))
}

/// The `webex_transcript_messages` schema: one row per message.
pub fn messages_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("task_id", false),
        utf8("transcript_id", false),
        utf8("file_name", false),
        field("seq", DataType::Int32, false),
        utf8("party_role", true),
        utf8("party_name", true),
        utf8("party_id", true),
        ts("start_time", true),
        field("duration_ms", DataType::Int64, true),
        utf8("text", false),
        utf8("channel_type", true),
        // Added after the first release (digital messages): older files read them as null.
        utf8("direction", true),
        field("redacted", DataType::Boolean, true),
        list_utf8("attachments"),
    ]))
}

/// A transcript as the captures API listed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// The task it belongs to.
    pub task_id: String,
    /// Its `id` (voice: the org's CCAI config id; digital: the conversation id).
    pub id: String,
    /// Its `fileName`; `transcript.json` when the API gave none.
    pub file_name: String,
    /// `Source`.
    pub source: Option<String>,
    /// `Provider`.
    pub provider: Option<String>,
    /// `languageCode`.
    pub language: Option<String>,
    /// `startTime` (epoch ms).
    pub start_ms: Option<i64>,
    /// `createTime` (epoch ms).
    pub create_ms: Option<i64>,
    /// The pre-signed URL (absent while it is being made, or with transcripts off).
    pub url: Option<String>,
}

/// What every transcript's id in the audio ledger starts with.
pub const LEDGER_PREFIX: &str = "transcript/";

/// How the guides' voice transcript files end (`realtimeVoiceTranscript.json`,
/// `voiceTranscript.json`); a digital one is named by its channel (`chatTranscript.json`).
pub const VOICE_FILE_SUFFIX: &str = "oiceTranscript.json";

impl Listed {
    /// Its key in the audio ledger, which no recording id can take.
    pub fn ledger_id(&self) -> String {
        format!(
            "{LEDGER_PREFIX}{}/{}/{}",
            self.task_id, self.id, self.file_name
        )
    }

    /// Whether it is a voice transcript, a vCon ccetl splits into messages. The guides name
    /// two sources for them: `realtime-voice` (`realtimeVoiceTranscript.json`) and
    /// `recording` (`voiceTranscript.json`); digital tasks' transcripts carry their channel
    /// (`chat`, `sms`, …) as source (spec, `TranscriptMulti.Source`).
    pub fn is_voice(&self) -> bool {
        let voice_source = self.source.as_deref().is_some_and(|s| {
            s.eq_ignore_ascii_case("realtime-voice") || s.eq_ignore_ascii_case("recording")
        });
        voice_source || self.file_name.ends_with(VOICE_FILE_SUFFIX)
    }

    /// Whether `other` is the same transcript (a later answer about it).
    pub fn same(&self, other: &Listed) -> bool {
        (&self.task_id, &self.id, &self.file_name) == (&other.task_id, &other.id, &other.file_name)
    }
}

/// The transcripts of one captures answer; a transcript without an id cannot be keyed and
/// is left out with a warning. `urls` keeps the pre-signed URLs (transcripts on).
pub fn listed(tasks: &mut [TaskCaptures<'_>], urls: bool) -> Vec<Listed> {
    let mut out = Vec::new();
    for t in tasks {
        for tr in t.transcription.drain(..) {
            let Some(id) = tr.id else {
                tracing::warn!(task_id = &*t.task_id, "A transcript without an id was left out (POST /v1/captures/query answered it so).");
                continue;
            };
            let owned = |s: Option<super::model::Str<'_>>| s.map(|s| s.0.into_owned());
            out.push(Listed {
                task_id: t.task_id.0.to_string(),
                id: id.0.into_owned(),
                file_name: owned(tr.file_name).unwrap_or_else(|| "transcript.json".into()),
                source: owned(tr.source),
                provider: owned(tr.provider),
                language: owned(tr.language_code),
                start_ms: tr.start_time,
                create_ms: tr.create_time,
                url: owned(tr.file_path).filter(|_| urls),
            });
        }
    }
    out
}

/// A window's transcripts, in (task, id, file name) order, with their tasks' creation times.
#[derive(Debug, Default)]
pub struct WindowTranscripts {
    /// The transcripts.
    pub rows: Vec<Listed>,
    /// Each one's task creation time (epoch ms): its partition date and object key.
    pub created_ms: Vec<i64>,
}

impl WindowTranscripts {
    /// Orders `rows` and looks up their tasks' creation times; a transcript listed twice
    /// (once per captures query of its task) is kept once.
    pub fn new(mut rows: Vec<Listed>, created: &HashMap<&str, i64, ahash::RandomState>) -> Self {
        rows.sort_by(|a, b| {
            (&a.task_id, &a.id, &a.file_name).cmp(&(&b.task_id, &b.id, &b.file_name))
        });
        rows.dedup_by(|a, b| a.same(b));
        let created_ms = rows
            .iter()
            .map(|r| created.get(r.task_id.as_str()).copied().unwrap_or_default())
            .collect();
        WindowTranscripts { rows, created_ms }
    }

    /// Forgets the pre-signed URLs once copied.
    pub fn forget_urls(&mut self) {
        for r in &mut self.rows {
            r.url = None;
        }
    }
}

/// What reading a stored transcript gave.
#[derive(Debug)]
pub enum Parsed {
    /// Not stored (or transcripts off): nothing to read.
    NotRead,
    /// Its format and messages.
    Read(Reading),
    /// Stored, but not a transcript ccetl can read: why.
    Unparsed(String),
}

impl Parsed {
    /// Reads a stored transcript's body, warning (with the task and the cause) when it is
    /// in no known format: the object and its row are kept, marked `unparsed`.
    pub fn of(t: &Listed, body: &[u8]) -> Parsed {
        match formats::read(body, t.start_ms) {
            Ok(r) => Parsed::Read(r),
            Err(e) => {
                tracing::warn!(
                    task_id = t.task_id,
                    transcript = t.id,
                    file_name = t.file_name,
                    "Transcript kept but not read: {e}."
                );
                Parsed::Unparsed(format!("transcript: {e}"))
            }
        }
    }
}

/// A table's rows and each row's partition date.
type Rows = (RecordBatch, Vec<NaiveDate>);

/// `webex_transcripts` and `webex_transcript_messages` with their partition dates (the
/// task's day); `channel` is each task's channel type.
pub fn tables(
    w: &WindowTranscripts,
    objects: &[AudioState],
    parsed: &[Parsed],
    channel: &HashMap<&str, &str, ahash::RandomState>,
) -> Result<(Rows, Rows), ArrowError> {
    let n = w.rows.len();
    let s = || StringBuilder::with_capacity(n, n * 24);
    let (mut task, mut id, mut file, mut source, mut provider, mut lang) =
        (s(), s(), s(), s(), s(), s());
    let (mut start, mut create) = (ts_builder(n), ts_builder(n));
    let mut count = Int32Builder::with_capacity(n);
    let (mut uri, mut sha, mut status, mut error, mut format) = (s(), s(), s(), s(), s());
    let mut bytes = Int64Builder::with_capacity(n);
    let mut m = MessageColumns::new();
    let mut dates = Vec::with_capacity(n);
    let mut message_dates = Vec::new();
    for (i, t) in w.rows.iter().enumerate() {
        let (o, p) = (&objects[i], &parsed[i]);
        task.append_value(&t.task_id);
        id.append_value(&t.id);
        file.append_value(&t.file_name);
        source.append_option(t.source.as_deref());
        provider.append_option(t.provider.as_deref());
        lang.append_option(t.language.as_deref());
        start.append_option(t.start_ms.map(|v| v * 1000));
        create.append_option(t.create_ms.map(|v| v * 1000));
        uri.append_option(o.uri.as_deref());
        bytes.append_option(o.bytes.map(|b| b as i64));
        sha.append_option(o.sha256.as_deref());
        let date = day_of_ms(w.created_ms[i]);
        dates.push(date);
        match p {
            Parsed::Read(r) => {
                count.append_value(i32::try_from(r.messages.len()).unwrap_or(i32::MAX));
                status.append_value(o.status.as_str());
                error.append_option(o.error.as_deref());
                format.append_value(r.format.as_str());
                let ch = channel.get(t.task_id.as_str()).copied();
                for msg in &r.messages {
                    m.push(t, msg, ch);
                    message_dates.push(date);
                }
            }
            Parsed::Unparsed(why) => {
                count.append_null();
                status.append_value(UNPARSED);
                error.append_value(why);
                format.append_null();
            }
            Parsed::NotRead => {
                count.append_null();
                status.append_value(o.status.as_str());
                error.append_option(o.error.as_deref());
                format.append_null();
            }
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(task.finish()),
        Arc::new(id.finish()),
        Arc::new(file.finish()),
        Arc::new(source.finish()),
        Arc::new(provider.finish()),
        Arc::new(lang.finish()),
        Arc::new(start.finish()),
        Arc::new(create.finish()),
        Arc::new(count.finish()),
        Arc::new(uri.finish()),
        Arc::new(bytes.finish()),
        Arc::new(sha.finish()),
        Arc::new(status.finish()),
        Arc::new(error.finish()),
        Arc::new(format.finish()),
    ];
    // The builders above produce exactly the schemas' columns; a mismatch is a bug caught by tests.
    let transcripts = RecordBatch::try_new(transcripts_schema(), cols)?;
    Ok(((transcripts, dates), (m.finish()?, message_dates)))
}

/// The columns of `webex_transcript_messages`, filled a message at a time.
struct MessageColumns {
    task: StringBuilder,
    id: StringBuilder,
    file: StringBuilder,
    seq: Int32Builder,
    role: StringBuilder,
    name: StringBuilder,
    party: StringBuilder,
    start: arrow::array::TimestampMicrosecondBuilder,
    duration: Int64Builder,
    text: StringBuilder,
    channel: StringBuilder,
    direction: StringBuilder,
    redacted: BooleanBuilder,
    attachments: ListBuilder<StringBuilder>,
}

impl MessageColumns {
    fn new() -> Self {
        MessageColumns {
            task: StringBuilder::new(),
            id: StringBuilder::new(),
            file: StringBuilder::new(),
            seq: Int32Builder::new(),
            role: StringBuilder::new(),
            name: StringBuilder::new(),
            party: StringBuilder::new(),
            start: ts_builder(0),
            duration: Int64Builder::new(),
            text: StringBuilder::new(),
            channel: StringBuilder::new(),
            direction: StringBuilder::new(),
            redacted: BooleanBuilder::new(),
            attachments: ListBuilder::new(StringBuilder::new()),
        }
    }

    fn push(&mut self, t: &Listed, m: &Message, channel: Option<&str>) {
        self.task.append_value(&t.task_id);
        self.id.append_value(&t.id);
        self.file.append_value(&t.file_name);
        self.seq.append_value(m.seq);
        self.role.append_option(m.role.as_deref());
        self.name.append_option(m.name.as_deref());
        self.party.append_option(m.party_id.as_deref());
        self.start.append_option(m.start_ms.map(|v| v * 1000));
        self.duration.append_option(m.duration_ms);
        self.text.append_value(&m.text);
        self.channel.append_option(channel);
        self.direction.append_option(m.direction.as_deref());
        self.redacted.append_option(m.redacted);
        for a in &m.attachments {
            self.attachments.values().append_value(a);
        }
        self.attachments.append(true);
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(self.task.finish()),
            Arc::new(self.id.finish()),
            Arc::new(self.file.finish()),
            Arc::new(self.seq.finish()),
            Arc::new(self.role.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.party.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.text.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.direction.finish()),
            Arc::new(self.redacted.finish()),
            Arc::new(self.attachments.finish()),
        ];
        RecordBatch::try_new(messages_schema(), cols)
    }
}

/// Whether nothing more would come of reading a transcript again: its object stored (read
/// or not) or transcripts off.
pub fn is_settled(status: &str) -> bool {
    status == UNPARSED || AudioStatus::parse(status).is_some_and(AudioStatus::is_settled)
}
