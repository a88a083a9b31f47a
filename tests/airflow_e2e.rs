//! The shipped DAGs on real Airflow: `airflow standalone` (LocalExecutor) on 127.0.0.1 runs
//! `pipelines/ccetl_dags.py` through the provider (`python/ccetl_airflow`, as the wheel ships
//! it) against two simulated Webex orgs and a Xima tenant, with the warehouse and the token
//! store in moto. Each shard runs on a fresh scratch disk, as on any worker. The shards of a
//! Webex pool run side by side, Xima's one at a time; the warehouse equals one machine's run
//! of the same range and the simulators' truth. The operators' OpenLineage events (file
//! transport) name every table written; the `calls` asset triggers `ccetl_downstream`;
//! `ccetl_runs` holds one row per successful run task.
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

/// The variable wx2's client secret is read from: set only by the provider, from the
/// Connection.
const SECRET_VAR: &str = "WX2_CLIENT_SECRET";

/// The components `airflow standalone` would start, on loopback only (the API server's address
/// is `AIRFLOW__API__HOST`; the log servers are skipped).
const AIRFLOW_COMPONENTS: &str = "airflow api-server & airflow scheduler --skip-serve-logs & \
     airflow dag-processor & airflow triggerer --skip-serve-logs & wait";

/// Airflow's components and everything they started, ended when dropped.
struct Components {
    child: Child,
    home: PathBuf,
}

impl Drop for Components {
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
        for pid in airflow_pids(&self.home) {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
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
        c.args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove(SECRET_VAR);
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

/// The pids of the processes of the Airflow whose home is `home`.
fn airflow_pids(home: &Path) -> Vec<i32> {
    let mark = format!("AIRFLOW_HOME={}", home.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        if environ.split(|&b| b == 0).any(|v| v == mark.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// The pids of process group `pgid` (Airflow's components: their environment cannot be
/// read, `setproctitle` writes over it).
fn group_pids(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid pgrp …`: comm may hold spaces, so after its `)`.
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(2))
            .and_then(|g| g.parse::<i32>().ok());
        if pgrp == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Every TCP socket Airflow's components listen on is bound to 127.0.0.1 (or ::1).
fn assert_listens_on_loopback_only(pgid: i32) {
    let mut inodes = std::collections::BTreeSet::new();
    for pid in group_pids(pgid) {
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let link = std::fs::read_link(fd.path()).unwrap_or_default();
            let link = link.to_string_lossy();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
            {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address, st (0A = LISTEN), …, inode
            if f.len() > 9 && f[3] == "0A" && inodes.contains(f[9]) {
                listening.push(f[1].to_string());
            }
        }
    }
    assert!(!listening.is_empty(), "the API server listens");
    for addr in &listening {
        let host = addr.split(':').next().unwrap();
        let loopback = host == "0100007F" || host == "00000000000000000000000001000000";
        assert!(
            loopback,
            "Airflow listens on {addr}, not loopback: {listening:?}"
        );
    }
}

/// Every XCom Airflow stored (task id, value), from its metadata database.
fn xcom_values(af: &Airflow, home: &Path) -> Vec<(String, String)> {
    let script = "import json, sqlite3, sys\n\
        db = sqlite3.connect(sys.argv[1])\n\
        rows = db.execute('SELECT task_id, value FROM xcom').fetchall()\n\
        print(json.dumps([[t, v if isinstance(v, str) else bytes(v).decode('utf-8', 'replace')] for t, v in rows]))";
    let out = Command::new(af.bin.join("python"))
        .args(["-c", script])
        .arg(home.join("airflow.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits for `dag` to have a successful run and none still going; its run id.
async fn wait_for_any_run(af: &Airflow, dag: &str) -> String {
    let started = Instant::now();
    loop {
        let runs = af.json(&["dags", "list-runs", dag, "-o", "json"]);
        let runs = runs.as_array().cloned().unwrap_or_default();
        let ended =
            |r: &serde_json::Value| matches!(r["state"].as_str(), Some("success" | "failed"));
        if !runs.is_empty() && runs.iter().all(ended) {
            let ok = runs.iter().find(|r| r["state"] == "success");
            let ok = ok.unwrap_or_else(|| panic!("{dag}: no run succeeded: {runs:?}"));
            return ok["run_id"].as_str().unwrap_or("").to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "{dag} never ran: {runs:?}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

/// The OpenLineage events of the run tasks (file transport): every table with rows in the
/// warehouse is an output of some COMPLETE event, with a row count and a Delta version, and
/// the inputs are the sources' API endpoints.
fn assert_lineage_names_every_table(env: &Env, file: &Path) {
    let text = std::fs::read_to_string(file).expect("OpenLineage events were written");
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut outputs = std::collections::BTreeSet::new();
    let mut inputs = std::collections::BTreeSet::new();
    for e in events.iter().filter(|e| {
        e["eventType"] == "COMPLETE"
            && e["job"]["name"]
                .as_str()
                .is_some_and(|n| n.contains(".run_"))
    }) {
        for o in e["outputs"].as_array().into_iter().flatten() {
            let name = o["name"].as_str().unwrap();
            let table = name.rsplit('/').next().unwrap().to_string();
            assert!(
                o["outputFacets"]["outputStatistics"]["rowCount"].is_u64(),
                "{o}"
            );
            assert!(o["facets"]["version"]["datasetVersion"].is_string(), "{o}");
            outputs.insert(table);
        }
        for i in e["inputs"].as_array().into_iter().flatten() {
            inputs.insert(i["name"].as_str().unwrap().to_string());
        }
    }
    for def in ccetl::source::tables() {
        let rows = env.count(&format!("SELECT count(*) FROM {}", def.name));
        if rows > 0 {
            assert!(
                outputs.contains(def.name),
                "{} has {rows} rows but no lineage event names it: {outputs:?}",
                def.name
            );
        }
    }
    for endpoint in ["GET /v1/tasks", "GET /rest/api/v2/call-recording-info"] {
        assert!(inputs.contains(endpoint), "{endpoint}: {inputs:?}");
    }
    eprintln!("OpenLineage: {} events, outputs {outputs:?}", events.len());
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
        "\n[[source]]\nkind = \"webex\"\nname = \"wx2\"\nbase_url = \"{b}\"\ntoken_url = \"{b}/v1/access_token\"\nclient_id = \"sim-client-id\"\nclient_secret = \"${{WX2_CLIENT_SECRET}}\"\nrefresh_token = \"{rt}\"\nchannel_types = [\"telephony\"]\nrequests_per_minute = 300\nrate_window = \"3s\"\n",
        b = org2.base_url(),
        rt = org2.sim.cfg.initial_refresh_token
    );
    // wx2's secret comes from an Airflow Connection (`CCETL_CONN_ID`), never from Airflow's
    // own environment; the test's own ccetl commands read it from this process's.
    std::env::set_var(SECRET_VAR, "sim-client-secret");
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
    let lineage_file = env.dir.path().join("lineage.jsonl");
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
            // The provider, from the repository (the wheel's test installs it from the wheel).
            ("PYTHONPATH", repo.join("python").display().to_string()),
            (
                "AIRFLOW__OPENLINEAGE__TRANSPORT",
                serde_json::json!({
                    "type": "file",
                    "log_file_path": lineage_file.display().to_string(),
                    "append": true,
                })
                .to_string(),
            ),
            ("AIRFLOW__OPENLINEAGE__NAMESPACE", "ccetl-e2e".into()),
            ("CCETL_CONN_ID", "ccetl_e2e".into()),
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
    af.cli(&[
        "connections",
        "add",
        "ccetl_e2e",
        "--conn-type",
        "ccetl",
        "--conn-extra",
        &serde_json::json!({ SECRET_VAR: "sim-client-secret" }).to_string(),
    ]);
    // The pools, as the README makes them: `ccetl describe` through the provider's helper.
    let (code, described, err) = ccetl(&["describe", &pipeline, "--json"]);
    assert_eq!(code, 0, "{err}");
    let pools_json = home.join("pools.json");
    let mut py = Command::new(bin.join("python"))
        .args(["-m", "ccetl_airflow.pools"])
        .env("PYTHONPATH", repo.join("python"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&pools_json).unwrap())
        .spawn()
        .unwrap();
    use std::io::Write;
    py.stdin
        .take()
        .unwrap()
        .write_all(described.as_bytes())
        .unwrap();
    assert!(py.wait().unwrap().success());
    af.cli(&["pools", "import", &pools_json.display().to_string()]);
    let pools: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&pools_json).unwrap()).unwrap();
    assert_eq!(
        pools.len(),
        3,
        "two Webex client budgets and a Xima tenant: {pools:?}"
    );

    // Airflow's components one by one, as the README starts them: `airflow standalone`
    // would also start the scheduler's and the triggerer's log servers, which listen on every
    // interface (Airflow 3.3 has no setting for their address); LocalExecutor's task logs are
    // local files, so `--skip-serve-logs` loses nothing.
    let log = std::fs::File::create(env.dir.path().join("airflow.log")).unwrap();
    let _airflow = Components {
        child: Command::new("sh")
            .arg("-c")
            .arg(AIRFLOW_COMPONENTS)
            .envs(af.env.iter().map(|(k, v)| (k, v)))
            .env_remove(SECRET_VAR)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("airflow starts"),
        home: home.clone(),
    };
    let started = Instant::now();
    while !["ccetl_backfill", "ccetl_downstream"]
        .iter()
        .all(|d| af.cli(&["dags", "list"]).contains(d))
    {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the DAG was never parsed"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let api_up = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            api_up.elapsed() < Duration::from_secs(180),
            "the API server never listened"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_listens_on_loopback_only(_airflow.child.id() as i32);
    af.cli(&["dags", "unpause", "ccetl_backfill"]);
    af.cli(&["dags", "unpause", "ccetl_downstream"]);
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
        if id.rsplit('.').next().unwrap().starts_with("run_") {
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

    // The provider's extras: lineage, the asset-triggered downstream DAG, the run history,
    // ccetl's own output in the task logs.
    assert_lineage_names_every_table(&env, &lineage_file);
    let downstream = wait_for_any_run(&af, "ccetl_downstream").await;
    eprintln!("ccetl_downstream ran on the calls asset: {downstream}");
    let logs = log_files(&home.join("logs"));
    let text_of = |pattern: &str| -> Vec<String> {
        logs.iter()
            .filter(|p| p.display().to_string().contains(pattern))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect()
    };
    assert!(
        text_of("dag_id=ccetl_downstream")
            .iter()
            .any(|t| t.contains("queue_name")),
        "the downstream query's result is in its task log"
    );
    assert!(
        text_of("task_id=ccetl_backfill.run_")
            .iter()
            .any(|t| t.contains("API requests")),
        "a shard's summary (ccetl's stdout) is in its task log"
    );
    assert!(
        text_of("task_id=ccetl_backfill.finalize")
            .iter()
            .any(|t| t.contains("table files") && t.contains("audio objects stored")),
        "finalize says what it verified, in its task log"
    );
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        assert!(
            !text.contains("sim-client-secret"),
            "{}: a secret in a task log",
            log.display()
        );
    }
    let xcoms = xcom_values(&af, &home);
    let reports: Vec<&String> = xcoms
        .iter()
        .filter(|(task, _)| task.contains(".run_"))
        .map(|(_, v)| v)
        .collect();
    assert!(
        reports.len() >= by_task.values().map(Vec::len).sum::<usize>(),
        "each shard's report is its XCom: {} of {xcoms:?}",
        reports.len()
    );
    for (task, value) in &xcoms {
        assert!(
            !value.contains("sim-client-secret"),
            "{task}: a secret in XCom"
        );
    }
    assert!(
        reports.iter().all(|r| r.contains("\"sources\"")),
        "{reports:?}"
    );
    // Unpausing the nightly DAG also scheduled its latest interval: every run of it counts.
    let mut nightly_tasks = 0;
    for r in af
        .json(&["dags", "list-runs", "ccetl_nightly", "-o", "json"])
        .as_array()
        .unwrap()
    {
        let run_id = r["run_id"].as_str().unwrap();
        let tis = af.json(&[
            "tasks",
            "states-for-dag-run",
            "ccetl_nightly",
            run_id,
            "-o",
            "json",
        ]);
        nightly_tasks += tis
            .as_array()
            .unwrap()
            .iter()
            .filter(|ti| ti["state"] == "success")
            .count();
    }
    assert!(nightly_tasks >= ran.len());
    let ran_tasks = by_task.values().map(Vec::len).sum::<usize>() + nightly_tasks;
    assert_eq!(
        env.count("SELECT count(*) FROM ccetl_runs WHERE status = 'succeeded'") as usize,
        ran_tasks,
        "one history row per source of each successful run task (the killed attempt wrote none)"
    );
    let (code, out, err) = tokio::task::block_in_place(|| ccetl(&["status", &pipeline, "--json"]));
    assert_eq!(code, 0, "{err}");
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            v["last_status"], "succeeded",
            "from ccetl_runs, on a new disk: {v}"
        );
        assert!(v["high_water"].is_string(), "{v}");
    }

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

/// The run operator as Airflow calls it, on ccetl's exit codes: a partial run (4, Xima's
/// bandwidth cap) succeeds with its report, the source's exit code 4 in it; a bad pipeline
/// file (2) fails without retry (`AirflowFailException`); a failed run (1) fails to be retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_operator_succeeds_on_partial_and_fails_bad_config_without_retry() {
    let venv = tokio::task::block_in_place(airflow_venv);
    let env = env_with(xima_sim_config(), XIMA_SOURCE).await;
    let saved = env.xima_saved_bytes("acme-main");
    env.sim.sim.set_xima_cap(saved * 2 / 5);
    let bad = env.dir.path().join("bad.toml");
    std::fs::write(&bad, "[pipeline]\nname = \"x\"\n").unwrap();
    let script = r#"
import json, logging, sys
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from ccetl_airflow import CcetlRunOperator
from ccetl_airflow.operators import _check

pipeline, since, until, bad = sys.argv[1:5]
report = CcetlRunOperator(
    task_id="partial", pipeline=pipeline, sources=["xima"], since=since, until=until
).execute({})
out = {"status": report["status"], "exit": report["sources"][0]["exit_code"]}
try:
    CcetlRunOperator(task_id="bad", pipeline=bad).execute({})
    out["bad"] = "no error"
except AirflowFailException as e:
    out["bad"] = "fail: " + str(e)
try:
    _check("run", 1, logging.getLogger("t"))
    out["one"] = "no error"
except AirflowFailException:
    out["one"] = "fail without retry"
except AirflowException as e:
    out["one"] = "retry: " + str(e)
print(json.dumps(out))
"#;
    let since = "2026-01-06T00:00:00Z".to_string();
    let until = (env.now() - chrono::Duration::minutes(15)).to_rfc3339();
    let out = tokio::task::block_in_place(|| {
        Command::new(venv.join("bin/python"))
            .args(["-c", script])
            .arg(&env.pipeline)
            .args([&since, &until])
            .arg(&bad)
            .env(
                "PYTHONPATH",
                Path::new(env!("CARGO_MANIFEST_DIR")).join("python"),
            )
            .env("CCETL_BIN", env!("CARGO_BIN_EXE_ccetl"))
            .env("AIRFLOW_HOME", env.dir.path().join("airflow"))
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let got: serde_json::Value =
        serde_json::from_slice(out.stdout.rsplit(|&b| b == b'\n').nth(1).unwrap()).unwrap();
    assert_eq!(got["status"], "partial", "{got}");
    assert_eq!(got["exit"], 4, "{got}");
    let bad = got["bad"].as_str().unwrap();
    assert!(
        bad.starts_with("fail: ") && bad.contains("exited 2"),
        "{got}"
    );
    assert_eq!(got["one"], "retry: ccetl run exited 1", "{got}");
}
