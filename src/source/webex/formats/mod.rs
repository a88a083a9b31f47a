//! A stored transcript split into messages, its format told by its content: neither its
//! `Source` nor its file name says it (Webex's "Migrating to Voice vCon Transcripts": a
//! recording-derived vCon may keep the legacy file's source and name).
//!
//! - an object with a `dialog` array: vCon ([`vcon`]);
//! - an object with `responseContents`: the legacy voice transcript ([`legacy_voice`]);
//! - a top-level array of objects: a digital transcript's messages ([`digital`]);
//! - text that is not JSON: flattened text, kept whole as one message;
//! - anything else: not read, with the reason; its object and row are kept all the same.

pub mod digital;
pub mod legacy_voice;
pub mod vcon;

use std::collections::HashSet;
use std::sync::Mutex;

use serde_json::Value;

/// One message of a transcript, whatever its format.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    /// Its place among the transcript's messages, from 1.
    pub seq: i32,
    /// The party's role (`agent`, `customer`, `bot`, …).
    pub role: Option<String>,
    /// The party's name.
    pub name: Option<String>,
    /// The party's id (a uuid, a number, a user id).
    pub party_id: Option<String>,
    /// When it was said or sent (epoch ms).
    pub start_ms: Option<i64>,
    /// How long it lasted, when known (ms).
    pub duration_ms: Option<i64>,
    /// What was said or written, as the transcript has it.
    pub text: String,
    /// A digital message's direction (`inbound`, `outbound`), as the transcript says it.
    pub direction: Option<String>,
    /// Whether the platform redacted it, where the transcript says.
    pub redacted: Option<bool>,
    /// The names of the files attached to it (listed, never fetched).
    pub attachments: Vec<String>,
}

/// A transcript's layout, as its content shows it (`webex_transcripts.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// vCon JSON (`dialog`).
    Vcon,
    /// The legacy voice transcript (`responseContents`).
    LegacyVoice,
    /// A digital transcript: an array of messages.
    Digital,
    /// Flattened plain text.
    Text,
}

impl Format {
    /// Its name in `webex_transcripts.format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Vcon => "vcon",
            Format::LegacyVoice => "legacy_voice",
            Format::Digital => "digital",
            Format::Text => "text",
        }
    }
}

/// A transcript read: its format and messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// Its format.
    pub format: Format,
    /// Its messages, numbered from 1.
    pub messages: Vec<Message>,
}

/// Why a transcript's messages could not be read (its object is kept all the same).
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    /// It starts like JSON but does not parse (cut short, or broken).
    #[error("not JSON ({0})")]
    Json(#[from] serde_json::Error),
    /// JSON, but in none of the layouts.
    #[error("JSON with no `dialog` (vCon), no `responseContents` (legacy voice) and not an array of messages (digital)")]
    Layout,
    /// Not text either.
    #[error("neither JSON nor UTF-8 text")]
    Binary,
    /// Nothing in it.
    #[error("empty")]
    Empty,
}

/// Reads a stored transcript. `origin_ms` is when its conversation began (the listing's
/// `startTime`): the legacy voice format gives offsets from it.
pub fn read(body: &[u8], origin_ms: Option<i64>) -> Result<Reading, Unreadable> {
    let text = std::str::from_utf8(body).map_err(|_| Unreadable::Binary)?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Unreadable::Empty);
    }
    if !trimmed.starts_with(['{', '[']) {
        return Ok(Reading {
            format: Format::Text,
            messages: vec![whole(trimmed)],
        });
    }
    let doc: Value = serde_json::from_str(trimmed)?;
    let (format, mut messages) = if let Some(dialog) = doc.get("dialog").and_then(Value::as_array) {
        (Format::Vcon, vcon::messages(&doc, dialog))
    } else if let Some(results) = doc.get("responseContents").and_then(Value::as_array) {
        (
            Format::LegacyVoice,
            legacy_voice::messages(results, origin_ms),
        )
    } else if let Some(items) = doc.as_array().filter(|a| a.iter().all(Value::is_object)) {
        let messages = digital::messages(items).unwrap_or_else(|missing| {
            warn_once(missing);
            vec![whole(trimmed)]
        });
        (Format::Digital, messages)
    } else {
        return Err(Unreadable::Layout);
    };
    for (i, m) in messages.iter_mut().enumerate() {
        m.seq = i32::try_from(i + 1).unwrap_or(i32::MAX);
    }
    Ok(Reading { format, messages })
}

/// The whole text as one message: searchable, where its layout is not known.
fn whole(text: &str) -> Message {
    Message {
        seq: 1,
        text: text.to_string(),
        ..Message::default()
    }
}

/// Warns, once per process, that a digital transcript lacked `field` and was kept whole.
fn warn_once(field: &'static str) {
    static WARNED: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if warned.get_or_insert_with(HashSet::new).insert(field) {
        tracing::warn!(field, "A digital transcript's messages have no `{field}`: each such transcript is kept whole, as one message; its layout differs from the one documented in docs/FIDELITY.md.");
    }
}

/// A JSON string, or a number written out.
pub(crate) fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_is_told_by_content() {
        let vcon = br#"{"vcon":"0.4.0","parties":[{"role":"agent"}],"dialog":[{"type":"text","parties":[0],"body":"Hi"}]}"#;
        let r = read(vcon, None).unwrap();
        assert_eq!((r.format, r.messages.len()), (Format::Vcon, 1));
        let legacy = br#"{"responseContents":[{"recognitionResult":{"role":"AGENT","alternatives":[{"transcript":"Hello"}]}}]}"#;
        let r = read(legacy, None).unwrap();
        assert_eq!(
            (r.format, r.messages[0].text.as_str()),
            (Format::LegacyVoice, "Hello")
        );
        let digital = br#"[{"message":"Hi there","direction":"inbound"}]"#;
        let r = read(digital, None).unwrap();
        assert_eq!((r.format, r.messages[0].seq), (Format::Digital, 1));
        let r = read(b"  Customer: hi\nAgent: hello\n", None).unwrap();
        assert_eq!(r.format, Format::Text);
        assert_eq!(r.messages[0].text, "Customer: hi\nAgent: hello");
    }

    #[test]
    fn what_is_in_no_format_says_why() {
        let why = |b: &[u8]| read(b, None).unwrap_err().to_string();
        assert!(why(b"{\"dialog\": [").starts_with("not JSON"));
        assert!(why(br#"{"parties": []}"#).contains("no `dialog`"));
        assert!(why(b"[1, 2]").contains("not an array of messages"));
        assert_eq!(why(&[0xff, 0xfe, 0x00]), "neither JSON nor UTF-8 text");
        assert_eq!(why(b" \n"), "empty");
    }

    #[test]
    fn a_digital_layout_without_message_text_is_kept_whole() {
        let body = br#"[{"body":"Hi","from":"customer"},{"body":"Hello","from":"agent"}]"#;
        let r = read(body, None).unwrap();
        assert_eq!(r.format, Format::Digital);
        assert_eq!(r.messages.len(), 1);
        assert!(
            r.messages[0].text.contains("\"Hello\""),
            "the whole text, searchable"
        );
    }
}
