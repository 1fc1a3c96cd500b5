//! The generated CRDs: what the API server will enforce (names, scope, OpenAPI validation, CEL
//! rules, list types, defaults, printer columns, status subresource), that the CEL rules do what
//! they say when evaluated (kube-cel, the Kubernetes CEL library port that kube's `cel` feature
//! ships), and that `deploy/crds/` is exactly what `routewarden crd --write` produces.
#![allow(clippy::unwrap_used)]

use routewarden::crd::convert::DnsConfig;
use routewarden::crd::v1alpha1::{self as v1, ClusterExternalDns, ExternalDns};
use routewarden::crd::{crds, file_name, render};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const REGENERATE: &str = "cargo run -p routewarden -- crd --write deploy/crds";
const SUB: &str = "123e4567-e89b-12d3-a456-426614174000";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn crd_json(name: &str) -> Value {
    let crd = crds().into_iter().find(|c| c.metadata.name.as_deref() == Some(name)).unwrap();
    serde_json::to_value(crd).unwrap()
}

fn schema(name: &str) -> Value {
    crd_json(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

const CLUSTER: &str = "clusterexternaldnses.approuting.kubernetes.azure.com";
const NAMESPACED: &str = "externaldnses.approuting.kubernetes.azure.com";
const ISTIO_CA: &str = "istioplugincas.routewarden.io";

#[test]
fn the_istio_plugin_ca_crd_is_cluster_scoped_with_a_status_subresource_and_aks_defaults() {
    let crd = crd_json(ISTIO_CA);
    assert_eq!(crd["spec"]["group"], "routewarden.io");
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(
        crd["spec"]["names"],
        json!({ "kind": "IstioPluginCA", "plural": "istioplugincas", "singular": "istiopluginca", "shortNames": ["ipca"] })
    );
    assert_eq!(crd["spec"]["versions"][0]["subresources"], json!({ "status": {} }));
    let spec = &schema(ISTIO_CA)["properties"]["spec"];
    let mut required: Vec<&str> = spec["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    required.sort_unstable();
    assert_eq!(required, ["keyVaultUri", "serviceAccount"]);
    assert_eq!(spec["properties"]["targetNamespace"]["default"], "aks-istio-system");
    assert_eq!(spec["properties"]["objects"]["properties"]["caKey"]["default"], "ca-key");
}

#[test]
fn checked_in_crds_match_what_the_code_generates() {
    let dir = repo_root().join(routewarden::crd::CHECKED_IN_DIR);
    let mut expected = Vec::new();
    for crd in crds() {
        let name = file_name(&crd);
        let path = dir.join(&name);
        let want = render(&crd).unwrap();
        let got = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            got == want,
            "{} is missing or out of date with daemon/src/crd.\nRegenerate it from the repository root with:\n    {REGENERATE}",
            path.display()
        );
        expected.push(name);
    }
    let mut present: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(
        present,
        expected,
        "{} holds CRD files the code no longer generates; delete them and run:\n    {REGENERATE}",
        dir.display()
    );
}

#[test]
fn crd_command_prints_every_crd_and_writes_one_file_each() {
    let bin = env!("CARGO_BIN_EXE_routewarden");
    let out = std::process::Command::new(bin).arg("crd").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            let v = <Value as serde::Deserialize>::deserialize(doc).unwrap();
            assert_eq!(v["kind"], "CustomResourceDefinition");
            v["metadata"]["name"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(names, [CLUSTER, NAMESPACED, ISTIO_CA]);

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("crds");
    let out = std::process::Command::new(bin).args(["crd", "--write"]).arg(&target).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for crd in crds() {
        let written = std::fs::read_to_string(target.join(file_name(&crd))).unwrap();
        assert_eq!(written, render(&crd).unwrap());
    }
}

#[test]
fn names_scope_and_short_names_match_the_anchor() {
    for (name, kind, plural, singular, short, scope) in [
        (CLUSTER, "ClusterExternalDNS", "clusterexternaldnses", "clusterexternaldns", "cedns", "Cluster"),
        (NAMESPACED, "ExternalDNS", "externaldnses", "externaldns", "edns", "Namespaced"),
    ] {
        let crd = crd_json(name);
        let spec = &crd["spec"];
        assert_eq!(spec["group"], "approuting.kubernetes.azure.com", "{name}");
        assert_eq!(spec["scope"], scope, "{name}");
        assert_eq!(
            spec["names"],
            json!({ "kind": kind, "plural": plural, "singular": singular, "shortNames": [short] }),
            "{name}"
        );
        assert_eq!(spec["versions"].as_array().unwrap().len(), 1);
        let v = &spec["versions"][0];
        assert_eq!(
            (v["name"].as_str(), v["served"].as_bool(), v["storage"].as_bool()),
            (Some("v1alpha1"), Some(true), Some(true))
        );
        assert_eq!(v["subresources"], json!({ "status": {} }), "{name}: status subresource");
    }
}

#[test]
fn the_schema_carries_the_anchors_validation_rules_list_types_patterns_and_defaults() {
    for name in [CLUSTER, NAMESPACED] {
        let s = &schema(name)["properties"]["spec"];
        let p = &s["properties"];
        let mut required: Vec<&str> = s["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        required.sort_unstable();
        assert_eq!(required, ["dnsZoneResourceIDs", "identity", "resourceName", "resourceTypes"], "{name}");

        assert_eq!(
            p["resourceName"],
            json!({
                "description": p["resourceName"]["description"],
                "type": "string", "minLength": 1, "maxLength": 253,
                "pattern": "^[a-z0-9][-a-z0-9\\.]*[a-z0-9]$"
            }),
            "{name}"
        );
        assert_eq!(p["tenantId"]["format"], "uuid", "{name}");
        assert_eq!(p["tenantId"]["pattern"], "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "{name}");

        let zones = &p["dnsZoneResourceIDs"];
        assert_eq!((zones["type"].as_str(), zones["items"]["type"].as_str()), (Some("array"), Some("string")));
        assert_eq!((zones["minItems"].as_u64(), zones["maxItems"].as_u64()), (Some(1), Some(7)), "{name}");
        assert_eq!(zones["x-kubernetes-list-type"], "set", "{name}");
        assert_eq!(
            zones["x-kubernetes-validations"],
            json!([
                { "rule": "self.all(id, id.split('/')[2] == self[0].split('/')[2])", "message": v1::MSG_SAME_SUBSCRIPTION },
                { "rule": "self.all(id, id.split('/')[4] == self[0].split('/')[4])", "message": v1::MSG_SAME_RESOURCE_GROUP },
                { "rule": "self.all(id, id.split('/')[7] == self[0].split('/')[7])", "message": v1::MSG_SAME_ZONE_TYPE },
            ]),
            "{name}"
        );

        let types = &p["resourceTypes"];
        assert_eq!((types["minItems"].as_u64(), types["maxItems"].as_u64()), (Some(1), Some(2)), "{name}");
        assert_eq!(types["x-kubernetes-list-type"], "set", "{name}");
        assert_eq!(
            types["x-kubernetes-validations"],
            json!([{ "rule": "self.all(t, t.matches('(?i)(gateway|ingress)'))", "message": v1::MSG_RESOURCE_TYPES }]),
            "{name}"
        );

        let id = &p["identity"];
        assert_eq!(id["properties"]["type"]["enum"], json!(["workloadIdentity", "managedIdentity"]), "{name}");
        assert_eq!(id["properties"]["type"]["default"], "workloadIdentity", "{name}");
        assert_eq!(id["properties"]["serviceAccount"]["pattern"], "^[a-z0-9][-a-z0-9\\.]*[a-z0-9]$", "{name}");
        assert_eq!(
            (
                id["properties"]["serviceAccount"]["minLength"].as_u64(),
                id["properties"]["serviceAccount"]["maxLength"].as_u64()
            ),
            (Some(1), Some(253))
        );
        assert_eq!(id["properties"]["clientID"]["format"], "uuid", "{name}");
        assert_eq!(
            id["properties"]["clientID"]["pattern"], "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "{name}"
        );
        assert_eq!(
            id["x-kubernetes-validations"],
            json!([
                {
                    "rule": v1::RULE_WORKLOAD_NEEDS_SERVICE_ACCOUNT,
                    "message": "serviceAccount is required when type is workloadIdentity",
                    "fieldPath": ".serviceAccount",
                    "reason": "FieldValueRequired"
                },
                {
                    "rule": v1::RULE_MANAGED_NEEDS_CLIENT_ID,
                    "message": "clientID is required when type is managedIdentity",
                    "fieldPath": ".clientID",
                    "reason": "FieldValueRequired"
                },
            ]),
            "{name}"
        );

        for filter in ["gatewayLabels", "routeAndIngressLabels"] {
            assert_eq!(p["filters"]["properties"][filter]["pattern"], "^[^=]+=[^=]+$", "{name} {filter}");
        }

        // routewarden's additions: optional, defaulted, bounded.
        assert_eq!((p["ttl"]["default"].as_u64(), p["ttl"]["minimum"].as_f64()), (Some(300), Some(1.0)), "{name}");
        assert_eq!(p["deletionPolicy"]["enum"], json!(["Retain", "Delete"]), "{name}");
        assert_eq!(p["deletionPolicy"]["default"], "Retain", "{name}");
        assert_eq!(p["holdDownSeconds"]["default"], 300, "{name}");
        assert_eq!(p["holdDownSeconds"]["maximum"].as_f64(), Some(86_400.0), "{name}");

        // No spec field is nullable: nulls are pruned before defaulting and CEL, as in the anchor.
        assert!(!serde_json::to_string(s).unwrap().contains("nullable"), "{name}");
    }

    let cluster = &schema(CLUSTER)["properties"]["spec"]["properties"];
    assert_eq!(cluster["resourceNamespace"]["default"], "app-routing-system");
    assert_eq!(cluster["resourceNamespace"]["pattern"], "^[a-z0-9][-a-z0-9\\.]*[a-z0-9]$");
    assert!(schema(NAMESPACED)["properties"]["spec"]["properties"].get("resourceNamespace").is_none());
}

#[test]
fn status_has_conditions_as_a_map_counts_and_a_bounded_sample() {
    for name in [CLUSTER, NAMESPACED] {
        let st = &schema(name)["properties"]["status"]["properties"];
        assert_eq!(st["conditions"]["x-kubernetes-list-type"], "map", "{name}");
        assert_eq!(st["conditions"]["x-kubernetes-list-map-keys"], json!(["type"]), "{name}");
        let cond = &st["conditions"]["items"]["properties"];
        for field in ["type", "status", "reason", "message", "observedGeneration", "lastTransitionTime"] {
            assert!(cond.get(field).is_some(), "{name}: condition.{field}");
        }
        for count in ["zones", "zonesAccessible", "recordsDesired", "recordsApplied", "stale", "conflicts", "unzoned"] {
            assert_eq!((st[count]["type"].as_str(), st[count]["format"].as_str()), (Some("integer"), Some("int32")));
        }
        assert_eq!(st["samples"]["maxItems"], 10, "{name}");
        assert_eq!(st["samples"]["items"]["properties"]["problem"]["enum"], json!(["Conflict", "Stale", "Unzoned"]));
    }
}

#[test]
fn kubectl_get_shows_ready_zones_records_stale_and_age() {
    for name in [CLUSTER, NAMESPACED] {
        let cols = crd_json(name)["spec"]["versions"][0]["additionalPrinterColumns"].clone();
        let summary: Vec<(String, String, u64)> = cols
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["jsonPath"].as_str().unwrap().to_owned(),
                    c["priority"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let expect = [
            ("Ready", r#".status.conditions[?(@.type=="Ready")].status"#, 0),
            ("Reason", r#".status.conditions[?(@.type=="Ready")].reason"#, 1),
            ("Zones", ".status.zones", 0),
            ("Records", ".status.recordsApplied", 0),
            ("Stale", ".status.stale", 0),
            ("Conflicts", ".status.conflicts", 1),
            ("Age", ".metadata.creationTimestamp", 0),
        ];
        let expect: Vec<(String, String, u64)> =
            expect.iter().map(|(n, p, pr)| (n.to_string(), p.to_string(), *pr)).collect();
        assert_eq!(summary, expect, "{name}");
    }
}

// --- CEL, evaluated

fn object(kind: &str, spec: Value) -> Value {
    let mut metadata = json!({ "name": "test" });
    if kind == "ExternalDNS" {
        metadata["namespace"] = json!("ns");
    }
    json!({ "apiVersion": "approuting.kubernetes.azure.com/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec })
}

/// The CEL verdict of the API server (defaults applied first, as kube-cel does), as the
/// messages of the failing rules.
fn cel_failures(name: &str, obj: &Value) -> Vec<String> {
    match kube::core::cel::Validator::new().validate(&schema(name), obj, None) {
        Ok(()) => vec![],
        Err(errs) => errs.iter().map(|e| e.message.clone()).collect(),
    }
}

fn zone(sub: &str, rg: &str, kind: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{kind}/{name}")
}

fn base() -> Value {
    json!({
        "resourceName": "test",
        "dnsZoneResourceIDs": [zone(SUB, "rg", "dnszones", "a.com"), zone(SUB, "rg", "dnszones", "b.com")],
        "resourceTypes": ["ingress", "gateway"],
        "identity": { "type": "workloadIdentity", "serviceAccount": "test-sa" }
    })
}

type Edit = fn(&mut Value);

/// (behaviour, edit, the failing rule's message or None when CEL admits it, Rust admits it).
const CEL_CASES: &[(&str, Edit, Option<&str>, bool)] = &[
    ("a valid spec passes", |_| {}, None, true),
    ("one zone passes", |s| s["dnsZoneResourceIDs"] = json!([zone(SUB, "rg", "dnszones", "a.com")]), None, true),
    (
        "mixed subscriptions fail",
        |s| s["dnsZoneResourceIDs"][1] = json!(zone("00000000-0000-0000-0000-000000000000", "rg", "dnszones", "b.com")),
        Some(v1::MSG_SAME_SUBSCRIPTION),
        false,
    ),
    (
        "mixed resource groups fail",
        |s| s["dnsZoneResourceIDs"][1] = json!(zone(SUB, "rg2", "dnszones", "b.com")),
        Some(v1::MSG_SAME_RESOURCE_GROUP),
        false,
    ),
    (
        "mixed zone types fail",
        |s| s["dnsZoneResourceIDs"][1] = json!(zone(SUB, "rg", "privateDnsZones", "b.com")),
        Some(v1::MSG_SAME_ZONE_TYPE),
        false,
    ),
    (
        "an unknown resource type fails",
        |s| s["resourceTypes"] = json!(["ingress", "deployment"]),
        Some(v1::MSG_RESOURCE_TYPES),
        false,
    ),
    ("resource types match case-insensitively", |s| s["resourceTypes"] = json!(["GATEWAY", "Ingress"]), None, true),
    (
        "CEL admits a type that merely contains gateway; the conversion does not",
        |s| s["resourceTypes"] = json!(["gateways"]),
        None,
        false,
    ),
    (
        "workloadIdentity without serviceAccount fails",
        |s| s["identity"] = json!({ "type": "workloadIdentity" }),
        Some(v1::MSG_WORKLOAD_NEEDS_SERVICE_ACCOUNT),
        false,
    ),
    (
        "an empty identity is defaulted to workloadIdentity and fails",
        |s| s["identity"] = json!({}),
        Some(v1::MSG_WORKLOAD_NEEDS_SERVICE_ACCOUNT),
        false,
    ),
    (
        "workloadIdentity with an empty serviceAccount fails",
        |s| s["identity"] = json!({ "type": "workloadIdentity", "serviceAccount": "" }),
        Some(v1::MSG_WORKLOAD_NEEDS_SERVICE_ACCOUNT),
        false,
    ),
    (
        "managedIdentity without clientID fails",
        |s| s["identity"] = json!({ "type": "managedIdentity" }),
        Some(v1::MSG_MANAGED_NEEDS_CLIENT_ID),
        false,
    ),
    (
        "managedIdentity with clientID passes",
        |s| s["identity"] = json!({ "type": "managedIdentity", "clientID": SUB }),
        None,
        true,
    ),
];

#[test]
fn cel_rules_refuse_what_they_claim_to_and_agree_with_the_rust_checks() {
    for (behaviour, edit, want, rust_ok) in CEL_CASES {
        let mut spec = base();
        edit(&mut spec);
        for (name, kind) in [(CLUSTER, "ClusterExternalDNS"), (NAMESPACED, "ExternalDNS")] {
            let obj = object(kind, spec.clone());
            let got = cel_failures(name, &obj);
            let want: Vec<String> = want.iter().map(|m| m.to_string()).collect();
            assert_eq!(got, want, "{kind}: {behaviour}");
            let converted = if kind == "ExternalDNS" {
                DnsConfig::try_from(&serde_json::from_value::<ExternalDns>(obj).unwrap()).map(|_| ())
            } else {
                DnsConfig::try_from(&serde_json::from_value::<ClusterExternalDns>(obj).unwrap()).map(|_| ())
            };
            assert_eq!(converted.is_ok(), *rust_ok, "{kind}: {behaviour}: {converted:?}");
        }
    }
}

#[test]
fn cel_rules_admit_the_seed_manifests() {
    let zone_id = zone(SUB, "rg-demo", "dnszones", "contoso.com");
    let cluster = object(
        "ClusterExternalDNS",
        json!({
            "resourceName": "demo-cluster-dns",
            "resourceNamespace": "app-a",
            "dnsZoneResourceIDs": [zone_id],
            "resourceTypes": ["gateway"],
            "identity": { "type": "workloadIdentity", "serviceAccount": "approuting-demo-sa" }
        }),
    );
    assert_eq!(cel_failures(CLUSTER, &cluster), Vec::<String>::new());
    let namespaced = object(
        "ExternalDNS",
        json!({
            "resourceName": "demo-ns-dns",
            "dnsZoneResourceIDs": [zone_id],
            "resourceTypes": ["gateway"],
            "identity": { "type": "workloadIdentity", "serviceAccount": "approuting-demo-sa" },
            "filters": { "gatewayLabels": "zone=c" }
        }),
    );
    assert_eq!(cel_failures(NAMESPACED, &namespaced), Vec::<String>::new());
}

#[test]
fn server_side_defaults_fill_the_same_values_as_serde() {
    let obj = object(
        "ClusterExternalDNS",
        json!({
            "resourceName": "test",
            "dnsZoneResourceIDs": [zone(SUB, "rg", "dnszones", "a.com")],
            "resourceTypes": ["gateway"],
            "identity": { "serviceAccount": "test-sa" }
        }),
    );
    let defaulted = kube::core::cel::apply_defaults(&schema(CLUSTER), &obj);
    let spec = &defaulted["spec"];
    assert_eq!(spec["resourceNamespace"], "app-routing-system");
    assert_eq!(spec["identity"]["type"], "workloadIdentity");
    assert_eq!((spec["ttl"].as_u64(), spec["holdDownSeconds"].as_u64()), (Some(300), Some(300)));
    assert_eq!(spec["deletionPolicy"], "Retain");
    let via_serde = serde_json::to_value(serde_json::from_value::<ClusterExternalDns>(obj).unwrap()).unwrap();
    assert_eq!(via_serde["spec"], *spec, "serde defaults equal the schema defaults");
}

#[test]
fn cel_rules_compile_and_stay_within_the_cost_estimate() {
    for name in [CLUSTER, NAMESPACED] {
        let compiled = kube::core::cel::compile_schema(&schema(name));
        let errors: Vec<String> = compiled.compilation_errors().iter().map(|e| format!("{e:?}")).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
    let spec = &schema(NAMESPACED)["properties"]["spec"]["properties"];
    for (field, rules) in [
        ("dnsZoneResourceIDs", vec![v1::RULE_SAME_SUBSCRIPTION, v1::RULE_SAME_RESOURCE_GROUP, v1::RULE_SAME_ZONE_TYPE]),
        ("resourceTypes", vec![v1::RULE_RESOURCE_TYPES]),
        ("identity", vec![v1::RULE_WORKLOAD_NEEDS_SERVICE_ACCOUNT, v1::RULE_MANAGED_NEEDS_CLIENT_ID]),
    ] {
        let compiled = kube::core::cel::compile_schema(&spec[field]);
        for rule in rules {
            let over: Vec<String> = kube::core::cel::estimate_rule_cost(rule, &compiled)
                .into_iter()
                .filter(|w| w.kind == kube::core::cel::WarningKind::CostExceeded)
                .map(|w| w.message)
                .collect();
            assert!(over.is_empty(), "{field}: {rule}: {over:?}");
        }
    }
}
