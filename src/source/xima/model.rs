//! Xima's JSON, read leniently: every field but the keys is optional, and fields we do not
//! know are kept (`extra`) rather than dropped.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A call from `GET /rest/api/v2/call-recording-info`, with its recordings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    pub call_key: String,
    #[serde(default)]
    pub call_id: Option<String>,
    #[serde(default)]
    pub short_id: Option<i64>,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub recordings: Vec<Recording>,
    #[serde(default)]
    pub tenant_name: Option<String>,
    #[serde(default)]
    pub caller_id: Option<String>,
    #[serde(default)]
    pub dialed_party_number: Option<String>,
    #[serde(default)]
    pub account_codes: Vec<Value>,
    #[serde(default)]
    pub total_hold_duration: Option<i64>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub drop_event_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One recording of a call.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub recording_key: String,
    #[serde(default)]
    pub call_key: Option<String>,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub duration: Option<i64>,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub event_id: Option<i64>,
    #[serde(default)]
    pub recording_system_id: Option<i64>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub calling_party: Option<String>,
    #[serde(default)]
    pub receiving_party: Option<String>,
    #[serde(default)]
    pub tenant_name: Option<String>,
    #[serde(default)]
    pub tag_data: Option<String>,
    #[serde(default)]
    pub call_direction: Option<String>,
    #[serde(default)]
    pub skill: Option<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
