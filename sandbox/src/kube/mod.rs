//! The emulated Kubernetes API server. [`KubeServer::start`] generates (or, with a state dir,
//! reloads) a CA, a signing key and an admin token, fills the store with the default namespaces,
//! the Gateway API CRDs, our SecretProviderClass CRD and the `approuting-istio` GatewayClass, and
//! serves HTTPS on 127.0.0.1, with background tasks for garbage collection, the Gateway controller
//! stand-in and persistence. Every request goes through the `handler` module: authentication
//! (admin token or a ServiceAccount JWT), then discovery/OpenAPI/OIDC documents or a resource
//! path, which resolves through the registry to a verb on the store (get, list, watch, create,
//! update, patch, apply, delete). Errors are Status objects from [`error`].

pub mod apply;
pub mod controller;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod events;
pub mod faults;
mod handler;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod registry;
pub mod selectors;
pub mod store;
pub mod table;
pub mod token;
pub mod validation;
pub mod watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use crate::tls::SandboxCa;
use store::Store;
use token::TokenIssuer;

/// How to start the server.
#[derive(Debug, Clone)]
pub struct KubeServerOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How many events the store keeps for watches to resume from; a watch from an older
    /// resourceVersion gets 410 Expired.
    pub watch_window: usize,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Watch length when the client sends no `timeoutSeconds`.
    pub default_watch_timeout: Duration,
    /// How long after a deletion the garbage collector and namespace controller run (they are
    /// asynchronous on a real cluster too: `kubectl delete -f` of a namespace and its contents
    /// relies on that).
    pub gc_delay: Duration,
    /// How long after a namespace's deletion the namespace controller starts deleting its contents.
    pub namespace_delay: Duration,
    /// Addresses the Gateway controller stand-in hands out (IPv4, IPv6 or hostnames).
    pub gateway_addresses: Vec<String>,
    /// Keep state in this directory: objects and resourceVersions (`state.json`), the CA
    /// (`ca.crt`, `ca.key`), the ServiceAccount signing key, the admin token and the port, so a
    /// restarted sandbox serves the same objects to the same kubeconfig. None keeps all in memory.
    pub state_dir: Option<std::path::PathBuf>,
    /// More CustomResourceDefinitions to install at start (e.g. [`crd::load_dir`] of routewarden's
    /// `deploy/crds`).
    pub extra_crds: Vec<Value>,
}

impl Default for KubeServerOptions {
    fn default() -> Self {
        Self {
            port: 0,
            watch_window: 10_000,
            bookmark_interval: Duration::from_secs(1),
            default_watch_timeout: Duration::from_secs(1800),
            gc_delay: Duration::from_millis(250),
            namespace_delay: Duration::from_secs(1),
            gateway_addresses: controller::default_pool(),
            state_dir: None,
            extra_crds: Vec::new(),
        }
    }
}

/// State shared by every request.
#[derive(Debug)]
pub struct Context {
    store: Arc<Store>,
    admin_token: String,
    tokens: TokenIssuer,
    options: KubeServerOptions,
    address: SocketAddr,
    gateways: Arc<controller::GatewayController>,
    faults: Arc<faults::Faults>,
    access: rbac::AccessLog,
}

/// A running emulated API server.
#[derive(Debug)]
pub struct KubeServer {
    ctx: Arc<Context>,
    ca: SandboxCa,
    url: String,
    stop: signal::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl KubeServer {
    /// Starts a server on 127.0.0.1 with a fresh CA, or with the one kept in `state_dir`.
    pub async fn start(options: KubeServerOptions) -> anyhow::Result<Self> {
        let ca = match &options.state_dir {
            Some(dir) => SandboxCa::load_or_generate(dir)?,
            None => SandboxCa::generate()?,
        };
        Self::start_with_ca(options, ca).await
    }

    /// Starts a server presenting a certificate from `ca` (shared with the other sandbox servers).
    pub async fn start_with_ca(options: KubeServerOptions, ca: SandboxCa) -> anyhow::Result<Self> {
        let dir = options.state_dir.clone();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
        }
        let kept = |file: &str| {
            dir.as_ref().and_then(|d| std::fs::read_to_string(d.join(file)).ok()).map(|s| s.trim().to_string())
        };
        let port = match (options.port, kept("port").and_then(|p| p.parse().ok())) {
            (0, Some(p)) => p,
            (p, _) => p,
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let address = listener.local_addr()?;
        let url = format!("https://{address}");
        let tokens = match &dir {
            Some(d) => TokenIssuer::load_or_generate(&url, &d.join("sa.key"))?,
            None => TokenIssuer::generate(&url)?,
        };
        let admin_token = kept("admin.token").unwrap_or_else(|| format!("rw-admin-{}", uuid::Uuid::new_v4().simple()));
        let store = Arc::new(Store::new(options.watch_window));
        store.set_namespace_delay(options.namespace_delay);
        if let Some(d) = &dir {
            std::fs::write(d.join("port"), address.port().to_string())?;
            std::fs::write(d.join("admin.token"), &admin_token)?;
            if let Ok(text) = std::fs::read_to_string(d.join("state.json")) {
                let snapshot: Value = serde_json::from_str(&text)?;
                store
                    .restore(&snapshot)
                    .map_err(|e| anyhow::anyhow!("failed to restore {}: {e}", d.join("state.json").display()))?;
            }
        }
        seed(&store, &options.extra_crds)?;
        if let Some(d) = &dir {
            persist(&store, d)?;
        }
        let gateways = Arc::new(controller::GatewayController::new(options.gateway_addresses.clone()));
        let ctx = Arc::new(Context {
            store,
            admin_token,
            tokens,
            options,
            address,
            gateways,
            faults: Arc::new(faults::Faults::default()),
            access: rbac::AccessLog::default(),
        });
        let app = Router::new()
            .fallback(handler::handle)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(ctx.clone());
        let (stop, stopped) = signal::channel(false);
        let tls = ca.server_config()?;
        tokio::spawn(run_garbage_collector(ctx.store.clone(), ctx.options.gc_delay, stopped.clone()));
        tokio::spawn(ctx.gateways.clone().run(ctx.store.clone(), stopped.clone()));
        if let Some(d) = dir {
            tokio::spawn(run_persister(ctx.store.clone(), d, stopped.clone()));
        }
        let task = tokio::spawn(crate::tls::serve_https(listener, tls, app, stopped));
        Ok(Self { ctx, ca, url, stop, task: Some(task) })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.ctx.address
    }

    /// The CA certificate (PEM) clients must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca.ca_pem
    }

    /// The sandbox CA (to start more servers under it).
    pub fn ca(&self) -> &SandboxCa {
        &self.ca
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.ctx.admin_token
    }

    /// The store, for tests that want to look behind the API (or compact the event log).
    pub fn store(&self) -> &Arc<Store> {
        &self.ctx.store
    }

    /// The Gateway controller stand-in (to withhold or restore a Gateway's address).
    pub fn gateway_controller(&self) -> &Arc<controller::GatewayController> {
        &self.ctx.gateways
    }

    /// Fault injection.
    pub fn faults(&self) -> &Arc<faults::Faults> {
        &self.ctx.faults
    }

    /// The distinct requests ServiceAccounts made and whether RBAC allowed each (see
    /// [`rbac::AccessLog`]).
    pub fn access_log(&self) -> Vec<rbac::Access> {
        self.ctx.access.entries()
    }

    /// The ServiceAccount token issuer (for OIDC tests).
    pub fn token_issuer(&self) -> &TokenIssuer {
        &self.ctx.tokens
    }

    /// A kubeconfig for the admin user, with the CA inline.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_for_token(&self.ctx.admin_token)
    }

    /// A kubeconfig that authenticates with `token` (e.g. a ServiceAccount token).
    pub fn kubeconfig_for_token(&self, token: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: sandbox-admin\n  user:\n    token: {token}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox-admin\n    namespace: default\ncurrent-context: sandbox\n",
            url = self.url
        )
    }

    /// A kube-rs client for the admin user.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        self.client_for_token(&self.ctx.admin_token).await
    }

    /// Issues a token for an existing ServiceAccount, as `kubectl create token` would (audience:
    /// this API server, one hour): what an e2e test hands routewarden to run under its own RBAC.
    pub fn service_account_token(&self, namespace: &str, name: &str) -> anyhow::Result<String> {
        let info = self
            .ctx
            .store
            .registry()
            .lookup("", "v1", "serviceaccounts")
            .ok_or_else(|| anyhow::anyhow!("no serviceaccounts"))?;
        let sa = self.ctx.store.get(&info, namespace, name).map_err(|e| anyhow::anyhow!(e.message))?;
        let response = token::token_request(&self.ctx.tokens, &sa, &json!({"spec": {}}))
            .map_err(|e| anyhow::anyhow!(e.message))?;
        response
            .pointer("/status/token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("no token issued"))
    }

    /// A kube-rs client authenticating with `token`.
    pub async fn client_for_token(&self, token: &str) -> anyhow::Result<kube::Client> {
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&self.kubeconfig_for_token(token))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Writes `kubeconfig` and `ca.crt` into `dir`.
    pub fn write_files(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("kubeconfig"), self.kubeconfig_yaml())?;
        std::fs::write(dir.join("ca.crt"), &self.ca.ca_pem)?;
        Ok(())
    }

    /// Stops serving and waits for the listener to close; with a state dir, saves the state.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(dir) = &self.ctx.options.state_dir
            && let Err(e) = persist(&self.ctx.store, dir)
        {
            tracing::warn!(error = %e, "failed to save the sandbox state");
        }
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Writes `state.json` atomically (write, then rename).
fn persist(store: &Store, dir: &Path) -> std::io::Result<()> {
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(&store.snapshot())?)?;
    std::fs::rename(tmp, dir.join("state.json"))
}

async fn run_persister(store: Arc<Store>, dir: std::path::PathBuf, mut stop: signal::Receiver<bool>) {
    let mut events = store.events();
    loop {
        tokio::select! {
            received = events.recv() => {
                if matches!(received, Err(tokio::sync::broadcast::error::RecvError::Closed)) { return; }
                // Coalesce a burst of writes into one save.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while events.try_recv().is_ok() {}
                if let Err(e) = persist(&store, &dir) {
                    tracing::warn!(error = %e, "failed to save the sandbox state");
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() { return; }
            }
        }
    }
}

async fn run_garbage_collector(store: Arc<Store>, delay: Duration, mut stop: signal::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = store.garbage_pending() => {
                tokio::time::sleep(delay).await;
                store.collect_garbage();
            }
            _ = tick.tick() => {
                if store.namespaces_terminating() {
                    store.collect_garbage();
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() { return; }
            }
        }
    }
}

fn seed(store: &Store, extra_crds: &[Value]) -> anyhow::Result<()> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        store
            .install("v1", "Namespace", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let mut crds = crd::gateway_api_crds()?;
    crds.push(crd::secret_provider_class_crd());
    for c in crds {
        store
            .install("apiextensions.k8s.io/v1", "CustomResourceDefinition", c)
            .map_err(|e| anyhow::anyhow!(e.message))?;
    }
    for c in extra_crds {
        let name = c.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string();
        store
            .install_or_update("apiextensions.k8s.io/v1", "CustomResourceDefinition", c.clone())
            .map_err(|e| anyhow::anyhow!("failed to install CRD {name}: {}", e.message))?;
    }
    store
        .install("gateway.networking.k8s.io/v1", "GatewayClass", crd::approuting_gateway_class())
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let ingress_class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": controller::INGRESS_CLASS}, "spec": {"controller": controller::INGRESS_CONTROLLER}});
    store.install("networking.k8s.io/v1", "IngressClass", ingress_class).map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(())
}
