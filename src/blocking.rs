//! CPU-heavy or blocking work (Parquet encoding, a window's state commit) off the run's own
//! task, so that the next window's requests keep going meanwhile.

/// The runtime shut down before the work ran (the process is stopping).
#[derive(Debug, thiserror::Error)]
#[error("the process is shutting down: {0} did not run")]
pub struct ShutDown(pub &'static str);

/// Runs `f` on the blocking pool; `what` names it in the error. A panic in `f` is the
/// caller's panic, as if `f` had run inline.
pub async fn run<T, F>(what: &'static str, f: F) -> Result<T, ShutDown>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    spawn(what, f).await
}

/// Starts `f` on the blocking pool now, for the caller to await later (work that overlaps
/// the caller's own); otherwise as [`run`].
pub fn spawn<T, F>(
    what: &'static str,
    f: F,
) -> impl std::future::Future<Output = Result<T, ShutDown>> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let handle = tokio::task::spawn_blocking(f);
    async move {
        match handle.await {
            Ok(v) => Ok(v),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(ShutDown(what)),
        }
    }
}
