//! Leases kept in the warehouse: who may write a source's windows when workers share no
//! disk (issue 28). The local run lock only guards one machine; two Airflow workers see
//! only the bucket.
//!
//! A lease is one small JSON object. It is taken with a create-if-absent write, renewed and
//! handed over with compare-and-swap on the object's version (ETag or generation), so two
//! workers can never both believe they hold it: the loser of any race gets a precondition
//! failure. A lease past its expiry may be taken over by anyone; its old holder learns so at
//! its next renewal ([`LeaseError::Lost`]) and must stop before its next write
//! (self-fencing). Object stores without compare-and-swap (local disk) answer
//! [`VersionedError::Unsupported`]: a `file://` warehouse keeps the local lock.

use chrono::{DateTime, Duration, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::versioned::{self, VersionedError, Written};
use crate::process::ProcessRef;

/// What a lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseBody {
    /// Who holds it (a worker and process, for the humans reading an error).
    pub holder: String,
    /// When it lapses unless renewed (epoch ms).
    pub expires_at_ms: i64,
    /// How many times it changed hands: a takeover increments it.
    pub generation: u64,
    /// The holder's process, when it is a ccetl run: a run killed on the same machine leaves
    /// a lease the next run there can see is dead, without waiting for it to lapse. (Leases
    /// written before host ids held `process: [host, pid]`, now ignored: they lapse.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<ProcessRef>,
}

impl LeaseBody {
    /// A lease for this process, named by host, pid and start time.
    pub fn for_this_process() -> Self {
        let me = ProcessRef::me();
        LeaseBody {
            holder: format!(
                "{} pid {} since {}",
                me.host,
                me.pid,
                Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
            ),
            expires_at_ms: 0,
            generation: 0,
            run: Some(me),
        }
    }

    /// Whether its holder is a process of this machine that is gone (kill -9, OOM): then
    /// it may be taken at once rather than after it lapses.
    pub fn holder_is_gone(&self) -> bool {
        self.run.as_ref().is_some_and(ProcessRef::is_gone)
    }
}

/// Why a lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Someone else holds a live lease.
    #[error("{path} is held by {holder} until {until}; wait for it to finish or to lapse")]
    #[allow(missing_docs)] // the message names them
    Held {
        path: String,
        holder: String,
        until: DateTime<Utc>,
    },
    /// The lease changed under its holder (it lapsed and was taken over): stop writing.
    #[error("{path}: the lease was taken over by {holder}; this run stops before its next write")]
    #[allow(missing_docs)] // the message names them
    Lost { path: String, holder: String },
    /// The store could not read or swap the lease object.
    #[error(transparent)]
    Versioned(#[from] VersionedError),
}

impl LeaseError {
    /// Its kind, for the exit code: a live lease elsewhere is transient.
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            LeaseError::Held { .. } | LeaseError::Lost { .. } => crate::error::ErrorKind::Transient,
            LeaseError::Versioned(e) => e.kind(),
        }
    }
}

/// A lease this process holds.
#[derive(Debug, Clone)]
pub struct Lease {
    path: Path,
    body: LeaseBody,
    version: UpdateVersion,
    ttl: Duration,
}

impl Lease {
    /// Takes the lease at `path` for `holder`, for `ttl` from `now`: creates it, or takes
    /// over one that lapsed. A live one held by anyone (this holder included: a second
    /// process of the same worker is another writer) is refused.
    pub async fn acquire(
        store: &dyn ObjectStore,
        path: &Path,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Lease, LeaseError> {
        let body = LeaseBody {
            holder: holder.to_string(),
            expires_at_ms: 0,
            generation: 0,
            run: None,
        };
        Self::acquire_as(store, path, body, ttl, now, |_| false).await
    }

    /// [`Lease::acquire`] with `body`'s holder and process, also taking over a live lease
    /// whose holder `is_dead` says is gone.
    pub async fn acquire_as(
        store: &dyn ObjectStore,
        path: &Path,
        mut body: LeaseBody,
        ttl: Duration,
        now: DateTime<Utc>,
        is_dead: impl Fn(&LeaseBody) -> bool,
    ) -> Result<Lease, LeaseError> {
        body.expires_at_ms = (now + ttl).timestamp_millis();
        body.generation = 0;
        let mut version = None;
        if let Some((current, v)) = versioned::read::<LeaseBody>(store, path).await? {
            if current.expires_at_ms > now.timestamp_millis() && !is_dead(&current) {
                return Err(held(path, &current));
            }
            body.generation = current.generation + 1;
            version = Some(v);
        }
        match versioned::write(store, path, &body, version).await? {
            Written::Done(version) => Ok(Lease {
                path: path.clone(),
                body,
                version,
                ttl,
            }),
            // Another worker took it first.
            Written::Raced => Err(match versioned::read::<LeaseBody>(store, path).await? {
                Some((winner, _)) => held(path, &winner),
                None => lost(path, None),
            }),
        }
    }

    /// Extends the lease to `ttl` from `now`. [`LeaseError::Lost`] when it changed hands:
    /// the caller must stop before its next write.
    pub async fn renew(
        &mut self,
        store: &dyn ObjectStore,
        now: DateTime<Utc>,
    ) -> Result<(), LeaseError> {
        let mut body = self.body.clone();
        body.expires_at_ms = (now + self.ttl).timestamp_millis();
        let version = Some(self.version.clone());
        match versioned::write(store, &self.path, &body, version).await? {
            Written::Done(version) => {
                self.body = body;
                self.version = version;
                Ok(())
            }
            Written::Raced => {
                let winner = versioned::read::<LeaseBody>(store, &self.path).await;
                let holder = winner.ok().flatten().map(|(w, _)| w.holder);
                Err(lost(&self.path, holder))
            }
        }
    }

    /// Gives the lease up, so the next worker need not wait for it to lapse: it is marked
    /// lapsed by compare-and-swap (a delete could remove a successor's lease). Raced: a
    /// successor holds it already, and there is nothing to give up.
    pub async fn release(mut self, store: &dyn ObjectStore) -> Result<(), LeaseError> {
        self.body.expires_at_ms = 0;
        versioned::write(store, &self.path, &self.body, Some(self.version.clone())).await?;
        Ok(())
    }

    /// Where the lease object lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the lease object says.
    pub fn body(&self) -> &LeaseBody {
        &self.body
    }
}

fn held(path: &Path, body: &LeaseBody) -> LeaseError {
    LeaseError::Held {
        path: path.to_string(),
        holder: body.holder.clone(),
        until: DateTime::from_timestamp_millis(body.expires_at_ms).unwrap_or_default(),
    }
}

fn lost(path: &Path, holder: Option<String>) -> LeaseError {
    LeaseError::Lost {
        path: path.to_string(),
        holder: holder.unwrap_or_else(|| "nobody (it was deleted)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use std::sync::Arc;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[tokio::test]
    async fn a_live_lease_refuses_a_second_holder_and_a_lapsed_one_is_taken_over() {
        let store = InMemory::new();
        let path = Path::from("_ccetl/leases/wx");
        let ttl = Duration::seconds(30);
        let mut a = Lease::acquire(&store, &path, "worker-a", ttl, at(0))
            .await
            .unwrap();
        let refused = Lease::acquire(&store, &path, "worker-b", ttl, at(10)).await;
        let msg = refused.unwrap_err().to_string();
        assert!(msg.contains("held by worker-a until"), "{msg}");

        // Renewed in time, it stays a's.
        a.renew(&store, at(20)).await.unwrap();
        assert!(Lease::acquire(&store, &path, "worker-b", ttl, at(40))
            .await
            .is_err());

        // a stops renewing: past its expiry b takes over, and a learns it at its next renewal.
        let b = Lease::acquire(&store, &path, "worker-b", ttl, at(51))
            .await
            .unwrap();
        assert_eq!(b.body().generation, 1);
        let lost = a.renew(&store, at(52)).await.unwrap_err();
        assert!(
            matches!(lost, LeaseError::Lost { ref holder, .. } if holder == "worker-b"),
            "{lost}"
        );

        // Released, it is free at once.
        b.release(&store).await.unwrap();
        let c = Lease::acquire(&store, &path, "worker-c", ttl, at(53))
            .await
            .unwrap();
        assert_eq!(c.body().generation, 2);
    }

    #[tokio::test]
    async fn a_live_lease_of_a_dead_holder_is_taken_over_at_once() {
        let store = InMemory::new();
        let path = Path::from("_ccetl/leases/wx");
        let ttl = Duration::seconds(120);
        let me = |pid: u32| LeaseBody {
            holder: format!("host-a pid {pid}"),
            expires_at_ms: 0,
            generation: 0,
            run: Some(ProcessRef {
                pid,
                ..ProcessRef::me()
            }),
        };
        let dead_pid = |b: &LeaseBody| b.run.as_ref().is_some_and(|p| p.pid == 7);
        Lease::acquire_as(&store, &path, me(7), ttl, at(0), dead_pid)
            .await
            .unwrap();
        // Pid 7 was killed: pid 8 need not wait two minutes.
        let b = Lease::acquire_as(&store, &path, me(8), ttl, at(1), dead_pid)
            .await
            .unwrap();
        assert_eq!(b.body().generation, 1);
        // Pid 8 lives: pid 9 is refused.
        let e = Lease::acquire_as(&store, &path, me(9), ttl, at(2), dead_pid)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("held by host-a pid 8"), "{e}");
    }

    #[tokio::test]
    async fn a_holder_is_judged_by_its_pid_only_in_its_own_scope() {
        let store = InMemory::new();
        let ttl = Duration::seconds(120);
        let gone = LeaseBody::holder_is_gone;
        let with = |pid: u32, host_id: &str| {
            let mut b = LeaseBody::for_this_process();
            let run = b.run.as_mut().unwrap();
            (run.pid, run.host_id) = (pid, host_id.to_string());
            b
        };
        let me = LeaseBody::for_this_process();
        let here = me.run.clone().unwrap().host_id;

        // Our host name, a pid not running here, another machine or container: it is live
        // until it lapses.
        let path = Path::from("_ccetl/leases/twin");
        let twin = with(u32::MAX - 1, "other-boot/pid:[4026532000]");
        Lease::acquire_as(&store, &path, twin, ttl, at(0), gone)
            .await
            .unwrap();
        let e = Lease::acquire_as(&store, &path, me.clone(), ttl, at(1), gone)
            .await
            .unwrap_err();
        assert!(matches!(e, LeaseError::Held { .. }), "{e}");
        Lease::acquire_as(&store, &path, me.clone(), ttl, at(121), gone)
            .await
            .expect("lapsed");

        // The same pid in our own scope: gone, taken at once.
        let path = Path::from("_ccetl/leases/dead");
        Lease::acquire_as(&store, &path, with(u32::MAX - 1, &here), ttl, at(0), gone)
            .await
            .unwrap();
        Lease::acquire_as(&store, &path, me.clone(), ttl, at(1), gone)
            .await
            .expect("a dead holder of this machine");
        // And this live process is never taken over.
        let e = Lease::acquire_as(&store, &path, me, ttl, at(2), gone)
            .await
            .unwrap_err();
        assert!(matches!(e, LeaseError::Held { .. }), "{e}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_many_racing_for_a_lapsed_lease_exactly_one_wins() {
        let store = Arc::new(InMemory::new());
        let path = Path::from("_ccetl/leases/wx");
        let ttl = Duration::seconds(30);
        for round in 0..20 {
            let now = at(round * 100);
            let racers = (0..8).map(|i| {
                let (store, path) = (store.clone(), path.clone());
                tokio::spawn(async move {
                    Lease::acquire(store.as_ref(), &path, &format!("w{i}"), ttl, now).await
                })
            });
            let results = futures::future::join_all(racers).await;
            let won = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
            assert_eq!(won, 1, "round {round}: {won} winners");
            for r in results {
                if let Ok(Err(e)) = r {
                    assert!(matches!(e, LeaseError::Held { .. }), "{e}");
                }
            }
        }
    }

    #[tokio::test]
    async fn local_disk_says_leases_need_an_object_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let path = Path::from("lease");
        let ttl = Duration::seconds(30);
        // Creating works on disk; the compare-and-swap a renewal needs does not.
        let mut a = Lease::acquire(&store, &path, "a", ttl, at(0))
            .await
            .unwrap();
        let e = a.renew(&store, at(1)).await.unwrap_err();
        assert!(
            matches!(e, LeaseError::Versioned(VersionedError::Unsupported { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("no conditional writes"), "{e}");
    }
}
