//! managedFields and server-side apply. Objects are flattened into sets of field paths in the
//! `fieldsV1` vocabulary (`f:spec`, `k:{"name":"x"}`); every write records which manager owns
//! which paths. Update-style writes (POST, PUT, non-apply PATCH) take ownership of the paths they
//! change. An apply (`application/apply-patch+yaml`) checks the applied paths against other
//! managers (409 Conflict unless `force`), removes paths this manager applied before but no longer
//! applies (when nobody else owns them), and merges the applied configuration into the live object.
//!
//! Hand-written because no Rust crate implements Kubernetes structured-merge-diff. Lists whose items
//! all carry `name` (or `type`, for conditions) are treated as maps keyed by it, other lists as
//! atomic values, which matches how the kinds served here declare their list types.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::registry::ResourceInfo;
use super::store::{WriteOptions, now};

/// A path in fieldsV1 tokens, e.g. `["f:spec", "f:listeners", "k:{\"name\":\"https\"}", "f:port"]`.
pub type FieldPath = Vec<String>;

const SKIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
];

/// The key field of a list, when its items are keyed.
pub fn list_key(items: &[Value]) -> Option<&'static str> {
    if items.is_empty() {
        return None;
    }
    ["name", "type"].into_iter().find(|key| items.iter().all(|i| i.get(*key).is_some_and(|k| k.is_string())))
}

fn item_token(key: &str, item: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), item.get(key).cloned().unwrap_or(Value::Null));
    format!("k:{}", Value::Object(m))
}

fn collect(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                prefix.push(format!("f:{k}"));
                collect(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) if list_key(items).is_some() => {
            let key = list_key(items).expect("checked");
            for item in items {
                prefix.push(item_token(key, item));
                let mut marker = prefix.clone();
                marker.push(".".into());
                out.insert(marker);
                collect(item, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// The field paths an object sets, limited to the main resource or to `status`.
pub fn field_set(obj: &Value, subresource: Option<&str>) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    let Some(map) = obj.as_object() else { return out };
    for (k, v) in map {
        match (k.as_str(), subresource) {
            ("apiVersion" | "kind", _) => {}
            ("status", Some("status")) => collect(v, &mut vec!["f:status".into()], &mut out),
            (_, Some("status")) => {}
            ("metadata", _) => {
                if let Some(meta) = v.as_object() {
                    for (mk, mv) in meta {
                        if SKIPPED_META.contains(&mk.as_str()) {
                            continue;
                        }
                        collect(mv, &mut vec!["f:metadata".into(), format!("f:{mk}")], &mut out);
                    }
                }
            }
            _ => collect(v, &mut vec![format!("f:{k}")], &mut out),
        }
    }
    out
}

/// The value at a path (`.` markers resolve to the item itself).
pub fn get_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for token in path {
        if token == "." {
            continue;
        }
        cur = step(cur, token)?;
    }
    Some(cur)
}

fn step<'a>(cur: &'a Value, token: &str) -> Option<&'a Value> {
    if let Some(field) = token.strip_prefix("f:") {
        return cur.get(field);
    }
    if let Some(key) = token.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        return cur.as_array()?.iter().find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
    None
}

fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    if last == "." {
        return remove_at(obj, parents);
    }
    let mut cur = obj;
    for token in parents {
        if token == "." {
            continue;
        }
        let next = if let Some(field) = token.strip_prefix("f:") {
            cur.get_mut(field)
        } else if let Some(key) = token.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Map<String, Value>>(key) else { return };
            cur.as_array_mut().and_then(|a| a.iter_mut().find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v))))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(field);
        }
    } else if let Some(key) = last.strip_prefix("k:")
        && let Ok(key) = serde_json::from_str::<Map<String, Value>>(key)
        && let Some(a) = cur.as_array_mut()
    {
        a.retain(|item| !key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
}

/// `.spec.listeners[name="https"].port`, the way apply conflicts name fields.
pub fn display_path(path: &[String]) -> String {
    let mut s = String::new();
    for token in path {
        if let Some(f) = token.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = token.strip_prefix("k:") {
            let key: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("[{}]", parts.join(",")));
        }
    }
    s
}

/// One managedFields entry, decoded.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    manager: String,
    operation: String,
    subresource: Option<String>,
    api_version: String,
    time: String,
    fields: BTreeSet<FieldPath>,
}

fn decode_fields(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    if let Some(map) = v.as_object() {
        for (k, child) in map {
            prefix.push(k.clone());
            let leaf = child.as_object().is_none_or(|m| m.is_empty());
            if leaf {
                out.insert(prefix.clone());
            } else {
                decode_fields(child, prefix, out);
            }
            prefix.pop();
        }
    }
}

fn encode_fields(fields: &BTreeSet<FieldPath>) -> Value {
    let mut root = json!({});
    for path in fields {
        let mut cur = &mut root;
        for token in path {
            cur = cur
                .as_object_mut()
                .expect("fieldsV1 nodes are objects")
                .entry(token.clone())
                .or_insert_with(|| json!({}));
        }
    }
    root
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| {
                    let mut fields = BTreeSet::new();
                    if let Some(f) = e.get("fieldsV1") {
                        decode_fields(f, &mut Vec::new(), &mut fields);
                    }
                    Entry {
                        manager: e.get("manager").and_then(Value::as_str).unwrap_or_default().to_string(),
                        operation: e.get("operation").and_then(Value::as_str).unwrap_or("Update").to_string(),
                        subresource: e.get("subresource").and_then(Value::as_str).map(str::to_string),
                        api_version: e.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_string(),
                        time: e.get("time").and_then(Value::as_str).unwrap_or_default().to_string(),
                        fields,
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode_fields(&e.fields),
            });
            if let Some(sub) = e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn owns(entry: &Entry, path: &FieldPath) -> bool {
    entry.fields.contains(path)
}

/// Records an Update-style write: `manager` takes the paths whose values changed; paths that
/// disappeared are dropped from every manager.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    api_version: &str,
) {
    let old_obj = old.cloned().unwrap_or(json!({}));
    let old_fields = field_set(&old_obj, subresource);
    let new_fields = field_set(new, subresource);
    let changed: BTreeSet<FieldPath> = new_fields
        .iter()
        .filter(|p| get_at(&old_obj, p) != get_at(new, p) || !old_fields.contains(*p))
        .cloned()
        .collect();
    let removed: BTreeSet<FieldPath> = old_fields.difference(&new_fields).cloned().collect();
    // A client cannot rewrite ownership by echoing managedFields; start from the stored ones.
    let mut entries = match old {
        Some(o) => read_entries(o),
        None => Vec::new(),
    };
    if changed.is_empty() && removed.is_empty() {
        write_entries(new, entries);
        return;
    }
    for e in &mut entries {
        e.fields.retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    let sub = subresource.map(str::to_string);
    match entries.iter_mut().find(|e| e.manager == manager && e.operation == "Update" && e.subresource == sub) {
        Some(e) => {
            e.fields.extend(changed);
            e.time = now();
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            subresource: sub,
            api_version: api_version.into(),
            time: now(),
            fields: changed,
        }),
    }
    write_entries(new, entries);
}

/// Deep merge of an applied configuration into the live object: maps merge, keyed lists merge
/// by key, everything else is replaced.
pub fn merge(live: &mut Value, applied: &Value) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                match l.get_mut(k) {
                    Some(lv) => merge(lv, av),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a))
            if list_key(a).is_some() && list_key(l).is_some() || (l.is_empty() && list_key(a).is_some()) =>
        {
            let key = list_key(a).expect("checked");
            for item in a {
                match l.iter_mut().find(|li| li.get(key) == item.get(key)) {
                    Some(li) => merge(li, item),
                    None => l.push(item.clone()),
                }
            }
        }
        (l, a) => *l = a.clone(),
    }
}

/// The outcome of an apply that could not proceed.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflicts(pub Vec<(String, String)>);

/// Server-side apply of `applied` by `manager` onto `live` (None when the object does not exist).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    api_version: &str,
) -> Result<Value, Conflicts> {
    let applied_fields = field_set(applied, subresource);
    let mut result = match live {
        Some(l) => l.clone(),
        None => json!({"apiVersion": applied.get("apiVersion"), "kind": applied.get("kind"), "metadata": {}}),
    };
    let mut entries = read_entries(&result);
    let sub = subresource.map(str::to_string);
    let is_me = |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == sub;
    let mut conflicts: BTreeMap<(String, String), ()> = BTreeMap::new();
    for path in &applied_fields {
        let live_value = get_at(&result, path);
        if live_value.is_none() || live_value == get_at(applied, path) {
            continue;
        }
        for e in entries.iter().filter(|e| !is_me(e) && e.subresource == sub) {
            if owns(e, path) {
                conflicts.insert((e.manager.clone(), display_path(path)), ());
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(Conflicts(conflicts.into_keys().collect()));
    }
    // Shared ownership of equal values is kept; forced or changed values move to this manager.
    for e in entries.iter_mut().filter(|e| !is_me(e) && e.subresource == sub) {
        e.fields.retain(|p| {
            !(applied_fields.contains(p) && get_at(&result, p).is_some() && get_at(&result, p) != get_at(applied, p))
        });
    }
    let previous: BTreeSet<FieldPath> =
        entries.iter().filter(|e| is_me(e)).flat_map(|e| e.fields.iter().cloned()).collect();
    let mut removed = Vec::new();
    for path in previous.difference(&applied_fields) {
        let owned_elsewhere = entries.iter().any(|e| !is_me(e) && owns(e, path));
        if !owned_elsewhere {
            remove_at(&mut result, path);
            removed.push(path);
        }
    }
    // A map or list emptied by those removals goes too (the last address of a status, the last
    // label), unless someone set it empty on purpose or the applied configuration names it.
    for path in removed {
        for end in (1..path.len()).rev() {
            let ancestor = &path[..end];
            let Some(value) = get_at(&result, ancestor) else { continue };
            let emptied = value.as_array().is_some_and(Vec::is_empty) || value.as_object().is_some_and(Map::is_empty);
            let kept = get_at(applied, ancestor).is_some() || entries.iter().any(|e| e.fields.contains(ancestor));
            if !emptied || kept {
                break;
            }
            remove_at(&mut result, ancestor);
        }
    }
    let mut body = applied.clone();
    if let Some(m) = body.pointer_mut("/metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    merge(&mut result, &body);
    entries.retain(|e| !is_me(e));
    entries.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        subresource: sub,
        api_version: api_version.into(),
        time: now(),
        fields: applied_fields,
    });
    write_entries(&mut result, entries);
    Ok(result)
}

/// Server-side apply as the API serves it, as the step [`super::store::Store::write`] runs on the live
/// object (pass `opts` with `apply` set): [`apply`] under `opts.field_manager` to `opts.subresource`,
/// conflicts as the 409 clients see, and the URL's name and namespace on an object it creates.
/// `PATCH` with `application/apply-patch+yaml` and the in-process Gateway controller stand-in both go
/// through here, so their writes merge by the same rules.
pub fn server_side<'a>(
    info: &'a ResourceInfo,
    ns: &'a str,
    name: &'a str,
    applied: &'a Value,
    opts: &'a WriteOptions,
    force: bool,
) -> impl FnOnce(Option<&Value>) -> Result<Value, ApiError> + 'a {
    move |live| {
        let mut result =
            apply(live, applied, &opts.field_manager, force, opts.subresource.as_deref(), &info.api_version())
                .map_err(|c| ApiError::apply_conflict(&info.plural, &info.group, name, &c.0))?;
        if live.is_none()
            && let Some(meta) = result.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("name".into(), json!(name));
            if info.namespaced {
                meta.insert("namespace".into(), json!(ns));
            }
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_conflicts_with_another_managers_field_unless_forced() {
        let mut live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        record_update(None, &mut live, "editor", None, "v1");
        let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
        let err = apply(Some(&live), &applied, "kubectl", false, None, "v1").expect_err("conflict");
        assert_eq!(err.0, vec![("editor".to_string(), ".data.a".to_string())]);
        let forced = apply(Some(&live), &applied, "kubectl", true, None, "v1").expect("forced");
        assert_eq!(forced["data"]["a"], "2");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| e["manager"].as_str().expect("str"))
            .collect();
        assert_eq!(managers, vec!["kubectl"]);
    }

    #[test]
    fn reapply_without_a_field_removes_it() {
        let first =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
        let live = apply(None, &first, "m", false, None, "v1").expect("applied");
        let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
        let live = apply(Some(&live), &second, "m", false, None, "v1").expect("applied");
        assert_eq!(live["data"], json!({"a": "1"}));
    }

    #[test]
    fn reapply_without_the_last_item_removes_the_emptied_list() {
        let first = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"},
            "status": {"phase": "Up", "addresses": [{"type": "IPAddress", "value": "203.0.113.10"}]}});
        let live = apply(None, &first, "m", true, Some("status"), "v1").expect("applied");
        let second = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "status": {"phase": "Up"}});
        let live = apply(Some(&live), &second, "m", true, Some("status"), "v1").expect("applied");
        assert_eq!(live["status"], json!({"phase": "Up"}));
    }

    #[test]
    fn keyed_lists_merge_by_name() {
        let mut live = json!({"spec": {"listeners": [{"name": "a", "port": 80}]}});
        merge(&mut live, &json!({"spec": {"listeners": [{"name": "b", "port": 443}]}}));
        assert_eq!(live["spec"]["listeners"].as_array().map(Vec::len), Some(2));
    }
}
