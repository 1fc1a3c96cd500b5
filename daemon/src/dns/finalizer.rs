//! The `routewarden.io/dns-records` finalizer of DNS resources with `deletionPolicy: Delete`.
//!
//! routewarden adds it to every valid resource that asks for its records to be deleted, and takes
//! it off a resource that no longer does. When such a resource is deleted, the planner loop
//! queues the deletion of each of its record sets ([`super::controller::Owner::Deleting`]); once
//! the journal holds no record set of it, applied or desired, the finalizer is removed and the
//! API server lets the object go. Patches carry the resourceVersion they were computed from, so a
//! concurrent change to the finalizer list is never lost (the next pass tries again).

use super::sources::DnsObject;
use super::worker::Workers;
use super::{FINALIZER, apply_items, resource_of};
use crate::crd::v1alpha1::{ClusterExternalDns, ExternalDns};
use kube::api::{Api, Patch, PatchParams};
use routewarden_store::ItemState;

/// What a pass should do with one resource's finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
}

/// Decides, from the object and whether the journal still holds any of its record sets.
pub fn decide(object: &DnsObject, records_left: bool) -> Option<Action> {
    match (object.deleting(), object.has_finalizer(), object.deletes_records()) {
        (false, false, true) => Some(Action::Add),
        // Switched back to Retain: its records stay, nothing to hold the object for.
        (false, true, false) => Some(Action::Remove),
        (true, true, _) if !records_left || !object.deletes_records() => Some(Action::Remove),
        _ => None,
    }
}

/// Whether the journal still holds a record set (desired or applied) owned by `object`, or a
/// worker is writing in one of its zones: a write in flight may be about to record a record set
/// as applied, and the finalizer must outlive it so that record set is deleted too.
fn records_left(w: &Workers, object: &DnsObject) -> bool {
    let owned = |owner: &str| resource_of(owner) == object.identity;
    let zones: Vec<&str> =
        object.config.as_ref().map(|c| c.resource.zones.iter().map(|z| z.id.as_str()).collect()).unwrap_or_default();
    let desired = w.journal.desired_records(None).map(|d| d.iter().any(|(_, r)| owned(&r.owner)));
    let applied = w.journal.applied_records(None).map(|a| a.iter().any(|(_, r)| owned(&r.owner)));
    let writing = apply_items(&w.journal, ItemState::InFlight)
        .map(|items| items.iter().any(|(k, _)| zones.contains(&k.zone.as_str())));
    // A journal that cannot be read keeps the finalizer: never let records go unaccounted.
    desired.unwrap_or(true) || applied.unwrap_or(true) || writing.unwrap_or(true)
}

/// Adds or removes the finalizer where [`decide`] says so.
pub async fn sync(w: &Workers, resources: &[DnsObject]) {
    for object in resources {
        let left = object.deleting() && records_left(w, object);
        let Some(action) = decide(object, left) else { continue };
        let mut finalizers: Vec<String> = object.meta.finalizers.clone().unwrap_or_default();
        match action {
            Action::Add => finalizers.push(FINALIZER.to_owned()),
            Action::Remove => finalizers.retain(|f| f != FINALIZER),
        }
        let body = serde_json::json!({
            "metadata": { "finalizers": finalizers, "resourceVersion": object.meta.resource_version }
        });
        let name = object.meta.name.clone().unwrap_or_default();
        let params = PatchParams::default();
        let result = match object.meta.namespace.as_deref() {
            None => Api::<ClusterExternalDns>::all(w.client.clone())
                .patch(&name, &params, &Patch::Merge(&body))
                .await
                .map(|_| ()),
            Some(ns) => Api::<ExternalDns>::namespaced(w.client.clone(), ns)
                .patch(&name, &params, &Patch::Merge(&body))
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => tracing::info!(resource = %object.identity, ?action, "DNS resource finalizer updated"),
            // Changed meanwhile, or already gone: the next pass sees the new object.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {}
            Err(e) => {
                tracing::warn!(resource = %object.identity, ?action, error = %e, "failed to update the finalizer")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(deleting: bool, finalizer: bool, policy: &str) -> DnsObject {
        let cedns: ClusterExternalDns = serde_json::from_value(serde_json::json!({
            "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
            "kind": "ClusterExternalDNS",
            "metadata": {
                "name": "demo",
                "finalizers": if finalizer { vec![FINALIZER] } else { vec![] },
                "deletionTimestamp": if deleting { Some("2026-12-07T00:00:00Z") } else { None },
            },
            "spec": {
                "resourceName": "demo",
                "dnsZoneResourceIDs": ["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com"],
                "resourceTypes": ["gateway"],
                "identity": {"type": "workloadIdentity", "serviceAccount": "sa"},
                "deletionPolicy": policy,
            }
        }))
        .unwrap();
        DnsObject {
            identity: "clusterexternaldns/demo".into(),
            config: crate::crd::convert::DnsConfig::try_from(&cedns),
            meta: cedns.metadata.clone(),
        }
    }

    #[test]
    fn the_finalizer_holds_a_deleting_resource_until_its_records_are_gone() {
        assert_eq!(decide(&object(false, false, "Delete"), false), Some(Action::Add));
        assert_eq!(decide(&object(false, true, "Delete"), true), None);
        assert_eq!(decide(&object(true, true, "Delete"), true), None, "records left: keep holding");
        assert_eq!(decide(&object(true, true, "Delete"), false), Some(Action::Remove));
        assert_eq!(decide(&object(false, false, "Retain"), false), None, "Retain never holds the object");
        assert_eq!(decide(&object(false, true, "Retain"), false), Some(Action::Remove), "switched back to Retain");
        assert_eq!(decide(&object(true, false, "Delete"), true), None, "not ours to hold once it is gone");
    }
}
