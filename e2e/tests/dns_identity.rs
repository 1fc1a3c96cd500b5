//! DNS resources with `identity.type: managedIdentity` end to end: the daemon takes tokens of the
//! node's user-assigned identity from the instance metadata service (the sandbox's, through
//! `--managed-identity-endpoint`) and publishes with them; an identity the node does not have
//! leaves the resource `Ready=False` / `IdentityUnavailable`, naming the client id, and writes
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::dns::{a_record, condition_of, gateway_addresses, ready_when, wait_for_a};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_dns_with_the_nodes_managed_identity_publishes_the_gateways_records() {
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let a_ips = gateway_addresses(&env, "app-a", "a-gateway").await;
    let b_ips = gateway_addresses(&env, "app-b", "b-gateway").await;

    env.apply_yaml(&cluster_dns(seed000::NODE_CLIENT_ID)).await.unwrap();
    assert_eq!(wait_for_a(&env, seed000::ZONE, "a").await.1, a_ips);
    assert_eq!(wait_for_a(&env, seed000::ZONE, "b").await.1, b_ips);
    let counts = ready_when(&env, "clusterexternaldnses", None, NAME, |s| condition_of(s, "Ready").0 == "True").await;
    let (status, reason, _) = condition_of(&counts, "Ready");
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
    let found =
        ready_when(&env, "clusterexternaldnses", None, NAME, |s| condition_of(s, "Ready").1 == "IdentityUnavailable")
            .await;
    let (status, reason, message) = condition_of(&found, "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "IdentityUnavailable"));
    assert!(message.contains(stranger) && message.contains("Identity not found"), "{message}");
    let calls = env.azure.calls();
    assert!(calls.get("imds", "Token", 400) >= 1);
    assert_eq!(calls.total("arm", "RecordSets_CreateOrUpdate"), 0, "nothing is written without a token");
    let sets = env.azure.admin().list_record_sets(seed000::ZONE).unwrap();
    assert_eq!((a_record(&sets, "a"), a_record(&sets, "b")), (None, None));
    env.shutdown().await;
}
