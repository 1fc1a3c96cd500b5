//! routewarden end to end: the sandbox's Kubernetes API server and local Azure (one CA, Entra
//! trusting the API server's ServiceAccount issuer), and the daemon running in-process against
//! them exactly as `routewarden run` would — flags parsed by its own CLI. Tests and benchmarks
//! drive it through a kube-rs client and the local Azure admin API; the DNS tests share the
//! helpers of [`dns`].
//!
//! The daemon runs as it does in a cluster: as ServiceAccount `routewarden-system/routewarden`,
//! bound by the RBAC objects of `deploy/base` read from the repository ([`deploy_rbac_objects`]),
//! which the sandbox enforces. So every test also proves those rules sufficient; a call they do
//! not allow fails with 403 as it would on AKS. [`Rbac`] swaps in other rules or the admin.

use anyhow::{Context, bail};
use clap::Parser;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use routewarden_sandbox::kube::{KubeServer, KubeServerOptions};
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, Scenario};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::oneshot;

pub mod anchor;
pub mod bench;
pub mod dns;

pub use routewarden_sandbox_azure::scenario::seed000;

/// The seed's Key Vault certificate URI.
pub fn seed_certificate_uri() -> String {
    format!("https://{}.vault.azure.net/certificates/{}", seed000::VAULT, seed000::CERTIFICATE)
}

/// The namespace and name of routewarden's ServiceAccount in `deploy/base`.
pub const SERVICE_ACCOUNT: (&str, &str) = ("routewarden-system", "routewarden");

/// The kinds of `deploy/base` that make up routewarden's identity and permissions.
pub const RBAC_KINDS: [&str; 6] =
    ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];

/// Which Kubernetes identity the daemon runs as.
#[derive(Debug, Clone, Default)]
pub enum Rbac {
    /// ServiceAccount [`SERVICE_ACCOUNT`] bound by `deploy/base`'s RBAC objects.
    #[default]
    Deployed,
    /// The same ServiceAccount, bound by these objects instead (e.g. `deploy/base`'s with a rule
    /// removed, to show the rules are enforced).
    Objects(Vec<serde_json::Value>),
    /// The sandbox admin, which RBAC does not apply to.
    Admin,
}

/// The repository's root (this crate lives in `e2e/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Namespace, ServiceAccount and RBAC objects of `deploy/base`, in the order its
/// kustomization lists their files — read from the files themselves, so the tests run under
/// exactly what is shipped.
pub fn deploy_rbac_objects() -> anyhow::Result<Vec<serde_json::Value>> {
    let base = repo_root().join("deploy/base");
    let read = |name: &str| {
        let path = base.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("failed to read {}", path.display()))
    };
    let kustomization = routewarden_sandbox::demo::yaml_objects(&read("kustomization.yaml")?)?;
    let files: Vec<String> = kustomization
        .first()
        .and_then(|k| k["resources"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str())
        // Directories are other kustomizations (the CRDs); only files hold the base's objects.
        .filter(|r| r.ends_with(".yaml") || r.ends_with(".yml"))
        .map(str::to_owned)
        .collect();
    let mut objects = Vec::new();
    for file in files {
        for object in routewarden_sandbox::demo::yaml_objects(&read(&file)?)? {
            if RBAC_KINDS.contains(&object["kind"].as_str().unwrap_or_default()) {
                objects.push(object);
            }
        }
    }
    if objects.is_empty() {
        bail!("deploy/base holds no RBAC objects");
    }
    Ok(objects)
}

/// How to start an environment.
#[derive(Debug, Clone)]
pub struct Options {
    /// Extra `routewarden run` flags (e.g. `--hostname-policy warn`).
    pub daemon_flags: Vec<String>,
    /// Local Azure scenario; the seed's by default.
    pub scenario: Option<Scenario>,
    pub poll_interval: String,
    /// Start the daemon (benchmarks may start it later with [`Env::start_daemon`]).
    pub daemon: bool,
    /// The identity the daemon runs as; `deploy/base`'s by default.
    pub rbac: Rbac,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            daemon_flags: Vec::new(),
            scenario: None,
            poll_interval: "10s".into(),
            daemon: true,
            rbac: Rbac::Deployed,
        }
    }
}

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    stop: Option<oneshot::Sender<()>>,
    task: DaemonTask,
    pub admin: String,
    /// `http://ADDR` of `/metrics`, `/healthz`, `/readyz`.
    pub metrics: String,
}

impl Daemon {
    /// Whether the daemon has stopped on its own (it should only stop when told).
    pub fn finished(&self) -> bool {
        self.task.is_finished()
    }

    /// SIGTERM, in effect: stops the daemon and waits for it to close its journal.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?.map_err(anyhow::Error::msg)
    }
}

/// A daemon on its own runtime, as a separate pod would be.
#[derive(Debug)]
pub struct Replica {
    runtime: Option<tokio::runtime::Runtime>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<DaemonTask>,
    pub admin: String,
    pub metrics: String,
}

impl Replica {
    /// SIGKILL, in effect: the runtime and every task on it are dropped at once.
    pub fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }

    /// SIGTERM, in effect: a graceful stop (the Lease is released, the journal closed).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await?.map_err(anyhow::Error::msg)?;
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
        Ok(())
    }

    /// One sample of this replica's `/metrics` (the first series whose line starts with `name`).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let text = reqwest::get(format!("{}/metrics", self.metrics)).await.ok()?.text().await.ok()?;
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Kubernetes, Azure and (usually) the daemon.
pub struct Env {
    pub kube: KubeServer,
    pub azure: AzureSandbox,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
    pub daemon: Option<Daemon>,
    options: Options,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("kube", &self.kube.url()).field("daemon", &self.daemon).finish_non_exhaustive()
    }
}

impl Env {
    pub async fn start(options: Options) -> anyhow::Result<Self> {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir()?;
        let kube = KubeServer::start(KubeServerOptions {
            extra_crds: routewarden_sandbox::kube::crd::routewarden_crds(),
            gc_delay: Duration::from_millis(50),
            ..KubeServerOptions::default()
        })
        .await?;
        kube.write_files(dir.path())?;
        let mut config = AzureSandboxConfig::new(kube.ca_pem(), kube.ca().key_pem())
            .with_kubernetes_issuer(kube.url(), kube.ca_pem());
        if let Some(s) = options.scenario.clone() {
            config = config.with_scenario(s);
        }
        let azure = AzureSandbox::start(config).await?;
        let client = kube.client().await?;
        let objects = match &options.rbac {
            Rbac::Deployed => Some(deploy_rbac_objects()?),
            Rbac::Objects(objects) => Some(objects.clone()),
            Rbac::Admin => None,
        };
        let kubeconfig = match objects {
            Some(objects) => {
                routewarden_sandbox::demo::apply_objects(&client, &objects, "e2e")
                    .await
                    .context("failed to apply routewarden's RBAC")?;
                let (namespace, name) = SERVICE_ACCOUNT;
                kube.kubeconfig_for_token(&kube.service_account_token(namespace, name)?)
            }
            None => kube.kubeconfig_yaml(),
        };
        std::fs::write(dir.path().join("daemon.kubeconfig"), kubeconfig)?;
        let mut env = Env { kube, azure, client, dir, daemon: None, options };
        if env.options.daemon {
            env.start_daemon().await?;
        }
        Ok(env)
    }

    pub fn journal_dir(&self) -> PathBuf {
        self.dir.path().join("journal")
    }

    /// The `routewarden run` command line for this environment.
    pub fn daemon_args(&self) -> Vec<String> {
        self.daemon_args_for(&self.journal_dir())
    }

    /// [`Env::daemon_args`] with its own journal: another replica of the same deployment.
    pub fn daemon_args_for(&self, journal_dir: &std::path::Path) -> Vec<String> {
        let d = self.dir.path();
        let mut args: Vec<String> = vec![
            "routewarden".into(),
            "run".into(),
            "--journal-dir".into(),
            journal_dir.display().to_string(),
            "--admin-addr".into(),
            "127.0.0.1:0".into(),
            "--metrics-addr".into(),
            "127.0.0.1:0".into(),
            "--kubeconfig".into(),
            d.join("daemon.kubeconfig").display().to_string(),
            "--tenant-id".into(),
            seed000::TENANT.into(),
            "--azure-extra-ca".into(),
            d.join("ca.crt").display().to_string(),
            "--certificate-poll-interval".into(),
            self.options.poll_interval.clone(),
        ];
        for o in &self.azure.endpoints().host_overrides {
            args.push("--azure-host-override".into());
            args.push(format!("{}=127.0.0.1:{}", o.host, o.port));
        }
        args.push("--managed-identity-endpoint".into());
        args.push(self.azure.endpoints().managed_identity_endpoint.clone());
        args.push("--leader-election-namespace".into());
        args.push(self.lease_namespace().into());
        args.extend(self.options.daemon_flags.iter().cloned());
        args
    }

    /// `routewarden run` for this environment as a separate process: `bin` is the daemon binary
    /// (tests pass `env!("CARGO_BIN_EXE_routewarden-child")`), with its own journal.
    pub fn daemon_command(
        &self,
        bin: impl AsRef<std::ffi::OsStr>,
        journal_dir: &std::path::Path,
    ) -> std::process::Command {
        let mut command = std::process::Command::new(bin);
        command.args(&self.daemon_args_for(journal_dir)[1..]).stdin(std::process::Stdio::null());
        command
    }

    /// Where the daemon's leader Lease is: its own namespace, as in a deployment (its RBAC allows
    /// leases there only); `default` when it runs as the admin.
    pub fn lease_namespace(&self) -> &'static str {
        match self.options.rbac {
            Rbac::Admin => "default",
            Rbac::Deployed | Rbac::Objects(_) => SERVICE_ACCOUNT.0,
        }
    }

    /// Starts the daemon and waits until its admin endpoint listens.
    pub async fn start_daemon(&mut self) -> anyhow::Result<()> {
        let (stop, task, ready) = spawn_daemon(&tokio::runtime::Handle::current(), self.daemon_args()).await?;
        self.daemon = Some(Daemon {
            stop: Some(stop),
            task,
            admin: format!("http://{}", ready.admin_addr),
            metrics: format!("http://{}", ready.metrics_addr),
        });
        Ok(())
    }

    /// Starts a replica on its own runtime with its own journal in `journal_dir` and `extra`
    /// flags, and waits until its endpoints listen. [`Replica::kill`] ends it as SIGKILL would:
    /// every task stops where it is, nothing is released or flushed.
    pub async fn start_replica(&self, journal_dir: &std::path::Path, extra: &[&str]) -> anyhow::Result<Replica> {
        let mut args = self.daemon_args_for(journal_dir);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let (stop, task, ready) = spawn_daemon(runtime.handle(), args).await?;
        Ok(Replica {
            runtime: Some(runtime),
            stop: Some(stop),
            task: Some(task),
            admin: format!("http://{}", ready.admin_addr),
            metrics: format!("http://{}", ready.metrics_addr),
        })
    }

    pub async fn stop_daemon(&mut self) -> anyhow::Result<()> {
        match self.daemon.take() {
            Some(d) => d.stop().await,
            None => Ok(()),
        }
    }

    /// Server-side applies every document of a multi-document YAML text (like `kubectl apply
    /// --server-side`), in order.
    pub async fn apply_yaml(&self, yaml: &str) -> anyhow::Result<()> {
        apply_yaml(&self.client, yaml).await
    }

    pub fn gateways(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &gateway_resource())
    }

    pub fn secrets(&self, namespace: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), namespace)
    }

    pub fn spcs(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &spc_resource())
    }

    /// The Events recorded for a Gateway, as (type, reason, message).
    pub async fn gateway_events(
        &self,
        namespace: &str,
        gateway: &str,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(self.client.clone(), namespace);
        let list = events.list(&Default::default()).await?;
        Ok(list
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.kind.as_deref() == Some("Gateway")
                    && e.involved_object.name.as_deref() == Some(gateway)
            })
            .map(|e| (e.type_.unwrap_or_default(), e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect())
    }

    /// routewarden's condition on a listener: (status, reason, message).
    pub async fn listener_condition(
        &self,
        namespace: &str,
        gateway: &str,
        listener: &str,
    ) -> Option<(String, String, String)> {
        let gw = self.gateways(namespace).get(gateway).await.ok()?;
        let c = gw
            .data
            .pointer("/status/listeners")?
            .as_array()?
            .iter()
            .find(|l| l["name"] == listener)?
            .get("conditions")?
            .as_array()?
            .iter()
            .find(|c| c["type"] == routewarden::tls::CONDITION_TYPE)?
            .clone();
        Some((
            c["status"].as_str()?.to_owned(),
            c["reason"].as_str()?.to_owned(),
            c["message"].as_str().unwrap_or_default().to_owned(),
        ))
    }

    /// The kinds of request the API server refused routewarden's ServiceAccount so far.
    pub fn refused(&self) -> Vec<routewarden_sandbox::kube::rbac::Access> {
        let (namespace, name) = SERVICE_ACCOUNT;
        let user = format!("system:serviceaccount:{namespace}:{name}");
        self.kube.access_log().into_iter().filter(|a| a.user == user && !a.allowed).collect()
    }

    /// Stops everything. Under `deploy/base`'s RBAC, fails the test if the API server refused the
    /// daemon anything: those rules must be enough for whatever a test makes it do.
    pub async fn shutdown(mut self) {
        let _ = self.stop_daemon().await;
        let refused = self.refused();
        self.azure.shutdown().await;
        self.kube.shutdown().await;
        if matches!(self.options.rbac, Rbac::Deployed) {
            assert!(refused.is_empty(), "deploy/base's RBAC refused routewarden: {refused:#?}");
        }
    }
}

/// Server-side applies every document of a multi-document YAML text with `client`, in order.
pub async fn apply_yaml(client: &kube::Client, yaml: &str) -> anyhow::Result<()> {
    let objects = routewarden_sandbox::demo::yaml_objects(yaml)?;
    routewarden_sandbox::demo::apply_objects(client, &objects, "e2e").await?;
    Ok(())
}

type DaemonTask = tokio::task::JoinHandle<Result<(), String>>;

/// Parses `args` as `routewarden run` would and runs the daemon on `runtime` until the returned
/// sender fires (or is dropped); returns once its endpoints listen.
async fn spawn_daemon(
    runtime: &tokio::runtime::Handle,
    args: Vec<String>,
) -> anyhow::Result<(oneshot::Sender<()>, DaemonTask, routewarden::daemon::Ready)> {
    let cli = routewarden::cli::Cli::try_parse_from(args)?;
    let routewarden::cli::Command::Run(args) = cli.command else { bail!("not a run command") };
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, is_ready) = oneshot::channel();
    let task = runtime.spawn(async move {
        routewarden::daemon::run_reporting(
            args,
            async move {
                let _ = stopped.await;
            },
            Some(ready),
        )
        .await
        .map_err(|e| e.to_string())
    });
    let ready = is_ready.await.context("the daemon stopped before it was ready")?;
    Ok((stop, task, ready))
}

pub fn gateway_resource() -> ApiResource {
    routewarden::tls::sources::gateway_resource()
}

pub fn spc_resource() -> ApiResource {
    routewarden::tls::sources::spc_resource()
}

/// Polls `check` until it yields `Some`, for up to `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Secret's `tls.crt` leaf: (subject, SANs, notAfter).
pub fn leaf_of(secret: &Secret) -> Option<(String, Vec<String>, i64)> {
    let pem = secret.data.as_ref()?.get("tls.crt")?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem.0).ok()?;
    let cert = block.parse_x509().ok()?;
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some((cert.subject().to_string(), sans, cert.validity().not_after.timestamp()))
}
