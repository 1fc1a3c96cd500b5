//! Zone verification, the stale report, drift repair, per-zone access, deletion policy,
//! identities that appear late and adoption of external-dns records, end to end on the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::dns;
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use routewarden_sandbox_azure::Scenario;
use routewarden_sandbox_azure::scenario::{RecordSetSpec, ZoneKind, ZoneSpec};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(40);
const VERIFY: [&str; 2] = ["--dns-verify-interval", "10s"];

fn zone_id(zone: &str) -> String {
    dns::seed_zone_id("dnszones", zone)
}

/// A ClusterExternalDNS over `zones` (names in the seed resource group), with `extra` spec lines.
fn cluster_dns(name: &str, zones: &[&str], extra: &str) -> String {
    let ids: Vec<String> = zones.iter().map(|z| zone_id(z)).collect();
    dns::cluster_dns(name, &ids, None) + extra
}

fn flags() -> Vec<String> {
    VERIFY.iter().map(|s| (*s).to_owned()).collect()
}

/// A record set of a zone: (type, TTL, values, metadata).
fn record(sets: &[Value], name: &str, kind: &str) -> Option<(u64, Vec<String>, Value)> {
    let set = sets
        .iter()
        .find(|s| s["name"] == name && s["type"].as_str().is_some_and(|t| t.ends_with(&format!("/{kind}"))))?;
    let p = &set["properties"];
    let mut values: Vec<String> = match kind {
        "A" => p["ARecords"].as_array()?.iter().filter_map(|r| r["ipv4Address"].as_str().map(str::to_owned)).collect(),
        "TXT" => p["TXTRecords"].as_array()?.iter().filter_map(|r| r["value"][0].as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };
    values.sort();
    Some((p["TTL"].as_u64()?, values, p["metadata"].clone()))
}

async fn wait_record(
    env: &Env,
    zone: &str,
    name: &str,
    accept: impl Fn(&(u64, Vec<String>, Value)) -> bool,
) -> (u64, Vec<String>, Value) {
    wait_for(&format!("record {name} in {zone}"), WAIT, || async {
        record(&env.azure.admin().list_record_sets(zone).ok()?, name, "A").filter(|r| accept(r))
    })
    .await
    .unwrap()
}

fn cedns_api(env: &Env) -> kube::Api<kube::api::DynamicObject> {
    dns::dns_api(env, "clusterexternaldnses", None)
}

async fn status_when(env: &Env, name: &str, accept: impl Fn(&Value) -> bool) -> Value {
    dns::ready_within(env, "clusterexternaldnses", None, name, WAIT, accept).await
}

async fn stale_view(env: &Env) -> Value {
    let admin = &env.daemon.as_ref().unwrap().admin;
    reqwest::get(format!("{admin}/v1/journal/stale")).await.unwrap().json().await.unwrap()
}

/// An ARM client and token of the seed identity, for changes made outside routewarden.
fn outside(env: &Env, name: &str) -> (reqwest::Client, String, String) {
    let token = env.azure.admin().issue_token(seed000::CLIENT_ID, &env.azure.endpoints().arm_audience, 600).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(env.azure.ca_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url =
        format!("{}{}/A/{name}?api-version=2018-05-01", env.azure.endpoints().resource_manager, zone_id(seed000::ZONE));
    (http, token, url)
}

/// An out-of-band PUT of an A record set in the seed zone, as a user with the seed identity's
/// rights would make it.
async fn put_outside(env: &Env, name: &str, ips: &[&str], metadata: Value) {
    let (http, token, url) = outside(env, name);
    let records: Vec<Value> = ips.iter().map(|ip| json!({"ipv4Address": ip})).collect();
    let body = json!({"properties": {"TTL": 300, "metadata": metadata, "ARecords": records}});
    let r = http.put(url).bearer_auth(token).json(&body).send().await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

/// An out-of-band DELETE of an A record set in the seed zone.
async fn delete_outside(env: &Env, name: &str) {
    let (http, token, url) = outside(env, name);
    let r = http.delete(url).bearer_auth(token).send().await.unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

fn calls(env: &Env, op: &str) -> u64 {
    env.azure.calls().total("arm", op)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_missing_on_one_zone_degrades_only_that_zone() {
    let mut scenario = Scenario::seed000();
    scenario.tenants[0].subscriptions[0].resource_groups[0].zones.push(ZoneSpec {
        name: "example.org".into(),
        kind: ZoneKind::Public,
        record_sets: vec![],
    });
    let env =
        Env::start(Options { scenario: Some(scenario), daemon_flags: flags(), ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    env.apply_yaml(
        GATEWAYS
            .replace("a-gateway", "org-gateway")
            .replace("a.example.com", "x.example.org")
            .split("---")
            .next()
            .unwrap(),
    )
    .await
    .unwrap();
    let a_ips = dns::gateway_addresses(&env, "app-a", "a-gateway").await;
    env.apply_yaml(&cluster_dns("two-zones", &["example.com", "example.org"], "")).await.unwrap();

    let (_, ips, _) = wait_record(&env, "example.com", "a", |_| true).await;
    assert_eq!(ips, a_ips, "the zone with a role gets its records");
    wait_record(&env, "example.com", "b", |_| true).await;
    let status = status_when(&env, "two-zones", |s| dns::condition_of(s, "ZonesAccessible").0 == "False").await;
    let (_, reason, message) = dns::condition_of(&status, "ZonesAccessible");
    assert_eq!(reason, "ZoneForbidden", "{status}");
    assert!(message.contains("example.org") && !message.contains("example.com:"), "{message}");
    assert_eq!((status["zones"].as_u64(), status["zonesAccessible"].as_u64()), (Some(2), Some(1)), "{status}");
    assert_eq!(dns::condition_of(&status, "Ready").0, "False");
    let status = status_when(&env, "two-zones", |s| s["recordsApplied"].as_u64() == Some(2)).await;
    assert_eq!(status["recordsDesired"].as_u64(), Some(3), "a, b and x; only x waits: {status}");
    assert!(env.azure.admin().list_record_sets("example.org").unwrap().iter().all(|s| s["name"] != "x"));
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_resource_with_the_delete_policy_removes_its_records_behind_a_finalizer() {
    let env = Env::start(Options { daemon_flags: flags(), ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    env.apply_yaml(&cluster_dns("deleting", &["example.com"], "  deletionPolicy: Delete\n")).await.unwrap();
    wait_record(&env, "example.com", "a", |_| true).await;
    wait_record(&env, "example.com", "b", |_| true).await;
    let held = wait_for("the finalizer", WAIT, || async {
        let obj = cedns_api(&env).get("deleting").await.ok()?;
        obj.metadata.finalizers.filter(|f| f.iter().any(|f| f == "routewarden.io/dns-records"))
    })
    .await;
    assert!(held.is_ok());

    cedns_api(&env).delete("deleting", &Default::default()).await.unwrap();
    wait_for("the object to go", WAIT, || async {
        cedns_api(&env).get_opt("deleting").await.ok()?.is_none().then_some(())
    })
    .await
    .unwrap();
    let sets = env.azure.admin().list_record_sets("example.com").unwrap();
    assert!(record(&sets, "a", "A").is_none() && record(&sets, "b", "A").is_none(), "{sets:?}");
    assert_eq!(calls(&env, "RecordSets_Delete"), 2, "one delete per record set");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_a_deleted_resource_are_reported_stale_and_drift_is_repaired() {
    let env = Env::start(Options { daemon_flags: flags(), ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let a_ips = dns::gateway_addresses(&env, "app-a", "a-gateway").await;
    // `first` publishes b only; `second` publishes a only, and keeps verifying the zone.
    env.apply_yaml(&cluster_dns("first", &["example.com"], "  filters:\n    gatewayLabels: zone=b\n")).await.unwrap();
    wait_record(&env, "example.com", "b", |_| true).await;
    env.apply_yaml(&cluster_dns("second", &["example.com"], "  filters:\n    gatewayLabels: zone=a\n")).await.unwrap();
    wait_record(&env, "example.com", "a", |_| true).await;
    cedns_api(&env).delete("first", &Default::default()).await.unwrap();

    // Within a verify interval, b shows as stale in the journal, in status and in the sample.
    let status = status_when(&env, "second", |s| s["stale"].as_u64() == Some(1)).await;
    assert_eq!(dns::condition_of(&status, "Degraded").1, "StaleRecords", "{status}");
    let sample = &status["samples"][0];
    assert_eq!(
        (sample["problem"].as_str(), sample["hostname"].as_str()),
        (Some("Stale"), Some("b.example.com")),
        "{status}"
    );
    assert!(sample["detail"].as_str().unwrap().contains("clusterexternaldns/first is deleted"), "{sample}");
    let view = stale_view(&env).await;
    let zone = view["zones"].as_array().unwrap().iter().find(|z| z["zone"] == "example.com").unwrap().clone();
    let stale: Vec<&str> = zone["stale"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(stale, vec!["b"], "{zone}");
    assert_eq!(zone["limit"].as_u64(), Some(10_000));
    assert!(record(&env.azure.admin().list_record_sets("example.com").unwrap(), "b", "A").is_some(), "kept");

    // Someone edits a's addresses in Azure, keeping routewarden's ownership: the next
    // verification finds the drift and one conditional PUT restores it.
    let (_, _, meta) = record(&env.azure.admin().list_record_sets("example.com").unwrap(), "a", "A").unwrap();
    let puts = calls(&env, "RecordSets_CreateOrUpdate");
    put_outside(&env, "a", &["192.0.2.77"], meta).await;
    let (_, ips, _) = wait_record(&env, "example.com", "a", |r| r.1 != ["192.0.2.77"]).await;
    assert_eq!(ips, a_ips, "repaired to the Gateway's addresses");
    assert_eq!(calls(&env, "RecordSets_CreateOrUpdate"), puts + 2, "the outside edit and one repair");

    // Someone deletes it: the next verification writes it again.
    delete_outside(&env, "a").await;
    assert!(record(&env.azure.admin().list_record_sets("example.com").unwrap(), "a", "A").is_none());
    let (_, ips, _) = wait_record(&env, "example.com", "a", |_| true).await;
    assert_eq!(ips, a_ips, "written again");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_that_appears_late_is_used_at_once() {
    let env = Env::start(Options { daemon_flags: flags(), ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let spec = cluster_dns("late", &["example.com"], "").replace(seed000::SERVICE_ACCOUNT, "late-sa");
    env.apply_yaml(&spec).await.unwrap();
    let status = status_when(&env, "late", |s| dns::condition_of(s, "Ready").1 == "IdentityUnavailable").await;
    assert!(dns::condition_of(&status, "Ready").2.contains("app-a/late-sa"), "{status}");
    // Let the first attempts fail and back off (60 s for a missing identity).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sa = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: late-sa\n  namespace: app-a\n  annotations:\n    azure.workload.identity/client-id: {}\n",
        seed000::CLIENT_ID
    );
    // The identity is federated with the seed ServiceAccount only; give it this one too.
    env.azure
        .admin()
        .add_federated_credential(seed000::IDENTITY, "late", None, "system:serviceaccount:app-a:late-sa", None)
        .unwrap();
    let created = std::time::Instant::now();
    env.apply_yaml(&sa).await.unwrap();
    wait_record(&env, "example.com", "a", |_| true).await;
    assert!(created.elapsed() < Duration::from_secs(20), "well before the 60 s retry: {:?}", created.elapsed());
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_sets_of_the_configured_external_dns_owner_are_adopted_and_others_are_not() {
    let mut scenario = Scenario::seed000();
    let zone = &mut scenario.tenants[0].subscriptions[0].resource_groups[0].zones[0];
    for (name, owner) in [("a", "aks-cluster-uid"), ("b", "someone-else")] {
        zone.record_sets.push(RecordSetSpec {
            name: name.into(),
            record_type: "A".into(),
            ttl: 300,
            values: vec!["198.51.100.1".into()],
        });
        zone.record_sets.push(RecordSetSpec {
            name: format!("a-{name}"),
            record_type: "TXT".into(),
            ttl: 300,
            values: vec![format!(
                "heritage=external-dns,external-dns/owner={owner},external-dns/resource=gateway/app/{name}"
            )],
        });
    }
    let mut daemon_flags = flags();
    daemon_flags.extend(["--dns-adopt-txt-owner-id".to_owned(), "aks-cluster-uid".to_owned()]);
    let env = Env::start(Options { scenario: Some(scenario), daemon_flags, ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let a_ips = dns::gateway_addresses(&env, "app-a", "a-gateway").await;
    env.apply_yaml(&cluster_dns("adopting", &["example.com"], "")).await.unwrap();

    let (_, ips, meta) = wait_record(&env, "example.com", "a", |r| r.2.get("routewarden-owner").is_some()).await;
    assert_eq!(ips, a_ips);
    assert!(meta["routewarden-owner"].as_str().unwrap().ends_with("/clusterexternaldns/adopting"), "{meta}");
    let status = status_when(&env, "adopting", |s| s["conflicts"].as_u64() == Some(1)).await;
    assert_eq!(
        dns::condition_of(&status, "Degraded").1,
        "Conflicts",
        "b belongs to another external-dns owner: {status}"
    );
    let sets = env.azure.admin().list_record_sets("example.com").unwrap();
    assert!(record(&sets, "a-a", "TXT").is_none(), "the adopted record's registry TXT is deleted");
    assert!(record(&sets, "a-b", "TXT").is_some());
    assert_eq!(record(&sets, "b", "A").unwrap().1, vec!["198.51.100.1"], "not adopted, untouched");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_only_keeps_the_record_of_a_deleted_gateway_and_reports_it_stale() {
    let mut daemon_flags = flags();
    daemon_flags.extend(["--dns-policy".to_owned(), "upsert-only".to_owned()]);
    let env = Env::start(Options { daemon_flags, ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    env.apply_yaml(&cluster_dns("keeping", &["example.com"], "")).await.unwrap();
    wait_record(&env, "example.com", "a", |_| true).await;
    wait_record(&env, "example.com", "b", |_| true).await;
    env.gateways("app-b").delete("b-gateway", &Default::default()).await.unwrap();

    let status = status_when(&env, "keeping", |s| s["stale"].as_u64() == Some(1)).await;
    assert_eq!(status["recordsDesired"].as_u64(), Some(1), "{status}");
    let sample = &status["samples"][0];
    assert_eq!(sample["hostname"].as_str(), Some("b.example.com"), "{status}");
    assert!(sample["detail"].as_str().unwrap().contains("no longer publishes it"), "{sample}");
    assert!(record(&env.azure.admin().list_record_sets("example.com").unwrap(), "b", "A").is_some());
    assert_eq!(calls(&env, "RecordSets_Delete"), 0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_is_verified_with_the_next_resources_identity_when_the_first_is_refused() {
    let env = Env::start(Options { daemon_flags: flags(), ..Options::default() }).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    // First in resource order: an identity the node does not have, publishing nothing.
    let stranger = cluster_dns("aaa-stranger", &["example.com"], "  filters:\n    gatewayLabels: zone=none\n").replace(
        &format!("    type: workloadIdentity\n    serviceAccount: {}\n", seed000::SERVICE_ACCOUNT),
        "    type: managedIdentity\n    clientID: 11111111-2222-3333-4444-555555555555\n",
    );
    env.apply_yaml(&stranger).await.unwrap();
    env.apply_yaml(&cluster_dns("zzz-seed", &["example.com"], "")).await.unwrap();
    wait_record(&env, "example.com", "a", |_| true).await;

    let status = status_when(&env, "zzz-seed", |s| dns::condition_of(s, "ZonesAccessible").0 == "True").await;
    assert_eq!(dns::condition_of(&status, "ZonesAccessible").1, "AllZonesAccessible", "{status}");
    let calls = env.azure.calls();
    assert!(calls.get("imds", "Token", 400) >= 1, "the first identity was tried and refused");
    assert!(calls.get("arm", "RecordSets_ListByDnsZone", 200) >= 1, "the next one listed the zone");
    env.shutdown().await;
}
