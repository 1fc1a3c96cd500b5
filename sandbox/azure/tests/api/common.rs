//! Test harness: a sandbox on ephemeral ports with seed 000, a ServiceAccount signing key whose
//! JWKS is injected as the Kubernetes issuer's, and a reqwest client that trusts the sandbox CA
//! and resolves the real Azure host names to the sandbox.

use std::net::SocketAddr;
use std::time::Duration;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use routewarden_sandbox_azure::scenario::seed000;
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, CertAuthority};
use serde_json::{Value, json};

/// The Kubernetes issuer the test ServiceAccount tokens name.
pub const ISSUER: &str = "https://kubernetes.sandbox.test:6443";
/// The audience workload identity uses.
pub const EXCHANGE: &str = "api://AzureADTokenExchange";
/// ARM scope.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
/// Key Vault scope.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

pub struct Harness {
    pub sandbox: AzureSandbox,
    pub client: reqwest::Client,
    sa_key: EncodingKey,
    kid: String,
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|c| c).await
    }

    pub async fn start_with(configure: impl FnOnce(AzureSandboxConfig) -> AzureSandboxConfig) -> Self {
        let (ca, ca_key) = CertAuthority::generate("test sandbox CA").expect("CA");
        let sa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("SA key");
        let sa_key = EncodingKey::from_rsa_pem(sa.serialize_pem().as_bytes()).expect("encoding key");
        let mut jwk = Jwk::from_encoding_key(&sa_key, Algorithm::RS256).expect("jwk");
        let kid = "test-sa-key".to_string();
        jwk.common.key_id = Some(kid.clone());
        let config = AzureSandboxConfig::new(ca.cert_pem(), &ca_key).with_static_jwks(ISSUER, json!({"keys": [jwk]}));
        let sandbox = AzureSandbox::start(configure(config)).await.expect("sandbox starts");
        let mut builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(sandbox.ca_pem().as_bytes()).expect("ca")])
            .timeout(Duration::from_secs(30));
        for o in &sandbox.endpoints().host_overrides {
            builder = builder.resolve(&o.host, SocketAddr::from(([127, 0, 0, 1], o.port)));
        }
        let client = builder.build().expect("client");
        Self { sandbox, client, sa_key, kid }
    }

    /// A ServiceAccount token as the Kubernetes issuer would sign it.
    pub fn sa_token(&self, namespace: &str, name: &str, audience: &str, expires_in: i64) -> String {
        let now = jiff::Timestamp::now().as_second();
        let claims = json!({
            "aud": [audience], "exp": now + expires_in, "iat": now.min(now + expires_in), "nbf": now.min(now + expires_in), "iss": ISSUER,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": "u"}},
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.sa_key).expect("sign")
    }

    pub fn seed_assertion(&self) -> String {
        self.sa_token("app-a", seed000::SERVICE_ACCOUNT, EXCHANGE, 3600)
    }

    pub fn authority(&self) -> String {
        self.sandbox.endpoints().authority_host.clone()
    }

    pub fn arm(&self) -> String {
        self.sandbox.endpoints().resource_manager.clone()
    }

    pub fn vault(&self) -> String {
        self.sandbox.endpoints().vaults[seed000::VAULT].local_url.clone()
    }

    /// POST to the token endpoint with a client assertion.
    pub async fn token_request(
        &self,
        tenant: &str,
        client_id: &str,
        scope: &str,
        assertion: &str,
    ) -> reqwest::Response {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_assertion", assertion)
            .append_pair("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
            .append_pair("client_id", client_id)
            .append_pair("grant_type", "client_credentials")
            .append_pair("scope", scope)
            .finish();
        self.client
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.authority()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("token request")
    }

    /// An access token for the seed identity, through the token endpoint.
    pub async fn token(&self, scope: &str) -> String {
        let resp = self.token_request(seed000::TENANT, seed000::CLIENT_ID, scope, &self.seed_assertion()).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        body["access_token"].as_str().expect("access_token").to_string()
    }

    pub fn zone_path(&self, private: bool, zone: &str) -> String {
        let provider = if private { "privateDnsZones" } else { "dnsZones" };
        format!(
            "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{provider}/{zone}",
            self.arm(),
            seed000::SUBSCRIPTION,
            seed000::RESOURCE_GROUP
        )
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut rb = self.client.request(method, url);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b.to_string());
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, headers, value)
    }
}
