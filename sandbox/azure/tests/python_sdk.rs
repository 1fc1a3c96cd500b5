//! The official Azure SDK for Python against local Azure: starts the sandbox with seed 000, writes
//! the CA and a signed ServiceAccount token, and runs `tests/python/sdk_flows.py` with python3.
//!
//! CI needs `python3 -m pip install azure-identity azure-mgmt-dns azure-mgmt-privatedns
//! azure-keyvault-secrets azure-keyvault-certificates`. A missing package fails the test; set
//! `ROUTEWARDEN_SKIP_PYTHON=1` to skip it (the reason is printed).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use routewarden_sandbox_azure::scenario::seed000;
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, CertAuthority};
use serde_json::json;

const ISSUER: &str = "https://kubernetes.sandbox.test:6443";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_azure_sdk_for_python_runs_seed000_flows() {
    if std::env::var("ROUTEWARDEN_SKIP_PYTHON").as_deref() == Ok("1") {
        println!("skipped: ROUTEWARDEN_SKIP_PYTHON=1");
        return;
    }
    let (ca, ca_key) = CertAuthority::generate("python test CA").expect("CA");
    let sa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("key");
    let sa_key = EncodingKey::from_rsa_pem(sa.serialize_pem().as_bytes()).expect("encoding key");
    let mut jwk = Jwk::from_encoding_key(&sa_key, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some("python-sa".into());
    let sandbox = AzureSandbox::start(
        AzureSandboxConfig::new(ca.cert_pem(), &ca_key).with_static_jwks(ISSUER, json!({"keys": [jwk]})),
    )
    .await
    .expect("sandbox");
    // The script creates and imports certificates and sets secrets.
    sandbox
        .admin()
        .add_role_assignment(seed000::IDENTITY, "Key Vault Administrator", &format!("vault/{}", seed000::VAULT))
        .expect("role");

    let dir = tempfile::tempdir().expect("tempdir");
    let ca_path = dir.path().join("ca.crt");
    std::fs::write(&ca_path, sandbox.ca_pem()).expect("ca");
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"aud": ["api://AzureADTokenExchange"], "exp": now + 3600, "iat": now, "nbf": now, "iss": ISSUER, "sub": format!("system:serviceaccount:app-a:{}", seed000::SERVICE_ACCOUNT)});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("python-sa".into());
    let token_path = dir.path().join("token.jwt");
    std::fs::write(&token_path, jsonwebtoken::encode(&header, &claims, &sa_key).expect("sign")).expect("token");

    let endpoints = sandbox.endpoints();
    let hosts: BTreeMap<String, u16> = endpoints.host_overrides.iter().map(|o| (o.host.clone(), o.port)).collect();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_flows.py");
    let child = tokio::process::Command::new("python3")
        .arg(&script)
        .env("SANDBOX_HOSTS", serde_json::to_string(&hosts).expect("hosts"))
        .env("REQUESTS_CA_BUNDLE", &ca_path)
        .env("SSL_CERT_FILE", &ca_path)
        .env("AZURE_TENANT_ID", seed000::TENANT)
        .env("AZURE_CLIENT_ID", seed000::CLIENT_ID)
        .env("AZURE_FEDERATED_TOKEN_FILE", &token_path)
        .env_remove("AZURE_AUTHORITY_HOST")
        .env("SANDBOX_SUBSCRIPTION", seed000::SUBSCRIPTION)
        .env("SANDBOX_RESOURCE_GROUP", seed000::RESOURCE_GROUP)
        .env("SANDBOX_ZONE", seed000::ZONE)
        .env("SANDBOX_PRIVATE_ZONE", seed000::PRIVATE_ZONE)
        .env("SANDBOX_ARM", &endpoints.resource_manager)
        .env("SANDBOX_AUTHORITY", &endpoints.authority_host)
        .env("SANDBOX_VAULT_URL", format!("https://{}.vault.azure.net", seed000::VAULT))
        .env("SANDBOX_LOCAL_VAULT_URL", &endpoints.vaults[seed000::VAULT].local_url)
        .env("SANDBOX_CERTIFICATE", seed000::CERTIFICATE)
        .env("NO_PROXY", "*")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 must be installed (set ROUTEWARDEN_SKIP_PYTHON=1 to skip)");
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("python finished within 240 s")
        .expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the Python SDK flows failed (are the pip packages installed? see this file's header)\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("ALL PASSED"));
    let calls = sandbox.calls();
    assert!(calls.get("keyvault", "GetSecret", 401) >= 1, "the SDK went through the challenge");
    assert!(calls.get("arm", "RecordSets_CreateOrUpdate", 412) >= 1);
    assert!(calls.get("arm", "PrivateRecordSets_CreateOrUpdate", 412) >= 2);
    assert!(calls.get("entra", "Token", 200) >= 3);
}
