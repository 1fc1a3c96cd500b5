//! Discovery documents built from the registry on each request: `/version`, the legacy
//! `APIVersions` / `APIGroupList` / `APIGroup` / `APIResourceList`, and aggregated discovery v2
//! (`APIGroupDiscoveryList`) when the Accept header asks for it, with the exact media type kubectl
//! requires (with a plain `application/json` content type kubectl silently sees no resources).

use serde_json::{Value, json};

use super::registry::{Registry, ResourceInfo};

/// The Content-Type of aggregated discovery v2.
pub const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether the Accept header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept
        .split(',')
        .any(|part| part.contains("as=APIGroupDiscoveryList") && part.contains("v=v2") && !part.contains("v=v2beta1"))
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4",
        "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T16:02:27Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn scope(r: &ResourceInfo) -> &'static str {
    if r.namespaced { "Namespaced" } else { "Cluster" }
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": scope(r),
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    let mut subs = Vec::new();
    if r.status_subresource {
        subs.push(json!({"subresource": "status", "responseKind": {"group": r.group, "version": r.version, "kind": r.kind}, "verbs": ["get", "patch", "update"]}));
    }
    for s in &r.subresources {
        subs.push(json!({"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind}, "verbs": s.verbs}));
    }
    if !subs.is_empty() {
        v["subresources"] = json!(subs);
    }
    v
}

/// Aggregated discovery for `/api` (core) or `/apis` (every named group).
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let mut items = Vec::new();
    for (group, version) in registry.groups() {
        if group.is_empty() != core {
            continue;
        }
        let resources: Vec<Value> = registry
            .all()
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .map(|r| aggregated_resource(r))
            .collect();
        items.push(json!({"metadata": {"name": group}, "versions": [{"version": version, "resources": resources, "freshness": "Current"}]}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Legacy `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]})
}

fn api_group(group: &str, version: &str) -> Value {
    let gv = format!("{group}/{version}");
    json!({"name": group, "versions": [{"groupVersion": gv, "version": version}], "preferredVersion": {"groupVersion": gv, "version": version}})
}

/// Legacy `/apis`.
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> =
        registry.groups().into_iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| api_group(&g, &v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `/apis/GROUP`.
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    let (g, v) = registry.groups().into_iter().find(|(g, _)| g == group)?;
    let mut doc = api_group(&g, &v);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// Legacy `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let matching: Vec<_> = registry.all().iter().filter(|r| r.group == group && r.version == version).collect();
    if matching.is_empty() {
        return None;
    }
    let mut resources = Vec::new();
    for r in matching {
        let mut v = json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind, "verbs": r.verbs()});
        if !r.short_names.is_empty() {
            v["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            v["categories"] = json!(r.categories);
        }
        resources.push(v);
        if r.status_subresource {
            resources.push(json!({"name": format!("{}/status", r.plural), "singularName": "", "namespaced": r.namespaced, "kind": r.kind, "verbs": ["get", "patch", "update"]}));
        }
        for s in &r.subresources {
            resources.push(json!({"name": format!("{}/{}", r.plural, s.name), "singularName": "", "namespaced": r.namespaced, "group": s.group, "version": s.version, "kind": s.kind, "verbs": s.verbs}));
        }
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}
