//! One writer per state file: `ccetl run` holds `<state>.lock` (pid, host, start time) while
//! it runs, so a second run fails at once saying who holds it, instead of waiting on or
//! corrupting the first. A lock whose process is gone (killed, OOM, pre-empted on this host)
//! is stale: the next run takes it over and says so.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{hostname, StateError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub since: DateTime<Utc>,
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The lock file of a state DB.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Whether the holder still runs. Only processes on this host can be checked; one on another
/// host (a shared disk) is presumed alive.
fn alive(h: &Holder) -> bool {
    h.host != hostname() || Path::new(&format!("/proc/{}", h.pid)).exists()
}

impl RunLock {
    pub fn acquire(state: &Path) -> Result<RunLock, StateError> {
        let path = lock_path(state);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
                path: path.clone(),
                source,
            })?;
        }
        let me = Holder {
            pid: std::process::id(),
            host: hostname(),
            since: Utc::now(),
        };
        let io = |source: std::io::Error| StateError::Lock {
            path: path.clone(),
            source,
        };
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let text = serde_json::to_string(&me).unwrap_or_default();
                    f.write_all(text.as_bytes()).map_err(io)?;
                    return Ok(RunLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let held = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str::<Holder>(&t).ok());
                    match held {
                        Some(h) if alive(&h) => {
                            return Err(StateError::Running {
                                path: state.to_path_buf(),
                                pid: h.pid,
                                host: h.host,
                                since: h.since,
                            })
                        }
                        stale => {
                            tracing::warn!(lock = %path.display(), holder = ?stale, "Taking over the lock of a run that is gone.");
                            std::fs::remove_file(&path).map_err(io)?;
                        }
                    }
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(io(std::io::Error::other("the lock file keeps coming back")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_and_a_dead_one_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.duckdb");
        let held = RunLock::acquire(&state).unwrap();
        let e = RunLock::acquire(&state).unwrap_err();
        assert!(
            matches!(&e, StateError::Running { pid, .. } if *pid == std::process::id()),
            "{e}"
        );
        assert!(e.to_string().contains("already running"), "{e}");
        drop(held);
        assert!(!lock_path(&state).exists(), "released on drop");

        // A lock left by a process that no longer exists.
        let dead = Holder {
            pid: u32::MAX - 1,
            host: hostname(),
            since: Utc::now(),
        };
        std::fs::write(lock_path(&state), serde_json::to_string(&dead).unwrap()).unwrap();
        let _taken = RunLock::acquire(&state).unwrap();
        let now: Holder =
            serde_json::from_str(&std::fs::read_to_string(lock_path(&state)).unwrap()).unwrap();
        assert_eq!(now.pid, std::process::id());
    }
}
