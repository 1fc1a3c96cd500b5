//! One error type for every Azure call, classified by HTTP status and service error code — never
//! by message text — into a bounded [`Kind`] that decides retry versus wait-for-input and feeds
//! condition reasons and metric labels.

use std::time::Duration;

/// What went wrong, as far as the caller's next step is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 429: retry after `retry_after` (or a backoff).
    Throttled,
    /// 5xx, timeouts, connection failures: retry with backoff.
    Transient,
    /// The token exchange failed (no federated credential, unknown client, expired assertion...).
    Authentication,
    /// 403: the identity lacks a role on the resource.
    Forbidden,
    /// 403 `SecretDisabled`: the requested version is disabled.
    Disabled,
    /// 404.
    NotFound,
    /// 412: the resource changed (or exists) since we last saw it.
    PreconditionFailed,
    /// 409.
    Conflict,
    /// 400 and other 4xx: the request itself is wrong.
    BadRequest,
    /// Anything else (unexpected responses, encoding errors).
    Other,
}

impl Kind {
    /// Worth retrying without any change of input.
    pub fn retryable(self) -> bool {
        matches!(self, Kind::Throttled | Kind::Transient)
    }

    /// Bounded label for metrics and condition reasons.
    /// The kind of failure an HTTP status (and Azure's error code, where it refines it) means.
    pub fn of_status(status: u16, code: Option<&str>) -> Kind {
        match (status, code) {
            (429, _) => Kind::Throttled,
            // 410: the instance metadata service is being updated (documented: retry).
            (500..=599, _) | (408, _) | (410, _) => Kind::Transient,
            (401, _) => Kind::Authentication,
            (403, Some("SecretDisabled")) => Kind::Disabled,
            (403, _) => Kind::Forbidden,
            (404, _) => Kind::NotFound,
            (409, _) => Kind::Conflict,
            (412, _) => Kind::PreconditionFailed,
            (400..=499, _) => Kind::BadRequest,
            _ => Kind::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Throttled => "Throttled",
            Kind::Transient => "Transient",
            Kind::Authentication => "AuthenticationFailed",
            Kind::Forbidden => "Forbidden",
            Kind::Disabled => "Disabled",
            Kind::NotFound => "NotFound",
            Kind::PreconditionFailed => "PreconditionFailed",
            Kind::Conflict => "Conflict",
            Kind::BadRequest => "BadRequest",
            Kind::Other => "Other",
        }
    }
}

/// A failed Azure call: which operation, what kind of failure, and Azure's own words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("failed to {operation}: {}{}{message}", status.map(|s| format!("{s} ")).unwrap_or_default(), code.as_deref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AzureError {
    pub operation: &'static str,
    pub kind: Kind,
    pub status: Option<u16>,
    /// Azure's error code (`AuthorizationFailed`, `ForbiddenByRbac`, `SecretDisabled`, ...).
    pub code: Option<String>,
    pub message: String,
    /// From `Retry-After` / `x-ms-retry-after-ms` / `retry-after-ms`.
    pub retry_after: Option<Duration>,
}

impl AzureError {
    pub fn new(operation: &'static str, kind: Kind, message: impl Into<String>) -> Self {
        AzureError { operation, kind, status: None, code: None, message: message.into(), retry_after: None }
    }

    /// Classifies an HTTP answer.
    pub fn from_status(
        operation: &'static str,
        status: u16,
        code: Option<String>,
        message: String,
        retry_after: Option<Duration>,
    ) -> Self {
        let kind = Kind::of_status(status, code.as_deref());
        AzureError { operation, kind, status: Some(status), code, message, retry_after }
    }

    /// Classifies an azure_core error (HTTP answers, credential failures, I/O).
    pub fn from_core(operation: &'static str, e: azure_core::Error) -> Self {
        use azure_core::error::ErrorKind as K;
        match e.kind() {
            K::HttpResponse { status, error_code, raw_response } => {
                let (retry_after, body_code, message) = match raw_response.as_deref() {
                    Some(raw) => (
                        retry_after(raw.headers()),
                        body_error(raw.body().as_ref()).0,
                        body_error(raw.body().as_ref()).1,
                    ),
                    None => (None, None, None),
                };
                AzureError::from_status(
                    operation,
                    u16::from(*status),
                    body_code.or_else(|| error_code.clone()),
                    message.unwrap_or_else(|| e.to_string()),
                    retry_after,
                )
            }
            K::Credential => AzureError::new(operation, Kind::Authentication, chain(&e)),
            // Connection: the request never left (refused, unreachable, no TLS handshake);
            // safe to retry.
            K::Io | K::Connection => AzureError::new(operation, Kind::Transient, chain(&e)),
            _ => AzureError::new(operation, Kind::Other, chain(&e)),
        }
    }
}

/// An error and its sources on one line (`a: b: c`), skipping a source whose text the message
/// already contains — HTTP client errors tend to repeat their cause.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let part = c.to_string();
        if !s.contains(&part) {
            s.push_str(": ");
            s.push_str(&part);
        }
        cur = c.source();
    }
    s
}

/// `Retry-After` (seconds), or the millisecond variants Azure also sends.
pub fn retry_after(headers: &azure_core::http::headers::Headers) -> Option<Duration> {
    use azure_core::http::headers::HeaderName;
    for name in ["retry-after-ms", "x-ms-retry-after-ms"] {
        if let Some(ms) =
            headers.get_optional_str(&HeaderName::from_static(name)).and_then(|v| v.trim().parse::<u64>().ok())
        {
            return Some(Duration::from_millis(ms));
        }
    }
    headers
        .get_optional_str(&HeaderName::from_static("retry-after"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// ARM `{"error":{"code","message"}}`; Key Vault adds `innererror.code`, which is the precise one.
pub fn body_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else { return (None, None) };
    let err = &v["error"];
    let code = err["innererror"]["code"].as_str().or_else(|| err["code"].as_str()).map(str::to_owned);
    (code, err["message"].as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_status_and_code_not_text() {
        let cases = [
            (429, None, Kind::Throttled, true),
            (503, None, Kind::Transient, true),
            (410, None, Kind::Transient, true),
            (401, None, Kind::Authentication, false),
            (403, Some("ForbiddenByRbac"), Kind::Forbidden, false),
            (403, Some("SecretDisabled"), Kind::Disabled, false),
            (404, Some("SecretNotFound"), Kind::NotFound, false),
            (412, Some("PreconditionFailed"), Kind::PreconditionFailed, false),
            (409, None, Kind::Conflict, false),
            (400, Some("BadRequest"), Kind::BadRequest, false),
        ];
        for (status, code, kind, retry) in cases {
            let e = AzureError::from_status("get secret", status, code.map(String::from), "m".into(), None);
            assert_eq!((e.kind, e.kind.retryable()), (kind, retry), "{status} {code:?}");
        }
        let e = AzureError::from_status(
            "put record set",
            412,
            Some("PreconditionFailed".into()),
            "etag mismatch".into(),
            None,
        );
        assert_eq!(e.to_string(), "failed to put record set: 412 PreconditionFailed: etag mismatch");
    }

    #[test]
    fn connection_failures_and_io_errors_are_retried_credential_failures_are_not() {
        use azure_core::error::ErrorKind as K;
        let kind = |k: K| AzureError::from_core("get token", azure_core::Error::with_message(k, "m")).kind;
        assert_eq!(kind(K::Connection), Kind::Transient);
        assert_eq!(kind(K::Io), Kind::Transient);
        assert_eq!(kind(K::Credential), Kind::Authentication);
    }

    #[test]
    fn reads_key_vault_inner_error_codes() {
        let body = br#"{"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.","innererror":{"code":"SecretDisabled"}}}"#;
        assert_eq!(
            body_error(body),
            (Some("SecretDisabled".into()), Some("Operation get is not allowed on a disabled secret.".into()))
        );
        assert_eq!(body_error(b"<html>"), (None, None));
    }
}
