//! Every Kubernetes read and write of the CA controller: `cacerts` (read whole, since its
//! current roots decide whether istiod restarts; created, or merge-patched with a resourceVersion
//! precondition so a concurrent writer makes it re-read instead of being overwritten; never
//! touched when another owner's), istiod's pod-template annotation, and the IstioPluginCA status
//! (server-side applied under field manager `routewarden`).

use super::{SECRET_NAME, labels};
use crate::crd::istio::{IstioPluginCa, IstioPluginCaStatus, IstiodTarget};
use crate::tls::FIELD_MANAGER;
use crate::tls::labels::{MANAGED_BY, MANAGED_BY_VALUE};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::BTreeMap;

/// Why a Kubernetes call failed.
#[derive(Debug, thiserror::Error)]
pub enum CaKubeError {
    /// `cacerts` exists and is not routewarden's.
    #[error(
        "Secret {0}/{SECRET_NAME} exists and is not managed by routewarden (no label {MANAGED_BY}={MANAGED_BY_VALUE}); it was left untouched"
    )]
    NotOwned(String),
    #[error("failed to {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> CaKubeError {
    let what = what.into();
    move |source| CaKubeError::Api { what, source }
}

/// The current `cacerts`: its PEM files (text) and annotations, and its resourceVersion.
#[derive(Clone, Default)]
pub struct Current {
    pub files: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub resource_version: Option<String>,
}

impl std::fmt::Debug for Current {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Current")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("annotations", &self.annotations)
            .finish_non_exhaustive()
    }
}

/// Reads `cacerts` in `namespace`: None when absent, an error when it is not routewarden's.
pub async fn read_cacerts(client: &kube::Client, namespace: &str) -> Result<Option<Current>, CaKubeError> {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let Some(secret) =
        api.get_opt(SECRET_NAME).await.map_err(api_err(format!("read Secret {namespace}/{SECRET_NAME}")))?
    else {
        return Ok(None);
    };
    if secret.labels().get(MANAGED_BY).map(String::as_str) != Some(MANAGED_BY_VALUE) {
        return Err(CaKubeError::NotOwned(namespace.to_owned()));
    }
    let files = secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    Ok(Some(Current { files, annotations: secret.annotations().clone(), resource_version: secret.resource_version() }))
}

/// Creates `cacerts` (when `current` is None) or replaces its files and routewarden's
/// annotations, guarded by the resourceVersion read.
#[tracing::instrument(level = "info", name = "kubernetes write Secret cacerts", skip_all, fields(namespace = %namespace))]
pub async fn write_cacerts(
    client: &kube::Client,
    namespace: &str,
    current: Option<&Current>,
    files: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Result<(), CaKubeError> {
    use base64::Engine;
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let data: serde_json::Map<String, serde_json::Value> = files
        .iter()
        .map(|(k, v)| (k.clone(), json!(base64::engine::general_purpose::STANDARD.encode(v.as_bytes()))))
        .collect();
    let what = format!("write Secret {namespace}/{SECRET_NAME}");
    let labels = json!({ MANAGED_BY: MANAGED_BY_VALUE, crate::tls::labels::COMPONENT: "istio-plugin-ca" });
    match current {
        None => {
            let secret: Secret = serde_json::from_value(json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": { "name": SECRET_NAME, "namespace": namespace, "labels": labels, "annotations": annotations },
                "type": "Opaque",
                "data": data,
            }))
            .map_err(|e| CaKubeError::Api { what: what.clone(), source: kube::Error::SerdeError(e) })?;
            let params = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
            api.create(&params, &secret).await.map_err(api_err(what))?;
        }
        Some(current) => {
            let patch = json!({
                "metadata": { "resourceVersion": current.resource_version, "labels": labels, "annotations": annotations },
                "data": data,
            });
            patch_cacerts(&api, patch, what).await?;
        }
    }
    Ok(())
}

/// Sets routewarden's annotations on `cacerts` (the restart bookkeeping), guarded by resourceVersion.
pub async fn annotate_cacerts(
    client: &kube::Client,
    namespace: &str,
    resource_version: Option<String>,
    annotations: &BTreeMap<String, String>,
) -> Result<(), CaKubeError> {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let patch = json!({ "metadata": { "resourceVersion": resource_version, "annotations": annotations } });
    patch_cacerts(&api, patch, format!("annotate Secret {namespace}/{SECRET_NAME}")).await
}

async fn patch_cacerts(api: &Api<Secret>, patch: serde_json::Value, what: String) -> Result<(), CaKubeError> {
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    api.patch(SECRET_NAME, &params, &Patch::Merge(patch)).await.map_err(api_err(what))?;
    Ok(())
}

/// Restarts istiod as `kubectl rollout restart` does: the pod template's
/// `kubectl.kubernetes.io/restartedAt` set to `at`. Returns the Deployments restarted; a named
/// Deployment that does not exist is skipped (istiod not installed yet starts with `cacerts`).
#[tracing::instrument(level = "info", name = "kubernetes restart istiod", skip_all, fields(namespace = %namespace))]
pub async fn restart_istiod(
    client: &kube::Client,
    namespace: &str,
    target: &IstiodTarget,
    at: jiff::Timestamp,
) -> Result<Vec<String>, CaKubeError> {
    let api = Api::<Deployment>::namespaced(client.clone(), namespace);
    let names: Vec<String> = match target {
        IstiodTarget::Named(names) => names.clone(),
        IstiodTarget::Selector(selector) => api
            .list_metadata(&ListParams::default().labels(selector))
            .await
            .map_err(api_err(format!("list Deployments {selector} in {namespace}")))?
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect(),
    };
    // RFC 3339 as `kubectl rollout restart` writes it, but with milliseconds: two restarts in one
    // second (both steps of a root rotation applied at once) must still change the pod template.
    let stamp = format!("{}.{:03}Z", at.strftime("%Y-%m-%dT%H:%M:%S"), at.subsec_millisecond());
    let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
        labels::KUBECTL_RESTARTED_AT: stamp
    } } } } });
    let params = PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
    let mut restarted = Vec::new();
    for name in names {
        match api.patch(&name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => restarted.push(name),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                tracing::info!(deployment = %name, namespace, "istiod Deployment not found; nothing to restart");
            }
            Err(e) => return Err(api_err(format!("restart Deployment {namespace}/{name}"))(e)),
        }
    }
    Ok(restarted)
}

/// Applies the whole status of an IstioPluginCA (routewarden is its only writer).
#[tracing::instrument(level = "info", name = "kubernetes patch IstioPluginCA status", skip_all)]
pub async fn apply_status(client: &kube::Client, name: &str, status: &IstioPluginCaStatus) -> Result<(), CaKubeError> {
    let api = Api::<IstioPluginCa>::all(client.clone());
    let patch = json!({
        "apiVersion": "routewarden.io/v1alpha1",
        "kind": "IstioPluginCA",
        "metadata": { "name": name },
        "status": status,
    });
    api.patch_status(name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch))
        .await
        .map_err(api_err(format!("write status of IstioPluginCA {name}")))?;
    Ok(())
}
