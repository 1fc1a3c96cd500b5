//! Managed identity through the Azure Instance Metadata Service (IMDS): the token endpoint every
//! Azure VM — an AKS node included — serves at `http://169.254.169.254/metadata/identity/oauth2/token`
//! for the identities assigned to it, a user-assigned one chosen by `client_id`. One
//! [`ImdsCredential`] per client id asks for a token per resource with one `GET` (header
//! `Metadata: true`) and keeps it until five minutes before it expires.
//!
//! Why not azure_identity's `ManagedIdentityCredential`: in 1.0 its IMDS endpoint is a constant
//! (the source is picked from environment variables, and the IMDS credential type is
//! crate-private), so it cannot be pointed at another endpoint such as the sandbox; and it retries
//! by itself for up to 72 s (6 tries on 404/410/429/5xx), while routewarden keeps SDK retries off
//! so a failed call comes back at once, classified, to the work queue.
//!
//! Failures become `azure_core` errors that [`crate::AzureError::from_core`] classifies: 400 and
//! 404 (IMDS's "Identity not found") and other refusals are credential errors (`Authentication`),
//! 408/410/429/5xx keep their status (retryable; `Retry-After` is kept), connection failures are
//! `Connection` (retryable). Every message names the client id.

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{RawResponse, StatusCode, Url};
use azure_core::time::{Duration, OffsetDateTime};
use std::collections::HashMap;

/// IMDS's token endpoint on every Azure VM. Plain HTTP on a link-local address: it never leaves
/// the host.
pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254/metadata/identity/oauth2/token";
/// The IMDS identity API version asked for (the oldest that takes `client_id`, served everywhere).
pub const API_VERSION: &str = "2018-02-01";
/// A cached token is replaced this long before it expires (as azure_identity's caches do).
const REFRESH_BEFORE: Duration = Duration::minutes(5);

/// Where managed-identity tokens come from: the token endpoint and the HTTP client that reaches it
/// (from [`crate::transport::build_imds_client`]: plain HTTP allowed, no proxy).
#[derive(Clone, Debug)]
pub struct ImdsEndpoint {
    pub url: Url,
    pub http: reqwest::Client,
}

impl ImdsEndpoint {
    pub fn new(url: Url, http: reqwest::Client) -> Self {
        ImdsEndpoint { url, http }
    }
}

/// Tokens of one user-assigned managed identity from IMDS, cached per resource.
#[derive(Debug)]
pub struct ImdsCredential {
    endpoint: ImdsEndpoint,
    client_id: String,
    observer: Option<std::sync::Arc<dyn crate::observe::Observer>>,
    /// Held across a fetch, so concurrent callers wait for one request instead of each sending one.
    tokens: tokio::sync::Mutex<HashMap<String, AccessToken>>,
}

impl ImdsCredential {
    pub fn new(endpoint: ImdsEndpoint, client_id: impl Into<String>) -> Self {
        ImdsCredential {
            endpoint,
            client_id: client_id.into(),
            observer: None,
            tokens: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Reports each IMDS request to `observer` (IMDS is not reached through an SDK pipeline).
    pub fn with_observer(mut self, observer: Option<std::sync::Arc<dyn crate::observe::Observer>>) -> Self {
        self.observer = observer;
        self
    }

    fn observe(&self, started: std::time::Instant, outcome: &'static str, retry_after: Option<std::time::Duration>) {
        if let Some(o) = &self.observer {
            o.call(&crate::observe::Call {
                service: crate::observe::Service::Imds,
                operation: "token",
                outcome,
                duration: started.elapsed(),
                retry_after,
                remaining: None,
            });
        }
    }

    fn error(&self, kind: ErrorKind, what: impl std::fmt::Display) -> azure_core::Error {
        azure_core::Error::with_message(kind, format!("managed identity {}: {what}", self.client_id))
    }

    async fn fetch(&self, resource: &str) -> azure_core::Result<AccessToken> {
        let mut url = self.endpoint.url.clone();
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION)
            .append_pair("resource", resource)
            .append_pair("client_id", &self.client_id);
        let started = std::time::Instant::now();
        let sent = self.endpoint.http.get(url).header("Metadata", "true").send().await;
        if sent.is_err() {
            self.observe(started, crate::error::Kind::Transient.as_str(), None);
        }
        let response = sent.map_err(|e| {
            let kind = if e.is_connect() { ErrorKind::Connection } else { ErrorKind::Io };
            let what = format!("IMDS at {} unreachable", self.endpoint.url);
            azure_core::Error::with_error(kind, e, format!("managed identity {}: {what}", self.client_id))
        })?;
        let status = response.status().as_u16();
        let mut headers = Headers::new();
        for (name, value) in response.headers() {
            if let Ok(v) = value.to_str() {
                headers.insert(HeaderName::from(name.as_str().to_owned()), HeaderValue::from(v.to_owned()));
            }
        }
        let outcome = if status == 200 { "ok" } else { crate::error::Kind::of_status(status, None).as_str() };
        self.observe(started, outcome, crate::error::retry_after(&headers));
        let body = response.bytes().await.map_err(|e| self.error(ErrorKind::Io, format!("IMDS answer: {e}")))?;
        let now = OffsetDateTime::now_utc();
        if status == 200 {
            return parse_token(&body, now).map_err(|why| self.error(ErrorKind::DataConversion, why));
        }
        let (code, description) = imds_error(&body);
        let what = format!(
            "IMDS answered {status}{}{}",
            code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
            description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
        );
        match status {
            // Throttled, timed out, being updated (410) or failing: the status decides the retry.
            408 | 410 | 429 | 500..=599 => {
                let raw = RawResponse::from_bytes(StatusCode::from(status), headers, body);
                Err(self.error(
                    ErrorKind::HttpResponse {
                        status: StatusCode::from(status),
                        error_code: code,
                        raw_response: Some(Box::new(raw)),
                    },
                    what,
                ))
            }
            // 400 "Identity not found" (no such identity on this VM), 404, or any other refusal:
            // the identity cannot be used until someone assigns it.
            _ => Err(self.error(ErrorKind::Credential, what)),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for ImdsCredential {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(self.error(ErrorKind::Credential, "IMDS issues tokens for exactly one scope"));
        };
        let resource = resource_of(scope);
        let mut tokens = self.tokens.lock().await;
        if let Some(t) = tokens.get(&resource)
            && fresh(t, OffsetDateTime::now_utc())
        {
            return Ok(t.clone());
        }
        let token = self.fetch(&resource).await?;
        tokens.insert(resource, token.clone());
        Ok(token)
    }
}

/// IMDS takes a resource, not a scope: `https://management.azure.com/.default` asks for
/// `https://management.azure.com/`.
pub fn resource_of(scope: &str) -> String {
    match scope.strip_suffix("/.default") {
        Some(resource) => format!("{}/", resource.trim_end_matches('/')),
        None => scope.to_owned(),
    }
}

/// Whether a cached token is still worth handing out at `now`.
fn fresh(token: &AccessToken, now: OffsetDateTime) -> bool {
    token.expires_on > now + REFRESH_BEFORE
}

/// Seconds given as a JSON string (what IMDS sends) or number.
fn seconds(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// `access_token` with `expires_on` (seconds since the epoch), else `expires_in` (from `now`).
fn parse_token(body: &[u8], now: OffsetDateTime) -> Result<AccessToken, String> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("IMDS answer is not JSON: {e}"))?;
    let token =
        v["access_token"].as_str().filter(|t| !t.is_empty()).ok_or("IMDS answer has no access_token")?.to_owned();
    let expires_on = match (seconds(&v["expires_on"]), seconds(&v["expires_in"])) {
        (Some(at), _) => OffsetDateTime::from_unix_timestamp(at).map_err(|e| format!("expires_on {at}: {e}"))?,
        (None, Some(within)) => now + Duration::seconds(within),
        (None, None) => return Err("IMDS answer has neither expires_on nor expires_in".into()),
    };
    Ok(AccessToken::new(Secret::new(token), expires_on))
}

/// IMDS's error body: `{"error":"invalid_request","error_description":"Identity not found"}`.
fn imds_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return (None, None) };
    let text = |k: &str| v[k].as_str().filter(|s| !s.is_empty()).map(str::to_owned);
    (text("error"), text("error_description"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_for_the_resource_of_a_default_scope() {
        assert_eq!(resource_of("https://management.azure.com/.default"), "https://management.azure.com/");
        assert_eq!(resource_of("https://management.azure.com//.default"), "https://management.azure.com/");
        assert_eq!(resource_of("https://vault.azure.net"), "https://vault.azure.net");
    }

    #[test]
    fn reads_expiry_as_imds_string_seconds_or_as_a_lifetime() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let on = parse_token(br#"{"access_token":"t","expires_on":"1700003600","expires_in":"1"}"#, now).unwrap();
        assert_eq!(on.expires_on.unix_timestamp(), 1_700_003_600, "expires_on wins");
        let within = parse_token(br#"{"access_token":"t","expires_in":3599}"#, now).unwrap();
        assert_eq!(within.expires_on.unix_timestamp(), 1_700_003_599);
        assert!(parse_token(br#"{"access_token":"t"}"#, now).unwrap_err().contains("expires"));
        assert!(parse_token(br#"{"expires_in":"60"}"#, now).unwrap_err().contains("access_token"));
        assert!(parse_token(b"<html>", now).is_err());
    }

    #[test]
    fn a_token_is_replaced_five_minutes_before_it_expires() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let token = |s: i64| AccessToken::new(Secret::new("t"), now + Duration::seconds(s));
        assert!(fresh(&token(301), now));
        assert!(!fresh(&token(300), now));
        assert!(!fresh(&token(-1), now));
    }

    #[test]
    fn reads_the_imds_error_shape() {
        assert_eq!(
            imds_error(br#"{"error":"invalid_request","error_description":"Identity not found"}"#),
            (Some("invalid_request".into()), Some("Identity not found".into()))
        );
        assert_eq!(imds_error(b""), (None, None));
    }
}
