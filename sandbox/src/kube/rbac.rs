//! RBAC authorization for ServiceAccount tokens, read from the Roles, ClusterRoles, RoleBindings
//! and ClusterRoleBindings in the store on each request: a request is allowed when a binding whose
//! subjects include the caller (the ServiceAccount itself, its groups `system:serviceaccounts`,
//! `system:serviceaccounts:NS`, `system:authenticated`) grants a rule matching the verb, API
//! group, resource (and subresource) and, where given, the resource name. ClusterRoleBindings grant
//! everywhere; RoleBindings only in their namespace. The admin token bypasses this, as a
//! cluster-admin would. Denials are 403 Status objects worded as the real authorizer words them.
//! Discovery, OpenAPI and `/version` are open to every authenticated caller, as on a real cluster.
//! Every decision for a ServiceAccount is also kept in an [`AccessLog`] (without object names, so
//! it stays small), which is how tests show that a set of rules is both sufficient (nothing
//! denied) and least privilege (every granted verb used).

use serde_json::Value;

use super::error::ApiError;
use super::store::{ListQuery, Store};
use super::token::Identity;

/// One authorization question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes<'a> {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'a str,
    /// API group (`""` for core).
    pub group: &'a str,
    /// Resource plural.
    pub resource: &'a str,
    /// Subresource (`status`, `token`), if any.
    pub subresource: Option<&'a str>,
    /// Namespace, None for cluster scope.
    pub namespace: Option<&'a str>,
    /// Object name, if the request names one.
    pub name: Option<&'a str>,
}

/// One kind of request a caller made, and whether RBAC allowed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    /// `system:serviceaccount:NS:NAME`.
    pub user: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub allowed: bool,
}

/// The distinct [`Access`]es seen since the server started.
#[derive(Debug, Default)]
pub struct AccessLog(std::sync::Mutex<std::collections::BTreeSet<Access>>);

impl AccessLog {
    /// Records a decision about a ServiceAccount's (or impersonated user's) request; the admin's
    /// requests are not authorized and not recorded.
    pub fn record(&self, identity: &Identity, attrs: &Attributes<'_>, allowed: bool) {
        let Some((user, _)) = identity.user_and_groups() else { return };
        let access = Access {
            user,
            verb: attrs.verb.to_string(),
            group: attrs.group.to_string(),
            resource: attrs.resource.to_string(),
            subresource: attrs.subresource.map(str::to_string),
            namespace: attrs.namespace.map(str::to_string),
            allowed,
        };
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(access);
    }

    /// Everything recorded, sorted.
    pub fn entries(&self) -> Vec<Access> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().cloned().collect()
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

fn rule_allows(rule: &Value, attrs: &Attributes<'_>) -> bool {
    let verbs = strings(rule.get("verbs"));
    let groups = strings(rule.get("apiGroups"));
    let resources = strings(rule.get("resources"));
    let names = strings(rule.get("resourceNames"));
    let verb_ok = verbs.iter().any(|v| v == "*" || v == attrs.verb);
    let group_ok = groups.iter().any(|g| g == "*" || g == attrs.group);
    let resource_ok = resources.iter().any(|r| match attrs.subresource {
        None => r == "*" || r == attrs.resource,
        Some(sub) => {
            r == "*"
                || *r == format!("{}/{sub}", attrs.resource)
                || *r == format!("{}/*", attrs.resource)
                || *r == format!("*/{sub}")
        }
    });
    let name_ok = names.is_empty() || attrs.name.is_some_and(|n| names.iter().any(|x| x == n));
    verb_ok && group_ok && resource_ok && name_ok
}

fn subject_matches(subject: &Value, user: &str, groups: &[String], sa: (&str, &str)) -> bool {
    let kind = subject.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = subject.get("name").and_then(Value::as_str).unwrap_or("");
    match kind {
        "ServiceAccount" => subject.get("namespace").and_then(Value::as_str) == Some(sa.0) && name == sa.1,
        "User" => name == user,
        "Group" => groups.iter().any(|g| g == name),
        _ => false,
    }
}

fn list_all(store: &Store, group: &str, plural: &str, ns: Option<&str>) -> Vec<Value> {
    let Some(info) = store.registry().all().iter().find(|r| r.group == group && r.plural == plural).cloned() else {
        return Vec::new();
    };
    store
        .list(&info, ns, &ListQuery::default())
        .ok()
        .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn role_rules(store: &Store, role_ref: &Value, binding_ns: Option<&str>) -> Vec<Value> {
    let kind = role_ref.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = role_ref.get("name").and_then(Value::as_str).unwrap_or("");
    let (plural, ns) = match kind {
        "ClusterRole" => ("clusterroles", None),
        "Role" => ("roles", binding_ns),
        _ => return Vec::new(),
    };
    list_all(store, "rbac.authorization.k8s.io", plural, ns)
        .into_iter()
        .find(|r| r.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
        .and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// Allows or denies a request.
pub fn authorize(store: &Store, identity: &Identity, attrs: &Attributes<'_>) -> Result<(), ApiError> {
    let Some((user, _)) = identity.user_and_groups() else { return Ok(()) };
    if rules_for(store, identity, attrs.namespace).iter().any(|r| rule_allows(r, attrs)) {
        return Ok(());
    }
    Err(forbidden(&user, attrs))
}

/// Every rule granted to `identity` cluster-wide and, with `namespace`, in that namespace (what
/// SelfSubjectRulesReview reports). The admin gets `*` on everything.
pub fn rules_for(store: &Store, identity: &Identity, namespace: Option<&str>) -> Vec<Value> {
    let Some((user, groups)) = identity.user_and_groups() else {
        return vec![serde_json::json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})];
    };
    let sa = match identity {
        Identity::ServiceAccount { namespace, name } => (namespace.as_str(), name.as_str()),
        _ => ("", ""),
    };
    let bound = |binding: &Value| {
        binding
            .get("subjects")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|s| subject_matches(s, &user, &groups, sa)))
    };
    let mut rules = Vec::new();
    for binding in list_all(store, "rbac.authorization.k8s.io", "clusterrolebindings", None).iter().filter(|b| bound(b))
    {
        rules.extend(role_rules(store, binding.get("roleRef").unwrap_or(&Value::Null), None));
    }
    if let Some(ns) = namespace {
        for binding in
            list_all(store, "rbac.authorization.k8s.io", "rolebindings", Some(ns)).iter().filter(|b| bound(b))
        {
            rules.extend(role_rules(store, binding.get("roleRef").unwrap_or(&Value::Null), Some(ns)));
        }
    }
    rules
}

/// Answers a SelfSubjectAccessReview (`kubectl auth can-i`) or, for the admin, a
/// SubjectAccessReview naming another user; the request object comes back with `status`.
pub fn access_review(store: &Store, identity: &Identity, mut review: Value) -> Value {
    let subject = match review.get("kind").and_then(Value::as_str) {
        Some("SubjectAccessReview") => {
            let user = review.pointer("/spec/user").and_then(Value::as_str).unwrap_or("");
            let groups = review
                .pointer("/spec/groups")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            Identity::impersonated(user, groups)
        }
        _ => identity.clone(),
    };
    let allowed = match review.pointer("/spec/resourceAttributes") {
        Some(ra) => {
            let get = |k: &str| ra.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            let attrs = Attributes {
                verb: get("verb").unwrap_or(""),
                group: get("group").unwrap_or(""),
                resource: get("resource").unwrap_or(""),
                subresource: get("subresource"),
                namespace: get("namespace"),
                name: get("name"),
            };
            authorize(store, &subject, &attrs).is_ok()
        }
        // Non-resource URLs (discovery, /version, /healthz) are open to every authenticated user.
        None => true,
    };
    review["status"] = serde_json::json!({"allowed": allowed});
    if let Some(m) = review.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("creationTimestamp".into(), Value::Null);
    }
    review
}

/// Answers a SelfSubjectRulesReview (`kubectl auth can-i --list`).
pub fn rules_review(store: &Store, identity: &Identity, mut review: Value) -> Value {
    let namespace = review.pointer("/spec/namespace").and_then(Value::as_str).map(str::to_string);
    let resource_rules: Vec<Value> = rules_for(store, identity, namespace.as_deref())
        .into_iter()
        .map(|mut r| {
            if let Some(m) = r.as_object_mut() {
                m.remove("nonResourceURLs");
            }
            r
        })
        .collect();
    review["status"] = serde_json::json!({
        "resourceRules": resource_rules,
        "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]}],
        "incomplete": false,
    });
    review
}

fn forbidden(user: &str, attrs: &Attributes<'_>) -> ApiError {
    let resource = match attrs.subresource {
        Some(sub) => format!("{}/{sub}", attrs.resource),
        None => attrs.resource.to_string(),
    };
    let qualified = super::error::qualified(attrs.resource, attrs.group);
    let subject = match attrs.name {
        Some(name) => format!("{qualified} \"{name}\" is forbidden"),
        None => format!("{qualified} is forbidden"),
    };
    let scope = match attrs.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let message = format!(
        "{subject}: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        attrs.verb, attrs.group
    );
    ApiError::forbidden(attrs.resource, attrs.group, attrs.name.unwrap_or(""), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(verb: &'a str, subresource: Option<&'a str>, name: Option<&'a str>) -> Attributes<'a> {
        Attributes { verb, group: "", resource: "serviceaccounts", subresource, namespace: Some("app-a"), name }
    }

    #[test]
    fn rules_match_verbs_resources_subresources_and_names() {
        let rule = json!({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"], "resourceNames": ["dns"]});
        assert!(rule_allows(&rule, &attrs("create", Some("token"), Some("dns"))));
        assert!(!rule_allows(&rule, &attrs("create", Some("token"), Some("other"))));
        assert!(
            !rule_allows(&rule, &attrs("get", None, Some("dns"))),
            "the subresource rule does not grant the resource"
        );
        let wildcard = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]});
        assert!(rule_allows(&wildcard, &attrs("list", None, None)));
        assert!(!rule_allows(&wildcard, &attrs("delete", None, Some("x"))));
    }

    #[test]
    fn denials_are_worded_like_the_real_authorizer() {
        let err = forbidden(
            "system:serviceaccount:app-a:rw",
            &Attributes {
                verb: "list",
                group: "gateway.networking.k8s.io",
                resource: "gateways",
                subresource: None,
                namespace: None,
                name: None,
            },
        );
        assert_eq!(
            err.message,
            "gateways.gateway.networking.k8s.io is forbidden: User \"system:serviceaccount:app-a:rw\" cannot list resource \"gateways\" in API group \"gateway.networking.k8s.io\" at the cluster scope"
        );
        let err = forbidden("u", &attrs("create", Some("token"), Some("dns")));
        assert_eq!(
            err.message,
            "serviceaccounts \"dns\" is forbidden: User \"u\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"app-a\""
        );
    }
}
