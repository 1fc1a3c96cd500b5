//! Helpers of the DNS end-to-end tests: the seed's zone ids, a `ClusterExternalDNS` manifest
//! builder, reading A record sets back through the local Azure admin API (public and private
//! wire shapes alike), Gateway addresses as the Gateway controller stand-in publishes them, and
//! the status of ClusterExternalDNS / ExternalDNS resources. The waiting helpers panic with what
//! they waited for, so a test reads as its steps.

use crate::{Env, seed000, wait_for};
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::discovery::ApiResource;
use serde_json::Value;
use std::time::Duration;

/// How long a DNS test waits for one observable step.
pub const WAIT: Duration = Duration::from_secs(30);

/// The ARM resource id of a seed zone (`dnszones` or `privateDnsZones`).
pub fn seed_zone_id(provider_type: &str, zone: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{provider_type}/{zone}",
        seed000::SUBSCRIPTION,
        seed000::RESOURCE_GROUP,
    )
}

/// The seed's public zone, `example.com`.
pub fn zone_id() -> String {
    seed_zone_id("dnszones", seed000::ZONE)
}

/// The seed's private zone, `internal.example.com` (the seed identity is Private DNS Zone
/// Contributor on it).
pub fn private_zone_id() -> String {
    seed_zone_id("privateDnsZones", seed000::PRIVATE_ZONE)
}

/// A ClusterExternalDNS publishing Gateways (and their routes) of every namespace into `zones`
/// with the seed's ServiceAccount in `app-a`; `hold_down` sets `holdDownSeconds`.
pub fn cluster_dns(name: &str, zones: &[String], hold_down: Option<u32>) -> String {
    let zones: String = zones.iter().map(|z| format!("  - {z}\n")).collect();
    let hold_down = hold_down.map(|s| format!("  holdDownSeconds: {s}\n")).unwrap_or_default();
    format!(
        r#"apiVersion: approuting.kubernetes.azure.com/v1alpha1
kind: ClusterExternalDNS
metadata:
  name: {name}
spec:
  resourceName: {name}
  resourceNamespace: app-a
  dnsZoneResourceIDs:
{zones}  resourceTypes:
  - gateway
  identity:
    type: workloadIdentity
    serviceAccount: {sa}
{hold_down}"#,
        sa = seed000::SERVICE_ACCOUNT
    )
}

/// An A record set as read back: (TTL, sorted addresses, metadata). Reads both wire shapes:
/// public zones (`TTL`, `ARecords`) and private zones (`ttl`, `aRecords`).
pub fn a_record(sets: &[Value], name: &str) -> Option<(u64, Vec<String>, Value)> {
    let set = sets.iter().find(|s| s["name"] == name && s["type"].as_str().is_some_and(|t| t.ends_with("/A")))?;
    let p = &set["properties"];
    let records = p.get("ARecords").or_else(|| p.get("aRecords"))?.as_array()?;
    let mut ips: Vec<String> = records.iter().filter_map(|r| r["ipv4Address"].as_str().map(str::to_owned)).collect();
    ips.sort();
    let ttl = p.get("TTL").or_else(|| p.get("ttl"))?.as_u64()?;
    Some((ttl, ips, p["metadata"].clone()))
}

/// Every A record set of a zone (by name or id), by relative name.
pub fn a_records(env: &Env, zone: &str) -> std::collections::BTreeMap<String, (u64, Vec<String>, Value)> {
    let sets = env.azure.admin().list_record_sets(zone).unwrap_or_else(|e| panic!("zone {zone}: {e}"));
    sets.iter()
        .filter_map(|s| s["name"].as_str())
        .filter_map(|n| a_record(&sets, n).map(|r| (n.to_owned(), r)))
        .collect()
}

/// Waits for the A record set `name` in `zone` (by name or id).
pub async fn wait_for_a(env: &Env, zone: &str, name: &str) -> (u64, Vec<String>, Value) {
    wait_for(&format!("A record {name} in {zone}"), WAIT, || async {
        a_record(&env.azure.admin().list_record_sets(zone).ok()?, name)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Waits until `zone` has no A record set `name`.
pub async fn wait_for_no_a(env: &Env, zone: &str, name: &str) {
    wait_for(&format!("no A record {name} in {zone}"), WAIT, || async {
        a_record(&env.azure.admin().list_record_sets(zone).ok()?, name).is_none().then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// The `status.addresses` of a Gateway, sorted: `Some` once it matches `want_any` (addresses
/// present) or not (none).
async fn addresses_when(env: &Env, ns: &str, gw: &str, want_any: bool) -> Vec<String> {
    wait_for(&format!("addresses of {ns}/{gw} (present: {want_any})"), WAIT, || async {
        let gw = env.gateways(ns).get(gw).await.ok()?;
        let mut ips: Vec<String> = gw.data["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["value"].as_str().map(str::to_owned))
            .collect();
        ips.sort();
        (ips.is_empty() != want_any).then_some(ips)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

/// Waits for a Gateway's addresses.
pub async fn gateway_addresses(env: &Env, ns: &str, gw: &str) -> Vec<String> {
    addresses_when(env, ns, gw, true).await
}

/// Waits until a Gateway shows no address (after the stand-in withheld it).
pub async fn gateway_without_addresses(env: &Env, ns: &str, gw: &str) {
    addresses_when(env, ns, gw, false).await;
}

/// The API of ClusterExternalDNS (`clusterexternaldnses`, no namespace) or ExternalDNS
/// (`externaldnses`).
pub fn dns_api(env: &Env, plural: &str, ns: Option<&str>) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("approuting.kubernetes.azure.com", "v1alpha1", "");
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(ns) => Api::namespaced_with(env.client.clone(), ns, &ar),
        None => Api::all_with(env.client.clone(), &ar),
    }
}

/// A DNS resource's `status`, once `accept` holds for it (within [`WAIT`]).
pub async fn ready_when(
    env: &Env,
    plural: &str,
    ns: Option<&str>,
    name: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    ready_within(env, plural, ns, name, WAIT, accept).await
}

/// [`ready_when`] with another timeout; a timeout panics with the last status seen and local
/// Azure's call counter.
pub async fn ready_within(
    env: &Env,
    plural: &str,
    ns: Option<&str>,
    name: &str,
    timeout: Duration,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    let last = std::sync::Mutex::new(Value::Null);
    let found = wait_for(&format!("status of {plural}/{name}"), timeout, || async {
        let obj = dns_api(env, plural, ns).get(name).await.ok()?;
        let status = obj.data.get("status")?.clone();
        *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = status.clone();
        accept(&status).then_some(status)
    })
    .await;
    found.unwrap_or_else(|e| {
        let last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        panic!("{e:#}; last status {last}; calls {:?}", env.azure.calls().snapshot())
    })
}

/// A condition of a status: (status, reason, message); empty strings when absent.
pub fn condition_of(status: &Value, type_: &str) -> (String, String, String) {
    let c = status["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == type_);
    c.map(|c| {
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        (text("status"), text("reason"), text("message"))
    })
    .unwrap_or_default()
}

/// The Ready condition: (status, reason).
pub fn ready_of(status: &Value) -> (String, String) {
    let c = status["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
    c.map(|c| (c["status"].as_str().unwrap_or("").to_owned(), c["reason"].as_str().unwrap_or("").to_owned()))
        .unwrap_or_default()
}

/// Whether a status says Ready=True with `n` record sets desired and applied.
pub fn synced_with(status: &Value, n: u64) -> bool {
    ready_of(status).0 == "True"
        && status["recordsDesired"].as_u64() == Some(n)
        && status["recordsApplied"].as_u64() == Some(n)
}

/// Record-set writes (creates, updates and deletes, any outcome) to public zones so far.
pub fn writes(env: &Env) -> u64 {
    let calls = env.azure.calls();
    calls.total("arm", "RecordSets_CreateOrUpdate") + calls.total("arm", "RecordSets_Delete")
}

/// A Gateway of the managed class with one plain-HTTP listener (no certificate involved),
/// with or without a listener hostname, taking routes from its own namespace.
pub fn http_gateway(ns: &str, name: &str, hostname: Option<&str>) -> String {
    let hostname = hostname.map(|h| format!("    hostname: {h}\n")).unwrap_or_default();
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: {name}
  namespace: {ns}
spec:
  gatewayClassName: approuting-istio
  listeners:
  - name: http
    port: 80
    protocol: HTTP
{hostname}    allowedRoutes:
      namespaces:
        from: Same
"#
    )
}

/// An HTTPRoute on `gateway` with `hostnames`, optionally with the external-dns TTL annotation.
pub fn route(ns: &str, name: &str, gateway: &str, hostnames: &[&str], ttl: Option<u32>) -> String {
    let hostnames: Vec<String> = hostnames.iter().map(|h| format!("\"{h}\"")).collect();
    let annotations =
        ttl.map(|t| format!("  annotations:\n    external-dns.alpha.kubernetes.io/ttl: \"{t}\"\n")).unwrap_or_default();
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: {ns}
{annotations}spec:
  parentRefs:
  - name: {gateway}
  hostnames: [{hostnames}]
  rules:
  - backendRefs:
    - name: httpbin
      port: 8000
"#,
        hostnames = hostnames.join(", ")
    )
}
