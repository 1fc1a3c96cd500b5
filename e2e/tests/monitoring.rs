//! The monitoring that ships with routewarden, checked with Prometheus's own tools:
//! - the alert rules (`deploy/components/monitoring/rules.yaml`) pass `promtool check rules`, their
//!   unit tests pass `promtool test rules`, and the PrometheusRule is generated from them;
//! - every Grafana dashboard query parses and returns data from a real Prometheus (Debian's
//!   `prometheus`, started by `dashboards/check.py`) scraping routewarden after the sandbox demo:
//!   seed 000's TLS and DNS walkthroughs, a certificate rotation, a burst of Azure throttling and
//!   dropped watches, so the error and throttling panels have something to show.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use routewarden_e2e::dns::{a_record, http_gateway, route};
use routewarden_e2e::*;
use routewarden_sandbox::demo;
use routewarden_sandbox::kube::KubeServerOptions;
use routewarden_sandbox::up::{DaemonOptions, Sandbox, UpOptions};
use routewarden_sandbox_azure::{Bucket, FaultConfig, FaultRule};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn need(tool: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "{tool} is not installed (Debian package `prometheus`; .ci/run installs it)");
}

#[test]
fn alert_rules_pass_promtool_checks_and_their_unit_tests() {
    need("promtool");
    let script = repo().join("deploy/components/monitoring/test.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{} failed:\n{text}", script.display());
    assert!(text.contains("SUCCESS"), "promtool reported no success:\n{text}");
}

#[test]
fn dashboards_read_the_leaders_series_from_two_replicas() {
    need("prometheus");
    // A leader and a follower whose cache-derived gauges differ (testdata/*.prom): every query
    // must return data, and the checker's rule evaluation must find no errors.
    let out = Command::new("python3")
        .arg(repo().join("dashboards/check.py"))
        .arg("--sample")
        .arg(repo().join("dashboards/testdata/sample.prom"))
        .arg("--sample")
        .arg(repo().join("dashboards/testdata/follower.prom"))
        .arg("--rules")
        .arg(repo().join("deploy/components/monitoring/rules.yaml"))
        .arg(repo().join("dashboards"))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains(" 0 EMPTY, 0 ERROR"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_after_the_sandbox_demo() {
    need("prometheus");
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(UpOptions {
        dir: dir.path().to_path_buf(),
        kube: KubeServerOptions {
            extra_crds: routewarden_sandbox::kube::crd::routewarden_crds(),
            ..KubeServerOptions::default()
        },
        azure: true,
        scenario: None,
        daemon: Some(DaemonOptions { certificate_poll_interval: "10s".into() }),
    })
    .await
    .unwrap();
    let client = sandbox.kube().client().await.unwrap();
    let azure = sandbox.azure().unwrap();
    let daemon = sandbox.daemon().unwrap();

    // The demo: seed 000's TLS walkthrough, then its DNS walkthrough.
    demo::apply_walkthrough(&client).await.unwrap();
    let report = demo::wait_and_report(&client, Duration::from_secs(60)).await.unwrap();
    assert!(report.missing().is_empty(), "{report}");
    demo::dns::run(&client, &azure.admin(), &daemon.admin_url(), Duration::from_secs(60), |_| {}).await.unwrap();

    // What operators watch for: a rotation, throttling while a record is published, dropped watches.
    azure.admin().rotate_certificate(seed000::VAULT, seed000::CERTIFICATE).unwrap();
    let mut faults = FaultConfig::default();
    // One record-set write per zone every 2 s: four routes at once are throttled (429 with
    // Retry-After); and one write in five fails with a 500.
    faults.rate_limits.public_zone_writes = Bucket { limit: 1, period_seconds: 2.0 };
    faults.faults.push(FaultRule {
        service: Some("arm".into()),
        operation: Some("RecordSets_CreateOrUpdate".into()),
        error_500: 0.2,
        ..FaultRule::default()
    });
    azure.admin().set_faults(faults);
    sandbox.kube().faults().expire_next_watches(2);
    sandbox.kube().faults().close_watches();
    apply_yaml(&client, &http_gateway("app-a", "monitored-gw", None)).await.unwrap();
    // The demo left only a namespaced ExternalDNS for Gateways labelled zone=c: publish this one
    // with a ClusterExternalDNS of its own.
    apply_yaml(&client, &routewarden_e2e::dns::cluster_dns("monitored-dns", &[routewarden_e2e::dns::zone_id()], None))
        .await
        .unwrap();
    for i in 0..4 {
        apply_yaml(&client, &route("app-a", &format!("m{i}"), "monitored-gw", &[&format!("m{i}.example.com")], None))
            .await
            .unwrap();
    }
    wait_for("the throttled records", Duration::from_secs(120), || async {
        let sets = azure.admin().list_record_sets(seed000::ZONE).ok()?;
        (0..4).all(|i| a_record(&sets, &format!("m{i}")).is_some()).then_some(())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}", azure.admin().calls()));
    let throttled = azure.calls().get("arm", "RecordSets_CreateOrUpdate", 429);
    assert!(throttled > 0, "the scenario must have been throttled: {:?}", azure.admin().calls());
    azure.admin().set_faults(FaultConfig::default());

    // While Prometheus scrapes, keep routewarden busy as a live cluster would: a route added and
    // the previous one deleted every second, so rates (writes, deletes, failures) are not zero.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let routes: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
                client.clone(),
                "app-a",
                &kube::api::ApiResource::from_gvk_with_plural(
                    &kube::api::GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
                    "httproutes",
                ),
            );
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let churned =
                    route("app-a", &format!("churn{i}"), "monitored-gw", &[&format!("churn{i}.example.com")], None);
                apply_yaml(&client, &churned).await.unwrap();
                if i > 0 {
                    let _ = routes.delete(&format!("churn{}", i - 1), &Default::default()).await;
                }
                i += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let metrics = daemon.metrics_url();
    let target = metrics.trim_start_matches("http://").trim_end_matches("/metrics").to_owned();
    let check = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(repo().join("dashboards/check.py"))
            .args(["--scrape", &target, "--rules"])
            .arg(repo().join("deploy/components/monitoring/rules.yaml"))
            .arg(repo().join("dashboards"))
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    churn.await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
    println!("{text}");
    assert!(check.status.success(), "dashboards/check.py found panels without data or with errors:\n{text}");
    let summary = text.lines().find(|l| l.contains(" checked: ")).expect("the check's summary line");
    let checked: usize = summary.split(' ').next().unwrap().parse().unwrap();
    assert!(checked >= 70, "the four dashboards have at least 70 panels and variables: {summary}");
    assert_eq!(summary, format!("{checked} checked: {checked} OK, 0 EMPTY, 0 ERROR"));
    sandbox.shutdown().await.unwrap();
}
