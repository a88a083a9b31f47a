//! A window's audio copied: the one copy sequence every source shares.
//!
//! For each recording of a window: reuse the object the ledger says is stored (no request),
//! else let the source copy it (its `copy` knows the source's URLs, renewals and quotas),
//! and record each new object in the ledger as it lands, so that a window failing later does
//! not download it again. With audio off nothing is copied, but audio an earlier run stored
//! is still reported, and where: "disabled" would tell the analyst it does not exist.

use std::future::Future;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;

use chrono::Utc;

use super::audio::AudioState;
use super::store::Warehouse;
use crate::state::AudioStatus;
use crate::state::{State, StateError, StoredLedger};

/// Where a recording's audio goes: its object's path and that path as a URI.
#[derive(Debug, Clone)]
pub struct Target {
    /// The object's path in the store.
    pub path: Path,
    /// Its URI, as `audio_uri` records it.
    pub uri: String,
}

/// One source's audio settings for a window.
pub struct AudioCopy<'a> {
    /// The source's state: the audio ledger.
    pub state: &'a Arc<State>,
    /// Where objects go.
    pub wh: &'a Warehouse,
    /// The source's name: the ledger's key and the objects' prefix.
    pub source: &'a str,
    /// Whether the source copies audio (its `audio` key).
    pub copy_audio: bool,
    /// Copies at a time.
    pub concurrency: usize,
    /// Count each object stored in the egress ledger as it lands, for an API that caps
    /// egress over a rolling period (Xima): a run killed right after still counts it.
    pub count_egress: bool,
}

impl AudioCopy<'_> {
    /// The audio of a window's `n` recordings, one state per recording in order.
    ///
    /// `ids(i)` is object `i`'s ledger id and its call's id (the ledger's key and row);
    /// `key(i)` its object's key in the warehouse ([`super::keys::audio_key`],
    /// [`super::keys::transcript_key`]); `copy(i, target)` copies it there, called only for an
    /// object the ledger does not hold at that place.
    pub async fn run<'r, E, I, K, C, F>(
        &self,
        n: usize,
        ids: I,
        key: K,
        copy: C,
    ) -> Result<Vec<AudioState>, E>
    where
        E: From<StateError>,
        I: Fn(usize) -> (&'r str, &'r str),
        K: Fn(usize) -> String,
        C: Fn(usize, Target) -> F,
        F: Future<Output = Result<AudioState, E>>,
    {
        let target = |i: usize| {
            let path = self.wh.path(&[&key(i)]);
            let uri = self.wh.uri(&path);
            Target { path, uri }
        };
        // What the ledger already holds of the window, in one query.
        let mut stored = {
            let wanted: Vec<&str> = (0..n).map(|i| ids(i).0).collect();
            self.state.stored_audio(self.source, &wanted)?
        };
        let mut audio = vec![AudioState::none(AudioStatus::Disabled, None); n];
        if !self.copy_audio {
            if !stored.is_empty() {
                for (i, row) in audio.iter_mut().enumerate() {
                    if let Some(before) = stored.remove(ids(i).0) {
                        if let Some(done) = AudioState::already_stored(Some(before), &target(i).uri)
                        {
                            *row = done;
                        }
                    }
                }
            }
            return Ok(audio);
        }
        let jobs = (0..n).map(|i| (i, stored.remove(ids(i).0)));
        let (target, copy) = (&target, &copy);
        let mut copied = futures::stream::iter(jobs)
            .map(|(i, before)| async move {
                let to = target(i);
                let done = match AudioState::already_stored(before, &to.uri) {
                    Some(done) => done,
                    None => copy(i, to).await?,
                };
                Ok::<_, E>((i, done))
            })
            .buffer_unordered(self.concurrency.max(1));
        let mut ledger = StoredLedger::new(self.state, self.source);
        loop {
            let (i, done) = match copied.try_next().await {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    // The window stops, but what it stored is recorded first.
                    ledger.flush_quietly().await;
                    return Err(e);
                }
            };
            let (id, call) = ids(i);
            let stored = done.newly_stored(id, call);
            if self.count_egress {
                if let Some(bytes) = stored.as_ref().and_then(|s| s.bytes) {
                    self.state.record_egress(self.source, Utc::now(), bytes)?;
                }
            }
            ledger.add(stored).await?;
            audio[i] = done;
        }
        ledger.flush().await?;
        Ok(audio)
    }
}
