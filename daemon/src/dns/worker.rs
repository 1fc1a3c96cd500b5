//! The DNS worker pool: claims due `dns.*` items and brings one record set to the journal's
//! desired state. Every Azure write is conditional — `If-None-Match: *` to create, `If-Match:
//! <etag>` to update or delete — so a record set someone else created or changed is never
//! overwritten. When a create finds the name taken, the record set is read once: ours (this
//! cluster's ownership metadata) is adopted, anything else is a conflict that parks the item —
//! unless it carries the external-dns TXT-registry ownership of the owner id routewarden was told
//! to adopt (`--dns-adopt-txt-owner-id`): then it is taken over in one conditional PUT and its
//! TXT record is deleted.
//!
//! Before each call the worker takes a token from the zone's and the subscription's buckets
//! ([`super::limits`]). A spent zone bucket defers the item (no attempt counted) and the workers
//! pass by that zone's items until it refills, so a busy zone never holds the others up.

use super::controller::is_applied;
use super::limits::{Call, Limits};
use super::sources::Caches;
use super::{DnsSettings, Failure, KIND_APPLY, KIND_PREFIX, SharedState, identity_key, lock, metadata, parse_key};
use crate::crd::conditions::reason;
use crate::metrics::Metrics;
use routewarden_azure::{AzureClient, AzureError, Kind, Precondition, Principal, RecordKind, RecordSet, ZoneRef};
use routewarden_planner::zone::Zone;
use routewarden_store::{AppliedRecordSet, DesiredRecordSet, Journal, NewEvent, RecordSetKey, Time};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tracing::Instrument;

/// How long a claimed item is ours before another worker may take it over.
const LEASE: Duration = Duration::from_secs(120);
/// The wait after a 429 without Retry-After.
const THROTTLED_WAIT: Duration = Duration::from_secs(10);

/// Why an item did not reach its desired state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError {
    /// Bounded: the Ready condition's reason.
    pub reason: &'static str,
    pub message: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
    /// A foreign record set holds the name: park now, retrying cannot help.
    pub conflict: bool,
}

impl From<AzureError> for ApplyError {
    fn from(e: AzureError) -> Self {
        let reason = match e.kind {
            Kind::Throttled => reason::THROTTLED,
            Kind::Forbidden => reason::ZONE_FORBIDDEN,
            Kind::NotFound => reason::ZONE_NOT_FOUND,
            Kind::Authentication => reason::IDENTITY_UNAVAILABLE,
            _ => reason::APPLYING,
        };
        ApplyError {
            reason,
            message: e.to_string(),
            retryable: e.kind.retryable(),
            retry_after: e.retry_after,
            conflict: false,
        }
    }
}

impl From<routewarden_store::Error> for ApplyError {
    fn from(e: routewarden_store::Error) -> Self {
        ApplyError {
            reason: reason::APPLYING,
            message: format!("journal: {e}"),
            retryable: true,
            retry_after: None,
            conflict: false,
        }
    }
}

/// Everything a worker needs; shared by the pool, the planner loop and the status writer.
pub struct Workers {
    pub client: kube::Client,
    pub caches: Caches,
    pub azure: Arc<AzureClient>,
    pub journal: Journal,
    pub cluster_id: String,
    pub shared: SharedState,
    pub settings: Arc<DnsSettings>,
    /// Notified when work is queued.
    pub wake: Arc<Notify>,
    /// Notified when a plan or an outcome changed (the status writer publishes it).
    pub reported: Arc<Notify>,
    /// Notified when the zones to verify may have changed.
    pub verify: Arc<Notify>,
    /// Wakes the planner loop (as a watch event does): after a delete, so a deleting resource's
    /// finalizer is released as soon as its last record set is gone.
    pub replan: Arc<Notify>,
    pub limits: Arc<Limits>,
    pub metrics: Arc<Metrics>,
    pub leadership: crate::leader::Leadership,
    /// Which zones were listed in this leadership term; see [`Reconciled`].
    pub reconciled: Arc<Reconciled>,
}

/// A new leader trusts no applied state it has not verified: the previous leader may have
/// written record sets its journal never heard of. So in each term a zone's items are drained
/// only after the verifier listed the zone (recording what Azure holds as applied, so nothing
/// already there is written again). Zones the verifier has no identity for are not held back:
/// their items fail on their own and say why.
#[derive(Debug, Default)]
pub struct Reconciled(std::sync::Mutex<ReconciledState>);

#[derive(Debug, Default)]
struct ReconciledState {
    /// The term the verifier last published its targets in.
    term: u64,
    targets: std::collections::HashSet<String>,
    /// Zone → the term it was last listed in (successfully or not).
    listed: HashMap<String, u64>,
}

impl Reconciled {
    /// The verifier's zones for `term`.
    pub fn set_targets(&self, term: u64, zones: impl IntoIterator<Item = String>) {
        let mut s = crate::lock(&self.0);
        s.term = term;
        s.targets = zones.into_iter().collect();
    }

    /// The verifier tried to list `zone` in `term`.
    pub fn listed(&self, zone: &str, term: u64) {
        crate::lock(&self.0).listed.insert(zone.to_owned(), term);
    }

    /// Whether `zone`'s items may be drained in `term`.
    pub fn may_drain(&self, zone: &str, term: u64) -> bool {
        let s = crate::lock(&self.0);
        s.term == term && (!s.targets.contains(zone) || s.listed.get(zone) == Some(&term))
    }
}

/// How an item ended when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The zone's rate limit is spent: try again after this, without counting an attempt.
    Deferred(Duration),
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers").field("caches", &self.caches).finish_non_exhaustive()
    }
}

/// The ownership metadata of a record set planned for `owner`.
pub fn ownership(cluster_id: &str, owner: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (metadata::OWNER.to_owned(), owner.to_owned()),
        (metadata::CLUSTER.to_owned(), cluster_id.to_owned()),
    ])
}

/// Whether a record set found in Azure is this cluster's (then it may be adopted).
pub fn owned_by_cluster(found: &BTreeMap<String, String>, cluster_id: &str) -> bool {
    found.get(metadata::CLUSTER).is_some_and(|c| c == cluster_id)
        && found.get(metadata::OWNER).is_some_and(|o| o.starts_with(&format!("{cluster_id}/")))
}

impl Workers {
    /// One worker: claims and carries out this controller's items until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let limits = self.limits.clone();
        let reconciled = self.reconciled.clone();
        let leadership = self.leadership.clone();
        let wanted: crate::backoff::Wanted = Arc::new(move |key| {
            parse_key(key)
                .is_none_or(|k| limits.zone_ready(&k.zone) && reconciled.may_drain(&k.zone, leadership.term()))
        });
        while !*stop.borrow() {
            let Some(claimed) = crate::backoff::claim_next_where(
                &self.journal,
                KIND_PREFIX,
                LEASE,
                &self.wake,
                &mut stop,
                wanted.clone(),
            )
            .await
            else {
                continue;
            };
            let (item, lease) = (claimed.item, claimed.lease);
            let span = tracing::info_span!("dns.work", record = %item.key, attempt = item.attempts + 1);
            crate::telemetry::parents().adopt(&item.kind, &item.key, &span);
            self.work(item, lease).instrument(span).await;
        }
    }

    /// Runs one claimed item and records its outcome in the journal.
    async fn work(&self, item: routewarden_store::WorkItem, lease: routewarden_store::Lease) {
        let result = match (item.kind.as_str(), parse_key(&item.key)) {
            (KIND_APPLY, Some(key)) => self.apply(&key).await,
            // Not ours to understand: done, so it does not spin.
            _ => Ok(Outcome::Done),
        };
        if let Some(key) = parse_key(&item.key) {
            match &result {
                Ok(Outcome::Deferred(_)) => {
                    let zone = Zone::parse(&key.zone).ok();
                    self.metrics.dns_rate_limit_deferrals.get_or_create(&zone_labels(zone.as_ref(), &key.zone)).inc();
                }
                Ok(Outcome::Done) => self.note(&key, None),
                Err(e) => {
                    self.metrics
                        .dns_sync_errors
                        .get_or_create(&crate::metrics::ReasonLabels { reason: e.reason.to_owned() })
                        .inc();
                    if e.retryable {
                        tracing::info!(record = %key, reason = e.reason, error = %e.message, attempt = item.attempts + 1, "record-set write failed; retrying");
                    } else {
                        tracing::warn!(record = %key, reason = e.reason, error = %e.message, "record-set write failed");
                    }
                    if e.reason == reason::THROTTLED {
                        self.limits.hold_zone(&key.zone, e.retry_after.unwrap_or(THROTTLED_WAIT));
                    }
                    self.note(&key, Some(e));
                }
            }
        }
        let journal = self.journal.clone();
        let backoff = self.settings.backoff;
        let attempts = item.attempts + 1;
        let subject = item.key.clone();
        let finished = crate::telemetry::journal(move || {
            let now = Time::now();
            journal.commit(|tx| match &result {
                Ok(Outcome::Done) => tx.complete(lease, now).map(|_| ()),
                Ok(Outcome::Deferred(wait)) => tx.defer(lease, now.plus(*wait), now),
                // Azure's 429 says when to come back: that is waiting for capacity, not a
                // failed attempt, so it never backs off past Retry-After or parks the item.
                Err(e) if e.reason == reason::THROTTLED => {
                    tx.defer(lease, now.plus(e.retry_after.unwrap_or(THROTTLED_WAIT)), now)
                }
                Err(e) if e.conflict => {
                    tx.append_event(NewEvent::new(now, "dns.conflict", subject.clone(), e.message.clone()))?;
                    tx.park(lease, &format!("{}: {}", e.reason, e.message), now)
                }
                Err(e) => {
                    let at = now.plus(backoff.delay(e.retryable, e.retry_after, attempts));
                    tx.retry(lease, at, &format!("{}: {}", e.reason, e.message), now).map(|_| ())
                }
            })
        })
        .await;
        match finished {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(key = %item.key, error = %e, "failed to record a DNS item's result"),
            Err(e) => tracing::error!(error = %e, "record task failed"),
        }
    }

    /// Takes the tokens for `call` on `zone`; `Err(wait)` when the zone's bucket is spent.
    async fn tokens(&self, call: Call, zone: &ZoneRef, id: &Principal) -> Result<(), Duration> {
        self.limits.acquire(call, &zone.id, zone.private, id.client_id()).await
    }

    /// One conditional PUT, once the buckets allow it (`Err(wait)` when the zone's is spent).
    /// Every request is counted by the Azure client's observer.
    async fn put_set(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        name: &str,
        kind: RecordKind,
        set: &RecordSet,
        precondition: &Precondition,
    ) -> Result<Result<String, AzureError>, Duration> {
        self.tokens(Call::Write, zone, id).await?;
        Ok(self.azure.put_record_set(id, zone, name, kind, set, precondition).await)
    }

    /// One conditional DELETE, like [`Workers::put_set`].
    async fn delete_set(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        name: &str,
        kind: RecordKind,
        etag: &str,
    ) -> Result<Result<(), AzureError>, Duration> {
        self.tokens(Call::Delete, zone, id).await?;
        Ok(self.azure.delete_record_set(id, zone, name, kind, etag).await)
    }

    /// One GET. Reads have no zone bucket, so they are never deferred: they wait for the
    /// subscription's token only.
    async fn get_set(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        name: &str,
        kind: RecordKind,
    ) -> Result<Option<routewarden_azure::StoredRecordSet>, AzureError> {
        let _ = self.tokens(Call::Get, zone, id).await;
        self.azure.get_record_set(id, zone, name, kind).await
    }

    /// Keeps the last failure of a record set for status; wakes the status writer on a change.
    fn note(&self, key: &RecordSetKey, error: Option<&ApplyError>) {
        let changed = {
            let mut shared = lock(&self.shared);
            let resource = shared.plan.records.get(key).map(|r| r.resource.clone());
            match (error, resource) {
                (Some(e), Some(resource)) => {
                    let failure =
                        Failure { resource, reason: e.reason, message: e.message.clone(), conflict: e.conflict };
                    shared.failures.insert(key.clone(), failure.clone()) != Some(failure)
                }
                _ => shared.failures.remove(key).is_some() || error.is_none(),
            }
        };
        if changed {
            self.reported.notify_one();
        }
    }

    fn identity_for(&self, owner: &str) -> Result<Option<Principal>, ApplyError> {
        let config = lock(&self.shared).configs.get(super::resource_of(owner)).cloned();
        // The resource was deleted meanwhile: its record sets are retained, nothing to do.
        let Some(config) = config else { return Ok(None) };
        identity_key(&config, &self.caches, self.settings.default_tenant.as_deref()).map(Some).map_err(|u| ApplyError {
            reason: u.reason,
            message: u.message,
            retryable: false,
            retry_after: None,
            conflict: false,
        })
    }

    /// Brings one record set to the journal's desired state.
    #[tracing::instrument(skip(self), fields(record = %key))]
    async fn apply(&self, key: &RecordSetKey) -> Result<Outcome, ApplyError> {
        let journal = self.journal.clone();
        let k = key.clone();
        let (desired, applied) = tokio::task::spawn_blocking(move || {
            Ok::<_, routewarden_store::Error>((journal.desired_record(&k)?, journal.applied_record(&k)?))
        })
        .await
        .map_err(|e| ApplyError {
            reason: reason::APPLYING,
            message: e.to_string(),
            retryable: true,
            retry_after: None,
            conflict: false,
        })??;
        let zone = ZoneRef { id: key.zone.clone(), private: Zone::parse(&key.zone).is_ok_and(|z| z.private) };
        let kind = super::record_kind(key.record_type);
        match desired {
            None => {
                let Some(applied) = applied else { return Ok(Outcome::Done) };
                let Some(id) = self.identity_for(&applied.owner)? else { return Ok(Outcome::Done) };
                let deleted = match self.delete_set(&id, &zone, &key.name, kind, &applied.etag).await {
                    Ok(deleted) => deleted,
                    Err(wait) => return Ok(Outcome::Deferred(wait)),
                };
                match deleted {
                    Ok(()) => {}
                    // Changed in Azure since we wrote it: no longer what we applied, so not ours
                    // to delete. Forget it; it shows up as a foreign record set if wanted again.
                    Err(e) if e.kind == Kind::PreconditionFailed => {
                        tracing::warn!(error = %e, "record set changed outside routewarden; left in place");
                    }
                    Err(e) => return Err(e.into()),
                }
                let done = self.commit_applied(key, None, "dns.deleted", "deleted").await.map(|()| Outcome::Done);
                self.replan.notify_one();
                done
            }
            Some(desired) => {
                if is_applied(&desired, applied.as_ref()) {
                    return Ok(Outcome::Done);
                }
                let Some(id) = self.identity_for(&desired.owner)? else { return Ok(Outcome::Done) };
                self.put(&id, &zone, key, &desired, applied).await
            }
        }
    }

    async fn put(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        key: &RecordSetKey,
        desired: &DesiredRecordSet,
        applied: Option<AppliedRecordSet>,
    ) -> Result<Outcome, ApplyError> {
        let kind = super::record_kind(key.record_type);
        let set = RecordSet {
            ttl: desired.ttl,
            targets: desired.targets.clone(),
            metadata: ownership(&self.cluster_id, &desired.owner),
        };
        let mut precondition = match &applied {
            Some(a) => Precondition::Matches(a.etag.clone()),
            None => Precondition::Absent,
        };
        // One write, and at most one read and a second write when the journal's etag is stale.
        for _ in 0..2 {
            let written = match self.put_set(id, zone, &key.name, kind, &set, &precondition).await {
                Ok(written) => written,
                Err(wait) => return Ok(Outcome::Deferred(wait)),
            };
            match written {
                Ok(etag) => {
                    let applied = applied_of(desired, etag);
                    return self
                        .commit_applied(key, Some(applied), "dns.applied", "applied")
                        .await
                        .map(|()| Outcome::Done);
                }
                Err(e) if e.kind == Kind::PreconditionFailed => match self.get_set(id, zone, &key.name, kind).await? {
                    None => precondition = Precondition::Absent,
                    Some(found) if owned_by_cluster(&found.set.metadata, &self.cluster_id) => {
                        if found.set == set {
                            let applied = applied_of(desired, found.etag);
                            return self
                                .commit_applied(key, Some(applied), "dns.adopted", "adopted")
                                .await
                                .map(|()| Outcome::Done);
                        }
                        precondition = Precondition::Matches(found.etag);
                    }
                    Some(found) => {
                        if let Some(txt) = self.adoptable(id, zone, key, &found).await {
                            precondition = Precondition::Matches(found.etag);
                            let etag = match self.put_set(id, zone, &key.name, kind, &set, &precondition).await {
                                Ok(written) => written?,
                                Err(wait) => return Ok(Outcome::Deferred(wait)),
                            };
                            self.delete_registry_txt(id, zone, &txt).await;
                            let applied = applied_of(desired, etag);
                            return self
                                .commit_applied(key, Some(applied), "dns.adopted", "adopted from external-dns")
                                .await
                                .map(|()| Outcome::Done);
                        }
                        let holder = found.set.metadata.get(metadata::OWNER).cloned();
                        return Err(ApplyError {
                            reason: reason::CONFLICTS,
                            message: format!(
                                "{} record set {:?} in zone {} exists and is not owned by this cluster ({}); it was left untouched",
                                key.record_type,
                                key.name,
                                zone.id,
                                holder.map_or_else(
                                    || "no routewarden-owner metadata".to_owned(),
                                    |o| format!("owner {o}")
                                ),
                            ),
                            retryable: false,
                            retry_after: None,
                            conflict: true,
                        });
                    }
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError {
            reason: reason::APPLYING,
            message: format!("{} record set {:?} keeps changing in Azure; retrying", key.record_type, key.name),
            retryable: true,
            retry_after: None,
            conflict: false,
        })
    }

    /// The external-dns registry TXT record set that makes `found` adoptable, if adoption is
    /// configured and one of the names external-dns uses for it holds the configured owner id.
    async fn adoptable(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        key: &RecordSetKey,
        found: &routewarden_azure::StoredRecordSet,
    ) -> Option<routewarden_azure::StoredRecordSet> {
        let owner = self.settings.adopt_txt_owner.as_deref()?;
        if found.set.metadata.contains_key(metadata::OWNER) {
            return None;
        }
        for name in registry_txt_names(key) {
            if let Ok(Some(txt)) = self.get_set(id, zone, &name, RecordKind::Txt).await
                && txt.set.targets.iter().any(|v| registry_owner(v) == Some(owner))
            {
                return Some(txt);
            }
        }
        None
    }

    /// Deletes an adopted record set's external-dns ownership TXT (best effort: it only costs a
    /// record set if it stays, and the verifier reports nothing for it).
    async fn delete_registry_txt(&self, id: &Principal, zone: &ZoneRef, txt: &routewarden_azure::StoredRecordSet) {
        let Ok(deleted) = self.delete_set(id, zone, &txt.name, RecordKind::Txt, &txt.etag).await else { return };
        if let Err(e) = deleted {
            tracing::warn!(txt = %txt.name, error = %e, "failed to delete the adopted record set's external-dns TXT record");
        }
    }

    async fn commit_applied(
        &self,
        key: &RecordSetKey,
        applied: Option<AppliedRecordSet>,
        action: &'static str,
        what: &'static str,
    ) -> Result<(), ApplyError> {
        let journal = self.journal.clone();
        let key = key.clone();
        crate::telemetry::journal(move || {
            let now = Time::now();
            journal.commit(|tx| {
                match &applied {
                    Some(a) => tx.put_applied_record(&key, a)?,
                    None => {
                        tx.delete_applied_record(&key)?;
                    }
                }
                let detail = applied
                    .as_ref()
                    .map_or_else(String::new, |a| format!(" (ttl {}, targets {})", a.ttl, a.targets.join(",")));
                tx.append_event(NewEvent::new(now, action, key.to_string(), format!("record set {what}{detail}")))?;
                Ok(())
            })
        })
        .await
        .map_err(|e| ApplyError {
            reason: reason::APPLYING,
            message: e.to_string(),
            retryable: true,
            retry_after: None,
            conflict: false,
        })?
        .map_err(ApplyError::from)
    }
}

/// The metrics labels of a zone id.
pub fn zone_labels(zone: Option<&Zone>, id: &str) -> crate::metrics::ZoneLabels {
    crate::metrics::ZoneLabels {
        zone: zone.map_or_else(|| id.to_owned(), |z| z.name.clone()),
        kind: if zone.is_some_and(|z| z.private) { "private" } else { "public" }.to_owned(),
    }
}

/// Where external-dns's TXT registry keeps the ownership of a record set: `<type>-<name>` (its
/// current format, `*` spelled `approutingwildcard` as the AKS operator configures it), then the
/// record's own name (the format before external-dns 0.12).
pub fn registry_txt_names(key: &RecordSetKey) -> Vec<String> {
    let prefix = key.record_type.to_string().to_ascii_lowercase();
    let name = key.name.replace('*', "approutingwildcard");
    let current = if key.name == "@" { prefix } else { format!("{prefix}-{name}") };
    vec![current, key.name.clone()]
}

/// The owner id in an external-dns registry TXT value
/// (`"heritage=external-dns,external-dns/owner=<id>,external-dns/resource=..."`).
pub fn registry_owner(value: &str) -> Option<&str> {
    let value = value.trim_matches('"');
    let mut fields = value.split(',');
    if fields.next()? != "heritage=external-dns" {
        return None;
    }
    fields.find_map(|f| f.strip_prefix("external-dns/owner="))
}

fn applied_of(desired: &DesiredRecordSet, etag: String) -> AppliedRecordSet {
    AppliedRecordSet {
        etag,
        owner: desired.owner.clone(),
        ttl: desired.ttl,
        targets: desired.targets.clone(),
        applied_at: Time::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_clusters_metadata_makes_a_record_set_adoptable() {
        let ours = ownership("c1", "c1/clusterexternaldns/demo");
        assert!(owned_by_cluster(&ours, "c1"));
        assert!(!owned_by_cluster(&ours, "c2"));
        assert!(!owned_by_cluster(&BTreeMap::new(), "c1"));
        let forged = BTreeMap::from([(metadata::CLUSTER.to_owned(), "c1".to_owned())]);
        assert!(!owned_by_cluster(&forged, "c1"), "an owner id is needed too");
    }

    #[test]
    fn only_external_dns_registry_records_of_the_configured_owner_are_adoptable() {
        assert_eq!(
            registry_owner("\"heritage=external-dns,external-dns/owner=uid-1,external-dns/resource=gateway/a/b\""),
            Some("uid-1")
        );
        assert_eq!(registry_owner("heritage=external-dns,external-dns/owner=uid-2"), Some("uid-2"));
        assert_eq!(registry_owner("v=spf1 -all"), None);
        assert_eq!(registry_owner("external-dns/owner=uid-1"), None, "the heritage comes first");
        let key = |name: &str| RecordSetKey {
            zone: "z".into(),
            name: name.into(),
            record_type: routewarden_store::RecordType::A,
        };
        assert_eq!(registry_txt_names(&key("app")), vec!["a-app", "app"]);
        assert_eq!(registry_txt_names(&key("*.apps")), vec!["a-approutingwildcard.apps", "*.apps"]);
    }

    #[test]
    fn throttling_is_retried_after_the_servers_delay_and_a_forbidden_zone_waits() {
        let mut throttled = AzureError::new("put record set", Kind::Throttled, "slow down");
        throttled.retry_after = Some(Duration::from_secs(30));
        let e = ApplyError::from(throttled);
        assert!(e.retryable && e.reason == reason::THROTTLED);
        let backoff = crate::backoff::Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(300),
            wait_for_input: Duration::from_secs(60),
        };
        assert!(backoff.delay(e.retryable, e.retry_after, 1) >= Duration::from_secs(30));
        let forbidden = ApplyError::from(AzureError::new("put record set", Kind::Forbidden, "no role"));
        assert_eq!(
            (forbidden.retryable, forbidden.reason, backoff.delay(forbidden.retryable, None, 3)),
            (false, reason::ZONE_FORBIDDEN, Duration::from_secs(60))
        );
    }
}
