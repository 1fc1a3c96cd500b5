//! `routewarden-sandbox`: `up` runs the local Kubernetes API server, local Azure (Entra, ARM DNS,
//! Key Vault) from one CA and routewarden itself against them until interrupted, writing a
//! kubeconfig, the CA, `endpoints.json` and `scenario.json` so other tools can find them; `demo`
//! does the same in a fresh directory, then walks through seed 000's TLS and DNS examples and
//! shows what routewarden made of them; `azure …` does to a running sandbox what users do in the portal or with
//! the Azure CLI (rotate a certificate, change role assignments, …).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use routewarden_sandbox::kube::KubeServerOptions;
use routewarden_sandbox::up::{DaemonOptions, Sandbox, UpOptions};
use routewarden_sandbox_azure::admin::AdminClient;
use routewarden_sandbox_azure::{FaultConfig, Scenario};

/// How long `demo` waits for each step: routewarden syncing the walkthrough's certificates, a
/// Gateway being programmed, a DNS resource's records being published.
const DEMO_TIMEOUT: Duration = Duration::from_secs(60);

/// Local Kubernetes API server and local Azure for routewarden.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the sandbox and routewarden against it, and run until Ctrl-C.
    Up(UpArgs),
    /// Start the sandbox and routewarden, apply seed 000's TLS walkthrough and report the listener
    /// Secrets routewarden syncs from Key Vault, then its DNS walkthrough and report the zone's
    /// record sets, the DNS resources' status and the stale report; run until Ctrl-C.
    Demo(DemoArgs),
    /// Change local Azure of a running sandbox, as a user would in the portal or CLI.
    Azure {
        /// The directory `up` was started with.
        #[arg(long, env = "ROUTEWARDEN_SANDBOX_DIR")]
        dir: PathBuf,
        #[command(subcommand)]
        action: AzureAction,
    },
}

#[derive(Debug, clap::Args)]
struct UpArgs {
    /// Directory for kubeconfig, ca.crt, endpoints.json, scenario.json, the saved state and
    /// routewarden's journal.
    #[arg(long, env = "ROUTEWARDEN_SANDBOX_DIR")]
    dir: PathBuf,
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// Local Azure scenario (YAML: tenants, zones, vaults, identities, role assignments);
    /// the default mirrors seed 000.
    #[arg(long, value_name = "FILE", env = "ROUTEWARDEN_SANDBOX_SCENARIO")]
    scenario: Option<PathBuf>,
    /// Leave local Azure out (Kubernetes only; implies --no-daemon).
    #[arg(long)]
    no_azure: bool,
    /// Leave routewarden out (to run it yourself with the flags `up` prints).
    #[arg(long)]
    no_daemon: bool,
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Directory for the sandbox's files (default: a new directory under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also run the Istio plug-in CA walkthrough (seed 004): four Key Vault secrets, an istiod
    /// Deployment and an IstioPluginCA, then show cacerts and the status.
    #[arg(long)]
    istio_ca: bool,
    #[command(flatten)]
    sandbox: SandboxArgs,
}

/// What `up` and `demo` share.
#[derive(Debug, clap::Args)]
struct SandboxArgs {
    /// Port of the Kubernetes API server on 127.0.0.1 (0 = any free port).
    #[arg(long, env = "ROUTEWARDEN_SANDBOX_KUBE_PORT", default_value_t = 0)]
    kube_port: u16,
    /// Events kept for watches to resume from; older resourceVersions get 410 Expired.
    #[arg(long, default_value_t = 10_000)]
    watch_window: usize,
    /// Keep objects in memory only; by default they are saved in DIR and restored on restart.
    #[arg(long)]
    in_memory: bool,
    /// Also install the CustomResourceDefinitions in these directories (routewarden's own CRDs
    /// are always installed).
    #[arg(long = "crds", env = "ROUTEWARDEN_SANDBOX_CRDS", value_delimiter = ',')]
    crd_dirs: Vec<PathBuf>,
    /// How often routewarden checks each Key Vault certificate for a new version (its
    /// --certificate-poll-interval; at least 10s).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = poll_interval)]
    poll_interval: String,
}

/// routewarden's own check of `--certificate-poll-interval`, so that a value it would refuse is a
/// usage error here, before anything starts.
fn poll_interval(value: &str) -> Result<String, String> {
    use clap::Parser as _;
    match routewarden::cli::Cli::try_parse_from(["routewarden", "run", "--certificate-poll-interval", value]) {
        Ok(_) => Ok(value.to_string()),
        Err(e) => Err(std::error::Error::source(&e).map_or_else(|| e.kind().to_string(), ToString::to_string)),
    }
}

impl UpArgs {
    fn into_options(self) -> anyhow::Result<UpOptions> {
        let UpArgs { dir, sandbox, scenario, no_azure, no_daemon } = self;
        let SandboxArgs { kube_port, watch_window, in_memory, crd_dirs, poll_interval } = sandbox;
        let mut extra_crds = routewarden_sandbox::kube::crd::routewarden_crds();
        for crd_dir in &crd_dirs {
            extra_crds.extend(routewarden_sandbox::kube::crd::load_dir(crd_dir)?);
        }
        let kube = KubeServerOptions {
            port: kube_port,
            watch_window,
            bookmark_interval: Duration::from_secs(60),
            state_dir: (!in_memory).then(|| dir.join("state")),
            extra_crds,
            ..KubeServerOptions::default()
        };
        let scenario = match &scenario {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("--scenario {}: {e}", path.display()))?;
                Some(Scenario::from_yaml(&text).map_err(|e| anyhow::anyhow!("--scenario {}: {e}", path.display()))?)
            }
            None => None,
        };
        Ok(UpOptions {
            dir,
            kube,
            azure: !no_azure,
            scenario,
            daemon: (!no_azure && !no_daemon).then_some(DaemonOptions { certificate_poll_interval: poll_interval }),
        })
    }
}

#[derive(Debug, Subcommand)]
enum AzureAction {
    /// Create a new version of a Key Vault certificate (prints the version).
    RotateCertificate { vault: String, certificate: String },
    /// Disable (or with --enable, enable) one version of a certificate.
    DisableVersion {
        vault: String,
        certificate: String,
        version: String,
        #[arg(long)]
        enable: bool,
    },
    /// Assign a built-in role: `role-add PRINCIPAL_ID "Key Vault Secrets User" vault/kv-demo`.
    RoleAdd { principal: String, role: String, scope: String },
    /// Remove a role assignment by id.
    RoleRemove { id: String },
    /// List role assignments.
    Roles,
    /// Add a federated identity credential to a managed identity.
    FederatedCredentialAdd {
        identity: String,
        name: String,
        /// `system:serviceaccount:NAMESPACE:NAME`.
        subject: String,
        /// Defaults to the sandbox's Kubernetes issuer.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Remove a federated identity credential.
    FederatedCredentialRemove { identity: String, name: String },
    /// List the record sets of a zone (by name).
    Records { zone: String },
    /// Replace the fault settings (latency, errors, rate limits) with a JSON document.
    Faults {
        /// JSON file, or `-` for standard input.
        file: PathBuf,
    },
    /// Calls served so far, by service, operation and status.
    Calls,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // routewarden runs in this process and logs through this subscriber; its startup lines (and
    // any warning) are worth seeing without RUST_LOG.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,routewarden=info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    match Cli::parse().command {
        Command::Up(args) => up(args).await.map(|()| ExitCode::SUCCESS),
        Command::Demo(args) => demo(args).await,
        Command::Azure { dir, action } => azure(&dir, action).await.map(|()| ExitCode::SUCCESS),
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    // Installed before anything starts, so Ctrl-C during start-up still stops cleanly.
    let interrupted = routewarden::daemon::shutdown_signal()?;
    let sandbox = Sandbox::start(args.into_options()?).await?;
    print_endpoints(&sandbox);
    println!();
    println!("  export KUBECONFIG={}", sandbox.dir().join("kubeconfig").display());
    println!("  kubectl get gatewayclasses");
    if let Some(daemon) = sandbox.daemon() {
        println!("  routewarden journal certs --admin {}", daemon.admin_url());
    }
    println!();
    println!("Press Ctrl-C to stop.");
    sandbox.run_until(interrupted).await
}

/// Fails (exit status 1) when routewarden did not sync the certificates or publish the DNS
/// records, but only once the user has stopped it: the error was printed when it happened, and the
/// sandbox stays up to look into it.
async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    use routewarden_sandbox::demo;
    let DemoArgs { dir, sandbox, istio_ca } = args;
    let dir = match dir {
        Some(dir) => dir,
        None => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let dir = std::env::temp_dir().join(format!("routewarden-demo-{}", &id[..8]));
            std::fs::create_dir_all(&dir)?;
            dir
        }
    };
    let interrupted = routewarden::daemon::shutdown_signal()?;
    let mut interrupted = std::pin::pin!(interrupted);
    let options = UpArgs { dir, sandbox, scenario: None, no_azure: false, no_daemon: false }.into_options()?;
    let sandbox = Sandbox::start(options).await?;
    print_endpoints(&sandbox);
    println!();
    let client = sandbox.kube().client().await?;
    let (Some(azure), Some(daemon)) = (sandbox.azure(), sandbox.daemon()) else {
        anyhow::bail!("the demo needs local Azure and routewarden running in the sandbox");
    };
    let azure = azure.admin();
    let daemon_admin = daemon.admin_url();
    let tls = async {
        println!("Applying seed 000's TLS walkthrough (server-side, as {}):", demo::FIELD_MANAGER);
        for applied in demo::apply_walkthrough(&client).await? {
            println!("  {applied}");
        }
        println!();
        println!(
            "Waiting up to {}s for routewarden to sync the Key Vault certificate into each listener's Secret…",
            DEMO_TIMEOUT.as_secs()
        );
        demo::wait_and_report(&client, DEMO_TIMEOUT).await
    };
    let walkthrough = async {
        let tls = tls.await;
        match &tls {
            Ok(report) => println!("\n{report}"),
            Err(e) => eprintln!("\nroutewarden-sandbox demo: {e:#}\n"),
        }
        // The DNS steps do not depend on the certificates: run them whatever the TLS part showed.
        let dns = demo::dns::run(&client, &azure, &daemon_admin, DEMO_TIMEOUT, |line| println!("{line}")).await;
        if let Err(e) = &dns {
            eprintln!("\nroutewarden-sandbox demo: {e:#}");
        }
        let ca = match istio_ca {
            true => {
                println!();
                let ca = demo::istio_ca::run(&client, &azure, DEMO_TIMEOUT, |line| println!("{line}")).await;
                if let Err(e) = &ca {
                    eprintln!("\nroutewarden-sandbox demo: {e:#}");
                }
                ca.is_ok()
            }
            false => true,
        };
        tls.is_ok() && dns.is_ok() && ca
    };
    let succeeded = tokio::select! {
        () = &mut interrupted => return sandbox.shutdown().await.map(|()| ExitCode::FAILURE),
        succeeded = walkthrough => succeeded,
    };
    if !succeeded {
        println!("\nThe sandbox keeps running so you can look around.");
    }
    let dir = sandbox.dir().display().to_string();
    println!();
    println!("Next:");
    println!("  export KUBECONFIG={dir}/kubeconfig");
    println!("  kubectl get secretproviderclass,secret -n app-a");
    println!("  kubectl get gateway a-gateway -n app-a -o yaml");
    println!("  routewarden-sandbox azure --dir {dir} rotate-certificate kv-demo approuting-demo-cert");
    println!("  cargo run -p routewarden -- journal certs --admin {daemon_admin}");
    println!("  kubectl get clusterexternaldns,externaldns -A");
    println!("  kubectl describe externaldns demo-ns-dns -n app-a");
    println!("  kubectl delete externaldns demo-ns-dns -n app-a   # record set c stays (deletionPolicy Retain)");
    println!("  routewarden-sandbox azure --dir {dir} records example.com");
    println!("  cargo run -p routewarden -- journal records --admin {daemon_admin}");
    println!("  cargo run -p routewarden -- journal stale --admin {daemon_admin}");
    if istio_ca {
        println!("  kubectl get ipca; kubectl get secret cacerts -n aks-istio-system -o yaml");
    }
    println!();
    println!("Press Ctrl-C to stop.");
    sandbox.run_until(interrupted).await?;
    Ok(if succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Where everything listens.
fn print_endpoints(sandbox: &Sandbox) {
    let dir = sandbox.dir();
    let kube = sandbox.kube();
    println!("routewarden sandbox is up in {}", dir.display());
    println!("  Kubernetes API: {}", kube.url());
    println!("  CA:             {}", dir.join("ca.crt").display());
    println!("  endpoints:      {}", dir.join("endpoints.json").display());
    if let Some(azure) = sandbox.azure() {
        let e = azure.endpoints();
        println!("  Entra:          {}", e.authority_host);
        println!("  ARM:            {}", e.resource_manager);
        for (name, v) in &e.vaults {
            println!("  Key Vault {name}: {}", v.url);
        }
        println!("  scenario:       {}", dir.join("scenario.json").display());
        match sandbox.daemon() {
            Some(daemon) => {
                println!("  routewarden:    {} (running in this process)", daemon.admin_url());
                println!("  metrics:        {}", daemon.metrics_url());
                println!("  journal:        {}", daemon.journal_dir().display());
            }
            None => {
                let overrides: Vec<String> =
                    e.host_overrides.iter().map(|o| format!("{}=127.0.0.1:{}", o.host, o.port)).collect();
                println!(
                    "  routewarden:    --kubeconfig {} --tenant-id {} --azure-extra-ca {} --azure-host-override {} --managed-identity-endpoint {}",
                    dir.join("kubeconfig").display(),
                    azure.scenario_json()["tenantId"].as_str().unwrap_or_default(),
                    dir.join("ca.crt").display(),
                    overrides.join(","),
                    e.managed_identity_endpoint
                );
            }
        }
    }
}

async fn azure(dir: &std::path::Path, action: AzureAction) -> anyhow::Result<()> {
    let endpoints: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("endpoints.json"))
            .map_err(|e| anyhow::anyhow!("no running sandbox in {}: {e}", dir.display()))?,
    )?;
    let admin = endpoints["azure"]["admin"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("the sandbox in {} runs without local Azure", dir.display()))?;
    let client = AdminClient::new(admin, &std::fs::read_to_string(dir.join("ca.crt"))?)?;
    match action {
        AzureAction::RotateCertificate { vault, certificate } => {
            println!("{}", client.rotate_certificate(&vault, &certificate).await?);
        }
        AzureAction::DisableVersion { vault, certificate, version, enable } => {
            client.set_version_enabled(&vault, &certificate, &version, enable).await?;
        }
        AzureAction::RoleAdd { principal, role, scope } => {
            print_json(&client.add_role_assignment(&principal, &role, &scope).await?);
        }
        AzureAction::RoleRemove { id } => client.remove_role_assignment(&id).await?,
        AzureAction::Roles => print_json(&client.role_assignments().await?),
        AzureAction::FederatedCredentialAdd { identity, name, subject, issuer } => {
            client.add_federated_credential(&identity, &name, issuer.as_deref(), &subject, None).await?;
        }
        AzureAction::FederatedCredentialRemove { identity, name } => {
            client.remove_federated_credential(&identity, &name).await?;
        }
        AzureAction::Records { zone } => print_json(&client.list_record_sets(&zone).await?),
        AzureAction::Faults { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)?
            };
            let config: FaultConfig = serde_json::from_str(&text)?;
            print_json(&client.set_faults(&config).await?);
        }
        AzureAction::Calls => print_json(&client.calls().await?),
    }
    Ok(())
}

/// Pretty JSON for whatever an admin call answers.
fn print_json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
