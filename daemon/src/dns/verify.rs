//! Zone verification: per zone, one paged list of its record sets per `--dns-verify-interval`
//! (default 10 min), compared with the journal. This is the only time routewarden reads a whole
//! zone; everything else is one conditional write per changed record set.
//!
//! | Azure holds | journal | outcome |
//! |---|---|---|
//! | an owned record set, as last applied | desired | in sync (a newer etag is taken over) |
//! | an owned record set, changed since applied | desired | drift: applied := what Azure holds, queue a repair |
//! | nothing | applied and desired | drift: deleted outside routewarden, queue a repair |
//! | nothing | applied, not desired | forgotten (it is gone) |
//! | an owned record set | not desired | stale: reported, never deleted here |
//! | a record set not owned by this cluster | desired at that name | foreign-blocking: reported |
//!
//! The result is the zone's [`ZoneReport`] in the journal (`routewarden journal stale`), metrics,
//! and — through the status writer — the DNS resources' `stale` count, samples and
//! `ZonesAccessible` condition. A list that fails marks the zone inaccessible with the reason
//! (403 → `ZoneForbidden`, 404 → `ZoneNotFound`, ...) until a later list succeeds. Parked items of
//! a zone that lists again, and whose name no foreign record set blocks, are given a fresh start.

use super::controller::{fingerprint, holds, is_applied};
use super::limits::Call;
use super::worker::{Workers, owned_by_cluster, zone_labels};
use super::{KIND_APPLY, ZoneHealth, apply_items, identity_key, lock, metadata, resource_of};
use crate::crd::conditions::reason;
use routewarden_azure::{Kind, Principal, RecordKind, StoredRecordSet, ZoneRef};
use routewarden_planner::zone::Zone;
use routewarden_store::{
    AppliedRecordSet, DesiredRecordSet, Enqueued, ItemState, NewEvent, RecordSetKey, RecordType, ReportedRecord, Time,
    ZoneReport,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Azure's record-set limit per zone.
pub fn record_set_limit(private: bool) -> u64 {
    if private { 25_000 } else { 10_000 }
}

pub fn record_type(kind: RecordKind) -> RecordType {
    match kind {
        RecordKind::A => RecordType::A,
        RecordKind::Aaaa => RecordType::Aaaa,
        RecordKind::Cname => RecordType::Cname,
        RecordKind::Txt => RecordType::Txt,
    }
}

/// A change the comparison asks of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Azure holds this owned record set, different from what was applied: record it as applied
    /// and queue the desired content again.
    Drifted(RecordSetKey, AppliedRecordSet),
    /// Azure holds what was applied under a newer etag (or applied was unknown): record it.
    Refresh(RecordSetKey, AppliedRecordSet),
    /// Applied and desired, but gone from Azure: forget applied and queue it again.
    Missing(RecordSetKey),
    /// Applied, not desired, gone from Azure: forget it.
    Gone(RecordSetKey),
}

/// What one list of a zone says, before it is committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub stale: Vec<ReportedRecord>,
    pub foreign_blocking: Vec<ReportedRecord>,
    pub repairs: Vec<Repair>,
}

impl Comparison {
    pub fn drifted(&self) -> u64 {
        self.repairs.iter().filter(|r| matches!(r, Repair::Drifted(..) | Repair::Missing(_))).count() as u64
    }
}

/// Compares a zone's record sets with the journal. Pure.
pub fn compare(
    zone_id: &str,
    cluster_id: &str,
    sets: &[StoredRecordSet],
    desired: &BTreeMap<RecordSetKey, DesiredRecordSet>,
    applied: &BTreeMap<RecordSetKey, AppliedRecordSet>,
    live_resources: &BTreeSet<String>,
    listed_at: Time,
) -> Comparison {
    let key = |s: &StoredRecordSet| RecordSetKey {
        zone: zone_id.to_owned(),
        name: s.name.clone(),
        record_type: record_type(s.kind),
    };
    let in_azure: BTreeMap<RecordSetKey, &StoredRecordSet> = sets.iter().map(|s| (key(s), s)).collect();
    let mut out = Comparison { stale: Vec::new(), foreign_blocking: Vec::new(), repairs: Vec::new() };
    for (k, found) in &in_azure {
        if !owned_by_cluster(&found.set.metadata, cluster_id) {
            continue;
        }
        let owner = found.set.metadata.get(metadata::OWNER).cloned().unwrap_or_default();
        let as_found = AppliedRecordSet {
            etag: found.etag.clone(),
            owner: owner.clone(),
            ttl: found.set.ttl,
            targets: found.set.targets.clone(),
            applied_at: listed_at,
        };
        match desired.get(k) {
            Some(_) => match applied.get(k) {
                Some(a) if holds(a, as_found.ttl, &as_found.targets, &as_found.owner) => {
                    if a.etag != as_found.etag {
                        out.repairs.push(Repair::Refresh(k.clone(), as_found));
                    }
                }
                Some(_) => out.repairs.push(Repair::Drifted(k.clone(), as_found)),
                None => out.repairs.push(Repair::Refresh(k.clone(), as_found)),
            },
            None => {
                let resource = resource_of(&owner);
                let detail = if live_resources.contains(resource) {
                    format!("{resource} no longer publishes it")
                } else {
                    format!("{resource} is deleted (records are retained)")
                };
                out.stale.push(ReportedRecord {
                    name: k.name.clone(),
                    record_type: k.record_type,
                    owner: Some(owner.clone()),
                    detail,
                });
            }
        }
    }
    for k in applied.keys().filter(|k| !in_azure.contains_key(*k)) {
        if desired.contains_key(k) {
            out.repairs.push(Repair::Missing(k.clone()));
        } else {
            out.repairs.push(Repair::Gone(k.clone()));
        }
    }
    for k in desired.keys() {
        // The same name and type, or a CNAME beside addresses (Azure allows no CNAME next to
        // another type): held by a record set that is not this cluster's.
        let blockers = in_azure.iter().filter(|(other, s)| {
            other.name == k.name
                && (other.record_type == k.record_type
                    || ((other.record_type == RecordType::Cname) != (k.record_type == RecordType::Cname)
                        && other.record_type != RecordType::Txt
                        && k.record_type != RecordType::Txt))
                && !owned_by_cluster(&s.set.metadata, cluster_id)
        });
        for (other, s) in blockers {
            let holder = s.set.metadata.get(metadata::OWNER).cloned();
            out.foreign_blocking.push(ReportedRecord {
                name: k.name.clone(),
                record_type: other.record_type,
                owner: holder.clone(),
                detail: match holder {
                    Some(o) => format!("held by owner {o}; wanted as {}", k.record_type),
                    None => format!("no routewarden ownership metadata; wanted as {}", k.record_type),
                },
            });
        }
    }
    out.stale.sort_by(|a, b| (&a.name, a.record_type).cmp(&(&b.name, b.record_type)));
    out.foreign_blocking.sort_by(|a, b| (&a.name, a.record_type).cmp(&(&b.name, b.record_type)));
    out.foreign_blocking.dedup();
    out
}

/// A zone to verify: how, with whose identities, and which resources use it.
struct Target {
    zone: ZoneRef,
    /// The usable identities of the resources naming the zone, in resource order: when Azure
    /// refuses one (no role on the zone, no token), the next is tried.
    ids: Vec<Principal>,
    /// Every valid resource naming the zone: when this changes (one is deleted, another added),
    /// the zone is verified again at once, so records left behind show up as stale without
    /// waiting for the interval.
    users: BTreeSet<String>,
}

/// The zones to verify, each with the identity of the first valid resource (by identity) whose
/// identity is usable; a zone nobody can read is left for the status to explain.
fn targets(w: &Workers) -> BTreeMap<String, Target> {
    let configs: Vec<_> = {
        let shared = lock(&w.shared);
        let mut c: Vec<_> = shared.configs.values().cloned().collect();
        c.sort_by_key(|c| c.resource.identity());
        c
    };
    let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for config in &configs {
        for zone in &config.resource.zones {
            users.entry(zone.id.clone()).or_default().insert(config.resource.identity());
        }
    }
    let mut out: BTreeMap<String, Target> = BTreeMap::new();
    for config in configs {
        let Ok(id) = identity_key(&config, &w.caches, w.settings.default_tenant.as_deref()) else { continue };
        for zone in &config.resource.zones {
            let target = out.entry(zone.id.clone()).or_insert_with(|| Target {
                zone: ZoneRef { id: zone.id.clone(), private: zone.private },
                ids: Vec::new(),
                users: users.get(&zone.id).cloned().unwrap_or_default(),
            });
            if !target.ids.contains(&id) {
                target.ids.push(id.clone());
            }
        }
    }
    out
}

/// How one verification ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    Listed,
    /// Azure refused this identity (403, 404, no token): another may do.
    Refused,
    /// A transient failure or a journal error.
    Failed,
}

pub async fn run(w: Arc<Workers>, mut stop: watch::Receiver<bool>) {
    // Per zone: when it is due again, for which users it was verified, and how many lists in a
    // row failed (a failed list is tried again sooner, from 5 s doubling up to the interval).
    let mut last: HashMap<String, (Instant, BTreeSet<String>, u32)> = HashMap::new();
    loop {
        let interval = w.settings.verify_interval;
        let planned = lock(&w.shared).planned;
        let zones = if planned { targets(&w) } else { BTreeMap::new() };
        let term = w.leadership.term();
        if planned {
            w.reconciled.set_targets(term, zones.keys().cloned());
        }
        last.retain(|z, _| zones.contains_key(z));
        for (zone_id, t) in &zones {
            let failures = match last.get(zone_id) {
                Some((due, users, _)) if *due > Instant::now() && *users == t.users => continue,
                Some((_, _, failures)) => *failures,
                None => 0,
            };
            if *stop.borrow() {
                return;
            }
            let mut outcome = Verified::Refused;
            for id in &t.ids {
                outcome = verify_zone(&w, &t.zone, id, failures).await;
                if outcome != Verified::Refused {
                    break;
                }
            }
            w.reconciled.listed(zone_id, term);
            // Items held back for this zone's first list of the term may go now.
            w.wake.notify_waiters();
            let failures = if outcome == Verified::Listed { 0 } else { failures + 1 };
            let wait = if failures == 0 {
                interval
            } else {
                interval.min(std::time::Duration::from_secs(5).saturating_mul(1 << (failures - 1).min(16)))
            };
            last.insert(zone_id.clone(), (Instant::now() + wait, t.users.clone(), failures));
        }
        let next = zones
            .keys()
            .filter_map(|z| last.get(z))
            .map(|(due, _, _)| due.saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(interval);
        tokio::select! {
            _ = w.verify.notified() => {}
            _ = tokio::time::sleep(next) => {}
            _ = stop.changed() => return,
        }
    }
}

fn health_of(e: &routewarden_azure::AzureError, zone: &str) -> ZoneHealth {
    let reason = match e.kind {
        Kind::Forbidden => reason::ZONE_FORBIDDEN,
        Kind::NotFound => reason::ZONE_NOT_FOUND,
        Kind::Authentication => reason::IDENTITY_UNAVAILABLE,
        Kind::Throttled => reason::THROTTLED,
        _ => reason::ZONE_UNAVAILABLE,
    };
    ZoneHealth::Inaccessible { reason, message: format!("zone {zone}: {e}") }
}

/// A transient failure (5xx, timeout, 429) marks a zone unavailable only after this many lists
/// in a row failed: one 500 must not flip a resource's Ready condition.
const TRANSIENT_FAILURES_TO_REPORT: u32 = 3;

/// Lists one zone with `id` and brings the journal, metrics and shared health up to date.
/// `failures` counts the lists of this zone that failed just before.
#[tracing::instrument(skip(w, id), fields(zone = %zone.id, client_id = id.client_id()))]
pub async fn verify_zone(w: &Workers, zone: &ZoneRef, id: &Principal, failures: u32) -> Verified {
    let parsed = Zone::parse(&zone.id).ok();
    let labels = zone_labels(parsed.as_ref(), &zone.id);
    let name = labels.zone.clone();
    let listed_at = Time::now();
    // Every page takes a token of the zone's list bucket and the subscription's read bucket.
    let pace = || async {
        while let Err(wait) = w.limits.acquire(Call::ListPage, &zone.id, zone.private, id.client_id()).await {
            tokio::time::sleep(wait).await;
        }
    };
    let listed = w.azure.list_record_sets_paced(id, zone, pace).await;
    let (sets, total) = match listed {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, failures = failures + 1, "zone verification failed");
            if e.kind.retryable() && failures + 1 < TRANSIENT_FAILURES_TO_REPORT {
                return Verified::Failed;
            }
            w.metrics.dns_zone_accessible.get_or_create(&labels).set(0);
            let _ = w.metrics.dns_rate_limit_deferrals.get_or_create(&labels);
            let health = health_of(&e, &name);
            let changed = lock(&w.shared).zones.insert(zone.id.clone(), health.clone()) != Some(health);
            if changed {
                w.reported.notify_one();
            }
            return if e.kind.retryable() { Verified::Failed } else { Verified::Refused };
        }
    };
    let live: BTreeSet<String> = w.caches.dns_resources().into_iter().map(|r| r.identity).collect();
    let journal = w.journal.clone();
    let zone_id = zone.id.clone();
    let cluster_id = w.cluster_id.clone();
    let limit = record_set_limit(zone.private);
    let committed = tokio::task::spawn_blocking(move || {
        let desired: BTreeMap<_, _> = journal.desired_records(Some(&zone_id))?.into_iter().collect();
        let applied: BTreeMap<_, _> = journal.applied_records(Some(&zone_id))?.into_iter().collect();
        let cmp = compare(&zone_id, &cluster_id, &sets, &desired, &applied, &live, listed_at);
        let blocked: BTreeSet<String> = cmp.foreign_blocking.iter().map(|r| r.name.clone()).collect();
        let parked: Vec<_> = apply_items(&journal, ItemState::Parked)?
            .into_iter()
            .filter(|(k, _)| k.zone == zone_id && !blocked.contains(&k.name))
            .map(|(_, i)| i)
            .collect();
        let now = Time::now();
        journal.commit(|tx| {
            let mut queued = 0u64;
            for repair in &cmp.repairs {
                let key = match repair {
                    Repair::Drifted(k, _) | Repair::Refresh(k, _) | Repair::Missing(k) | Repair::Gone(k) => k,
                };
                // Written since the list started: the list is older than the journal here.
                if tx.applied_record(key)?.is_some_and(|a| a.applied_at >= listed_at) {
                    continue;
                }
                match repair {
                    Repair::Refresh(k, a) => tx.put_applied_record(k, a)?,
                    Repair::Gone(k) => {
                        tx.delete_applied_record(k)?;
                    }
                    Repair::Drifted(k, a) => {
                        tx.put_applied_record(k, a)?;
                        queued += u64::from(requeue_desired(tx, k, now)?);
                    }
                    Repair::Missing(k) => {
                        tx.delete_applied_record(k)?;
                        queued += u64::from(requeue_desired(tx, k, now)?);
                    }
                }
            }
            for item in &parked {
                tx.requeue(item.id, now)?;
            }
            if cmp.drifted() > 0 {
                tx.append_event(NewEvent::new(
                    now,
                    "dns.drift",
                    zone_id.clone(),
                    format!(
                        "{} owned record sets differed from the journal; {queued} queued for repair",
                        cmp.drifted()
                    ),
                ))?;
            }
            tx.put_zone_report(
                &zone_id,
                &ZoneReport {
                    verified_at: now,
                    record_sets: total,
                    limit,
                    stale: cmp.stale.clone(),
                    foreign_blocking: cmp.foreign_blocking.clone(),
                    drift_repaired: cmp.drifted(),
                },
            )?;
            Ok(())
        })?;
        Ok::<_, routewarden_store::Error>((cmp, parked.len(), total))
    })
    .await;
    let (cmp, requeued, total) = match committed {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "failed to record a zone verification");
            return Verified::Failed;
        }
        Err(e) => {
            tracing::error!(error = %e, "zone verification task failed");
            return Verified::Failed;
        }
    };
    let m = &w.metrics;
    m.dns_zone_accessible.get_or_create(&labels).set(1);
    // At 0 from the first verification on, so "no deferrals" is a sample.
    let _ = m.dns_rate_limit_deferrals.get_or_create(&labels);
    m.dns_zone_record_sets.get_or_create(&labels).set(i64::try_from(total).unwrap_or(i64::MAX));
    m.dns_zone_record_set_limit.get_or_create(&labels).set(i64::try_from(limit).unwrap_or(i64::MAX));
    m.dns_zone_last_verified.get_or_create(&labels).set(listed_at.as_millis() / 1000);
    m.dns_records.get_or_create(&labels.with_state("stale")).set(cmp.stale.len() as i64);
    m.dns_records.get_or_create(&labels.with_state("foreign_blocking")).set(cmp.foreign_blocking.len() as i64);
    m.dns_drift_repaired.inc_by(cmp.drifted());
    tracing::info!(
        record_sets = total,
        stale = cmp.stale.len(),
        foreign_blocking = cmp.foreign_blocking.len(),
        drifted = cmp.drifted(),
        requeued,
        "zone verified"
    );
    lock(&w.shared).zones.insert(zone.id.clone(), ZoneHealth::Accessible);
    if cmp.drifted() > 0 || requeued > 0 {
        w.wake.notify_waiters();
    }
    w.reported.notify_one();
    Verified::Listed
}

/// Queues the desired content of `key` again; whether anything was queued.
fn requeue_desired(tx: &routewarden_store::Tx<'_>, key: &RecordSetKey, now: Time) -> routewarden_store::TxResult<bool> {
    let Some(desired) = tx.desired_record(key)? else { return Ok(false) };
    if is_applied(&desired, tx.applied_record(key)?.as_ref()) {
        return Ok(false);
    }
    let payload = fingerprint(desired.ttl, &desired.targets, &desired.owner);
    match tx.enqueue(KIND_APPLY, &key.to_string(), payload.as_bytes(), now)? {
        Enqueued::Created(_) | Enqueued::Updated(_) => Ok(true),
        Enqueued::Unchanged(id) => {
            tx.requeue(id, now)?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routewarden_azure::RecordSet;

    const ZONE: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com";
    const OWNER: &str = "c1/clusterexternaldns/demo";

    fn key(name: &str) -> RecordSetKey {
        RecordSetKey { zone: ZONE.into(), name: name.into(), record_type: RecordType::A }
    }

    fn stored(name: &str, kind: RecordKind, ip: &str, owner: Option<&str>, etag: &str) -> StoredRecordSet {
        let metadata = owner
            .map(|o| {
                BTreeMap::from([
                    (metadata::OWNER.to_owned(), o.to_owned()),
                    (metadata::CLUSTER.to_owned(), o.split('/').next().unwrap().to_owned()),
                ])
            })
            .unwrap_or_default();
        StoredRecordSet {
            name: name.into(),
            kind,
            set: RecordSet { ttl: 300, targets: vec![ip.into()], metadata },
            etag: etag.into(),
        }
    }

    fn desired(ip: &str) -> DesiredRecordSet {
        DesiredRecordSet {
            ttl: 300,
            targets: vec![ip.into()],
            owner: OWNER.into(),
            sources: vec!["Gateway/app-a/a".into()],
            updated_at: Time::from_millis(1),
        }
    }

    fn applied(ip: &str, etag: &str) -> AppliedRecordSet {
        AppliedRecordSet {
            etag: etag.into(),
            owner: OWNER.into(),
            ttl: 300,
            targets: vec![ip.into()],
            applied_at: Time::from_millis(1),
        }
    }

    fn live() -> BTreeSet<String> {
        BTreeSet::from(["clusterexternaldns/demo".to_owned()])
    }

    #[test]
    fn an_owned_record_set_changed_in_azure_is_drift_and_one_as_applied_is_in_sync() {
        let sets = [
            stored("a", RecordKind::A, "203.0.113.1", Some(OWNER), "e1"),
            stored("b", RecordKind::A, "198.51.100.66", Some(OWNER), "e9"),
        ];
        let want = BTreeMap::from([(key("a"), desired("203.0.113.1")), (key("b"), desired("203.0.113.2"))]);
        let had = BTreeMap::from([(key("a"), applied("203.0.113.1", "e1")), (key("b"), applied("203.0.113.2", "e2"))]);
        let cmp = compare(ZONE, "c1", &sets, &want, &had, &live(), Time::from_millis(5));
        assert_eq!(cmp.repairs.len(), 1, "{cmp:?}");
        assert!(matches!(&cmp.repairs[0], Repair::Drifted(k, a) if *k == key("b") && a.targets == ["198.51.100.66"]));
        assert_eq!(cmp.drifted(), 1);
        assert!(cmp.stale.is_empty() && cmp.foreign_blocking.is_empty());
    }

    #[test]
    fn a_record_set_deleted_outside_routewarden_is_queued_again_and_a_vanished_undesired_one_forgotten() {
        let want = BTreeMap::from([(key("a"), desired("203.0.113.1"))]);
        let had =
            BTreeMap::from([(key("a"), applied("203.0.113.1", "e1")), (key("old"), applied("203.0.113.9", "e3"))]);
        let cmp = compare(ZONE, "c1", &[], &want, &had, &live(), Time::from_millis(5));
        assert_eq!(cmp.repairs, vec![Repair::Missing(key("a")), Repair::Gone(key("old"))]);
    }

    #[test]
    fn owned_record_sets_nobody_wants_are_stale_naming_whether_their_resource_still_exists() {
        let sets = [
            stored("gone", RecordKind::A, "203.0.113.1", Some("c1/clusterexternaldns/deleted"), "e1"),
            stored("quiet", RecordKind::A, "203.0.113.2", Some(OWNER), "e2"),
            stored("theirs", RecordKind::A, "203.0.113.3", Some("c2/clusterexternaldns/x"), "e3"),
            stored("manual", RecordKind::A, "203.0.113.4", None, "e4"),
        ];
        let cmp = compare(ZONE, "c1", &sets, &BTreeMap::new(), &BTreeMap::new(), &live(), Time::from_millis(5));
        let stale: Vec<(&str, &str)> = cmp.stale.iter().map(|r| (r.name.as_str(), r.detail.as_str())).collect();
        assert_eq!(
            stale,
            vec![
                ("gone", "clusterexternaldns/deleted is deleted (records are retained)"),
                ("quiet", "clusterexternaldns/demo no longer publishes it"),
            ],
            "another cluster's and unowned record sets are not ours to call stale"
        );
    }

    #[test]
    fn a_foreign_record_set_at_a_desired_name_blocks_it_including_a_cname_beside_addresses() {
        let sets = [
            stored("a", RecordKind::A, "198.51.100.9", None, "e1"),
            stored("b", RecordKind::Cname, "lb.example.net", Some("c2/clusterexternaldns/x"), "e2"),
            stored("c", RecordKind::Txt, "v=spf1 -all", None, "e3"),
        ];
        let want = BTreeMap::from([
            (key("a"), desired("203.0.113.1")),
            (key("b"), desired("203.0.113.2")),
            (key("c"), desired("203.0.113.3")),
        ]);
        let cmp = compare(ZONE, "c1", &sets, &want, &BTreeMap::new(), &live(), Time::from_millis(5));
        let blocking: Vec<(&str, RecordType, Option<&str>)> =
            cmp.foreign_blocking.iter().map(|r| (r.name.as_str(), r.record_type, r.owner.as_deref())).collect();
        assert_eq!(
            blocking,
            vec![("a", RecordType::A, None), ("b", RecordType::Cname, Some("c2/clusterexternaldns/x"))],
            "a TXT beside an A record blocks nothing"
        );
    }
}
