//! Requests to the legacy 1.0 reporting API: signed, CSV, split until nothing is truncated.
//!
//! A query returns at most `numberOfRecords` rows and says nothing when it stops there, so a
//! response that reaches the cap is treated as truncated: its range is halved (with the one
//! window splitter) and each half asked again, until every piece is below the cap.

use std::time::Duration;

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

use super::config::LegacyConfig;
use super::csv::{CsvDecoder, TableSpec};
use super::{tables, LegacyError};
use crate::auth::LegacyAuth;
use crate::http::fetch::BodyError;
use crate::http::pacer::{PaceRule, Pacer};
use crate::http::{HttpClient, HttpError, RetryConfig};
use crate::window;

/// The two record types a pipeline reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// Contact session records: one per call (`/csrs`).
    Csr,
    /// Contact activity records: the steps of a session (`/cars`).
    Car,
}

impl RecordType {
    /// The endpoint's path segment.
    pub fn path(self) -> &'static str {
        match self {
            RecordType::Csr => "csrs",
            RecordType::Car => "cars",
        }
    }
    /// How its CSV decodes into a table.
    pub fn spec(self) -> &'static TableSpec {
        match self {
            RecordType::Csr => &tables::CSR,
            RecordType::Car => &tables::CAR,
        }
    }
    fn activity_type(self) -> &'static str {
        match self {
            RecordType::Csr => "INTERACTION",
            RecordType::Car => "ACTIVITY",
        }
    }
    fn id_column(self) -> &'static str {
        match self {
            RecordType::Csr => "sid",
            RecordType::Car => "id",
        }
    }
}

/// A client of the legacy reporting API: HMAC-signed requests, paced and retried.
#[derive(Debug, Clone)]
pub struct LegacyClient {
    pub(crate) http: HttpClient,
    auth: LegacyAuth,
    cfg: LegacyConfig,
}

/// One budget per host and user: the API publishes no limit (see the config default).
pub fn pacer_key(cfg: &LegacyConfig) -> String {
    format!(
        "legacy|{}|{}",
        crate::http::redact_url(&cfg.base_url),
        cfg.user_id
    )
}

impl LegacyClient {
    /// Builds the HTTP client and pacer from the source's config; sends nothing.
    pub fn connect(cfg: &LegacyConfig) -> Result<Self, LegacyError> {
        let key = pacer_key(cfg);
        let rule = PaceRule::per_window(cfg.requests_per_minute as usize, Duration::from_secs(60));
        let http = HttpClient::new(RetryConfig::default(), cfg.read_timeout)?
            .paced(Pacer::shared(&key, rule));
        Ok(LegacyClient {
            http,
            auth: LegacyAuth::new(&cfg.user_id, &cfg.api_key, cfg.tenant_id.as_deref()),
            cfg: cfg.clone(),
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &LegacyConfig {
        &self.cfg
    }

    fn url(&self, path: &str) -> url::Url {
        crate::http::join_path(&self.cfg.base_url, path)
    }

    /// The Analyzer query for `[from, to)` (epoch ms), as the portal sends it.
    pub fn query_json(&self, kind: RecordType, from: i64, to: i64) -> serde_json::Value {
        json!({
            "anchorId": self.cfg.anchor_id,
            "dateBegin": [from],
            "dateEnd": [to],
            "timezone": self.cfg.timezone,
            "numberOfRecords": self.cfg.record_cap,
            "lastNRecords": false,
            "activityType": kind.activity_type(),
            "aggregateQueryProperties": {
                "computeInterval": 0, "computeIntervalUnit": "NONE", "lookbackCount": 0,
                "frequency": 0, "movingWindow": false, "cumulative": false,
                "rowSegmentSet": [], "columnSegmentSet": [], "queryType": "TEMPORAL",
                "requestType": "PROFILE", "intervalAxis": "ROW", "computeSummaries": true
            },
            "aggregations": [{
                "id": 0,
                "filterGroups": [{"operator": "AND", "valueFilters": []}],
                "aggregationType": "VALUE",
                "computeColumnName": kind.id_column()
            }]
        })
    }

    /// Every record of `kind` starting in `[start, end)`, one batch per request, in time order.
    pub async fn query(
        &self,
        kind: RecordType,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<RecordBatch>, LegacyError> {
        let cap = self.cfg.record_cap;
        let endpoint = format!("GET /{}?q=", kind.path());
        let read = |s: DateTime<Utc>, e: DateTime<Utc>| {
            let q = self
                .query_json(kind, s.timestamp_millis(), e.timestamp_millis())
                .to_string();
            let (url, endpoint) = (self.url(kind.path()), endpoint.clone());
            async move {
                let (batch, rows) = self
                    .fetch_csv(&endpoint, kind.spec(), || {
                        self.http.reqwest().get(url.clone()).query(&[("q", &q)])
                    })
                    .await?;
                Ok::<_, LegacyError>((batch, usize::try_from(rows).unwrap_or(usize::MAX)))
            }
        };
        let too_dense = |at: DateTime<Utc>| LegacyError::TooDense {
            endpoint: endpoint.clone(),
            at: at.to_rfc3339(),
            cap,
        };
        let rows = usize::try_from(cap).unwrap_or(usize::MAX);
        window::read_below_cap((start, end), rows, read, too_dense).await
    }

    /// One record by id (`GET /csrs/{sid}`, `GET /cars/{sid}-{cstts}-{event}`); `None` if unknown.
    pub async fn get(
        &self,
        kind: RecordType,
        id: &str,
    ) -> Result<Option<RecordBatch>, LegacyError> {
        let mut url = self.url(kind.path());
        url.path_segments_mut()
            .map_err(|()| LegacyError::Decode {
                endpoint: kind.path().into(),
                message: "base_url cannot take a path".into(),
            })?
            .push(id);
        let endpoint = format!("GET /{}/{{id}}", kind.path());
        match self
            .fetch_csv(&endpoint, kind.spec(), || {
                self.http.reqwest().get(url.clone())
            })
            .await
        {
            Ok((batch, _)) => Ok(Some(batch)),
            Err(LegacyError::Http(HttpError::Status { status, .. }))
                if status == StatusCode::NOT_FOUND =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Sends a signed CSV request and decodes the body as it streams in (a new decoder for
    /// each attempt, when the body breaks off or does not decode).
    async fn fetch_csv(
        &self,
        endpoint: &str,
        spec: &TableSpec,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(RecordBatch, u64), LegacyError> {
        let csv_err = |source| {
            BodyError::Malformed(LegacyError::Csv {
                endpoint: endpoint.to_string(),
                source,
            })
        };
        let send = || async {
            self.http
                .send(endpoint, || async {
                    Ok::<_, LegacyError>(
                        build()
                            .header(reqwest::header::ACCEPT, "text/csv")
                            .header(reqwest::header::FROM, &self.auth.from)
                            .header(
                                reqwest::header::AUTHORIZATION,
                                self.auth.authorization.expose(),
                            ),
                    )
                })
                .await
                .map_err(|e| self.auth_error(e))
        };
        self.http
            .fetch(endpoint, send, |resp| async move {
                let mut decoder = CsvDecoder::new(spec);
                let mut body = std::pin::pin!(self.http.chunks(resp));
                while let Some(bytes) = body.next().await {
                    decoder.feed(&bytes?).map_err(csv_err)?;
                }
                let rows = decoder.rows();
                let batch = decoder.finish().map_err(csv_err)?;
                Ok((batch, rows))
            })
            .await
    }

    fn auth_error(&self, e: LegacyError) -> LegacyError {
        match e {
            LegacyError::Http(HttpError::Status {
                status, message, ..
            }) if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN => {
                LegacyError::Auth {
                    status: status.as_u16(),
                    message,
                    diagnosis: self.auth.diagnose(status.as_u16(), &self.cfg.api_key),
                }
            }
            other => other,
        }
    }
}
