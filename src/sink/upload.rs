//! Writing one object of any size, so that a killed run leaves nothing billable behind.
//!
//! Up to one part, an object is a single PUT. Bigger ones go up in parts, with at most
//! `PARTS_IN_FLIGHT` parts in memory. On a bucket, the upload's id is recorded first as a
//! marker under `_ccetl/uploads/`: a run killed mid-upload leaves the marker, and the next
//! run aborts the upload (`sweep::abandoned_uploads`). Without that, a bucket keeps and bills
//! the parts of an unfinished upload indefinitely, and `object_store` cannot list them.
//! A kill in the one round trip between creating an upload and recording its marker leaves
//! an upload with no parts (nothing stored); the README's lifecycle rule removes those.
//! On local disk, `object_store` stages the file (`name#n`) and renames it into place.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{MultipartId, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

use super::backends::CloudStore;
use super::store::Warehouse;
use crate::state::lock::Holder;

/// Part size: S3's minimum, and the unit of upload memory.
pub const PART_SIZE: usize = 5 * 1024 * 1024;
/// Chunk size when staging on local disk, which has no minimum: memory per download stays
/// a few MB, so eight large recordings at once fit the 150 MB budget (issue 8).
const LOCAL_CHUNK_SIZE: usize = 1024 * 1024;
/// Parts uploading at once per object.
const PARTS_IN_FLIGHT: usize = 2;
/// Where the markers of unfinished multipart uploads live.
pub const MARKERS: &str = "_ccetl/uploads";

/// What the next run needs to abort an upload its writer never finished.
#[derive(Debug, Serialize, Deserialize)]
pub struct Marker {
    /// The object being uploaded.
    pub path: String,
    /// The store's id of the multipart upload.
    pub upload_id: String,
    /// The process that started it.
    pub writer: Holder,
}

impl Marker {
    /// The writer is gone (this host, dead pid) or the upload is older than any real one.
    pub fn abandoned(&self, now: DateTime<Utc>) -> bool {
        !self.writer.alive() || now - self.writer.since > chrono::Duration::hours(24)
    }
}

/// An object being written: `write` chunks in order, then `finish` (or `abort`).
pub struct Upload {
    path: Path,
    mode: Mode,
}

enum Mode {
    /// Local disk: a staging file renamed into place by `finish`.
    Staged(WriteMultipart),
    /// A bucket, first part not full yet: the object may still be one PUT.
    First {
        wh: Warehouse,
        buf: BytesMut,
    },
    Parts(Parts),
}

struct Parts {
    store: Arc<dyn CloudStore>,
    id: MultipartId,
    marker: Path,
    buf: BytesMut,
    next: usize,
    done: Vec<Option<PartId>>,
    inflight: JoinSet<(usize, object_store::Result<PartId>)>,
}

impl Upload {
    /// Starts an upload of `path`, leaving a marker first so a killed run's upload is aborted later.
    pub async fn start(wh: &Warehouse, path: Path) -> object_store::Result<Upload> {
        let mode = match wh.multipart() {
            None => Mode::Staged(WriteMultipart::new_with_chunk_size(
                wh.store().put_multipart(&path).await?,
                LOCAL_CHUNK_SIZE,
            )),
            Some(_) => Mode::First {
                wh: wh.clone(),
                buf: BytesMut::new(),
            },
        };
        Ok(Upload { path, mode })
    }

    /// Appends a chunk; parts go up as they fill.
    pub async fn write(&mut self, chunk: Bytes) -> object_store::Result<()> {
        match &mut self.mode {
            Mode::Staged(w) => {
                w.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                w.put(chunk);
            }
            Mode::First { wh, buf } => {
                buf.extend_from_slice(&chunk);
                if buf.len() > PART_SIZE {
                    let mut parts = Parts::begin(wh, &self.path).await?;
                    parts.buf = std::mem::take(buf);
                    parts.send_full(&self.path).await?;
                    self.mode = Mode::Parts(parts);
                }
            }
            Mode::Parts(p) => {
                p.buf.extend_from_slice(&chunk);
                p.send_full(&self.path).await?;
            }
        }
        Ok(())
    }

    /// Completes the upload: the object appears whole, or not at all.
    pub async fn finish(self) -> object_store::Result<()> {
        match self.mode {
            Mode::Staged(w) => w.finish().await.map(|_| ()),
            Mode::First { wh, buf } => wh
                .store()
                .put(&self.path, PutPayload::from_bytes(buf.freeze()))
                .await
                .map(|_| ()),
            Mode::Parts(p) => p.complete(&self.path).await,
        }
    }

    /// Drops what was written so far (best effort: a leftover marker is swept later).
    pub async fn abort(self) {
        match self.mode {
            Mode::Staged(w) => {
                let _ = w.abort().await;
            }
            Mode::First { .. } => {}
            Mode::Parts(mut p) => {
                p.inflight.shutdown().await;
                if p.store.abort_multipart(&self.path, &p.id).await.is_ok() {
                    let _ = p.store.delete(&p.marker).await;
                }
            }
        }
    }
}

impl Parts {
    /// Creates the multipart upload and records its marker before any part is sent.
    async fn begin(wh: &Warehouse, path: &Path) -> object_store::Result<Parts> {
        let store = wh
            .multipart()
            .cloned()
            .ok_or(object_store::Error::NotSupported {
                source: "multipart uploads".into(),
            })?;
        let id = store.create_multipart(path).await?;
        let marker = Marker {
            path: path.to_string(),
            upload_id: id.clone(),
            writer: Holder::me(),
        };
        let name = hex::encode(&Sha256::digest(format!("{path}\n{id}"))[..12]);
        let marker_path = wh.path(&[MARKERS, &format!("{name}.json")]);
        let json = serde_json::to_vec(&marker).map_err(|e| object_store::Error::Generic {
            store: "ccetl",
            source: Box::new(e),
        })?;
        store.put(&marker_path, PutPayload::from(json)).await?;
        Ok(Parts {
            store,
            id,
            marker: marker_path,
            buf: BytesMut::new(),
            next: 0,
            done: Vec::new(),
            inflight: JoinSet::new(),
        })
    }

    /// Sends every full part in the buffer, waiting while `PARTS_IN_FLIGHT` are on the way.
    async fn send_full(&mut self, path: &Path) -> object_store::Result<()> {
        while self.buf.len() >= PART_SIZE {
            let part = self.buf.split_to(PART_SIZE).freeze();
            self.send(path, part).await?;
        }
        Ok(())
    }

    async fn send(&mut self, path: &Path, part: Bytes) -> object_store::Result<()> {
        while self.inflight.len() >= PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        let (store, path, id, idx) = (self.store.clone(), path.clone(), self.id.clone(), self.next);
        self.next += 1;
        self.done.push(None);
        self.inflight.spawn(async move {
            let r = store
                .put_part(&path, &id, idx, PutPayload::from_bytes(part))
                .await;
            (idx, r)
        });
        Ok(())
    }

    async fn join_one(&mut self) -> object_store::Result<()> {
        if let Some(joined) = self.inflight.join_next().await {
            let (idx, r) = joined.map_err(|e| object_store::Error::Generic {
                store: "ccetl",
                source: Box::new(e),
            })?;
            self.done[idx] = Some(r?);
            crate::failpoint::hit("part");
        }
        Ok(())
    }

    async fn complete(mut self, path: &Path) -> object_store::Result<()> {
        let rest = std::mem::take(&mut self.buf).freeze();
        if !rest.is_empty() {
            self.send(path, rest).await?;
        }
        while !self.inflight.is_empty() {
            self.join_one().await?;
        }
        let parts: Vec<PartId> = self.done.drain(..).flatten().collect();
        self.store.complete_multipart(path, &self.id, parts).await?;
        self.store.delete(&self.marker).await
    }
}

impl Warehouse {
    /// Puts `bytes` at `path` in one request, or in parts past [`PART_SIZE`] on a bucket.
    pub(super) async fn put_whole_or_in_parts(
        &self,
        path: Path,
        bytes: Bytes,
    ) -> object_store::Result<()> {
        if self.multipart().is_none() || bytes.len() <= PART_SIZE {
            return self
                .store()
                .put(&path, PutPayload::from_bytes(bytes))
                .await
                .map(|_| ());
        }
        let mut upload = Upload::start(self, path).await?;
        if let Err(e) = upload.write(bytes).await {
            upload.abort().await;
            return Err(e);
        }
        upload.finish().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_is_abandoned_when_its_writer_is_gone_or_a_day_old() {
        let now = Utc::now();
        let mut m = Marker {
            path: "wh/audio/x.wav".into(),
            upload_id: "u1".into(),
            writer: Holder::me(),
        };
        assert!(!m.abandoned(now), "this process is alive");
        m.writer.process.pid = u32::MAX;
        assert!(m.abandoned(now), "no such pid on this host");
        m.writer = Holder::me();
        m.writer.process.host = "another-host".into();
        m.writer.process.host_id = "another-boot/pid:[1]".into();
        assert!(!m.abandoned(now), "another host's writer is presumed alive");
        assert!(m.abandoned(now + chrono::Duration::hours(25)), "for a day");
    }
}
