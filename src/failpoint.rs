//! Crash points for the crash tests: `CCETL_CRASH_AT=stage[:n]` aborts the process the n-th
//! time (default: the first) it reaches `stage`, with no destructors and no flushing, as a
//! SIGKILL would. Random kills rarely land between two writes a few microseconds apart;
//! these make every boundary of the commit protocol a tested crash point.
//!
//! `CCETL_HANG_AT=stage[:n]` with `CCETL_HANG_MARK=path` instead stops the first process of
//! many (the one that creates `path`, writing its pid there) at that point, alive and holding
//! its lease, for a test to SIGKILL from outside (a shard under Airflow); the others, and the
//! retry, pass.
//!
//! Stages: `audio` (mid-download, object not finished), `part` (a multipart upload's part
//! confirmed, object not finished), `files` (a window's Parquet written, manifest not),
//! `manifest` (manifest written, state not), `state` (window committed, next not started).
//! Unset, a check is one relaxed atomic load.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

struct Target {
    stage: String,
    nth: u32,
    seen: AtomicU32,
}

impl Target {
    fn from_env(var: &str) -> Option<Self> {
        let spec = std::env::var(var).ok()?;
        let (stage, nth) = match spec.split_once(':') {
            Some((s, n)) => (s.to_string(), n.parse().ok()?),
            None => (spec, 1),
        };
        Some(Target {
            stage,
            nth,
            seen: AtomicU32::new(0),
        })
    }

    /// Whether this visit of `stage` is the configured one.
    fn reached(&self, stage: &str) -> bool {
        self.stage == stage && self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.nth
    }
}

fn crash() -> Option<&'static Target> {
    static T: OnceLock<Option<Target>> = OnceLock::new();
    T.get_or_init(|| Target::from_env("CCETL_CRASH_AT"))
        .as_ref()
}

fn hang() -> Option<&'static Target> {
    static T: OnceLock<Option<Target>> = OnceLock::new();
    T.get_or_init(|| Target::from_env("CCETL_HANG_AT")).as_ref()
}

/// Aborts (or hangs) here if this is the configured crash point.
pub fn hit(stage: &str) {
    if crash().is_some_and(|t| t.reached(stage)) {
        eprintln!("ccetl: crash point {stage} reached (CCETL_CRASH_AT)");
        std::process::abort();
    }
    if hang().is_some_and(|t| t.reached(stage)) {
        hang_if_first(stage);
    }
}

/// Blocks this thread (for five minutes, then aborts) if this process is the first here.
fn hang_if_first(stage: &str) {
    let Some(mark) = std::env::var_os("CCETL_HANG_MARK") else {
        return;
    };
    let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&mark)
    else {
        return;
    };
    use std::io::Write;
    let _ = writeln!(f, "{}", std::process::id());
    drop(f);
    eprintln!("ccetl: hanging at {stage} (CCETL_HANG_AT) for a kill from outside");
    // Not forever: a test that failed before its kill must not leave it behind.
    std::thread::sleep(std::time::Duration::from_secs(300));
    eprintln!("ccetl: nobody killed the process hanging at {stage}; aborting");
    std::process::abort();
}
