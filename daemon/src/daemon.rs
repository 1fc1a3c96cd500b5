//! `routewarden run`: the daemon process. It opens the journal (running pending migrations),
//! serves the admin endpoint, and on SIGTERM or Ctrl-C stops accepting, ends open streams, and
//! closes the journal so the next process (or `routewarden journal --dir`) can open it.

use crate::admin;
use crate::cli::{LogFormat, RunArgs};
use routewarden_store::Time;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// How long shutdown waits for open admin connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What starting or stopping the daemon can fail at.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("failed to start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("failed to install the {signal} handler: {source}")]
    Signal { signal: &'static str, source: std::io::Error },
    #[error("failed to open journal {}: {source}", dir.display())]
    OpenJournal { dir: PathBuf, source: routewarden_migrations::Error },
    #[error("journal open task failed: {0}")]
    Task(String),
    #[error("failed to bind the admin endpoint to {addr}: {source}")]
    BindAdmin { addr: SocketAddr, source: std::io::Error },
    #[error("admin endpoint failed: {0}")]
    ServeAdmin(std::io::Error),
    #[error("failed to close journal: {0}")]
    CloseJournal(routewarden_store::Error),
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

/// Sets up logging and the runtime, and runs until SIGTERM or Ctrl-C.
pub fn main(args: RunArgs) -> Result<(), DaemonError> {
    init_tracing(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(DaemonError::Runtime)?;
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        run(args, shutdown).await
    });
    // Followers poll for shutdown every half second; don't let a stuck one hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Logs go to stderr; colour only on a terminal without NO_COLOR.
fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => {
            let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(ansi).try_init()
        }
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the SIGTERM and SIGINT handlers now (so a signal that arrives while starting is not
/// lost) and returns a future that completes on the first of them.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, DaemonError> {
    let mut term =
        signal(SignalKind::terminate()).map_err(|source| DaemonError::Signal { signal: "SIGTERM", source })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| DaemonError::Signal { signal: "SIGINT", source })?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down");
    })
}

/// The daemon proper: open the journal, serve the admin endpoint until `shutdown`, close.
pub async fn run(args: RunArgs, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), DaemonError> {
    run_reporting(args, shutdown, None).await
}

/// What a running daemon serves, reported once it listens (for embedding, e.g. the sandbox).
#[derive(Clone, Debug)]
pub struct Ready {
    /// The admin endpoint's address (`/v1/journal/...`, `/metrics`, `/healthz`).
    pub admin_addr: SocketAddr,
}

/// [`run`], sending [`Ready`] on `ready` once the admin endpoint listens.
pub async fn run_reporting(
    args: RunArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<Ready>>,
) -> Result<(), DaemonError> {
    let RunArgs { journal_dir, admin_addr, cluster_id, log_format: _, kube, tls, dns, azure } = args;
    let azure = crate::config::AzureSettings::from_args(&azure)?;
    let kube_client = match &kube.kubeconfig {
        _ if kube.no_kubernetes => None,
        Some(path) => Some(crate::config::kube_client(Some(path)).await?),
        None => Some(crate::config::kube_client(None).await?),
    };
    tracing::info!(
        cloud = %azure.cloud.name,
        authority = %azure.cloud.authority_host,
        resource_manager = %azure.cloud.resource_manager,
        key_vault_suffix = %azure.cloud.key_vault_suffix,
        default_tenant = azure.default_tenant.as_deref().unwrap_or("-"),
        "azure configured"
    );
    let dir = journal_dir.clone();
    let options = routewarden_migrations::OpenOptions { cluster_id, ..Default::default() };
    let journal = tokio::task::spawn_blocking(move || routewarden_migrations::open(&journal_dir, options, Time::now()))
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))?
        .map_err(|source| DaemonError::OpenJournal { dir: dir.clone(), source })?;
    tracing::info!(dir = %dir.display(), cluster_id = journal.cluster_id().ok().flatten().as_deref().unwrap_or("-"), "journal open");

    let listener =
        TcpListener::bind(admin_addr).await.map_err(|source| DaemonError::BindAdmin { addr: admin_addr, source })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::BindAdmin { addr: admin_addr, source })?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "admin endpoint is not on loopback; it has no authentication");
    }
    tracing::info!(%addr, "admin endpoint listening on http://{addr}");
    if let Some(ready) = ready {
        let _ = ready.send(Ready { admin_addr: addr });
    }
    let metrics = crate::metrics::Metrics::new();
    let (stop_tasks, tasks_stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(client) = kube_client {
        // One Azure client for both controllers: one token cache per identity, one HTTP pool.
        let assertions = std::sync::Arc::new(crate::tls::kubeio::TokenRequests(client.clone()));
        let azure_client = std::sync::Arc::new(
            routewarden_azure::AzureClient::new(azure.cloud.clone(), azure.http.clone(), assertions)
                .with_managed_identity_endpoint(azure.managed_identity.clone()),
        );
        let settings = crate::config::tls_settings(&tls, &azure);
        tasks = crate::tls::start(
            client.clone(),
            journal.clone(),
            azure_client.clone(),
            settings,
            metrics.clone(),
            tasks_stopped.clone(),
        );
        tracing::info!(classes = ?tls.gateway_classes, poll_interval = ?tls.certificate_poll_interval, workers = tls.workers, "TLS controller started");
        let settings = crate::config::dns_settings(&tls, &dns, &azure);
        tasks.extend(crate::dns::start(
            client,
            journal.clone(),
            azure_client,
            settings,
            metrics.clone(),
            tasks_stopped,
        ));
        tracing::info!("DNS controller started");
    }
    let extra = {
        let metrics = metrics.clone();
        let journal = journal.clone();
        axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let metrics = metrics.clone();
                    let journal = journal.clone();
                    async move {
                        if let Ok(depth) = tokio::task::spawn_blocking(move || journal.queue_depth()).await {
                            metrics.queue_depth.set(i64::try_from(depth).unwrap_or(i64::MAX));
                        }
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            metrics.encode(),
                        )
                    }
                }),
            )
            .route("/healthz", axum::routing::get(|| async { "ok" }))
    };
    let (stop, mut stopped) = watch::channel(false);
    let signalled = async move {
        shutdown.await;
        let _ = stop.send(true);
        // Past this, connections still open after the signal are abandoned, not waited for.
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let serve = admin::serve(listener, journal.clone(), extra, async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    tokio::select! {
        served = serve => served.map_err(DaemonError::ServeAdmin)?,
        () = signalled => tracing::warn!(grace = ?SHUTDOWN_GRACE, "admin connections still open after the grace period; closing anyway"),
    }
    tracing::info!("admin endpoint stopped");
    let _ = stop_tasks.send(true);
    for task in tasks {
        // Workers finish the item in hand (its lease protects it if they cannot).
        if tokio::time::timeout(Duration::from_secs(5), task).await.is_err() {
            tracing::warn!("a TLS task did not stop within 5s");
        }
    }

    tokio::task::spawn_blocking(move || journal.close())
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))?
        .map_err(DaemonError::CloseJournal)?;
    tracing::info!(dir = %dir.display(), "journal closed");
    Ok(())
}
