//! Request and response plumbing shared by the three emulated services.
//!
//! The HTTPS loop ([`crate::server`]) reads each request whole into a [`Req`]: method, decoded
//! path segments, query pairs, headers, body, and the `Host` it was addressed to (with and
//! without port). Services answer with a plain [`Resp`] built by the helpers here, which add the
//! JSON content type and a fresh `x-ms-request-id` the way every Azure front end does.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::Value;

/// A response as the services build it.
pub type Resp = Response<Body>;

/// One request, read whole.
#[derive(Debug, Clone)]
pub struct Req {
    /// HTTP method.
    pub method: Method,
    /// The raw path, as sent.
    pub path: String,
    /// Path segments, percent-decoded; an empty trailing segment (trailing slash) is kept.
    pub segments: Vec<String>,
    /// Query pairs, decoded, in order.
    pub query: Vec<(String, String)>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The host the request was addressed to, lower case, without port.
    pub host: String,
    /// `host[:port]` as sent (what links in responses must point back at).
    pub authority: String,
}

impl Req {
    /// Builds a request from its parts; `authority` comes from `Host` or the URI.
    pub fn new(method: Method, uri: &axum::http::Uri, headers: HeaderMap, body: Bytes) -> Self {
        let authority = headers
            .get(axum::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let host = strip_port(&authority).to_ascii_lowercase();
        let path = uri.path().to_string();
        let segments =
            path.split('/').skip(1).map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned()).collect();
        let query =
            uri.query().map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        Self { method, path, segments, query, headers, body, host, authority }
    }

    /// A query parameter, name matched case-insensitively (ARM treats `$top` and `$TOP` alike).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A header value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `https://authority`: the base every link in a response points at.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.authority)
    }

    /// The bearer token, if an `Authorization: Bearer …` header was sent.
    pub fn bearer(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
    }

    /// The body parsed as JSON; `None` when it is not JSON.
    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// `host:port` → `host` (IPv6 literals in brackets keep their brackets).
pub fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_once(']').map(|(h, _)| &authority[..=h.len()]).unwrap_or(authority);
    }
    authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority)
}

/// A JSON response with Azure's common headers.
pub fn json(status: StatusCode, body: &Value) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
    add_request_id(headers);
    resp
}

/// An empty response with Azure's common headers.
pub fn empty(status: StatusCode) -> Resp {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    add_request_id(resp.headers_mut());
    resp
}

fn add_request_id(headers: &mut HeaderMap) {
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-ms-request-id", v.clone());
        headers.insert("x-ms-correlation-request-id", v);
    }
}

/// Sets a header when the value is valid header text (values here are built by us).
pub fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// `{"error":{"code","message"}}`, the shape ARM and Key Vault share.
pub fn azure_error(status: StatusCode, code: &str, message: &str) -> Resp {
    json(status, &serde_json::json!({"error": {"code": code, "message": message}}))
}

/// The current time in Unix seconds.
pub fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A fresh 32-hex-digit id (Key Vault versions, etags).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Strips surrounding quotes (and a weak `W/` prefix) from an ETag header value.
pub fn unquote_etag(value: &str) -> &str {
    let v = value.trim();
    let v = v.strip_prefix("W/").unwrap_or(v);
    v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_from_authorities() {
        assert_eq!(strip_port("myvault.vault.azure.net:8443"), "myvault.vault.azure.net");
        assert_eq!(strip_port("127.0.0.1"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:443"), "[::1]");
    }

    #[test]
    fn unquotes_etags_quoted_or_not() {
        assert_eq!(unquote_etag("\"abc\""), "abc");
        assert_eq!(unquote_etag("abc"), "abc");
        assert_eq!(unquote_etag("W/\"abc\""), "abc");
    }

    #[test]
    fn keeps_the_trailing_empty_segment() {
        let uri: axum::http::Uri = "/secrets/x/?api-version=7.4".parse().expect("uri");
        let req = Req::new(Method::GET, &uri, HeaderMap::new(), Bytes::new());
        assert_eq!(req.segments, vec!["secrets", "x", ""]);
        assert_eq!(req.query("API-VERSION"), Some("7.4"));
    }
}
