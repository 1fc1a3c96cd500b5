//! A stand-in for the `approuting-istio` Gateway controller (and an Ingress load balancer), so
//! `kubectl wait --for=condition=programmed gateway/…` and routewarden's status readers behave as
//! on AKS. The task listens to the store's event feed; after any change to Gateway API kinds,
//! Ingresses, Secrets or Namespaces it recomputes every status it owns from the current objects
//! (a pure function of a snapshot, [`gateway_status`] / [`route_parents`]) and writes only the
//! statuses that differ, keeping `lastTransitionTime` unless a condition's status flips — so its
//! own writes never re-trigger work.
//!
//! It writes as a well-behaved controller on a real cluster does: a forced server-side apply to
//! the status subresource under its own field manager, through the same apply engine as `PATCH`
//! requests. Conditions other writers add (routewarden's per-listener `routewarden.io/CertificateReady`,
//! applied under `routewarden`) therefore merge with its own by listener name and condition type
//! and survive its rewrites, and its "differs" check looks only at what it owns, so the two
//! writers never chase each other.
//!
//! Addresses come from a configurable pool (IPv4, IPv6 or hostnames), handed out in order and kept
//! per Gateway uid. A Gateway's address can be withheld (hold-down tests): it then reports
//! `Programmed=False` with reason `AddressNotAssigned` and no `status.addresses`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch as signal;

use super::apply;
use super::crd::GATEWAY_CONTROLLER;
use super::selectors::LabelSelector;
use super::store::{ListQuery, Store, WriteOptions, now};

/// The controller name of the sandbox's IngressClass.
pub const INGRESS_CONTROLLER: &str = "webapprouting.kubernetes.azure.com/nginx";
/// The sandbox's IngressClass (AKS application routing's name).
pub const INGRESS_CLASS: &str = "webapprouting.kubernetes.azure.com";
const FIELD_MANAGER: &str = "routewarden-sandbox-gateway-controller";

/// Shared, test-controllable state of the controller.
#[derive(Debug)]
pub struct GatewayController {
    pool: Vec<String>,
    state: Mutex<ControllerState>,
    kick: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct ControllerState {
    assigned: HashMap<String, String>,
    withheld: BTreeSet<(String, String)>,
}

fn address_type(value: &str) -> &'static str {
    if value.parse::<IpAddr>().is_ok() { "IPAddress" } else { "Hostname" }
}

/// The default address pool: documentation ranges, never routable.
pub fn default_pool() -> Vec<String> {
    (10..250).map(|i| format!("203.0.113.{i}")).collect()
}

impl GatewayController {
    /// A controller handing out addresses from `pool`.
    pub fn new(pool: Vec<String>) -> Self {
        Self { pool, state: Mutex::new(ControllerState::default()), kick: tokio::sync::Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ControllerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops publishing an address for a Gateway until [`Self::restore_address`].
    pub fn withhold_address(&self, namespace: &str, name: &str) {
        self.lock().withheld.insert((namespace.to_string(), name.to_string()));
        self.kick.notify_one();
    }

    /// Publishes a Gateway's address again.
    pub fn restore_address(&self, namespace: &str, name: &str) {
        self.lock().withheld.remove(&(namespace.to_string(), name.to_string()));
        self.kick.notify_one();
    }

    fn address_for(&self, key: &str) -> Option<String> {
        let mut state = self.lock();
        if let Some(a) = state.assigned.get(key) {
            return Some(a.clone());
        }
        let used: BTreeSet<String> = state.assigned.values().cloned().collect();
        let free = self.pool.iter().find(|a| !used.contains(*a))?.clone();
        state.assigned.insert(key.to_string(), free.clone());
        Some(free)
    }

    /// Keeps the address an object already shows (after a restart of a persisted sandbox), so
    /// Gateways do not change address, which would churn the DNS records routewarden publishes.
    fn adopt(&self, key: &str, current: Option<&str>) {
        let Some(current) = current.filter(|c| self.pool.iter().any(|a| a == c)) else { return };
        let mut state = self.lock();
        if state.assigned.contains_key(key) || state.assigned.values().any(|a| a == current) {
            return;
        }
        state.assigned.insert(key.to_string(), current.to_string());
    }

    fn is_withheld(&self, namespace: &str, name: &str) -> bool {
        self.lock().withheld.contains(&(namespace.to_string(), name.to_string()))
    }

    /// Runs until `stop`: reconciles after every relevant change.
    pub async fn run(self: Arc<Self>, store: Arc<Store>, mut stop: signal::Receiver<bool>) {
        let mut events = store.events();
        self.reconcile(&store);
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(e) if !relevant(&e) => continue,
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                () = self.kick.notified() => {}
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() { return; }
                    continue;
                }
            }
            // Let a burst of writes (kubectl apply -f with many objects) settle into one pass.
            tokio::time::sleep(Duration::from_millis(20)).await;
            while events.try_recv().is_ok() {}
            self.reconcile(&store);
        }
    }

    /// One full pass over everything the controller owns.
    pub fn reconcile(&self, store: &Store) {
        let registry = store.registry();
        let list = |group: &str, plural: &str| -> Vec<Value> {
            registry
                .all()
                .iter()
                .find(|r| r.group == group && r.plural == plural)
                .and_then(|info| store.list(info, None, &ListQuery::default()).ok())
                .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
                .unwrap_or_default()
        };
        let classes = list("gateway.networking.k8s.io", "gatewayclasses");
        let ours: BTreeSet<String> = classes
            .iter()
            .filter(|c| c.pointer("/spec/controllerName").and_then(Value::as_str) == Some(GATEWAY_CONTROLLER))
            .map(|c| name(c).to_string())
            .collect();
        let gateways: Vec<Value> = list("gateway.networking.k8s.io", "gateways")
            .into_iter()
            .filter(|g| g.pointer("/spec/gatewayClassName").and_then(Value::as_str).is_some_and(|c| ours.contains(c)))
            .collect();
        let namespaces = list("", "namespaces");
        // Only which Secrets and Services exist matters here: their names, not copies of them.
        let keys = |plural: &str| -> BTreeSet<(String, String)> {
            registry
                .all()
                .iter()
                .find(|r| r.group.is_empty() && r.plural == plural)
                .map(|info| store.keys(info).into_iter().collect())
                .unwrap_or_default()
        };
        let (secrets, services) = (keys("secrets"), keys("services"));
        let grants = list("gateway.networking.k8s.io", "referencegrants");
        let mut routes = Vec::new();
        for (plural, kind) in [("httproutes", "HTTPRoute"), ("grpcroutes", "GRPCRoute")] {
            for r in list("gateway.networking.k8s.io", plural) {
                routes.push((kind, r));
            }
        }

        for class in classes.iter().filter(|c| ours.contains(name(c))) {
            let generation = class.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
            let conditions =
                vec![condition("Accepted", true, "Accepted", "accepted by the routewarden sandbox", &generation)];
            let status = json!({"conditions": keep_transition_times(conditions, class.pointer("/status/conditions"))});
            write_status(store, "gateway.networking.k8s.io", "gatewayclasses", class, status);
        }

        let mut attached: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        for (kind, route) in &routes {
            let resolved = resolve_backends(kind, route, &services, &grants);
            let parents = route_parents(kind, route, &gateways, &namespaces, resolved, &mut attached);
            let mut entries: Vec<Value> = route
                .pointer("/status/parents")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|p| p.get("controllerName").and_then(Value::as_str) != Some(GATEWAY_CONTROLLER))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for mut p in parents {
                let previous = route
                    .pointer("/status/parents")
                    .and_then(Value::as_array)
                    .and_then(|a| {
                        a.iter().find(|e| {
                            e.get("parentRef") == p.get("parentRef")
                                && e.get("controllerName") == p.get("controllerName")
                        })
                    })
                    .and_then(|e| e.get("conditions"))
                    .cloned();
                let conditions = p["conditions"].as_array().cloned().unwrap_or_default();
                p["conditions"] = json!(keep_transition_times(conditions, previous.as_ref()));
                entries.push(p);
            }
            if entries.is_empty() && route.pointer("/status/parents").is_none() {
                continue;
            }
            let plural = if *kind == "HTTPRoute" { "httproutes" } else { "grpcroutes" };
            write_status(store, "gateway.networking.k8s.io", plural, route, json!({"parents": entries}));
        }

        let ingresses = list("networking.k8s.io", "ingresses");
        // Addresses of deleted Gateways and Ingresses go back to the pool.
        let live: BTreeSet<String> = gateways
            .iter()
            .map(|g| format!("{}/{}", namespace(g), name(g)))
            .chain(ingresses.iter().map(|i| format!("ingress:{}/{}", namespace(i), name(i))))
            .collect();
        self.lock().assigned.retain(|key, _| live.contains(key));
        for gw in &gateways {
            self.adopt(
                &format!("{}/{}", namespace(gw), name(gw)),
                gw.pointer("/status/addresses/0/value").and_then(Value::as_str),
            );
        }
        for ing in &ingresses {
            let current = ing
                .pointer("/status/loadBalancer/ingress/0/ip")
                .or_else(|| ing.pointer("/status/loadBalancer/ingress/0/hostname"))
                .and_then(Value::as_str);
            self.adopt(&format!("ingress:{}/{}", namespace(ing), name(ing)), current);
        }
        for gw in &gateways {
            let key = format!("{}/{}", namespace(gw), name(gw));
            let address = if self.is_withheld(namespace(gw), name(gw)) { None } else { self.address_for(&key) };
            let status = gateway_status(gw, address.as_deref(), &secrets, &attached);
            write_status(store, "gateway.networking.k8s.io", "gateways", gw, status);
        }

        let ingress_classes: BTreeSet<String> = list("networking.k8s.io", "ingressclasses")
            .iter()
            .filter(|c| c.pointer("/spec/controller").and_then(Value::as_str) == Some(INGRESS_CONTROLLER))
            .map(|c| name(c).to_string())
            .collect();
        for ing in &ingresses {
            let class = ing.pointer("/spec/ingressClassName").and_then(Value::as_str).unwrap_or("");
            if !ingress_classes.contains(class) {
                continue;
            }
            let key = format!("ingress:{}/{}", namespace(ing), name(ing));
            let Some(address) = self.address_for(&key) else { continue };
            let entry = if address_type(&address) == "IPAddress" {
                json!({"ip": address})
            } else {
                json!({"hostname": address})
            };
            write_status(store, "networking.k8s.io", "ingresses", ing, json!({"loadBalancer": {"ingress": [entry]}}));
        }
    }
}

fn relevant(e: &crate::kube::store::WatchEvent) -> bool {
    let key = e.key.as_str();
    key.starts_with("gateway.networking.k8s.io/")
        || matches!(
            key,
            "/namespaces"
                | "/secrets"
                | "/services"
                | "networking.k8s.io/ingresses"
                | "networking.k8s.io/ingressclasses"
        )
}

fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

fn namespace(obj: &Value) -> &str {
    obj.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
}

fn condition(type_: &str, status: bool, reason: &str, message: &str, generation: &Value) -> Value {
    json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now(),
    })
}

/// Keeps the previous `lastTransitionTime` of conditions whose status did not change.
fn keep_transition_times(mut conditions: Vec<Value>, previous: Option<&Value>) -> Vec<Value> {
    let previous = previous.and_then(Value::as_array).cloned().unwrap_or_default();
    for c in &mut conditions {
        if let Some(p) = previous.iter().find(|p| p.get("type") == c.get("type"))
            && p.get("status") == c.get("status")
            && let Some(t) = p.get("lastTransitionTime")
        {
            c["lastTransitionTime"] = t.clone();
        }
    }
    conditions
}

/// Applies `status` (everything this controller says about `live`) unless the live status
/// already says it. The apply is forced: the stand-in is the authority on these fields, as the
/// Gateway controller is on a cluster.
fn write_status(store: &Store, group: &str, plural: &str, live: &Value, status: Value) {
    if live.get("status").is_some_and(|current| same_status(&without_foreign_conditions(current, &status), &status)) {
        return;
    }
    let Some(info) = store.registry().all().iter().find(|r| r.group == group && r.plural == plural).cloned() else {
        return;
    };
    let (ns, obj_name) = (namespace(live), name(live));
    let mut metadata = json!({"name": obj_name});
    if info.namespaced {
        metadata["namespace"] = json!(ns);
    }
    let applied = json!({"apiVersion": info.api_version(), "kind": info.kind, "metadata": metadata, "status": status});
    let opts = WriteOptions {
        field_manager: FIELD_MANAGER.into(),
        subresource: Some("status".into()),
        apply: true,
        ..WriteOptions::default()
    };
    let step = apply::server_side(&info, ns, obj_name, &applied, &opts, true);
    // Not created when missing: the object may have been deleted since the list, and a status
    // write never brings an object back.
    let result =
        store.write(&info, ns, obj_name, &opts, false, |current| step(current.map(without_own_update_entry).as_ref()));
    if let Err(e) = result {
        // Deleted between the list and the write; the next pass fixes the rest.
        tracing::debug!(group, plural, ns, name = obj_name, reason = e.reason, "status write skipped");
    }
}

/// The live status as this controller sees it: conditions of a type it does not produce at that
/// place belong to another writer and are left out. Comparing with them in would find a
/// difference the apply never removes, and the controller would write on every pass.
fn without_foreign_conditions(live: &Value, desired: &Value) -> Value {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => Value::Object(
            l.iter()
                .map(|(k, lv)| {
                    let v = match (k.as_str(), lv, d.get(k)) {
                        ("conditions", Value::Array(theirs), Some(Value::Array(ours))) => {
                            let types: BTreeSet<&str> = ours.iter().filter_map(|c| c["type"].as_str()).collect();
                            Value::Array(
                                theirs
                                    .iter()
                                    .filter(|c| c["type"].as_str().is_some_and(|t| types.contains(t)))
                                    .cloned()
                                    .collect(),
                            )
                        }
                        (_, _, Some(dv)) => without_foreign_conditions(lv, dv),
                        (_, _, None) => lv.clone(),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        (Value::Array(l), Value::Array(d)) => {
            let key = apply::list_key(d);
            Value::Array(
                l.iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let counterpart = match key {
                            Some(k) => d.iter().find(|x| x.get(k) == item.get(k)),
                            None => d.get(i),
                        };
                        counterpart.map_or_else(|| item.clone(), |c| without_foreign_conditions(item, c))
                    })
                    .collect(),
            )
        }
        _ => live.clone(),
    }
}

/// Equal up to the order of keyed list items: an apply merges by key and keeps the live order
/// (another writer's listener entry may come first), so order alone is no reason to write.
fn same_status(a: &Value, b: &Value) -> bool {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), sorted(v))).collect()),
            Value::Array(items) => {
                let mut items: Vec<Value> = items.iter().map(sorted).collect();
                if let Some(key) = apply::list_key(&items) {
                    items.sort_by(|x, y| x[key].as_str().cmp(&y[key].as_str()));
                }
                Value::Array(items)
            }
            other => other.clone(),
        }
    }
    sorted(a) == sorted(b)
}

/// A status restored from a state directory may still be owned by an `Update` entry of this
/// field manager (how the controller wrote before it applied). Dropped, so that its apply owns
/// those fields alone and can remove them when it stops producing them (a withheld address).
fn without_own_update_entry(live: &Value) -> Value {
    let mut live = live.clone();
    if let Some(entries) = live.pointer_mut("/metadata/managedFields").and_then(Value::as_array_mut) {
        entries.retain(|e| {
            !(e.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
                && e.get("operation").and_then(Value::as_str) == Some("Update"))
        });
    }
    live
}

fn listener_kinds(protocol: &str) -> Vec<&'static str> {
    match protocol {
        "HTTP" | "HTTPS" => vec!["HTTPRoute", "GRPCRoute"],
        _ => Vec::new(),
    }
}

/// The Gateway status the stand-in publishes.
pub fn gateway_status(
    gw: &Value,
    address: Option<&str>,
    secrets: &BTreeSet<(String, String)>,
    attached: &BTreeMap<(String, String, String), i64>,
) -> Value {
    let generation = gw.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let ns = namespace(gw);
    let mut listeners = Vec::new();
    for l in gw.pointer("/spec/listeners").and_then(Value::as_array).cloned().unwrap_or_default() {
        let lname = l.get("name").and_then(Value::as_str).unwrap_or("");
        let protocol = l.get("protocol").and_then(Value::as_str).unwrap_or("");
        let terminate =
            protocol == "HTTPS" && l.pointer("/tls/mode").and_then(Value::as_str).unwrap_or("Terminate") == "Terminate";
        let refs = l.pointer("/tls/certificateRefs").and_then(Value::as_array).cloned().unwrap_or_default();
        let refs_ok = !terminate
            || (!refs.is_empty()
                && refs.iter().all(|r| {
                    let rns = r.get("namespace").and_then(Value::as_str).unwrap_or(ns);
                    let kind_ok = r.get("kind").and_then(Value::as_str).unwrap_or("Secret") == "Secret"
                        && r.get("group").and_then(Value::as_str).unwrap_or("").is_empty();
                    kind_ok
                        && secrets.contains(&(
                            rns.to_string(),
                            r.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                        ))
                }));
        let kinds: Vec<Value> = listener_kinds(protocol)
            .into_iter()
            .map(|k| json!({"group": "gateway.networking.k8s.io", "kind": k}))
            .collect();
        let mut conditions = vec![
            condition("Accepted", true, "Accepted", "No errors found", &generation),
            condition("Conflicted", false, "NoConflicts", "No conflicts", &generation),
        ];
        if refs_ok {
            conditions.push(condition("ResolvedRefs", true, "ResolvedRefs", "No errors found", &generation));
            conditions.push(condition(
                "Programmed",
                address.is_some(),
                if address.is_some() { "Programmed" } else { "Pending" },
                "",
                &generation,
            ));
        } else {
            let message = if refs.is_empty() {
                "no certificateRefs for a listener that terminates TLS".to_string()
            } else {
                "a certificateRef names a Secret that does not exist".to_string()
            };
            conditions.push(condition("ResolvedRefs", false, "InvalidCertificateRef", &message, &generation));
            conditions.push(condition(
                "Programmed",
                false,
                "Invalid",
                "listener has unresolved certificate references",
                &generation,
            ));
        }
        let previous = gw
            .pointer("/status/listeners")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(lname)))
            .and_then(|p| p.get("conditions"))
            .cloned();
        listeners.push(json!({
            "name": lname,
            "supportedKinds": kinds,
            "attachedRoutes": attached.get(&(ns.to_string(), name(gw).to_string(), lname.to_string())).copied().unwrap_or(0),
            "conditions": keep_transition_times(conditions, previous.as_ref()),
        }));
    }
    let mut conditions = vec![condition("Accepted", true, "Accepted", "Resource accepted", &generation)];
    match address {
        Some(_) => conditions.push(condition(
            "Programmed",
            true,
            "Programmed",
            "Resource programmed, assigned to service(s)",
            &generation,
        )),
        None => conditions.push(condition(
            "Programmed",
            false,
            "AddressNotAssigned",
            "no address has been assigned to the Gateway",
            &generation,
        )),
    }
    let mut status = json!({"conditions": keep_transition_times(conditions, gw.pointer("/status/conditions")), "listeners": listeners});
    if let Some(a) = address {
        status["addresses"] = json!([{"type": address_type(a), "value": a}]);
    }
    status
}

fn hostname_matches(listener: &str, route: &str) -> bool {
    let matches_wildcard = |wild: &str, host: &str| {
        wild.strip_prefix("*.")
            .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")) && host.len() > suffix.len() + 1)
    };
    listener == route || matches_wildcard(listener, route) || matches_wildcard(route, listener)
}

/// What the backends of a route resolve to: `(true, "ResolvedRefs")` or the failure reason —
/// `InvalidKind` (not a core Service), `RefNotPermitted` (another namespace without a
/// ReferenceGrant), `BackendNotFound`.
pub fn resolve_backends(
    kind: &str,
    route: &Value,
    services: &BTreeSet<(String, String)>,
    grants: &[Value],
) -> (bool, &'static str) {
    let route_ns = namespace(route);
    let rules = route.pointer("/spec/rules").and_then(Value::as_array).cloned().unwrap_or_default();
    for backend in
        rules.iter().flat_map(|r| r.get("backendRefs").and_then(Value::as_array).cloned().unwrap_or_default())
    {
        let group = backend.get("group").and_then(Value::as_str).unwrap_or("");
        let backend_kind = backend.get("kind").and_then(Value::as_str).unwrap_or("Service");
        if !group.is_empty() || backend_kind != "Service" {
            return (false, "InvalidKind");
        }
        let name = backend.get("name").and_then(Value::as_str).unwrap_or("");
        let ns = backend.get("namespace").and_then(Value::as_str).unwrap_or(route_ns);
        if ns != route_ns {
            let granted = grants.iter().filter(|g| namespace(g) == ns).any(|g| {
                let from_ok = g.pointer("/spec/from").and_then(Value::as_array).is_some_and(|from| {
                    from.iter().any(|f| {
                        f.get("group").and_then(Value::as_str) == Some("gateway.networking.k8s.io")
                            && f.get("kind").and_then(Value::as_str) == Some(kind)
                            && f.get("namespace").and_then(Value::as_str) == Some(route_ns)
                    })
                });
                let to_ok = g.pointer("/spec/to").and_then(Value::as_array).is_some_and(|to| {
                    to.iter().any(|t| {
                        t.get("group").and_then(Value::as_str).unwrap_or("").is_empty()
                            && t.get("kind").and_then(Value::as_str) == Some("Service")
                            && t.get("name").and_then(Value::as_str).is_none_or(|n| n == name)
                    })
                });
                from_ok && to_ok
            });
            if !granted {
                return (false, "RefNotPermitted");
            }
        }
        if !services.contains(&(ns.to_string(), name.to_string())) {
            return (false, "BackendNotFound");
        }
    }
    (true, "ResolvedRefs")
}

/// The `status.parents` entries the stand-in owns for one route, counting attachments.
pub fn route_parents(
    kind: &str,
    route: &Value,
    gateways: &[Value],
    namespaces: &[Value],
    resolved: (bool, &'static str),
    attached: &mut BTreeMap<(String, String, String), i64>,
) -> Vec<Value> {
    let route_ns = namespace(route);
    let generation = route.pointer("/metadata/generation").cloned().unwrap_or(json!(1));
    let hostnames: Vec<String> = route
        .pointer("/spec/hostnames")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|h| h.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for parent in route.pointer("/spec/parentRefs").and_then(Value::as_array).cloned().unwrap_or_default() {
        if parent.get("kind").and_then(Value::as_str).unwrap_or("Gateway") != "Gateway"
            || parent.get("group").and_then(Value::as_str).unwrap_or("gateway.networking.k8s.io")
                != "gateway.networking.k8s.io"
        {
            continue;
        }
        let gw_ns = parent.get("namespace").and_then(Value::as_str).unwrap_or(route_ns);
        let gw_name = parent.get("name").and_then(Value::as_str).unwrap_or("");
        let Some(gw) = gateways.iter().find(|g| namespace(g) == gw_ns && name(g) == gw_name) else { continue };
        let section = parent.get("sectionName").and_then(Value::as_str);
        let port = parent.get("port").and_then(Value::as_i64);
        let mut reason = "NoMatchingParent";
        let mut accepted_any = false;
        for l in gw.pointer("/spec/listeners").and_then(Value::as_array).cloned().unwrap_or_default() {
            let lname = l.get("name").and_then(Value::as_str).unwrap_or("");
            if section.is_some_and(|s| s != lname)
                || port.is_some_and(|p| Some(p) != l.get("port").and_then(Value::as_i64))
            {
                continue;
            }
            let protocol = l.get("protocol").and_then(Value::as_str).unwrap_or("");
            let allowed_kinds: Vec<String> = match l.pointer("/allowedRoutes/kinds").and_then(Value::as_array) {
                Some(kinds) if !kinds.is_empty() => {
                    kinds.iter().filter_map(|k| k.get("kind").and_then(Value::as_str).map(str::to_string)).collect()
                }
                _ => listener_kinds(protocol).into_iter().map(str::to_string).collect(),
            };
            let from = l.pointer("/allowedRoutes/namespaces/from").and_then(Value::as_str).unwrap_or("Same");
            let namespace_ok = match from {
                "All" => true,
                "Selector" => {
                    let selector = l
                        .pointer("/allowedRoutes/namespaces/selector/matchLabels")
                        .and_then(Value::as_object)
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default();
                    let parsed = LabelSelector::parse(&selector).unwrap_or_default();
                    namespaces.iter().any(|n| name(n) == route_ns && parsed.matches(n))
                }
                _ => route_ns == gw_ns,
            };
            if !namespace_ok || !allowed_kinds.iter().any(|k| k == kind) {
                reason = "NotAllowedByListeners";
                continue;
            }
            let host_ok = match l.get("hostname").and_then(Value::as_str) {
                Some(lh) if !hostnames.is_empty() => hostnames.iter().any(|h| hostname_matches(lh, h)),
                _ => true,
            };
            if !host_ok {
                reason = "NoMatchingListenerHostname";
                continue;
            }
            accepted_any = true;
            *attached.entry((gw_ns.to_string(), gw_name.to_string(), lname.to_string())).or_default() += 1;
        }
        let accepted = if accepted_any {
            condition("Accepted", true, "Accepted", "Route was valid", &generation)
        } else {
            condition("Accepted", false, reason, "Route is not allowed by any listener of the parent", &generation)
        };
        let mut parent_ref =
            json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw_name, "namespace": gw_ns});
        if let Some(s) = section {
            parent_ref["sectionName"] = json!(s);
        }
        if let Some(p) = port {
            parent_ref["port"] = json!(p);
        }
        out.push(json!({
            "parentRef": parent_ref,
            "controllerName": GATEWAY_CONTROLLER,
            "conditions": [accepted, condition(
                    "ResolvedRefs",
                    resolved.0,
                    resolved.1,
                    if resolved.0 { "All references resolved" } else { "a backendRef could not be resolved" },
                    &generation,
                )],
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(listener_hostname: &str, from: &str) -> Value {
        json!({"metadata": {"name": "gw", "namespace": "app-a", "generation": 3}, "spec": {"gatewayClassName": "approuting-istio", "listeners": [
            {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": listener_hostname, "tls": {"mode": "Terminate", "certificateRefs": [{"name": "cert"}]}, "allowedRoutes": {"namespaces": {"from": from}}}
        ]}})
    }

    fn route(ns: &str, host: &str) -> Value {
        json!({"metadata": {"name": "r", "namespace": ns, "generation": 1}, "spec": {"parentRefs": [{"name": "gw", "namespace": "app-a"}], "hostnames": [host]}})
    }

    #[test]
    fn routes_attach_following_namespace_and_hostname_rules() {
        let gateways = vec![gw("*.example.com", "Same")];
        for (description, r, accepted, reason) in [
            ("same namespace, wildcard hostname", route("app-a", "a.example.com"), "True", "Accepted"),
            ("other namespace with from=Same", route("app-b", "a.example.com"), "False", "NotAllowedByListeners"),
            ("hostname outside the listener's", route("app-a", "a.other.com"), "False", "NoMatchingListenerHostname"),
        ] {
            let mut attached = BTreeMap::new();
            let parents = route_parents("HTTPRoute", &r, &gateways, &[], (true, "ResolvedRefs"), &mut attached);
            assert_eq!(parents[0]["conditions"][0]["status"], accepted, "{description}");
            assert_eq!(parents[0]["conditions"][0]["reason"], reason, "{description}");
        }
    }

    #[test]
    fn backends_resolve_to_services_and_cross_namespace_needs_a_grant() {
        let services: BTreeSet<(String, String)> =
            [("app-a".to_string(), "httpbin".to_string()), ("shared".to_string(), "api".to_string())].into();
        let route = |backend: Value| json!({"metadata": {"name": "r", "namespace": "app-a"}, "spec": {"rules": [{"backendRefs": [backend]}]}});
        let grant = json!({"metadata": {"name": "g", "namespace": "shared"}, "spec": {
            "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "app-a"}],
            "to": [{"group": "", "kind": "Service"}]}});
        for (description, backend, grants, expected) in [
            ("a local Service", json!({"name": "httpbin", "port": 8000}), vec![], (true, "ResolvedRefs")),
            ("a missing Service", json!({"name": "nope", "port": 80}), vec![], (false, "BackendNotFound")),
            (
                "another namespace without a grant",
                json!({"name": "api", "namespace": "shared", "port": 80}),
                vec![],
                (false, "RefNotPermitted"),
            ),
            (
                "another namespace with a grant",
                json!({"name": "api", "namespace": "shared", "port": 80}),
                vec![grant.clone()],
                (true, "ResolvedRefs"),
            ),
            (
                "not a Service",
                json!({"group": "example.com", "kind": "Bucket", "name": "b"}),
                vec![],
                (false, "InvalidKind"),
            ),
        ] {
            assert_eq!(resolve_backends("HTTPRoute", &route(backend), &services, &grants), expected, "{description}");
        }
    }

    #[test]
    fn another_writers_conditions_are_no_reason_to_write_but_a_field_it_no_longer_sets_is() {
        let secrets: BTreeSet<(String, String)> = [("app-a".to_string(), "cert".to_string())].into();
        let ours = gateway_status(&gw("a.example.com", "Same"), Some("203.0.113.10"), &secrets, &BTreeMap::new());
        let mut live = ours.clone();
        let foreign =
            json!({"type": "routewarden.io/CertificateReady", "status": "True", "reason": "CertificateReady"});
        live["listeners"][0]["conditions"].as_array_mut().expect("conditions").insert(0, foreign.clone());
        live["conditions"].as_array_mut().expect("conditions").push(foreign);
        assert!(same_status(&without_foreign_conditions(&live, &ours), &ours));

        let mut withheld = ours.clone();
        withheld.as_object_mut().expect("status").remove("addresses");
        assert!(!same_status(&without_foreign_conditions(&live, &withheld), &withheld), "the address must go");
        let mut flipped = ours.clone();
        flipped["listeners"][0]["conditions"][2]["status"] = json!("False");
        assert!(!same_status(&without_foreign_conditions(&live, &flipped), &flipped), "its own condition changed");
    }

    #[test]
    fn gateway_is_programmed_with_an_address_and_observed_generation() {
        let secrets: BTreeSet<(String, String)> = [("app-a".to_string(), "cert".to_string())].into();
        let status = gateway_status(&gw("a.example.com", "Same"), Some("203.0.113.10"), &secrets, &BTreeMap::new());
        assert_eq!(status["addresses"], json!([{"type": "IPAddress", "value": "203.0.113.10"}]));
        let programmed = status["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .find(|c| c["type"] == "Programmed")
            .expect("programmed")
            .clone();
        assert_eq!((programmed["status"].as_str(), programmed["observedGeneration"].as_i64()), (Some("True"), Some(3)));
        let withheld = gateway_status(&gw("a.example.com", "Same"), None, &secrets, &BTreeMap::new());
        assert!(withheld.get("addresses").is_none());
        assert_eq!(withheld["conditions"][1]["reason"], "AddressNotAssigned");
        let missing_secret =
            gateway_status(&gw("a.example.com", "Same"), Some("203.0.113.10"), &BTreeSet::new(), &BTreeMap::new());
        assert_eq!(missing_secret["listeners"][0]["conditions"][2]["reason"], "InvalidCertificateRef");
    }
}
