//! routewarden's Azure adapters against local Azure (routewarden-sandbox-azure): workload identity
//! token exchange, managed-identity tokens from the instance metadata service, Key Vault metadata
//! and secrets, conditional ARM DNS writes, paging, and the classification of every failure a
//! worker has to act on.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use routewarden_azure::transport::{TransportConfig, build_client, build_imds_client};
use routewarden_azure::*;
use routewarden_sandbox_azure::scenario::seed000;
use routewarden_sandbox_azure::{AzureSandbox, AzureSandboxConfig, Bucket, CertAuthority, FaultConfig, RateLimits};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

const ISSUER: &str = "https://kubernetes.sandbox.test:6443";

/// Signs ServiceAccount tokens as the sandbox's Kubernetes issuer would.
#[derive(Debug)]
struct Issuer(EncodingKey);

#[async_trait::async_trait]
impl AssertionProvider for Issuer {
    async fn assertion(&self, namespace: &str, service_account: &str) -> Result<String, String> {
        let now = jiff::Timestamp::now().as_second();
        let claims = json!({
            "iss": ISSUER, "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
            "aud": ["api://AzureADTokenExchange"], "iat": now, "nbf": now, "exp": now + 600,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k".into());
        jsonwebtoken::encode(&header, &claims, &self.0).map_err(|e| e.to_string())
    }
}

struct Env {
    sandbox: AzureSandbox,
    azure: AzureClient,
}

async fn env() -> Env {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let (ca, ca_key) = CertAuthority::generate("adapter test CA").unwrap();
    let sa_key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let key = EncodingKey::from_rsa_pem(sa_key.serialize_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("k".into());
    let sandbox = AzureSandbox::start(
        AzureSandboxConfig::new(ca.cert_pem(), &ca_key).with_static_jwks(ISSUER, json!({"keys": [jwk]})),
    )
    .await
    .unwrap();
    let overrides = sandbox
        .endpoints()
        .host_overrides
        .iter()
        .map(|o| format!("{}=127.0.0.1:{}", o.host, o.port).parse().unwrap())
        .collect();
    let transport = TransportConfig {
        extra_ca: Some(("sandbox CA".into(), sandbox.ca_pem().as_bytes().to_vec())),
        overrides,
        timeout: None,
    };
    let http = build_client(&transport).unwrap();
    let imds = ImdsEndpoint::new(
        sandbox.endpoints().managed_identity_endpoint.parse().unwrap(),
        build_imds_client(&transport).unwrap(),
    );
    let azure = AzureClient::new(Cloud::public(), http, Arc::new(Issuer(key))).with_managed_identity_endpoint(imds);
    Env { sandbox, azure }
}

/// The seed's workload identity as an ARM principal.
fn workload(namespace: &str) -> Principal {
    Principal::Workload(identity(namespace))
}

fn identity(namespace: &str) -> IdentityKey {
    IdentityKey {
        tenant_id: seed000::TENANT.into(),
        client_id: seed000::CLIENT_ID.into(),
        namespace: namespace.into(),
        service_account: seed000::SERVICE_ACCOUNT.into(),
    }
}

/// Certificate metadata needs more than seed 000's Key Vault Secrets User: grant Certificate User.
fn grant_certificate_user(sandbox: &AzureSandbox) {
    sandbox
        .admin()
        .add_role_assignment(seed000::PRINCIPAL_ID, "Key Vault Certificate User", &format!("vault/{}", seed000::VAULT))
        .unwrap();
}

fn vault_url() -> String {
    format!("https://{}.vault.azure.net", seed000::VAULT)
}

#[tokio::test]
async fn reads_certificate_metadata_and_the_matching_secret_as_the_service_account() {
    let Env { sandbox, azure } = env().await;
    grant_certificate_user(&sandbox);
    let id = identity("app-a");
    let meta = azure.certificate(&id, &vault_url(), seed000::CERTIFICATE, None).await.unwrap();
    assert_eq!(meta.x5t.len(), 27, "{meta:?}");
    assert!(meta.enabled && meta.not_after.unwrap() > jiff::Timestamp::now());
    let secret = azure.certificate_secret(&id, &vault_url(), seed000::CERTIFICATE, &meta.version).await.unwrap();
    assert_eq!(secret.version, meta.version);
    assert!(!format!("{secret:?}").contains(&secret.value[..20]), "Debug never shows the value");
    let material = routewarden_certs::decode_secret(
        &secret.value,
        routewarden_certs::ContentType::from_key_vault(secret.content_type.as_deref(), &secret.value),
    )
    .unwrap();
    let leaf = &material.certs.iter().find(|c| !c.is_ca).unwrap();
    assert_eq!(leaf.x5t(), meta.x5t, "the metadata's thumbprint is the secret's leaf");

    // Steady state: more polls cost Key Vault calls only — no new token, no new challenge.
    let (tokens, challenges) =
        (sandbox.calls().get("entra", "Token", 200), sandbox.calls().get("keyvault", "GetCertificate", 401));
    for _ in 0..3 {
        azure.certificate(&id, &vault_url(), seed000::CERTIFICATE, None).await.unwrap();
    }
    assert_eq!(sandbox.calls().get("entra", "Token", 200), tokens);
    assert_eq!(sandbox.calls().get("keyvault", "GetCertificate", 401), challenges);
    assert_eq!(tokens, 1, "one token exchange for the identity");
}

#[tokio::test]
async fn sees_a_rotation_as_a_new_version_and_thumbprint() {
    let Env { sandbox, azure } = env().await;
    grant_certificate_user(&sandbox);
    let id = identity("app-a");
    let before = azure.certificate(&id, &vault_url(), seed000::CERTIFICATE, None).await.unwrap();
    let new_version = sandbox.admin().rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).unwrap();
    let after = azure.certificate(&id, &vault_url(), seed000::CERTIFICATE, None).await.unwrap();
    assert_eq!(after.version, new_version);
    assert_ne!(after.x5t, before.x5t);
    let pinned = azure.certificate(&id, &vault_url(), seed000::CERTIFICATE, Some(&before.version)).await.unwrap();
    assert_eq!(pinned.x5t, before.x5t, "a pinned version stays put");
}

#[tokio::test]
async fn classifies_key_vault_failures_for_the_caller() {
    let Env { sandbox, azure } = env().await;
    grant_certificate_user(&sandbox);
    let id = identity("app-a");
    let missing = azure.certificate(&id, &vault_url(), "no-such-cert", None).await.unwrap_err();
    assert_eq!(missing.kind, Kind::NotFound, "{missing}");

    let meta = azure.certificate(&id, &vault_url(), seed000::CERTIFICATE, None).await.unwrap();
    sandbox.admin().set_version_enabled(seed000::VAULT, seed000::CERTIFICATE, &meta.version, false).unwrap();
    let disabled = azure.certificate_secret(&id, &vault_url(), seed000::CERTIFICATE, &meta.version).await.unwrap_err();
    assert_eq!((disabled.kind, disabled.code.as_deref()), (Kind::Disabled, Some("SecretDisabled")), "{disabled}");

    let stranger = IdentityKey { namespace: "other".into(), ..identity("app-a") };
    let unfederated = azure.certificate(&stranger, &vault_url(), seed000::CERTIFICATE, None).await.unwrap_err();
    assert_eq!(unfederated.kind, Kind::Authentication, "{unfederated}");
    assert!(unfederated.to_string().contains("AADSTS70021"), "Entra's own code reaches the operator: {unfederated}");

    for a in sandbox.admin().role_assignments().into_iter().filter(|a| a.role.starts_with("Key Vault")) {
        sandbox.admin().remove_role_assignment(&a.id).unwrap();
    }
    let forbidden = azure.certificate(&identity("app-b"), &vault_url(), seed000::CERTIFICATE, None).await.unwrap_err();
    assert_eq!(forbidden.kind, Kind::Forbidden, "{forbidden}");
    assert!(!forbidden.kind.retryable());
}

fn zone(private: bool) -> ZoneRef {
    let (kind, name) = if private { ("privateDnsZones", seed000::PRIVATE_ZONE) } else { ("dnsZones", seed000::ZONE) };
    ZoneRef {
        id: format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{kind}/{name}",
            seed000::SUBSCRIPTION,
            seed000::RESOURCE_GROUP
        ),
        private,
    }
}

fn a_record(ip: &str) -> RecordSet {
    RecordSet {
        ttl: 300,
        targets: vec![ip.into()],
        metadata: BTreeMap::from([("routewarden-owner".into(), "cluster-1/clusterexternaldns/demo".into())]),
    }
}

#[tokio::test]
async fn writes_record_sets_only_under_the_expected_precondition() {
    let Env { azure, sandbox: _running } = env().await;
    let id = workload("app-a");
    for private in [false, true] {
        let zone = zone(private);
        let etag = azure
            .put_record_set(&id, &zone, "a", RecordKind::A, &a_record("20.0.0.1"), &Precondition::Absent)
            .await
            .unwrap();
        let again = azure
            .put_record_set(&id, &zone, "a", RecordKind::A, &a_record("20.0.0.9"), &Precondition::Absent)
            .await
            .unwrap_err();
        assert_eq!(again.kind, Kind::PreconditionFailed, "create never overwrites: {again}");
        let updated = azure
            .put_record_set(&id, &zone, "a", RecordKind::A, &a_record("20.0.0.2"), &Precondition::Matches(etag.clone()))
            .await
            .unwrap();
        assert_ne!(updated, etag);
        let stale = azure
            .put_record_set(&id, &zone, "a", RecordKind::A, &a_record("20.0.0.3"), &Precondition::Matches(etag.clone()))
            .await
            .unwrap_err();
        assert_eq!(stale.kind, Kind::PreconditionFailed, "update needs the current etag");
        let stored = azure.get_record_set(&id, &zone, "a", RecordKind::A).await.unwrap().unwrap();
        assert_eq!((stored.set, stored.etag.clone()), (a_record("20.0.0.2"), updated.clone()), "private={private}");
        let refused = azure.delete_record_set(&id, &zone, "a", RecordKind::A, &etag).await.unwrap_err();
        assert_eq!(refused.kind, Kind::PreconditionFailed);
        azure.delete_record_set(&id, &zone, "a", RecordKind::A, &updated).await.unwrap();
        assert!(azure.get_record_set(&id, &zone, "a", RecordKind::A).await.unwrap().is_none());
        azure
            .delete_record_set(&id, &zone, "a", RecordKind::A, &updated)
            .await
            .expect("deleting what is gone is success");
    }
}

#[tokio::test]
async fn lists_every_record_set_across_pages() {
    let Env { azure, sandbox: _running } = env().await;
    let id = workload("app-a");
    let zone = zone(false);
    for i in 0..130 {
        azure
            .put_record_set(&id, &zone, &format!("h{i}"), RecordKind::A, &a_record("20.0.0.1"), &Precondition::Absent)
            .await
            .unwrap();
    }
    azure
        .put_record_set(
            &id,
            &zone,
            "www",
            RecordKind::Cname,
            &RecordSet { targets: vec!["lb.example.net".into()], ..a_record("x") },
            &Precondition::Absent,
        )
        .await
        .unwrap();
    let (sets, total) = azure.list_record_sets(&id, &zone).await.unwrap();
    assert_eq!(sets.iter().filter(|s| s.kind == RecordKind::A && s.name.starts_with('h')).count(), 130);
    assert!(sets.iter().any(|s| s.kind == RecordKind::Cname && s.set.targets == ["lb.example.net"]));
    assert!(total >= 133, "SOA and NS count towards the zone's record sets: {total}");
}

#[tokio::test]
async fn reports_throttling_with_retry_after_and_never_retries_by_itself() {
    let Env { sandbox, azure } = env().await;
    let id = workload("app-a");
    let limits = RateLimits {
        enabled: true,
        public_zone_writes: Bucket { limit: 1, period_seconds: 3600.0 },
        ..RateLimits::default()
    };
    sandbox.admin().set_faults(FaultConfig { rate_limits: limits, ..FaultConfig::default() });
    azure
        .put_record_set(&id, &zone(false), "one", RecordKind::A, &a_record("20.0.0.1"), &Precondition::Absent)
        .await
        .unwrap();
    let before = sandbox.calls().get("arm", "RecordSets_CreateOrUpdate", 429);
    let throttled = azure
        .put_record_set(&id, &zone(false), "two", RecordKind::A, &a_record("20.0.0.1"), &Precondition::Absent)
        .await
        .unwrap_err();
    assert_eq!(throttled.kind, Kind::Throttled, "{throttled}");
    assert!(throttled.retry_after.is_some_and(|d| d.as_secs() >= 1), "{throttled:?}");
    assert_eq!(
        sandbox.calls().get("arm", "RecordSets_CreateOrUpdate", 429),
        before + 1,
        "exactly one call: retrying is the work queue's job"
    );
}

#[tokio::test]
async fn seed_000_roles_follow_rotation_through_secret_metadata_alone() {
    let Env { sandbox, azure } = env().await;
    let id = identity("app-b");
    let denied = azure.certificate(&id, &vault_url(), seed000::CERTIFICATE, None).await.unwrap_err();
    assert_eq!(denied.kind, Kind::Forbidden, "Key Vault Secrets User cannot read certificate metadata: {denied}");
    let current = azure.current_secret_version(&id, &vault_url(), seed000::CERTIFICATE).await.unwrap().unwrap();
    let rotated = sandbox.admin().rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).unwrap();
    let next = azure.current_secret_version(&id, &vault_url(), seed000::CERTIFICATE).await.unwrap().unwrap();
    assert_eq!(next.version, rotated);
    assert_ne!(next.version, current.version);
    sandbox.admin().set_version_enabled(seed000::VAULT, seed000::CERTIFICATE, &rotated, false).unwrap();
    let back = azure.current_secret_version(&id, &vault_url(), seed000::CERTIFICATE).await.unwrap().unwrap();
    assert_eq!(back.version, current.version, "a disabled newest version is skipped");
    let secret = azure.certificate_secret(&id, &vault_url(), seed000::CERTIFICATE, &back.version).await.unwrap();
    assert!(!secret.value.is_empty());
}

fn imds_token_calls(sandbox: &AzureSandbox) -> u64 {
    sandbox.calls().total("imds", "Token")
}

#[tokio::test]
async fn writes_a_record_set_as_the_nodes_managed_identity() {
    let Env { sandbox, azure } = env().await;
    let node = Principal::Managed { client_id: seed000::NODE_CLIENT_ID.into() };
    let etag = azure
        .put_record_set(&node, &zone(false), "mi", RecordKind::A, &a_record("20.0.0.7"), &Precondition::Absent)
        .await
        .unwrap();
    let stored = azure.get_record_set(&node, &zone(false), "mi", RecordKind::A).await.unwrap().unwrap();
    assert_eq!((stored.set, stored.etag), (a_record("20.0.0.7"), etag.clone()));
    let (sets, _) = azure.list_record_sets(&node, &zone(false)).await.unwrap();
    assert!(sets.iter().any(|s| s.name == "mi"));
    azure.delete_record_set(&node, &zone(false), "mi", RecordKind::A, &etag).await.unwrap();
    assert_eq!(imds_token_calls(&sandbox), 1, "one IMDS token serves every call");
    // The credential keeps it too (for every pipeline that shares it), until near its expiry.
    let credential = azure.credential(&node).unwrap();
    let scope = Cloud::public().resource_manager_scope();
    let token = credential.get_token(&[scope.as_str()], None).await.unwrap();
    assert!(token.expires_on > azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::minutes(50));
    assert_eq!(imds_token_calls(&sandbox), 1, "the credential's cache answered");
    assert_eq!(sandbox.calls().service_total("entra"), 0, "a managed identity never goes to Entra");

    // Its only role is on the public zone.
    let forbidden = azure
        .put_record_set(&node, &zone(true), "mi", RecordKind::A, &a_record("20.0.0.7"), &Precondition::Absent)
        .await
        .unwrap_err();
    assert_eq!(forbidden.kind, Kind::Forbidden, "{forbidden}");
}

#[tokio::test]
async fn a_managed_identity_the_node_does_not_have_fails_authentication_naming_it() {
    let Env { sandbox, azure } = env().await;
    let stranger = "11111111-2222-3333-4444-555555555555";
    let missing = Principal::Managed { client_id: stranger.into() };
    let e = azure.get_record_set(&missing, &zone(false), "x", RecordKind::A).await.unwrap_err();
    assert_eq!(e.kind, Kind::Authentication, "{e}");
    assert!(!e.kind.retryable());
    let text = e.to_string();
    assert!(text.contains(stranger) && text.contains("Identity not found"), "{text}");
    assert_eq!(sandbox.calls().get("imds", "Token", 400), 1);
    assert_eq!(sandbox.calls().service_total("arm"), 0, "no ARM call without a token");
}

#[tokio::test]
async fn imds_outages_and_an_unreachable_endpoint_are_retryable() {
    use routewarden_sandbox_azure::FaultRule;
    let Env { sandbox, azure } = env().await;
    sandbox.admin().set_faults(FaultConfig {
        faults: vec![FaultRule { service: Some("imds".into()), error_503: 1.0, ..FaultRule::default() }],
        ..FaultConfig::default()
    });
    let node = Principal::Managed { client_id: seed000::NODE_CLIENT_ID.into() };
    let e = azure.get_record_set(&node, &zone(false), "x", RecordKind::A).await.unwrap_err();
    assert_eq!((e.kind, e.status), (Kind::Transient, Some(503)), "{e}");
    assert!(e.retry_after.is_some(), "IMDS's Retry-After is kept: {e:?}");
    assert_eq!(imds_token_calls(&sandbox), 1, "no retry inside the credential");
    sandbox.admin().set_faults(FaultConfig::default());
    assert!(azure.get_record_set(&node, &zone(false), "x", RecordKind::A).await.unwrap().is_none());

    // Nothing listening at the endpoint (not on Azure, IMDS blocked): a connection failure.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metadata/identity/oauth2/token", closed.local_addr().unwrap()).parse().unwrap();
    drop(closed);
    let http = build_client(&TransportConfig::default()).unwrap();
    let nowhere = AzureClient::new(Cloud::public(), http, Arc::new(Issuer(EncodingKey::from_secret(b"unused"))))
        .with_managed_identity_endpoint(ImdsEndpoint::new(
            url,
            build_imds_client(&TransportConfig::default()).unwrap(),
        ));
    let e = nowhere.get_record_set(&node, &zone(false), "x", RecordKind::A).await.unwrap_err();
    assert_eq!(e.kind, Kind::Transient, "{e}");
    assert!(e.to_string().contains(seed000::NODE_CLIENT_ID), "{e}");
}
