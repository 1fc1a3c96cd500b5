//! `routewarden run`: the daemon process. It opens the journal (running pending migrations),
//! serves the admin endpoint, and on SIGTERM or Ctrl-C stops accepting, ends open streams, and
//! closes the journal so the next process (or `routewarden journal --dir`) can open it.

use crate::admin;
use crate::cli::RunArgs;
use routewarden_store::Time;
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
    #[error("failed to bind the metrics endpoint (--metrics-addr) to {addr}: {source}")]
    BindMetrics { addr: SocketAddr, source: std::io::Error },
    #[error("admin endpoint failed: {0}")]
    ServeAdmin(std::io::Error),
    #[error("failed to close journal: {0}")]
    CloseJournal(routewarden_store::Error),
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

/// Sets up logging, tracing and the runtime, and runs until SIGTERM or Ctrl-C.
pub fn main(args: RunArgs) -> Result<(), DaemonError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(DaemonError::Runtime)?;
    // The OTLP exporter's batch processor needs the runtime's reactor.
    let telemetry = runtime.block_on(async { crate::telemetry::init(args.log_format) });
    let result = runtime.block_on(async {
        let shutdown = shutdown_signal()?;
        run(args, shutdown).await
    });
    runtime.block_on(async { tokio::task::spawn_blocking(move || telemetry.shutdown()).await.ok() });
    // Followers poll for shutdown every half second; don't let a stuck one hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
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
    /// The admin endpoint's address (`/v1/journal/...`, `/v1/log-level`, and the metrics routes).
    pub admin_addr: SocketAddr,
    /// The metrics endpoint's address (`/metrics`, `/healthz`, `/readyz`).
    pub metrics_addr: SocketAddr,
}

/// [`run`], sending [`Ready`] on `ready` once the admin endpoint listens.
pub async fn run_reporting(
    args: RunArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: Option<tokio::sync::oneshot::Sender<Ready>>,
) -> Result<(), DaemonError> {
    let RunArgs { journal_dir, admin_addr, metrics_addr, cluster_id, log_format: _, leader, kube, tls, dns, azure } =
        args;
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
    let metrics = crate::metrics::Metrics::new();
    let health = crate::health::Health::new();
    // Every replica must stamp the same cluster id into record-set ownership, or a new leader
    // would take the old one's records for another owner's: the kube-system namespace's uid
    // unless one is configured.
    let cluster_id = match (cluster_id, &kube_client) {
        (Some(id), _) => Some(id),
        (None, Some(client)) => crate::config::cluster_uid(client).await,
        (None, None) => None,
    };
    let dir = journal_dir.clone();
    let options = routewarden_migrations::OpenOptions { cluster_id: cluster_id.clone(), ..Default::default() };
    let journal = tokio::task::spawn_blocking(move || routewarden_migrations::open(&journal_dir, options, Time::now()))
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))?
        .map_err(|source| DaemonError::OpenJournal { dir: dir.clone(), source })?;
    let stamped = journal.cluster_id().ok().flatten();
    tracing::info!(dir = %dir.display(), cluster_id = stamped.as_deref().unwrap_or("-"), "journal open");
    if let (Some(want), Some(have)) = (&cluster_id, &stamped)
        && want != have
    {
        tracing::warn!(configured = %want, journal = %have, "the journal was created for another cluster id and keeps it; record sets are owned under the journal's");
    }
    // This process holds the journal's lock: whatever was in flight belonged to a process that
    // died (killed, OOM, node lost). Its items are due now, not when their leases would expire.
    let j = journal.clone();
    match tokio::task::spawn_blocking(move || j.release_leases(Time::now())).await {
        Ok(Ok(0)) => {}
        Ok(Ok(n)) => tracing::info!(items = n, "took over work items a previous process held when it stopped"),
        Ok(Err(e)) => tracing::warn!(error = %e, "failed to release the leases of a previous process"),
        Err(e) => tracing::warn!(error = %e, "lease release task failed"),
    }
    journal.set_observer(metrics.clone());
    health.set_journal_open(true);

    let listener =
        TcpListener::bind(admin_addr).await.map_err(|source| DaemonError::BindAdmin { addr: admin_addr, source })?;
    let addr = listener.local_addr().map_err(|source| DaemonError::BindAdmin { addr: admin_addr, source })?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "admin endpoint is not on loopback; it has no authentication");
    }
    let metrics_listener = TcpListener::bind(metrics_addr)
        .await
        .map_err(|source| DaemonError::BindMetrics { addr: metrics_addr, source })?;
    let metrics_bound =
        metrics_listener.local_addr().map_err(|source| DaemonError::BindMetrics { addr: metrics_addr, source })?;
    tracing::info!(%addr, "admin endpoint listening on http://{addr}");
    tracing::info!(addr = %metrics_bound, "metrics endpoint listening on http://{metrics_bound}");
    if let Some(ready) = ready {
        let _ = ready.send(Ready { admin_addr: addr, metrics_addr: metrics_bound });
    }
    let (stop_tasks, tasks_stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    if let Some(client) = kube_client {
        let leadership = if leader.no_leader_election {
            crate::leader::Leadership::always()
        } else {
            let election = crate::config::election(&leader);
            let (leadership, task) = crate::leader::elect(client.clone(), election, tasks_stopped.clone());
            tasks.push(task);
            leadership
        };
        health.set_leadership(leadership.clone());
        // One Azure client for both controllers: one token cache per identity, one HTTP pool.
        let assertions = std::sync::Arc::new(crate::tls::kubeio::TokenRequests(client.clone()));
        let azure_client = std::sync::Arc::new(
            routewarden_azure::AzureClient::new(azure.cloud.clone(), azure.http.clone(), assertions)
                .with_managed_identity_endpoint(azure.managed_identity.clone())
                .with_observer(metrics.clone()),
        );
        let settings = crate::config::tls_settings(&tls, &azure);
        let ctx = crate::Context {
            client,
            journal: journal.clone(),
            azure: azure_client,
            metrics: metrics.clone(),
            leadership,
            health: health.clone(),
        };
        let ca_settings = crate::ca::CaSettings::from_tls(&settings);
        let (tls_tasks, tls_kube) = crate::tls::start(&ctx, settings, tasks_stopped.clone());
        tasks.extend(tls_tasks);
        tracing::info!(classes = ?tls.gateway_classes, poll_interval = ?tls.certificate_poll_interval, workers = tls.workers, "TLS controller started");
        let settings = crate::config::dns_settings(&tls, &dns, &azure);
        metrics.set_rate_limits(&settings.limits);
        tasks.extend(crate::dns::start(&ctx, settings, tasks_stopped.clone()));
        tracing::info!("DNS controller started");
        tasks.extend(crate::ca::start(&ctx, ca_settings, tls_kube, tasks_stopped.clone()));
        tracing::info!("Istio CA controller started");
    }
    let telemetry_routes = crate::health::router(metrics.clone(), journal.clone(), health.clone());
    let metrics_server = {
        let mut stopped = tasks_stopped.clone();
        let app = telemetry_routes.clone();
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "metrics endpoint failed");
            }
        })
    };
    let (stop, mut stopped) = watch::channel(false);
    let signalled = async move {
        shutdown.await;
        let _ = stop.send(true);
        // Past this, connections still open after the signal are abandoned, not waited for.
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let serve = admin::serve(listener, journal.clone(), telemetry_routes, async move {
        let _ = stopped.wait_for(|s| *s).await;
    });
    tokio::select! {
        served = serve => served.map_err(DaemonError::ServeAdmin)?,
        () = signalled => tracing::warn!(grace = ?SHUTDOWN_GRACE, "admin connections still open after the grace period; closing anyway"),
    }
    tracing::info!("admin endpoint stopped");
    let _ = stop_tasks.send(true);
    // Workers finish the item in hand (its lease protects it if they cannot); the leader
    // releases its Lease so a follower takes over at once.
    let all = futures::future::join_all(tasks.into_iter().chain([metrics_server]));
    if tokio::time::timeout(Duration::from_secs(6), all).await.is_err() {
        tracing::warn!("some tasks did not stop within 6s");
    }

    tokio::task::spawn_blocking(move || journal.close())
        .await
        .map_err(|e| DaemonError::Task(e.to_string()))?
        .map_err(DaemonError::CloseJournal)?;
    tracing::info!(dir = %dir.display(), "journal closed");
    Ok(())
}
