//! The fault suite: Azure answers one request in five with a failure — 500s, 503s with
//! Retry-After, dropped connections and requests held until they time out — and throttles record
//! writes with 429s, while the API server drops every watch and answers re-watches with 410 Gone.
//! routewarden keeps running (no crash, no restart), shows the failures in its metrics while they
//! last, and once they stop converges to exactly the desired state: every listener's Secret and
//! every record set, nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::dns::{
    self, a_records, gateway_addresses, http_gateway, ready_of, ready_within, route, synced_with, zone_id,
};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use routewarden_sandbox_azure::{Bucket, FaultConfig, FaultRule};
use std::collections::BTreeMap;
use std::time::Duration;

const ROUTES: usize = 12;

fn faulty() -> FaultConfig {
    let mut faults = FaultConfig::default();
    for service in ["arm", "keyvault"] {
        faults.faults.push(FaultRule {
            service: Some(service.into()),
            error_500: 0.05,
            error_503: 0.05,
            reset: 0.05,
            timeout: 0.05,
            timeout_ms: 1_500,
            ..FaultRule::default()
        });
    }
    // Two record-set writes at once, then one a second: the routes are certainly throttled.
    faults.rate_limits.public_zone_writes = Bucket { limit: 2, period_seconds: 2.0 };
    faults
}

/// The sum of a counter's samples whose line contains every one of `labels`.
fn sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|m| l.contains(m)))
        .filter_map(|l| l.split(' ').nth(1)?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_azure_faults_and_dropped_watches_it_keeps_running_reports_them_and_converges_exactly() {
    let env = Env::start(Options::default()).await.unwrap();
    env.azure.admin().set_faults(faulty());
    let kube_faults = env.kube.faults().clone();
    // The API server drops every watch every 700 ms and answers the next re-watches with 410.
    let chaos = tokio::spawn(async move {
        loop {
            kube_faults.expire_next_watches(2);
            kube_faults.close_watches();
            tokio::time::sleep(Duration::from_millis(700)).await;
        }
    });

    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    env.apply_yaml(&http_gateway("app-a", "faulty-gw", None)).await.unwrap();
    let addresses = gateway_addresses(&env, "app-a", "faulty-gw").await;
    let seed_a = gateway_addresses(&env, "app-a", "a-gateway").await;
    let seed_b = gateway_addresses(&env, "app-b", "b-gateway").await;
    let routes: Vec<String> = (0..ROUTES)
        .map(|i| route("app-a", &format!("f{i}"), "faulty-gw", &[&format!("f{i}.example.com")], None))
        .collect();
    env.apply_yaml(&routes.join("---\n")).await.unwrap();
    env.apply_yaml(&dns::cluster_dns("faulty-dns", &[zone_id()], None)).await.unwrap();

    // While the faults last, the metrics show them.
    let metrics_url = format!("{}/metrics", env.daemon.as_ref().unwrap().metrics);
    let seen = wait_for("failures in the metrics", Duration::from_secs(60), || async {
        let m = reqwest::get(&metrics_url).await.ok()?.text().await.ok()?;
        let failed = sum(&m, "routewarden_azure_requests_total", &["outcome=\"Transient\""]);
        let throttled = sum(&m, "routewarden_azure_throttled_total", &["service=\"dns\""]);
        let restarts = sum(&m, "routewarden_watch_restarts_total", &[]);
        (failed > 0.0 && throttled > 0.0 && restarts > 0.0).then_some((failed, throttled, restarts))
    })
    .await
    .unwrap();
    println!("while faulty: {} transient failures, {} 429s, {} watch restarts", seen.0, seen.1, seen.2);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let daemon = env.daemon.as_ref().unwrap();
    assert!(reqwest::get(format!("{}/healthz", daemon.metrics)).await.is_ok_and(|r| r.status().is_success()));

    // The faults stop: exactly the desired state.
    chaos.abort();
    env.azure.admin().set_faults(FaultConfig::default());
    let desired = ROUTES as u64 + 2;
    let status = ready_within(&env, "clusterexternaldnses", None, "faulty-dns", Duration::from_secs(300), |s| {
        synced_with(s, desired)
    })
    .await;
    assert_eq!(ready_of(&status), ("True".into(), "Synced".into()), "{status}");
    let zone: BTreeMap<String, Vec<String>> =
        a_records(&env, seed000::ZONE).into_iter().map(|(n, (_, ips, _))| (n, ips)).collect();
    let mut want: BTreeMap<String, Vec<String>> = (0..ROUTES).map(|i| (format!("f{i}"), addresses.clone())).collect();
    want.insert("a".into(), seed_a);
    want.insert("b".into(), seed_b);
    assert_eq!(zone, want, "exactly the desired record sets");
    for (ns, gw) in [("app-a", "a-gateway"), ("app-b", "b-gateway")] {
        let c = wait_for("the listener synced", Duration::from_secs(300), || async {
            env.listener_condition(ns, gw, "https").await.filter(|c| c.0 == "True")
        })
        .await
        .unwrap();
        assert_eq!(c.1, "Synced", "{c:?}");
        let secret = env.secrets(ns).get(&format!("kv-gw-cert-{gw}-https")).await.unwrap();
        assert!(leaf_of(&secret).is_some(), "{ns}/{gw}: a certificate in the Secret");
    }
    assert!(!daemon_finished(&env), "the daemon kept running through the faults");
    env.shutdown().await;
}

fn daemon_finished(env: &Env) -> bool {
    env.daemon.as_ref().is_none_or(Daemon::finished)
}
