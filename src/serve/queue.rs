//! Events acknowledged but not yet committed, kept in two append-only files next to the
//! state: `…events` (one JSON line per event, synced to disk before the sender gets its 2xx) and
//! `…events.done` (the task ids committed since). After a crash the pending events are those
//! of the first file not in the second; a torn last line was never acknowledged. When
//! nothing is pending both files are emptied. The queue is not the state DB on purpose: a
//! scheduled `ccetl run` may hold that for minutes, and a sender wants an answer within seconds (Webex: 5).

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::extract::webhooks::Event;

/// Acknowledged events on disk until their batch commits: a crash after the 200 loses none.
#[derive(Debug)]
pub struct EventQueue {
    paths: (PathBuf, PathBuf),
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: File,
    done: File,
    /// In arrival order, one per task.
    pending: Vec<Event>,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn lines(path: &Path) -> std::io::Result<Vec<String>> {
    match File::open(path) {
        Ok(f) => BufReader::new(f).lines().collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

impl EventQueue {
    /// Opens (or creates) the queue stored at `base` (`base` and `base.done`).
    pub fn open(base: &Path) -> std::io::Result<Self> {
        let done_path = PathBuf::from(format!("{}.done", base.display()));
        let done: HashSet<String> = lines(&done_path)?.into_iter().collect();
        let mut seen = HashSet::new();
        let pending = lines(base)?
            .iter()
            .filter_map(|l| serde_json::from_str::<Event>(l).ok())
            .filter(|e| !done.contains(&e.task_id) && seen.insert(e.task_id.clone()))
            .collect();
        let mut log = open_append(base)?;
        // A torn last line must not swallow the next event appended after it.
        let text = std::fs::read(base)?;
        if text.last().is_some_and(|b| *b != b'\n') {
            log.write_all(b"\n")?;
        }
        Ok(EventQueue {
            inner: Mutex::new(Inner {
                log,
                done: open_append(&done_path)?,
                pending,
            }),
            paths: (base.to_path_buf(), done_path),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event durably. `false` when its task is already pending (a redelivery,
    /// or a second recording of the same call): nothing more to do.
    pub fn push(&self, e: &Event) -> std::io::Result<bool> {
        let mut q = self.lock();
        if q.pending.iter().any(|p| p.task_id == e.task_id) {
            return Ok(false);
        }
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        q.log.write_all(&line)?;
        q.log.sync_data()?;
        q.pending.push(e.clone());
        Ok(true)
    }

    /// Up to `max` pending events, oldest first (they stay pending until [`Self::done`]).
    pub fn peek(&self, max: usize) -> Vec<Event> {
        self.lock().pending.iter().take(max).cloned().collect()
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Whether none wait.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Marks tasks committed; empties both files once nothing is pending.
    pub fn done(&self, task_ids: &[String]) -> std::io::Result<()> {
        if task_ids.is_empty() {
            return Ok(());
        }
        let mut q = self.lock();
        let mut text = task_ids.join("\n");
        text.push('\n');
        q.done.write_all(text.as_bytes())?;
        q.done.sync_data()?;
        let ids: HashSet<&String> = task_ids.iter().collect();
        q.pending.retain(|e| !ids.contains(&e.task_id));
        if q.pending.is_empty() {
            // The log first: a crash between the two leaves done ids that name nothing.
            q.log.set_len(0)?;
            q.log.sync_data()?;
            q.done.set_len(0)?;
            q.done.sync_data()?;
        }
        Ok(())
    }

    /// The two files (for messages).
    pub fn paths(&self) -> (&Path, &Path) {
        (&self.paths.0, &self.paths.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(task: &str) -> Event {
        Event {
            id: format!("e-{task}"),
            task_id: task.into(),
            created_ms: 1,
            received_ms: 2,
        }
    }

    #[test]
    fn pending_events_survive_a_reopen_and_done_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("q.events");
        let q = EventQueue::open(&base).unwrap();
        assert!(q.push(&ev("a")).unwrap());
        assert!(q.push(&ev("b")).unwrap());
        assert!(
            !q.push(&ev("a")).unwrap(),
            "a redelivery is not queued twice"
        );
        q.done(&["a".into()]).unwrap();
        drop(q);
        // A torn line, as a kill in the middle of a write leaves.
        let mut f = open_append(&base).unwrap();
        f.write_all(b"{\"id\":\"e-c\",\"task_").unwrap();
        let q = EventQueue::open(&base).unwrap();
        assert_eq!(q.peek(10), vec![ev("b")]);
        assert!(q.push(&ev("c")).unwrap());
        drop(q);
        let q = EventQueue::open(&base).unwrap();
        assert_eq!(
            q.peek(10),
            vec![ev("b"), ev("c")],
            "the event after a torn line is kept"
        );
        q.done(&["b".into(), "c".into()]).unwrap();
        assert!(q.is_empty());
        assert_eq!(std::fs::metadata(&base).unwrap().len(), 0, "emptied");
        assert!(q.push(&ev("d")).unwrap());
        drop(q);
        assert_eq!(EventQueue::open(&base).unwrap().peek(10), vec![ev("d")]);
    }
}
