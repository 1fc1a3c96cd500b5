//! Azure RBAC: built-in role definitions, role assignments, and the access check.
//!
//! A role is a list of action patterns (control plane, e.g. `Microsoft.Network/dnsZones/*`) and
//! data-action patterns (data plane, e.g. `Microsoft.KeyVault/vaults/secrets/getSecret/action`),
//! copied in spirit from the built-in definitions. [`allowed`] grants a request when some
//! assignment of the caller's principal has a scope that is the resource id or one of its
//! ancestors (case-insensitive, segment-aligned) and a role whose patterns match the action.

use serde::{Deserialize, Serialize};

/// A built-in role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// Display name.
    pub name: &'static str,
    /// Role definition GUID (the real built-in id).
    pub id: &'static str,
    /// Control-plane action patterns.
    pub actions: &'static [&'static str],
    /// Data-plane action patterns.
    pub data_actions: &'static [&'static str],
}

/// The built-in roles the sandbox knows.
pub const ROLES: &[Role] = &[
    Role { name: "Owner", id: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", actions: &["*"], data_actions: &[] },
    Role { name: "Contributor", id: "b24988ac-6180-42a0-ab88-20f7382dd24c", actions: &["*"], data_actions: &[] },
    Role { name: "Reader", id: "acdd72a7-3385-48ef-bd42-f606fba81ae7", actions: &["*/read"], data_actions: &[] },
    Role {
        name: "DNS Zone Contributor",
        id: "befefa01-2a29-4197-83a8-272ff33ce314",
        actions: &[
            "Microsoft.Network/dnsZones/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Insights/alertRules/*",
        ],
        data_actions: &[],
    },
    Role {
        name: "Private DNS Zone Contributor",
        id: "b12aa53e-6015-4669-85d0-8515ebb3ae7f",
        actions: &[
            "Microsoft.Network/privateDnsZones/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Authorization/*/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Insights/alertRules/*",
        ],
        data_actions: &[],
    },
    Role {
        name: "Key Vault Administrator",
        id: "00482a5a-887f-4fb3-b363-3b7fe8e74483",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        data_actions: &["Microsoft.KeyVault/vaults/*"],
    },
    Role {
        name: "Key Vault Reader",
        id: "21090545-7ca7-4776-b22c-e363652d74d2",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        data_actions: &["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"],
    },
    Role {
        name: "Key Vault Secrets User",
        id: "4633458b-17de-408a-b874-0445c86b69e6",
        actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
    Role {
        name: "Key Vault Secrets Officer",
        id: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        data_actions: &["Microsoft.KeyVault/vaults/secrets/*"],
    },
    Role {
        name: "Key Vault Certificate User",
        id: "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba",
        actions: &[],
        data_actions: &[
            "Microsoft.KeyVault/vaults/certificates/read",
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "Microsoft.KeyVault/vaults/keys/read",
        ],
    },
    Role {
        name: "Key Vault Certificates Officer",
        id: "a4417e6f-fecd-4de8-b567-7b0420556985",
        actions: &[
            "Microsoft.Authorization/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
        data_actions: &[
            "Microsoft.KeyVault/vaults/certificatecas/*",
            "Microsoft.KeyVault/vaults/certificates/*",
            "Microsoft.KeyVault/vaults/certificatecontacts/write",
            "Microsoft.KeyVault/vaults/keys/*",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        ],
    },
];

/// Finds a built-in role by display name (case-insensitive) or definition GUID.
pub fn role(name_or_id: &str) -> Option<&'static Role> {
    let wanted = name_or_id.rsplit('/').next().unwrap_or(name_or_id);
    ROLES.iter().find(|r| r.name.eq_ignore_ascii_case(name_or_id) || r.id.eq_ignore_ascii_case(wanted))
}

/// A role assignment in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignment {
    /// Assignment id (a GUID).
    pub id: String,
    /// Principal (object) id.
    pub principal_id: String,
    /// Role display name.
    pub role: String,
    /// Full ARM scope.
    pub scope: String,
}

/// Whether the action is a data action (Key Vault data plane) or a control-plane action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// ARM (`actions`).
    Control,
    /// Data plane (`dataActions`).
    Data,
}

/// Case-insensitive glob where `*` matches any run of characters (slashes included).
pub fn glob(pattern: &str, text: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let t = text.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == t;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !t.starts_with(first) || !t[first.len()..].ends_with(last) || t.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &t[first.len()..t.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Whether `scope` is `resource` or an ancestor of it.
pub fn scope_covers(scope: &str, resource: &str) -> bool {
    let s = scope.trim_end_matches('/').to_ascii_lowercase();
    let r = resource.trim_end_matches('/').to_ascii_lowercase();
    s.is_empty() || r == s || r.starts_with(&format!("{s}/"))
}

/// Whether `principal` may perform `action` on `resource`.
pub fn allowed(
    assignments: &[RoleAssignment],
    principal: &str,
    resource: &str,
    action: &str,
    kind: ActionKind,
) -> bool {
    assignments
        .iter()
        .filter(|a| a.principal_id.eq_ignore_ascii_case(principal) && scope_covers(&a.scope, resource))
        .any(|a| {
            role(&a.role).is_some_and(|r| {
                let patterns = match kind {
                    ActionKind::Control => r.actions,
                    ActionKind::Data => r.data_actions,
                };
                patterns.iter().any(|p| glob(p, action))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.com";

    fn assign(role: &str, scope: &str) -> Vec<RoleAssignment> {
        vec![RoleAssignment { id: "a".into(), principal_id: "p".into(), role: role.into(), scope: scope.into() }]
    }

    #[test]
    fn globs_match_like_azure_action_patterns() {
        assert!(glob("Microsoft.Network/dnsZones/*", "microsoft.network/dnszones/A/write"));
        assert!(glob("*/read", "Microsoft.Network/dnsZones/A/read"));
        assert!(!glob("*/read", "Microsoft.Network/dnsZones/A/write"));
        assert!(glob("*", "anything"));
        assert!(glob("Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/certificates/read"));
        assert!(!glob("Microsoft.Network/privateDnsZones/*", "Microsoft.Network/dnsZones/A/write"));
    }

    #[test]
    fn zone_contributor_on_the_zone_writes_records_but_not_other_zones() {
        let a = assign("DNS Zone Contributor", ZONE);
        assert!(allowed(&a, "p", &format!("{ZONE}/A/www"), "Microsoft.Network/dnsZones/A/write", ActionKind::Control));
        assert!(!allowed(
            &a,
            "p",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/example.org/A/www",
            "Microsoft.Network/dnsZones/A/write",
            ActionKind::Control
        ));
        assert!(!allowed(&a, "other", ZONE, "Microsoft.Network/dnsZones/read", ActionKind::Control));
    }

    #[test]
    fn scopes_cover_descendants_only_at_segment_boundaries() {
        assert!(scope_covers("/subscriptions/s/resourceGroups/rg", "/subscriptions/S/resourcegroups/RG/providers/x"));
        assert!(!scope_covers("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2"));
    }

    #[test]
    fn reader_reads_and_secrets_user_gets_secrets_but_not_certificates() {
        let a = assign("Reader", "/subscriptions/s");
        assert!(allowed(&a, "p", ZONE, "Microsoft.Network/dnsZones/read", ActionKind::Control));
        assert!(!allowed(&a, "p", ZONE, "Microsoft.Network/dnsZones/A/write", ActionKind::Control));
        let v = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv";
        let a = assign("Key Vault Secrets User", v);
        assert!(allowed(
            &a,
            "p",
            &format!("{v}/secrets/x"),
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            ActionKind::Data
        ));
        assert!(!allowed(
            &a,
            "p",
            &format!("{v}/certificates/x"),
            "Microsoft.KeyVault/vaults/certificates/read",
            ActionKind::Data
        ));
        assert!(role("4633458b-17de-408a-b874-0445c86b69e6").is_some());
    }
}
