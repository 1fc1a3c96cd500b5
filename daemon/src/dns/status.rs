//! `status` of each ClusterExternalDNS / ExternalDNS — the Ready, ZonesAccessible and Degraded
//! conditions, the counts and a bounded sample of problem names — computed from the plan, the
//! journal (applied record sets, zone reports), the zones' health and the workers' last
//! failures. Written by server-side apply on the status subresource, and only when it differs
//! from what the cache shows, so a status write never wakes the controller into another write.
//! A resource gets status only once a plan pass has included its current generation, so a new
//! resource never shows `Ready=True` with nothing planned yet.
//!
//! Every condition transition is also an Event on the resource (Warning when it reports a
//! problem), and the per-zone record counts are exported as metrics.

use super::controller::holds;
use super::sources::DnsObject;
use super::worker::{Workers, zone_labels};
use super::{ZoneHealth, identity_key, lock};
use crate::crd::conditions::{self, DEGRADED, READY, Update, ZONES_ACCESSIBLE, reason, status};
use crate::crd::v1alpha1::{ClusterExternalDns, DnsStatus, ExternalDns, RecordSample, SampleProblem};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use routewarden_planner::dns::Finding;
use routewarden_planner::zone::Zone;
use routewarden_store::{RecordSetKey, ZoneReport};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Outcomes arriving together settle into one status write per resource.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Publishes Events on DNS resources.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    pub fn new(client: kube::Client) -> Events {
        let instance = std::env::var("POD_NAME").ok();
        Events { recorder: Recorder::new(client, Reporter { controller: "routewarden".into(), instance }) }
    }

    async fn publish(
        &self,
        object: &k8s_openapi::api::core::v1::ObjectReference,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note.chars().take(1024).collect()),
            action: "PublishRecords".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, object).await {
            tracing::warn!(reason, error = %e, "failed to publish Event");
        }
    }
}

/// What one status pass reads once for every resource.
struct Pass {
    /// Planned record sets whose applied content matches.
    applied: HashSet<RecordSetKey>,
    reports: BTreeMap<String, ZoneReport>,
    /// Record sets whose item stopped retrying, with its last error.
    parked: BTreeMap<RecordSetKey, String>,
}

pub async fn run(w: Arc<Workers>, events: Events, mut stop: watch::Receiver<bool>) {
    let mut took = Duration::ZERO;
    loop {
        // A pass reads the whole applied table: in a large cluster it waits twice as long as the
        // last one took, so status costs at most a third of a core however fast outcomes arrive.
        tokio::select! {
            _ = w.reported.notified() => tokio::time::sleep(DEBOUNCE.max(took * 2)).await,
            _ = stop.changed() => return,
        }
        let started = std::time::Instant::now();
        if !lock(&w.shared).planned {
            continue;
        }
        let pass = match read_pass(&w) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "failed to read the journal for DNS status");
                continue;
            }
        };
        export_zone_metrics(&w, &pass);
        for resource in w.caches.dns_resources() {
            if let Err(e) = publish(&w, &events, &pass, &resource).await {
                tracing::warn!(resource = %resource.identity, error = %e, "failed to write DNS resource status");
            }
        }
        took = started.elapsed();
    }
}

fn read_pass(w: &Workers) -> routewarden_store::Result<Pass> {
    let applied_now: HashMap<RecordSetKey, routewarden_store::AppliedRecordSet> =
        w.journal.applied_records(None)?.into_iter().collect();
    let shared = lock(&w.shared);
    let applied = shared
        .plan
        .records
        .iter()
        .filter(|(k, r)| applied_now.get(*k).is_some_and(|a| holds(a, r.ttl, &r.targets, &r.owner)))
        .map(|(k, _)| k.clone())
        .collect();
    drop(shared);
    let parked = super::apply_items(&w.journal, routewarden_store::ItemState::Parked)?
        .into_iter()
        .map(|(k, i)| (k, i.last_error.unwrap_or_default()))
        .collect();
    Ok(Pass { applied, reports: w.journal.zone_reports()?.into_iter().collect(), parked })
}

/// `routewarden_dns_records{state=desired|applied|conflicting}` per zone.
fn export_zone_metrics(w: &Workers, pass: &Pass) {
    let mut counts: BTreeMap<(String, &'static str), i64> = BTreeMap::new();
    let shared = lock(&w.shared);
    for zone in shared.configs.values().flat_map(|c| c.resource.zones.iter()) {
        for state in ["desired", "applied", "conflicting"] {
            counts.entry((zone.id.clone(), state)).or_insert(0);
        }
    }
    for key in shared.plan.records.keys() {
        *counts.entry((key.zone.clone(), "desired")).or_insert(0) += 1;
        if pass.applied.contains(key) {
            *counts.entry((key.zone.clone(), "applied")).or_insert(0) += 1;
        }
    }
    for f in &shared.plan.findings {
        if let Finding::Conflict { zone, .. } = f {
            *counts.entry((zone.clone(), "conflicting")).or_insert(0) += 1;
        }
    }
    drop(shared);
    for ((zone_id, state), n) in counts {
        let zone = Zone::parse(&zone_id).ok();
        let labels = zone_labels(zone.as_ref(), &zone_id).with_state(state);
        w.metrics.dns_records.get_or_create(&labels).set(n);
    }
}

/// `name.zone` of a record set (`@` is the zone apex).
fn hostname(key: &RecordSetKey) -> String {
    Zone::parse(&key.zone).map(|z| z.hostname(&key.name)).unwrap_or_default()
}

/// The status `resource` should show, starting from `current` (so transition times are kept);
/// `None` while no plan pass has seen its current generation.
fn desired_status(
    w: &Workers,
    pass: &Pass,
    resource: &DnsObject,
    current: &DnsStatus,
    generation: Option<i64>,
) -> Option<DnsStatus> {
    let now = k8s_openapi::jiff::Timestamp::now();
    let mut next = current.clone();
    next.observed_generation = generation;
    let config = match &resource.config {
        Ok(c) => c,
        Err(e) => {
            conditions::set(&mut next.conditions, &conditions::invalid_spec(e), generation, now);
            return Some(next);
        }
    };
    let shared = lock(&w.shared);
    if shared.configs.get(&resource.identity).is_none_or(|c| c.generation != config.generation) {
        return None;
    }
    let zone_ids: Vec<&str> = config.resource.zones.iter().map(|z| z.id.as_str()).collect();
    next.zones = u32::try_from(zone_ids.len()).unwrap_or(u32::MAX);
    let mine: Vec<RecordSetKey> =
        shared.plan.records.iter().filter(|(_, r)| r.resource == resource.identity).map(|(k, _)| k.clone()).collect();
    let applied = mine.iter().filter(|k| pass.applied.contains(*k)).count();
    let failures: Vec<(RecordSetKey, super::Failure)> = shared
        .failures
        .iter()
        .filter(|(_, f)| f.resource == resource.identity)
        .map(|(k, f)| (k.clone(), f.clone()))
        .collect();
    let mut samples = Vec::new();
    let mut planned_conflicts = 0usize;
    let mut unzoned = 0usize;
    for f in &shared.plan.findings {
        match f {
            Finding::Conflict { zone, name, winner, loser } if *loser == resource.identity => {
                planned_conflicts += 1;
                let key = RecordSetKey {
                    zone: zone.clone(),
                    name: name.clone(),
                    record_type: routewarden_store::RecordType::A,
                };
                samples.push(RecordSample {
                    problem: SampleProblem::Conflict,
                    hostname: hostname(&key),
                    zone: Some(zone.clone()),
                    record_type: None,
                    detail: Some(format!("claimed first by {winner}")),
                });
            }
            Finding::Unzoned { resource: r, hostname, source } if *r == resource.identity => {
                unzoned += 1;
                samples.push(RecordSample {
                    problem: SampleProblem::Unzoned,
                    hostname: hostname.clone(),
                    zone: None,
                    record_type: None,
                    detail: Some(format!("from {source}")),
                });
            }
            _ => {}
        }
    }
    let zone_health: Vec<(&str, Option<ZoneHealth>)> =
        zone_ids.iter().map(|z| (*z, shared.zones.get(*z).cloned())).collect();
    drop(shared);

    for (key, f) in failures.iter().filter(|(_, f)| f.conflict) {
        samples.push(RecordSample {
            problem: SampleProblem::Conflict,
            hostname: hostname(key),
            zone: Some(key.zone.clone()),
            record_type: Some(key.record_type.to_string()),
            detail: Some(f.message.clone()),
        });
    }
    let mut stale = 0usize;
    for zone in &zone_ids {
        let Some(report) = pass.reports.get(*zone) else { continue };
        stale += report.stale.len();
        for r in &report.stale {
            let key = RecordSetKey { zone: (*zone).to_owned(), name: r.name.clone(), record_type: r.record_type };
            samples.push(RecordSample {
                problem: SampleProblem::Stale,
                hostname: hostname(&key),
                zone: Some((*zone).to_owned()),
                record_type: Some(r.record_type.to_string()),
                detail: Some(r.detail.clone()),
            });
        }
    }
    let foreign = failures.iter().filter(|(_, f)| f.conflict).count();
    let conflicts = planned_conflicts + foreign;
    next.records_desired = u32::try_from(mine.len()).unwrap_or(u32::MAX);
    next.records_applied = u32::try_from(applied).unwrap_or(u32::MAX);
    next.conflicts = u32::try_from(conflicts).unwrap_or(u32::MAX);
    next.unzoned = u32::try_from(unzoned).unwrap_or(u32::MAX);
    next.stale = u32::try_from(stale).unwrap_or(u32::MAX);
    next.set_samples(samples);

    let accessible = zone_health.iter().filter(|(_, h)| matches!(h, Some(ZoneHealth::Accessible))).count();
    next.zones_accessible = u32::try_from(accessible).unwrap_or(u32::MAX);
    let inaccessible: Vec<(&str, String)> = zone_health
        .iter()
        .filter_map(|(_, h)| match h {
            Some(ZoneHealth::Inaccessible { reason, message }) => Some((*reason, message.clone())),
            _ => None,
        })
        .collect();
    let identity = identity_key(config, &w.caches, w.settings.default_tenant.as_deref());
    let zones_update = if let Err(u) = &identity {
        Update { type_: ZONES_ACCESSIBLE, status: status::FALSE, reason: u.reason, message: u.message.clone() }
    } else if let Some((reason, _)) = inaccessible.first() {
        Update {
            type_: ZONES_ACCESSIBLE,
            status: status::FALSE,
            reason,
            message: format!(
                "{} of {} zones cannot be used: {}",
                inaccessible.len(),
                zone_ids.len(),
                inaccessible.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; ")
            ),
        }
    } else if accessible < zone_ids.len() {
        Update {
            type_: ZONES_ACCESSIBLE,
            status: status::UNKNOWN,
            reason: reason::PENDING,
            message: format!("{accessible} of {} zones verified so far", zone_ids.len()),
        }
    } else {
        Update {
            type_: ZONES_ACCESSIBLE,
            status: status::TRUE,
            reason: reason::ALL_ZONES_ACCESSIBLE,
            message: format!("{accessible} zones listed at the last verification"),
        }
    };

    let ready = if let Err(u) = &identity {
        Update { type_: READY, status: status::FALSE, reason: u.reason, message: u.message.clone() }
    } else if let Some((_, f)) = failures.iter().find(|(_, f)| !f.conflict).or(failures.first()) {
        Update { type_: READY, status: status::FALSE, reason: f.reason, message: f.message.clone() }
    } else if applied < mine.len() {
        Update {
            type_: READY,
            status: status::FALSE,
            reason: reason::APPLYING,
            message: format!("{applied} of {} record sets applied", mine.len()),
        }
    } else if let Some((reason, message)) = inaccessible.first() {
        Update { type_: READY, status: status::FALSE, reason, message: message.clone() }
    } else {
        Update {
            type_: READY,
            status: status::TRUE,
            reason: reason::SYNCED,
            message: format!("{applied} record sets applied"),
        }
    };
    let degraded = if let Some((reason, _)) = inaccessible.first() {
        Update { type_: DEGRADED, status: status::TRUE, reason, message: zones_update.message.clone() }
    } else if let Some((_, f)) = failures.iter().find(|(_, f)| f.conflict) {
        Update { type_: DEGRADED, status: status::TRUE, reason: reason::CONFLICTS, message: f.message.clone() }
    } else if conflicts > 0 {
        Update {
            type_: DEGRADED,
            status: status::TRUE,
            reason: reason::CONFLICTS,
            message: format!("{conflicts} names are claimed first by another DNS resource"),
        }
    } else if let Some((key, error)) = mine.iter().find_map(|k| Some((k, pass.parked.get(k)?))) {
        let n = mine.iter().filter(|k| pass.parked.contains_key(*k)).count();
        Update {
            type_: DEGRADED,
            status: status::TRUE,
            reason: reason::PARKED,
            message: format!(
                "{n} record sets stopped retrying and wait for the next zone verification; {} {:?}: {error}",
                key.record_type, key.name
            ),
        }
    } else if stale > 0 {
        Update {
            type_: DEGRADED,
            status: status::TRUE,
            reason: reason::STALE_RECORDS,
            message: format!(
                "{stale} record sets owned by this cluster have no live source; see `routewarden journal stale`"
            ),
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
    for update in [&ready, &zones_update, &degraded] {
        conditions::set(&mut next.conditions, update, generation, now);
    }
    next.conditions.sort_by_key(|c| conditions::TYPES.iter().position(|t| *t == c.type_).unwrap_or(usize::MAX));
    Some(next)
}

/// The condition changes worth an Event: type, status or reason differ from before.
pub fn transitions<'a>(before: &[Condition], after: &'a [Condition]) -> Vec<&'a Condition> {
    after
        .iter()
        .filter(|c| {
            before.iter().find(|b| b.type_ == c.type_).is_none_or(|b| b.status != c.status || b.reason != c.reason)
        })
        // A first Unknown is no news.
        .filter(|c| c.status != status::UNKNOWN)
        .collect()
}

/// Whether a condition in this state reports a problem.
fn is_problem(c: &Condition) -> bool {
    match c.type_.as_str() {
        DEGRADED => c.status == status::TRUE,
        _ => c.status == status::FALSE,
    }
}

#[tracing::instrument(level = "info", name = "kubernetes patch DNS resource status", skip_all)]
async fn publish(w: &Workers, events: &Events, pass: &Pass, resource: &DnsObject) -> Result<(), kube::Error> {
    let (namespace, name) = match resource.identity.split('/').collect::<Vec<_>>().as_slice() {
        ["clusterexternaldns", name] => (None, (*name).to_owned()),
        ["externaldns", ns, name] => (Some((*ns).to_owned()), (*name).to_owned()),
        _ => return Ok(()),
    };
    let params = PatchParams::apply(crate::tls::FIELD_MANAGER).force();
    let (current, reference) = match &namespace {
        None => {
            let Some(obj) =
                w.caches.cluster_dns.state().into_iter().find(|o| o.metadata.name.as_deref() == Some(&name))
            else {
                return Ok(());
            };
            (obj.status.clone(), kube::Resource::object_ref(obj.as_ref(), &()))
        }
        Some(ns) => {
            let Some(obj) = w.caches.namespaced_dns.state().into_iter().find(|o| {
                o.metadata.name.as_deref() == Some(&name) && o.metadata.namespace.as_deref() == Some(ns.as_str())
            }) else {
                return Ok(());
            };
            (obj.status.clone(), kube::Resource::object_ref(obj.as_ref(), &()))
        }
    };
    if resource.deleting() {
        return Ok(());
    }
    let before = current.clone().unwrap_or_default();
    let Some(next) = desired_status(w, pass, resource, &before, resource.meta.generation) else { return Ok(()) };
    if current.as_ref() == Some(&next) {
        return Ok(());
    }
    let (api_version, kind) = (
        "approuting.kubernetes.azure.com/v1alpha1",
        if namespace.is_some() { "ExternalDNS" } else { "ClusterExternalDNS" },
    );
    let body = serde_json::json!({ "apiVersion": api_version, "kind": kind, "status": next });
    match &namespace {
        None => {
            Api::<ClusterExternalDns>::all(w.client.clone()).patch_status(&name, &params, &Patch::Apply(&body)).await?;
        }
        Some(ns) => {
            Api::<ExternalDns>::namespaced(w.client.clone(), ns)
                .patch_status(&name, &params, &Patch::Apply(&body))
                .await?;
        }
    }
    for c in transitions(&before.conditions, &next.conditions) {
        let note = if c.message.is_empty() { format!("{} is {}", c.type_, c.status) } else { c.message.clone() };
        events.publish(&reference, is_problem(c), &c.reason, &note).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: &str, reason: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn events_are_for_changes_of_status_or_reason_only() {
        let before = [cond(READY, "True", "Synced"), cond(DEGRADED, "False", "Healthy")];
        let same = [cond(READY, "True", "Synced"), cond(DEGRADED, "False", "Healthy")];
        assert!(transitions(&before, &same).is_empty());
        let stale = [cond(READY, "True", "Synced"), cond(DEGRADED, "True", "StaleRecords")];
        let t = transitions(&before, &stale);
        assert_eq!(t.len(), 1);
        assert!(is_problem(t[0]));
        let pending = [cond(ZONES_ACCESSIBLE, "Unknown", "Pending")];
        assert!(transitions(&[], &pending).is_empty(), "a first Unknown is no news");
        let forbidden = [cond(ZONES_ACCESSIBLE, "False", "ZoneForbidden")];
        assert!(is_problem(transitions(&pending, &forbidden)[0]));
    }
}
