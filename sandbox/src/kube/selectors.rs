//! Label selectors (equality- and set-based) and field selectors (`metadata.name`,
//! `metadata.namespace`), parsed once per request from the query string and matched against each
//! stored object by list and watch. Parse errors become 400 BadRequest with the server's wording.

use serde_json::Value;

use super::error::ApiError;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                current.push(c);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                current.push(c);
            }
            ',' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts.into_iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn set_values(rest: &str) -> Result<Vec<String>, ApiError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| ApiError::bad_request(format!("unable to parse requirement: found '{rest}', expected: '('")))?;
    Ok(inner.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect())
}

impl LabelSelector {
    /// Parses `app=x,tier!=db,env in (a,b),!legacy`.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_string())
            } else if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Equals(k.trim().into(), v.trim().into())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                Requirement::NotIn(k.trim().into(), set_values(rest)?)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                Requirement::In(k.trim().into(), set_values(rest)?)
            } else {
                Requirement::Exists(part.trim().to_string())
            };
            let key = match &req {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k,
            };
            if !valid_key(key) {
                return Err(ApiError::bad_request(format!(
                    "unable to parse requirement: <nil>: Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                )));
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether an object's labels satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// The field selectors a kind supports beyond `metadata.name` and `metadata.namespace`, as the
/// real server registers them (core Events' involvedObject fields are what `kubectl describe`
/// uses to find an object's events).
pub fn extra_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "serviceaccounts") => &[],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses `metadata.name=x,metadata.namespace!=y`; other fields are 400 as on a real server.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Self::parse_for(s, &[])
    }

    /// Parses a selector for a kind that also supports `extra` fields (see [`extra_fields`]).
    pub fn parse_for(s: &str, extra: &[&str]) -> Result<Self, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let (field, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(ApiError::bad_request(format!("invalid selector: '{s}'; can't understand '{part}'")));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" && !extra.contains(&field) {
                return Err(ApiError::bad_request(format!("field label not supported: {field}")));
            }
            reqs.push((field.to_string(), equal, value.trim().to_string()));
        }
        Ok(Self(reqs))
    }

    /// Whether an object satisfies every requirement (a missing field reads as `""`).
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = match field.as_str() {
                // `source` selects on the component that reported the event.
                "source" => obj.pointer("/source/component"),
                "reportingComponent" => obj.get("reportingComponent"),
                f => obj.pointer(&format!("/{}", f.replace('.', "/"))),
            };
            let actual = actual.and_then(Value::as_str).unwrap_or("");
            (actual == value) == *equal
        })
    }

    /// Rewrites field names (events.k8s.io's `regarding.*` are core's `involvedObject.*`).
    pub fn renamed(self, rename: impl Fn(&str) -> String) -> Self {
        Self(self.0.into_iter().map(|(f, eq, v)| (rename(&f), eq, v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_based_and_equality_requirements_combine() {
        let obj = json!({"metadata": {"labels": {"app": "web", "zone": "a"}}});
        for (selector, expected) in [
            ("app=web", true),
            ("app==web,zone=b", false),
            ("zone in (a, b)", true),
            ("zone notin (a)", false),
            ("app,!legacy", true),
            ("legacy", false),
            ("app!=db", true),
        ] {
            assert_eq!(LabelSelector::parse(selector).expect("parses").matches(&obj), expected, "{selector}");
        }
    }

    #[test]
    fn event_field_selectors_match_involved_objects() {
        let event = json!({"metadata": {"name": "e"}, "involvedObject": {"kind": "Gateway", "name": "gw"}, "source": {"component": "routewarden"}});
        let extra = extra_fields("", "events");
        assert!(
            FieldSelector::parse_for("involvedObject.kind=Gateway,involvedObject.name=gw,source=routewarden", extra)
                .expect("parses")
                .matches(&event)
        );
        assert!(!FieldSelector::parse_for("involvedObject.name=other", extra).expect("parses").matches(&event));
        assert!(FieldSelector::parse("involvedObject.name=gw").is_err(), "only events support it");
    }

    #[test]
    fn unsupported_field_selectors_are_rejected() {
        let err = FieldSelector::parse("spec.x=1").expect_err("rejected");
        assert_eq!(err.code, 400);
        assert_eq!(err.message, "field label not supported: spec.x");
    }
}
