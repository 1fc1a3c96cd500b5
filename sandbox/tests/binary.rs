//! The `routewarden-sandbox up --dir DIR` binary: it writes kubeconfig, ca.crt and endpoints.json,
//! kubectl works with them, routewarden runs in it with its journal in DIR, Ctrl-C (SIGINT) stops
//! it all cleanly, and a restart with the same DIR serves the same objects at the same address.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Kubectl;

fn start(dir: &Path, flags: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_routewarden-sandbox"))
        .args(["up", "--dir"])
        .arg(dir)
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn interrupt(mut child: Child) {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "Ctrl-C ends the sandbox cleanly: {status}");
            return;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the sandbox did not stop on SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_writes_its_files_serves_kubectl_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(dir.path(), &[]);
    wait_for_file(&dir.path().join("endpoints.json"));
    let endpoints: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("endpoints.json")).unwrap()).unwrap();
    let url = endpoints["kubernetes"]["url"].as_str().unwrap().to_string();
    assert_eq!(endpoints["routewarden"]["journalDir"], dir.path().join("journal").display().to_string());
    assert_journal_served(&endpoints).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
    let kubeconfig = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    assert!(kubeconfig.contains("certificate-authority-data:") && kubeconfig.contains("token: "), "{kubeconfig}");

    let kubectl = Kubectl::with_kubeconfig(&kubeconfig);
    kubectl.ok(&["create", "configmap", "survivor", "--from-literal=a=1"]).await;
    assert_eq!(
        kubectl.ok(&["get", "gatewayclass", "-o", "name"]).await.trim(),
        "gatewayclass.gateway.networking.k8s.io/approuting-istio"
    );
    interrupt(child);

    std::fs::remove_file(dir.path().join("endpoints.json")).unwrap();
    let child = start(dir.path(), &[]);
    wait_for_file(&dir.path().join("endpoints.json"));
    let endpoints: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("endpoints.json")).unwrap()).unwrap();
    assert_eq!(endpoints["kubernetes"]["url"], url.as_str(), "same address after a restart");
    let kubectl = Kubectl::with_kubeconfig(&kubeconfig);
    let data = kubectl.ok(&["get", "configmap", "survivor", "-o", "jsonpath={.data.a}"]).await;
    assert_eq!(data, "1", "the old kubeconfig still works and the object survived");
    assert_journal_served(&endpoints).await;
    interrupt(child);
}

/// routewarden's admin endpoint (as endpoints.json names it) serves the journal it opened in DIR.
async fn assert_journal_served(endpoints: &serde_json::Value) {
    let admin = endpoints["routewarden"]["admin"].as_str().expect("routewarden runs by default");
    assert!(admin.starts_with("http://127.0.0.1:"), "{admin}");
    let metrics = endpoints["routewarden"]["metrics"].as_str().expect("the metrics endpoint");
    assert!(metrics.starts_with("http://127.0.0.1:") && metrics.ends_with("/metrics"), "{metrics}");
    let scraped = reqwest::get(metrics).await.unwrap().text().await.unwrap();
    assert!(scraped.contains("routewarden_build_info"), "{scraped}");
    let summary = reqwest::get(format!("{admin}/v1/journal/summary")).await.unwrap();
    assert_eq!(summary.status(), 200, "the journal is open");
}

#[test]
fn a_poll_interval_routewarden_would_refuse_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_routewarden-sandbox"))
        .args(["up", "--in-memory", "--poll-interval", "5s", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--poll-interval") && stderr.contains("shorter than 10s"), "{stderr}");
    assert!(!dir.path().join("endpoints.json").exists(), "a sandbox that did not start is not announced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_runs_local_azure_from_the_same_ca_and_trusts_its_service_account_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let child = start(dir.path(), &["--no-daemon"]);
    wait_for_file(&dir.path().join("endpoints.json"));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (endpoints, scenario) = (read("endpoints.json"), read("scenario.json"));
    assert!(endpoints.get("routewarden").is_none(), "--no-daemon leaves routewarden out: {endpoints}");
    let authority = endpoints["azure"]["authorityHost"].as_str().unwrap().to_owned();
    assert!(
        endpoints["azure"]["vaults"]["kv-demo"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://kv-demo.vault.azure.net:")
    );
    let tenant = scenario["tenantId"].as_str().unwrap().to_owned();
    let client_id = scenario["identities"][0]["clientId"].as_str().unwrap().to_owned();

    // Seed 000: a namespace, its ServiceAccount, and a token for the workload identity audience.
    let kubectl = Kubectl::with_kubeconfig(&std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap());
    kubectl.ok(&["create", "namespace", "app-a"]).await;
    kubectl.ok(&["create", "serviceaccount", "approuting-demo-sa", "-n", "app-a"]).await;
    let token = kubectl
        .ok(&["create", "token", "approuting-demo-sa", "-n", "app-a", "--audience", "api://AzureADTokenExchange"])
        .await;

    // Local Entra validates it against the API server's JWKS, over TLS from the one sandbox CA.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.crt")).unwrap()).unwrap();
    let http = reqwest::Client::builder().tls_certs_only([ca]).build().unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id.as_str()),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", token.trim()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let resp = http.post(format!("{authority}/{tenant}/oauth2/v2.0/token")).form(&form).send().await.unwrap();
    let status = resp.status();
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(answer["access_token"].as_str().is_some_and(|t| t.split('.').count() == 3), "{answer}");

    // The portal-like admin commands reach the running sandbox.
    let sandbox = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_routewarden-sandbox"))
            .args(["azure", "--dir"])
            .arg(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let crds = kubectl.ok(&["get", "crd", "-o", "name"]).await;
    assert!(
        crds.contains("clusterexternaldnses.approuting.kubernetes.azure.com")
            && crds.contains("externaldnses.approuting.kubernetes.azure.com"),
        "routewarden's CRDs are served without flags: {crds}"
    );

    let version = sandbox(&["rotate-certificate", "kv-demo", "approuting-demo-cert"]);
    assert_eq!(version.trim().len(), 32, "a new Key Vault version id: {version}");
    let calls = sandbox(&["calls"]);
    assert!(calls.contains("\"Token\""), "{calls}");
    interrupt(child);
}
