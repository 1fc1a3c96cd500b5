//! What every Azure call did, for metrics and traces: which service and operation, the outcome
//! (the same [`Kind`] names errors carry), how long Azure took to answer, any Retry-After, and
//! ARM's remaining-request headers. One pipeline policy sees every try of every call the SDK
//! clients make — Key Vault, ARM, and the Entra token exchanges of workload identities — so no call
//! site can forget to count; the managed-identity credential reports its IMDS requests itself
//! because they do not go through a pipeline.
//!
//! The crate knows nothing of Prometheus: the daemon implements [`Observer`].

use crate::cloud::Cloud;
use crate::error::{Kind, retry_after};
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Method, Request};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The Azure service a call went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    KeyVault,
    /// Azure DNS through Azure Resource Manager (routewarden's only ARM calls).
    Dns,
    /// Entra ID token exchanges.
    Entra,
    /// The instance metadata service (managed-identity tokens).
    Imds,
    Other,
}

impl Service {
    pub fn as_str(self) -> &'static str {
        match self {
            Service::KeyVault => "keyvault",
            Service::Dns => "dns",
            Service::Entra => "entra",
            Service::Imds => "imds",
            Service::Other => "other",
        }
    }
}

/// One HTTP request to Azure and its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub service: Service,
    /// `certificate`, `secret`, `secret_versions` (Key Vault); `put`, `get`, `delete`, `list`
    /// (DNS); `token` (Entra, IMDS).
    pub operation: &'static str,
    /// `ok`, or the [`Kind`] of the failure (`Throttled`, `Transient`, ...).
    pub outcome: &'static str,
    /// Until the answer's headers arrived (or the request failed).
    pub duration: Duration,
    pub retry_after: Option<Duration>,
    /// ARM's `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}`: (`reads`, n).
    pub remaining: Option<(&'static str, u64)>,
}

/// Receives every [`Call`]. Called on the caller's task, inside its tracing span.
pub trait Observer: Send + Sync + std::fmt::Debug {
    fn call(&self, call: &Call);
}

/// The pipeline policy that reports each try to an [`Observer`].
#[derive(Debug)]
pub(crate) struct ObservePolicy {
    observer: Arc<dyn Observer>,
    /// `vault.azure.net`, and `.vault.azure.net` for matching vault hosts without allocating.
    key_vault_suffix: String,
    dotted_key_vault_suffix: String,
    resource_manager_host: Option<String>,
    authority_host: Option<String>,
}

fn host_of(url: &str) -> Option<String> {
    azure_core::http::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase))
}

impl ObservePolicy {
    pub(crate) fn new(observer: Arc<dyn Observer>, cloud: &Cloud) -> Self {
        let key_vault_suffix = cloud.key_vault_suffix.trim_start_matches('.').to_ascii_lowercase();
        ObservePolicy {
            observer,
            dotted_key_vault_suffix: format!(".{key_vault_suffix}"),
            key_vault_suffix,
            resource_manager_host: host_of(&cloud.resource_manager),
            authority_host: host_of(&cloud.authority_host),
        }
    }

    fn classify(&self, method: &Method, url: &azure_core::http::Url) -> (Service, &'static str) {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let segments: Vec<&str> =
            url.path_segments().map(|s| s.filter(|p| !p.is_empty()).collect()).unwrap_or_default();
        if self.authority_host.as_deref() == Some(host.as_str()) {
            return (Service::Entra, "token");
        }
        if self.resource_manager_host.as_deref() == Some(host.as_str()) {
            let listing = segments.last().is_some_and(|s| s.eq_ignore_ascii_case("all"));
            let op = match *method {
                Method::Put => "put",
                Method::Delete => "delete",
                Method::Get if listing => "list",
                Method::Get => "get",
                _ => "other",
            };
            return (Service::Dns, op);
        }
        if host.ends_with(&self.dotted_key_vault_suffix) || host == self.key_vault_suffix {
            let op = match segments.as_slice() {
                ["certificates", ..] => "certificate",
                ["secrets", _, "versions"] => "secret_versions",
                ["secrets", ..] => "secret",
                _ => "other",
            };
            return (Service::KeyVault, op);
        }
        (Service::Other, "other")
    }
}

/// ARM's remaining-request header for the operation class of `method`.
fn remaining(method: &Method, headers: &azure_core::http::headers::Headers) -> Option<(&'static str, u64)> {
    use azure_core::http::headers::HeaderName;
    let (class, name) = match *method {
        Method::Get | Method::Head => ("reads", "x-ms-ratelimit-remaining-subscription-reads"),
        Method::Delete => ("deletes", "x-ms-ratelimit-remaining-subscription-deletes"),
        _ => ("writes", "x-ms-ratelimit-remaining-subscription-writes"),
    };
    let value = headers.get_optional_str(&HeaderName::from_static(name))?.trim().parse().ok()?;
    Some((class, value))
}

#[async_trait::async_trait]
impl Policy for ObservePolicy {
    async fn send(&self, ctx: &Context, request: &mut Request, next: &[Arc<dyn Policy>]) -> PolicyResult {
        let (service, operation) = self.classify(&request.method(), request.url());
        let method = request.method();
        // No URL or headers in the span: a Key Vault secret's name is enough to identify it and
        // the Authorization header is a credential.
        let span = tracing::info_span!(
            "azure request",
            otel.name = format!("{} {operation}", service.as_str()),
            otel.kind = "client",
            service = service.as_str(),
            operation,
            http.request.method = %method,
            http.response.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = match next.split_first() {
            Some((policy, rest)) => policy.send(ctx, request, rest).instrument(span.clone()).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "the pipeline ends without a transport",
            )),
        };
        if let Ok(response) = &result {
            span.record("http.response.status_code", u16::from(response.status()));
        }
        let duration = started.elapsed();
        let call = match &result {
            Ok(response) => {
                let status = u16::from(response.status());
                Call {
                    service,
                    operation,
                    outcome: if (200..300).contains(&status) { "ok" } else { Kind::of_status(status, None).as_str() },
                    duration,
                    retry_after: retry_after(response.headers()),
                    remaining: if service == Service::Dns { remaining(&method, response.headers()) } else { None },
                }
            }
            Err(e) => {
                use azure_core::error::ErrorKind as K;
                let kind = match e.kind() {
                    K::HttpResponse { status, .. } => Kind::of_status(u16::from(*status), None),
                    // As AzureError::from_core classifies them.
                    K::Io | K::Connection => Kind::Transient,
                    K::Credential => Kind::Authentication,
                    _ => Kind::Other,
                };
                Call { service, operation, outcome: kind.as_str(), duration, retry_after: None, remaining: None }
            }
        };
        span.record("outcome", call.outcome);
        // Inside the span, so the observer's latency exemplar carries this trace.
        span.in_scope(|| self.observer.call(&call));
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nothing;
    impl Observer for Nothing {
        fn call(&self, _: &Call) {}
    }

    fn classify(method: Method, url: &str) -> (Service, &'static str) {
        let policy = ObservePolicy::new(Arc::new(Nothing), &Cloud::public());
        policy.classify(&method, &azure_core::http::Url::parse(url).expect("url"))
    }

    #[test]
    fn classifies_key_vault_arm_and_entra_requests_by_host_and_path() {
        let vault = "https://kv1.vault.azure.net";
        assert_eq!(classify(Method::Get, &format!("{vault}/certificates/web/abc")), (Service::KeyVault, "certificate"));
        assert_eq!(
            classify(Method::Get, &format!("{vault}/secrets/web/versions")),
            (Service::KeyVault, "secret_versions")
        );
        assert_eq!(classify(Method::Get, &format!("{vault}/secrets/web/abc")), (Service::KeyVault, "secret"));
        let zone = "https://management.azure.com/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/dnszones/example.com";
        assert_eq!(classify(Method::Put, &format!("{zone}/A/www")), (Service::Dns, "put"));
        assert_eq!(classify(Method::Get, &format!("{zone}/A/www")), (Service::Dns, "get"));
        assert_eq!(classify(Method::Delete, &format!("{zone}/A/www")), (Service::Dns, "delete"));
        assert_eq!(classify(Method::Get, &format!("{zone}/all?api-version=2018-05-01")), (Service::Dns, "list"));
        assert_eq!(classify(Method::Get, &format!("{zone}/ALL?$skipToken=x")), (Service::Dns, "list"));
        assert_eq!(
            classify(Method::Post, "https://login.microsoftonline.com/t/oauth2/v2.0/token"),
            (Service::Entra, "token")
        );
        assert_eq!(classify(Method::Get, "https://example.com/x"), (Service::Other, "other"));
    }

    #[test]
    fn reads_the_remaining_header_of_the_methods_class() {
        use azure_core::http::headers::{HeaderName, Headers};
        let mut headers = Headers::new();
        headers.insert(HeaderName::from_static("x-ms-ratelimit-remaining-subscription-writes"), "11");
        headers.insert(HeaderName::from_static("x-ms-ratelimit-remaining-subscription-reads"), "249");
        assert_eq!(remaining(&Method::Put, &headers), Some(("writes", 11)));
        assert_eq!(remaining(&Method::Get, &headers), Some(("reads", 249)));
        assert_eq!(remaining(&Method::Delete, &headers), None);
    }
}
