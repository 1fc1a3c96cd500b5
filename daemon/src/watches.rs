//! Running the controllers' watches. Every watch wakes its controller on each event, backs off and
//! re-lists on errors (the cache keeps serving its last state meanwhile; each failure counts in
//! `routewarden_watch_restarts_total`), and ends on `stop`. A change (an object applied or
//! deleted, a re-list finished) gets a span that the next planner pass continues ([`Changed`]).
//!
//! A watch of a kind the API server does not serve (the Gateway API or the Secrets Store CSI CRDs
//! not installed) would fail its list forever, and a controller waiting for its caches to fill
//! would never start. So such watches are started only once the kind is served: until then the
//! cache is marked listed and empty, and the API is checked again every minute.

use futures::StreamExt;
use kube::runtime::reflector::store::Writer;
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// What a controller's watches report to: the planner's wake-up, the spans of the events that
/// woke it, and the metrics.
#[derive(Clone, Debug)]
pub struct Changed {
    notify: Arc<Notify>,
    triggers: Arc<crate::telemetry::Triggers>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Changed {
    pub fn new(metrics: Arc<crate::metrics::Metrics>) -> Self {
        Changed { notify: Arc::new(Notify::new()), triggers: Arc::default(), metrics }
    }

    /// Wakes the planner (as a watch event does).
    pub fn notify_one(&self) {
        self.notify.notify_one();
    }

    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// The Notify itself, for code that wakes the planner without a watch event.
    pub fn notifier(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    /// Makes `span` (a planner pass) continue the traces of the events since the last pass.
    pub fn adopt(&self, span: &tracing::Span) {
        self.triggers.adopt(span);
    }
}

/// How often an API that is not served is looked for again.
const RECHECK: Duration = Duration::from_secs(60);

/// Drives `stream` (a reflector over a watcher), notifying `changed` after every event.
pub fn spawn<K, S>(what: &'static str, stream: S, changed: &Changed, stop: &watch::Receiver<bool>)
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: kube::Resource + Send + 'static,
{
    let changed = changed.clone();
    let mut stop = stop.clone();
    let restarts =
        changed.metrics.watch_restarts.get_or_create(&crate::metrics::ResourceLabels { resource: what.into() }).clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream.default_backoff());
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                _ = stop.changed() => return,
            };
            match event {
                Some(Ok(event)) => {
                    let change = match &event {
                        watcher::Event::Apply(o) => Some(("apply", o.meta().namespace.clone(), o.meta().name.clone())),
                        watcher::Event::Delete(o) => {
                            Some(("delete", o.meta().namespace.clone(), o.meta().name.clone()))
                        }
                        watcher::Event::InitDone => Some(("listed", None, None)),
                        watcher::Event::Init | watcher::Event::InitApply(_) => None,
                    };
                    if let Some((kind, namespace, name)) = change {
                        let span = tracing::info_span!(
                            "watch event",
                            resource = what,
                            event = kind,
                            namespace = namespace.as_deref().unwrap_or(""),
                            name = name.as_deref().unwrap_or("")
                        );
                        span.in_scope(|| changed.triggers.record());
                    }
                    changed.notify_one();
                }
                Some(Err(e)) => {
                    restarts.inc();
                    tracing::warn!(watch = what, error = %e, "watch failed; retrying");
                }
                None => return,
            }
        }
    });
}

/// Whether the API server serves `plural` in `api_version` (e.g. `gateway.networking.k8s.io/v1`).
/// An unreachable server counts as serving it: the watch itself then retries.
pub async fn served(client: &kube::Client, api_version: &str, plural: &str) -> bool {
    match client.list_api_group_resources(api_version).await {
        Ok(list) => list.resources.iter().any(|r| r.name == plural),
        Err(kube::Error::Api(e)) if e.code == 404 => false,
        Err(_) => true,
    }
}

/// Like [`spawn`], for a kind that may not be installed: the watch starts once `plural` in
/// `api_version` is served; until then the cache behind `writer` is listed and empty, and
/// `available` (when given) stays false.
#[allow(clippy::too_many_arguments)]
pub fn spawn_when_served<K, S>(
    what: &'static str,
    client: kube::Client,
    api_version: &'static str,
    plural: &'static str,
    mut writer: Writer<K>,
    stream: impl FnOnce(Writer<K>) -> S + Send + 'static,
    changed: &Changed,
    stop: &watch::Receiver<bool>,
    available: Option<Arc<AtomicBool>>,
) where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let changed = changed.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        let mut waiting = stop.clone();
        let mut warned = false;
        while !served(&client, api_version, plural).await {
            if !warned {
                tracing::warn!(
                    watch = what,
                    api_version,
                    "not served by this cluster; watching it once it is installed"
                );
                writer.apply_watcher_event(&watcher::Event::Init);
                writer.apply_watcher_event(&watcher::Event::InitDone);
                changed.notify_one();
                warned = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(RECHECK) => {}
                _ = waiting.changed() => return,
            }
        }
        if let Some(a) = available {
            a.store(true, Ordering::Relaxed);
        }
        spawn(what, stream(writer), &changed, &stop);
    });
}
