//! Entra: the workload-identity token exchange and its refusals.

use base64::Engine as _;
use routewarden_sandbox_azure::scenario::seed000;
use serde_json::Value;

use crate::common::{ARM_SCOPE, EXCHANGE, Harness, ISSUER, VAULT_SCOPE};

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("b64")).expect("json")
}

async fn error_of(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("json");
    (
        status,
        body["error"].as_str().unwrap_or_default().to_string(),
        body["error_description"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test]
async fn issues_an_access_token_for_a_federated_service_account() {
    let h = Harness::start().await;
    let resp = h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &h.seed_assertion()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().expect("expires_in") > 3000);
    let claims = payload(body["access_token"].as_str().expect("token"));
    assert_eq!(claims["tid"], seed000::TENANT);
    assert_eq!(claims["oid"], seed000::PRINCIPAL_ID);
    assert_eq!(claims["appid"], seed000::CLIENT_ID);
    assert_eq!(claims["aud"], "https://management.azure.com");
    // app-b is federated too.
    let b = h.sa_token("app-b", seed000::SERVICE_ACCOUNT, EXCHANGE, 600);
    assert_eq!(h.token_request(seed000::TENANT, seed000::CLIENT_ID, VAULT_SCOPE, &b).await.status(), 200);
}

#[tokio::test]
async fn accepts_the_cli_double_slash_scope() {
    let h = Harness::start().await;
    let token = h.token("https://management.azure.com//.default").await;
    assert_eq!(payload(&token)["aud"], "https://management.azure.com/");
}

#[tokio::test]
async fn refuses_an_unknown_client_with_aadsts700016() {
    let h = Harness::start().await;
    let (status, error, description) = error_of(
        h.token_request(seed000::TENANT, "11111111-2222-3333-4444-555555555555", ARM_SCOPE, &h.seed_assertion()).await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "unauthorized_client"));
    assert!(description.starts_with("AADSTS700016:"), "{description}");
}

#[tokio::test]
async fn refuses_a_subject_without_federated_credential_with_aadsts70021() {
    let h = Harness::start().await;
    let other = h.sa_token("app-c", seed000::SERVICE_ACCOUNT, EXCHANGE, 600);
    let (status, error, description) =
        error_of(h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &other).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    assert!(
        description.starts_with("AADSTS70021:")
            && description.contains("system:serviceaccount:app-c:approuting-demo-sa"),
        "{description}"
    );
    let wrong_aud = h.sa_token("app-a", seed000::SERVICE_ACCOUNT, "https://kubernetes.default.svc", 600);
    let (_, _, description) =
        error_of(h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &wrong_aud).await).await;
    assert!(description.starts_with("AADSTS70021:"), "{description}");
}

#[tokio::test]
async fn refuses_an_expired_assertion_with_aadsts700024() {
    let h = Harness::start().await;
    let expired = h.sa_token("app-a", seed000::SERVICE_ACCOUNT, EXCHANGE, -3600);
    let (status, error, description) =
        error_of(h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &expired).await).await;
    assert_eq!((status, error.as_str()), (401, "invalid_client"));
    assert!(description.starts_with("AADSTS700024:"), "{description}");
}

#[tokio::test]
async fn refuses_an_assertion_signed_by_another_key_with_aadsts700027() {
    let h = Harness::start().await;
    let other = Harness::start().await;
    // Same issuer, kid and claims, but another key.
    let forged = other.seed_assertion();
    let (status, _, description) =
        error_of(h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &forged).await).await;
    assert_eq!(status, 401);
    assert!(description.starts_with("AADSTS700027:"), "{description}");
    let (status, _, description) =
        error_of(h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, "not.a.jwt").await).await;
    assert_eq!(status, 400);
    assert!(description.starts_with("AADSTS50027:"), "{description}");
}

#[tokio::test]
async fn refuses_unknown_tenants_scopes_and_grants() {
    let h = Harness::start().await;
    let (_, _, d) = error_of(
        h.token_request("99999999-0000-0000-0000-000000000000", seed000::CLIENT_ID, ARM_SCOPE, &h.seed_assertion())
            .await,
    )
    .await;
    assert!(d.starts_with("AADSTS90002:"), "{d}");
    let (_, error, d) = error_of(
        h.token_request(
            seed000::TENANT,
            seed000::CLIENT_ID,
            "https://management.azure.com/user_impersonation",
            &h.seed_assertion(),
        )
        .await,
    )
    .await;
    assert_eq!(error, "invalid_scope");
    assert!(d.starts_with("AADSTS1002012:"), "{d}");
    let (_, error, _) = error_of(
        h.token_request(seed000::TENANT, seed000::CLIENT_ID, "api://someone-else/.default", &h.seed_assertion()).await,
    )
    .await;
    assert_eq!(error, "invalid_resource");
    let resp = h
        .client
        .post(format!("{}/{}/oauth2/v2.0/token", h.authority(), seed000::TENANT))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&client_id=x")
        .send()
        .await
        .expect("send");
    let (status, error, _) = error_of(resp).await;
    assert_eq!((status, error.as_str()), (400, "unsupported_grant_type"));
}

#[tokio::test]
async fn serves_openid_configuration_and_instance_discovery() {
    let h = Harness::start().await;
    let base = h.authority();
    let (status, _, doc) = h
        .send(
            reqwest::Method::GET,
            &format!("{base}/{}/v2.0/.well-known/openid-configuration", seed000::TENANT),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["token_endpoint"], format!("{base}/{}/oauth2/v2.0/token", seed000::TENANT));
    assert!(doc["authorization_endpoint"].is_string() && doc["issuer"].is_string());
    let (status, _, disc) = h
        .send(reqwest::Method::GET, &format!("{base}/common/discovery/instance?api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/{}/oauth2/v2.0/authorize", seed000::TENANT), None, None, &[])
        .await;
    assert_eq!(status, 200);
    assert!(disc["tenant_discovery_endpoint"].as_str().expect("endpoint").contains(seed000::TENANT));
    let (status, _, keys) =
        h.send(reqwest::Method::GET, &format!("{base}/{}/discovery/v2.0/keys", seed000::TENANT), None, None, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(keys["keys"][0]["kty"], "RSA");
}

#[tokio::test]
async fn works_through_the_real_authority_host_name() {
    let h = Harness::start().await;
    let port = h
        .sandbox
        .endpoints()
        .host_overrides
        .iter()
        .find(|o| o.host == "login.microsoftonline.com")
        .expect("override")
        .port;
    let body = format!(
        "client_assertion={}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id={}&grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default",
        h.seed_assertion(),
        seed000::CLIENT_ID
    );
    let resp = h
        .client
        .post(format!("https://login.microsoftonline.com:{port}/{}/oauth2/v2.0/token", seed000::TENANT))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn removing_a_federated_credential_refuses_the_next_exchange_and_adding_one_allows_it() {
    let h = Harness::start().await;
    let admin = h.sandbox.admin();
    admin.remove_federated_credential(seed000::IDENTITY, "approuting-demo-fic-app-a").expect("removed");
    let (_, _, d) =
        error_of(h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &h.seed_assertion()).await).await;
    assert!(d.starts_with("AADSTS70021:"), "{d}");
    admin
        .add_federated_credential(
            seed000::CLIENT_ID,
            "fic-app-c",
            Some(ISSUER),
            "system:serviceaccount:app-c:worker",
            None,
        )
        .expect("added");
    let c = h.sa_token("app-c", "worker", EXCHANGE, 600);
    assert_eq!(h.token_request(seed000::TENANT, seed000::CLIENT_ID, ARM_SCOPE, &c).await.status(), 200);
}

/// A minimal HTTPS server for `/openid/v1/jwks`, standing in for the Kubernetes emulator; counts hits.
async fn serve_jwks(
    ca: &routewarden_sandbox_azure::CertAuthority,
    jwks: Value,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (cert, key) = ca.server_certificate(&["localhost".to_string()]).expect("server cert");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert.into()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()))
        .expect("config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let jwks = jwks.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let found = req.uri().path() == "/openid/v1/jwks";
                    if found {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    let body = if found { jwks.to_string() } else { String::new() };
                    async move {
                        let mut resp = hyper::Response::new(axum::body::Body::from(body));
                        if !found {
                            *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
                        }
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, hits)
}

#[tokio::test]
async fn fetches_the_kubernetes_issuer_jwks_over_https_once_and_again_for_an_unknown_kid() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
    use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, CertAuthority};
    let (ca, ca_key) = CertAuthority::generate("k8s CA").expect("ca");
    let sa = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).expect("key");
    let key = EncodingKey::from_rsa_pem(sa.serialize_pem().as_bytes()).expect("key");
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some("k1".into());
    let (port, hits) = serve_jwks(&ca, serde_json::json!({"keys": [jwk]})).await;
    let issuer = format!("https://127.0.0.1:{port}");
    let sandbox = AzureSandbox::start(
        AzureSandboxConfig::new(ca.cert_pem(), &ca_key).with_kubernetes_issuer(&issuer, ca.cert_pem()),
    )
    .await
    .expect("sandbox");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(sandbox.ca_pem().as_bytes()).expect("ca")])
        .build()
        .expect("client");
    let sign = |kid: &str| {
        let now = jiff::Timestamp::now().as_second();
        let claims = serde_json::json!({"iss": issuer, "sub": "system:serviceaccount:app-b:approuting-demo-sa", "aud": ["api://AzureADTokenExchange"], "exp": now + 600, "iat": now, "nbf": now});
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &key).expect("sign")
    };
    let exchange = |assertion: String| {
        let client = client.clone();
        let url = format!("{}/{}/oauth2/v2.0/token", sandbox.endpoints().authority_host, seed000::TENANT);
        async move {
            let body = format!(
                "client_assertion={assertion}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_id={}&grant_type=client_credentials&scope=https%3A%2F%2Fvault.azure.net%2F.default",
                seed000::CLIENT_ID
            );
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .expect("send")
        }
    };
    assert_eq!(exchange(sign("k1")).await.status(), 200);
    assert_eq!(exchange(sign("k1")).await.status(), 200);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "the JWKS is cached");
    let (status, _, description) = error_of(exchange(sign("k2")).await).await;
    assert_eq!(status, 401);
    assert!(description.starts_with("AADSTS700027:"), "{description}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2, "an unknown kid refetches");
}
