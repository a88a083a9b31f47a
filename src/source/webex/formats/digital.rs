//! A digital transcript (chat, email, SMS, social, work item, custom messaging): a JSON array
//! of messages, each with `message` (the text, rich content flattened by the Captures API),
//! `direction`, `timestamp`, `participant.{name, role, userId}`, `redacted`, and files
//! attached. Layout from a public script that turns Webex chat transcripts into
//! spreadsheets; unconfirmed by Cisco (docs/FIDELITY.md). Every field but the text may be
//! missing; attachments are listed by name, never fetched.

use serde_json::Value;

use super::{text_of, Message};

/// The messages, in array order; `Err(field)` when no item has the text field, so the
/// layout is not the one known (the caller keeps the whole text instead).
pub fn messages(items: &[Value]) -> Result<Vec<Message>, &'static str> {
    let mut out = Vec::with_capacity(items.len());
    let mut texts = 0;
    for item in items {
        let text = text_of(item.get("message"));
        texts += usize::from(text.is_some());
        let attachments = attachments(item);
        if text.is_none() && attachments.is_empty() {
            continue; // an event with nothing said (a join, a leave)
        }
        let participant = item.get("participant");
        let of = |key: &str| participant.and_then(|p| text_of(p.get(key)));
        out.push(Message {
            role: of("role").map(|r| r.to_ascii_lowercase()),
            name: of("name"),
            party_id: of("userId"),
            start_ms: item.get("timestamp").and_then(epoch_ms),
            text: text.unwrap_or_default(),
            direction: text_of(item.get("direction")),
            redacted: item.get("redacted").and_then(Value::as_bool),
            attachments,
            ..Message::default()
        });
    }
    if texts == 0 && !items.is_empty() {
        return Err("message");
    }
    Ok(out)
}

/// The names of the files attached to a message (`attachments[]`: names, or objects with
/// one).
fn attachments(item: &Value) -> Vec<String> {
    let Some(list) = item.get("attachments").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| match a {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => ["fileName", "filename", "name"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str).map(String::from)),
            _ => None,
        })
        .collect()
}

/// A timestamp as epoch ms: a number or digits (ms; seconds when too small to be ms of
/// this era), or an RFC 3339 date.
fn epoch_ms(v: &Value) -> Option<i64> {
    // 10^11 ms is 1973; 10^11 s is the year 5138: below it, a number is seconds.
    let ms = |n: i64| {
        if n.abs() < 100_000_000_000 {
            n * 1000
        } else {
            n
        }
    };
    match v {
        Value::Number(n) => n.as_i64().map(ms),
        Value::String(s) => s.trim().parse::<i64>().ok().map(ms).or_else(|| {
            chrono::DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|t| t.timestamp_millis())
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_keep_their_fields_and_tolerate_missing_ones() {
        let doc = json!([
            {"id": "m1", "aliasId": "a1", "direction": "inbound", "message": "Hi, \"order\" #1042?",
             "timestamp": 1767967200000i64, "redacted": false,
             "participant": {"name": "Dana", "role": "CUSTOMER", "userId": "c-9"}},
            {"id": "m2", "type": "join"},
            {"id": "m3", "direction": "outbound", "message": "Sorry!\nChecking.",
             "timestamp": "2026-01-09T14:00:05.250Z", "redacted": true,
             "participant": {"name": "Ana", "role": "agent"}},
            {"id": "m4", "message": "receipt attached", "attachments": [{"fileName": "receipt.pdf", "url": "https://files/x?sig=1"}, "photo.jpg"]},
            {"id": "m5", "attachments": [{"name": "invoice.pdf"}], "timestamp": 1767967260}
        ]);
        let got = messages(doc.as_array().unwrap()).unwrap();
        assert_eq!(got.len(), 4, "the join event said nothing");
        assert_eq!(got[0].text, "Hi, \"order\" #1042?");
        assert_eq!(got[0].role.as_deref(), Some("customer"));
        assert_eq!(got[0].party_id.as_deref(), Some("c-9"));
        assert_eq!(got[0].direction.as_deref(), Some("inbound"));
        assert_eq!(got[0].redacted, Some(false));
        assert_eq!(got[0].start_ms, Some(1_767_967_200_000));
        assert_eq!(got[1].start_ms, Some(1_767_967_205_250));
        assert_eq!(got[1].redacted, Some(true));
        assert_eq!((got[2].role.as_deref(), got[2].start_ms), (None, None));
        assert_eq!(
            got[2].attachments,
            ["receipt.pdf", "photo.jpg"],
            "names, no URLs"
        );
        assert_eq!((got[3].text.as_str(), got[3].attachments.len()), ("", 1));
        assert_eq!(
            got[3].start_ms,
            Some(1_767_967_260_000),
            "seconds read as such"
        );
    }

    #[test]
    fn a_layout_without_message_text_is_refused_naming_the_field() {
        let doc = json!([{"body": "Hi"}, {"body": "Hello"}]);
        assert_eq!(messages(doc.as_array().unwrap()), Err("message"));
        assert_eq!(
            messages(&[]),
            Ok(Vec::new()),
            "an empty conversation is no error"
        );
    }
}
