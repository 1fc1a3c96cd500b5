//! The `demo` walkthrough as a library: applying seed 000's manifests through the API (and again,
//! changing nothing), and the report read back from listener Secrets and Gateways — made here by
//! hand, the way routewarden makes them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use routewarden_sandbox::demo;
use serde_json::{Value, json};

fn gateway_api(client: &kube::Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind), plural);
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// What `apply_walkthrough` owns of an object: everything but status and server-set metadata.
fn applied_part(obj: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(obj).unwrap();
    v.as_object_mut().unwrap().remove("status");
    let meta = v["metadata"].as_object_mut().unwrap();
    for server_set in ["resourceVersion", "managedFields", "creationTimestamp"] {
        meta.remove(server_set);
    }
    v
}

#[tokio::test]
async fn the_walkthrough_applies_its_objects_and_applying_again_changes_nothing() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    let applied = demo::apply_walkthrough(&client).await.unwrap();
    assert_eq!(
        applied,
        [
            "Namespace app-a",
            "ServiceAccount app-a/approuting-demo-sa",
            "Namespace app-b",
            "ServiceAccount app-b/approuting-demo-sa",
            "Gateway app-a/a-gateway",
            "HTTPRoute app-a/a-route",
            "Gateway app-b/b-gateway",
            "HTTPRoute app-b/b-route",
        ]
    );
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), "app-b");
    let sa_before = sa.get("approuting-demo-sa").await.unwrap();
    assert_eq!(
        sa_before.metadata.annotations.as_ref().unwrap()["azure.workload.identity/client-id"],
        routewarden_sandbox_azure::scenario::seed000::CLIENT_ID
    );
    let gateways = gateway_api(&client, "app-a", "Gateway", "gateways");
    let gw_before = gateways.get("a-gateway").await.unwrap();
    assert_eq!(
        gw_before.data["spec"]["listeners"][0]["tls"]["options"]["kubernetes.azure.com/tls-cert-keyvault-uri"],
        "https://kv-demo.vault.azure.net/certificates/approuting-demo-cert"
    );
    assert!(
        gw_before
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .any(|m| m.manager.as_deref() == Some(demo::FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")),
        "applied server-side under the demo's field manager"
    );
    assert!(gateway_api(&client, "app-b", "HTTPRoute", "httproutes").get("b-route").await.is_ok());

    let ns_before = namespaces.get("app-a").await.unwrap();
    assert_eq!(demo::apply_walkthrough(&client).await.unwrap(), applied, "applying again succeeds");
    let sa_after = sa.get("approuting-demo-sa").await.unwrap();
    assert_eq!(sa_after.metadata.resource_version, sa_before.metadata.resource_version, "a no-op apply is no write");
    let gw_after = gateways.get("a-gateway").await.unwrap();
    assert_eq!(
        applied_part(&gw_after),
        applied_part(&gw_before),
        "same Gateway (status aside: the controller writes it)"
    );
    assert_eq!(gw_after.metadata.generation, Some(1));
    assert_eq!(namespaces.get("app-a").await.unwrap().metadata.uid, ns_before.metadata.uid, "the same namespace");
}

/// A self-signed `*.example.com` certificate like seed 000's, as a PEM chain.
fn certificate() -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(vec!["*.example.com".to_string(), "example.com".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, "*.example.com");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// What routewarden writes for a listener: the Secret with its annotations and the listener's
/// certificateRefs (applied under its own field manager, as on a cluster).
async fn sync_by_hand(client: &kube::Client, ns: &str, gateway: &str, version: &str) {
    let name = format!("kv-gw-cert-{gateway}-https");
    let (crt, key) = certificate();
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": {
            demo::ANNOTATION_VERSION: version,
            demo::ANNOTATION_NOT_AFTER: "2027-01-01T00:00:00Z",
            demo::ANNOTATION_X5T: "x5t-of-the-leaf",
        }},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": crt, "tls.key": key},
    }))
    .unwrap();
    Api::<Secret>::namespaced(client.clone(), ns).create(&PostParams::default(), &secret).await.unwrap();
    let refs = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "spec": {"listeners": [{"name": "https", "tls": {"certificateRefs": [{"group": "", "kind": "Secret", "name": name}]}}]}});
    gateway_api(client, ns, "Gateway", "gateways")
        .patch(gateway, &PatchParams::apply("routewarden").force(), &Patch::Apply(refs))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_report_shows_each_listeners_secret_certificate_and_gateway_state() {
    let server = common::server().await;
    let client = server.client().await.unwrap();
    demo::apply_walkthrough(&client).await.unwrap();

    let waited = demo::wait_and_report(&client, Duration::from_millis(200)).await.unwrap_err().to_string();
    for missing in [
        "Secret app-a/kv-gw-cert-a-gateway-https",
        "app-a/a-gateway listener https tls.certificateRefs naming kv-gw-cert-a-gateway-https",
        "Secret app-b/kv-gw-cert-b-gateway-https",
    ] {
        assert!(waited.contains(missing), "the timeout names {missing:?}: {waited}");
    }

    sync_by_hand(&client, "app-a", "a-gateway", "0123456789abcdef0123456789abcdef").await;
    let spc = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass"),
        "secretproviderclasses",
    );
    let spc_object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
        "metadata": {"name": "kv-gw-cert-a-gateway-https"}, "spec": {"provider": "azure"}}))
    .unwrap();
    Api::<DynamicObject>::namespaced_with(client.clone(), "app-a", &spc)
        .create(&PostParams::default(), &spc_object)
        .await
        .unwrap();
    let partial = demo::report(&client).await.unwrap();
    assert_eq!(
        partial.missing(),
        [
            "Secret app-b/kv-gw-cert-b-gateway-https",
            "app-b/b-gateway listener https tls.certificateRefs naming kv-gw-cert-b-gateway-https"
        ]
    );

    sync_by_hand(&client, "app-b", "b-gateway", "fedcba9876543210fedcba9876543210").await;
    let report = demo::wait_and_report(&client, Duration::from_secs(10)).await.unwrap();
    let [a, b] = &report.listeners[..] else { panic!("two listeners: {report:?}") };
    assert_eq!((a.listener.namespace.as_str(), a.listener.gateway.as_str()), ("app-a", "a-gateway"));
    assert_eq!(a.secret_provider_class.as_deref(), Some("kv-gw-cert-a-gateway-https"));
    assert_eq!(b.secret_provider_class, None, "none was made for b");
    assert_eq!(a.secret.as_deref(), Some("kv-gw-cert-a-gateway-https"));
    assert_eq!(a.subject.as_deref(), Some("CN=*.example.com"));
    assert_eq!(a.sans, ["*.example.com", "example.com"]);
    assert_eq!(a.version.as_deref(), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(b.version.as_deref(), Some("fedcba9876543210fedcba9876543210"));
    assert_eq!(a.not_after.as_deref(), Some("2027-01-01T00:00:00Z"));
    assert_eq!(a.x5t.as_deref(), Some("x5t-of-the-leaf"));
    assert_eq!(a.certificate_refs, ["kv-gw-cert-a-gateway-https"]);
    common::eventually("the stand-in programs both Gateways", || async {
        demo::report(&client).await.unwrap().listeners.iter().all(|l| l.programmed.as_deref() == Some("True"))
    })
    .await;

    let shown = demo::report(&client).await.unwrap().to_string();
    // The table's rows as cells: field name, then one value per listener.
    let row = |field: &str| -> Vec<String> {
        let line = shown.lines().find(|l| l.split(['│', '┆']).nth(1).is_some_and(|c| c.trim() == field));
        let line = line.unwrap_or_else(|| panic!("no {field} row in\n{shown}"));
        line.split(['│', '┆']).map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
    };
    assert_eq!(row(""), ["app-a/a-gateway https", "app-b/b-gateway https"], "a column per listener");
    assert_eq!(row("SecretProviderClass"), ["SecretProviderClass", "kv-gw-cert-a-gateway-https", "-"]);
    assert_eq!(row("Secret"), ["Secret", "kv-gw-cert-a-gateway-https", "kv-gw-cert-b-gateway-https"]);
    assert_eq!(row("subject"), ["subject", "CN=*.example.com", "CN=*.example.com"]);
    assert_eq!(row("SANs"), ["SANs", "*.example.com, example.com", "*.example.com, example.com"]);
    assert_eq!(
        row("Key Vault version"),
        ["Key Vault version", "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"]
    );
    assert_eq!(row("certificateRefs"), ["certificateRefs", "kv-gw-cert-a-gateway-https", "kv-gw-cert-b-gateway-https"]);
    assert_eq!(row("Gateway Programmed"), ["Gateway Programmed", "True", "True"]);
}
