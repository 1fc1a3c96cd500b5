//! `routewarden run` validates its Azure settings before it touches anything: each bad value
//! stops it with exit code 2 and a message naming the flag; good ones (a custom cloud from an ARM
//! endpoints file, an extra CA, host overrides, an https managed-identity endpoint) start it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_routewarden");

const ENDPOINTS: &str = r#"{
  "name": "AzureStackLab",
  "resourceManager": "https://management.local.azurestack.external/",
  "authentication": {"loginEndpoint": "https://login.local.azurestack.external/", "audiences": ["https://management.local.azurestack.external/"]},
  "suffixes": {"keyVaultDns": ".vault.local.azurestack.external"}
}"#;

/// `routewarden run` without Kubernetes, its endpoints on free ports.
fn local_run() -> Command {
    let mut command = Command::new(BIN);
    command.args(["run", "--no-kubernetes", "--admin-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"]);
    command
}

fn run(dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = local_run();
    cmd.arg("--journal-dir").arg(dir.join("journal")).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.env_remove("ROUTEWARDEN_AZURE_CLOUD").output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn bad_azure_settings_stop_the_daemon_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let no_kv = tmp.path().join("no-kv.json");
    std::fs::write(
        &no_kv,
        ENDPOINTS.replace(r#""keyVaultDns": ".vault.local.azurestack.external""#, r#""storage": "x""#),
    )
    .unwrap();
    let garbage_ca = tmp.path().join("garbage.pem");
    std::fs::write(&garbage_ca, "not a certificate").unwrap();
    let (no_kv, garbage_ca) = (no_kv.to_str().unwrap().to_owned(), garbage_ca.to_str().unwrap().to_owned());
    // (what, flags, environment, words the error must contain)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        ("unknown cloud", vec!["--azure-cloud", "AzureGermanCloud"], vec![], vec!["--azure-cloud", "AzureGermanCloud"]),
        ("missing endpoints file", vec!["--azure-cloud", "/nonexistent/cloud.json"], vec![], vec!["--azure-cloud"]),
        (
            "endpoints file without a Key Vault suffix",
            vec!["--azure-cloud", &no_kv],
            vec![],
            vec!["--azure-cloud", "suffixes.keyVaultDns"],
        ),
        ("tenant that is not a UUID", vec!["--tenant-id", "contoso"], vec![], vec!["--tenant-id", "\"contoso\""]),
        (
            "missing CA file",
            vec!["--azure-extra-ca", "/nonexistent/ca.pem"],
            vec![],
            vec!["--azure-extra-ca", "/nonexistent/ca.pem"],
        ),
        ("CA file without certificates", vec!["--azure-extra-ca", &garbage_ca], vec![], vec!["--azure-extra-ca"]),
        (
            "malformed host override",
            vec!["--azure-host-override", "login.microsoftonline.com"],
            vec![],
            vec!["--azure-host-override", "HOST=IP:PORT"],
        ),
        (
            "managed identity endpoint that is not http(s)",
            vec!["--managed-identity-endpoint", "ftp://169.254.169.254/metadata/identity/oauth2/token"],
            vec![],
            vec!["--managed-identity-endpoint", "ftp://169.254.169.254", "http(s)"],
        ),
        (
            "managed identity endpoint from the environment that is not a URL",
            vec![],
            vec![("ROUTEWARDEN_MANAGED_IDENTITY_ENDPOINT", "169.254.169.254")],
            vec!["--managed-identity-endpoint", "not a URL"],
        ),
        (
            "malformed host override from the environment",
            vec![],
            vec![("ROUTEWARDEN_AZURE_HOST_OVERRIDES", "a=127.0.0.1:1,b")],
            vec!["--azure-host-override"],
        ),
    ];
    for (what, args, env, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let (code, stderr) = run(dir.path(), &args, &env);
        assert_eq!(code, Some(2), "{what}: {stderr}");
        for w in words {
            assert!(stderr.contains(w), "{what}: {w:?} not in {stderr}");
        }
        assert!(!dir.path().join("journal").exists(), "{what}: nothing is created before the settings are valid");
    }
}

#[test]
fn a_custom_cloud_with_an_extra_ca_and_overrides_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let endpoints = tmp.path().join("cloud.json");
    std::fs::write(&endpoints, ENDPOINTS).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["ca.test".to_string()]).unwrap().self_signed(&key).unwrap();
    let ca_file = tmp.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let mut child = local_run()
        .args(["--tenant-id", "00000000-0000-0000-0000-0000000000f0", "--azure-cloud"])
        .arg(&endpoints)
        .arg("--azure-extra-ca")
        .arg(&ca_file)
        .args(["--azure-host-override", "login.local.azurestack.external=127.0.0.1:4443"])
        .args(["--azure-host-override", "*.vault.local.azurestack.external=127.0.0.1:4444"])
        .args(["--managed-identity-endpoint", "https://imds.local.azurestack.external/metadata/identity/oauth2/token"])
        .arg("--journal-dir")
        .arg(tmp.path().join("journal"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = String::new();
    while !log.contains("admin endpoint listening") {
        assert!(Instant::now() < deadline, "did not start: {log}");
        match lines.next() {
            Some(Ok(l)) => log.push_str(&(l + "\n")),
            _ => panic!("exited early: {log}"),
        }
    }
    assert!(
        log.contains("azure configured")
            && log.contains("AzureStackLab")
            && log.contains("vault.local.azurestack.external"),
        "{log}"
    );
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn without_kubernetes_configuration_it_says_how_to_give_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["run", "--admin-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--journal-dir"])
        .arg(tmp.path().join("journal"))
        .args(["--kubeconfig"])
        .arg(tmp.path().join("missing-kubeconfig"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "configuration errors exit 2");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--kubeconfig"), "{stderr}");
}
