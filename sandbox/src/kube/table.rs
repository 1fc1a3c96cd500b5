//! `meta.k8s.io/v1` Table responses for `kubectl get`: a Name column, the kind's printer columns
//! (CRD `additionalPrinterColumns`, evaluated with a small JSONPath subset: `.a.b`, `[n]`, `[*]`,
//! `[?(@.k=="v")]`), and Age; each row carries the object's metadata as PartialObjectMetadata.
//! Events get kubectl's LAST SEEN, TYPE, REASON, OBJECT and MESSAGE columns instead.

use serde_json::{Value, json};

use super::registry::{PrinterColumn, ResourceInfo, partial_metadata};

/// The Content-Type of a Table reply.
pub const TABLE_CONTENT_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// Whether the Accept header's first choice is a v1 Table.
pub fn wants_table(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table") && first.contains("v=v1") && !first.contains("v=v1beta1"))
}

/// Whether the Accept header's first choice is metadata only (`as=PartialObjectMetadata` or
/// `as=PartialObjectMetadataList`, what kube-rs and client-go metadata informers send).
pub fn wants_metadata(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=PartialObjectMetadata") && first.contains("v=v1"))
}

/// The Content-Type of a metadata-only reply.
pub fn metadata_content_type(list: bool) -> &'static str {
    if list {
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    } else {
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
    }
}

/// Evaluates the JSONPath subset; several matches are joined with `,`.
pub fn eval_path(obj: &Value, path: &str) -> Vec<Value> {
    let mut current = vec![obj.clone()];
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    while !rest.is_empty() {
        let mut next = Vec::new();
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            for v in &current {
                if let Some(x) = v.get(field) {
                    next.push(x.clone());
                }
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { return Vec::new() };
            let selector = &r[..end];
            rest = &r[end + 1..];
            for v in &current {
                let Some(items) = v.as_array() else { continue };
                if selector == "*" {
                    next.extend(items.iter().cloned());
                } else if let Ok(i) = selector.parse::<usize>() {
                    if let Some(x) = items.get(i) {
                        next.push(x.clone());
                    }
                } else if let Some(filter) = selector.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
                    && let Some((field, value)) = filter.split_once("==")
                {
                    let value = value.trim().trim_matches('"').trim_matches('\'');
                    next.extend(
                        items.iter().filter(|i| i.get(field.trim()).and_then(Value::as_str) == Some(value)).cloned(),
                    );
                }
            }
        } else {
            return Vec::new();
        }
        current = next;
    }
    current
}

/// Kubernetes' `HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    if s < 120 {
        format!("{s}s")
    } else if m < 10 {
        if s % 60 == 0 { format!("{m}m") } else { format!("{m}m{}s", s % 60) }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 { format!("{h}h") } else { format!("{h}h{}m", m % 60) }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 { format!("{d}d") } else { format!("{d}d{}h", h % 24) }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

fn age(timestamp: &str) -> String {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<unknown>".into(),
    }
}

fn cell(obj: &Value, column: &PrinterColumn, info: &ResourceInfo) -> Value {
    let values = eval_path(obj, &column.json_path);
    if info.kind == "Secret" && column.json_path == ".data" {
        return json!(values.first().and_then(Value::as_object).map(|m| m.len()).unwrap_or(0));
    }
    // kubectl's READY column of a Deployment is "ready/desired", with absent counts as 0.
    if info.kind == "Deployment" && info.group == "apps" {
        let count = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0);
        if column.name == "Ready" {
            let desired = count(obj.pointer("/spec/replicas"));
            return json!(format!("{}/{desired}", count(values.first())));
        }
        return json!(count(values.first()));
    }
    if values.is_empty() {
        return Value::Null;
    }
    if column.type_ == "date" {
        return json!(values[0].as_str().map(age).unwrap_or_default());
    }
    if values.len() == 1 {
        return match &values[0] {
            Value::Array(items) => json!(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            other => other.clone(),
        };
    }
    json!(
        values
            .iter()
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn column_definition(name: &str, type_: &str, priority: i64) -> Value {
    json!({"name": name, "type": type_, "format": if name == "Name" { "name" } else { "" }, "description": "", "priority": priority})
}

/// `kubectl get events`: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE (NAME only with -o wide), read
/// from either Event shape (core v1 or events.k8s.io/v1).
fn events_table(objects: &[Value], metadata: Value) -> Value {
    let columns = vec![
        column_definition("Last Seen", "string", 0),
        column_definition("Type", "string", 0),
        column_definition("Reason", "string", 0),
        column_definition("Object", "string", 0),
        column_definition("Message", "string", 0),
        column_definition("Name", "string", 1),
    ];
    let text = |obj: &Value, paths: &[&str]| -> String {
        paths
            .iter()
            .find_map(|p| obj.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()))
            .unwrap_or("")
            .to_string()
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|e| {
            let seen = text(
                e,
                &[
                    "/series/lastObservedTime",
                    "/lastTimestamp",
                    "/deprecatedLastTimestamp",
                    "/eventTime",
                    "/metadata/creationTimestamp",
                ],
            );
            let kind = text(e, &["/involvedObject/kind", "/regarding/kind"]).to_ascii_lowercase();
            let name = text(e, &["/involvedObject/name", "/regarding/name"]);
            json!({
                "cells": [
                    if seen.is_empty() { "<unknown>".to_string() } else { age(&seen) },
                    text(e, &["/type"]),
                    text(e, &["/reason"]),
                    format!("{kind}/{name}"),
                    text(e, &["/message", "/note"]),
                    text(e, &["/metadata/name"]),
                ],
                "object": partial_metadata(e),
            })
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns, "rows": rows})
}

/// Builds the Table for some objects of one kind.
pub fn table(info: &ResourceInfo, objects: &[Value], resource_version: &str, continue_token: Option<&str>) -> Value {
    if info.plural == "events" && (info.group.is_empty() || info.group == "events.k8s.io") {
        let mut metadata = json!({"resourceVersion": resource_version});
        if let Some(token) = continue_token {
            metadata["continue"] = json!(token);
        }
        return events_table(objects, metadata);
    }
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let has_age = info.printer_columns.iter().any(|c| c.json_path == ".metadata.creationTimestamp");
    for c in &info.printer_columns {
        columns.push(json!({"name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority}));
    }
    if !has_age {
        columns.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0}));
    }
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut cells = vec![obj.pointer("/metadata/name").cloned().unwrap_or(json!(""))];
            for c in &info.printer_columns {
                cells.push(cell(obj, c, info));
            }
            if !has_age {
                cells.push(json!(
                    obj.pointer("/metadata/creationTimestamp").and_then(Value::as_str).map(age).unwrap_or_default()
                ));
            }
            json!({"cells": cells, "object": partial_metadata(obj)})
        })
        .collect();
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": columns, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset_selects_conditions_and_lists() {
        let obj = json!({"status": {"addresses": [{"value": "10.0.0.1"}, {"value": "fd00::1"}], "conditions": [{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}]}});
        assert_eq!(eval_path(&obj, ".status.conditions[?(@.type==\"Programmed\")].status"), vec![json!("False")]);
        assert_eq!(eval_path(&obj, ".status.addresses[*].value").len(), 2);
        assert_eq!(eval_path(&obj, ".status.addresses[0].value"), vec![json!("10.0.0.1")]);
    }

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(185), "3m5s");
        assert_eq!(human_duration(3 * 86400), "3d");
    }
}
