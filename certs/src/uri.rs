//! Key Vault certificate URIs: `https://<vault>.<key vault suffix>/certificates/<name>[/<version>]`.
//! Unversioned URIs follow rotation; versioned ones pin. Anything else — a `secrets/` or `keys/`
//! path, a host outside the configured cloud's Key Vault suffix, a malformed vault or object
//! name, a query — is refused with a reason that quotes the value. Bare vault URLs
//! (`https://<vault>.<suffix>`, what an IstioPluginCA names) follow the same host rules.

use std::fmt;

/// A parsed certificate reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertificateUri {
    /// Vault name (the first DNS label).
    pub vault: String,
    /// `https://<vault>.<suffix>` (with the port if one was given), as the Key Vault clients want it.
    pub vault_url: String,
    /// Certificate object name.
    pub name: String,
    /// Pinned version, if the URI names one.
    pub version: Option<String>,
}

impl CertificateUri {
    pub fn is_pinned(&self) -> bool {
        self.version.is_some()
    }
}

impl fmt::Display for CertificateUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/certificates/{}", self.vault_url, self.name)?;
        if let Some(v) = &self.version {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Why a URI was refused. The message quotes the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid Key Vault certificate URI {value:?}: {reason}")]
pub struct UriError {
    pub value: String,
    pub reason: String,
}

fn refuse(value: &str, reason: impl Into<String>) -> UriError {
    UriError { value: value.to_owned(), reason: reason.into() }
}

/// Vault names: 3–24 characters, ASCII letters, digits and hyphens, starting with a letter,
/// ending with a letter or digit, no consecutive hyphens.
fn valid_vault_name(s: &str) -> bool {
    (3..=24).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.contains("--")
}

/// Object names: 1–127 ASCII letters, digits and hyphens.
fn valid_object_name(s: &str) -> bool {
    (1..=127).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// Versions are 32 hexadecimal characters.
fn valid_version(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A vault's address: `https://<vault>.<key vault suffix>[:port]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VaultUrl {
    /// Vault name (the first DNS label).
    pub vault: String,
    /// `https://<vault>.<suffix>` (with the port if one was given), as the Key Vault clients want it.
    pub vault_url: String,
}

/// Splits `value` into its vault (checked against the cloud's `suffix`) and the path after the
/// host — the part shared by certificate URIs and bare vault URLs.
fn parse_vault<'v>(value: &'v str, suffix: &str) -> Result<(VaultUrl, &'v str), UriError> {
    let trimmed = value.trim();
    if trimmed != value {
        return Err(refuse(value, "has leading or trailing white space"));
    }
    let Some(rest) = value.strip_prefix("https://") else {
        return Err(refuse(value, "must start with https://"));
    };
    if rest.contains(['?', '#']) {
        return Err(refuse(value, "must not carry a query or fragment"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(refuse(value, "must not carry user information"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        Some(_) => return Err(refuse(value, "has a malformed port")),
        None => (authority, None),
    };
    let host = host.to_ascii_lowercase();
    let suffix = suffix.trim_start_matches('.').to_ascii_lowercase();
    let Some(vault) = host.strip_suffix(&suffix).and_then(|v| v.strip_suffix('.')) else {
        return Err(refuse(value, format!("host {host:?} is not a Key Vault of this cloud (*.{suffix})")));
    };
    if !valid_vault_name(vault) {
        return Err(refuse(
            value,
            format!("vault name {vault:?} must be 3-24 letters, digits and single hyphens, starting with a letter"),
        ));
    }
    let vault_url = match port {
        Some(p) => format!("https://{host}:{p}"),
        None => format!("https://{host}"),
    };
    Ok((VaultUrl { vault: vault.to_owned(), vault_url }, path))
}

/// Parses a bare vault URL (`https://<vault>.<suffix>`, a trailing slash allowed) with the same
/// rules and cloud suffixes as certificate URIs; a path is refused.
pub fn parse_vault_url(value: &str, suffix: &str) -> Result<VaultUrl, UriError> {
    let (vault, path) = parse_vault(value, suffix)?;
    if !path.is_empty() {
        return Err(refuse(value, "must be the vault's URL alone, without a path"));
    }
    Ok(vault)
}

/// Whether `s` is a valid Key Vault object (secret, certificate) name: 1-127 letters, digits and
/// hyphens.
pub fn is_object_name(s: &str) -> bool {
    valid_object_name(s)
}

/// Parses `value` for a cloud whose Key Vault DNS suffix is `suffix` (e.g. `vault.azure.net`,
/// `vault.azure.cn`, `vault.usgovcloudapi.net`).
pub fn parse_certificate_uri(value: &str, suffix: &str) -> Result<CertificateUri, UriError> {
    let (VaultUrl { vault, vault_url }, path) = parse_vault(value, suffix)?;
    let segments: Vec<&str> = path.strip_suffix('/').unwrap_or(path).split('/').collect();
    let (name, version) = match segments.as_slice() {
        ["certificates", name] => (*name, None),
        ["certificates", name, version] => (*name, Some(*version)),
        [kind @ ("secrets" | "keys"), ..] => {
            return Err(refuse(
                value,
                format!("points at {kind}/, but listener certificates must be referenced as certificates/<name>"),
            ));
        }
        _ => return Err(refuse(value, "path must be /certificates/<name> or /certificates/<name>/<version>")),
    };
    if !valid_object_name(name) {
        return Err(refuse(value, format!("certificate name {name:?} must be 1-127 letters, digits and hyphens")));
    }
    if let Some(v) = version
        && !valid_version(v)
    {
        return Err(refuse(value, format!("version {v:?} must be 32 hexadecimal characters")));
    }
    Ok(CertificateUri { vault, vault_url, name: name.to_owned(), version: version.map(|v| v.to_ascii_lowercase()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_certificate_uris() {
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("seed 000 form", "https://kv-demo.vault.azure.net/certificates/wildcard", "kv-demo", None),
            ("trailing slash", "https://kv-demo.vault.azure.net/certificates/wildcard/", "kv-demo", None),
            (
                "pinned version",
                &format!("https://kv-demo.vault.azure.net/certificates/wildcard/{V}"),
                "kv-demo",
                Some(V),
            ),
            ("upper-case host", "https://KV-Demo.Vault.Azure.Net/certificates/wildcard", "kv-demo", None),
        ];
        for (what, uri, vault, version) in cases {
            let got = parse_certificate_uri(uri, "vault.azure.net").unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got.vault, *vault, "{what}");
            assert_eq!(got.name, "wildcard", "{what}");
            assert_eq!(got.version.as_deref(), *version, "{what}");
            assert_eq!(got.vault_url, "https://kv-demo.vault.azure.net", "{what}");
        }
    }

    #[test]
    fn refuses_anything_else_quoting_the_value() {
        let cases: &[(&str, &str, &str)] = &[
            ("secret path", "https://kv-demo.vault.azure.net/secrets/wildcard", "points at secrets/"),
            ("key path", "https://kvx.vault.azure.net/keys/k", "points at keys/"),
            ("foreign host", "https://kv-demo.example.com/certificates/c", "not a Key Vault of this cloud"),
            ("suffix only", "https://vault.azure.net/certificates/c", "not a Key Vault of this cloud"),
            ("lookalike host", "https://kv-demo.vault.azure.net.evil.com/certificates/c", "not a Key Vault"),
            ("other cloud", "https://kv-demo.vault.azure.cn/certificates/c", "not a Key Vault of this cloud"),
            ("http", "http://kv-demo.vault.azure.net/certificates/c", "must start with https://"),
            ("no name", "https://kv-demo.vault.azure.net/certificates/", "path must be"),
            ("extra segment", &format!("https://kvd.vault.azure.net/certificates/c/{V}/x"), "path must be"),
            ("bad name", "https://kv-demo.vault.azure.net/certificates/wild_card", "certificate name"),
            ("bad version", "https://kv-demo.vault.azure.net/certificates/c/latest", "32 hexadecimal"),
            ("short vault", "https://kv.vault.azure.net/certificates/c", "vault name"),
            ("double hyphen", "https://kv--demo.vault.azure.net/certificates/c", "vault name"),
            ("query", "https://kv-demo.vault.azure.net/certificates/c?api-version=7.4", "query"),
            ("user info", "https://u@kv-demo.vault.azure.net/certificates/c", "user information"),
            ("white space", " https://kv-demo.vault.azure.net/certificates/c", "white space"),
            ("empty", "", "must start with https://"),
        ];
        for (what, uri, reason) in cases {
            let err = parse_certificate_uri(uri, "vault.azure.net").expect_err(what);
            let msg = err.to_string();
            assert!(msg.contains(reason), "{what}: {msg}");
            assert!(msg.contains(&format!("{uri:?}")), "{what}: the message quotes the value: {msg}");
        }
    }

    #[test]
    fn vault_urls_follow_the_same_rules_and_refuse_a_path() {
        let got = parse_vault_url("https://KV-Demo.vault.azure.net/", "vault.azure.net").unwrap();
        assert_eq!((got.vault.as_str(), got.vault_url.as_str()), ("kv-demo", "https://kv-demo.vault.azure.net"));
        for (uri, reason) in [
            ("https://kv-demo.vault.azure.net/secrets/root-cert", "without a path"),
            ("https://kv-demo.example.com", "not a Key Vault of this cloud"),
            ("http://kv-demo.vault.azure.net", "must start with https://"),
            ("https://kv.vault.azure.net", "vault name"),
        ] {
            let msg = parse_vault_url(uri, "vault.azure.net").expect_err(uri).to_string();
            assert!(msg.contains(reason) && msg.contains(&format!("{uri:?}")), "{uri}: {msg}");
        }
    }

    #[test]
    fn honours_the_configured_cloud_and_a_port() {
        let got =
            parse_certificate_uri("https://kv-demo.vault.azure.cn:8443/certificates/c", "vault.azure.cn").unwrap();
        assert_eq!(got.vault_url, "https://kv-demo.vault.azure.cn:8443");
        assert_eq!(got.to_string(), "https://kv-demo.vault.azure.cn:8443/certificates/c");
    }
}
