//! The HTTP client every Azure call goes through: rustls (the process-wide aws-lc-rs provider),
//! the platform's roots plus any extra CA, and host-resolution overrides — exact names or
//! `*.suffix` wildcards mapped to an address *and port*. That is what an air-gapped cloud with a
//! private CA needs, and how the sandbox serves `https://<vault>.vault.azure.net/...` URIs from a
//! loopback port without changing them. The instance metadata service gets a client of its own,
//! the one place plain HTTP is allowed.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// `host=ip:port` or `*.suffix=ip:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostOverride {
    /// Lower-case host, or `*.suffix` for every name below `suffix`.
    pub pattern: String,
    pub addr: SocketAddr,
}

impl HostOverride {
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self.pattern.strip_prefix("*.") {
            Some(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            None => host == self.pattern,
        }
    }
}

impl FromStr for HostOverride {
    type Err = TransportError;

    fn from_str(s: &str) -> Result<Self, TransportError> {
        let bad = |why: &str| TransportError::Override { value: s.to_owned(), why: why.to_owned() };
        let (host, addr) = s.split_once('=').ok_or_else(|| bad("want HOST=IP:PORT"))?;
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        if bare.is_empty()
            || !bare.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(bad("the host must be a DNS name or *.suffix"));
        }
        let addr = addr.trim().parse().map_err(|_| bad("the target must be IP:PORT, e.g. 127.0.0.1:8443"))?;
        Ok(HostOverride { pattern: host, addr })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid host override {value:?}: {why}")]
    Override { value: String, why: String },
    #[error("extra CA {origin}: {detail}")]
    Ca { origin: String, detail: String },
    #[error("failed to build the HTTP client: {0}")]
    Build(String),
}

/// What the environment asks of the transport.
#[derive(Clone, Debug, Default)]
pub struct TransportConfig {
    /// PEM bundle trusted in addition to the platform roots, and where it came from (for errors).
    pub extra_ca: Option<(String, Vec<u8>)>,
    pub overrides: Vec<HostOverride>,
    /// Whole-request timeout; per-call deadlines come from the callers.
    pub timeout: Option<Duration>,
}

/// Resolves overridden names to their address and everything else through the system resolver.
#[derive(Debug)]
struct OverrideResolver {
    overrides: Arc<Vec<HostOverride>>,
}

impl Resolve for OverrideResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let overrides = self.overrides.clone();
        Box::pin(async move {
            if let Some(o) = overrides.iter().find(|o| o.matches(name.as_str())) {
                let addrs: Addrs = Box::new(std::iter::once(o.addr));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// Builds the client for Azure's services: HTTPS only.
pub fn build_client(config: &TransportConfig) -> Result<reqwest::Client, TransportError> {
    builder(config, reqwest::Client::builder().https_only(true))
}

/// Builds the client for the instance metadata service's token endpoint: the same CA and
/// overrides (the sandbox serves it over HTTPS), but plain HTTP allowed — the real one is
/// `http://169.254.169.254` — and never through a proxy, which must not see a node's tokens (and
/// could not reach a link-local address anyway).
pub fn build_imds_client(config: &TransportConfig) -> Result<reqwest::Client, TransportError> {
    builder(config, reqwest::Client::builder().no_proxy())
}

fn builder(config: &TransportConfig, mut builder: reqwest::ClientBuilder) -> Result<reqwest::Client, TransportError> {
    if let Some((origin, pem)) = &config.extra_ca {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| TransportError::Ca { origin: origin.clone(), detail: e.to_string() })?;
        if certs.is_empty() {
            return Err(TransportError::Ca { origin: origin.clone(), detail: "holds no PEM certificate".into() });
        }
        builder = builder.tls_certs_merge(certs);
    }
    if !config.overrides.is_empty() {
        builder = builder.dns_resolver(Arc::new(OverrideResolver { overrides: Arc::new(config.overrides.clone()) }));
    }
    if let Some(t) = config.timeout {
        builder = builder.timeout(t);
    }
    builder.build().map_err(|e| TransportError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches_overrides() {
        let exact: HostOverride = "login.microsoftonline.com=127.0.0.1:8443".parse().unwrap();
        let wild: HostOverride = "*.Vault.Azure.Net=127.0.0.1:8444".parse().unwrap();
        assert!(exact.matches("LOGIN.microsoftonline.com."));
        assert!(!exact.matches("x.login.microsoftonline.com"));
        assert!(wild.matches("kv-demo.vault.azure.net"));
        assert!(wild.matches("a.b.vault.azure.net"));
        assert!(!wild.matches("vault.azure.net"));
        assert!(!wild.matches("kv-demo.vault.azure.net.evil.com"));
        for bad in
            ["login.microsoftonline.com", "=127.0.0.1:1", "host=127.0.0.1", "ho st=127.0.0.1:1", "*.=127.0.0.1:1"]
        {
            let err = bad.parse::<HostOverride>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
