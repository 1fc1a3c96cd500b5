//! Where users look: the listener condition `routewarden.io/CertificateReady` in the Gateway's
//! `status.listeners[].conditions`, and Events on the Gateway.
//!
//! Why a condition of our own type, applied with our own field manager: the Gateway's status
//! belongs to its controller (Istio), which rewrites its own conditions (`Accepted`,
//! `Programmed`, `ResolvedRefs`) on every change. A server-side apply under field manager
//! `routewarden` owns exactly one entry of the listener's condition list (a list keyed by
//! `type`), so the controller's writes and ours merge instead of overwriting each other, and our
//! condition never masquerades as the controller's verdict. routewarden only adds to listener
//! entries the controller has already published (an entry needs fields only it knows), and
//! applies all of a Gateway's conditions in one request, since an apply releases whatever the
//! manager applied before and leaves out now. If a controller still drops the condition, the
//! next pass sees it missing and applies it again.
//!
//! Events are published on transitions only: a listener that stays broken makes one Warning, not
//! one per retry.

use super::sources::{listener_condition, status_listeners};
use super::worker::Workers;
use super::{CONDITION_TYPE, Outcome, lock};
use crate::crd::conditions;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use routewarden_store::CertBindingKey;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Outcomes changing together (many listeners of one certificate) settle into one pass.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// Conditions are checked against the Gateways this often even without a change, so a
/// condition another writer removed comes back.
const RECHECK: Duration = Duration::from_secs(30);

/// The (status, reason, version) a listener was last announced with.
type Announced = (bool, String, Option<String>);

/// Condition messages are kept well under Kubernetes' 32,768-byte cap.
const MAX_MESSAGE_CHARS: usize = 2048;

/// The condition's status, reason and message for an outcome.
pub fn describe(o: &Outcome, secret: &str) -> (bool, &'static str, String) {
    match o {
        Outcome::Ready { version, x5t, not_after, warnings, pinned, .. } => {
            let mut message = format!(
                "Secret {secret} serves Key Vault version {version} (x5t {x5t}, notAfter {not_after}){}",
                if *pinned { "; the URI pins this version, so rotations are not followed" } else { "" }
            );
            for w in warnings {
                message.push_str(&format!("; warning: {w}"));
            }
            (true, "Synced", message)
        }
        Outcome::Failed { reason, check, message, .. } => (false, check.unwrap_or(reason.as_str()), message.clone()),
    }
}

pub async fn run(w: Arc<Workers>, mut stop: watch::Receiver<bool>) {
    let mut announced: HashMap<CertBindingKey, Announced> = HashMap::new();
    loop {
        tokio::select! {
            _ = w.reported.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = tokio::time::sleep(RECHECK) => {}
            _ = stop.changed() => return,
        }
        pass(&w, &mut announced).await;
    }
}

async fn pass(w: &Workers, announced: &mut HashMap<CertBindingKey, Announced>) {
    let (outcomes, names, managed) = {
        let s = lock(&w.shared);
        if !s.planned {
            return;
        }
        // Listeners still asking for a certificate: without an outcome yet (just after a
        // restart), their condition on the Gateway stays as it is.
        let managed: std::collections::HashSet<CertBindingKey> =
            s.plan.bindings.keys().chain(s.plan.refused.keys()).cloned().collect();
        let names: HashMap<CertBindingKey, String> = s
            .outcomes
            .keys()
            .map(|k| {
                let name = s
                    .plan
                    .bindings
                    .get(k)
                    .map(|b| b.object_name.clone())
                    .unwrap_or_else(|| routewarden_planner::tls::object_name(&k.gateway, &k.listener));
                (k.clone(), name)
            })
            .collect();
        (s.outcomes.clone(), names, managed)
    };
    let mut by_gateway: BTreeMap<(String, String), Vec<(&CertBindingKey, &Outcome)>> = BTreeMap::new();
    for (k, o) in &outcomes {
        by_gateway.entry((k.namespace.clone(), k.gateway.clone())).or_default().push((k, o));
    }
    // Gateways that show our condition but have no outcome any more lose it.
    for gw in w.kube.caches.gateways.state() {
        let key = (gw.namespace().unwrap_or_default(), gw.name_any());
        if !by_gateway.contains_key(&key)
            && status_listeners(&gw).iter().any(|l| listener_condition(&gw, l, CONDITION_TYPE).is_some())
        {
            by_gateway.insert(key, Vec::new());
        }
    }
    announced.retain(|k, _| outcomes.contains_key(k));

    for ((namespace, name), listeners) in by_gateway {
        let Some(gw) = w.kube.caches.gateway(&namespace, &name) else { continue };
        let published = status_listeners(&gw);
        let generation = gw.metadata.generation;
        let mut desired: BTreeMap<String, Value> = BTreeMap::new();
        let mut changed = false;
        let mut live: BTreeMap<String, Value> = BTreeMap::new();
        for l in &published {
            if let Some(c) = listener_condition(&gw, l, CONDITION_TYPE) {
                let key = CertBindingKey { namespace: namespace.clone(), gateway: name.clone(), listener: l.clone() };
                if managed.contains(&key) && !outcomes.contains_key(&key) {
                    desired.insert(l.clone(), c.clone());
                }
                live.insert(l.clone(), c);
            }
        }
        for (key, outcome) in &listeners {
            let secret = names.get(*key).cloned().unwrap_or_default();
            let (ok, reason, message) = describe(outcome, &secret);
            let previous = live.get(&key.listener);
            if published.contains(&key.listener) {
                // The same rule as the DNS resources' conditions: lastTransitionTime moves only
                // when the status flips.
                let mut conditions: Vec<Condition> =
                    previous.and_then(|c| serde_json::from_value(c.clone()).ok()).into_iter().collect();
                let update = conditions::Update {
                    type_: CONDITION_TYPE,
                    status: if ok { conditions::status::TRUE } else { conditions::status::FALSE },
                    reason,
                    message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
                };
                changed |= conditions::set(&mut conditions, &update, generation, jiff::Timestamp::now());
                if let Some(c) = conditions.pop().and_then(|c| serde_json::to_value(c).ok()) {
                    desired.insert(key.listener.clone(), c);
                }
            }
            let version = match outcome {
                Outcome::Ready { version, .. } => Some(version.clone()),
                Outcome::Failed { .. } => None,
            };
            let now: Announced = (ok, reason.to_owned(), version.clone());
            let before = announced.get(*key).cloned().or_else(|| {
                // After a restart, the condition on the Gateway says what was announced last.
                previous.map(|c| {
                    (
                        c.get("status").and_then(Value::as_str) == Some("True"),
                        c.get("reason").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        version.clone(),
                    )
                })
            });
            if before.as_ref() != Some(&now) {
                // A listener that was serving one version and now serves another has rotated.
                let rotated = before.as_ref().is_some_and(|b| b.0 && b.2.is_some() && b.2 != now.2);
                let (event_reason, note) = match outcome {
                    Outcome::Ready { .. } if rotated => ("Rotated", format!("listener {:?}: {message}", key.listener)),
                    Outcome::Ready { .. } => ("Synced", format!("listener {:?}: {message}", key.listener)),
                    Outcome::Failed { reason, .. } => {
                        (reason.as_str(), format!("listener {:?}: {message}", key.listener))
                    }
                };
                w.kube.event(&gw, &secret, !ok, event_reason, note).await;
                announced.insert((*key).clone(), now);
            }
        }
        // Written when a condition changed or one of ours must go.
        let same = !changed && desired.keys().eq(live.keys());
        if !same && let Err(e) = w.kube.apply_conditions(&namespace, &name, &desired).await {
            tracing::warn!(gateway = %format!("{namespace}/{name}"), error = %e, "failed to write listener conditions");
        }
    }
}
