//! The sandbox scenario: what exists in local Azure when it starts.
//!
//! A scenario is a YAML (or JSON) document read with serde into [`Scenario`]: tenants, their
//! subscriptions and resource groups, and in each resource group the DNS zones (public or
//! private), Key Vaults (with certificates generated at load and plain secrets) and user-assigned
//! managed identities (with their federated credentials); role assignments sit at tenant level and
//! name their scope either as a full ARM resource id or with a short form (`zone/example.com`,
//! `privateZone/…`, `vault/kv-demo`, `resourceGroup/rg`, `subscription/<id>`). `nodeIdentities`
//! names the identities assigned to the cluster's nodes, whose tokens the instance metadata
//! service ([`crate::imds`]) issues — a workload identity's role assignments work the same way
//! for them.
//! [`Scenario::seed000`] is the built-in default that mirrors seed 000. [`crate::state`] turns a
//! scenario into live objects; the loaded world is summarised back as `scenario.json`.

use serde::{Deserialize, Serialize};

use crate::faults::FaultConfig;

/// The audience every federated credential uses unless told otherwise.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A whole scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Tenants (directories).
    pub tenants: Vec<TenantSpec>,
    /// Role assignments, across all tenants.
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignmentSpec>,
    /// User-assigned identities (by name, client id or principal id) assigned to the cluster's
    /// nodes: the instance metadata service issues tokens for these and no others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_identities: Vec<String>,
    /// Azure DNS service limits (defaults: the documented ones).
    #[serde(default)]
    pub dns_limits: DnsLimits,
    /// Latency, rate limits and faults in force from the start.
    #[serde(default)]
    pub faults: FaultConfig,
}

/// A tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    /// Tenant id (a GUID).
    pub id: String,
    /// Subscriptions in this tenant.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionSpec>,
}

/// A subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// Subscription id (a GUID).
    pub id: String,
    /// Display name.
    #[serde(default = "default_subscription_name")]
    pub name: String,
    /// Resource groups.
    #[serde(default)]
    pub resource_groups: Vec<ResourceGroupSpec>,
}

fn default_subscription_name() -> String {
    "sandbox".to_string()
}

/// A resource group and what is in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceGroupSpec {
    /// Name.
    pub name: String,
    /// Location (informational).
    #[serde(default = "default_location")]
    pub location: String,
    /// DNS zones.
    #[serde(default)]
    pub zones: Vec<ZoneSpec>,
    /// Key Vaults.
    #[serde(default)]
    pub vaults: Vec<VaultSpec>,
    /// User-assigned managed identities.
    #[serde(default)]
    pub identities: Vec<IdentitySpec>,
}

fn default_location() -> String {
    "eastus".to_string()
}

/// Public or private DNS zone.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub enum ZoneKind {
    /// `Microsoft.Network/dnsZones`.
    Public,
    /// `Microsoft.Network/privateDnsZones`.
    Private,
}

/// A DNS zone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneSpec {
    /// Zone name, e.g. `example.com`.
    pub name: String,
    /// Public or private.
    #[serde(default = "default_zone_kind")]
    pub kind: ZoneKind,
    /// Record sets present at start (besides SOA and NS).
    #[serde(default)]
    pub record_sets: Vec<RecordSetSpec>,
}

fn default_zone_kind() -> ZoneKind {
    ZoneKind::Public
}

/// A record set present at start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordSetSpec {
    /// Relative name (`@` for the apex).
    pub name: String,
    /// `A`, `AAAA`, `CNAME` or `TXT`.
    #[serde(rename = "type")]
    pub record_type: String,
    /// TTL in seconds.
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    /// Values: addresses, the CNAME target, or TXT strings (one record each).
    pub values: Vec<String>,
}

fn default_ttl() -> i64 {
    300
}

/// A Key Vault.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultSpec {
    /// Vault name (`<name>.vault.azure.net`).
    pub name: String,
    /// Certificates generated at load.
    #[serde(default)]
    pub certificates: Vec<CertificateSpec>,
    /// Plain secrets.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
}

/// Key algorithm of a generated certificate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum KeyType {
    /// RSA (2048, 3072 or 4096 bits).
    #[serde(rename = "RSA")]
    Rsa,
    /// ECDSA P-256.
    #[serde(rename = "EC")]
    Ec,
}

/// Who signs a generated certificate.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum CertIssuer {
    /// Self-signed (Key Vault's `Self` issuer).
    #[serde(rename = "Self")]
    Self_,
    /// Issued by the sandbox CA (the chain then holds the CA too).
    #[serde(rename = "CA")]
    Ca,
}

impl CertIssuer {
    fn default_self() -> Self {
        Self::Self_
    }
}

/// A certificate generated when the scenario loads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSpec {
    /// Certificate name in the vault.
    pub name: String,
    /// Subject, e.g. `CN=*.example.com`.
    pub subject: String,
    /// DNS SANs.
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// Key type.
    #[serde(default = "default_key_type")]
    pub key_type: KeyType,
    /// RSA key size.
    #[serde(default = "default_key_size")]
    pub key_size: u32,
    /// Validity in months.
    #[serde(default = "default_validity")]
    pub validity_months: u32,
    /// `application/x-pkcs12` or `application/x-pem-file`.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Self-signed or issued by the sandbox CA.
    #[serde(default = "CertIssuer::default_self")]
    pub issuer: CertIssuer,
    /// Whether the private key may leave the vault (in the backing secret).
    #[serde(default = "default_true")]
    pub exportable: bool,
}

fn default_key_type() -> KeyType {
    KeyType::Rsa
}
fn default_key_size() -> u32 {
    2048
}
fn default_validity() -> u32 {
    12
}
/// The PKCS#12 content type.
pub const PKCS12: &str = "application/x-pkcs12";
/// The PEM content type.
pub const PEM: &str = "application/x-pem-file";
fn default_content_type() -> String {
    PKCS12.to_string()
}
fn default_true() -> bool {
    true
}

/// A plain secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretSpec {
    /// Secret name.
    pub name: String,
    /// Value.
    pub value: String,
    /// Content type.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// A user-assigned managed identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentitySpec {
    /// Resource name.
    pub name: String,
    /// Client (application) id: what workloads put in `azure.workload.identity/client-id`.
    pub client_id: String,
    /// Principal (object) id: what role assignments name.
    pub principal_id: String,
    /// Federated identity credentials.
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredentialSpec>,
}

/// A federated identity credential.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialSpec {
    /// Credential name.
    pub name: String,
    /// Issuer URL; absent means the sandbox Kubernetes issuer.
    #[serde(default)]
    pub issuer: Option<String>,
    /// `system:serviceaccount:NS:NAME`.
    pub subject: String,
    /// Audiences (default `api://AzureADTokenExchange`).
    #[serde(default = "default_audiences")]
    pub audiences: Vec<String>,
}

fn default_audiences() -> Vec<String> {
    vec![TOKEN_EXCHANGE_AUDIENCE.to_string()]
}

/// A role assignment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentSpec {
    /// Principal: an identity's name or a principal id.
    pub principal: String,
    /// Built-in role name (e.g. `DNS Zone Contributor`) or its role definition GUID.
    pub role: String,
    /// Scope: an ARM resource id, or `zone/NAME`, `privateZone/NAME`, `vault/NAME`,
    /// `resourceGroup/NAME`, `subscription/ID`.
    pub scope: String,
}

/// Azure DNS limits (documented defaults; lower them in tests).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsLimits {
    /// Record sets per public zone (SOA and NS count).
    #[serde(default = "default_public_record_sets")]
    pub public_record_sets_per_zone: usize,
    /// Record sets per private zone (SOA counts).
    #[serde(default = "default_private_record_sets")]
    pub private_record_sets_per_zone: usize,
    /// Records per record set.
    #[serde(default = "default_records_per_set")]
    pub records_per_record_set: usize,
}

fn default_public_record_sets() -> usize {
    10_000
}
fn default_private_record_sets() -> usize {
    25_000
}
fn default_records_per_set() -> usize {
    20
}

impl Default for DnsLimits {
    fn default() -> Self {
        Self {
            public_record_sets_per_zone: default_public_record_sets(),
            private_record_sets_per_zone: default_private_record_sets(),
            records_per_record_set: default_records_per_set(),
        }
    }
}

/// Errors reading a scenario.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The YAML did not parse into a scenario.
    #[error("failed to parse the scenario")]
    Parse(#[from] serde_yaml_ng::Error),
    /// The scenario parsed but is inconsistent.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

/// Seed 000's fixed ids and names, shared with the Kubernetes side's seed data.
pub mod seed000 {
    /// Tenant id.
    pub const TENANT: &str = "00000000-0000-0000-0000-0000000000f0";
    /// Subscription id.
    pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000000f1";
    /// Resource group.
    pub const RESOURCE_GROUP: &str = "approuting-demo-rg";
    /// Public zone.
    pub const ZONE: &str = "example.com";
    /// Private zone.
    pub const PRIVATE_ZONE: &str = "internal.example.com";
    /// Key Vault.
    pub const VAULT: &str = "kv-demo";
    /// The wildcard certificate.
    pub const CERTIFICATE: &str = "approuting-demo-cert";
    /// Managed identity name.
    pub const IDENTITY: &str = "approuting-demo-identity";
    /// Its client id (the ServiceAccounts' `azure.workload.identity/client-id`).
    pub const CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000aa";
    /// Its principal id.
    pub const PRINCIPAL_ID: &str = "00000000-0000-0000-0000-0000000000ab";
    /// The ServiceAccount name in app-a and app-b.
    pub const SERVICE_ACCOUNT: &str = "approuting-demo-sa";
    /// The managed identity assigned to the cluster's nodes (no federated credentials): tokens
    /// only from the instance metadata service. DNS Zone Contributor on the public zone.
    pub const NODE_IDENTITY: &str = "approuting-node-identity";
    /// Its client id (what `identity: {type: managedIdentity, clientID: …}` names).
    pub const NODE_CLIENT_ID: &str = "00000000-0000-0000-0000-0000000000ba";
    /// Its principal id.
    pub const NODE_PRINCIPAL_ID: &str = "00000000-0000-0000-0000-0000000000bb";
}

impl Scenario {
    /// Parses a YAML (or JSON) scenario.
    pub fn from_yaml(text: &str) -> Result<Self, ScenarioError> {
        Ok(serde_yaml_ng::from_str(text)?)
    }

    /// The default scenario, mirroring seed 000: zone `example.com` (public) and
    /// `internal.example.com` (private) in `approuting-demo-rg`, vault `kv-demo` with the
    /// self-signed wildcard certificate `approuting-demo-cert` (`*.example.com`, `example.com`),
    /// identity `approuting-demo-identity` with DNS Zone Contributor on the public zone, Private
    /// DNS Zone Contributor on the private zone and Key Vault Secrets User on the vault, and
    /// federated credentials for `approuting-demo-sa` in `app-a` and `app-b` (issuer: the sandbox
    /// Kubernetes issuer); and identity `approuting-node-identity`, assigned to the nodes (tokens
    /// from the instance metadata service), with DNS Zone Contributor on the public zone.
    pub fn seed000() -> Self {
        use seed000::*;
        let fic = |ns: &str| FederatedCredentialSpec {
            name: format!("approuting-demo-fic-{ns}"),
            issuer: None,
            subject: format!("system:serviceaccount:{ns}:{SERVICE_ACCOUNT}"),
            audiences: default_audiences(),
        };
        Self {
            tenants: vec![TenantSpec {
                id: TENANT.into(),
                subscriptions: vec![SubscriptionSpec {
                    id: SUBSCRIPTION.into(),
                    name: "routewarden-sandbox".into(),
                    resource_groups: vec![ResourceGroupSpec {
                        name: RESOURCE_GROUP.into(),
                        location: default_location(),
                        zones: vec![
                            ZoneSpec { name: ZONE.into(), kind: ZoneKind::Public, record_sets: vec![] },
                            ZoneSpec { name: PRIVATE_ZONE.into(), kind: ZoneKind::Private, record_sets: vec![] },
                        ],
                        vaults: vec![VaultSpec {
                            name: VAULT.into(),
                            certificates: vec![CertificateSpec {
                                name: CERTIFICATE.into(),
                                subject: format!("CN=*.{ZONE}"),
                                dns_names: vec![format!("*.{ZONE}"), ZONE.into()],
                                key_type: KeyType::Rsa,
                                key_size: 2048,
                                validity_months: 12,
                                content_type: PKCS12.into(),
                                issuer: CertIssuer::Self_,
                                exportable: true,
                            }],
                            secrets: vec![],
                        }],
                        identities: vec![
                            IdentitySpec {
                                name: IDENTITY.into(),
                                client_id: CLIENT_ID.into(),
                                principal_id: PRINCIPAL_ID.into(),
                                federated_credentials: vec![fic("app-a"), fic("app-b")],
                            },
                            IdentitySpec {
                                name: NODE_IDENTITY.into(),
                                client_id: NODE_CLIENT_ID.into(),
                                principal_id: NODE_PRINCIPAL_ID.into(),
                                federated_credentials: vec![],
                            },
                        ],
                    }],
                }],
            }],
            role_assignments: vec![
                RoleAssignmentSpec {
                    principal: IDENTITY.into(),
                    role: "DNS Zone Contributor".into(),
                    scope: format!("zone/{ZONE}"),
                },
                RoleAssignmentSpec {
                    principal: IDENTITY.into(),
                    role: "Private DNS Zone Contributor".into(),
                    scope: format!("privateZone/{PRIVATE_ZONE}"),
                },
                RoleAssignmentSpec {
                    principal: IDENTITY.into(),
                    role: "Key Vault Secrets User".into(),
                    scope: format!("vault/{VAULT}"),
                },
                RoleAssignmentSpec {
                    principal: NODE_IDENTITY.into(),
                    role: "DNS Zone Contributor".into(),
                    scope: format!("zone/{ZONE}"),
                },
            ],
            node_identities: vec![NODE_IDENTITY.into()],
            dns_limits: DnsLimits::default(),
            faults: FaultConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed000_round_trips_through_yaml() {
        let seed = Scenario::seed000();
        let yaml = serde_yaml_ng::to_string(&seed).expect("serialises");
        let back = Scenario::from_yaml(&yaml).expect("parses");
        assert_eq!(back, seed);
    }

    #[test]
    fn a_minimal_yaml_scenario_takes_defaults() {
        let yaml = r#"
tenants:
- id: t1
  subscriptions:
  - id: s1
    resourceGroups:
    - name: rg
      zones:
      - name: example.org
      - name: corp.internal
        kind: private
      vaults:
      - name: v1
        certificates:
        - name: c1
          subject: CN=example.org
          keyType: EC
          contentType: application/x-pem-file
      identities:
      - name: id1
        clientId: c
        principalId: p
        federatedCredentials:
        - name: f
          subject: system:serviceaccount:ns:sa
roleAssignments:
- principal: id1
  role: Reader
  scope: resourceGroup/rg
"#;
        let s = Scenario::from_yaml(yaml).expect("parses");
        let rg = &s.tenants[0].subscriptions[0].resource_groups[0];
        assert_eq!(rg.zones[0].kind, ZoneKind::Public);
        assert_eq!(rg.zones[1].kind, ZoneKind::Private);
        assert_eq!(rg.vaults[0].certificates[0].key_type, KeyType::Ec);
        assert_eq!(rg.identities[0].federated_credentials[0].audiences, vec![TOKEN_EXCHANGE_AUDIENCE]);
        assert_eq!(s.dns_limits.records_per_record_set, 20);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(Scenario::from_yaml("tenants: []\nbogus: 1\n").is_err());
    }
}
