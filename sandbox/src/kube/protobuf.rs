//! Protobuf request bodies. kubectl sends `application/vnd.kubernetes.protobuf` for built-in kinds
//! it builds itself (`kubectl create namespace|serviceaccount|configmap|secret|role|rolebinding|
//! clusterrole|clusterrolebinding`, `kubectl auth can-i`, and TokenRequest, see [`super::token`])
//! and does not fall back to JSON on 415. The body is `k8s\0` + `runtime.Unknown{typeMeta, raw}`;
//! `raw` is decoded here
//! with prost-derived messages mirroring the upstream `generated.proto` field numbers, and turned
//! into the same JSON the server stores. Only the fields those commands set are mirrored; a kind
//! not listed is answered 415 as before.

use std::collections::BTreeMap;

use prost::Message;
use serde_json::{Map, Value, json};

use super::error::ApiError;

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(message, optional, tag = "1")]
    type_meta: Option<TypeMeta>,
    #[prost(bytes = "vec", optional, tag = "2")]
    raw: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct TypeMeta {
    #[prost(string, optional, tag = "1")]
    api_version: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct OwnerReference {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    uid: Option<String>,
    #[prost(string, optional, tag = "5")]
    api_version: Option<String>,
    #[prost(bool, optional, tag = "6")]
    controller: Option<bool>,
    #[prost(bool, optional, tag = "7")]
    block_owner_deletion: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ObjectMeta {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    generate_name: Option<String>,
    #[prost(string, optional, tag = "3")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "6")]
    resource_version: Option<String>,
    #[prost(btree_map = "string, string", tag = "11")]
    labels: BTreeMap<String, String>,
    #[prost(btree_map = "string, string", tag = "12")]
    annotations: BTreeMap<String, String>,
    #[prost(message, repeated, tag = "13")]
    owner_references: Vec<OwnerReference>,
    #[prost(string, repeated, tag = "14")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct NamespaceSpec {
    #[prost(string, repeated, tag = "1")]
    finalizers: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Namespace {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<NamespaceSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct LocalObjectReference {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ServiceAccount {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, repeated, tag = "3")]
    image_pull_secrets: Vec<LocalObjectReference>,
    #[prost(bool, optional, tag = "4")]
    automount_service_account_token: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct ConfigMap {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, string", tag = "2")]
    data: BTreeMap<String, String>,
    #[prost(btree_map = "string, bytes", tag = "3")]
    binary_data: BTreeMap<String, Vec<u8>>,
    #[prost(bool, optional, tag = "4")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct Secret {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(btree_map = "string, bytes", tag = "2")]
    data: BTreeMap<String, Vec<u8>>,
    #[prost(string, optional, tag = "3")]
    type_: Option<String>,
    #[prost(btree_map = "string, string", tag = "4")]
    string_data: BTreeMap<String, String>,
    #[prost(bool, optional, tag = "5")]
    immutable: Option<bool>,
}

#[derive(Clone, PartialEq, Message)]
struct PolicyRule {
    #[prost(string, repeated, tag = "1")]
    verbs: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    api_groups: Vec<String>,
    #[prost(string, repeated, tag = "3")]
    resources: Vec<String>,
    #[prost(string, repeated, tag = "4")]
    resource_names: Vec<String>,
    #[prost(string, repeated, tag = "5")]
    non_resource_urls: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct Role {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, repeated, tag = "2")]
    rules: Vec<PolicyRule>,
}

#[derive(Clone, PartialEq, Message)]
struct Subject {
    #[prost(string, optional, tag = "1")]
    kind: Option<String>,
    #[prost(string, optional, tag = "2")]
    api_group: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
    #[prost(string, optional, tag = "4")]
    namespace: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct RoleRef {
    #[prost(string, optional, tag = "1")]
    api_group: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
    #[prost(string, optional, tag = "3")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct RoleBinding {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, repeated, tag = "2")]
    subjects: Vec<Subject>,
    #[prost(message, optional, tag = "3")]
    role_ref: Option<RoleRef>,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceAttributes {
    #[prost(string, optional, tag = "1")]
    namespace: Option<String>,
    #[prost(string, optional, tag = "2")]
    verb: Option<String>,
    #[prost(string, optional, tag = "3")]
    group: Option<String>,
    #[prost(string, optional, tag = "4")]
    version: Option<String>,
    #[prost(string, optional, tag = "5")]
    resource: Option<String>,
    #[prost(string, optional, tag = "6")]
    subresource: Option<String>,
    #[prost(string, optional, tag = "7")]
    name: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct NonResourceAttributes {
    #[prost(string, optional, tag = "1")]
    path: Option<String>,
    #[prost(string, optional, tag = "2")]
    verb: Option<String>,
}

/// SelfSubjectAccessReviewSpec and SubjectAccessReviewSpec share their first two fields.
#[derive(Clone, PartialEq, Message)]
struct AccessReviewSpec {
    #[prost(message, optional, tag = "1")]
    resource_attributes: Option<ResourceAttributes>,
    #[prost(message, optional, tag = "2")]
    non_resource_attributes: Option<NonResourceAttributes>,
    #[prost(string, optional, tag = "3")]
    user: Option<String>,
    #[prost(string, repeated, tag = "4")]
    groups: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct AccessReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<AccessReviewSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct RulesReviewSpec {
    #[prost(string, optional, tag = "1")]
    namespace: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct RulesReview {
    #[prost(message, optional, tag = "1")]
    metadata: Option<ObjectMeta>,
    #[prost(message, optional, tag = "2")]
    spec: Option<RulesReviewSpec>,
}

/// Inserts `v` under `k` unless it is None, an empty string, list or map.
fn put(m: &mut Map<String, Value>, k: &str, v: Value) {
    let empty = match &v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if !empty {
        m.insert(k.to_string(), v);
    }
}

fn meta(m: Option<ObjectMeta>) -> Value {
    let m = m.unwrap_or_default();
    let mut out = Map::new();
    put(&mut out, "name", json!(m.name));
    put(&mut out, "generateName", json!(m.generate_name));
    put(&mut out, "namespace", json!(m.namespace));
    put(&mut out, "resourceVersion", json!(m.resource_version));
    put(&mut out, "labels", json!(m.labels));
    put(&mut out, "annotations", json!(m.annotations));
    let owners: Vec<Value> = m
        .owner_references
        .into_iter()
        .map(|o| json!({"apiVersion": o.api_version, "kind": o.kind, "name": o.name, "uid": o.uid, "controller": o.controller, "blockOwnerDeletion": o.block_owner_deletion}))
        .collect();
    put(&mut out, "ownerReferences", json!(owners));
    put(&mut out, "finalizers", json!(m.finalizers));
    Value::Object(out)
}

fn b64(bytes: &[u8]) -> Value {
    use base64::Engine;
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn rules(rules: Vec<PolicyRule>) -> Value {
    json!(
        rules
            .into_iter()
            .map(|r| {
                let mut m = Map::new();
                put(&mut m, "verbs", json!(r.verbs));
                // apiGroups [""] is meaningful (the core group); keep it even though it holds "".
                if !r.api_groups.is_empty() {
                    m.insert("apiGroups".into(), json!(r.api_groups));
                }
                put(&mut m, "resources", json!(r.resources));
                put(&mut m, "resourceNames", json!(r.resource_names));
                put(&mut m, "nonResourceURLs", json!(r.non_resource_urls));
                Value::Object(m)
            })
            .collect::<Vec<_>>()
    )
}

fn binding(b: RoleBinding) -> (Value, Value, Value) {
    let subjects: Vec<Value> = b
        .subjects
        .into_iter()
        .map(|s| {
            let mut m = Map::new();
            put(&mut m, "kind", json!(s.kind));
            put(&mut m, "apiGroup", json!(s.api_group));
            put(&mut m, "name", json!(s.name));
            put(&mut m, "namespace", json!(s.namespace));
            Value::Object(m)
        })
        .collect();
    let r = b.role_ref.unwrap_or_default();
    (
        meta(b.metadata),
        json!(subjects),
        json!({"apiGroup": r.api_group.unwrap_or_default(), "kind": r.kind.unwrap_or_default(), "name": r.name.unwrap_or_default()}),
    )
}

/// Decodes a protobuf body of `expected_kind` into the JSON object the API would have received.
pub fn decode(expected_api_version: &str, expected_kind: &str, body: &[u8]) -> Result<Value, ApiError> {
    let bad = |what: String| ApiError::bad_request(format!("failed to decode protobuf {expected_kind}: {what}"));
    let rest = body.strip_prefix(b"k8s\0".as_slice()).ok_or_else(|| bad("missing the k8s protobuf prefix".into()))?;
    let unknown = Unknown::decode(rest).map_err(|e| bad(e.to_string()))?;
    let kind = unknown.type_meta.as_ref().and_then(|t| t.kind.clone()).unwrap_or_default();
    if kind != expected_kind {
        return Err(bad(format!("the body holds a {kind:?}")));
    }
    let raw = unknown.raw.unwrap_or_default();
    let raw = raw.as_slice();
    let err = |e: prost::DecodeError| bad(e.to_string());
    let mut obj = match kind.as_str() {
        "Namespace" => {
            let n = Namespace::decode(raw).map_err(err)?;
            let mut o = json!({"metadata": meta(n.metadata)});
            if let Some(spec) = n.spec.filter(|s| !s.finalizers.is_empty()) {
                o["spec"] = json!({"finalizers": spec.finalizers});
            }
            o
        }
        "ServiceAccount" => {
            let sa = ServiceAccount::decode(raw).map_err(err)?;
            let mut o = json!({"metadata": meta(sa.metadata)});
            if !sa.image_pull_secrets.is_empty() {
                o["imagePullSecrets"] =
                    json!(sa.image_pull_secrets.into_iter().map(|s| json!({"name": s.name})).collect::<Vec<_>>());
            }
            if let Some(a) = sa.automount_service_account_token {
                o["automountServiceAccountToken"] = json!(a);
            }
            o
        }
        "ConfigMap" => {
            let c = ConfigMap::decode(raw).map_err(err)?;
            let mut o = Map::new();
            o.insert("metadata".into(), meta(c.metadata));
            put(&mut o, "data", json!(c.data));
            put(&mut o, "binaryData", Value::Object(c.binary_data.iter().map(|(k, v)| (k.clone(), b64(v))).collect()));
            if let Some(i) = c.immutable {
                o.insert("immutable".into(), json!(i));
            }
            Value::Object(o)
        }
        "Secret" => {
            let s = Secret::decode(raw).map_err(err)?;
            let mut o = Map::new();
            o.insert("metadata".into(), meta(s.metadata));
            put(&mut o, "data", Value::Object(s.data.iter().map(|(k, v)| (k.clone(), b64(v))).collect()));
            put(&mut o, "stringData", json!(s.string_data));
            put(&mut o, "type", json!(s.type_));
            if let Some(i) = s.immutable {
                o.insert("immutable".into(), json!(i));
            }
            Value::Object(o)
        }
        "Role" | "ClusterRole" => {
            let r = Role::decode(raw).map_err(err)?;
            json!({"metadata": meta(r.metadata), "rules": rules(r.rules)})
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let (m, subjects, role_ref) = binding(RoleBinding::decode(raw).map_err(err)?);
            json!({"metadata": m, "subjects": subjects, "roleRef": role_ref})
        }
        "SelfSubjectAccessReview" | "SubjectAccessReview" => {
            let r = AccessReview::decode(raw).map_err(err)?;
            let spec = r.spec.unwrap_or_default();
            let mut out = Map::new();
            if let Some(ra) = spec.resource_attributes {
                let mut m = Map::new();
                put(&mut m, "namespace", json!(ra.namespace));
                put(&mut m, "verb", json!(ra.verb));
                put(&mut m, "group", json!(ra.group));
                put(&mut m, "version", json!(ra.version));
                put(&mut m, "resource", json!(ra.resource));
                put(&mut m, "subresource", json!(ra.subresource));
                put(&mut m, "name", json!(ra.name));
                out.insert("resourceAttributes".into(), Value::Object(m));
            }
            if let Some(na) = spec.non_resource_attributes {
                out.insert("nonResourceAttributes".into(), json!({"path": na.path, "verb": na.verb}));
            }
            put(&mut out, "user", json!(spec.user));
            put(&mut out, "groups", json!(spec.groups));
            json!({"metadata": meta(r.metadata), "spec": out})
        }
        "SelfSubjectRulesReview" => {
            let r = RulesReview::decode(raw).map_err(err)?;
            json!({"metadata": meta(r.metadata), "spec": {"namespace": r.spec.and_then(|s| s.namespace)}})
        }
        other => {
            return Err(ApiError::unsupported_media(&format!("application/vnd.kubernetes.protobuf (for {other})")));
        }
    };
    obj["apiVersion"] = json!(expected_api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let mut body = b"k8s\0".to_vec();
        body.extend(
            Unknown {
                type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
                raw: Some(raw),
            }
            .encode_to_vec(),
        );
        body
    }

    #[test]
    fn role_bindings_and_namespaces_decode_to_api_json() {
        let rb = RoleBinding {
            metadata: Some(ObjectMeta {
                name: Some("rb".into()),
                namespace: Some("app-a".into()),
                ..ObjectMeta::default()
            }),
            subjects: vec![Subject {
                kind: Some("ServiceAccount".into()),
                api_group: None,
                name: Some("sa".into()),
                namespace: Some("app-a".into()),
            }],
            role_ref: Some(RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: Some("Role".into()),
                name: Some("r".into()),
            }),
        };
        let json = decode(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &wrap("rbac.authorization.k8s.io/v1", "RoleBinding", rb.encode_to_vec()),
        )
        .expect("decodes");
        assert_eq!(json["subjects"], json!([{"kind": "ServiceAccount", "name": "sa", "namespace": "app-a"}]));
        assert_eq!(json["roleRef"]["name"], "r");
        let ns = Namespace {
            metadata: Some(ObjectMeta { name: Some("app-a".into()), ..ObjectMeta::default() }),
            spec: None,
        };
        let json = decode("v1", "Namespace", &wrap("v1", "Namespace", ns.encode_to_vec())).expect("decodes");
        assert_eq!(json, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app-a"}}));
    }
}
