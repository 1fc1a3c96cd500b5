//! Azure clouds: the endpoints and token audiences routewarden needs, for the three public clouds
//! by name, or read from a custom endpoints file in the format of ARM's `/metadata/endpoints`
//! (what `az cloud register --cloud-config` and Azure Stack hand out).

use serde::Deserialize;
use std::path::Path;

/// Where Azure is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    /// The Secrets Store CSI provider's `cloudName` (e.g. `AzurePublicCloud`), also our label.
    pub name: String,
    /// Entra authority host, e.g. `https://login.microsoftonline.com`.
    pub authority_host: String,
    /// Azure Resource Manager endpoint, e.g. `https://management.azure.com`.
    pub resource_manager: String,
    /// Audience of ARM tokens (the scope is `<audience>/.default`).
    pub resource_manager_audience: String,
    /// Key Vault DNS suffix, e.g. `vault.azure.net`.
    pub key_vault_suffix: String,
    /// Audience of Key Vault tokens, e.g. `https://vault.azure.net`.
    pub key_vault_audience: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error(
        "unknown Azure cloud {0:?} (want AzurePublicCloud, AzureChinaCloud, AzureUSGovernmentCloud, or a custom endpoints file)"
    )]
    Unknown(String),
    #[error("failed to read the custom cloud endpoints file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("custom cloud endpoints {path}: {field}: {detail}")]
    Field { path: String, field: &'static str, detail: String },
}

fn trim_slash(s: &str) -> String {
    s.trim_end_matches('/').to_owned()
}

impl Cloud {
    pub fn public() -> Self {
        Cloud {
            name: "AzurePublicCloud".into(),
            authority_host: "https://login.microsoftonline.com".into(),
            resource_manager: "https://management.azure.com".into(),
            resource_manager_audience: "https://management.azure.com".into(),
            key_vault_suffix: "vault.azure.net".into(),
            key_vault_audience: "https://vault.azure.net".into(),
        }
    }

    pub fn china() -> Self {
        Cloud {
            name: "AzureChinaCloud".into(),
            authority_host: "https://login.chinacloudapi.cn".into(),
            resource_manager: "https://management.chinacloudapi.cn".into(),
            resource_manager_audience: "https://management.chinacloudapi.cn".into(),
            key_vault_suffix: "vault.azure.cn".into(),
            key_vault_audience: "https://vault.azure.cn".into(),
        }
    }

    pub fn us_government() -> Self {
        Cloud {
            name: "AzureUSGovernmentCloud".into(),
            authority_host: "https://login.microsoftonline.us".into(),
            resource_manager: "https://management.usgovcloudapi.net".into(),
            resource_manager_audience: "https://management.usgovcloudapi.net".into(),
            key_vault_suffix: "vault.usgovcloudapi.net".into(),
            key_vault_audience: "https://vault.usgovcloudapi.net".into(),
        }
    }

    /// A cloud by name, accepting the CSI provider's and the Azure CLI's spellings.
    pub fn named(name: &str) -> Result<Self, CloudError> {
        match name.trim().to_ascii_lowercase().as_str() {
            "azurepubliccloud" | "azurecloud" | "public" => Ok(Cloud::public()),
            "azurechinacloud" | "china" => Ok(Cloud::china()),
            "azureusgovernmentcloud" | "azureusgovernment" | "usgovernment" | "usgov" => Ok(Cloud::us_government()),
            _ => Err(CloudError::Unknown(name.to_owned())),
        }
    }

    /// Reads an ARM `/metadata/endpoints` document (api-version 2022-09-01 shape).
    pub fn from_endpoints_file(path: &Path) -> Result<Self, CloudError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| CloudError::Read { path: shown.clone(), detail: e.to_string() })?;
        Cloud::from_endpoints_json(&text, &shown)
    }

    pub fn from_endpoints_json(text: &str, origin: &str) -> Result<Self, CloudError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Authentication {
            login_endpoint: Option<String>,
            #[serde(default)]
            audiences: Vec<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Suffixes {
            key_vault_dns: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Endpoints {
            name: Option<String>,
            authentication: Option<Authentication>,
            resource_manager: Option<String>,
            suffixes: Option<Suffixes>,
        }
        let field = |field, detail: String| CloudError::Field { path: origin.to_owned(), field, detail };
        let e: Endpoints = serde_json::from_str(text).map_err(|e| field("(document)", e.to_string()))?;
        let https = |name: &'static str, v: Option<String>| -> Result<String, CloudError> {
            let v = v.ok_or_else(|| field(name, "missing".into()))?;
            if !v.starts_with("https://") {
                return Err(field(name, format!("{v:?} must be an https:// URL")));
            }
            Ok(trim_slash(&v))
        };
        let auth = e.authentication.ok_or_else(|| field("authentication", "missing".into()))?;
        let authority_host = https("authentication.loginEndpoint", auth.login_endpoint)?;
        let resource_manager = https("resourceManager", e.resource_manager)?;
        // ARM lists its audiences; the management host itself is the one tokens are minted for.
        let resource_manager_audience = auth
            .audiences
            .iter()
            .map(|a| trim_slash(a))
            .find(|a| *a == resource_manager)
            .or_else(|| auth.audiences.first().map(|a| trim_slash(a)))
            .unwrap_or_else(|| resource_manager.clone());
        let key_vault_suffix = e
            .suffixes
            .and_then(|s| s.key_vault_dns)
            .map(|s| s.trim_start_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| field("suffixes.keyVaultDns", "missing".into()))?;
        Ok(Cloud {
            name: e.name.unwrap_or_else(|| "AzureCustomCloud".into()),
            authority_host,
            resource_manager,
            resource_manager_audience,
            key_vault_audience: format!("https://{key_vault_suffix}"),
            key_vault_suffix,
        })
    }

    /// The OAuth scope for ARM.
    pub fn resource_manager_scope(&self) -> String {
        format!("{}/.default", self.resource_manager_audience)
    }

    /// The OAuth scope for Key Vault.
    pub fn key_vault_scope(&self) -> String {
        format!("{}/.default", self.key_vault_audience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_three_public_clouds() {
        assert_eq!(Cloud::named("AzurePublicCloud").unwrap(), Cloud::public());
        assert_eq!(Cloud::named("azurecloud").unwrap(), Cloud::public());
        assert_eq!(Cloud::named("AzureChinaCloud").unwrap().key_vault_suffix, "vault.azure.cn");
        assert_eq!(Cloud::named("AzureUSGovernment").unwrap().authority_host, "https://login.microsoftonline.us");
        let err = Cloud::named("AzureGermanCloud").unwrap_err().to_string();
        assert!(err.contains("\"AzureGermanCloud\""), "{err}");
        assert_eq!(Cloud::public().key_vault_scope(), "https://vault.azure.net/.default");
        assert_eq!(Cloud::public().resource_manager_scope(), "https://management.azure.com/.default");
    }

    #[test]
    fn reads_arm_metadata_endpoints() {
        let doc = r#"{
            "name": "AzureStackLab",
            "resourceManager": "https://management.local.azurestack.external/",
            "authentication": {
                "loginEndpoint": "https://login.local.azurestack.external/",
                "audiences": ["https://management.adfs.azurestack.local/", "https://management.local.azurestack.external/"]
            },
            "suffixes": {"keyVaultDns": ".vault.local.azurestack.external", "storage": "local.azurestack.external"}
        }"#;
        let c = Cloud::from_endpoints_json(doc, "stack.json").unwrap();
        assert_eq!(c.name, "AzureStackLab");
        assert_eq!(c.authority_host, "https://login.local.azurestack.external");
        assert_eq!(c.resource_manager_audience, "https://management.local.azurestack.external");
        assert_eq!(c.key_vault_suffix, "vault.local.azurestack.external");
        assert_eq!(c.key_vault_audience, "https://vault.local.azurestack.external");
    }

    #[test]
    fn a_bad_endpoints_file_names_the_field() {
        let cases = [
            ("{}", "authentication"),
            (
                r#"{"authentication": {}, "resourceManager": "https://m", "suffixes": {"keyVaultDns": "v"}}"#,
                "authentication.loginEndpoint",
            ),
            (
                r#"{"authentication": {"loginEndpoint": "http://login"}, "resourceManager": "https://m", "suffixes": {"keyVaultDns": "v"}}"#,
                "must be an https:// URL",
            ),
            (
                r#"{"authentication": {"loginEndpoint": "https://l"}, "resourceManager": "https://m"}"#,
                "suffixes.keyVaultDns",
            ),
            ("not json", "(document)"),
        ];
        for (doc, want) in cases {
            let err = Cloud::from_endpoints_json(doc, "c.json").unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("c.json"), "{doc}: {err}");
        }
    }
}
