//! The legacy voice transcript (`voiceTranscript.json`, `Source` `recording`): speech
//! recognition results under `responseContents[]`, each a
//! `recognitionResult.{role, alternatives[0].{transcript, words[]}}` with word times as
//! offsets from the call's start (`{seconds, nanos}`, or the `"1.5s"` form of the same
//! duration). Only the agent and customer legs. Results come grouped by channel, so the
//! messages are put in order by their first word's time (results without words keep their
//! place after the timed ones). Layout from a public captures proxy's reader; Cisco's
//! migration guide confirms the file and its source, not the fields (docs/FIDELITY.md).

use serde_json::Value;

use super::{text_of, Message};

/// The messages of a legacy voice transcript's `responseContents`, in time order;
/// `origin_ms` (the call's start) turns the offsets into times.
pub fn messages(results: &[Value], origin_ms: Option<i64>) -> Vec<Message> {
    let mut timed: Vec<(Option<i64>, Message)> = results
        .iter()
        .filter_map(|r| {
            let result = r.get("recognitionResult").unwrap_or(r);
            message(result, origin_ms)
        })
        .collect();
    // Stable: a channel's results keep their order; untimed ones go last.
    timed.sort_by_key(|(offset, _)| offset.unwrap_or(i64::MAX));
    timed.into_iter().map(|(_, m)| m).collect()
}

/// One result as a message, with its first word's offset (ms); `None` when it holds no text.
fn message(result: &Value, origin_ms: Option<i64>) -> Option<(Option<i64>, Message)> {
    let best = result.get("alternatives")?.as_array()?.first()?;
    let words = best.get("words").and_then(Value::as_array);
    let words = words.map_or(&[][..], Vec::as_slice);
    let text = text_of(best.get("transcript"))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            let joined: Vec<String> = words
                .iter()
                .filter_map(|w| text_of(w.get("word")))
                .collect();
            (!joined.is_empty()).then(|| joined.join(" "))
        })?;
    let first = words.first().and_then(|w| offset(w, "start_time"));
    // The length only where the last word says when it ended.
    let last = words.last().and_then(|w| offset(w, "end_time"));
    let message = Message {
        role: text_of(result.get("role")).map(|r| role(&r)),
        start_ms: first.zip(origin_ms).map(|(o, at)| at + o),
        duration_ms: first.zip(last).map(|(a, b)| (b - a).max(0)),
        text,
        ..Message::default()
    };
    Some((first, message))
}

/// `CALLER` is the customer, `AGENT` the agent, as the vCon transcripts name them; any
/// other role is kept, in lower case.
fn role(r: &str) -> String {
    match r.to_ascii_uppercase().as_str() {
        "CALLER" | "CUSTOMER" => "customer".into(),
        other => other.to_ascii_lowercase(),
    }
}

/// A word's offset (ms) under `key` (snake case, or its camel-case spelling).
fn offset(word: &Value, key: &str) -> Option<i64> {
    let camel = match key {
        "start_time" => "startTime",
        _ => "endTime",
    };
    duration_ms(word.get(key).or_else(|| word.get(camel))?)
}

/// A protobuf `Duration` as JSON: `{seconds, nanos}` (seconds may be a string), or `"1.5s"`.
fn duration_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Object(_) => {
            let seconds = match v.get("seconds") {
                Some(Value::String(s)) => s.parse::<i64>().ok()?,
                Some(n) => n.as_i64()?,
                None => 0,
            };
            let nanos = v.get("nanos").and_then(Value::as_i64).unwrap_or(0);
            Some(seconds * 1000 + nanos / 1_000_000)
        }
        Value::String(s) => {
            let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
            secs.is_finite().then(|| (secs * 1000.0).round() as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn results_are_ordered_across_channels_by_their_first_word() {
        let doc = json!([
            {"recognitionResult": {"role": "CALLER", "channelTag": 1, "alternatives": [{
                "transcript": "Hi, my bill is wrong.",
                "words": [{"word": "Hi,", "start_time": {"seconds": 2, "nanos": 500000000}},
                          {"word": "wrong.", "start_time": {"seconds": "4"}, "end_time": {"seconds": 4, "nanos": 800000000}}]}]}},
            {"recognitionResult": {"role": "CALLER", "alternatives": [{
                "transcript": "Thanks!", "words": [{"word": "Thanks!", "start_time": "20.25s"}]}]}},
            {"recognitionResult": {"role": "AGENT", "alternatives": [{
                "words": [{"word": "Let", "startTime": "10s"}, {"word": "me", "startTime": "10.4s"},
                          {"word": "check.", "startTime": "10.9s", "endTime": "11.5s"}]}]}},
            {"recognitionResult": {"role": "AGENT", "alternatives": [{"transcript": "Bye."}]}},
            {"recognitionResult": {"role": "AGENT", "alternatives": [{"transcript": "  "}]}}
        ]);
        let got = messages(doc.as_array().unwrap(), Some(1_000_000));
        let texts: Vec<&str> = got.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Hi, my bill is wrong.", "Let me check.", "Thanks!", "Bye."]
        );
        assert_eq!(got[0].role.as_deref(), Some("customer"));
        assert_eq!(got[1].role.as_deref(), Some("agent"));
        assert_eq!(got[0].start_ms, Some(1_002_500));
        assert_eq!(
            got[0].duration_ms,
            Some(2_300),
            "first word to the last's end"
        );
        assert_eq!(got[1].duration_ms, Some(1_500));
        assert_eq!(got[2].duration_ms, None, "no end time: no length");
        assert_eq!((got[3].start_ms, got[3].duration_ms), (None, None));
        let untimed = messages(doc.as_array().unwrap(), None);
        assert_eq!(untimed[0].start_ms, None, "no origin, no time");
        assert_eq!(untimed[0].duration_ms, Some(2_300));
    }
}
