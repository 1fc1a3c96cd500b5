//! Checked conversion of a `ClusterExternalDNS` / `ExternalDNS` into the planner's
//! [`DnsResource`] and the settings the apply side needs ([`DnsConfig`]).
//!
//! The CRD schema already rejects bad objects, but only where it is ours, installed, and
//! evaluated: an API server may run with CEL off, or carry the anchor operator's CRD (same name,
//! no `ttl` or `holdDownSeconds` bounds). So every rule of the schema is checked again here, in a
//! fixed order (metadata, `resourceNamespace`, then the shared fields as the spec lists them),
//! and the first failure is returned as a [`SpecError`] naming the object, the field path
//! (`spec.dnsZoneResourceIDs[2]`) and the problem, with a bounded
//! [`SpecError::reason`] for the Ready condition, Events and metric labels.
//!
//! Parity with the schema is deliberate, including where the anchor's rules are strict (zone id
//! segments compare case-sensitively, as the CEL `==` does). Beyond the schema, a zone id must
//! parse as an Azure DNS zone id, and `resourceTypes` entries must be exactly `gateway` or
//! `ingress` in any case: the anchor's CEL admits anything that merely contains one of them and
//! its controller silently ignores the rest; here such an entry is an error the user can see.

use super::conditions::reason;
use super::v1alpha1::{
    ClusterExternalDns, DeletionPolicy, ExternalDns, ExternalDnsSpec, Filters, IdentityType, MAX_HOLD_DOWN_SECONDS,
    MAX_NAME_LENGTH, MAX_RESOURCE_TYPES, MAX_TTL_SECONDS, MAX_ZONES, MIN_RESOURCE_TYPES, MIN_ZONES,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use routewarden_planner::dns::{DnsResource, Scope};
use routewarden_planner::selector::LabelFilter;
use routewarden_planner::zone::Zone;
use std::time::Duration;

/// One valid DNS resource: the planner's view plus what the apply side needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsConfig {
    pub resource: DnsResource,
    /// `spec.resourceName`, kept for compatibility (nothing is deployed under it).
    pub resource_name: String,
    /// `spec.tenantId`; `None` means the daemon's own tenant.
    pub tenant_id: Option<String>,
    pub identity: DnsIdentity,
    pub deletion_policy: DeletionPolicy,
    pub hold_down: Duration,
    /// `metadata.generation`, for `observedGeneration`.
    pub generation: Option<i64>,
}

/// Whose token is used for the resource's zones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsIdentity {
    /// Tokens of this ServiceAccount, exchanged through its federated credential.
    Workload { namespace: String, service_account: String },
    /// The daemon's managed identity with this client id.
    Managed { client_id: String },
}

/// An invalid DNS resource: `<object>: <field path>: <problem>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {path}: {problem}")]
pub struct SpecError {
    /// `ClusterExternalDNS/<name>` or `ExternalDNS/<namespace>/<name>`.
    pub object: String,
    /// The offending field, e.g. `spec.identity.clientID` or `spec.dnsZoneResourceIDs[2]`.
    pub path: String,
    pub problem: SpecProblem,
}

impl SpecError {
    /// Bounded, CamelCase: the Ready condition's reason, an Event reason, a metric label.
    pub fn reason(&self) -> &'static str {
        self.problem.reason()
    }
}

/// What is wrong with the field. One variant per reason in [`reason`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecProblem {
    #[error("is required")]
    MissingField,
    #[error(
        "{value:?} must be 2 to 253 characters of a-z, 0-9, '-' and '.', starting and ending with a letter or digit"
    )]
    InvalidResourceName { value: String },
    #[error("{value:?} must be a namespace name (a-z, 0-9, '-' and '.', starting and ending with a letter or digit)")]
    InvalidResourceNamespace { value: String },
    #[error("{value:?} must be a lower-case UUID such as 123e4567-e89b-12d3-a456-426614174000")]
    InvalidTenantId { value: String },
    #[error("has {count} zones; 1 to 7 are allowed")]
    ZoneCountOutOfRange { count: usize },
    #[error("repeats entry [{first}]")]
    DuplicateEntry { first: usize },
    #[error("{value:?} is not an Azure DNS zone id: {why}")]
    InvalidZoneId { value: String, why: &'static str },
    #[error(
        "zones must share one subscription, resource group and type: subscription {value:?} differs from {expected:?} in entry [0]"
    )]
    MixedSubscriptions { value: String, expected: String },
    #[error(
        "zones must share one subscription, resource group and type: resource group {value:?} differs from {expected:?} in entry [0]"
    )]
    MixedResourceGroups { value: String, expected: String },
    #[error(
        "zones must share one subscription, resource group and type: type {value:?} differs from {expected:?} in entry [0]"
    )]
    MixedZoneTypes { value: String, expected: String },
    #[error("has {count} entries; 1 or 2 are allowed")]
    ResourceTypeCountOutOfRange { count: usize },
    #[error("{value:?} must be gateway or ingress")]
    UnknownResourceType { value: String },
    #[error("is required when identity.type is workloadIdentity")]
    MissingServiceAccount,
    #[error(
        "{value:?} must be a ServiceAccount name (a-z, 0-9, '-' and '.', starting and ending with a letter or digit)"
    )]
    InvalidServiceAccount { value: String },
    #[error("is required when identity.type is managedIdentity")]
    MissingClientId,
    #[error("{value:?} must be a lower-case UUID such as 123e4567-e89b-12d3-a456-426614174000")]
    InvalidClientId { value: String },
    #[error("{value:?} must be a single key=value")]
    InvalidLabelFilter { value: String },
    #[error("{value} must be 1 to 2147483647 seconds")]
    InvalidTtl { value: u32 },
    #[error("{value} must be 0 to 86400 seconds")]
    InvalidHoldDown { value: u32 },
}

impl SpecProblem {
    pub fn reason(&self) -> &'static str {
        match self {
            SpecProblem::MissingField => reason::MISSING_FIELD,
            SpecProblem::InvalidResourceName { .. } => reason::INVALID_RESOURCE_NAME,
            SpecProblem::InvalidResourceNamespace { .. } => reason::INVALID_RESOURCE_NAMESPACE,
            SpecProblem::InvalidTenantId { .. } => reason::INVALID_TENANT_ID,
            SpecProblem::ZoneCountOutOfRange { .. } => reason::ZONE_COUNT_OUT_OF_RANGE,
            SpecProblem::DuplicateEntry { .. } => reason::DUPLICATE_ENTRY,
            SpecProblem::InvalidZoneId { .. } => reason::INVALID_ZONE_ID,
            SpecProblem::MixedSubscriptions { .. } => reason::MIXED_SUBSCRIPTIONS,
            SpecProblem::MixedResourceGroups { .. } => reason::MIXED_RESOURCE_GROUPS,
            SpecProblem::MixedZoneTypes { .. } => reason::MIXED_ZONE_TYPES,
            SpecProblem::ResourceTypeCountOutOfRange { .. } => reason::RESOURCE_TYPE_COUNT_OUT_OF_RANGE,
            SpecProblem::UnknownResourceType { .. } => reason::UNKNOWN_RESOURCE_TYPE,
            SpecProblem::MissingServiceAccount => reason::MISSING_SERVICE_ACCOUNT,
            SpecProblem::InvalidServiceAccount { .. } => reason::INVALID_SERVICE_ACCOUNT,
            SpecProblem::MissingClientId => reason::MISSING_CLIENT_ID,
            SpecProblem::InvalidClientId { .. } => reason::INVALID_CLIENT_ID,
            SpecProblem::InvalidLabelFilter { .. } => reason::INVALID_LABEL_FILTER,
            SpecProblem::InvalidTtl { .. } => reason::INVALID_TTL,
            SpecProblem::InvalidHoldDown { .. } => reason::INVALID_HOLD_DOWN,
        }
    }
}

impl TryFrom<&ClusterExternalDns> for DnsConfig {
    type Error = SpecError;

    fn try_from(obj: &ClusterExternalDns) -> Result<Self, SpecError> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let check = Checker { object: format!("ClusterExternalDNS/{name}") };
        if name.is_empty() {
            return Err(check.fail("metadata.name", SpecProblem::MissingField));
        }
        let ns = &obj.spec.resource_namespace;
        if !is_dns_name(ns) {
            return Err(
                check.fail("spec.resourceNamespace", SpecProblem::InvalidResourceNamespace { value: ns.clone() })
            );
        }
        check.convert(&obj.metadata, Scope::Cluster, name, &obj.spec.dns, ns)
    }
}

impl TryFrom<&ExternalDns> for DnsConfig {
    type Error = SpecError;

    fn try_from(obj: &ExternalDns) -> Result<Self, SpecError> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let namespace = obj.metadata.namespace.clone().unwrap_or_default();
        let check = Checker { object: format!("ExternalDNS/{namespace}/{name}") };
        if name.is_empty() {
            return Err(check.fail("metadata.name", SpecProblem::MissingField));
        }
        if namespace.is_empty() {
            return Err(check.fail("metadata.namespace", SpecProblem::MissingField));
        }
        check.convert(&obj.metadata, Scope::Namespace(namespace.clone()), name, &obj.spec, &namespace)
    }
}

struct Checker {
    object: String,
}

impl Checker {
    fn fail(&self, path: impl Into<String>, problem: SpecProblem) -> SpecError {
        SpecError { object: self.object.clone(), path: path.into(), problem }
    }

    /// The checks shared by both kinds, in spec field order. `sa_namespace` is where a
    /// workload-identity ServiceAccount lives.
    fn convert(
        &self,
        meta: &ObjectMeta,
        scope: Scope,
        name: String,
        spec: &ExternalDnsSpec,
        sa_namespace: &str,
    ) -> Result<DnsConfig, SpecError> {
        if !is_dns_name(&spec.resource_name) {
            return Err(
                self.fail("spec.resourceName", SpecProblem::InvalidResourceName { value: spec.resource_name.clone() })
            );
        }
        if let Some(tenant) = &spec.tenant_id
            && !is_uuid(tenant)
        {
            return Err(self.fail("spec.tenantId", SpecProblem::InvalidTenantId { value: tenant.clone() }));
        }
        let zones = self.zones(&spec.dns_zone_resource_ids)?;
        let (gateways, ingresses) = self.resource_types(&spec.resource_types)?;
        let identity = self.identity(spec, sa_namespace)?;
        let (gateway_labels, route_labels) = self.filters(spec.filters.as_ref())?;
        if !(1..=MAX_TTL_SECONDS).contains(&spec.ttl) {
            return Err(self.fail("spec.ttl", SpecProblem::InvalidTtl { value: spec.ttl }));
        }
        if spec.hold_down_seconds > MAX_HOLD_DOWN_SECONDS {
            return Err(
                self.fail("spec.holdDownSeconds", SpecProblem::InvalidHoldDown { value: spec.hold_down_seconds })
            );
        }
        // Objects without a creation time (built in code, not read from the API server) sort
        // last in the planner's oldest-wins conflict order.
        let created = meta.creation_timestamp.as_ref().map_or(i64::MAX, |t| t.0.as_second());
        Ok(DnsConfig {
            resource: DnsResource {
                scope,
                name,
                created,
                zones,
                gateways,
                ingresses,
                gateway_labels,
                route_labels,
                ttl: spec.ttl,
            },
            resource_name: spec.resource_name.clone(),
            tenant_id: spec.tenant_id.clone(),
            identity,
            deletion_policy: spec.deletion_policy,
            hold_down: Duration::from_secs(u64::from(spec.hold_down_seconds)),
            generation: meta.generation,
        })
    }

    fn zones(&self, ids: &[String]) -> Result<Vec<Zone>, SpecError> {
        const FIELD: &str = "spec.dnsZoneResourceIDs";
        if !(MIN_ZONES..=MAX_ZONES).contains(&ids.len()) {
            return Err(self.fail(FIELD, SpecProblem::ZoneCountOutOfRange { count: ids.len() }));
        }
        let mut zones = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let path = format!("{FIELD}[{i}]");
            if let Some(first) = ids[..i].iter().position(|earlier| earlier == id) {
                return Err(self.fail(path, SpecProblem::DuplicateEntry { first }));
            }
            let zone = Zone::parse(id)
                .map_err(|e| self.fail(&path, SpecProblem::InvalidZoneId { value: id.clone(), why: e.reason }))?;
            zones.push(zone);
        }
        // The CEL rules compare raw `split('/')` segments of every id with those of the first.
        let segments = |id: &str| -> [String; 3] {
            let parts: Vec<&str> = id.split('/').collect();
            [2, 4, 7].map(|k| parts.get(k).copied().unwrap_or_default().to_owned())
        };
        let [sub0, rg0, type0] = segments(&ids[0]);
        for (i, id) in ids.iter().enumerate().skip(1) {
            let [sub, rg, kind] = segments(id);
            let problem = if sub != sub0 {
                SpecProblem::MixedSubscriptions { value: sub, expected: sub0.clone() }
            } else if rg != rg0 {
                SpecProblem::MixedResourceGroups { value: rg, expected: rg0.clone() }
            } else if kind != type0 {
                SpecProblem::MixedZoneTypes { value: kind, expected: type0.clone() }
            } else {
                continue;
            };
            return Err(self.fail(format!("{FIELD}[{i}]"), problem));
        }
        Ok(zones)
    }

    /// `(gateways, ingresses)`.
    fn resource_types(&self, types: &[String]) -> Result<(bool, bool), SpecError> {
        const FIELD: &str = "spec.resourceTypes";
        if !(MIN_RESOURCE_TYPES..=MAX_RESOURCE_TYPES).contains(&types.len()) {
            return Err(self.fail(FIELD, SpecProblem::ResourceTypeCountOutOfRange { count: types.len() }));
        }
        let (mut gateways, mut ingresses) = (false, false);
        for (i, t) in types.iter().enumerate() {
            let path = format!("{FIELD}[{i}]");
            if let Some(first) = types[..i].iter().position(|earlier| earlier == t) {
                return Err(self.fail(path, SpecProblem::DuplicateEntry { first }));
            }
            if t.eq_ignore_ascii_case("gateway") {
                gateways = true;
            } else if t.eq_ignore_ascii_case("ingress") {
                ingresses = true;
            } else {
                return Err(self.fail(path, SpecProblem::UnknownResourceType { value: t.clone() }));
            }
        }
        Ok((gateways, ingresses))
    }

    fn identity(&self, spec: &ExternalDnsSpec, sa_namespace: &str) -> Result<DnsIdentity, SpecError> {
        let id = &spec.identity;
        let service_account = id.service_account.as_deref().filter(|s| !s.is_empty());
        let client_id = id.client_id.as_deref().filter(|s| !s.is_empty());
        // The CEL rules first (a required field), then the formats of whatever is present,
        // whichever the type: the schema checks those regardless of type.
        let identity = match id.type_ {
            IdentityType::WorkloadIdentity => match service_account {
                Some(sa) => {
                    DnsIdentity::Workload { namespace: sa_namespace.to_owned(), service_account: sa.to_owned() }
                }
                None => return Err(self.fail("spec.identity.serviceAccount", SpecProblem::MissingServiceAccount)),
            },
            IdentityType::ManagedIdentity => match client_id {
                Some(client) => DnsIdentity::Managed { client_id: client.to_owned() },
                None => return Err(self.fail("spec.identity.clientID", SpecProblem::MissingClientId)),
            },
        };
        if let Some(sa) = &id.service_account
            && !is_dns_name(sa)
        {
            return Err(
                self.fail("spec.identity.serviceAccount", SpecProblem::InvalidServiceAccount { value: sa.clone() })
            );
        }
        if let Some(client) = &id.client_id
            && !is_uuid(client)
        {
            return Err(self.fail("spec.identity.clientID", SpecProblem::InvalidClientId { value: client.clone() }));
        }
        Ok(identity)
    }

    fn filters(&self, filters: Option<&Filters>) -> Result<(Option<LabelFilter>, Option<LabelFilter>), SpecError> {
        let Some(f) = filters else { return Ok((None, None)) };
        let parse = |path: &str, value: &Option<String>| -> Result<Option<LabelFilter>, SpecError> {
            let Some(value) = value else { return Ok(None) };
            let invalid = || self.fail(path, SpecProblem::InvalidLabelFilter { value: value.clone() });
            let filter = LabelFilter::parse(value).map_err(|_| invalid())?;
            // The planner trims around '='; a filter that is only blanks on one side matches nothing.
            if filter.key.is_empty() || filter.value.is_empty() {
                return Err(invalid());
            }
            Ok(Some(filter))
        };
        Ok((
            parse("spec.filters.gatewayLabels", &f.gateway_labels)?,
            parse("spec.filters.routeAndIngressLabels", &f.route_and_ingress_labels)?,
        ))
    }
}

/// `^[a-z0-9][-a-z0-9\.]*[a-z0-9]$`, at most 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (2..=MAX_NAME_LENGTH).contains(&b.len())
        && alnum(b[0])
        && alnum(b[b.len() - 1])
        && b.iter().all(|&c| alnum(c) || c == b'-' || c == b'.')
}

/// `format: uuid` plus the lower-case hex pattern: exactly `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if matches!(i, 8 | 13 | 18 | 23) { c == b'-' } else { c.is_ascii_digit() || (b'a'..=b'f').contains(&c) }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_anchor_pattern() {
        for ok in ["ab", "a1", "demo-cluster-dns", "a.b-c", &"a".repeat(253)] {
            assert!(is_dns_name(ok), "{ok}");
        }
        for bad in ["", "a", "-ab", "ab-", "Ab", "a_b", "a b", &"a".repeat(254)] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn uuids_must_be_lower_case_and_hyphenated() {
        assert!(is_uuid("123e4567-e89b-12d3-a456-426614174000"));
        for bad in [
            "",
            "test",
            "123E4567-E89B-12D3-A456-426614174000",
            "123e4567e89b12d3a456426614174000",
            "x123e4567-e89b-12d3-a456-426614174000",
            "123e4567-e89b-12d3-a456-42661417400g",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }
}
