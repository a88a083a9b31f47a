//! Xima's JSON, read leniently: every field but the keys is optional, and fields we do not
//! know are kept (`extra`) rather than dropped.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A call from `GET /rest/api/v2/call-recording-info`, with its recordings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Call {
    /// Xima's key of the call (`callKey`).
    pub call_key: String,
    /// The telephony call id.
    #[serde(default)]
    pub call_id: Option<String>,
    /// The short id the Xima UI shows.
    #[serde(default)]
    pub short_id: Option<i64>,
    /// Start (epoch ms).
    #[serde(default)]
    pub start_time: Option<i64>,
    /// End (epoch ms).
    #[serde(default)]
    pub end_time: Option<i64>,
    /// `Inbound`, `Outbound` or `Internal`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Its recordings (expanded call info).
    #[serde(default)]
    pub recordings: Vec<Recording>,
    /// The tenant as Xima names it.
    #[serde(default)]
    pub tenant_name: Option<String>,
    /// Calling number.
    #[serde(default)]
    pub caller_id: Option<String>,
    /// Dialed number.
    #[serde(default)]
    pub dialed_party_number: Option<String>,
    /// Account codes entered during the call.
    #[serde(default)]
    pub account_codes: Vec<Value>,
    /// Time on hold (ms).
    #[serde(default)]
    pub total_hold_duration: Option<i64>,
    /// The site the call was handled at.
    #[serde(default)]
    pub location: Option<String>,
    /// How the call ended (`dropEventType`).
    #[serde(default)]
    pub drop_event_type: Option<String>,
    /// Fields this version does not know, kept as JSON in `extra`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One recording of a call.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// Xima's key of the recording: its audio path names it.
    pub recording_key: String,
    /// The call it belongs to.
    #[serde(default)]
    pub call_key: Option<String>,
    /// Start (epoch ms).
    #[serde(default)]
    pub start_time: Option<i64>,
    /// Length (ms).
    #[serde(default)]
    pub duration: Option<i64>,
    /// Audio size (bytes) as Xima reports it.
    #[serde(default)]
    pub size: Option<i64>,
    /// The call event the recording started at.
    #[serde(default)]
    pub event_id: Option<i64>,
    /// The recorder that made it.
    #[serde(default)]
    pub recording_system_id: Option<i64>,
    /// Xima's status of the recording.
    #[serde(default)]
    pub status: Option<String>,
    /// Calling party.
    #[serde(default)]
    pub calling_party: Option<String>,
    /// Receiving party.
    #[serde(default)]
    pub receiving_party: Option<String>,
    /// The tenant as Xima names it.
    #[serde(default)]
    pub tenant_name: Option<String>,
    /// Tags set on the recording.
    #[serde(default)]
    pub tag_data: Option<String>,
    /// Direction as the recorder saw it.
    #[serde(default)]
    pub call_direction: Option<String>,
    /// The skill (queue) that handled it.
    #[serde(default)]
    pub skill: Option<String>,
    /// The agent recorded.
    #[serde(default)]
    pub agent: Option<String>,
    /// Fields this version does not know, kept as JSON in `extra`.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
