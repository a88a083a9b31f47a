//! Crash points for the crash test: `CCETL_CRASH_AT=stage[:n]` aborts the process the n-th
//! time (default: the first) it reaches `stage`, with no destructors and no flushing, as a
//! SIGKILL would. Random kills rarely land between two writes a few microseconds apart;
//! these make every boundary of the commit protocol a tested crash point.
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

fn target() -> Option<&'static Target> {
    static T: OnceLock<Option<Target>> = OnceLock::new();
    T.get_or_init(|| {
        let spec = std::env::var("CCETL_CRASH_AT").ok()?;
        let (stage, nth) = match spec.split_once(':') {
            Some((s, n)) => (s.to_string(), n.parse().ok()?),
            None => (spec, 1),
        };
        Some(Target {
            stage,
            nth,
            seen: AtomicU32::new(0),
        })
    })
    .as_ref()
}

/// Aborts here if this is the configured crash point.
pub fn hit(stage: &str) {
    if let Some(t) = target().filter(|t| t.stage == stage) {
        if t.seen.fetch_add(1, Ordering::Relaxed) + 1 == t.nth {
            eprintln!(
                "ccetl: crash point {stage}:{} reached (CCETL_CRASH_AT)",
                t.nth
            );
            std::process::abort();
        }
    }
}
