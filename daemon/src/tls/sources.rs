//! What the TLS controller watches. Gateways are read as dynamic objects and parsed leniently
//! here, so one Gateway the typed bindings could not decode never stops the watch for the others.
//! ServiceAccounts and owned Secrets are watched as metadata only: routewarden needs their
//! annotations and labels, and never holds Secret data it did not just write.

use super::labels;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use routewarden_planner::selector::Labels;
use routewarden_planner::tls::{ServiceAccount as PlannedAccount, TlsGateway, TlsListener};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

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
pub fn start(client: kube::Client, changed: Arc<Notify>, stop: tokio::sync::watch::Receiver<bool>) -> Caches {
    let owned = watcher::Config::default().labels(labels::SELECTOR);

    let writer = reflector::store::Writer::new(gateway_resource());
    let gateways = writer.as_reader();
    spawn(
        "gateways",
        reflector::reflector(
            writer,
            watcher(Api::<DynamicObject>::all_with(client.clone(), &gateway_resource()), watcher::Config::default()),
        ),
        changed.clone(),
        stop.clone(),
    );
    let (service_accounts, writer) = reflector::store();
    spawn(
        "serviceaccounts",
        reflector::reflector(
            writer,
            watcher(Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone()), watcher::Config::default()),
        ),
        changed.clone(),
        stop.clone(),
    );
    let (secrets, writer) = reflector::store();
    spawn(
        "secrets",
        reflector::reflector(writer, watcher(Api::<PartialObjectMeta<Secret>>::all(client.clone()), owned.clone())),
        changed.clone(),
        stop.clone(),
    );
    let mut writer = reflector::store::Writer::new(spc_resource());
    let spcs = writer.as_reader();
    let spc_available = Arc::new(AtomicBool::new(false));
    let available = spc_available.clone();
    tokio::spawn(async move {
        // The Secret is what the listener needs; the SecretProviderClass is there for parity with
        // the AKS operator and for pods that mount it. A cluster without the Secrets Store CSI
        // driver's CRD still gets its Secrets: the SecretProviderClass is skipped (the cache is
        // marked listed and empty) until the CRD appears.
        let mut stop2 = stop.clone();
        let mut warned = false;
        loop {
            if spc_api_present(&client).await {
                break;
            }
            if !warned {
                tracing::warn!(
                    "the SecretProviderClass CRD (secrets-store.csi.x-k8s.io/v1) is not installed; listeners get their Secrets without one"
                );
                writer.apply_watcher_event(&watcher::Event::Init);
                writer.apply_watcher_event(&watcher::Event::InitDone);
                changed.notify_one();
                warned = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
                _ = stop2.changed() => return,
            }
        }
        available.store(true, Ordering::Relaxed);
        spawn(
            "secretproviderclasses",
            reflector::reflector(writer, watcher(Api::<DynamicObject>::all_with(client, &spc_resource()), owned)),
            changed,
            stop,
        );
    });
    Caches { gateways, service_accounts, secrets, spcs, spc_available }
}

async fn spc_api_present(client: &kube::Client) -> bool {
    match client.list_api_group_resources("secrets-store.csi.x-k8s.io/v1").await {
        Ok(list) => list.resources.iter().any(|r| r.name == "secretproviderclasses"),
        Err(kube::Error::Api(e)) if e.code == 404 => false,
        // Unknown (the API server is unreachable): assume present, the watch will retry.
        Err(_) => true,
    }
}

fn spawn<K, S>(what: &'static str, stream: S, changed: Arc<Notify>, mut stop: tokio::sync::watch::Receiver<bool>)
where
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    K: Send + 'static,
{
    tokio::spawn(async move {
        // Watch errors (a 410, a dropped connection, a forbidden list) back off and re-list; the
        // caches keep serving their last state meanwhile.
        let mut stream = std::pin::pin!(stream.default_backoff());
        loop {
            let event = tokio::select! {
                event = stream.next() => event,
                _ = stop.changed() => return,
            };
            match event {
                Some(Ok(_)) => changed.notify_one(),
                Some(Err(e)) => tracing::warn!(watch = what, error = %e, "watch failed; retrying"),
                None => return,
            }
        }
    });
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
