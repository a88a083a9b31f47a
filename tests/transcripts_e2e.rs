//! Transcripts end to end against the simulator: copied like audio, split into messages
//! equal to the truth byte for byte, late ones picked up by the lookback, and nothing
//! copied with `transcripts = false`; virtual-agent recordings, sensitive audio withheld
//! unless the pipeline opts in.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_transcripts_are_picked_up_by_the_lookback_without_duplicates() {
    let env = env(ccetl::sim::SimConfig {
        calls_per_day: 600,
        ..sim_config()
    })
    .await;
    env.run_ok().await;
    assert_matches_truth(&env);
    let late: Vec<String> = env
        .truth()
        .tasks
        .iter()
        .filter(|t| t.transcripts.iter().any(|tr| !tr.available))
        .map(|t| t.id.clone())
        .collect();
    assert!(
        !late.is_empty(),
        "some transcripts are made after a first run"
    );
    let broken = env.count("SELECT count(*) FROM webex_transcripts WHERE status = 'unparsed'");
    assert!(broken > 0, "the simulator serves some broken transcripts");

    // Five hours pass: the late transcripts are made.
    env.sim.sim.advance(5 * 3_600_000);
    let fetched_before = env.stats()["transcripts"];
    env.run_ok().await;
    assert_matches_truth(&env);
    let picked = env.strings("SELECT DISTINCT task_id FROM webex_transcripts");
    let now: Vec<&String> = late
        .iter()
        .filter(|id| {
            env.truth()
                .tasks
                .iter()
                .any(|t| &t.id == *id && t.transcripts.iter().all(|tr| tr.available))
        })
        .collect();
    assert!(!now.is_empty(), "some late transcripts became available");
    for id in now {
        assert!(picked.contains(id), "late transcript of {id} picked up");
    }
    let fetched = env.stats()["transcripts"] - fetched_before;
    assert!(fetched > 0, "the late ones were downloaded");

    // A third run finds nothing new: no transcript is downloaded again.
    let before = env.stats()["transcripts"];
    env.run_ok().await;
    assert_eq!(
        env.stats()["transcripts"],
        before,
        "nothing downloaded twice"
    );

    // The query view puts each message beside its call.
    let joined = env.count(
        "SELECT count(*) FROM transcripts WHERE queue_name IS NOT NULL AND channel_type = 'telephony'",
    );
    let messages = env.count("SELECT count(*) FROM webex_transcript_messages");
    assert!(
        joined > 0 && joined == messages,
        "{joined} of {messages} messages joined to their call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_off_lists_them_disabled_and_copies_nothing() {
    let env = env_with(sim_config(), "transcripts = false").await;
    env.run_ok().await;
    let listed = env.count("SELECT count(*) FROM webex_transcripts");
    let disabled = env.count(
        "SELECT count(*) FROM webex_transcripts WHERE status = 'disabled' AND object_uri IS NULL",
    );
    assert!(
        listed > 0 && disabled == listed,
        "{disabled} of {listed} disabled"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM webex_transcript_messages"),
        0
    );
    assert_eq!(
        env.stats().get("transcripts"),
        None,
        "no transcript downloaded"
    );
    assert!(
        env.files().keys().all(|k| !k.starts_with("transcripts/")),
        "no transcript object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_va_audio_is_withheld_by_default_and_stored_when_opted_in() {
    let env = env_with(sim_config(), "va_recordings = true").await;
    env.run_ok().await;
    let truth = env.truth();
    assert_matches_va(&env, &truth, Some(false));
    let va = |sql: &str| {
        env.count(&format!(
            "SELECT count(*) FROM webex_captures WHERE call_type IN ('va-main', 'va-consult') AND {sql}"
        ))
    };
    let (withheld, stored) = (
        va("audio_status = 'withheld'"),
        va("audio_status = 'stored'"),
    );
    assert!(
        withheld > 0 && stored > 0,
        "{withheld} withheld, {stored} stored"
    );
    assert_eq!(va("sensitive AND audio_status <> 'withheld'"), 0);
    let kinds = env.strings("SELECT DISTINCT call_type FROM webex_captures ORDER BY 1");
    assert_eq!(
        kinds,
        ["main", "va-consult", "va-main"],
        "both kinds of VA recording"
    );

    let env = env_with(
        sim_config(),
        "va_recordings = true\nsensitive_audio = \"store\"",
    )
    .await;
    env.run_ok().await;
    assert_matches_va(&env, &env.truth(), Some(true));
    let sensitive_stored = env
        .count("SELECT count(*) FROM webex_captures WHERE sensitive AND audio_status = 'stored'");
    assert_eq!(
        sensitive_stored, withheld,
        "the same recordings, stored this time"
    );

    // Without va_recordings (the API's default), none are asked for.
    let env = common::env(sim_config()).await;
    env.run_ok().await;
    assert_eq!(
        env.count("SELECT count(*) FROM webex_captures WHERE call_type = 'va-main'"),
        0
    );
}

#[test]
fn sensitive_audio_takes_skip_or_store_only() {
    let text = pipeline_toml("http://127.0.0.1:9", "t", "sensitive_audio = \"keep\"");
    let err =
        ccetl::config::PipelineConfig::parse(std::path::Path::new("p.toml"), &text, &|_| None)
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("sensitive_audio") && err.contains("\"skip\" or \"store\""),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_channel_lands_chats_in_calls_beside_the_calls() {
    let env = common::env(sim_config()).await;
    let text = std::fs::read_to_string(&env.pipeline)
        .unwrap()
        .replace("channel_types = [\"telephony\"]", "channel_types = []");
    std::fs::write(&env.pipeline, text).unwrap();
    env.run_ok().await;
    // Every channel, created before the settle margin: what `legacy_truth` keeps.
    let truth = env.legacy_truth();
    let ids = |channel: &str| -> Vec<String> {
        let mut v: Vec<String> = truth
            .tasks
            .iter()
            .filter(|t| t.channel_type == channel)
            .map(|t| t.id.clone())
            .collect();
        v.sort();
        v
    };
    let chats = ids("chat");
    assert!(!chats.is_empty(), "the simulator has chats");
    let got = |channel: &str| {
        env.strings(&format!(
            "SELECT call_id FROM calls WHERE channel_type = '{channel}' AND systems = 'webex' ORDER BY 1"
        ))
    };
    assert_eq!(got("chat"), chats, "every chat is a row of calls");
    assert_eq!(got("telephony"), ids("telephony"), "beside every call");
    // Every channel means every one: the spec's, and one it does not list, kept as it came.
    let mut channels: Vec<String> = truth.tasks.iter().map(|t| t.channel_type.clone()).collect();
    channels.sort();
    channels.dedup();
    assert!(channels.contains(&"workitem".to_string()), "{channels:?}");
    for c in &channels {
        assert_eq!(got(c), ids(c), "every {c} task is a row of calls");
    }
    // Chats' transcripts are copied beside the calls' (object, size, hash) and split into
    // their messages, every field as the truth has it.
    common::assert_transcripts_match(&env, &truth);
    let formats = env.strings(
        "SELECT DISTINCT t.format FROM webex_transcripts t JOIN calls c ON c.call_id = t.task_id WHERE c.channel_type = 'chat' AND t.file_name = 'chatTranscript.json' AND t.transcript_source = 'chat'");
    assert_eq!(formats, ["digital"]);
    // A chat beside a call in the `transcripts` view, as the README's query shows them.
    let seen = env.strings(
        "SELECT DISTINCT channel_type FROM transcripts WHERE channel_type IS NOT NULL ORDER BY 1",
    );
    assert!(
        seen.contains(&"chat".to_string()) && seen.contains(&"telephony".to_string()),
        "{seen:?}"
    );
    let n = env.count("SELECT count(*) FROM webex_transcripts WHERE transcript_source = 'chat'");
    assert!(
        n * 2 > chats.len() as i64,
        "{n} of {} chats have a transcript",
        chats.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_org_without_transcripts_is_not_asked_again_for_them() {
    let env = common::env(ccetl::sim::SimConfig {
        ai_transcripts: false,
        ..sim_config()
    })
    .await;
    env.run_ok().await;
    let captures_before = env.stats()["captures"];
    let second = env.run_ok().await;
    assert_matches_truth(&env);
    assert_eq!(env.count("SELECT count(*) FROM webex_transcripts"), 0);
    // The lookback asks only for tasks with recordings still to come, as before transcripts:
    // an org that never made one (no AI Assistant) is not asked again for them.
    assert_reread_asked_only_open(&env, &second, captures_before, |t| {
        t.recordings.iter().any(|r| !r.available)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_transcripts_do_not_make_recorded_calls_wait_for_voice_ones() {
    let env = common::env(ccetl::sim::SimConfig {
        ai_transcripts: false,
        ..sim_config()
    })
    .await;
    let text = std::fs::read_to_string(&env.pipeline)
        .unwrap()
        .replace("channel_types = [\"telephony\"]", "channel_types = []");
    std::fs::write(&env.pipeline, text).unwrap();
    env.run_ok().await;
    let captures_before = env.stats()["captures"];
    let second = env.run_ok().await;
    let chats =
        env.count("SELECT count(*) FROM webex_transcripts WHERE transcript_source = 'chat'");
    assert!(chats > 0, "chats have their transcripts without AI");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM webex_transcripts WHERE transcript_source IN ('realtime-voice', 'recording')"
        ),
        0,
        "no voice transcript without AI"
    );
    // Asked again: recorded calls with audio still to come, and the digital tasks (no
    // recording settles them); not every recorded call, for a voice transcript this org
    // never makes.
    assert_reread_asked_only_open(&env, &second, captures_before, |t| {
        t.recordings.iter().any(|r| !r.available) || t.channel_type != "telephony"
    });
}
