//! Voice transcripts as Webex writes them: vCon JSON ("Guide for Voice Transcripts": the
//! vCon Conversation Data Container draft, revision 04), participants in the top-level
//! `parties` array and messages in the top-level `dialog` array.
//!
//! From the draft: a dialog's `type` is `text`, `recording`, `recording-set`, `transfer` or
//! `incomplete`, and only `text` dialogs carry words; `parties` is an index, an array of
//! indices, or (multi-channel) an array of those, the first being the originator unless
//! `originator` says otherwise; `start` is a date, `duration` seconds; inline content is
//! `body` with its `encoding` (`none`, `base64url` or `json`). A party may give `name`,
//! `uuid`, `tel`, `mailto`, and a role (`role`, from the contact-center extension) or a
//! `type` (`person`, `bot`, `organization`). Dialogs are kept in array order: the draft says
//! they are not sorted by `start` and must not be reordered.

use base64::Engine;
use serde_json::Value;

use super::Message;

/// The messages of a vCon transcript (`doc`, with its `dialog` array), in `dialog` order.
pub fn messages(doc: &Value, dialog: &[Value]) -> Vec<Message> {
    let parties: &[Value] = doc
        .get("parties")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let mut out = Vec::new();
    for d in dialog {
        if d.get("type").and_then(Value::as_str) != Some("text") {
            continue;
        }
        let Some(text) = body_text(d) else { continue };
        let party = speaker(d).and_then(|i| parties.get(i));
        let text_of = |p: &Value, key: &str| p.get(key).and_then(Value::as_str).map(String::from);
        out.push(Message {
            seq: i32::try_from(out.len() + 1).unwrap_or(i32::MAX),
            role: party.and_then(|p| text_of(p, "role").or_else(|| text_of(p, "type"))),
            name: party.and_then(|p| text_of(p, "name")),
            party_id: party.and_then(|p| {
                text_of(p, "uuid")
                    .or_else(|| text_of(p, "tel"))
                    .or_else(|| text_of(p, "mailto"))
            }),
            start_ms: d
                .get("start")
                .and_then(Value::as_str)
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.timestamp_millis()),
            duration_ms: d
                .get("duration")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| (s * 1000.0).round() as i64),
            text,
            ..Message::default()
        });
    }
    out
}

/// The party that spoke: `originator`, else the first index of `parties`.
fn speaker(d: &Value) -> Option<usize> {
    if let Some(i) = d.get("originator").and_then(Value::as_u64) {
        return usize::try_from(i).ok();
    }
    let mut p = d.get("parties")?;
    // An index, an array of them, or an array of (index or array): the first one.
    while let Some(first) = p.as_array().and_then(|a| a.first()) {
        p = first;
    }
    p.as_u64().and_then(|i| usize::try_from(i).ok())
}

/// A text dialog's words, decoded per its `encoding`; `None` when it has no inline body
/// (redacted, or referenced by `url`).
fn body_text(d: &Value) -> Option<String> {
    let body = d.get("body")?;
    match d.get("encoding").and_then(Value::as_str) {
        Some("base64url") => {
            let raw = body.as_str()?.trim_end_matches('=');
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(raw)
                .ok()?;
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => match body {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_dialog_order_with_their_parties() {
        let doc = serde_json::json!({
            "vcon": "0.4.0",
            "parties": [
                {"tel": "+1555****000", "name": "Customer", "role": "customer"},
                {"uuid": "agent-1", "name": "Ana Silva", "role": "agent"},
                {"name": "Virtual Agent", "type": "bot"}
            ],
            "dialog": [
                {"type": "recording", "parties": [0, 1], "url": "https://x/y.wav"},
                {"type": "text", "start": "2026-01-05T10:00:02.500Z", "duration": 1.25,
                 "parties": [[2], [0]], "mediatype": "text/plain", "encoding": "none",
                 "body": "Hello, \"caller\"\nhow can I help?"},
                {"type": "text", "start": "2026-01-05T10:00:01Z", "parties": 0, "originator": 0,
                 "encoding": "base64url", "body": "44GT44KT44Gr44Gh44Gv"},
                {"type": "text", "parties": [1, 0], "encoding": "none", "body": "Sure."},
                {"type": "text", "parties": [1, 0]}
            ]
        });
        let dialog = doc["dialog"].as_array().unwrap();
        let got = messages(&doc, dialog);
        assert_eq!(
            got.len(),
            3,
            "recordings and bodiless dialogs are not messages"
        );
        assert_eq!(got[0].text, "Hello, \"caller\"\nhow can I help?");
        assert_eq!(got[0].role.as_deref(), Some("bot"), "type when no role");
        assert_eq!(got[0].start_ms, Some(1_767_607_202_500));
        assert_eq!(got[0].duration_ms, Some(1_250));
        assert_eq!(got[1].text, "こんにちは", "base64url bodies are decoded");
        assert_eq!(got[1].seq, 2, "kept in dialog order, not sorted by start");
        assert_eq!(got[1].party_id.as_deref(), Some("+1555****000"));
        assert_eq!(got[2].name.as_deref(), Some("Ana Silva"));
        assert_eq!(got[2].party_id.as_deref(), Some("agent-1"));
        assert_eq!(got[2].duration_ms, None);
    }
}
