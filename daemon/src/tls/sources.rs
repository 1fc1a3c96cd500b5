//! What the TLS controller watches. Gateways are read as dynamic objects and parsed leniently
//! here, so one Gateway the typed bindings could not decode never stops the watch for the others.
//! ServiceAccounts and owned Secrets are watched as metadata only: routewarden needs their
//! annotations and labels, and never holds Secret data it did not just write.

use super::labels;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use routewarden_planner::selector::Labels;
use routewarden_planner::tls::{ServiceAccount as PlannedAccount, TlsGateway, TlsListener};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub fn gateway_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"), "gateways")
}

pub fn spc_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass"),
        "secretproviderclasses",
    )
}

/// The reflectors' read sides.
#[derive(Clone)]
pub struct Caches {
    pub gateways: Store<DynamicObject>,
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    pub secrets: Store<PartialObjectMeta<Secret>>,
    pub spcs: Store<DynamicObject>,
    /// Whether the SecretProviderClass API exists in this cluster.
    pub spc_available: Arc<AtomicBool>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("gateways", &self.gateways.state().len())
            .field("service_accounts", &self.service_accounts.state().len())
            .field("secrets", &self.secrets.state().len())
            .field("spcs", &self.spcs.state().len())
            .finish()
    }
}

impl Caches {
    /// Waits until every reflector has listed once.
    pub async fn ready(&self) {
        let _ = self.gateways.wait_until_ready().await;
        let _ = self.service_accounts.wait_until_ready().await;
        let _ = self.secrets.wait_until_ready().await;
        let _ = self.spcs.wait_until_ready().await;
    }

    pub fn gateway(&self, namespace: &str, name: &str) -> Option<Arc<DynamicObject>> {
        self.gateways.get(&reflector::ObjectRef::new_with(name, gateway_resource()).within(namespace))
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<Arc<PartialObjectMeta<Secret>>> {
        self.secrets.get(&reflector::ObjectRef::new(name).within(namespace))
    }
}

/// Starts the four watches; `changed` is notified after every event.
pub fn start(
    client: kube::Client,
    changed: crate::watches::Changed,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Caches {
    use crate::watches::{spawn, spawn_when_served};
    let owned = watcher::Config::default().labels(labels::SELECTOR);

    let writer = reflector::store::Writer::new(gateway_resource());
    let gateways = writer.as_reader();
    let api = Api::<DynamicObject>::all_with(client.clone(), &gateway_resource());
    spawn_when_served(
        "gateways",
        client.clone(),
        "gateway.networking.k8s.io/v1",
        "gateways",
        writer,
        move |w| reflector::reflector(w, watcher(api, watcher::Config::default())),
        &changed,
        &stop,
        None,
    );
    let (service_accounts, writer) = reflector::store();
    let api = Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone());
    spawn("serviceaccounts", reflector::reflector(writer, watcher(api, watcher::Config::default())), &changed, &stop);
    let (secrets, writer) = reflector::store();
    let api = Api::<PartialObjectMeta<Secret>>::all(client.clone());
    spawn("secrets", reflector::reflector(writer, watcher(api, owned.clone())), &changed, &stop);
    // The Secret is what the listener needs; the SecretProviderClass is there for parity with the
    // AKS operator and for pods that mount it. A cluster without the Secrets Store CSI driver's
    // CRD still gets its Secrets: SecretProviderClasses are skipped until the CRD appears.
    let writer = reflector::store::Writer::new(spc_resource());
    let spcs = writer.as_reader();
    let spc_available = Arc::new(AtomicBool::new(false));
    let api = Api::<DynamicObject>::all_with(client.clone(), &spc_resource());
    spawn_when_served(
        "secretproviderclasses",
        client,
        "secrets-store.csi.x-k8s.io/v1",
        "secretproviderclasses",
        writer,
        move |w| reflector::reflector(w, watcher(api, owned)),
        &changed,
        &stop,
        Some(spc_available.clone()),
    );
    Caches { gateways, service_accounts, secrets, spcs, spc_available }
}

fn string_map(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect())
        .unwrap_or_default()
}

/// The planner's view of a Gateway; tolerant of anything the planner does not need.
pub fn planned_gateway(gw: &DynamicObject) -> Option<TlsGateway> {
    let spec = gw.data.get("spec")?;
    let listeners = spec
        .get("listeners")
        .and_then(Value::as_array)
        .map(|ls| {
            ls.iter()
                .filter_map(|l| {
                    Some(TlsListener {
                        name: l.get("name")?.as_str()?.to_owned(),
                        hostname: l.get("hostname").and_then(Value::as_str).map(str::to_owned),
                        protocol: l.get("protocol").and_then(Value::as_str).unwrap_or_default().to_owned(),
                        tls_mode: l.pointer("/tls/mode").and_then(Value::as_str).map(str::to_owned),
                        options: string_map(l.pointer("/tls/options")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(TlsGateway {
        namespace: gw.metadata.namespace.clone()?,
        name: gw.metadata.name.clone()?,
        class: spec.get("gatewayClassName").and_then(Value::as_str).unwrap_or_default().to_owned(),
        annotations: gw.metadata.annotations.clone().unwrap_or_default().into_iter().collect(),
        listeners,
    })
}

pub fn planned_account(sa: &PartialObjectMeta<ServiceAccount>) -> Option<PlannedAccount> {
    Some(PlannedAccount {
        namespace: sa.metadata.namespace.clone()?,
        name: sa.metadata.name.clone()?,
        annotations: sa.metadata.annotations.clone().unwrap_or_default().into_iter().collect(),
    })
}

/// The names of the Secrets a listener's `tls.certificateRefs` point at in the Gateway's own
/// namespace (core Secrets only).
pub fn certificate_refs(gw: &DynamicObject, listener: &str) -> Option<Vec<Value>> {
    listener_value(gw, listener)
        .map(|l| l.pointer("/tls/certificateRefs").and_then(Value::as_array).cloned().unwrap_or_default())
}

pub fn listener_value<'a>(gw: &'a DynamicObject, listener: &str) -> Option<&'a Value> {
    gw.data
        .pointer("/spec/listeners")
        .and_then(Value::as_array)?
        .iter()
        .find(|l| l.get("name").and_then(Value::as_str) == Some(listener))
}

/// Whether `r` is a reference to Secret `name` in the Gateway's namespace.
pub fn is_ref_to(r: &Value, namespace: &str, name: &str) -> bool {
    r.get("name").and_then(Value::as_str) == Some(name)
        && r.get("kind").and_then(Value::as_str).unwrap_or("Secret") == "Secret"
        && r.get("group").and_then(Value::as_str).unwrap_or("").is_empty()
        && r.get("namespace").and_then(Value::as_str).unwrap_or(namespace) == namespace
}

/// Our condition on a listener, as the Gateway's status shows it.
pub fn listener_condition(gw: &DynamicObject, listener: &str, type_: &str) -> Option<Value> {
    gw.data
        .pointer("/status/listeners")
        .and_then(Value::as_array)?
        .iter()
        .find(|l| l.get("name").and_then(Value::as_str) == Some(listener))?
        .get("conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        .cloned()
}

/// Listener names present in the Gateway's status (a status apply may only add to those).
pub fn status_listeners(gw: &DynamicObject) -> Vec<String> {
    gw.data
        .pointer("/status/listeners")
        .and_then(Value::as_array)
        .map(|ls| ls.iter().filter_map(|l| l.get("name").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default()
}
