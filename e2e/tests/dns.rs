//! Seed 000's DNS walkthrough end to end: a ClusterExternalDNS publishes an A record per Gateway,
//! a namespaced ExternalDNS with a label filter publishes only its Gateway, a restart with
//! nothing changed writes nothing, and a record set someone else owns is never overwritten.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::dns::{
    self, WAIT, a_record, dns_api, gateway_addresses, ready_of, ready_when, wait_for_a, writes, zone_id,
};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use routewarden_sandbox_azure::Scenario;
use std::time::Duration;

fn cluster_dns() -> String {
    dns::cluster_dns("demo-cluster-dns", &[zone_id()], None)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_walkthrough_publishes_cluster_then_namespaced_records_and_a_restart_writes_nothing() {
    let mut env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let a_ips = gateway_addresses(&env, "app-a", "a-gateway").await;
    let b_ips = gateway_addresses(&env, "app-b", "b-gateway").await;

    // ClusterExternalDNS: one A record per Gateway, TTL 300, the Gateway's addresses.
    env.apply_yaml(&cluster_dns()).await.unwrap();
    let (ttl, ips, meta) = wait_for_a(&env, seed000::ZONE, "a").await;
    assert_eq!((ttl, ips), (300, a_ips.clone()));
    assert!(meta["routewarden-owner"].as_str().unwrap().ends_with("/clusterexternaldns/demo-cluster-dns"), "{meta}");
    let (ttl, ips, _) = wait_for_a(&env, seed000::ZONE, "b").await;
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
    let (ttl, ips, meta) = wait_for_a(&env, seed000::ZONE, "c").await;
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

    wait_for_a(&env, seed000::ZONE, "a").await;
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
    let (ttl, ips, _) = wait_for_a(&env, seed000::ZONE, "a").await;
    assert_eq!((ttl, ips), (300, gateway_addresses(&env, "app-a", "a-gateway").await));
    env.shutdown().await;
}
