//! Planner table tests: seed 000's walkthrough, Gateway API attachment rules, filters, scopes,
//! zones, record types, TTLs and conflicts. No runtime, no I/O: objects in, plan out.
#![allow(clippy::unwrap_used)]
use routewarden_planner::dns::*;
use routewarden_planner::selector::{LabelFilter, LabelSelector, Labels};
use routewarden_planner::zone::Zone;

fn zone(name: &str) -> Zone {
    Zone::parse(&format!("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/dnszones/{name}")).unwrap()
}

fn private_zone(name: &str) -> Zone {
    Zone::parse(&format!("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/privateDnsZones/{name}"))
        .unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn listener(name: &str, hostname: Option<&str>) -> Listener {
    Listener {
        name: name.into(),
        hostname: hostname.map(Into::into),
        port: 443,
        protocol: "HTTPS".into(),
        allowed_namespaces: FromNamespaces::Same,
        allowed_kinds: vec![],
    }
}

/// A managed Gateway with one HTTPS listener `https` for `hostname` and one address.
fn gateway(ns: &str, name: &str, hostname: &str, ip: &str) -> Gateway {
    Gateway {
        namespace: ns.into(),
        name: name.into(),
        class: "approuting-istio".into(),
        labels: Labels::new(),
        listeners: vec![listener("https", Some(hostname))],
        addresses: vec![Address::parse(ip)],
    }
}

fn parent(name: &str) -> ParentRef {
    ParentRef {
        group: None,
        kind: None,
        namespace: None,
        name: name.into(),
        section_name: None,
        port: None,
        accepted: true,
    }
}

fn route(ns: &str, name: &str, hostnames: &[&str], parent_gateway: &str) -> Route {
    Route {
        kind: RouteKind::Http,
        namespace: ns.into(),
        name: name.into(),
        labels: Labels::new(),
        annotations: Labels::new(),
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
        parents: vec![parent(parent_gateway)],
    }
}

fn cluster_dns(name: &str, zones: Vec<Zone>) -> DnsResource {
    DnsResource {
        scope: Scope::Cluster,
        name: name.into(),
        created: 0,
        zones,
        gateways: true,
        ingresses: false,
        gateway_labels: None,
        route_labels: None,
        ttl: DEFAULT_TTL,
    }
}

fn cfg() -> PlanConfig {
    PlanConfig { cluster_id: "cluster-1".into(), ..PlanConfig::default() }
}

/// `name TYPE targets` lines, sorted, for compact assertions.
fn records(plan: &Plan) -> Vec<String> {
    plan.records
        .iter()
        .map(|(k, r)| format!("{} {} {} ttl={}", k.name, k.record_type, r.targets.join(","), r.ttl))
        .collect()
}

fn seed_000() -> Snapshot {
    let mut a = gateway("app-a", "gateway-a", "a.contoso.com", "20.0.0.1");
    a.labels = labels(&[("zone", "a")]);
    let mut b = gateway("app-b", "gateway-b", "b.contoso.com", "20.0.0.2");
    b.labels = labels(&[("zone", "b")]);
    let mut c = gateway("app-a", "gateway-c", "c.contoso.com", "20.0.0.3");
    c.labels = labels(&[("zone", "c")]);
    Snapshot {
        gateways: vec![a, b, c],
        routes: vec![
            route("app-a", "route-a", &["a.contoso.com"], "gateway-a"),
            route("app-b", "route-b", &["b.contoso.com"], "gateway-b"),
            route("app-a", "route-c", &["c.contoso.com"], "gateway-c"),
        ],
        ..Snapshot::default()
    }
}

#[test]
fn seed_000_cluster_external_dns_publishes_an_a_record_per_gateway() {
    let mut snap = seed_000();
    snap.gateways.retain(|g| g.name != "gateway-c");
    snap.routes.retain(|r| r.name != "route-c");
    let plan = plan(&[cluster_dns("demo-cluster-dns", vec![zone("contoso.com")])], &snap, &cfg());
    assert_eq!(records(&plan), ["a A 20.0.0.1 ttl=300", "b A 20.0.0.2 ttl=300"]);
    let a = plan.records.values().next().unwrap();
    assert_eq!(a.owner, "cluster-1/clusterexternaldns/demo-cluster-dns");
    let sources: Vec<String> = a.sources.iter().map(ToString::to_string).collect();
    assert_eq!(sources, ["Gateway/app-a/gateway-a", "HTTPRoute/app-a/route-a"]);
    assert!(plan.findings.is_empty(), "{:?}", plan.findings);
}

#[test]
fn seed_000_namespaced_external_dns_sees_its_namespace_and_its_label_filter() {
    let edns = DnsResource {
        scope: Scope::Namespace("app-a".into()),
        gateway_labels: Some(LabelFilter::parse("zone=c").unwrap()),
        ..cluster_dns("demo-ns-dns", vec![zone("contoso.com")])
    };
    let plan = plan(&[edns], &seed_000(), &cfg());
    assert_eq!(records(&plan), ["c A 20.0.0.3 ttl=300"], "gateway-b is in app-b; gateway-a is labelled zone=a");
    assert_eq!(plan.records.values().next().unwrap().owner, "cluster-1/externaldns/app-a/demo-ns-dns");
}

/// The route lives in `apps` and names its parent in `infra` explicitly.
fn from_apps_namespace(r: &mut Route) {
    r.namespace = "apps".into();
    r.parents[0].namespace = Some("infra".into());
}

/// The listener admits routes from namespaces labelled `shared-gw=yes`.
fn allow_shared_gw_namespaces(l: &mut Listener) {
    l.allowed_namespaces = FromNamespaces::Selector(LabelSelector {
        match_labels: labels(&[("shared-gw", "yes")]),
        match_expressions: vec![],
    });
}

/// Route hostnames only (the Gateway listener has no hostname of its own), so attachment decides.
fn attached(
    route_mut: impl Fn(&mut Route),
    listener_mut: impl Fn(&mut Listener),
    snap_mut: impl Fn(&mut Snapshot),
) -> Vec<String> {
    let mut g = gateway("infra", "gw", "unused", "20.0.0.9");
    g.listeners = vec![listener("https", None)];
    listener_mut(&mut g.listeners[0]);
    let mut r = route("infra", "r", &["app.contoso.com"], "gw");
    route_mut(&mut r);
    let mut snap = Snapshot { gateways: vec![g], routes: vec![r], ..Snapshot::default() };
    snap_mut(&mut snap);
    records(&plan(&[cluster_dns("d", vec![zone("contoso.com")])], &snap, &cfg()))
}

#[test]
fn follows_gateway_api_attachment_rules() {
    let yes = vec!["app A 20.0.0.9 ttl=300".to_string()];
    let no: Vec<String> = vec![];
    type Case = (&'static str, fn(&mut Route), fn(&mut Listener), fn(&mut Snapshot), bool);
    let cases: Vec<Case> = vec![
        ("plain attachment", |_| {}, |_| {}, |_| {}, true),
        ("sectionName names the listener", |r| r.parents[0].section_name = Some("https".into()), |_| {}, |_| {}, true),
        (
            "sectionName names another listener",
            |r| r.parents[0].section_name = Some("http".into()),
            |_| {},
            |_| {},
            false,
        ),
        ("port matches", |r| r.parents[0].port = Some(443), |_| {}, |_| {}, true),
        ("port differs", |r| r.parents[0].port = Some(80), |_| {}, |_| {}, false),
        ("not accepted by the parent", |r| r.parents[0].accepted = false, |_| {}, |_| {}, false),
        ("parentRef to a Service", |r| r.parents[0].kind = Some("Service".into()), |_| {}, |_| {}, false),
        ("parentRef in another group", |r| r.parents[0].group = Some("example.io".into()), |_| {}, |_| {}, false),
        ("route in another namespace, listener allows Same", from_apps_namespace, |_| {}, |_| {}, false),
        (
            "route in another namespace without parent namespace",
            |r| r.namespace = "apps".into(),
            |l| l.allowed_namespaces = FromNamespaces::All,
            |_| {},
            false,
        ),
        (
            "route in another namespace, listener allows All",
            from_apps_namespace,
            |l| l.allowed_namespaces = FromNamespaces::All,
            |_| {},
            true,
        ),
        (
            "namespace selector matches",
            from_apps_namespace,
            allow_shared_gw_namespaces,
            |s| {
                s.namespaces.insert("apps".into(), labels(&[("shared-gw", "yes")]));
            },
            true,
        ),
        (
            "namespace selector does not match",
            from_apps_namespace,
            allow_shared_gw_namespaces,
            |s| {
                s.namespaces.insert("apps".into(), Labels::new());
            },
            false,
        ),
        ("GRPCRoute on an HTTPS listener", |r| r.kind = RouteKind::Grpc, |_| {}, |_| {}, true),
        (
            "GRPCRoute where only HTTPRoute is allowed",
            |r| r.kind = RouteKind::Grpc,
            |l| l.allowed_kinds = vec![RouteKind::Http],
            |_| {},
            false,
        ),
        ("HTTPRoute on a TCP listener", |_| {}, |l| l.protocol = "TCP".into(), |_| {}, false),
        ("hostname outside the listener's", |_| {}, |l| l.hostname = Some("*.fabrikam.com".into()), |_| {}, false),
        ("hostname under the listener's wildcard", |_| {}, |l| l.hostname = Some("*.contoso.com".into()), |_| {}, true),
        ("Gateway of an unmanaged class", |_| {}, |_| {}, |s| s.gateways[0].class = "istio".into(), false),
    ];
    for (what, r, l, s, expected) in cases {
        assert_eq!(attached(r, l, s), if expected { yes.clone() } else { no.clone() }, "{what}");
    }
}

#[test]
fn a_route_without_hostnames_inherits_the_listener_hostname() {
    let snap = Snapshot {
        gateways: vec![gateway("ns", "gw", "shop.contoso.com", "20.0.0.1")],
        routes: vec![route("ns", "r", &[], "gw")],
        ..Snapshot::default()
    };
    let plan = plan(&[cluster_dns("d", vec![zone("contoso.com")])], &snap, &cfg());
    let rec = plan.records.values().next().unwrap();
    assert_eq!(records(&plan), ["shop A 20.0.0.1 ttl=300"]);
    assert!(rec.sources.iter().any(|s| s.kind == "HTTPRoute"));
}

#[test]
fn record_types_follow_the_gateway_addresses() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("IPv4", &["20.0.0.1"], &["a A 20.0.0.1 ttl=300"]),
        ("IPv6", &["2001:db8::1"], &["a AAAA 2001:db8::1 ttl=300"]),
        ("dual stack", &["20.0.0.1", "2001:db8::1"], &["a A 20.0.0.1 ttl=300", "a AAAA 2001:db8::1 ttl=300"]),
        ("hostname", &["lb.azure.example."], &["a CNAME lb.azure.example ttl=300"]),
        ("addresses win over a hostname", &["lb.azure.example", "20.0.0.1"], &["a A 20.0.0.1 ttl=300"]),
        ("several IPv4", &["20.0.0.2", "20.0.0.1"], &["a A 20.0.0.1,20.0.0.2 ttl=300"]),
        ("no address yet", &[], &[]),
    ];
    for (what, addrs, want) in cases {
        let mut g = gateway("ns", "gw", "a.contoso.com", "0.0.0.0");
        g.addresses = addrs.iter().map(|a| Address::parse(a)).collect();
        let snap = Snapshot { gateways: vec![g], ..Snapshot::default() };
        assert_eq!(records(&plan(&[cluster_dns("d", vec![zone("contoso.com")])], &snap, &cfg())), *want, "{what}");
    }
}

#[test]
fn a_gateway_with_two_hostname_addresses_gets_one_cname_and_a_finding() {
    let mut g = gateway("ns", "gw", "a.contoso.com", "0.0.0.0");
    g.addresses = vec![Address::parse("lb2.example"), Address::parse("lb1.example")];
    let plan = plan(
        &[cluster_dns("d", vec![zone("contoso.com")])],
        &Snapshot { gateways: vec![g], ..Snapshot::default() },
        &cfg(),
    );
    assert_eq!(records(&plan), ["a CNAME lb1.example ttl=300"]);
    assert!(matches!(&plan.findings[..], [Finding::AmbiguousCname { hostname, .. }] if hostname == "a.contoso.com"));
}

#[test]
fn each_hostname_goes_to_the_longest_matching_zone_or_is_reported() {
    let snap = Snapshot {
        gateways: vec![
            gateway("ns", "apex", "contoso.com", "20.0.0.1"),
            gateway("ns", "deep", "x.dev.contoso.com", "20.0.0.2"),
            gateway("ns", "mid", "y.contoso.com", "20.0.0.3"),
            gateway("ns", "other", "z.fabrikam.com", "20.0.0.4"),
        ],
        ..Snapshot::default()
    };
    let (outer, inner) = (zone("contoso.com"), private_zone("dev.contoso.com"));
    let plan = plan(&[cluster_dns("d", vec![outer.clone(), inner.clone()])], &snap, &cfg());
    let placed: Vec<(String, String)> = plan.records.keys().map(|k| (k.zone.clone(), k.name.clone())).collect();
    assert_eq!(
        placed,
        [(outer.id.clone(), "@".into()), (outer.id.clone(), "y".into()), (inner.id.clone(), "x".into())]
    );
    assert_eq!(
        plan.findings,
        [Finding::Unzoned {
            resource: "clusterexternaldns/d".into(),
            hostname: "z.fabrikam.com".into(),
            source: ObjectRef { kind: "Gateway", namespace: "ns".into(), name: "other".into() },
        }]
    );
}

#[test]
fn ttl_comes_from_the_route_annotation() {
    let cases: &[(&str, &str, u32, bool)] = &[
        ("seconds", "60", 60, false),
        ("duration", "5m", 300, false),
        ("zero", "0", 300, true),
        ("garbage", "soon", 300, true),
    ];
    for (what, value, ttl, finding) in cases {
        let mut r = route("ns", "r", &["api.contoso.com"], "gw");
        r.annotations = labels(&[("external-dns.alpha.kubernetes.io/ttl", value)]);
        let mut g = gateway("ns", "gw", "unused", "20.0.0.1");
        g.listeners[0].hostname = None;
        let snap = Snapshot { gateways: vec![g], routes: vec![r], ..Snapshot::default() };
        let plan = plan(&[cluster_dns("d", vec![zone("contoso.com")])], &snap, &cfg());
        assert_eq!(plan.records.values().next().unwrap().ttl, *ttl, "{what}");
        assert_eq!(plan.findings.iter().any(|f| matches!(f, Finding::InvalidTtl { .. })), *finding, "{what}");
    }
}

#[test]
fn two_sources_of_one_name_merge_with_the_smallest_ttl() {
    let mut short = route("ns", "short", &["api.contoso.com"], "gw1");
    short.annotations = labels(&[("external-dns.kubernetes.io/ttl", "30")]);
    let mut g1 = gateway("ns", "gw1", "x", "20.0.0.1");
    let mut g2 = gateway("ns", "gw2", "x", "20.0.0.2");
    g1.listeners[0].hostname = None;
    g2.listeners[0].hostname = None;
    let snap = Snapshot {
        gateways: vec![g1, g2],
        routes: vec![short, route("ns", "long", &["api.contoso.com"], "gw2")],
        ..Snapshot::default()
    };
    let plan = plan(&[cluster_dns("d", vec![zone("contoso.com")])], &snap, &cfg());
    assert_eq!(records(&plan), ["api A 20.0.0.1,20.0.0.2 ttl=30"]);
}

#[test]
fn conflicting_resources_get_a_deterministic_winner_and_the_loser_is_told() {
    let older = DnsResource { created: 1, ..cluster_dns("older", vec![zone("contoso.com")]) };
    let newer = DnsResource {
        created: 2,
        scope: Scope::Namespace("app-a".into()),
        ..cluster_dns("newer", vec![zone("contoso.com")])
    };
    let snap = seed_000();
    let forward = plan(&[older.clone(), newer.clone()], &snap, &cfg());
    let backward = plan(&[newer, older], &snap, &cfg());
    assert_eq!(forward, backward, "input order does not matter");
    assert!(forward.records.values().all(|r| r.resource == "clusterexternaldns/older"));
    let conflicts: Vec<&Finding> = forward.findings.iter().filter(|f| matches!(f, Finding::Conflict { .. })).collect();
    assert_eq!(conflicts.len(), 2, "a and c in app-a: {conflicts:?}");
    assert!(
        matches!(conflicts[0], Finding::Conflict { winner, loser, .. } if winner == "clusterexternaldns/older" && loser == "externaldns/app-a/newer")
    );
}

#[test]
fn a_cname_is_dropped_where_another_source_gives_the_name_addresses() {
    let mut lb = gateway("ns", "lb", "www.contoso.com", "0.0.0.0");
    lb.addresses = vec![Address::parse("lb.example")];
    let snap =
        Snapshot { gateways: vec![lb, gateway("ns", "ip", "www.contoso.com", "20.0.0.1")], ..Snapshot::default() };
    let plan = plan(&[cluster_dns("d", vec![zone("contoso.com")])], &snap, &cfg());
    assert_eq!(records(&plan), ["www A 20.0.0.1 ttl=300"]);
    assert!(matches!(&plan.findings[..], [Finding::CnameShadowed { source, .. }] if source.name == "lb"));
}

#[test]
fn ingresses_are_sources_when_the_resource_asks_for_them() {
    let ing = Ingress {
        namespace: "web".into(),
        name: "shop".into(),
        labels: labels(&[("public", "true")]),
        annotations: Labels::new(),
        hosts: vec!["shop.contoso.com".into(), "".into()],
        addresses: vec![Address::parse("20.1.1.1")],
    };
    let unlabelled = Ingress {
        name: "internal".into(),
        labels: Labels::new(),
        hosts: vec!["int.contoso.com".into()],
        ..ing.clone()
    };
    let snap = Snapshot { ingresses: vec![ing, unlabelled], ..Snapshot::default() };
    let gateways_only = cluster_dns("g", vec![zone("contoso.com")]);
    assert!(plan(std::slice::from_ref(&gateways_only), &snap, &cfg()).records.is_empty());
    let with_ingress = DnsResource {
        ingresses: true,
        route_labels: Some(LabelFilter::parse("public=true").unwrap()),
        ..gateways_only
    };
    assert_eq!(records(&plan(&[with_ingress], &snap, &cfg())), ["shop A 20.1.1.1 ttl=300"]);
}

#[test]
fn route_label_filters_apply_to_routes_not_to_gateway_hostnames() {
    let mut r = route("ns", "r", &["api.contoso.com"], "gw");
    r.labels = labels(&[("dns", "public")]);
    let snap = Snapshot {
        gateways: vec![gateway("ns", "gw", "gw.contoso.com", "20.0.0.1")],
        routes: vec![r, route("ns", "hidden", &["hidden.contoso.com"], "gw")],
        ..Snapshot::default()
    };
    let mut g = snap.gateways[0].clone();
    g.listeners[0].hostname = Some("*.contoso.com".into());
    let snap = Snapshot { gateways: vec![g], ..snap };
    let res = DnsResource {
        route_labels: Some(LabelFilter::parse("dns=public").unwrap()),
        ..cluster_dns("d", vec![zone("contoso.com")])
    };
    assert_eq!(
        records(&plan(&[res], &snap, &cfg())),
        ["api A 20.0.0.1 ttl=300"],
        "wildcard listener hostnames are not published themselves"
    );
}

#[test]
fn names_a_source_still_asks_for_are_wanted_while_unpublishable_and_renamed_ones_are_not() {
    let zones = vec![zone("contoso.com")];
    let mut snap = Snapshot {
        gateways: vec![
            gateway("app-a", "gw", "*.contoso.com", "20.0.0.1"),
            gateway("app-a", "gw2", "gw2.contoso.com", "20.0.0.2"),
        ],
        routes: vec![route("app-a", "shop", &["shop.contoso.com"], "gw")],
        ..Snapshot::default()
    };
    let wanted = |p: &Plan| p.wanted.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>();
    let base = plan(&[cluster_dns("d", zones.clone())], &snap, &cfg());
    assert_eq!(records(&base), ["gw2 A 20.0.0.2 ttl=300", "shop A 20.0.0.1 ttl=300"]);
    assert_eq!(wanted(&base), ["gw2", "shop"]);

    // Lost addresses and a lost Accepted: nothing published, but still asked for.
    snap.gateways[1].addresses.clear();
    snap.routes[0].parents[0].accepted = false;
    let flapping = plan(&[cluster_dns("d", zones.clone())], &snap, &cfg());
    assert!(flapping.records.is_empty(), "{:?}", records(&flapping));
    assert_eq!(wanted(&flapping), ["gw2", "shop"]);
    assert!(flapping.findings.is_empty(), "an unaccepted route is not reported as unzoned or anything else");

    // Renamed: the old name is no longer asked for.
    snap.routes[0].hostnames = vec!["store.contoso.com".into()];
    let renamed = plan(&[cluster_dns("d", zones)], &snap, &cfg());
    assert_eq!(wanted(&renamed), ["gw2", "store"]);
}
