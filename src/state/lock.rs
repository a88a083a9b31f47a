//! One writer per state file: `ccetl run` holds `<state>.lock` (its process, start time)
//! while it runs, so a second run fails at once saying who holds it, instead of waiting on
//! or corrupting the first. A lock whose process is gone (killed, OOM, pre-empted on this
//! machine: [`ProcessRef::is_gone`]) is stale: the next run takes it over and says so. A
//! process on another machine or container (a state file on a shared disk) cannot be
//! checked, so the holder rewrites the lock every `BEAT`; one whose heartbeat is older than
//! `STALE_AFTER` is gone, wherever it ran.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StateError;
use crate::process::ProcessRef;

/// How often a running holder refreshes its heartbeat.
const BEAT: Duration = Duration::from_secs(30);
/// A heartbeat this old means the holder is gone (ten missed beats: NFS and a busy host
/// delay writes, never by minutes).
const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// Who holds the run lock (or the state DB), as written in the lock file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Holder {
    /// Its process.
    #[serde(flatten)]
    pub process: ProcessRef,
    /// When it took the lock.
    pub since: DateTime<Utc>,
    /// Last heartbeat (locks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beat: Option<DateTime<Utc>>,
}

/// The held lock; dropping it stops the heartbeat and releases it.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    stop: Option<mpsc::Sender<()>>,
    heart: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RunLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heart.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Rewrites the lock with a fresh heartbeat until `stop` is dropped. The new text goes to a
/// side file renamed over the lock, so a reader never sees it half-written.
fn heartbeat(path: PathBuf, mut me: Holder, stop: mpsc::Receiver<()>, every: Duration) {
    let side = path.with_extension("lock.beat");
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        me.beat = Some(Utc::now());
        let text = serde_json::to_string(&me).unwrap_or_default();
        if std::fs::write(&side, text)
            .and_then(|()| std::fs::rename(&side, &path))
            .is_err()
        {
            tracing::warn!(lock = %path.display(), "Could not refresh the run lock's heartbeat.");
        }
    }
}

/// The lock file of a state DB.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut p = state.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

impl Holder {
    /// This process, now.
    pub fn me() -> Holder {
        Holder {
            process: ProcessRef::me(),
            since: Utc::now(),
            beat: None,
        }
    }

    /// Whether the holder still runs: its process, where this machine can check it;
    /// elsewhere, a recent heartbeat (a holder without one, such as an upload's writer, is
    /// presumed alive).
    pub fn alive(&self) -> bool {
        self.alive_at(Utc::now())
    }

    fn alive_at(&self, now: DateTime<Utc>) -> bool {
        if self.process.is_local() {
            // Its pid is authoritative: a suspended laptop's run misses beats but lives.
            return !self.process.is_gone();
        }
        self.beat.is_none_or(|b| now - b < STALE_AFTER)
    }
}

impl RunLock {
    /// Takes the lock next to `state`, taking over one left by a dead process on this host or
    /// whose heartbeat is stale; refuses a live holder with [`StateError::Running`].
    pub fn acquire(state: &Path) -> Result<RunLock, StateError> {
        let path = lock_path(state);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
                path: path.clone(),
                source,
            })?;
        }
        let me = Holder {
            beat: Some(Utc::now()),
            ..Holder::me()
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
                    let (stop, beats) = mpsc::channel();
                    let beating = path.clone();
                    let heart = std::thread::Builder::new()
                        .name("ccetl-lock-heartbeat".into())
                        .spawn(move || heartbeat(beating, me, beats, BEAT))
                        .map_err(io)?;
                    return Ok(RunLock {
                        path,
                        stop: Some(stop),
                        heart: Some(heart),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let held = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| serde_json::from_str::<Holder>(&t).ok());
                    match held {
                        Some(h) if h.alive() => {
                            return Err(StateError::Running {
                                path: state.to_path_buf(),
                                pid: h.process.pid,
                                host: h.process.host,
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
        let mut dead = Holder::me();
        dead.process.pid = u32::MAX - 1;
        std::fs::write(lock_path(&state), serde_json::to_string(&dead).unwrap()).unwrap();
        let _taken = RunLock::acquire(&state).unwrap();
        let now: Holder =
            serde_json::from_str(&std::fs::read_to_string(lock_path(&state)).unwrap()).unwrap();
        assert_eq!(now.process.pid, std::process::id());
    }

    #[test]
    fn the_heartbeat_rewrites_the_lock_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.duckdb.lock");
        let me = Holder::me();
        std::fs::write(&path, serde_json::to_string(&me).unwrap()).unwrap();
        let (stop, beats) = mpsc::channel();
        let p = path.clone();
        let heart = std::thread::spawn(move || heartbeat(p, me, beats, Duration::from_millis(5)));
        let read = || serde_json::from_str::<Holder>(&std::fs::read_to_string(&path).unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read().unwrap().beat.is_none() {
            assert!(std::time::Instant::now() < deadline, "no heartbeat written");
            std::thread::sleep(Duration::from_millis(5));
        }
        drop(stop);
        heart.join().unwrap();
        let last = read().unwrap().beat;
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(read().unwrap().beat, last, "stopped");
    }

    #[test]
    fn a_holder_on_another_host_lives_as_long_as_its_heartbeat() {
        let now = Utc::now();
        let elsewhere = |beat| {
            let mut h = Holder {
                beat,
                ..Holder::me()
            };
            h.process.host = "worker-9".into();
            h.process.host_id = "worker-9-boot/pid:[1]".into();
            h
        };
        assert!(elsewhere(Some(now - chrono::Duration::seconds(40))).alive_at(now));
        assert!(!elsewhere(Some(now - chrono::Duration::minutes(6))).alive_at(now));
        assert!(
            elsewhere(None).alive_at(now),
            "no heartbeat: presumed alive"
        );
    }

    #[test]
    fn the_lock_of_a_host_that_stopped_beating_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.duckdb");
        let mut gone = Holder {
            beat: Some(Utc::now() - chrono::Duration::minutes(10)),
            ..Holder::me()
        };
        gone.process.host = "worker-9".into();
        gone.process.host_id = "worker-9-boot/pid:[1]".into();
        std::fs::write(lock_path(&state), serde_json::to_string(&gone).unwrap()).unwrap();
        let _taken = RunLock::acquire(&state).unwrap();
        let beating = Holder {
            beat: Some(Utc::now()),
            ..gone
        };
        drop(_taken);
        std::fs::write(lock_path(&state), serde_json::to_string(&beating).unwrap()).unwrap();
        let e = RunLock::acquire(&state).unwrap_err();
        assert!(e.to_string().contains("worker-9"), "{e}");
    }

    #[test]
    fn a_holder_with_our_host_name_on_another_machine_is_judged_by_its_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s.duckdb");
        // Same host name and a pid that is not running here: another container's live run.
        let mut twin = Holder {
            beat: Some(Utc::now()),
            ..Holder::me()
        };
        twin.process.pid = u32::MAX - 1;
        twin.process.host_id = "other-boot/pid:[4026532000]".into();
        std::fs::write(lock_path(&state), serde_json::to_string(&twin).unwrap()).unwrap();
        let e = RunLock::acquire(&state).unwrap_err();
        assert!(matches!(e, StateError::Running { .. }), "{e}");
        twin.beat = Some(Utc::now() - chrono::Duration::minutes(10));
        std::fs::write(lock_path(&state), serde_json::to_string(&twin).unwrap()).unwrap();
        let _taken = RunLock::acquire(&state).expect("a stale heartbeat is taken over");
    }

    #[test]
    fn a_lock_written_before_host_ids_keeps_its_shape_and_is_read() {
        let old =
            r#"{"pid":1,"host":"h","since":"2026-01-01T00:00:00Z","beat":"2026-01-01T00:00:30Z"}"#;
        let h: Holder = serde_json::from_str(old).unwrap();
        assert_eq!((h.process.pid, h.process.host.as_str()), (1, "h"));
        assert!(!h.alive(), "no host id: judged by its (old) heartbeat");
        let text = serde_json::to_string(&Holder::me()).unwrap();
        assert!(
            text.contains("\"pid\":") && text.contains("\"host_id\":"),
            "{text}"
        );
    }
}
