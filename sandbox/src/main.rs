//! `routewarden-sandbox`: `up` runs the local Kubernetes API server and local Azure (Entra, ARM
//! DNS, Key Vault) from one CA until interrupted, writing a kubeconfig, the CA, `endpoints.json`
//! and `scenario.json` so other tools can find them; `azure …` does to a running sandbox what users
//! do in the portal or with the Azure CLI (rotate a certificate, change role assignments, …).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use routewarden_sandbox::kube::{KubeServer, KubeServerOptions};
use routewarden_sandbox_azure::admin::AdminClient;
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, FaultConfig, Scenario};

/// Local Kubernetes API server and local Azure for routewarden.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the sandbox and run until Ctrl-C.
    Up(UpArgs),
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
    /// Directory for kubeconfig, ca.crt, endpoints.json, scenario.json and the saved state.
    #[arg(long, env = "ROUTEWARDEN_SANDBOX_DIR")]
    dir: PathBuf,
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
    /// Local Azure scenario (YAML: tenants, zones, vaults, identities, role assignments);
    /// the default mirrors seed 000.
    #[arg(long, value_name = "FILE", env = "ROUTEWARDEN_SANDBOX_SCENARIO")]
    scenario: Option<PathBuf>,
    /// Leave local Azure out (Kubernetes only).
    #[arg(long)]
    no_azure: bool,
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
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Up(args) => up(args).await,
        Command::Azure { dir, action } => azure(&dir, action).await,
    }
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let UpArgs { dir, kube_port, watch_window, in_memory, crd_dirs, scenario, no_azure } = args;
    let state_dir = (!in_memory).then(|| dir.join("state"));
    let mut extra_crds = routewarden_sandbox::kube::crd::routewarden_crds();
    for crd_dir in &crd_dirs {
        extra_crds.extend(routewarden_sandbox::kube::crd::load_dir(crd_dir)?);
    }
    let options = KubeServerOptions {
        port: kube_port,
        watch_window,
        bookmark_interval: Duration::from_secs(60),
        state_dir,
        extra_crds,
        ..KubeServerOptions::default()
    };
    let kube = KubeServer::start(options).await?;
    kube.write_files(&dir)?;
    let azure = if no_azure {
        None
    } else {
        // One CA for everything: Azure's server certificate is issued by the Kubernetes CA, and
        // Entra validates ServiceAccount tokens against the API server's JWKS (its issuer).
        let mut config = AzureSandboxConfig::new(kube.ca_pem(), kube.ca().key_pem())
            .with_kubernetes_issuer(kube.url(), kube.ca_pem());
        if let Some(path) = &scenario {
            let text =
                std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("--scenario {}: {e}", path.display()))?;
            config = config.with_scenario(
                Scenario::from_yaml(&text).map_err(|e| anyhow::anyhow!("--scenario {}: {e}", path.display()))?,
            );
        }
        Some(AzureSandbox::start(config).await?)
    };
    let mut endpoints = serde_json::json!({"kubernetes": {"url": kube.url(), "caFile": dir.join("ca.crt"), "kubeconfig": dir.join("kubeconfig")}});
    if let Some(azure) = &azure {
        endpoints["azure"] = serde_json::to_value(azure.endpoints())?;
        std::fs::write(dir.join("scenario.json"), serde_json::to_string_pretty(&azure.scenario_json())?)?;
    }
    // Written last and atomically: tools may wait for this file to know the sandbox is up.
    std::fs::write(dir.join("endpoints.json.tmp"), serde_json::to_string_pretty(&endpoints)?)?;
    std::fs::rename(dir.join("endpoints.json.tmp"), dir.join("endpoints.json"))?;
    let kubeconfig = dir.join("kubeconfig");
    println!("routewarden sandbox is up");
    println!("  Kubernetes API: {}", kube.url());
    println!("  CA:             {}", dir.join("ca.crt").display());
    println!("  endpoints:      {}", dir.join("endpoints.json").display());
    if let Some(azure) = &azure {
        let e = azure.endpoints();
        println!("  Entra:          {}", e.authority_host);
        println!("  ARM:            {}", e.resource_manager);
        for (name, v) in &e.vaults {
            println!("  Key Vault {name}: {}", v.url);
        }
        println!("  scenario:       {}", dir.join("scenario.json").display());
        let overrides: Vec<String> =
            e.host_overrides.iter().map(|o| format!("{}=127.0.0.1:{}", o.host, o.port)).collect();
        println!(
            "  routewarden:    --azure-extra-ca {} --azure-host-override {}",
            dir.join("ca.crt").display(),
            overrides.join(",")
        );
    }
    println!();
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get gatewayclasses");
    println!();
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    if let Some(azure) = azure {
        azure.shutdown().await;
    }
    kube.shutdown().await;
    Ok(())
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
