//! routewarden's own Azure stack against local Azure: azure_core 1.x with a reqwest transport that
//! trusts the sandbox CA and resolves the real host names to the sandbox ports, azure_identity's
//! `ClientAssertionCredential` fed a ServiceAccount token, and the Key Vault `SecretClient` through
//! the 401 challenge, with challenge-resource verification on (real vault host name) and off
//! (`https://127.0.0.1:PORT`), as `shared/reference/dependencies.md` §3–4 describes.

use std::net::SocketAddr;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientMethodOptions, ClientOptions, Transport};
use azure_identity::{ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use routewarden_sandbox_azure::scenario::seed000;
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, CertAuthority};
use serde_json::json;

const ISSUER: &str = "https://kubernetes.sandbox.test:6443";

#[derive(Debug)]
struct ServiceAccountToken(String);

#[async_trait::async_trait]
impl ClientAssertion for ServiceAccountToken {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.0.clone())
    }
}

async fn setup() -> (AzureSandbox, ClientOptions, Arc<dyn TokenCredential>) {
    let (ca, ca_key) = CertAuthority::generate("azure_core test CA").expect("CA");
    let sa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("key");
    let key = EncodingKey::from_rsa_pem(sa.serialize_pem().as_bytes()).expect("key");
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some("k".into());
    let sandbox = AzureSandbox::start(
        AzureSandboxConfig::new(ca.cert_pem(), &ca_key).with_static_jwks(ISSUER, json!({"keys": [jwk]})),
    )
    .await
    .expect("sandbox");
    let now = jiff::Timestamp::now().as_second();
    let claims = json!({"iss": ISSUER, "sub": "system:serviceaccount:app-b:approuting-demo-sa", "aud": ["api://AzureADTokenExchange"], "iat": now, "nbf": now, "exp": now + 3600});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("k".into());
    let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");

    let mut builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(sandbox.ca_pem().as_bytes()).expect("ca")]);
    for o in &sandbox.endpoints().host_overrides {
        builder = builder.resolve(&o.host, SocketAddr::from(([127, 0, 0, 1], o.port)));
    }
    let options = ClientOptions {
        transport: Some(Transport::new(Arc::new(builder.build().expect("client")))),
        ..ClientOptions::default()
    };
    // The public cloud: login.microsoftonline.com is resolved to the sandbox by the transport.
    let credential = ClientAssertionCredential::new(
        seed000::TENANT.into(),
        seed000::CLIENT_ID.into(),
        ServiceAccountToken(token),
        Some(ClientAssertionCredentialOptions { client_options: options.clone() }),
    )
    .expect("credential");
    (sandbox, options, credential)
}

#[tokio::test]
async fn client_assertion_credential_gets_tokens_from_local_entra() {
    let (sandbox, _, credential) = setup().await;
    let token = credential.get_token(&["https://management.azure.com/.default"], None).await.expect("token");
    assert!(!token.token.secret().is_empty());
    let again = credential.get_token(&["https://management.azure.com/.default"], None).await.expect("cached");
    assert_eq!(again.token.secret(), token.token.secret());
    assert_eq!(sandbox.calls().get("entra", "Token", 200), 1, "the credential caches per scope");
}

#[tokio::test]
async fn secret_client_reads_the_seed_certificate_secret_by_its_real_vault_url() {
    let (sandbox, options, credential) = setup().await;
    let client = SecretClient::new(
        &format!("https://{}.vault.azure.net", seed000::VAULT),
        credential.clone(),
        Some(SecretClientOptions { client_options: options.clone(), ..SecretClientOptions::default() }),
    )
    .expect("client");
    let secret = client.get_secret(seed000::CERTIFICATE, None).await.expect("get").into_model().expect("model");
    assert_eq!(secret.content_type.as_deref(), Some("application/x-pkcs12"));
    assert_eq!(secret.managed, Some(true));
    assert!(!secret.value.unwrap_or_default().is_empty());
    assert!(sandbox.calls().get("keyvault", "GetSecret", 401) >= 1, "went through the challenge");

    let local = SecretClient::new(
        &sandbox.endpoints().vaults[seed000::VAULT].local_url,
        credential,
        Some(SecretClientOptions {
            client_options: options,
            verify_challenge_resource: Some(false),
            ..SecretClientOptions::default()
        }),
    )
    .expect("client");
    let same = local.get_secret(seed000::CERTIFICATE, None).await.expect("get").into_model().expect("model");
    assert!(same.id.unwrap_or_default().starts_with("https://127.0.0.1:"));
}

#[tokio::test]
async fn secret_client_surfaces_404_and_403_as_errors_with_status() {
    let (sandbox, options, credential) = setup().await;
    let client = SecretClient::new(
        &format!("https://{}.vault.azure.net", seed000::VAULT),
        credential,
        Some(SecretClientOptions { client_options: options, ..SecretClientOptions::default() }),
    )
    .expect("client");
    let err = client.get_secret("does-not-exist", None).await.expect_err("404");
    assert_eq!(err.http_status(), Some(azure_core::http::StatusCode::NotFound), "{err}");
    let seed_role =
        sandbox.admin().role_assignments().into_iter().find(|a| a.role == "Key Vault Secrets User").expect("seed role");
    sandbox.admin().remove_role_assignment(&seed_role.id).expect("removed");
    let err = client.get_secret(seed000::CERTIFICATE, None).await.expect_err("403");
    assert_eq!(err.http_status(), Some(azure_core::http::StatusCode::Forbidden), "{err}");
}

/// ARM through an azure_core pipeline with the bearer policy, as routewarden calls Azure DNS
/// (no generated management client: `dependencies.md` §2).
async fn arm_send(
    pipeline: &azure_core::http::Pipeline,
    method: azure_core::http::Method,
    url: &str,
    body: Option<serde_json::Value>,
    headers: &[(&'static str, String)],
) -> azure_core::Result<azure_core::http::RawResponse> {
    let mut request = azure_core::http::Request::new(azure_core::http::Url::parse(url).expect("url"), method);
    for (k, v) in headers {
        request.insert_header(*k, v.clone());
    }
    if let Some(b) = body {
        request.insert_header("content-type", "application/json");
        request.set_body(b.to_string());
    }
    pipeline.send(&azure_core::http::Context::new(), &mut request, None).await
}

#[tokio::test]
async fn an_azure_core_pipeline_writes_public_and_private_records_with_etag_preconditions() {
    use azure_core::http::policies::Policy;
    use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
    use azure_core::http::{Method, Pipeline, StatusCode};
    let (sandbox, options, credential) = setup().await;
    let auth: Arc<dyn Policy> =
        Arc::new(BearerTokenAuthorizationPolicy::new(credential, ["https://management.azure.com/.default"]));
    let pipeline = Pipeline::new(Some("routewarden-test"), Some("0"), options, Vec::new(), vec![auth], None);
    let base = format!(
        "https://management.azure.com/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network",
        seed000::SUBSCRIPTION,
        seed000::RESOURCE_GROUP
    );

    let public = format!("{base}/dnsZones/{}/A/www?api-version=2018-05-01", seed000::ZONE);
    let body = json!({"properties": {"TTL": 300, "metadata": {"owner": "routewarden"}, "ARecords": [{"ipv4Address": "10.0.0.1"}]}});
    let created = arm_send(&pipeline, Method::Put, &public, Some(body.clone()), &[("if-none-match", "*".into())])
        .await
        .expect("created");
    assert_eq!(created.status(), StatusCode::Created);
    let etag = created.body().json::<serde_json::Value>().expect("json")["etag"].as_str().expect("etag").to_string();
    let err = arm_send(&pipeline, Method::Put, &public, Some(body.clone()), &[("if-none-match", "*".into())])
        .await
        .expect_err("412");
    assert_eq!(err.http_status(), Some(StatusCode::PreconditionFailed));
    let updated =
        arm_send(&pipeline, Method::Put, &public, Some(body), &[("if-match", etag.clone())]).await.expect("updated");
    assert_eq!(updated.status(), StatusCode::Ok);
    let err = arm_send(&pipeline, Method::Delete, &public, None, &[("if-match", etag)]).await.expect_err("stale etag");
    assert_eq!(err.http_status(), Some(StatusCode::PreconditionFailed));

    let private = format!("{base}/privateDnsZones/{}/A/db?api-version=2024-06-01", seed000::PRIVATE_ZONE);
    let created = arm_send(
        &pipeline,
        Method::Put,
        &private,
        Some(json!({"properties": {"ttl": 300, "aRecords": [{"ipv4Address": "10.1.0.4"}]}})),
        &[],
    )
    .await
    .expect("created");
    let etag = created.body().json::<serde_json::Value>().expect("json")["etag"].as_str().expect("etag").to_string();
    let deleted = arm_send(&pipeline, Method::Delete, &private, None, &[("if-match", format!("\"{etag}\""))])
        .await
        .expect("deleted");
    assert_eq!(deleted.status(), StatusCode::Ok);
    assert_eq!(sandbox.calls().get("entra", "Token", 200), 1, "one ARM token for every call");
}
