//! Traces leave routewarden the way the OpenTelemetry specification says: `routewarden run`, as
//! its own process, is given only the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`), and an OTLP/gRPC collector started by the test
//! receives the spans of a listener's sync under that service name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use routewarden_e2e::*;
use routewarden_sandbox::demo::{GATEWAYS_YAML as GATEWAYS, NAMESPACES_YAML as NAMESPACES};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An OTLP trace receiver that keeps what it is sent.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Collector {
    /// (service.name, span name) of everything received.
    fn spans(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for request in self.0.lock().unwrap().iter() {
            for resource in &request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| match &v.value {
                        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => {
                            Some(s.clone())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                for scope in &resource.scope_spans {
                    for span in &scope.spans {
                        out.push((service.clone(), span.name.clone()));
                    }
                }
            }
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_configured_by_the_standard_variables() {
    let collector = Collector::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let server = tokio::spawn(
        tonic::transport::Server::builder().add_service(TraceServiceServer::new(collector.clone())).serve(addr),
    );

    let env = Env::start(Options { daemon: false, ..Options::default() }).await.unwrap();
    let mut child = env
        .daemon_command(env!("CARGO_BIN_EXE_routewarden-child"), &env.journal_dir())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
        .env("OTEL_SERVICE_NAME", "routewarden-under-test")
        .env("OTEL_TRACES_SAMPLER", "always_on")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.apply_yaml(NAMESPACES).await.unwrap();
    env.apply_yaml(GATEWAYS).await.unwrap();
    let spans = wait_for("the listener's spans at the collector", Duration::from_secs(60), || async {
        let spans = collector.spans();
        spans.iter().any(|(_, name)| name == "kubernetes apply Secret").then_some(spans)
    })
    .await;
    child.kill().unwrap();
    let _ = child.wait();
    server.abort();
    let spans = spans.unwrap();
    assert!(spans.iter().all(|(service, _)| service == "routewarden-under-test"), "{spans:?}");
    for name in ["watch event", "tls.plan", "tls.work", "journal.commit"] {
        assert!(spans.iter().any(|(_, n)| n == name), "{name} not exported: {spans:?}");
    }
    assert!(spans.iter().any(|(_, n)| n.starts_with("keyvault ")), "{spans:?}");
    env.shutdown().await;
}
