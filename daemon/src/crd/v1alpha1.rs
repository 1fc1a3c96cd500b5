//! `approuting.kubernetes.azure.com/v1alpha1`: the `ClusterExternalDNS` (cluster-scoped,
//! `cedns`) and `ExternalDNS` (namespaced, `edns`) custom resources.
//!
//! The spec is the AKS app-routing operator's interface, field for field: the same JSON names,
//! defaults, OpenAPI validation and CEL rules, so the manifests written for the operator apply
//! unchanged. The additions (`ttl`, `deletionPolicy`, `holdDownSeconds`) are optional and
//! defaulted, so no existing manifest has to mention them. The status is ours: conditions
//! ([`super::conditions`]), record counts, and a bounded sample of what needs attention.
//!
//! `ExternalDnsSpec` is the shared part; `ClusterExternalDnsSpec` flattens it and adds
//! `resourceNamespace`, so the two kinds cannot drift apart. The schema attributes here are the
//! server-side half of validation; [`super::convert`] re-checks every one of them in Rust.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "approuting.kubernetes.azure.com";
pub const VERSION: &str = "v1alpha1";

/// Where a ClusterExternalDNS's workload-identity ServiceAccount lives when not said otherwise.
pub const DEFAULT_RESOURCE_NAMESPACE: &str = "app-routing-system";
pub const DEFAULT_TTL_SECONDS: u32 = 300;
/// Azure DNS stores TTLs as a signed 32-bit number.
pub const MAX_TTL_SECONDS: u32 = 2_147_483_647;
pub const DEFAULT_HOLD_DOWN_SECONDS: u32 = 300;
/// A day: longer than any Gateway address flap worth riding out.
pub const MAX_HOLD_DOWN_SECONDS: u32 = 86_400;
pub const MIN_ZONES: usize = 1;
pub const MAX_ZONES: usize = 7;
pub const MIN_RESOURCE_TYPES: usize = 1;
pub const MAX_RESOURCE_TYPES: usize = 2;
pub const MAX_NAME_LENGTH: usize = 253;
/// Entries in `status.samples`.
pub const MAX_SAMPLES: usize = 10;

/// `resourceName`, `resourceNamespace`, `identity.serviceAccount` (as the anchor has it: at
/// least two characters, since first and last are matched separately).
pub const NAME_PATTERN: &str = r"^[a-z0-9][-a-z0-9\.]*[a-z0-9]$";
/// `tenantId`, `identity.clientID`. Unanchored like the anchor's; together with `format: uuid`
/// it admits exactly the lower-case hyphenated form.
pub const UUID_PATTERN: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/// `filters.gatewayLabels`, `filters.routeAndIngressLabels`: one `key=value`.
pub const LABEL_FILTER_PATTERN: &str = "^[^=]+=[^=]+$";

/// CEL rules on `spec.dnsZoneResourceIDs`. A zone id is
/// `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/<type>/<zone>`, so
/// `split('/')` puts the subscription at 2, the resource group at 4 and the zone type at 7.
/// Comparisons are exact (case-sensitive), as the anchor's are.
pub const RULE_SAME_SUBSCRIPTION: &str = "self.all(id, id.split('/')[2] == self[0].split('/')[2])";
pub const RULE_SAME_RESOURCE_GROUP: &str = "self.all(id, id.split('/')[4] == self[0].split('/')[4])";
pub const RULE_SAME_ZONE_TYPE: &str = "self.all(id, id.split('/')[7] == self[0].split('/')[7])";
/// CEL rule on `spec.resourceTypes`. Unanchored and case-insensitive like the anchor's, so the
/// server admits what the anchor admits; [`super::convert`] then insists on exactly `gateway`
/// or `ingress` (any case) instead of silently ignoring other entries.
pub const RULE_RESOURCE_TYPES: &str = "self.all(t, t.matches('(?i)(gateway|ingress)'))";
/// CEL rules on `spec.identity`. `has(self.type)` guards servers that skip defaulting.
pub const RULE_WORKLOAD_NEEDS_SERVICE_ACCOUNT: &str =
    "(has(self.type) && self.type == 'managedIdentity') || (has(self.serviceAccount) && self.serviceAccount != '')";
pub const RULE_MANAGED_NEEDS_CLIENT_ID: &str =
    "!has(self.type) || self.type != 'managedIdentity' || (has(self.clientID) && self.clientID != '')";

pub const MSG_SAME_SUBSCRIPTION: &str = "all zones must be in the same subscription";
pub const MSG_SAME_RESOURCE_GROUP: &str = "all zones must be in the same resource group";
pub const MSG_SAME_ZONE_TYPE: &str = "all zones must be of one type: all dnszones or all privateDnsZones";
pub const MSG_RESOURCE_TYPES: &str = "each resource type must be 'gateway' or 'ingress'";
pub const MSG_WORKLOAD_NEEDS_SERVICE_ACCOUNT: &str = "serviceAccount is required when type is workloadIdentity";
pub const MSG_MANAGED_NEEDS_CLIENT_ID: &str = "clientID is required when type is managedIdentity";

/// Desired state: the zones to publish into, what to publish, and the identity to do it with.
// Each printcolumn(...) repeats `type_ = ...`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "approuting.kubernetes.azure.com",
    version = "v1alpha1",
    kind = "ExternalDNS",
    root = "ExternalDns",
    plural = "externaldnses",
    singular = "externaldns",
    shortname = "edns",
    namespaced,
    status = "DnsStatus",
    derive = "PartialEq",
    doc = "ExternalDNS publishes Azure DNS records for the Gateways, HTTPRoutes, GRPCRoutes and Ingresses of its own namespace.",
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        priority = 1
    ),
    printcolumn(name = "Zones", type_ = "integer", json_path = ".status.zones"),
    printcolumn(name = "Records", type_ = "integer", json_path = ".status.recordsApplied"),
    printcolumn(name = "Stale", type_ = "integer", json_path = ".status.stale"),
    printcolumn(name = "Conflicts", type_ = "integer", json_path = ".status.conflicts", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalDnsSpec {
    /// Name for the resources made on behalf of this object. Kept for compatibility with the
    /// AKS app-routing operator; routewarden runs no per-resource Deployment.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub resource_name: String,

    /// Microsoft Entra tenant of the DNS zones; the daemon's own tenant when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = UUID_PATTERN), extend("format" = "uuid"))]
    pub tenant_id: Option<String>,

    /// ARM resource ids of 1 to 7 Azure DNS zones (public `dnszones` or private
    /// `privateDnsZones`), all in one subscription and resource group and all of one type. Each
    /// hostname goes to the zone with the longest matching name.
    #[serde(rename = "dnsZoneResourceIDs")]
    #[schemars(length(min = 1, max = 7))]
    #[x_kube(
        merge_strategy = ListMerge::Set,
        validation = Rule::new(RULE_SAME_SUBSCRIPTION).message(MSG_SAME_SUBSCRIPTION),
        validation = Rule::new(RULE_SAME_RESOURCE_GROUP).message(MSG_SAME_RESOURCE_GROUP),
        validation = Rule::new(RULE_SAME_ZONE_TYPE).message(MSG_SAME_ZONE_TYPE)
    )]
    pub dns_zone_resource_ids: Vec<String>,

    /// What to publish: `gateway` (Gateway listener hostnames and the HTTPRoutes and GRPCRoutes
    /// attached to them) and/or `ingress` (Ingress hosts).
    #[schemars(length(min = 1, max = 2))]
    #[x_kube(merge_strategy = ListMerge::Set, validation = Rule::new(RULE_RESOURCE_TYPES).message(MSG_RESOURCE_TYPES))]
    pub resource_types: Vec<String>,

    /// The identity used for Azure DNS.
    pub identity: Identity,

    /// Optional label filters narrowing what is published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,

    /// TTL in seconds of the record sets, unless a route or Ingress carries the external-dns
    /// TTL annotation. routewarden addition.
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 1, max = MAX_TTL_SECONDS), extend("format" = "int32"))]
    pub ttl: u32,

    /// What happens to this object's record sets when it is deleted: `Retain` (the anchor's
    /// behaviour; they are reported as stale) or `Delete` (removed before the object goes).
    /// routewarden addition.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Seconds to wait before deleting a record set whose source merely lost its address or
    /// its Accepted condition (a flap), rather than being deleted. routewarden addition.
    #[serde(default = "default_hold_down")]
    #[schemars(range(min = 0, max = MAX_HOLD_DOWN_SECONDS), extend("format" = "int32"))]
    pub hold_down_seconds: u32,
}

/// Desired state: the zones to publish into, what to publish, and the identity to do it with.
#[allow(clippy::duplicated_attributes)] // printcolumn(...), as above
#[derive(CustomResource, JsonSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "approuting.kubernetes.azure.com",
    version = "v1alpha1",
    kind = "ClusterExternalDNS",
    root = "ClusterExternalDns",
    plural = "clusterexternaldnses",
    singular = "clusterexternaldns",
    shortname = "cedns",
    status = "DnsStatus",
    derive = "PartialEq",
    doc = "ClusterExternalDNS publishes Azure DNS records for the Gateways, HTTPRoutes, GRPCRoutes and Ingresses of every namespace.",
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].reason"#,
        priority = 1
    ),
    printcolumn(name = "Zones", type_ = "integer", json_path = ".status.zones"),
    printcolumn(name = "Records", type_ = "integer", json_path = ".status.recordsApplied"),
    printcolumn(name = "Stale", type_ = "integer", json_path = ".status.stale"),
    printcolumn(name = "Conflicts", type_ = "integer", json_path = ".status.conflicts", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterExternalDnsSpec {
    #[serde(flatten)]
    pub dns: ExternalDnsSpec,

    /// Namespace of the workload-identity ServiceAccount (`identity.serviceAccount`).
    #[serde(default = "default_resource_namespace")]
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub resource_namespace: String,
}

/// How routewarden authenticates to Azure DNS for this resource.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(RULE_WORKLOAD_NEEDS_SERVICE_ACCOUNT)
        .message(MSG_WORKLOAD_NEEDS_SERVICE_ACCOUNT)
        .field_path(".serviceAccount")
        .reason(Reason::FieldValueRequired),
    validation = Rule::new(RULE_MANAGED_NEEDS_CLIENT_ID)
        .message(MSG_MANAGED_NEEDS_CLIENT_ID)
        .field_path(".clientID")
        .reason(Reason::FieldValueRequired)
)]
pub struct Identity {
    /// `workloadIdentity`: tokens for `serviceAccount` exchanged through its federated
    /// credential. `managedIdentity`: the node's or daemon's managed identity `clientID`.
    #[serde(default, rename = "type")]
    pub type_: IdentityType,

    /// ServiceAccount whose tokens are exchanged (workloadIdentity), in `resourceNamespace` for a
    /// ClusterExternalDNS and in the object's own namespace for an ExternalDNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub service_account: Option<String>,

    /// Client id of the managed identity (managedIdentity).
    #[serde(default, rename = "clientID", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = UUID_PATTERN), extend("format" = "uuid"))]
    pub client_id: Option<String>,
}

#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdentityType {
    #[default]
    #[serde(rename = "workloadIdentity")]
    WorkloadIdentity,
    #[serde(rename = "managedIdentity")]
    ManagedIdentity,
}

/// Label filters, each a single `key=value`.
#[derive(JsonSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    /// Only Gateways carrying this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = LABEL_FILTER_PATTERN))]
    pub gateway_labels: Option<String>,

    /// Only HTTPRoutes, GRPCRoutes and Ingresses carrying this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = LABEL_FILTER_PATTERN))]
    pub route_and_ingress_labels: Option<String>,
}

#[derive(JsonSchema, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeletionPolicy {
    /// Keep the record sets when the DNS resource is deleted; report them as stale.
    #[default]
    Retain,
    /// Delete the record sets (behind a finalizer) when the DNS resource is deleted.
    Delete,
}

/// Observed state, written by routewarden only when it changes.
#[derive(KubeSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsStatus {
    /// `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Ready`, `ZonesAccessible` and `Degraded`.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Zones in the spec.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub zones: u32,
    /// Zones the identity could read at the last verification.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub zones_accessible: u32,
    /// Record sets the planner wants for this resource.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub records_desired: u32,
    /// Of those, record sets whose applied content matches.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub records_applied: u32,
    /// Owned record sets with no live source (including those kept by `deletionPolicy: Retain`).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub stale: u32,
    /// Desired names held by a foreign record set or claimed first by another DNS resource.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub conflicts: u32,
    /// Hostnames in scope that fall under none of the zones.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub unzoned: u32,

    /// Up to 10 stale, conflicting or unzoned names, for `kubectl describe`; the full list is in
    /// `routewarden journal stale`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub samples: Vec<RecordSample>,
}

impl DnsStatus {
    /// Keeps a deterministic sample of at most [`MAX_SAMPLES`]: conflicts first, then stale, then
    /// unzoned names, each by hostname, so the same findings always give the same status.
    pub fn set_samples(&mut self, samples: impl IntoIterator<Item = RecordSample>) {
        let mut all: Vec<RecordSample> = samples.into_iter().collect();
        all.sort();
        all.dedup();
        all.truncate(MAX_SAMPLES);
        self.samples = all;
    }
}

#[derive(JsonSchema, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSample {
    pub problem: SampleProblem,
    /// Fully qualified name.
    pub hostname: String,
    /// Zone resource id, when the name is under one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// A, AAAA or CNAME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    /// Who holds the name (conflicts) or where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Declared in sample order: what blocks a desired name first.
#[derive(JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SampleProblem {
    Conflict,
    Stale,
    Unzoned,
}

fn default_ttl() -> u32 {
    DEFAULT_TTL_SECONDS
}

fn default_hold_down() -> u32 {
    DEFAULT_HOLD_DOWN_SECONDS
}

fn default_resource_namespace() -> String {
    DEFAULT_RESOURCE_NAMESPACE.to_owned()
}
