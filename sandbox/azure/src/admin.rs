//! Admin operations: what a user would do in the portal or the CLI, for tests and the sandbox CLI.
//!
//! [`Admin`] is the Rust handle (rotate a certificate, enable or disable a version, add or remove
//! role assignments and federated credentials, list a zone's record sets or follow their writes,
//! set faults, read or reset the call counter, mint tokens). [`handle`] serves the same operations as JSON over the
//! admin HTTPS listener, without authentication: the listener is bound to loopback only.
//! [`AdminClient`] calls that API from another process (the `routewarden-sandbox` CLI).
//!
//! ```text
//! GET    /admin/scenario | /admin/endpoints
//! POST   /admin/vaults/{vault}/certificates/{name}/rotate                     -> {"version"}
//! POST   /admin/vaults/{vault}/certificates/{name}/versions/{v}/disable|enable
//! GET    /admin/role-assignments        POST {principal, role, scope}        DELETE /admin/role-assignments/{id}
//! POST   /admin/identities/{identity}/federated-credentials {name, issuer?, subject, audiences?}
//! DELETE /admin/identities/{identity}/federated-credentials/{name}
//! GET    /admin/zones/{zone}/recordsets
//! GET|PUT /admin/faults                 GET|DELETE /admin/calls
//! POST   /admin/tokens {clientId, resource, lifetimeSeconds?}                -> {"accessToken"}
//! POST   /admin/clock {advanceSeconds}                                        -> {"now"}
//! ```

use std::sync::{Arc, PoisonError};

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::{CallCount, FaultConfig};
use crate::http::{Req, Resp, azure_error, json as json_resp};
use crate::rbac::RoleAssignment;
use crate::scenario::TOKEN_EXCHANGE_AUDIENCE;
use crate::server::Ctx;
use crate::state::FederatedCredential;

/// Why an admin operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The named object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is invalid.
    #[error("invalid: {0}")]
    Invalid(String),
}

/// One record-set write that changed a zone (a create, an update or a delete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSetChange {
    /// The zone's resource id.
    pub zone: String,
    /// The record set's relative name, lower case (`@` for the apex).
    pub name: String,
    /// `A`, `AAAA`, `CNAME` or `TXT`.
    pub record_type: &'static str,
    /// Its records after the write (see [`crate::dns::RecordData::values`]); `None` when the
    /// write deleted it.
    pub values: Option<Vec<String>>,
    /// When the write was committed, while the zone was still locked.
    pub at: std::time::Instant,
}

/// The receivers of [`Admin::watch_record_sets`]. Unbounded: a slow reader must not lose a
/// change or slow down ARM, and a dropped reader is forgotten at the next write.
#[derive(Debug, Default)]
pub struct RecordSetWatchers(std::sync::Mutex<Vec<tokio::sync::mpsc::UnboundedSender<RecordSetChange>>>);

impl RecordSetWatchers {
    fn senders(&self) -> std::sync::MutexGuard<'_, Vec<tokio::sync::mpsc::UnboundedSender<RecordSetChange>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn subscribe(&self) -> tokio::sync::mpsc::UnboundedReceiver<RecordSetChange> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.senders().push(tx);
        rx
    }

    /// Whether anyone listens (so writes build no change nobody reads).
    pub fn any(&self) -> bool {
        !self.senders().is_empty()
    }

    /// Tells every receiver still open.
    pub fn notify(&self, change: &RecordSetChange) {
        self.senders().retain(|tx| tx.send(change.clone()).is_ok());
    }
}

/// The admin handle. Cloning shares the sandbox.
#[derive(Debug, Clone)]
pub struct Admin {
    ctx: Arc<Ctx>,
}

impl Admin {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    fn world(&self) -> std::sync::MutexGuard<'_, crate::state::World> {
        self.ctx.world.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a new version of a certificate from its current policy; returns the version id.
    pub fn rotate_certificate(&self, vault: &str, name: &str) -> Result<String, AdminError> {
        let mut world = self.world();
        let v = world.vault_mut(vault).ok_or_else(|| AdminError::NotFound(format!("vault {vault}")))?;
        let policy = v
            .certificates
            .get(&name.to_ascii_lowercase())
            .map(|c| c.policy.clone())
            .ok_or_else(|| AdminError::NotFound(format!("certificate {name}")))?;
        // Imported certificates have no issuer to renew from; rotate them self-signed.
        let mut policy = policy;
        if policy.issuer.eq_ignore_ascii_case("unknown") {
            policy.issuer = "Self".into();
        }
        v.create_certificate(name, policy, &self.ctx.ca, serde_json::Map::new()).map_err(AdminError::Invalid)
    }

    /// Adds a version to a plain secret (created if new), as `az keyvault secret set` does; returns
    /// the version id.
    pub fn set_secret(&self, vault: &str, name: &str, value: &str) -> Result<String, AdminError> {
        let mut world = self.world();
        let v = world.vault_mut(vault).ok_or_else(|| AdminError::NotFound(format!("vault {vault}")))?;
        let version = crate::state::SecretVersion::new(value, None);
        v.add_secret_version(name, version).map(|v| v.version.clone()).map_err(AdminError::Invalid)
    }

    /// Enables or disables one version of a certificate (with its secret) or of a secret.
    pub fn set_version_enabled(&self, vault: &str, name: &str, version: &str, enabled: bool) -> Result<(), AdminError> {
        let mut world = self.world();
        let v = world.vault_mut(vault).ok_or_else(|| AdminError::NotFound(format!("vault {vault}")))?;
        if v.set_version_enabled(name, version, enabled) {
            Ok(())
        } else {
            Err(AdminError::NotFound(format!("{name}/{version}")))
        }
    }

    /// Adds a role assignment (principal: identity name or principal id; role: name or GUID;
    /// scope: ARM id or `zone/NAME`, `privateZone/NAME`, `vault/NAME`, `resourceGroup/NAME`,
    /// `subscription/ID`).
    pub fn add_role_assignment(&self, principal: &str, role: &str, scope: &str) -> Result<RoleAssignment, AdminError> {
        let mut world = self.world();
        let a = world.resolve_assignment(principal, role, scope).map_err(AdminError::Invalid)?;
        world.role_assignments.push(a.clone());
        Ok(a)
    }

    /// Removes a role assignment by id.
    pub fn remove_role_assignment(&self, id: &str) -> Result<(), AdminError> {
        let mut world = self.world();
        let before = world.role_assignments.len();
        world.role_assignments.retain(|a| !a.id.eq_ignore_ascii_case(id));
        if world.role_assignments.len() == before {
            Err(AdminError::NotFound(format!("role assignment {id}")))
        } else {
            Ok(())
        }
    }

    /// Every role assignment.
    pub fn role_assignments(&self) -> Vec<RoleAssignment> {
        self.world().role_assignments.clone()
    }

    /// Adds a federated credential to an identity (by name or client id); an absent issuer
    /// means the Kubernetes issuer.
    pub fn add_federated_credential(
        &self,
        identity: &str,
        name: &str,
        issuer: Option<&str>,
        subject: &str,
        audiences: Option<Vec<String>>,
    ) -> Result<(), AdminError> {
        let issuer = issuer
            .map(str::to_string)
            .or_else(|| self.ctx.kubernetes_issuer.clone())
            .ok_or_else(|| AdminError::Invalid("no issuer given and no Kubernetes issuer configured".into()))?;
        let mut world = self.world();
        let id = world
            .identities
            .iter_mut()
            .find(|i| i.name.eq_ignore_ascii_case(identity) || i.client_id.eq_ignore_ascii_case(identity))
            .ok_or_else(|| AdminError::NotFound(format!("identity {identity}")))?;
        id.federated.retain(|f| f.name != name);
        id.federated.push(FederatedCredential {
            name: name.into(),
            issuer,
            subject: subject.into(),
            audiences: audiences.unwrap_or_else(|| vec![TOKEN_EXCHANGE_AUDIENCE.into()]),
        });
        Ok(())
    }

    /// Removes a federated credential by name.
    pub fn remove_federated_credential(&self, identity: &str, name: &str) -> Result<(), AdminError> {
        let mut world = self.world();
        let id = world
            .identities
            .iter_mut()
            .find(|i| i.name.eq_ignore_ascii_case(identity) || i.client_id.eq_ignore_ascii_case(identity))
            .ok_or_else(|| AdminError::NotFound(format!("identity {identity}")))?;
        let before = id.federated.len();
        id.federated.retain(|f| f.name != name);
        if id.federated.len() == before {
            Err(AdminError::NotFound(format!("federated credential {name}")))
        } else {
            Ok(())
        }
    }

    /// A zone's record sets (zone by name or resource id), rendered as its provider does.
    pub fn list_record_sets(&self, zone: &str) -> Result<Vec<Value>, AdminError> {
        self.world().list_record_sets(zone).ok_or_else(|| AdminError::NotFound(format!("zone {zone}")))
    }

    /// Replaces latency, fault and rate-limit settings (buckets start full).
    pub fn set_faults(&self, config: FaultConfig) {
        self.ctx.faults.set_config(config);
    }

    /// The settings in force.
    pub fn faults(&self) -> FaultConfig {
        self.ctx.faults.config()
    }

    /// Counter rows.
    pub fn calls(&self) -> Vec<CallCount> {
        self.ctx.calls.snapshot()
    }

    /// Zeroes the counter.
    pub fn reset_calls(&self) {
        self.ctx.calls.reset();
    }

    /// Every record-set write from now on, as it is committed, stamped with the moment it
    /// became visible: what benchmarks time against, with no polling of the zones. The feed ends
    /// when the receiver is dropped.
    pub fn watch_record_sets(&self) -> tokio::sync::mpsc::UnboundedReceiver<RecordSetChange> {
        self.ctx.record_set_watchers.subscribe()
    }

    /// Mints an access token for an identity (by client id) and resource, bypassing the token
    /// endpoint; a negative lifetime gives an expired token.
    pub fn issue_token(&self, client_id: &str, resource: &str, lifetime_seconds: i64) -> Result<String, AdminError> {
        let identity = self
            .world()
            .identity_by_client(client_id)
            .cloned()
            .ok_or_else(|| AdminError::NotFound(format!("client {client_id}")))?;
        self.ctx.entra.issue(&identity, resource, lifetime_seconds).map(|(t, _)| t).map_err(AdminError::Invalid)
    }

    /// Moves the token clock forward (see [`crate::entra::Entra::advance_clock`]).
    pub fn advance_clock(&self, seconds: i64) {
        self.ctx.entra.advance_clock(seconds);
    }

    /// `scenario.json`.
    pub fn scenario(&self) -> Value {
        let endpoints = &self.ctx.endpoints;
        self.world().summary(&|v| endpoints.vaults.get(&v.to_ascii_lowercase()).map(|e| e.local_url.clone()))
    }
}

/// Operation name of an admin request.
pub fn operation(req: &Req) -> &'static str {
    let s: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    match s.get(1).copied() {
        Some("scenario") => "Scenario",
        Some("endpoints") => "Endpoints",
        Some("vaults") => "Certificates",
        Some("role-assignments") => "RoleAssignments",
        Some("identities") => "FederatedCredentials",
        Some("zones") => "RecordSets",
        Some("faults") => "Faults",
        Some("calls") => "Calls",
        Some("tokens") => "Tokens",
        Some("clock") => "Clock",
        _ => "Unknown",
    }
}

fn result<T: serde::Serialize>(r: Result<T, AdminError>) -> Resp {
    match r {
        Ok(v) => json_resp(StatusCode::OK, &json!(v)),
        Err(AdminError::NotFound(m)) => azure_error(StatusCode::NOT_FOUND, "NotFound", &m),
        Err(AdminError::Invalid(m)) => azure_error(StatusCode::BAD_REQUEST, "BadRequest", &m),
    }
}

fn body<T: for<'de> Deserialize<'de>>(req: &Req) -> Result<T, AdminError> {
    serde_json::from_slice(&req.body).map_err(|e| AdminError::Invalid(format!("bad JSON body: {e}")))
}

#[derive(Deserialize)]
struct NewAssignment {
    principal: String,
    role: String,
    scope: String,
}

#[derive(Deserialize)]
struct NewFederated {
    name: String,
    #[serde(default)]
    issuer: Option<String>,
    subject: String,
    #[serde(default)]
    audiences: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdvanceClock {
    advance_seconds: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewToken {
    client_id: String,
    resource: String,
    #[serde(default)]
    lifetime_seconds: Option<i64>,
}

/// Serves the admin API.
pub fn handle(ctx: &Arc<Ctx>, req: &Req) -> Resp {
    let admin = Admin::new(ctx.clone());
    let s: Vec<&str> = req.segments.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    match (&req.method, s.as_slice()) {
        (&Method::GET, ["admin", "scenario"]) => result(Ok(admin.scenario())),
        (&Method::GET, ["admin", "endpoints"]) => result(Ok(ctx.endpoints.clone())),
        (&Method::POST, ["admin", "vaults", vault, "certificates", name, "rotate"]) => {
            result(admin.rotate_certificate(vault, name).map(|v| json!({"version": v})))
        }
        (
            &Method::POST,
            ["admin", "vaults", vault, "certificates", name, "versions", version, action @ ("disable" | "enable")],
        ) => result(
            admin
                .set_version_enabled(vault, name, version, *action == "enable")
                .map(|()| json!({"enabled": *action == "enable"})),
        ),
        (&Method::GET, ["admin", "role-assignments"]) => result(Ok(admin.role_assignments())),
        (&Method::POST, ["admin", "role-assignments"]) => {
            result(body::<NewAssignment>(req).and_then(|a| admin.add_role_assignment(&a.principal, &a.role, &a.scope)))
        }
        (&Method::DELETE, ["admin", "role-assignments", id]) => {
            result(admin.remove_role_assignment(id).map(|()| json!({})))
        }
        (&Method::POST, ["admin", "identities", identity, "federated-credentials"]) => result(
            body::<NewFederated>(req)
                .and_then(|f| {
                    admin.add_federated_credential(identity, &f.name, f.issuer.as_deref(), &f.subject, f.audiences)
                })
                .map(|()| json!({})),
        ),
        (&Method::DELETE, ["admin", "identities", identity, "federated-credentials", name]) => {
            result(admin.remove_federated_credential(identity, name).map(|()| json!({})))
        }
        (&Method::GET, ["admin", "zones", zone, "recordsets"]) => {
            result(admin.list_record_sets(zone).map(|v| json!({"value": v})))
        }
        (&Method::GET, ["admin", "faults"]) => result(Ok(admin.faults())),
        (&Method::PUT, ["admin", "faults"]) => result(body::<FaultConfig>(req).map(|c| {
            admin.set_faults(c);
            admin.faults()
        })),
        (&Method::GET, ["admin", "calls"]) => result(Ok(json!({"value": admin.calls()}))),
        (&Method::DELETE, ["admin", "calls"]) => {
            admin.reset_calls();
            result(Ok(json!({})))
        }
        (&Method::POST, ["admin", "clock"]) => result(body::<AdvanceClock>(req).map(|c| {
            admin.advance_clock(c.advance_seconds);
            json!({"now": ctx.entra.now()})
        })),
        (&Method::POST, ["admin", "tokens"]) => result(
            body::<NewToken>(req)
                .and_then(|t| admin.issue_token(&t.client_id, &t.resource, t.lifetime_seconds.unwrap_or(3600)))
                .map(|t| json!({"accessToken": t})),
        ),
        _ => {
            azure_error(StatusCode::NOT_FOUND, "NotFound", &format!("No admin operation {} {}.", req.method, req.path))
        }
    }
}

/// Errors from [`AdminClient`].
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    /// The request did not complete.
    #[error("failed to call the sandbox admin API")]
    Http(#[from] reqwest::Error),
    /// The admin API refused the operation.
    #[error("the sandbox admin API answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// `error.message`.
        message: String,
    },
}

/// A client for the admin HTTP API of a running sandbox: what the `routewarden-sandbox` admin
/// commands use from another process.
#[derive(Debug, Clone)]
pub struct AdminClient {
    base: String,
    http: reqwest::Client,
}

fn segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

impl AdminClient {
    /// A client for `admin_url` (`endpoints.json` `admin`) trusting `ca_pem`.
    pub fn new(admin_url: &str, ca_pem: &str) -> Result<Self, AdminClientError> {
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes())?])
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Self { base: admin_url.trim_end_matches('/').to_string(), http })
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, AdminClientError> {
        let mut request = self.http.request(method, format!("{}/admin/{path}", self.base));
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let message = value.pointer("/error/message").and_then(Value::as_str).unwrap_or(&text).to_string();
            return Err(AdminClientError::Refused { status, message });
        }
        serde_json::from_value(value)
            .map_err(|e| AdminClientError::Refused { status, message: format!("unexpected answer: {e}") })
    }

    /// Adds a certificate version; returns its id.
    pub async fn rotate_certificate(&self, vault: &str, name: &str) -> Result<String, AdminClientError> {
        let v: Value = self
            .call(
                reqwest::Method::POST,
                &format!("vaults/{}/certificates/{}/rotate", segment(vault), segment(name)),
                None,
            )
            .await?;
        Ok(v["version"].as_str().unwrap_or_default().to_string())
    }

    /// Enables or disables a certificate (or secret) version.
    pub async fn set_version_enabled(
        &self,
        vault: &str,
        name: &str,
        version: &str,
        enabled: bool,
    ) -> Result<(), AdminClientError> {
        let action = if enabled { "enable" } else { "disable" };
        let _: Value = self
            .call(
                reqwest::Method::POST,
                &format!(
                    "vaults/{}/certificates/{}/versions/{}/{action}",
                    segment(vault),
                    segment(name),
                    segment(version)
                ),
                None,
            )
            .await?;
        Ok(())
    }

    /// Adds a role assignment.
    pub async fn add_role_assignment(
        &self,
        principal: &str,
        role: &str,
        scope: &str,
    ) -> Result<RoleAssignment, AdminClientError> {
        self.call(
            reqwest::Method::POST,
            "role-assignments",
            Some(json!({"principal": principal, "role": role, "scope": scope})),
        )
        .await
    }

    /// Removes a role assignment by id.
    pub async fn remove_role_assignment(&self, id: &str) -> Result<(), AdminClientError> {
        let _: Value = self.call(reqwest::Method::DELETE, &format!("role-assignments/{}", segment(id)), None).await?;
        Ok(())
    }

    /// Every role assignment.
    pub async fn role_assignments(&self) -> Result<Vec<RoleAssignment>, AdminClientError> {
        self.call(reqwest::Method::GET, "role-assignments", None).await
    }

    /// Adds a federated credential (absent issuer: the Kubernetes issuer).
    pub async fn add_federated_credential(
        &self,
        identity: &str,
        name: &str,
        issuer: Option<&str>,
        subject: &str,
        audiences: Option<Vec<String>>,
    ) -> Result<(), AdminClientError> {
        let body = json!({"name": name, "issuer": issuer, "subject": subject, "audiences": audiences});
        let _: Value = self
            .call(reqwest::Method::POST, &format!("identities/{}/federated-credentials", segment(identity)), Some(body))
            .await?;
        Ok(())
    }

    /// Removes a federated credential.
    pub async fn remove_federated_credential(&self, identity: &str, name: &str) -> Result<(), AdminClientError> {
        let _: Value = self
            .call(
                reqwest::Method::DELETE,
                &format!("identities/{}/federated-credentials/{}", segment(identity), segment(name)),
                None,
            )
            .await?;
        Ok(())
    }

    /// A zone's record sets.
    pub async fn list_record_sets(&self, zone: &str) -> Result<Vec<Value>, AdminClientError> {
        let v: Value = self.call(reqwest::Method::GET, &format!("zones/{}/recordsets", segment(zone)), None).await?;
        Ok(v["value"].as_array().cloned().unwrap_or_default())
    }

    /// Replaces the fault configuration; returns what is in force.
    pub async fn set_faults(&self, config: &FaultConfig) -> Result<FaultConfig, AdminClientError> {
        self.call(reqwest::Method::PUT, "faults", Some(json!(config))).await
    }

    /// The fault configuration in force.
    pub async fn faults(&self) -> Result<FaultConfig, AdminClientError> {
        self.call(reqwest::Method::GET, "faults", None).await
    }

    /// Counter rows.
    pub async fn calls(&self) -> Result<Vec<CallCount>, AdminClientError> {
        let v: Value = self.call(reqwest::Method::GET, "calls", None).await?;
        serde_json::from_value(v["value"].clone())
            .map_err(|e| AdminClientError::Refused { status: 200, message: e.to_string() })
    }

    /// Zeroes the counter.
    pub async fn reset_calls(&self) -> Result<(), AdminClientError> {
        let _: Value = self.call(reqwest::Method::DELETE, "calls", None).await?;
        Ok(())
    }

    /// Moves the token clock forward by `seconds`.
    pub async fn advance_clock(&self, seconds: i64) -> Result<(), AdminClientError> {
        let _: Value = self.call(reqwest::Method::POST, "clock", Some(json!({"advanceSeconds": seconds}))).await?;
        Ok(())
    }

    /// `scenario.json` of the running sandbox.
    pub async fn scenario(&self) -> Result<Value, AdminClientError> {
        self.call(reqwest::Method::GET, "scenario", None).await
    }
}
