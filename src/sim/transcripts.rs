//! Simulated transcripts, in each layout a contact center's captures return, on a share of
//! the recorded calls, derived from each task alone so that adding them changed no other
//! data:
//!
//! - voice as vCon JSON ("Guide for Voice Transcripts", draft revision 04: `parties`,
//!   `dialog`), realtime (`realtimeVoiceTranscript.json`) or recording-derived under the
//!   legacy file's source and name (`recording`, `voiceTranscript.json`: the migration guide
//!   says a vCon may keep them);
//! - the legacy voice transcript under that same source and name: `responseContents[]`
//!   speech-recognition results, agent and customer legs only, grouped by channel, word
//!   times as offsets from the call's start;
//! - digital (ended chats and other channels): a JSON array of messages (`message`,
//!   `direction`, `timestamp`, `participant`, `redacted`, attachments), some with fields
//!   missing, a few in a layout without `message` (ccetl keeps those whole).
//!
//! Their text is what breaks naive exports: commas, quotes, newlines and non-Latin scripts.
//! A few are made later than their call's audio (a lookback finds them), and a few vCons are
//! broken JSON (ccetl keeps the object and marks the row `unparsed`).

use rand::{Rng, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::data::SimTask;

/// The CCAI config id Webex gives as a voice transcript's `id`: one per org, so every
/// voice transcript of the org shares it (spec, `TranscriptMulti.id`).
pub const CCAI_CONFIG_ID: &str = "ccai-cfg-101";

/// A transcript of a task.
#[derive(Debug, Clone)]
pub struct SimTranscript {
    /// `id`.
    pub id: String,
    /// `fileName`.
    pub file_name: String,
    /// `Source`.
    pub source: String,
    /// `languageCode`.
    pub language: String,
    /// `startTime` (epoch ms).
    pub start_ms: i64,
    /// `createTime` (epoch ms): when the captures API starts listing it.
    pub create_ms: i64,
    /// The messages, as ccetl should read them from the body.
    pub messages: Vec<SimMessage>,
    /// The messages the body holds, where ccetl reads them otherwise (a layout it keeps
    /// whole).
    pub said: Option<Vec<SimMessage>>,
    /// Whether the body is well formed (else ccetl keeps it `unparsed`).
    pub parseable: bool,
    /// Its layout.
    pub shape: Shape,
}

/// A transcript's layout in the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// vCon JSON.
    Vcon,
    /// The legacy voice transcript (`responseContents`).
    LegacyVoice,
    /// A digital transcript: an array of messages.
    Digital,
    /// A digital transcript whose messages have no `message` field: kept whole.
    DigitalOther,
}

impl Shape {
    /// The `webex_transcripts.format` ccetl should give it.
    pub fn format(self) -> &'static str {
        match self {
            Shape::Vcon => "vcon",
            Shape::LegacyVoice => "legacy_voice",
            Shape::Digital | Shape::DigitalOther => "digital",
        }
    }
}

/// A message of a transcript, as ccetl should read it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimMessage {
    /// The party's role.
    pub role: Option<String>,
    /// The party's name.
    pub name: Option<String>,
    /// The party's id (uuid, masked number, user id).
    pub party_id: Option<String>,
    /// When it was said (epoch ms).
    pub start_ms: Option<i64>,
    /// How long it lasted (legacy voice: first word to the last's end).
    pub duration_ms: Option<i64>,
    /// What was said.
    pub text: String,
    /// A digital message's direction.
    pub direction: Option<String>,
    /// A digital message's redaction flag.
    pub redacted: Option<bool>,
    /// A digital message's attachments, by name.
    pub attachments: Vec<String>,
}

const PHRASES: [(&str, [&str; 4]); 4] = [
    (
        "en-US",
        [
            "Hi, I'm calling about my bill, the one from March.",
            "Sure, I can help with that. Can you confirm the \"primary\" account holder?",
            "Yes, it's me.\nAnd my wife, as a second holder.",
            "Thanks, that's done: the credit shows in 3-5 days, okay?",
        ],
    ),
    (
        "es-ES",
        [
            "Hola, llamo por la factura de marzo, ¿me ayuda?",
            "Claro, ¿me confirma el titular «principal» de la cuenta?",
            "Sí, soy yo.\nY mi esposa, como segunda titular.",
            "Gracias, ya está: el abono aparece en 3-5 días, ¿vale?",
        ],
    ),
    (
        "ja-JP",
        [
            "こんにちは、三月の請求書について電話しました。",
            "承知しました。「主」契約者のお名前を確認できますか？",
            "はい、私です。\n妻も二人目の契約者です。",
            "ありがとうございます、返金は3～5日で反映されます、よろしいですか？",
        ],
    ),
    (
        "fr-FR",
        [
            "Bonjour, j'appelle pour la facture de mars, vous pouvez m'aider ?",
            "Bien sûr, pouvez-vous confirmer le titulaire « principal » du compte ?",
            "Oui, c'est moi.\nEt ma femme, en second titulaire.",
            "Merci, c'est fait : l'avoir apparaît sous 3-5 jours, d'accord ?",
        ],
    ),
];

fn rng_of(seed: u64, task_id: &str) -> rand::rngs::StdRng {
    let d = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(b"transcript")
        .chain_update(task_id.as_bytes())
        .finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(&d);
    rand::rngs::StdRng::from_seed(s)
}

/// The transcripts of `t`: a realtime voice transcript on about a third of recorded calls,
/// in an org with AI Assistant (`ai_transcripts`); most ended chats' conversations, in any.
pub fn of_task(cfg: &super::SimConfig, t: &SimTask) -> Vec<SimTranscript> {
    if t.channel_type != "telephony" {
        return digital(cfg, t);
    }
    let Some(main) = t
        .recordings
        .iter()
        .find(|r| !r.segment && cfg.ai_transcripts)
    else {
        return Vec::new();
    };
    let mut rng = rng_of(cfg.seed, &t.id);
    if !rng.random_bool(0.35) {
        return Vec::new();
    }
    let (language, phrases) = PHRASES[rng.random_range(0..PHRASES.len())];
    let customer = main.participants.last().cloned().unwrap_or_default();
    let agent = t.agents.first().cloned().unwrap_or_default();
    let bot = rng.random_bool(0.5);
    let mut parties = vec![("customer", "Customer".to_string(), customer)];
    parties.push(("agent", agent.1, agent.0));
    if bot {
        parties.push(("bot", "Virtual Agent".into(), "va-billing".into()));
    }
    let talk = (main.stop_ms - main.start_ms).max(8_000);
    let mut messages = Vec::new();
    if bot {
        let p = &parties[2];
        messages.push(message(
            p,
            main.start_ms,
            "Welcome! Say \"billing\", or 'agent'.",
        ));
    }
    for (i, text) in phrases.iter().enumerate() {
        let p = &parties[i % 2];
        let at = main.start_ms + talk * (i as i64 + 1) / 6;
        messages.push(message(p, at, text));
    }
    // Most are made minutes after the call; some hours later, often after its audio and a
    // first run's read of the window (within the lookback a pipeline keeps for recordings).
    let after = if rng.random_bool(0.1) {
        rng.random_range(2 * 3_600_000..4 * 3_600_000i64)
    } else {
        rng.random_range(60_000..10 * 60_000i64)
    };
    let parseable = !rng.random_bool(0.03);
    // Drawn last, so the draws above (and every transcript before this change) stay as
    // they were: most realtime, some recording-derived vCons, some legacy files.
    let (shape, file_name, source) = match rng.random_range(0..10) {
        0..6 => (
            Shape::Vcon,
            "realtimeVoiceTranscript.json",
            "realtime-voice",
        ),
        6..8 => (Shape::Vcon, "voiceTranscript.json", "recording"),
        _ => (Shape::LegacyVoice, "voiceTranscript.json", "recording"),
    };
    if shape == Shape::LegacyVoice {
        // Only the agent and customer legs, each said word by word from its start.
        messages.retain(|m| m.role.as_deref() != Some("bot"));
        for m in &mut messages {
            let words = m.text.split_whitespace().count() as i64;
            m.duration_ms = Some((words - 1).max(0) * WORD_MS + LAST_WORD_MS);
            m.name = None;
            m.party_id = None;
        }
    }
    vec![SimTranscript {
        id: CCAI_CONFIG_ID.into(),
        file_name: file_name.into(),
        source: source.into(),
        language: language.into(),
        start_ms: main.start_ms,
        create_ms: t.ended_ms + after,
        parseable: parseable || shape == Shape::LegacyVoice,
        messages,
        said: None,
        shape,
    }]
}

/// A legacy transcript's words start this far apart; the last one lasts `LAST_WORD_MS`.
const WORD_MS: i64 = 300;
const LAST_WORD_MS: i64 = 250;

/// A digital task's transcript (most ended chats, AI or not: it is the conversation): `Source` the
/// channel, `id` the conversation id (spec, `TranscriptMulti`), made a few minutes after the
/// chat ends. Its messages carry every field the known layout has; some miss a few, and a
/// few transcripts are in a layout without `message` (read whole).
fn digital(cfg: &super::SimConfig, t: &SimTask) -> Vec<SimTranscript> {
    let mut rng = rng_of(cfg.seed, &t.id);
    if !rng.random_bool(0.8) {
        return Vec::new();
    }
    let conversation: String =
        t.id.replace('-', "")
            .to_uppercase()
            .chars()
            .take(14)
            .collect();
    let create_ms = t.ended_ms + rng.random_range(60_000..5 * 60_000i64);
    let sparse = rng.random_bool(0.3);
    let shape = match rng.random_bool(0.05) {
        true => Shape::DigitalOther,
        false => Shape::Digital,
    };
    let agent = t.agents.first().cloned().unwrap_or_default();
    let lines = [
        (
            "customer",
            "inbound",
            "Hi, my order #1042 hasn't arrived, \"tracking\" says delivered?",
        ),
        (
            "agent",
            "outbound",
            "Sorry about that!\nLet me check with the courier.",
        ),
        ("customer", "inbound", "配達されていません。写真: "),
        ("agent", "outbound", "Card ending ****"),
    ];
    let messages = lines
        .iter()
        .enumerate()
        .map(|(i, (role, direction, text))| {
            let (name, id) = match *role {
                "agent" => (agent.1.clone(), agent.0.clone()),
                _ => (
                    "Dana Customer".to_string(),
                    format!("cust-{}", &conversation[..6]),
                ),
            };
            // A sparse transcript lacks a name, a redaction flag and a timestamp here and there.
            SimMessage {
                role: Some((*role).into()),
                name: (!(sparse && i == 1)).then_some(name),
                party_id: Some(id),
                start_ms: (!(sparse && i == 2)).then_some(t.created_ms + 20_000 * i as i64),
                text: (*text).into(),
                direction: Some((*direction).into()),
                redacted: (!(sparse && i == 0)).then_some(i == 3),
                attachments: match i {
                    2 => vec!["photo.jpg".into()],
                    _ => Vec::new(),
                },
                ..SimMessage::default()
            }
        })
        .collect();
    let mut tr = SimTranscript {
        id: format!("CSR{conversation}"),
        file_name: format!("{}Transcript.json", t.channel_type),
        source: t.channel_type.into(),
        language: "en-US".into(),
        start_ms: t.created_ms,
        create_ms,
        parseable: true,
        messages,
        said: None,
        shape,
    };
    if shape == Shape::DigitalOther {
        // Read whole: one message holding the body's text.
        let body = digital_body(&tr, &t.id);
        let text = String::from_utf8_lossy(&body).trim().to_string();
        let whole = vec![SimMessage {
            text,
            ..SimMessage::default()
        }];
        tr.said = Some(std::mem::replace(&mut tr.messages, whole));
    }
    vec![tr]
}

fn message(p: &(&str, String, String), at: i64, text: &str) -> SimMessage {
    SimMessage {
        role: Some(p.0.into()),
        name: Some(p.1.clone()),
        party_id: Some(p.2.clone()),
        start_ms: Some(at),
        text: text.into(),
        ..SimMessage::default()
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A digital transcript's body: a JSON array of its messages, in the layout a public
/// script reads (`id`, `aliasId`, `direction`, `message`, `timestamp`, `participant`,
/// `redacted`), or for `DigitalOther` the same with `text` for `message`.
fn digital_body(t: &SimTranscript, task_id: &str) -> Vec<u8> {
    let text_key = match t.shape {
        Shape::DigitalOther => "text",
        _ => "message",
    };
    let items: Vec<_> = t
        .said
        .as_ref()
        .unwrap_or(&t.messages)
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut item = json!({ "id": format!("{task_id}-m{i}"), "aliasId": format!("{}-{i}", t.id) });
            item[text_key] = json!(m.text);
            if let Some(d) = &m.direction {
                item["direction"] = json!(d);
            }
            if let Some(at) = m.start_ms {
                item["timestamp"] = json!(at);
            }
            if let Some(r) = m.redacted {
                item["redacted"] = json!(r);
            }
            let mut participant = json!({});
            for (key, v) in [("name", &m.name), ("role", &m.role), ("userId", &m.party_id)] {
                if let Some(v) = v {
                    participant[key] = json!(v);
                }
            }
            item["participant"] = participant;
            if !m.attachments.is_empty() {
                let files: Vec<_> = m
                    .attachments
                    .iter()
                    .map(|f| json!({ "fileName": f, "url": format!("https://files.example/{f}?sig=sim") }))
                    .collect();
                item["attachments"] = json!(files);
            }
            item
        })
        .collect();
    serde_json::to_vec_pretty(&items).unwrap_or_default()
}

/// A legacy voice transcript's body: `responseContents[]`, the customer's results then the
/// agent's (grouped by channel), word times as `{seconds, nanos}` offsets from `start_ms`.
fn legacy_body(t: &SimTranscript) -> Vec<u8> {
    let result = |m: &SimMessage| {
        let from = m.start_ms.unwrap_or(t.start_ms) - t.start_ms;
        let words: Vec<&str> = m.text.split_whitespace().collect();
        let offset = |ms: i64| json!({ "seconds": ms / 1000, "nanos": (ms % 1000) * 1_000_000 });
        let n = words.len();
        let words: Vec<_> = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let at = from + i as i64 * WORD_MS;
                let mut word = json!({ "word": w, "start_time": offset(at) });
                if i + 1 == n {
                    word["end_time"] = offset(at + LAST_WORD_MS);
                }
                word
            })
            .collect();
        let (role, channel) = match m.role.as_deref() {
            Some("agent") => ("AGENT", 2),
            _ => ("CALLER", 1),
        };
        json!({ "recognitionResult": { "role": role, "channelTag": channel, "languageCode": t.language,
                "alternatives": [{ "transcript": m.text, "confidence": 0.91, "words": words }] } })
    };
    let mut by_channel: Vec<&SimMessage> = t.messages.iter().collect();
    by_channel.sort_by_key(|m| m.role.as_deref() == Some("agent"));
    let results: Vec<_> = by_channel.into_iter().map(result).collect();
    let doc = json!({ "source": "recording", "responseContents": results });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

/// The transcript's body in its layout; an unparseable vCon is cut short.
pub fn body(t: &SimTranscript, task_id: &str) -> Vec<u8> {
    match t.shape {
        Shape::Digital | Shape::DigitalOther => return digital_body(t, task_id),
        Shape::LegacyVoice => return legacy_body(t),
        Shape::Vcon => {}
    }
    let mut parties: Vec<(String, String, String)> = Vec::new();
    let mut index = |m: &SimMessage| {
        let key = (
            m.role.clone().unwrap_or_default(),
            m.name.clone().unwrap_or_default(),
            m.party_id.clone().unwrap_or_default(),
        );
        parties.iter().position(|p| *p == key).unwrap_or_else(|| {
            parties.push(key);
            parties.len() - 1
        })
    };
    let dialog: Vec<_> = t
        .messages
        .iter()
        .map(|m| {
            let i = index(m);
            json!({ "type": "text", "start": rfc3339(m.start_ms.unwrap_or(t.start_ms)), "parties": [i],
                    "mediatype": "text/plain", "encoding": "none", "body": m.text })
        })
        .collect();
    let parties: Vec<_> = parties
        .iter()
        .map(|(role, name, id)| {
            let mut p = json!({ "name": name, "role": role });
            let key = if id.starts_with('+') { "tel" } else { "uuid" };
            p[key] = json!(id);
            p
        })
        .collect();
    let doc = json!({
        "vcon": "0.4.0", "uuid": task_id, "created_at": rfc3339(t.create_ms),
        "subject": format!("Transcript of task {task_id}"),
        "parties": parties, "dialog": dialog, "analysis": [], "attachments": [],
    });
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    if !t.parseable {
        bytes.truncate(bytes.len() / 2);
    }
    bytes
}

/// Its body's size and SHA-256 (hex).
pub fn digest(t: &SimTranscript, task_id: &str) -> (u64, String) {
    let b = body(t, task_id);
    (b.len() as u64, hex::encode(Sha256::digest(&b)))
}
