//! DNS record lifecycle end to end: records in a private zone, a Gateway that loses its address
//! briefly (nothing deleted) or for good (deleted once the hold-down has passed, not before), a
//! route whose hostname changes and that is then deleted, and twenty routes published through
//! Azure throttling and server errors to exactly the desired zone contents. A renamed route's old
//! name is deleted at once, without waiting out the hold-down: nothing flapped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use routewarden_e2e::dns::{
    self, a_record, a_records, gateway_addresses, gateway_without_addresses, http_gateway, private_zone_id, ready_of,
    ready_when, ready_within, route, synced_with, wait_for_a, wait_for_no_a, writes, zone_id,
};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use routewarden_sandbox_azure::{Bucket, FaultRule};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const CLUSTER_DNS: &str = "clusterexternaldnses";

fn http_routes(env: &Env, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
    Api::namespaced_with(env.client.clone(), ns, &ApiResource::from_gvk_with_plural(&gvk, "httproutes"))
}

fn owner_of(meta: &Value) -> &str {
    meta["routewarden-owner"].as_str().unwrap_or_default()
}

/// One listener publishes its own hostname; the other, without one, its routes'.
const PRIVATE_GATEWAY: &str = r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: p-gateway
  namespace: app-a
spec:
  gatewayClassName: approuting-istio
  listeners:
  - name: app
    port: 80
    protocol: HTTP
    hostname: app.internal.example.com
    allowedRoutes:
      namespaces:
        from: Same
  - name: any
    port: 8080
    protocol: HTTP
    allowedRoutes:
      namespaces:
        from: Same
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_zone_gets_the_records_too() {
    // Seed 000 has the private zone internal.example.com, and its identity is Private DNS Zone
    // Contributor on it (Scenario::seed000).
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(PRIVATE_GATEWAY).await.unwrap();
    env.apply_yaml(&route("app-a", "api", "p-gateway", &["api.internal.example.com"], None)).await.unwrap();
    let ips = gateway_addresses(&env, "app-a", "p-gateway").await;
    env.apply_yaml(&dns::cluster_dns("private-dns", &[private_zone_id()], None)).await.unwrap();

    for name in ["app", "api"] {
        let (ttl, got, meta) = wait_for_a(&env, seed000::PRIVATE_ZONE, name).await;
        assert_eq!((ttl, &got), (300, &ips), "{name}");
        assert!(owner_of(&meta).ends_with("/clusterexternaldns/private-dns"), "{name}: {meta}");
        assert!(meta["routewarden-cluster"].as_str().is_some_and(|c| !c.is_empty()), "{name}: {meta}");
    }
    // The private wire shape: lower-case property names, the privateDnsZones type and id.
    let sets = env.azure.admin().list_record_sets(seed000::PRIVATE_ZONE).unwrap();
    let app = sets.iter().find(|s| s["name"] == "app").unwrap();
    assert_eq!(app["type"], "Microsoft.Network/privateDnsZones/A", "{app}");
    assert!(app["id"].as_str().unwrap().ends_with("/privateDnsZones/internal.example.com/A/app"), "{app}");
    let props = &app["properties"];
    assert_eq!(props["ttl"], 300, "{app}");
    assert_eq!(props["aRecords"], serde_json::json!([{"ipv4Address": ips[0]}]), "{app}");
    assert!(props.get("TTL").is_none() && props.get("ARecords").is_none(), "no public-zone casing: {app}");

    let status = ready_when(&env, CLUSTER_DNS, None, "private-dns", |s| synced_with(s, 2)).await;
    assert_eq!(ready_of(&status), ("True".into(), "Synced".into()), "{status}");
    let calls = env.azure.calls();
    assert_eq!(calls.get("arm", "PrivateRecordSets_CreateOrUpdate", 201), 2, "{:?}", calls.snapshot());
    assert_eq!(calls.total("arm", "PrivateRecordSets_CreateOrUpdate"), 2, "one write per record set");
    assert_eq!(writes(&env), 0, "nothing went to the public zone");
    assert!(a_records(&env, seed000::ZONE).is_empty());
    env.shutdown().await;
}

/// The hold-down of the two address-loss tests: short, so they are fast, and long enough that
/// losing and regaining an address fits well inside it on a busy machine.
const HOLD_DOWN: Duration = Duration::from_secs(5);

/// The seed Gateways with a ClusterExternalDNS (hold-down [`HOLD_DOWN`]) over the public zone,
/// synced: records `a` and `b`. Returns a-gateway's addresses.
async fn seed_with_hold_down() -> (Env, Vec<String>) {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let ips = gateway_addresses(&env, "app-a", "a-gateway").await;
    let hold = u32::try_from(HOLD_DOWN.as_secs()).unwrap();
    env.apply_yaml(&dns::cluster_dns("held-dns", &[zone_id()], Some(hold))).await.unwrap();
    assert_eq!(wait_for_a(&env, seed000::ZONE, "a").await.1, ips);
    ready_when(&env, CLUSTER_DNS, None, "held-dns", |s| synced_with(s, 2)).await;
    env.azure.admin().reset_calls();
    (env, ips)
}

/// Withholds a-gateway's address and waits until the daemon has planned without it.
async fn lose_a_gateways_address(env: &Env) {
    env.kube.gateway_controller().withhold_address("app-a", "a-gateway");
    gateway_without_addresses(env, "app-a", "a-gateway").await;
    ready_when(env, CLUSTER_DNS, None, "held-dns", |s| s["recordsDesired"] == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_losing_its_address_briefly_deletes_nothing() {
    let (env, ips) = seed_with_hold_down().await;
    let lost = Instant::now();
    lose_a_gateways_address(&env).await;
    env.kube.gateway_controller().restore_address("app-a", "a-gateway");
    assert_eq!(gateway_addresses(&env, "app-a", "a-gateway").await, ips, "the same address comes back");
    ready_when(&env, CLUSTER_DNS, None, "held-dns", |s| synced_with(s, 2)).await;
    let back = lost.elapsed();
    assert!(back < HOLD_DOWN, "the address must come back within the hold-down to test it (took {back:?})");

    // Past the moment the held delete would have been due (plus the workers' one-second poll).
    tokio::time::sleep((HOLD_DOWN + Duration::from_secs(2)).saturating_sub(lost.elapsed())).await;
    let calls = env.azure.calls();
    assert_eq!(calls.total("arm", "RecordSets_Delete"), 0, "{:?}", calls.snapshot());
    assert_eq!(writes(&env), 0, "the record set was never changed, so nothing is rewritten either");
    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    let (ttl, got, meta) = a_record(&sets, "a").expect("record a is intact");
    assert_eq!((ttl, got), (300, ips));
    assert!(owner_of(&meta).ends_with("/clusterexternaldns/held-dns"), "{meta}");
    let status = ready_when(&env, CLUSTER_DNS, None, "held-dns", |s| synced_with(s, 2)).await;
    assert_eq!(ready_of(&status).1, "Synced", "{status}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_losing_its_address_for_good_is_deleted_after_the_hold_down() {
    let (env, ips) = seed_with_hold_down().await;
    let lost = Instant::now();
    lose_a_gateways_address(&env).await;

    // Halfway through the hold-down the record set is still there, untouched.
    tokio::time::sleep((HOLD_DOWN / 2).saturating_sub(lost.elapsed())).await;
    assert!(lost.elapsed() < HOLD_DOWN, "the halfway check ran too late to mean anything");
    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    assert_eq!(a_record(&sets, "a").map(|r| r.1), Some(ips), "held down, not deleted");
    assert_eq!(env.azure.calls().total("arm", "RecordSets_Delete"), 0);

    wait_for_no_a(&env, seed000::ZONE, "a").await;
    let deleted = lost.elapsed();
    assert!(deleted >= HOLD_DOWN, "deleted after {deleted:?}, before the hold-down of {HOLD_DOWN:?}");
    let calls = env.azure.calls();
    assert_eq!(calls.total("arm", "RecordSets_Delete"), 1, "exactly one delete: {:?}", calls.snapshot());
    assert_eq!(calls.total("arm", "RecordSets_CreateOrUpdate"), 0, "{:?}", calls.snapshot());
    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    assert!(a_record(&sets, "b").is_some(), "b-gateway kept its address and its record");
    ready_when(&env, CLUSTER_DNS, None, "held-dns", |s| synced_with(s, 1)).await;
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_route_deletes_its_record_and_changing_its_hostname_moves_it() {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    // No listener hostname: the route's hostnames are what gets published.
    env.apply_yaml(&http_gateway("app-a", "r-gateway", None)).await.unwrap();
    let ips = gateway_addresses(&env, "app-a", "r-gateway").await;
    // A renamed route still exists, so its old name is held down like an address flap: keep
    // the hold-down short.
    env.apply_yaml(&dns::cluster_dns("route-dns", &[zone_id()], Some(1))).await.unwrap();
    env.apply_yaml(&route("app-a", "shop", "r-gateway", &["shop.example.com"], None)).await.unwrap();
    let (ttl, got, meta) = wait_for_a(&env, seed000::ZONE, "shop").await;
    assert_eq!((ttl, &got), (300, &ips));
    assert!(owner_of(&meta).ends_with("/clusterexternaldns/route-dns"), "{meta}");
    ready_when(&env, CLUSTER_DNS, None, "route-dns", |s| synced_with(s, 1)).await;
    let calls = env.azure.calls();
    assert_eq!(calls.total("arm", "RecordSets_CreateOrUpdate"), 1, "{:?}", calls.snapshot());

    // New hostname: the new name is created and the old one deleted, one write each.
    env.azure.admin().reset_calls();
    env.apply_yaml(&route("app-a", "shop", "r-gateway", &["store.example.com"], None)).await.unwrap();
    assert_eq!(wait_for_a(&env, seed000::ZONE, "store").await.1, ips);
    wait_for_no_a(&env, seed000::ZONE, "shop").await;
    ready_when(&env, CLUSTER_DNS, None, "route-dns", |s| synced_with(s, 1)).await;
    let calls = env.azure.calls();
    assert_eq!(
        (calls.get("arm", "RecordSets_CreateOrUpdate", 201), calls.total("arm", "RecordSets_CreateOrUpdate")),
        (1, 1),
        "{:?}",
        calls.snapshot()
    );
    assert_eq!(calls.total("arm", "RecordSets_Delete"), 1, "{:?}", calls.snapshot());

    // Route deleted: its record set goes, and nothing else is written.
    env.azure.admin().reset_calls();
    http_routes(&env, "app-a").delete("shop", &Default::default()).await.unwrap();
    wait_for_no_a(&env, seed000::ZONE, "store").await;
    let status = ready_when(&env, CLUSTER_DNS, None, "route-dns", |s| synced_with(s, 0)).await;
    assert_eq!(ready_of(&status), ("True".into(), "Synced".into()), "{status}");
    let calls = env.azure.calls();
    assert_eq!(
        (calls.total("arm", "RecordSets_Delete"), calls.total("arm", "RecordSets_CreateOrUpdate")),
        (1, 0),
        "{:?}",
        calls.snapshot()
    );
    assert!(a_records(&env, seed000::ZONE).is_empty());
    env.shutdown().await;
}

/// How long twenty record sets may take to reach Azure through 40 % server errors and 429s.
/// Usually about 25 s; but every failed attempt (a 429 included) doubles the item's retry delay,
/// 1 s up to 5 min with jitter, so an item failing six or seven times in a row waits minutes
/// (measured over ten runs: 13 s to over 150 s, three above 100 s). Five minutes is one full
/// maximum delay; a model of that backoff still puts about 3 % of runs beyond it.
const THROTTLED_WAIT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_end_in_the_exact_desired_state() {
    const ROUTES: usize = 20;
    let env = Env::start(Options::default()).await.unwrap();
    let mut faults = env.azure.admin().faults();
    faults.faults.push(FaultRule { service: Some("arm".into()), error_500: 0.2, error_503: 0.2, ..Default::default() });
    // Four record-set writes at once, then one every half second: twenty routes applied
    // together are certainly throttled (429 with Retry-After).
    faults.rate_limits.public_zone_writes = Bucket { limit: 4, period_seconds: 2.0 };
    env.azure.admin().set_faults(faults);
    env.apply_yaml(NAMESPACES).await.unwrap();
    for g in ["g0", "g1"] {
        env.apply_yaml(&http_gateway("app-a", g, None)).await.unwrap();
    }
    let gateway_ips = [gateway_addresses(&env, "app-a", "g0").await, gateway_addresses(&env, "app-a", "g1").await];
    env.apply_yaml(&dns::cluster_dns("busy-dns", &[zone_id()], None)).await.unwrap();

    // Routes alternate between the Gateways; every fifth one asks for a 60 s TTL.
    let mut desired = BTreeMap::new();
    let mut manifests = Vec::new();
    for i in 0..ROUTES {
        let (name, gw) = (format!("r{i:02}"), i % 2);
        let ttl = (i % 5 == 0).then_some(60);
        manifests.push(route("app-a", &name, &format!("g{gw}"), &[&format!("{name}.example.com")], ttl));
        desired.insert(name, (u64::from(ttl.unwrap_or(300)), gateway_ips[gw].clone()));
    }
    env.apply_yaml(&manifests.join("---\n")).await.unwrap();

    let status =
        ready_within(&env, CLUSTER_DNS, None, "busy-dns", THROTTLED_WAIT, |s| synced_with(s, ROUTES as u64)).await;
    assert_eq!(ready_of(&status), ("True".into(), "Synced".into()), "{status}");
    let zone = a_records(&env, seed000::ZONE);
    let got: BTreeMap<String, (u64, Vec<String>)> =
        zone.iter().map(|(n, (ttl, ips, _))| (n.clone(), (*ttl, ips.clone()))).collect();
    assert_eq!(got, desired, "exactly the desired record sets");
    for (name, (_, _, meta)) in &zone {
        assert!(owner_of(meta).ends_with("/clusterexternaldns/busy-dns"), "{name}: {meta}");
    }

    let calls = env.azure.calls();
    let put = |status| calls.get("arm", "RecordSets_CreateOrUpdate", status);
    let all = |status| calls.snapshot().iter().filter(|c| c.key.status == status).map(|c| c.count).sum::<u64>();
    assert!(put(429) > 0, "throttled: {:?}", calls.snapshot());
    assert!(all(500) > 0 && all(503) > 0, "server errors: {:?}", calls.snapshot());
    // Failed attempts changed nothing in Azure, so every record set took exactly one write that
    // succeeded, and none needed a second (no 412 from a lost etag, no update, no delete).
    assert_eq!((put(201), put(200), put(412)), (ROUTES as u64, 0, 0), "{:?}", calls.snapshot());
    assert_eq!(calls.total("arm", "RecordSets_Delete"), 0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_route_frees_its_old_name_without_waiting_out_the_hold_down() {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(&http_gateway("app-a", "r-gateway", None)).await.unwrap();
    gateway_addresses(&env, "app-a", "r-gateway").await;
    // The default hold-down (300 s), documented for a source that still exists but lost its
    // address or its Accepted condition.
    env.apply_yaml(&dns::cluster_dns("route-dns", &[zone_id()], None)).await.unwrap();
    env.apply_yaml(&route("app-a", "shop", "r-gateway", &["shop.example.com"], None)).await.unwrap();
    wait_for_a(&env, seed000::ZONE, "shop").await;
    env.apply_yaml(&route("app-a", "shop", "r-gateway", &["store.example.com"], None)).await.unwrap();
    wait_for_a(&env, seed000::ZONE, "store").await;
    // The route's spec no longer asks for the old name: nothing is flapping.
    wait_for_no_a(&env, seed000::ZONE, "shop").await;
    env.shutdown().await;
}
