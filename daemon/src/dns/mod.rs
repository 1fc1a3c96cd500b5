//! Azure DNS records for the Gateways, HTTPRoutes, GRPCRoutes and Ingresses that
//! `ClusterExternalDNS` / `ExternalDNS` resources select — published by the daemon itself, one
//! conditional write per changed record set, without an external-dns Deployment per resource
//! and without listing zones. The pieces:
//!
//! - [`sources`]: reflectors over Gateways and routes (dynamic, parsed leniently), Ingresses,
//!   Namespaces and ServiceAccounts (metadata only) and the two DNS resource kinds; every event
//!   wakes the planner loop. Also the conversion of the caches into the planner's input.
//! - [`controller`]: the planner loop. It runs the pure planner (`routewarden_planner::dns::plan`)
//!   over the caches and, in one journal commit, brings the journal's desired table to the plan
//!   and queues a `dns.apply` item for each record set whose desired content differs from what
//!   the journal says was applied. The comparison is with the journal, not process memory, so a
//!   restart with nothing changed queues nothing.
//! - [`worker`]: a pool draining `dns.*` items: conditional PUT (`If-None-Match: *` to create,
//!   `If-Match` to update) or DELETE (`If-Match`), with ownership in the record set's metadata.
//!   A record set someone else owns is never overwritten: the item parks with a conflict.
//! - [`status`]: `status.conditions` and counts of each DNS resource, written only when they
//!   change.

pub mod controller;
pub mod finalizer;
pub mod limits;
pub mod sources;
pub mod status;
pub mod verify;
pub mod worker;

use crate::crd::conditions::reason;
use crate::crd::convert::{DnsConfig, DnsIdentity};
use routewarden_azure::{IdentityKey, Principal, RecordKind};
use routewarden_planner::dns::Plan;
use routewarden_store::{RecordSetKey, RecordType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Queue kinds; the DNS workers claim only kinds with [`KIND_PREFIX`].
pub const KIND_PREFIX: &str = "dns.";
/// Bring one record set to its desired state (create, update or delete).
pub const KIND_APPLY: &str = "dns.apply";
/// The payload of an item that deletes its record set.
pub const PAYLOAD_DELETE: &str = "delete";
/// Held by a DNS resource with `deletionPolicy: Delete` until its record sets are deleted.
pub const FINALIZER: &str = "routewarden.io/dns-records";

/// What happens to a record set whose source (Gateway, route, Ingress) is gone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Delete it (after the resource's hold-down while the source object still exists).
    #[default]
    Sync,
    /// Keep it; it is reported as stale.
    UpsertOnly,
}

/// Record-set metadata routewarden writes: who owns the record set. Azure DNS metadata rather
/// than sibling TXT records, so ownership costs no extra record sets or writes.
pub mod metadata {
    /// `<cluster id>/<DNS resource identity>`.
    pub const OWNER: &str = "routewarden-owner";
    /// The cluster id alone: any DNS resource of this cluster may take over the record set.
    pub const CLUSTER: &str = "routewarden-cluster";
}

/// The ServiceAccount annotations of workload identity.
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";

/// How the DNS controller behaves.
#[derive(Clone, Debug)]
pub struct DnsSettings {
    pub gateway_classes: Vec<String>,
    pub default_tenant: Option<String>,
    pub workers: usize,
    pub backoff: crate::backoff::Backoff,
    pub policy: Policy,
    /// How often each zone is listed and compared with the journal.
    pub verify_interval: std::time::Duration,
    /// external-dns TXT-registry owner id whose record sets may be adopted.
    pub adopt_txt_owner: Option<String>,
    pub limits: limits::RateLimits,
}

/// A zone's health at its last verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneHealth {
    /// Listed; the report is in the journal.
    Accessible,
    /// Azure refused or failed the list: bounded reason, message naming the zone.
    Inaccessible { reason: &'static str, message: String },
}

/// Why a resource's identity cannot be used (bounded reason, message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: &'static str,
    pub message: String,
}

/// The last failure of a record set's item, for status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Identity of the DNS resource that plans the record set.
    pub resource: String,
    pub reason: &'static str,
    pub message: String,
    /// A foreign record set holds the name: counted as a conflict.
    pub conflict: bool,
}

/// What the planner loop, the workers and the status writer share.
#[derive(Debug, Default)]
pub struct Shared {
    /// Valid DNS resources by identity.
    pub configs: HashMap<String, DnsConfig>,
    pub plan: Plan,
    pub planned: bool,
    pub failures: HashMap<RecordSetKey, Failure>,
    /// Zone id → health at its last verification (absent: not verified yet).
    pub zones: HashMap<String, ZoneHealth>,
}

pub type SharedState = Arc<Mutex<Shared>>;

pub use crate::lock;

pub fn record_kind(t: RecordType) -> RecordKind {
    match t {
        RecordType::A => RecordKind::A,
        RecordType::Aaaa => RecordKind::Aaaa,
        RecordType::Cname => RecordKind::Cname,
        RecordType::Txt => RecordKind::Txt,
    }
}

/// The queue key (`RecordSetKey`'s display, `<zone id>/<type>/<name>`) back into its parts.
pub fn parse_key(key: &str) -> Option<RecordSetKey> {
    let mut parts = key.rsplitn(3, '/');
    let name = parts.next()?.to_owned();
    let record_type = parts.next()?.parse().ok()?;
    let zone = parts.next()?.to_owned();
    Some(RecordSetKey { zone, name, record_type })
}

/// The `dns.apply` items in `state`, each with its record-set key.
pub fn apply_items(
    journal: &routewarden_store::Journal,
    state: routewarden_store::ItemState,
) -> routewarden_store::Result<Vec<(RecordSetKey, routewarden_store::WorkItem)>> {
    Ok(journal
        .work_items()?
        .into_iter()
        .filter(|i| i.kind == KIND_APPLY && i.state == state)
        .filter_map(|i| Some((parse_key(&i.key)?, i)))
        .collect())
}

/// The DNS resource identity in an owner id `<cluster id>/<identity>`.
pub fn resource_of(owner: &str) -> &str {
    owner.split_once('/').map_or(owner, |(_, identity)| identity)
}

/// The Azure identity a DNS resource writes with: its ServiceAccount's client id, exchanged
/// through the ServiceAccount's federated credential; or the daemon's managed identity with the
/// resource's client id, whose tokens come from the instance metadata service (nothing to look
/// up here: whether the node has that identity shows on the first token request).
pub fn identity_key(
    config: &DnsConfig,
    caches: &sources::Caches,
    default_tenant: Option<&str>,
) -> Result<Principal, Unavailable> {
    let (namespace, service_account) = match &config.identity {
        DnsIdentity::Workload { namespace, service_account } => (namespace, service_account),
        DnsIdentity::Managed { client_id } => return Ok(Principal::Managed { client_id: client_id.clone() }),
    };
    let Some(sa) = caches.service_account(namespace, service_account) else {
        return Err(Unavailable {
            reason: reason::IDENTITY_UNAVAILABLE,
            message: format!("ServiceAccount {namespace}/{service_account} does not exist"),
        });
    };
    let annotations = sa.metadata.annotations.clone().unwrap_or_default();
    let Some(client_id) = annotations.get(CLIENT_ID_ANNOTATION).filter(|c| !c.is_empty()) else {
        return Err(Unavailable {
            reason: reason::IDENTITY_UNAVAILABLE,
            message: format!("ServiceAccount {namespace}/{service_account} has no {CLIENT_ID_ANNOTATION} annotation"),
        });
    };
    let tenant = config
        .tenant_id
        .clone()
        .or_else(|| annotations.get(TENANT_ID_ANNOTATION).cloned())
        .or_else(|| default_tenant.map(str::to_owned));
    let Some(tenant_id) = tenant else {
        return Err(Unavailable {
            reason: reason::IDENTITY_UNAVAILABLE,
            message: "no tenant: set spec.tenantId or start routewarden with --tenant-id".into(),
        });
    };
    Ok(Principal::Workload(IdentityKey {
        tenant_id,
        client_id: client_id.clone(),
        namespace: namespace.clone(),
        service_account: service_account.clone(),
    }))
}

/// Starts the DNS controller: watches, the planner loop, the workers, the zone verifier and the
/// status writer. Every task ends when `stop` turns true.
pub fn start(
    ctx: &crate::Context,
    settings: DnsSettings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use crate::leader::while_leader;
    let crate::Context { client, journal, azure, metrics, leadership, health } = ctx.clone();
    let leadership = &leadership;
    let changed = crate::watches::Changed::new(metrics.clone());
    let caches = sources::start(client.clone(), changed.clone(), stop.clone());
    let cluster_id = journal.cluster_id().ok().flatten().unwrap_or_default();
    let n = settings.workers.max(1);
    let events = status::Events::new(client.clone());
    let workers = Arc::new(worker::Workers {
        client,
        caches,
        azure,
        journal,
        cluster_id,
        shared: SharedState::default(),
        limits: Arc::new(limits::Limits::new(settings.limits)),
        settings: Arc::new(settings),
        wake: Arc::new(tokio::sync::Notify::new()),
        reported: Arc::new(tokio::sync::Notify::new()),
        verify: Arc::new(tokio::sync::Notify::new()),
        replan: changed.notifier(),
        metrics,
        leadership: leadership.clone(),
        reconciled: Arc::default(),
    });
    let shared = workers.shared.clone();
    health.require("DNS caches synced and planned", move || lock(&shared).planned);
    // The planner runs on every replica (warm caches, a current journal); what writes runs on
    // the leader only.
    let mut tasks = vec![tokio::spawn(controller::run(workers.clone(), changed, stop.clone()))];
    let w = workers.clone();
    tasks.push(crate::leader::pool_while_leader("DNS workers", n, leadership, &stop, move |stop| w.clone().run(stop)));
    let w = workers.clone();
    tasks.push(while_leader("DNS verifier", leadership, &stop, move |stop| verify::run(w.clone(), stop)));
    tasks.push(while_leader("DNS status", leadership, &stop, move |stop| {
        status::run(workers.clone(), events.clone(), stop)
    }));
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_round_trip_through_their_display() {
        let key = RecordSetKey {
            zone: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com".into(),
            name: "a.b".into(),
            record_type: RecordType::Aaaa,
        };
        assert_eq!(parse_key(&key.to_string()), Some(key));
        assert_eq!(parse_key("nonsense"), None);
    }

    #[test]
    fn the_resource_of_an_owner_is_what_follows_the_cluster_id() {
        assert_eq!(resource_of("c1/externaldns/app-a/demo"), "externaldns/app-a/demo");
        assert_eq!(resource_of("/clusterexternaldns/demo"), "clusterexternaldns/demo");
    }
}
