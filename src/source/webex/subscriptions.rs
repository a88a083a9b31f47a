//! Subscriptions to Webex Contact Center events (`/v2/subscriptions`). ccetl keeps one per
//! source for `capture:available`, named after the pipeline and the source, so running
//! `ccetl subscribe` again updates that subscription instead of adding a second one.

use serde::Deserialize;
use serde_json::json;

use super::{WebexClient, WebexError};
use crate::extract::webhooks::{Outcome, Subscription};
use crate::secret::Secret;

/// The event type ccetl subscribes to: a task's capture is ready.
pub const CAPTURE_AVAILABLE: &str = "capture:available";

/// A subscription as the API lists it (its secret is never returned).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiSubscription {
    /// The subscription's id.
    pub id: String,
    /// Its name (`ccetl subscribe` sets one per pipeline).
    pub name: String,
    /// What it delivers.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Where it delivers.
    #[serde(default)]
    pub destination_url: String,
    /// The event payload version.
    #[serde(default)]
    pub resource_version: Option<String>,
    /// `active` or `inactive` as the API reports.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct One {
    data: ApiSubscription,
}

#[derive(Debug, Deserialize)]
struct Many {
    #[serde(default)]
    data: Vec<ApiSubscription>,
}

#[derive(Debug, Deserialize)]
struct EventTypes {
    #[serde(default)]
    data: Vec<EventType>,
    #[serde(default)]
    meta: EventMeta,
}

#[derive(Debug, Deserialize)]
struct EventType {
    name: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct EventMeta {
    #[serde(default)]
    resource_version_list: Vec<ResourceVersion>,
}

#[derive(Debug, Deserialize)]
struct ResourceVersion {
    resource: String,
    version: String,
}

impl From<ApiSubscription> for Subscription {
    fn from(s: ApiSubscription) -> Self {
        Subscription {
            id: s.id,
            name: s.name,
            event_types: s.event_types,
            destination_url: s.destination_url,
            resource_version: s.resource_version,
            status: s.status,
        }
    }
}

/// Refuses a destination Webex would refuse, before asking: HTTPS on port 443 with a path,
/// no user name or password, no query or fragment (plain `http://127.0.0.1` is let through
/// for the simulator). The URL is echoed without its credentials.
pub fn check_destination(url: &str) -> Result<url::Url, DestinationError> {
    let u = url::Url::parse(url).map_err(DestinationError::NotAUrl)?;
    let shown = {
        let mut s = u.clone();
        let _ = s.set_username("");
        let _ = s.set_password(None);
        s.to_string()
    };
    let loopback = u.scheme() == "http" && u.host_str() == Some("127.0.0.1");
    let refused = if u.scheme() != "https" && !loopback {
        DestinationError::NotHttps
    } else if !u.username().is_empty() || u.password().is_some() {
        DestinationError::Credentials
    } else if !loopback && u.port().is_some() {
        DestinationError::Port
    } else if u.query().is_some() || u.fragment().is_some() {
        DestinationError::Query
    } else if u.path() == "/" {
        DestinationError::NoPath
    } else {
        return Ok(u);
    };
    Err(refused(shown))
}

/// A webhook destination Webex would refuse; the URL is shown without its credentials.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    /// Not parseable as a URL.
    #[error("--url is not a URL: {0}")]
    NotAUrl(url::ParseError),
    /// Not https.
    #[error("--url '{0}': Webex delivers only to https:// URLs")]
    NotHttps(String),
    /// User name or password in the URL.
    #[error("--url '{0}': Webex refuses a user name or password in the URL; authenticate deliveries with webhook_secret")]
    Credentials(String),
    #[error(
        "--url '{0}': Webex delivers only to port 443; put the receiver behind a proxy on 443"
    )]
    /// A port other than 443.
    Port(String),
    /// A query or a fragment.
    #[error("--url '{0}': Webex refuses a query or fragment; put any routing in the path")]
    Query(String),
    /// No path after the host.
    #[error("--url '{0}': Webex wants a path after the host (e.g. /webhooks/wxcc)")]
    NoPath(String),
}

fn org_query(url: &mut url::Url, org: Option<&str>) {
    if let Some(o) = org {
        url.query_pairs_mut().append_pair("orgId", o);
    }
}

/// `capture:{version}`, the newest version of the capture resource the org offers.
pub async fn resource_version(client: &WebexClient) -> Result<String, WebexError> {
    let endpoint = "GET /v2/event-types";
    let org = client.org_id().await?;
    let mut url = client.url("/v2/event-types");
    org_query(&mut url, org.as_deref());
    let types: EventTypes = client
        .json(
            endpoint,
            || client.http.reqwest().get(url.clone()),
            |_| Ok(()),
        )
        .await?;
    let decode = |message: String| WebexError::Decode {
        endpoint: endpoint.to_string(),
        message,
    };
    if !types.data.iter().any(|t| t.name == CAPTURE_AVAILABLE) {
        return Err(decode(format!(
            "the org offers no {CAPTURE_AVAILABLE} events (is Contact Center recording enabled?)"
        )));
    }
    let version = types
        .meta
        .resource_version_list
        .iter()
        .filter(|r| r.resource == "capture")
        .map(|r| r.version.as_str())
        .max_by_key(|v| {
            v.split('.')
                .map(|p| p.parse::<u64>().unwrap_or(0))
                .collect::<Vec<_>>()
        })
        .ok_or_else(|| decode("meta.resourceVersionList has no version of 'capture'".into()))?;
    Ok(format!("capture:{version}"))
}

/// The org's subscriptions.
pub async fn list(client: &WebexClient) -> Result<Vec<Subscription>, WebexError> {
    let org = client.org_id().await?;
    let mut url = client.url("/v2/subscriptions");
    org_query(&mut url, org.as_deref());
    let many: Many = client
        .json(
            "GET /v2/subscriptions",
            || client.http.reqwest().get(url.clone()),
            |_| Ok(()),
        )
        .await?;
    Ok(many.data.into_iter().map(Subscription::from).collect())
}

/// Registers the `capture:available` subscription called `name`, or updates it (URL, secret,
/// version, active again) when it exists.
pub async fn ensure(
    client: &WebexClient,
    name: &str,
    destination: &url::Url,
    secret: &Secret,
) -> Result<(Subscription, Outcome), WebexError> {
    let version = resource_version(client).await?;
    let org = client.org_id().await?;
    let existing = list(client).await?.into_iter().find(|s| s.name == name);
    let mut body = json!({
        "description": "Recordings for ccetl: capture:available events",
        "eventTypes": [CAPTURE_AVAILABLE],
        "destinationUrl": destination.as_str(),
        "secret": secret.expose(),
        "resourceVersion": version,
    });
    if let Some(o) = &org {
        body["orgId"] = json!(o);
    }
    let (endpoint, outcome, method, url) = match &existing {
        Some(s) => {
            body["status"] = json!("active");
            let url = client.url(&format!("/v2/subscriptions/{}", s.id));
            let endpoint = "PATCH /v2/subscriptions/{id}";
            (endpoint, Outcome::Updated, reqwest::Method::PATCH, url)
        }
        None => {
            body["name"] = json!(name);
            let url = client.url("/v2/subscriptions");
            let endpoint = "POST /v2/subscriptions";
            (endpoint, Outcome::Created, reqwest::Method::POST, url)
        }
    };
    let build = || {
        client
            .http
            .reqwest()
            .request(method.clone(), url.clone())
            .json(&body)
    };
    let one: One = client.json(endpoint, build, |_| Ok(())).await?;
    Ok((one.data.into(), outcome))
}

/// Deletes a subscription by id.
pub async fn delete(client: &WebexClient, id: &str) -> Result<(), WebexError> {
    let org = client.org_id().await?;
    let mut url = client.url(&format!("/v2/subscriptions/{id}"));
    org_query(&mut url, org.as_deref());
    client
        .authed("DELETE /v2/subscriptions/{id}", |_| {
            client.http.reqwest().delete(url.clone())
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_webex_would_refuse_are_refused() {
        assert!(check_destination("https://hooks.acme.example/wxcc").is_ok());
        assert!(check_destination("http://127.0.0.1:8088/webhooks/wxcc").is_ok());
        let refusal = |url: &str| check_destination(url).unwrap_err().to_string();
        let e = refusal("http://hooks.acme.example/wxcc");
        assert!(e.contains("https://"), "{e}");
        let e = refusal("https://hooks.acme.example/wxcc?token=1");
        assert!(e.contains("query"), "{e}");
        assert!(check_destination("https://hooks.acme.example:443/wxcc").is_ok());
        let e = refusal("https://hooks.acme.example:8443/wxcc");
        assert!(e.contains("port 443"), "{e}");
        let e = refusal("https://u:secret@hooks.acme.example/wxcc");
        assert!(e.contains("user name") && !e.contains("secret@"), "{e}");
        assert!(check_destination("https://hooks.acme.example").is_err());
    }
}
