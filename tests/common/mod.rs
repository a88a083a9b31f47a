//! Test harness: a real simulator on 127.0.0.1, a real pipeline run, and the warehouse
//! read back through DuckDB. Nothing of ccetl is mocked.

#![allow(dead_code)]

pub mod cloud;
pub mod readers;
pub mod s3;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use ccetl::config::PipelineConfig;
use ccetl::extract::RunError;
use ccetl::pipeline::{self, RunOptions, RunReport};
use ccetl::sim::ratelimit::RateLimit;
use ccetl::sim::{self, SimConfig, SimHandle, Truth};
use ccetl::sink::Warehouse;
use chrono::{DateTime, TimeZone, Utc};

/// A fixed "now" for the simulator, so every test sees the same calls whatever the date.
pub const CLOCK_START_MS: i64 = 1_767_967_200_000; // 2026-01-09T14:00:00Z, mid business day

/// 06:00 UTC: calls run 08-20 UTC and recordings appear at most ~5.5 h after a call, so
/// nothing changes around this time even on a running clock.
pub const QUIET_START_MS: i64 = 1_767_938_400_000; // 2026-01-09T06:00:00Z

/// Deterministic: a fixed seed and a frozen clock that moves only when a test says so.
pub fn sim_config() -> SimConfig {
    SimConfig {
        seed: 7,
        days: 2,
        calls_per_day: 60,
        audio_rate: 200,
        clock_start_ms: Some(CLOCK_START_MS),
        clock_frozen: true,
        rate_limit: Some(TEST_RATE_LIMIT),
        ..SimConfig::default()
    }
}

/// Every test runs under Webex's limit of 300 requests per client ID, its minute scaled to
/// 3 s so a test stays quick; [`pipeline_toml`]'s source is budgeted to match. Counted as a
/// token bucket holding 20: 200 ms of the scaled rate, as the real bucket of 5 holds a
/// second, so a loaded machine's stalls are absorbed as a real server's would be.
pub const TEST_RATE_LIMIT: RateLimit = RateLimit::bucket(300, std::time::Duration::from_secs(3))
    .shaped(ccetl::sim::ratelimit::Shape::Bucket { burst: 20 });

pub struct Env {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    pub pipeline: PathBuf,
}

pub fn pipeline_toml(base_url: &str, refresh_token: &str, extra_source: &str) -> String {
    format!(
        r#"
[pipeline]
name = "test"
warehouse = "warehouse"
state = "state.duckdb"
window = "1d"
lookback = "6h"
settle = "15m"
concurrency = 4
start = "2026-01-06"

[[source]]
kind = "webex"
name = "wx"
base_url = "{base_url}"
token_url = "{base_url}/v1/access_token"
client_id = "sim-client-id"
client_secret = "sim-client-secret"
refresh_token = "{refresh_token}"
channel_types = ["telephony"]
{budget}{extra_source}
"#,
        // The Webex source's own keys come before any further [[source]]: a budget set
        // there (not another source's) replaces the scaled test budget.
        budget = if extra_source
            .split("[[source]]")
            .next()
            .is_some_and(|own| own.contains("requests_per_minute"))
        {
            ""
        } else {
            "requests_per_minute = 300\nrate_window = \"3s\"\n"
        },
        extra_source = extra_source.replace("{BASE}", base_url)
    )
}

/// The legacy reporting source of the same simulated tenant (`{BASE}` is the simulator).
pub const LEGACY_SOURCE: &str = r#"
[[source]]
kind = "webex_legacy"
name = "legacy"
base_url = "{BASE}/aws/api"
user_id = "reports@sim.example"
api_key = "sim-legacy-api-key"
# The legacy API publishes no limit and the simulator enforces none; the conservative
# default (60 a minute) would only slow the tests down.
requests_per_minute = 6000
"#;

pub async fn env(cfg: SimConfig) -> Env {
    env_with(cfg, "").await
}

pub async fn env_with(cfg: SimConfig, extra_source: &str) -> Env {
    // CCETL_LOG=ccetl=debug cargo test … -- --nocapture shows the pipeline's logs.
    if let Ok(filter) = std::env::var("CCETL_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
    let sim = sim::start(cfg, 0).await.expect("simulator starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let pipeline = dir.path().join("pipeline.toml");
    std::fs::write(
        &pipeline,
        pipeline_toml(
            &sim.base_url(),
            &sim.sim.cfg.initial_refresh_token,
            extra_source,
        ),
    )
    .expect("write pipeline");
    Env { sim, dir, pipeline }
}

impl Env {
    pub fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.sim.sim.now_ms()).unwrap()
    }

    pub fn config(&self) -> PipelineConfig {
        PipelineConfig::load(&self.pipeline).expect("pipeline parses")
    }

    /// Runs the pipeline with the simulator's "now".
    pub async fn run(&self) -> (RunReport, Result<(), RunError>) {
        let opts = RunOptions {
            now: Some(self.now()),
            ..RunOptions::default()
        };
        pipeline::run(&self.config(), &opts).await
    }

    /// Runs only the named sources.
    pub async fn run_sources(&self, sources: &[&str]) -> (RunReport, Result<(), RunError>) {
        let opts = RunOptions {
            now: Some(self.now()),
            sources: sources
                .iter()
                .map(std::string::ToString::to_string)
                .collect(),
            ..RunOptions::default()
        };
        pipeline::run(&self.config(), &opts).await
    }

    pub async fn run_ok(&self) -> RunReport {
        let (report, result) = self.run().await;
        if let Err(e) = result {
            panic!("run failed: {e}\n{report:#?}");
        }
        report
    }

    pub fn warehouse_dir(&self) -> PathBuf {
        self.dir.path().join("warehouse")
    }

    /// Points the pipeline at another warehouse (`warehouse = …` and `storage_options` lines).
    pub fn set_warehouse(&self, lines: &str) {
        let text = std::fs::read_to_string(&self.pipeline).unwrap();
        let text = text.replacen("warehouse = \"warehouse\"\n", lines, 1);
        std::fs::write(&self.pipeline, text).unwrap();
    }

    pub fn open_warehouse(&self) -> Warehouse {
        let cfg = self.config();
        Warehouse::open(&cfg.warehouse, &cfg.storage_options).unwrap()
    }

    /// Blocks on `f` from sync test helpers (object-store warehouses need async reads).
    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
    }

    /// The bytes of an object by its recorded URI (`file://…` or in the object store).
    pub fn read_uri(&self, uri: &str) -> Vec<u8> {
        if let Some(path) = uri.strip_prefix("file://") {
            return std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        let wh = self.open_warehouse();
        let key = uri
            .strip_prefix(wh.url())
            .unwrap_or_else(|| panic!("{uri} is outside the warehouse {}", wh.url()));
        Self::block_on(wh.get(key))
            .unwrap()
            .unwrap_or_else(|| panic!("{uri}: no such object"))
            .to_vec()
    }

    /// Every object key in the warehouse, relative to its root, sorted; not the run history
    /// (`ccetl_runs`, which every run appends to: its own tests read it by SQL).
    pub async fn object_keys(&self) -> Vec<String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let wh = self.open_warehouse();
        let root = wh.path(&[]);
        let all: Vec<_> = wh.store().list(Some(&root)).try_collect().await.unwrap();
        let mut out: Vec<String> = all
            .iter()
            .map(|m| {
                let parts: Vec<String> = m
                    .location
                    .prefix_match(&root)
                    .unwrap()
                    .map(|p| p.as_ref().to_string())
                    .collect();
                parts.join("/")
            })
            .filter(|k: &String| !is_history(k))
            .collect();
        out.sort();
        out
    }

    /// Runs SQL over the warehouse views (an object-store warehouse through its mirror).
    pub fn sql(&self, sql: &str) -> Vec<RecordBatch> {
        let wh = self.open_warehouse();
        let conn = match wh.local_root() {
            Some(_) => ccetl::query::connect(&wh).unwrap(),
            None => {
                let mirror = self.dir.path().join("mirror");
                Self::block_on(ccetl::query::open_mirrored_in(&wh, &mirror)).unwrap()
            }
        };
        ccetl::query::run(&conn, sql).unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// One string column of a query, in order.
    pub fn strings(&self, sql: &str) -> Vec<String> {
        self.sql(sql)
            .iter()
            .flat_map(|b| {
                let c = b.column(0).as_string::<i32>().clone();
                (0..c.len()).map(move |i| c.value(i).to_string())
            })
            .collect()
    }

    pub fn count(&self, sql: &str) -> i64 {
        let b = self.sql(sql);
        b[0].column(0)
            .as_primitive::<arrow::datatypes::Int64Type>()
            .value(0)
    }

    /// The simulator's truth for the telephony tasks in the extracted range.
    pub fn truth(&self) -> Truth {
        let mut t = self.sim.sim.truth(i64::MIN / 2, i64::MAX / 2);
        let settled = self.sim.sim.now_ms() - 15 * 60_000;
        t.tasks
            .retain(|t| t.channel_type == "telephony" && t.created_ms < settled);
        t
    }

    /// The truth for the legacy API: every call (all channels) started before now - settle.
    pub fn legacy_truth(&self) -> Truth {
        let mut t = self.sim.sim.truth(i64::MIN / 2, i64::MAX / 2);
        let settled = self.sim.sim.now_ms() - 15 * 60_000;
        t.tasks.retain(|t| t.created_ms < settled);
        t
    }

    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.sim.sim.stats()
    }

    /// Every file in the warehouse with its size, but the run history's.
    pub fn files(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        walk(
            &self.warehouse_dir(),
            &self.warehouse_dir(),
            &mut out,
            &|m| m.len(),
        );
        out.retain(|k, _| !is_history(k));
        out
    }

    /// Every file in the warehouse with its modification time (ns), but the run history's.
    pub fn modified(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let mtime = |m: &std::fs::Metadata| {
            m.modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64)
        };
        walk(
            &self.warehouse_dir(),
            &self.warehouse_dir(),
            &mut out,
            &mtime,
        );
        out.retain(|k, _| !is_history(k));
        out
    }
}

/// Whether a warehouse key is the run history's (`ccetl_runs/…`).
pub fn is_history(key: &str) -> bool {
    key.starts_with("ccetl_runs/")
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<String, u64>,
    value: &dyn Fn(&std::fs::Metadata) -> u64,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out, value);
        } else {
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            out.insert(rel, e.metadata().map_or(0, |m| value(&m)));
        }
    }
}

/// Asserts that the warehouse holds exactly the truth: tasks, captures, segments, audio.
pub fn assert_matches_truth(env: &Env) {
    assert_matches(env, &env.truth());
}

/// Asserts that the warehouse holds exactly `truth` (a subset of the simulator's, when a
/// source filters): tasks, captures, segments, audio.
pub fn assert_matches(env: &Env, truth: &Truth) {
    assert_matches_va(env, truth, None);
}

/// [`assert_matches`], for a pipeline that asks for virtual-agent recordings when `va` is
/// `Some(store_sensitive)`: they are in the warehouse too, those flagged sensitive
/// `withheld` (no object) unless `store_sensitive`.
pub fn assert_matches_va(env: &Env, truth: &Truth, va: Option<bool>) {
    let want_tasks: BTreeSet<String> = truth.tasks.iter().map(|t| t.id.clone()).collect();
    let got_tasks: Vec<String> = env.strings("SELECT task_id FROM webex_tasks ORDER BY 1");
    assert_eq!(
        got_tasks.len(),
        want_tasks.len(),
        "no duplicate or missing tasks"
    );
    assert_eq!(got_tasks.into_iter().collect::<BTreeSet<_>>(), want_tasks);

    let withheld = |r: &ccetl::sim::TruthRecording| r.sensitive && va == Some(false);
    let want_recs: BTreeMap<String, (bool, String, u64, String)> = truth
        .tasks
        .iter()
        .flat_map(|t| {
            let va_recs = t.va_recordings.iter().filter(|_| va.is_some());
            t.recordings.iter().chain(va_recs)
        })
        .filter(|r| r.available)
        .map(|r| match withheld(r) {
            true => (
                r.id.clone(),
                (r.segment, "withheld".into(), 0, r.call_type.clone()),
            ),
            false => (
                r.id.clone(),
                (r.segment, r.sha256.clone(), r.bytes, r.call_type.clone()),
            ),
        })
        .collect();
    assert!(!want_recs.is_empty(), "the truth has recordings");
    let got = env.sql(
        "SELECT capture_id, segment, audio_sha256, audio_bytes, audio_status, audio_uri, call_type FROM webex_captures ORDER BY 1",
    );
    let mut got_recs = BTreeMap::new();
    for b in &got {
        let id = b.column(0).as_string::<i32>();
        let seg = b.column(1).as_boolean();
        let sha = b.column(2).as_string::<i32>();
        let bytes = b.column(3).as_primitive::<arrow::datatypes::Int64Type>();
        let status = b.column(4).as_string::<i32>();
        let uri = b.column(5).as_string::<i32>();
        let call_type = b.column(6).as_string::<i32>();
        for i in 0..b.num_rows() {
            if status.value(i) == "withheld" {
                assert!(uri.is_null(i) && sha.is_null(i), "withheld: no object");
                let prev = got_recs.insert(
                    id.value(i).to_string(),
                    (
                        seg.value(i),
                        "withheld".to_string(),
                        0,
                        call_type.value(i).to_string(),
                    ),
                );
                assert!(prev.is_none(), "duplicate capture {}", id.value(i));
                continue;
            }
            assert_eq!(
                status.value(i),
                "stored",
                "recording {} stored",
                id.value(i)
            );
            // The audio object exists with the recorded size and hash.
            let data = env.read_uri(uri.value(i));
            assert_eq!(data.len() as i64, bytes.value(i));
            use sha2::Digest;
            assert_eq!(hex::encode(sha2::Sha256::digest(&data)), sha.value(i));
            let prev = got_recs.insert(
                id.value(i).to_string(),
                (
                    seg.value(i),
                    sha.value(i).to_string(),
                    bytes.value(i) as u64,
                    call_type.value(i).to_string(),
                ),
            );
            assert!(prev.is_none(), "duplicate capture {}", id.value(i));
        }
    }
    assert_eq!(
        got_recs, want_recs,
        "captures and audio hashes equal the truth"
    );

    // Segment join: one task_segments row per segment, with its task's queue and agent.
    let want_segments: BTreeMap<String, Option<String>> = truth
        .tasks
        .iter()
        .flat_map(|t| {
            t.recordings
                .iter()
                .filter(|r| r.available && r.segment)
                .map(move |r| (r.id.clone(), t.queue.clone()))
        })
        .collect();
    let rows = env.sql("SELECT capture_id, queue_name FROM task_segments ORDER BY 1");
    let mut got_segments = BTreeMap::new();
    for b in &rows {
        let id = b.column(0).as_string::<i32>();
        let q = b.column(1).as_string::<i32>();
        for i in 0..b.num_rows() {
            got_segments.insert(
                id.value(i).to_string(),
                q.is_valid(i).then(|| q.value(i).to_string()),
            );
        }
    }
    assert_eq!(
        got_segments, want_segments,
        "task_segments joins each segment to its task"
    );
    assert_transcripts_match(env, truth);
}

/// A transcript as compared: its object's hash and size, its format when it parsed, and its
/// messages in order.
type TranscriptSeen = (String, i64, Option<String>, Vec<MessageSeen>);

/// Asserts that the warehouse's transcripts and their messages equal `truth`'s: every
/// available transcript stored once, byte for byte, in the format its content has, its
/// messages in order with every field; a broken one kept with its object, `unparsed`,
/// without messages.
pub fn assert_transcripts_match(env: &Env, truth: &Truth) {
    let mut want = BTreeMap::new();
    for t in &truth.tasks {
        for tr in t.transcripts.iter().filter(|tr| tr.available) {
            let messages = match tr.parseable {
                true => tr.messages.iter().map(message_seen).collect(),
                false => Vec::new(),
            };
            let key = (t.id.clone(), tr.id.clone(), tr.file_name.clone());
            let format = tr.parseable.then(|| tr.format.clone());
            want.insert(key, (tr.sha256.clone(), tr.bytes as i64, format, messages));
        }
    }
    let mut got: BTreeMap<(String, String, String), TranscriptSeen> = BTreeMap::new();
    let rows = env.sql(
        "SELECT task_id, transcript_id, file_name, object_uri, object_sha256, object_bytes, status, messages, format FROM webex_transcripts",
    );
    for b in &rows {
        let s = |c: usize| b.column(c).as_string::<i32>().clone();
        let (task, id, file, uri, sha, status, format) = (s(0), s(1), s(2), s(3), s(4), s(6), s(8));
        let bytes = b.column(5).as_primitive::<arrow::datatypes::Int64Type>();
        let count = b.column(7).as_primitive::<arrow::datatypes::Int32Type>();
        for i in 0..b.num_rows() {
            let parsed = match status.value(i) {
                "stored" => true,
                "unparsed" => false,
                other => panic!("transcript of {} is {other}", task.value(i)),
            };
            assert_eq!(count.is_valid(i), parsed, "a message count when parsed");
            assert_eq!(format.is_valid(i), parsed, "a format when parsed");
            let data = env.read_uri(uri.value(i));
            use sha2::Digest;
            assert_eq!(hex::encode(sha2::Sha256::digest(&data)), sha.value(i));
            let key = (
                task.value(i).to_string(),
                id.value(i).to_string(),
                file.value(i).to_string(),
            );
            let format = parsed.then(|| format.value(i).to_string());
            let seen = (sha.value(i).to_string(), bytes.value(i), format, Vec::new());
            assert!(
                got.insert(key.clone(), seen).is_none(),
                "duplicate transcript {key:?}"
            );
        }
    }
    // Every column, nulls spelled out: a missing field must read as missing, not as "".
    let rows = env.sql(
        "SELECT task_id, transcript_id, file_name, \
         coalesce(party_role, '<null>'), coalesce(party_name, '<null>'), coalesce(party_id, '<null>'), \
         coalesce(epoch_ms(start_time), -1), coalesce(duration_ms, -1), text, \
         coalesce(direction, '<null>'), coalesce(redacted::VARCHAR, '<null>'), \
         array_to_string(attachments, '|') \
         FROM webex_transcript_messages ORDER BY task_id, transcript_id, file_name, seq",
    );
    for b in &rows {
        let s = |c: usize| b.column(c).as_string::<i32>().clone();
        let (task, id, file, role, name, party, text, direction, redacted, files) =
            (s(0), s(1), s(2), s(3), s(4), s(5), s(8), s(9), s(10), s(11));
        let int = |c: usize| {
            b.column(c)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .clone()
        };
        let (at, length) = (int(6), int(7));
        for i in 0..b.num_rows() {
            let key = (
                task.value(i).to_string(),
                id.value(i).to_string(),
                file.value(i).to_string(),
            );
            let t = got
                .get_mut(&key)
                .unwrap_or_else(|| panic!("messages of an unknown transcript {key:?}"));
            let v = |a: &arrow::array::StringArray| a.value(i).to_string();
            t.3.push(MessageSeen {
                role: v(&role),
                name: v(&name),
                party_id: v(&party),
                start_ms: at.value(i),
                duration_ms: length.value(i),
                text: v(&text),
                direction: v(&direction),
                redacted: v(&redacted),
                attachments: v(&files),
            });
        }
    }
    assert_eq!(got, want, "transcripts and their messages equal the truth");
}

/// A message as compared with the truth: every field, `<null>` or -1 for a missing one.
#[derive(Debug, PartialEq)]
pub struct MessageSeen {
    role: String,
    name: String,
    party_id: String,
    start_ms: i64,
    duration_ms: i64,
    text: String,
    direction: String,
    redacted: String,
    attachments: String,
}

fn message_seen(m: &ccetl::sim::transcripts::SimMessage) -> MessageSeen {
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "<null>".into());
    MessageSeen {
        role: text(&m.role),
        name: text(&m.name),
        party_id: text(&m.party_id),
        start_ms: m.start_ms.unwrap_or(-1),
        duration_ms: m.duration_ms.unwrap_or(-1),
        text: m.text.clone(),
        direction: text(&m.direction),
        redacted: m.redacted.map_or("<null>".into(), |r| r.to_string()),
        attachments: m.attachments.join("|"),
    }
}

/// A Xima tenant of the simulator (`{BASE}`), paced at the simulator's scaled 30 ms.
pub const XIMA_SOURCE: &str = r#"
[[source]]
kind = "xima"
name = "xima"
base_url = "{BASE}"
tenant = "acme-main"
api_key = "sim-xima-key-acme-main"
min_interval = "30ms"
"#;

/// The simulator with Xima's pace scaled 1:100 (30 ms, 3 per 100 ms).
pub fn xima_sim_config() -> SimConfig {
    SimConfig {
        xima_min_interval_ms: 30,
        xima_audio_rate: 200,
        ..sim_config()
    }
}

impl Env {
    /// A tenant's truth for the calls a run reads (started before now - settle).
    pub fn xima_truth(&self, tenant: &str) -> ccetl::sim::xima::XimaTruth {
        let settled = self.sim.sim.now_ms() - 15 * 60_000;
        self.sim.sim.xima_truth(tenant, i64::MIN / 2, settled)
    }

    /// Bytes of the tenant's saved recordings: what a bandwidth cap is set against.
    pub fn xima_saved_bytes(&self, tenant: &str) -> u64 {
        self.xima_truth(tenant)
            .calls
            .iter()
            .flat_map(|c| &c.recordings)
            .filter(|r| r.status == "SAVED")
            .map(|r| r.bytes)
            .sum()
    }
}

/// A Delta log's own files: `{20 digits}.json`, its checkpoints and `_last_checkpoint`.
fn is_delta_log(key: &str) -> bool {
    let Some((_, name)) = key.split_once("/_delta_log/") else {
        return false;
    };
    let version = |n: &str| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit());
    name == "_last_checkpoint"
        || name
            .strip_suffix(".json")
            .or_else(|| name.strip_suffix(".checkpoint.parquet"))
            .or_else(|| name.strip_suffix(".crc"))
            .is_some_and(version)
}

/// Only what readers should see: Parquet under table folders and their Delta logs, audio,
/// manifests.
pub fn assert_no_stray_objects(keys: &[String]) {
    for k in keys {
        let ok = (k.ends_with(".parquet") && !k.starts_with("audio/"))
            || is_delta_log(k)
            || (k.starts_with("audio/") && (k.ends_with(".wav") || k.ends_with(".opus")))
            || (k.starts_with("transcripts/") && k.ends_with(".json"))
            || (k.starts_with("_ccetl/manifests/") && k.ends_with(".json"))
            || (k.starts_with("_ccetl/checkpoints/") && k.ends_with(".json"))
            || (k.starts_with("_ccetl/leases/") && k.ends_with(".json"));
        assert!(ok, "stray object {k}");
    }
}

/// Every stored recording's object exists with its recorded hash.
pub fn assert_audio_present(env: &Env) -> usize {
    let mut n = 0;
    for b in env.sql("SELECT audio_uri, audio_sha256 FROM recordings WHERE audio_status = 'stored'")
    {
        let (uri, sha) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
        );
        for i in 0..b.num_rows() {
            use sha2::Digest;
            let data = env.read_uri(uri.value(i));
            assert_eq!(hex::encode(sha2::Sha256::digest(&data)), sha.value(i));
            n += 1;
        }
    }
    n
}

/// The binary as a user runs it: exit code, stdout, stderr (logs at error only).
pub fn ccetl(args: &[&str]) -> (i32, String, String) {
    ccetl_logging(args, "ccetl=error")
}

/// …with the `CCETL_LOG` filter `log`.
pub fn ccetl_logging(args: &[&str], log: &str) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ccetl"))
        .args(args)
        .env("CCETL_LOG", log)
        .output()
        .expect("ccetl runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The one line a failure prints on stderr.
pub fn one_error_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    lines[0]
}

/// Every source table's rows as sorted CSV (not the run history), without `audio_uri` (it names the warehouse itself).
pub fn table_snapshot(env: &Env) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for def in ccetl::source::tables() {
        let (table, schema) = (def.name, (def.schema)());
        let cols: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != "audio_uri" && n != "object_uri")
            .map(|n| format!("\"{n}\""))
            .chain(["source".into(), "date".into()])
            .collect();
        let sql = format!("SELECT {} FROM {table} ORDER BY ALL", cols.join(", "));
        let batches = env.sql(&sql);
        let csv = ccetl::query::render(&batches, ccetl::query::Format::Csv).unwrap();
        out.insert(table.to_string(), csv);
    }
    out
}

/// Drops the warehouse's tables (everything but the audio objects), forgets the windows read,
/// and switches off the audio of the source whose config holds `line`: the next run reads
/// everything again with audio off, the ledger kept.
pub fn tables_dropped_and_audio_off(env: &Env, line: &str) {
    for entry in std::fs::read_dir(env.warehouse_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n != "audio" && n != "transcripts")
        {
            std::fs::remove_dir_all(&path).unwrap();
        }
    }
    let state = ccetl::state::State::open(&env.dir.path().join("state.duckdb")).unwrap();
    state.reset(None).unwrap();
    drop(state);
    let text = std::fs::read_to_string(&env.pipeline).unwrap();
    let off = text.replacen(line, &format!("{line}audio = false\n"), 1);
    assert_ne!(text, off, "the source's audio switched off");
    std::fs::write(&env.pipeline, off).unwrap();
}

/// Asserts that a rerun's re-read window asked captures only for its tasks `open` says are
/// still open (two queries per ten tasks: the stitched recordings, then the segments).
pub fn assert_reread_asked_only_open(
    env: &Env,
    second: &ccetl::report::RunReport,
    captures_before: u64,
    open: impl Fn(&ccetl::sim::TruthTask) -> bool,
) {
    let reread = &second.sources[0].windows[0];
    let (from, to) = (
        reread.start.timestamp_millis(),
        reread.end.timestamp_millis(),
    );
    let open = env
        .truth()
        .tasks
        .iter()
        .filter(|t| t.created_ms >= from && t.created_ms < to)
        .filter(|t| open(t))
        .count() as u64;
    let captures = env.stats()["captures"] - captures_before;
    assert!(
        captures <= 2 * open.div_ceil(10),
        "{captures} captures requests on a re-read with {open} tasks still open"
    );
}

/// Leases and a checkpoint in `wh`'s store change only by compare-and-swap: a second holder
/// is refused, of eight racing for a lapsed lease exactly one wins and the old holder learns
/// it lost, and four shards committing to one checkpoint at once lose no commit.
pub async fn assert_compare_and_swap_races(wh: &ccetl::sink::Warehouse) {
    use ccetl::sink::lease::{Lease, LeaseError};
    use chrono::{Duration, Utc};
    let store = wh.store().as_ref();
    let path = wh.path(&["_ccetl/leases/wx"]);
    let (ttl, t0) = (Duration::seconds(30), Utc::now());

    let mut a = Lease::acquire(store, &path, "worker-a", ttl, t0)
        .await
        .unwrap();
    let refused = Lease::acquire(store, &path, "worker-b", ttl, t0)
        .await
        .unwrap_err();
    assert!(matches!(refused, LeaseError::Held { .. }), "{refused}");
    a.renew(store, t0 + Duration::seconds(10)).await.unwrap();

    // Lapsed: of eight workers racing for it, S3's If-Match lets exactly one through.
    let later = t0 + Duration::seconds(60);
    let racers = (0..8).map(|i| {
        let (store, path) = (wh.store().clone(), path.clone());
        tokio::spawn(async move {
            Lease::acquire(store.as_ref(), &path, &format!("w{i}"), ttl, later).await
        })
    });
    let won = futures::future::join_all(racers)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(_))))
        .count();
    assert_eq!(won, 1, "exactly one takeover");
    let lost = a.renew(store, later).await.unwrap_err();
    assert!(matches!(lost, LeaseError::Lost { .. }), "{lost}");

    // A checkpoint four shards commit to at once loses no commit (If-Match again).
    use ccetl::sink::checkpoint;
    const DAY: i64 = 86_400_000;
    let cp_path = wh.path(&["_ccetl/checkpoints/wx/tasks.json"]);
    checkpoint::update(store, &cp_path, |cp| cp.commit(0, DAY, true))
        .await
        .unwrap();
    let shards = (0..4).map(|s| {
        let (store, path) = (wh.store().clone(), cp_path.clone());
        tokio::spawn(async move {
            for day in (1..=12).filter(|d| d % 4 == s) {
                checkpoint::update(store.as_ref(), &path, |cp| {
                    cp.commit(day * DAY, (day + 1) * DAY, true);
                })
                .await
                .unwrap();
            }
        })
    });
    for r in futures::future::join_all(shards).await {
        r.unwrap();
    }
    let cp = checkpoint::read(store, &cp_path).await.unwrap().unwrap();
    assert_eq!((cp.generation, cp.resume_at()), (13, Some(13 * DAY)));
}

/// A port on 127.0.0.1 free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Python venv holding the pinned `requirements` (relative to the repository), at
/// `$dir_var` or `~/{default}`; (re)installed when missing or when the pins changed. Tests of
/// one binary, and of several, install at most once: one holds the lock beside it.
pub fn venv(dir_var: &str, default: &str, requirements: &str) -> PathBuf {
    use sha2::Digest;
    let venv = std::env::var_os(dir_var).map_or_else(
        || PathBuf::from(std::env::var("HOME").unwrap()).join(default),
        PathBuf::from,
    );
    let reqs = Path::new(env!("CARGO_MANIFEST_DIR")).join(requirements);
    let want = hex::encode(sha2::Sha256::digest(std::fs::read(&reqs).unwrap()));
    let marker = venv.join(".ccetl-requirements");
    std::fs::create_dir_all(venv.parent().unwrap()).unwrap();
    let lock = std::fs::File::create(venv.with_extension("lock")).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&lock);
    assert_eq!(
        unsafe { libc::flock(fd, libc::LOCK_EX) },
        0,
        "locking the venv"
    );
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return venv;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let run = |c: &mut std::process::Command| {
        let out = c.output().expect("python3 runs");
        assert!(
            out.status.success(),
            "installing {requirements}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(std::process::Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv));
    run(std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&reqs));
    std::fs::write(&marker, want).unwrap();
    venv
}
