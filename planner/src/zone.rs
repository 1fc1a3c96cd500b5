//! Azure DNS zone resource ids:
//! `/subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.Network/(dnszones|privateDnsZones)/<name>`.

use std::fmt;

/// A parsed zone id. Provider segments compare case-insensitively, as ARM does; the id is kept
/// as given for display and as the journal key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Zone {
    pub id: String,
    pub subscription: String,
    pub resource_group: String,
    /// Zone name, lower case, e.g. `contoso.com`.
    pub name: String,
    pub private: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Azure DNS zone resource id {value:?}: {reason}")]
pub struct ZoneIdError {
    pub value: String,
    pub reason: &'static str,
}

impl Zone {
    pub fn parse(id: &str) -> Result<Zone, ZoneIdError> {
        let refuse = |reason| ZoneIdError { value: id.to_owned(), reason };
        let parts: Vec<&str> = id.split('/').collect();
        let [empty, subs, sub, rgs, rg, providers, ns, kind, name] = parts.as_slice() else {
            return Err(refuse(
                "want /subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Network/<dnszones|privateDnsZones>/<zone>",
            ));
        };
        if !empty.is_empty()
            || !subs.eq_ignore_ascii_case("subscriptions")
            || !rgs.eq_ignore_ascii_case("resourceGroups")
            || !providers.eq_ignore_ascii_case("providers")
        {
            return Err(refuse("want /subscriptions/<id>/resourceGroups/<rg>/providers/..."));
        }
        if !ns.eq_ignore_ascii_case("Microsoft.Network") {
            return Err(refuse("provider must be Microsoft.Network"));
        }
        let private = if kind.eq_ignore_ascii_case("dnszones") {
            false
        } else if kind.eq_ignore_ascii_case("privateDnsZones") {
            true
        } else {
            return Err(refuse("resource type must be dnszones or privateDnsZones"));
        };
        if sub.is_empty() || rg.is_empty() {
            return Err(refuse("subscription and resource group must not be empty"));
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() || !name.split('.').all(|l| !l.is_empty() && l.len() <= 63) || name.len() > 253 {
            return Err(refuse("zone name must be a DNS name"));
        }
        Ok(Zone {
            id: id.to_owned(),
            subscription: sub.to_ascii_lowercase(),
            resource_group: rg.to_ascii_lowercase(),
            name,
            private,
        })
    }

    /// The fully qualified name of record set `relative` (`@` is the apex): the inverse of
    /// [`Zone::relative_name`].
    pub fn hostname(&self, relative: &str) -> String {
        if relative == "@" { self.name.clone() } else { format!("{relative}.{}", self.name) }
    }

    /// The record-set name of `host` in this zone (`@` at the apex), if the zone contains it.
    pub fn relative_name(&self, host: &str) -> Option<String> {
        if host == self.name {
            return Some("@".into());
        }
        host.strip_suffix(&self.name).and_then(|p| p.strip_suffix('.')).filter(|p| !p.is_empty()).map(str::to_owned)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_public_and_private_zone_ids() {
        let z = Zone::parse("/subscriptions/S1/resourceGroups/RG/providers/Microsoft.Network/dnszones/Contoso.com")
            .unwrap();
        assert_eq!(
            (z.subscription.as_str(), z.resource_group.as_str(), z.name.as_str(), z.private),
            ("s1", "rg", "contoso.com", false)
        );
        let p = Zone::parse(
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/privatednszones/internal.contoso.com",
        )
        .unwrap();
        assert!(p.private);
        assert_eq!(p.relative_name("a.b.internal.contoso.com").as_deref(), Some("a.b"));
        assert_eq!(p.relative_name("internal.contoso.com").as_deref(), Some("@"));
        assert_eq!(p.relative_name("xinternal.contoso.com"), None);
        for host in ["a.b.internal.contoso.com", "internal.contoso.com"] {
            assert_eq!(p.hostname(&p.relative_name(host).unwrap()), host, "hostname inverts relative_name");
        }
    }

    #[test]
    fn refuses_other_ids() {
        for bad in [
            "",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/dnszones/a.com",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/trafficManagerProfiles/a",
            "subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/a.com",
            "/subscriptions//resourceGroups/rg/providers/Microsoft.Network/dnszones/a.com",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/dnszones/a..com",
        ] {
            let err = Zone::parse(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
    }
}
