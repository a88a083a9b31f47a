//! Requests to the v1 API: tasks paged per window, captures in batches of ten.
//!
//! Every request fetches its bearer token inside the retry loop, and a 401 invalidates that
//! token and is retried once with a fresh one (a token revoked or expired mid-run).

use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::json;

use super::captures;
use super::config::WebexConfig;
use super::model::{CapturePage, Task, TaskPage};
use super::transcripts;
use super::WebexError;
use crate::auth::{OAuthTokens, TokenStore};
use crate::http::fetch::decode_json;
use crate::http::pacer::{PaceRule, Pacer};
use crate::http::pagination::{self, PageSizes};
use crate::http::{HttpClient, HttpError, RetryConfig};
use crate::secret::Secret;
use crate::window;

/// The most task ids one captures query may carry (the API answers 400 above it).
pub const MAX_TASK_IDS: usize = 10;

/// One captures answer: its recordings as columns and the transcripts it lists.
#[derive(Debug)]
pub struct Answer {
    /// The recordings, one row each ([`captures::page_schema`]).
    pub recordings: RecordBatch,
    /// The transcripts listed, in answer order.
    pub transcripts: Vec<transcripts::Listed>,
}
/// The largest `pageSize` `/v1/tasks` accepts.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// The scope an endpoint needs (spec): changing subscriptions needs `cjp:config_write`,
/// everything ccetl reads `cjp:config_read`.
fn required_scope(endpoint: &str) -> &'static str {
    let writes = ["POST ", "PATCH ", "DELETE "]
        .iter()
        .any(|m| endpoint.starts_with(m));
    if writes && endpoint.contains("/subscriptions") {
        super::config::WRITE_SCOPE
    } else {
        super::config::READ_SCOPE
    }
}

/// The key of a Webex rate budget: the API host and the client ID (hashed: keys are
/// logged). Every source with the same pair draws on one [`Pacer`].
pub fn budget_key(base_url: &url::Url, client_id: &Secret) -> String {
    use sha2::Digest;
    let id = hex::encode(sha2::Sha256::digest(client_id.expose().as_bytes()));
    format!(
        "webex|{}|{}",
        crate::http::redact_url(&base_url.join("/").unwrap_or_else(|_| base_url.clone())),
        &id[..12]
    )
}

/// A client of the v1 API: OAuth tokens, the client ID's rate budget, retries.
#[derive(Debug, Clone)]
pub struct WebexClient {
    /// API calls, paced by the client ID's budget.
    pub(crate) http: HttpClient,
    /// Pre-signed audio downloads: not API calls, so not paced (same pool and counters).
    pub(crate) downloads: HttpClient,
    /// Search calls: the API's budget and Search's own.
    search: HttpClient,
    tokens: Arc<OAuthTokens>,
    cfg: WebexConfig,
    org_id: Arc<Mutex<Option<String>>>,
}

impl WebexClient {
    /// A client whose API calls draw on the shared budget of `cfg`'s host and client ID.
    pub fn new(downloads: HttpClient, tokens: Arc<OAuthTokens>, cfg: WebexConfig) -> Self {
        let org = cfg.org_id.clone();
        let http = downloads.paced(api_pacer(&cfg));
        let search_rule = PaceRule::per_window(
            match &cfg.discovery {
                super::config::Discovery::Search(s) => s.requests_per_minute(),
                super::config::Discovery::Tasks => super::config::SEARCH_REQUESTS_PER_MINUTE,
            } as usize,
            cfg.rate_window,
        );
        let search_key = format!("{}|search", budget_key(&cfg.base_url, &cfg.client_id));
        let search = http.paced(Pacer::shared(&search_key, search_rule));
        WebexClient {
            http,
            downloads,
            search,
            tokens,
            cfg,
            org_id: Arc::new(Mutex::new(org)),
        }
    }

    /// A client for `cfg`, with its token cache persisting rotated tokens to `store`.
    pub fn connect(cfg: &WebexConfig, store: Arc<dyn TokenStore>) -> Result<Self, WebexError> {
        let http = HttpClient::new(RetryConfig::default(), cfg.read_timeout)?;
        let tokens = OAuthTokens::new(
            &cfg.name,
            // Token requests count against the integration's budget too.
            http.paced(api_pacer(cfg)),
            cfg.token_url.clone(),
            cfg.client_id.clone(),
            cfg.client_secret.clone(),
            cfg.refresh_token.clone(),
            store,
        )?;
        Ok(Self::new(http, Arc::new(tokens), cfg.clone()))
    }

    /// The config it was built from.
    pub fn config(&self) -> &WebexConfig {
        &self.cfg
    }

    /// This client with its API calls also drawing on Search's budget.
    pub(super) fn for_search(&self) -> WebexClient {
        WebexClient {
            http: self.search.clone(),
            ..self.clone()
        }
    }

    pub(super) fn url(&self, path: &str) -> url::Url {
        crate::http::join_path(&self.cfg.base_url, path)
    }

    /// The org id: configured, else the last `_`-part of the access token.
    pub async fn org_id(&self) -> Result<Option<String>, WebexError> {
        if let Some(o) = self
            .org_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(Some(o));
        }
        let token = self.tokens.access_token().await?;
        let org = crate::auth::oauth::org_from_token(&token);
        *self
            .org_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = org.clone();
        Ok(org)
    }

    /// Sends an authorised request; a 401 refreshes the token once and tries again.
    pub(super) async fn authed(
        &self,
        endpoint: &str,
        build: impl Fn(&Secret) -> RequestBuilder,
    ) -> Result<reqwest::Response, WebexError> {
        let used: Mutex<Option<Secret>> = Mutex::new(None);
        for attempt in 0..2 {
            let result = self
                .http
                .send(endpoint, || async {
                    let token = self.tokens.access_token().await?;
                    *used
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
                    Ok::<_, WebexError>(build(&token).bearer_auth(token.expose()))
                })
                .await;
            match result {
                Err(WebexError::Http(HttpError::Status { status, .. }))
                    if status == StatusCode::UNAUTHORIZED =>
                {
                    let token = used
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .take();
                    if let Some(t) = token {
                        self.tokens.invalidate(&t).await;
                    }
                    if attempt == 1 {
                        return Err(crate::auth::AuthError::StillUnauthorized {
                            source_name: self.cfg.name.clone(),
                            endpoint: endpoint.to_string(),
                        }
                        .into());
                    }
                    tracing::info!(source = %self.cfg.name, endpoint, "Access token refused (401); refreshing once.");
                }
                Err(WebexError::Http(HttpError::Status {
                    status, message, ..
                })) if status == StatusCode::FORBIDDEN => {
                    return Err(crate::auth::AuthError::Forbidden {
                        source_name: self.cfg.name.clone(),
                        endpoint: endpoint.to_string(),
                        message,
                        scope: required_scope(endpoint),
                    }
                    .into())
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// All tasks created in `[start, end)`, in requests no longer than `max_range`, each
    /// range paged by time (`/v1/tasks` has no cursor; see [`pagination::by_time`]).
    pub async fn list_tasks(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<Task>, WebexError> {
        let max =
            chrono::Duration::from_std(self.cfg.max_range).unwrap_or(chrono::Duration::days(1));
        let org = self.org_id().await?;
        let sizes = PageSizes {
            normal: self.cfg.page_size,
            max: MAX_PAGE_SIZE,
        };
        let mut out = Vec::new();
        for (s, e) in window::split(start, end, max) {
            let range = (s.timestamp_millis(), e.timestamp_millis());
            let org = org.as_deref();
            let tasks = pagination::by_time(
                range,
                sizes,
                |from, to, size| self.fitting_task_page(from, to, size, org),
                |t: &Task| (t.attributes.created_time, t.id.as_str()),
            )
            .await?;
            out.extend(tasks);
        }
        out.sort_unstable_by(|a, b| {
            (a.attributes.created_time, &a.id).cmp(&(b.attributes.created_time, &b.id))
        });
        Ok(out)
    }

    /// A task page, with the page size it was read at: a 413 (spec: "Content Too Large")
    /// halves the size and asks again, rather than failing the window.
    async fn fitting_task_page(
        &self,
        from: i64,
        to: i64,
        mut size: u32,
        org: Option<&str>,
    ) -> Result<(Vec<Task>, u32), WebexError> {
        loop {
            match self.task_page(from, to, size, org).await {
                Err(WebexError::Http(HttpError::Status { status, .. }))
                    if status == StatusCode::PAYLOAD_TOO_LARGE && size > 1 =>
                {
                    size /= 2;
                    tracing::warn!(source = %self.cfg.name, page_size = size, "GET /v1/tasks answered 413 (content too large); asking for smaller pages.");
                }
                other => return other.map(|page| (page.data, size)),
            }
        }
    }

    async fn task_page(
        &self,
        from: i64,
        to: i64,
        size: u32,
        org: Option<&str>,
    ) -> Result<TaskPage, WebexError> {
        let url = self.url("/v1/tasks");
        let endpoint = "GET /v1/tasks";
        let mut query: Vec<(&str, String)> = vec![
            ("from", from.to_string()),
            ("to", to.to_string()),
            ("pageSize", size.to_string()),
        ];
        if !self.cfg.channel_types.is_empty() {
            query.push(("channelTypes", self.cfg.channel_types.join(",")));
        }
        if let Some(o) = org {
            query.push(("orgId", o.to_string()));
        }
        self.json(
            endpoint,
            || {
                let (name, value) = crate::http::fetch::ACCEPT_GZIP;
                self.http
                    .reqwest()
                    .get(url.clone())
                    .query(&query)
                    .header(name, value)
            },
            |page: &TaskPage| check_range(endpoint, page, from, to),
        )
        .await
    }

    /// Captures for at most ten tasks: recordings as columns ([`captures::page_batch`]) and
    /// the transcripts listed; unknown task ids answer nothing. With segments on, a second
    /// query asks for the segments, joined in.
    pub async fn query_captures(&self, task_ids: &[String]) -> Result<Answer, WebexError> {
        let stitched = self.query_captures_of(task_ids, false).await?;
        if !self.cfg.segments {
            return Ok(stitched);
        }
        let segments = self.query_captures_of(task_ids, true).await?;
        Ok(Answer {
            recordings: captures::join_kinds(&stitched.recordings, &segments.recordings)?,
            transcripts: stitched.transcripts,
        })
    }

    /// One captures query: the stitched recordings, or (`segments`) the segments. The
    /// transcripts are taken from the stitched query only (both list them).
    pub async fn query_captures_of(
        &self,
        task_ids: &[String],
        segments: bool,
    ) -> Result<Answer, WebexError> {
        debug_assert!(task_ids.len() <= MAX_TASK_IDS);
        let org = self.org_id().await?;
        let url = self.url("/v1/captures/query");
        let endpoint = "POST /v1/captures/query";
        let body = json!({ "query": {
            "orgId": org,
            "taskIds": task_ids,
            "urlExpiration": self.cfg.url_expiration_minutes,
            "includeSegments": segments,
            "includeVARecordings": self.cfg.va_recordings,
        }});
        let (urls, transcript_urls) = (self.cfg.audio, self.cfg.transcripts);
        self.page(
            endpoint,
            || self.http.reqwest().post(url.clone()).json(&body),
            |body| {
                let mut page: CapturePage<'_> = decode(endpoint, body)?;
                let transcripts = match segments {
                    false => transcripts::listed(&mut page.data, transcript_urls),
                    true => Vec::new(),
                };
                Ok(Answer {
                    recordings: captures::page_batch(page, urls)?,
                    transcripts,
                })
            },
        )
        .await
    }

    /// An authorised request whose JSON answer is decoded and checked; a body that breaks
    /// off, does not decode or fails `check` is asked for again (see [`HttpClient::fetch`]).
    pub(super) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        build: impl Fn() -> RequestBuilder,
        check: impl Fn(&T) -> Result<(), WebexError>,
    ) -> Result<T, WebexError> {
        self.page(endpoint, build, |body| {
            let page: T = decode(endpoint, body)?;
            check(&page)?;
            Ok(page)
        })
        .await
    }

    /// An authorised request whose body `parse` turns into a `T`; a body that breaks off or
    /// that `parse` refuses is asked for again (see [`HttpClient::fetch`]).
    async fn page<T>(
        &self,
        endpoint: &str,
        build: impl Fn() -> RequestBuilder,
        parse: impl Fn(&[u8]) -> Result<T, WebexError>,
    ) -> Result<T, WebexError> {
        self.http
            .fetch_page(
                endpoint,
                || self.authed(endpoint, |_| build()),
                parse,
                |limit| WebexError::Decode {
                    endpoint: endpoint.to_string(),
                    message: format!(
                        "response larger than {}; lower page_size",
                        crate::http::fetch::mib(limit)
                    ),
                },
            )
            .await
    }
}

/// The process-wide budget of `cfg`'s host and client ID.
fn api_pacer(cfg: &WebexConfig) -> Arc<Pacer> {
    let rule = PaceRule::per_window(cfg.requests_per_minute as usize, cfg.rate_window);
    Pacer::shared(&budget_key(&cfg.base_url, &cfg.client_id), rule)
}

/// A JSON body as `T`, which may borrow from it; an error names the endpoint and the field.
fn decode<'de, T: serde::Deserialize<'de>>(
    endpoint: &str,
    body: &'de [u8],
) -> Result<T, WebexError> {
    decode_json(body).map_err(|e| WebexError::Decode {
        endpoint: endpoint.to_string(),
        message: e.to_string(),
    })
}

/// A page holding a task created before `from` or after `to` did not honour the request:
/// the API ignored the moved `from` and served an earlier page again. Paging on from it
/// would loop or skip, so the page counts as malformed and is asked for again.
fn check_range(endpoint: &str, page: &TaskPage, from: i64, to: i64) -> Result<(), WebexError> {
    match page
        .data
        .iter()
        .map(|t| t.attributes.created_time)
        .find(|c| *c < from || *c > to)
    {
        Some(c) => Err(WebexError::Decode {
            endpoint: endpoint.to_string(),
            message: format!(
                "the page holds a task created at {c}, outside the requested from={from} to={to}: the API did not honour the range"
            ),
        }),
        None => Ok(()),
    }
}
