//! One Event store, two APIs, as on a real cluster: `events.k8s.io/v1` Events are kept as core
//! `v1` Events, so `kubectl get events` and `kubectl describe` show what kube-rs's event
//! recorder (which writes events.k8s.io/v1) published. The handler converts request bodies to the
//! core shape before they reach the store and every object it returns back to events.k8s.io/v1,
//! field for field as the real conversion does (`regarding`↔`involvedObject`, `note`↔`message`,
//! `deprecated*`↔`count`/`firstTimestamp`/`lastTimestamp`/`source`).

use serde_json::{Map, Value, json};

fn moved(from: &Map<String, Value>, to: &mut Map<String, Value>, pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        if let Some(v) = from.get(*a).filter(|v| !v.is_null()) {
            to.insert((*b).to_string(), v.clone());
        }
    }
}

const SAME: &[(&str, &str)] = &[
    ("metadata", "metadata"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("action", "action"),
    ("reason", "reason"),
    ("related", "related"),
    ("type", "type"),
    ("reportingInstance", "reportingInstance"),
];

/// events.k8s.io/v1 Event → core v1 Event.
pub fn to_core(event: &Value) -> Value {
    let Some(from) = event.as_object() else { return event.clone() };
    let mut to = Map::new();
    to.insert("apiVersion".into(), json!("v1"));
    to.insert("kind".into(), json!("Event"));
    moved(from, &mut to, SAME);
    moved(
        from,
        &mut to,
        &[
            ("regarding", "involvedObject"),
            ("note", "message"),
            ("reportingController", "reportingComponent"),
            ("deprecatedSource", "source"),
            ("deprecatedFirstTimestamp", "firstTimestamp"),
            ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"),
        ],
    );
    if !to.contains_key("involvedObject") {
        to.insert("involvedObject".into(), json!({}));
    }
    Value::Object(to)
}

/// core v1 Event → events.k8s.io/v1 Event.
pub fn to_events_v1(event: &Value) -> Value {
    let Some(from) = event.as_object() else { return event.clone() };
    let mut to = Map::new();
    to.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    to.insert("kind".into(), json!("Event"));
    moved(from, &mut to, SAME);
    moved(
        from,
        &mut to,
        &[
            ("involvedObject", "regarding"),
            ("message", "note"),
            ("source", "deprecatedSource"),
            ("firstTimestamp", "deprecatedFirstTimestamp"),
            ("lastTimestamp", "deprecatedLastTimestamp"),
            ("count", "deprecatedCount"),
        ],
    );
    let controller = from
        .get("reportingComponent")
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        .or_else(|| event.pointer("/source/component"));
    if let Some(c) = controller {
        to.insert("reportingController".into(), c.clone());
    }
    Value::Object(to)
}

/// events.k8s.io field selector names → core ones.
pub fn core_field(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("regarding.") {
        return format!("involvedObject.{rest}");
    }
    match field {
        "reportingController" => "reportingComponent".into(),
        "deprecatedSource" => "source".into(),
        other => other.into(),
    }
}

/// The field selectors events.k8s.io/v1 accepts beyond metadata.
pub const EVENTS_V1_FIELDS: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_round_trips_the_fields_both_apis_share() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "app-a"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "routewarden", "reportingInstance": "rw-0",
            "action": "Reconcile", "reason": "Published", "note": "record set written", "type": "Normal",
            "regarding": {"kind": "Gateway", "name": "gw", "namespace": "app-a"}, "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:01.000000Z"}});
        let core = to_core(&v1);
        assert_eq!(core["involvedObject"]["name"], "gw");
        assert_eq!(core["message"], "record set written");
        assert_eq!(core["reportingComponent"], "routewarden");
        assert_eq!(to_events_v1(&core), v1);
    }
}
