//! Wire shapes of the v1 API (`GET /v1/tasks`, `POST /v1/captures/query`).
//!
//! Deliberately lenient where the real API is (`docs/FIDELITY.md`): `owner`/`queue` may be absent,
//! epoch-ms times may arrive as numbers or strings, transcription keys vary in case, and
//! attributes the spec does not list are kept for the `extra` column.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// A page of `GET /v1/tasks`.
#[derive(Debug, Deserialize)]
pub struct TaskPage {
    /// Paging and the org the answer is for.
    #[serde(default)]
    pub meta: Option<Meta>,
    /// The tasks on this page.
    pub data: Vec<Task>,
}

/// The `meta` object of a task page.
#[derive(Debug, Deserialize, Default)]
pub struct Meta {
    /// The org the API answered for.
    #[serde(rename = "orgId", default)]
    pub org_id: Option<String>,
}

/// A task: one contact (call, chat, email…) in the spec's `Task` schema.
#[derive(Debug, Deserialize, Clone)]
pub struct Task {
    /// The task id (the interaction id of the legacy API).
    pub id: String,
    /// What the task records.
    pub attributes: TaskAttributes,
}

/// A task's `attributes`.
#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TaskAttributes {
    /// The agent who owned the task.
    #[serde(default)]
    pub owner: Option<Named>,
    /// The queue it was in last.
    #[serde(default)]
    pub queue: Option<Named>,
    /// `telephony`, `chat`, `email`, `social`…
    #[serde(default)]
    pub channel_type: Option<String>,
    /// The task's state (`created`, `ended`, …).
    #[serde(default)]
    pub status: Option<String>,
    /// When the task was created (epoch ms): its partition date.
    #[serde(deserialize_with = "epoch_ms")]
    pub created_time: i64,
    /// Spec: "may also update after task closure, so not suitable for finding a task's
    /// closed time"; kept as reported, never taken for the end.
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub last_updated_time: Option<i64>,
    /// When the task ended: the Search API's `endedTime` (`/v1/tasks` has no end time).
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub ended_time: Option<i64>,
    /// Whether a recording was asked for.
    #[serde(default)]
    pub capture_requested: Option<bool>,
    /// Who contacted (caller number, chat address).
    #[serde(default)]
    pub origin: Option<String>,
    /// Who was contacted (dialed number, entry point).
    #[serde(default)]
    pub destination: Option<String>,
    /// `inbound` or `outbound`.
    #[serde(default)]
    pub direction: Option<String>,
    /// The wrap-up or end reason.
    #[serde(default)]
    pub reason_code: Option<String>,
    /// Attributes this version does not know, kept as JSON in `extra`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An id and display name (`owner`, `queue`).
#[derive(Debug, Deserialize, Clone)]
pub struct Named {
    /// The id.
    #[serde(default)]
    pub id: Option<String>,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A captures response, borrowing its strings from the body: a window's tens of thousands
/// of recordings go straight into Arrow columns ([`super::captures`]), so a string per field
/// would be allocated and freed for nothing.
#[derive(Debug, Deserialize)]
pub struct CapturePage<'a> {
    /// One entry per task asked for.
    #[serde(borrow)]
    pub data: Vec<TaskCaptures<'a>>,
}

/// A task's recordings in a captures answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskCaptures<'a> {
    /// The task asked for.
    #[serde(borrow)]
    pub task_id: Str<'a>,
    /// Its recordings (stitched call and segments).
    #[serde(default, borrow)]
    pub recording: Vec<Recording<'a>>,
    /// Its transcripts (spec: required, may be empty).
    #[serde(default, borrow)]
    pub transcription: Vec<Transcript<'a>>,
}

/// A transcript in a captures answer: the spec's `TranscriptMulti`. Its keys `Source` and
/// `Provider` are capitalised in the spec and lower-case in Cisco's Java sample; both are
/// read. Times are epoch-ms strings in the spec, numbers elsewhere; both are read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transcript<'a> {
    /// Voice: the CCAI config id (shared by every task of the org); digital: the
    /// conversation id. Not unique alone: rows are keyed by task, id and file name.
    #[serde(default, borrow)]
    pub id: Option<Str<'a>>,
    /// What produced it: `realtime-voice`, `recording`, `chat`, `email`, …
    #[serde(default, borrow, rename = "Source", alias = "source")]
    pub source: Option<Str<'a>>,
    /// Who generated it (`CISCO`, …).
    #[serde(default, borrow, rename = "Provider", alias = "provider")]
    pub provider: Option<Str<'a>>,
    /// `realtimeVoiceTranscript.json`, `voiceTranscript.json`, `chatTranscript.json`, …
    #[serde(default, borrow)]
    pub file_name: Option<Str<'a>>,
    /// The pre-signed URL of the transcript JSON.
    #[serde(default, borrow)]
    pub file_path: Option<Str<'a>>,
    /// When the transcribed capture began (epoch ms).
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub start_time: Option<i64>,
    /// When the transcript was made (epoch ms).
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub create_time: Option<i64>,
    /// Its language (`en-US`, …).
    #[serde(default, borrow)]
    pub language_code: Option<Str<'a>>,
}

/// A recording. The spec requires none of its attributes: a capture still processing has no
/// `filePath` yet (its audio is `pending`), and a row without an `id` cannot be keyed (it is
/// left out, with a warning); neither fails its page.
#[derive(Debug, Deserialize)]
pub struct Recording<'a> {
    /// The capture id; `None` leaves the row out, with a warning.
    #[serde(default, borrow)]
    pub id: Option<Str<'a>>,
    /// A segment of the call rather than the whole call.
    #[serde(default)]
    pub segment: bool,
    /// What the recording records.
    #[serde(default, borrow)]
    pub attributes: RecordingAttributes<'a>,
}

/// A recording's `attributes`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingAttributes<'a> {
    /// The audio file's name.
    #[serde(default, borrow)]
    pub file_name: Option<Str<'a>>,
    /// The pre-signed URL of the audio (absent while processing).
    #[serde(default, borrow)]
    pub file_path: Option<Str<'a>>,
    /// Start (epoch ms).
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub start_time: Option<i64>,
    /// Stop (epoch ms).
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub stop_time: Option<i64>,
    /// Who is heard (agent and caller ids).
    #[serde(default, borrow)]
    pub participants: Vec<Str<'a>>,
    /// What the first audio channel holds.
    #[serde(default, borrow)]
    pub channel1: Option<Str<'a>>,
    /// What the second audio channel holds.
    #[serde(default, borrow)]
    pub channel2: Option<Str<'a>>,
    /// Kind of recording (`va-main`, `va-consult`, or absent for a call).
    #[serde(default, borrow)]
    pub call_type: Option<Str<'a>>,
    /// Whether the recording holds sensitive data (virtual-agent recordings).
    #[serde(default)]
    pub sensitive: Option<bool>,
    /// Attributes this version does not know, kept as JSON in `extra`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A JSON string borrowed from the body, or owned when it holds escapes. (serde borrows a
/// bare `Cow<str>` field only; inside an `Option` or a `Vec` it would allocate.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> Visitor<'de> for Visit {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Epoch milliseconds as a number or a numeric string; `None` for null. Read straight from
/// the parser: through a `serde_json::Value`, the time fields were 1.5% of a run's own CPU.
struct EpochMs;

impl<'de> Visitor<'de> for EpochMs {
    type Value = Option<i64>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("epoch milliseconds")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .map(Some)
            .map_err(|_| E::custom(format!("expected epoch milliseconds, got {v}")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Some(v as i64))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        v.trim()
            .parse()
            .map(Some)
            .map_err(|_| E::custom(format!("expected epoch milliseconds, got \"{v}\"")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(EpochMs)
    }
}

fn epoch_ms<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(EpochMs)?
        .ok_or_else(|| de::Error::custom("expected epoch milliseconds, got null"))
}

fn opt_epoch_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_option(EpochMs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_task_and_capture() {
        let page: TaskPage = serde_json::from_str(
            r#"{"meta":{"orgId":"o"},"data":[{"id":"t1","attributes":{"channelType":"telephony",
            "createdTime":1760000000000,"status":"abandoned","newField":7}}]}"#,
        )
        .unwrap();
        let a = &page.data[0].attributes;
        assert!(a.owner.is_none() && a.queue.is_none());
        assert_eq!(a.extra.get("newField"), Some(&Value::from(7)));

        let caps: CapturePage = serde_json::from_str(
            r#"{"data":[{"taskId":"t1","recording":[{"id":"r","segment":false,"attributes":{
            "filePath":"https://x/y","startTime":"1661785612510","stopTime":1661785712510}}],"transcription":[]}]}"#,
        )
        .unwrap();
        let r = &caps.data[0].recording[0].attributes;
        assert_eq!(r.start_time, Some(1_661_785_612_510));
        assert_eq!(r.stop_time, Some(1_661_785_712_510));
        // Strings borrow from the body unless they hold escapes.
        assert!(matches!(caps.data[0].task_id.0, Cow::Borrowed("t1")));
        let escaped: Str = serde_json::from_str(r#""a\"b""#).unwrap();
        assert!(matches!(escaped.0, Cow::Owned(ref s) if s == "a\"b"));
        let bad = serde_json::from_str::<Str>("7").unwrap_err().to_string();
        assert!(bad.contains("expected a string"), "{bad}");

        let times = |created: &str, updated: &str| {
            serde_json::from_str::<TaskAttributes>(&format!(
                r#"{{"createdTime":{created},"lastUpdatedTime":{updated}}}"#
            ))
            .map(|a| (a.created_time, a.last_updated_time))
            .map_err(|e| e.to_string())
        };
        assert_eq!(times("5", "null"), Ok((5, None)));
        assert_eq!(times("\" 5 \"", "6.0"), Ok((5, Some(6))));
        let bad = times("\"soon\"", "1").unwrap_err();
        assert!(
            bad.contains("expected epoch milliseconds, got \"soon\""),
            "{bad}"
        );
        let null = times("null", "1").unwrap_err();
        assert!(null.contains("got null"), "{null}");
        let flag = times("1", "true").unwrap_err();
        assert!(flag.contains("expected epoch milliseconds"), "{flag}");
    }
}
