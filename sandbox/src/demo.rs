//! Seed 000's TLS walkthrough against a running sandbox, as `routewarden-sandbox demo` shows it.
//!
//! [`apply_walkthrough`] server-side applies the walkthrough's manifests (namespaces `app-a` and
//! `app-b`, their workload-identity ServiceAccounts, Gateways `a-gateway` / `b-gateway` whose HTTPS
//! listener names a Key Vault certificate, and their HTTPRoutes) through the Kubernetes API, as a
//! user's `kubectl apply --server-side` would. routewarden then creates a SecretProviderClass and a
//! `kubernetes.io/tls` Secret `kv-gw-cert-<gateway>-<listener>` per listener and points the
//! listener's `certificateRefs` at it. [`wait_and_report`] polls until that is true for every such
//! listener and returns a [`Report`] read back from the cluster: the objects' names, the
//! certificate's subject, SANs, Key Vault version and expiry, and each Gateway's `Programmed`
//! condition. [`report`] builds the same from whatever the cluster holds now.
//!
//! [`dns`] then runs the seed's DNS walkthrough on top: ClusterExternalDNS, then a namespaced
//! ExternalDNS for a third Gateway, and reports the zone's record sets, the resources' status and
//! routewarden's stale-record report.

pub mod dns;
pub mod istio_ca;

use std::fmt;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::Value;

/// Namespaces and ServiceAccounts of the walkthrough.
pub const NAMESPACES_YAML: &str = include_str!("../walkthrough/seed000-namespaces.yaml");
/// Gateways and HTTPRoutes of the walkthrough.
pub const GATEWAYS_YAML: &str = include_str!("../walkthrough/seed000-gateways.yaml");
/// The DNS walkthrough's ClusterExternalDNS `demo-cluster-dns` and namespaced ExternalDNS
/// `app-a/demo-ns-dns`.
pub const EXTERNALDNS_YAML: &str = include_str!("../walkthrough/seed000-externaldns.yaml");
/// The DNS walkthrough's Gateway `app-a/c-gateway` (label `zone: c`) and its HTTPRoute.
pub const C_GATEWAY_YAML: &str = include_str!("../walkthrough/seed000-c-gateway.yaml");
/// The field manager the walkthrough's objects are applied under.
pub const FIELD_MANAGER: &str = "routewarden-sandbox-demo";

/// The listener TLS option naming the Key Vault certificate.
pub const OPTION_URI: &str = routewarden_planner::tls::OPTION_URI;
/// Secret annotation: the Key Vault certificate version the Secret holds.
pub const ANNOTATION_VERSION: &str = routewarden::tls::labels::VERSION;
/// Secret annotation: the certificate's notAfter (RFC 3339).
pub const ANNOTATION_NOT_AFTER: &str = routewarden::tls::labels::NOT_AFTER;
/// Secret annotation: the certificate's x5t thumbprint.
pub const ANNOTATION_X5T: &str = routewarden::tls::labels::X5T;

/// The objects of a multi-document YAML text, in order (empty documents skipped).
pub fn yaml_objects(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(document).context("manifest")?;
        if value.is_object() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// The walkthrough's objects, namespaces first (the order in which they must be created).
pub fn walkthrough_objects() -> anyhow::Result<Vec<Value>> {
    Ok([yaml_objects(NAMESPACES_YAML)?, yaml_objects(GATEWAYS_YAML)?].concat())
}

/// One Gateway listener that asks for a Key Vault certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListener {
    pub namespace: String,
    pub gateway: String,
    pub listener: String,
}

impl TlsListener {
    /// Name of the SecretProviderClass and of the Secret routewarden creates for it.
    pub fn object_name(&self) -> String {
        routewarden_planner::tls::object_name(&self.gateway, &self.listener)
    }
}

impl fmt::Display for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} listener {}", self.namespace, self.gateway, self.listener)
    }
}

/// The walkthrough's listeners that carry the Key Vault option, in manifest order.
pub fn tls_listeners() -> anyhow::Result<Vec<TlsListener>> {
    let mut out = Vec::new();
    for gw in walkthrough_objects()?.iter().filter(|o| o["kind"] == "Gateway") {
        for l in gw.pointer("/spec/listeners").and_then(Value::as_array).into_iter().flatten() {
            if l.pointer("/tls/options").and_then(|o| o.get(OPTION_URI)).is_some() {
                out.push(TlsListener {
                    namespace: str_at(gw, "/metadata/namespace").unwrap_or("default").to_string(),
                    gateway: str_at(gw, "/metadata/name").unwrap_or_default().to_string(),
                    listener: str_at(l, "/name").unwrap_or_default().to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Server-side applies every walkthrough object (forced, so re-running the demo over a changed
/// sandbox converges) and returns them as `kind namespace/name`. Applying again changes nothing.
pub async fn apply_walkthrough(client: &kube::Client) -> anyhow::Result<Vec<String>> {
    apply_objects(client, &walkthrough_objects()?, FIELD_MANAGER).await
}

/// Server-side applies `objects` in order as `field_manager` (forced), like `kubectl apply
/// --server-side --force-conflicts`; namespaced objects without a namespace go to `default`.
/// Returns them as `kind namespace/name`.
pub async fn apply_objects(
    client: &kube::Client,
    objects: &[Value],
    field_manager: &str,
) -> anyhow::Result<Vec<String>> {
    let params = PatchParams::apply(field_manager).force();
    let mut applied = Vec::new();
    for obj in objects {
        let api_version = str_at(obj, "/apiVersion").unwrap_or_default();
        let kind = str_at(obj, "/kind").unwrap_or_default();
        let name = str_at(obj, "/metadata/name").unwrap_or_default();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let (resource, caps) = kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .with_context(|| format!("the API server does not serve {api_version} {kind}"))?;
        let (api, shown): (Api<DynamicObject>, String) = match caps.scope {
            Scope::Namespaced => {
                let ns = str_at(obj, "/metadata/namespace").unwrap_or("default");
                (Api::namespaced_with(client.clone(), ns, &resource), format!("{kind} {ns}/{name}"))
            }
            Scope::Cluster => (Api::all_with(client.clone(), &resource), format!("{kind} {name}")),
        };
        api.patch(name, &params, &Patch::Apply(obj)).await.with_context(|| format!("failed to apply {shown}"))?;
        applied.push(shown);
    }
    Ok(applied)
}

/// What the demo shows for one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerReport {
    pub listener: TlsListener,
    /// The SecretProviderClass, when it exists.
    pub secret_provider_class: Option<String>,
    /// The Secret, when it exists.
    pub secret: Option<String>,
    /// Subject of the leaf certificate in `tls.crt`.
    pub subject: Option<String>,
    /// Its DNS subject alternative names.
    pub sans: Vec<String>,
    /// The Key Vault certificate version (Secret annotation).
    pub version: Option<String>,
    /// notAfter: the Secret annotation, else the certificate's own.
    pub not_after: Option<String>,
    /// The x5t thumbprint (Secret annotation).
    pub x5t: Option<String>,
    /// The listener's `tls.certificateRefs`, as `name` or `namespace/name`.
    pub certificate_refs: Vec<String>,
    /// The Gateway's `Programmed` condition: `True`, or the status and reason.
    pub programmed: Option<String>,
}

impl ListenerReport {
    /// The values the report table shows, in its row order.
    fn cells(&self) -> [String; 9] {
        [
            dash(&self.secret_provider_class),
            dash(&self.secret),
            dash(&self.subject),
            list(&self.sans),
            dash(&self.version),
            dash(&self.not_after),
            dash(&self.x5t),
            list(&self.certificate_refs),
            dash(&self.programmed),
        ]
    }

    /// What is still missing before the listener serves routewarden's certificate, if anything.
    pub fn missing(&self) -> Vec<String> {
        let name = self.listener.object_name();
        let mut missing = Vec::new();
        if self.secret.is_none() {
            missing.push(format!("Secret {}/{name}", self.listener.namespace));
        }
        if !self.certificate_refs.iter().any(|r| *r == name || *r == format!("{}/{name}", self.listener.namespace)) {
            missing.push(format!("{} tls.certificateRefs naming {name}", self.listener));
        }
        missing
    }
}

/// The demo's report: one entry per walkthrough listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub listeners: Vec<ListenerReport>,
}

impl Report {
    /// Everything still missing, over all listeners.
    pub fn missing(&self) -> Vec<String> {
        self.listeners.iter().flat_map(ListenerReport::missing).collect()
    }
}

impl fmt::Display for Report {
    /// Fields down, listeners across: two listeners fit a terminal, a row per listener would not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED).force_no_tty();
        let mut header = vec![String::new()];
        header.extend(
            self.listeners
                .iter()
                .map(|l| format!("{}/{} {}", l.listener.namespace, l.listener.gateway, l.listener.listener)),
        );
        table.set_header(header);
        const FIELDS: [&str; 9] = [
            "SecretProviderClass",
            "Secret",
            "subject",
            "SANs",
            "Key Vault version",
            "notAfter",
            "x5t",
            "certificateRefs",
            "Gateway Programmed",
        ];
        let columns: Vec<[String; 9]> = self.listeners.iter().map(ListenerReport::cells).collect();
        for (i, field) in FIELDS.into_iter().enumerate() {
            let mut row = vec![field.to_string()];
            row.extend(columns.iter().map(|c| c[i].clone()));
            table.add_row(row);
        }
        writeln!(f, "{table}")
    }
}

fn dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "-".to_string() } else { v.join(", ") }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn gateway_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", kind), plural)
}

fn secret_provider_class_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass"),
        "secretproviderclasses",
    )
}

/// Subject, DNS SANs and notAfter of the first certificate of a PEM chain.
fn leaf_certificate(pem: &[u8]) -> Option<(String, Vec<String>, String)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let not_after = jiff::Timestamp::from_second(cert.validity().not_after.timestamp()).ok()?.to_string();
    Some((cert.subject().to_string(), sans, not_after))
}

/// The report as the cluster shows it now (nothing need exist yet).
pub async fn report(client: &kube::Client) -> anyhow::Result<Report> {
    let mut listeners = Vec::new();
    for listener in tls_listeners()? {
        let ns = listener.namespace.as_str();
        let name = listener.object_name();
        let gateways: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &gateway_resource("Gateway", "gateways"));
        let gw = gateways
            .get_opt(&listener.gateway)
            .await
            .with_context(|| format!("failed to read Gateway {ns}/{}", listener.gateway))?;
        let gw = gw.map(|g| serde_json::to_value(g).unwrap_or_default()).unwrap_or_default();
        let spec_listener = gw
            .pointer("/spec/listeners")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|l| str_at(l, "/name") == Some(&listener.listener)))
            .cloned()
            .unwrap_or_default();
        let certificate_refs = spec_listener
            .pointer("/tls/certificateRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| match (str_at(r, "/namespace"), str_at(r, "/name").unwrap_or_default()) {
                (Some(rns), n) => format!("{rns}/{n}"),
                (None, n) => n.to_string(),
            })
            .collect();
        let programmed = gw
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|c| c.iter().find(|c| c["type"] == "Programmed"))
            .map(|c| match (str_at(c, "/status"), str_at(c, "/reason")) {
                (Some("True"), _) => "True".to_string(),
                (status, reason) => format!("{} ({})", status.unwrap_or("Unknown"), reason.unwrap_or("no reason")),
            });
        let spcs: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &secret_provider_class_resource());
        let secret_provider_class = match spcs.get_opt(&name).await {
            Ok(found) => found.map(|_| name.clone()),
            // Without the CRD (a cluster without the Secrets Store CSI driver) there is none to show.
            Err(kube::Error::Api(e)) if e.code == 404 => None,
            Err(e) => return Err(e).with_context(|| format!("failed to read SecretProviderClass {ns}/{name}")),
        };
        let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
        let secret = secrets.get_opt(&name).await.with_context(|| format!("failed to read Secret {ns}/{name}"))?;
        let annotation =
            |key: &str| secret.as_ref().and_then(|s| s.metadata.annotations.as_ref()).and_then(|a| a.get(key)).cloned();
        let leaf = secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .and_then(|d| d.get("tls.crt"))
            .and_then(|crt| leaf_certificate(&crt.0));
        listeners.push(ListenerReport {
            secret_provider_class,
            secret: secret.as_ref().map(|_| name.clone()),
            subject: leaf.as_ref().map(|l| l.0.clone()),
            sans: leaf.as_ref().map(|l| l.1.clone()).unwrap_or_default(),
            version: annotation(ANNOTATION_VERSION),
            not_after: annotation(ANNOTATION_NOT_AFTER).or_else(|| leaf.as_ref().map(|l| l.2.clone())),
            x5t: annotation(ANNOTATION_X5T),
            certificate_refs,
            programmed,
            listener,
        });
    }
    Ok(Report { listeners })
}

/// Polls [`report`] until every walkthrough listener has its Secret and `certificateRefs` naming
/// it, for at most `timeout`; the error then names what is still missing.
pub async fn wait_and_report(client: &kube::Client, timeout: Duration) -> anyhow::Result<Report> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let report = report(client).await?;
        let missing = report.missing();
        if missing.is_empty() {
            return Ok(report);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "routewarden did not sync the walkthrough's certificates within {}s; still missing: {}",
                timeout.as_secs(),
                missing.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
