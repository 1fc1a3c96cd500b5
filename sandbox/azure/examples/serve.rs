//! Runs local Azure standalone with seed 000 for manual checks (Azure CLI, curl):
//! `cargo run -p routewarden-sandbox-azure --example serve -- DIR [SECONDS]`.
//!
//! Writes `DIR/ca.crt`, `DIR/endpoints.json`, `DIR/scenario.json` and `DIR/token.jwt` (a
//! ServiceAccount token for `app-a/approuting-demo-sa`, signed by a key whose JWKS the sandbox
//! trusts as the Kubernetes issuer `https://kubernetes.sandbox.local`), then serves until SECONDS
//! pass (default 600) or Ctrl-C.

use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, CertAuthority};
use serde_json::json;

const ISSUER: &str = "https://kubernetes.sandbox.local";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or_else(|| anyhow::anyhow!("usage: serve DIR [SECONDS]"))?);
    let seconds: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(600);
    std::fs::create_dir_all(&dir)?;
    let (ca, ca_key) = CertAuthority::generate("routewarden sandbox CA")?;
    let sa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)?;
    let key = EncodingKey::from_rsa_pem(sa.serialize_pem().as_bytes())?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)?;
    jwk.common.key_id = Some("serve".into());
    let azure = AzureSandbox::start(
        AzureSandboxConfig::new(ca.cert_pem(), &ca_key).with_static_jwks(ISSUER, json!({"keys": [jwk]})),
    )
    .await?;
    std::fs::write(dir.join("ca.crt"), azure.ca_pem())?;
    azure.write_files(&dir)?;
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": ISSUER, "sub": "system:serviceaccount:app-a:approuting-demo-sa", "aud": ["api://AzureADTokenExchange"], "iat": now, "nbf": now, "exp": now + 86_400});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("serve".into());
    std::fs::write(dir.join("token.jwt"), jsonwebtoken::encode(&header, &claims, &key)?)?;
    println!("{}", serde_json::to_string_pretty(azure.endpoints())?);
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    for row in azure.calls().snapshot() {
        println!("{} {} {} x{}", row.key.service, row.key.operation, row.key.status, row.count);
    }
    azure.shutdown().await;
    Ok(())
}
