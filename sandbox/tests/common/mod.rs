//! Shared fixtures for the sandbox integration tests: an in-process server on an ephemeral port
//! and a kubectl runner with its own kubeconfig and discovery cache in a tempdir, bounded in time.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use routewarden_sandbox::kube::{KubeServer, KubeServerOptions};

pub async fn server() -> KubeServer {
    server_with(KubeServerOptions { bookmark_interval: Duration::from_millis(200), ..KubeServerOptions::default() })
        .await
}

pub async fn server_with(options: KubeServerOptions) -> KubeServer {
    KubeServer::start(options).await.expect("sandbox starts")
}

/// The output of one kubectl run.
#[derive(Debug)]
pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs kubectl against one server with a private kubeconfig and cache dir.
#[derive(Debug)]
pub struct Kubectl {
    dir: tempfile::TempDir,
}

/// kubectl v1.32 from the machine image (`.ci/run` checks it is on PATH); `KUBECTL` overrides.
pub fn kubectl_path() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

impl Kubectl {
    pub fn new(server: &KubeServer) -> Self {
        Self::with_kubeconfig(&server.kubeconfig_yaml())
    }

    pub fn with_kubeconfig(kubeconfig: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig).expect("kubeconfig written");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs kubectl with `args` on a blocking thread, killing it after `timeout`.
    pub async fn run_with_timeout(&self, args: &[&str], stdin: Option<&str>, timeout: Duration) -> Output {
        let mut command = Command::new(kubectl_path());
        command
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let input = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().expect("kubectl v1.32 must be on PATH (or set KUBECTL)");
            if let Some(input) = input {
                use std::io::Write;
                let mut pipe = child.stdin.take().expect("stdin");
                pipe.write_all(input.as_bytes()).expect("stdin written");
            }
            let start = Instant::now();
            loop {
                if child.try_wait().expect("wait").is_some() {
                    break;
                }
                if start.elapsed() > timeout {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = child.wait_with_output().expect("output");
            Output {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .expect("kubectl thread")
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with_timeout(args, None, Duration::from_secs(30)).await
    }

    /// Runs kubectl and fails the test with its stderr if it does not succeed.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.ok, "kubectl {args:?} failed: {}", out.stderr);
        out.stdout
    }
}

/// The manifests of seed 000's walkthrough, the same files `routewarden-sandbox demo` embeds.
pub fn walkthrough(name: &str) -> String {
    std::fs::read_to_string(walkthrough_path(name)).expect("walkthrough manifest")
}

pub fn walkthrough_path(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("walkthrough").join(name).display().to_string()
}

/// Polls `check` until it returns true, for up to 10 seconds (controllers are asynchronous).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
