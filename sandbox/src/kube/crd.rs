//! The CustomResourceDefinitions the sandbox comes up with: the Gateway API v1 standard kinds
//! generated from the `gateway-api` crate's types (`CustomResourceExt::crd()`), completed with the
//! short names, categories and printer columns of the upstream CRDs so `kubectl get gateways`
//! looks as on a real cluster; our own SecretProviderClass CRD (secrets-store.csi.x-k8s.io/v1);
//! and the `approuting-istio` GatewayClass.

use gateway_api::apis::standard::{
    gatewayclasses::GatewayClass, gateways::Gateway, grpcroutes::GrpcRoute, httproutes::HttpRoute,
    referencegrants::ReferenceGrant,
};
use kube::CustomResourceExt;
use serde_json::{Value, json};

/// The controllerName of the sandbox's GatewayClass.
pub const GATEWAY_CONTROLLER: &str = "approuting.kubernetes.azure.com/gateway-controller";

fn column(name: &str, type_: &str, path: &str, priority: i64) -> Value {
    let mut c = json!({"name": name, "type": type_, "jsonPath": path});
    if priority > 0 {
        c["priority"] = json!(priority);
    }
    c
}

fn decorate(mut crd: Value, short_names: &[&str], columns: Vec<Value>) -> Value {
    crd["spec"]["names"]["categories"] = json!(["gateway-api"]);
    if !short_names.is_empty() {
        crd["spec"]["names"]["shortNames"] = json!(short_names);
    }
    if let Some(versions) = crd.pointer_mut("/spec/versions").and_then(Value::as_array_mut) {
        for v in versions {
            v["additionalPrinterColumns"] = json!(columns.clone());
        }
    }
    crd["metadata"]["annotations"] =
        json!({"gateway.networking.k8s.io/bundle-version": "v1.4.0", "gateway.networking.k8s.io/channel": "standard"});
    crd
}

const HOSTNAME: &str = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const SECTION_NAME: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Merges `rules` into the schema node at `path` (a JSON pointer below `openAPIV3Schema`).
///
/// The `gateway-api` crate's types are generated with `--schema=derived`, so its `crd()` schemas
/// keep types, `required` and enums but lose upstream's numeric ranges, lengths, patterns, item
/// limits and defaults; the ones routewarden's inputs depend on are restored here from the
/// upstream v1.4 standard-channel CRDs.
fn constrain(crd: &mut Value, path: &str, rules: Value) {
    let Some(versions) = crd.pointer_mut("/spec/versions").and_then(Value::as_array_mut) else { return };
    for version in versions {
        let Some(node) = version.pointer_mut(&format!("/schema/openAPIV3Schema{path}")).and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(rules) = rules.as_object() {
            for (k, v) in rules {
                node.insert(k.clone(), v.clone());
            }
        }
    }
}

fn gateway_crd() -> Result<Value, serde_json::Error> {
    let mut crd = serde_json::to_value(Gateway::crd())?;
    let listener = "/properties/spec/properties/listeners/items/properties";
    constrain(&mut crd, "/properties/spec/properties/gatewayClassName", json!({"minLength": 1, "maxLength": 253}));
    constrain(
        &mut crd,
        "/properties/spec/properties/listeners",
        json!({"minItems": 1, "maxItems": 64, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
    );
    constrain(&mut crd, &format!("{listener}/port"), json!({"minimum": 1, "maximum": 65535}));
    constrain(
        &mut crd,
        &format!("{listener}/name"),
        json!({"minLength": 1, "maxLength": 253, "pattern": SECTION_NAME}),
    );
    constrain(
        &mut crd,
        &format!("{listener}/hostname"),
        json!({"minLength": 1, "maxLength": 253, "pattern": HOSTNAME}),
    );
    constrain(&mut crd, &format!("{listener}/protocol"), json!({"minLength": 1, "maxLength": 255}));
    constrain(&mut crd, &format!("{listener}/allowedRoutes"), json!({"default": {"namespaces": {"from": "Same"}}}));
    constrain(
        &mut crd,
        &format!("{listener}/allowedRoutes/properties/namespaces/properties/from"),
        json!({"default": "Same"}),
    );
    Ok(crd)
}

fn route_crd(mut crd: Value) -> Value {
    let spec = "/properties/spec/properties";
    constrain(&mut crd, &format!("{spec}/hostnames"), json!({"maxItems": 16}));
    constrain(
        &mut crd,
        &format!("{spec}/hostnames/items"),
        json!({"minLength": 1, "maxLength": 253, "pattern": HOSTNAME}),
    );
    constrain(&mut crd, &format!("{spec}/parentRefs"), json!({"maxItems": 32}));
    constrain(&mut crd, &format!("{spec}/parentRefs/items/properties/name"), json!({"minLength": 1, "maxLength": 253}));
    constrain(
        &mut crd,
        &format!("{spec}/parentRefs/items/properties/sectionName"),
        json!({"minLength": 1, "maxLength": 253, "pattern": SECTION_NAME}),
    );
    constrain(&mut crd, &format!("{spec}/parentRefs/items/properties/port"), json!({"minimum": 1, "maximum": 65535}));
    constrain(&mut crd, &format!("{spec}/rules"), json!({"maxItems": 16}));
    constrain(
        &mut crd,
        &format!("{spec}/rules/items/properties/backendRefs/items/properties/port"),
        json!({"minimum": 1, "maximum": 65535}),
    );
    crd
}

/// The Gateway API standard-channel v1 CRDs.
pub fn gateway_api_crds() -> Result<Vec<Value>, serde_json::Error> {
    let age = column("Age", "date", ".metadata.creationTimestamp", 0);
    Ok(vec![
        decorate(
            serde_json::to_value(GatewayClass::crd())?,
            &["gc"],
            vec![
                column("Controller", "string", ".spec.controllerName", 0),
                column("Accepted", "string", ".status.conditions[?(@.type==\"Accepted\")].status", 0),
                age.clone(),
                column("Description", "string", ".spec.description", 1),
            ],
        ),
        decorate(
            gateway_crd()?,
            &["gtw"],
            vec![
                column("Class", "string", ".spec.gatewayClassName", 0),
                column("Address", "string", ".status.addresses[*].value", 0),
                column("Programmed", "string", ".status.conditions[?(@.type==\"Programmed\")].status", 0),
                age.clone(),
            ],
        ),
        decorate(
            route_crd(serde_json::to_value(HttpRoute::crd())?),
            &[],
            vec![column("Hostnames", "string", ".spec.hostnames", 0), age.clone()],
        ),
        decorate(
            route_crd(serde_json::to_value(GrpcRoute::crd())?),
            &[],
            vec![column("Hostnames", "string", ".spec.hostnames", 0), age.clone()],
        ),
        decorate(serde_json::to_value(ReferenceGrant::crd())?, &["refgrant"], vec![age]),
    ])
}

/// Our SecretProviderClass CRD: the fields the Azure Key Vault provider reads.
pub fn secret_provider_class_crd() -> Value {
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let data_item =
        json!({"type": "object", "properties": {"objectName": {"type": "string"}, "key": {"type": "string"}}});
    let secret_object = json!({
        "type": "object",
        "properties": {
            "secretName": {"type": "string"},
            "type": {"type": "string"},
            "labels": string_map,
            "annotations": string_map,
            "data": {"type": "array", "items": data_item},
        },
    });
    let spec = json!({
        "type": "object",
        "required": ["provider"],
        "properties": {
            "provider": {"type": "string", "minLength": 1},
            "parameters": string_map,
            "secretObjects": {"type": "array", "items": secret_object},
        },
    });
    let schema = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        },
    });
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "secretproviderclasses.secrets-store.csi.x-k8s.io"},
        "spec": {
            "group": "secrets-store.csi.x-k8s.io",
            "names": {"kind": "SecretProviderClass", "listKind": "SecretProviderClassList", "plural": "secretproviderclasses", "singular": "secretproviderclass"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}, "schema": {"openAPIV3Schema": schema}}],
        },
    })
}

/// Reads every CustomResourceDefinition from the `*.yaml`/`*.yml`/`*.json` files of `dir`
/// (multi-document YAML allowed), in file-name order — e.g. routewarden's `deploy/crds`.
pub fn load_dir(dir: &std::path::Path) -> anyhow::Result<Vec<Value>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
        .collect();
    paths.sort();
    let mut crds = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        crds.extend(parse_crds(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?);
    }
    Ok(crds)
}

/// The CustomResourceDefinitions among the documents of a YAML stream.
fn parse_crds(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    use serde::Deserialize;
    let mut crds = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(doc)?;
        if value.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
            crds.push(value);
        }
    }
    Ok(crds)
}

/// routewarden's own CRDs as checked in under `deploy/crds` (generated from the daemon's types, a
/// drift test keeps them current), built into the sandbox so `up` serves them with no flags.
pub fn routewarden_crds() -> Vec<Value> {
    const FILES: [&str; 3] = [
        include_str!("../../../deploy/crds/clusterexternaldnses.approuting.kubernetes.azure.com.yaml"),
        include_str!("../../../deploy/crds/externaldnses.approuting.kubernetes.azure.com.yaml"),
        include_str!("../../../deploy/crds/istioplugincas.routewarden.io.yaml"),
    ];
    FILES.iter().flat_map(|text| parse_crds(text).unwrap_or_default()).collect()
}

/// The `approuting-istio` GatewayClass.
pub fn approuting_gateway_class() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": "approuting-istio"},
        "spec": {"controllerName": GATEWAY_CONTROLLER, "description": "Application Routing Gateway API (istio), emulated by routewarden-sandbox"},
    })
}

#[cfg(test)]
mod embedded_tests {
    #[test]
    fn every_crd_in_deploy_is_built_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/crds");
        let on_disk = super::load_dir(&dir).expect("deploy/crds loads");
        assert_eq!(super::routewarden_crds(), on_disk, "add the new file under deploy/crds to routewarden_crds()");
        assert_eq!(on_disk.len(), 3);
    }
}
