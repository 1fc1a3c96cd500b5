//! Two replicas, one Lease: only the leader writes; the follower keeps its caches and journal warm,
//! is ready, and takes over within the lease duration when the leader is killed in the middle of
//! publishing. After the takeover every record set has been created exactly once, nothing the
//! old leader wrote is written again (its journal died with it), and the new leader goes on
//! publishing what comes next.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use k8s_openapi::api::coordination::v1::Lease;
use routewarden_e2e::dns::{self, a_records, gateway_addresses, http_gateway, route, wait_for_a, zone_id};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use routewarden_sandbox_azure::LatencyRule;
use std::time::{Duration, Instant};

const ROUTES: usize = 40;
const LEASE_SECONDS: u64 = 4;

async fn holder(env: &Env) -> Option<String> {
    let leases: kube::Api<Lease> = kube::Api::namespaced(env.client.clone(), env.lease_namespace());
    leases.get_opt("routewarden").await.ok()??.spec?.holder_identity
}

async fn ready(replica: &Replica) -> bool {
    reqwest::get(format!("{}/readyz", replica.metrics)).await.is_ok_and(|r| r.status().is_success())
}

/// The routes' record sets in the zone (the seed's Gateways `a` and `b` are published too).
fn route_records(env: &Env) -> usize {
    a_records(env, seed000::ZONE).keys().filter(|n| n.starts_with('r')).count()
}

fn creates(env: &Env) -> u64 {
    env.azure.calls().total("arm", "RecordSets_CreateOrUpdate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_and_nothing_is_written_twice_or_lost() {
    let env = Env::start(Options { daemon: false, ..Options::default() }).await.unwrap();
    let flags = |id: &'static str| ["--leader-election-identity", id, "--leader-election-lease-duration", "4s"];
    let a = env.start_replica(&env.dir.path().join("journal-a"), &flags("replica-a")).await.unwrap();
    wait_for("replica-a leads", WAIT_LONG, || async {
        (holder(&env).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await
    .unwrap();
    let b = env.start_replica(&env.dir.path().join("journal-b"), &flags("replica-b")).await.unwrap();
    wait_for("replica-b is ready", WAIT_LONG, || async { ready(&b).await.then_some(()) }).await.unwrap();
    assert_eq!(b.metric("routewarden_leader ").await, Some(0.0), "the second replica follows");
    assert_eq!(a.metric("routewarden_leader ").await, Some(1.0));

    // TLS first: the seed's Gateways get their Secrets from the leader.
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let secret = wait_for("the seed listener's Secret", WAIT_LONG, || async {
        env.secrets("app-a").get_opt("kv-gw-cert-a-gateway-https").await.ok()?
    })
    .await
    .unwrap();
    let secret_version = secret.metadata.resource_version.clone();

    // DNS: slow Azure down so the leader is killed in the middle of publishing.
    env.azure.admin().set_faults(routewarden_sandbox_azure::FaultConfig {
        latency: vec![LatencyRule {
            service: Some("arm".into()),
            operation: Some("RecordSets_CreateOrUpdate".into()),
            fixed_ms: 60,
            jitter_ms: 40,
        }],
        ..Default::default()
    });
    env.apply_yaml(&http_gateway("app-a", "lead-gw", None)).await.unwrap();
    let addresses = gateway_addresses(&env, "app-a", "lead-gw").await;
    for i in 0..ROUTES {
        env.apply_yaml(&route("app-a", &format!("r{i}"), "lead-gw", &[&format!("r{i}.example.com")], None))
            .await
            .unwrap();
    }
    env.apply_yaml(&dns::cluster_dns("lead-dns", &[zone_id()], None)).await.unwrap();
    wait_for("the leader's first writes", WAIT_LONG, || async { (route_records(&env) >= 8).then_some(()) })
        .await
        .unwrap();
    a.kill();
    let killed = Instant::now();
    let published_by_a = route_records(&env);
    assert!(published_by_a < ROUTES, "the leader must die mid-drain for this test to mean anything");

    wait_for("replica-b takes over", WAIT_LONG, || async {
        (holder(&env).await.as_deref() == Some("replica-b")).then_some(())
    })
    .await
    .unwrap();
    let takeover = killed.elapsed();
    assert!(
        takeover <= Duration::from_secs(LEASE_SECONDS + 3),
        "takeover took {takeover:?} with a {LEASE_SECONDS}s lease"
    );
    wait_for("every record published", WAIT_LONG, || async {
        (route_records(&env) >= ROUTES && a_records(&env, seed000::ZONE).len() >= ROUTES + 2).then_some(())
    })
    .await
    .unwrap();
    let records = a_records(&env, seed000::ZONE);
    for i in 0..ROUTES {
        let (_, ips, _) = records.get(&format!("r{i}")).unwrap_or_else(|| panic!("r{i} missing: {records:?}"));
        assert_eq!(ips, &addresses, "r{i}");
    }
    // Exactly one create per record set: what the old leader wrote was verified, not rewritten
    // (a rewrite would be a second PUT, or a conditional create refused with 412).
    tokio::time::sleep(Duration::from_secs(2)).await;
    // ROUTES + the seed's two Gateways.
    assert_eq!(creates(&env), ROUTES as u64 + 2, "{:?}", env.azure.admin().calls());
    assert_eq!(env.azure.calls().get("arm", "RecordSets_CreateOrUpdate", 412), 0);
    let secret = env.secrets("app-a").get("kv-gw-cert-a-gateway-https").await.unwrap();
    assert_eq!(secret.metadata.resource_version, secret_version, "the listener's Secret was not written again");
    assert_eq!(b.metric("routewarden_leader ").await, Some(1.0));

    // Nothing is lost after the takeover either: the new leader publishes the next change.
    env.apply_yaml(&route("app-a", "after", "lead-gw", &["after.example.com"], None)).await.unwrap();
    let (_, ips, _) = wait_for_a(&env, seed000::ZONE, "after").await;
    assert_eq!(ips, addresses);
    assert_eq!(creates(&env), ROUTES as u64 + 3);
    b.stop().await.unwrap();
    env.shutdown().await;
}

const WAIT_LONG: Duration = Duration::from_secs(60);
