//! `routewarden-sandbox`: runs the local Kubernetes API server (and, later, local Azure) until
//! interrupted, writing a kubeconfig, the CA and an endpoints file so other tools can find them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use routewarden_sandbox::kube::{KubeServer, KubeServerOptions};

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
    Up {
        /// Directory for kubeconfig, ca.crt and endpoints.json.
        #[arg(long, env = "ROUTEWARDEN_SANDBOX_DIR")]
        dir: PathBuf,
        /// Port of the Kubernetes API server on 127.0.0.1 (0 = any free port).
        #[arg(long, env = "ROUTEWARDEN_SANDBOX_KUBE_PORT", default_value_t = 0)]
        kube_port: u16,
        /// Events kept for watches to resume from; older resourceVersions get 410 Expired.
        #[arg(long, default_value_t = 10_000)]
        watch_window: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let Cli { command: Command::Up { dir, kube_port, watch_window } } = Cli::parse();
    let options = KubeServerOptions { port: kube_port, watch_window, bookmark_interval: Duration::from_secs(60), ..KubeServerOptions::default() };
    let kube = KubeServer::start(options).await?;
    kube.write_files(&dir)?;
    let endpoints = serde_json::json!({"kubernetes": {"url": kube.url(), "caFile": dir.join("ca.crt"), "kubeconfig": dir.join("kubeconfig")}});
    std::fs::write(dir.join("endpoints.json"), serde_json::to_string_pretty(&endpoints)?)?;
    let kubeconfig = dir.join("kubeconfig");
    println!("routewarden sandbox is up");
    println!("  Kubernetes API: {}", kube.url());
    println!("  CA:             {}", dir.join("ca.crt").display());
    println!("  endpoints:      {}", dir.join("endpoints.json").display());
    println!();
    println!("  export KUBECONFIG={}", kubeconfig.display());
    println!("  kubectl get gatewayclasses");
    println!();
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    kube.shutdown().await;
    Ok(())
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
