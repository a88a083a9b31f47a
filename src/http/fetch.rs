//! Reading a response body, and asking again when it breaks off or arrives malformed.
//!
//! [`HttpClient::send`] retries what goes wrong before the headers; this is the other half:
//! a connection reset or a stall in the middle of the body, and a body that is complete as
//! far as HTTP knows but does not decode (a proxy that cut a page short). Every source reads
//! through [`HttpClient::fetch`], so one policy covers JSON pages, CSV reports and audio.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::Response;

use super::backoff::Backoff;
use super::{HttpClient, HttpError};

/// Extra attempts for a body that arrives whole but does not decode. A page that is still
/// malformed the third time is what the API serves: the run fails and says why.
pub const MALFORMED_RETRIES: u32 = 2;

/// The largest page body read into memory. Real pages are a few MB (1,000 tasks); anything
/// near this is a misbehaving server, refused before it exhausts memory.
pub const MAX_PAGE_BYTES: usize = 256 << 20;

/// `Accept-Encoding` for the pages of APIs that compress only when asked (WxCC `/v1/tasks`
/// and `/search`, past 1 MB); [`HttpClient::read_body`] decodes what comes back.
pub const ACCEPT_GZIP: (reqwest::header::HeaderName, &str) =
    (reqwest::header::ACCEPT_ENCODING, "gzip");

/// A gzip body that does not inflate: cut short on the way, asked for again.
fn broken_gzip<E>(e: std::io::Error) -> BodyError<E> {
    BodyError::Broken(format!("gzip body: {e}"))
}

/// The most a body's buffer is sized up front from its Content-Length.
const PRESIZE_MAX: usize = 16 << 20;

/// Why consuming a body failed, which decides whether it is asked for again.
#[derive(Debug)]
pub enum BodyError<E> {
    /// The body broke off or stalled: asked again under the retry policy.
    Broken(String),
    /// The body arrived but does not decode: asked again [`MALFORMED_RETRIES`] times.
    Malformed(E),
    /// Nothing to gain from asking again (the warehouse refused a write, a quota).
    Fatal(E),
}

impl HttpClient {
    /// Sends with `send` and hands the response to `consume`, starting over when the body
    /// breaks off or is malformed. `send` errors (statuses, transport) are final here: `send`
    /// has retried them already.
    pub async fn fetch<T, E, S, SFut, C, CFut>(
        &self,
        endpoint: &str,
        mut send: S,
        mut consume: C,
    ) -> Result<T, E>
    where
        S: FnMut() -> SFut,
        SFut: Future<Output = Result<Response, E>>,
        C: FnMut(Response) -> CFut,
        CFut: Future<Output = Result<T, BodyError<E>>>,
        E: From<HttpError>,
    {
        let mut backoff = Backoff::new(self.retry.backoff);
        let (mut broken, mut malformed) = (0u32, 0u32);
        loop {
            let resp = send().await?;
            let why = match consume(resp).await {
                Ok(t) => return Ok(t),
                Err(BodyError::Fatal(e)) => return Err(e),
                Err(BodyError::Malformed(e)) => {
                    malformed += 1;
                    if malformed > MALFORMED_RETRIES {
                        return Err(e);
                    }
                    "malformed body".to_string()
                }
                Err(BodyError::Broken(message)) => {
                    broken += 1;
                    self.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                    if broken > self.retry.max_retries {
                        return Err(HttpError::Body {
                            endpoint: endpoint.to_string(),
                            attempts: broken,
                            message,
                        }
                        .into());
                    }
                    message
                }
            };
            let delay = backoff.next_delay();
            tracing::debug!(
                endpoint,
                why,
                delay_ms = delay.as_millis() as u64,
                "Response body unusable; asking again."
            );
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            self.stats.body_restarts.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    }

    /// The chunks of `resp` as they arrive, counted in the stats; a chunk that fails is the
    /// body breaking off. Every body reader (pages, CSV, audio) reads through this.
    pub fn chunks<E>(
        &self,
        resp: Response,
    ) -> impl futures::Stream<Item = Result<Bytes, BodyError<E>>> + use<E> {
        let stats = self.stats.clone();
        resp.bytes_stream().map(move |chunk| {
            let chunk = chunk.map_err(|e| BodyError::Broken(e.without_url().to_string()))?;
            stats.add_bytes(chunk.len() as u64);
            Ok(chunk)
        })
    }

    /// The whole body of `resp`, decompressed when it comes gzip-encoded (the APIs answer so
    /// only when asked, see [`ACCEPT_GZIP`]); over `limit` bytes, decompressed, it is refused.
    pub async fn read_body<E>(
        &self,
        resp: Response,
        limit: usize,
        too_big: impl FnOnce(usize) -> E,
    ) -> Result<Bytes, BodyError<E>> {
        let gzip = resp
            .headers()
            .get(reqwest::header::CONTENT_ENCODING)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
        // Sized from Content-Length when the server sends one (a 1,000-task page, ~400 KB,
        // grown by doubling was copied ten times), up to a bound a lying header cannot pass.
        let expected = resp.content_length().and_then(|n| usize::try_from(n).ok());
        let capacity = expected.unwrap_or(0).min(limit).min(PRESIZE_MAX);
        let mut stream = std::pin::pin!(self.chunks(resp));
        if gzip {
            let mut inflate = flate2::write::GzDecoder::new(Vec::with_capacity(capacity));
            while let Some(chunk) = stream.next().await {
                // A chunk inflates at most ~1,000-fold: the bound holds within one chunk.
                inflate.write_all(&chunk?).map_err(broken_gzip)?;
                if inflate.get_ref().len() > limit {
                    return Err(BodyError::Fatal(too_big(limit)));
                }
            }
            return inflate.finish().map(Bytes::from).map_err(broken_gzip);
        }
        let mut body = BytesMut::with_capacity(capacity);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if body.len() + chunk.len() > limit {
                return Err(BodyError::Fatal(too_big(limit)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    /// Fetches a page and decodes it with `parse`; a page that fails to parse is malformed.
    pub async fn fetch_page<T, E, S, SFut>(
        &self,
        endpoint: &str,
        send: S,
        parse: impl Fn(&[u8]) -> Result<T, E>,
        too_big: impl Fn(usize) -> E,
    ) -> Result<T, E>
    where
        S: FnMut() -> SFut,
        SFut: Future<Output = Result<Response, E>>,
        E: From<HttpError>,
    {
        let (parse, too_big) = (&parse, &too_big);
        self.fetch(endpoint, send, |resp| async move {
            let body = self.read_body(resp, MAX_PAGE_BYTES, too_big).await?;
            parse(&body).map_err(BodyError::Malformed)
        })
        .await
    }
}

/// Decodes a JSON page; an error names the field by its path in the page
/// (`data[3].attributes.createdTime: invalid type: map, …`), not only a byte offset.
///
/// Tracking the path costs on every field, so it is done only to explain a failure: the
/// page is decoded plainly first, and again with the path only when that fails. The plain
/// pass checks the body's UTF-8 once, in bulk, rather than string by string.
pub fn decode_json<'de, T: serde::Deserialize<'de>>(body: &'de [u8]) -> Result<T, JsonError> {
    if let Ok(text) = std::str::from_utf8(body) {
        if let Ok(value) = serde_json::from_str(text) {
            return Ok(value);
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        JsonError {
            path: (path != ".").then_some(path),
            error: e.into_inner(),
        }
    })?;
    de.end().map_err(|error| JsonError { path: None, error })?;
    Ok(value)
}

/// A JSON body that does not decode, and where in it.
#[derive(Debug, thiserror::Error)]
#[error("{}{error}", path.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
pub struct JsonError {
    /// The field's path in the body (`data[3].attributes.createdTime`), when known.
    pub path: Option<String>,
    /// Part of the message, not a separate cause: the message is the whole story.
    error: serde_json::Error,
}

/// "256 MiB" for messages.
pub fn mib(bytes: usize) -> String {
    format!("{} MiB", bytes >> 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Page {
        data: Vec<Item>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        id: String,
        n: i64,
    }

    fn response(body: Vec<u8>, gzip: bool) -> Response {
        let mut r = axum::http::Response::builder().status(200);
        if gzip {
            r = r.header("content-encoding", "gzip");
        }
        Response::from(r.body(body).unwrap())
    }

    fn gzipped(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    #[tokio::test]
    async fn a_gzip_body_is_inflated_and_bounded_inflated() {
        let http = HttpClient::new(
            super::super::RetryConfig::default(),
            std::time::Duration::from_secs(5),
        )
        .unwrap();
        let page = br#"{"data":[]}"#.repeat(10_000);
        let read = |r: Response, limit: usize| {
            let http = http.clone();
            async move { http.read_body(r, limit, |n| n).await }
        };
        let got = read(response(gzipped(&page), true), 1 << 20).await.unwrap();
        assert_eq!(&got[..], &page[..]);
        assert_eq!(
            &read(response(page.clone(), false), 1 << 20).await.unwrap()[..],
            &page[..]
        );
        // Cut short: a broken body, asked for again; past the limit once inflated: refused.
        let mut cut = gzipped(&page);
        cut.truncate(cut.len() / 2);
        assert!(matches!(
            read(response(cut, true), 1 << 20).await,
            Err(BodyError::Broken(_))
        ));
        let bomb = gzipped(&vec![b' '; 4 << 20]);
        assert!(bomb.len() < 64 << 10);
        assert!(
            matches!(read(response(bomb, true), 1 << 20).await, Err(BodyError::Fatal(n)) if n == 1 << 20)
        );
    }

    #[test]
    fn decode_errors_name_the_field() {
        let e = decode_json::<Page>(br#"{"data":[{"id":"a","n":1},{"id":"b","n":{}}]}"#);
        let e = e.unwrap_err();
        assert_eq!(e.path.as_deref(), Some("data[1].n"));
        assert!(e.to_string().starts_with("data[1].n: invalid type: map"));
        let e = decode_json::<Page>(br#"{"data":[{"id":"a"}]}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("data[0]: missing field `n`"),
            "{e}"
        );
        let e = decode_json::<Page>(br#"{"data":[]} trailing"#).unwrap_err();
        assert!(e.to_string().contains("trailing characters"), "{e}");
        assert!(decode_json::<Page>(br#"{"data":[{"id":"a","n":2}]}"#).is_ok());
    }
}
