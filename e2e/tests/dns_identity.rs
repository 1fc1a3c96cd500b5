//! DNS resources with `identity.type: managedIdentity` end to end: the daemon takes tokens of the
//! node's user-assigned identity from the instance metadata service (the sandbox's, through
//! `--managed-identity-endpoint`) and publishes with them; an identity the node does not have
//! leaves the resource `Ready=False` / `IdentityUnavailable`, naming the client id, and writes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const NAME: &str = "node-identity-dns";

fn cluster_dns(client_id: &str) -> String {
    format!(
        r#"apiVersion: approuting.kubernetes.azure.com/v1alpha1
kind: ClusterExternalDNS
metadata:
  name: {NAME}
spec:
  resourceName: {NAME}
  dnsZoneResourceIDs:
  - /subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/dnszones/{}
  resourceTypes:
  - gateway
  identity:
    type: managedIdentity
    clientID: {client_id}
"#,
        seed000::SUBSCRIPTION,
        seed000::RESOURCE_GROUP,
        seed000::ZONE
    )
}

/// The addresses of an A record set in the seed's public zone.
fn a_record(sets: &[Value], name: &str) -> Option<Vec<String>> {
    let set = sets.iter().find(|s| s["name"] == name && s["type"].as_str().is_some_and(|t| t.ends_with("/A")))?;
    let mut ips: Vec<String> = set["properties"]["ARecords"]
        .as_array()?
        .iter()
        .filter_map(|r| r["ipv4Address"].as_str().map(str::to_owned))
        .collect();
    ips.sort();
    Some(ips)
}

async fn wait_for_a(env: &Env, name: &str) -> Vec<String> {
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

/// The ClusterExternalDNS's Ready condition (status, reason, message) and its status, once
/// `accept` holds for the condition.
async fn ready_when(
    env: &Env,
    accept: impl Fn(&(String, String, String)) -> bool,
) -> ((String, String, String), Value) {
    let gvk = kube::api::GroupVersionKind::gvk("approuting.kubernetes.azure.com", "v1alpha1", "ClusterExternalDNS");
    let ar = kube::discovery::ApiResource::from_gvk_with_plural(&gvk, "clusterexternaldnses");
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(env.client.clone(), &ar);
    wait_for(&format!("Ready of {NAME}"), WAIT, || async {
        let status = api.get(NAME).await.ok()?.data.get("status")?.clone();
        let c = status["conditions"].as_array()?.iter().find(|c| c["type"] == "Ready")?.clone();
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
        let ready = (text("status"), text("reason"), text("message"));
        accept(&ready).then_some((ready, status))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_dns_with_the_nodes_managed_identity_publishes_the_gateways_records() {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let a_ips = gateway_addresses(&env, "app-a", "a-gateway").await;
    let b_ips = gateway_addresses(&env, "app-b", "b-gateway").await;

    env.apply_yaml(&cluster_dns(seed000::NODE_CLIENT_ID)).await.unwrap();
    assert_eq!(wait_for_a(&env, "a").await, a_ips);
    assert_eq!(wait_for_a(&env, "b").await, b_ips);
    let ((status, reason, _), counts) = ready_when(&env, |r| r.0 == "True").await;
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Synced"));
    assert_eq!((counts["recordsDesired"].as_u64(), counts["recordsApplied"].as_u64()), (Some(2), Some(2)), "{counts}");
    let calls = env.azure.calls();
    assert_eq!(calls.get("imds", "Token", 200), 1, "one managed-identity token for both writes");
    assert_eq!(calls.get("arm", "RecordSets_CreateOrUpdate", 201), 2);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_identity_the_node_does_not_have_leaves_the_resource_not_ready_naming_it() {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    gateway_addresses(&env, "app-a", "a-gateway").await;
    gateway_addresses(&env, "app-b", "b-gateway").await;

    let stranger = "11111111-2222-3333-4444-555555555555";
    env.apply_yaml(&cluster_dns(stranger)).await.unwrap();
    let ((status, reason, message), _) = ready_when(&env, |r| r.0 == "False" && r.1 == "IdentityUnavailable").await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "IdentityUnavailable"));
    assert!(message.contains(stranger) && message.contains("Identity not found"), "{message}");
    let calls = env.azure.calls();
    assert!(calls.get("imds", "Token", 400) >= 1);
    assert_eq!(calls.total("arm", "RecordSets_CreateOrUpdate"), 0, "nothing is written without a token");
    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    assert_eq!((a_record(&sets, "a"), a_record(&sets, "b")), (None, None));
    env.shutdown().await;
}
