//! Local Azure for the routewarden sandbox: Entra workload identity, the instance metadata
//! service's managed-identity tokens, Azure Resource Manager with Azure DNS (public and private
//! zones), and Key Vault, served over HTTPS on loopback ports, faithful enough for the official
//! Azure SDKs and the Azure CLI.
//!
//! [`AzureSandbox::start`] takes a CA (to issue the server certificate), a [`Scenario`] (what
//! exists) and a way to validate Kubernetes ServiceAccount tokens (the issuer URL and a
//! [`JwksSource`]). It loads the scenario into one in-memory [`state::World`], binds one listener
//! for the authority host, one for ARM, one per vault and one for the admin API, and serves them
//! through a shared pipeline ([`server`]) that routes by `Host` (so the real Azure host names work
//! when resolved to 127.0.0.1) and applies the fidelity knobs ([`faults`]) before a service
//! ([`entra`], [`imds`], [`arm`] over [`dns`], [`keyvault`]) answers. Tests read the call counter and drive
//! [`admin::Admin`]; `routewarden-sandbox up` writes [`AzureSandbox::write_files`]'s
//! `endpoints.json` and `scenario.json`.

pub mod admin;
pub mod arm;
pub mod certs;
pub mod dns;
pub mod entra;
pub mod faults;
pub mod http;
pub mod imds;
pub mod keyvault;
pub mod rbac;
pub mod scenario;
pub mod server;
pub mod state;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use admin::{Admin, AdminClient, AdminClientError, AdminError, RecordSetChange};
pub use certs::CertAuthority;
pub use entra::JwksSource;
pub use faults::{Bucket, CallCount, CallCounter, FaultConfig, FaultRule, LatencyRule, RateLimits};
pub use scenario::Scenario;

/// Errors starting the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The CA or a certificate could not be loaded or made.
    #[error("failed to prepare certificates")]
    Certificates(#[from] certs::CertError),
    /// The scenario is invalid.
    #[error("failed to load the scenario")]
    Scenario(#[from] scenario::ScenarioError),
    /// The token service could not be set up.
    #[error("failed to set up local Entra")]
    Entra(#[from] entra::EntraSetupError),
    /// rustls rejected the server configuration.
    #[error("failed to build the TLS configuration")]
    Tls(#[from] rustls::Error),
    /// A listener could not be bound.
    #[error("failed to bind a listener")]
    Bind(#[from] std::io::Error),
}

impl From<rcgen::Error> for StartError {
    fn from(e: rcgen::Error) -> Self {
        Self::Certificates(certs::CertError::Generate(e))
    }
}

/// What [`AzureSandbox::start`] needs.
#[derive(Debug, Clone)]
pub struct AzureSandboxConfig {
    /// The sandbox CA certificate, PEM (clients trust it).
    pub ca_cert_pem: String,
    /// Its private key, PKCS#8 PEM (issues the server certificate and `Sandbox`-issued certificates).
    pub ca_key_pem: String,
    /// What exists.
    pub scenario: Scenario,
    /// The Kubernetes ServiceAccount issuer URL federated credentials default to.
    pub kubernetes_issuer: Option<String>,
    /// Where assertion-signing keys come from.
    pub jwks: JwksSource,
    /// Access-token lifetime in seconds (Entra's are about an hour).
    pub token_lifetime_seconds: i64,
    /// Fixed ports instead of ephemeral ones: authority host on `base`, ARM on `base + 1`, admin on
    /// `base + 2`, vaults from `base + 3` in scenario order (stable URLs for a registered CLI cloud).
    pub port_base: Option<u16>,
}

impl AzureSandboxConfig {
    /// The seed 000 scenario with the given CA; no Kubernetes issuer yet.
    pub fn new(ca_cert_pem: &str, ca_key_pem: &str) -> Self {
        Self {
            ca_cert_pem: ca_cert_pem.into(),
            ca_key_pem: ca_key_pem.into(),
            scenario: Scenario::seed000(),
            kubernetes_issuer: None,
            jwks: JwksSource::default(),
            token_lifetime_seconds: 3599,
            port_base: None,
        }
    }

    /// Trusts a Kubernetes issuer: federated credentials default to it, and its JWKS is fetched
    /// from `<issuer>/openid/v1/jwks` over HTTPS trusting `issuer_ca_pem`.
    pub fn with_kubernetes_issuer(mut self, issuer: &str, issuer_ca_pem: &str) -> Self {
        self.kubernetes_issuer = Some(issuer.trim_end_matches('/').to_string());
        self.jwks.fetch_ca_pem = Some(issuer_ca_pem.to_string());
        self
    }

    /// Trusts a Kubernetes issuer whose JWKS is given (tests).
    pub fn with_static_jwks(mut self, issuer: &str, jwks: Value) -> Self {
        let issuer = issuer.trim_end_matches('/').to_string();
        self.kubernetes_issuer = Some(issuer.clone());
        self.jwks.fixed.insert(issuer, jwks);
        self
    }

    /// Replaces the scenario.
    pub fn with_scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = scenario;
        self
    }
}

/// One vault's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultEndpoint {
    /// Vault name.
    pub name: String,
    /// Its own port.
    pub port: u16,
    /// `https://127.0.0.1:PORT` (works without host resolution; SDKs then need challenge-resource
    /// verification off).
    pub local_url: String,
    /// `https://<vault>.vault.azure.net:PORT` (needs `<vault>.vault.azure.net` resolved to 127.0.0.1).
    pub url: String,
}

/// A host name a client should resolve to 127.0.0.1 and the port that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostOverride {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Where the sandbox listens (`endpoints.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoints {
    /// Authority host, `https://127.0.0.1:PORT` (AZURE_AUTHORITY_HOST).
    pub authority_host: String,
    /// ARM, `https://127.0.0.1:PORT`.
    pub resource_manager: String,
    /// Admin API, `https://127.0.0.1:PORT/admin/…`.
    pub admin: String,
    /// Vaults by lower-case name.
    pub vaults: BTreeMap<String, VaultEndpoint>,
    /// Real host names to resolve to 127.0.0.1, with the port serving each. Every listener also
    /// routes by `Host`, so any of these ports serves any of these names.
    pub host_overrides: Vec<HostOverride>,
    /// The ARM audience / token scope base.
    pub arm_audience: String,
    /// The Key Vault audience.
    pub key_vault_audience: String,
    /// The instance metadata service's managed-identity token endpoint,
    /// `https://127.0.0.1:PORT/metadata/identity/oauth2/token` (every port serves it; the real one
    /// is `http://169.254.169.254/metadata/identity/oauth2/token`).
    #[serde(default)]
    pub managed_identity_endpoint: String,
}

/// A running local Azure. Dropping it stops every listener.
#[derive(Debug)]
pub struct AzureSandbox {
    ctx: Arc<server::Ctx>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Binds 127.0.0.1 on `base + offset`, or on an ephemeral port without a base.
async fn bind(base: Option<u16>, offset: usize) -> Result<(TcpListener, u16), std::io::Error> {
    let port = match base {
        Some(b) => u16::try_from(offset)
            .ok()
            .and_then(|o| b.checked_add(o))
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the port base is too high"))?,
        None => 0,
    };
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

impl AzureSandbox {
    /// Loads the scenario and starts serving on 127.0.0.1 (ephemeral ports unless `port_base` is set).
    pub async fn start(config: AzureSandboxConfig) -> Result<Self, StartError> {
        let AzureSandboxConfig {
            ca_cert_pem,
            ca_key_pem,
            scenario,
            kubernetes_issuer,
            jwks,
            token_lifetime_seconds,
            port_base,
        } = config;
        let ca = CertAuthority::from_pem(&ca_cert_pem, &ca_key_pem)?;
        let world = state::World::load(&scenario, &ca, kubernetes_issuer.as_deref())?;
        let entra = entra::Entra::new(jwks, token_lifetime_seconds)?;
        let tls = server::tls_config(&ca)?;

        let (entra_listener, entra_port) = bind(port_base, 0).await?;
        let (arm_listener, arm_port) = bind(port_base, 1).await?;
        let (admin_listener, admin_port) = bind(port_base, 2).await?;
        let mut vault_listeners = Vec::new();
        let mut vaults = BTreeMap::new();
        let mut host_overrides = vec![
            HostOverride { host: "login.microsoftonline.com".into(), port: entra_port },
            HostOverride { host: "management.azure.com".into(), port: arm_port },
        ];
        for (i, v) in world.vaults.iter().enumerate() {
            let (listener, port) = bind(port_base, 3 + i).await?;
            let host = format!("{}.vault.azure.net", v.name);
            vaults.insert(
                v.name.to_ascii_lowercase(),
                VaultEndpoint {
                    name: v.name.clone(),
                    port,
                    local_url: format!("https://127.0.0.1:{port}"),
                    url: format!("https://{host}:{port}"),
                },
            );
            host_overrides.push(HostOverride { host, port });
            vault_listeners.push((listener, v.name.clone()));
        }
        let endpoints = Endpoints {
            authority_host: format!("https://127.0.0.1:{entra_port}"),
            resource_manager: format!("https://127.0.0.1:{arm_port}"),
            admin: format!("https://127.0.0.1:{admin_port}"),
            vaults,
            host_overrides,
            arm_audience: "https://management.azure.com/".into(),
            key_vault_audience: "https://vault.azure.net".into(),
            managed_identity_endpoint: format!("https://127.0.0.1:{arm_port}{}", imds::TOKEN_PATH),
        };
        let faults = faults::Faults::new(scenario.faults.clone());
        let ctx = Arc::new(server::Ctx {
            world: Mutex::new(world),
            entra,
            faults,
            calls: CallCounter::default(),
            ca,
            endpoints,
            kubernetes_issuer,
            record_set_watchers: admin::RecordSetWatchers::default(),
        });
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(server::serve(entra_listener, tls.clone(), ctx.clone(), server::PortRole::Entra, rx.clone())),
            tokio::spawn(server::serve(arm_listener, tls.clone(), ctx.clone(), server::PortRole::Arm, rx.clone())),
            tokio::spawn(server::serve(admin_listener, tls.clone(), ctx.clone(), server::PortRole::Admin, rx.clone())),
        ];
        for (listener, name) in vault_listeners {
            tasks.push(tokio::spawn(server::serve(
                listener,
                tls.clone(),
                ctx.clone(),
                server::PortRole::Vault(name),
                rx.clone(),
            )));
        }
        tracing::info!(authority = %ctx.endpoints.authority_host, arm = %ctx.endpoints.resource_manager, "local Azure started");
        Ok(Self { ctx, shutdown, tasks })
    }

    /// Where everything listens.
    pub fn endpoints(&self) -> &Endpoints {
        &self.ctx.endpoints
    }

    /// The CA certificate clients must trust, PEM.
    pub fn ca_pem(&self) -> &str {
        self.ctx.ca.cert_pem()
    }

    /// The call counter (shared; read or reset at any time).
    pub fn calls(&self) -> CallCounter {
        self.ctx.calls.clone()
    }

    /// The admin handle.
    pub fn admin(&self) -> Admin {
        Admin::new(self.ctx.clone())
    }

    /// `scenario.json`: tenant, subscription, zones, vault URLs and unversioned certificate URIs,
    /// identities with client and principal ids.
    pub fn scenario_json(&self) -> Value {
        self.admin().scenario()
    }

    /// Writes `endpoints.json` and `scenario.json` into `dir`.
    pub fn write_files(&self, dir: &Path) -> std::io::Result<()> {
        let pretty = |v: &Value| serde_json::to_vec_pretty(v).unwrap_or_default();
        std::fs::write(
            dir.join("endpoints.json"),
            pretty(&serde_json::to_value(self.endpoints()).unwrap_or_default()),
        )?;
        std::fs::write(dir.join("scenario.json"), pretty(&self.scenario_json()))
    }

    /// Stops every listener and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for AzureSandbox {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
