//! Structural-schema enforcement for custom resources: defaults are filled in, unknown fields are
//! pruned (unless `x-kubernetes-preserve-unknown-fields`), and types, `required`, `enum`,
//! `pattern`, `minimum`/`maximum`, lengths and item counts are checked. Every violation becomes a
//! field cause of a 422 Invalid, worded as the real API server words it. `x-kubernetes-validations`
//! CEL rules are then evaluated with kube-cel (the Kubernetes CEL libraries: strings, lists, sets,
//! regex, URLs, IPs, quantities, formats), with `oldSelf` bound to the stored object on updates.

use serde_json::{Value, json};

use super::error::{Cause, json_type};

/// Defaults, prunes and validates `obj` against a CRD version's `openAPIV3Schema`.
pub fn validate(schema: &Value, obj: &mut Value) -> Vec<Cause> {
    validate_and_prune(schema, obj, None).0
}

/// Like [`validate`], also returning the paths of the unknown fields it pruned (for
/// `fieldValidation=Strict`).
/// `old` is the stored object on updates (`oldSelf` of transition rules).
pub fn validate_and_prune(schema: &Value, obj: &mut Value, old: Option<&Value>) -> (Vec<Cause>, Vec<String>) {
    let mut causes = Vec::new();
    let mut pruned = Vec::new();
    validate_root(schema, obj, &mut causes, &mut pruned);
    // CEL rules see the defaulted, pruned object, and only a structurally valid one, as the
    // real server evaluates them on typed values.
    if causes.is_empty() {
        check_rules(schema, obj, old, &mut causes);
    }
    (causes, pruned)
}

fn validate_root(schema: &Value, obj: &mut Value, causes: &mut Vec<Cause>, pruned: &mut Vec<String>) {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else { return };
    let Some(map) = obj.as_object_mut() else { return };
    for (name, sub) in props {
        if matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if !map.contains_key(name)
            && let Some(default) = sub.get("default")
        {
            map.insert(name.clone(), default.clone());
        }
        if let Some(value) = map.get_mut(name) {
            walk(sub, value, name, causes, pruned);
        }
    }
    if schema.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true)) {
        map.retain(|k, _| {
            let keep = matches!(k.as_str(), "apiVersion" | "kind" | "metadata") || props.contains_key(k);
            if !keep {
                pruned.push(k.clone());
            }
            keep
        });
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                causes.push(Cause::required(r, ""));
            }
        }
    }
}

fn type_ok(expected: &str, value: &Value, int_or_string: bool) -> bool {
    if int_or_string {
        return value.is_string() || value.is_i64() || value.is_u64();
    }
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    }
}

fn walk(schema: &Value, value: &mut Value, path: &str, causes: &mut Vec<Cause>, pruned: &mut Vec<String>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            causes.push(Cause::type_invalid(
                path,
                value,
                schema.get("type").and_then(Value::as_str).unwrap_or("object"),
            ));
        }
        return;
    }
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    if let Some(expected) = schema.get("type").and_then(Value::as_str)
        && !type_ok(expected, value, int_or_string)
    {
        causes.push(Cause::type_invalid(path, value, expected));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        causes.push(Cause::not_supported(path, value, allowed));
    }
    match value {
        Value::String(s) => {
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(s)
            {
                causes.push(Cause::invalid(path, &json!(s), &format!("{path} in body should match '{pattern}'")));
            }
            let len = s.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooLong",
                    message: format!("Too long: may not be more than {max} bytes"),
                    field: path.to_string(),
                });
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                causes.push(Cause::invalid(
                    path,
                    &json!(s),
                    &format!("{path} in body should be at least {min} chars long"),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                let exclusive = schema.get("exclusiveMaximum") == Some(&Value::Bool(true));
                if x > max || (exclusive && x >= max) {
                    let word = if exclusive { "less than" } else { "less than or equal to" };
                    causes.push(Cause::invalid(
                        path,
                        &Value::Number(n.clone()),
                        &format!("{path} in body should be {word} {}", render_number(max)),
                    ));
                }
            }
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                let exclusive = schema.get("exclusiveMinimum") == Some(&Value::Bool(true));
                if x < min || (exclusive && x <= min) {
                    let word = if exclusive { "greater than" } else { "greater than or equal to" };
                    causes.push(Cause::invalid(
                        path,
                        &Value::Number(n.clone()),
                        &format!("{path} in body should be {word} {}", render_number(min)),
                    ));
                }
            }
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && count > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany",
                    message: format!("Too many: {count}: must have at most {max} items"),
                    field: path.to_string(),
                });
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && count < min
            {
                causes.push(Cause::invalid(
                    path,
                    &json!(items.clone()),
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), causes, pruned);
                }
            }
        }
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(props) = props {
                for (name, sub) in props {
                    if !map.contains_key(name)
                        && let Some(default) = sub.get("default")
                    {
                        map.insert(name.clone(), default.clone());
                    }
                }
                for (name, sub) in props {
                    if let Some(v) = map.get_mut(name) {
                        walk(sub, v, &format!("{path}.{name}"), causes, pruned);
                    }
                }
            }
            let additional = schema.get("additionalProperties");
            if let Some(add) = additional.filter(|a| a.is_object()) {
                for (k, v) in map.iter_mut() {
                    if props.is_none_or(|p| !p.contains_key(k)) {
                        walk(add, v, &format!("{path}.{k}"), causes, pruned);
                    }
                }
            } else if schema.get("x-kubernetes-preserve-unknown-fields") != Some(&Value::Bool(true))
                && additional != Some(&Value::Bool(true))
                && let Some(p) = props
            {
                map.retain(|k, _| {
                    let keep = p.contains_key(k);
                    if !keep {
                        pruned.push(format!("{path}.{k}"));
                    }
                    keep
                });
            }
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        causes.push(Cause::required(format!("{path}.{r}"), ""));
                    }
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

/// Evaluates the schema's `x-kubernetes-validations` rules over the whole object with kube-cel
/// (the kube-rs project's implementation of the Kubernetes CEL libraries), passing the stored
/// object as `oldSelf` for transition rules on updates.
fn check_rules(schema: &Value, obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let Err(errors) = kube_cel::validate(schema, obj, old) else { return };
    for e in errors.into_vec() {
        if e.kind == kube_cel::ErrorKind::UnsupportedReference {
            // A function kube-cel lacks: the real server would evaluate it; better to let the
            // object through than to reject a valid one.
            tracing::warn!(rule = %e.rule, "CEL rule not evaluated: unsupported reference");
            continue;
        }
        let field = e.field_path.clone();
        let type_name = declaring_type(schema, &field, &e.rule)
            .or_else(|| value_at(obj, &field).map(json_type))
            .unwrap_or("object");
        let cause = match e.reason.as_deref() {
            Some("FieldValueRequired") => Cause::required(field, &e.message),
            Some("FieldValueForbidden") => {
                Cause { reason: "FieldValueForbidden", message: format!("Forbidden: {}", e.message), field }
            }
            Some("FieldValueDuplicate") => Cause {
                reason: "FieldValueDuplicate",
                message: format!("Duplicate value: \"{type_name}\": {}", e.message),
                field,
            },
            _ => Cause {
                reason: "FieldValueInvalid",
                message: format!("Invalid value: \"{type_name}\": {}", e.message),
                field,
            },
        };
        causes.push(cause);
    }
}

/// The schema type of the node that declares `rule`: the node at `path` or, when the rule has a
/// `fieldPath`, one of its ancestors. The real server names that type in the message.
fn declaring_type<'a>(schema: &'a Value, path: &str, rule: &str) -> Option<&'a str> {
    let mut nodes = vec![schema];
    let mut cur = schema;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part.split_once('[').map(|(n, rest)| (n, Some(rest))).unwrap_or((part, None));
        if !name.is_empty() {
            cur = cur.pointer(&format!("/properties/{name}")).or_else(|| cur.get("additionalProperties"))?;
            nodes.push(cur);
        }
        for _ in indexes.iter().flat_map(|rest| rest.split('[')) {
            cur = cur.get("items")?;
            nodes.push(cur);
        }
    }
    nodes.into_iter().rev().find_map(|node| {
        let declares = node
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .is_some_and(|rules| rules.iter().any(|r| r.get("rule").and_then(Value::as_str) == Some(rule)));
        declares.then(|| node.get("type").and_then(Value::as_str).unwrap_or("object"))
    })
}

/// The value at a cause path such as `spec.listeners[0].name`.
fn value_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = part.split_once('[').map(|(n, rest)| (n, Some(rest))).unwrap_or((part, None));
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(rest) = indexes {
            for index in rest.split('[') {
                cur = cur.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
            }
        }
    }
    Some(cur)
}

fn render_number(x: f64) -> String {
    if x.fract() == 0.0 { format!("{}", x as i64) } else { x.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["port"], "properties": {
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "protocol": {"type": "string", "enum": ["HTTP", "HTTPS"], "default": "HTTP"},
            "host": {"type": "string", "pattern": "^[a-z.]+$"}
        }}}})
    }

    #[test]
    fn defaults_are_filled_and_unknown_fields_pruned() {
        let mut obj = json!({"spec": {"port": 80, "extra": true}});
        assert!(validate(&schema(), &mut obj).is_empty());
        assert_eq!(obj["spec"], json!({"port": 80, "protocol": "HTTP"}));
    }

    #[test]
    fn cel_rules_are_evaluated_against_self() {
        let schema = json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.min <= self.max", "message": "min must not exceed max"},
                {"rule": "self.name.startsWith('rw-')", "fieldPath": ".name"},
                {"rule": "self.min == oldSelf.min", "message": "min is immutable"}
            ],
            "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}, "name": {"type": "string"}}
        }}});
        let mut ok = json!({"spec": {"min": 1, "max": 2, "name": "rw-a"}});
        assert!(validate(&schema, &mut ok).is_empty(), "transition rules do not apply on create");
        let old = ok.clone();
        let mut changed = json!({"spec": {"min": 0, "max": 2, "name": "rw-a"}});
        let causes = validate_and_prune(&schema, &mut changed, Some(&old)).0;
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].message, "Invalid value: \"object\": min is immutable");
        let mut bad = json!({"spec": {"min": 3, "max": 2, "name": "x"}});
        let messages: Vec<String> =
            validate(&schema, &mut bad).into_iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        assert_eq!(
            messages,
            vec![
                "spec: Invalid value: \"object\": min must not exceed max".to_string(),
                "spec.name: Invalid value: \"object\": failed rule: self.name.startsWith('rw-')".to_string(),
            ]
        );
    }

    #[test]
    fn pruned_fields_are_reported_for_strict_validation() {
        let mut obj = json!({"spec": {"port": 80, "extra": true}, "bogus": 1});
        let (causes, pruned) = validate_and_prune(&schema(), &mut obj, None);
        assert!(causes.is_empty());
        assert_eq!(pruned, vec!["spec.extra".to_string(), "bogus".to_string()]);
    }

    #[test]
    fn violations_become_causes() {
        let mut obj = json!({"spec": {"port": 70000, "protocol": "FTP", "host": "A!"}});
        let fields: Vec<String> =
            validate(&schema(), &mut obj).into_iter().map(|c| format!("{}: {}", c.field, c.message)).collect();
        assert_eq!(
            fields,
            vec![
                "spec.host: Invalid value: \"A!\": spec.host in body should match '^[a-z.]+$'".to_string(),
                "spec.port: Invalid value: 70000: spec.port in body should be less than or equal to 65535".to_string(),
                "spec.protocol: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"".to_string(),
            ]
        );
        let mut missing = json!({"spec": {}});
        let causes = validate(&schema(), &mut missing);
        assert_eq!(causes[0].field, "spec.port");
        assert_eq!(causes[0].message, "Required value");
    }
}
