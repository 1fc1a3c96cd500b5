//! The TLS planner: which Gateway listeners get a certificate from Key Vault, under which names,
//! as which identity — or why not. A listener takes part when it carries either of the options
//! `kubernetes.azure.com/tls-cert-keyvault-uri` / `kubernetes.azure.com/tls-cert-service-account`;
//! then, in order (the first failure is the listener's reason):
//!
//! | check | reason |
//! |---|---|
//! | both options present, TLS mode `Terminate` on an HTTPS or TLS listener | `InvalidInput` |
//! | the URI is a Key Vault certificate URI of the configured cloud | `InvalidInput` |
//! | the ServiceAccount option is a plain name (the Gateway's own namespace is implied) | `InvalidInput` |
//! | that ServiceAccount exists in the Gateway's namespace | `ServiceAccountNotFound` |
//! | it carries `azure.workload.identity/client-id` | `ServiceAccountNotAnnotated` |
//! | a tenant is known (`azure.workload.identity/tenant-id`, else the daemon's) | `ServiceAccountNotAnnotated` |
//!
//! The SecretProviderClass and Secret are both named `kv-gw-cert-<gateway>-<listener>`,
//! shortened deterministically with a hash suffix when longer than Kubernetes allows.

use crate::selector::Labels;
use routewarden_certs::{CertificateUri, parse_certificate_uri};
use routewarden_store::CertBindingKey;
use std::collections::BTreeMap;
use std::time::Duration;

pub const OPTION_URI: &str = "kubernetes.azure.com/tls-cert-keyvault-uri";
pub const OPTION_SERVICE_ACCOUNT: &str = "kubernetes.azure.com/tls-cert-service-account";
pub const ANNOTATION_CLIENT_ID: &str = "azure.workload.identity/client-id";
pub const ANNOTATION_TENANT_ID: &str = "azure.workload.identity/tenant-id";
/// Per-Gateway override of the certificate poll interval (e.g. `30s`, `5m`).
pub const ANNOTATION_POLL_INTERVAL: &str = "routewarden.io/certificate-poll-interval";
/// Kubernetes object names (DNS subdomains) are at most this long.
pub const MAX_NAME: usize = 253;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsListener {
    pub name: String,
    pub hostname: Option<String>,
    pub protocol: String,
    /// `Terminate` (the default when absent) or `Passthrough`.
    pub tls_mode: Option<String>,
    pub options: Labels,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsGateway {
    pub namespace: String,
    pub name: String,
    pub class: String,
    pub annotations: Labels,
    pub listeners: Vec<TlsListener>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
    pub annotations: Labels,
}

#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub gateway_classes: Vec<String>,
    /// Key Vault DNS suffix of the configured cloud, e.g. `vault.azure.net`.
    pub key_vault_suffix: String,
    /// Tenant for ServiceAccounts without `azure.workload.identity/tenant-id`.
    pub default_tenant: Option<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            gateway_classes: vec!["approuting-istio".into()],
            key_vault_suffix: "vault.azure.net".into(),
            default_tenant: None,
        }
    }
}

/// Who reads the vault: a workload identity federated with a ServiceAccount.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub tenant_id: String,
    pub client_id: String,
    pub namespace: String,
    pub service_account: String,
}

/// A listener that gets a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub uri: CertificateUri,
    pub identity: Identity,
    /// Name of both the SecretProviderClass and the `kubernetes.io/tls` Secret.
    pub object_name: String,
    pub hostname: Option<String>,
    /// The Gateway's poll-interval override, if it has a valid one.
    pub poll_interval: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    InvalidInput,
    ServiceAccountNotFound,
    ServiceAccountNotAnnotated,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidInput => "InvalidInput",
            Reason::ServiceAccountNotFound => "ServiceAccountNotFound",
            Reason::ServiceAccountNotAnnotated => "ServiceAccountNotAnnotated",
        }
    }
}

/// Why a listener gets no certificate, in words naming the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPlan {
    pub bindings: BTreeMap<CertBindingKey, Binding>,
    pub refused: BTreeMap<CertBindingKey, Refusal>,
    /// Gateways whose poll-interval annotation could not be read: (namespace/name, message).
    pub warnings: Vec<(String, String)>,
}

/// `name` if it fits in `max` characters, else a prefix of it plus `-` and 10 hex characters of
/// its SHA-256, so distinct long names stay distinct and the result is stable.
pub fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let hash = crate::hex_digest(name, 5);
    let keep = max.saturating_sub(hash.len() + 1);
    let prefix = name[..keep].trim_end_matches(['-', '.']);
    format!("{prefix}-{hash}")
}

/// `kv-gw-cert-<gateway>-<listener>`, within Kubernetes' name limit.
pub fn object_name(gateway: &str, listener: &str) -> String {
    shorten(&format!("kv-gw-cert-{gateway}-{listener}"), MAX_NAME)
}

fn refuse(reason: Reason, message: String) -> Refusal {
    Refusal { reason, message }
}

fn plan_listener(
    gw: &TlsGateway,
    l: &TlsListener,
    accounts: &BTreeMap<(&str, &str), &ServiceAccount>,
    cfg: &TlsConfig,
) -> Result<Binding, Refusal> {
    let at = |field: &str| format!("listener {:?} {field}", l.name);
    let uri = l.options.get(OPTION_URI).map(|s| s.trim());
    let sa = l.options.get(OPTION_SERVICE_ACCOUNT).map(|s| s.trim());
    let (uri, sa) = match (uri, sa) {
        (Some(u), Some(s)) if !u.is_empty() && !s.is_empty() => (u, s),
        (None | Some(""), _) => {
            return Err(refuse(Reason::InvalidInput, format!("{}: {OPTION_URI} is missing", at("tls.options"))));
        }
        _ => {
            return Err(refuse(
                Reason::InvalidInput,
                format!("{}: {OPTION_SERVICE_ACCOUNT} is missing", at("tls.options")),
            ));
        }
    };
    if !matches!(l.protocol.to_ascii_uppercase().as_str(), "HTTPS" | "TLS") {
        return Err(refuse(
            Reason::InvalidInput,
            format!("{}: protocol {:?} does not terminate TLS (want HTTPS or TLS)", at("protocol"), l.protocol),
        ));
    }
    if let Some(mode) = l.tls_mode.as_deref().filter(|m| *m != "Terminate") {
        return Err(refuse(
            Reason::InvalidInput,
            format!("{}: mode {mode:?} carries no certificate (want Terminate)", at("tls.mode")),
        ));
    }
    let uri = parse_certificate_uri(uri, &cfg.key_vault_suffix)
        .map_err(|e| refuse(Reason::InvalidInput, format!("{}: {e}", at(&format!("tls.options[{OPTION_URI}]")))))?;
    if sa.contains(['/', ':']) {
        return Err(refuse(
            Reason::InvalidInput,
            format!(
                "{}: {sa:?} must be the name of a ServiceAccount in the Gateway's namespace {:?}",
                at(&format!("tls.options[{OPTION_SERVICE_ACCOUNT}]")),
                gw.namespace
            ),
        ));
    }
    let account = accounts.get(&(gw.namespace.as_str(), sa)).ok_or_else(|| {
        refuse(
            Reason::ServiceAccountNotFound,
            format!(
                "ServiceAccount {}/{sa} named by listener {:?} does not exist; a listener may only use a ServiceAccount in its Gateway's namespace",
                gw.namespace, l.name
            ),
        )
    })?;
    let client_id =
        account.annotations.get(ANNOTATION_CLIENT_ID).map(|s| s.trim()).filter(|s| !s.is_empty()).ok_or_else(|| {
            refuse(
                Reason::ServiceAccountNotAnnotated,
                format!(
                    "ServiceAccount {}/{sa} has no {ANNOTATION_CLIENT_ID} annotation naming its managed identity",
                    gw.namespace
                ),
            )
        })?;
    let tenant_id = account
        .annotations
        .get(ANNOTATION_TENANT_ID)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| cfg.default_tenant.clone())
        .ok_or_else(|| {
            refuse(
                Reason::ServiceAccountNotAnnotated,
                format!(
                    "ServiceAccount {}/{sa} has no {ANNOTATION_TENANT_ID} annotation and routewarden has no default tenant",
                    gw.namespace
                ),
            )
        })?;
    Ok(Binding {
        uri,
        identity: Identity {
            tenant_id,
            client_id: client_id.to_owned(),
            namespace: gw.namespace.clone(),
            service_account: sa.to_owned(),
        },
        object_name: object_name(&gw.name, &l.name),
        hostname: l.hostname.clone(),
        poll_interval: None,
    })
}

/// Plans every listener of every managed Gateway. Pure.
pub fn plan(gateways: &[TlsGateway], service_accounts: &[ServiceAccount], cfg: &TlsConfig) -> TlsPlan {
    let accounts: BTreeMap<(&str, &str), &ServiceAccount> =
        service_accounts.iter().map(|a| ((a.namespace.as_str(), a.name.as_str()), a)).collect();
    let mut out = TlsPlan::default();
    for gw in gateways.iter().filter(|g| cfg.gateway_classes.contains(&g.class)) {
        let poll_interval = match gw.annotations.get(ANNOTATION_POLL_INTERVAL) {
            None => None,
            Some(v) => match humantime::parse_duration(v.trim()) {
                Ok(d) if d >= Duration::from_secs(10) => Some(d),
                _ => {
                    out.warnings.push((
                        format!("{}/{}", gw.namespace, gw.name),
                        format!("annotation {ANNOTATION_POLL_INTERVAL}={v:?} is not a duration of at least 10s; using the default"),
                    ));
                    None
                }
            },
        };
        for l in &gw.listeners {
            if !l.options.contains_key(OPTION_URI) && !l.options.contains_key(OPTION_SERVICE_ACCOUNT) {
                continue;
            }
            let key =
                CertBindingKey { namespace: gw.namespace.clone(), gateway: gw.name.clone(), listener: l.name.clone() };
            match plan_listener(gw, l, &accounts, cfg) {
                Ok(b) => {
                    out.bindings.insert(key, Binding { poll_interval, ..b });
                }
                Err(r) => {
                    out.refused.insert(key, r);
                }
            }
        }
    }
    out
}

/// What one metadata poll covers: bindings that read the same certificate as the same identity
/// share one request per interval, however many listeners they are.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PollKey {
    pub vault_url: String,
    pub certificate: String,
    pub identity: Identity,
}

/// Groups bindings by [`PollKey`] (pinned versions are not polled: they cannot rotate).
pub fn poll_groups(plan: &TlsPlan) -> BTreeMap<PollKey, Vec<CertBindingKey>> {
    let mut groups: BTreeMap<PollKey, Vec<CertBindingKey>> = BTreeMap::new();
    for (key, b) in plan.bindings.iter().filter(|(_, b)| !b.uri.is_pinned()) {
        let pk = PollKey {
            vault_url: b.uri.vault_url.clone(),
            certificate: b.uri.name.clone(),
            identity: b.identity.clone(),
        };
        groups.entry(pk).or_default().push(key.clone());
    }
    groups
}

/// The `spec` of the SecretProviderClass for a binding, equivalent to the one the AKS operator
/// writes (provider `azure`, the certificate's backing secret as `objectType: secret`, a
/// `kubernetes.io/tls` secret object) but with workload-identity parameters: the Secrets Store CSI
/// driver can mount it as it is, while routewarden itself syncs the Secret without any pod.
/// `cloud_name` is the provider's `cloudName` (e.g. `AzureChinaCloud`); `None` for the public cloud.
pub fn secret_provider_class_spec(b: &Binding, cloud_name: Option<&str>) -> serde_json::Value {
    let mut object = serde_json::json!({ "objectName": b.uri.name, "objectType": "secret" });
    if let Some(v) = &b.uri.version {
        object["objectVersion"] = v.clone().into();
    }
    // The provider reads `objects` as a string holding {"array": [<one string per object>]}.
    let objects = serde_json::json!({ "array": [object.to_string()] }).to_string();
    let mut parameters = serde_json::json!({
        "usePodIdentity": "false",
        "clientID": b.identity.client_id,
        "keyvaultName": b.uri.vault,
        "tenantId": b.identity.tenant_id,
        "objects": objects,
    });
    if let Some(cloud) = cloud_name {
        parameters["cloudName"] = cloud.into();
    }
    serde_json::json!({
        "provider": "azure",
        "parameters": parameters,
        "secretObjects": [{
            "secretName": b.object_name,
            "type": "kubernetes.io/tls",
            "data": [
                { "objectName": b.uri.name, "key": "tls.key" },
                { "objectName": b.uri.name, "key": "tls.crt" },
            ],
        }],
    })
}
