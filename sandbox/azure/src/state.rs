//! The live world: every tenant, subscription, zone, vault, identity and role assignment.
//!
//! [`World::load`] builds it from a [`Scenario`] (generating certificates on the way) and the
//! services then read and change it under one mutex, so each request sees and leaves a
//! consistent state. Key Vault objects keep every version: a secret is a list of
//! [`SecretVersion`]s, a certificate a list of [`CertVersion`]s whose backing secret versions
//! (`managed: true`) share their version ids. [`World::summary`] renders `scenario.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::certs::{CertAuthority, CertInfo, GenSpec, Material};
use crate::dns::{RecordData, RecordSet, RecordType, Zone, name_key, validate_name};
use crate::http::{new_id, now_unix};
use crate::rbac::{self, RoleAssignment};
use crate::scenario::{self, CertIssuer, DnsLimits, KeyType, Scenario, ScenarioError, ZoneKind};

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Id.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// Display name.
    pub name: String,
}

/// A resource group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceGroup {
    /// Subscription id.
    pub subscription: String,
    /// Name.
    pub name: String,
    /// Location.
    pub location: String,
}

/// A federated identity credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FederatedCredential {
    /// Name.
    pub name: String,
    /// Issuer URL.
    pub issuer: String,
    /// Subject.
    pub subject: String,
    /// Audiences.
    pub audiences: Vec<String>,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Resource name.
    pub name: String,
    /// Tenant id.
    pub tenant: String,
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// Client id.
    pub client_id: String,
    /// Principal (object) id.
    pub principal_id: String,
    /// Federated credentials.
    pub federated: Vec<FederatedCredential>,
}

impl Identity {
    /// ARM resource id.
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}",
            self.subscription, self.resource_group, self.name
        )
    }
}

/// One version of a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretVersion {
    /// 32 hex digits.
    pub version: String,
    /// The value.
    pub value: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Tags.
    pub tags: Map<String, Value>,
    /// Enabled.
    pub enabled: bool,
    /// Created, Unix seconds.
    pub created: i64,
    /// Updated, Unix seconds.
    pub updated: i64,
    /// Not before.
    pub nbf: Option<i64>,
    /// Expires.
    pub exp: Option<i64>,
    /// Backs a certificate.
    pub managed: bool,
}

impl SecretVersion {
    /// A new, enabled, plain (not certificate-backed) version created now.
    pub fn new(value: &str, content_type: Option<String>) -> Self {
        let now = now_unix();
        SecretVersion {
            version: new_id(),
            value: value.to_string(),
            content_type,
            tags: Map::new(),
            enabled: true,
            created: now,
            updated: now,
            nbf: None,
            exp: None,
            managed: false,
        }
    }
}

/// A secret and its versions (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Secret {
    /// Name as created.
    pub name: String,
    /// Versions, oldest first; the last is "latest".
    pub versions: Vec<SecretVersion>,
}

/// A certificate's issuance policy (Key Vault's `policy`, normalised).
#[derive(Debug, Clone, PartialEq)]
pub struct CertPolicy {
    /// What to generate.
    pub spec: GenSpec,
    /// Backing secret content type.
    pub content_type: String,
    /// Whether the key is exportable.
    pub exportable: bool,
    /// `Self`, `Unknown` (imported), or `Sandbox` (the sandbox CA).
    pub issuer: String,
}

impl CertPolicy {
    /// Key Vault's `policy` JSON.
    pub fn to_json(&self, cert_id: &str, created: i64, updated: i64) -> Value {
        let mut key_props = json!({"exportable": self.exportable, "reuse_key": false});
        match self.spec.key_type {
            KeyType::Rsa => {
                key_props["kty"] = json!("RSA");
                key_props["key_size"] = json!(self.spec.key_size);
            }
            KeyType::Ec => {
                key_props["kty"] = json!("EC");
                key_props["crv"] = json!("P-256");
                key_props["key_size"] = json!(256);
            }
        }
        let key_usage = match self.spec.key_type {
            KeyType::Rsa => json!(["digitalSignature", "keyEncipherment"]),
            KeyType::Ec => json!(["digitalSignature"]),
        };
        json!({
            "id": format!("{cert_id}/policy"),
            "key_props": key_props,
            "secret_props": {"contentType": self.content_type},
            "x509_props": {
                "subject": self.spec.subject,
                "sans": {"dns_names": self.spec.dns_names},
                "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
                "key_usage": key_usage,
                "validity_months": self.spec.validity_months,
                "basic_constraints": {"ca": false},
            },
            "lifetime_actions": [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}],
            "issuer": {"name": self.issuer},
            "attributes": {"enabled": true, "created": created, "updated": updated},
        })
    }

    /// Reads a Key Vault policy JSON (from create or import); errors are Key Vault's messages.
    pub fn from_json(policy: &Value) -> Result<Self, String> {
        let key_props = policy.get("key_props").cloned().unwrap_or(Value::Null);
        let kty = key_props.get("kty").and_then(Value::as_str).unwrap_or("RSA").to_ascii_uppercase();
        let key_type = match kty.as_str() {
            "RSA" | "RSA-HSM" => KeyType::Rsa,
            "EC" | "EC-HSM" => KeyType::Ec,
            other => return Err(format!("The key type '{other}' is not supported.")),
        };
        if key_type == KeyType::Ec {
            let crv = key_props.get("crv").and_then(Value::as_str).unwrap_or("P-256");
            if crv != "P-256" {
                return Err(format!("The curve '{crv}' is not supported by the sandbox (P-256 only)."));
            }
        }
        let key_size =
            key_props.get("key_size").and_then(Value::as_u64).map(|s| u32::try_from(s).unwrap_or(0)).unwrap_or(2048);
        if key_type == KeyType::Rsa && ![2048, 3072, 4096].contains(&key_size) {
            return Err(format!("The key size {key_size} is not supported for key type RSA."));
        }
        let x509 = policy.get("x509_props").cloned().unwrap_or(Value::Null);
        let subject = x509.get("subject").and_then(Value::as_str).unwrap_or_default().to_string();
        let dns_names: Vec<String> = x509
            .pointer("/sans/dns_names")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        if subject.is_empty() && dns_names.is_empty() {
            return Err("Property policy.x509_props must have a subject or subject alternative names.".to_string());
        }
        let validity_months =
            x509.get("validity_months").and_then(Value::as_u64).map(|m| u32::try_from(m).unwrap_or(12)).unwrap_or(12);
        if validity_months == 0 || validity_months > 1200 {
            return Err("Property policy.x509_props.validity_months is out of range.".to_string());
        }
        let content_type =
            policy.pointer("/secret_props/contentType").and_then(Value::as_str).unwrap_or(scenario::PKCS12).to_string();
        if content_type != scenario::PKCS12 && content_type != scenario::PEM {
            return Err(format!(
                "The content type '{content_type}' is not supported; use application/x-pkcs12 or application/x-pem-file."
            ));
        }
        let exportable = key_props.get("exportable").and_then(Value::as_bool).unwrap_or(true);
        let issuer = policy.pointer("/issuer/name").and_then(Value::as_str).unwrap_or("Self").to_string();
        Ok(Self {
            spec: GenSpec { subject, dns_names, key_type, key_size, validity_months },
            content_type,
            exportable,
            issuer,
        })
    }
}

/// One version of a certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct CertVersion {
    /// 32 hex digits (shared with the backing secret and key versions).
    pub version: String,
    /// Key and chain.
    pub material: Material,
    /// Enabled.
    pub enabled: bool,
    /// Created.
    pub created: i64,
    /// Updated.
    pub updated: i64,
    /// Not before (from the certificate).
    pub nbf: i64,
    /// Expires (from the certificate).
    pub exp: i64,
    /// Tags.
    pub tags: Map<String, Value>,
}

/// A certificate and its versions (oldest first).
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// Name as created.
    pub name: String,
    /// The policy new versions follow.
    pub policy: CertPolicy,
    /// Policy created/updated times.
    pub policy_times: (i64, i64),
    /// Versions.
    pub versions: Vec<CertVersion>,
}

/// A Key Vault.
#[derive(Debug, Clone, PartialEq)]
pub struct Vault {
    /// Name.
    pub name: String,
    /// Tenant id.
    pub tenant: String,
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// Secrets by lower-case name (certificate-backing ones included).
    pub secrets: BTreeMap<String, Secret>,
    /// Certificates by lower-case name.
    pub certificates: BTreeMap<String, Certificate>,
}

impl Vault {
    /// ARM resource id.
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}",
            self.subscription, self.resource_group, self.name
        )
    }

    /// Adds a version to plain secret `name` (created if new), as `PUT /secrets/{name}` does;
    /// refused for a certificate's backing secret.
    pub fn add_secret_version(&mut self, name: &str, version: SecretVersion) -> Result<&SecretVersion, String> {
        let key = name.to_ascii_lowercase();
        if self.certificates.contains_key(&key) {
            return Err(format!(
                "Secret {name} is managed by a certificate and cannot be set directly; import or create a certificate version instead."
            ));
        }
        let secret = self.secrets.entry(key).or_insert_with(|| Secret { name: name.to_string(), versions: vec![] });
        secret.versions.push(version);
        secret.versions.last().ok_or_else(|| "no version".to_string())
    }

    /// Adds a certificate version made per `policy` (a new certificate if the name is new),
    /// with its managed backing secret version; returns the version id.
    pub fn add_certificate_version(
        &mut self,
        name: &str,
        policy: CertPolicy,
        material: Material,
        tags: Map<String, Value>,
    ) -> Result<String, String> {
        let info = CertInfo::read(material.leaf()).map_err(|e| e.to_string())?;
        let secret_material = if policy.exportable { material.clone() } else { material.without_key() };
        let value = secret_material.secret_value(&policy.content_type).map_err(|e| e.to_string())?;
        let version = new_id();
        let now = now_unix();
        let key = name.to_ascii_lowercase();
        let cert = self.certificates.entry(key.clone()).or_insert_with(|| Certificate {
            name: name.to_string(),
            policy: policy.clone(),
            policy_times: (now, now),
            versions: vec![],
        });
        cert.policy = policy.clone();
        cert.policy_times.1 = now;
        cert.versions.push(CertVersion {
            version: version.clone(),
            material,
            enabled: true,
            created: now,
            updated: now,
            nbf: info.not_before,
            exp: info.not_after,
            tags: tags.clone(),
        });
        let secret = self.secrets.entry(key).or_insert_with(|| Secret { name: name.to_string(), versions: vec![] });
        secret.versions.push(SecretVersion {
            version: version.clone(),
            value,
            content_type: Some(policy.content_type.clone()),
            tags,
            enabled: true,
            created: now,
            updated: now,
            nbf: Some(info.not_before),
            exp: Some(info.not_after),
            managed: true,
        });
        Ok(version)
    }

    /// Generates a new version of a certificate per `policy`.
    pub fn create_certificate(
        &mut self,
        name: &str,
        policy: CertPolicy,
        ca: &CertAuthority,
        tags: Map<String, Value>,
    ) -> Result<String, String> {
        let issuer = match policy.issuer.to_ascii_lowercase().as_str() {
            "self" => None,
            "sandbox" => Some(ca),
            other => return Err(format!("Issuer '{other}' is not supported by the sandbox; use 'Self' or 'Sandbox'.")),
        };
        let material = crate::certs::generate(&policy.spec, issuer).map_err(|e| e.to_string())?;
        self.add_certificate_version(name, policy, material, tags)
    }

    /// Enables or disables one version of a certificate (and its backing secret) or a secret.
    pub fn set_version_enabled(&mut self, name: &str, version: &str, enabled: bool) -> bool {
        let key = name.to_ascii_lowercase();
        let now = now_unix();
        let mut found = false;
        if let Some(c) = self.certificates.get_mut(&key)
            && let Some(v) = c.versions.iter_mut().find(|v| v.version.eq_ignore_ascii_case(version))
        {
            v.enabled = enabled;
            v.updated = now;
            found = true;
        }
        if let Some(s) = self.secrets.get_mut(&key)
            && let Some(v) = s.versions.iter_mut().find(|v| v.version.eq_ignore_ascii_case(version))
        {
            v.enabled = enabled;
            v.updated = now;
            found = true;
        }
        found
    }
}

/// Everything in local Azure.
#[derive(Debug)]
pub struct World {
    /// Tenant ids.
    pub tenants: Vec<String>,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Resource groups.
    pub resource_groups: Vec<ResourceGroup>,
    /// DNS zones.
    pub zones: Vec<Zone>,
    /// Key Vaults.
    pub vaults: Vec<Vault>,
    /// Managed identities.
    pub identities: Vec<Identity>,
    /// Role assignments.
    pub role_assignments: Vec<RoleAssignment>,
    /// Client ids of the identities assigned to the cluster's nodes (served by IMDS).
    pub node_identities: Vec<String>,
    /// DNS limits.
    pub dns_limits: DnsLimits,
}

fn invalid(msg: String) -> ScenarioError {
    ScenarioError::Invalid(msg)
}

impl World {
    /// Builds the world a scenario declares. Federated credentials without an issuer get
    /// `default_issuer` (the sandbox Kubernetes issuer).
    pub fn load(scenario: &Scenario, ca: &CertAuthority, default_issuer: Option<&str>) -> Result<Self, ScenarioError> {
        let mut world = Self {
            tenants: vec![],
            subscriptions: vec![],
            resource_groups: vec![],
            zones: vec![],
            vaults: vec![],
            identities: vec![],
            role_assignments: vec![],
            node_identities: vec![],
            dns_limits: scenario.dns_limits.clone(),
        };
        for tenant in &scenario.tenants {
            world.tenants.push(tenant.id.clone());
            for sub in &tenant.subscriptions {
                world.subscriptions.push(Subscription {
                    id: sub.id.clone(),
                    tenant: tenant.id.clone(),
                    name: sub.name.clone(),
                });
                for rg in &sub.resource_groups {
                    world.resource_groups.push(ResourceGroup {
                        subscription: sub.id.clone(),
                        name: rg.name.clone(),
                        location: rg.location.clone(),
                    });
                    for z in &rg.zones {
                        let mut zone = Zone::new(z.kind, &sub.id, &rg.name, &z.name);
                        for rs in &z.record_sets {
                            let t = RecordType::parse(&rs.record_type).filter(|t| t.writable()).ok_or_else(|| {
                                invalid(format!("zone {}: record type {} is not supported", z.name, rs.record_type))
                            })?;
                            validate_name(&rs.name, &z.name)
                                .map_err(|e| invalid(format!("zone {}: {}", z.name, e.message)))?;
                            let data = match t {
                                RecordType::A => RecordData::A(rs.values.clone()),
                                RecordType::Aaaa => RecordData::Aaaa(rs.values.clone()),
                                RecordType::Cname => RecordData::Cname(rs.values.first().cloned()),
                                _ => RecordData::Txt(rs.values.iter().map(|v| vec![v.clone()]).collect()),
                            };
                            zone.insert(RecordSet {
                                name: rs.name.clone(),
                                ttl: rs.ttl,
                                metadata: None,
                                etag: uuid::Uuid::new_v4().to_string(),
                                data,
                            });
                        }
                        if world.zones.iter().any(|o| {
                            o.kind == z.kind
                                && o.name.eq_ignore_ascii_case(&z.name)
                                && o.subscription == sub.id
                                && o.resource_group.eq_ignore_ascii_case(&rg.name)
                        }) {
                            return Err(invalid(format!("zone {} is declared twice", z.name)));
                        }
                        world.zones.push(zone);
                    }
                    for v in &rg.vaults {
                        if world.vaults.iter().any(|o| o.name.eq_ignore_ascii_case(&v.name)) {
                            return Err(invalid(format!(
                                "vault {} is declared twice (vault names are global)",
                                v.name
                            )));
                        }
                        let mut vault = Vault {
                            name: v.name.clone(),
                            tenant: tenant.id.clone(),
                            subscription: sub.id.clone(),
                            resource_group: rg.name.clone(),
                            secrets: BTreeMap::new(),
                            certificates: BTreeMap::new(),
                        };
                        for c in &v.certificates {
                            let policy = CertPolicy {
                                spec: GenSpec {
                                    subject: c.subject.clone(),
                                    dns_names: c.dns_names.clone(),
                                    key_type: c.key_type,
                                    key_size: c.key_size,
                                    validity_months: c.validity_months,
                                },
                                content_type: c.content_type.clone(),
                                exportable: c.exportable,
                                issuer: match c.issuer {
                                    CertIssuer::Self_ => "Self".into(),
                                    CertIssuer::Ca => "Sandbox".into(),
                                },
                            };
                            vault
                                .create_certificate(&c.name, policy, ca, Map::new())
                                .map_err(|e| invalid(format!("certificate {}: {e}", c.name)))?;
                        }
                        for s in &v.secrets {
                            vault.secrets.insert(
                                s.name.to_ascii_lowercase(),
                                Secret {
                                    name: s.name.clone(),
                                    versions: vec![SecretVersion::new(&s.value, s.content_type.clone())],
                                },
                            );
                        }
                        world.vaults.push(vault);
                    }
                    for i in &rg.identities {
                        let federated = i
                            .federated_credentials
                            .iter()
                            .map(|f| {
                                let issuer = f
                                    .issuer
                                    .clone()
                                    .or_else(|| default_issuer.map(str::to_string))
                                    .ok_or_else(|| {
                                        invalid(format!(
                                            "federated credential {} has no issuer and no Kubernetes issuer was given",
                                            f.name
                                        ))
                                    })?;
                                Ok(FederatedCredential {
                                    name: f.name.clone(),
                                    issuer,
                                    subject: f.subject.clone(),
                                    audiences: f.audiences.clone(),
                                })
                            })
                            .collect::<Result<Vec<_>, ScenarioError>>()?;
                        world.identities.push(Identity {
                            name: i.name.clone(),
                            tenant: tenant.id.clone(),
                            subscription: sub.id.clone(),
                            resource_group: rg.name.clone(),
                            client_id: i.client_id.clone(),
                            principal_id: i.principal_id.clone(),
                            federated,
                        });
                    }
                }
            }
        }
        for ra in &scenario.role_assignments {
            let assignment = world.resolve_assignment(&ra.principal, &ra.role, &ra.scope).map_err(invalid)?;
            world.role_assignments.push(assignment);
        }
        for n in &scenario.node_identities {
            let client_id = world
                .identities
                .iter()
                .find(|i| [&i.name, &i.client_id, &i.principal_id].iter().any(|k| k.eq_ignore_ascii_case(n)))
                .map(|i| i.client_id.clone())
                .ok_or_else(|| invalid(format!("node identity {n:?} names no identity of the scenario")))?;
            world.node_identities.push(client_id);
        }
        Ok(world)
    }

    /// Turns a principal (identity name or id), role (name or id) and scope (id or short form)
    /// into an assignment.
    pub fn resolve_assignment(&self, principal: &str, role: &str, scope: &str) -> Result<RoleAssignment, String> {
        let role = rbac::role(role).ok_or_else(|| format!("unknown role {role:?}"))?;
        let principal_id = self
            .identities
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(principal) || i.principal_id.eq_ignore_ascii_case(principal))
            .map(|i| i.principal_id.clone())
            .unwrap_or_else(|| principal.to_string());
        let scope = self.resolve_scope(scope)?;
        Ok(RoleAssignment { id: uuid::Uuid::new_v4().to_string(), principal_id, role: role.name.to_string(), scope })
    }

    /// Expands a short scope form into an ARM id.
    pub fn resolve_scope(&self, scope: &str) -> Result<String, String> {
        if scope.starts_with('/') {
            return Ok(scope.to_string());
        }
        let (kind, name) =
            scope.split_once('/').ok_or_else(|| format!("scope {scope:?} is neither an ARM id nor KIND/NAME"))?;
        let found = match kind.to_ascii_lowercase().as_str() {
            "zone" => self
                .zones
                .iter()
                .find(|z| z.kind == ZoneKind::Public && z.name.eq_ignore_ascii_case(name))
                .map(Zone::resource_id),
            "privatezone" => self
                .zones
                .iter()
                .find(|z| z.kind == ZoneKind::Private && z.name.eq_ignore_ascii_case(name))
                .map(Zone::resource_id),
            "vault" => self.vaults.iter().find(|v| v.name.eq_ignore_ascii_case(name)).map(Vault::resource_id),
            "resourcegroup" => self
                .resource_groups
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(name))
                .map(|r| format!("/subscriptions/{}/resourceGroups/{}", r.subscription, r.name)),
            "subscription" => self
                .subscriptions
                .iter()
                .find(|s| s.id.eq_ignore_ascii_case(name))
                .map(|s| format!("/subscriptions/{}", s.id)),
            _ => {
                return Err(format!(
                    "scope kind {kind:?} is not one of zone, privateZone, vault, resourceGroup, subscription"
                ));
            }
        };
        found.ok_or_else(|| format!("scope {scope:?} names nothing in the scenario"))
    }

    /// A vault by name.
    pub fn vault(&self, name: &str) -> Option<&Vault> {
        self.vaults.iter().find(|v| v.name.eq_ignore_ascii_case(name))
    }

    /// A vault by name, mutable.
    pub fn vault_mut(&mut self, name: &str) -> Option<&mut Vault> {
        self.vaults.iter_mut().find(|v| v.name.eq_ignore_ascii_case(name))
    }

    /// An identity by client id.
    pub fn identity_by_client(&self, client_id: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.client_id.eq_ignore_ascii_case(client_id))
    }

    /// The identities assigned to the cluster's nodes.
    pub fn node_identities(&self) -> impl Iterator<Item = &Identity> {
        self.identities.iter().filter(|i| self.node_identities.iter().any(|c| c.eq_ignore_ascii_case(&i.client_id)))
    }

    /// A zone by name (any resource group), public first.
    pub fn zone_by_name(&self, name: &str) -> Option<&Zone> {
        let mut zones: Vec<&Zone> = self.zones.iter().filter(|z| z.name.eq_ignore_ascii_case(name)).collect();
        zones.sort_by_key(|z| z.kind);
        zones.first().copied()
    }

    /// `scenario.json`: what a script needs to follow seed 000 against this world.
    /// `vault_url` maps a vault name to its local `https://127.0.0.1:PORT` URL.
    pub fn summary(&self, vault_url: &dyn Fn(&str) -> Option<String>) -> Value {
        let zones: Vec<Value> = self
            .zones
            .iter()
            .map(|z| json!({"name": z.name, "kind": z.kind, "id": z.resource_id(), "subscriptionId": z.subscription, "resourceGroup": z.resource_group}))
            .collect();
        let vaults: Vec<Value> = self
            .vaults
            .iter()
            .map(|v| {
                let url = format!("https://{}.vault.azure.net", v.name);
                let local = vault_url(&v.name);
                let certificates: Vec<Value> = v
                    .certificates
                    .values()
                    .map(|c| {
                        json!({
                            "name": c.name,
                            "uri": format!("{url}/certificates/{}", c.name),
                            "localUri": local.as_ref().map(|l| format!("{l}/certificates/{}", c.name)),
                            "latestVersion": c.versions.last().map(|v| v.version.clone()),
                        })
                    })
                    .collect();
                json!({"name": v.name, "id": v.resource_id(), "tenantId": v.tenant, "url": url, "localUrl": local, "certificates": certificates})
            })
            .collect();
        let identities: Vec<Value> = self
            .identities
            .iter()
            .map(|i| {
                let on_nodes = self.node_identities.iter().any(|c| c.eq_ignore_ascii_case(&i.client_id));
                json!({"name": i.name, "id": i.resource_id(), "tenantId": i.tenant, "clientId": i.client_id, "principalId": i.principal_id, "federatedCredentials": i.federated, "assignedToNodes": on_nodes})
            })
            .collect();
        json!({
            "tenantId": self.tenants.first(),
            "subscriptionId": self.subscriptions.first().map(|s| s.id.clone()),
            "resourceGroup": self.resource_groups.first().map(|r| r.name.clone()),
            "subscriptions": self.subscriptions.iter().map(|s| json!({"id": s.id, "tenantId": s.tenant, "name": s.name})).collect::<Vec<_>>(),
            "zones": zones,
            "vaults": vaults,
            "identities": identities,
            "roleAssignments": self.role_assignments,
        })
    }

    /// Record sets of a zone (by name or resource id), as the public/private API renders them.
    pub fn list_record_sets(&self, zone: &str) -> Option<Vec<Value>> {
        let z = self
            .zones
            .iter()
            .find(|z| z.resource_id().eq_ignore_ascii_case(zone))
            .or_else(|| self.zone_by_name(zone))?;
        Some(z.record_sets.values().map(|s| s.to_json(z)).collect())
    }
}

/// The record-set key helper re-exported for services.
pub fn record_key(name: &str, t: RecordType) -> (String, RecordType) {
    (name_key(name), t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed000_loads_with_its_wildcard_certificate_and_assignments() {
        let (ca, _) = CertAuthority::generate("t").expect("ca");
        let world = World::load(&Scenario::seed000(), &ca, Some("https://127.0.0.1:6443")).expect("loads");
        assert_eq!(world.zones.len(), 2);
        let vault = world.vault("kv-demo").expect("vault");
        let cert = vault.certificates.get("approuting-demo-cert").expect("cert");
        assert_eq!(cert.versions.len(), 1);
        let secret = vault.secrets.get("approuting-demo-cert").expect("backing secret");
        assert!(secret.versions[0].managed);
        assert_eq!(secret.versions[0].version, cert.versions[0].version);
        assert_eq!(world.role_assignments.len(), 4);
        let on_nodes: Vec<&str> = world.node_identities().map(|i| i.principal_id.as_str()).collect();
        assert_eq!(on_nodes, [scenario::seed000::NODE_PRINCIPAL_ID], "only the node identity is on the nodes");
        assert_eq!(world.identities[0].federated[0].issuer, "https://127.0.0.1:6443");
        let summary = world.summary(&|_| None);
        assert_eq!(
            summary["vaults"][0]["certificates"][0]["uri"],
            "https://kv-demo.vault.azure.net/certificates/approuting-demo-cert"
        );
        assert_eq!(
            summary["zones"][0]["id"],
            "/subscriptions/00000000-0000-0000-0000-0000000000f1/resourceGroups/approuting-demo-rg/providers/Microsoft.Network/dnszones/example.com"
        );
        assert_eq!(summary["identities"][0]["clientId"], scenario::seed000::CLIENT_ID);
        assert_eq!(summary["identities"][0]["assignedToNodes"], false);
        assert_eq!(summary["identities"][1]["assignedToNodes"], true);
    }

    #[test]
    fn a_node_identity_must_name_an_identity_of_the_scenario() {
        let (ca, _) = CertAuthority::generate("t").expect("ca");
        let mut scenario = Scenario::seed000();
        scenario.node_identities.push("no-such-identity".into());
        let err = World::load(&scenario, &ca, Some("https://127.0.0.1:6443")).expect_err("refused");
        assert!(err.to_string().contains("no-such-identity"), "{err}");
    }

    #[test]
    fn a_federated_credential_without_issuer_needs_the_kubernetes_issuer() {
        let (ca, _) = CertAuthority::generate("t").expect("ca");
        assert!(World::load(&Scenario::seed000(), &ca, None).is_err());
    }

    #[test]
    fn unknown_roles_and_scopes_are_scenario_errors() {
        let (ca, _) = CertAuthority::generate("t").expect("ca");
        let mut s = Scenario::seed000();
        s.role_assignments[0].role = "Galaxy Admin".into();
        assert!(World::load(&s, &ca, Some("https://i")).is_err());
        let mut s = Scenario::seed000();
        s.role_assignments[0].scope = "zone/nope.com".into();
        assert!(World::load(&s, &ca, Some("https://i")).is_err());
    }
}
