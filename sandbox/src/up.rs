//! Everything `routewarden-sandbox up` (and `demo`) runs, started in dependency order and stopped
//! in reverse: the Kubernetes API emulator, local Azure under the same CA (its Entra trusts the
//! emulator's ServiceAccount tokens), and routewarden itself, in-process, pointed at both through
//! its ordinary `run` flags. [`Sandbox::start`] writes `DIR/kubeconfig` and `DIR/ca.crt` first,
//! then `DIR/scenario.json`, and `DIR/endpoints.json` last and atomically, so a tool that waits
//! for that file finds everything listening.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, Scenario};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::kube::{KubeServer, KubeServerOptions};

/// What to start.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Where the files (and, with `kube.state_dir`, the saved state) go.
    pub dir: PathBuf,
    /// The Kubernetes API emulator.
    pub kube: KubeServerOptions,
    /// Run local Azure.
    pub azure: bool,
    /// Local Azure's scenario (`None`: seed 000's).
    pub scenario: Option<Scenario>,
    /// routewarden, run against the sandbox; needs local Azure.
    pub daemon: Option<DaemonOptions>,
}

/// How routewarden runs inside the sandbox.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// `--certificate-poll-interval`, as routewarden parses it (`2m`, `30s`; at least 10s).
    pub certificate_poll_interval: String,
}

/// routewarden running in this process.
#[derive(Debug)]
pub struct Daemon {
    admin_addr: SocketAddr,
    metrics_addr: SocketAddr,
    journal_dir: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), routewarden::daemon::DaemonError>>,
    /// The task's outcome has been taken (by [`Self::ended`]); a JoinHandle yields it only once.
    joined: bool,
}

impl Daemon {
    /// Starts routewarden with `flags` (after `routewarden run`) and waits until its admin
    /// endpoint listens.
    pub async fn start(flags: &[String], journal_dir: PathBuf) -> anyhow::Result<Self> {
        use clap::Parser as _;
        let cli = routewarden::cli::Cli::try_parse_from(
            ["routewarden", "run"].into_iter().map(String::from).chain(flags.iter().cloned()),
        )
        .map_err(|e| {
            // clap's first line is the reason; the rest is usage advice for a command line nobody typed.
            let text = e.to_string();
            let reason = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
            anyhow::anyhow!("routewarden run {}: {reason}", flags.join(" "))
        })?;
        let routewarden::cli::Command::Run(args) = cli.command else {
            anyhow::bail!("routewarden run did not parse as the run command");
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            // A dropped sender stops the daemon too, so it never outlives its handle.
            let _ = stopped.await;
        };
        let task = tokio::spawn(routewarden::daemon::run_reporting(args, shutdown, Some(ready_tx)));
        match ready_rx.await {
            Ok(ready) => Ok(Self {
                admin_addr: ready.admin_addr,
                metrics_addr: ready.metrics_addr,
                journal_dir,
                stop,
                task,
                joined: false,
            }),
            // It ended before listening: its own error says why.
            Err(_) => match task.await {
                Ok(Err(e)) => Err(anyhow::Error::new(e).context("routewarden failed to start")),
                Ok(Ok(())) => Err(anyhow::anyhow!("routewarden stopped before its admin endpoint listened")),
                Err(e) => Err(anyhow::Error::new(e).context("routewarden's task failed")),
            },
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    /// `http://127.0.0.1:PORT/metrics` on the metrics endpoint (which also serves `/healthz` and
    /// `/readyz`).
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr)
    }

    /// The journal directory.
    pub fn journal_dir(&self) -> &Path {
        &self.journal_dir
    }

    /// Completes when routewarden stops on its own (it should not, before [`Self::stop`]).
    pub async fn ended(&mut self) -> anyhow::Result<()> {
        let outcome = (&mut self.task).await;
        self.joined = true;
        match outcome {
            Ok(Ok(())) => Err(anyhow::anyhow!("routewarden stopped unexpectedly")),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("routewarden stopped")),
            Err(e) => Err(anyhow::Error::new(e).context("routewarden's task failed")),
        }
    }

    /// Asks routewarden to shut down and waits until it has closed its journal.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        if self.joined {
            return Ok(());
        }
        self.task.await.context("routewarden's task failed")?.context("routewarden failed while stopping")
    }
}

/// A running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    dir: PathBuf,
    kube: KubeServer,
    azure: Option<AzureSandbox>,
    daemon: Option<Daemon>,
    endpoints: Value,
}

impl Sandbox {
    /// Starts everything `options` asks for and writes the sandbox's files into `options.dir`.
    pub async fn start(options: UpOptions) -> anyhow::Result<Self> {
        let UpOptions { dir, kube, azure, scenario, daemon } = options;
        let kube = KubeServer::start(kube).await?;
        kube.write_files(&dir)?;
        let azure = match azure {
            false => None,
            true => {
                // One CA for everything: Azure's server certificate is issued by the Kubernetes
                // CA, and Entra validates ServiceAccount tokens against the API server's JWKS.
                let mut config = AzureSandboxConfig::new(kube.ca_pem(), kube.ca().key_pem())
                    .with_kubernetes_issuer(kube.url(), kube.ca_pem());
                if let Some(scenario) = scenario {
                    config = config.with_scenario(scenario);
                }
                Some(AzureSandbox::start(config).await?)
            }
        };
        let mut endpoints = json!({"kubernetes": {"url": kube.url(), "caFile": dir.join("ca.crt"), "kubeconfig": dir.join("kubeconfig")}});
        let mut started_daemon = None;
        if let Some(azure) = &azure {
            endpoints["azure"] = serde_json::to_value(azure.endpoints())?;
            std::fs::write(dir.join("scenario.json"), serde_json::to_string_pretty(&azure.scenario_json())?)?;
            if let Some(options) = &daemon {
                let journal_dir = dir.join("journal");
                let flags = daemon_flags(&dir, &journal_dir, azure, options);
                let started = Daemon::start(&flags, journal_dir).await?;
                endpoints["routewarden"] = json!({
                    "admin": started.admin_url(),
                    "metrics": started.metrics_url(),
                    "journalDir": started.journal_dir(),
                });
                started_daemon = Some(started);
            }
        }
        // Written last and atomically: tools may wait for this file to know the sandbox is up.
        std::fs::write(dir.join("endpoints.json.tmp"), serde_json::to_string_pretty(&endpoints)?)?;
        std::fs::rename(dir.join("endpoints.json.tmp"), dir.join("endpoints.json"))?;
        Ok(Self { dir, kube, azure, daemon: started_daemon, endpoints })
    }

    /// The directory of the sandbox's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Kubernetes API emulator.
    pub fn kube(&self) -> &KubeServer {
        &self.kube
    }

    /// Local Azure, unless left out.
    pub fn azure(&self) -> Option<&AzureSandbox> {
        self.azure.as_ref()
    }

    /// routewarden, unless left out.
    pub fn daemon(&self) -> Option<&Daemon> {
        self.daemon.as_ref()
    }

    /// What `endpoints.json` says.
    pub fn endpoints(&self) -> &Value {
        &self.endpoints
    }

    /// Runs until `interrupt` completes (or routewarden stops on its own, which is an error),
    /// then shuts everything down.
    pub async fn run_until(mut self, interrupt: impl Future<Output = ()>) -> anyhow::Result<()> {
        let outcome = match &mut self.daemon {
            Some(daemon) => tokio::select! {
                () = interrupt => Ok(()),
                ended = daemon.ended() => ended,
            },
            None => {
                interrupt.await;
                Ok(())
            }
        };
        let stopped = self.shutdown().await;
        outcome.and(stopped)
    }

    /// Stops routewarden first (it closes its journal and stops calling the others), then local
    /// Azure, then the Kubernetes API emulator (which saves its state).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let Self { kube, azure, daemon, .. } = self;
        let stopped = match daemon {
            Some(d) => d.stop().await,
            None => Ok(()),
        };
        if let Some(azure) = azure {
            azure.shutdown().await;
        }
        kube.shutdown().await;
        stopped
    }
}

/// `routewarden run` flags that point it at this sandbox: its kubeconfig, local Azure's tenant,
/// CA, host names and instance metadata token endpoint, and the admin and metrics endpoints on
/// free loopback ports.
fn daemon_flags(dir: &Path, journal_dir: &Path, azure: &AzureSandbox, options: &DaemonOptions) -> Vec<String> {
    let scenario = azure.scenario_json();
    let tenant =
        scenario["tenantId"].as_str().unwrap_or(routewarden_sandbox_azure::scenario::seed000::TENANT).to_string();
    let mut flags: Vec<String> = [
        "--journal-dir",
        &journal_dir.display().to_string(),
        "--admin-addr",
        "127.0.0.1:0",
        "--metrics-addr",
        "127.0.0.1:0",
        "--kubeconfig",
        &dir.join("kubeconfig").display().to_string(),
        "--tenant-id",
        &tenant,
        "--azure-extra-ca",
        &dir.join("ca.crt").display().to_string(),
        "--certificate-poll-interval",
        &options.certificate_poll_interval,
    ]
    .map(String::from)
    .to_vec();
    for o in &azure.endpoints().host_overrides {
        flags.push("--azure-host-override".into());
        flags.push(format!("{}=127.0.0.1:{}", o.host, o.port));
    }
    flags.push("--managed-identity-endpoint".into());
    flags.push(azure.endpoints().managed_identity_endpoint.clone());
    flags
}
