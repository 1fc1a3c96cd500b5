//! The daemon's settings, resolved and validated once at start from the parsed flags. Every error
//! names the flag it comes from, so a misconfigured Deployment fails at once with a message an
//! operator can act on instead of failing later on the first Azure call.

use crate::cli::AzureArgs;
use routewarden_azure::Cloud;
use routewarden_azure::transport::{TransportConfig, build_client};
use std::path::Path;
use std::time::Duration;

/// A flag whose value cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub message: String,
}

fn bad(flag: &'static str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError { flag, message: message.to_string() }
}

/// Azure as the daemon will reach it.
#[derive(Debug, Clone)]
pub struct AzureSettings {
    pub cloud: Cloud,
    pub default_tenant: Option<String>,
    /// The one HTTP client every Azure call goes through.
    pub http: reqwest::Client,
}

impl AzureSettings {
    pub fn from_args(args: &AzureArgs) -> Result<Self, ConfigError> {
        let AzureArgs { azure_cloud, tenant_id, azure_extra_ca, azure_host_overrides } = args;
        let cloud = match Cloud::named(azure_cloud) {
            Ok(c) => c,
            Err(_) if Path::new(azure_cloud).is_file() => {
                Cloud::from_endpoints_file(Path::new(azure_cloud)).map_err(|e| bad("--azure-cloud", e))?
            }
            Err(e) => return Err(bad("--azure-cloud", format!("{e}; no such endpoints file either"))),
        };
        if let Some(t) = tenant_id
            // The CRDs' check, without their lower-case rule: tenant ids are pasted from anywhere.
            && !crate::crd::convert::is_uuid(&t.to_ascii_lowercase())
        {
            return Err(bad("--tenant-id", format!("{t:?} is not a tenant id (a UUID)")));
        }
        let extra_ca = match azure_extra_ca {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read(path).map_err(|e| bad("--azure-extra-ca", format!("{}: {e}", path.display())))?,
            )),
            None => None,
        };
        let transport = TransportConfig {
            extra_ca,
            overrides: azure_host_overrides.clone(),
            timeout: Some(Duration::from_secs(30)),
        };
        let http = build_client(&transport).map_err(|e| bad("--azure-extra-ca", e))?;
        Ok(AzureSettings { cloud, default_tenant: tenant_id.clone(), http })
    }
}
