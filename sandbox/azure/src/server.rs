//! HTTPS listeners and the per-request pipeline shared by every service.
//!
//! Each listener (authority host, ARM, admin, one per vault) accepts TCP, completes TLS with a
//! server certificate issued by the sandbox CA for the loopback addresses and the real Azure host
//! names, and hands each request to [`serve_request`]. That reads the request whole, picks the
//! service from the `Host` header (so `login.microsoftonline.com`, `management.azure.com` and
//! `<vault>.vault.azure.net` work on any port they are resolved to) or else from the port's own
//! role — except the instance metadata service's token path, served on every port ([`imds`]) —
//! names the operation, applies latency and injected faults, runs the service, and counts
//! the outcome (admin calls excepted). An injected reset or timeout makes the hyper service fail, which drops the
//! connection without an answer, as a network fault would.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::Endpoints;
use crate::certs::CertAuthority;
use crate::entra::Entra;
use crate::faults::{CallCounter, Fault, Faults};
use crate::http::{Req, Resp, azure_error, json as json_resp, set_header};
use crate::state::World;
use crate::{admin, arm, imds, keyvault};

/// Everything a request handler may touch.
#[derive(Debug)]
pub struct Ctx {
    /// The live world.
    pub world: Mutex<World>,
    /// Token service.
    pub entra: Entra,
    /// Fidelity knobs.
    pub faults: Faults,
    /// Call counter.
    pub calls: CallCounter,
    /// The sandbox CA.
    pub ca: CertAuthority,
    /// Where everything listens.
    pub endpoints: Endpoints,
    /// The Kubernetes issuer federated credentials default to.
    pub kubernetes_issuer: Option<String>,
    /// Who is told about every record-set write.
    pub record_set_watchers: admin::RecordSetWatchers,
}

/// What a listener serves when the `Host` header names no Azure host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRole {
    /// The authority host.
    Entra,
    /// Azure Resource Manager.
    Arm,
    /// One vault.
    Vault(String),
    /// The admin API.
    Admin,
}

/// Host names of the authority hosts (public, China, US Government) the server answers as Entra.
pub const LOGIN_HOSTS: &[&str] = &[
    "login.microsoftonline.com",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
    "login.chinacloudapi.cn",
    "login.microsoftonline.us",
];
/// ARM host names.
pub const ARM_HOSTS: &[&str] = &["management.azure.com", "management.chinacloudapi.cn", "management.usgovcloudapi.net"];
/// Vault DNS suffixes.
pub const VAULT_SUFFIXES: &[&str] = &[".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net"];

/// The DNS names on the server certificate.
pub fn server_names() -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    names.extend(LOGIN_HOSTS.iter().map(|h| h.to_string()));
    names.extend(ARM_HOSTS.iter().map(|h| h.to_string()));
    names.extend(VAULT_SUFFIXES.iter().map(|s| format!("*{s}")));
    names
}

/// The rustls configuration: a server certificate from `ca`, h2 and HTTP/1.1.
pub fn tls_config(ca: &CertAuthority) -> Result<Arc<rustls::ServerConfig>, crate::StartError> {
    let (cert, key) = ca.server_certificate(&server_names())?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = vec![CertificateDer::from(cert), CertificateDer::from(ca.cert_der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// Serves `role` on `listener` until `shutdown` turns true or its sender is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    ctx: Arc<Ctx>,
    role: PortRole,
    shutdown: watch::Receiver<bool>,
) {
    let service = hyper::service::service_fn(move |req| serve_request(ctx.clone(), role.clone(), req));
    serve_tls(listener, tls, service, shutdown).await;
}

/// Accepts TLS connections on `listener` and serves each with `service` (HTTP/1.1 with upgrades,
/// or h2 by ALPN) until `shutdown` turns true or its sender is dropped; then open connections are
/// aborted. Both sandbox servers (Kubernetes and Azure) run on this one loop. A service error ends
/// its connection, which is how injected "connection dropped" faults work.
pub async fn serve_tls<S, B>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    service: S,
    mut shutdown: watch::Receiver<bool>,
) where
    S: hyper::service::Service<Request<Incoming>, Response = hyper::Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, _peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let service = service.clone();
                connections.spawn(async move {
                    // A failed handshake (a client that does not trust the CA) only ends this connection.
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() { break; }
            }
        }
    }
    connections.abort_all();
}

enum Target {
    Imds,
    Entra,
    Arm,
    Vault(String),
    UnknownVault(String),
    Admin,
}

fn target(ctx: &Ctx, req: &Req, role: &PortRole) -> Target {
    if imds::is_token_path(req) {
        return Target::Imds;
    }
    let host = req.host.as_str();
    if LOGIN_HOSTS.contains(&host) {
        return Target::Entra;
    }
    if ARM_HOSTS.contains(&host) {
        return Target::Arm;
    }
    for suffix in VAULT_SUFFIXES {
        if let Some(name) = host.strip_suffix(suffix) {
            let known =
                ctx.world.lock().unwrap_or_else(std::sync::PoisonError::into_inner).vault(name).map(|v| v.name.clone());
            return match known {
                Some(n) => Target::Vault(n),
                None => Target::UnknownVault(name.to_string()),
            };
        }
    }
    match role {
        PortRole::Entra => Target::Entra,
        PortRole::Arm => Target::Arm,
        PortRole::Vault(n) => Target::Vault(n.clone()),
        PortRole::Admin => Target::Admin,
    }
}

async fn serve_request(ctx: Arc<Ctx>, role: PortRole, req: Request<Incoming>) -> Result<Resp, Dropped> {
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(Body::new(body), 32 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return Ok(azure_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestFormat",
                "The request body could not be read (at most 32 MiB).",
            ));
        }
    };
    let req = Req::new(parts.method, &parts.uri, parts.headers, bytes);
    let target = target(&ctx, &req, &role);
    let arm_route = matches!(target, Target::Arm).then(|| arm::parse(&req));
    let kv_route = matches!(target, Target::Vault(_)).then(|| keyvault::parse(&req));
    let (service, operation) = match &target {
        Target::Imds => ("imds", imds::operation(&req)),
        Target::Entra => ("entra", Entra::operation(&req)),
        Target::Arm => ("arm", arm_route.as_ref().map(|r| r.operation(&req.method)).unwrap_or("Unknown")),
        Target::Vault(_) => ("keyvault", kv_route.as_ref().map(keyvault::KvRoute::operation).unwrap_or("Unknown")),
        Target::UnknownVault(_) => ("keyvault", "Unknown"),
        Target::Admin => ("admin", admin::operation(&req)),
    };
    tracing::debug!(service, operation, method = %req.method, path = %req.path, "request");
    let mut injected = None;
    if service != "admin" {
        let decision = ctx.faults.decide(service, operation);
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        match decision.fault {
            Some(Fault::Reset) => {
                ctx.calls.record(service, operation, 0);
                return Err(Dropped);
            }
            Some(Fault::Timeout(hold)) => {
                tokio::time::sleep(hold).await;
                ctx.calls.record(service, operation, 0);
                return Err(Dropped);
            }
            Some(Fault::Error500) => injected = Some(fault_response(service, StatusCode::INTERNAL_SERVER_ERROR)),
            Some(Fault::Error503) => injected = Some(fault_response(service, StatusCode::SERVICE_UNAVAILABLE)),
            None => {}
        }
    }
    let resp = match injected {
        Some(r) => r,
        None => match (&target, &arm_route, &kv_route) {
            (Target::Imds, _, _) => imds::handle(&ctx, &req),
            (Target::Entra, _, _) => ctx.entra.handle(&ctx.world, &req).await,
            (Target::Arm, Some(route), _) => arm::handle(&ctx, &req, route),
            (Target::Vault(name), _, Some(route)) => keyvault::handle(&ctx, &req, name, route),
            (Target::UnknownVault(name), _, _) => keyvault::kv_error(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                &format!("The vault '{name}' does not exist in the sandbox."),
                None,
            ),
            (Target::Admin, _, _) => admin::handle(&ctx, &req),
            _ => azure_error(StatusCode::NOT_FOUND, "NotFound", "Not found."),
        },
    };
    // Admin calls are the test's own, not Azure traffic: they are not counted.
    if service != "admin" {
        ctx.calls.record(service, operation, resp.status().as_u16());
    }
    Ok(resp)
}

fn fault_response(service: &str, status: StatusCode) -> Resp {
    let mut r = if service == "imds" {
        json_resp(
            status,
            &json!({"error": "unknown_error", "error_description": "IMDS is unavailable (injected by the sandbox)."}),
        )
    } else if service == "entra" {
        json_resp(
            status,
            &json!({"error": "temporarily_unavailable", "error_description": "AADSTS50196: The server is temporarily unavailable (injected by the sandbox).", "error_codes": [50196]}),
        )
    } else if status == StatusCode::INTERNAL_SERVER_ERROR {
        azure_error(status, "InternalServerError", "Encountered internal server error (injected by the sandbox).")
    } else {
        azure_error(status, "ServiceUnavailable", "The service is temporarily unavailable (injected by the sandbox).")
    };
    if status == StatusCode::SERVICE_UNAVAILABLE {
        set_header(&mut r, "retry-after", "1");
    }
    r
}
