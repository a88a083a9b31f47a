//! Holding a lease for the length of a run: renewed in the background, and checked before
//! every commit. A holder that lost its lease (it lapsed and another worker took it over),
//! or could not renew it before it would lapse, stops before its next write: two workers
//! never both commit a source's windows (self-fencing).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use object_store::ObjectStore;
use tokio::task::JoinHandle;

use super::lease::{Lease, LeaseError};

/// A held lease and its renewals.
#[derive(Debug)]
pub struct Fence {
    path: String,
    /// Until when (epoch ms) the last renewal holds it, less one renewal period of margin.
    safe_until_ms: Arc<AtomicI64>,
    /// Who took it over, once someone has.
    lost_to: Arc<Mutex<Option<String>>>,
    lease: Arc<tokio::sync::Mutex<Option<Lease>>>,
    renewals: JoinHandle<()>,
}

impl Fence {
    /// Holds `lease`, renewing it every `every` (a quarter of its time to live, or less).
    pub fn hold(store: Arc<dyn ObjectStore>, lease: Lease, every: Duration) -> Fence {
        let margin = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
        let path = lease.path().to_string();
        let safe_until_ms = Arc::new(AtomicI64::new(lease.body().expires_at_ms - margin));
        let lost_to = Arc::new(Mutex::new(None));
        let lease = Arc::new(tokio::sync::Mutex::new(Some(lease)));
        let renewals = tokio::spawn(renew(
            store,
            lease.clone(),
            every,
            safe_until_ms.clone(),
            lost_to.clone(),
        ));
        Fence {
            path,
            safe_until_ms,
            lost_to,
            lease,
            renewals,
        }
    }

    /// `Ok` while the lease is surely this run's; [`LeaseError::Lost`] once it may not be.
    pub fn check(&self) -> Result<(), LeaseError> {
        let lost = self
            .lost_to
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(holder) = lost {
            return Err(LeaseError::Lost {
                path: self.path.clone(),
                holder,
            });
        }
        if Utc::now().timestamp_millis() >= self.safe_until_ms.load(Ordering::Acquire) {
            return Err(LeaseError::Lost {
                path: self.path.clone(),
                holder: "nobody yet (it could not be renewed in time)".into(),
            });
        }
        Ok(())
    }

    /// Stops renewing and gives the lease up, so the next run need not wait for it to lapse.
    pub async fn release(&self, store: &dyn ObjectStore) -> Result<(), LeaseError> {
        self.renewals.abort();
        let lease = self.lease.lock().await.take();
        match lease {
            Some(l) if self.check().is_ok() => l.release(store).await,
            _ => Ok(()),
        }
    }
}

impl Drop for Fence {
    fn drop(&mut self) {
        self.renewals.abort();
    }
}

/// Renews until the lease is lost; a failed renewal is retried at the next tick (the
/// check fences writes if none succeeds before the lease would lapse).
async fn renew(
    store: Arc<dyn ObjectStore>,
    lease: Arc<tokio::sync::Mutex<Option<Lease>>>,
    every: Duration,
    safe_until_ms: Arc<AtomicI64>,
    lost_to: Arc<Mutex<Option<String>>>,
) {
    let margin = i64::try_from(every.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(every).await;
        let mut guard = lease.lock().await;
        let Some(l) = guard.as_mut() else { return };
        match l.renew(store.as_ref(), Utc::now()).await {
            Ok(()) => safe_until_ms.store(l.body().expires_at_ms - margin, Ordering::Release),
            Err(LeaseError::Lost { holder, .. }) => {
                tracing::warn!(lease = %l.path(), holder, "Lease taken over: this run stops before its next commit.");
                *lost_to
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(holder);
                return;
            }
            Err(e) => tracing::warn!(lease = %l.path(), "Lease not renewed, will retry: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_lease_stays_while_renewed_and_fences_once_taken_over() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("_ccetl/leases/wx/latest.json");
        let ttl = chrono::Duration::milliseconds(400);
        let lease = Lease::acquire(store.as_ref(), &path, "a", ttl, Utc::now())
            .await
            .unwrap();
        let fence = Fence::hold(store.clone(), lease, Duration::from_millis(100));
        // Several lifetimes later it is still held: renewals keep it.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        fence.check().unwrap();
        let refused = Lease::acquire(store.as_ref(), &path, "b", ttl, Utc::now()).await;
        assert!(matches!(refused, Err(LeaseError::Held { .. })));

        // Someone overwrites it (a clock-skewed takeover): the next renewal finds out.
        let theirs = r#"{"holder":"b","expires_at_ms":99999999999999,"generation":9}"#;
        store
            .put(&path, PutPayload::from_static(theirs.as_bytes()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let e = fence.check().unwrap_err();
        assert!(e.to_string().contains("taken over by b"), "{e}");
        // Releasing does not touch the successor's lease.
        fence.release(store.as_ref()).await.unwrap();
        let after = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(after.as_ref(), theirs.as_bytes());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_that_cannot_be_renewed_fences_before_it_lapses() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let path = Path::from("_ccetl/leases/wx/latest.json");
        let ttl = chrono::Duration::milliseconds(300);
        let lease = Lease::acquire(store.as_ref(), &path, "a", ttl, Utc::now())
            .await
            .unwrap();
        // Renewals far apart (a stalled network): the fence closes one period before expiry.
        let fence = Fence::hold(store.clone(), lease, Duration::from_millis(200));
        fence.check().unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let e = fence.check().unwrap_err();
        assert!(
            e.to_string().contains("could not be renewed in time"),
            "{e}"
        );
    }
}
