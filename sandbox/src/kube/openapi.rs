//! OpenAPI v3, as much as `kubectl apply` needs: the index at `/openapi/v3` pointing at one document
//! per group-version, and per-group-version documents with one path per resource whose operations
//! carry `x-kubernetes-group-version-kind` and the `fieldValidation` query parameter (without it
//! kubectl falls back to OpenAPI v2, which is not served). Component schemas are the CRD schemas
//! for custom resources and permissive (`x-kubernetes-preserve-unknown-fields`) for built-ins;
//! the server validates for real.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};

use super::registry::{Registry, ResourceInfo};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

fn schema_name(r: &ResourceInfo) -> String {
    let reversed: Vec<&str> = r.group.split('.').rev().collect();
    if r.group.is_empty() {
        format!("io.k8s.api.core.{}.{}", r.version, r.kind)
    } else {
        format!("{}.{}.{}", reversed.join("."), r.version, r.kind)
    }
}

/// The document of one group-version, or None when nothing is served there.
pub fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<_> =
        registry.all().iter().filter(|r| r.group == group && r.version == version).cloned().collect();
    if resources.is_empty() {
        return None;
    }
    let params = json!([
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
        {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        {"name": "force", "in": "query", "schema": {"type": "boolean"}},
    ]);
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for r in &resources {
        let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
        let name = schema_name(r);
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let body = json!({"content": {"application/json": {"schema": reference}}});
        let op = |action: &str| {
            json!({
                "operationId": format!("{action}{}", r.kind),
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "requestBody": body,
                "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
            })
        };
        let base = if r.namespaced {
            format!("/{}/namespaces/{{namespace}}/{}", gv_path(group, version), r.plural)
        } else {
            format!("/{}/{}", gv_path(group, version), r.plural)
        };
        paths.insert(base.clone(), json!({"get": op("list"), "post": op("post")}));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")}),
        );
        if r.status_subresource {
            paths.insert(
                format!("{base}/{{name}}/status"),
                json!({"get": op("get"), "put": op("put"), "patch": op("patch")}),
            );
        }
        let mut schema =
            r.schema.clone().unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(name, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.4"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `/openapi/v3`: one entry per group-version, with a hash that changes when its document does.
pub fn index(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in registry.groups() {
        let doc = document(registry, &group, &version).unwrap_or(Value::Null);
        let mut hasher = DefaultHasher::new();
        doc.to_string().hash(&mut hasher);
        let path = gv_path(&group, &version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={:016X}", hasher.finish())}),
        );
    }
    json!({"paths": paths})
}
