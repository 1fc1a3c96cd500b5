//! `routewarden.io/v1alpha1` `IstioPluginCA` (cluster-scoped, `ipca`): which Key Vault secrets
//! make the Istio mesh's plug-in CA, as whom to read them, where the `cacerts` Secret goes and
//! which istiod Deployments to restart when the trust bundle changes.
//!
//! The defaults are the AKS Istio add-on's: secrets `root-cert`, `ca-cert`, `ca-key`,
//! `cert-chain` and namespace `aks-istio-system`, istiod selected by `app=istiod`. The schema is
//! the server-side half of validation; [`IstioPluginCaSpec::check`] re-checks everything in Rust
//! (an API server may lack the schema) and names the field that is wrong.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const GROUP: &str = "routewarden.io";
pub const VERSION: &str = "v1alpha1";
pub const DEFAULT_TARGET_NAMESPACE: &str = "aks-istio-system";
/// How the AKS add-on's istiod Deployments are labelled.
pub const DEFAULT_ISTIOD_SELECTOR: &str = "app=istiod";
/// Key Vault object names.
pub const OBJECT_NAME_PATTERN: &str = "^[0-9a-zA-Z-]{1,127}$";
/// Namespace and ServiceAccount names (RFC 1123 labels / subdomains).
pub const K8S_NAME_PATTERN: &str = r"^[a-z0-9]([-a-z0-9\.]*[a-z0-9])?$";
/// `30s`, `2m`, `1h30m`.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";
/// Polls more often than this would only spend Key Vault's request budget.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The Key Vault secrets of an Istio plug-in CA, synced into istiod's `cacerts` Secret.
#[allow(clippy::duplicated_attributes)] // printcolumn(...) repeats `type_ = ...`
#[derive(CustomResource, JsonSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "routewarden.io",
    version = "v1alpha1",
    kind = "IstioPluginCA",
    root = "IstioPluginCa",
    plural = "istioplugincas",
    singular = "istiopluginca",
    shortname = "ipca",
    status = "IstioPluginCaStatus",
    derive = "PartialEq",
    doc = "IstioPluginCA syncs an Istio plug-in CA (root-cert, ca-cert, ca-key, cert-chain) from Key Vault into the cacerts Secret and restarts istiod when the trust bundle changes.",
    printcolumn(name = "Ready", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].status"#),
    printcolumn(name = "Reason", type_ = "string", json_path = r#".status.conditions[?(@.type=="Ready")].reason"#),
    printcolumn(name = "Target", type_ = "string", json_path = ".spec.targetNamespace"),
    printcolumn(name = "CA-Not-After", type_ = "date", json_path = ".status.caNotAfter", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct IstioPluginCaSpec {
    /// The vault's URL, `https://<name>.vault.azure.net` (the configured cloud's Key Vault suffix).
    #[schemars(regex(pattern = "^https://"))]
    pub key_vault_uri: String,

    /// The names of the four Key Vault secrets; each defaults to the AKS add-on's name.
    #[serde(default)]
    pub objects: CaObjectNames,

    /// The ServiceAccount, in `targetNamespace`, whose workload identity reads the vault.
    #[schemars(length(min = 1, max = 253), regex(pattern = K8S_NAME_PATTERN))]
    pub service_account: String,

    /// Where the `cacerts` Secret is written (and the ServiceAccount lives).
    #[serde(default = "default_target_namespace")]
    #[schemars(length(min = 1, max = 63), regex(pattern = K8S_NAME_PATTERN))]
    pub target_namespace: String,

    /// Which istiod Deployments in `targetNamespace` to restart when the roots change.
    #[serde(default)]
    pub istiod: Istiod,

    /// How often each secret's current version is checked (`30s`, `2m`); the daemon's
    /// `--certificate-poll-interval` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub poll_interval: Option<String>,
}

/// Key Vault secret names.
#[derive(JsonSchema, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaObjectNames {
    #[serde(default = "names::root_cert")]
    #[schemars(regex(pattern = OBJECT_NAME_PATTERN))]
    pub root_cert: String,
    #[serde(default = "names::ca_cert")]
    #[schemars(regex(pattern = OBJECT_NAME_PATTERN))]
    pub ca_cert: String,
    #[serde(default = "names::ca_key")]
    #[schemars(regex(pattern = OBJECT_NAME_PATTERN))]
    pub ca_key: String,
    #[serde(default = "names::cert_chain")]
    #[schemars(regex(pattern = OBJECT_NAME_PATTERN))]
    pub cert_chain: String,
}

impl Default for CaObjectNames {
    fn default() -> Self {
        CaObjectNames {
            root_cert: names::root_cert(),
            ca_cert: names::ca_cert(),
            ca_key: names::ca_key(),
            cert_chain: names::cert_chain(),
        }
    }
}

mod names {
    use routewarden_certs::ca::CaObject;
    pub fn root_cert() -> String {
        CaObject::RootCert.default_name().to_owned()
    }
    pub fn ca_cert() -> String {
        CaObject::CaCert.default_name().to_owned()
    }
    pub fn ca_key() -> String {
        CaObject::CaKey.default_name().to_owned()
    }
    pub fn cert_chain() -> String {
        CaObject::CertChain.default_name().to_owned()
    }
}

/// The istiod Deployments: by name, or (when no names are given) by label selector.
#[derive(JsonSchema, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Istiod {
    /// Deployment names in `targetNamespace`; when set, `selector` is not used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<String>,
    /// A label selector (`app=istiod`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// Observed state, written by routewarden only when it changes.
#[derive(JsonSchema, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IstioPluginCaStatus {
    /// `Ready`, each with the `observedGeneration` it describes.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// SHA-256 fingerprints of the roots in the `cacerts` trust bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub root_fingerprints: Vec<String>,
    /// When the signing certificate (`ca-cert`) in `cacerts` expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_not_after: Option<Time>,
    /// Key Vault version of each secret in `cacerts`, by object (`root-cert`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub applied_versions: BTreeMap<String, String>,
    /// When `cacerts` was last found or made current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// When istiod was last restarted for a trust-bundle change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_restart_time: Option<Time>,
    /// The last change of the trust bundle: `None`, `RootsAdded`, `RootsRemoved`, `RootsReplaced`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<String>,
}

fn default_target_namespace() -> String {
    DEFAULT_TARGET_NAMESPACE.to_owned()
}

/// A spec that cannot be used: the field and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {problem}")]
pub struct CaSpecError {
    pub field: String,
    pub problem: String,
}

/// A checked spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaConfig {
    pub vault_url: String,
    /// The four secret names in [`routewarden_certs::ca::CaObject::ALL`] order.
    pub objects: [String; 4],
    pub service_account: String,
    pub target_namespace: String,
    pub istiod: IstiodTarget,
    pub poll_interval: Option<Duration>,
}

/// How istiod's Deployments are found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IstiodTarget {
    Named(Vec<String>),
    Selector(String),
}

fn is_k8s_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

impl IstioPluginCaSpec {
    /// Everything the schema says, and what it cannot (the cloud's vault suffix), checked again.
    pub fn check(&self, key_vault_suffix: &str) -> Result<CaConfig, CaSpecError> {
        let bad = |field: &str, problem: String| CaSpecError { field: field.to_owned(), problem };
        let vault = routewarden_certs::parse_vault_url(&self.key_vault_uri, key_vault_suffix)
            .map_err(|e| bad("keyVaultUri", e.to_string()))?;
        let o = &self.objects;
        let objects = [o.root_cert.clone(), o.ca_cert.clone(), o.ca_key.clone(), o.cert_chain.clone()];
        for (field, name) in ["rootCert", "caCert", "caKey", "certChain"].iter().zip(&objects) {
            if !routewarden_certs::uri::is_object_name(name) {
                return Err(bad(
                    &format!("objects.{field}"),
                    format!("{name:?} is not a Key Vault secret name (1-127 letters, digits and hyphens)"),
                ));
            }
        }
        if !is_k8s_name(&self.target_namespace, 63) {
            return Err(bad("targetNamespace", format!("{:?} is not a namespace name", self.target_namespace)));
        }
        if !is_k8s_name(&self.service_account, 253) {
            return Err(bad(
                "serviceAccount",
                format!(
                    "{:?} must be the name of a ServiceAccount in targetNamespace {:?}",
                    self.service_account, self.target_namespace
                ),
            ));
        }
        let istiod = if self.istiod.deployments.is_empty() {
            let selector = self.istiod.selector.clone().unwrap_or_else(|| DEFAULT_ISTIOD_SELECTOR.to_owned());
            if selector.trim().is_empty() {
                return Err(bad("istiod.selector", "is empty; leave it out for app=istiod".into()));
            }
            IstiodTarget::Selector(selector)
        } else {
            if let Some(d) = self.istiod.deployments.iter().find(|d| !is_k8s_name(d, 253)) {
                return Err(bad("istiod.deployments", format!("{d:?} is not a Deployment name")));
            }
            IstiodTarget::Named(self.istiod.deployments.clone())
        };
        let poll_interval = match &self.poll_interval {
            None => None,
            Some(text) => {
                let d = humantime::parse_duration(text)
                    .map_err(|e| bad("pollInterval", format!("{text:?} is not a duration like 30s or 2m: {e}")))?;
                if d < MIN_POLL_INTERVAL {
                    return Err(bad("pollInterval", format!("{text:?} is shorter than {MIN_POLL_INTERVAL:?}")));
                }
                Some(d)
            }
        };
        Ok(CaConfig {
            vault_url: vault.vault_url,
            objects,
            service_account: self.service_account.clone(),
            target_namespace: self.target_namespace.clone(),
            istiod,
            poll_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> IstioPluginCaSpec {
        serde_yaml_ng::from_str(yaml).expect("spec parses")
    }

    #[test]
    fn defaults_are_the_aks_add_ons() {
        let c = spec("keyVaultUri: https://kv-mesh.vault.azure.net\nserviceAccount: istio-ca-reader\n")
            .check("vault.azure.net")
            .unwrap();
        assert_eq!(c.vault_url, "https://kv-mesh.vault.azure.net");
        assert_eq!(c.objects, ["root-cert", "ca-cert", "ca-key", "cert-chain"]);
        assert_eq!(c.target_namespace, "aks-istio-system");
        assert_eq!(c.istiod, IstiodTarget::Selector("app=istiod".into()));
        assert_eq!(c.poll_interval, None);
    }

    #[test]
    fn a_bad_spec_names_its_field() {
        let base = "keyVaultUri: https://kv-mesh.vault.azure.net\nserviceAccount: reader\n";
        for (what, yaml, field) in [
            ("foreign host", "keyVaultUri: https://kv-mesh.example.com\nserviceAccount: r\n", "spec.keyVaultUri"),
            (
                "object path",
                "keyVaultUri: https://kv-mesh.vault.azure.net/secrets/x\nserviceAccount: r\n",
                "spec.keyVaultUri",
            ),
            ("object name", &format!("{base}objects:\n  caKey: ca_key\n"), "spec.objects.caKey"),
            (
                "namespaced SA",
                "keyVaultUri: https://kv-mesh.vault.azure.net\nserviceAccount: other/reader\n",
                "spec.serviceAccount",
            ),
            ("namespace", &format!("{base}targetNamespace: Istio\n"), "spec.targetNamespace"),
            ("deployment", &format!("{base}istiod:\n  deployments: [\"Istiod\"]\n"), "spec.istiod.deployments"),
            ("interval", &format!("{base}pollInterval: soon\n"), "spec.pollInterval"),
            ("short interval", &format!("{base}pollInterval: 10ms\n"), "spec.pollInterval"),
        ] {
            let e = spec(yaml).check("vault.azure.net").expect_err(what);
            assert!(e.to_string().starts_with(field), "{what}: {e}");
        }
    }

    #[test]
    fn named_deployments_replace_the_selector() {
        let c = spec("keyVaultUri: https://kv-mesh.vault.azure.net\nserviceAccount: r\nistiod:\n  deployments: [istiod-asm-1-22]\npollInterval: 30s\n")
            .check("vault.azure.net")
            .unwrap();
        assert_eq!(c.istiod, IstiodTarget::Named(vec!["istiod-asm-1-22".into()]));
        assert_eq!(c.poll_interval, Some(Duration::from_secs(30)));
    }
}
