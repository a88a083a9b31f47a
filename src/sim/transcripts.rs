//! Simulated transcripts: vCon JSON as Webex's "Guide for Voice Transcripts" describes it
//! (draft revision 04: participants in `parties`, messages in `dialog`), on a share of the
//! recorded calls, derived from each task alone so that adding them changed no other data.
//!
//! Their text is what breaks naive exports: commas, quotes, newlines and non-Latin scripts.
//! A few are made later than their call's audio (a lookback finds them), and a few are
//! broken JSON (ccetl keeps the object and marks the row `unparsed`). Ended chats have a
//! digital transcript, which ccetl copies without splitting.

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
    /// The messages, as the body holds them.
    pub messages: Vec<SimMessage>,
    /// Whether the body is a well-formed vCon (never for a digital one: ccetl does not split
    /// those).
    pub parseable: bool,
    /// Whether it is a digital task's transcript.
    pub digital: bool,
}

/// A message of a transcript.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SimMessage {
    /// The party's role.
    pub role: String,
    /// The party's name.
    pub name: String,
    /// The party's id (uuid or masked number).
    pub party_id: String,
    /// When it was said (epoch ms).
    pub start_ms: i64,
    /// What was said.
    pub text: String,
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
    vec![SimTranscript {
        id: CCAI_CONFIG_ID.into(),
        file_name: "realtimeVoiceTranscript.json".into(),
        source: "realtime-voice".into(),
        language: language.into(),
        start_ms: main.start_ms,
        create_ms: t.ended_ms + after,
        parseable: !rng.random_bool(0.03),
        messages,
        digital: false,
    }]
}

/// A digital task's transcript (most ended chats, AI or not: it is the conversation): `Source` the
/// channel, `id` the conversation id (spec, `TranscriptMulti`), made a few minutes after the
/// chat ends.
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
    vec![SimTranscript {
        id: format!("CSR{conversation}"),
        file_name: format!("{}Transcript.json", t.channel_type),
        source: t.channel_type.into(),
        language: "en-US".into(),
        start_ms: t.created_ms,
        create_ms: t.ended_ms + rng.random_range(60_000..5 * 60_000i64),
        parseable: false,
        messages: Vec::new(),
        digital: true,
    }]
}

fn message(p: &(&str, String, String), at: i64, text: &str) -> SimMessage {
    SimMessage {
        role: p.0.into(),
        name: p.1.clone(),
        party_id: p.2.clone(),
        start_ms: at,
        text: text.into(),
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A digital transcript's body. Its layout here is a stand-in: Webex's "Guide for Digital
/// Transcripts" (messages flattened into plain text) is not at hand, and ccetl only copies
/// these objects, so nothing depends on it but their bytes.
fn digital_body(t: &SimTranscript, task_id: &str) -> Vec<u8> {
    let lines = [
        "Customer: Hi, my order #1042 hasn't arrived, \"tracking\" says delivered?",
        "Agent: Sorry about that!\nLet me check with the courier.",
        "Customer: 配達されていません。",
    ];
    let doc = json!({ "conversationId": t.id, "taskId": task_id, "channelType": t.source,
                      "transcript": lines.join("\n") });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

/// The transcript's body: a vCon, or for an unparseable one, a vCon cut short.
pub fn body(t: &SimTranscript, task_id: &str) -> Vec<u8> {
    if t.digital {
        return digital_body(t, task_id);
    }
    let mut parties: Vec<(String, String, String)> = Vec::new();
    let mut index = |m: &SimMessage| {
        let key = (m.role.clone(), m.name.clone(), m.party_id.clone());
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
            json!({ "type": "text", "start": rfc3339(m.start_ms), "parties": [i],
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
