//! The planner loop: after any watch event, plan every DNS resource again (a pure function of the
//! caches) and bring the journal to the plan in one commit. Level-triggered: the comparison is
//! between the plan and the journal's desired and applied tables, so a restart, a missed event or
//! a crash between commits all end in the same decision, and nothing is queued when the plan
//! matches what was applied.
//!
//! | journal desired | in the plan | owner resource | decision |
//! |---|---|---|---|
//! | any | yes | — | desired := plan; queue an apply unless applied already matches |
//! | yes | no | live and valid, policy `sync` | delete desired; queue the delete (held down while all sources still exist) |
//! | yes | no | live and valid, policy `upsert-only` | delete desired, forget queued work; the record set stays (stale) |
//! | yes | no | invalid spec | untouched: a typo must not delete records |
//! | yes | no | being deleted with `deletionPolicy: Delete` | delete desired; queue the delete now |
//! | yes | no | gone | delete desired, forget queued work; the record set stays in Azure (`Retain`) |

use super::sources::DnsObject;
use super::worker::Workers;
use super::{KIND_APPLY, PAYLOAD_DELETE, Policy, lock, resource_of};
use routewarden_planner::dns::{PlanConfig, PlannedRecord, plan};
use routewarden_store::{
    AppliedRecordSet, DesiredRecordSet, Enqueued, ItemState, Journal, NewEvent, RecordSetKey, Time,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::Instrument;

/// Events arriving together (a `kubectl apply -f` of many objects) settle into one pass.
const DEBOUNCE: Duration = Duration::from_millis(5);
/// How long an unchanged plan may skip the journal pass.
const FULL_PASS: Duration = Duration::from_secs(300);

/// The identity of a record set's desired content: what a write must produce.
pub fn fingerprint(ttl: u32, targets: &[String], owner: &str) -> String {
    let text = format!("{ttl}|{}|{owner}", targets.join(","));
    routewarden_planner::hex_digest(&text, 8)
}

/// Whether `applied` is this content (TTL, targets, owner): what decides that a write is needed.
pub fn holds(applied: &AppliedRecordSet, ttl: u32, targets: &[String], owner: &str) -> bool {
    applied.ttl == ttl && applied.targets == targets && applied.owner == owner
}

/// Whether Azure already holds `desired` as far as the journal knows.
pub fn is_applied(desired: &DesiredRecordSet, applied: Option<&AppliedRecordSet>) -> bool {
    applied.is_some_and(|a| holds(a, desired.ttl, &desired.targets, &desired.owner))
}

fn desired_of(rec: &PlannedRecord, now: Time) -> DesiredRecordSet {
    DesiredRecordSet {
        ttl: rec.ttl,
        targets: rec.targets.clone(),
        owner: rec.owner.clone(),
        sources: rec.sources.iter().map(ToString::to_string).collect(),
        updated_at: now,
    }
}

fn same_content(a: &DesiredRecordSet, b: &DesiredRecordSet) -> bool {
    a.ttl == b.ttl && a.targets == b.targets && a.owner == b.owner && a.sources == b.sources
}

/// What a DNS resource identity stands for in this pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Valid: its records may be deleted after this hold-down when a source merely flaps.
    Live { hold_down: Duration },
    /// Present but invalid: leave its records alone.
    Invalid,
    /// Being deleted with `deletionPolicy: Delete`: delete its records now.
    Deleting,
}

/// What one pass changed, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub applies: Vec<String>,
    pub deletes: Vec<String>,
    pub retained: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.applies.is_empty() && self.deletes.is_empty() && self.retained.is_empty()
    }
}

/// Brings the journal to `records` in one commit and queues the work it implies.
pub fn reconcile(
    journal: &Journal,
    records: &BTreeMap<RecordSetKey, PlannedRecord>,
    owners: &BTreeMap<String, Owner>,
    wanted: &BTreeSet<(String, String)>,
    policy: Policy,
    now: Time,
) -> routewarden_store::Result<Changes> {
    let before: Vec<RecordSetKey> = journal.desired_records(None)?.into_iter().map(|(k, _)| k).collect();
    journal.commit(|tx| {
        let mut changes = Changes::default();
        for (key, rec) in records {
            let want = desired_of(rec, now);
            let had = tx.desired_record(key)?;
            if had.as_ref().is_none_or(|d| !same_content(d, &want)) {
                tx.put_desired_record(key, &want)?;
            }
            let payload = fingerprint(want.ttl, &want.targets, &want.owner);
            let item = tx.work_item_by_key(KIND_APPLY, &key.to_string())?;
            if is_applied(&want, tx.applied_record(key)?.as_ref()) {
                // Only to supersede queued work that would change it (a held-down delete).
                if item.is_some_and(|i| {
                    i.payload != payload.as_bytes() && matches!(i.state, ItemState::Pending | ItemState::InFlight)
                }) {
                    tx.enqueue(KIND_APPLY, &key.to_string(), payload.as_bytes(), now)?;
                    changes.applies.push(key.to_string());
                }
                continue;
            }
            match tx.enqueue(KIND_APPLY, &key.to_string(), payload.as_bytes(), now)? {
                Enqueued::Created(_) | Enqueued::Updated(_) => changes.applies.push(key.to_string()),
                // Done without the content being applied: try again. A parked item (a foreign
                // record set in the way) waits for its input to change instead.
                Enqueued::Unchanged(id) => {
                    if item.is_some_and(|i| i.state == ItemState::Done) {
                        tx.requeue(id, now)?;
                        changes.applies.push(key.to_string());
                    }
                }
            }
        }
        for key in before.iter().filter(|k| !records.contains_key(*k)) {
            let Some(had) = tx.desired_record(key)? else { continue };
            match owners.get(resource_of(&had.owner)) {
                Some(Owner::Invalid) => {}
                Some(Owner::Deleting) => {
                    tx.delete_desired_record(key)?;
                    tx.enqueue(KIND_APPLY, &key.to_string(), PAYLOAD_DELETE.as_bytes(), now)?;
                    changes.deletes.push(key.to_string());
                }
                Some(Owner::Live { .. }) if policy == Policy::UpsertOnly => {
                    retain(tx, key, "its sources are gone; kept in Azure (--dns-policy upsert-only)".into(), now)?;
                    changes.retained.push(key.to_string());
                }
                Some(Owner::Live { hold_down }) => {
                    tx.delete_desired_record(key)?;
                    // A source still asks for the name but merely lost its address or its
                    // Accepted condition: wait before deleting, the record set may be wanted
                    // again. A name nobody asks for any more (a renamed route) goes now.
                    let flapping = wanted.contains(&(key.zone.clone(), key.name.clone()));
                    let due = if flapping { now.plus(*hold_down) } else { now };
                    tx.enqueue_at(KIND_APPLY, &key.to_string(), PAYLOAD_DELETE.as_bytes(), due, now)?;
                    changes.deletes.push(key.to_string());
                }
                None => {
                    let why = format!("{} was deleted; its record set is kept in Azure", resource_of(&had.owner));
                    retain(tx, key, why, now)?;
                    changes.retained.push(key.to_string());
                }
            }
        }
        Ok::<_, routewarden_store::TxError>(changes)
    })
}

/// Stops wanting a record set without deleting it: it stays in Azure, and verification reports
/// it as stale.
fn retain(
    tx: &routewarden_store::Tx<'_>,
    key: &RecordSetKey,
    why: String,
    now: Time,
) -> routewarden_store::TxResult<()> {
    tx.delete_desired_record(key)?;
    tx.forget(KIND_APPLY, &key.to_string())?;
    tx.append_event(NewEvent::new(now, "dns.retained", key.to_string(), why))?;
    Ok(())
}

/// The resources' planner inputs and owner states.
pub fn owners(resources: &[DnsObject]) -> BTreeMap<String, Owner> {
    resources
        .iter()
        .map(|r| {
            let owner = match &r.config {
                Ok(_) if r.deleting() && r.deletes_records() && r.has_finalizer() => Owner::Deleting,
                Ok(c) => Owner::Live { hold_down: c.hold_down },
                Err(_) => Owner::Invalid,
            };
            (r.identity.clone(), owner)
        })
        .collect()
}

pub async fn run(w: Arc<Workers>, changed: crate::watches::Changed, mut stop: watch::Receiver<bool>) {
    tokio::select! {
        _ = w.caches.ready() => {}
        _ = stop.changed() => return,
    }
    tracing::info!(caches = ?w.caches, "DNS caches synced");
    let config = PlanConfig {
        cluster_id: w.cluster_id.clone(),
        gateway_classes: w.settings.gateway_classes.clone(),
        ..PlanConfig::default()
    };
    // Resources whose identity could not be used at the last pass: when it can, their items that
    // wait for it are tried at once instead of at their next retry.
    let mut without_identity: BTreeSet<String> = BTreeSet::new();
    type Inputs = (BTreeMap<RecordSetKey, PlannedRecord>, BTreeMap<String, Owner>, BTreeSet<(String, String)>);
    let mut last_inputs: Option<Inputs> = None;
    let mut last_full = Instant::now();
    loop {
        let span = tracing::info_span!("dns.plan");
        changed.adopt(&span);
        let started = Instant::now();
        async {
            let resources = w.caches.dns_resources();
            // A resource being deleted plans nothing; its config stays known so its records can be
            // deleted with its identity.
            let configs: Vec<_> = resources.iter().filter_map(|r| r.config.as_ref().ok()).collect();
            let planned_resources: Vec<_> =
                resources.iter().filter(|r| !r.deleting()).filter_map(|r| r.config.as_ref().ok()).collect();
            let planned = plan(
                &planned_resources.iter().map(|c| c.resource.clone()).collect::<Vec<_>>(),
                &w.caches.snapshot(),
                &config,
            );
            let owners = owners(&resources);
            let wanted = planned.wanted.clone();
            let journal = w.journal.clone();
            let records = planned.records.clone();
            let policy = w.settings.policy;
            // The same plan as last time needs no journal pass: what it queued then is queued, and
            // workers and the verifier keep their own items current. A full pass every few minutes
            // anyway is the safety net.
            let inputs = (records.clone(), owners.clone(), wanted.clone());
            let same = last_inputs.as_ref() == Some(&inputs) && last_full.elapsed() < FULL_PASS;
            let result = if same {
                Ok(Ok(Changes::default()))
            } else {
                last_inputs = Some(inputs);
                last_full = Instant::now();
                crate::telemetry::journal(move || reconcile(&journal, &records, &owners, &wanted, policy, Time::now()))
                    .await
            };
            match result {
                Ok(Ok(changes)) if !changes.is_empty() => {
                    for key in changes.applies.iter().chain(&changes.deletes) {
                        crate::telemetry::parents().remember(super::KIND_APPLY, &key.to_string());
                    }
                    tracing::info!(
                        applies = changes.applies.len(),
                        deletes = changes.deletes.len(),
                        retained = changes.retained.len(),
                        "DNS work queued"
                    );
                    w.wake.notify_waiters();
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "failed to queue DNS work"),
                Err(e) => tracing::error!(error = %e, "DNS queue task failed"),
            }
            let now_usable: BTreeSet<String> = configs
                .iter()
                .filter(|c| super::identity_key(c, &w.caches, w.settings.default_tenant.as_deref()).is_ok())
                .map(|c| c.resource.identity())
                .collect();
            let recovered: Vec<String> = without_identity.iter().filter(|i| now_usable.contains(*i)).cloned().collect();
            without_identity =
                configs.iter().map(|c| c.resource.identity()).filter(|i| !now_usable.contains(i)).collect();
            if !recovered.is_empty() {
                retry_waiting_for_identity(&w, recovered).await;
            }
            {
                let mut shared = lock(&w.shared);
                shared.configs = configs.iter().map(|c| (c.resource.identity(), (*c).clone())).collect();
                shared.failures.retain(|k, _| planned.records.contains_key(k));
                shared.plan = planned;
                shared.planned = true;
            }
            // Finalizers are writes: the leader's.
            if w.leadership.is_leader() {
                super::finalizer::sync(&w, &resources).await;
            }
            w.reported.notify_one();
            w.verify.notify_one();
        }
        .instrument(span)
        .await;
        let took = started.elapsed();
        tracing::debug!(elapsed = ?took, "DNS plan pass");
        tokio::select! {
            _ = changed.notified() => {
                // Events arriving together settle into one pass, and a large cluster (whose pass
                // takes long) is replanned at most every other pass-length.
                tokio::time::sleep(DEBOUNCE.max(took)).await;
            }
            _ = stop.changed() => return,
        }
    }
}

/// Makes the pending items of `resources` (whose identity has just become usable) due now.
async fn retry_waiting_for_identity(w: &Workers, resources: Vec<String>) {
    let journal = w.journal.clone();
    let result = tokio::task::spawn_blocking(move || {
        let items = super::apply_items(&journal, ItemState::Pending)?;
        let now = Time::now();
        let due = journal.commit(|tx| {
            let mut due = 0usize;
            for (key, item) in &items {
                let owner = match tx.desired_record(key)? {
                    Some(d) => d.owner,
                    None => match tx.applied_record(key)? {
                        Some(a) => a.owner,
                        None => continue,
                    },
                };
                if resources.iter().any(|r| r == resource_of(&owner)) {
                    tx.requeue(item.id, now)?;
                    due += 1;
                }
            }
            Ok(due)
        })?;
        Ok::<_, routewarden_store::Error>(due)
    })
    .await;
    match result {
        Ok(Ok(n)) if n > 0 => {
            tracing::info!(items = n, "identity available again; retrying its record sets now");
            w.wake.notify_waiters();
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "failed to retry the items waiting for an identity"),
        Err(e) => tracing::warn!(error = %e, "retry task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routewarden_planner::dns::ObjectRef;
    use routewarden_store::RecordType;

    const ZONE: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com";
    const OWNER: &str = "c1/clusterexternaldns/demo";

    fn journal() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = routewarden_store::testing::open_current(dir.path(), routewarden_store::Options::default()).unwrap();
        (dir, j)
    }

    fn key(name: &str) -> RecordSetKey {
        RecordSetKey { zone: ZONE.into(), name: name.into(), record_type: RecordType::A }
    }

    fn planned(target: &str) -> PlannedRecord {
        PlannedRecord {
            ttl: 300,
            targets: vec![target.into()],
            owner: OWNER.into(),
            resource: "clusterexternaldns/demo".into(),
            sources: [ObjectRef { kind: "Gateway", namespace: "app-a".into(), name: "a-gateway".into() }].into(),
        }
    }

    fn live() -> BTreeMap<String, Owner> {
        [("clusterexternaldns/demo".to_owned(), Owner::Live { hold_down: Duration::from_secs(300) })].into()
    }

    fn mark_applied(j: &Journal, k: &RecordSetKey, target: &str) {
        j.commit(|tx| {
            tx.put_applied_record(
                k,
                &AppliedRecordSet {
                    etag: "e1".into(),
                    owner: OWNER.into(),
                    ttl: 300,
                    targets: vec![target.into()],
                    applied_at: Time::from_millis(2),
                },
            )
        })
        .unwrap();
    }

    fn item(j: &Journal, k: &RecordSetKey) -> Option<(String, ItemState)> {
        j.work_item_by_key(KIND_APPLY, &k.to_string())
            .unwrap()
            .map(|i| (String::from_utf8(i.payload).unwrap(), i.state))
    }

    #[test]
    fn queues_a_record_once_and_nothing_when_the_journal_says_it_is_applied() {
        let (_d, j) = journal();
        let records = BTreeMap::from([(key("a"), planned("203.0.113.1"))]);
        let first = reconcile(&j, &records, &live(), &BTreeSet::new(), Policy::Sync, Time::from_millis(10)).unwrap();
        assert_eq!(first.applies, vec![key("a").to_string()]);
        let again = reconcile(&j, &records, &live(), &BTreeSet::new(), Policy::Sync, Time::from_millis(20)).unwrap();
        assert!(again.is_empty(), "the same plan queues nothing: {again:?}");

        // As after a restart: applied matches, a fresh journal pass queues nothing either.
        let (_d2, j2) = journal();
        mark_applied(&j2, &key("a"), "203.0.113.1");
        let fresh = reconcile(&j2, &records, &live(), &BTreeSet::new(), Policy::Sync, Time::from_millis(30)).unwrap();
        assert!(fresh.is_empty(), "{fresh:?}");
        assert_eq!(item(&j2, &key("a")), None);
        assert!(j2.desired_record(&key("a")).unwrap().is_some());
    }

    #[test]
    fn a_record_whose_source_flaps_is_deleted_only_after_the_hold_down() {
        let (_d, j) = journal();
        let records = BTreeMap::from([(key("a"), planned("203.0.113.1"))]);
        reconcile(&j, &records, &live(), &BTreeSet::new(), Policy::Sync, Time::from_millis(10)).unwrap();
        mark_applied(&j, &key("a"), "203.0.113.1");
        let sources = BTreeSet::from([(ZONE.to_owned(), "a".to_owned())]);
        let gone = reconcile(&j, &BTreeMap::new(), &live(), &sources, Policy::Sync, Time::from_millis(1_000)).unwrap();
        assert_eq!(gone.deletes, vec![key("a").to_string()]);
        let held = j.work_item_by_key(KIND_APPLY, &key("a").to_string()).unwrap().unwrap();
        assert_eq!(held.next_attempt_at, Time::from_millis(301_000));
        // The address comes back before the hold-down ends: the delete is superseded.
        let back = reconcile(&j, &records, &live(), &sources, Policy::Sync, Time::from_millis(2_000)).unwrap();
        assert_eq!(back.applies, vec![key("a").to_string()]);
        assert_ne!(item(&j, &key("a")).unwrap().0, PAYLOAD_DELETE);

        // Applied again; now no source asks for the name at all (a renamed route): deleted at once.
        mark_applied(&j, &key("a"), "203.0.113.1");
        let renamed =
            reconcile(&j, &BTreeMap::new(), &live(), &BTreeSet::new(), Policy::Sync, Time::from_millis(3_000)).unwrap();
        assert_eq!(renamed.deletes, vec![key("a").to_string()]);
        let now = j.work_item_by_key(KIND_APPLY, &key("a").to_string()).unwrap().unwrap();
        assert_eq!(now.next_attempt_at, Time::from_millis(3_000));
    }

    #[test]
    fn records_of_a_deleted_resource_are_retained_and_of_an_invalid_one_untouched() {
        let (_d, j) = journal();
        let records = BTreeMap::from([(key("a"), planned("203.0.113.1"))]);
        reconcile(&j, &records, &live(), &BTreeSet::new(), Policy::Sync, Time::from_millis(10)).unwrap();
        mark_applied(&j, &key("a"), "203.0.113.1");
        let invalid = BTreeMap::from([("clusterexternaldns/demo".to_owned(), Owner::Invalid)]);
        assert!(
            reconcile(&j, &BTreeMap::new(), &invalid, &BTreeSet::new(), Policy::Sync, Time::from_millis(20))
                .unwrap()
                .is_empty()
        );
        assert!(j.desired_record(&key("a")).unwrap().is_some());

        let retained =
            reconcile(&j, &BTreeMap::new(), &BTreeMap::new(), &BTreeSet::new(), Policy::Sync, Time::from_millis(30))
                .unwrap();
        assert_eq!(retained.retained, vec![key("a").to_string()]);
        assert_eq!(item(&j, &key("a")), None, "no delete is queued");
        assert!(j.applied_record(&key("a")).unwrap().is_some(), "the applied record set is still known (stale)");
    }

    #[test]
    fn upsert_only_keeps_a_record_whose_source_is_gone_and_a_deleting_resource_deletes_at_once() {
        let (_d, j) = journal();
        let records = BTreeMap::from([(key("a"), planned("203.0.113.1"))]);
        reconcile(&j, &records, &live(), &BTreeSet::new(), Policy::UpsertOnly, Time::from_millis(10)).unwrap();
        mark_applied(&j, &key("a"), "203.0.113.1");
        let kept =
            reconcile(&j, &BTreeMap::new(), &live(), &BTreeSet::new(), Policy::UpsertOnly, Time::from_millis(20))
                .unwrap();
        assert_eq!(kept.retained, vec![key("a").to_string()]);
        assert_eq!(item(&j, &key("a")), None, "no delete is queued");

        let (_d2, j2) = journal();
        reconcile(&j2, &records, &live(), &BTreeSet::new(), Policy::Sync, Time::from_millis(10)).unwrap();
        mark_applied(&j2, &key("a"), "203.0.113.1");
        let deleting = BTreeMap::from([("clusterexternaldns/demo".to_owned(), Owner::Deleting)]);
        // Even with the name still asked for (no hold-down applies): the resource itself is going.
        let sources = BTreeSet::from([(ZONE.to_owned(), "a".to_owned())]);
        let gone = reconcile(&j2, &BTreeMap::new(), &deleting, &sources, Policy::Sync, Time::from_millis(30)).unwrap();
        assert_eq!(gone.deletes, vec![key("a").to_string()]);
        let queued = j2.work_item_by_key(KIND_APPLY, &key("a").to_string()).unwrap().unwrap();
        assert_eq!(
            (queued.payload.as_slice(), queued.next_attempt_at),
            (PAYLOAD_DELETE.as_bytes(), Time::from_millis(30))
        );
    }
}
