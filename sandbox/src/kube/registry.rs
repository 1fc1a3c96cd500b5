//! The resource registry: every kind the server serves, built-in or from a CRD, with the facts
//! discovery, routing, tables and validation need (group, version, plural, kind, scope, short names,
//! subresources, printer columns, schema). Requests resolve their path through it; creating or
//! deleting a CustomResourceDefinition adds or removes an entry.

use std::sync::Arc;

use serde_json::{Value, json};

/// A column of `kubectl get` (CRD `additionalPrinterColumns`, or our own for built-in kinds).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// `string`, `integer`, `date`, …
    pub type_: String,
    /// Simple JSONPath into the object, e.g. `.spec.gatewayClassName`.
    pub json_path: String,
    /// 0 shows in plain `get`; higher only with `-o wide`.
    pub priority: i64,
    /// Column description.
    pub description: String,
}

/// A subresource other than `status` served under an item (`serviceaccounts/token`).
#[derive(Debug, Clone, PartialEq)]
pub struct SubresourceInfo {
    /// Subresource name (`token`).
    pub name: &'static str,
    /// Group/version/kind of the request and response body.
    pub group: &'static str,
    /// Version of the body kind.
    pub version: &'static str,
    /// Kind of the body.
    pub kind: &'static str,
    /// Verbs allowed on it.
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// API group, `""` for core.
    pub group: String,
    /// The one served version.
    pub version: String,
    /// Plural resource name used in paths.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`ns`, `cm`, `gtw`).
    pub short_names: Vec<String>,
    /// Categories (`all`, `gateway-api`).
    pub categories: Vec<String>,
    /// Whether `/status` is a separate subresource (then the main resource ignores status).
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained.
    pub has_generation: bool,
    /// Extra table columns.
    pub printer_columns: Vec<PrinterColumn>,
    /// The `openAPIV3Schema` of a CRD version; built-in kinds have none here.
    pub schema: Option<Value>,
    /// Served from a CustomResourceDefinition.
    pub from_crd: bool,
    /// Subresources other than status.
    pub subresources: Vec<SubresourceInfo>,
}

impl ResourceInfo {
    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Storage key: group and plural (one version is served per group).
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// The verbs discovery advertises.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec!["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    generation: bool,
) -> ResourceInfo {
    ResourceInfo {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: Vec::new(),
        status_subresource: status,
        has_generation: generation,
        printer_columns: Vec::new(),
        schema: None,
        from_crd: false,
        subresources: Vec::new(),
    }
}

fn column(name: &str, type_: &str, json_path: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        json_path: json_path.into(),
        priority,
        description: String::new(),
    }
}

/// The built-in kinds, in discovery order.
pub fn builtins() -> Vec<ResourceInfo> {
    let mut sa = builtin("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"], false, false);
    sa.subresources.push(SubresourceInfo {
        name: "token",
        group: "authentication.k8s.io",
        version: "v1",
        kind: "TokenRequest",
        verbs: &["create"],
    });
    let mut ns = builtin("", "v1", "namespaces", "Namespace", false, &["ns"], true, false);
    ns.printer_columns.push(column("Status", "string", ".status.phase", 0));
    let mut secret = builtin("", "v1", "secrets", "Secret", true, &[], false, false);
    secret.printer_columns.push(column("Type", "string", ".type", 0));
    secret.printer_columns.push(column("Data", "integer", ".data", 0));
    let mut deploy = builtin("apps", "v1", "deployments", "Deployment", true, &["deploy"], true, true);
    deploy.categories.push("all".into());
    deploy.printer_columns.push(column("Ready", "string", ".status.readyReplicas", 0));
    deploy.printer_columns.push(column("Up-to-date", "integer", ".status.updatedReplicas", 0));
    deploy.printer_columns.push(column("Available", "integer", ".status.availableReplicas", 0));
    let mut ingress = builtin("networking.k8s.io", "v1", "ingresses", "Ingress", true, &["ing"], true, true);
    ingress.printer_columns.push(column("Class", "string", ".spec.ingressClassName", 0));
    ingress.printer_columns.push(column("Address", "string", ".status.loadBalancer.ingress[0].ip", 0));
    let mut ingress_class =
        builtin("networking.k8s.io", "v1", "ingressclasses", "IngressClass", false, &[], false, true);
    ingress_class.printer_columns.push(column("Controller", "string", ".spec.controller", 0));
    let mut service = builtin("", "v1", "services", "Service", true, &["svc"], true, false);
    service.categories.push("all".into());
    service.printer_columns.push(column("Type", "string", ".spec.type", 0));
    service.printer_columns.push(column("Cluster-IP", "string", ".spec.clusterIP", 0));
    let mut pdb = builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"], true, true);
    pdb.printer_columns.push(column("Min available", "string", ".spec.minAvailable", 0));
    pdb.printer_columns.push(column("Max unavailable", "string", ".spec.maxUnavailable", 0));
    pdb.printer_columns.push(column("Allowed disruptions", "integer", ".status.disruptionsAllowed", 0));
    let mut lease = builtin("coordination.k8s.io", "v1", "leases", "Lease", true, &[], false, false);
    lease.printer_columns.push(column("Holder", "string", ".spec.holderIdentity", 0));
    vec![
        ns,
        sa,
        secret,
        builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"], false, false),
        service,
        builtin("", "v1", "events", "Event", true, &["ev"], false, false),
        deploy,
        pdb,
        builtin("events.k8s.io", "v1", "events", "Event", true, &["ev"], false, false),
        lease,
        ingress,
        ingress_class,
        builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[], false, false),
        builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, &[], false, false),
        builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, &[], false, false),
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            true,
        ),
    ]
}

/// Builds the registry entry of a CRD's storage version, or an error message for a CRD that
/// cannot be served.
pub fn from_crd(crd: &Value) -> Result<ResourceInfo, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let group = spec.get("group").and_then(Value::as_str).ok_or("spec.group: Required value")?;
    let names = spec.get("names").ok_or("spec.names: Required value")?;
    let plural = names.get("plural").and_then(Value::as_str).ok_or("spec.names.plural: Required value")?;
    let kind = names.get("kind").and_then(Value::as_str).ok_or("spec.names.kind: Required value")?;
    let singular =
        names.get("singular").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| kind.to_ascii_lowercase());
    let scope = spec.get("scope").and_then(Value::as_str).ok_or("spec.scope: Required value")?;
    let versions = spec.get("versions").and_then(Value::as_array).ok_or("spec.versions: Required value")?;
    let version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())
        .ok_or("spec.versions: Invalid value: must have exactly one version marked as storage version")?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let printer_columns = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: c.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                    type_: c.get("type").and_then(Value::as_str).unwrap_or("string").to_string(),
                    json_path: c.get("jsonPath").and_then(Value::as_str).unwrap_or_default().to_string(),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    description: c.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ResourceInfo {
        group: group.to_string(),
        version: version
            .get("name")
            .and_then(Value::as_str)
            .ok_or("spec.versions[0].name: Required value")?
            .to_string(),
        plural: plural.to_string(),
        singular,
        kind: kind.to_string(),
        namespaced: scope == "Namespaced",
        short_names: strings(names.get("shortNames")),
        categories: strings(names.get("categories")),
        status_subresource: version.pointer("/subresources/status").is_some(),
        has_generation: true,
        printer_columns,
        schema: version.pointer("/schema/openAPIV3Schema").cloned(),
        from_crd: true,
        subresources: Vec::new(),
    })
}

/// The registry: built-ins first, then CRD kinds in creation order.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    resources: Vec<Arc<ResourceInfo>>,
}

impl Registry {
    /// A registry holding the built-in kinds.
    pub fn new() -> Self {
        Self { resources: builtins().into_iter().map(Arc::new).collect() }
    }

    /// Every served resource.
    pub fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.resources
    }

    /// Resolves `group`/`version`/`plural` from a request path.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.resources.iter().find(|r| r.group == group && r.version == version && r.plural == plural).cloned()
    }

    /// Resolves a storage key.
    pub fn by_key(&self, key: &str) -> Option<Arc<ResourceInfo>> {
        self.resources.iter().find(|r| r.key() == key).cloned()
    }

    /// Finds the resource of an apiVersion + kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        self.resources.iter().find(|r| r.api_version() == api_version && r.kind == kind).cloned()
    }

    /// Adds or replaces the entry of a CRD.
    pub fn upsert(&mut self, info: ResourceInfo) {
        self.resources.retain(|r| !(r.group == info.group && r.plural == info.plural));
        self.resources.push(Arc::new(info));
    }

    /// Removes a CRD's entry.
    pub fn remove(&mut self, group: &str, plural: &str) {
        self.resources.retain(|r| !(r.from_crd && r.group == group && r.plural == plural));
    }

    /// Every group with its versions, core first.
    pub fn groups(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in &self.resources {
            if !out.iter().any(|(g, v)| *g == r.group && *v == r.version) {
                out.push((r.group.clone(), r.version.clone()));
            }
        }
        out
    }
}

/// The `PartialObjectMetadata` a Table row carries.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}
