//! Liveness and readiness, served with `/metrics` on the metrics address (what kubelet probes and
//! Prometheus scrape) and on the admin endpoint. `/healthz` says the process serves requests.
//! `/readyz` says it is ready: the journal is open, every controller has synced its caches and
//! planned once, and leadership is known (this replica leads, or knows it follows) — so a rollout
//! waits for a new pod to be able to take over before it stops an old one.

use crate::lock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

type Check = Box<dyn Fn() -> bool + Send + Sync>;

/// What readiness waits for.
#[derive(Default)]
pub struct Health {
    journal_open: AtomicBool,
    checks: Mutex<Vec<(&'static str, Check)>>,
    leadership: Mutex<Option<crate::leader::Leadership>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").field("report", &self.report()).finish()
    }
}

/// Readiness and what is still missing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    pub ready: bool,
    pub waiting_for: Vec<String>,
}

impl Health {
    pub fn new() -> Arc<Self> {
        Arc::new(Health::default())
    }

    pub fn set_journal_open(&self, open: bool) {
        self.journal_open.store(open, Ordering::SeqCst);
    }

    /// Readiness also waits for `check` (e.g. "TLS caches synced").
    pub fn require(&self, what: &'static str, check: impl Fn() -> bool + Send + Sync + 'static) {
        lock(&self.checks).push((what, Box::new(check)));
    }

    pub fn set_leadership(&self, leadership: crate::leader::Leadership) {
        *lock(&self.leadership) = Some(leadership);
    }

    pub fn report(&self) -> Report {
        let mut waiting_for = Vec::new();
        if !self.journal_open.load(Ordering::SeqCst) {
            waiting_for.push("journal open".to_owned());
        }
        for (what, check) in lock(&self.checks).iter() {
            if !check() {
                waiting_for.push((*what).to_owned());
            }
        }
        if lock(&self.leadership).as_ref().is_some_and(|l| !l.known()) {
            waiting_for.push("leadership known".to_owned());
        }
        Report { ready: waiting_for.is_empty(), waiting_for }
    }
}

/// `/metrics`, `/healthz` and `/readyz`. Each scrape first refreshes the gauges that are read
/// rather than pushed: queue statistics, journal size, readiness and leadership.
pub fn router(
    metrics: Arc<crate::metrics::Metrics>,
    journal: routewarden_store::Journal,
    health: Arc<Health>,
) -> axum::Router {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let scrape = {
        let health = health.clone();
        move || {
            let metrics = metrics.clone();
            let journal = journal.clone();
            let health = health.clone();
            async move {
                let m = metrics.clone();
                let refreshed = tokio::task::spawn_blocking(move || {
                    m.queue_depth.set(i64::try_from(journal.queue_depth()).unwrap_or(i64::MAX));
                    m.journal_size.set(i64::try_from(journal.size_on_disk()).unwrap_or(i64::MAX));
                    match journal.queue_stats() {
                        Ok(stats) => m.set_queue(&stats, routewarden_store::Time::now()),
                        Err(e) => tracing::warn!(error = %e, "failed to read queue statistics for metrics"),
                    }
                })
                .await;
                if let Err(e) = refreshed {
                    tracing::warn!(error = %e, "metrics refresh task failed");
                }
                metrics.ready.set(i64::from(health.report().ready));
                if let Some(l) = lock(&health.leadership).as_ref() {
                    metrics.leader.set(i64::from(l.is_leader()));
                }
                (
                    [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                    metrics.encode(),
                )
            }
        }
    };
    let readyz = move || {
        let health = health.clone();
        async move {
            let report = health.report();
            let status = if report.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
            (status, axum::Json(report))
        }
    };
    axum::Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn ready_only_once_journal_caches_and_leadership_are_known() {
        let health = Health::new();
        let synced = Arc::new(AtomicBool::new(false));
        let s = synced.clone();
        health.require("TLS caches synced", move || s.load(Ordering::SeqCst));
        let (leadership, tx) = crate::leader::Leadership::channel();
        health.set_leadership(leadership);
        assert_eq!(health.report().waiting_for, ["journal open", "TLS caches synced", "leadership known"]);
        health.set_journal_open(true);
        synced.store(true, Ordering::SeqCst);
        assert!(!health.report().ready);
        tx.send(Some(false));
        assert_eq!(health.report(), Report { ready: true, waiting_for: vec![] }, "a follower is ready too");
    }
}
