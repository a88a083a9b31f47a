//! `capture:available` deliveries: checked before anything is recorded. The signature is
//! `hex(HMAC-SHA256(secret, raw body))` in `X-WebexCC-Signature`, computed over the bytes as
//! they arrived (before any JSON parsing); the timestamp (`X-WebExCC-Timestamp`, equal to
//! the body's `comciscotimestamp`) must be within five minutes of now, so a captured event
//! replayed later is refused. A redelivery inside that window is harmless: it names a task
//! already queued.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::subscriptions::CAPTURE_AVAILABLE;
use crate::extract::webhooks::{Event, Verdict};
use crate::secret::Secret;

/// The HMAC-SHA256 of the body, keyed with the subscription's secret.
pub const SIGNATURE_HEADER: &str = "x-webexcc-signature";
/// When Webex sent the delivery (epoch ms).
pub const TIMESTAMP_HEADER: &str = "x-webexcc-timestamp";
/// How far a delivery's timestamp may be from this clock (Cisco's sample allows 5 minutes).
pub const TOLERANCE_MS: i64 = 5 * 60_000;

/// Why a delivery was refused (answered 401, or 400 for a signed body that is not an event).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// No signature header.
    #[error("no X-WebexCC-Signature header: the subscription has no secret (`ccetl subscribe` registers one)")]
    Unsigned,
    /// A signature that does not match.
    #[error("the signature does not match the body: forged, or signed with another secret")]
    Forged,
    /// No timestamp in the header or the body.
    #[error("no timestamp (X-WebExCC-Timestamp or comciscotimestamp): a replay could not be told from a delivery")]
    Untimed,
    /// A timestamp outside the tolerance.
    #[error("timestamp {at} is {age_s} s away from now (tolerance {} s): stale or replayed", TOLERANCE_MS / 1000)]
    #[allow(missing_docs)] // the message names them
    Stale { at: i64, age_s: i64 },
    /// Header and body disagree on the time.
    #[error("the X-WebExCC-Timestamp header ({header}) differs from the body's comciscotimestamp ({body})")]
    #[allow(missing_docs)] // the message names them
    TimestampMismatch { header: i64, body: i64 },
    /// Valid signature, invalid event body.
    #[error("signed, but not an event: {0}")]
    Malformed(String),
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    comciscotimestamp: Option<Value>,
    #[serde(default)]
    data: Option<Value>,
}

/// Epoch ms sent as a number or a string.
fn millis(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Checks a delivery: signature, then timestamp, then shape.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &Secret,
    now_ms: i64,
) -> Result<Verdict, Rejected> {
    let sig = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(Rejected::Unsigned)?;
    let sig = hex::decode(sig.trim()).map_err(|_| Rejected::Forged)?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| Rejected::Forged)?;
    mac.update(body);
    // Constant time: a timing difference must not reveal how much of a guess was right.
    mac.verify_slice(&sig).map_err(|_| Rejected::Forged)?;

    let env: Envelope = serde_json::from_slice(body)
        .map_err(|e| Rejected::Malformed(format!("body is not the event envelope: {e}")))?;
    let header_ts = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let body_ts = env.comciscotimestamp.as_ref().and_then(millis);
    let at = match (header_ts, body_ts) {
        (Some(h), Some(b)) if h != b => {
            return Err(Rejected::TimestampMismatch { header: h, body: b })
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => return Err(Rejected::Untimed),
    };
    if (now_ms - at).abs() > TOLERANCE_MS {
        return Err(Rejected::Stale {
            at,
            age_s: (now_ms - at) / 1000,
        });
    }
    let kind = env.kind.unwrap_or_default();
    if kind != CAPTURE_AVAILABLE {
        return Ok(Verdict::Ignored(kind));
    }
    let data = env.data.unwrap_or_default();
    let task_id = data
        .get("taskId")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Rejected::Malformed("data.taskId is missing".into()))?;
    Ok(Verdict::Ready(Event {
        id: env.id.unwrap_or_default(),
        task_id: task_id.to_string(),
        created_ms: data.get("createdTime").and_then(millis).unwrap_or(at),
        received_ms: now_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_767_967_200_000;

    fn signed(body: &str, key: &str, ts: Option<i64>) -> HeaderMap {
        let mut h = HeaderMap::new();
        let sig = crate::sim::events::signature(key, body.as_bytes());
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(&sig).unwrap());
        if let Some(t) = ts {
            h.insert(
                TIMESTAMP_HEADER,
                HeaderValue::from_str(&t.to_string()).unwrap(),
            );
        }
        h
    }

    fn body(ts: i64) -> String {
        format!(
            r#"{{"id":"e1","specversion":"1.0","type":"capture:available","comciscotimestamp":"{ts}","data":{{"taskId":"t1","filePath":"https://x/y","createdTime":{}}}}}"#,
            ts - 10
        )
    }

    #[test]
    fn a_signed_fresh_event_passes() {
        let b = body(NOW);
        let v = verify(
            &signed(&b, SECRET, Some(NOW)),
            b.as_bytes(),
            &Secret::new(SECRET),
            NOW + 1000,
        );
        let Ok(Verdict::Ready(e)) = v else {
            panic!("{v:?}")
        };
        assert_eq!((e.task_id.as_str(), e.created_ms), ("t1", NOW - 10));
    }

    #[test]
    fn forged_stale_replayed_and_malformed_are_refused() {
        let s = Secret::new(SECRET);
        let b = body(NOW);
        let forged = verify(
            &signed(&b, "another-secret", Some(NOW)),
            b.as_bytes(),
            &s,
            NOW,
        );
        assert_eq!(forged, Err(Rejected::Forged));
        let tampered = b.replace("t1", "t2");
        let v = verify(&signed(&b, SECRET, Some(NOW)), tampered.as_bytes(), &s, NOW);
        assert_eq!(v, Err(Rejected::Forged), "the body changed after signing");
        let v = verify(&HeaderMap::new(), b.as_bytes(), &s, NOW);
        assert_eq!(v, Err(Rejected::Unsigned));
        let v = verify(
            &signed(&b, SECRET, Some(NOW)),
            b.as_bytes(),
            &s,
            NOW + 6 * 60_000,
        );
        assert!(
            matches!(v, Err(Rejected::Stale { age_s: 360, .. })),
            "{v:?}"
        );
        let v = verify(&signed(&b, SECRET, Some(NOW + 1)), b.as_bytes(), &s, NOW);
        assert!(
            matches!(v, Err(Rejected::TimestampMismatch { .. })),
            "{v:?}"
        );
        let other = r#"{"type":"agent:login","comciscotimestamp":1767967200000}"#;
        let v = verify(&signed(other, SECRET, None), other.as_bytes(), &s, NOW);
        assert_eq!(v, Ok(Verdict::Ignored("agent:login".into())));
        let bad = r#"{"type":"capture:available","comciscotimestamp":1767967200000,"data":{}}"#;
        let v = verify(&signed(bad, SECRET, None), bad.as_bytes(), &s, NOW);
        assert!(matches!(&v, Err(Rejected::Malformed(_))), "{v:?}");
    }
}
