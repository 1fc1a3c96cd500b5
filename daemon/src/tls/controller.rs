//! The planner loop: after any watch event, plan every managed listener again (a pure function
//! of the caches, milliseconds for thousands of listeners) and turn the difference into durable
//! work. Level-triggered: a restart, a missed event or an object deleted behind routewarden's back
//! all end in the same comparison of what is planned with what exists.

use super::sources::{self, planned_account, planned_gateway};
use super::worker::Workers;
use super::{KIND_REMOVE, KIND_SYNC, Outcome, Reason, labels, lock};
use kube::ResourceExt;
use routewarden_planner::tls::{Binding, TlsPlan, plan};
use routewarden_store::{CertBindingKey, Enqueued, ItemState, Time};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;

/// Events arriving together (a `kubectl apply -f` of many objects) settle into one pass.
const DEBOUNCE: Duration = Duration::from_millis(5);
/// A listener synced this recently is not called drifted: the caches may not show the write yet.
const SETTLE: Duration = Duration::from_secs(5);

/// The identity of what a sync must produce: the binding and the output format. A change makes a
/// new queue payload, so a sync in flight runs again.
pub fn fingerprint(b: &Binding, format: &str) -> String {
    let text = format!(
        "{}|{}|{:?}|{:?}|{}|{:?}|{format}",
        b.uri.vault_url, b.uri.name, b.uri.version, b.identity, b.object_name, b.hostname
    );
    routewarden_planner::hex_digest(&text, 8)
}

/// One unit of queued work the loop decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    Sync { key: CertBindingKey, payload: String },
    Remove { key: CertBindingKey, name: String },
}

pub async fn run(w: Arc<Workers>, changed: crate::watches::Changed, mut stop: watch::Receiver<bool>) {
    tokio::select! {
        _ = w.kube.caches.ready() => {}
        _ = stop.changed() => return,
    }
    tracing::info!(caches = ?w.kube.caches, "TLS caches synced");
    let mut enqueued: HashMap<CertBindingKey, String> = HashMap::new();
    let mut warned: HashSet<(String, String)> = HashSet::new();
    loop {
        let span = tracing::info_span!("tls.plan");
        changed.adopt(&span);
        let started = Instant::now();
        pass(&w, &mut enqueued, &mut warned).instrument(span).await;
        tracing::debug!(elapsed = ?started.elapsed(), "TLS plan pass");
        // Wait at least as long as the pass took: a burst of events (a thousand Gateways applied,
        // their statuses written) then costs one pass per interval instead of one per event, and
        // planning never takes more than about half a core.
        let settle = DEBOUNCE.max(started.elapsed());
        tokio::select! {
            _ = changed.notified() => tokio::time::sleep(settle).await,
            _ = stop.changed() => return,
        }
    }
}

/// One planner pass: plan from the caches, queue what changed, publish the plan.
async fn pass(
    w: &Arc<Workers>,
    enqueued: &mut HashMap<CertBindingKey, String>,
    warned: &mut HashSet<(String, String)>,
) {
    {
        let gateways: Vec<_> = w.kube.caches.gateways.state().iter().filter_map(|g| planned_gateway(g)).collect();
        let accounts: Vec<_> =
            w.kube.caches.service_accounts.state().iter().filter_map(|a| planned_account(a)).collect();
        let plan = plan(&gateways, &accounts, &w.settings.planner_config());
        for warning in &plan.warnings {
            if warned.insert(warning.clone()) {
                tracing::warn!(gateway = %warning.0, "{}", warning.1);
            }
        }
        let work = decide(w, &plan, enqueued);
        refuse(w, &plan);
        {
            let mut shared = lock(&w.shared);
            shared.plan = plan;
            shared.planned = true;
        }
        if !work.is_empty() {
            queue(w, work).await;
            w.wake.notify_waiters();
        }
        w.reported.notify_one();
    }
}

/// What to queue for `plan`, given what this process queued before.
fn decide(w: &Workers, plan: &TlsPlan, enqueued: &mut HashMap<CertBindingKey, String>) -> Vec<Work> {
    let format = w.settings.format();
    let mut work = Vec::new();
    let caches = &w.kube.caches;
    let shared = lock(&w.shared);
    for (key, b) in &plan.bindings {
        let payload = fingerprint(b, &format);
        let changed = enqueued.get(key) != Some(&payload);
        let drifted = !changed
            && matches!(shared.outcomes.get(key), Some(Outcome::Ready { version, .. }) if {
                let settled = shared.synced_at.get(key).is_none_or(|t| t.elapsed() > SETTLE);
                let secret_ok = caches.secret(&key.namespace, &b.object_name)
                    .is_some_and(|s| s.annotations().get(labels::VERSION) == Some(version));
                let ref_ok = caches.gateway(&key.namespace, &key.gateway)
                    .and_then(|gw| sources::certificate_refs(&gw, &key.listener))
                    .is_some_and(|refs| refs.iter().any(|r| sources::is_ref_to(r, &key.namespace, &b.object_name)));
                settled && !(secret_ok && ref_ok)
            });
        if changed || drifted {
            if drifted {
                tracing::info!(listener = %key, "listener's Secret or certificateRef changed outside routewarden; syncing again");
            }
            work.push(Work::Sync { key: key.clone(), payload: payload.clone() });
            enqueued.insert(key.clone(), payload);
        }
    }
    enqueued.retain(|k, _| plan.bindings.contains_key(k));

    // Owned objects nothing plans any more. A refused listener keeps its last good Secret: the
    // refusal may be a passing state (a ServiceAccount being re-created), and the listener still
    // asks for a certificate.
    let wanted = |key: &CertBindingKey, name: &str| {
        plan.bindings.get(key).is_some_and(|b| b.object_name == name)
            || (plan.refused.contains_key(key)
                && routewarden_planner::tls::object_name(&key.gateway, &key.listener) == name)
    };
    let mut owned: BTreeMap<(CertBindingKey, String), ()> = BTreeMap::new();
    for s in caches.secrets.state() {
        if let Some(k) = owned_key(s.namespace(), s.annotations()) {
            owned.insert((k, s.name_any()), ());
        }
    }
    for s in caches.spcs.state() {
        if let Some(k) = owned_key(s.namespace(), s.annotations()) {
            owned.insert((k, s.name_any()), ());
        }
    }
    for (key, name) in owned.into_keys() {
        if !wanted(&key, &name) {
            work.push(Work::Remove { key, name });
        }
    }
    drop(shared);
    work
}

fn owned_key(namespace: Option<String>, a: &BTreeMap<String, String>) -> Option<CertBindingKey> {
    Some(CertBindingKey {
        namespace: namespace?,
        gateway: a.get(labels::GATEWAY)?.clone(),
        listener: a.get(labels::LISTENER)?.clone(),
    })
}

/// Refused listeners get their reason at once; listeners no longer managed lose theirs.
fn refuse(w: &Workers, plan: &TlsPlan) {
    let gone: Vec<CertBindingKey> = {
        let s = lock(&w.shared);
        s.outcomes
            .keys()
            .filter(|k| !plan.bindings.contains_key(*k) && !plan.refused.contains_key(*k))
            .cloned()
            .collect()
    };
    for key in gone {
        lock(&w.shared).outcomes.remove(&key);
        w.metrics.forget_listener(&key);
    }
    for (key, refusal) in &plan.refused {
        let serving = w
            .kube
            .caches
            .secret(&key.namespace, &routewarden_planner::tls::object_name(&key.gateway, &key.listener))
            .and_then(|s| s.annotations().get(labels::VERSION).cloned());
        let reason = Reason::from_planner(refusal.reason);
        let outcome = Outcome::Failed {
            reason,
            check: None,
            message: match &serving {
                Some(v) => format!("{}; the Secret keeps serving version {v}", refusal.message),
                None => refusal.message.clone(),
            },
            serving,
            retrying: false,
            attempted: None,
        };
        let before = lock(&w.shared).outcomes.get(key).cloned();
        if before.as_ref() != Some(&outcome) {
            w.metrics
                .certificate_sync_errors
                .get_or_create(&crate::metrics::ReasonLabels { reason: reason.as_str().to_owned() })
                .inc();
            w.record(key, outcome);
        }
    }
}

/// Writes the decided work into the journal in one commit.
async fn queue(w: &Workers, work: Vec<Work>) {
    let journal = w.journal.clone();
    for item in &work {
        let (kind, key) = match item {
            Work::Sync { key, .. } => (KIND_SYNC, key),
            Work::Remove { key, .. } => (KIND_REMOVE, key),
        };
        crate::telemetry::parents().remember(kind, &key.to_string());
    }
    let result = crate::telemetry::journal(move || {
        let now = Time::now();
        journal.commit(|tx| {
            for item in &work {
                match item {
                    // Queued because it differs or drifted: an unchanged payload whose item is
                    // done (or parked) runs again.
                    Work::Sync { key, payload } => {
                        let enqueued = tx.enqueue(KIND_SYNC, &key.to_string(), payload.as_bytes(), now)?;
                        if let Enqueued::Unchanged(id) = enqueued
                            && tx.work_item(id)?.is_some_and(|i| matches!(i.state, ItemState::Done | ItemState::Parked))
                        {
                            tx.requeue(id, now)?;
                        }
                    }
                    Work::Remove { key, name } => {
                        tx.enqueue(KIND_REMOVE, &key.to_string(), name.as_bytes(), now)?;
                    }
                }
            }
            Ok(())
        })
    })
    .await;
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "failed to queue TLS work"),
        Err(e) => tracing::error!(error = %e, "queue task failed"),
    }
}

/// Queues a sync of `keys` because their certificate has a new version (from the poller).
pub async fn queue_rotation(w: &Workers, keys: &[CertBindingKey], version: &str) {
    let work: Vec<Work> = {
        let shared = lock(&w.shared);
        let format = w.settings.format();
        keys.iter()
            .filter_map(|key| {
                let b = shared.plan.bindings.get(key)?;
                let payload = format!("{} {version}", fingerprint(b, &format));
                Some(Work::Sync { key: key.clone(), payload })
            })
            .collect()
    };
    queue(w, work).await;
    w.wake.notify_waiters();
}
