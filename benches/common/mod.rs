//! What the benches share: `bench/results.json` (each writes its own figure's key and keeps
//! the others', so `make bench` leaves one file with every figure) and peak-RSS readings.

use std::path::Path;

const PATH: &str = "bench/results.json";

/// Sets `key` to `value` in `bench/results.json`, keeping the other figures.
pub fn record(key: &str, value: serde_json::Value) {
    let mut all: serde_json::Map<String, serde_json::Value> = std::fs::read(PATH)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    all.insert(key.to_string(), value);
    if let Some(dir) = Path::new(PATH).parent() {
        std::fs::create_dir_all(dir).expect("bench dir");
    }
    let text = serde_json::to_string_pretty(&all).expect("json") + "\n";
    std::fs::write(PATH, text).expect("write bench/results.json");
    println!("wrote {PATH} ({key})");
}

/// Resets the process's peak RSS, so the next reading is the next phase's.
#[allow(dead_code)] // not every bench measures memory
pub fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak RSS since the last reset (`VmHWM`), in MB.
#[allow(dead_code)]
pub fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[allow(dead_code)]
/// The bench's first numeric argument (`cargo bench --bench NAME -- N`), else `default`.
pub fn size_arg(default: u32) -> u32 {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// A runtime for the in-process simulator (one thread, as a remote API would be apart from
/// the client) and one for the client; the allocator set up first, as `ccetl` sets it up.
#[allow(dead_code)]
pub fn runtimes() -> (tokio::runtime::Runtime, tokio::runtime::Runtime) {
    ccetl::memory::limit_arenas();
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("sim")
        .enable_all()
        .build()
        .expect("server runtime");
    let client = tokio::runtime::Builder::new_multi_thread()
        .thread_name("ccetl")
        .enable_all()
        .build()
        .expect("client runtime");
    (server, client)
}

/// CPU time (user + system) the process has used so far, in seconds: what a phase costs in
/// cores, whatever else the machine is doing.
#[allow(dead_code)]
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Nanoseconds the simulator's thread has so far spent running and waiting for a CPU
/// (Linux schedstat). The simulator is the baseline's limit: the share of a phase it spent
/// waiting says how much the client's own CPU held it back; what is neither running nor
/// waiting, it spent with no request to answer.
#[allow(dead_code)]
pub fn simulator_schedstat() -> Option<(u64, u64)> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let sim = tasks.flatten().find(|t| {
        std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "sim")
    })?;
    let stat = std::fs::read_to_string(sim.path().join("schedstat")).ok()?;
    let mut fields = stat.split_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// "running 92%, waiting for a CPU 1%" of `wall_s` between two [`simulator_schedstat`]s.
#[allow(dead_code)]
pub fn simulator_share(
    before: Option<(u64, u64)>,
    after: Option<(u64, u64)>,
    wall_s: f64,
) -> String {
    match before.zip(after) {
        Some(((r0, w0), (r1, w1))) => {
            let pct = |ns: u64| 100.0 * ns as f64 / 1e9 / wall_s;
            format!(
                "running {:.0}%, waiting for a CPU {:.0}%",
                pct(r1.saturating_sub(r0)),
                pct(w1.saturating_sub(w0))
            )
        }
        None => "not measured (no schedstat)".to_string(),
    }
}

/// Asks the simulator's token endpoint for `grant` as its one client ID (`sim-client-id`),
/// the way an integration does, and returns the answer's tokens.
#[allow(dead_code)] // every bench but scale (which drives the CLI) asks for tokens
pub async fn token(base: &str, grant: &[(&str, &str)]) -> serde_json::Value {
    let mut form = vec![
        ("client_id", "sim-client-id"),
        ("client_secret", "sim-client-secret"),
    ];
    form.extend_from_slice(grant);
    reqwest::Client::new()
        .post(format!("{base}/v1/access_token"))
        .form(&form)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("token")
        .json()
        .await
        .expect("token body")
}

/// An access token from the simulator's first refresh token.
#[allow(dead_code)] // every bench but scale
pub async fn access_token(base: &str) -> String {
    let tokens = token(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "sim-refresh-token-0"),
        ],
    )
    .await;
    tokens["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// `ccetl simulate` as its own process on a free loopback port (so what a bench reads of its
/// own process is ccetl's alone), killed when dropped.
#[allow(dead_code)]
pub struct Simulator {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

#[allow(dead_code)]
impl Simulator {
    /// Starts `ccetl simulate --port P ARGS…` and waits until it listens.
    pub fn start(args: &[String]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_ccetl"))
            .args(["simulate", "--port", &port.to_string()])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ccetl simulate starts");
        // Owned at once: dropping it (a panic included) kills and reaps the process.
        let sim = Simulator { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sim;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the simulator did not come up");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its `/_sim/stats`: requests served by route.
    pub fn stats(&self) -> serde_json::Value {
        let url = format!("{}/_sim/stats", self.base_url());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async { reqwest::get(url).await?.json().await })
            .expect("stats JSON")
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
