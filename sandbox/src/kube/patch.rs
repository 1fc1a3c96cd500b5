//! PATCH bodies: JSON patch (RFC 6902) and JSON merge patch (RFC 7386) through the `json-patch`
//! crate, and strategic merge patch for built-in kinds, hand-written because no Rust crate
//! implements it: maps merge, `null` deletes, lists named in [`merge_key`] merge by their key,
//! primitive lists with merge strategy union, and the `$patch`, `$retainKeys`,
//! `$setElementOrder` and `$deleteFromPrimitiveList` directives are honoured or stripped.

use serde_json::{Map, Value};

use super::error::ApiError;

/// The patch types of the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`
    Json,
    /// `application/merge-patch+json`
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (and `+cbor` is not served)
    Apply,
}

impl PatchType {
    /// Parses a Content-Type, ignoring parameters.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Applies an RFC 6902 patch.
pub fn json_patch(doc: &mut Value, body: &Value) -> Result<(), ApiError> {
    let patch: json_patch::Patch = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    json_patch::patch(doc, &patch).map_err(|e| ApiError {
        code: 422,
        reason: "Invalid",
        message: e.to_string(),
        details: None,
    })
}

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(doc: &mut Value, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("json: cannot unmarshal into Go value of type map[string]interface {}"));
    }
    json_patch::merge(doc, body);
    Ok(())
}

/// The merge key candidates of a list field of the built-in kinds (their `patchMergeKey`); the
/// first key every patch item carries is used (`ports` is keyed by `containerPort` in pods and
/// by `port` in Services).
pub fn merge_key(field: &str) -> &'static [&'static str] {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "secrets"
        | "hostAliases" => &["name"],
        "volumeMounts" | "volumeDevices" => &["mountPath"],
        "ports" => &["containerPort", "port"],
        "ownerReferences" => &["uid"],
        "conditions" => &["type"],
        _ => &[],
    }
}

/// Primitive lists that strategic merge unions rather than replaces.
fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch to a built-in kind.
pub fn strategic_merge(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    if !patch.is_object() {
        return Err(ApiError::bad_request("json: cannot unmarshal into Go value of type map[string]interface {}"));
    }
    merge_map(doc, patch);
    Ok(())
}

fn merge_map(doc: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            *doc = Value::Object(strip_directives(p));
            return;
        }
        Some("delete") => {
            *doc = Value::Null;
            return;
        }
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let d = doc.as_object_mut().expect("just made an object");
    if let Some(retain) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        d.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, pv) in p {
        if k.starts_with("$setElementOrder/") || k == "$retainKeys" || k == "$patch" {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (d.get_mut(field).and_then(Value::as_array_mut), pv.as_array()) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if pv.is_null() {
            d.remove(k);
            continue;
        }
        match (d.get_mut(k), pv) {
            (Some(dv @ Value::Object(_)), Value::Object(_)) => {
                merge_map(dv, pv);
                if dv.is_null() {
                    d.remove(k);
                }
            }
            (Some(Value::Array(dl)), Value::Array(pl)) => merge_list(k, dl, pl),
            (_, Value::Object(po)) if po.get("$patch").and_then(Value::as_str) == Some("delete") => {
                d.remove(k);
            }
            (_, Value::Object(po)) => {
                d.insert(k.clone(), Value::Object(strip_directives(po)));
            }
            (_, Value::Array(pl)) => {
                let items: Vec<Value> = pl
                    .iter()
                    .filter(|i| i.get("$patch").is_none())
                    .map(|i| i.as_object().map(|o| Value::Object(strip_directives(o))).unwrap_or_else(|| i.clone()))
                    .collect();
                d.insert(k.clone(), Value::Array(items));
            }
            _ => {
                d.insert(k.clone(), pv.clone());
            }
        }
    }
}

fn strip_directives(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| {
            let v = match v {
                Value::Object(o) => Value::Object(strip_directives(o)),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn merge_list(field: &str, doc: &mut Vec<Value>, patch: &[Value]) {
    if is_set_list(field) {
        for v in patch {
            if !doc.contains(v) {
                doc.push(v.clone());
            }
        }
        return;
    }
    let Some(key) = merge_key(field).iter().copied().find(|k| patch.iter().all(|i| i.get(*k).is_some())) else {
        *doc = patch.iter().filter(|i| i.get("$patch").is_none()).cloned().collect();
        return;
    };
    if patch.iter().any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace")) {
        *doc = patch.iter().filter(|i| i.get("$patch").is_none()).cloned().collect();
        return;
    }
    for item in patch {
        let pos = doc.iter().position(|d| d.get(key) == item.get(key));
        match (pos, item.get("$patch").and_then(Value::as_str)) {
            (Some(i), Some("delete")) => {
                doc.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => merge_map(&mut doc[i], item),
            (None, _) => {
                doc.push(item.as_object().map(|o| Value::Object(strip_directives(o))).unwrap_or_else(|| item.clone()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_containers_by_name_and_deletes_nulls() {
        let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "v1"}, {"name": "side", "image": "s1"}]}}}});
        let patch = json!({
            "metadata": {"labels": {"b": null, "c": "3"}},
            "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "app"}, {"name": "side"}], "containers": [{"name": "app", "image": "v2"}, {"name": "side", "$patch": "delete"}]}}}
        });
        strategic_merge(&mut doc, &patch).expect("patched");
        assert_eq!(doc["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        assert_eq!(doc["spec"]["template"]["spec"]["containers"], json!([{"name": "app", "image": "v2"}]));
    }

    #[test]
    fn unknown_content_types_are_not_patch_types() {
        assert_eq!(PatchType::from_content_type("application/json"), None);
        assert_eq!(PatchType::from_content_type("application/merge-patch+json; charset=utf-8"), Some(PatchType::Merge));
    }
}
