//! The daemon's settings, resolved and validated once at start from the parsed flags. Every error
//! names the flag it comes from, so a misconfigured Deployment fails at once with a message an
//! operator can act on instead of failing later on the first Azure call.

use crate::cli::AzureArgs;
use routewarden_azure::transport::{TransportConfig, build_client, build_imds_client};
use routewarden_azure::{Cloud, ImdsEndpoint};
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
    /// Where managed-identity tokens come from, and the client that reaches it.
    pub managed_identity: ImdsEndpoint,
}

impl AzureSettings {
    pub fn from_args(args: &AzureArgs) -> Result<Self, ConfigError> {
        let AzureArgs { azure_cloud, tenant_id, azure_extra_ca, azure_host_overrides, managed_identity_endpoint } =
            args;
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
        let url = imds_url(managed_identity_endpoint).map_err(|e| bad("--managed-identity-endpoint", e))?;
        let imds_http = build_imds_client(&transport).map_err(|e| bad("--azure-extra-ca", e))?;
        Ok(AzureSettings {
            cloud,
            default_tenant: tenant_id.clone(),
            http,
            managed_identity: ImdsEndpoint::new(url, imds_http),
        })
    }
}

/// The token endpoint: an absolute http(s) URL with a host; its own query (none, normally) is
/// kept and the token request's parameters are added to it.
fn imds_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} is not an http(s) URL with a host"));
    }
    Ok(url)
}

/// A Kubernetes client: from `kubeconfig` when given, else the in-cluster configuration, else
/// $KUBECONFIG or ~/.kube/config.
pub async fn kube_client(kubeconfig: Option<&Path>) -> Result<kube::Client, ConfigError> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| bad("--kubeconfig", e))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| bad("--kubeconfig", e))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            bad(
                "--kubeconfig",
                format!(
                    "no in-cluster configuration and no usable kubeconfig ({e}); pass --kubeconfig or --no-kubernetes"
                ),
            )
        })?,
    };
    kube::Client::try_from(config).map_err(|e| bad("--kubeconfig", e))
}

/// The TLS controller's settings from the flags and the Azure cloud.
pub fn tls_settings(args: &crate::cli::TlsArgs, azure: &AzureSettings) -> crate::tls::TlsSettings {
    use crate::cli::{HostnamePolicyArg, KeyFormatArg};
    crate::tls::TlsSettings {
        gateway_classes: args.gateway_classes.clone(),
        poll_interval: args.certificate_poll_interval,
        hostname_policy: match args.hostname_policy {
            HostnamePolicyArg::Refuse => routewarden_certs::HostnamePolicy::Refuse,
            HostnamePolicyArg::Warn => routewarden_certs::HostnamePolicy::Warn,
        },
        include_root: args.tls_include_root,
        key_format: match args.tls_key_format {
            KeyFormatArg::Pkcs8 => routewarden_certs::KeyFormat::Pkcs8,
            KeyFormatArg::Traditional => routewarden_certs::KeyFormat::Traditional,
        },
        workers: usize::from(args.workers),
        key_vault_suffix: azure.cloud.key_vault_suffix.clone(),
        cloud_name: (azure.cloud != routewarden_azure::Cloud::public()).then(|| azure.cloud.name.clone()),
        default_tenant: azure.default_tenant.clone(),
        min_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(300),
    }
}

/// The DNS controller's settings. It shares the managed GatewayClasses and the worker count with
/// the TLS controller.
pub fn dns_settings(
    tls: &crate::cli::TlsArgs,
    dns: &crate::cli::DnsArgs,
    azure: &AzureSettings,
) -> crate::dns::DnsSettings {
    let crate::cli::DnsArgs {
        dns_policy,
        dns_verify_interval,
        dns_adopt_txt_owner_id,
        arm_read_limit,
        arm_write_limit,
        arm_delete_limit,
        public_zone_write_limit,
        public_zone_list_limit,
        private_zone_write_limit,
        private_zone_list_limit,
    } = dns.clone();
    crate::dns::DnsSettings {
        gateway_classes: tls.gateway_classes.clone(),
        default_tenant: azure.default_tenant.clone(),
        workers: usize::from(tls.workers),
        backoff: crate::backoff::Backoff {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            wait_for_input: Duration::from_secs(60),
        },
        policy: match dns_policy {
            crate::cli::DnsPolicyArg::Sync => crate::dns::Policy::Sync,
            crate::cli::DnsPolicyArg::UpsertOnly => crate::dns::Policy::UpsertOnly,
        },
        verify_interval: dns_verify_interval,
        adopt_txt_owner: dns_adopt_txt_owner_id.filter(|o| !o.is_empty()),
        limits: crate::dns::limits::RateLimits {
            arm_reads: arm_read_limit,
            arm_writes: arm_write_limit,
            arm_deletes: arm_delete_limit,
            public_zone_writes: public_zone_write_limit,
            public_zone_lists: public_zone_list_limit,
            private_zone_writes: private_zone_write_limit,
            private_zone_lists: private_zone_list_limit,
        },
    }
}

/// The cluster's identity for record-set ownership: the uid of the `kube-system` namespace (the
/// id the AKS operator's external-dns uses too), or `None` (with a warning) when it cannot be read.
pub async fn cluster_uid(client: &kube::Client) -> Option<String> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    match namespaces.get("kube-system").await {
        Ok(ns) => ns.metadata.uid,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the kube-system namespace's uid for the cluster id; pass --cluster-id so every replica owns records under the same id");
            None
        }
    }
}

/// Where a pod's ServiceAccount namespace is mounted.
const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// The leader election settings: the Lease in the given namespace, else the pod's own, else
/// `default`; the identity given, else the pod name with a random suffix (a restarted pod must not
/// pass for its previous self while that one's Lease runs).
pub fn election(args: &crate::cli::LeaderArgs) -> crate::leader::Election {
    let namespace = args
        .leader_election_namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| std::fs::read_to_string(POD_NAMESPACE_FILE).ok().map(|n| n.trim().to_owned()))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let identity = args.leader_election_identity.clone().filter(|i| !i.is_empty()).unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "routewarden".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}", &suffix[..8])
    });
    let duration = args.leader_election_lease_duration;
    crate::leader::Election {
        namespace,
        lease: args.leader_election_lease.clone(),
        identity,
        duration,
        renew_before: duration / 3,
    }
}
