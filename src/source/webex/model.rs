//! Wire shapes of the v1 API (`GET /v1/tasks`, `POST /v1/captures/query`).
//!
//! Deliberately lenient where the real API is (API_NOTES): `owner`/`queue` may be absent,
//! epoch-ms times may arrive as numbers or strings, transcription keys vary in case, and
//! attributes the spec does not list are kept for the `extra` column.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
pub struct TaskPage {
    #[serde(default)]
    pub meta: Option<Meta>,
    pub data: Vec<Task>,
}

#[derive(Debug, Deserialize, Default)]
pub struct Meta {
    #[serde(rename = "orgId", default)]
    pub org_id: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Task {
    pub id: String,
    pub attributes: TaskAttributes,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TaskAttributes {
    #[serde(default)]
    pub owner: Option<Named>,
    #[serde(default)]
    pub queue: Option<Named>,
    #[serde(default)]
    pub channel_type: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(deserialize_with = "epoch_ms")]
    pub created_time: i64,
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub last_updated_time: Option<i64>,
    #[serde(default)]
    pub capture_requested: Option<bool>,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub reason_code: Option<String>,
    /// Attributes this version does not know, kept as JSON in `extra`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Named {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CapturePage {
    pub data: Vec<TaskCaptures>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TaskCaptures {
    pub task_id: String,
    #[serde(default)]
    pub recording: Vec<Recording>,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Recording {
    pub id: String,
    #[serde(default)]
    pub segment: bool,
    pub attributes: RecordingAttributes,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct RecordingAttributes {
    #[serde(default)]
    pub file_name: Option<String>,
    pub file_path: String,
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub start_time: Option<i64>,
    #[serde(default, deserialize_with = "opt_epoch_ms")]
    pub stop_time: Option<i64>,
    #[serde(default)]
    pub participants: Vec<String>,
    #[serde(default)]
    pub channel1: Option<String>,
    #[serde(default)]
    pub channel2: Option<String>,
    #[serde(default)]
    pub call_type: Option<String>,
    #[serde(default)]
    pub sensitive: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RecordingAttributes {
    /// Drops the pre-signed URL once nothing will use it (the audio is copied, or audio is
    /// off). It is a short-lived credential, and no table holds it; kept, a day's window of
    /// them (~250 bytes each here, up to ~1.5 KB with an S3 session token) stayed in memory
    /// until the window committed.
    pub fn forget_url(&mut self) {
        self.file_path = String::new();
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
