//! Every Kubernetes write the TLS controller makes, and the ServiceAccount tokens it exchanges
//! for Entra tokens. Writes are minimal and owned: server-side apply with field manager
//! `routewarden` for objects routewarden creates (so re-applying unchanged content is a no-op on
//! the server), an RFC 6902 patch guarded by a `test` of the listener's name for the one field
//! routewarden sets on a user's Gateway, and never a write to an object routewarden does not own.

use super::sources::{self, Caches, gateway_resource, spc_resource};
use super::{FIELD_MANAGER, labels};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Resource, ResourceExt};
use routewarden_store::CertBindingKey;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Audience of ServiceAccount tokens exchanged for Entra tokens (workload identity).
pub const TOKEN_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Lifetime asked for each exchange token: the API server's minimum.
const TOKEN_SECONDS: i64 = 600;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// An object with the target name exists and routewarden does not manage it.
    #[error("{0}")]
    Conflict(String),
    #[error("failed to {what}: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> KubeError {
    let what = what.into();
    move |source| KubeError::Api { what, source }
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Mints ServiceAccount tokens for the token exchange with the TokenRequest API.
#[derive(Clone)]
pub struct TokenRequests(pub kube::Client);

impl std::fmt::Debug for TokenRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRequests")
    }
}

#[async_trait::async_trait]
impl routewarden_azure::AssertionProvider for TokenRequests {
    async fn assertion(&self, namespace: &str, service_account: &str) -> Result<String, String> {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![TOKEN_AUDIENCE.into()],
                expiration_seconds: Some(TOKEN_SECONDS),
                bound_object_ref: None,
            },
            ..TokenRequest::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.0.clone(), namespace)
            .create_token_request(service_account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("TokenRequest for ServiceAccount {namespace}/{service_account}: {e}"))?;
        answer
            .status
            .map(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| format!("TokenRequest for ServiceAccount {namespace}/{service_account} returned no token"))
    }
}

/// The Kubernetes side of the TLS controller.
#[derive(Clone)]
pub struct Kube {
    pub client: kube::Client,
    pub caches: Caches,
    recorder: Recorder,
}

impl std::fmt::Debug for Kube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kube").field("caches", &self.caches).finish_non_exhaustive()
    }
}

/// The Gateway an object belongs to, as an ownerReference (garbage collection removes our
/// objects with their Gateway even if routewarden is not running).
pub fn owner_reference(gw: &DynamicObject) -> Option<Value> {
    Some(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "name": gw.metadata.name.clone()?,
        "uid": gw.metadata.uid.clone()?,
        "controller": true,
    }))
}

/// Whether an owned object's annotations name this listener.
fn names_listener(annotations: &BTreeMap<String, String>, key: &CertBindingKey) -> bool {
    annotations.get(labels::GATEWAY).map(String::as_str) == Some(key.gateway.as_str())
        && annotations.get(labels::LISTENER).map(String::as_str) == Some(key.listener.as_str())
}

fn owned_metadata(
    key: &CertBindingKey,
    name: &str,
    owner: &Value,
    component: &str,
    extra: &BTreeMap<String, String>,
) -> Value {
    let mut annotations = extra.clone();
    annotations.insert(labels::GATEWAY.into(), key.gateway.clone());
    annotations.insert(labels::LISTENER.into(), key.listener.clone());
    json!({
        "name": name,
        "namespace": key.namespace,
        "labels": { labels::MANAGED_BY: labels::MANAGED_BY_VALUE, labels::COMPONENT: component },
        "annotations": annotations,
        "ownerReferences": [owner],
    })
}

impl Kube {
    pub fn new(client: kube::Client, caches: Caches) -> Self {
        let instance = std::env::var("POD_NAME").ok().or_else(|| std::env::var("HOSTNAME").ok());
        let recorder = Recorder::new(client.clone(), Reporter { controller: "routewarden".into(), instance });
        Kube { client, caches, recorder }
    }

    /// Refuses when `name` exists in the namespace and is not routewarden's object for `key`;
    /// returns whether it exists. `cached` holds the annotations when the owned-object cache has
    /// it (then only the listener annotations need checking); otherwise the API server is asked.
    async fn check_ownership<K>(
        &self,
        api: &Api<K>,
        kind: &str,
        key: &CertBindingKey,
        name: &str,
        cached: Option<BTreeMap<String, String>>,
    ) -> Result<bool, KubeError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let (found_labels, annotations) = match cached {
            Some(a) => (BTreeMap::from([(labels::MANAGED_BY.to_owned(), labels::MANAGED_BY_VALUE.to_owned())]), a),
            None => match api
                .get_metadata_opt(name)
                .await
                .map_err(api_err(format!("read {kind} {}/{name}", key.namespace)))?
            {
                Some(meta) => (meta.labels().clone(), meta.annotations().clone()),
                None => return Ok(false),
            },
        };
        if found_labels.get(labels::MANAGED_BY).map(String::as_str) != Some(labels::MANAGED_BY_VALUE) {
            return Err(KubeError::Conflict(format!(
                "{kind} {}/{name} exists and is not managed by routewarden (no label {}={}); it was left untouched",
                key.namespace,
                labels::MANAGED_BY,
                labels::MANAGED_BY_VALUE
            )));
        }
        if !names_listener(&annotations, key) {
            return Err(KubeError::Conflict(format!(
                "{kind} {}/{name} already belongs to Gateway {:?} listener {:?}; rename one of the listeners",
                key.namespace,
                annotations.get(labels::GATEWAY).cloned().unwrap_or_default(),
                annotations.get(labels::LISTENER).cloned().unwrap_or_default()
            )));
        }
        Ok(true)
    }

    /// Writes one of routewarden's objects: created where nothing exists (so a foreign object
    /// created meanwhile makes it fail with 409 instead of being taken over), server-side applied
    /// where routewarden's own object exists, refused where another owner's does.
    async fn create_or_apply<K>(
        &self,
        api: &Api<K>,
        kind: &str,
        key: &CertBindingKey,
        cached: Option<BTreeMap<String, String>>,
        desired: Value,
    ) -> Result<(), KubeError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let name = desired.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let what = format!("write {kind} {}/{name}", key.namespace);
        if !self.check_ownership(api, kind, key, &name, cached).await? {
            let object: K = serde_json::from_value(desired.clone())
                .map_err(|e| KubeError::Api { what: what.clone(), source: kube::Error::SerdeError(e) })?;
            let create = PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() };
            match api.create(&create, &object).await {
                Ok(_) => return Ok(()),
                Err(e) if status_code(&e) == Some(409) => {
                    self.check_ownership(api, kind, key, &name, None).await?;
                }
                Err(e) => return Err(api_err(what)(e)),
            }
        }
        api.patch(&name, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(desired))
            .await
            .map_err(api_err(what))?;
        Ok(())
    }

    /// Creates or updates the SecretProviderClass of a listener.
    #[tracing::instrument(level = "info", name = "kubernetes apply SecretProviderClass", skip_all)]
    pub async fn apply_spc(
        &self,
        key: &CertBindingKey,
        name: &str,
        owner: &Value,
        spec: Value,
    ) -> Result<(), KubeError> {
        let ar = spc_resource();
        let api = Api::<DynamicObject>::namespaced_with(self.client.clone(), &key.namespace, &ar);
        let cached = self
            .caches
            .spcs
            .get(&kube::runtime::reflector::ObjectRef::new_with(name, ar.clone()).within(&key.namespace))
            .map(|o| o.annotations().clone());
        let desired = json!({
            "apiVersion": "secrets-store.csi.x-k8s.io/v1",
            "kind": "SecretProviderClass",
            "metadata": owned_metadata(key, name, owner, "secretproviderclass", &BTreeMap::new()),
            "spec": spec,
        });
        self.create_or_apply(&api, "SecretProviderClass", key, cached, desired).await
    }

    /// Creates or updates the `kubernetes.io/tls` Secret of a listener.
    #[tracing::instrument(level = "info", name = "kubernetes apply Secret", skip_all, fields(secret = %name))]
    pub async fn write_secret(
        &self,
        key: &CertBindingKey,
        name: &str,
        owner: &Value,
        annotations: &BTreeMap<String, String>,
        tls_crt: &str,
        tls_key: &str,
    ) -> Result<(), KubeError> {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        let api = Api::<Secret>::namespaced(self.client.clone(), &key.namespace);
        let cached = self.caches.secret(&key.namespace, name).map(|o| o.annotations().clone());
        let desired = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": owned_metadata(key, name, owner, "certificate", annotations),
            "type": "kubernetes.io/tls",
            "data": { "tls.crt": b64(tls_crt), "tls.key": b64(tls_key) },
        });
        self.create_or_apply(&api, "Secret", key, cached, desired).await
    }

    /// Points the listener's `tls.certificateRefs` at Secret `name` alone. Returns false when
    /// that is already so (no request is made).
    #[tracing::instrument(level = "info", name = "kubernetes patch Gateway certificateRefs", skip_all, fields(listener = %key))]
    pub async fn set_certificate_ref(&self, key: &CertBindingKey, name: &str) -> Result<bool, KubeError> {
        let Some(gw) = self.caches.gateway(&key.namespace, &key.gateway) else { return Ok(false) };
        let Some(refs) = sources::certificate_refs(&gw, &key.listener) else { return Ok(false) };
        if refs.len() == 1 && sources::is_ref_to(&refs[0], &key.namespace, name) {
            return Ok(false);
        }
        let index = listener_index(&gw, &key.listener);
        let patch = json!([
            { "op": "test", "path": format!("/spec/listeners/{index}/name"), "value": key.listener },
            { "op": "add", "path": format!("/spec/listeners/{index}/tls/certificateRefs"),
              "value": [{ "group": "", "kind": "Secret", "name": name }] },
        ]);
        self.patch_gateway(key, patch, "set certificateRefs of").await?;
        Ok(true)
    }

    /// Removes the references to Secret `name` from the listener's `tls.certificateRefs` (the
    /// field goes when nothing else is left). Nothing to do when the listener is gone.
    #[tracing::instrument(level = "info", name = "kubernetes patch Gateway certificateRefs", skip_all, fields(listener = %key))]
    pub async fn remove_certificate_ref(&self, key: &CertBindingKey, name: &str) -> Result<bool, KubeError> {
        let Some(gw) = self.caches.gateway(&key.namespace, &key.gateway) else { return Ok(false) };
        let Some(refs) = sources::certificate_refs(&gw, &key.listener) else { return Ok(false) };
        if !refs.iter().any(|r| sources::is_ref_to(r, &key.namespace, name)) {
            return Ok(false);
        }
        let index = listener_index(&gw, &key.listener);
        let rest: Vec<&Value> = refs.iter().filter(|r| !sources::is_ref_to(r, &key.namespace, name)).collect();
        let path = format!("/spec/listeners/{index}/tls/certificateRefs");
        let change = if rest.is_empty() {
            json!({ "op": "remove", "path": path })
        } else {
            json!({ "op": "replace", "path": path, "value": rest })
        };
        let patch = json!([
            { "op": "test", "path": format!("/spec/listeners/{index}/name"), "value": key.listener },
            change,
        ]);
        self.patch_gateway(key, patch, "remove routewarden's certificateRef from").await?;
        Ok(true)
    }

    async fn patch_gateway(&self, key: &CertBindingKey, patch: Value, what: &str) -> Result<(), KubeError> {
        let what = format!("{what} Gateway {}/{} listener {:?}", key.namespace, key.gateway, key.listener);
        let patch: json_patch::Patch = serde_json::from_value(patch)
            .map_err(|e| KubeError::Api { what: what.clone(), source: kube::Error::SerdeError(e) })?;
        Api::<DynamicObject>::namespaced_with(self.client.clone(), &key.namespace, &gateway_resource())
            .patch(
                &key.gateway,
                &PatchParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() },
                &Patch::Json::<()>(patch),
            )
            .await
            .map_err(api_err(what))?;
        Ok(())
    }

    /// Deletes routewarden's Secret and SecretProviderClass `name` (only objects that carry
    /// routewarden's label and name `key`'s listener; gone already counts as done).
    #[tracing::instrument(level = "info", name = "kubernetes delete", skip_all, fields(listener = %key))]
    pub async fn delete_owned(&self, key: &CertBindingKey, name: &str) -> Result<(), KubeError> {
        let secrets = Api::<Secret>::namespaced(self.client.clone(), &key.namespace);
        if let Some(meta) =
            secrets.get_metadata_opt(name).await.map_err(api_err(format!("read Secret {}/{name}", key.namespace)))?
            && meta.labels().get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE)
            && names_listener(meta.annotations(), key)
        {
            let dp = DeleteParams {
                preconditions: meta.uid().map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
                ..Default::default()
            };
            match secrets.delete(name, &dp).await {
                Ok(_) => {}
                Err(e) if status_code(&e) == Some(404) => {}
                Err(e) => return Err(api_err(format!("delete Secret {}/{name}", key.namespace))(e)),
            }
        }
        let spcs = Api::<DynamicObject>::namespaced_with(self.client.clone(), &key.namespace, &spc_resource());
        if let Some(spc) =
            spcs.get_opt(name).await.map_err(api_err(format!("read SecretProviderClass {}/{name}", key.namespace)))?
            && spc.labels().get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE)
            && names_listener(spc.annotations(), key)
        {
            let dp = DeleteParams {
                preconditions: spc.uid().map(|uid| Preconditions { uid: Some(uid), resource_version: None }),
                ..Default::default()
            };
            match spcs.delete(name, &dp).await {
                Ok(_) => {}
                Err(e) if status_code(&e) == Some(404) => {}
                Err(e) => return Err(api_err(format!("delete SecretProviderClass {}/{name}", key.namespace))(e)),
            }
        }
        Ok(())
    }

    /// Applies routewarden's listener conditions of one Gateway — all of them in one apply, since
    /// an apply releases whatever the field manager applied before and left out now.
    #[tracing::instrument(level = "info", name = "kubernetes patch Gateway status", skip_all)]
    pub async fn apply_conditions(
        &self,
        namespace: &str,
        gateway: &str,
        conditions: &BTreeMap<String, Value>,
    ) -> Result<(), KubeError> {
        let listeners: Vec<Value> = conditions.iter().map(|(l, c)| json!({ "name": l, "conditions": [c] })).collect();
        let status = if listeners.is_empty() { json!({}) } else { json!({ "listeners": listeners }) };
        let patch = json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": { "name": gateway, "namespace": namespace },
            "status": status,
        });
        Api::<DynamicObject>::namespaced_with(self.client.clone(), namespace, &gateway_resource())
            .patch_status(gateway, &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(patch))
            .await
            .map_err(api_err(format!("write status of Gateway {namespace}/{gateway}")))?;
        Ok(())
    }

    /// Publishes an Event on the Gateway, related to the listener's Secret (failures are logged:
    /// Events are best effort). The related object also keeps two listeners failing for the same
    /// reason apart: the recorder folds repeats of one (object, related, reason) into a series.
    pub async fn event(&self, gw: &DynamicObject, secret: &str, warning: bool, reason: &str, note: String) {
        let reference = gw.object_ref(&gateway_resource());
        let related = k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            name: Some(secret.into()),
            namespace: gw.metadata.namespace.clone(),
            ..Default::default()
        };
        let event = Event {
            type_: if warning { EventType::Warning } else { EventType::Normal },
            reason: reason.into(),
            note: Some(note),
            action: "SyncCertificate".into(),
            secondary: Some(related),
        };
        self.publish(&reference, event).await;
    }

    /// Publishes an Event on any object (best effort: failures are logged).
    pub async fn publish(&self, reference: &k8s_openapi::api::core::v1::ObjectReference, event: Event) {
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!(
                kind = reference.kind.as_deref().unwrap_or_default(),
                name = reference.name.as_deref().unwrap_or_default(),
                reason = %event.reason,
                error = %e,
                "failed to publish Event"
            );
        }
    }
}

fn listener_index(gw: &DynamicObject, listener: &str) -> usize {
    gw.data
        .pointer("/spec/listeners")
        .and_then(Value::as_array)
        .and_then(|ls| ls.iter().position(|l| l.get("name").and_then(Value::as_str) == Some(listener)))
        .unwrap_or(0)
}
