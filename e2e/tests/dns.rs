//! Seed 000's DNS walkthrough end to end: a ClusterExternalDNS publishes an A record per Gateway,
//! a namespaced ExternalDNS with a label filter publishes only its Gateway, a restart with
//! nothing changed writes nothing, and a record set someone else owns is never overwritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use routewarden_sandbox_azure::Scenario;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

fn zone_id() -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnszones/{}",
        seed000::SUBSCRIPTION,
        seed000::RESOURCE_GROUP,
        seed000::ZONE
    )
}

fn cluster_dns() -> String {
    format!(
        r#"apiVersion: approuting.kubernetes.azure.com/v1alpha1
kind: ClusterExternalDNS
metadata:
  name: demo-cluster-dns
spec:
  resourceName: demo-cluster-dns
  resourceNamespace: app-a
  dnsZoneResourceIDs:
  - {}
  resourceTypes:
  - gateway
  identity:
    type: workloadIdentity
    serviceAccount: {}
"#,
        zone_id(),
        seed000::SERVICE_ACCOUNT
    )
}

fn namespaced_dns() -> String {
    format!(
        r#"apiVersion: approuting.kubernetes.azure.com/v1alpha1
kind: ExternalDNS
metadata:
  name: demo-ns-dns
  namespace: app-a
spec:
  resourceName: demo-ns-dns
  dnsZoneResourceIDs:
  - {}
  resourceTypes:
  - gateway
  identity:
    type: workloadIdentity
    serviceAccount: {}
  filters:
    gatewayLabels: "zone=c"
"#,
        zone_id(),
        seed000::SERVICE_ACCOUNT
    )
}

const C_GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: c-gateway
  namespace: app-a
  labels:
    app: approuting-demo
    zone: c
spec:
  gatewayClassName: approuting-istio
  listeners:
  - name: https
    hostname: c.example.com
    port: 443
    protocol: HTTPS
    tls:
      mode: Terminate
      options:
        kubernetes.azure.com/tls-cert-keyvault-uri: https://kv-demo.vault.azure.net/certificates/approuting-demo-cert
        kubernetes.azure.com/tls-cert-service-account: approuting-demo-sa
    allowedRoutes:
      namespaces:
        from: Same
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: c-route
  namespace: app-a
spec:
  parentRefs:
  - name: c-gateway
  hostnames: ["c.example.com"]
  rules:
  - backendRefs:
    - name: httpbin
      port: 8000
"#;

/// An A record set of the public zone: (TTL, addresses, metadata).
fn a_record(sets: &[Value], name: &str) -> Option<(u64, Vec<String>, Value)> {
    let set = sets.iter().find(|s| s["name"] == name && s["type"].as_str().is_some_and(|t| t.ends_with("/A")))?;
    let p = &set["properties"];
    let mut ips: Vec<String> =
        p["ARecords"].as_array()?.iter().filter_map(|r| r["ipv4Address"].as_str().map(str::to_owned)).collect();
    ips.sort();
    Some((p["TTL"].as_u64()?, ips, p["metadata"].clone()))
}

async fn wait_for_a(env: &Env, name: &str) -> (u64, Vec<String>, Value) {
    wait_for(&format!("A record {name}"), WAIT, || async {
        a_record(&env.azure.admin().list_record_sets(seed000::ZONE).ok()?, name)
    })
    .await
    .unwrap()
}

async fn gateway_addresses(env: &Env, ns: &str, gw: &str) -> Vec<String> {
    wait_for(&format!("addresses of {ns}/{gw}"), WAIT, || async {
        let gw = env.gateways(ns).get(gw).await.ok()?;
        let mut ips: Vec<String> = gw.data["status"]["addresses"]
            .as_array()?
            .iter()
            .filter_map(|a| a["value"].as_str().map(str::to_owned))
            .collect();
        ips.sort();
        (!ips.is_empty()).then_some(ips)
    })
    .await
    .unwrap()
}

fn dns_api(env: &Env, plural: &str, ns: Option<&str>) -> kube::Api<kube::api::DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("approuting.kubernetes.azure.com", "v1alpha1", "");
    let ar = kube::discovery::ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(ns) => kube::Api::namespaced_with(env.client.clone(), ns, &ar),
        None => kube::Api::all_with(env.client.clone(), &ar),
    }
}

/// The Ready condition (status, reason, message) and the status counts, once `accept` holds.
async fn ready_when(env: &Env, plural: &str, ns: Option<&str>, name: &str, accept: impl Fn(&Value) -> bool) -> Value {
    wait_for(&format!("status of {plural}/{name}"), WAIT, || async {
        let obj = dns_api(env, plural, ns).get(name).await.ok()?;
        let status = obj.data.get("status")?.clone();
        accept(&status).then_some(status)
    })
    .await
    .unwrap()
}

fn ready_of(status: &Value) -> (String, String) {
    let c = status["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
    c.map(|c| (c["status"].as_str().unwrap_or("").to_owned(), c["reason"].as_str().unwrap_or("").to_owned()))
        .unwrap_or_default()
}

fn writes(env: &Env) -> u64 {
    let calls = env.azure.calls();
    calls.total("arm", "RecordSets_CreateOrUpdate") + calls.total("arm", "RecordSets_Delete")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_walkthrough_publishes_cluster_then_namespaced_records_and_a_restart_writes_nothing() {
    let mut env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let a_ips = gateway_addresses(&env, "app-a", "a-gateway").await;
    let b_ips = gateway_addresses(&env, "app-b", "b-gateway").await;

    // ClusterExternalDNS: one A record per Gateway, TTL 300, the Gateway's addresses.
    env.apply_yaml(&cluster_dns()).await.unwrap();
    let (ttl, ips, meta) = wait_for_a(&env, "a").await;
    assert_eq!((ttl, ips), (300, a_ips.clone()));
    assert!(meta["routewarden-owner"].as_str().unwrap().ends_with("/clusterexternaldns/demo-cluster-dns"), "{meta}");
    let (ttl, ips, _) = wait_for_a(&env, "b").await;
    assert_eq!((ttl, ips), (300, b_ips.clone()));
    let status = ready_when(&env, "clusterexternaldnses", None, "demo-cluster-dns", |s| ready_of(s).0 == "True").await;
    assert_eq!(ready_of(&status), ("True".into(), "Synced".into()), "{status}");
    assert_eq!((status["recordsDesired"].as_u64(), status["recordsApplied"].as_u64()), (Some(2), Some(2)), "{status}");
    assert_eq!(env.azure.calls().get("arm", "RecordSets_CreateOrUpdate", 201), 2, "one create per record set");

    // Delete it: as with the anchor, its records stay in the zone.
    dns_api(&env, "clusterexternaldnses", None).delete("demo-cluster-dns", &Default::default()).await.unwrap();
    // The namespaced ExternalDNS with zone=c publishes only c-gateway.
    env.apply_yaml(C_GATEWAY).await.unwrap();
    let c_ips = gateway_addresses(&env, "app-a", "c-gateway").await;
    env.apply_yaml(&namespaced_dns()).await.unwrap();
    let (ttl, ips, meta) = wait_for_a(&env, "c").await;
    assert_eq!((ttl, ips), (300, c_ips));
    assert!(meta["routewarden-owner"].as_str().unwrap().ends_with("/externaldns/app-a/demo-ns-dns"), "{meta}");
    // Status follows the journal: wait until it reports the applied record.
    let status = ready_when(&env, "externaldnses", Some("app-a"), "demo-ns-dns", |s| {
        ready_of(s).0 == "True" && s["recordsApplied"].as_u64().is_some_and(|n| n > 0)
    })
    .await;
    assert_eq!(status["recordsApplied"].as_u64(), Some(1), "b-gateway (app-b) and a-gateway (zone=a) are out of scope");
    assert_eq!(status["recordsDesired"].as_u64(), Some(1));
    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    assert_eq!(a_record(&sets, "a").map(|r| r.1), Some(a_ips), "records of the deleted resource are kept");
    assert_eq!(a_record(&sets, "b").map(|r| r.1), Some(b_ips));
    assert_eq!(env.azure.calls().total("arm", "RecordSets_Delete"), 0);

    // A restart with nothing changed: no record-set writes at all.
    env.stop_daemon().await.unwrap();
    env.azure.admin().reset_calls();
    env.start_daemon().await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(writes(&env), 0, "{:?}", env.azure.admin().calls());
    let status = ready_when(&env, "externaldnses", Some("app-a"), "demo-ns-dns", |s| ready_of(s).0 == "True").await;
    assert_eq!(status["recordsApplied"].as_u64(), Some(1));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_record_set_in_the_way_is_never_overwritten() {
    use routewarden_sandbox_azure::scenario::RecordSetSpec;
    let mut scenario = Scenario::seed000();
    scenario.tenants[0].subscriptions[0].resource_groups[0].zones[0].record_sets.push(RecordSetSpec {
        name: "b".into(),
        record_type: "A".into(),
        ttl: 60,
        values: vec!["198.51.100.9".into()],
    });
    let env = Env::start(Options { scenario: Some(scenario), ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    gateway_addresses(&env, "app-b", "b-gateway").await;
    env.apply_yaml(&cluster_dns()).await.unwrap();

    wait_for_a(&env, "a").await;
    let status = ready_when(&env, "clusterexternaldnses", None, "demo-cluster-dns", |s| s["conflicts"] == 1).await;
    assert_eq!(ready_of(&status), ("False".into(), "Conflicts".into()), "{status}");
    let degraded = status["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "Degraded").unwrap();
    assert!(degraded["message"].as_str().unwrap().contains("not owned by this cluster"), "{degraded}");
    // The foreign record set is as it was, and the parked item is not retried.
    let before = env.azure.calls().total("arm", "RecordSets_CreateOrUpdate");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.azure.calls().total("arm", "RecordSets_CreateOrUpdate"), before);
    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    let (ttl, ips, meta) = a_record(&sets, "b").unwrap();
    assert_eq!((ttl, ips), (60, vec!["198.51.100.9".to_owned()]));
    assert!(meta.get("routewarden-owner").is_none(), "{meta}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_grpcroutes_still_gets_its_records() {
    let mut env = Env::start(Options { daemon: false, ..Options::default() }).await.unwrap();
    let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(env.client.clone());
    crds.delete("grpcroutes.gateway.networking.k8s.io", &Default::default()).await.unwrap();
    wait_for("the CRD is gone", WAIT, || async {
        crds.get_opt("grpcroutes.gateway.networking.k8s.io").await.ok()?.is_none().then_some(())
    })
    .await
    .unwrap();
    env.start_daemon().await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    env.apply_yaml(&cluster_dns()).await.unwrap();
    let (ttl, ips, _) = wait_for_a(&env, "a").await;
    assert_eq!((ttl, ips), (300, gateway_addresses(&env, "app-a", "a-gateway").await));
    env.shutdown().await;
}
