//! One trace per change: a Gateway applied to the cluster is followed from the watch event that
//! saw it, through the planner pass and the journal, to the Key Vault requests and the Kubernetes
//! writes of the worker that synced its listener — all spans of one trace — and the latency
//! histograms carry that trace's id as an exemplar. Spans are collected in memory by the same
//! OpenTelemetry layer `routewarden run` installs (this file is its own test binary because the
//! tracing subscriber is process-wide).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_is_one_trace_from_watch_event_to_key_vault_and_the_secret_write() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::new("info"))
        .with(routewarden::telemetry::otel_layer(&provider))
        .init();
    let env = Env::start(Options::default()).await.unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    wait_for("the listener's Secret", Duration::from_secs(60), || async {
        env.secrets("app-a").get_opt("kv-gw-cert-a-gateway-https").await.ok()?
    })
    .await
    .unwrap();
    // The Secret is visible before its worker's span ends (it still patches the Gateway and
    // commits to the journal): wait for that span to be exported.
    let spans = wait_for("the worker's span", Duration::from_secs(30), || async {
        provider.force_flush().ok()?;
        let spans = exporter.get_finished_spans().ok()?;
        let write = spans.iter().find(|s| {
            s.name == "kubernetes apply Secret"
                && attribute(s, "secret").as_deref() == Some("kv-gw-cert-a-gateway-https")
        })?;
        spans.iter().any(|s| s.span_context.span_id() == write.parent_span_id).then_some(spans.clone())
    })
    .await
    .unwrap();

    let write = spans
        .iter()
        .find(|s| {
            s.name == "kubernetes apply Secret"
                && attribute(s, "secret").as_deref() == Some("kv-gw-cert-a-gateway-https")
        })
        .unwrap_or_else(|| {
            panic!("no Secret write span among {:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>())
        });
    let trace: TraceId = write.span_context.trace_id();
    let names: Vec<&str> =
        spans.iter().filter(|s| s.span_context.trace_id() == trace).map(|s| s.name.as_ref()).collect();
    for wanted in ["watch event", "tls.plan", "journal.commit", "tls.work", "kubernetes patch Gateway certificateRefs"]
    {
        assert!(names.contains(&wanted), "{wanted} is not in the Secret write's trace: {names:?}");
    }
    assert!(
        names.iter().any(|n| n.starts_with("keyvault ")),
        "no Key Vault request in the Secret write's trace: {names:?}"
    );
    // Parent links, not just a shared id: walking up from the Secret write passes the worker,
    // the planner pass and ends at the watch event.
    let parent = |child: &SpanData| {
        spans
            .iter()
            .find(|s| s.span_context.trace_id() == trace && s.span_context.span_id() == child.parent_span_id)
            .unwrap_or_else(|| panic!("{} has no exported parent", child.name))
    };
    let work = parent(write);
    assert_eq!(work.name, "tls.work");
    let plan = parent(work);
    assert_eq!(plan.name, "tls.plan");
    assert_eq!(parent(plan).name, "watch event");

    // Exemplars: the Key Vault latency histogram names a trace that was exported.
    let daemon = env.daemon.as_ref().unwrap();
    let metrics = reqwest::get(format!("{}/metrics", daemon.metrics)).await.unwrap().text().await.unwrap();
    let exemplar = metrics
        .lines()
        .filter(|l| {
            l.starts_with("routewarden_azure_request_duration_seconds_bucket{") && l.contains("service=\"keyvault\"")
        })
        .find_map(|l| l.split("trace_id=\"").nth(1)?.split('"').next().map(str::to_owned))
        .unwrap_or_else(|| panic!("no Key Vault latency exemplar in\n{metrics}"));
    assert!(
        spans.iter().any(|s| s.span_context.trace_id().to_string() == exemplar),
        "exemplar trace {exemplar} was not exported"
    );
    env.shutdown().await;
}
