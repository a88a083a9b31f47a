//! The backfill DAG on real Airflow (issue 28): `airflow standalone` (LocalExecutor) on
//! 127.0.0.1 runs `pipelines/ccetl_dags.py` against two simulated Webex orgs and a Xima
//! tenant, with the warehouse and the token store in moto. Each shard runs on a fresh scratch
//! disk, as on any worker. The shards of a Webex pool run side by side, Xima's one at a time;
//! the warehouse equals one machine's run of the same range and the simulators' truth.
//!
//! Airflow comes from `pipelines/requirements-airflow.txt`, installed on first use into the
//! virtualenv `CCETL_AIRFLOW_VENV` (default `~/.cache/ccetl-airflow`), again when the file
//! changes.

mod common;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::s3::S3;
use common::*;

/// `airflow standalone` and everything it started, ended when dropped.
struct Standalone {
    child: Child,
    home: PathBuf,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        // Its own process group: the scheduler, API server, DAG processor and task workers.
        let pgid = self.child.id() as i32;
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        std::thread::sleep(Duration::from_secs(2));
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        // Task processes start groups of their own, and ccetl runs under them: whatever still
        // has this Airflow's home (a test that failed mid-run) goes too.
        let mark = format!("AIRFLOW_HOME={}", self.home.display());
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
            if environ.split(|&b| b == 0).any(|v| v == mark.as_bytes()) {
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// A task instance's start and end.
type Span = (
    chrono::DateTime<chrono::FixedOffset>,
    chrono::DateTime<chrono::FixedOffset>,
);

struct Airflow {
    bin: PathBuf,
    env: Vec<(String, String)>,
}

impl Airflow {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin.join("airflow"));
        c.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs an `airflow` CLI command; its stdout.
    fn cli(&self, args: &[&str]) -> String {
        // Blocking, off the runtime's workers: the simulators serve on them meanwhile.
        let out =
            tokio::task::block_in_place(|| self.command(args).output()).expect("airflow runs");
        assert!(
            out.status.success(),
            "airflow {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The JSON an `airflow … -o json` command prints (after any warning lines).
    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.cli(args);
        let start = out.find("\n[").map_or(0, |i| i + 1);
        serde_json::from_str(out[start..].trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

/// The virtualenv with the pinned Airflow, made (or remade, when the pins changed) first.
fn airflow_venv() -> PathBuf {
    common::venv(
        "CCETL_AIRFLOW_VENV",
        ".cache/ccetl-airflow",
        "pipelines/requirements-airflow.txt",
    )
}

/// SIGKILLs the shard that stopped at the hang point, once it has written its pid: mid-window,
/// part of an audio object uploaded, its lease live. Its pid, once killed.
fn kill_the_hung_shard(mark: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(mark).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("--since"),
        "the hung process is a shard"
    );
    std::thread::sleep(Duration::from_millis(500));
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    Some(pid)
}

/// The task instances whose first attempt ended with ccetl killed and whose second ran:
/// their log folders.
fn retried_after_kill(logs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for log in log_files(logs) {
        if log.file_name().is_some_and(|n| n == "attempt=1.log")
            && std::fs::read_to_string(&log).is_ok_and(|t| t.contains("exited -9"))
        {
            let dir = log.parent().unwrap().to_path_buf();
            assert!(
                dir.join("attempt=2.log").exists(),
                "{}: no retry",
                dir.display()
            );
            out.push(dir);
        }
    }
    out
}

/// Every file under `logs`.
fn log_files(logs: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![logs.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Waits for a DAG run to succeed (any other run of the DAG, scheduled meanwhile, to end).
async fn wait_for_run(af: &Airflow, dag: &str, run_id: &str) {
    let started = Instant::now();
    loop {
        let runs = af.json(&["dags", "list-runs", dag, "-o", "json"]);
        let runs = runs.as_array().cloned().unwrap_or_default();
        let ended =
            |r: &serde_json::Value| matches!(r["state"].as_str(), Some("success" | "failed"));
        if let Some(r) = runs.iter().find(|r| r["run_id"] == run_id) {
            if ended(r) && runs.iter().all(ended) {
                assert_eq!(r["state"], "success", "{dag} {run_id}");
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{dag} {run_id} never ended"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// The `error:` lines of every task log under `logs`: why a DAG run failed.
fn task_errors(logs: &Path) -> String {
    let mut out = String::new();
    for p in log_files(logs) {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        for line in text.lines().filter(|l| l.contains("error")) {
            out.push_str(&format!(
                "{}: {}\n",
                p.display(),
                &line[..line.len().min(400)]
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backfill_dag_runs_each_pool_side_by_side_and_equals_one_machine() {
    let venv = tokio::task::block_in_place(airflow_venv);
    let s3 = S3::start().await;
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    // A second Webex org: another simulator, its own client ID budget and refresh token.
    let org2 = ccetl::sim::start(
        ccetl::sim::SimConfig {
            seed: 11,
            ..xima_sim_config()
        },
        0,
    )
    .await
    .unwrap();
    let wx2 = format!(
        "\n[[source]]\nkind = \"webex\"\nname = \"wx2\"\nbase_url = \"{b}\"\ntoken_url = \"{b}/v1/access_token\"\nclient_id = \"sim-client-id\"\nclient_secret = \"sim-client-secret\"\nrefresh_token = \"{rt}\"\nchannel_types = [\"telephony\"]\nrequests_per_minute = 300\nrate_window = \"3s\"\n",
        b = org2.base_url(),
        rt = org2.sim.cfg.initial_refresh_token
    );
    let mut text = std::fs::read_to_string(&env.pipeline).unwrap();
    text.push_str(&wx2);
    std::fs::write(&env.pipeline, text).unwrap();
    env.set_warehouse(&format!(
        "{}token_store = \"{}\"\n",
        s3.warehouse_toml("sharded"),
        s3.url("tokens")
    ));
    let since = "2026-01-06T00:00:00Z".to_string();
    let until = (env.now() - chrono::Duration::minutes(15)).to_rfc3339();
    let pipeline = env.pipeline.to_string_lossy().to_string();

    // Airflow on 127.0.0.1, its home in the test's directory.
    let home = env.dir.path().join("airflow");
    let port = free_port();
    let hang_mark = env.dir.path().join("hang.pid");
    let bin = venv.join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let af = Airflow {
        bin: bin.clone(),
        env: [
            ("PATH", path),
            ("AIRFLOW_HOME", home.display().to_string()),
            (
                "AIRFLOW__CORE__DAGS_FOLDER",
                repo.join("pipelines").display().to_string(),
            ),
            ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".into()),
            ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".into()),
            ("AIRFLOW__API__HOST", "127.0.0.1".into()),
            ("AIRFLOW__API__PORT", port.to_string()),
            (
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                format!("http://127.0.0.1:{port}/execution/"),
            ),
            ("AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC", "1".into()),
            ("CCETL_BIN", env!("CARGO_BIN_EXE_ccetl").into()),
            ("CCETL_PIPELINE", pipeline.clone()),
            // The drill: the first shard to reach its eighth audio chunk stops there, alive
            // and holding its lease, until the test SIGKILLs it; Airflow retries the shard.
            ("CCETL_HANG_AT", "audio:8".into()),
            ("CCETL_HANG_MARK", hang_mark.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    };
    af.cli(&["db", "migrate"]);
    // The pools, as the README makes them: `ccetl plan` through pipelines/pools.py.
    let (code, plan, err) = ccetl(&[
        "plan",
        &pipeline,
        "--since",
        "2000-01-01",
        "--until",
        "2000-01-02",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let pools_json = home.join("pools.json");
    let mut py = Command::new(bin.join("python"))
        .arg(repo.join("pipelines/pools.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&pools_json).unwrap())
        .spawn()
        .unwrap();
    use std::io::Write;
    py.stdin.take().unwrap().write_all(plan.as_bytes()).unwrap();
    assert!(py.wait().unwrap().success());
    af.cli(&["pools", "import", &pools_json.display().to_string()]);
    let pools: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&pools_json).unwrap()).unwrap();
    assert_eq!(
        pools.len(),
        3,
        "two Webex client budgets and a Xima tenant: {pools:?}"
    );

    let log = std::fs::File::create(env.dir.path().join("standalone.log")).unwrap();
    let _standalone = Standalone {
        child: af
            .command(&["standalone"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("airflow standalone starts"),
        home: home.clone(),
    };
    let started = Instant::now();
    while !af.cli(&["dags", "list"]).contains("ccetl_backfill") {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the DAG was never parsed"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    af.cli(&["dags", "unpause", "ccetl_backfill"]);
    let conf = serde_json::json!({ "since": since, "until": until, "windows_per_shard": 1 });
    af.cli(&[
        "dags",
        "trigger",
        "ccetl_backfill",
        "--run-id",
        "backfill-1",
        "--conf",
        &conf.to_string(),
    ]);
    let ran = Instant::now();
    let mut killed = None;
    let state = loop {
        if killed.is_none() {
            killed = tokio::task::block_in_place(|| kill_the_hung_shard(&hang_mark));
        }
        let runs = af.json(&["dags", "list-runs", "ccetl_backfill", "-o", "json"]);
        let state = runs[0]["state"].as_str().unwrap_or("").to_string();
        if state == "success" || state == "failed" {
            break state;
        }
        assert!(
            ran.elapsed() < Duration::from_secs(600),
            "the DAG run never ended"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    let wall = ran.elapsed();
    assert_eq!(state, "success", "{}", task_errors(&home.join("logs")));
    let killed = killed.expect("a shard reached the hang point and was killed");
    let retried = retried_after_kill(&home.join("logs"));
    assert_eq!(
        retried.len(),
        1,
        "the killed shard (pid {killed}) failed once and its retry succeeded: {retried:?}"
    );
    eprintln!(
        "killed shard (pid {killed}) retried: {}",
        retried[0].display()
    );

    // Task instances: a pool's shards side by side where its slots allow, Xima's never.
    let tis = af.json(&[
        "tasks",
        "states-for-dag-run",
        "ccetl_backfill",
        "backfill-1",
        "-o",
        "json",
    ]);
    let time =
        |v: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let mut by_task: BTreeMap<String, Vec<Span>> = BTreeMap::new();
    for ti in tis.as_array().unwrap() {
        let id = ti["task_id"].as_str().unwrap();
        assert_eq!(ti["state"], "success", "{id}");
        if id.starts_with("run_") {
            by_task
                .entry(id.to_string())
                .or_default()
                .push((time(&ti["start_date"]), time(&ti["end_date"])));
        }
    }
    let overlaps = |spans: &[Span]| {
        let mut n = 0;
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                if a.0 < b.1 && b.0 < a.1 {
                    n += 1;
                }
            }
        }
        n
    };
    let mut webex_parallel = 0;
    for (task, spans) in &by_task {
        assert!(spans.len() >= 2, "{task}: {} shards", spans.len());
        if task.contains("xima") {
            assert_eq!(overlaps(spans), 0, "{task}: Xima's shards one at a time");
        } else {
            webex_parallel += usize::from(overlaps(spans) > 0);
        }
    }
    assert_eq!(
        webex_parallel, 2,
        "each org's shards side by side: {by_task:?}"
    );
    eprintln!(
        "backfill DAG: {} shards in {:.1} s: {:?}",
        by_task.values().map(Vec::len).sum::<usize>(),
        wall.as_secs_f64(),
        by_task
            .iter()
            .map(|(t, s)| (t, s.len(), overlaps(s)))
            .collect::<Vec<_>>()
    );

    // The warehouse: each org's tasks as its simulator has them, every audio object's hash
    // as recorded, no 429 from Xima, no refresh token refused.
    let settled = env.sim.sim.now_ms() - 15 * 60_000;
    for (source, sim) in [("wx", &env.sim.sim), ("wx2", &org2.sim)] {
        let mut want: Vec<String> = sim
            .truth(i64::MIN / 2, i64::MAX / 2)
            .tasks
            .into_iter()
            .filter(|t| t.channel_type == "telephony" && t.created_ms < settled)
            .map(|t| t.id)
            .collect();
        want.sort();
        let got = env.strings(&format!(
            "SELECT task_id FROM webex_tasks WHERE source = '{source}' ORDER BY 1"
        ));
        assert_eq!(got, want, "{source}: every task once");
    }
    assert!(
        assert_audio_present(&env) > 50,
        "audio objects match their hashes"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM xima_calls"),
        env.xima_truth("acme-main").calls.len() as i64
    );
    assert_eq!(env.stats().get("xima_429").copied().unwrap_or(0), 0);
    for stats in [env.stats(), org2.sim.stats()] {
        assert_eq!(
            stats.get("refresh_refused"),
            None,
            "no refresh token refused"
        );
    }

    let sharded = table_snapshot(&env);

    // The nightly DAG after the backfill, each source on a fresh disk: every download it makes
    // is an object it adds (nothing the backfill stored is fetched again).
    let downloads = || {
        let (a, b) = (env.stats(), org2.sim.stats());
        ["audio", "xima_audio"]
            .iter()
            .map(|r| a.get(*r).copied().unwrap_or(0) + b.get(*r).copied().unwrap_or(0))
            .sum::<u64>()
    };
    let audio_objects = |keys: Vec<String>| keys.iter().filter(|k| k.starts_with("audio/")).count();
    let (before, objects_before) = (downloads(), audio_objects(env.object_keys().await));
    af.cli(&["dags", "unpause", "ccetl_nightly"]);
    af.cli(&["dags", "trigger", "ccetl_nightly", "--run-id", "nightly-1"]);
    wait_for_run(&af, "ccetl_nightly", "nightly-1").await;
    af.cli(&["dags", "pause", "ccetl_nightly"]);
    let nightly = af.json(&[
        "tasks",
        "states-for-dag-run",
        "ccetl_nightly",
        "nightly-1",
        "-o",
        "json",
    ]);
    let ran: Vec<_> = nightly
        .as_array()
        .unwrap()
        .iter()
        .filter(|ti| ti["state"] == "success")
        .collect();
    assert_eq!(ran.len(), 3, "one nightly run per source: {nightly}");
    let (after, objects_after) = (downloads(), audio_objects(env.object_keys().await));
    eprintln!(
        "nightly after the backfill: {} downloads, {} new audio objects",
        after - before,
        objects_after - objects_before
    );
    assert_eq!(
        after - before,
        (objects_after - objects_before) as u64,
        "the nightly run downloads only audio the backfill did not store"
    );

    // One machine, the same range, another prefix: the same tables.
    let text = std::fs::read_to_string(&env.pipeline)
        .unwrap()
        .replace("/sharded\"", "/single\"")
        .replace("state = \"state.duckdb\"", "state = \"single.duckdb\"");
    std::fs::write(&env.pipeline, text).unwrap();
    let (code, _, err) = tokio::task::block_in_place(|| {
        ccetl(&["run", &pipeline, "--since", &since, "--until", &until])
    });
    assert_eq!(code, 0, "{err}");
    let single = table_snapshot(&env);
    for (table, rows) in &single {
        assert!(
            sharded[table] == *rows,
            "{table} differs between the DAG and one machine"
        );
    }
}
