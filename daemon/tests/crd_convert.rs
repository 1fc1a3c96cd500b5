//! ClusterExternalDNS / ExternalDNS → planner input: seed 000's manifests convert to the
//! DnsResource the walkthrough implies, defaults fill what users leave out, and every rule of the
//! anchor's schema is re-checked in Rust with the field path and a bounded reason.
#![allow(clippy::unwrap_used)]

use routewarden::crd::conditions::reason;
use routewarden::crd::convert::{DnsConfig, DnsIdentity, SpecError};
use routewarden::crd::v1alpha1::{ClusterExternalDns, DeletionPolicy, ExternalDns, IdentityType};
use routewarden_planner::dns::{DnsResource, Scope};
use routewarden_planner::selector::LabelFilter;
use routewarden_planner::zone::Zone;
use serde_json::{Value, json};
use std::time::Duration;

const SUB: &str = "123e4567-e89b-12d3-a456-426614174000";
const ZONE_ID: &str = "/subscriptions/123e4567-e89b-12d3-a456-426614174000/resourceGroups/rg-demo/providers/Microsoft.Network/dnszones/contoso.com";
const SA_NAME: &str = "approuting-demo-sa";

/// Seed 000, "Configure Azure DNS records by using ClusterExternalDNS", with `$ZONE_ID` and
/// `$SA_NAME` filled in as the walkthrough's shell would.
fn seed_cluster_yaml() -> String {
    format!(
        "\
apiVersion: approuting.kubernetes.azure.com/v1alpha1
kind: ClusterExternalDNS
metadata:
  name: demo-cluster-dns
spec:
  resourceName: demo-cluster-dns
  resourceNamespace: app-a
  dnsZoneResourceIDs:
  - {ZONE_ID}
  resourceTypes:
  - gateway
  identity:
    type: workloadIdentity
    serviceAccount: {SA_NAME}
"
    )
}

/// Seed 000, "… by using a namespace-scoped ExternalDNS" (applied with `kubectl apply -n app-a`).
fn seed_namespaced_yaml() -> String {
    format!(
        "\
apiVersion: approuting.kubernetes.azure.com/v1alpha1
kind: ExternalDNS
metadata:
  name: demo-ns-dns
spec:
  resourceName: demo-ns-dns
  dnsZoneResourceIDs:
  - {ZONE_ID}
  resourceTypes:
  - gateway
  identity:
    type: workloadIdentity
    serviceAccount: {SA_NAME}
  filters:
    gatewayLabels: \"zone=c\"
"
    )
}

#[test]
fn seed_cluster_external_dns_converts_to_a_cluster_scoped_gateway_resource() {
    let obj: ClusterExternalDns = serde_yaml_ng::from_str(&seed_cluster_yaml()).unwrap();
    let cfg = DnsConfig::try_from(&obj).unwrap();
    assert_eq!(
        cfg,
        DnsConfig {
            resource: DnsResource {
                scope: Scope::Cluster,
                name: "demo-cluster-dns".into(),
                created: i64::MAX,
                zones: vec![Zone::parse(ZONE_ID).unwrap()],
                gateways: true,
                ingresses: false,
                gateway_labels: None,
                route_labels: None,
                ttl: 300,
            },
            resource_name: "demo-cluster-dns".into(),
            tenant_id: None,
            identity: DnsIdentity::Workload { namespace: "app-a".into(), service_account: SA_NAME.into() },
            deletion_policy: DeletionPolicy::Retain,
            hold_down: Duration::from_secs(300),
            generation: None,
        }
    );
    assert_eq!(cfg.resource.identity(), "clusterexternaldns/demo-cluster-dns");
    assert_eq!(cfg.resource.zones[0].name, "contoso.com");
}

#[test]
fn seed_external_dns_converts_to_a_namespace_scoped_resource_with_its_label_filter() {
    let mut obj: ExternalDns = serde_yaml_ng::from_str(&seed_namespaced_yaml()).unwrap();
    obj.metadata.namespace = Some("app-a".into()); // kubectl apply -n app-a
    let cfg = DnsConfig::try_from(&obj).unwrap();
    assert_eq!(
        cfg.resource,
        DnsResource {
            scope: Scope::Namespace("app-a".into()),
            name: "demo-ns-dns".into(),
            created: i64::MAX,
            zones: vec![Zone::parse(ZONE_ID).unwrap()],
            gateways: true,
            ingresses: false,
            gateway_labels: Some(LabelFilter { key: "zone".into(), value: "c".into() }),
            route_labels: None,
            ttl: 300,
        }
    );
    // The namespaced kind's ServiceAccount lives in its own namespace.
    assert_eq!(cfg.identity, DnsIdentity::Workload { namespace: "app-a".into(), service_account: SA_NAME.into() });
    assert_eq!(cfg.resource.identity(), "externaldns/app-a/demo-ns-dns");
}

#[test]
fn seed_manifests_round_trip_without_gaining_fields_a_user_did_not_write_except_defaults() {
    let obj: ClusterExternalDns = serde_yaml_ng::from_str(&seed_cluster_yaml()).unwrap();
    let v = serde_json::to_value(&obj).unwrap();
    assert_eq!(v["spec"]["resourceNamespace"], "app-a");
    assert_eq!(v["spec"]["identity"], json!({ "type": "workloadIdentity", "serviceAccount": SA_NAME }));
    assert!(v["spec"].get("tenantId").is_none() && v["spec"].get("filters").is_none());
    assert_eq!((v["spec"]["ttl"].clone(), v["spec"]["holdDownSeconds"].clone()), (json!(300), json!(300)));
    assert_eq!(v["spec"]["deletionPolicy"], "Retain");
}

#[test]
fn defaults_apply_when_fields_are_absent() {
    let obj: ClusterExternalDns = serde_json::from_value(json!({
        "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
        "kind": "ClusterExternalDNS",
        "metadata": { "name": "minimal" },
        "spec": {
            "resourceName": "minimal",
            "dnsZoneResourceIDs": [ZONE_ID],
            "resourceTypes": ["ingress"],
            "identity": { "serviceAccount": "dns-writer" }
        }
    }))
    .unwrap();
    assert_eq!(obj.spec.resource_namespace, "app-routing-system");
    assert_eq!(obj.spec.dns.identity.type_, IdentityType::WorkloadIdentity);
    assert_eq!(obj.spec.dns.ttl, 300);
    assert_eq!(obj.spec.dns.hold_down_seconds, 300);
    assert_eq!(obj.spec.dns.deletion_policy, DeletionPolicy::Retain);
    let cfg = DnsConfig::try_from(&obj).unwrap();
    assert_eq!(
        cfg.identity,
        DnsIdentity::Workload { namespace: "app-routing-system".into(), service_account: "dns-writer".into() }
    );
    assert!(cfg.resource.ingresses && !cfg.resource.gateways);
}

#[test]
fn routewarden_additions_and_metadata_reach_the_config() {
    let obj: ExternalDns = serde_json::from_value(json!({
        "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
        "kind": "ExternalDNS",
        "metadata": {
            "name": "web", "namespace": "team-a", "generation": 4,
            "creationTimestamp": "2026-11-22T10:00:00Z"
        },
        "spec": {
            "resourceName": "web",
            "tenantId": SUB,
            "dnsZoneResourceIDs": [ZONE_ID],
            "resourceTypes": ["Gateway", "INGRESS"],
            "identity": { "type": "managedIdentity", "clientID": SUB },
            "filters": { "routeAndIngressLabels": "expose=public" },
            "ttl": 60,
            "deletionPolicy": "Delete",
            "holdDownSeconds": 0
        }
    }))
    .unwrap();
    let cfg = DnsConfig::try_from(&obj).unwrap();
    assert_eq!(cfg.identity, DnsIdentity::Managed { client_id: SUB.into() });
    assert_eq!(cfg.tenant_id.as_deref(), Some(SUB));
    assert!(cfg.resource.gateways && cfg.resource.ingresses, "resource types match case-insensitively");
    assert_eq!(cfg.resource.route_labels, Some(LabelFilter { key: "expose".into(), value: "public".into() }));
    assert_eq!(cfg.resource.ttl, 60);
    assert_eq!(cfg.deletion_policy, DeletionPolicy::Delete);
    assert_eq!(cfg.hold_down, Duration::ZERO);
    assert_eq!(cfg.generation, Some(4));
    assert_eq!(cfg.resource.created, 1_795_341_600);
}

/// A valid spec to break one field of.
fn valid_spec() -> Value {
    json!({
        "resourceName": "test",
        "dnsZoneResourceIDs": [zone(SUB, "rg", "dnszones", "a.com"), zone(SUB, "rg", "dnszones", "b.com")],
        "resourceTypes": ["ingress", "gateway"],
        "identity": { "type": "workloadIdentity", "serviceAccount": "test-sa" }
    })
}

fn zone(sub: &str, rg: &str, kind: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{kind}/{name}")
}

fn zones(n: usize) -> Value {
    json!((0..n).map(|i| zone(SUB, "rg", "dnszones", &format!("z{i}.com"))).collect::<Vec<_>>())
}

fn convert_cluster(spec: &Value) -> Result<DnsConfig, SpecError> {
    let obj: ClusterExternalDns = serde_json::from_value(json!({
        "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
        "kind": "ClusterExternalDNS",
        "metadata": { "name": "test" },
        "spec": spec,
    }))
    .unwrap();
    DnsConfig::try_from(&obj)
}

fn convert_namespaced(spec: &Value) -> Result<DnsConfig, SpecError> {
    let obj: ExternalDns = serde_json::from_value(json!({
        "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
        "kind": "ExternalDNS",
        "metadata": { "name": "test", "namespace": "ns" },
        "spec": spec,
    }))
    .unwrap();
    DnsConfig::try_from(&obj)
}

type Edit = fn(&mut Value);

/// Which part of the API server refuses the object too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    /// OpenAPI: pattern, length, item count, enum, format, bounds.
    OpenApi,
    /// An `x-kubernetes-validations` rule.
    Cel,
    /// `x-kubernetes-list-type: set` (duplicates); not evaluated by these tests.
    ListType,
    /// Nothing: the Rust conversion is deliberately stricter than the schema.
    RustOnly,
}
use Layer::*;

/// Every rule of the anchor's schema (OpenAPI and CEL), broken once: (behaviour, edit, field
/// path, reason, the server-side layer that refuses it too). Each case runs against both kinds.
const INVALID: &[(&str, Edit, &str, &str, Layer)] = &[
    (
        "resourceName must not be empty",
        |s| s["resourceName"] = json!(""),
        "spec.resourceName",
        reason::INVALID_RESOURCE_NAME,
        OpenApi,
    ),
    (
        "resourceName must start with a letter or digit",
        |s| s["resourceName"] = json!("-test"),
        "spec.resourceName",
        reason::INVALID_RESOURCE_NAME,
        OpenApi,
    ),
    (
        "resourceName must be lower case",
        |s| s["resourceName"] = json!("Test"),
        "spec.resourceName",
        reason::INVALID_RESOURCE_NAME,
        OpenApi,
    ),
    (
        "resourceName has at least two characters, as the anchor's pattern demands",
        |s| s["resourceName"] = json!("a"),
        "spec.resourceName",
        reason::INVALID_RESOURCE_NAME,
        OpenApi,
    ),
    (
        "resourceName is at most 253 characters",
        |s| s["resourceName"] = json!("a".repeat(254)),
        "spec.resourceName",
        reason::INVALID_RESOURCE_NAME,
        OpenApi,
    ),
    ("tenantId must be a uuid", |s| s["tenantId"] = json!("test"), "spec.tenantId", reason::INVALID_TENANT_ID, OpenApi),
    ("tenantId must not be empty", |s| s["tenantId"] = json!(""), "spec.tenantId", reason::INVALID_TENANT_ID, OpenApi),
    (
        "tenantId must be lower case",
        |s| s["tenantId"] = json!("123E4567-E89B-12D3-A456-426614174000"),
        "spec.tenantId",
        reason::INVALID_TENANT_ID,
        OpenApi,
    ),
    (
        "zero zones are refused",
        |s| s["dnsZoneResourceIDs"] = json!([]),
        "spec.dnsZoneResourceIDs",
        reason::ZONE_COUNT_OUT_OF_RANGE,
        OpenApi,
    ),
    (
        "eight zones are refused",
        |s| s["dnsZoneResourceIDs"] = zones(8),
        "spec.dnsZoneResourceIDs",
        reason::ZONE_COUNT_OUT_OF_RANGE,
        OpenApi,
    ),
    (
        "a zone in another subscription is refused",
        |s| {
            s["dnsZoneResourceIDs"] = json!([
                zone(SUB, "rg", "dnszones", "a.com"),
                zone(SUB, "rg", "dnszones", "b.com"),
                zone("00000000-0000-0000-0000-000000000000", "rg", "dnszones", "c.com"),
            ])
        },
        "spec.dnsZoneResourceIDs[2]",
        reason::MIXED_SUBSCRIPTIONS,
        Cel,
    ),
    (
        "a zone in another resource group is refused",
        |s| s["dnsZoneResourceIDs"][1] = json!(zone(SUB, "other", "dnszones", "b.com")),
        "spec.dnsZoneResourceIDs[1]",
        reason::MIXED_RESOURCE_GROUPS,
        Cel,
    ),
    (
        "resource groups compare case-sensitively, as the CEL rule does",
        |s| s["dnsZoneResourceIDs"][1] = json!(zone(SUB, "RG", "dnszones", "b.com")),
        "spec.dnsZoneResourceIDs[1]",
        reason::MIXED_RESOURCE_GROUPS,
        Cel,
    ),
    (
        "public and private zones do not mix",
        |s| s["dnsZoneResourceIDs"][1] = json!(zone(SUB, "rg", "privateDnsZones", "b.internal")),
        "spec.dnsZoneResourceIDs[1]",
        reason::MIXED_ZONE_TYPES,
        Cel,
    ),
    (
        "a zone listed twice is refused (listType set)",
        |s| s["dnsZoneResourceIDs"][1] = s["dnsZoneResourceIDs"][0].clone(),
        "spec.dnsZoneResourceIDs[1]",
        reason::DUPLICATE_ENTRY,
        ListType,
    ),
    (
        "a zone id must be an Azure DNS zone id, not just have enough slashes",
        |s| s["dnsZoneResourceIDs"] = json!(["/not/a/valid/resource/id/but/has/enough/slashes"]),
        "spec.dnsZoneResourceIDs[0]",
        reason::INVALID_ZONE_ID,
        RustOnly,
    ),
    (
        "resourceTypes must not be empty",
        |s| s["resourceTypes"] = json!([]),
        "spec.resourceTypes",
        reason::RESOURCE_TYPE_COUNT_OUT_OF_RANGE,
        OpenApi,
    ),
    (
        "resourceTypes holds at most two entries",
        |s| s["resourceTypes"] = json!(["gateway", "ingress", "Gateway"]),
        "spec.resourceTypes",
        reason::RESOURCE_TYPE_COUNT_OUT_OF_RANGE,
        OpenApi,
    ),
    (
        "resourceTypes are gateway or ingress",
        |s| s["resourceTypes"] = json!(["ingress", "deployment"]),
        "spec.resourceTypes[1]",
        reason::UNKNOWN_RESOURCE_TYPE,
        Cel,
    ),
    (
        "a resource type that merely contains gateway is refused (the anchor would ignore it)",
        |s| s["resourceTypes"] = json!(["gateways"]),
        "spec.resourceTypes[0]",
        reason::UNKNOWN_RESOURCE_TYPE,
        RustOnly,
    ),
    (
        "a resource type listed twice is refused (listType set)",
        |s| s["resourceTypes"] = json!(["gateway", "gateway"]),
        "spec.resourceTypes[1]",
        reason::DUPLICATE_ENTRY,
        ListType,
    ),
    (
        "workloadIdentity needs a serviceAccount",
        |s| s["identity"] = json!({ "type": "workloadIdentity" }),
        "spec.identity.serviceAccount",
        reason::MISSING_SERVICE_ACCOUNT,
        Cel,
    ),
    (
        "an empty identity defaults to workloadIdentity and so needs a serviceAccount",
        |s| s["identity"] = json!({}),
        "spec.identity.serviceAccount",
        reason::MISSING_SERVICE_ACCOUNT,
        Cel,
    ),
    (
        "an empty serviceAccount counts as missing",
        |s| s["identity"] = json!({ "type": "workloadIdentity", "serviceAccount": "" }),
        "spec.identity.serviceAccount",
        reason::MISSING_SERVICE_ACCOUNT,
        Cel,
    ),
    (
        "a clientID does not stand in for the serviceAccount of workloadIdentity",
        |s| s["identity"] = json!({ "type": "workloadIdentity", "clientID": SUB }),
        "spec.identity.serviceAccount",
        reason::MISSING_SERVICE_ACCOUNT,
        Cel,
    ),
    (
        "serviceAccount must be a Kubernetes name",
        |s| s["identity"]["serviceAccount"] = json!("Test_SA"),
        "spec.identity.serviceAccount",
        reason::INVALID_SERVICE_ACCOUNT,
        OpenApi,
    ),
    (
        "managedIdentity needs a clientID",
        |s| s["identity"] = json!({ "type": "managedIdentity" }),
        "spec.identity.clientID",
        reason::MISSING_CLIENT_ID,
        Cel,
    ),
    (
        "a serviceAccount does not stand in for the clientID of managedIdentity",
        |s| s["identity"] = json!({ "type": "managedIdentity", "serviceAccount": "test-sa" }),
        "spec.identity.clientID",
        reason::MISSING_CLIENT_ID,
        Cel,
    ),
    (
        "managedIdentity's clientID must be a uuid",
        |s| s["identity"] = json!({ "type": "managedIdentity", "clientID": "not-a-valid-uuid" }),
        "spec.identity.clientID",
        reason::INVALID_CLIENT_ID,
        OpenApi,
    ),
    (
        "an empty gatewayLabels filter is refused",
        |s| s["filters"] = json!({ "gatewayLabels": "" }),
        "spec.filters.gatewayLabels",
        reason::INVALID_LABEL_FILTER,
        OpenApi,
    ),
    (
        "gatewayLabels is a single key=value",
        |s| s["filters"] = json!({ "gatewayLabels": "bad==filter==" }),
        "spec.filters.gatewayLabels",
        reason::INVALID_LABEL_FILTER,
        OpenApi,
    ),
    (
        "routeAndIngressLabels needs a value",
        |s| s["filters"] = json!({ "routeAndIngressLabels": "zone" }),
        "spec.filters.routeAndIngressLabels",
        reason::INVALID_LABEL_FILTER,
        OpenApi,
    ),
    (
        "routeAndIngressLabels takes one pair only",
        |s| s["filters"] = json!({ "routeAndIngressLabels": "a=b,c=d=e" }),
        "spec.filters.routeAndIngressLabels",
        reason::INVALID_LABEL_FILTER,
        OpenApi,
    ),
    ("a ttl of zero is refused", |s| s["ttl"] = json!(0), "spec.ttl", reason::INVALID_TTL, OpenApi),
    (
        "holdDownSeconds is at most a day",
        |s| s["holdDownSeconds"] = json!(86_401),
        "spec.holdDownSeconds",
        reason::INVALID_HOLD_DOWN,
        OpenApi,
    ),
];

#[test]
fn every_schema_rule_is_rechecked_with_its_field_path_and_reason() {
    assert!(convert_cluster(&valid_spec()).is_ok());
    assert!(convert_namespaced(&valid_spec()).is_ok());
    for (behaviour, edit, path, want_reason, _) in INVALID {
        let mut spec = valid_spec();
        edit(&mut spec);
        for (kind, result) in
            [("ClusterExternalDNS", convert_cluster(&spec)), ("ExternalDNS", convert_namespaced(&spec))]
        {
            let err = result.expect_err(behaviour);
            assert_eq!((err.path.as_str(), err.reason()), (*path, *want_reason), "{kind}: {behaviour}: {err}");
            let text = err.to_string();
            assert!(text.starts_with(&format!("{kind}/")), "{behaviour}: names the object: {text}");
            assert!(text.contains(&format!(": {path}: ")), "{behaviour}: names the field: {text}");
        }
    }
}

#[test]
fn mixed_zones_say_what_must_be_shared() {
    let mut spec = valid_spec();
    spec["dnsZoneResourceIDs"] = json!([
        zone(SUB, "rg", "dnszones", "a.com"),
        zone(SUB, "rg", "dnszones", "b.com"),
        zone("00000000-0000-0000-0000-000000000000", "rg", "dnszones", "c.com"),
    ]);
    let err = convert_cluster(&spec).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "ClusterExternalDNS/test: spec.dnsZoneResourceIDs[2]: zones must share one subscription, resource group and type"
        ),
        "{err}"
    );
}

#[test]
fn seven_zones_are_accepted() {
    let mut spec = valid_spec();
    spec["dnsZoneResourceIDs"] = zones(7);
    assert_eq!(convert_cluster(&spec).unwrap().resource.zones.len(), 7);
}

#[test]
fn private_zones_are_accepted_together() {
    let mut spec = valid_spec();
    spec["dnsZoneResourceIDs"] =
        json!([zone(SUB, "rg", "privateDnsZones", "a.internal"), zone(SUB, "rg", "privateDnsZones", "b.internal")]);
    assert!(convert_namespaced(&spec).unwrap().resource.zones.iter().all(|z| z.private));
}

#[test]
fn a_cluster_resource_namespace_must_be_a_namespace_name() {
    let mut spec = valid_spec();
    spec["resourceNamespace"] = json!("App_A");
    let err = convert_cluster(&spec).unwrap_err();
    assert_eq!((err.path.as_str(), err.reason()), ("spec.resourceNamespace", reason::INVALID_RESOURCE_NAMESPACE));
}

#[test]
fn a_namespaced_resource_without_a_namespace_is_refused() {
    let obj: ExternalDns = serde_yaml_ng::from_str(&seed_namespaced_yaml()).unwrap();
    let err = DnsConfig::try_from(&obj).unwrap_err();
    assert_eq!((err.path.as_str(), err.reason()), ("metadata.namespace", reason::MISSING_FIELD));
}

#[test]
fn an_unknown_identity_type_does_not_deserialize() {
    // The CRD's enum makes the API server refuse it; a hand-built object fails in serde.
    let mut spec = valid_spec();
    spec["identity"]["type"] = json!("invalidType");
    let parsed = serde_json::from_value::<ClusterExternalDns>(json!({
        "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
        "kind": "ClusterExternalDNS",
        "metadata": { "name": "test" },
        "spec": spec,
    }));
    assert!(parsed.unwrap_err().to_string().contains("invalidType"));
}

#[test]
fn an_invalid_spec_becomes_ready_false_with_the_errors_reason_and_text() {
    use routewarden::crd::conditions;
    let mut spec = valid_spec();
    spec["identity"] = json!({ "type": "managedIdentity" });
    let err = convert_namespaced(&spec).unwrap_err();
    let mut conds = Vec::new();
    let now = k8s_openapi::jiff::Timestamp::from_second(1_795_341_600).unwrap();
    assert!(conditions::set(&mut conds, &conditions::invalid_spec(&err), Some(3), now));
    assert_eq!(
        (conds[0].type_.as_str(), conds[0].status.as_str(), conds[0].reason.as_str(), conds[0].observed_generation),
        ("Ready", "False", "MissingClientId", Some(3))
    );
    assert_eq!(
        conds[0].message,
        "ExternalDNS/ns/test: spec.identity.clientID: is required when identity.type is managedIdentity"
    );
}

#[test]
fn status_samples_are_bounded_and_deterministic() {
    use routewarden::crd::v1alpha1::{DnsStatus, MAX_SAMPLES, RecordSample, SampleProblem};
    let sample = |problem, i: usize| RecordSample {
        problem,
        hostname: format!("h{i:02}.contoso.com"),
        zone: None,
        record_type: Some("A".into()),
        detail: None,
    };
    let found: Vec<RecordSample> = (0..8)
        .rev()
        .map(|i| sample(SampleProblem::Stale, i))
        .chain((0..8).map(|i| sample(SampleProblem::Conflict, i)))
        .collect();
    let mut status = DnsStatus::default();
    status.set_samples(found.clone());
    assert_eq!(status.samples.len(), MAX_SAMPLES);
    assert!(status.samples[..8].iter().all(|s| s.problem == SampleProblem::Conflict));
    assert_eq!(status.samples[8].hostname, "h00.contoso.com");
    let mut again = DnsStatus::default();
    again.set_samples(found.into_iter().rev());
    assert_eq!(again, status);
}

// --- parity with the API server

fn openapi_schema(kind_name: &str) -> Value {
    let crd = routewarden::crd::crds().into_iter().find(|c| c.metadata.name.as_deref() == Some(kind_name)).unwrap();
    serde_json::to_value(crd).unwrap()["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// What the API server would say, in two parts: the JSON pointers refused by the OpenAPI rules
/// (jsonschema, formats on) and the field paths refused by the CEL rules (kube-cel), both on
/// the object after schema defaulting, as admission does.
fn server_verdict(kind_name: &str, obj: &Value) -> (Vec<String>, Vec<String>) {
    let schema = openapi_schema(kind_name);
    let defaulted = kube::core::cel::apply_defaults(&schema, obj);
    let openapi = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    let openapi_paths = openapi.iter_errors(&defaulted).map(|e| e.instance_path().to_string()).collect();
    let cel_paths = match kube::core::cel::Validator::new().validate(&schema, &defaulted, None) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| e.field_path.clone()).collect(),
    };
    (openapi_paths, cel_paths)
}

/// `spec.filters.gatewayLabels` → `/spec/filters/gatewayLabels`; `a[2]` → `a/2`.
fn pointer(path: &str) -> String {
    format!("/{}", path.replace(['.', '['], "/").replace(']', ""))
}

#[test]
fn the_api_server_refuses_what_the_conversion_refuses_except_where_documented() {
    let kinds = [
        ("clusterexternaldnses.approuting.kubernetes.azure.com", "ClusterExternalDNS"),
        ("externaldnses.approuting.kubernetes.azure.com", "ExternalDNS"),
    ];
    for (crd, kind) in kinds {
        let valid = json!({
            "apiVersion": "approuting.kubernetes.azure.com/v1alpha1", "kind": kind,
            "metadata": { "name": "test", "namespace": "ns" }, "spec": valid_spec(),
        });
        assert_eq!(server_verdict(crd, &valid), (vec![], vec![]), "{kind}: the valid spec");
        for (behaviour, edit, path, _, layer) in INVALID {
            let mut obj = valid.clone();
            edit(&mut obj["spec"]);
            let (openapi, cel) = server_verdict(crd, &obj);
            match layer {
                OpenApi => assert!(
                    openapi.iter().any(|p| pointer(path).starts_with(p.as_str()) && p.len() > "/spec".len()),
                    "{kind}: {behaviour}: OpenAPI should refuse {path}, refused {openapi:?}"
                ),
                Cel => assert!(
                    cel.iter().any(|p| path.starts_with(p.as_str()) && !p.is_empty()),
                    "{kind}: {behaviour}: a CEL rule should refuse {path}, refused {cel:?} (OpenAPI: {openapi:?})"
                ),
                RustOnly => assert_eq!(
                    (openapi, cel),
                    (vec![], vec![]),
                    "{kind}: {behaviour}: the schema admits it; only the conversion refuses"
                ),
                ListType => {}
            }
        }
    }
}

#[test]
fn an_object_written_under_the_anchors_crd_still_reads_and_converts() {
    // What the AKS operator leaves behind: its status fields, none of routewarden's additions.
    let obj: ClusterExternalDns = serde_json::from_value(json!({
        "apiVersion": "approuting.kubernetes.azure.com/v1alpha1",
        "kind": "ClusterExternalDNS",
        "metadata": { "name": "legacy", "generation": 2 },
        "spec": {
            "resourceName": "legacy",
            "resourceNamespace": "app-routing-system",
            "dnsZoneResourceIDs": [ZONE_ID],
            "resourceTypes": ["gateway", "ingress"],
            "identity": { "type": "workloadIdentity", "serviceAccount": "dns-sa" }
        },
        "status": {
            "conditions": [{
                "type": "ExternalDNSDeploymentReady", "status": "True", "reason": "Ready", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 2
            }],
            "externalDNSReadyReplicas": 1,
            "externalDNSUnavailableReplicas": 0,
            "collisionCount": 0,
            "managedResourceRefs": [{ "kind": "Deployment", "name": "legacy-external-dns" }]
        }
    }))
    .unwrap();
    assert_eq!(obj.status.as_ref().unwrap().conditions[0].type_, "ExternalDNSDeploymentReady");
    let cfg = DnsConfig::try_from(&obj).unwrap();
    assert_eq!(
        (cfg.resource.ttl, cfg.hold_down, cfg.deletion_policy),
        (300, Duration::from_secs(300), DeletionPolicy::Retain)
    );
}
