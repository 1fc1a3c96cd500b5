//! Prometheus metrics, served at `/metrics` on the admin endpoint. Labels are bounded: per-listener
//! series exist only while the listener is managed (they are removed with it), reasons and
//! operations come from closed enums, and nothing secret is ever a label or a value.

use crate::lock;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use routewarden_store::CertBindingKey;
use std::collections::HashMap;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `certificate`, `secret_versions`, `secret`.
    pub operation: String,
    /// `ok` or an error kind (`Forbidden`, `Throttled`, ...).
    pub outcome: String,
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
    pub keyvault_requests: Family<RequestLabels, Counter>,
    pub queue_depth: Gauge,
    pub dns_records: Family<ZoneStateLabels, Gauge>,
    pub dns_zone_record_sets: Family<ZoneLabels, Gauge>,
    pub dns_zone_record_set_limit: Family<ZoneLabels, Gauge>,
    pub dns_zone_accessible: Family<ZoneLabels, Gauge>,
    pub dns_zone_last_verified: Family<ZoneLabels, Gauge>,
    pub dns_requests: Family<RequestLabels, Counter>,
    pub dns_sync_errors: Family<ReasonLabels, Counter>,
    pub dns_rate_limit_deferrals: Family<ZoneLabels, Counter>,
    pub dns_drift_repaired: Counter,
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
            keyvault_requests: Family::default(),
            queue_depth: Gauge::default(),
            dns_records: Family::default(),
            dns_zone_record_sets: Family::default(),
            dns_zone_record_set_limit: Family::default(),
            dns_zone_accessible: Family::default(),
            dns_zone_last_verified: Family::default(),
            dns_requests: Family::default(),
            dns_sync_errors: Family::default(),
            dns_rate_limit_deferrals: Family::default(),
            dns_drift_repaired: Counter::default(),
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
            "keyvault_requests",
            "Key Vault requests by operation and outcome",
            m.keyvault_requests.clone(),
        );
        registry.register("queue_depth", "Work items pending or in flight", m.queue_depth.clone());
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
        registry.register(
            "dns_requests",
            "Azure DNS requests by operation (put, delete, get, list) and outcome",
            m.dns_requests.clone(),
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
        Arc::new(Metrics { registry, ..m })
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn keyvault_request(&self, operation: &str, outcome: &str) {
        self.keyvault_requests
            .get_or_create(&RequestLabels { operation: operation.to_owned(), outcome: outcome.to_owned() })
            .inc();
    }

    pub fn dns_request(&self, operation: &str, outcome: &str) {
        self.dns_requests
            .get_or_create(&RequestLabels { operation: operation.to_owned(), outcome: outcome.to_owned() })
            .inc();
    }

    /// Drops every series of a listener that is no longer managed.
    pub fn forget_listener(&self, key: &CertBindingKey) {
        let labels = ListenerLabels::from(key);
        self.certificate_not_after.remove(&labels);
        self.certificate_not_before.remove(&labels);
        self.certificate_last_sync.remove(&labels);
        self.certificate_ready.remove(&labels);
        self.forget_info(key);
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
