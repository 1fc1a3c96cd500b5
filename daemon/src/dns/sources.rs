//! What the DNS controller watches, and the pure conversion of the caches into the planner's
//! input. Gateways and routes are read as dynamic objects and parsed leniently, so one object the
//! typed bindings could not decode never stops the watch for the others; a field the planner
//! does not understand is left out rather than failing the object. Namespaces and ServiceAccounts
//! are watched as metadata only (labels and annotations are all that is needed).

use crate::crd::convert::{DnsConfig, SpecError};
use crate::crd::v1alpha1::{ClusterExternalDns, ExternalDns};
use crate::tls::sources::gateway_resource;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress as K8sIngress;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use routewarden_planner::dns::{
    Address, FromNamespaces, Gateway, Ingress, Listener, ParentRef, Route, RouteKind, Snapshot,
};
use routewarden_planner::selector::{LabelSelector, Labels, Operator, Requirement};
use serde_json::Value;
use std::sync::Arc;

pub fn route_resource(kind: RouteKind) -> ApiResource {
    let plural = match kind {
        RouteKind::Http => "httproutes",
        RouteKind::Grpc => "grpcroutes",
    };
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind.kind()), plural)
}

/// The reflectors' read sides.
#[derive(Clone)]
pub struct Caches {
    pub gateways: Store<DynamicObject>,
    pub http_routes: Store<DynamicObject>,
    pub grpc_routes: Store<DynamicObject>,
    pub ingresses: Store<K8sIngress>,
    pub namespaces: Store<PartialObjectMeta<Namespace>>,
    pub service_accounts: Store<PartialObjectMeta<ServiceAccount>>,
    pub cluster_dns: Store<ClusterExternalDns>,
    pub namespaced_dns: Store<ExternalDns>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("gateways", &self.gateways.state().len())
            .field("http_routes", &self.http_routes.state().len())
            .field("grpc_routes", &self.grpc_routes.state().len())
            .field("ingresses", &self.ingresses.state().len())
            .field("namespaces", &self.namespaces.state().len())
            .field("service_accounts", &self.service_accounts.state().len())
            .field("cluster_dns", &self.cluster_dns.state().len())
            .field("namespaced_dns", &self.namespaced_dns.state().len())
            .finish()
    }
}

impl Caches {
    /// Waits until every reflector has listed once: planning from a partial view would call
    /// records of the unlisted kinds vanished.
    pub async fn ready(&self) {
        let _ = self.gateways.wait_until_ready().await;
        let _ = self.http_routes.wait_until_ready().await;
        let _ = self.grpc_routes.wait_until_ready().await;
        let _ = self.ingresses.wait_until_ready().await;
        let _ = self.namespaces.wait_until_ready().await;
        let _ = self.service_accounts.wait_until_ready().await;
        let _ = self.cluster_dns.wait_until_ready().await;
        let _ = self.namespaced_dns.wait_until_ready().await;
    }

    pub fn service_account(&self, namespace: &str, name: &str) -> Option<Arc<PartialObjectMeta<ServiceAccount>>> {
        self.service_accounts.get(&reflector::ObjectRef::new(name).within(namespace))
    }

    /// The planner's view of the cluster.
    pub fn snapshot(&self) -> Snapshot {
        let mut routes: Vec<Route> =
            self.http_routes.state().iter().filter_map(|r| planned_route(r, RouteKind::Http)).collect();
        routes.extend(self.grpc_routes.state().iter().filter_map(|r| planned_route(r, RouteKind::Grpc)));
        Snapshot {
            gateways: self.gateways.state().iter().filter_map(|g| planned_gateway(g)).collect(),
            routes,
            ingresses: self.ingresses.state().iter().filter_map(|i| planned_ingress(i)).collect(),
            namespaces: self
                .namespaces
                .state()
                .iter()
                .filter_map(|n| Some((n.metadata.name.clone()?, labels_of(n.metadata.labels.as_ref()))))
                .collect(),
        }
    }

    /// Every DNS resource, converted; invalid ones keep their identity and error.
    pub fn dns_resources(&self) -> Vec<DnsObject> {
        let mut out: Vec<DnsObject> = self
            .cluster_dns
            .state()
            .iter()
            .map(|o| DnsObject {
                identity: format!("clusterexternaldns/{}", o.metadata.name.clone().unwrap_or_default()),
                config: DnsConfig::try_from(o.as_ref()),
                meta: o.metadata.clone(),
            })
            .collect();
        out.extend(self.namespaced_dns.state().iter().map(|o| DnsObject {
            identity: format!(
                "externaldns/{}/{}",
                o.metadata.namespace.clone().unwrap_or_default(),
                o.metadata.name.clone().unwrap_or_default()
            ),
            config: DnsConfig::try_from(o.as_ref()),
            meta: o.metadata.clone(),
        }));
        out.sort_by(|a, b| a.identity.cmp(&b.identity));
        out
    }
}

/// One ClusterExternalDNS or ExternalDNS as the controller sees it.
#[derive(Clone, Debug)]
pub struct DnsObject {
    /// `clusterexternaldns/<name>` or `externaldns/<namespace>/<name>`, as in record owners.
    pub identity: String,
    pub config: Result<DnsConfig, SpecError>,
    /// For the finalizer: deletion timestamp, finalizers, resourceVersion.
    pub meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
}

impl DnsObject {
    /// Being deleted (a finalizer holds it).
    pub fn deleting(&self) -> bool {
        self.meta.deletion_timestamp.is_some()
    }

    pub fn has_finalizer(&self) -> bool {
        self.meta.finalizers.as_ref().is_some_and(|f| f.iter().any(|f| f == super::FINALIZER))
    }

    /// `deletionPolicy: Delete` of a valid spec: its record sets go before the object does.
    pub fn deletes_records(&self) -> bool {
        self.config.as_ref().is_ok_and(|c| c.deletion_policy == crate::crd::v1alpha1::DeletionPolicy::Delete)
    }
}

/// Starts the watches; `changed` is notified after every event. Kinds a cluster may not have
/// (the Gateway API, routewarden's CRDs) are watched once they are served, so a cluster that
/// publishes only Ingresses still gets its records.
pub fn start(
    client: kube::Client,
    changed: crate::watches::Changed,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Caches {
    use crate::watches::{spawn, spawn_when_served};
    let all = watcher::Config::default;
    let optional = |what: &'static str, api_version: &'static str, resource: ApiResource| {
        let writer = reflector::store::Writer::new(resource.clone());
        let reader = writer.as_reader();
        let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
        let plural: &'static str = what;
        spawn_when_served(
            what,
            client.clone(),
            api_version,
            plural,
            writer,
            move |w| reflector::reflector(w, watcher(api, all())),
            &changed,
            &stop,
            None,
        );
        reader
    };
    let gateways = optional("gateways", "gateway.networking.k8s.io/v1", gateway_resource());
    let http_routes = optional("httproutes", "gateway.networking.k8s.io/v1", route_resource(RouteKind::Http));
    let grpc_routes = optional("grpcroutes", "gateway.networking.k8s.io/v1", route_resource(RouteKind::Grpc));

    let (ingresses, writer) = reflector::store();
    spawn("ingresses", reflector::reflector(writer, watcher(Api::all(client.clone()), all())), &changed, &stop);
    let (namespaces, writer) = reflector::store();
    let api = Api::<PartialObjectMeta<Namespace>>::all(client.clone());
    spawn("namespaces", reflector::reflector(writer, watcher(api, all())), &changed, &stop);
    let (service_accounts, writer) = reflector::store();
    let api = Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone());
    spawn("serviceaccounts", reflector::reflector(writer, watcher(api, all())), &changed, &stop);
    let (cluster_dns, writer) = reflector::store();
    let api = Api::all(client.clone());
    spawn_when_served(
        "clusterexternaldnses",
        client.clone(),
        "approuting.kubernetes.azure.com/v1alpha1",
        "clusterexternaldnses",
        writer,
        move |w| spec_changes(reflector::reflector(w, watcher(api, all()))),
        &changed,
        &stop,
        None,
    );
    let (namespaced_dns, writer) = reflector::store();
    let api = Api::all(client.clone());
    spawn_when_served(
        "externaldnses",
        client,
        "approuting.kubernetes.azure.com/v1alpha1",
        "externaldnses",
        writer,
        move |w| spec_changes(reflector::reflector(w, watcher(api, all()))),
        &changed,
        &stop,
        None,
    );
    Caches { gateways, http_routes, grpc_routes, ingresses, namespaces, service_accounts, cluster_dns, namespaced_dns }
}

/// What planning reads of a DNS resource beyond its spec (which `generation` stands for).
type Signature = (Option<i64>, bool, Option<Vec<String>>);

/// Passes on only the events of a DNS resource that change what planning reads: its spec (through
/// `metadata.generation`), its deletion and its finalizers. The reflector before it has already
/// cached every event, so the status writer still sees the status; but routewarden's own status
/// writes no longer wake the planner loop into a full pass each.
fn spec_changes<K, S>(stream: S) -> impl futures::Stream<Item = S::Item> + Send
where
    K: kube::Resource + Send + 'static,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send,
{
    use futures::StreamExt;
    let mut seen: std::collections::HashMap<(Option<String>, Option<String>), Signature> =
        std::collections::HashMap::new();
    stream.filter(move |event| {
        let keep = match event {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                let m = o.meta();
                let signature = (m.generation, m.deletion_timestamp.is_some(), m.finalizers.clone());
                seen.insert((m.namespace.clone(), m.name.clone()), signature.clone()) != Some(signature)
            }
            Ok(watcher::Event::Delete(o)) => {
                seen.remove(&(o.meta().namespace.clone(), o.meta().name.clone()));
                true
            }
            _ => true,
        };
        std::future::ready(keep)
    })
}

fn labels_of(m: Option<&std::collections::BTreeMap<String, String>>) -> Labels {
    m.cloned().unwrap_or_default().into_iter().collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn route_kind(v: &Value) -> Option<RouteKind> {
    match v.get("kind")?.as_str()? {
        "HTTPRoute" => Some(RouteKind::Http),
        "GRPCRoute" => Some(RouteKind::Grpc),
        _ => None,
    }
}

/// A `LabelSelector` JSON (`matchLabels` and `matchExpressions`), or `None` when it is malformed.
fn selector_of(v: &Value) -> Option<LabelSelector> {
    let match_labels = match v.get("matchLabels") {
        None | Some(Value::Null) => Labels::new(),
        Some(m) => {
            m.as_object()?.iter().map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect::<Option<Labels>>()?
        }
    };
    let mut match_expressions = Vec::new();
    for e in v.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let operator = match e.get("operator")?.as_str()? {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            _ => return None,
        };
        let values = e.get("values").and_then(Value::as_array).into_iter().flatten();
        match_expressions.push(Requirement {
            key: e.get("key")?.as_str()?.to_owned(),
            operator,
            values: values.map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()?,
        });
    }
    Some(LabelSelector { match_labels, match_expressions })
}

/// A selector no namespace matches.
fn nothing() -> LabelSelector {
    LabelSelector {
        match_labels: Labels::new(),
        match_expressions: vec![Requirement { key: String::new(), operator: Operator::In, values: Vec::new() }],
    }
}

/// The planner's view of a Gateway.
pub fn planned_gateway(gw: &DynamicObject) -> Option<Gateway> {
    let spec = gw.data.get("spec")?;
    let listeners = spec
        .get("listeners")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| {
            let allowed_namespaces = match str_at(l, "/allowedRoutes/namespaces/from").unwrap_or("Same") {
                "All" => FromNamespaces::All,
                // A selector the planner cannot read admits nothing rather than everything.
                "Selector" => match l.pointer("/allowedRoutes/namespaces/selector").and_then(selector_of) {
                    Some(s) => FromNamespaces::Selector(s),
                    None => FromNamespaces::Selector(nothing()),
                },
                _ => FromNamespaces::Same,
            };
            Some(Listener {
                name: l.get("name")?.as_str()?.to_owned(),
                hostname: l.get("hostname").and_then(Value::as_str).map(str::to_owned),
                port: u16::try_from(l.get("port")?.as_u64()?).ok()?,
                protocol: l.get("protocol").and_then(Value::as_str).unwrap_or_default().to_owned(),
                allowed_namespaces,
                allowed_kinds: l
                    .pointer("/allowedRoutes/kinds")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(route_kind)
                    .collect(),
            })
        })
        .collect();
    let addresses = gw
        .data
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("value").and_then(Value::as_str))
        .map(Address::parse)
        .collect();
    Some(Gateway {
        namespace: gw.metadata.namespace.clone()?,
        name: gw.metadata.name.clone()?,
        class: spec.get("gatewayClassName").and_then(Value::as_str).unwrap_or_default().to_owned(),
        labels: labels_of(gw.metadata.labels.as_ref()),
        listeners,
        addresses,
    })
}

/// The planner's view of an HTTPRoute or GRPCRoute. A parent counts as accepted when the route's
/// `status.parents` has an entry for the same parentRef with `Accepted=True`.
pub fn planned_route(route: &DynamicObject, kind: RouteKind) -> Option<Route> {
    let namespace = route.metadata.namespace.clone()?;
    let spec = route.data.get("spec")?;
    let statuses: Vec<&Value> =
        route.data.pointer("/status/parents").and_then(Value::as_array).into_iter().flatten().collect();
    let parents = spec
        .get("parentRefs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let mut parent = ParentRef {
                group: p.get("group").and_then(Value::as_str).map(str::to_owned),
                kind: p.get("kind").and_then(Value::as_str).map(str::to_owned),
                namespace: p.get("namespace").and_then(Value::as_str).map(str::to_owned),
                name: p.get("name")?.as_str()?.to_owned(),
                section_name: p.get("sectionName").and_then(Value::as_str).map(str::to_owned),
                port: p.get("port").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()),
                accepted: false,
            };
            parent.accepted = statuses.iter().any(|s| {
                s.get("parentRef").is_some_and(|r| same_parent(r, &parent, &namespace))
                    && s.get("conditions").and_then(Value::as_array).into_iter().flatten().any(|c| {
                        c.get("type").and_then(Value::as_str) == Some("Accepted")
                            && c.get("status").and_then(Value::as_str) == Some("True")
                    })
            });
            Some(parent)
        })
        .collect();
    Some(Route {
        kind,
        namespace,
        name: route.metadata.name.clone()?,
        labels: labels_of(route.metadata.labels.as_ref()),
        annotations: labels_of(route.metadata.annotations.as_ref()),
        hostnames: spec
            .get("hostnames")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        parents,
    })
}

/// Whether a `status.parents[].parentRef` is `parent` (defaults filled in on both sides).
fn same_parent(r: &Value, parent: &ParentRef, route_namespace: &str) -> bool {
    let s = |k: &str| r.get(k).and_then(Value::as_str);
    s("group").unwrap_or("gateway.networking.k8s.io") == parent.group.as_deref().unwrap_or("gateway.networking.k8s.io")
        && s("kind").unwrap_or("Gateway") == parent.kind.as_deref().unwrap_or("Gateway")
        && s("namespace").unwrap_or(route_namespace) == parent.namespace.as_deref().unwrap_or(route_namespace)
        && s("name") == Some(parent.name.as_str())
        && s("sectionName") == parent.section_name.as_deref()
        && r.get("port").and_then(Value::as_u64).and_then(|n| u16::try_from(n).ok()) == parent.port
}

pub fn planned_ingress(i: &K8sIngress) -> Option<Ingress> {
    let hosts =
        i.spec.as_ref().and_then(|s| s.rules.as_ref()).into_iter().flatten().filter_map(|r| r.host.clone()).collect();
    let addresses = i
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ip.clone().or_else(|| e.hostname.clone()))
        .map(|a| Address::parse(&a))
        .collect();
    Some(Ingress {
        namespace: i.metadata.namespace.clone()?,
        name: i.metadata.name.clone()?,
        labels: labels_of(i.metadata.labels.as_ref()),
        annotations: labels_of(i.metadata.annotations.as_ref()),
        hosts,
        addresses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dynamic(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reads_a_gateways_listeners_and_addresses() {
        let gw = planned_gateway(&dynamic(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "g", "namespace": "ns", "labels": {"zone": "a"}},
            "spec": {"gatewayClassName": "approuting-istio", "listeners": [
                {"name": "https", "hostname": "a.example.com", "port": 443, "protocol": "HTTPS",
                 "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "GRPCRoute"}]}},
                {"name": "broken", "protocol": "HTTP"}
            ]},
            "status": {"addresses": [{"type": "IPAddress", "value": "203.0.113.7"}]}
        })))
        .unwrap();
        assert_eq!(gw.class, "approuting-istio");
        assert_eq!(gw.labels.get("zone").map(String::as_str), Some("a"));
        assert_eq!(gw.listeners.len(), 1, "a listener without a port is left out, not the Gateway");
        assert_eq!(gw.listeners[0].allowed_namespaces, FromNamespaces::All);
        assert_eq!(gw.listeners[0].allowed_kinds, vec![RouteKind::Grpc]);
        assert_eq!(gw.addresses, vec![Address::V4("203.0.113.7".parse().unwrap())]);
    }

    #[test]
    fn a_route_parent_is_accepted_only_by_its_own_status_entry() {
        let route = planned_route(
            &dynamic(json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "r", "namespace": "ns"},
                "spec": {"hostnames": ["a.example.com"], "parentRefs": [
                    {"name": "g1"}, {"name": "g2", "sectionName": "https"}
                ]},
                "status": {"parents": [
                    {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "g1"},
                     "conditions": [{"type": "Accepted", "status": "True"}]},
                    {"parentRef": {"name": "g2"}, "conditions": [{"type": "Accepted", "status": "True"}]}
                ]}
            })),
            RouteKind::Http,
        )
        .unwrap();
        assert_eq!(route.hostnames, vec!["a.example.com".to_owned()]);
        let accepted: Vec<(&str, bool)> = route.parents.iter().map(|p| (p.name.as_str(), p.accepted)).collect();
        assert_eq!(accepted, vec![("g1", true), ("g2", false)], "g2's status entry names no sectionName");
    }
}
