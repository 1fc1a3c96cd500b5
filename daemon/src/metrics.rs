//! Prometheus metrics, served at `/metrics` on the admin endpoint. Labels are bounded: per-listener
//! series exist only while the listener is managed (they are removed with it), reasons and
//! operations come from closed enums, and nothing secret is ever a label or a value.

use crate::lock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use routewarden_store::CertBindingKey;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabels {
    pub namespace: String,
    pub gateway: String,
    pub listener: String,
}

impl From<&CertBindingKey> for ListenerLabels {
    fn from(k: &CertBindingKey) -> Self {
        ListenerLabels { namespace: k.namespace.clone(), gateway: k.gateway.clone(), listener: k.listener.clone() }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateInfoLabels {
    pub namespace: String,
    pub gateway: String,
    pub listener: String,
    pub vault: String,
    pub certificate: String,
    pub version: String,
}

/// An IstioPluginCA (cluster-scoped, so its name alone; a handful per cluster).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CaLabels {
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AzureLabels {
    /// `keyvault`, `dns`, `entra`, `imds`.
    pub service: String,
    /// `certificate`, `secret_versions`, `secret`; `put`, `get`, `delete`, `list`; `token`.
    pub operation: String,
    /// `ok` or an error kind (`Forbidden`, `Throttled`, ...).
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AzureOpLabels {
    pub service: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// `reads`, `writes`, `deletes`.
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `arm_reads`, `arm_writes`, `arm_deletes`, `{public,private}_zone_{writes,lists}`.
    pub limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkLabels {
    /// `tls.sync`, `tls.remove`, `dns.apply`, ...
    pub kind: String,
    /// `pending`, `in_flight`, `parked`.
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The watched resource's plural (`gateways`, `httproutes`, ...).
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
}

/// The exemplar of a latency observation: the trace it was part of.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceLabels {
    pub trace_id: String,
}

/// Azure answers in milliseconds to tens of seconds: 5 ms … ~41 s.
fn latency_histogram() -> HistogramWithExemplars<TraceLabels> {
    HistogramWithExemplars::new(exponential_buckets(0.005, 2.0, 14))
}

/// Convergence spans a fast path (tens of ms) to rate-limit waits of minutes: 10 ms … ~5.5 min.
fn convergence_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 16))
}

fn state_label(state: routewarden_store::ItemState) -> &'static str {
    match state {
        routewarden_store::ItemState::Pending => "pending",
        routewarden_store::ItemState::InFlight => "in_flight",
        routewarden_store::ItemState::Done => "done",
        routewarden_store::ItemState::Parked => "parked",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    /// The zone's DNS name.
    pub zone: String,
    /// `public` or `private`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneStateLabels {
    pub zone: String,
    pub kind: String,
    /// `desired`, `applied`, `stale`, `foreign_blocking`, `conflicting`.
    pub state: String,
}

impl ZoneLabels {
    /// The same zone, one state of `routewarden_dns_records`.
    pub fn with_state(&self, state: &str) -> ZoneStateLabels {
        ZoneStateLabels { zone: self.zone.clone(), kind: self.kind.clone(), state: state.to_owned() }
    }
}

/// Every metric routewarden exports.
pub struct Metrics {
    registry: Registry,
    pub certificate_not_after: Family<ListenerLabels, Gauge>,
    pub certificate_not_before: Family<ListenerLabels, Gauge>,
    pub certificate_last_sync: Family<ListenerLabels, Gauge>,
    pub certificate_ready: Family<ListenerLabels, Gauge>,
    pub certificate_info: Family<CertificateInfoLabels, Gauge>,
    pub certificate_sync_errors: Family<ReasonLabels, Counter>,
    pub certificate_syncs: Counter,
    pub certificate_rotations: Counter,
    pub certificate_last_rotation: Family<ListenerLabels, Gauge>,
    pub certificate_newer_version: Family<ListenerLabels, Gauge>,
    pub queue_depth: Gauge,
    pub work_items: Family<WorkLabels, Gauge>,
    pub work_oldest_age: Family<WorkLabels, Gauge<f64, AtomicU64>>,
    pub work_convergence: Family<KindLabels, Histogram, fn() -> Histogram>,
    pub azure_requests: Family<AzureLabels, Counter>,
    pub azure_duration:
        Family<AzureOpLabels, HistogramWithExemplars<TraceLabels>, fn() -> HistogramWithExemplars<TraceLabels>>,
    pub azure_throttled: Family<AzureOpLabels, Counter>,
    pub azure_retry_after: Family<ServiceLabels, Counter<f64, AtomicU64>>,
    pub azure_rate_limit: Family<LimitLabels, Gauge<f64, AtomicU64>>,
    pub arm_remaining: Family<OperationLabels, Gauge>,
    pub watch_restarts: Family<ResourceLabels, Counter>,
    pub journal_size: Gauge,
    pub journal_commit: HistogramWithExemplars<TraceLabels>,
    pub leader: Gauge,
    pub ready: Gauge,
    pub build_info: Family<BuildLabels, Gauge>,
    pub dns_records: Family<ZoneStateLabels, Gauge>,
    pub dns_zone_record_sets: Family<ZoneLabels, Gauge>,
    pub dns_zone_record_set_limit: Family<ZoneLabels, Gauge>,
    pub dns_zone_accessible: Family<ZoneLabels, Gauge>,
    pub dns_zone_last_verified: Family<ZoneLabels, Gauge>,
    pub dns_sync_errors: Family<ReasonLabels, Counter>,
    pub dns_rate_limit_deferrals: Family<ZoneLabels, Counter>,
    pub dns_drift_repaired: Counter,
    pub ca_not_after: Family<CaLabels, Gauge>,
    pub ca_trust_bundle_roots: Family<CaLabels, Gauge>,
    pub ca_last_sync: Family<CaLabels, Gauge>,
    pub ca_sync_failures: Family<ReasonLabels, Counter>,
    pub ca_istiod_restarts: Family<CaLabels, Counter>,
    info_index: Mutex<HashMap<CertBindingKey, CertificateInfoLabels>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("routewarden");
        let m = Metrics {
            certificate_not_after: Family::default(),
            certificate_not_before: Family::default(),
            certificate_last_sync: Family::default(),
            certificate_ready: Family::default(),
            certificate_info: Family::default(),
            certificate_sync_errors: Family::default(),
            certificate_syncs: Counter::default(),
            certificate_rotations: Counter::default(),
            certificate_last_rotation: Family::default(),
            certificate_newer_version: Family::default(),
            queue_depth: Gauge::default(),
            work_items: Family::default(),
            work_oldest_age: Family::default(),
            work_convergence: Family::new_with_constructor(convergence_histogram),
            azure_requests: Family::default(),
            azure_duration: Family::new_with_constructor(latency_histogram),
            azure_throttled: Family::default(),
            azure_retry_after: Family::default(),
            azure_rate_limit: Family::default(),
            arm_remaining: Family::default(),
            watch_restarts: Family::default(),
            journal_size: Gauge::default(),
            journal_commit: HistogramWithExemplars::new(exponential_buckets(0.0005, 2.0, 14)),
            leader: Gauge::default(),
            ready: Gauge::default(),
            build_info: Family::default(),
            dns_records: Family::default(),
            dns_zone_record_sets: Family::default(),
            dns_zone_record_set_limit: Family::default(),
            dns_zone_accessible: Family::default(),
            dns_zone_last_verified: Family::default(),
            dns_sync_errors: Family::default(),
            dns_rate_limit_deferrals: Family::default(),
            dns_drift_repaired: Counter::default(),
            ca_not_after: Family::default(),
            ca_trust_bundle_roots: Family::default(),
            ca_last_sync: Family::default(),
            ca_sync_failures: Family::default(),
            ca_istiod_restarts: Family::default(),
            info_index: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register(
            "certificate_not_after_timestamp_seconds",
            "notAfter of the certificate a listener's Secret serves",
            m.certificate_not_after.clone(),
        );
        registry.register(
            "certificate_not_before_timestamp_seconds",
            "notBefore of the certificate a listener's Secret serves",
            m.certificate_not_before.clone(),
        );
        registry.register(
            "certificate_last_sync_timestamp_seconds",
            "When a listener's Secret was last confirmed current",
            m.certificate_last_sync.clone(),
        );
        registry.register(
            "certificate_ready",
            "1 when a listener's certificate is synced and valid, 0 when it has a problem",
            m.certificate_ready.clone(),
        );
        registry.register(
            "certificate_info",
            "The Key Vault certificate and version a listener serves (value 1)",
            m.certificate_info.clone(),
        );
        registry.register(
            "certificate_sync_errors",
            "Failed certificate syncs by reason",
            m.certificate_sync_errors.clone(),
        );
        registry.register("certificate_syncs", "Listener Secrets written", m.certificate_syncs.clone());
        registry.register(
            "certificate_rotations",
            "Listener Secrets moved to a new Key Vault version",
            m.certificate_rotations.clone(),
        );
        registry.register(
            "certificate_last_rotation_timestamp_seconds",
            "When a listener's Secret last moved to a new Key Vault version (absent until one is seen by this process)",
            m.certificate_last_rotation.clone(),
        );
        registry.register(
            "certificate_newer_version_available",
            "1 when Key Vault has a newer enabled version than the one a listener serves (a rotation pending or refused)",
            m.certificate_newer_version.clone(),
        );
        registry.register("queue_depth", "Work items pending or in flight", m.queue_depth.clone());
        registry.register(
            "work_items",
            "Unfinished work items by kind and state (pending, in_flight, parked)",
            m.work_items.clone(),
        );
        registry.register(
            "work_oldest_item_age_seconds",
            "Age of the oldest unfinished work item by kind and state: since it was queued, or parked",
            m.work_oldest_age.clone(),
        );
        registry.register(
            "work_convergence_seconds",
            "From a work item being queued to it being done: a desired record applied in Azure, a listener's Secret written",
            m.work_convergence.clone(),
        );
        registry.register(
            "azure_requests",
            "Azure requests by service (keyvault, dns, entra, imds), operation and outcome (ok or the failure kind)",
            m.azure_requests.clone(),
        );
        registry.register(
            "azure_request_duration_seconds",
            "Time until Azure answered, by service and operation; exemplars carry the trace id",
            m.azure_duration.clone(),
        );
        registry.register("azure_throttled", "Azure answers 429 Too Many Requests", m.azure_throttled.clone());
        registry.register(
            "azure_retry_after_seconds",
            "Seconds of Retry-After Azure asked routewarden to wait",
            m.azure_retry_after.clone(),
        );
        registry.register(
            "azure_rate_limit",
            "Configured client-side limit in requests per second (zone limits apply per zone)",
            m.azure_rate_limit.clone(),
        );
        registry.register(
            "arm_ratelimit_remaining",
            "ARM's last x-ms-ratelimit-remaining-subscription-{reads,writes,deletes} header",
            m.arm_remaining.clone(),
        );
        registry.register(
            "watch_restarts",
            "Kubernetes watches that failed and were re-established, by resource",
            m.watch_restarts.clone(),
        );
        registry.register("journal_size_bytes", "Size of the journal's files on disk", m.journal_size.clone());
        registry.register(
            "journal_commit_duration_seconds",
            "Time for a journal transaction to become durable (fsync included)",
            m.journal_commit.clone(),
        );
        registry.register("leader", "1 on the replica holding the leader Lease, 0 on followers", m.leader.clone());
        registry.register(
            "ready",
            "1 when /readyz answers OK: caches synced, journal open, leadership known",
            m.ready.clone(),
        );
        registry.register("build_info", "routewarden's version and source revision (value 1)", m.build_info.clone());
        // Every failure reason starts at 0: a dashboard's "errors by reason" and an alert's
        // increase() then read 0, not nothing, until the first failure.
        {
            use crate::tls::Reason as R;
            for r in [
                R::InvalidInput,
                R::ServiceAccountNotFound,
                R::ServiceAccountNotAnnotated,
                R::AuthenticationFailed,
                R::Forbidden,
                R::CertificateNotFound,
                R::VersionDisabled,
                R::ValidationFailed,
                R::SecretConflict,
                R::Unavailable,
            ] {
                let _ = m.certificate_sync_errors.get_or_create(&ReasonLabels { reason: r.as_str().to_owned() });
            }
            // A version that fails a check is counted under the check's name (the listener
            // condition's reason), and one that cannot be decoded under `Undecodable`.
            use routewarden_certs::Check as C;
            let checks = [
                C::KeyNotExportable,
                C::KeyMismatch,
                C::ChainBroken,
                C::NotYetValid,
                C::Expired,
                C::HostnameNotCovered,
            ];
            for reason in checks.into_iter().map(C::reason).chain(["Undecodable"]) {
                let _ = m.certificate_sync_errors.get_or_create(&ReasonLabels { reason: reason.to_owned() });
            }
            use crate::crd::conditions::reason as dns;
            for r in [
                dns::APPLYING,
                dns::THROTTLED,
                dns::ZONE_FORBIDDEN,
                dns::ZONE_NOT_FOUND,
                dns::IDENTITY_UNAVAILABLE,
                dns::CONFLICTS,
            ] {
                let _ = m.dns_sync_errors.get_or_create(&ReasonLabels { reason: r.to_owned() });
            }
        }
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                revision: option_env!("ROUTEWARDEN_REVISION").unwrap_or("unknown").to_owned(),
            })
            .set(1);
        registry.register(
            "dns_records",
            "Record sets by zone and state: desired, applied, stale (owned, no live source), foreign_blocking (a record set routewarden does not own holds a desired name), conflicting (claimed first by another DNS resource)",
            m.dns_records.clone(),
        );
        registry.register(
            "dns_zone_record_sets",
            "Record sets of all owners in the zone at its last verification",
            m.dns_zone_record_sets.clone(),
        );
        registry.register(
            "dns_zone_record_set_limit",
            "Azure's record-set limit for the zone (10,000 public, 25,000 private)",
            m.dns_zone_record_set_limit.clone(),
        );
        registry.register(
            "dns_zone_accessible",
            "1 when the zone's last verification could list it, 0 when Azure refused",
            m.dns_zone_accessible.clone(),
        );
        registry.register(
            "dns_zone_last_verified_timestamp_seconds",
            "When the zone was last listed and compared with the journal",
            m.dns_zone_last_verified.clone(),
        );
        registry.register("dns_sync_errors", "Failed record-set writes by reason", m.dns_sync_errors.clone());
        registry.register(
            "dns_rate_limit_deferrals",
            "Record-set writes postponed because the zone's client-side token bucket was spent",
            m.dns_rate_limit_deferrals.clone(),
        );
        registry.register(
            "dns_drift_repaired",
            "Owned record sets found changed or missing in Azure and queued for repair",
            m.dns_drift_repaired.clone(),
        );
        registry.register(
            "ca_not_after_timestamp_seconds",
            "notAfter of the signing certificate (ca-cert) an IstioPluginCA's cacerts holds",
            m.ca_not_after.clone(),
        );
        registry.register(
            "ca_trust_bundle_roots",
            "Roots in the trust bundle (root-cert) of an IstioPluginCA's cacerts",
            m.ca_trust_bundle_roots.clone(),
        );
        registry.register(
            "ca_last_sync_timestamp_seconds",
            "When an IstioPluginCA's cacerts was last confirmed current with Key Vault",
            m.ca_last_sync.clone(),
        );
        registry.register(
            "ca_sync_failures",
            "Istio CA sync passes that did not leave cacerts current, by reason",
            m.ca_sync_failures.clone(),
        );
        registry.register(
            "ca_istiod_restarts",
            "istiod restarts (rollout restarts of its Deployments) for a changed trust bundle",
            m.ca_istiod_restarts.clone(),
        );
        Arc::new(Metrics { registry, ..m })
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Publishes the configured client-side limits, in requests per second.
    pub fn set_rate_limits(&self, limits: &crate::dns::limits::RateLimits) {
        for (name, rate) in limits.named() {
            self.azure_rate_limit.get_or_create(&LimitLabels { limit: name.to_owned() }).set(rate.per_second());
        }
    }

    /// Work item counts and ages from the journal's queue statistics; series of kinds and states
    /// that emptied are dropped.
    pub fn set_queue(&self, stats: &[routewarden_store::QueueStat], now: routewarden_store::Time) {
        self.work_items.clear();
        self.work_oldest_age.clear();
        // The known kinds are always there, at 0 when empty: "nothing parked" is a sample, not an
        // absent series, for dashboards and alerts alike.
        for kind in [crate::tls::KIND_SYNC, crate::tls::KIND_REMOVE, crate::dns::KIND_APPLY] {
            for state in ["pending", "in_flight", "parked"] {
                let labels = WorkLabels { kind: kind.to_owned(), state: state.to_owned() };
                self.work_items.get_or_create(&labels).set(0);
                self.work_oldest_age.get_or_create(&labels).set(0.0);
            }
        }
        for stat in stats {
            let labels = WorkLabels { kind: stat.kind.clone(), state: state_label(stat.state).to_owned() };
            self.work_items.get_or_create(&labels).set(i64::try_from(stat.count).unwrap_or(i64::MAX));
            self.work_oldest_age.get_or_create(&labels).set(stat.oldest.age(now).as_secs_f64());
        }
    }

    /// Drops every series of a listener that is no longer managed.
    pub fn forget_listener(&self, key: &CertBindingKey) {
        let labels = ListenerLabels::from(key);
        self.certificate_not_after.remove(&labels);
        self.certificate_not_before.remove(&labels);
        self.certificate_last_sync.remove(&labels);
        self.certificate_ready.remove(&labels);
        self.certificate_last_rotation.remove(&labels);
        self.certificate_newer_version.remove(&labels);
        self.forget_info(key);
    }

    /// Drops an IstioPluginCA's series (it was deleted).
    pub fn forget_ca(&self, name: &str) {
        let labels = CaLabels { name: name.to_owned() };
        self.ca_not_after.remove(&labels);
        self.ca_trust_bundle_roots.remove(&labels);
        self.ca_last_sync.remove(&labels);
        self.ca_istiod_restarts.remove(&labels);
    }

    /// Points a listener's info series at `vault/certificate@version`, dropping its previous one.
    pub fn set_info(&self, key: &CertBindingKey, vault: &str, certificate: &str, version: &str) {
        let labels = CertificateInfoLabels {
            namespace: key.namespace.clone(),
            gateway: key.gateway.clone(),
            listener: key.listener.clone(),
            vault: vault.to_owned(),
            certificate: certificate.to_owned(),
            version: version.to_owned(),
        };
        let previous = lock(&self.info_index).insert(key.clone(), labels.clone());
        if let Some(previous) = previous.filter(|p| p != &labels) {
            self.certificate_info.remove(&previous);
        }
        self.certificate_info.get_or_create(&labels).set(1);
    }

    fn forget_info(&self, key: &CertBindingKey) {
        // Family cannot be searched by a partial label set, so the current set is kept aside.
        if let Some(previous) = lock(&self.info_index).remove(key) {
            self.certificate_info.remove(&previous);
        }
    }
}

/// The trace id of the current span, when it is part of a sampled OpenTelemetry trace.
fn current_trace() -> Option<TraceLabels> {
    crate::telemetry::current_trace_id().map(|trace_id| TraceLabels { trace_id })
}

impl routewarden_azure::Observer for Metrics {
    fn call(&self, call: &routewarden_azure::Call) {
        let service = call.service.as_str().to_owned();
        let operation = call.operation.to_owned();
        self.azure_requests
            .get_or_create(&AzureLabels {
                service: service.clone(),
                operation: operation.clone(),
                outcome: call.outcome.to_owned(),
            })
            .inc();
        let op = AzureOpLabels { service: service.clone(), operation };
        self.azure_duration.get_or_create(&op).observe(call.duration.as_secs_f64(), current_trace(), None);
        // Created at 0 on the first call, so "no 429s" is a sample rather than a missing series.
        let throttled = self.azure_throttled.get_or_create(&op);
        if call.outcome == routewarden_azure::Kind::Throttled.as_str() {
            throttled.inc();
        }
        let waited = self.azure_retry_after.get_or_create(&ServiceLabels { service });
        if let Some(wait) = call.retry_after {
            waited.inc_by(wait.as_secs_f64());
        }
        if let Some((class, remaining)) = call.remaining {
            self.arm_remaining
                .get_or_create(&OperationLabels { operation: class.to_owned() })
                .set(i64::try_from(remaining).unwrap_or(i64::MAX));
        }
    }
}

impl routewarden_store::Observer for Metrics {
    fn committed(&self, took: std::time::Duration) {
        self.journal_commit.observe(took.as_secs_f64(), current_trace(), None);
    }

    fn converged(&self, kind: &str, took: std::time::Duration) {
        self.work_convergence.get_or_create(&KindLabels { kind: kind.to_owned() }).observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_azure_call_is_counted_timed_and_its_throttling_and_headers_kept() {
        let m = Metrics::new();
        let call = routewarden_azure::Call {
            service: routewarden_azure::Service::Dns,
            operation: "put",
            outcome: "Throttled",
            duration: std::time::Duration::from_millis(30),
            retry_after: Some(std::time::Duration::from_secs(7)),
            remaining: Some(("writes", 42)),
        };
        routewarden_azure::Observer::call(&*m, &call);
        let text = m.encode();
        for line in [
            r#"routewarden_azure_requests_total{service="dns",operation="put",outcome="Throttled"} 1"#,
            r#"routewarden_azure_throttled_total{service="dns",operation="put"} 1"#,
            r#"routewarden_azure_retry_after_seconds_total{service="dns"} 7.0"#,
            r#"routewarden_arm_ratelimit_remaining{operation="writes"} 42"#,
            r#"routewarden_azure_request_duration_seconds_count{service="dns",operation="put"} 1"#,
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn queue_series_follow_the_journal_known_kinds_stay_at_zero_and_others_go() {
        use routewarden_store::{ItemState, QueueStat, Time};
        let m = Metrics::new();
        let now = Time(100_000);
        let stat =
            |kind: &str, state, count, oldest| QueueStat { kind: kind.into(), state, count, oldest: Time(oldest) };
        m.set_queue(
            &[
                stat("dns.apply", ItemState::Pending, 3, 40_000),
                stat("tls.sync", ItemState::Parked, 1, 90_000),
                stat("legacy.kind", ItemState::Parked, 2, 10_000),
            ],
            now,
        );
        let text = m.encode();
        assert!(text.contains(r#"routewarden_work_items{kind="dns.apply",state="pending"} 3"#), "{text}");
        assert!(
            text.contains(r#"routewarden_work_oldest_item_age_seconds{kind="dns.apply",state="pending"} 60.0"#),
            "{text}"
        );
        assert!(text.contains(r#"routewarden_work_items{kind="tls.sync",state="parked"} 1"#), "{text}");
        m.set_queue(&[stat("dns.apply", ItemState::Pending, 1, 99_000)], now);
        let text = m.encode();
        assert!(text.contains(r#"routewarden_work_items{kind="tls.sync",state="parked"} 0"#), "{text}");
        assert!(text.contains(r#"routewarden_work_items{kind="tls.remove",state="in_flight"} 0"#), "{text}");
        assert!(!text.contains("legacy.kind"), "a kind with nothing left is dropped: {text}");
        assert!(text.contains(r#"routewarden_build_info{version=""#), "{text}");
        for reason in ["Expired", "KeyMismatch", "Undecodable", "Forbidden"] {
            let line = format!(r#"routewarden_certificate_sync_errors_total{{reason="{reason}"}} 0"#);
            assert!(text.contains(&line), "failure reasons start at 0: {line} missing");
        }
    }
}
