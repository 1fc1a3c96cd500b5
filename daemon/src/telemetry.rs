//! Logs and traces. Logs go to stderr as text or JSON, filtered by `RUST_LOG` (default `info`);
//! the filter can be replaced while the daemon runs (`PUT /v1/log-level` on the admin endpoint).
//! Traces are OpenTelemetry spans bridged from `tracing`, exported over OTLP when the standard
//! variables ask for it (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`;
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]` and
//! `OTEL_SDK_DISABLED` as the specification says). Without an exporter spans still get ids, so
//! latency histograms keep trace-id exemplars and logs can be correlated.
//!
//! One trace follows a change end to end although the work crosses tasks and the journal:
//! a watch event's span is handed to the planner pass it wakes ([`Triggers`]); the planner's span
//! is remembered for each work item it queues ([`Parents`]) and becomes the parent of the worker's
//! span that drains the item, under which the Azure calls and Kubernetes writes are made.

use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

use crate::cli::LogFormat;
use crate::lock;

/// The filter directive used when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// Replaces the running process's log filter.
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    current: std::sync::Arc<Mutex<String>>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogControl").field("current", &*lock(&self.current)).finish()
    }
}

impl LogControl {
    /// The filter in force, as directives (`info,routewarden::dns=debug`).
    pub fn current(&self) -> String {
        lock(&self.current).clone()
    }

    /// Replaces the filter; a directive that does not parse changes nothing.
    pub fn set(&self, directives: &str) -> Result<(), String> {
        let directives = directives.trim();
        let filter = EnvFilter::try_new(directives).map_err(|e| format!("{directives:?}: {e}"))?;
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        *lock(&self.current) = directives.to_owned();
        tracing::info!(filter = directives, "log level changed");
        Ok(())
    }
}

static LOG_CONTROL: OnceLock<LogControl> = OnceLock::new();

/// The log filter of this process, when [`init`] installed the subscriber.
pub fn log_control() -> Option<&'static LogControl> {
    LOG_CONTROL.get()
}

/// What [`init`] set up; dropping it does nothing, [`Telemetry::shutdown`] flushes spans.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered (bounded by the exporter's own timeout).
    pub fn shutdown(self) {
        if let Some(p) = self.provider
            && let Err(e) = p.shutdown()
        {
            tracing::warn!(error = %e, "failed to flush traces");
        }
    }
}

fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// Whether the OTEL_* variables ask for OTLP trace export.
pub fn export_requested() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let exporter_none = std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled
        && !exporter_none
        && (env_set("OTEL_EXPORTER_OTLP_ENDPOINT") || env_set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// A tracer provider for routewarden's spans: OTel's resource from the environment (service name
/// `routewarden` unless `OTEL_SERVICE_NAME` says otherwise) and, when `exporter` is given, a
/// batch processor feeding it.
pub fn provider(exporter: Option<opentelemetry_otlp::SpanExporter>) -> SdkTracerProvider {
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !env_set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("routewarden");
    }
    let mut builder = SdkTracerProvider::builder().with_resource(resource.build());
    if let Some(e) = exporter {
        builder = builder.with_batch_exporter(e);
    }
    builder.build()
}

/// The `tracing` layer that turns spans into OpenTelemetry spans of `provider`.
pub fn otel_layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("routewarden")).with_error_records_to_exceptions(true)
}

/// Installs logging and tracing for the process. Called once, before the runtime starts; a
/// second call (tests embedding the daemon) keeps the first subscriber.
pub fn init(format: LogFormat) -> Telemetry {
    let requested = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let parsed = requested.as_deref().map(EnvFilter::try_new);
    let unparsable = matches!(parsed, Some(Err(_)));
    let (filter, directives) = match (parsed, requested) {
        (Some(Ok(f)), Some(directives)) => (f, directives),
        // A bad RUST_LOG must not silence the daemon: fall back, and say so once logging works.
        _ => (EnvFilter::new(DEFAULT_FILTER), DEFAULT_FILTER.to_owned()),
    };
    let (filter, handle) = reload::Layer::new(filter);
    let exporter = if export_requested() {
        match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
            Ok(e) => Some(e),
            Err(e) => {
                eprintln!("routewarden: OTLP trace export disabled: {e}");
                None
            }
        }
    } else {
        None
    };
    let exporting = exporter.is_some();
    let provider = provider(exporter);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt: Box<dyn tracing_subscriber::Layer<_> + Send + Sync> = match format {
        LogFormat::Text => Box::new(fmt.with_ansi(ansi)),
        LogFormat::Json => Box::new(fmt.json()),
    };
    let installed = Registry::default().with(filter).with(fmt).with(otel_layer(&provider)).try_init().is_ok();
    if !installed {
        return Telemetry { provider: None };
    }
    let _ = LOG_CONTROL.set(LogControl { handle, current: std::sync::Arc::new(Mutex::new(directives.clone())) });
    if unparsable {
        tracing::warn!(default = DEFAULT_FILTER, "RUST_LOG does not parse; using the default filter");
    }
    tracing::info!(filter = %directives, otlp = exporting, "telemetry configured");
    Telemetry { provider: Some(provider) }
}

/// The OpenTelemetry context of the current `tracing` span.
pub fn current_context() -> opentelemetry::Context {
    tracing::Span::current().context()
}

fn sampled(cx: &opentelemetry::Context) -> Option<SpanContext> {
    let span = cx.span();
    let sc = span.span_context();
    (sc.is_valid() && sc.is_sampled()).then(|| sc.clone())
}

/// The trace id of the current span, when it belongs to a sampled trace (for exemplars).
pub fn current_trace_id() -> Option<String> {
    sampled(&current_context()).map(|sc| sc.trace_id().to_string())
}

/// Runs `f` — journal reads and commits, which block — on a blocking thread inside a
/// `journal.commit` span that continues the current trace (commit latencies get its exemplar).
pub async fn journal<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, tokio::task::JoinError> {
    let span = tracing::info_span!("journal.commit");
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}

/// Most trace contexts a [`Triggers`] keeps between two planner passes; older ones are dropped
/// (their events are still planned, their traces just end at the watch).
const MAX_TRIGGERS: usize = 64;

/// The spans of watch events that woke a planner since its last pass.
#[derive(Debug, Default)]
pub struct Triggers(Mutex<Vec<SpanContext>>);

impl Triggers {
    /// Records the current span (a watch event's) as a cause of the next pass.
    pub fn record(&self) {
        if let Some(sc) = sampled(&current_context()) {
            let mut t = lock(&self.0);
            if t.len() < MAX_TRIGGERS {
                t.push(sc);
            }
        }
    }

    /// Makes `span` (a planner pass) a child of the first recorded event and links the others.
    pub fn adopt(&self, span: &tracing::Span) {
        let causes = std::mem::take(&mut *lock(&self.0));
        let mut causes = causes.into_iter();
        if let Some(first) = causes.next() {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(first));
        }
        for other in causes {
            span.add_link(other);
        }
    }
}

/// Beyond this many remembered parents the map starts over: parents only join traces up.
const MAX_PARENTS: usize = 100_000;

/// The span that queued each work item, kept in memory (the journal stores no trace context: a
/// trace is not worth a schema change, and after a restart the old trace is over anyway).
#[derive(Debug, Default)]
pub struct Parents(Mutex<HashMap<(String, String), SpanContext>>);

impl Parents {
    /// Remembers the current span as the parent of the work on (kind, key).
    pub fn remember(&self, kind: &str, key: &str) {
        if let Some(sc) = sampled(&current_context()) {
            let mut p = lock(&self.0);
            if p.len() >= MAX_PARENTS {
                p.clear();
            }
            p.insert((kind.to_owned(), key.to_owned()), sc);
        }
    }

    /// Makes `span` (a worker's) a child of the span that queued (kind, key), once.
    pub fn adopt(&self, kind: &str, key: &str, span: &tracing::Span) {
        if let Some(sc) = lock(&self.0).remove(&(kind.to_owned(), key.to_owned())) {
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
        }
    }
}

/// Trace plumbing shared by the watches, planners and workers of both controllers.
pub fn parents() -> &'static Parents {
    static PARENTS: OnceLock<Parents> = OnceLock::new();
    PARENTS.get_or_init(Parents::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the events that pass the filter.
    struct Count(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_log_filter_changes_while_running_and_a_bad_one_changes_nothing() {
        let (filter, handle) = reload::Layer::new(EnvFilter::new("info"));
        let control = LogControl { handle, current: Arc::new(Mutex::new("info".into())) };
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = Registry::default().with(filter).with(Count(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::debug!("hidden at info");
            assert_eq!(seen.load(Ordering::SeqCst), 0);
            assert!(control.set("info,routewarden=[[").is_err(), "a filter that does not parse is refused");
            assert_eq!(control.current(), "info");
            control.set(" debug ").expect("debug parses");
            assert_eq!(control.current(), "debug");
            let before = seen.load(Ordering::SeqCst);
            tracing::debug!("shown at debug");
            assert_eq!(seen.load(Ordering::SeqCst), before + 1);
        });
    }
}
