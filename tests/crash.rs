//! Crash safety: `ccetl run` killed with SIGKILL at random points, many times, then rerun to
//! completion, must leave exactly the warehouse an uninterrupted run leaves: the same rows
//! in every table (no duplicates, no gaps), every stored recording present with its hash,
//! and nothing a reader could mistake for data. On a local directory and on S3.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ccetl::sim::SimConfig;
use common::s3::S3;
use common::*;
use rand::Rng;

fn crash_sim() -> SimConfig {
    SimConfig {
        // Four days: more windows than the lookback re-reads, so a window wrongly marked done
        // by a killed run would stay missing.
        days: 3,
        calls_per_day: 30,
        audio_rate: 2000,
        latency_ms: 5,
        ..xima_sim_config()
    }
}

/// Webex (always in the test pipeline), legacy and Xima: every source's commit path.
fn sources() -> String {
    format!("{LEGACY_SOURCE}{XIMA_SOURCE}")
}

/// Starts `ccetl run` as a child, as a scheduler would.
fn spawn_run(env: &Env) -> std::process::Child {
    spawn_run_crashing(env, None, &[])
}

/// …optionally aborting at a crash point (`CCETL_CRASH_AT`, see src/failpoint.rs).
/// `only`: the sources to run (all when empty).
fn spawn_run_crashing(env: &Env, crash_at: Option<&str>, only: &[&str]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccetl"));
    if let Some(c) = crash_at {
        cmd.env("CCETL_CRASH_AT", c);
    }
    let pipeline = env.pipeline.to_string_lossy();
    cmd.args(["run", &pipeline, "--now", &env.now().to_rfc3339()]);
    for source in only {
        cmd.args(["--source", source]);
    }
    cmd.env("CCETL_LOG", "ccetl=error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ccetl starts")
}

async fn wait(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// Waits for a run that must succeed.
async fn run_to_end(child: std::process::Child) {
    let out = wait(child).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}

/// After a run killed between a window's table commits: each Delta table reads whole, at
/// the version its last commit made, for python's deltalake as for `ccetl query`.
fn every_table_reads_whole(env: &Env) {
    let tables: Vec<(&str, String)> = ccetl::source::tables()
        .map(|t| (t.name, env.warehouse_dir().join(t.name)))
        .filter(|(_, d)| d.join("_delta_log").is_dir())
        .map(|(t, d)| (t, d.display().to_string()))
        .collect();
    assert!(!tables.is_empty(), "the killed run committed some tables");
    let keys: std::collections::BTreeMap<&str, &str> = ccetl::source::tables()
        .map(|t| (t.name, t.keys[0]))
        .collect();
    let mut args = vec![serde_json::to_string(&keys).unwrap(), "{}".to_string()];
    args.extend(tables.iter().map(|(_, d)| d.clone()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let read = common::readers::run(common::readers::READ_TABLES, &args, &[]);
    for (t, _) in &tables {
        let rows = env.count(&format!("SELECT count(*) FROM {t}"));
        assert_eq!(
            read[*t]["rows"], rows,
            "{t} after a kill mid-commit: {read}"
        );
    }
}

async fn crash_and_rerun(s3: Option<&S3>, kills: usize) {
    // The uninterrupted run, for reference and for how long a run takes.
    let reference = env_with(crash_sim(), &sources()).await;
    if let Some(s3) = s3 {
        reference.set_warehouse(&s3.warehouse_toml("reference"));
    }
    let started = Instant::now();
    run_to_end(spawn_run(&reference)).await;
    let full = started.elapsed();
    let want = table_snapshot(&reference);
    assert!(want["webex_tasks"].lines().count() > 50, "a sizeable run");

    // The same data, killed at random points: early (config, token), mid-window (lists,
    // downloads, Parquet, manifests, state commits) and late.
    let env = env_with(crash_sim(), &sources()).await;
    if let Some(s3) = s3 {
        env.set_warehouse(&s3.warehouse_toml("crashed"));
    }
    // First at each boundary of the commit protocol, where a random kill rarely lands: mid-audio
    // (parts uploaded, object unfinished), after a window's Parquet, between its tables'
    // commits, after its manifest, after its state commit.
    for point in [
        "audio:3",
        "files:2",
        "table:3",
        "manifest:2",
        "state:2",
        "files:5",
        "audio:20",
    ] {
        let out = wait(spawn_run_crashing(&env, Some(point), &[])).await;
        let crashed = String::from_utf8_lossy(&out.stderr).contains("crash point");
        assert!(
            crashed || out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if point == "table:3" && s3.is_none() {
            every_table_reads_whole(&env);
        }
    }
    // Work committed by a killed run stays done, so later runs have less left: kill after
    // up to a fifth of a full run, until `kills` runs died by SIGKILL.
    let mut rng = rand::rng();
    let (mut killed, mut killed_before_done, mut done) = (0, 0, false);
    let mut max = (full.as_millis() as u64 / 5).max(50);
    for _ in 0..kills * 4 {
        if killed >= kills {
            break;
        }
        let delay = Duration::from_millis(rng.random_range(0..=max));
        let mut child = spawn_run(&env);
        tokio::time::sleep(delay).await;
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "a run failed before its kill: {status}");
                done = true;
                // Runs now finish within `delay` (little or nothing left): kill the next
                // ones sooner, or they all finish and the kills never come.
                max = (delay.as_millis() as u64 / 2).max(20);
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                if !done {
                    killed_before_done += 1;
                }
            }
        }
    }
    eprintln!("full run {full:?}; {killed} kills, {killed_before_done} before any run completed");
    assert_eq!(killed, kills);
    assert!(
        killed_before_done >= kills / 2,
        "most kills hit a run with work to do"
    );
    run_to_end(spawn_run(&env)).await;

    let got = table_snapshot(&env);
    for (table, rows) in &want {
        if &got[table] != rows {
            let (g, w): (Vec<&str>, Vec<&str>) =
                (got[table].lines().collect(), rows.lines().collect());
            let first = g.iter().zip(&w).position(|(a, b)| a != b);
            panic!(
                "table {table} differs from the uninterrupted run: {} rows vs {}; first difference at row {first:?}: {:?} vs {:?}",
                g.len(),
                w.len(),
                first.map(|i| g[i]),
                first.map(|i| w[i])
            );
        }
    }
    assert_matches_truth(&env);
    assert!(assert_audio_present(&env) > 50);
    if s3.is_some() {
        // Nothing stray in the bucket (incomplete multipart uploads are not objects).
        assert_no_stray_objects(&env.object_keys().await);
    } else {
        // Staging files of killed writes may remain until they are stale (sink::sweep), but
        // no reader's glob matches them: every other file is a complete object.
        let keys = env.object_keys().await;
        let staging = keys.iter().filter(|k| k.contains('#')).count();
        let rest: Vec<String> = keys.into_iter().filter(|k| !k.contains('#')).collect();
        assert_no_stray_objects(&rest);
        eprintln!("{staging} staging files left by killed writes");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_rerun_equals_an_uninterrupted_run_on_disk() {
    crash_and_rerun(None, 12).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_then_rerun_equals_an_uninterrupted_run_on_s3() {
    let s3 = S3::start().await;
    crash_and_rerun(Some(&s3), 10).await;
}

/// A run killed after the first part of a big recording went up leaves an incomplete
/// multipart upload (billed, invisible) and its marker; the next run aborts the upload,
/// drops the marker, and finishes the work. One download at a time, so the kill never lands
/// between another upload's creation and its marker (see src/sink/upload.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_multipart_upload_leaves_no_incomplete_upload_on_s3() {
    let s3 = S3::start().await;
    let env = env_with(
        SimConfig {
            days: 1,
            calls_per_day: 6,
            audio_rate: 48_000,
            ..sim_config()
        },
        "",
    )
    .await;
    env.set_warehouse(&s3.warehouse_toml("wh"));
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    std::fs::write(
        &env.pipeline,
        text.replace("concurrency = 4", "concurrency = 1"),
    )
    .unwrap();

    let out = wait(spawn_run_crashing(&env, Some("part:1"), &[])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("crash point"), "{stderr}");
    assert!(
        s3.incomplete_uploads().await >= 1,
        "the kill left an upload"
    );
    let markers = env.object_keys().await;
    assert!(
        markers.iter().any(|k| k.starts_with("_ccetl/uploads/")),
        "{markers:?}"
    );

    run_to_end(spawn_run(&env)).await;
    assert_eq!(s3.incomplete_uploads().await, 0, "aborted by the next run");
    assert_no_stray_objects(&env.object_keys().await);
    assert_matches_truth(&env);
    assert!(assert_audio_present(&env) > 0);
    let multipart = env.count(&format!(
        "SELECT count(*) FROM recordings WHERE audio_bytes > {}",
        ccetl::sink::upload::PART_SIZE
    ));
    assert!(multipart > 0, "some recordings went up in parts");
}

/// A run killed mid-window, after some of the window's recordings were stored: the next run
/// finds them in the ledger and does not download them again (an egress cap counts every
/// byte); only those the kill cut off are asked for twice. `downloads` reads the
/// simulator's count of audio requests.
async fn kill_mid_window_then_rerun(env: &Env, source: &str, crash_at: &str, downloads: &str) {
    let out = wait(spawn_run_crashing(env, Some(crash_at), &[source])).await;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("crash point"),
        "the run stopped mid-download: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = |keys: Vec<String>| {
        keys.iter()
            .filter(|k| k.starts_with("audio/") && !k.contains('#'))
            .count() as u64
    };
    let stored_at_kill = objects(env.object_keys().await);
    let out = wait(spawn_run_crashing(env, None, &[source])).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = objects(env.object_keys().await);
    let downloads = env.stats()[downloads];
    eprintln!("{source}: {stored_at_kill} objects stored at the kill, {stored} in all, {downloads} downloads");
    // Downloaded twice at most: the (up to four) downloads the kill cut off, and the last
    // batch stored before it, not yet in the ledger.
    let twice = 4 + ccetl::state::stored::BATCH as u64;
    assert!(
        stored_at_kill >= 2 * twice,
        "{stored_at_kill} objects stored before the kill: too few to tell"
    );
    assert!(
        downloads <= stored + twice,
        "{downloads} downloads for {stored} objects: stored ones were downloaded again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_stored_before_a_kill_are_not_downloaded_again() {
    let env = env(sim_config()).await;
    kill_mid_window_then_rerun(&env, "wx", "audio:150", "audio").await;
    let xima = env_with(xima_sim_config(), XIMA_SOURCE).await;
    kill_mid_window_then_rerun(&xima, "xima", "audio:110", "xima_audio").await;
}
