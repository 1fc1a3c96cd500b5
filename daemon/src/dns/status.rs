//! `status` of each ClusterExternalDNS / ExternalDNS: the Ready and Degraded conditions and the
//! record counts, computed from the plan, the journal's applied table and the workers' last
//! failures. Written by server-side apply on the status subresource, and only when it differs
//! from what the cache shows, so a status write never wakes the controller into another write.

use super::sources::DnsObject;
use super::worker::Workers;
use super::{identity_key, lock};
use crate::crd::conditions::{self, DEGRADED, READY, Update, reason, status};
use crate::crd::v1alpha1::{ClusterExternalDns, DnsStatus, ExternalDns};
use kube::api::{Api, Patch, PatchParams};
use routewarden_planner::dns::Finding;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Outcomes arriving together settle into one status write per resource.
const DEBOUNCE: Duration = Duration::from_millis(50);

pub async fn run(w: Arc<Workers>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = w.reported.notified() => tokio::time::sleep(DEBOUNCE).await,
            _ = stop.changed() => return,
        }
        if !lock(&w.shared).planned {
            continue;
        }
        for resource in w.caches.dns_resources() {
            if let Err(e) = publish(&w, &resource).await {
                tracing::warn!(resource = %resource.identity, error = %e, "failed to write DNS resource status");
            }
        }
    }
}

/// The status `resource` should show, starting from `current` (so transition times are kept).
fn desired_status(w: &Workers, resource: &DnsObject, current: &DnsStatus, generation: Option<i64>) -> DnsStatus {
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut next = current.clone();
    next.observed_generation = generation;
    let config = match &resource.config {
        Ok(c) => c,
        Err(e) => {
            conditions::set(&mut next.conditions, &conditions::invalid_spec(e), generation, now);
            return next;
        }
    };
    next.zones = u32::try_from(config.resource.zones.len()).unwrap_or(u32::MAX);
    let shared = lock(&w.shared);
    let mine: Vec<_> = shared
        .plan
        .records
        .iter()
        .filter(|(_, r)| r.resource == resource.identity)
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    let applied = mine
        .iter()
        .filter(|(k, r)| {
            w.journal
                .applied_record(k)
                .ok()
                .flatten()
                .is_some_and(|a| a.ttl == r.ttl && a.targets == r.targets && a.owner == r.owner)
        })
        .count();
    let failures: Vec<_> = shared.failures.values().filter(|f| f.resource == resource.identity).cloned().collect();
    let planned_conflicts = shared
        .plan
        .findings
        .iter()
        .filter(|f| matches!(f, Finding::Conflict { loser, .. } if *loser == resource.identity))
        .count();
    let unzoned = shared
        .plan
        .findings
        .iter()
        .filter(|f| matches!(f, Finding::Unzoned { resource: r, .. } if *r == resource.identity))
        .count();
    drop(shared);
    let conflicts = planned_conflicts + failures.iter().filter(|f| f.conflict).count();
    next.records_desired = u32::try_from(mine.len()).unwrap_or(u32::MAX);
    next.records_applied = u32::try_from(applied).unwrap_or(u32::MAX);
    next.conflicts = u32::try_from(conflicts).unwrap_or(u32::MAX);
    next.unzoned = u32::try_from(unzoned).unwrap_or(u32::MAX);

    let ready = if let Err(u) = identity_key(config, &w.caches, w.settings.default_tenant.as_deref()) {
        Update { type_: READY, status: status::FALSE, reason: u.reason, message: u.message }
    } else if let Some(f) = failures.iter().find(|f| !f.conflict).or(failures.first()) {
        Update { type_: READY, status: status::FALSE, reason: f.reason, message: f.message.clone() }
    } else if applied < mine.len() {
        Update {
            type_: READY,
            status: status::FALSE,
            reason: reason::APPLYING,
            message: format!("{applied} of {} record sets applied", mine.len()),
        }
    } else {
        Update {
            type_: READY,
            status: status::TRUE,
            reason: reason::SYNCED,
            message: format!("{applied} record sets applied"),
        }
    };
    conditions::set(&mut next.conditions, &ready, generation, now);
    let degraded = if let Some(f) = failures.iter().find(|f| f.conflict) {
        Update { type_: DEGRADED, status: status::TRUE, reason: reason::CONFLICTS, message: f.message.clone() }
    } else if conflicts > 0 {
        Update {
            type_: DEGRADED,
            status: status::TRUE,
            reason: reason::CONFLICTS,
            message: format!("{conflicts} names are claimed first by another DNS resource"),
        }
    } else if unzoned > 0 {
        Update {
            type_: DEGRADED,
            status: status::TRUE,
            reason: reason::UNZONED_HOSTNAMES,
            message: format!("{unzoned} hostnames fall under none of the zones"),
        }
    } else {
        Update { type_: DEGRADED, status: status::FALSE, reason: reason::HEALTHY, message: String::new() }
    };
    conditions::set(&mut next.conditions, &degraded, generation, now);
    next
}

async fn publish(w: &Workers, resource: &DnsObject) -> Result<(), kube::Error> {
    let (namespace, name) = match resource.identity.split('/').collect::<Vec<_>>().as_slice() {
        ["clusterexternaldns", name] => (None, (*name).to_owned()),
        ["externaldns", ns, name] => (Some((*ns).to_owned()), (*name).to_owned()),
        _ => return Ok(()),
    };
    let params = PatchParams::apply(crate::tls::FIELD_MANAGER).force();
    match namespace {
        None => {
            let Some(obj) =
                w.caches.cluster_dns.state().into_iter().find(|o| o.metadata.name.as_deref() == Some(&name))
            else {
                return Ok(());
            };
            let current = obj.status.clone().unwrap_or_default();
            let next = desired_status(w, resource, &current, obj.metadata.generation);
            if obj.status.as_ref() == Some(&next) {
                return Ok(());
            }
            let body = serde_json::json!({
                "apiVersion": "approuting.kubernetes.azure.com/v1alpha1", "kind": "ClusterExternalDNS", "status": next,
            });
            Api::<ClusterExternalDns>::all(w.client.clone()).patch_status(&name, &params, &Patch::Apply(&body)).await?;
        }
        Some(ns) => {
            let Some(obj) =
                w.caches.namespaced_dns.state().into_iter().find(|o| {
                    o.metadata.name.as_deref() == Some(&name) && o.metadata.namespace.as_deref() == Some(&ns)
                })
            else {
                return Ok(());
            };
            let current = obj.status.clone().unwrap_or_default();
            let next = desired_status(w, resource, &current, obj.metadata.generation);
            if obj.status.as_ref() == Some(&next) {
                return Ok(());
            }
            let body = serde_json::json!({
                "apiVersion": "approuting.kubernetes.azure.com/v1alpha1", "kind": "ExternalDNS", "status": next,
            });
            Api::<ExternalDns>::namespaced(w.client.clone(), &ns)
                .patch_status(&name, &params, &Patch::Apply(&body))
                .await?;
        }
    }
    Ok(())
}
