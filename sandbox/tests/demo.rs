//! The `demo` walkthrough as a library: applying seed 000's manifests through the API (and again,
//! changing nothing), and the report read back from listener Secrets and Gateways — made here by
//! hand, the way routewarden makes them. Then the DNS walkthrough with routewarden itself running
//! in the sandbox, as `demo` runs it: the zone's record sets, the resources' status and the stale
//! report it shows.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use routewarden_sandbox::demo;
use routewarden_sandbox::demo::dns::{self, DnsResource};
use routewarden_sandbox::kube::KubeServerOptions;
use routewarden_sandbox::up::{DaemonOptions, Sandbox, UpOptions};
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

/// What `routewarden-sandbox demo` starts: the sandbox with local Azure (seed 000's scenario) and
/// routewarden running in it, in memory.
async fn sandbox_with_routewarden(dir: &std::path::Path) -> Sandbox {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Sandbox::start(UpOptions {
        dir: dir.to_path_buf(),
        kube: KubeServerOptions {
            extra_crds: routewarden_sandbox::kube::crd::routewarden_crds(),
            ..KubeServerOptions::default()
        },
        azure: true,
        scenario: None,
        daemon: Some(DaemonOptions { certificate_poll_interval: "2m".into() }),
    })
    .await
    .unwrap()
}

/// A Gateway's `status.addresses`, sorted (the stand-in has given them by the time the
/// walkthrough's records are published).
async fn gateway_addresses(client: &kube::Client, ns: &str, gw: &str) -> Vec<String> {
    let gw = gateway_api(client, ns, "Gateway", "gateways").get(gw).await.unwrap();
    let ips = gw.data["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["value"].as_str().map(str::to_string))
        .collect();
    sorted(ips)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The cells of the first line of `shown` whose first cell is `first` (columns are two or more
/// spaces apart, as in the Azure CLI's tables).
fn row(shown: &str, first: &str) -> Vec<String> {
    let line = shown.lines().find(|l| l.split("  ").next() == Some(first));
    let line = line.unwrap_or_else(|| panic!("no row {first:?} in\n{shown}"));
    line.split("  ").map(str::trim).filter(|c| !c.is_empty()).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dns_walkthrough_publishes_a_record_per_gateway_and_reports_records_status_and_stale() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox_with_routewarden(dir.path()).await;
    let client = sandbox.kube().client().await.unwrap();
    let azure = sandbox.azure().unwrap().admin();
    let admin = sandbox.daemon().unwrap().admin_url();
    demo::apply_walkthrough(&client).await.unwrap();

    let waited =
        dns::wait_for_records(&client, &azure, &dns::CLUSTER_RECORDS, &DnsResource::demo_cluster(), Duration::ZERO)
            .await
            .unwrap_err()
            .to_string();
    for missing in [
        "A record set a in zone example.com",
        "A record set b in zone example.com",
        "ClusterExternalDNS demo-cluster-dns (it does not exist)",
    ] {
        assert!(waited.contains(missing), "the timeout names {missing:?}: {waited}");
    }

    let mut said = Vec::new();
    let walkthrough =
        dns::run(&client, &azure, &admin, Duration::from_secs(60), |line| said.push(line.to_string())).await.unwrap();
    let said = said.join("\n");
    for step in [
        "  ClusterExternalDNS demo-cluster-dns",
        "Deleting ClusterExternalDNS demo-cluster-dns, as the seed does",
        "  Gateway app-a/c-gateway",
        "  HTTPRoute app-a/c-route",
        "  ExternalDNS app-a/demo-ns-dns",
    ] {
        assert!(said.contains(step), "the demo tells {step:?}:\n{said}");
    }
    assert!(said.contains(&walkthrough.cluster.to_string()), "both reports are shown:\n{said}");
    let a_ips = gateway_addresses(&client, "app-a", "a-gateway").await;
    let b_ips = gateway_addresses(&client, "app-b", "b-gateway").await;
    let c_ips = gateway_addresses(&client, "app-a", "c-gateway").await;

    // The ClusterExternalDNS: one A record set per Gateway, each with the Gateway's addresses.
    let cluster = &walkthrough.cluster;
    for (name, ips) in [("a", &a_ips), ("b", &b_ips)] {
        let set = cluster.record_set(name).unwrap_or_else(|| panic!("record set {name}: {cluster:?}"));
        assert_eq!(
            (set.ttl, sorted(set.ips.clone()), set.record_type.as_str(), set.resource_group.as_str()),
            (Some(300), ips.clone(), "A", "approuting-demo-rg")
        );
        assert_eq!(set.fqdn, format!("{name}.example.com."));
        let owner = set.owner.as_deref().unwrap_or_default();
        assert!(owner.ends_with("/clusterexternaldns/demo-cluster-dns"), "{owner}");
    }
    assert!(cluster.record_set("c").is_none(), "c-gateway comes with the namespaced step: {cluster:?}");
    let status = cluster.resource(&DnsResource::demo_cluster()).unwrap();
    let ready = status.ready.as_ref().unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Synced"), "{status:?}");
    assert_eq!((status.records_desired, status.records_applied, status.conflicts), (Some(2), Some(2), Some(0)));
    assert_eq!(cluster.stale, None, "the stale report comes at the end");

    // The namespaced ExternalDNS: only c-gateway (app-a, zone=c); the deleted resource's record
    // sets are still there, as the seed says.
    let ns = &walkthrough.namespaced;
    assert!(!c_ips.is_empty() && !a_ips.is_empty() && !b_ips.is_empty(), "every Gateway has an address");
    let c = ns.record_set("c").unwrap();
    assert_eq!((c.ttl, sorted(c.ips.clone())), (Some(300), c_ips.clone()));
    assert!(c.owner.as_deref().unwrap_or_default().ends_with("/externaldns/app-a/demo-ns-dns"), "{c:?}");
    assert_eq!(ns.record_set("a").map(|s| sorted(s.ips.clone())), Some(a_ips.clone()));
    assert_eq!(ns.record_set("b").map(|s| s.owner.clone()), cluster.record_set("b").map(|s| s.owner.clone()));
    assert_eq!(ns.resource(&DnsResource::demo_cluster()), None, "deleted as the seed deletes it");
    let status = ns.resource(&DnsResource::demo_namespaced()).unwrap();
    let ready = status.ready.as_ref().unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "Synced"), "{status:?}");
    assert_eq!((status.records_desired, status.records_applied, status.conflicts), (Some(1), Some(1), Some(0)));
    let stale = ns.stale.as_ref().unwrap();
    assert_eq!(stale.admin_url, admin);
    let view = stale.view.as_ref().unwrap_or_else(|e| panic!("the stale report is served: {e}"));

    // As shown: the Azure CLI's columns, the status table and `routewarden journal stale`.
    let shown = ns.to_string();
    assert!(shown.starts_with("$ az network dns record-set a list -g approuting-demo-rg -z example.com -o table\n"));
    assert_eq!(row(&shown, "Name"), ["Name", "ResourceGroup", "Ttl", "Type", "Fqdn", "IPs", "routewarden-owner"]);
    let c_row = row(&shown, "c");
    assert_eq!(c_row[..6], ["c", "approuting-demo-rg", "300", "A", "c.example.com.", &c_ips.join(",")]);
    assert!(c_row[6].ends_with("/externaldns/app-a/demo-ns-dns"), "{c_row:?}");
    assert_eq!(row(&shown, "a")[2..4], ["300", "A"]);
    assert_eq!(
        row(&shown, "ExternalDNS app-a/demo-ns-dns")[..8],
        ["ExternalDNS app-a/demo-ns-dns", "True (Synced)", "True (StaleRecords)", "1", "1", "0", "2", "0"]
    );
    // a and b, kept from the deleted ClusterExternalDNS, are the stale report's.
    let zone = view.zones.iter().find(|z| z.zone == "example.com").expect("example.com is verified");
    let stale: Vec<&str> = zone.stale.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(stale, ["a", "b"], "{shown}");
    assert!(zone.stale.iter().all(|r| r.detail.contains("clusterexternaldns/demo-cluster-dns is deleted")), "{shown}");
    let rendered =
        routewarden::cli::render::stale(view, &routewarden::cli::render::Style::plain(routewarden_store::Time::now()));
    assert!(
        shown.contains(&format!("$ routewarden journal stale --admin {admin}\n{}", rendered.lines().next().unwrap())),
        "the stale report as `routewarden journal stale` renders it:\n{shown}"
    );

    // Again, over what the first run left: it starts from the seed's starting point and converges.
    let mut said = Vec::new();
    let again =
        dns::run(&client, &azure, &admin, Duration::from_secs(60), |line| said.push(line.to_string())).await.unwrap();
    let said = said.join("\n");
    assert!(
        said.contains("  ExternalDNS app-a/demo-ns-dns\n  Gateway app-a/c-gateway\n  HTTPRoute app-a/c-route"),
        "{said}"
    );
    assert!(again.namespaced.record_set("c").is_some(), "{again:?}");
    sandbox.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_istio_ca_walkthrough_writes_cacerts_and_shows_it_ready() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = sandbox_with_routewarden(dir.path()).await;
    let client = sandbox.kube().client().await.unwrap();
    let azure = sandbox.azure().unwrap().admin();
    let mut shown = Vec::new();
    demo::istio_ca::run(&client, &azure, Duration::from_secs(30), |line| shown.push(line)).await.unwrap();
    let shown = shown.join("\n");
    let secret = Api::<Secret>::namespaced(client.clone(), demo::istio_ca::NAMESPACE).get("cacerts").await.unwrap();
    let keys: Vec<&String> = secret.data.as_ref().unwrap().keys().collect();
    assert_eq!(keys, ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    assert!(shown.contains("Ready=True reason=Synced"), "{shown}");
    assert!(shown.contains("CN=Intermediate CA - A1, O=Istio → CN=Root A, O=Istio"), "{shown}");
    assert!(shown.contains("private key (not shown)") && !shown.contains("PRIVATE KEY"), "{shown}");
    sandbox.shutdown().await.unwrap();
}
