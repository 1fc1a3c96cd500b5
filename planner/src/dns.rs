//! The DNS planner: ClusterExternalDNS / ExternalDNS resources and a snapshot of Gateways,
//! routes, Ingresses and namespaces in; desired record sets per zone and findings out.
//!
//! For each DNS resource, in its scope (the cluster, or its own namespace for `ExternalDNS`):
//!
//! | source | published hostnames | targets |
//! |---|---|---|
//! | managed Gateway matching `gatewayLabels` | each non-wildcard listener hostname | Gateway `status.addresses` |
//! | HTTPRoute / GRPCRoute matching `routeAndIngressLabels`, attached to such a Gateway | route hostnames ∩ listener hostname (or the listener's, when the route has none) | the Gateway's addresses |
//! | Ingress matching `routeAndIngressLabels` (with `resourceTypes: [ingress]`) | `spec.rules[].host` | `status.loadBalancer.ingress` |
//!
//! Attachment follows Gateway API: a parentRef names the Gateway (group, kind, namespace
//! defaulting to the route's), optionally a listener (`sectionName`) and `port`; the listener must
//! allow the route's namespace (`Same`, `All`, or a namespace label selector) and kind; by default
//! the route must be `Accepted` by that parent. IPv4 targets make A records, IPv6 AAAA, a hostname
//! a CNAME (only when there is no address). TTL is 300 s unless the route carries the
//! `external-dns.alpha.kubernetes.io/ttl` (or `external-dns.kubernetes.io/ttl`) annotation. Each
//! hostname goes to the resource's zone with the longest matching suffix; hostnames under no zone
//! are reported, not published.
//!
//! Conflicts are settled deterministically: resources are taken oldest first (then by kind,
//! namespace, name); a name (in a zone) claimed by an earlier resource is not planned for a later
//! one, which gets a [`Finding::Conflict`]. Within one resource, a name that would need both a
//! CNAME and addresses keeps the addresses and reports the CNAME.

use crate::hostname::{intersect, normalize};
use crate::selector::{LabelFilter, LabelSelector, Labels};
use crate::zone::Zone;
use routewarden_store::{RecordSetKey, RecordType};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const DEFAULT_TTL: u32 = 300;
pub const TTL_ANNOTATIONS: [&str; 2] = ["external-dns.alpha.kubernetes.io/ttl", "external-dns.kubernetes.io/ttl"];
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// A Kubernetes object, as `Kind/namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Address {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Hostname(String),
}

impl Address {
    /// From a Gateway `status.addresses` entry or an Ingress load-balancer entry.
    pub fn parse(value: &str) -> Address {
        if let Ok(v4) = value.parse() {
            Address::V4(v4)
        } else if let Ok(v6) = value.parse() {
            Address::V6(v6)
        } else {
            Address::Hostname(normalize(value))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    Http,
    Grpc,
}

impl RouteKind {
    pub fn kind(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FromNamespaces {
    #[default]
    Same,
    All,
    Selector(LabelSelector),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub hostname: Option<String>,
    pub port: u16,
    pub protocol: String,
    pub allowed_namespaces: FromNamespaces,
    /// Route kinds the listener allows; empty means the protocol's defaults.
    pub allowed_kinds: Vec<RouteKind>,
}

impl Listener {
    fn allows_kind(&self, kind: RouteKind) -> bool {
        if !self.allowed_kinds.is_empty() {
            return self.allowed_kinds.contains(&kind);
        }
        matches!(self.protocol.to_ascii_uppercase().as_str(), "HTTP" | "HTTPS")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    pub namespace: String,
    pub name: String,
    pub class: String,
    pub labels: Labels,
    pub listeners: Vec<Listener>,
    pub addresses: Vec<Address>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentRef {
    pub group: Option<String>,
    pub kind: Option<String>,
    pub namespace: Option<String>,
    pub name: String,
    pub section_name: Option<String>,
    pub port: Option<u16>,
    /// The route's `status.parents` entry for this parent says `Accepted=True`.
    pub accepted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub kind: RouteKind,
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub hostnames: Vec<String>,
    pub parents: Vec<ParentRef>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingress {
    pub namespace: String,
    pub name: String,
    pub labels: Labels,
    pub annotations: Labels,
    pub hosts: Vec<String>,
    pub addresses: Vec<Address>,
}

/// What the planner sees of the cluster.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub gateways: Vec<Gateway>,
    pub routes: Vec<Route>,
    pub ingresses: Vec<Ingress>,
    /// Namespace labels, for `allowedRoutes.namespaces.selector`.
    pub namespaces: BTreeMap<String, Labels>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Cluster,
    Namespace(String),
}

/// A ClusterExternalDNS (`Scope::Cluster`) or ExternalDNS (`Scope::Namespace`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsResource {
    pub scope: Scope,
    pub name: String,
    /// Creation time (any monotonic unit), the first key of the conflict order.
    pub created: i64,
    pub zones: Vec<Zone>,
    pub gateways: bool,
    pub ingresses: bool,
    pub gateway_labels: Option<LabelFilter>,
    pub route_labels: Option<LabelFilter>,
    /// TTL when no annotation says otherwise.
    pub ttl: u32,
}

impl DnsResource {
    /// `clusterexternaldns/<name>` or `externaldns/<namespace>/<name>`: the resource part of the
    /// owner id written to Azure.
    pub fn identity(&self) -> String {
        match &self.scope {
            Scope::Cluster => format!("clusterexternaldns/{}", self.name),
            Scope::Namespace(ns) => format!("externaldns/{ns}/{}", self.name),
        }
    }

    fn sees(&self, namespace: &str) -> bool {
        match &self.scope {
            Scope::Cluster => true,
            Scope::Namespace(ns) => ns == namespace,
        }
    }

    fn order_key(&self) -> (i64, bool, String, String) {
        let (namespaced, ns) = match &self.scope {
            Scope::Cluster => (false, String::new()),
            Scope::Namespace(ns) => (true, ns.clone()),
        };
        (self.created, namespaced, ns, self.name.clone())
    }
}

/// Daemon-wide planner settings.
#[derive(Clone, Debug)]
pub struct PlanConfig {
    pub cluster_id: String,
    /// GatewayClasses whose Gateways are managed.
    pub gateway_classes: Vec<String>,
    /// Publish route hostnames only for parents that accepted the route.
    pub require_accepted: bool,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            cluster_id: String::new(),
            gateway_classes: vec!["approuting-istio".into()],
            require_accepted: true,
        }
    }
}

/// One desired record set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRecord {
    pub ttl: u32,
    /// Sorted, de-duplicated.
    pub targets: Vec<String>,
    /// `<cluster id>/<resource identity>`, written to the record set's metadata.
    pub owner: String,
    /// The DNS resource that plans it.
    pub resource: String,
    /// The objects it comes from.
    pub sources: BTreeSet<ObjectRef>,
}

/// Something status, Events and the stale report should say.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Finding {
    /// A hostname under none of the resource's zones.
    Unzoned { resource: String, hostname: String, source: ObjectRef },
    /// `loser` wanted a name in `zone` that `winner` already plans.
    Conflict { zone: String, name: String, winner: String, loser: String },
    /// A CNAME dropped because the same name also has addresses.
    CnameShadowed { resource: String, hostname: String, source: ObjectRef },
    /// A Gateway or Ingress with more than one hostname address: a CNAME can hold only one.
    AmbiguousCname { resource: String, hostname: String, targets: Vec<String> },
    /// A TTL annotation that is not a number of seconds or a duration.
    InvalidTtl { source: ObjectRef, value: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub records: BTreeMap<RecordSetKey, PlannedRecord>,
    pub findings: Vec<Finding>,
    /// (zone id, relative name) that an existing source's spec asks for, published or not: a
    /// name here without a record (its Gateway has no address, its route is not Accepted) is a
    /// flap to wait out, while a name no source asks for any more (a renamed route, a deleted
    /// Gateway) can go at once.
    pub wanted: BTreeSet<(String, String)>,
}

/// A hostname to publish, before zones and record types.
struct Endpoint<'a> {
    hostname: String,
    targets: &'a [Address],
    ttl: u32,
    source: ObjectRef,
    /// The parent accepted the route (always true for Gateways and Ingresses).
    accepted: bool,
}

fn ttl_of(source: &ObjectRef, annotations: &Labels, default: u32, findings: &mut Vec<Finding>) -> u32 {
    let Some(value) = TTL_ANNOTATIONS.iter().find_map(|a| annotations.get(*a)) else { return default };
    let parsed = value
        .trim()
        .parse::<u32>()
        .ok()
        .or_else(|| humantime::parse_duration(value.trim()).ok().and_then(|d| u32::try_from(d.as_secs()).ok()));
    match parsed {
        Some(ttl) if ttl > 0 => ttl,
        _ => {
            findings.push(Finding::InvalidTtl { source: source.clone(), value: value.clone() });
            default
        }
    }
}

fn parent_names(parent: &ParentRef, route: &Route, gw: &Gateway) -> bool {
    parent.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
        && parent.kind.as_deref().unwrap_or("Gateway") == "Gateway"
        && parent.namespace.as_deref().unwrap_or(&route.namespace) == gw.namespace
        && parent.name == gw.name
}

fn listener_admits(l: &Listener, parent: &ParentRef, route: &Route, gw: &Gateway, snap: &Snapshot) -> bool {
    parent.section_name.as_deref().is_none_or(|s| s == l.name)
        && parent.port.is_none_or(|p| p == l.port)
        && l.allows_kind(route.kind)
        && match &l.allowed_namespaces {
            FromNamespaces::Same => route.namespace == gw.namespace,
            FromNamespaces::All => true,
            FromNamespaces::Selector(sel) => {
                snap.namespaces.get(&route.namespace).is_some_and(|labels| sel.matches(labels))
            }
        }
}

fn endpoints<'a>(
    r: &DnsResource,
    snap: &'a Snapshot,
    cfg: &PlanConfig,
    findings: &mut Vec<Finding>,
) -> Vec<Endpoint<'a>> {
    let mut out = Vec::new();
    if r.gateways {
        let gateways: Vec<&Gateway> = snap
            .gateways
            .iter()
            .filter(|g| cfg.gateway_classes.contains(&g.class))
            .filter(|g| r.sees(&g.namespace))
            .filter(|g| r.gateway_labels.as_ref().is_none_or(|f| f.matches(&g.labels)))
            .collect();
        for g in &gateways {
            let source = ObjectRef { kind: "Gateway", namespace: g.namespace.clone(), name: g.name.clone() };
            for l in &g.listeners {
                if let Some(h) = l.hostname.as_deref().map(normalize).filter(|h| !h.starts_with("*.")) {
                    out.push(Endpoint {
                        hostname: h,
                        targets: &g.addresses,
                        ttl: r.ttl,
                        source: source.clone(),
                        accepted: true,
                    });
                }
            }
        }
        let routes = snap
            .routes
            .iter()
            .filter(|rt| r.sees(&rt.namespace))
            .filter(|rt| r.route_labels.as_ref().is_none_or(|f| f.matches(&rt.labels)));
        for route in routes {
            let source =
                ObjectRef { kind: route.kind.kind(), namespace: route.namespace.clone(), name: route.name.clone() };
            let ttl = ttl_of(&source, &route.annotations, r.ttl, findings);
            for parent in &route.parents {
                let accepted = parent.accepted || !cfg.require_accepted;
                for g in gateways.iter().filter(|g| parent_names(parent, route, g)) {
                    for l in g.listeners.iter().filter(|l| listener_admits(l, parent, route, g, snap)) {
                        for h in intersect(&route.hostnames, l.hostname.as_deref()) {
                            out.push(Endpoint {
                                hostname: h,
                                targets: &g.addresses,
                                ttl,
                                source: source.clone(),
                                accepted,
                            });
                        }
                    }
                }
            }
        }
    }
    if r.ingresses {
        let ingresses = snap
            .ingresses
            .iter()
            .filter(|i| r.sees(&i.namespace))
            .filter(|i| r.route_labels.as_ref().is_none_or(|f| f.matches(&i.labels)));
        for i in ingresses {
            let source = ObjectRef { kind: "Ingress", namespace: i.namespace.clone(), name: i.name.clone() };
            let ttl = ttl_of(&source, &i.annotations, r.ttl, findings);
            for h in i.hosts.iter().map(|h| normalize(h)).filter(|h| !h.is_empty()) {
                out.push(Endpoint { hostname: h, targets: &i.addresses, ttl, source: source.clone(), accepted: true });
            }
        }
    }
    out
}

/// The zone with the longest name containing `host`.
fn zone_for<'z>(zones: &'z [Zone], host: &str) -> Option<(&'z Zone, String)> {
    zones.iter().filter_map(|z| z.relative_name(host).map(|rel| (z, rel))).max_by_key(|(z, _)| z.name.len())
}

/// Plans every resource. Pure: the same input gives the same plan.
pub fn plan(resources: &[DnsResource], snap: &Snapshot, cfg: &PlanConfig) -> Plan {
    let mut ordered: Vec<&DnsResource> = resources.iter().collect();
    ordered.sort_by_key(|r| r.order_key());
    let mut plan = Plan::default();
    // (zone id, relative name) → identity of the resource that plans it.
    let mut claimed: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in ordered {
        let identity = r.identity();
        let owner = format!("{}/{identity}", cfg.cluster_id);
        let mut mine: BTreeMap<RecordSetKey, PlannedRecord> = BTreeMap::new();
        for ep in endpoints(r, snap, cfg, &mut plan.findings) {
            let Some((zone, name)) = zone_for(&r.zones, &ep.hostname) else {
                if ep.accepted {
                    plan.findings.push(Finding::Unzoned {
                        resource: identity.clone(),
                        hostname: ep.hostname,
                        source: ep.source,
                    });
                }
                continue;
            };
            plan.wanted.insert((zone.id.clone(), name.clone()));
            if !ep.accepted {
                continue;
            }
            let mut by_type: BTreeMap<RecordType, Vec<String>> = BTreeMap::new();
            for a in ep.targets {
                let (t, v) = match a {
                    Address::V4(ip) => (RecordType::A, ip.to_string()),
                    Address::V6(ip) => (RecordType::Aaaa, ip.to_string()),
                    Address::Hostname(h) => (RecordType::Cname, h.clone()),
                };
                by_type.entry(t).or_default().push(v);
            }
            if by_type.contains_key(&RecordType::A) || by_type.contains_key(&RecordType::Aaaa) {
                by_type.remove(&RecordType::Cname);
            }
            for (record_type, targets) in by_type {
                let key = RecordSetKey { zone: zone.id.clone(), name: name.clone(), record_type };
                let rec = mine.entry(key).or_insert_with(|| PlannedRecord {
                    ttl: ep.ttl,
                    targets: Vec::new(),
                    owner: owner.clone(),
                    resource: identity.clone(),
                    sources: BTreeSet::new(),
                });
                rec.ttl = rec.ttl.min(ep.ttl);
                rec.targets.extend(targets);
                rec.targets.sort();
                rec.targets.dedup();
                rec.sources.insert(ep.source.clone());
            }
        }
        // CNAME exclusivity within the resource, and a CNAME holds one name.
        let names_with_addresses: BTreeSet<(String, String)> = mine
            .keys()
            .filter(|k| k.record_type != RecordType::Cname)
            .map(|k| (k.zone.clone(), k.name.clone()))
            .collect();
        mine.retain(|k, rec| {
            if k.record_type != RecordType::Cname {
                return true;
            }
            let hostname = r.zones.iter().find(|z| z.id == k.zone).map(|z| z.hostname(&k.name)).unwrap_or_default();
            if names_with_addresses.contains(&(k.zone.clone(), k.name.clone())) {
                for source in &rec.sources {
                    plan.findings.push(Finding::CnameShadowed {
                        resource: identity.clone(),
                        hostname: hostname.clone(),
                        source: source.clone(),
                    });
                }
                return false;
            }
            if rec.targets.len() > 1 {
                plan.findings.push(Finding::AmbiguousCname {
                    resource: identity.clone(),
                    hostname,
                    targets: rec.targets.clone(),
                });
                rec.targets.truncate(1);
            }
            true
        });
        // Names already planned by an earlier resource stay with it.
        let mut lost: BTreeMap<(String, String), String> = BTreeMap::new();
        for (key, rec) in mine {
            let name = (key.zone.clone(), key.name.clone());
            match claimed.get(&name) {
                Some(winner) if winner != &identity => {
                    lost.insert(name, winner.clone());
                }
                _ => {
                    claimed.insert(name, identity.clone());
                    plan.records.insert(key, rec);
                }
            }
        }
        for ((zone, name), winner) in lost {
            plan.findings.push(Finding::Conflict { zone, name, winner, loser: identity.clone() });
        }
    }
    plan.findings.sort();
    plan.findings.dedup();
    plan
}
