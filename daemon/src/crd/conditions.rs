//! Condition types and reasons of the DNS resources, in one place (STYLE 7): status writers,
//! Events, metrics and the spec checks in [`super::convert`] all take their strings from here, so
//! the set of values a user or an alert can see is bounded and greppable.
//!
//! [`set`] is the one way a condition changes: it always stamps `observedGeneration`, moves
//! `lastTransitionTime` only when `status` flips, and says whether anything changed, so a status
//! writer patches only when it must and never re-triggers itself through its own watch.

use super::convert::SpecError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The resource is valid, every zone is reachable and every desired record set is applied.
pub const READY: &str = "Ready";
/// Every zone in `spec.dnsZoneResourceIDs` could be read with the resource's identity.
pub const ZONES_ACCESSIBLE: &str = "ZonesAccessible";
/// Something is wrong but the rest keeps going: a zone is unreachable, records are stale,
/// names conflict, hostnames fall under no zone, or items are parked.
pub const DEGRADED: &str = "Degraded";

/// All condition types, in the order status lists them.
pub const TYPES: [&str; 3] = [READY, ZONES_ACCESSIBLE, DEGRADED];

/// `status` values of a metav1 Condition.
pub mod status {
    pub const TRUE: &str = "True";
    pub const FALSE: &str = "False";
    pub const UNKNOWN: &str = "Unknown";
}

/// Reasons (CamelCase, `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$` as metav1 requires).
pub mod reason {
    // --- lifecycle
    /// Ready=True: everything desired is applied.
    pub const SYNCED: &str = "Synced";
    /// Ready=Unknown: accepted, first plan or first apply still running.
    pub const PENDING: &str = "Pending";
    /// Ready=False: writes are queued or retrying.
    pub const APPLYING: &str = "Applying";
    /// ZonesAccessible=True.
    pub const ALL_ZONES_ACCESSIBLE: &str = "AllZonesAccessible";
    /// ZonesAccessible=False: Azure answered 403 for a zone.
    pub const ZONE_FORBIDDEN: &str = "ZoneForbidden";
    /// ZonesAccessible=False: the zone does not exist.
    pub const ZONE_NOT_FOUND: &str = "ZoneNotFound";
    /// ZonesAccessible=False / Degraded=True: Azure keeps throttling this resource's zones.
    pub const THROTTLED: &str = "Throttled";
    /// ZonesAccessible=False: Azure failed the list (5xx, timeout); tried again next interval.
    pub const ZONE_UNAVAILABLE: &str = "ZoneUnavailable";
    /// ZonesAccessible=False: no token for the identity (ServiceAccount missing, exchange refused).
    pub const IDENTITY_UNAVAILABLE: &str = "IdentityUnavailable";
    /// Degraded=False.
    pub const HEALTHY: &str = "Healthy";
    /// Degraded=True: owned record sets with no live source.
    pub const STALE_RECORDS: &str = "StaleRecords";
    /// Degraded=True: a foreign record set or another DNS resource holds a desired name.
    pub const CONFLICTS: &str = "Conflicts";
    /// Degraded=True: hostnames under none of the resource's zones.
    pub const UNZONED_HOSTNAMES: &str = "UnzonedHostnames";
    /// Degraded=True: a record set kept failing and was parked.
    pub const PARKED: &str = "Parked";

    // --- spec checks (Ready=False); one per [`crate::crd::convert::SpecProblem`] variant
    pub const MISSING_FIELD: &str = "MissingField";
    pub const INVALID_RESOURCE_NAME: &str = "InvalidResourceName";
    pub const INVALID_RESOURCE_NAMESPACE: &str = "InvalidResourceNamespace";
    pub const INVALID_TENANT_ID: &str = "InvalidTenantId";
    pub const ZONE_COUNT_OUT_OF_RANGE: &str = "ZoneCountOutOfRange";
    pub const DUPLICATE_ENTRY: &str = "DuplicateEntry";
    pub const INVALID_ZONE_ID: &str = "InvalidZoneId";
    pub const MIXED_SUBSCRIPTIONS: &str = "MixedSubscriptions";
    pub const MIXED_RESOURCE_GROUPS: &str = "MixedResourceGroups";
    pub const MIXED_ZONE_TYPES: &str = "MixedZoneTypes";
    pub const RESOURCE_TYPE_COUNT_OUT_OF_RANGE: &str = "ResourceTypeCountOutOfRange";
    pub const UNKNOWN_RESOURCE_TYPE: &str = "UnknownResourceType";
    pub const MISSING_SERVICE_ACCOUNT: &str = "MissingServiceAccount";
    pub const INVALID_SERVICE_ACCOUNT: &str = "InvalidServiceAccount";
    pub const MISSING_CLIENT_ID: &str = "MissingClientId";
    pub const INVALID_CLIENT_ID: &str = "InvalidClientId";
    pub const INVALID_LABEL_FILTER: &str = "InvalidLabelFilter";
    pub const INVALID_TTL: &str = "InvalidTtl";
    pub const INVALID_HOLD_DOWN: &str = "InvalidHoldDown";
}

/// The new state of one condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub type_: &'static str,
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// Ready=False with the spec error's reason and its full text (object, field path, problem).
pub fn invalid_spec(err: &SpecError) -> Update {
    Update { type_: READY, status: status::FALSE, reason: err.reason(), message: err.to_string() }
}

/// Sets condition `update.type_` in `conditions` (adding it if absent, keeping the list in
/// [`TYPES`] order). Returns true when anything changed.
pub fn set(conditions: &mut Vec<Condition>, update: &Update, generation: Option<i64>, now: Timestamp) -> bool {
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == update.type_) {
        let flipped = c.status != update.status;
        if !flipped && c.reason == update.reason && c.message == update.message && c.observed_generation == generation {
            return false;
        }
        if flipped {
            c.last_transition_time = Time(now);
        }
        c.status = update.status.to_owned();
        c.reason = update.reason.to_owned();
        c.message = update.message.clone();
        c.observed_generation = generation;
        return true;
    }
    conditions.push(Condition {
        type_: update.type_.to_owned(),
        status: update.status.to_owned(),
        reason: update.reason.to_owned(),
        message: update.message.clone(),
        observed_generation: generation,
        last_transition_time: Time(now),
    });
    let rank = |t: &str| TYPES.iter().position(|k| *k == t).unwrap_or(TYPES.len());
    conditions.sort_by(|a, b| rank(&a.type_).cmp(&rank(&b.type_)).then_with(|| a.type_.cmp(&b.type_)));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_condition_reason(s: &str) -> bool {
        let b = s.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphabetic()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || b"_,:".contains(c))
            && (b.len() == 1 || b[b.len() - 1].is_ascii_alphanumeric() || b[b.len() - 1] == b'_')
    }

    #[test]
    fn every_reason_satisfies_the_metav1_condition_pattern() {
        use reason::*;
        for r in [
            SYNCED,
            PENDING,
            APPLYING,
            ALL_ZONES_ACCESSIBLE,
            ZONE_FORBIDDEN,
            ZONE_NOT_FOUND,
            ZONE_UNAVAILABLE,
            THROTTLED,
            IDENTITY_UNAVAILABLE,
            HEALTHY,
            STALE_RECORDS,
            CONFLICTS,
            UNZONED_HOSTNAMES,
            PARKED,
            MISSING_FIELD,
            INVALID_RESOURCE_NAME,
            INVALID_RESOURCE_NAMESPACE,
            INVALID_TENANT_ID,
            ZONE_COUNT_OUT_OF_RANGE,
            DUPLICATE_ENTRY,
            INVALID_ZONE_ID,
            MIXED_SUBSCRIPTIONS,
            MIXED_RESOURCE_GROUPS,
            MIXED_ZONE_TYPES,
            RESOURCE_TYPE_COUNT_OUT_OF_RANGE,
            UNKNOWN_RESOURCE_TYPE,
            MISSING_SERVICE_ACCOUNT,
            INVALID_SERVICE_ACCOUNT,
            MISSING_CLIENT_ID,
            INVALID_CLIENT_ID,
            INVALID_LABEL_FILTER,
            INVALID_TTL,
            INVALID_HOLD_DOWN,
        ] {
            assert!(is_condition_reason(r), "{r}");
        }
        for t in TYPES {
            assert!(is_condition_reason(t), "{t}");
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn update(type_: &'static str, status: &'static str, reason: &'static str, message: &str) -> Update {
        Update { type_, status, reason, message: message.to_owned() }
    }

    #[test]
    fn setting_the_same_condition_again_changes_nothing() {
        let mut conds = Vec::new();
        let ready = update(READY, status::TRUE, reason::SYNCED, "");
        assert!(set(&mut conds, &ready, Some(1), at(10)));
        assert!(!set(&mut conds, &ready, Some(1), at(20)));
        assert_eq!(conds[0].last_transition_time, Time(at(10)));
    }

    #[test]
    fn last_transition_time_moves_only_when_status_flips() {
        let mut conds = Vec::new();
        set(&mut conds, &update(DEGRADED, status::TRUE, reason::STALE_RECORDS, "2 stale"), Some(1), at(10));
        assert!(set(&mut conds, &update(DEGRADED, status::TRUE, reason::CONFLICTS, "1 conflict"), Some(1), at(20)));
        assert_eq!((conds[0].reason.as_str(), conds[0].last_transition_time.clone()), ("Conflicts", Time(at(10))));
        assert!(set(&mut conds, &update(DEGRADED, status::FALSE, reason::HEALTHY, ""), Some(1), at(30)));
        assert_eq!(conds[0].last_transition_time, Time(at(30)));
    }

    #[test]
    fn a_new_generation_is_always_stamped() {
        let mut conds = Vec::new();
        let ready = update(READY, status::TRUE, reason::SYNCED, "");
        set(&mut conds, &ready, Some(1), at(10));
        assert!(set(&mut conds, &ready, Some(2), at(20)));
        assert_eq!((conds[0].observed_generation, conds[0].last_transition_time.clone()), (Some(2), Time(at(10))));
    }

    #[test]
    fn conditions_are_kept_in_type_order() {
        let mut conds = Vec::new();
        set(&mut conds, &update(DEGRADED, status::FALSE, reason::HEALTHY, ""), None, at(1));
        set(&mut conds, &update(READY, status::UNKNOWN, reason::PENDING, ""), None, at(1));
        set(&mut conds, &update(ZONES_ACCESSIBLE, status::TRUE, reason::ALL_ZONES_ACCESSIBLE, ""), None, at(1));
        let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, TYPES);
    }
}
