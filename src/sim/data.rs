//! Deterministic simulated calls.
//!
//! Each UTC day's calls are generated from `(seed, day)` alone, so the data is the same in
//! every process and every run, and "new calls arrive" simply means the simulator's clock
//! has moved past more of them. Task ids carry their day in the first group, so a task can
//! be found from its id without an index.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

/// Milliseconds in a day.
pub const DAY_MS: i64 = 86_400_000;
const OPEN_MS: i64 = 8 * 3_600_000;
const CLOSE_MS: i64 = 20 * 3_600_000;

/// A simulated task: what `/v1/tasks`, Search, captures and the legacy API all describe.
#[derive(Debug, Clone)]
pub struct SimTask {
    /// Task id.
    pub id: String,
    /// Its day (days since the epoch).
    pub day: i64,
    /// Created (epoch ms).
    pub created_ms: i64,
    /// Ended (epoch ms).
    pub ended_ms: i64,
    /// `telephony`, …
    pub channel_type: &'static str,
    /// The task's state.
    pub status: &'static str,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// Caller.
    pub origin: String,
    /// Dialed number.
    pub destination: String,
    /// The agent (id, name) who owned it.
    pub owner: Option<(String, String)>,
    /// The queue (id, name) it was in.
    pub queue: Option<(String, String)>,
    /// Whether it was recorded.
    pub capture_requested: bool,
    /// Its recordings: the stitched call, then segments.
    pub recordings: Vec<SimRecording>,
    /// When an agent first answered (`None`: abandoned or IVR only).
    pub answered_ms: Option<i64>,
    /// The agents who handled the call, one per leg, in order.
    pub agents: Vec<(String, String)>,
    /// The entry point the call came in on.
    pub entrypoint: &'static str,
}

/// A simulated recording.
#[derive(Debug, Clone)]
pub struct SimRecording {
    /// Capture id.
    pub id: String,
    /// Its task.
    pub task_id: String,
    /// A segment rather than the stitched call.
    pub segment: bool,
    /// The audio file's name.
    pub file_name: String,
    /// Start (epoch ms).
    pub start_ms: i64,
    /// Stop (epoch ms).
    pub stop_ms: i64,
    /// Agent and caller ids heard.
    pub participants: Vec<String>,
    /// When the captures API starts listing it (recordings appear after the call).
    pub available_ms: i64,
}

impl SimRecording {
    /// Its length in whole seconds.
    pub fn duration_secs(&self) -> u64 {
        ((self.stop_ms - self.start_ms).max(0) / 1000) as u64
    }
}

fn rng_for(seed: u64, salt: &str, n: i64) -> StdRng {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(salt.as_bytes());
    h.update(n.to_le_bytes());
    let d = h.finalize();
    let mut s = [0u8; 32];
    s.copy_from_slice(&d);
    StdRng::from_seed(s)
}

fn uuid_with_head(rng: &mut StdRng, head: u32) -> String {
    let a: u16 = rng.random();
    let b: u16 = rng.random::<u16>() & 0x0fff;
    let c: u16 = (rng.random::<u16>() & 0x3fff) | 0x8000;
    let d: u64 = rng.random::<u64>() & 0xffff_ffff_ffff;
    format!("{head:08x}-{a:04x}-4{b:03x}-{c:04x}-{d:012x}")
}

/// The day a task id belongs to (its first group), if it is one of ours.
pub fn day_of_task_id(id: &str) -> Option<i64> {
    let head = id.split('-').next()?;
    (head.len() == 8)
        .then(|| i64::from_str_radix(head, 16).ok())
        .flatten()
}

/// The org's agents and queues, as (id, name).
pub struct People {
    /// Agents.
    pub agents: Vec<(String, String)>,
    /// Queues.
    pub queues: Vec<(String, String)>,
}

const FIRST: [&str; 12] = [
    "Jane", "Omar", "Li", "Priya", "Sam", "Ana", "Kofi", "Mia", "Raj", "Eva", "Tom", "Noor",
];
const LAST: [&str; 6] = ["Agent", "Rivera", "Chen", "Okafor", "Novak", "Silva"];
const QUEUES: [&str; 4] = ["Support_Q", "Sales_Q", "Billing_Q", "Retention_Q"];
/// Entry point names, with the characters CSV must quote (a comma, quotes, a line break).
const ENTRYPOINTS: [&str; 3] = ["Main line, \"Press 1\"", "After hours\nOverflow", "Sales"];
const TEAMS: [&str; 3] = ["Team Red", "Team Blue", "Team Green"];

/// The team an agent belongs to.
pub fn team_of(agent_id: &str) -> &'static str {
    TEAMS[agent_id.bytes().map(usize::from).sum::<usize>() % TEAMS.len()]
}

/// The site (business unit) a team sits in.
pub fn site_of(team: &str) -> &'static str {
    if team == "Team Blue" {
        "Dublin"
    } else {
        "Austin"
    }
}

/// Values the Search API's CSR fields take for a call, derived from the call itself.
impl SimTask {
    /// The team of the agent who last handled the call.
    pub fn team(&self) -> Option<&'static str> {
        self.owner.as_ref().map(|o| team_of(&o.0))
    }

    /// How the call ended, as Search reports it.
    pub fn termination_type(&self) -> &'static str {
        match (self.status, &self.queue) {
            ("abandoned", _) => "abandoned",
            (_, None) => "self-service",
            _ => "normal",
        }
    }

    /// The agent's wrap-up code, when an agent took the call.
    pub fn wrapup_code(&self) -> Option<&'static str> {
        const CODES: [&str; 3] = ["Resolved", "Follow-up", "Escalated"];
        self.answered_ms?;
        Some(CODES[self.id.bytes().map(usize::from).sum::<usize>() % CODES.len()])
    }

    /// Moves the call and its recordings `ms` later (earlier when negative), durations kept.
    fn shift(&mut self, ms: i64) {
        self.created_ms += ms;
        self.ended_ms += ms;
        self.answered_ms = self.answered_ms.map(|a| a + ms);
        for r in &mut self.recordings {
            r.start_ms += ms;
            r.stop_ms += ms;
            r.available_ms += ms;
        }
    }

    /// `lastUpdatedTime` as `/v1/tasks` reports it at `now`: the spec says it "may also update
    /// after task closure" (wrap-up, dispositions), so it lies minutes to hours after the end
    /// for answered calls, and moves no further than the clock.
    pub fn last_updated_ms(&self, now: i64) -> i64 {
        const MINUTE: i64 = 60_000;
        let later = match self.answered_ms {
            // 2 minutes to 3 hours, fixed per task.
            Some(_) => {
                2 * MINUTE + (self.id.bytes().map(i64::from).sum::<i64>() * 7919) % (178 * MINUTE)
            }
            None => 0,
        };
        (self.ended_ms + later).min(now).max(self.created_ms)
    }

    /// A call-associated data variable set by the flow (a global variable in the API).
    pub fn customer_tier(&self) -> &'static str {
        const TIERS: [&str; 3] = ["gold", "silver", "bronze"];
        TIERS[self.id.bytes().rev().map(usize::from).sum::<usize>() % TIERS.len()]
    }
}

/// The org's agents and queues for `seed`.
pub fn people(seed: u64) -> People {
    let mut rng = rng_for(seed, "people", 0);
    let agents = (0..12)
        .map(|i| {
            (
                uuid_with_head(&mut rng, 0xa9e3_c2b1),
                format!("{} {}", FIRST[i], LAST[i % LAST.len()]),
            )
        })
        .collect();
    let queues = QUEUES
        .iter()
        .map(|q| (uuid_with_head(&mut rng, 0x77f0_e1d2), q.to_string()))
        .collect();
    People { agents, queues }
}

/// The channel of a day's `n`-th digital task (no draw, so the other data stays as it
/// was): chat, email, social, and `workitem`, a channel the spec's enum does not list (newer
/// captures documentation names work items): a client must keep a value it does not know,
/// and only an unfiltered listing returns it. In turn, so a small day has each.
fn digital_channel(n: usize) -> &'static str {
    ["chat", "email", "workitem", "chat", "social"][n % 5]
}

/// All calls of UTC day `day` (days since the epoch), sorted by creation time.
pub fn day_tasks(seed: u64, day: i64, calls_per_day: u32, people: &People) -> Vec<SimTask> {
    let mut rng = rng_for(seed, "day", day);
    let day_start = day * DAY_MS;
    let mut out = Vec::with_capacity(calls_per_day as usize);
    let mut digital = 0;
    for _ in 0..calls_per_day {
        let id = uuid_with_head(&mut rng, day as u32);
        // Business hours, 08:00-20:00 UTC: nights are quiet, as in a real contact center.
        let created_ms = day_start + OPEN_MS + rng.random_range(0..CLOSE_MS - OPEN_MS);
        let chat = rng.random_bool(0.08);
        let roll: f64 = rng.random();
        let abandoned = roll < 0.10;
        let ivr_only = !abandoned && roll < 0.15;
        let handled = !abandoned && !ivr_only;
        let direction = if rng.random_bool(0.85) {
            "inbound"
        } else {
            "outbound"
        };
        let origin = format!("+1555{:07}", rng.random_range(0..10_000_000u32));
        let destination = format!("+1800555{:04}", rng.random_range(0..10_000u32));
        let queue =
            (!ivr_only).then(|| people.queues[rng.random_range(0..people.queues.len())].clone());
        let pre_ms = rng.random_range(5_000..120_000i64);
        let talk_ms = if handled {
            rng.random_range(30_000..900_000i64)
        } else {
            0
        };
        let ended_ms = (created_ms + pre_ms + talk_ms).min(day_start + DAY_MS * 2);
        let legs = if handled {
            match rng.random_range(0..100) {
                0..70 => 1,
                70..95 => 2,
                _ => 3,
            }
        } else {
            0
        };
        let agents: Vec<(String, String)> = (0..legs)
            .map(|_| people.agents[rng.random_range(0..people.agents.len())].clone())
            .collect();
        let recorded = handled && !chat;
        let delay_ms = if rng.random_bool(0.05) {
            rng.random_range(2 * 3_600_000..5 * 3_600_000i64)
        } else {
            rng.random_range(60_000..20 * 60_000i64)
        };
        let available_ms = ended_ms + delay_ms;
        let masked = format!("{}****{}", &origin[..5], &origin[origin.len() - 3..]);
        let mut recordings = Vec::new();
        if recorded {
            let talk_start = created_ms + pre_ms;
            recordings.push(SimRecording {
                id: id.clone(),
                task_id: id.clone(),
                segment: false,
                file_name: "combinedRecordings.wav".into(),
                start_ms: talk_start,
                stop_ms: ended_ms,
                participants: agents
                    .iter()
                    .map(|a| a.0.clone())
                    .chain([masked.clone()])
                    .collect(),
                available_ms,
            });
            let leg_ms = talk_ms / i64::from(legs);
            for (i, agent) in agents.iter().enumerate() {
                let seg_id = uuid_with_head(&mut rng, day as u32);
                let s = talk_start + leg_ms * i as i64;
                recordings.push(SimRecording {
                    id: seg_id,
                    task_id: id.clone(),
                    segment: true,
                    file_name: format!("segment-{}.wav", i + 1),
                    start_ms: s,
                    stop_ms: s + leg_ms,
                    participants: vec![agent.0.clone(), masked.clone()],
                    available_ms,
                });
            }
        }
        let entrypoint =
            ENTRYPOINTS[id.bytes().map(usize::from).sum::<usize>() % ENTRYPOINTS.len()];
        let channel_type = if chat {
            digital += 1;
            digital_channel(digital - 1)
        } else {
            "telephony"
        };
        out.push(SimTask {
            answered_ms: handled.then_some(created_ms + pre_ms),
            agents: agents.clone(),
            entrypoint,
            id,
            day,
            created_ms,
            ended_ms,
            channel_type,
            status: if abandoned { "abandoned" } else { "completed" },
            direction,
            origin,
            destination,
            owner: agents.last().cloned(),
            queue,
            capture_requested: recorded,
            recordings,
        });
    }
    out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    // Some calls arrive in the same millisecond: the case where naive `from`-paging loses
    // tasks at a page boundary.
    for i in 1..out.len() {
        if rng.random_bool(0.15) {
            let shift = out[i - 1].created_ms - out[i].created_ms;
            out[i].shift(shift);
        }
    }
    // One call a day starts exactly at noon, on an hour's edge: a window boundary for hourly
    // windows, where a query with an inclusive `to` lists it twice.
    let noon = day_start + DAY_MS / 2;
    if let Some(t) = out.iter_mut().min_by_key(|t| (t.created_ms - noon).abs()) {
        t.shift(noon - t.created_ms);
    }
    out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    out
}

/// Seed for a recording's audio bytes.
pub fn audio_seed(seed: u64, recording_id: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(recording_id.as_bytes());
    let d = h.finalize();
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sorted() {
        let p = people(1);
        let a = day_tasks(1, 20_000, 50, &p);
        let b = day_tasks(1, 20_000, 50, &p);
        assert_eq!(a.len(), 50);
        assert_eq!(
            a.iter().map(|t| &t.id).collect::<Vec<_>>(),
            b.iter().map(|t| &t.id).collect::<Vec<_>>()
        );
        assert!(a.windows(2).all(|w| w[0].created_ms <= w[1].created_ms));
        assert!(a.iter().all(|t| day_of_task_id(&t.id) == Some(20_000)));
        assert!(
            a.iter().any(|t| t.recordings.len() > 2),
            "some calls are transferred"
        );
        assert!(
            a.iter().any(|t| t.owner.is_none()),
            "some calls are abandoned"
        );
    }
}
