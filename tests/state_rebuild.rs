//! A lost state file (an ephemeral Airflow worker's disk): the next run refuses to start over
//! silently, `ccetl state rebuild` recreates windows, watermarks and the audio ledger from the
//! warehouse, and the run after it downloads nothing again.

mod common;

use common::*;

/// The state's watermarks, windows and stored audio, as `state show` prints them.
fn durable_part(env: &Env) -> String {
    let st = ccetl::state::State::open(&env.dir.path().join("state.duckdb")).unwrap();
    st.summary()
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with("last runs"))
        .filter(|l| !l.contains(" pending ") && !l.contains(" missing "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_state_is_rebuilt_from_the_warehouse_and_nothing_is_downloaded_again() {
    let env = env_with(xima_sim_config(), &format!("{LEGACY_SOURCE}{XIMA_SOURCE}")).await;
    env.run_ok().await;
    let before = durable_part(&env);
    assert!(before.contains("stored"), "{before}");

    // The worker's disk is gone.
    for f in ["state.duckdb", "state.duckdb.wal"] {
        let _ = std::fs::remove_file(env.dir.path().join(f));
    }
    let pipeline = env.pipeline.to_string_lossy().to_string();
    let now = env.now().to_rfc3339();
    let (p, n) = (pipeline.clone(), now.clone());
    let (code, _, err) = tokio::task::spawn_blocking(move || ccetl(&["run", &p, "--now", &n]))
        .await
        .unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("is missing") && err.contains("ccetl state rebuild"),
        "{err}"
    );
    assert!(
        !env.dir.path().join("state.duckdb").exists(),
        "nothing started over"
    );

    let p = pipeline.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || ccetl(&["state", "rebuild", &p]))
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("wx: ") && out.contains("windows from manifests"),
        "{out}"
    );
    assert_eq!(
        durable_part(&env),
        before,
        "watermarks, windows and stored audio are back"
    );

    // The next run (Webex needs a new login: its rotated token lived in the old state)
    // re-reads only the lookback and reuses every stored object.
    let audio = env.stats().get("audio").copied().unwrap_or(0);
    let xima_audio = env.stats()["xima_audio"];
    let files = env.modified();
    let (report, result) = env.run_sources(&["legacy", "xima"]).await;
    result.expect("run after rebuild");
    assert_eq!(
        env.stats()["xima_audio"],
        xima_audio,
        "no audio downloaded again"
    );
    assert_eq!(env.stats().get("audio").copied().unwrap_or(0), audio);
    assert!(report.totals().audio_reused > 0);
    assert_eq!(env.modified(), files, "nothing rewritten");
}
