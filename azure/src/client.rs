//! The Azure client routewarden's workers call: one per process, holding the transport, the
//! cloud, and caches of what is expensive to redo — one credential per [`Principal`] (it caches
//! tokens per scope), one Key Vault client pair per (vault, identity) (it caches the 401
//! challenge), one ARM pipeline per principal. SDK retries are off: a failed call comes back at
//! once, classified ([`AzureError`]), and the caller's work queue decides when to try again, so
//! one throttled zone never holds a worker.
//!
//! A principal is either an Entra workload identity federated with a Kubernetes ServiceAccount
//! ([`IdentityKey`]; the assertion for each token exchange comes from an [`AssertionProvider`] —
//! in the daemon, the Kubernetes TokenRequest API with audience `api://AzureADTokenExchange`), or
//! a managed identity assigned to the daemon's own VM, whose tokens come from the instance
//! metadata service ([`crate::imds`]). Key Vault is read as workload identities only; ARM DNS is
//! written as either.

use crate::cloud::Cloud;
use crate::error::{AzureError, Kind, body_error, retry_after};
use crate::imds::{ImdsCredential, ImdsEndpoint};
use crate::transport::{TransportConfig, build_imds_client};
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{ClientMethodOptions, ClientOptions, Method, Pipeline, RetryOptions, Transport};
use azure_identity::{ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions};
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use base64::Engine;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// API versions: public zones and private zones (decision in `dependencies.md`).
pub const PUBLIC_DNS_API_VERSION: &str = "2018-05-01";
pub const PRIVATE_DNS_API_VERSION: &str = "2024-06-01";

/// A workload identity: the Entra application and the ServiceAccount federated with it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey {
    pub tenant_id: String,
    pub client_id: String,
    pub namespace: String,
    pub service_account: String,
}

/// Who an ARM call is made as.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// A workload identity: tokens exchanged for the ServiceAccount's assertion at Entra.
    Workload(IdentityKey),
    /// The user-assigned managed identity with this client id, assigned to the VM the daemon
    /// runs on: tokens from the instance metadata service.
    Managed { client_id: String },
}

impl Principal {
    /// The Entra application (client) id the tokens are for.
    pub fn client_id(&self) -> &str {
        match self {
            Principal::Workload(id) => &id.client_id,
            Principal::Managed { client_id } => client_id,
        }
    }
}

/// Mints the client assertion (a ServiceAccount token) for a token exchange.
#[async_trait::async_trait]
pub trait AssertionProvider: Send + Sync + std::fmt::Debug {
    async fn assertion(&self, namespace: &str, service_account: &str) -> Result<String, String>;
}

#[derive(Debug)]
struct Assertion {
    provider: Arc<dyn AssertionProvider>,
    namespace: String,
    service_account: String,
}

#[async_trait::async_trait]
impl ClientAssertion for Assertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.provider.assertion(&self.namespace, &self.service_account).await.map_err(|e| {
            azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                format!("ServiceAccount {}/{} token: {e}", self.namespace, self.service_account),
            )
        })
    }
}

/// Key Vault certificate metadata: enough to tell a rotation without downloading anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateMeta {
    pub version: String,
    /// Base64url SHA-1 thumbprint of the leaf.
    pub x5t: String,
    pub not_before: Option<jiff::Timestamp>,
    pub not_after: Option<jiff::Timestamp>,
    pub enabled: bool,
    /// The backing secret's content type from the policy (`application/x-pkcs12` or PEM).
    pub content_type: Option<String>,
}

/// One version of a certificate's backing secret, from metadata only (Key Vault Secrets User can
/// read this; certificate metadata needs Key Vault Certificate User or Reader).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretVersionMeta {
    pub version: String,
    pub enabled: bool,
    pub created: Option<jiff::Timestamp>,
    pub not_before: Option<jiff::Timestamp>,
    pub not_after: Option<jiff::Timestamp>,
}

/// A certificate's backing secret. The value holds the private key: it is wiped on drop and its
/// `Debug` shows only its length.
pub struct SecretValue {
    pub value: Zeroizing<String>,
    pub content_type: Option<String>,
    pub version: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("content_type", &self.content_type)
            .field("version", &self.version)
            .finish()
    }
}

/// An Azure DNS zone, public or private, by ARM id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZoneRef {
    pub id: String,
    pub private: bool,
}

/// Record types routewarden writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Txt,
}

impl RecordKind {
    pub fn path(self) -> &'static str {
        match self {
            RecordKind::A => "A",
            RecordKind::Aaaa => "AAAA",
            RecordKind::Cname => "CNAME",
            RecordKind::Txt => "TXT",
        }
    }

    fn from_type(t: &str) -> Option<Self> {
        match t.rsplit('/').next()?.to_ascii_uppercase().as_str() {
            "A" => Some(RecordKind::A),
            "AAAA" => Some(RecordKind::Aaaa),
            "CNAME" => Some(RecordKind::Cname),
            "TXT" => Some(RecordKind::Txt),
            _ => None,
        }
    }
}

/// A record set's content as routewarden manages it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordSet {
    pub ttl: u32,
    /// Addresses, the one canonical name, or TXT strings — sorted.
    pub targets: Vec<String>,
    pub metadata: BTreeMap<String, String>,
}

/// A record set as Azure holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecordSet {
    pub name: String,
    pub kind: RecordKind,
    pub set: RecordSet,
    pub etag: String,
}

/// Conditional writes: never overwrite what we did not see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// `If-None-Match: *` — create only.
    Absent,
    /// `If-Match: <etag>` — only the version we last wrote or read.
    Matches(String),
}

/// The certificate and secret clients of one (vault, identity).
type VaultClients = (Arc<CertificateClient>, Arc<SecretClient>);

/// Everything routewarden does with Azure.
pub struct AzureClient {
    cloud: Cloud,
    options: ClientOptions,
    assertions: Arc<dyn AssertionProvider>,
    /// Key Vault's challenge must name the vault's own domain; off only for IP-addressed vaults.
    verify_challenge: bool,
    /// The instance metadata service's token endpoint; `None`: IMDS's own address.
    imds: Option<ImdsEndpoint>,
    /// Told of every request; see [`crate::observe`].
    observer: Option<Arc<dyn crate::observe::Observer>>,
    credentials: Mutex<HashMap<Principal, Arc<dyn TokenCredential>>>,
    vaults: Mutex<HashMap<(String, IdentityKey), VaultClients>>,
    arm: Mutex<HashMap<Principal, Arc<Pipeline>>>,
}

impl std::fmt::Debug for AzureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureClient")
            .field("cloud", &self.cloud.name)
            .field("imds", &self.imds.as_ref().map(|e| e.url.as_str()))
            .field("principals", &lock(&self.credentials).len())
            .field("vault_clients", &lock(&self.vaults).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn cloud_configuration(cloud: &Cloud) -> azure_core::cloud::CloudConfiguration {
    use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
    match cloud.name.as_str() {
        "AzurePublicCloud" if cloud == &Cloud::public() => CloudConfiguration::AzurePublic,
        "AzureChinaCloud" if cloud == &Cloud::china() => CloudConfiguration::AzureChina,
        "AzureUSGovernmentCloud" if cloud == &Cloud::us_government() => CloudConfiguration::AzureGovernment,
        _ => {
            let mut custom = CustomConfiguration::default();
            custom.authority_host = cloud.authority_host.clone();
            CloudConfiguration::Custom(custom)
        }
    }
}

fn timestamp(t: Option<azure_core::time::OffsetDateTime>) -> Option<jiff::Timestamp> {
    t.and_then(|t| jiff::Timestamp::from_second(t.unix_timestamp()).ok())
}

fn last_segment(id: Option<&str>) -> String {
    id.and_then(|i| i.trim_end_matches('/').rsplit('/').next()).unwrap_or_default().to_owned()
}

impl AzureClient {
    /// `http` is the transport from [`crate::transport::build_client`].
    pub fn new(cloud: Cloud, http: reqwest::Client, assertions: Arc<dyn AssertionProvider>) -> Self {
        let options = ClientOptions {
            transport: Some(Transport::new(Arc::new(http))),
            retry: RetryOptions::none(),
            cloud: Some(Arc::new(cloud_configuration(&cloud))),
            ..ClientOptions::default()
        };
        AzureClient {
            cloud,
            options,
            assertions,
            verify_challenge: true,
            imds: None,
            observer: None,
            credentials: Mutex::new(HashMap::new()),
            vaults: Mutex::new(HashMap::new()),
            arm: Mutex::new(HashMap::new()),
        }
    }

    /// For vaults addressed by IP (`https://127.0.0.1:PORT`), whose challenge cannot name them.
    pub fn without_challenge_verification(mut self) -> Self {
        self.verify_challenge = false;
        self
    }

    /// Managed identities get their tokens from `endpoint` instead of IMDS's own address
    /// ([`crate::imds::DEFAULT_ENDPOINT`]).
    pub fn with_managed_identity_endpoint(mut self, endpoint: ImdsEndpoint) -> Self {
        self.imds = Some(endpoint);
        self
    }

    /// Reports every request (Key Vault, ARM, Entra, IMDS) to `observer`. Call before first use:
    /// clients are built on first use with the options of that moment.
    pub fn with_observer(mut self, observer: Arc<dyn crate::observe::Observer>) -> Self {
        self.options.per_try_policies.push(Arc::new(crate::observe::ObservePolicy::new(observer.clone(), &self.cloud)));
        self.observer = Some(observer);
        self
    }

    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    fn imds_endpoint(&self) -> Result<ImdsEndpoint, AzureError> {
        if let Some(e) = &self.imds {
            return Ok(e.clone());
        }
        let bad = |e: String| AzureError::new("create credential", Kind::Other, e);
        let url = azure_core::http::Url::parse(crate::imds::DEFAULT_ENDPOINT).map_err(|e| bad(e.to_string()))?;
        let config =
            TransportConfig { timeout: Some(std::time::Duration::from_secs(30)), ..TransportConfig::default() };
        let http = build_imds_client(&config).map_err(|e| bad(e.to_string()))?;
        Ok(ImdsEndpoint::new(url, http))
    }

    /// The cached credential of `principal` (created on first use).
    pub fn credential(&self, principal: &Principal) -> Result<Arc<dyn TokenCredential>, AzureError> {
        if let Some(c) = lock(&self.credentials).get(principal) {
            return Ok(c.clone());
        }
        let credential: Arc<dyn TokenCredential> = match principal {
            Principal::Workload(id) => {
                let assertion = Assertion {
                    provider: self.assertions.clone(),
                    namespace: id.namespace.clone(),
                    service_account: id.service_account.clone(),
                };
                ClientAssertionCredential::new(
                    id.tenant_id.clone(),
                    id.client_id.clone(),
                    assertion,
                    Some(ClientAssertionCredentialOptions { client_options: self.options.clone() }),
                )
                .map_err(|e| AzureError::from_core("create credential", e))?
            }
            Principal::Managed { client_id } => Arc::new(
                ImdsCredential::new(self.imds_endpoint()?, client_id.clone()).with_observer(self.observer.clone()),
            ),
        };
        Ok(lock(&self.credentials).entry(principal.clone()).or_insert(credential).clone())
    }

    fn vault_clients(
        &self,
        vault_url: &str,
        id: &IdentityKey,
    ) -> Result<(Arc<CertificateClient>, Arc<SecretClient>), AzureError> {
        let key = (vault_url.to_owned(), id.clone());
        if let Some(c) = lock(&self.vaults).get(&key) {
            return Ok(c.clone());
        }
        let credential = self.credential(&Principal::Workload(id.clone()))?;
        let certs = CertificateClient::new(
            vault_url,
            credential.clone(),
            Some(CertificateClientOptions {
                client_options: self.options.clone(),
                verify_challenge_resource: Some(self.verify_challenge),
                ..CertificateClientOptions::default()
            }),
        )
        .map_err(|e| AzureError::from_core("create Key Vault client", e))?;
        let secrets = SecretClient::new(
            vault_url,
            credential,
            Some(SecretClientOptions {
                client_options: self.options.clone(),
                verify_challenge_resource: Some(self.verify_challenge),
                ..SecretClientOptions::default()
            }),
        )
        .map_err(|e| AzureError::from_core("create Key Vault client", e))?;
        let pair = (Arc::new(certs), Arc::new(secrets));
        Ok(lock(&self.vaults).entry(key).or_insert(pair).clone())
    }

    /// Certificate metadata (latest or a given version) — one GET, no key material.
    pub async fn certificate(
        &self,
        id: &IdentityKey,
        vault_url: &str,
        name: &str,
        version: Option<&str>,
    ) -> Result<CertificateMeta, AzureError> {
        const OP: &str = "get certificate";
        let (certs, _) = self.vault_clients(vault_url, id)?;
        let options = azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions {
            certificate_version: version.map(str::to_owned),
            ..Default::default()
        };
        let cert = certs
            .get_certificate(name, Some(options))
            .await
            .map_err(|e| AzureError::from_core(OP, e))?
            .into_model()
            .map_err(|e| AzureError::from_core(OP, e))?;
        let attributes = cert.attributes.as_ref();
        Ok(CertificateMeta {
            version: last_segment(cert.id.as_deref()),
            x5t: cert
                .x509_thumbprint
                .as_deref()
                .map(|t| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(t))
                .unwrap_or_default(),
            not_before: timestamp(attributes.and_then(|a| a.not_before)),
            not_after: timestamp(attributes.and_then(|a| a.expires)),
            enabled: attributes.and_then(|a| a.enabled).unwrap_or(true),
            content_type: cert.policy.and_then(|p| p.secret_properties).and_then(|s| s.content_type),
        })
    }

    /// A certificate's backing secret at `version`.
    pub async fn certificate_secret(
        &self,
        id: &IdentityKey,
        vault_url: &str,
        name: &str,
        version: &str,
    ) -> Result<SecretValue, AzureError> {
        const OP: &str = "get certificate secret";
        let (_, secrets) = self.vault_clients(vault_url, id)?;
        let options = azure_security_keyvault_secrets::models::SecretClientGetSecretOptions {
            secret_version: Some(version.to_owned()),
            ..Default::default()
        };
        let secret = secrets
            .get_secret(name, Some(options))
            .await
            .map_err(|e| AzureError::from_core(OP, e))?
            .into_model()
            .map_err(|e| AzureError::from_core(OP, e))?;
        let value = secret.value.ok_or_else(|| AzureError::new(OP, Kind::Other, "the secret has no value"))?;
        Ok(SecretValue {
            value: Zeroizing::new(value),
            content_type: secret.content_type,
            version: last_segment(secret.id.as_deref()),
        })
    }

    /// Every version of a secret (all pages), metadata only.
    pub async fn secret_versions(
        &self,
        id: &IdentityKey,
        vault_url: &str,
        name: &str,
    ) -> Result<Vec<SecretVersionMeta>, AzureError> {
        use futures::TryStreamExt;
        const OP: &str = "list secret versions";
        let (_, secrets) = self.vault_clients(vault_url, id)?;
        let pager = secrets.list_secret_properties_versions(name, None).map_err(|e| AzureError::from_core(OP, e))?;
        let items: Vec<azure_security_keyvault_secrets::models::SecretProperties> =
            pager.try_collect().await.map_err(|e| AzureError::from_core(OP, e))?;
        Ok(items
            .into_iter()
            .map(|p| {
                let a = p.attributes.as_ref();
                SecretVersionMeta {
                    version: last_segment(p.id.as_deref()),
                    enabled: a.and_then(|a| a.enabled).unwrap_or(true),
                    created: timestamp(a.and_then(|a| a.created)),
                    not_before: timestamp(a.and_then(|a| a.not_before)),
                    not_after: timestamp(a.and_then(|a| a.expires)),
                }
            })
            .collect())
    }

    /// The version a rotation-following listener should serve: the newest enabled version of the
    /// backing secret, found from metadata alone. Key Vault timestamps have one-second resolution,
    /// so when several enabled versions share the newest `created` second, the latest secret is
    /// read once to tell which one Key Vault considers current (the only case that downloads).
    pub async fn current_secret_version(
        &self,
        id: &IdentityKey,
        vault_url: &str,
        name: &str,
    ) -> Result<Option<SecretVersionMeta>, AzureError> {
        let mut enabled: Vec<SecretVersionMeta> =
            self.secret_versions(id, vault_url, name).await?.into_iter().filter(|v| v.enabled).collect();
        let Some(newest) = enabled.iter().map(|v| v.created).max() else { return Ok(None) };
        enabled.retain(|v| v.created == newest);
        if enabled.len() == 1 {
            return Ok(enabled.pop());
        }
        let latest = self.latest_secret_version_id(id, vault_url, name).await?;
        Ok(enabled.into_iter().find(|v| v.version == latest))
    }

    /// The version id of the latest secret (reads the secret; used only to break ties).
    async fn latest_secret_version_id(
        &self,
        id: &IdentityKey,
        vault_url: &str,
        name: &str,
    ) -> Result<String, AzureError> {
        const OP: &str = "get latest secret";
        let (_, secrets) = self.vault_clients(vault_url, id)?;
        let secret = secrets
            .get_secret(name, None)
            .await
            .map_err(|e| AzureError::from_core(OP, e))?
            .into_model()
            .map_err(|e| AzureError::from_core(OP, e))?;
        Ok(last_segment(secret.id.as_deref()))
    }

    fn arm_pipeline(&self, id: &Principal) -> Result<Arc<Pipeline>, AzureError> {
        if let Some(p) = lock(&self.arm).get(id) {
            return Ok(p.clone());
        }
        let auth: Arc<dyn Policy> =
            Arc::new(BearerTokenAuthorizationPolicy::new(self.credential(id)?, [self.cloud.resource_manager_scope()]));
        let pipeline = Arc::new(Pipeline::new(
            Some("routewarden"),
            Some(env!("CARGO_PKG_VERSION")),
            self.options.clone(),
            Vec::new(),
            vec![auth],
            None,
        ));
        Ok(lock(&self.arm).entry(id.clone()).or_insert(pipeline).clone())
    }

    fn record_url(
        &self,
        zone: &ZoneRef,
        kind: Option<RecordKind>,
        name: Option<&str>,
    ) -> Result<azure_core::http::Url, AzureError> {
        let api = if zone.private { PRIVATE_DNS_API_VERSION } else { PUBLIC_DNS_API_VERSION };
        let mut url =
            azure_core::http::Url::parse(&format!("{}{}", self.cloud.resource_manager, zone.id)).map_err(|e| {
                AzureError::new("build record-set URL", Kind::BadRequest, format!("zone {:?}: {e}", zone.id))
            })?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|()| AzureError::new("build record-set URL", Kind::BadRequest, "zone id is not a path"))?;
            match (kind, name) {
                (Some(k), Some(n)) => {
                    segments.push(k.path()).push(n);
                }
                _ => {
                    segments.push("all");
                }
            }
        }
        url.query_pairs_mut().append_pair("api-version", api);
        Ok(url)
    }

    async fn arm_send(
        &self,
        op: &'static str,
        id: &Principal,
        method: Method,
        url: azure_core::http::Url,
        body: Option<serde_json::Value>,
        precondition: Option<&Precondition>,
    ) -> Result<(u16, serde_json::Value), AzureError> {
        let pipeline = self.arm_pipeline(id)?;
        let mut request = azure_core::http::Request::new(url, method);
        match precondition {
            Some(Precondition::Absent) => request.insert_header("if-none-match", "*"),
            Some(Precondition::Matches(etag)) => request.insert_header("if-match", etag.clone()),
            None => {}
        }
        if let Some(b) = body {
            request.insert_header("content-type", "application/json");
            request.set_body(b.to_string());
        }
        let response = pipeline.send(&azure_core::http::Context::new(), &mut request, None).await;
        let raw = match response {
            Ok(raw) => raw,
            Err(e) => return Err(AzureError::from_core(op, e)),
        };
        let status = u16::from(raw.status());
        let bytes = raw.body().as_ref().to_vec();
        if !(200..300).contains(&status) {
            let (code, message) = body_error(&bytes);
            return Err(AzureError::from_status(
                op,
                status,
                code,
                message.unwrap_or_default(),
                retry_after(raw.headers()),
            ));
        }
        let value =
            if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes).unwrap_or_default() };
        Ok((status, value))
    }

    /// Creates or replaces a record set, conditionally, in one PUT; returns the new etag.
    pub async fn put_record_set(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        name: &str,
        kind: RecordKind,
        set: &RecordSet,
        precondition: &Precondition,
    ) -> Result<String, AzureError> {
        const OP: &str = "put record set";
        let url = self.record_url(zone, Some(kind), Some(name))?;
        let body = serde_json::json!({ "properties": properties(zone.private, kind, set) });
        let (_, value) = self.arm_send(OP, id, Method::Put, url, Some(body), Some(precondition)).await?;
        value["etag"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AzureError::new(OP, Kind::Other, "the answer has no etag"))
    }

    /// Deletes a record set if it still has `etag`. A record set that is already gone is success:
    /// Azure answers 412 to `If-Match` on a missing record set, so a 412 is checked with a GET to
    /// tell "gone" (success) from "changed by someone else" (the 412 stands).
    pub async fn delete_record_set(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        name: &str,
        kind: RecordKind,
        etag: &str,
    ) -> Result<(), AzureError> {
        let url = self.record_url(zone, Some(kind), Some(name))?;
        let precondition = Precondition::Matches(etag.to_owned());
        match self.arm_send("delete record set", id, Method::Delete, url, None, Some(&precondition)).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind == Kind::NotFound => Ok(()),
            Err(e) if e.kind == Kind::PreconditionFailed => match self.get_record_set(id, zone, name, kind).await? {
                None => Ok(()),
                Some(_) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// One record set, or `None`.
    pub async fn get_record_set(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        name: &str,
        kind: RecordKind,
    ) -> Result<Option<StoredRecordSet>, AzureError> {
        let url = self.record_url(zone, Some(kind), Some(name))?;
        match self.arm_send("get record set", id, Method::Get, url, None, None).await {
            Ok((_, v)) => Ok(parse_record_set(zone.private, &v)),
            Err(e) if e.kind == Kind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every A, AAAA, CNAME and TXT record set of a zone, following `nextLink`. Returns the sets
    /// and the number of record sets of all types (for headroom against the zone limit).
    pub async fn list_record_sets(
        &self,
        id: &Principal,
        zone: &ZoneRef,
    ) -> Result<(Vec<StoredRecordSet>, u64), AzureError> {
        self.list_record_sets_paced(id, zone, || async {}).await
    }

    /// [`AzureClient::list_record_sets`], awaiting `before_page` before each page request: the
    /// caller's rate limit counts every page, as Azure does.
    pub async fn list_record_sets_paced<F, Fut>(
        &self,
        id: &Principal,
        zone: &ZoneRef,
        mut before_page: F,
    ) -> Result<(Vec<StoredRecordSet>, u64), AzureError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        const OP: &str = "list record sets";
        let mut url = self.record_url(zone, None, None)?;
        let mut out = Vec::new();
        let mut total = 0u64;
        loop {
            before_page().await;
            let (_, page) = self.arm_send(OP, id, Method::Get, url, None, None).await?;
            let items = page["value"].as_array().cloned().unwrap_or_default();
            total += items.len() as u64;
            out.extend(items.iter().filter_map(|v| parse_record_set(zone.private, v)));
            match page["nextLink"].as_str() {
                Some(next) if !next.is_empty() => {
                    url = azure_core::http::Url::parse(next)
                        .map_err(|e| AzureError::new(OP, Kind::Other, format!("nextLink {next:?}: {e}")))?;
                }
                _ => break,
            }
        }
        Ok((out, total))
    }
}

/// The record array's name in `properties`: public zones say `ARecords`, private zones `aRecords`.
fn records_key(private: bool, kind: RecordKind) -> &'static str {
    match (kind, private) {
        (RecordKind::A, false) => "ARecords",
        (RecordKind::A, true) => "aRecords",
        (RecordKind::Aaaa, false) => "AAAARecords",
        (RecordKind::Aaaa, true) => "aaaaRecords",
        (RecordKind::Cname, false) => "CNAMERecord",
        (RecordKind::Cname, true) => "cnameRecord",
        (RecordKind::Txt, false) => "TXTRecords",
        (RecordKind::Txt, true) => "txtRecords",
    }
}

fn ttl_key(private: bool) -> &'static str {
    if private { "ttl" } else { "TTL" }
}

/// The `properties` body: public zones use `TTL` / `ARecords`, private zones `ttl` / `aRecords`.
fn properties(private: bool, kind: RecordKind, set: &RecordSet) -> serde_json::Value {
    use serde_json::json;
    let records = match kind {
        RecordKind::A => json!(set.targets.iter().map(|t| json!({"ipv4Address": t})).collect::<Vec<_>>()),
        RecordKind::Aaaa => json!(set.targets.iter().map(|t| json!({"ipv6Address": t})).collect::<Vec<_>>()),
        RecordKind::Cname => json!({"cname": set.targets.first().cloned().unwrap_or_default()}),
        RecordKind::Txt => json!(set.targets.iter().map(|t| json!({"value": [t]})).collect::<Vec<_>>()),
    };
    let mut p = serde_json::Map::new();
    p.insert(ttl_key(private).into(), json!(set.ttl));
    p.insert("metadata".into(), json!(set.metadata));
    p.insert(records_key(private, kind).into(), records);
    serde_json::Value::Object(p)
}

/// Reads a record set in either casing; `None` for types routewarden does not manage.
fn parse_record_set(private: bool, v: &serde_json::Value) -> Option<StoredRecordSet> {
    let kind = RecordKind::from_type(v["type"].as_str()?)?;
    let p = &v["properties"];
    let ttl = p[ttl_key(private)].as_u64().unwrap_or(0) as u32;
    let records = &p[records_key(private, kind)];
    let strings = |field: &str| -> Option<Vec<String>> {
        Some(records.as_array()?.iter().filter_map(|r| r[field].as_str().map(str::to_owned)).collect())
    };
    let mut targets: Vec<String> = match kind {
        RecordKind::A => strings("ipv4Address")?,
        RecordKind::Aaaa => strings("ipv6Address")?,
        RecordKind::Cname => records["cname"].as_str().map(|c| vec![c.to_owned()]).unwrap_or_default(),
        RecordKind::Txt => records
            .as_array()?
            .iter()
            .filter_map(|r| r["value"].as_array())
            .map(|parts| parts.iter().filter_map(|s| s.as_str()).collect::<String>())
            .collect(),
    };
    targets.sort();
    let metadata = p["metadata"]
        .as_object()
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect())
        .unwrap_or_default();
    Some(StoredRecordSet {
        name: v["name"].as_str()?.to_owned(),
        kind,
        set: RecordSet { ttl, targets, metadata },
        etag: v["etag"].as_str().unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_casing_of_each_zone_kind_and_reads_it_back() {
        let set = RecordSet {
            ttl: 60,
            targets: vec!["10.0.0.1".into(), "10.0.0.2".into()],
            metadata: BTreeMap::from([("owner".into(), "c/x".into())]),
        };
        for private in [false, true] {
            for kind in [RecordKind::A, RecordKind::Aaaa, RecordKind::Cname, RecordKind::Txt] {
                let set = if kind == RecordKind::Cname {
                    RecordSet { targets: vec!["lb.example".into()], ..set.clone() }
                } else {
                    set.clone()
                };
                let stored = serde_json::json!({"name": "www", "type": format!("Microsoft.Network/dnszones/{}", kind.path()), "etag": "e1", "properties": properties(private, kind, &set)});
                let back = parse_record_set(private, &stored).unwrap();
                assert_eq!(back.set, set, "{kind:?} private={private}");
            }
        }
        let public = properties(false, RecordKind::A, &set);
        assert!(public.get("TTL").is_some() && public.get("ARecords").is_some());
        let private = properties(true, RecordKind::A, &set);
        assert!(private.get("ttl").is_some() && private.get("aRecords").is_some());
    }
}
