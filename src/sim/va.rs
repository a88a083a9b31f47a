//! Simulated virtual-agent recordings: what `includeVARecordings` adds to a captures answer
//! (spec: `callType` `va-main` or `va-consult`, `channel1`/`channel2` with `VA`,
//! `sensitive` on VA recordings only), on a share of the answered calls, derived from each
//! task alone so that adding them changed no other data. A third are flagged sensitive (a
//! caller reading a card number to the bot); a quarter are the bot consulted by the agent
//! during the call rather than the bot before the queue.

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::data::{SimRecording, SimTask};

/// A virtual agent's recording of a call, and whether it is flagged sensitive.
#[derive(Debug, Clone)]
pub struct SimVaRecording {
    /// The recording (never a segment).
    pub rec: SimRecording,
    /// `sensitive`.
    pub sensitive: bool,
    /// `callType`: `va-main` (the bot before the queue) or `va-consult` (the agent consults
    /// the bot).
    pub call_type: &'static str,
}

/// The VA recordings of `t`: on about a fifth of recorded calls, the bot's part before the
/// call reached the queue.
pub fn of_task(seed: u64, t: &SimTask) -> Vec<SimVaRecording> {
    let (Some(main), Some(answered)) = (t.recordings.iter().find(|r| !r.segment), t.answered_ms)
    else {
        return Vec::new();
    };
    let d = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(b"va")
        .chain_update(t.id.as_bytes())
        .finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(&d);
    let mut rng = rand::rngs::StdRng::from_seed(s);
    if !rng.random_bool(0.2) {
        return Vec::new();
    }
    let sensitive = rng.random_bool(0.35);
    let caller = main.participants.last().cloned().unwrap_or_default();
    let stem = &t.id[..t.id.len() - 3];
    let rec = if rng.random_bool(0.25) {
        let agent = t.agents.first().map(|a| a.0.clone()).unwrap_or_default();
        let start_ms = answered + 5_000;
        SimRecording {
            id: format!("{stem}-vc"),
            task_id: t.id.clone(),
            segment: false,
            file_name: "vaConsultRecording.wav".into(),
            start_ms,
            stop_ms: (start_ms + 20_000).min(t.ended_ms.max(start_ms + 2_000)),
            participants: vec![agent, "va-billing".into()],
            available_ms: main.available_ms,
        }
    } else {
        let start_ms = t.created_ms + 1_000;
        SimRecording {
            id: format!("{stem}-va"),
            task_id: t.id.clone(),
            segment: false,
            file_name: "vaRecording.wav".into(),
            start_ms,
            stop_ms: answered.max(start_ms + 2_000),
            participants: vec!["va-billing".into(), caller],
            available_ms: main.available_ms,
        }
    };
    let call_type = match rec.id.ends_with("-vc") {
        true => "va-consult",
        false => "va-main",
    };
    vec![SimVaRecording {
        rec,
        sensitive,
        call_type,
    }]
}
